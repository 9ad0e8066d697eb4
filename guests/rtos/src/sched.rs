//! Fixed-priority preemptive scheduling of periodic tasks: the bookkeeping
//! half. It decides what is released, what runs next and what missed its
//! deadline; it never touches hardware and takes time as plain tick values.
//!
//! Policy:
//! - task `i` is released at `start + period * k` for k = 1, 2, ...;
//! - at most one job per task is in flight (pending or running); a release
//!   that finds the previous job unfinished is dropped and counted as a miss
//!   (that job never runs, so it cannot meet its deadline);
//! - a job that completes after `release + deadline` is counted as a miss;
//! - each nominal release is therefore counted at most once.
//! - deadlines must not exceed periods (checked), which is what makes the
//!   previous job of a dropped release already late.

use crate::stats::JitterStats;
use crate::time::Clock;

/// Larger is more urgent. 0 is the idle level (no job running).
pub type Priority = u8;
pub const IDLE_PRIORITY: Priority = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskConfig {
    pub name: &'static str,
    pub period_us: u64,
    pub deadline_us: u64,
    pub priority: Priority,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Period shorter than one counter tick.
    ZeroPeriod(usize),
    /// Deadline zero or longer than the period.
    BadDeadline(usize),
    /// Priority 0 is reserved for idle.
    IdlePriority(usize),
    /// Two tasks share a priority; ties would make the order arbitrary.
    DuplicatePriority(usize, usize),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskStats {
    pub released: u64,
    pub completed: u64,
    /// Late completions plus dropped releases.
    pub misses: u64,
    /// Releases dropped because the previous job was unfinished.
    pub dropped: u64,
    /// Start time minus nominal release time, ticks.
    pub jitter: JitterStats,
    /// Worst completion time minus nominal release time, ticks.
    pub max_response: u64,
}

/// The most recent deadline miss, kept so the status report can say which
/// task missed, when, and how (a miss must be explainable, not just counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissEvent {
    pub task: usize,
    /// Nominal release time of the (latest) missed job, ticks.
    pub release: u64,
    pub kind: MissKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissKind {
    /// `n` releases dropped because the timer interrupt came this late
    /// or the previous job was still in flight.
    Dropped(u64),
    /// Completed `response` ticks after its release, past its deadline.
    Late { response: u64 },
}

/// A job handed to the dispatcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    pub task: usize,
    /// Nominal release time, ticks.
    pub release: u64,
    pub start: u64,
}

#[derive(Clone, Copy, Debug)]
struct TaskState {
    period: u64,
    deadline: u64,
    priority: Priority,
    next_release: u64,
    pending: Option<u64>,
    running: Option<u64>,
    suspended: bool,
    stats: TaskStats,
}

#[derive(Clone, Debug)]
pub struct Scheduler<const N: usize> {
    tasks: [TaskState; N],
    last_miss: Option<MissEvent>,
}

impl<const N: usize> Scheduler<N> {
    /// Validates the table and schedules each task's first release one
    /// period after `start`.
    pub fn new(cfg: &[TaskConfig; N], clock: Clock, start: u64) -> Result<Self, ConfigError> {
        for (i, c) in cfg.iter().enumerate() {
            if c.priority == IDLE_PRIORITY {
                return Err(ConfigError::IdlePriority(i));
            }
            if let Some(j) = cfg[..i].iter().position(|o| o.priority == c.priority) {
                return Err(ConfigError::DuplicatePriority(j, i));
            }
        }
        let mut err = None;
        let tasks = core::array::from_fn(|i| {
            let c = &cfg[i];
            let period = clock.us_to_ticks(c.period_us);
            let deadline = clock.us_to_ticks(c.deadline_us);
            if period == 0 {
                err.get_or_insert(ConfigError::ZeroPeriod(i));
            } else if deadline == 0 || deadline > period {
                err.get_or_insert(ConfigError::BadDeadline(i));
            }
            TaskState {
                period,
                deadline,
                priority: c.priority,
                next_release: start.saturating_add(period),
                pending: None,
                running: None,
                suspended: false,
                stats: TaskStats::default(),
            }
        });
        match err {
            Some(e) => Err(e),
            None => Ok(Self {
                tasks,
                last_miss: None,
            }),
        }
    }

