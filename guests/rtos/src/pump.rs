//! Simulated plant: a syringe-pump motor pushing fluid through an infusion
//! line into the patient, with a flow sensor and a line-pressure sensor.
//!
//! Units: flow in ml/h, pressure in mmHg, time in seconds.
//! Model (explicit Euler, one step per control period):
//! - motor: first-order lag from the commanded fraction of full scale to the
//!   displaced flow `q_motor` (positive displacement: it does not depend on
//!   back-pressure), scaled by a motor gain that is deliberately not 1 so the
//!   controller has a real error to remove;
//! - line: a compliance `C` filled by `q_motor` and drained through the
//!   resistance `R` to the patient: `dP/dt = (q_motor - P/R) / C`,
//!   `q_out = P/R`. An occlusion multiplies `R`.
//! - sensors: `q_out` and `P` plus bounded deterministic noise.

use crate::prng::XorShift32;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PumpParams {
    /// Flow at command 1.0 with a nominal motor, ml/h.
    pub full_scale_ml_h: f32,
    /// Real/nominal motor gain (wear, syringe tolerance).
    pub motor_gain: f32,
    pub motor_tau_s: f32,
    /// Line resistance, mmHg per ml/h.
    pub resistance: f32,
    /// Line compliance, (ml/h) per (mmHg/s).
    pub compliance: f32,
    /// Resistance multiplier while the line is occluded.
    pub occlusion_factor: f32,
    /// Peak flow-sensor noise, ml/h.
    pub flow_noise_ml_h: f32,
    /// Peak pressure-sensor noise, mmHg.
    pub pressure_noise_mmhg: f32,
}

impl PumpParams {
    pub const DEFAULT: Self = Self {
        full_scale_ml_h: 20.0,
        motor_gain: 0.92,
        motor_tau_s: 0.05,
        resistance: 10.0,
        compliance: 0.01,
        occlusion_factor: 200.0,
        flow_noise_ml_h: 0.05,
        pressure_noise_mmhg: 1.0,
    };
}

/// Readings of the simulated sensors for one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SensorReadings {
    pub flow_ml_h: f32,
    pub pressure_mmhg: f32,
}

#[derive(Clone, Debug)]
pub struct PumpSim {
    params: PumpParams,
    q_motor: f32,
    pressure: f32,
    occluded: bool,
    rng: XorShift32,
}

impl PumpSim {
    pub const fn new(params: PumpParams, seed: u32) -> Self {
        Self {
            params,
            q_motor: 0.0,
            pressure: 0.0,
            occluded: false,
            rng: XorShift32::new(seed),
        }
    }

    pub fn set_occluded(&mut self, occluded: bool) {
        self.occluded = occluded;
    }

    /// Advances the plant by `dt_s` with motor command `command` (bounded to
    /// 0..=1, NaN to 0) and returns what the sensors read afterwards.
    pub fn step(&mut self, command: f32, dt_s: f32) -> SensorReadings {
        let p = &self.params;
        let command = crate::pi::bound(command, 0.0, 1.0);
        let target = command * p.full_scale_ml_h * p.motor_gain;
        self.q_motor += (target - self.q_motor) * (dt_s / p.motor_tau_s);
        let r = self.resistance();
        let q_out = self.pressure / r;
        self.pressure += (self.q_motor - q_out) / p.compliance * dt_s;
        if self.pressure < 0.0 {
            self.pressure = 0.0;
        }
        let q_out = self.pressure / r;
        SensorReadings {
            flow_ml_h: (q_out + p.flow_noise_ml_h * self.rng.noise()).max(0.0),
            pressure_mmhg: (self.pressure + p.pressure_noise_mmhg * self.rng.noise()).max(0.0),
        }
    }

    fn resistance(&self) -> f32 {
        if self.occluded {
            self.params.resistance * self.params.occlusion_factor
        } else {
            self.params.resistance
        }
    }

    /// True (noise-free) outflow to the patient, ml/h.
    pub fn true_outflow(&self) -> f32 {
        self.pressure / self.resistance()
    }

    pub fn true_pressure(&self) -> f32 {
        self.pressure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_command_reaches_steady_state() {
        let p = PumpParams::DEFAULT;
        let mut sim = PumpSim::new(p, 1);
        for _ in 0..3_000 {
            sim.step(0.25, 0.001);
        }
        let expected = 0.25 * p.full_scale_ml_h * p.motor_gain;
        assert!((sim.true_outflow() - expected).abs() < 0.01);
        assert!((sim.true_pressure() - expected * p.resistance).abs() < 0.2);
    }

    #[test]
    fn occlusion_builds_pressure() {
        let mut sim = PumpSim::new(PumpParams::DEFAULT, 1);
        for _ in 0..1_000 {
            sim.step(0.25, 0.001);
        }
        let before = sim.true_pressure();
        sim.set_occluded(true);
        for _ in 0..1_000 {
            sim.step(0.25, 0.001);
        }
        assert!(sim.true_pressure() > before + 300.0);
        assert!(sim.true_outflow() < 4.0);
    }

    #[test]
    fn sensors_stay_close_to_truth() {
        let p = PumpParams::DEFAULT;
        let mut sim = PumpSim::new(p, 3);
        for _ in 0..2_000 {
            let r = sim.step(0.3, 0.001);
            assert!((r.flow_ml_h - sim.true_outflow()).abs() <= p.flow_noise_ml_h);
            assert!((r.pressure_mmhg - sim.true_pressure()).abs() <= p.pressure_noise_mmhg);
        }
    }

    #[test]
    fn command_is_clamped() {
        let mut a = PumpSim::new(PumpParams::DEFAULT, 5);
        let mut b = PumpSim::new(PumpParams::DEFAULT, 5);
        for _ in 0..100 {
            assert_eq!(a.step(7.0, 0.001), b.step(1.0, 0.001));
        }
    }
}
