//! Every core watches another (`septum_core::system::watched_by`): each
//! core's EL2 timer fires at least every `LIVENESS_PERIOD_MS` and stamps
//! the core, and at that tick the core checks the stamp of the next started
//! core. A core silent for longer than `LIVENESS_TIMEOUT_MS` — stuck at EL2
//! with interrupts masked, or a core that stopped taking its EL2 timer —
//! sends the system to the safe state within the bound
//! (`Liveness::bound`, 60 ms). Long hypervisor work on a core (scrubbing,
//! copying, hashing a partition's memory) stamps as it goes, in steps that
//! take well under the timeout. docs/fault-containment.md, "Hung cores".

use core::sync::atomic::{AtomicU64, Ordering};

use septum_core::config::MAX_CPUS;
use septum_core::system::{silent_for, watched_by, Liveness};

use crate::arch::aarch64::asm;
use crate::{percpu, time};

/// Counter value of each core's last sign of life; 0 = not started.
static STAMP: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Each core's next liveness tick (written by that core only).
static NEXT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

fn params() -> Liveness {
    Liveness::at(time::freq())
}

/// This core is alive (cheap: one store).
#[inline]
pub fn stamp() {
    if let Some(s) = STAMP.get(percpu::core()) {
        s.store(time::ticks().max(1), Ordering::Relaxed);
    }
}

/// Long hypervisor work on this core goes on: stamp, and keep the console
/// moving if this core drains it.
pub fn progress() {
    stamp();
    crate::console::poll();
}

/// Starts this core's ticks (it is watched from now on).
pub fn start() {
    stamp();
    if let Some(n) = NEXT.get(percpu::core()) {
        n.store(time::ticks() + params().period, Ordering::Relaxed);
    }
    arm(None);
}

/// Arms this core's EL2 timer for the earliest of its next liveness tick,
/// `deadline` (a partition watchdog's) and, on the console's drainer with
/// output queued, the next drain.
pub fn arm(deadline: Option<u64>) {
    // 0: this core's ticks are not started.
    let tick = NEXT
        .get(percpu::core())
        .map(|n| n.load(Ordering::Relaxed))
        .filter(|&t| t != 0);
    match [tick, deadline, crate::console::next_drain()]
        .into_iter()
        .flatten()
        .min()
    {
        Some(at) => asm::hyp_timer_arm(at),
        None => asm::hyp_timer_disarm(),
    }
}

/// The EL2 timer fired: stamp, move the tick on, check the watched core.
pub fn on_timer() {
    let me = percpu::core();
    stamp();
    let l = params();
    let now = time::ticks();
    if let Some(n) = NEXT.get(me) {
        if n.load(Ordering::Relaxed) <= now {
            n.store(now + l.period, Ordering::Relaxed);
        }
    }
    #[cfg(feature = "fault-inject")]
    crate::fault_inject::on_tick();
    crate::console::poll();
    let mut stamps = [0u64; MAX_CPUS];
    let cpus = usize::from(crate::config::CONFIG.platform.cpus).min(MAX_CPUS);
    for (s, a) in stamps.iter_mut().zip(&STAMP).take(cpus) {
        *s = a.load(Ordering::Relaxed);
    }
    let Some(peer) = watched_by(me, &stamps[..cpus]) else {
        return;
    };
    // Re-read the counter after the stamps: a stamp newer than `now` must
    // never look like an old one.
    if let Some(age) = silent_for(time::ticks(), stamps[peer], &l) {
        crate::system::enter_safe(format_args!(
            "core {peer} stopped responding: no sign of life for {} ms (seen by core {me}; the bound is {} ms)",
            age * 1000 / time::freq(),
            l.bound() * 1000 / time::freq()
        ));
    }
}
