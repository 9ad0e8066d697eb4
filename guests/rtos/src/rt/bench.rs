//! The benchmark build (`--features bench`; scripts/bench.sh,
//! docs/performance.md). Measures, in counter ticks:
//! - interrupt latency: from the virtual timer's compare value to the first
//!   instruction of the Rust IRQ handler (after the vector saved the
//!   context, which is the same natively and under Septum);
//! - release jitter of the 1 kHz control task (job start minus release),
//!   and for the worst release where its time went (`worst_release`: the
//!   interrupt's entry, the jobs released, the job's start);
//! - at start-up, exit costs: a no-op hypercall round trip (under a
//!   hypervisor only) and a GIC distributor register read (trapped and
//!   emulated under Septum, a device read natively).
//!
//! After a warm-up of `WARMUP` control releases and `SAMPLES` more, it
//! prints the summaries and histograms once, as `bench: ...` lines that
//! scripts/bench.sh parses.

use core::fmt::Write;

use septum_rtos::hist::Histogram;
use septum_rtos::platform::Gic;
use septum_rtos::status::LineBuf;

use super::console;
use super::sync::IrqCell;
use super::timer;

/// Control releases measured before the report (10 s at 1 kHz).
pub const SAMPLES: u64 = 10_000;
/// Control releases skipped first (5 s): Linux boots meanwhile, and the
/// figures are for a booted system, idle or loaded.
pub const WARMUP: u64 = 5_000;
/// Iterations of each exit-cost loop.
const LOOPS: u64 = 1_000;

static IRQ: IrqCell<Histogram> = IrqCell::new(Histogram::new());
static JITTER: IrqCell<Histogram> = IrqCell::new(Histogram::new());
static REPORTED: IrqCell<bool> = IrqCell::new(false);
static RELEASES: IrqCell<u64> = IrqCell::new(0);
/// The last timer interrupt: its compare value, when its handler started
/// and when it had released the due jobs (ticks).
static LAST_IRQ: IrqCell<[u64; 3]> = IrqCell::new([0; 3]);
/// The most delayed measured release, where its time went: the compare
/// value, then the handler's start, the jobs released and the control job's
/// start, each after the compare (ticks).
static WORST: IrqCell<[u64; 4]> = IrqCell::new([0; 4]);

fn warm() -> bool {
    RELEASES.with(|n| *n >= WARMUP)
}

/// At the top of the timer interrupt, with the compare value that fired.
pub fn irq_entry(entry: u64, compare: u64) {
    LAST_IRQ.with(|l| *l = [compare, entry, entry]);
    if !warm() {
        return;
    }
    IRQ.with(|h| {
        if h.count() < SAMPLES {
            h.record(entry.saturating_sub(compare));
        }
    });
}

/// The timer interrupt has released what was due.
pub fn irq_released(at: u64) {
    LAST_IRQ.with(|l| l[2] = at);
}

/// A control job starts.
pub fn control_start(release: u64, start: u64) {
    let warm = RELEASES.with(|n| {
        *n += 1;
        *n > WARMUP
    });
    if !warm {
        return;
    }
    let delay = start.saturating_sub(release);
    let measured = JITTER.with(|h| {
        let m = h.count() < SAMPLES;
        if m {
            h.record(delay);
        }
        m
    });
    if measured && WORST.with(|w| delay > w[3]) {
        let [compare, entry, released] = LAST_IRQ.with(|l| *l);
        // The steps are known only when the interrupt was this release's.
        let step = |t: u64| {
            if compare == release {
                t.saturating_sub(release)
            } else {
                u64::MAX
            }
        };
        WORST.with(|w| *w = [release, step(entry), step(released), delay]);
    }
}

fn print(args: core::fmt::Arguments<'_>) {
    let mut b = LineBuf::<200>::new();
    let _ = b.write_fmt(args);
    let _ = b.write_str("\n");
    console::write_bytes(b.as_bytes());
}

