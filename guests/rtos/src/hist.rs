//! A fixed-size histogram of tick counts, for the benchmark build
//! (docs/performance.md): one bucket per tick below `N`, exact order
//! statistics there, and the largest sample kept beyond.

#[derive(Clone, Debug)]
pub struct Histogram<const N: usize> {
    buckets: [u32; N],
    over: u64,
    count: u64,
    min: u64,
    max: u64,
}

/// min, median, 99th percentile, max (ticks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub count: u64,
    pub min: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Histogram<N> {
    pub const fn new() -> Self {
        Histogram {
            buckets: [0; N],
            over: 0,
            count: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    pub fn record(&mut self, ticks: u64) {
        match self.buckets.get_mut(ticks as usize) {
            Some(b) => *b = b.saturating_add(1),
            None => self.over += 1,
        }
        self.count += 1;
        self.min = self.min.min(ticks);
        self.max = self.max.max(ticks);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The smallest value with at least `q` (per mille) of the samples at
    /// or below it; samples beyond the buckets count as `max`.
    fn quantile(&self, per_mille: u64) -> u64 {
        let want = (self.count * per_mille).div_ceil(1000).max(1);
        let mut seen = 0u64;
        for (v, &c) in self.buckets.iter().enumerate() {
            seen += c as u64;
            if seen >= want {
                return v as u64;
            }
        }
        self.max
    }

    pub fn summary(&self) -> Option<Summary> {
        (self.count > 0).then(|| Summary {
            count: self.count,
            min: self.min,
            p50: self.quantile(500),
            p99: self.quantile(990),
            max: self.max,
        })
    }

    /// Non-empty buckets as (ticks, count), then (N, samples beyond).
    pub fn nonzero(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(v, &c)| (v as u64, c as u64))
            .chain((self.over > 0).then_some((N as u64, self.over)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_statistics() {
        let mut h = Histogram::<100>::new();
        assert_eq!(h.summary(), None);
        for v in 1..=100u64 {
            h.record(v % 100); // 0..=99, each once
        }
        let s = h.summary().unwrap();
        assert_eq!((s.count, s.min, s.p50, s.p99, s.max), (100, 0, 49, 98, 99));
        h.record(5_000);
        let s = h.summary().unwrap();
        assert_eq!(s.max, 5_000);
        assert_eq!(h.nonzero().last(), Some((100, 1)));
    }

    #[test]
    fn all_beyond() {
        let mut h = Histogram::<4>::new();
        h.record(10);
        h.record(20);
        let s = h.summary().unwrap();
        assert_eq!((s.min, s.p50, s.p99, s.max), (10, 20, 20, 20));
    }
}
