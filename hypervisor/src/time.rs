//! Time from the generic timer's physical counter.

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0};
use tock_registers::interfaces::Readable;

/// Counter ticks since reset.
#[inline(always)]
pub fn ticks() -> u64 {
    CNTPCT_EL0.get()
}

pub fn freq() -> u64 {
    CNTFRQ_EL0.get().max(1)
}

pub fn now_ms() -> u64 {
    (ticks() as u128 * 1000 / freq() as u128) as u64
}