    /// Releases every task whose release time has come; returns how many
    /// jobs became pending.
    pub fn release_due(&mut self, now: u64) -> usize {
        let mut released = 0;
        for (i, t) in self.tasks.iter_mut().enumerate() {
            if t.suspended || t.next_release > now {
                continue;
            }
            // Several periods may have passed (e.g. the partition was not
            // scheduled for a while): handle them arithmetically, not one by one.
            let due = (now - t.next_release) / t.period + 1;
            let latest = t.next_release + (due - 1) * t.period;
            t.next_release = latest.saturating_add(t.period);
            t.stats.released += due;
            let mut dropped = due - 1;
            if t.pending.is_some() || t.running.is_some() {
                dropped += 1;
            } else {
                t.pending = Some(latest);
                released += 1;
            }
            t.stats.dropped += dropped;
            t.stats.misses += dropped;
            if dropped > 0 {
                self.last_miss = Some(MissEvent {
                    task: i,
                    release: latest,
                    kind: MissKind::Dropped(dropped),
                });
            }
        }
        released
    }

    /// Earliest future release among active tasks (when to program the timer).
    pub fn next_release(&self) -> Option<u64> {
        self.tasks
            .iter()
            .filter(|t| !t.suspended)
            .map(|t| t.next_release)
            .min()
    }

