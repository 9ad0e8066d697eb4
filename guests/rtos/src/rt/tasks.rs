//! The four application tasks (control, supervisor, status, requests) and
//! the state they share.

use core::fmt::Write;

use septum_rtos::infusion::{
    Command, DosingConfig, DosingLoop, Snapshot, Supervisor, SupervisorConfig, SupervisorStatus,
    Therapy,
};
use septum_rtos::pump::PumpParams;
use septum_rtos::requests::{Command as Request, PumpView};
use septum_rtos::sched::{Job, MissKind};
use septum_rtos::status::{LineBuf, StatusLine, STATUS_LINE_MAX};

use super::console;
use super::kernel;
use super::sync::{IrqCell, JobCell};

/// Demo scenario: with `sim-occlusion`, the line is blocked from 3.0 s to
/// 4.5 s of loop time, which must raise exactly one occlusion alarm.
const DOSING: DosingConfig = DosingConfig {
    occlusion_window: if cfg!(feature = "sim-occlusion") {
        Some((3_000, 4_500))
    } else {
        None
    },
    ..DosingConfig::DEFAULT
};
const SENSOR_SEED: u32 = 0x5e97_0001;

static LOOP: JobCell<DosingLoop> =
    JobCell::new(DosingLoop::new(DOSING, PumpParams::DEFAULT, SENSOR_SEED));
static SUPERVISOR: JobCell<Supervisor> = JobCell::new(Supervisor::new(SupervisorConfig::DEFAULT));
static STATUS: JobCell<StatusState> = JobCell::new(StatusState {
    heartbeat: 0,
    reported_misses: 0,
    line: LineBuf::new(),
});

static SNAPSHOT: IrqCell<Snapshot> = IrqCell::new(Snapshot {
    cycles: 0,
    dose_pl: 0,
    rate_ml_h: 0.0,
    pressure_mmhg: 0.0,
    command: 0.0,
    state: septum_rtos::infusion::PumpState::Infusing,
    occlusion_events: 0,
});
static COMMAND: IrqCell<Command> = IrqCell::new(Command {
    stop: false,
    pause: false,
    rate_ml_h: None,
});
static SUP_STATUS: IrqCell<SupervisorStatus> = IrqCell::new(SupervisorStatus {
    alarms: 0,
    deviation_alarms: 0,
    over_rate_alarms: 0,
    stall_alarms: 0,
    dose_complete: false,
    checks: 0,
});

struct StatusState {
    heartbeat: u64,
    /// Misses already explained on the console.
    reported_misses: u64,
    line: LineBuf<{ STATUS_LINE_MAX + 1 }>,
}

/// 1 kHz: one step of the dosing loop.
pub fn control_job(_job: &Job) {
    let cmd = COMMAND.with(|c| *c);
    let snap = LOOP.with(|l| l.step(cmd));
    SNAPSHOT.with(|s| *s = snap);
}

/// The therapy as the supervisor has it, for the requests task.
static THERAPY: IrqCell<Therapy> = IrqCell::new(Therapy {
    rate_ml_h: DOSING.rate_ml_h,
    paused: false,
    alarm_pending: false,
    stopped: false,
});

/// 100 Hz: dose limit, rate and liveness checks; applies an accepted
/// request.
pub fn supervisor_job(_job: &Job) {
    let snap = SNAPSHOT.with(|s| *s);
    let request = super::requests::PENDING.with(Option::take);
    let (cmd, status, therapy) = SUPERVISOR.with(|s| {
        match request {
            Some(Request::SetRate(r)) => s.set_rate(r as f32 / 100.0),
            Some(Request::Pause) => s.set_paused(true),
            Some(Request::Resume) => s.set_paused(false),
            Some(Request::AckAlarm) => s.acknowledge(),
            None => {}
        }
        (s.check(&snap), s.status(), s.therapy())
    });
    COMMAND.with(|c| *c = cmd);
    SUP_STATUS.with(|s| *s = status);
    THERAPY.with(|t| *t = therapy);
    // The supervisor ran, so the control loop it checks is alive.
    super::hyp::heartbeat();
    #[cfg(feature = "fault-test-doorbell-storm")]
    super::telemetry::storm();
}

