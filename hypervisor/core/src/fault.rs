//! Fault -> action: what the hypervisor does about a partition's fault,
//! and how often it may restart one.
//!
//! The decisions are pure functions of the partition's configured policy
//! and what happened ([`action`], [`injection`], [`after_refused_restart`]);
//! `hypervisor/src/exit.rs` and `lifecycle.rs` carry them out.
//!
//! A partition that faults again right after each restart must not keep a
//! core busy forever: at most `max` restarts are allowed within any sliding
//! window of `window_ms` milliseconds ([`RestartBudget`]); after that, the
//! caller stops it.

use crate::config::{Criticality, FaultAction, FaultPolicy};
use crate::inject::Injection;

/// What went wrong, for the policy and the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Stage-2 fault: memory or a device the partition was not given.
    AccessViolation,
    /// An instruction or register the partition may not use.
    IllegalInstruction,
    SystemReset,
    SystemOff,
    /// Its watchdog expired.
    Watchdog,
}

/// The configured action for `fault`. A watchdog cannot be answered with an
/// injected abort (no instruction to abort): its `inject-abort` restarts.
pub const fn action(policy: &FaultPolicy, fault: Fault) -> FaultAction {
    match fault {
        Fault::AccessViolation => policy.access_violation,
        Fault::IllegalInstruction => policy.illegal_instruction,
        Fault::SystemReset => policy.system_reset,
        Fault::SystemOff => policy.system_off,
        Fault::Watchdog => match policy.watchdog {
            FaultAction::InjectAbort => FaultAction::Restart,
            a => a,
        },
    }
}

/// The exception an `inject-abort` action gives the guest: an instruction
/// abort for a fetch, a data abort for another access violation (both at
/// `far`), an undefined instruction for everything else.
pub const fn injection(fault: Fault, instruction_fetch: bool, far: u64) -> Injection {
    match fault {
        Fault::AccessViolation if instruction_fetch => Injection::InstructionAbort { far },
        Fault::AccessViolation => Injection::DataAbort { far },
        _ => Injection::Undefined,
    }
}

/// What follows a restart that cannot happen (budget spent, images that no
/// longer verify, a reload that failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The partition stays stopped; the others run on.
    Stop,
    /// The critical function cannot go on: the whole system's safe state.
    SafeState,
}

pub const fn after_refused_restart(criticality: Criticality) -> Refused {
    match criticality {
        Criticality::Critical => Refused::SafeState,
        _ => Refused::Stop,
    }
}

/// Most restarts a budget can track; larger `max` values are clamped to it.
/// (The configuration validator should keep `max_restarts` within it.)
pub const RESTART_BUDGET_CAPACITY: usize = 16;

/// A sliding-window restart counter over a fixed ring of timestamps.
#[derive(Clone, Debug)]
pub struct RestartBudget {
    /// Times (ms) of the restarts still inside the window, oldest first
    /// starting at `head`.
    stamps: [u64; RESTART_BUDGET_CAPACITY],
    head: usize,
    len: usize,
    max: usize,
    window_ms: u64,
}

impl RestartBudget {
    /// At most `max` restarts in any window of `window_ms` milliseconds.
    ///
    /// `max = 0` allows none. `window_ms = 0` means no window at all: `max`
    /// restarts over the system's lifetime (the safe reading of a
    /// configuration that leaves the window empty). `max` is clamped to
    /// [`RESTART_BUDGET_CAPACITY`].
    pub const fn new(max: u32, window_ms: u32) -> Self {
        let max = if max as usize > RESTART_BUDGET_CAPACITY {
            RESTART_BUDGET_CAPACITY
        } else {
            max as usize
        };
        Self {
            stamps: [0; RESTART_BUDGET_CAPACITY],
            head: 0,
            len: 0,
            max,
            window_ms: window_ms as u64,
        }
    }

    /// The (clamped) number of restarts allowed per window.
    pub const fn max(&self) -> u32 {
        self.max as u32
    }

    /// Drops restarts that are `window_ms` or more in the past. Timestamps
    /// after `now_ms` (a clock that went backwards) are kept: when in doubt,
    /// count the restart.
    fn expire(&mut self, now_ms: u64) {
        if self.window_ms == 0 {
            return;
        }
        while self.len > 0 {
            let t = self.stamps[self.head];
            // `now < t` (a clock that went backwards) keeps the entry.
            let expired = matches!(now_ms.checked_sub(t), Some(age) if age >= self.window_ms);
            if expired {
                self.head = (self.head + 1) % RESTART_BUDGET_CAPACITY;
                self.len -= 1;
            } else {
                break;
            }
        }
    }

    /// Restarts counted in the window ending at `now_ms`.
    pub fn used(&mut self, now_ms: u64) -> u32 {
        self.expire(now_ms);
        self.len as u32
    }

    /// Records a restart at `now_ms` and returns `true` if the budget allows
    /// it; returns `false` (recording nothing) when it is spent.
    pub fn try_consume(&mut self, now_ms: u64) -> bool {
        self.expire(now_ms);
        if self.len >= self.max {
            return false;
        }
        let slot = (self.head + self.len) % RESTART_BUDGET_CAPACITY;
        self.stamps[slot] = now_ms;
        self.len += 1;
        true
    }

