//! The writer's end of the `telemetry` channel (docs/channels.md): once a
//! second the status task publishes the status line's figures there, under
//! the channel's sequence lock, for Linux's status page. Writing never
//! waits for the reader and costs the same whatever Linux does: 27 word
//! stores and two barriers.

use core::sync::atomic::{AtomicUsize, Ordering};

use septum_abi::channel::telemetry::{Telemetry, MAGIC, VERSION, W_REPLAY_FLOOR};
use septum_abi::channel::{Role, Words, Writer, PAGE_WORDS};
use septum_rtos::platform;

use super::hyp;
use super::sync::JobCell;

/// The channel's first page, as words.
struct Page {
    base: usize,
}

impl Words for Page {
    fn load(&self, word: usize) -> u32 {
        if word >= PAGE_WORDS {
            return 0;
        }
        // SAFETY: `base` is a page of the channel, inside the RAM window of
        // the boot map (checked in `init`), mapped by the hypervisor for
        // this partition alone to write; `word` is inside it.
        unsafe { core::ptr::read_volatile((self.base as *const u32).add(word)) }
    }

    fn store(&mut self, word: usize, value: u32) {
        if word >= PAGE_WORDS {
            return;
        }
        // SAFETY: as in `load`.
        unsafe { core::ptr::write_volatile((self.base as *mut u32).add(word), value) }
    }
}

static OUT: JobCell<Option<(Page, Writer)>> = JobCell::new(None);

/// The page's address once `init` found it usable (0: none). The requests
/// task keeps its replay floors in the page's last words
/// (`telemetry::W_REPLAY_FLOOR`), outside the record.
static BASE: AtomicUsize = AtomicUsize::new(0);

/// Reads word `w` (at or above `W_REPLAY_FLOOR`) of the page, if there is one.
pub fn floor_word(w: usize) -> Option<u32> {
    let base = BASE.load(Ordering::Relaxed);
    (base != 0 && (W_REPLAY_FLOOR..PAGE_WORDS).contains(&w)).then(|| Page { base }.load(w))
}

/// Writes word `w` (at or above `W_REPLAY_FLOOR`) of the page, if there is one.
pub fn set_floor_word(w: usize, v: u32) {
    let base = BASE.load(Ordering::Relaxed);
    if base != 0 && (W_REPLAY_FLOOR..PAGE_WORDS).contains(&w) {
        Page { base }.store(w, v);
    }
}

/// Looks the channel up; called once, before the tasks start.
pub fn init() {
    let Some((ipa, size, role)) = hyp::channel("telemetry") else {
        return;
    };
    if role != Role::Writer || !platform::channel_usable(ipa, size) {
        crate::println!(
            "rtos: telemetry: channel at {ipa:#x} (+{size:#x}, {role:?}) is not writable RAM here; not used"
        );
        return;
    }
    let mut page = Page { base: ipa as usize };
    let mut w = Writer::attach(&page, MAGIC, VERSION);
    // A first record at once (heartbeat 0, nothing delivered yet), so that
    // a reader never finds the channel empty while the RTOS runs.
    w.publish(&mut page, &Telemetry::default().encode());
    let bell = match hyp::notify("telemetry") {
        hyp::Ring::NoDoorbell => "no doorbell",
        _ => "doorbell rung after each",
    };
    crate::println!("rtos: telemetry: channel at {ipa:#x}, published once a second, {bell}");
    BASE.store(ipa as usize, Ordering::Relaxed);
    OUT.with(|o| *o = Some((page, w)));
}

/// Publishes one record (from the status task only) and rings the reader's
/// doorbell. A ring the rate limit drops is not retried: the reader has
/// the record at its next ring, or its next poll.
pub fn publish(t: &Telemetry) {
    let published = OUT.with(|o| match o {
        Some((page, w)) => {
            w.publish(page, &t.encode());
            true
        }
        None => false,
    });
    if published {
        let _ = hyp::notify("telemetry");
    }
}

/// Rings asked for and rung by the doorbell-storm test build.
#[cfg(feature = "fault-test-doorbell-storm")]
static STORM: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// The doorbell-storm test build: ten rings every supervisor period (1,000
/// a second), to show the hypervisor's rate limit holds Linux's interrupts
/// to the configured rate whatever the writer asks.
#[cfg(feature = "fault-test-doorbell-storm")]
pub fn storm() {
    for _ in 0..10 {
        let rang = hyp::notify("telemetry") == hyp::Ring::Rang;
        STORM[0].fetch_add(1, Ordering::Relaxed);
        STORM[1].fetch_add(usize::from(rang), Ordering::Relaxed);
    }
}

#[cfg(feature = "fault-test-doorbell-storm")]
pub fn report_storm() {
    crate::println!(
        "rtos: fault-test: doorbell storm: asked {} rang {}",
        STORM[0].load(Ordering::Relaxed),
        STORM[1].load(Ordering::Relaxed)
    );
}