    /// The most urgent pending job with a priority strictly above `above`.
    pub fn pick(&self, above: Priority) -> Option<usize> {
        self.tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.pending.is_some() && t.priority > above)
            .max_by_key(|(_, t)| t.priority)
            .map(|(i, _)| i)
    }

    /// Marks task `i`'s pending job as running; `None` if it has none.
    pub fn start(&mut self, i: usize, now: u64) -> Option<Job> {
        let t = self.tasks.get_mut(i)?;
        if t.running.is_some() {
            return None;
        }
        let release = t.pending.take()?;
        t.running = Some(release);
        t.stats.jitter.record(now.saturating_sub(release));
        Some(Job {
            task: i,
            release,
            start: now,
        })
    }

    /// Completes task `i`'s running job; `Some(true)` if it met its deadline.
    pub fn finish(&mut self, i: usize, now: u64) -> Option<bool> {
        let t = self.tasks.get_mut(i)?;
        let release = t.running.take()?;
        let response = now.saturating_sub(release);
        t.stats.completed += 1;
        t.stats.max_response = t.stats.max_response.max(response);
        let met = response <= t.deadline;
        if !met {
            t.stats.misses += 1;
            self.last_miss = Some(MissEvent {
                task: i,
                release,
                kind: MissKind::Late { response },
            });
        }
        Some(met)
    }

    /// Stops all future releases of task `i` (a job in flight still finishes).
    pub fn suspend(&mut self, i: usize) {
        if let Some(t) = self.tasks.get_mut(i) {
            t.suspended = true;
            t.pending = None;
        }
    }

    pub fn priority(&self, i: usize) -> Priority {
        self.tasks.get(i).map_or(IDLE_PRIORITY, |t| t.priority)
    }

    pub fn stats(&self, i: usize) -> TaskStats {
        self.tasks.get(i).map(|t| t.stats).unwrap_or_default()
    }

    /// The most recent miss of any task, if there was one.
    pub fn last_miss(&self) -> Option<MissEvent> {
        self.last_miss
    }

    pub fn total_misses(&self) -> u64 {
        self.tasks.iter().map(|t| t.stats.misses).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 1 tick = 1 us keeps the arithmetic readable.
    fn clock() -> Clock {
        Clock::new(1_000_000).unwrap()
    }

    const TASKS: [TaskConfig; 3] = [
        TaskConfig {
            name: "control",
            period_us: 1_000,
            deadline_us: 500,
            priority: 3,
        },
        TaskConfig {
            name: "supervisor",
            period_us: 10_000,
            deadline_us: 10_000,
            priority: 2,
        },
        TaskConfig {
            name: "status",
            period_us: 1_000_000,
            deadline_us: 1_000_000,
            priority: 1,
        },
    ];

    fn sched() -> Scheduler<3> {
        Scheduler::new(&TASKS, clock(), 0).unwrap()
    }

    #[test]
    fn rejects_invalid_tables() {
        let mut t = TASKS;
        t[1].deadline_us = 20_000;
        assert_eq!(
            Scheduler::new(&t, clock(), 0).unwrap_err(),
            ConfigError::BadDeadline(1)
        );
        let mut t = TASKS;
        t[2].priority = 3;
        assert_eq!(
            Scheduler::new(&t, clock(), 0).unwrap_err(),
            ConfigError::DuplicatePriority(0, 2)
        );
        let mut t = TASKS;
        t[0].priority = 0;
        assert_eq!(
            Scheduler::new(&t, clock(), 0).unwrap_err(),
            ConfigError::IdlePriority(0)
        );
        let mut t = TASKS;
        t[0].period_us = 0;
        assert_eq!(
            Scheduler::new(&t, clock(), 0).unwrap_err(),
            ConfigError::ZeroPeriod(0)
        );
    }

    #[test]
    fn first_release_is_one_period_after_start() {
        let mut s = Scheduler::new(&TASKS, clock(), 100).unwrap();
        assert_eq!(s.next_release(), Some(1_100));
        assert_eq!(s.release_due(1_099), 0);
        assert_eq!(s.release_due(1_100), 1);
        assert_eq!(s.next_release(), Some(2_100));
    }

    /// One second of the task set, run on time, at the counter frequency
    /// of QEMU (62.5 MHz), a Pi 4 (54 MHz), the ARMv8.6 one (1 GHz) and a
    /// 19.2 MHz board: 1000 control jobs, 100 supervisor jobs and one
    /// status job, each control release exactly one millisecond apart.
    #[test]
    fn one_kilohertz_at_any_counter_frequency() {
        for hz in [62_500_000u64, 54_000_000, 1_000_000_000, 19_200_000] {
            let c = Clock::new(hz).unwrap();
            let start = 12_345;
            let mut s = Scheduler::new(&TASKS, c, start).unwrap();
            let mut last_control = start;
            while let Some(t) = s.next_release() {
                if t > start + hz {
                    break;
                }
                s.release_due(t);
                while let Some(i) = s.pick(IDLE_PRIORITY) {
                    let job = s.start(i, t).unwrap();
                    if i == 0 {
                        assert_eq!(job.release - last_control, hz / 1_000, "{hz} Hz");
                        last_control = job.release;
                    }
                    assert_eq!(s.finish(i, t), Some(true), "deadline met");
                }
            }
            let done: Vec<u64> = (0..3).map(|i| s.stats(i).completed).collect();
            assert_eq!(done, [1_000, 100, 1], "{hz} Hz");
            assert_eq!(s.total_misses(), 0);
            assert_eq!(c.ticks_to_ms(last_control - start), 1_000);
        }
    }

    #[test]
    fn highest_priority_pending_runs_first() {
        let mut s = sched();
        assert_eq!(s.release_due(10_000), 2); // control and supervisor
        assert_eq!(s.pick(IDLE_PRIORITY), Some(0));
        let job = s.start(0, 10_005).unwrap();
        assert_eq!(job.release, 10_000);
        // While control runs, nothing above its level is ready.
        assert_eq!(s.pick(s.priority(0)), None);
        assert_eq!(s.finish(0, 10_050), Some(true));
        assert_eq!(s.pick(IDLE_PRIORITY), Some(1));
    }

    #[test]
    fn higher_priority_release_preempts_running_job() {
        let mut s = sched();
        // Run the first 999 ms normally.
        for k in 1..1_000u64 {
            s.release_due(k * 1_000);
            while let Some(i) = s.pick(IDLE_PRIORITY) {
                s.start(i, k * 1_000).unwrap();
                s.finish(i, k * 1_000 + 10).unwrap();
            }
        }
        // At 1 s all three are released; status starts last.
        assert_eq!(s.release_due(1_000_000), 3);
        for i in [0, 1] {
            s.start(i, 1_000_000).unwrap();
            s.finish(i, 1_000_010).unwrap();
        }
        s.start(2, 1_000_020).unwrap();
        // Status is running at priority 1 when control is released again.
        s.release_due(1_001_000);
        assert_eq!(s.pick(s.priority(2)), Some(0));
        s.start(0, 1_001_002).unwrap();
        assert_eq!(s.finish(0, 1_001_030), Some(true));
        assert_eq!(s.pick(s.priority(2)), None);
        assert_eq!(s.finish(2, 1_500_000), Some(true));
        assert_eq!(s.total_misses(), 0);
        assert_eq!(s.stats(0).completed, 1_001);
    }

    #[test]
    fn late_completion_is_a_miss() {
        let mut s = sched();
        s.release_due(1_000);
        s.start(0, 1_000).unwrap();
        assert_eq!(s.finish(0, 1_501), Some(false));
        assert_eq!(s.stats(0).misses, 1);
        assert_eq!(s.stats(0).max_response, 501);
        assert_eq!(
            s.last_miss(),
            Some(MissEvent {
                task: 0,
                release: 1_000,
                kind: MissKind::Late { response: 501 }
            })
        );
    }

    #[test]
    fn late_timer_records_the_dropped_releases() {
        let mut s = sched();
        assert_eq!(s.last_miss(), None);
        // The timer interrupt arrives 3.5 periods late: releases at 1000,
        // 2000 and 3000 are dropped, the one at 4000 runs.
        assert_eq!(s.release_due(4_500), 1);
        let m = s.last_miss().unwrap();
        assert_eq!(m.task, 0);
        assert_eq!(m.release, 4_000);
        assert_eq!(m.kind, MissKind::Dropped(3));
    }

    #[test]
    fn release_during_unfinished_job_is_dropped_and_counted_once() {
        let mut s = sched();
        s.release_due(1_000);
        s.start(0, 1_000).unwrap();
        // The job overruns its whole period.
        assert_eq!(s.release_due(2_000), 0);
        assert_eq!(s.stats(0).dropped, 1);
        assert_eq!(s.finish(0, 2_100), Some(false));
        let st = s.stats(0);
        // One miss for the late job, one for the dropped release.
        assert_eq!(st.misses, 2);
        assert_eq!(st.released, 2);
        assert_eq!(st.completed, 1);
        // Nothing left pending from the dropped release.
        assert_eq!(s.pick(IDLE_PRIORITY), None);
    }

    #[test]
    fn pending_unstarted_job_also_blocks_next_release() {
        let mut s = sched();
        s.release_due(1_000);
        s.release_due(2_000);
        assert_eq!(s.stats(0).dropped, 1);
        // The old job is still the one that runs.
        assert_eq!(s.start(0, 2_001).unwrap().release, 1_000);
    }

    #[test]
    fn long_gap_is_counted_arithmetically() {
        let mut s = sched();
        // 10.5 periods of control with nothing handled.
        s.release_due(10_500);
        let st = s.stats(0);
        assert_eq!(st.released, 10);
        assert_eq!(st.dropped, 9);
        // Control next at 11 ms; the supervisor (10 ms) was just released.
        assert_eq!(s.next_release(), Some(11_000));
        assert_eq!(s.start(0, 10_500).unwrap().release, 10_000);
    }

    #[test]
    fn jitter_is_start_minus_release() {
        let mut s = sched();
        for k in 1..=4u64 {
            s.release_due(k * 1_000);
            s.start(0, k * 1_000 + k * 10).unwrap();
            s.finish(0, k * 1_000 + 100).unwrap();
        }
        let j = s.stats(0).jitter;
        assert_eq!((j.min(), j.max(), j.mean(), j.count()), (10, 40, 25, 4));
    }

    #[test]
    fn start_and_finish_reject_bad_requests() {
        let mut s = sched();
        assert_eq!(s.start(0, 0), None); // nothing pending
        assert_eq!(s.finish(0, 0), None); // nothing running
        assert_eq!(s.start(7, 0), None); // no such task
        assert_eq!(s.finish(7, 0), None);
    }

    #[test]
    fn suspended_task_is_never_released_again() {
        let mut s = sched();
        s.suspend(2);
        s.release_due(5_000_000);
        assert_eq!(s.stats(2).released, 0);
        assert_eq!(s.stats(2).misses, 0);
        assert!(s.next_release().unwrap() <= 5_001_000);
    }
}
