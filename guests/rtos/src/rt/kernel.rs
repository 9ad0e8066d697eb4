//! The scheduler glue: task table, the timer interrupt and the dispatcher.
//!
//! Jobs run to completion on the single stack, nested like interrupts: the
//! timer IRQ releases due tasks, re-arms the timer for the next release
//! (tickless), ends the interrupt and then runs, with IRQs unmasked, every
//! pending job whose priority is above the level it interrupted. A release of
//! a more urgent task during such a job takes a new IRQ, which runs that job
//! on top and returns. The current level is restored as jobs complete.

use core::sync::atomic::{AtomicU32, Ordering};

use septum_rtos::sched::{
    Job, MissEvent, Priority, Scheduler, TaskConfig, TaskStats, IDLE_PRIORITY,
};
use septum_rtos::time::Clock;

use super::sync::IrqCell;
use super::{cpu, tasks, timer};

pub const CONTROL: usize = 0;
pub const SUPERVISOR: usize = 1;
pub const STATUS: usize = 2;
pub const REQUESTS: usize = 3;
const NTASKS: usize = 4;

pub const TASKS: [TaskConfig; NTASKS] = [
    TaskConfig {
        name: "control",
        period_us: 1_000,
        deadline_us: 500,
        priority: 4,
    },
    TaskConfig {
        name: "supervisor",
        period_us: 10_000,
        deadline_us: 10_000,
        priority: 3,
    },
    TaskConfig {
        name: "status",
        period_us: 1_000_000,
        deadline_us: 1_000_000,
        priority: 2,
    },
    // Therapy requests from Linux: at most one signature check a job
    // (about 550,000 instructions), below everything else.
    TaskConfig {
        name: "requests",
        period_us: 250_000,
        deadline_us: 250_000,
        priority: 1,
    },
];

/// Job functions, indexed like `TASKS`.
const JOBS: [fn(&Job); NTASKS] = [
    tasks::control_job,
    tasks::supervisor_job,
    tasks::status_job,
    tasks::requests_job,
];
const _: () = assert!(CONTROL == 0 && SUPERVISOR == 1 && STATUS == 2 && REQUESTS == 3);

struct Kernel {
    sched: Option<Scheduler<NTASKS>>,
    /// Priority of the job currently executing (IDLE when none).
    current: Priority,
    clock: Option<Clock>,
    start: u64,
}

static KERNEL: IrqCell<Kernel> = IrqCell::new(Kernel {
    sched: None,
    current: IDLE_PRIORITY,
    clock: None,
    start: 0,
});
static UNEXPECTED_IRQS: AtomicU32 = AtomicU32::new(0);

/// What the status task reports.
#[derive(Clone, Copy, Debug)]
pub struct KernelStats {
    pub clock: Clock,
    pub start: u64,
    pub total_misses: u64,
    pub last_miss: Option<MissEvent>,
    pub control: TaskStats,
    /// Every task's statistics, indexed like `TASKS`.
    #[cfg_attr(not(feature = "verbose-stats"), allow(dead_code))]
    pub all: [TaskStats; NTASKS],
}

pub fn start(clock: Clock) -> ! {
    let now = timer::now();
    let sched = match Scheduler::new(&TASKS, clock, now) {
        Ok(s) => s,
        Err(e) => {
            crate::println!("rtos: task table: {e:?}");
            super::fatal("invalid task table")
        }
    };
    let first = sched.next_release().unwrap_or(u64::MAX);
    KERNEL.with(|k| {
        k.sched = Some(sched);
        k.clock = Some(clock);
        k.start = now;
    });
    crate::println!(
        "rtos: control loop running at {} Hz",
        1_000_000 / TASKS[CONTROL].period_us
    );
    timer::arm(first);
    timer::pace_next();
    // SAFETY: no critical section is open; from here on the idle loop is
    // the lowest level and all work happens in the timer IRQ.
    unsafe { cpu::enable_irqs() };
    loop {
        cpu::wfi();
    }
}

/// Timer IRQ: release what is due and program the next release.
pub fn on_timer() {
    KERNEL.with(|k| {
        let Some(s) = k.sched.as_mut() else { return };
        s.release_due(timer::now());
        match s.next_release() {
            Some(t) => timer::arm(t),
            None => timer::disarm(),
        }
    });
}

/// Runs pending jobs above the interrupted level, most urgent first.
/// Called from the IRQ handler with IRQs masked; returns with them masked.
pub fn dispatch() {
    loop {
        let next = KERNEL.with(|k| {
            let prev = k.current;
            let s = k.sched.as_mut()?;
            let i = s.pick(prev)?;
            let job = s.start(i, timer::now())?;
            #[cfg(feature = "bench")]
            if i == CONTROL {
                super::bench::control_start(job.release, job.start);
            }
            k.current = s.priority(i);
            Some((job, prev))
        });
        let Some((job, prev)) = next else { break };
        // SAFETY: no critical section is open here (`with` has returned);
        // the interrupted context's state is saved on the stack by the vector.
        unsafe { cpu::enable_irqs() };
        JOBS[job.task](&job);
        cpu::disable_irqs();
        KERNEL.with(|k| {
            if let Some(s) = k.sched.as_mut() {
                s.finish(job.task, timer::now());
            }
            k.current = prev;
        });
        timer::pace_next();
    }
}

pub fn stats() -> Option<KernelStats> {
    KERNEL.with(|k| {
        let s = k.sched.as_ref()?;
        Some(KernelStats {
            clock: k.clock?,
            start: k.start,
            total_misses: s.total_misses(),
            last_miss: s.last_miss(),
            control: s.stats(CONTROL),
            all: core::array::from_fn(|i| s.stats(i)),
        })
    })
}

/// Stops all future releases of `task`.
#[cfg_attr(not(feature = "fault-test-stop-heartbeat"), allow(dead_code))]
pub fn suspend(task: usize) {
    KERNEL.with(|k| {
        if let Some(s) = k.sched.as_mut() {
            s.suspend(task);
        }
    });
}

pub fn note_unexpected_irq() {
    UNEXPECTED_IRQS.fetch_add(1, Ordering::Relaxed);
}
