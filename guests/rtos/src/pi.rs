//! Proportional-integral controller with output clamping and anti-windup.

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PiGains {
    pub kp: f32,
    /// Integral gain per second.
    pub ki: f32,
    pub out_min: f32,
    pub out_max: f32,
}

#[derive(Clone, Debug)]
pub struct PiController {
    gains: PiGains,
    integral: f32,
}

impl PiController {
    pub const fn new(gains: PiGains) -> Self {
        Self {
            gains,
            integral: 0.0,
        }
    }

    /// One controller step; `bias` is a feed-forward term added before clamping.
    pub fn update(&mut self, setpoint: f32, measured: f32, bias: f32, dt_s: f32) -> f32 {
        let g = &self.gains;
        let error = setpoint - measured;
        let candidate = self.integral + g.ki * error * dt_s;
        let unclamped = bias + g.kp * error + candidate;
        // Conditional integration: while saturated, only let the integrator
        // move back toward the linear range, so a long saturation (e.g. an
        // occluded line) does not wind it up.
        let out = if unclamped > g.out_max {
            if error < 0.0 {
                self.integral = candidate;
            }
            g.out_max
        } else if unclamped < g.out_min {
            if error > 0.0 {
                self.integral = candidate;
            }
            g.out_min
        } else {
            self.integral = candidate;
            unclamped
        };
        bound(out, g.out_min, g.out_max)
    }

    pub fn reset(&mut self) {
        self.integral = 0.0;
    }

    pub fn integral(&self) -> f32 {
        self.integral
    }
}

/// `v` limited to `lo..=hi`, NaN to `lo`. Unlike `f32::clamp` it cannot
/// panic (on `lo > hi` or a NaN bound), so the control path carries no
/// panic message and none of core's float formatting, about 12 KiB the
/// boot measurement would hash before the therapy starts.
pub fn bound(v: f32, lo: f32, hi: f32) -> f32 {
    v.max(lo).min(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: PiGains = PiGains {
        kp: 0.5,
        ki: 2.0,
        out_min: 0.0,
        out_max: 1.0,
    };

    #[test]
    fn proportional_and_integral_terms() {
        let mut pi = PiController::new(G);
        let u = pi.update(1.0, 0.8, 0.0, 0.1);
        // 0.5*0.2 + 2*0.2*0.1 = 0.14
        assert!((u - 0.14).abs() < 1e-6);
        assert!((pi.integral() - 0.04).abs() < 1e-6);
    }

    #[test]
    fn output_is_clamped() {
        let mut pi = PiController::new(G);
        assert_eq!(pi.update(100.0, 0.0, 0.0, 0.001), 1.0);
        assert_eq!(pi.update(-100.0, 0.0, 0.0, 0.001), 0.0);
    }

    #[test]
    fn no_windup_while_saturated() {
        let mut pi = PiController::new(G);
        for _ in 0..10_000 {
            pi.update(100.0, 0.0, 0.0, 0.001);
        }
        // Saturated from the first step: the integrator must not have grown.
        assert_eq!(pi.integral(), 0.0);
        // Error reversal leaves saturation immediately.
        assert!(pi.update(0.0, 0.5, 0.0, 0.001) < 1.0);
    }

    #[test]
    fn bound_limits_and_never_panics() {
        assert_eq!(bound(2.0, 0.0, 1.0), 1.0);
        assert_eq!(bound(-2.0, 0.0, 1.0), 0.0);
        assert_eq!(bound(0.5, 0.0, 1.0), 0.5);
        assert_eq!(bound(f32::NAN, 0.0, 1.0), 0.0);
        assert_eq!(bound(0.5, 1.0, 0.0), 0.0);
    }

    #[test]
    fn reset_clears_integral() {
        let mut pi = PiController::new(G);
        pi.update(1.0, 0.9, 0.0, 0.1);
        pi.reset();
        assert_eq!(pi.integral(), 0.0);
    }
}
