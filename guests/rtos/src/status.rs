//! The once-per-second status line and a fixed-size text buffer.

use core::fmt;

use crate::infusion::PumpState;
use septum_abi::channel::telemetry::{PumpState as TmState, Telemetry};

/// Fields of `rtos: heartbeat ...`; the format is parsed by the integration
/// tests and by people, so it changes only together with docs/rtos.md.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusLine {
    pub heartbeat: u64,
    pub uptime_ms: u64,
    pub cycles: u64,
    pub misses: u64,
    pub jitter_max_us: u64,
    pub jitter_mean_us: u64,
    pub dose_ul: u64,
    pub rate_x100: i64,
    pub alarms: u32,
}

impl fmt::Display for StatusLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rtos: heartbeat {} guest_time={}.{:03}s cycles={} misses={} jitter_us=max:{} mean:{} dose_ul={} rate={} alarms={}",
            self.heartbeat,
            self.uptime_ms / 1000,
            self.uptime_ms % 1000,
            self.cycles,
            self.misses,
            self.jitter_max_us,
            self.jitter_mean_us,
            self.dose_ul,
            self.rate_x100,
            self.alarms
        )
    }
}

impl StatusLine {
    /// The same figures as the telemetry channel's record (docs/channels.md),
    /// with the pump's state: what Linux's status page shows.
    pub fn telemetry(&self, state: PumpState, occlusions: u32) -> Telemetry {
        Telemetry {
            heartbeat: self.heartbeat,
            uptime_ms: self.uptime_ms,
            cycles: self.cycles,
            misses: self.misses,
            jitter_max_us: sat32(self.jitter_max_us),
            jitter_mean_us: sat32(self.jitter_mean_us),
            dose_ul: self.dose_ul,
            rate_x100: self
                .rate_x100
                .clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            state: match state {
                PumpState::Infusing => TmState::Infusing,
                PumpState::OcclusionAlarm => TmState::OcclusionAlarm,
                PumpState::Stopped => TmState::Stopped,
                PumpState::Paused => TmState::Paused,
            },
            alarms: self.alarms,
            occlusions,
            // The requests task's figures; the status task fills them in.
            ..Telemetry::default()
        }
    }
}

fn sat32(x: u64) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// Longest possible status line (every field at its maximum), bytes.
pub const STATUS_LINE_MAX: usize = 320;

/// A `fmt::Write` sink into a fixed array; text that does not fit is cut
/// off (and flagged) instead of failing, so formatting can never abort a job.
#[derive(Debug)]
pub struct LineBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> LineBuf<N> {
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            truncated: false,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn truncated(&self) -> bool {
        self.truncated
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.truncated = false;
    }
}

impl<const N: usize> Default for LineBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for LineBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            self.truncated = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn status_line_format() {
        let s = StatusLine {
            heartbeat: 3,
            uptime_ms: 3000,
            cycles: 2999,
            misses: 0,
            jitter_max_us: 41,
            jitter_mean_us: 7,
            dose_ul: 4,
            rate_x100: 500,
            alarms: 0,
        };
        let mut b = LineBuf::<160>::new();
        write!(b, "{s}").unwrap();
        assert_eq!(
            core::str::from_utf8(b.as_bytes()).unwrap(),
            "rtos: heartbeat 3 guest_time=3.000s cycles=2999 misses=0 jitter_us=max:41 mean:7 dose_ul=4 rate=500 alarms=0"
        );
        assert!(!b.truncated());
    }

    #[test]
    fn worst_case_status_line_fits_the_task_buffer() {
        let s = StatusLine {
            heartbeat: u64::MAX,
            uptime_ms: u64::MAX,
            cycles: u64::MAX,
            misses: u64::MAX,
            jitter_max_us: u64::MAX,
            jitter_mean_us: u64::MAX,
            dose_ul: u64::MAX,
            rate_x100: i64::MIN,
            alarms: u32::MAX,
        };
        let mut b = LineBuf::<STATUS_LINE_MAX>::new();
        write!(b, "{s}").unwrap();
        assert!(!b.truncated());
    }

    /// REQ-CHN-2: the telemetry record carries the status line's figures.
    #[test]
    fn telemetry_carries_the_status_line() {
        let s = StatusLine {
            heartbeat: 3,
            uptime_ms: 3000,
            cycles: 2999,
            misses: 1,
            jitter_max_us: 41,
            jitter_mean_us: 7,
            dose_ul: 4,
            rate_x100: 500,
            alarms: 2,
        };
        let t = s.telemetry(PumpState::OcclusionAlarm, 1);
        assert_eq!(
            (t.heartbeat, t.uptime_ms, t.cycles, t.misses, t.dose_ul),
            (3, 3000, 2999, 1, 4)
        );
        assert_eq!(
            (t.jitter_max_us, t.jitter_mean_us, t.rate_x100),
            (41, 7, 500)
        );
        assert_eq!(
            (t.state, t.alarms, t.occlusions),
            (TmState::OcclusionAlarm, 2, 1)
        );
        // Out-of-range figures saturate rather than wrap.
        let big = StatusLine {
            jitter_max_us: u64::MAX,
            rate_x100: i64::MIN,
            ..s
        };
        let t = big.telemetry(PumpState::Stopped, 0);
        assert_eq!((t.jitter_max_us, t.rate_x100), (u32::MAX, i32::MIN));
        assert_eq!(t.state, TmState::Stopped);
    }

    #[test]
    fn linebuf_truncates_without_error() {
        let mut b = LineBuf::<4>::new();
        assert!(write!(b, "abcdef").is_ok());
        assert_eq!(b.as_bytes(), b"abcd");
        assert!(b.truncated());
        b.clear();
        assert!(b.as_bytes().is_empty());
    }
}
