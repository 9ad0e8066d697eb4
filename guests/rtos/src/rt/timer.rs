//! Generic timer: the virtual counter for time, the EL1 virtual timer for
//! wake-ups. The virtual view is what a hypervisor offsets consistently, so
//! the same code is right natively (CNTVOFF = 0) and in a partition.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use septum_rtos::time::Clock;

/// PPI of the EL1 virtual timer.
pub const VIRTUAL_TIMER_INTID: u32 = 27;

/// Current virtual count. The `isb` keeps the read from being performed
/// early (out of order), which would make job timestamps lie.
#[inline(always)]
pub fn now() -> u64 {
    let v: u64;
    // SAFETY: reading CNTVCT_EL0 has no side effects; EL1 access is allowed.
    unsafe {
        asm!("isb", "mrs {v}, cntvct_el0", v = out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// The virtual timer's compare value (when the current wake-up was due).
#[cfg_attr(not(feature = "bench"), allow(dead_code))]
pub fn compare() -> u64 {
    let v: u64;
    // SAFETY: reading CNTV_CVAL_EL0 has no side effects.
    unsafe {
        asm!("mrs {v}, cntv_cval_el0", v = out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// CNTFRQ_EL0. Read once at boot: every conversion then goes through the
/// `Clock` built from it (62.5 MHz on QEMU's cortex-a72, 54 MHz on a Pi 4).
pub fn frequency() -> u64 {
    let v: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe {
        asm!("mrs {v}, cntfrq_el0", v = out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Fires the timer interrupt when the virtual count reaches `at` (at once
/// if it already has). Level-sensitive: the line drops when `at` moves into
/// the future, so reprogramming acknowledges the timer.
pub fn arm(at: u64) {
    // SAFETY: programs this core's EL1 virtual timer, which belongs to the RTOS.
    unsafe {
        asm!(
            "msr cntv_cval_el0, {at}",
            "msr cntv_ctl_el0, {en}",
            "isb",
            at = in(reg) at,
            en = in(reg) 1u64,
            options(nostack, preserves_flags)
        );
    }
    NEXT.store(at, Ordering::Relaxed);
}

/// Simulation pacing hint, in microseconds after each release.
///
/// Deterministic simulators (QEMU `-icount`) run all cores on one host
/// thread, round-robin, in slices as long as a quarter of the time to the
/// next timer event. With Linux busy on the other three cores and no timer
/// event due soon after a release, the critical core can wait three such
/// slices (hundreds of microseconds) before it runs at all, which real,
/// parallel cores never do. A *masked* EL1 physical-timer compare placed
/// shortly after each release bounds those slices. It never raises an
/// interrupt, so on hardware it has no effect beyond two register writes.
///
/// It moves to the next release only when a job has ended, never in the
/// timer interrupt: until the control job has started, the compare after
/// the current release must stay, or the slices between the interrupt and
/// the job's start are a quarter of the rest of the period. Nor may it move
/// *earlier or later while it is the next event*: QEMU then ends the
/// core's slice at once (to recompute it), and the other three cores run
/// theirs first. 40 µs keeps those slices to 10 µs while leaving core 0
/// (about a quarter of the window) far more than the ~2,000 instructions
/// from the interrupt to the job's start. See docs/rtos.md ("Timing under
/// QEMU icount").
const PACING_HINT_US: u64 = 40;
/// `PACING_HINT_US` in counter ticks, set by `init`.
static PACING_HINT_TICKS: AtomicU64 = AtomicU64::new(0);
/// The armed release (`u64::MAX` when disarmed).
static NEXT: AtomicU64 = AtomicU64::new(u64::MAX);
/// The release the compare was last placed after.
static HINTED: AtomicU64 = AtomicU64::new(u64::MAX);

/// Converts the timer's constants with the boot-time counter frequency.
pub fn init(clock: Clock) {
    PACING_HINT_TICKS.store(clock.us_to_ticks(PACING_HINT_US), Ordering::Relaxed);
}

/// Places the masked physical-timer compare `PACING_HINT_US` after the
/// armed release, unless it is there already.
pub fn pace_next() {
    let at = NEXT.load(Ordering::Relaxed);
    if at == u64::MAX || HINTED.load(Ordering::Relaxed) == at {
        return;
    }
    let hint = at
        .saturating_sub(now())
        .saturating_add(PACING_HINT_TICKS.load(Ordering::Relaxed));
    // TVAL is a signed 32-bit offset from the physical count; a release
    // further away than that needs no hint yet.
    let Ok(tval) = i32::try_from(hint) else {
        return;
    };
    HINTED.store(at, Ordering::Relaxed);
    // SAFETY: programs this core's EL1 physical timer, which belongs to the
    // RTOS; ENABLE with IMASK set, so it never asserts its interrupt.
    unsafe {
        asm!(
            "msr cntp_tval_el0, {t}",
            "msr cntp_ctl_el0, {ctl}",
            t = in(reg) tval as i64 as u64,
            ctl = in(reg) 0b011u64,
            options(nostack, preserves_flags)
        );
    }
}

pub fn disarm() {
    NEXT.store(u64::MAX, Ordering::Relaxed);
    // SAFETY: disabling the RTOS's own timer has no other effect.
    unsafe {
        asm!(
            "msr cntv_ctl_el0, xzr",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}
