//! The benchmark itself (see main.rs).

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::hw;

const SGI_PING: u32 = 1;
const SGI_PONG: u32 = 2;
const PRIORITY: u8 = 0x80;
/// PSCI's INVALID_PARAMETERS: CPU_ON of a vCPU the partition does not have.
const PSCI_INVALID_PARAMETERS: i64 = -2;
const WARMUP: usize = 100;
const SAMPLES: usize = 1_000;
/// Set at build time (scripts/profile-exits.sh) to run only this figure's
/// `WARMUP + SAMPLES` rounds and stop, so that an instruction trace holds
/// little else.
const ONLY: Option<&str> = option_env!("SEPTUM_PAIRBENCH_ONLY");
/// Wake-ups tolerated while waiting for one interrupt.
const WAKE_LIMIT: u32 = 1_000;

/// Counter at the top of vCPU 0's handler for the awaited interrupt; 0
/// while it is outstanding.
static STAMP: AtomicU64 = AtomicU64::new(0);
static SECONDARY_READY: AtomicBool = AtomicBool::new(false);
/// Samples of the figure being measured (only vCPU 0 touches it, outside
/// any handler).
static mut SAMPLE_BUF: [u64; SAMPLES] = [0; SAMPLES];

macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(hw::Console, $($arg)*);
    }};
}

/// Entry on each vCPU (septum-guest-rt), with its index.
#[no_mangle]
extern "C" fn guest_main(cpu: u64) {
    if cpu == 0 {
        primary();
    } else {
        secondary(cpu as usize);
    }
}

fn primary() {
    let v2 = hw::detect_gic();
    say!(
        "pairbench: vCPU 0 up ({})",
        if v2 { "GICv2" } else { "GICv3" }
    );
    hw::gicd_init(PRIORITY);
    if !hw::cpu_init(0, 1 << SGI_PONG, PRIORITY) {
        say!("pairbench: error: no redistributor for vCPU 0");
        return;
    }
    let entry = septum_guest_rt::secondary_entry();
    // A partition with one vCPU (direct interrupt delivery) has no vCPU 1:
    // every figure but the SGI round trip is still measured.
    let two = match hw::cpu_on(1, entry, 1) {
        0 => true,
        PSCI_INVALID_PARAMETERS => {
            say!("pairbench: one vCPU: no SGI round trip");
            false
        }
        r => {
            say!("pairbench: error: PSCI CPU_ON of vCPU 1 returned {r}");
            return;
        }
    };
    let mut spins = 0u64;
    while two && !SECONDARY_READY.load(Ordering::Acquire) {
        spins += 1;
        if spins > 100_000_000 {
            say!("pairbench: error: vCPU 1 never came up");
            return;
        }
        core::hint::spin_loop();
    }
    settle();
    if let Some(only) = ONLY {
        // scripts/profile-exits.sh: one figure, then off.
        match only {
            "hvc_round_trip" => mean(only, || {
                core::hint::black_box(hw::psci_version());
            }),
            "gicd_read" => mean(only, || {
                core::hint::black_box(hw::gicd_typer());
            }),
            "timer_irq" => {
                hw::vtimer_irq_init(PRIORITY);
                measure_timer();
            }
            "sgi_round_trip" if two => measure(only, || hw::send_sgi(SGI_PING, 1)),
            "device_irq" => {
                hw::uart1_init();
                measure(only, hw::uart1_kick);
            }
            _ => say!("pairbench: error: unknown SEPTUM_PAIRBENCH_ONLY '{only}'"),
        }
        say!("bench: done");
        hw::system_off();
        return;
    }
    match gic_state_check() {
        Ok(()) => say!(
            "pairbench: gic state: ok (timer PPI pending while disabled, active in its handler, \
             idle after EOI; UART1 SPI pending while disabled, idle once cleared)"
        ),
        Err(e) => say!("pairbench: error: gic state: {e}"),
    }
    let typer = u64::from(hw::gicd_typer());
    let regs = hw::trap_registers();
    if regs == [0x1919, typer, 0x2121, 0x2727, typer] {
        say!("pairbench: trap registers: ok (loads into x20/x28, x19/x21/x27 kept over HVC)");
    } else {
        say!("pairbench: error: trap registers: {regs:x?}, GICD_TYPER {typer:#x}");
    }
    mean("hvc_round_trip", || {
        core::hint::black_box(hw::psci_version());
    });
    mean("gicd_read", || {
        core::hint::black_box(hw::gicd_typer());
    });
    measure_timer();
    if two {
        measure("sgi_round_trip", || hw::send_sgi(SGI_PING, 1));
    }
    hw::uart1_init();
    measure("device_irq", hw::uart1_kick);
    say!("bench: done");
    hw::system_off();
}

