//! A partition's life: stopping it, restarting it from its pristine images,
//! parking a core, and the safe state. What to do about a fault is decided
//! by the pure functions of `septum_core::fault` (the trap policy applies
//! them in `exit.rs`); this module carries the decisions out.
//!
//! Every function here ends the calling core's guest execution (`-> !`):
//! the core parks, enters a guest anew, or stops for good. None returns to
//! the trapped guest, so the exit paths may take them from any context.

use septum_core::config::{Criticality, FaultAction};
use septum_core::fault::{self, Fault, Refused};

use crate::arch::aarch64::asm;
use crate::partition::{PartitionRt, State};
use crate::{irq, percpu, vgic};

/// A restart that cannot happen: the critical partition's is the safe
/// state, any other's a stop (`septum_core::fault::after_refused_restart`).
fn refused(p: &PartitionRt, critical: core::fmt::Arguments<'_>, why: &str) -> ! {
    match fault::after_refused_restart(p.cfg.criticality) {
        Refused::SafeState => safe_state(p, critical),
        Refused::Stop => stop_partition(p, why),
    }
}
/// The console line for every policy decision.
pub(crate) fn announce(p: &PartitionRt, what: core::fmt::Arguments<'_>, action: FaultAction) {
    log::warn!(
        "partition '{}': {what} -> {} (counter {})",
        p.name(),
        action_name(action),
        crate::time::ticks()
    );
}

fn action_name(a: FaultAction) -> &'static str {
    match a {
        FaultAction::InjectAbort => "abort injected",
        FaultAction::Restart => "restarting partition",
        FaultAction::Stop => "stopping partition",
        FaultAction::SafeState => "ENTERING SAFE STATE",
    }
}

/// `p`'s watchdog expired (detected on this core, from the EL2 timer):
/// its `watchdog` policy applies. Inject-abort is not a valid watchdog
/// action (CFG-41); it is treated as restart.
#[cold]
#[inline(never)]
pub fn watchdog_expired(p: &'static PartitionRt, what: &str) -> ! {
    let action = fault::action(&p.cfg.fault_policy, Fault::Watchdog);
    announce(p, format_args!("{what}"), action);
    match action {
        FaultAction::Stop => stop_partition(p, "watchdog"),
        FaultAction::SafeState => safe_state(p, format_args!("{what}")),
        FaultAction::Restart | FaultAction::InjectAbort => restart_partition(p),
    }
}

/// Stops every vCPU of `p` (this core's and, by IPI, the others).
#[cold]
#[inline(never)]
pub fn stop_partition(p: &PartitionRt, why: &str) -> ! {
    p.set_state(State::Stopped);
    crate::watchdog::stop(p);
    vgic::quiesce(p);
    stop_other_vcpus(p);
    log::warn!(
        "partition '{}' stopped ({why}); the other partitions run on",
        p.name()
    );
    park_current()
}

/// Sends every other core of `p` to its park loop.
fn stop_other_vcpus(p: &PartitionRt) {
    let me = percpu::core();
    for &c in p.cfg.cores {
        let c = c as usize;
        percpu::clear_command(c);
        if c != me {
            irq::gic().send_sgi(c as u64, irq::SGI_STOP);
        }
    }
}

/// Waits (bounded) until the other cores of `p` have parked.
fn wait_parked(p: &PartitionRt) -> bool {
    let me = percpu::core();
    let deadline = crate::time::ticks() + crate::time::freq() / 10;
    loop {
        let all = p
            .cfg
            .cores
            .iter()
            .all(|&c| c as usize == me || percpu::is_parked(c as usize));
        if all {
            return true;
        }
        if crate::time::ticks() > deadline {
            return false;
        }
        // Bounded, and this core is alive while it waits.
        crate::liveness::progress();
        core::hint::spin_loop();
    }
}

