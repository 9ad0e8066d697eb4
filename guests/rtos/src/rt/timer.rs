//! Generic timer: the virtual counter for time, the EL1 virtual timer for
//! wake-ups. The virtual view is what a hypervisor offsets consistently, so
//! the same code is right natively (CNTVOFF = 0) and in a partition.

use core::arch::asm;

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
}

pub fn disarm() {
    // SAFETY: disabling the RTOS's own timer has no other effect.
    unsafe {
        asm!(
            "msr cntv_ctl_el0, xzr",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}