/// Exit costs, before the control loop starts.
pub fn exit_costs(under_hypervisor: bool, gic: Gic) {
    if under_hypervisor {
        let t0 = timer::now();
        for _ in 0..LOOPS {
            // SMCCC_VERSION: answered by the hypervisor without side effects.
            super::hyp::hvc_raw(0x8000_0000);
        }
        let t = timer::now() - t0;
        print(format_args!(
            "bench: exit hvc_round_trip ticks_x1000={}",
            t * 1000 / LOOPS
        ));
    } else {
        print(format_args!("bench: exit hvc_round_trip n/a"));
    }
    let t0 = timer::now();
    for _ in 0..LOOPS {
        core::hint::black_box(super::gic::read_typer(gic));
    }
    let t = timer::now() - t0;
    print(format_args!(
        "bench: exit gicd_read ticks_x1000={}",
        t * 1000 / LOOPS
    ));
    request_check_cost();
}

/// What judging one therapy request costs the RTOS's core
/// (docs/channels.md): a valid one (signature verified, content judged)
/// and a forged one (the signature fails), each the best of a few runs.
fn request_check_cost() {
    use ed25519_dalek::{Signer, SigningKey};
    use septum_abi::channel::request::{Request, SET_RATE};
    use septum_rtos::requests::{Gate, Limits, PumpView};
    let key = SigningKey::from_bytes(&[5; 32]);
    let pump = PumpView {
        rate_x100: 500,
        paused: false,
        alarm_pending: false,
        stopped: false,
    };
    let t0 = timer::now();
    let mut gate = Gate::new(&[key.verifying_key().to_bytes()], Limits::DEFAULT);
    let setup = timer::now() - t0;
    let (mut good, mut forged) = (u64::MAX, u64::MAX);
    for seq in 1..=4u64 {
        let r = Request {
            key_id: 0,
            request_id: seq as u32,
            seq,
            command: SET_RATE,
            arg: 500,
        };
        let slot = r.slot(&key.sign(&r.message()).to_bytes());
        let t0 = timer::now();
        core::hint::black_box(gate.check(&slot, seq * 10_000, pump));
        good = good.min(timer::now() - t0);
        let mut bad = slot;
        bad[60] ^= 1;
        let t0 = timer::now();
        core::hint::black_box(gate.check(&bad, seq * 10_000, pump));
        forged = forged.min(timer::now() - t0);
    }
    print(format_args!(
        "bench: request_check valid_ticks={good} forged_ticks={forged} key_setup_ticks={setup}"
    ));
}

/// Prints one histogram. The histograms no longer change once they hold
/// `SAMPLES`, so they are read in short critical sections, a few buckets
/// at a time, and never copied (each is 32 KiB: too big for the stack).
fn summary(name: &str, cell: &IrqCell<Histogram>) {
    let Some(s) = cell.with(|h| h.summary()) else {
        return;
    };
    print(format_args!(
        "bench: {name} n={} min={} p50={} p99={} max={}",
        s.count, s.min, s.p50, s.p99, s.max
    ));
    let mut skip = 0;
    loop {
        let mut chunk = [(0u64, 0u64); 12];
        let n = cell.with(|h| {
            let mut n = 0;
            for (slot, item) in chunk.iter_mut().zip(h.nonzero().skip(skip)) {
                *slot = item;
                n += 1;
            }
            n
        });
        if n == 0 {
            break;
        }
        skip += n;
        let mut line = LineBuf::<200>::new();
        let _ = write!(line, "bench: hist {name}");
        for (v, c) in &chunk[..n] {
            let _ = write!(line, " {v}:{c}");
        }
        let _ = line.write_str("\n");
        console::write_bytes(line.as_bytes());
    }
}

/// From the status task: once enough samples are in, the report.
pub fn maybe_report() {
    let done = JITTER.with(|h| h.count() >= SAMPLES) && IRQ.with(|h| h.count() >= SAMPLES);
    if !done || REPORTED.with(|r| core::mem::replace(r, true)) {
        return;
    }
    summary("irq_latency", &IRQ);
    summary("release_jitter", &JITTER);
    let [release, entry, released, start] = WORST.with(|w| *w);
    if entry == u64::MAX {
        // Started by another release's interrupt (it had been pending).
        print(format_args!(
            "bench: worst_release at={release} irq_entry=? released=? start=+{start}"
        ));
    } else {
        print(format_args!(
            "bench: worst_release at={release} irq_entry=+{entry} released=+{released} start=+{start}"
        ));
    }
    print(format_args!("bench: done"));
}
