//! Release-jitter statistics.

/// Minimum, maximum and mean of a series of non-negative samples (ticks).
///
/// The mean is the running mean over every sample since start: `sum / count`
/// with a 128-bit sum, so it cannot overflow in any realistic uptime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    count: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl JitterStats {
    pub const fn new() -> Self {
        Self {
            count: 0,
            min: 0,
            max: 0,
            sum: 0,
        }
    }

    pub fn record(&mut self, sample: u64) {
        if self.count == 0 {
            self.min = sample;
            self.max = sample;
        } else {
            self.min = self.min.min(sample);
            self.max = self.max.max(sample);
        }
        self.count = self.count.saturating_add(1);
        self.sum = self.sum.saturating_add(u128::from(sample));
    }

    pub const fn count(&self) -> u64 {
        self.count
    }

    /// Smallest sample, 0 before the first sample.
    pub const fn min(&self) -> u64 {
        self.min
    }

    /// Largest sample, 0 before the first sample.
    pub const fn max(&self) -> u64 {
        self.max
    }

    /// Mean rounded to nearest, 0 before the first sample.
    pub fn mean(&self) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let c = u128::from(self.count);
        u64::try_from((self.sum + c / 2) / c).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stats_are_zero() {
        let s = JitterStats::new();
        assert_eq!((s.count(), s.min(), s.max(), s.mean()), (0, 0, 0, 0));
    }

    #[test]
    fn min_max_mean() {
        let mut s = JitterStats::new();
        for v in [10, 4, 7, 20] {
            s.record(v);
        }
        assert_eq!(s.count(), 4);
        assert_eq!(s.min(), 4);
        assert_eq!(s.max(), 20);
        // 41 / 4 = 10.25 -> 10
        assert_eq!(s.mean(), 10);
    }

    #[test]
    fn first_sample_sets_min() {
        let mut s = JitterStats::new();
        s.record(100);
        assert_eq!(s.min(), 100);
        assert_eq!(s.max(), 100);
    }

    #[test]
    fn huge_samples_do_not_overflow() {
        let mut s = JitterStats::new();
        s.record(u64::MAX);
        s.record(u64::MAX);
        assert_eq!(s.mean(), u64::MAX);
    }
}
