//! A fixed-size histogram of tick counts, for the benchmark build
//! (docs/performance.md).
//!
//! Log-linear buckets, so one layout serves a 1 GHz counter (one tick per
//! instruction under `-icount shift=0`) from a few hundred ticks to seconds:
//! one bucket per tick below `2 * SUB` (exact order statistics where the
//! idle figures are), then every power of two split into `SUB` equal
//! buckets, so a reported value is at most 1/`SUB` (0.4 %) below the
//! sample. The minimum and maximum are kept exactly; samples beyond the
//! last bucket count as the maximum.

/// Sub-buckets per power of two (a power of two itself).
const SUB_BITS: u32 = 8;
const SUB: u64 = 1 << SUB_BITS;
/// Powers of two covered above the exact range: up to 2^36 ticks (68 s at
/// 1 GHz).
const OCTAVES: u64 = 27;
/// Number of buckets.
pub const BUCKETS: usize = (2 * SUB + OCTAVES * SUB) as usize;

/// The bucket of `v` (may be past the last one).
fn index(v: u64) -> u64 {
    if v < 2 * SUB {
        return v;
    }
    let k = u64::from(63 - v.leading_zeros()); // 2^k <= v < 2^(k+1), k > SUB_BITS
    let shift = k - u64::from(SUB_BITS);
    let m = v >> shift; // SUB <= m < 2 * SUB
    2 * SUB + (k - u64::from(SUB_BITS) - 1) * SUB + (m - SUB)
}

/// The smallest value in bucket `i` (`i < BUCKETS`).
fn lower_edge(i: u64) -> u64 {
    if i < 2 * SUB {
        return i;
    }
    let octave = (i - 2 * SUB) / SUB; // 0 for [2*SUB, 4*SUB)
    let m = SUB + (i - 2 * SUB) % SUB;
    m << (octave + 1)
}

#[derive(Clone, Debug)]
pub struct Histogram {
    buckets: [u32; BUCKETS],
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

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub const fn new() -> Self {
        Histogram {
            buckets: [0; BUCKETS],
            over: 0,
            count: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    pub fn record(&mut self, ticks: u64) {
        match usize::try_from(index(ticks))
            .ok()
            .and_then(|i| self.buckets.get_mut(i))
        {
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

    /// The smallest bucket value with at least `q` (per mille) of the
    /// samples at or below it, kept within [min, max]; samples beyond the
    /// buckets count as `max`.
    fn quantile(&self, per_mille: u64) -> u64 {
        let want = (self.count * per_mille).div_ceil(1000).max(1);
        let mut seen = 0u64;
        for (i, &c) in self.buckets.iter().enumerate() {
            seen += u64::from(c);
            if seen >= want {
                return lower_edge(i as u64).clamp(self.min, self.max);
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

    /// Non-empty buckets as (lowest value, count), then (the maximum,
    /// samples beyond the last bucket).
    pub fn nonzero(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (lower_edge(i as u64), u64::from(c)))
            .chain((self.over > 0).then_some((self.max, self.over)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_twice_sub() {
        let mut h = Histogram::new();
        assert_eq!(h.summary(), None);
        for v in 1..=100u64 {
            h.record(v % 100); // 0..=99, each once
        }
        let s = h.summary().unwrap();
        assert_eq!((s.count, s.min, s.p50, s.p99, s.max), (100, 0, 49, 98, 99));
        h.record(5_000);
        let s = h.summary().unwrap();
        assert_eq!(s.max, 5_000);
        // 5000 = 0b1001110001000: in [4096, 8192), buckets of 16.
        assert_eq!(h.nonzero().last(), Some((4992, 1)));
    }

    #[test]
    fn buckets_are_contiguous_and_within_a_sub_bucket() {
        // Every bucket's edge maps back to it, edges increase, and a value
        // is never more than 1/SUB above its bucket's edge.
        let mut prev = None;
        for i in 0..BUCKETS as u64 {
            let e = lower_edge(i);
            assert_eq!(index(e), i, "edge of bucket {i}");
            if let Some(p) = prev {
                assert!(e > p);
                assert_eq!(index(e - 1), i - 1, "value below bucket {i}");
            }
            prev = Some(e);
        }
        let mut v = 1u64;
        while v < lower_edge(BUCKETS as u64 - 1) {
            for x in [v, v + 1, v * 3 / 2, v * 2 - 1] {
                let e = lower_edge(index(x));
                assert!(e <= x && (x - e) * SUB <= x, "{x} in bucket from {e}");
            }
            v *= 2;
        }
    }

    #[test]
    fn large_samples_are_summarised_within_precision() {
        let mut h = Histogram::new();
        for v in [50_256u64, 50_256, 50_256, 88_048, 438_768] {
            h.record(v);
        }
        let s = h.summary().unwrap();
        assert_eq!((s.min, s.max), (50_256, 438_768));
        assert!(s.p50 <= 50_256 && (50_256 - s.p50) * SUB <= 50_256);
        assert!(s.p99 <= 438_768 && (438_768 - s.p99) * SUB <= 438_768);
    }

    #[test]
    fn beyond_the_last_bucket_counts_as_the_maximum() {
        let mut h = Histogram::new();
        let far = 1u64 << 40;
        h.record(10);
        h.record(far);
        h.record(far + 7);
        let s = h.summary().unwrap();
        assert_eq!(
            (s.min, s.p50, s.p99, s.max),
            (10, far + 7, far + 7, far + 7)
        );
        assert_eq!(h.nonzero().last(), Some((far + 7, 2)));
        h.record(u64::MAX);
        assert_eq!(h.summary().unwrap().max, u64::MAX);
    }
}