/// Waits 20 ms of counter time before measuring: under QEMU's round robin
/// the instructions of other cores count in every figure, and the
/// hypervisor's boot log (its partition table, drained by another core)
/// is still being printed when the partition starts.
fn settle() {
    let freq: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack, preserves_flags))
    };
    let end = hw::now() + freq / 50;
    while hw::now() < end {
        core::hint::spin_loop();
    }
}

/// The timer PPI's state as its handler read it (0 until it ran).
static TIMER_SEEN: AtomicU64 = AtomicU64::new(0);

/// The pending and active state of hardware interrupts reads back as the
/// GIC has it, natively and in a partition (GICR_IS/ICPENDR0 and
/// IS/ICACTIVER0 for the timer PPI, GICD_IS/ICPENDR1 for UART1's SPI).
fn gic_state_check() -> Result<(), &'static str> {
    use hw::{irq_state, IrqState, UART1_INTID, VTIMER_INTID};
    hw::vtimer_irq_init(PRIORITY);
    hw::irq_enable(VTIMER_INTID, false);
    hw::vtimer_fire();
    if !hw::poll(|| irq_state(VTIMER_INTID).pending()) {
        hw::vtimer_off();
        return Err("the timer PPI fired while disabled does not read pending");
    }
    if irq_state(VTIMER_INTID) != IrqState(1, 1, 0, 0) {
        hw::vtimer_off();
        return Err("the timer PPI fired while disabled reads active");
    }
    TIMER_SEEN.store(0, Ordering::SeqCst);
    hw::irq_enable(VTIMER_INTID, true);
    let taken = hw::wait_for_interrupt(|| TIMER_SEEN.load(Ordering::Acquire) != 0, WAKE_LIMIT);
    hw::irq_enable(VTIMER_INTID, false);
    hw::vtimer_off();
    if !taken {
        return Err("the timer PPI, once enabled, was not taken");
    }
    let seen = TIMER_SEEN.load(Ordering::Acquire);
    if seen & 0b1100 != 0b1100 {
        return Err("the timer PPI does not read active in its handler");
    }
    if !irq_state(VTIMER_INTID).idle() {
        return Err("the timer PPI is not idle after its EOI");
    }
    hw::irq_enable(UART1_INTID, false);
    hw::uart1_init();
    hw::uart1_kick();
    let pending = hw::poll(|| irq_state(UART1_INTID).pending());
    let state = irq_state(UART1_INTID);
    hw::uart1_clear();
    let cleared = hw::poll(|| irq_state(UART1_INTID).idle());
    hw::irq_enable(UART1_INTID, true);
    if !pending {
        return Err("UART1's SPI raised while disabled does not read pending");
    }
    if state.active_only() || state.2 != 0 {
        return Err("UART1's SPI raised while disabled reads active");
    }
    if !cleared {
        return Err("UART1's SPI does not read idle once the device dropped it");
    }
    Ok(())
}

/// The mean cost of `op` over `SAMPLES` calls (after `WARMUP`), printed
/// in thousandths of a tick.
fn mean(name: &str, op: impl Fn()) {
    for _ in 0..WARMUP {
        op();
    }
    let t0 = hw::now();
    for _ in 0..SAMPLES {
        op();
    }
    let t = hw::now() - t0;
    say!("bench: {name} mean_x1000={}", t * 1000 / SAMPLES as u64);
}

/// Compare value of the armed timer (0 when none).
static TIMER_CVAL: AtomicU64 = AtomicU64::new(0);