/// 1 Hz: the status line. Lowest priority, so the (slow, trapping) UART
/// writes are preempted by the other tasks instead of delaying them.
pub fn status_job(job: &Job) {
    let Some(k) = kernel::stats() else { return };
    let snap = SNAPSHOT.with(|s| *s);
    let sup = SUP_STATUS.with(|s| *s);
    STATUS.with(|st| {
        st.heartbeat += 1;
        let line = StatusLine {
            heartbeat: st.heartbeat,
            uptime_ms: k.clock.ticks_to_ms(job.start.saturating_sub(k.start)),
            cycles: k.control.completed,
            misses: k.total_misses,
            jitter_max_us: k.clock.ticks_to_us(k.control.jitter.max()),
            jitter_mean_us: k.clock.ticks_to_us(k.control.jitter.mean()),
            dose_ul: snap.dose_ul(),
            rate_x100: snap.rate_x100(),
            alarms: sup.alarms,
        };
        // Telemetry first: a few stores, where the console line below is
        // paced by the UART.
        let mut t = line.telemetry(snap.state, snap.occlusion_events);
        let r = super::requests::STATS.with(|s| *s);
        t.requests_accepted = r.accepted;
        t.requests_rejected = r.rejected;
        t.requests_skipped = r.skipped;
        t.last_request_id = r.last_id;
        t.last_answer = r.last_answer;
        t.set_rate_x100 = x100(THERAPY.with(|t| t.rate_ml_h));
        super::telemetry::publish(&t);
        st.line.clear();
        let _ = writeln!(st.line, "{line}");
        console::write_bytes(st.line.as_bytes());
        if k.total_misses != st.reported_misses {
            st.reported_misses = k.total_misses;
            if let Some(m) = k.last_miss {
                st.line.clear();
                let name = kernel::TASKS.get(m.task).map_or("?", |t| t.name);
                let at_ms = k.clock.ticks_to_ms(m.release.saturating_sub(k.start));
                let _ = match m.kind {
                    MissKind::Dropped(n) => writeln!(
                        st.line,
                        "rtos: deadline miss: task {name} release_ms={at_ms} dropped={n}"
                    ),
                    MissKind::Late { response } => writeln!(
                        st.line,
                        "rtos: deadline miss: task {name} release_ms={at_ms} response_us={}",
                        k.clock.ticks_to_us(response)
                    ),
                };
                console::write_bytes(st.line.as_bytes());
            }
        }
        #[cfg(feature = "verbose-stats")]
        for (cfg, t) in kernel::TASKS.iter().zip(k.all.iter()) {
            st.line.clear();
            let _ = writeln!(
                st.line,
                "rtos: task {} released={} completed={} misses={} dropped={} jitter_us=max:{} mean:{} response_us=max:{}",
                cfg.name,
                t.released,
                t.completed,
                t.misses,
                t.dropped,
                k.clock.ticks_to_us(t.jitter.max()),
                k.clock.ticks_to_us(t.jitter.mean()),
                k.clock.ticks_to_us(t.max_response)
            );
            console::write_bytes(st.line.as_bytes());
        }
        #[cfg(feature = "bench")]
        super::bench::maybe_report();
        #[cfg(feature = "fault-test-doorbell-storm")]
        super::telemetry::report_storm();
        #[cfg(feature = "fault-test-system-off")]
        if line.uptime_ms >= 5_000 {
            console::write_bytes(b"rtos: fault-test: PSCI SYSTEM_OFF\n");
            super::hyp::system_off();
        }
        #[cfg(feature = "fault-test-stop-heartbeat")]
        if line.uptime_ms >= 5_000 {
            console::write_bytes(b"rtos: fault-test: stopping heartbeat\n");
            super::hyp::stop_heartbeat();
            kernel::suspend(kernel::STATUS);
        }
    });
}

/// A rate in hundredths of a mL/h, rounded.
fn x100(rate_ml_h: f32) -> i32 {
    let v = rate_ml_h * 100.0;
    // `as` saturates.
    if v >= 0.0 {
        (v + 0.5) as i32
    } else {
        (v - 0.5) as i32
    }
}

/// 4 Hz, lowest priority: at most one therapy request judged.
pub fn requests_job(job: &Job) {
    let Some(k) = kernel::stats() else { return };
    let now_ms = k.clock.ticks_to_ms(job.start.saturating_sub(k.start));
    let t = THERAPY.with(|t| *t);
    super::requests::requests_job(
        now_ms,
        PumpView {
            rate_x100: x100(t.rate_ml_h),
            paused: t.paused,
            alarm_pending: t.alarm_pending,
            stopped: t.stopped,
        },
    );
}
