//! The infusion-pump application: the 1 kHz dosing loop and the 100 Hz
//! supervisor. Both are plain state machines stepped by the RTOS tasks.

use crate::pi::{PiController, PiGains};
use crate::pump::{PumpParams, PumpSim, SensorReadings};

/// Picolitres per ml.
const PL_PER_ML: f32 = 1.0e9;
const S_PER_H: f32 = 3600.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DosingConfig {
    /// Prescribed rate, ml/h.
    pub rate_ml_h: f32,
    /// Control period, s (the loop is stepped once per period).
    pub period_s: f32,
    pub gains: PiGains,
    /// Feed-forward: nominal command per ml/h (1 / full scale).
    pub feedforward_per_ml_h: f32,
    /// Line pressure above which an occlusion is declared, mmHg.
    pub occlusion_mmhg: f32,
    /// Consecutive samples above the threshold before the alarm (debounce).
    pub occlusion_samples: u32,
    /// Pressure below which the line counts as cleared, mmHg.
    pub resume_mmhg: f32,
    /// Consecutive cleared samples before infusion restarts.
    pub resume_samples: u32,
    /// Weight of a new sample in the displayed-rate filter (EMA).
    pub rate_filter_alpha: f32,
    /// Simulated occlusion: active for loop cycles in `[start, end)`.
    pub occlusion_window: Option<(u64, u64)>,
}

impl DosingConfig {
    pub const DEFAULT: Self = Self {
        rate_ml_h: 5.0,
        period_s: 0.001,
        gains: PiGains {
            kp: 0.04,
            ki: 0.05,
            out_min: 0.0,
            out_max: 1.0,
        },
        feedforward_per_ml_h: 1.0 / PumpParams::DEFAULT.full_scale_ml_h,
        occlusion_mmhg: 300.0,
        occlusion_samples: 5,
        resume_mmhg: 100.0,
        resume_samples: 200,
        rate_filter_alpha: 0.02,
        occlusion_window: None,
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PumpState {
    #[default]
    Infusing,
    /// Motor stopped because the line pressure says the line is blocked;
    /// infusion restarts by itself once the pressure has stayed low.
    OcclusionAlarm,
    /// Stopped for good by the supervisor (dose complete or safety stop).
    Stopped,
    /// Motor stopped on request (an accepted PAUSE). RESUME goes back to
    /// infusing, or, when the pause began in an occlusion alarm, back to
    /// that alarm, whose own pressure check alone may restart the motor.
    Paused,
}

/// Commands from the supervisor to the dosing loop.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Command {
    /// Stop for good (final).
    pub stop: bool,
    /// Hold the motor (until a command without it).
    pub pause: bool,
    /// The rate to deliver, ml/h; `None`: the configured one.
    pub rate_ml_h: Option<f32>,
}

/// What the dosing loop publishes after each cycle.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Snapshot {
    pub cycles: u64,
    /// Delivered volume (integrated measured flow), picolitres.
    pub dose_pl: u64,
    /// Filtered measured rate, ml/h.
    pub rate_ml_h: f32,
    pub pressure_mmhg: f32,
    /// Motor command, 0..=1.
    pub command: f32,
    pub state: PumpState,
    pub occlusion_events: u32,
}

impl Snapshot {
    pub fn dose_ul(&self) -> u64 {
        self.dose_pl / 1_000_000
    }

    /// Rate in hundredths of ml/h, rounded to nearest.
    pub fn rate_x100(&self) -> i64 {
        let v = self.rate_ml_h * 100.0;
        // `as` saturates; +-0.5 rounds half away from zero.
        if v >= 0.0 {
            (v + 0.5) as i64
        } else {
            (v - 0.5) as i64
        }
    }
}

#[derive(Clone, Debug)]
pub struct DosingLoop {
    cfg: DosingConfig,
    pi: PiController,
    plant: PumpSim,
    readings: SensorReadings,
    snap: Snapshot,
    dose_frac_pl: f32,
    above: u32,
    below: u32,
    /// The pause began in an occlusion alarm.
    paused_in_occlusion: bool,
}