/// Reloads `p` from its pristine images and starts it again, within the
/// restart budget; a spent budget stops it for good (or, for the critical
/// partition, enters the safe state).
#[cold]
#[inline(never)]
pub fn restart_partition(p: &'static PartitionRt) -> ! {
    if !crate::system::guests_may_run() {
        crate::system::halt_core();
    }
    let now_ms = crate::time::now_ms();
    if !p.budget.lock().try_consume(now_ms) {
        log::error!(
            "partition '{}': restart budget spent ({} restarts in {} ms); it stays stopped",
            p.name(),
            p.cfg.fault_policy.max_restarts,
            p.cfg.fault_policy.restart_window_ms
        );
        refused(
            p,
            format_args!("the critical partition keeps failing (restart budget spent)"),
            "restart budget spent",
        );
    }
    p.set_state(State::Loading);
    crate::watchdog::stop(p);
    vgic::quiesce(p);
    stop_other_vcpus(p);
    if !wait_parked(p) {
        log::error!("partition '{}': a vCPU did not stop in time", p.name());
        stop_partition(p, "vCPUs did not stop for the restart");
    }
    irq::flush_core();
    vgic::quiesce(p);
    vgic::reset(p);
    crate::doorbell::reset(p);
    if let Err(f) = crate::measure::recheck_partition(p) {
        log::error!(
            "partition '{}': image '{}' no longer matches the manifest ({}); not restarted",
            p.name(),
            f.item,
            f.verdict.as_str()
        );
        refused(
            p,
            format_args!("its image failed verification before a restart"),
            "image verification failed",
        );
    }
    match crate::partition::load_images(p) {
        Ok(bytes) => log::info!(
            "partition '{}': reloaded {bytes} bytes of images; restarting at counter {} (hypervisor heap: {} bytes in use, sealed)",
            p.name(),
            crate::time::ticks(),
            crate::heap::in_use()
        ),
        Err(e) => {
            log::error!("partition '{}': reload failed: {e}", p.name());
            refused(p, format_args!("its images could not be reloaded"), "reload failed");
        }
    }
    crate::measure::publish_to_dtb(p);
    p.set_state(State::Running);
    let me = percpu::core();
    let boot_core = p.cfg.cores[0] as usize;
    crate::watchdog::start(p);
    if boot_core == me {
        crate::vcpu::enter(p, 0, p.cfg.entry.raw(), p.cfg.boot_arg);
    }
    percpu::set_power(boot_core, percpu::Power::OnPending);
    percpu::post_start(boot_core, p.cfg.entry.raw(), p.cfg.boot_arg);
    irq::gic().send_sgi(boot_core as u64, irq::SGI_WAKE);
    park_current()
}

/// The documented safe state, for a partition's cause: the whole system
/// stops for good (`system::enter_safe`).
#[cold]
#[inline(never)]
pub fn safe_state(p: &PartitionRt, what: core::fmt::Arguments<'_>) -> ! {
    crate::system::enter_safe(format_args!(
        "partition '{}' ({}): {}",
        p.name(),
        if p.cfg.criticality == Criticality::Critical {
            "critical"
        } else {
            "non-critical"
        },
        what
    ))
}

/// The safe state entered during boot, before any guest ran (the boot
/// manifest or a critical partition failed verification).
#[cold]
#[inline(never)]
pub fn safe_state_boot(what: core::fmt::Arguments<'_>) -> ! {
    crate::system::enter_safe(what)
}

/// Takes this core out of guest execution: its vCPU is off, interrupts
/// stay masked at EL2 and the core sleeps until a request in its mailbox
/// (PSCI CPU_ON from a sibling vCPU, or a partition restart) starts the vCPU
/// again.
#[cold]
#[inline(never)]
pub fn park_current() -> ! {
    let me = percpu::core();
    irq::flush_core();
    percpu::clear_running();
    percpu::set_power(me, percpu::Power::Off);
    percpu::set_parked(me, true);
    loop {
        if !crate::system::guests_may_run() {
            crate::system::halt_core();
        }
        if let Some((_, entry, ctx)) = percpu::take_command() {
            if let Some(p) = crate::partition::of_core(me) {
                if p.state() == State::Running {
                    let vcpu = p.vcpu_of_core(me).unwrap_or(0);
                    percpu::set_parked(me, false);
                    percpu::set_power(me, percpu::Power::On);
                    crate::vcpu::enter(p, vcpu, entry, ctx);
                }
            }
            percpu::set_power(me, percpu::Power::Off);
        }
        asm::wfi();
        // Acknowledge whatever woke us so the core can sleep again; the
        // mailbox is checked at the top of the loop.
        if irq::take_at_el2() == Some(crate::watchdog::HYP_TIMER_INTID) {
            crate::watchdog::on_timer();
        }
    }
}
