//! Conversions between generic-timer ticks and wall-clock units.

/// The frequency of the system counter (CNTFRQ_EL0) with checked conversions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    hz: u64,
}

impl Clock {
    /// `None` for a zero frequency: firmware that forgot to program CNTFRQ
    /// must not make every conversion divide by zero.
    pub const fn new(hz: u64) -> Option<Self> {
        if hz == 0 {
            None
        } else {
            Some(Self { hz })
        }
    }

    pub const fn hz(self) -> u64 {
        self.hz
    }

    /// Ticks to microseconds, rounded down, saturating.
    pub fn ticks_to_us(self, ticks: u64) -> u64 {
        Self::scale(ticks, 1_000_000, self.hz)
    }

    /// Ticks to milliseconds, rounded down, saturating.
    pub fn ticks_to_ms(self, ticks: u64) -> u64 {
        Self::scale(ticks, 1_000, self.hz)
    }

    /// Microseconds to ticks, rounded to nearest, saturating.
    pub fn us_to_ticks(self, us: u64) -> u64 {
        let v = (u128::from(us) * u128::from(self.hz) + 500_000) / 1_000_000;
        u64::try_from(v).unwrap_or(u64::MAX)
    }

    fn scale(v: u64, mul: u64, div: u64) -> u64 {
        // u128 keeps the product exact for every u64 input.
        u64::try_from(u128::from(v) * u128::from(mul) / u128::from(div)).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_frequency_is_rejected() {
        assert!(Clock::new(0).is_none());
    }

    #[test]
    fn qemu_cortex_a72_frequency() {
        let c = Clock::new(62_500_000).unwrap();
        assert_eq!(c.us_to_ticks(1_000), 62_500);
        assert_eq!(c.us_to_ticks(500), 31_250);
        assert_eq!(c.ticks_to_us(62_500), 1_000);
        assert_eq!(c.ticks_to_ms(62_500_000), 1_000);
        assert_eq!(c.ticks_to_us(1), 0);
    }

    #[test]
    fn pi4_frequency_rounds_to_nearest() {
        let c = Clock::new(54_000_000).unwrap();
        assert_eq!(c.us_to_ticks(1_000), 54_000);
        assert_eq!(c.us_to_ticks(500), 27_000);
        assert_eq!(c.us_to_ticks(1), 54);
        assert_eq!(c.ticks_to_us(54), 1);
        assert_eq!(c.ticks_to_us(53), 0);
        assert_eq!(c.ticks_to_ms(54_000_000), 1_000);
        assert_eq!(c.ticks_to_ms(53_999), 0);
    }

    /// The constants the runtime converts at boot (pacing hint, UART
    /// character timeout: 200 µs) at both boards' frequencies.
    #[test]
    fn boot_time_constants() {
        assert_eq!(Clock::new(62_500_000).unwrap().us_to_ticks(200), 12_500);
        assert_eq!(Clock::new(54_000_000).unwrap().us_to_ticks(200), 10_800);
    }

    #[test]
    fn sub_microsecond_rounding_at_odd_frequencies() {
        // 19.2 MHz: 1 µs = 19.2 ticks, rounded to 19; 3 µs = 57.6, to 58.
        let c = Clock::new(19_200_000).unwrap();
        assert_eq!(c.us_to_ticks(1), 19);
        assert_eq!(c.us_to_ticks(3), 58);
        assert_eq!(c.us_to_ticks(1_000), 19_200);
    }

    #[test]
    fn conversions_saturate() {
        let c = Clock::new(1).unwrap();
        assert_eq!(c.ticks_to_us(u64::MAX), u64::MAX);
        let c = Clock::new(u64::MAX).unwrap();
        assert_eq!(c.us_to_ticks(u64::MAX), u64::MAX);
    }
}