impl DosingLoop {
    pub const fn new(cfg: DosingConfig, plant: PumpParams, seed: u32) -> Self {
        Self {
            cfg,
            pi: PiController::new(cfg.gains),
            plant: PumpSim::new(plant, seed),
            readings: SensorReadings {
                flow_ml_h: 0.0,
                pressure_mmhg: 0.0,
            },
            snap: Snapshot {
                cycles: 0,
                dose_pl: 0,
                rate_ml_h: 0.0,
                pressure_mmhg: 0.0,
                command: 0.0,
                state: PumpState::Infusing,
                occlusion_events: 0,
            },
            dose_frac_pl: 0.0,
            above: 0,
            below: 0,
            paused_in_occlusion: false,
        }
    }

    /// One control period: read the sensors sampled at the end of the last
    /// period, decide the motor command, then let the plant run one period.
    pub fn step(&mut self, cmd: Command) -> Snapshot {
        let cfg = self.cfg;
        let cycle = self.snap.cycles;
        if let Some((start, end)) = cfg.occlusion_window {
            self.plant.set_occluded((start..end).contains(&cycle));
        }
        let r = self.readings;

        self.accumulate_dose(r.flow_ml_h);
        self.snap.rate_ml_h += cfg.rate_filter_alpha * (r.flow_ml_h - self.snap.rate_ml_h);
        self.snap.pressure_mmhg = r.pressure_mmhg;

        if cmd.stop {
            self.snap.state = PumpState::Stopped;
        }
        let rate = cmd.rate_ml_h.unwrap_or(cfg.rate_ml_h);
        self.snap.state = match self.snap.state {
            PumpState::Stopped => PumpState::Stopped,
            PumpState::Paused if cmd.pause => PumpState::Paused,
            s if cmd.pause => {
                self.paused_in_occlusion = s == PumpState::OcclusionAlarm;
                PumpState::Paused
            }
            PumpState::Paused if self.paused_in_occlusion => {
                // A pause does not clear an occlusion: the line must be
                // seen cleared again, from the start.
                self.below = 0;
                PumpState::OcclusionAlarm
            }
            PumpState::Paused => {
                // Resume from the feed-forward, as after an occlusion.
                self.pi.reset();
                self.above = 0;
                PumpState::Infusing
            }
            s => s,
        };
        self.snap.state = match self.snap.state {
            PumpState::Infusing if r.pressure_mmhg > cfg.occlusion_mmhg => {
                self.above += 1;
                if self.above >= cfg.occlusion_samples {
                    self.snap.occlusion_events = self.snap.occlusion_events.saturating_add(1);
                    self.below = 0;
                    PumpState::OcclusionAlarm
                } else {
                    PumpState::Infusing
                }
            }
            PumpState::Infusing => {
                self.above = 0;
                PumpState::Infusing
            }
            PumpState::OcclusionAlarm => {
                if r.pressure_mmhg < cfg.resume_mmhg {
                    self.below += 1;
                } else {
                    self.below = 0;
                }
                if self.below >= cfg.resume_samples {
                    self.above = 0;
                    // Restart from the feed-forward, not from a stale integral.
                    self.pi.reset();
                    PumpState::Infusing
                } else {
                    PumpState::OcclusionAlarm
                }
            }
            PumpState::Stopped => PumpState::Stopped,
            PumpState::Paused => PumpState::Paused,
        };

        let u = match self.snap.state {
            PumpState::Infusing => self.pi.update(
                rate,
                r.flow_ml_h,
                rate * cfg.feedforward_per_ml_h,
                cfg.period_s,
            ),
            PumpState::OcclusionAlarm | PumpState::Stopped | PumpState::Paused => {
                self.pi.reset();
                0.0
            }
        };
        self.snap.command = u;
        self.readings = self.plant.step(u, cfg.period_s);
        self.snap.cycles = cycle + 1;
        self.snap
    }

    fn accumulate_dose(&mut self, flow_ml_h: f32) {
        let inc = flow_ml_h * (PL_PER_ML / S_PER_H) * self.cfg.period_s + self.dose_frac_pl;
        // `inc` is non-negative (sensor flow is clamped at 0); keep the
        // fraction so rounding does not bias the total.
        let whole = inc as u64;
        self.dose_frac_pl = inc - whole as f32;
        self.snap.dose_pl = self.snap.dose_pl.saturating_add(whole);
    }

