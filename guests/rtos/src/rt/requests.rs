//! The reader's end of the `requests` channel (docs/channels.md,
//! "Requests"): a low-priority task that takes at most one slot per job
//! out of the mailbox Linux writes, judges it (`septum_rtos::requests`)
//! on its own copy, and hands an accepted command to the supervisor. It
//! never waits for Linux and its work per job is bounded by one signature
//! verification, whatever Linux writes.

use core::fmt::Write;

use core::sync::atomic::{fence, Ordering};

use septum_abi::channel::request::{slot_word, slots, Answer, Cursor, SLOT, W_HEAD};
use septum_abi::channel::telemetry::W_REPLAY_FLOOR;
use septum_abi::channel::Role;
use septum_rtos::requests::{Command, Gate, Limits, PumpView, MAX_KEYS};
use septum_rtos::status::LineBuf;

use super::sync::{IrqCell, JobCell};
use super::{console, hyp, telemetry};

include!(concat!(env!("OUT_DIR"), "/request_keys.rs"));

/// The mailbox, mapped read-only: its first page's words and the slots.
struct Mailbox {
    base: usize,
    slots: usize,
}

impl Mailbox {
    fn word(&self, i: usize) -> u32 {
        // SAFETY: `base` is the channel's start, inside the RAM window of
        // the boot map (checked in `init`) and mapped readable for this
        // partition; `i` is below the channel's size in words (callers).
        unsafe { core::ptr::read_volatile((self.base as *const u32).add(i)) }
    }

    /// Copies slot `n` out (32 single-word loads: the bytes judged are the
    /// bytes used, whatever Linux writes meanwhile).
    fn copy(&self, n: usize) -> [u8; SLOT] {
        let mut s = [0u8; SLOT];
        let first = slot_word(n);
        for (i, chunk) in s.chunks_exact_mut(4).enumerate() {
            chunk.copy_from_slice(&self.word(first + i).to_le_bytes());
        }
        s
    }
}

struct State {
    mbox: Mailbox,
    cursor: Cursor,
    gate: Gate,
    line: LineBuf<120>,
}

static STATE: JobCell<Option<State>> = JobCell::new(None);

/// What the telemetry record reports about requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub accepted: u32,
    pub rejected: u32,
    pub skipped: u32,
    pub last_id: u32,
    pub last_answer: u32,
}

pub static STATS: IrqCell<Stats> = IrqCell::new(Stats {
    accepted: 0,
    rejected: 0,
    skipped: 0,
    last_id: 0,
    last_answer: 0,
});

/// An accepted command, for the supervisor's next job.
pub static PENDING: IrqCell<Option<Command>> = IrqCell::new(None);

/// Looks the channel up; called once, before the tasks start.
pub fn init() {
    let Some((ipa, size, role)) = hyp::channel("requests") else {
        return;
    };
    let n = slots(usize::try_from(size).unwrap_or(0));
    if role != Role::Reader || !septum_rtos::platform::channel_usable(ipa, size) || n == 0 {
        crate::println!(
            "rtos: requests: channel at {ipa:#x} (+{size:#x}, {role:?}) is not a readable mailbox here; not used"
        );
        return;
    }
    let mbox = Mailbox {
        base: ipa as usize,
        slots: n,
    };
    // What Linux wrote before this RTOS started is not acted on.
    let cursor = Cursor::at(mbox.word(W_HEAD));
    let mut gate = Gate::new(REQUEST_KEYS, Limits::DEFAULT);
    // What a previous instance of this RTOS used up (telemetry page).
    let mut floors = [0u64; MAX_KEYS];
    for (k, f) in floors.iter_mut().enumerate() {
        let w = |i| telemetry::floor_word(W_REPLAY_FLOOR + 2 * k + i).unwrap_or(0);
        *f = u64::from(w(0)) | u64::from(w(1)) << 32;
    }
    gate.restore(floors);
    crate::println!(
        "rtos: requests: mailbox at {ipa:#x}, {n} slots, one judged every 250 ms; {} key(s){}",
        REQUEST_KEYS.len(),
        if REQUEST_KEYS_ARE_DEV {
            " (one is the DEVELOPMENT key: anyone can sign)"
        } else {
            ""
        }
    );
    STATE.with(|s| {
        *s = Some(State {
            mbox,
            cursor,
            gate,
            line: LineBuf::new(),
        })
    });
}

/// 4 Hz, lowest priority: at most one slot.
pub fn requests_job(now_ms: u64, pump: PumpView) {
    STATE.with(|st| {
        let Some(st) = st else { return };
        let head = st.mbox.word(W_HEAD);
        // The slot's words are read after the head that counts them.
        fence(Ordering::Acquire);
        let Some(next) = st.cursor.next(head, st.mbox.slots) else {
            return;
        };
        let slot = st.mbox.copy(next.slot);
        let before = st.gate.floors();
        let v = st.gate.check(&slot, now_ms, pump);
        // A number used up is kept where a restart finds it, before the
        // command is handed on: a restart before the stores finish finds
        // the command not applied, and, the high word going first, a floor
        // no lower than the old one (no earlier request replays).
        for (k, (old, new)) in before.iter().zip(st.gate.floors()).enumerate() {
            if *old != new {
                telemetry::set_floor_word(W_REPLAY_FLOOR + 2 * k + 1, (new >> 32) as u32);
                telemetry::set_floor_word(W_REPLAY_FLOOR + 2 * k, new as u32);
            }
        }
        STATS.with(|s| {
            s.skipped = s.skipped.saturating_add(next.skipped);
            if v.answer == Answer::Accepted {
                s.accepted = s.accepted.saturating_add(1);
            } else {
                s.rejected = s.rejected.saturating_add(1);
            }
            s.last_id = v.request_id;
            s.last_answer = v.answer as u32;
        });
        if let Some(c) = v.command {
            PENDING.with(|p| *p = Some(c));
        }
        // A line for each slot that framed (garbage is only counted): at
        // most four a second, from the lowest-priority task.
        if v.answer != Answer::Framing {
            st.line.clear();
            let _ = match v.command {
                Some(Command::SetRate(r)) => writeln!(
                    st.line,
                    "rtos: request {}: accepted: set rate {}.{:02} mL/h",
                    v.request_id,
                    r / 100,
                    r % 100
                ),
                Some(c) => writeln!(st.line, "rtos: request {}: accepted: {c:?}", v.request_id),
                None => writeln!(
                    st.line,
                    "rtos: request {}: rejected: {}",
                    v.request_id,
                    v.answer.name()
                ),
            };
            console::write_bytes(st.line.as_bytes());
        }
        // The test of the replay floors across a restart: the floors are
        // in the telemetry page (above) before the reset.
        #[cfg(feature = "fault-test-reset-after-accept")]
        if v.answer == Answer::Accepted {
            console::write_bytes(
                b"rtos: fault-test: PSCI SYSTEM_RESET after an accepted request\n",
            );
            super::hyp::system_reset();
        }
    });
}
