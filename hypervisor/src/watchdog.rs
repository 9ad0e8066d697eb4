//! Watchdogs the hypervisor keeps on partitions (models and checks in
//! `septum_core::watchdog`; docs/fault-containment.md).
//!
//! Each partition with a watchdog has one state, behind a lock. Its boot
//! core's EL2 physical timer (CNTHP, PPI 26) is armed at the watchdog's
//! deadline when the partition starts; when it fires, the watchdog is
//! advanced and the timer re-armed at the then current deadline (heartbeats
//! and refreshes only move the deadline, they never touch the timer, so
//! the guest's hot path stays cheap). The timer interrupt is taken at EL2
//! whatever the guest has masked, so a partition hung with interrupts off
//! is still caught.

use septum_core::config::WatchdogKind;
use septum_core::watchdog::{Heartbeat, SbsaGwdt, WdEvent};
use spin::mutex::SpinMutex as Mutex;

use crate::arch::aarch64::asm;
use crate::partition::PartitionRt;
use crate::{percpu, time};

/// PPI of the EL2 physical timer.
pub const HYP_TIMER_INTID: u32 = 26;

#[derive(Debug)]
pub enum WdState {
    None,
    Heartbeat(Heartbeat),
    Gwdt(SbsaGwdt),
}

impl WdState {
    fn deadline(&self) -> Option<u64> {
        match self {
            WdState::None => None,
            WdState::Heartbeat(h) => h.deadline(),
            WdState::Gwdt(g) => g.deadline(),
        }
    }
}

pub fn new_state(p: &septum_core::config::Partition) -> Mutex<WdState> {
    let Some(w) = p.watchdog else {
        return Mutex::new(WdState::None);
    };
    let ticks = (w.timeout_ms as u128 * time::freq() as u128 / 1000) as u64;
    Mutex::new(match w.kind {
        WatchdogKind::Heartbeat => WdState::Heartbeat(Heartbeat::new(ticks)),
        WatchdogKind::SbsaGwdt { .. } => WdState::Gwdt(SbsaGwdt::new(ticks)),
    })
}

/// Arms `p`'s watchdog for a start at this moment, on this core.
pub fn start(p: &PartitionRt) {
    let now = time::ticks();
    let deadline = {
        let mut w = p.wd.lock();
        match &mut *w {
            WdState::None => return,
            WdState::Heartbeat(h) => h.start(now),
            WdState::Gwdt(g) => g.start(now),
        }
        w.deadline()
    };
    arm(deadline);
}

/// Disarms `p`'s watchdog (the partition stopped).
pub fn stop(p: &PartitionRt) {
    match &mut *p.wd.lock() {
        WdState::None => {}
        WdState::Heartbeat(h) => h.stop(),
        WdState::Gwdt(g) => g.stop(),
    }
}

/// The EL2 timer also carries this core's liveness tick (liveness.rs).
fn arm(deadline: Option<u64>) {
    crate::liveness::arm(deadline);
}

/// The HEARTBEAT hypercall: `false` if the partition has no heartbeat.
pub fn heartbeat(p: &PartitionRt) -> bool {
    match &mut *p.wd.lock() {
        WdState::Heartbeat(h) => {
            h.pet(time::ticks());
            true
        }
        _ => false,
    }
}

/// The EL2 timer fired on this core: advance the watchdog of the partition
/// this core belongs to; on expiry apply its fault policy (which does not
/// return for restart/stop/safe-state).
pub fn on_timer() {
    asm::hyp_timer_disarm();
    crate::liveness::on_timer();
    // The watchdog lives on its partition's boot core (where `start` armed
    // it); the other cores' ticks are only the liveness check's.
    let Some(p) = crate::partition::of_core(percpu::core())
        .filter(|p| p.cfg.cores.first().map(|&c| c as usize) == Some(percpu::core()))
    else {
        return arm(None);
    };
    let now = time::ticks();
    let (ev, deadline) = {
        let mut w = p.wd.lock();
        let ev = match &mut *w {
            WdState::None => WdEvent::None,
            WdState::Heartbeat(h) => h.advance(now),
            WdState::Gwdt(g) => g.advance(now),
        };
        (ev, w.deadline())
    };
    match ev {
        WdEvent::Expired => {
            let what = match p.cfg.watchdog.map(|w| w.kind) {
                Some(WatchdogKind::Heartbeat) => "no heartbeat within the watchdog timeout",
                _ => "its watchdog expired (no refresh)",
            };
            crate::lifecycle::watchdog_expired(p, what);
        }
        WdEvent::Warning => {
            log::warn!(
                "partition '{}': watchdog warning stage (no refresh for half its timeout)",
                p.name()
            );
            arm(deadline);
        }
        WdEvent::None => arm(deadline),
    }
}

/// Size of the SBSA watchdog's two frames (control, refresh).
pub const GWDT_SIZE: u64 = 0x2000;

/// A trapped access at `off` in the partition's SBSA watchdog frames (the
/// emulated-device table found it there).
pub fn mmio(p: &PartitionRt, off: u64, width: u8, write: Option<u64>) -> Result<u64, &'static str> {
    if off >= GWDT_SIZE {
        return Err("outside the watchdog");
    }
    let now = time::ticks();
    let mut w = p.wd.lock();
    let WdState::Gwdt(g) = &mut *w else {
        return Err("watchdog state missing");
    };
    let r = match (off < 0x1000, write) {
        (true, None) => g.read_control(off, width),
        (true, Some(v)) => g.write_control(off, width, v, now).map(|()| 0),
        (false, None) => g.read_refresh(off - 0x1000, width),
        (false, Some(v)) => g.write_refresh(off - 0x1000, width, v, now).map(|()| 0),
    };
    r.map_err(|_| "invalid watchdog access")
}