    pub fn snapshot(&self) -> Snapshot {
        self.snap
    }

    pub fn plant(&self) -> &PumpSim {
        &self.plant
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SupervisorConfig {
    pub rate_ml_h: f32,
    /// Volume to be infused; reaching it stops the pump, picolitres.
    pub vtbi_pl: u64,
    /// Relative rate error that counts as a deviation.
    pub deviation_frac: f32,
    /// Consecutive deviating checks before the deviation alarm.
    pub deviation_checks: u32,
    /// Relative over-rate that counts as free flow (safety stop).
    pub over_rate_frac: f32,
    pub over_rate_checks: u32,
}

impl SupervisorConfig {
    pub const DEFAULT: Self = Self {
        rate_ml_h: DosingConfig::DEFAULT.rate_ml_h,
        // 50 ml: ten hours at 5 ml/h.
        vtbi_pl: 50_000_000_000,
        deviation_frac: 0.10,
        deviation_checks: 200,
        over_rate_frac: 0.5,
        over_rate_checks: 10,
    };
}

/// The therapy as set, from the supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Therapy {
    pub rate_ml_h: f32,
    pub paused: bool,
    pub alarm_pending: bool,
    pub stopped: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SupervisorStatus {
    /// Alarm events: occlusions seen from the loop plus the supervisor's own.
    pub alarms: u32,
    pub deviation_alarms: u32,
    pub over_rate_alarms: u32,
    pub stall_alarms: u32,
    pub dose_complete: bool,
    pub checks: u64,
}

/// Supervisor checks after a change of rate (3 s at 100 Hz) during which
/// the rate is not judged for deviation and free flow is judged against
/// the higher of the old and the new rate: the line drains slowly after a
/// decrease (2.1 to 0.1 ml/h takes 1.3 s to fall below 1.5 times the new
/// rate), which must not look like free flow, while a real free flow, above
/// both, is still caught.
pub const SETTLE_CHECKS: u32 = 300;

#[derive(Clone, Debug)]
pub struct Supervisor {
    cfg: SupervisorConfig,
    status: SupervisorStatus,
    stop: bool,
    /// The rate the therapy is set to now, ml/h.
    rate_ml_h: f32,
    paused: bool,
    /// Checks left before the rate is judged again.
    settle: u32,
    /// During the settling, the higher of the old and the new rate.
    settle_ref_ml_h: f32,
    /// Alarms acknowledged (an ACK_ALARM request).
    acknowledged: u32,
    last_cycles: u64,
    last_occlusions: u32,
    deviating: u32,
    over: u32,
    stalled: bool,
}

impl Supervisor {
    pub const fn new(cfg: SupervisorConfig) -> Self {
        Self {
            cfg,
            status: SupervisorStatus {
                alarms: 0,
                deviation_alarms: 0,
                over_rate_alarms: 0,
                stall_alarms: 0,
                dose_complete: false,
                checks: 0,
            },
            stop: false,
            rate_ml_h: cfg.rate_ml_h,
            paused: false,
            settle: 0,
            settle_ref_ml_h: 0.0,
            acknowledged: 0,
            last_cycles: 0,
            last_occlusions: 0,
            deviating: 0,
            over: 0,
            stalled: false,
        }
    }

    /// One supervisory check on the loop's latest snapshot.
    pub fn check(&mut self, snap: &Snapshot) -> Command {
        let cfg = self.cfg;
        self.status.checks += 1;

        // Occlusions are detected by the fast loop; count each event once.
        let new_occ = snap.occlusion_events.wrapping_sub(self.last_occlusions);
        self.last_occlusions = snap.occlusion_events;
        self.raise(new_occ);

        // Liveness: the control loop must have run since the last check.
        let stalled = snap.cycles == self.last_cycles;
        if stalled && !self.stalled {
            self.status.stall_alarms += 1;
            self.raise(1);
        }
        self.stalled = stalled;
        self.last_cycles = snap.cycles;

        if snap.dose_pl >= cfg.vtbi_pl {
            self.status.dose_complete = true;
            self.stop = true;
        }

        let rate = self.rate_ml_h;
        let settling = self.settle > 0;
        self.settle = self.settle.saturating_sub(1);
        if snap.state == PumpState::Infusing {
            let reference = if settling { self.settle_ref_ml_h } else { rate };
            let err = snap.rate_ml_h - reference;
            if err > cfg.over_rate_frac * reference {
                self.over += 1;
                if self.over == cfg.over_rate_checks {
                    // Free flow is dangerous: stop, not just warn.
                    self.status.over_rate_alarms += 1;
                    self.raise(1);
                    self.stop = true;
                }
            } else {
                self.over = 0;
            }
            if settling {
                self.deviating = 0;
            } else if err.abs() > cfg.deviation_frac * rate {
                self.deviating += 1;
                if self.deviating == cfg.deviation_checks {
                    self.status.deviation_alarms += 1;
                    self.raise(1);
                }
            } else {
                self.deviating = 0;
            }
        } else if snap.state == PumpState::Paused && !settling {
            // Paused on request, once the line has drained: flow with the
            // motor held is free flow, as dangerous as while infusing.
            self.deviating = 0;
            if snap.rate_ml_h > cfg.over_rate_frac * rate {
                self.over += 1;
                if self.over == cfg.over_rate_checks {
                    self.status.over_rate_alarms += 1;
                    self.raise(1);
                    self.stop = true;
                }
            } else {
                self.over = 0;
            }
        } else {
            // The rate is expected to be off while the motor is stopped.
            self.deviating = 0;
            self.over = 0;
        }
        Command {
            stop: self.stop,
            pause: self.paused,
            rate_ml_h: Some(rate),
        }
    }

    /// An accepted change of the therapy (docs/channels.md, "Requests"):
    /// the rate is judged against the new value after `SETTLE_CHECKS`.
    /// A stopped pump stays stopped.
    pub fn set_rate(&mut self, rate_ml_h: f32) {
        if rate_ml_h != self.rate_ml_h {
            self.settle_ref_ml_h = self.rate_ml_h.max(rate_ml_h);
            self.rate_ml_h = rate_ml_h;
            self.settle = SETTLE_CHECKS;
        }
    }

    pub fn set_paused(&mut self, paused: bool) {
        if paused != self.paused {
            self.paused = paused;
            // Restarting the motor is a change of rate too.
            self.settle_ref_ml_h = self.rate_ml_h;
            self.settle = SETTLE_CHECKS;
        }
    }

    /// Every alarm raised so far is acknowledged.
    pub fn acknowledge(&mut self) {
        self.acknowledged = self.status.alarms;
    }

    /// What a request needs to know: the set rate, paused, an alarm not
    /// yet acknowledged, stopped for good.
    pub fn therapy(&self) -> Therapy {
        Therapy {
            rate_ml_h: self.rate_ml_h,
            paused: self.paused,
            alarm_pending: self.status.alarms != self.acknowledged,
            stopped: self.stop,
        }
    }

    fn raise(&mut self, n: u32) {
        self.status.alarms = self.status.alarms.saturating_add(n);
    }

    pub fn status(&self) -> SupervisorStatus {
        self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps the loop for `ms`, the supervisor every 10 ms, starting from
    /// the supervisor's current therapy (as the RTOS's shared command does).
    fn run(lp: &mut DosingLoop, sup: &mut Supervisor, ms: u64) -> Snapshot {
        let t = sup.therapy();
        let mut cmd = Command {
            stop: t.stopped,
            pause: t.paused,
            rate_ml_h: Some(t.rate_ml_h),
        };
        let mut snap = lp.snapshot();
        for _ in 0..ms {
            snap = lp.step(cmd);
            if snap.cycles.is_multiple_of(10) {
                cmd = sup.check(&snap);
            }
        }
        snap
    }

    #[test]
    fn loop_settles_at_prescribed_rate() {
        let mut lp = DosingLoop::new(DosingConfig::DEFAULT, PumpParams::DEFAULT, 1);
        let mut sup = Supervisor::new(SupervisorConfig::DEFAULT);
        let mut peak = 0.0f32;
        for _ in 0..1_500 {
            lp.step(Command::default());
            peak = peak.max(lp.plant().true_outflow());
        }
        let snap = run(&mut lp, &mut sup, 1_000);
        assert!((lp.plant().true_outflow() - 5.0).abs() < 0.05, "{snap:?}");
        assert!(peak < 5.5, "overshoot {peak}");
        assert!((snap.rate_x100() - 500).abs() <= 5, "{snap:?}");
        assert_eq!(snap.state, PumpState::Infusing);
        assert_eq!(sup.status().alarms, 0);
    }

    #[test]
    fn dose_matches_rate() {
        let mut lp = DosingLoop::new(DosingConfig::DEFAULT, PumpParams::DEFAULT, 9);
        let mut sup = Supervisor::new(SupervisorConfig::DEFAULT);
        let first = run(&mut lp, &mut sup, 2_000);
        let last = run(&mut lp, &mut sup, 36_000);
        // 36 s at 5 ml/h = 50 ul.
        let ul = (last.dose_pl - first.dose_pl) as f64 / 1.0e6;
        assert!((ul - 50.0).abs() < 0.5, "{ul}");
        assert_eq!(last.dose_ul(), last.dose_pl / 1_000_000);
        assert_eq!(sup.status().alarms, 0);
    }

    #[test]
    fn occlusion_stops_motor_and_recovers() {
        let cfg = DosingConfig {
            occlusion_window: Some((3_000, 4_500)),
            ..DosingConfig::DEFAULT
        };
        let mut lp = DosingLoop::new(cfg, PumpParams::DEFAULT, 1);
        let mut sup = Supervisor::new(SupervisorConfig::DEFAULT);
        run(&mut lp, &mut sup, 4_000);
        let s = lp.snapshot();
        assert_eq!(s.state, PumpState::OcclusionAlarm);
        assert_eq!(s.command, 0.0);
        assert_eq!(s.occlusion_events, 1);
        run(&mut lp, &mut sup, 3_000);
        let s = lp.snapshot();
        assert_eq!(s.state, PumpState::Infusing);
        assert!((lp.plant().true_outflow() - 5.0).abs() < 0.1);
        assert_eq!(sup.status().alarms, 1);
        assert_eq!(sup.status().deviation_alarms, 0);
    }

    #[test]
    fn vtbi_reached_stops_infusion() {
        let sup_cfg = SupervisorConfig {
            vtbi_pl: 2_000_000,
            ..SupervisorConfig::DEFAULT
        };
        let mut lp = DosingLoop::new(DosingConfig::DEFAULT, PumpParams::DEFAULT, 1);
        let mut sup = Supervisor::new(sup_cfg);
        run(&mut lp, &mut sup, 3_000);
        assert!(sup.status().dose_complete);
        assert_eq!(lp.snapshot().state, PumpState::Stopped);
        assert_eq!(lp.snapshot().command, 0.0);
        assert_eq!(sup.status().alarms, 0);
    }

    /// `n` supervisor checks of `snap`, ten control cycles apart; the last
    /// command.
    fn checks(sup: &mut Supervisor, snap: &mut Snapshot, n: u64) -> Command {
        let mut cmd = Command::default();
        for _ in 0..n {
            snap.cycles += 10;
            cmd = sup.check(snap);
        }
        cmd
    }

    #[test]
    fn free_flow_is_a_safety_stop() {
        let mut sup = Supervisor::new(SupervisorConfig::DEFAULT);
        let mut snap = Snapshot {
            rate_ml_h: 9.0,
            ..Snapshot::default()
        };
        let cmd = checks(&mut sup, &mut snap, 20);
        assert!(cmd.stop);
        assert_eq!(sup.status().over_rate_alarms, 1);
        assert_eq!(sup.status().alarms, 1);
    }

    #[test]
    fn persistent_deviation_raises_one_alarm() {
        let mut sup = Supervisor::new(SupervisorConfig::DEFAULT);
        let mut snap = Snapshot {
            rate_ml_h: 4.0,
            ..Snapshot::default()
        };
        for i in 0..1_000 {
            snap.cycles = (i + 1) * 10;
            assert!(!sup.check(&snap).stop);
        }
        assert_eq!(sup.status().deviation_alarms, 1);
        assert_eq!(sup.status().alarms, 1);
    }

    /// REQ-CHN-6: an accepted rate change is delivered, raises no alarm
    /// (the largest step the request limits allow, up and down, at the
    /// lowest rates too), and the dose follows the new rate.
    #[test]
    fn rate_changes_settle_without_alarms() {
        for (from, to) in [
            (5.0f32, 7.0f32),
            (7.0, 5.0),
            (2.1, 0.1),
            (0.1, 2.1),
            (15.0, 13.0),
        ] {
            let cfg = DosingConfig {
                rate_ml_h: from,
                ..DosingConfig::DEFAULT
            };
            let sup_cfg = SupervisorConfig {
                rate_ml_h: from,
                ..SupervisorConfig::DEFAULT
            };
            let mut lp = DosingLoop::new(cfg, PumpParams::DEFAULT, 3);
            let mut sup = Supervisor::new(sup_cfg);
            run(&mut lp, &mut sup, 3_000);
            sup.set_rate(to);
            let before = lp.snapshot();
            let after = run(&mut lp, &mut sup, 20_000);
            assert_eq!(sup.status().alarms, 0, "{from} -> {to}: {:?}", sup.status());
            assert_eq!(after.state, PumpState::Infusing);
            assert!(
                (lp.plant().true_outflow() - to).abs() < 0.05 + 0.01 * to,
                "{from} -> {to}: {}",
                lp.plant().true_outflow()
            );
            // The last 10 s at the new rate.
            let last = run(&mut lp, &mut sup, 10_000);
            let ul = (last.dose_pl - after.dose_pl) as f64 / 1.0e6;
            let want = f64::from(to) * 10.0 / 3.6;
            assert!(
                (ul - want).abs() < 0.02 * want + 0.05,
                "{from} -> {to}: {ul} ul, want {want}"
            );
            assert!(after.dose_pl > before.dose_pl);
        }
    }

    /// Free flow above both the old and the new rate is a safety stop even
    /// while a change settles.
    #[test]
    fn free_flow_while_settling_is_still_a_safety_stop() {
        let mut sup = Supervisor::new(SupervisorConfig::DEFAULT);
        sup.set_rate(4.0);
        let mut snap = Snapshot {
            rate_ml_h: 9.0,
            ..Snapshot::default()
        };
        let cmd = checks(&mut sup, &mut snap, 20);
        assert!(cmd.stop, "{:?}", sup.status());
        assert_eq!(sup.status().over_rate_alarms, 1);
    }

    /// REQ-CHN-6: pause holds the motor with no alarm; resume infuses again.
    #[test]
    fn pause_and_resume() {
        let mut lp = DosingLoop::new(DosingConfig::DEFAULT, PumpParams::DEFAULT, 4);
        let mut sup = Supervisor::new(SupervisorConfig::DEFAULT);
        run(&mut lp, &mut sup, 3_000);
        sup.set_paused(true);
        run(&mut lp, &mut sup, 100);
        let held = run(&mut lp, &mut sup, 5_000);
        assert_eq!(held.state, PumpState::Paused);
        assert_eq!(held.command, 0.0);
        assert!(
            lp.plant().true_outflow() < 0.05,
            "{}",
            lp.plant().true_outflow()
        );
        let more = run(&mut lp, &mut sup, 5_000);
        assert!(
            more.dose_pl - held.dose_pl < 100_000,
            "almost nothing delivered while paused"
        );
        assert!(sup.therapy().paused);
        sup.set_paused(false);
        run(&mut lp, &mut sup, 5_000);
        assert_eq!(lp.snapshot().state, PumpState::Infusing);
        assert!((lp.plant().true_outflow() - 5.0).abs() < 0.1);
        assert_eq!(sup.status().alarms, 0, "{:?}", sup.status());
    }

    /// Flow while paused (after the line has drained) is free flow: a
    /// safety stop.
    #[test]
    fn free_flow_while_paused_is_a_safety_stop() {
        let mut sup = Supervisor::new(SupervisorConfig::DEFAULT);
        sup.set_paused(true);
        let mut snap = Snapshot {
            rate_ml_h: 4.0,
            state: PumpState::Paused,
            ..Snapshot::default()
        };
        // Draining: not judged.
        assert!(!checks(&mut sup, &mut snap, SETTLE_CHECKS as u64).stop);
        let cmd = checks(&mut sup, &mut snap, 20);
        assert!(cmd.stop, "{:?}", sup.status());
        assert_eq!(sup.status().over_rate_alarms, 1);
    }

    /// A pause taken during an occlusion alarm does not clear it: resume
    /// returns to the alarm, and the motor restarts only once the line is
    /// seen cleared.
    #[test]
    fn pause_and_resume_do_not_clear_an_occlusion() {
        let cfg = DosingConfig {
            occlusion_window: Some((3_000, 20_000)),
            ..DosingConfig::DEFAULT
        };
        let mut lp = DosingLoop::new(cfg, PumpParams::DEFAULT, 1);
        let mut sup = Supervisor::new(SupervisorConfig::DEFAULT);
        run(&mut lp, &mut sup, 4_000);
        assert_eq!(lp.snapshot().state, PumpState::OcclusionAlarm);
        sup.set_paused(true);
        run(&mut lp, &mut sup, 1_000);
        assert_eq!(lp.snapshot().state, PumpState::Paused);
        sup.set_paused(false);
        let s = run(&mut lp, &mut sup, 2_000);
        assert_eq!(s.state, PumpState::OcclusionAlarm, "still blocked");
        assert_eq!(s.command, 0.0);
        // Once the line clears, the alarm's own check restarts the motor.
        run(&mut lp, &mut sup, 15_000);
        assert_eq!(lp.snapshot().state, PumpState::Infusing);
        assert_eq!(lp.snapshot().occlusion_events, 1);
    }

    /// A stop is final: neither a resume nor a new rate restarts the motor.
    #[test]
    fn a_stop_is_final_for_requests_too() {
        let sup_cfg = SupervisorConfig {
            vtbi_pl: 2_000_000,
            ..SupervisorConfig::DEFAULT
        };
        let mut lp = DosingLoop::new(DosingConfig::DEFAULT, PumpParams::DEFAULT, 1);
        let mut sup = Supervisor::new(sup_cfg);
        run(&mut lp, &mut sup, 3_000);
        assert!(sup.therapy().stopped);
        sup.set_paused(true);
        sup.set_paused(false);
        sup.set_rate(6.0);
        run(&mut lp, &mut sup, 2_000);
        assert_eq!(lp.snapshot().state, PumpState::Stopped);
        assert_eq!(lp.snapshot().command, 0.0);
    }

    #[test]
    fn alarms_are_pending_until_acknowledged() {
        let mut sup = Supervisor::new(SupervisorConfig::DEFAULT);
        assert!(!sup.therapy().alarm_pending);
        let mut snap = Snapshot {
            rate_ml_h: 5.0,
            cycles: 10,
            occlusion_events: 1,
            ..Snapshot::default()
        };
        sup.check(&snap);
        assert!(sup.therapy().alarm_pending);
        sup.acknowledge();
        assert!(!sup.therapy().alarm_pending);
        snap.occlusion_events = 2;
        snap.cycles = 20;
        sup.check(&snap);
        assert!(sup.therapy().alarm_pending);
    }

    #[test]
    fn stalled_loop_is_detected_once_per_stall() {
        let mut sup = Supervisor::new(SupervisorConfig::DEFAULT);
        let mut snap = Snapshot {
            rate_ml_h: 5.0,
            cycles: 10,
            ..Snapshot::default()
        };
        sup.check(&snap);
        sup.check(&snap);
        sup.check(&snap);
        snap.cycles = 20;
        sup.check(&snap);
        sup.check(&snap);
        assert_eq!(sup.status().stall_alarms, 2);
    }
}