    /// Forgets every recorded restart.
    pub fn reset(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(a: FaultAction) -> FaultPolicy {
        FaultPolicy {
            access_violation: a,
            illegal_instruction: FaultAction::Stop,
            system_reset: FaultAction::Restart,
            system_off: FaultAction::SafeState,
            watchdog: a,
            max_restarts: 3,
            restart_window_ms: 1000,
        }
    }

    #[test]
    fn each_fault_takes_its_configured_action() {
        let p = policy(FaultAction::InjectAbort);
        assert_eq!(action(&p, Fault::AccessViolation), FaultAction::InjectAbort);
        assert_eq!(action(&p, Fault::IllegalInstruction), FaultAction::Stop);
        assert_eq!(action(&p, Fault::SystemReset), FaultAction::Restart);
        assert_eq!(action(&p, Fault::SystemOff), FaultAction::SafeState);
        // Nothing to abort on a watchdog expiry: inject-abort restarts.
        assert_eq!(action(&p, Fault::Watchdog), FaultAction::Restart);
        for a in [
            FaultAction::Stop,
            FaultAction::Restart,
            FaultAction::SafeState,
        ] {
            assert_eq!(action(&policy(a), Fault::Watchdog), a);
            assert_eq!(action(&policy(a), Fault::AccessViolation), a);
        }
    }

    #[test]
    fn injected_exception_matches_the_fault() {
        assert_eq!(
            injection(Fault::AccessViolation, false, 0x1234),
            Injection::DataAbort { far: 0x1234 }
        );
        assert_eq!(
            injection(Fault::AccessViolation, true, 0x1234),
            Injection::InstructionAbort { far: 0x1234 }
        );
        for f in [
            Fault::IllegalInstruction,
            Fault::SystemReset,
            Fault::SystemOff,
            Fault::Watchdog,
        ] {
            assert_eq!(injection(f, true, 1), Injection::Undefined);
        }
    }

    #[test]
    fn a_refused_restart_is_the_safe_state_only_for_the_critical_partition() {
        assert_eq!(
            after_refused_restart(Criticality::Critical),
            Refused::SafeState
        );
        assert_eq!(
            after_refused_restart(Criticality::NonCritical),
            Refused::Stop
        );
    }

    /// REQ-FLT-1: restarts are bounded by the budget.
    #[test]
    fn allows_max_then_refuses_within_window() {
        let mut b = RestartBudget::new(3, 1000);
        assert!(b.try_consume(0));
        assert!(b.try_consume(10));
        assert!(b.try_consume(20));
        assert!(!b.try_consume(30));
        assert!(!b.try_consume(999));
        assert_eq!(b.used(999), 3);
    }

    /// REQ-FLT-1: the restart budget is a sliding window.
    #[test]
    fn window_slides() {
        let mut b = RestartBudget::new(2, 1000);
        assert!(b.try_consume(100));
        assert!(b.try_consume(500));
        assert!(
            !b.try_consume(1099),
            "the restart at 100 is still inside (100 + 1000 > 1099)"
        );
        assert!(
            b.try_consume(1100),
            "exactly one window later it has expired"
        );
        assert!(!b.try_consume(1499));
        assert!(b.try_consume(1500));
        assert_eq!(b.used(1500), 2);
        assert_eq!(b.used(10_000), 0);
    }

    #[test]
    fn refusals_are_not_recorded() {
        let mut b = RestartBudget::new(1, 100);
        assert!(b.try_consume(0));
        for t in 1..100 {
            assert!(!b.try_consume(t));
        }
        assert!(
            b.try_consume(100),
            "refused attempts must not extend the window"
        );
    }

    #[test]
    fn zero_max_allows_nothing() {
        let mut b = RestartBudget::new(0, 1000);
        assert!(!b.try_consume(0));
        assert!(!b.try_consume(u64::MAX));
    }

    #[test]
    fn zero_window_is_a_lifetime_budget() {
        let mut b = RestartBudget::new(2, 0);
        assert!(b.try_consume(0));
        assert!(b.try_consume(1_000_000));
        assert!(!b.try_consume(u64::MAX));
    }

    #[test]
    fn ring_wraps_many_times() {
        let mut b = RestartBudget::new(RESTART_BUDGET_CAPACITY as u32, 10);
        let mut now = 0;
        for _ in 0..50 {
            for _ in 0..RESTART_BUDGET_CAPACITY {
                assert!(b.try_consume(now));
            }
            assert!(!b.try_consume(now));
            now += 10;
        }
    }

    #[test]
    fn max_is_clamped() {
        let mut b = RestartBudget::new(1000, 1000);
        assert_eq!(b.max(), RESTART_BUDGET_CAPACITY as u32);
        for i in 0..RESTART_BUDGET_CAPACITY as u64 {
            assert!(b.try_consume(i));
        }
        assert!(!b.try_consume(100));
    }

    #[test]
    fn clock_going_backwards_still_counts() {
        let mut b = RestartBudget::new(2, 100);
        assert!(b.try_consume(1000));
        assert!(b.try_consume(5)); // earlier than the first: kept
        assert!(!b.try_consume(6));
        // Near u64::MAX the window arithmetic neither wraps nor saturates.
        let mut b = RestartBudget::new(1, 100);
        assert!(b.try_consume(u64::MAX - 10));
        assert!(!b.try_consume(u64::MAX));
    }

    #[test]
    fn reset_forgets() {
        let mut b = RestartBudget::new(1, 1000);
        assert!(b.try_consume(0));
        b.reset();
        assert!(b.try_consume(1));
    }
}
