//! PSCI for guests, over HVC. The decisions live in `septum_core::psci`
//! (host-tested); this file applies them to the running system.

use septum_core::psci::{self as core_psci, Call};

use crate::arch::aarch64::trap::TrapFrame;
use crate::exit::Fault;
use crate::partition::PartitionRt;

pub enum Outcome {
    /// Value for x0; the guest continues.
    Return(u64),
    /// The call ends the partition's run; its fault policy decides what next.
    Fault(Fault),
}

pub fn handle(p: &PartitionRt, vcpu: usize, frame: &mut TrapFrame) -> Outcome {
    let _ = vcpu;
    match core_psci::decode(
        frame.x[0],
        frame.x[1],
        frame.x[2],
        frame.x[3],
        p.cfg.cores.len(),
    ) {
        Call::Return(v) => Outcome::Return(v as u64),
        Call::SystemOff => Outcome::Fault(Fault::SystemOff),
        Call::SystemReset => Outcome::Fault(Fault::SystemReset),
        Call::CpuOff => Outcome::Fault(Fault::SystemOff),
        Call::CpuOn { .. } => Outcome::Return(core_psci::NOT_SUPPORTED as u64),
    }
}

pub fn describe(f: Fault) -> &'static str {
    match f {
        Fault::SystemOff => "PSCI SYSTEM_OFF (or its last CPU_OFF)",
        Fault::SystemReset => "PSCI SYSTEM_RESET",
        Fault::AccessViolation => "access violation",
        Fault::IllegalInstruction => "illegal instruction",
    }
}
