//! Deterministic pseudo-random numbers for the simulated sensors.

/// xorshift32 (Marsaglia): tiny, fast, reproducible across runs and hosts,
/// which keeps the simulated sensor noise identical natively, under the
/// hypervisor and in host tests.
#[derive(Clone, Debug)]
pub struct XorShift32 {
    state: u32,
}

impl XorShift32 {
    /// A zero seed would lock the generator at zero; it is replaced.
    pub const fn new(seed: u32) -> Self {
        Self {
            state: if seed == 0 { 0x9E37_79B9 } else { seed },
        }
    }

    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        x
    }

    /// Uniform noise in [-1, 1).
    pub fn noise(&mut self) -> f32 {
        // The top 24 bits convert to f32 exactly.
        let u = (self.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
        2.0 * u - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_deterministic() {
        let mut a = XorShift32::new(42);
        let mut b = XorShift32::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u32(), b.next_u32());
        }
    }

    #[test]
    fn zero_seed_does_not_stick() {
        let mut r = XorShift32::new(0);
        assert_ne!(r.next_u32(), 0);
    }

    #[test]
    fn noise_is_bounded_and_roughly_centred() {
        let mut r = XorShift32::new(7);
        let mut sum = 0.0f64;
        for _ in 0..100_000 {
            let n = r.noise();
            assert!((-1.0..1.0).contains(&n));
            sum += f64::from(n);
        }
        assert!((sum / 100_000.0).abs() < 0.01);
    }
}
