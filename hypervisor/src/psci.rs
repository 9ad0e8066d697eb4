//! PSCI for guests, over HVC. The decoding and argument checks live in
//! `septum_core::psci` (host-tested); this file applies them. A partition
//! can only ever start, stop or query its own vCPUs.

use septum_core::psci::{self as core_psci, Call};

use crate::partition::{PartitionRt, State};
use crate::percpu::{self, Power};
use septum_core::fault::Fault;

pub enum Outcome {
    /// Value for x0; the guest continues.
    Return(u64),
    /// The call ends the partition's run; its fault policy decides what next.
    Fault(Fault),
    /// The calling vCPU turns itself off (other vCPUs still run).
    CpuOff,
}

/// A PSCI call with arguments `x` (x0-x3). Deciding changes nothing: only
/// `CPU_ON`, which answers with a value, acts before it returns.
#[inline(always)]
pub fn handle(p: &PartitionRt, x: [u64; 4]) -> Outcome {
    match core_psci::decode(x[0], x[1], x[2], x[3], p.cfg.cores.len()) {
        Call::Return(v) => Outcome::Return(v as u64),
        Call::SystemOff => Outcome::Fault(Fault::SystemOff),
        Call::SystemReset => Outcome::Fault(Fault::SystemReset),
        Call::CpuOff => {
            let others_on = p
                .cfg
                .cores
                .iter()
                .filter(|&&c| c as usize != percpu::core())
                .any(|&c| percpu::power(c as usize) != Power::Off);
            if others_on {
                Outcome::CpuOff
            } else {
                Outcome::Fault(Fault::SystemOff)
            }
        }
        Call::AffinityInfo { vcpu } => {
            let core = p.cfg.cores[vcpu] as usize;
            Outcome::Return(match percpu::power(core) {
                Power::On => core_psci::AFFINITY_ON,
                Power::Off => core_psci::AFFINITY_OFF,
                Power::OnPending => core_psci::AFFINITY_ON_PENDING,
            } as u64)
        }
        Call::CpuOn {
            vcpu,
            entry,
            context,
        } => Outcome::Return(cpu_on(p, vcpu, entry, context) as u64),
    }
}

fn cpu_on(p: &PartitionRt, vcpu: usize, entry: u64, context: u64) -> i64 {
    if p.state() != State::Running || !crate::system::guests_may_run() {
        return core_psci::DENIED;
    }
    // The entry point must be code the partition owns.
    let executable = p.cfg.memory.iter().any(|m| {
        m.perms.exec
            && m.guest_range()
                .contains(septum_core::addr::GuestPhysAddr::new(entry))
    });
    if !executable {
        return core_psci::INVALID_ADDRESS;
    }
    let core = p.cfg.cores[vcpu] as usize;
    match percpu::power(core) {
        Power::On => return core_psci::ALREADY_ON,
        Power::OnPending => return core_psci::ON_PENDING,
        Power::Off => {}
    }
    if !percpu::claim_power_on(core) {
        return core_psci::ON_PENDING;
    }
    percpu::post_start(core, entry, context);
    crate::irq::gic().send_sgi(core as u64, crate::irq::SGI_WAKE);
    core_psci::SUCCESS
}

pub fn describe(f: Fault) -> &'static str {
    match f {
        Fault::SystemOff => "PSCI SYSTEM_OFF (or CPU_OFF of its last vCPU)",
        Fault::SystemReset => "PSCI SYSTEM_RESET",
        Fault::AccessViolation => "access violation",
        Fault::IllegalInstruction => "illegal instruction",
        Fault::Watchdog => "watchdog expired",
    }
}
