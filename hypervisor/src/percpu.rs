//! Per-core facts: which partition and vCPU a core runs, its stack.

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use aarch64_cpu::registers::MPIDR_EL1;
use septum_core::config::MAX_CPUS;
use tock_registers::interfaces::Readable;

use crate::arch::aarch64::asm::STACK_SIZE;

const NONE: usize = usize::MAX;

static RUNNING_PARTITION: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(NONE) }; MAX_CPUS];
static RUNNING_VCPU: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
static PA_RANGE_BITS: AtomicU8 = AtomicU8::new(40);

unsafe extern "C" {
    static __stacks_start: u8;
}

/// This core's number (MPIDR_EL1.Aff0; the platforms we support are flat).
#[inline(always)]
pub fn core() -> usize {
    (MPIDR_EL1.get() & 0xff) as usize
}

/// Top of this core's EL2 stack, as `asm.rs` laid the stacks out.
pub fn stack_top() -> u64 {
    let base = (&raw const __stacks_start) as u64;
    base + ((core() as u64) + 1) * STACK_SIZE as u64
}

pub fn set_running(partition: usize, vcpu: usize) {
    if let (Some(p), Some(v)) = (RUNNING_PARTITION.get(core()), RUNNING_VCPU.get(core())) {
        v.store(vcpu, Ordering::Relaxed);
        p.store(partition, Ordering::Release);
    }
}

pub fn clear_running() {
    if let Some(p) = RUNNING_PARTITION.get(core()) {
        p.store(NONE, Ordering::Release);
    }
}

/// The partition and vCPU this core is running, if any.
#[inline]
pub fn running() -> Option<(&'static crate::partition::PartitionRt, usize)> {
    let c = core();
    let p = RUNNING_PARTITION.get(c)?.load(Ordering::Acquire);
    if p == NONE {
        return None;
    }
    let v = RUNNING_VCPU.get(c)?.load(Ordering::Relaxed);
    crate::partition::get(p).map(|p| (p, v))
}

pub fn set_pa_range_bits(bits: u8) {
    PA_RANGE_BITS.store(bits, Ordering::Relaxed);
}

pub fn pa_range_bits() -> u8 {
    PA_RANGE_BITS.load(Ordering::Relaxed)
}
