//! The state of the whole system, and which core watches which
//! (docs/fault-containment.md, "The safe state" and "Hung cores").
//!
//! One state for the whole machine, owned by the hypervisor's `system`
//! module: partitions have their own life cycle, but whether any guest may
//! run at all is decided here, and the safe state can be entered from any
//! core and left by none. The decisions are pure functions, tested on the
//! host; the hypervisor keeps the state in one atomic byte.

/// Where the system is.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemState {
    /// Measured boot has not finished: no guest may run.
    Booting = 0,
    /// The manifest and the critical partition verified: guests may run.
    Running = 1,
    /// Final: no guest instruction executes again until the machine is
    /// reset.
    Safe = 2,
}

/// What can happen to the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The boot manifest and every critical partition verified.
    Verified,
    /// Anything that ends in the safe state: a spent restart budget, a
    /// critical partition's power-off, a failed re-verification, a fault in
    /// the hypervisor, a hung core.
    SafeState,
}

impl SystemState {
    /// The state stored as `v`. A value that is no state (memory corrupted)
    /// reads as the safe state.
    pub fn from_u8(v: u8) -> SystemState {
        match v {
            0 => SystemState::Booting,
            1 => SystemState::Running,
            _ => SystemState::Safe,
        }
    }

    /// The state after `e`. No event leaves the safe state.
    pub fn next(self, e: Event) -> SystemState {
        match (self, e) {
            (SystemState::Safe, _) | (_, Event::SafeState) => SystemState::Safe,
            (SystemState::Booting | SystemState::Running, Event::Verified) => SystemState::Running,
        }
    }

    /// Whether a vCPU may be entered (or resumed) now.
    pub fn guests_may_run(self) -> bool {
        self == SystemState::Running
    }
}

/// The liveness check's timing, in counter ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// Each core's EL2 timer fires at least this often and stamps the core.
    pub period: u64,
    /// A core whose stamp is older than this is hung.
    pub timeout: u64,
}

/// Liveness tick period, ms.
pub const LIVENESS_PERIOD_MS: u64 = 10;
/// A core silent this long is hung, ms. A hung core is detected within
/// `LIVENESS_TIMEOUT_MS + LIVENESS_PERIOD_MS` (the watcher's next tick).
pub const LIVENESS_TIMEOUT_MS: u64 = 50;

impl Liveness {
    /// The check for a counter running at `freq` Hz.
    pub fn at(freq: u64) -> Liveness {
        Liveness {
            period: (freq / 1000).max(1) * LIVENESS_PERIOD_MS,
            timeout: (freq / 1000).max(1) * LIVENESS_TIMEOUT_MS,
        }
    }

    /// The longest time from a core's last sign of life to its detection,
    /// in ticks.
    pub fn bound(&self) -> u64 {
        self.timeout + self.period
    }
}

/// The core `me` watches: the next core after it, cyclically, that has
/// stamped at least once (a stamp of 0 means "never started"). With every
/// started core watching the next, each is watched by exactly one other,
/// and a single hung core (watcher or not) is always seen. `None` when `me`
/// is the only started core.
pub fn watched_by(me: usize, stamps: &[u64]) -> Option<usize> {
    let n = stamps.len();
    (1..n).map(|d| (me + d) % n).find(|&c| stamps[c] != 0)
}

/// How long the watched core has been silent, if longer than the timeout.
pub fn silent_for(now: u64, stamp: u64, l: &Liveness) -> Option<u64> {
    let age = now.saturating_sub(stamp);
    (stamp != 0 && age > l.timeout).then_some(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [SystemState; 3] = [
        SystemState::Booting,
        SystemState::Running,
        SystemState::Safe,
    ];
    const EVENTS: [Event; 2] = [Event::Verified, Event::SafeState];

    #[test]
    fn every_transition() {
        use Event::*;
        use SystemState::*;
        assert_eq!(Booting.next(Verified), Running);
        assert_eq!(Booting.next(SafeState), Safe);
        assert_eq!(Running.next(Verified), Running);
        assert_eq!(Running.next(SafeState), Safe);
        assert_eq!(Safe.next(Verified), Safe);
        assert_eq!(Safe.next(SafeState), Safe);
    }

    #[test]
    fn no_sequence_of_events_leaves_the_safe_state() {
        // Every sequence of up to 8 events from the safe state.
        for n in 0..=8u32 {
            for code in 0..(1u32 << n) {
                let mut s = SystemState::Safe;
                for i in 0..n {
                    s = s.next(EVENTS[((code >> i) & 1) as usize]);
                    assert_eq!(s, SystemState::Safe);
                    assert!(!s.guests_may_run());
                }
            }
        }
    }

    #[test]
    fn only_running_lets_guests_run() {
        for s in ALL {
            assert_eq!(s.guests_may_run(), s == SystemState::Running);
        }
    }

    #[test]
    fn stored_bytes_round_trip_and_garbage_is_safe() {
        for s in ALL {
            assert_eq!(SystemState::from_u8(s as u8), s);
        }
        for v in 3..=255u8 {
            assert_eq!(SystemState::from_u8(v), SystemState::Safe);
        }
    }

    #[test]
    fn each_started_core_is_watched_by_exactly_one_other() {
        let stamps = [5, 0, 7, 9, 0, 3];
        let started: Vec<usize> = (0..6).filter(|&c| stamps[c] != 0).collect();
        let watched: Vec<usize> = started
            .iter()
            .map(|&c| watched_by(c, &stamps).unwrap())
            .collect();
        assert_eq!(watched, vec![2, 3, 5, 0]);
        let mut sorted = watched.clone();
        sorted.sort();
        assert_eq!(sorted, started);
        for (&c, &w) in started.iter().zip(&watched) {
            assert_ne!(c, w);
        }
        assert_eq!(watched_by(0, &[1]), None);
        assert_eq!(watched_by(0, &[1, 0, 0]), None);
        assert_eq!(watched_by(1, &[0, 1, 0, 0]), None);
    }

    #[test]
    fn silence_longer_than_the_timeout_is_a_hang() {
        let l = Liveness::at(62_500_000);
        assert_eq!(l.period, 625_000);
        assert_eq!(l.timeout, 3_125_000);
        assert_eq!(l.bound(), 3_750_000); // 60 ms
        assert_eq!(silent_for(10_000_000, 10_000_000 - l.timeout, &l), None);
        assert_eq!(
            silent_for(10_000_000, 10_000_000 - l.timeout - 1, &l),
            Some(l.timeout + 1)
        );
        // A core that never stamped is not hung, and a stamp from the
        // future (a peer's counter read a moment later) is not either.
        assert_eq!(silent_for(u64::MAX, 0, &l), None);
        assert_eq!(silent_for(5, 9, &l), None);
        // The 54 MHz of a Raspberry Pi 4 and a 1 GHz counter.
        assert_eq!(Liveness::at(54_000_000).bound(), 54_000 * 60);
        assert_eq!(Liveness::at(1_000_000_000).timeout, 50_000_000);
    }
}
