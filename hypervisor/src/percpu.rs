//! Per-core facts: which partition and vCPU a core runs, its stack.

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use aarch64_cpu::registers::MPIDR_EL1;
use septum_core::config::MAX_CPUS;
use tock_registers::interfaces::Readable;

use septum_core::el2map;

use crate::partition::PartitionRt;

/// Entries in the running tables: one per value of MPIDR_EL1.Aff0, so that
/// `core()` indexes them with no bounds check on the exit paths (4 KiB;
/// only the first `MAX_CPUS` are ever set).
const AFF0_VALUES: usize = 256;

/// The partition each core runs (null: none), as a pointer into the
/// partition table, so that every exit finds it in one load.
static RUNNING_PARTITION: [AtomicPtr<PartitionRt>; AFF0_VALUES] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; AFF0_VALUES];
static RUNNING_VCPU: [AtomicUsize; AFF0_VALUES] = [const { AtomicUsize::new(0) }; AFF0_VALUES];
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
    el2map::stack_top((&raw const __stacks_start) as u64, core() as u64)
}

pub fn set_running(partition: &'static PartitionRt, vcpu: usize) {
    if let (Some(p), Some(v)) = (RUNNING_PARTITION.get(core()), RUNNING_VCPU.get(core())) {
        v.store(vcpu, Ordering::Relaxed);
        p.store(core::ptr::from_ref(partition).cast_mut(), Ordering::Release);
    }
}

pub fn clear_running() {
    if let Some(p) = RUNNING_PARTITION.get(core()) {
        p.store(core::ptr::null_mut(), Ordering::Release);
    }
}

/// The partition and vCPU this core is running, if any.
#[inline]
pub fn running() -> Option<(&'static PartitionRt, usize)> {
    // One read of MPIDR_EL1 for both (this is on the SGI path).
    let c = core();
    partition_on(c).map(|p| (p, vcpu_on(c)))
}

pub fn set_pa_range_bits(bits: u8) {
    PA_RANGE_BITS.store(bits, Ordering::Relaxed);
}

pub fn pa_range_bits() -> u8 {
    PA_RANGE_BITS.load(Ordering::Relaxed)
}

/// The vCPU number of `running`, alone.
#[inline]
pub fn running_vcpu() -> usize {
    vcpu_on(core())
}

/// The partition this core is running, if any (the hypercall path needs no
/// vCPU number).
#[inline]
pub fn running_partition() -> Option<&'static PartitionRt> {
    partition_on(core())
}

#[inline(always)]
fn partition_on(c: usize) -> Option<&'static PartitionRt> {
    let p = RUNNING_PARTITION.get(c)?.load(Ordering::Acquire);
    // SAFETY: only `set_running` stores a non-null pointer, and it comes
    // from a `&'static PartitionRt` (the partition table is built once and
    // never freed or moved); it is only read, shared.
    unsafe { p.as_ref() }
}

#[inline(always)]
fn vcpu_on(c: usize) -> usize {
    RUNNING_VCPU.get(c).map_or(0, |v| v.load(Ordering::Relaxed))
}

/// Power state of the vCPU a core hosts, as PSCI AFFINITY_INFO reports it.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    Off = 0,
    OnPending = 1,
    On = 2,
}

/// What a parked core is asked to do next.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    None = 0,
    /// Start this core's vCPU at the mailbox's entry with x0 = context.
    Start = 1,
}

static POWER: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(Power::Off as u8) }; MAX_CPUS];
static PARKED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static MAIL_CMD: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(Command::None as u8) }; MAX_CPUS];
static MAIL_ENTRY: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static MAIL_CTX: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

pub fn power(core: usize) -> Power {
    match POWER.get(core).map(|p| p.load(Ordering::Acquire)) {
        Some(2) => Power::On,
        Some(1) => Power::OnPending,
        _ => Power::Off,
    }
}

pub fn set_power(core: usize, p: Power) {
    if let Some(s) = POWER.get(core) {
        s.store(p as u8, Ordering::Release);
    }
}

/// Moves `core` from Off to OnPending; false if it was not off.
pub fn claim_power_on(core: usize) -> bool {
    POWER.get(core).is_some_and(|s| {
        s.compare_exchange(
            Power::Off as u8,
            Power::OnPending as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
    })
}

pub fn set_parked(core: usize, parked: bool) {
    if let Some(s) = PARKED.get(core) {
        s.store(parked, Ordering::Release);
    }
}

pub fn is_parked(core: usize) -> bool {
    PARKED.get(core).is_some_and(|s| s.load(Ordering::Acquire))
}

/// Posts a start request for `core` (the caller then sends it a wake-up SGI).
pub fn post_start(core: usize, entry: u64, ctx: u64) {
    if let (Some(e), Some(c), Some(cmd)) =
        (MAIL_ENTRY.get(core), MAIL_CTX.get(core), MAIL_CMD.get(core))
    {
        e.store(entry, Ordering::Relaxed);
        c.store(ctx, Ordering::Relaxed);
        cmd.store(Command::Start as u8, Ordering::Release);
    }
}

/// Takes this core's pending request, if any.
pub fn take_command() -> Option<(Command, u64, u64)> {
    let c = core();
    let cmd = MAIL_CMD.get(c)?.swap(Command::None as u8, Ordering::AcqRel);
    if cmd != Command::Start as u8 {
        return None;
    }
    Some((
        Command::Start,
        MAIL_ENTRY[c].load(Ordering::Relaxed),
        MAIL_CTX[c].load(Ordering::Relaxed),
    ))
}

/// Drops any request posted for `core`.
pub fn clear_command(core: usize) {
    if let Some(cmd) = MAIL_CMD.get(core) {
        cmd.store(Command::None as u8, Ordering::Release);
    }
}
