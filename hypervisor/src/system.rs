//! The system's one state (`septum_core::system`): booting, running, or in
//! the safe state, which is final. This module owns it: every way into the
//! safe state (a partition's policy, a failed verification, a fault in the
//! hypervisor, a hung core) ends in [`enter_safe`], and every way into a
//! guest (`vcpu::enter`, the return from an exit) asks [`guests_may_run`]
//! first. docs/fault-containment.md, "The safe state".

use core::sync::atomic::{AtomicU8, Ordering};

use septum_core::config::{Conduit, CpuBoot, SafeStateAction, BCM2711_GPIO_BASE};
use septum_core::system::{Event, SystemState};

use crate::arch::aarch64::asm;
use crate::config::CONFIG;
use crate::partition::State;
use crate::{console, irq, percpu, time, vgic};

static STATE: AtomicU8 = AtomicU8::new(SystemState::Booting as u8);

const PSCI_SYSTEM_OFF: u64 = 0x8400_0008;
/// How often the core that entered the safe state says so again, s.
const REMINDER_S: u64 = 10;

pub fn state() -> SystemState {
    SystemState::from_u8(STATE.load(Ordering::Acquire))
}

#[inline]
pub fn guests_may_run() -> bool {
    state().guests_may_run()
}

/// Applies `e`; returns the state before.
fn apply(e: Event) -> SystemState {
    let prev = STATE
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            Some(SystemState::from_u8(v).next(e) as u8)
        })
        .unwrap_or_else(|v| v);
    SystemState::from_u8(prev)
}

/// Measured boot has passed: guests may run (unless the safe state came
/// first, which no event undoes).
pub fn verified() {
    apply(Event::Verified);
}

/// Enters the safe state, from any core and any cause. The first caller
/// prints the alarm, stops every partition and every other core, performs
/// the platform's safe-state action, and stays as the one core that keeps
/// saying so; any later caller (another core racing it) just halts. No
/// guest instruction executes afterwards until the machine is reset.
pub fn enter_safe(cause: core::fmt::Arguments<'_>) -> ! {
    if apply(Event::SafeState) == SystemState::Safe {
        halt_core();
    }
    let me = percpu::core();
    console::emergency(format_args!(
        "\n[septum] *** ALARM: SAFE STATE ENTERED ***\n[septum] *** cause: {cause} ***\n[septum] *** no guest code runs; therapy halted; service required ***\n"
    ));
    // Nothing restarts: partitions stopped, their devices quiet and their
    // interrupts off at the GIC, every mailbox (CPU_ON, restart) emptied.
    // No lock is taken here: the core that faulted may hold any of them.
    for p in crate::partition::all() {
        p.set_state(State::Stopped);
        vgic::quiesce(p);
    }
    for c in 0..usize::from(CONFIG.platform.cpus) {
        percpu::clear_command(c);
        if c != me {
            irq::gic().send_sgi(c as u64, irq::SGI_STOP);
        }
    }
    // Cores still waiting at boot (`boot::secondary`) wait with WFE.
    asm::sev();
    stop_this_core();
    let action = CONFIG.platform.safe_state;
    console::emergency(format_args!(
        "[septum] *** safe-state action: {action} ***\n"
    ));
    act(action);
    remind()
}

/// The platform's action towards the outside world.
fn act(action: SafeStateAction) {
    match action {
        SafeStateAction::Park => {}
        SafeStateAction::PowerOff => {
            let CpuBoot::Psci(conduit) = CONFIG.platform.cpu_boot else {
                return; // CFG-09 rules it out
            };
            let r = asm::firmware_call(conduit == Conduit::Hvc, PSCI_SYSTEM_OFF, 0, 0, 0);
            console::emergency(format_args!(
                "[septum] *** PSCI SYSTEM_OFF returned {}: parking instead ***\n",
                r as i64
            ));
        }
        SafeStateAction::Gpio { pin, high } => {
            // SAFETY: the BCM2711 GPIO page is in the EL2 device map, and
            // CFG-09/CFG-31 keep it from every partition: only this core
            // touches it, once.
            let gpio = unsafe { crate::drivers::gpio::Bcm2711Gpio::new(BCM2711_GPIO_BASE) };
            let read = gpio.drive(pin, high);
            console::emergency(format_args!(
                "[septum] *** GPIO {pin} driven {}; it reads back {} ***\n",
                if high { "high" } else { "low" },
                if read { "high" } else { "low" }
            ));
        }
    }
}

/// This core's interrupts off at the GIC (its PPIs, the EL2 timer) so that
/// nothing wakes it for work it may no longer do.
fn stop_this_core() {
    asm::hyp_timer_disarm();
    irq::flush_core();
    percpu::clear_running();
    let g = irq::gic();
    for intid in 16..32 {
        g.set_ppi_enabled(percpu::core(), intid, false);
    }
}

/// A core's end in the safe state: it never enters a guest again.
pub fn halt_core() -> ! {
    stop_this_core();
    loop {
        asm::wfi();
        // Only SGIs can still arrive; drop them so the core sleeps again.
        drop_pending();
    }
}

/// Acknowledges and drops whatever interrupt woke this core.
fn drop_pending() {
    let _ = irq::take_at_el2();
}

/// The core that entered the safe state: says every `REMINDER_S` seconds
/// that it holds (so the alarm is still visible to whoever looks, and a test
/// can tell that time passes), and does nothing else. Its EL2 timer is the
/// only interrupt left in the system.
fn remind() -> ! {
    let g = irq::gic();
    let me = percpu::core();
    let step = time::freq() * REMINDER_S;
    let t0 = time::ticks();
    let mut next = t0 + step;
    g.set_ppi_enabled(me, crate::watchdog::HYP_TIMER_INTID, true);
    asm::hyp_timer_arm(next);
    loop {
        asm::wfi();
        drop_pending();
        let now = time::ticks();
        if now >= next {
            console::emergency(format_args!(
                "[septum] *** SAFE STATE held for {} s; no guest code has run since the alarm ***\n",
                (now - t0) / time::freq()
            ));
            next += step;
            asm::hyp_timer_arm(next);
        }
    }
}