/// Timer interrupt latency: from the virtual timer's compare value to the
/// first instruction of the handler, `WARMUP + SAMPLES` times.
fn measure_timer() {
    // SAFETY: only vCPU 0 uses SAMPLE_BUF, here and in `measure`, never at
    // the same time.
    let buf = unsafe { &mut *core::ptr::addr_of_mut!(SAMPLE_BUF) };
    hw::irq_enable(hw::VTIMER_INTID, true);
    for round in 0..WARMUP + SAMPLES {
        STAMP.store(0, Ordering::SeqCst);
        let cval = hw::now() + 2_000;
        TIMER_CVAL.store(cval, Ordering::SeqCst);
        hw::vtimer_at(cval);
        if !hw::wait_for_interrupt(|| STAMP.load(Ordering::Acquire) != 0, WAKE_LIMIT) {
            say!("pairbench: error: timer_irq: no interrupt in round {round}");
            hw::vtimer_off();
            return;
        }
        if round >= WARMUP {
            buf[round - WARMUP] = STAMP.load(Ordering::Acquire).saturating_sub(cval);
        }
    }
    TIMER_CVAL.store(0, Ordering::SeqCst);
    hw::irq_enable(hw::VTIMER_INTID, false);
    summarise("timer_irq", buf);
}

/// Runs `WARMUP + SAMPLES` rounds of: counter, `kick`, wait until vCPU 0's
/// handler stamped the answer; prints the summary of the recorded rounds.
fn measure(name: &str, kick: impl Fn()) {
    // SAFETY: only vCPU 0 uses SAMPLE_BUF, here, and never re-entrantly
    // (handlers do not touch it).
    let buf = unsafe { &mut *core::ptr::addr_of_mut!(SAMPLE_BUF) };
    for round in 0..WARMUP + SAMPLES {
        STAMP.store(0, Ordering::SeqCst);
        let t0 = hw::now();
        kick();
        if !hw::wait_for_interrupt(|| STAMP.load(Ordering::Acquire) != 0, WAKE_LIMIT) {
            say!("pairbench: error: {name}: no interrupt in round {round}");
            return;
        }
        if round >= WARMUP {
            buf[round - WARMUP] = STAMP.load(Ordering::Acquire).saturating_sub(t0);
        }
    }
    summarise(name, buf);
}

fn summarise(name: &str, buf: &mut [u64; SAMPLES]) {
    buf.sort_unstable();
    let pct = |p: usize| buf[(SAMPLES * p / 100).min(SAMPLES - 1)];
    say!(
        "bench: {name} n={SAMPLES} min={} p50={} p99={} max={}",
        buf[0],
        pct(50),
        pct(99),
        buf[SAMPLES - 1]
    );
}

fn secondary(cpu: usize) {
    hw::detect_gic();
    if !hw::cpu_init(cpu, 1 << SGI_PING, PRIORITY) {
        say!("pairbench: error: no redistributor for vCPU {cpu}");
        return;
    }
    SECONDARY_READY.store(true, Ordering::Release);
    loop {
        hw::wait_for_interrupt(|| false, u32::MAX);
    }
}

/// Both vCPUs' interrupt handler (vectors in septum-guest-rt).
#[no_mangle]
extern "C" fn guest_on_irq() {
    let t = hw::now();
    let (intid, token) = hw::ack();
    match intid {
        SGI_PING => hw::send_sgi(SGI_PONG, 0),
        SGI_PONG => STAMP.store(t, Ordering::Release),
        hw::VTIMER_INTID if TIMER_CVAL.load(Ordering::Relaxed) != 0 => {
            hw::vtimer_off();
            STAMP.store(t, Ordering::Release);
        }
        hw::VTIMER_INTID => {
            // Read while it is active (before the EOI), then silenced.
            let s = hw::irq_state(hw::VTIMER_INTID);
            hw::vtimer_off();
            let bits =
                u64::from(s.0) | u64::from(s.1) << 1 | u64::from(s.2) << 2 | u64::from(s.3) << 3;
            TIMER_SEEN.store(bits | 1 << 4, Ordering::Release);
        }
        hw::UART1_INTID => {
            hw::uart1_clear();
            STAMP.store(t, Ordering::Release);
        }
        _ => {}
    }
    if intid < 1020 {
        hw::eoi(token);
    }
}

/// The benchmark takes no synchronous exception: one is a bug.
#[no_mangle]
extern "C" fn guest_on_sync(esr: u64, far: u64, elr: u64) -> u64 {
    guest_on_unexpected(esr, far, elr);
    loop {
        core::hint::spin_loop();
    }
}

#[no_mangle]
extern "C" fn guest_on_unexpected(esr: u64, _far: u64, elr: u64) {
    say!("pairbench: error: unexpected exception, ESR {esr:#x} at {elr:#x}");
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    say!("pairbench: panic: {info}");
    loop {
        core::hint::spin_loop();
    }
}
