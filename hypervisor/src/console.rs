//! The hypervisor console: one physical UART shared by the hypervisor's log
//! and the partitions' emulated UARTs, where no core ever waits for another
//! partition's output (docs/architecture.md, "The console").
//!
//! Each core queues whole lines in its own ring (`septum_core::console`)
//! and returns at once; a full ring drops the line and counts it. One core,
//! the drainer (a core of a non-critical partition), moves lines to the UART
//! from its EL2 timer and after its own lines, the critical partition's
//! lines first, writing only while the UART has room. The hypervisor's
//! event lines are rate-limited per partition. Only the terminal paths
//! (the safe state, a fatal fault, a boot halt) write synchronously
//! ([`emergency`]): by then no guest runs.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use septum_core::config::{Criticality, Uart as UartCfg, MAX_CPUS};
use septum_core::console::{self as logic, Cursor, LineRing, RateLimit, Verdict, MAX_LINE};
use spin::mutex::SpinMutex as Mutex;
use spin::Once;

use crate::config::CONFIG;
use crate::drivers::uart::Uart;
use crate::{percpu, time};

/// Each core's ring: the boot log (about 5 KiB) fits the boot core's.
const RING: usize = 16 * 1024;
/// Bytes one drain writes at most (the UART's FIFO bounds it on a board;
/// this bounds it on QEMU, whose UARTs never fill).
const DRAIN_BUDGET: usize = 256;
/// While output is pending, the drainer drains at least this often (µs):
/// a PL011's 32-byte FIFO empties in 2.8 ms at 115200 baud.
const DRAIN_PERIOD_US: u64 = 1000;
/// Event lines per partition: a burst of this many, then one per
/// `EVENT_INTERVAL_MS`.
const EVENT_BURST: u64 = 40;
const EVENT_INTERVAL_MS: u64 = 100;

static RINGS: [LineRing<RING>; MAX_CPUS] = [const { LineRing::new() }; MAX_CPUS];
static LIMITS: [RateLimit; MAX_CPUS] = [const { RateLimit::new() }; MAX_CPUS];
static UART: Once<Uart> = Once::new();
/// The drainer's state. Only the drainer takes it (`try_lock`, never
/// waiting), and the terminal paths, which may force it.
static DRAIN: Mutex<Drain> = Mutex::new(Drain::new());
static DRAINER: AtomicUsize = AtomicUsize::new(0);
/// `[c]`: core `c` belongs to a critical partition (from the configuration,
/// at `init`).
static CRITICAL: Once<[bool; MAX_CPUS]> = Once::new();
/// Set once a terminal path owns the UART: queued lines are not drained
/// any more (they were flushed first).
static TERMINAL: AtomicBool = AtomicBool::new(false);

struct Drain {
    cursor: Cursor,
    /// A notice the drainer writes before the next line (lines dropped).
    notice: [u8; 96],
    notice_len: usize,
    notice_pos: usize,
    #[cfg(feature = "paced-console")]
    pace: Option<logic::PacedUart>,
}

impl Drain {
    const fn new() -> Self {
        Drain {
            cursor: Cursor {
                current: None,
                next: 0,
            },
            notice: [0; 96],
            notice_len: 0,
            notice_pos: 0,
            #[cfg(feature = "paced-console")]
            pace: None,
        }
    }

    /// Whether the UART takes a byte now.
    fn room(&self, uart: &Uart) -> bool {
        #[cfg(feature = "paced-console")]
        if let Some(p) = &self.pace {
            if p.room(time::ticks()) == 0 {
                return false;
            }
        }
        uart.tx_ready()
    }

    fn put(&mut self, uart: &Uart, c: u8) {
        #[cfg(feature = "paced-console")]
        if let Some(p) = &mut self.pace {
            p.wrote(time::ticks());
        }
        uart.put_raw(c);
    }

    /// Writes `c` when there is room, waiting (bounded) if `wait`.
    fn emit(&mut self, uart: &Uart, c: u8, wait: bool) -> bool {
        let mut n = 0u32;
        while !self.room(uart) {
            if !wait {
                return false;
            }
            n += 1;
            if n > 50_000_000 {
                break; // a stuck UART: the byte is lost, not the core
            }
            core::hint::spin_loop();
        }
        self.put(uart, c);
        true
    }

    /// Moves queued bytes to the UART: at most `budget` bytes, or all of
    /// them when `wait` (terminal paths). Returns whether any remain.
    fn run(&mut self, uart: &Uart, mut budget: usize, wait: bool) -> bool {
        let critical = CRITICAL.get().copied().unwrap_or_default();
        let cpus = cpus();
        loop {
            // A notice first, whole.
            while self.notice_pos < self.notice_len {
                if budget == 0 || !self.emit(uart, self.notice[self.notice_pos], wait) {
                    return true;
                }
                self.notice_pos += 1;
                budget -= 1;
            }
            let Some(core) =
                logic::next_ring(&self.cursor, &critical[..cpus], |c| RINGS[c].pending())
            else {
                return false;
            };
            let ring = &RINGS[core];
            let pos = match self.cursor.current {
                Some((_, pos)) => pos,
                None => {
                    let dropped = ring.take_dropped();
                    if dropped > 0 {
                        self.set_notice(format_args!(
                            "[septum] core {core}: {dropped} console lines dropped (its buffer was full)\r\n"
                        ));
                        self.cursor.current = Some((core, 0));
                        continue;
                    }
                    0
                }
            };
            let Some(len) = ring.peek_len() else {
                self.cursor.current = None;
                continue;
            };
            // The line, then "\r\n".
            let mut pos = pos;
            while pos < len + 2 {
                let c = if pos < len {
                    ring.byte(pos)
                } else if pos == len {
                    b'\r'
                } else {
                    b'\n'
                };
                if budget == 0 || !self.emit(uart, c, wait) {
                    self.cursor.current = Some((core, pos));
                    return true;
                }
                pos += 1;
                budget -= 1;
            }
            ring.pop();
            self.cursor.current = None;
            if !critical[core] {
                self.cursor.next = (core + 1) % cpus;
            }
        }
    }

    fn set_notice(&mut self, args: fmt::Arguments<'_>) {
        let mut w = BufWriter {
            buf: &mut self.notice,
            len: 0,
        };
        let _ = w.write_fmt(args);
        self.notice_len = w.len;
        self.notice_pos = 0;
    }
}

fn cpus() -> usize {
    usize::from(CONFIG.platform.cpus).clamp(1, MAX_CPUS)
}

/// `[c]`: core `c` belongs to a critical partition.
fn critical_cores() -> [bool; MAX_CPUS] {
    let mut crit = [false; MAX_CPUS];
    for p in CONFIG
        .partitions
        .iter()
        .filter(|p| p.criticality == Criticality::Critical)
    {
        for &c in p.cores {
            if let Some(x) = crit.get_mut(c as usize) {
                *x = true;
            }
        }
    }
    crit
}

/// Brings up the console UART and picks the drainer. Called once by the
/// boot core.
pub fn init(cfg: &UartCfg) {
    UART.call_once(|| {
        // SAFETY: the configuration names the platform console, which the
        // EL2 identity map covers as device memory and nothing else drives.
        let uart = unsafe { Uart::new(cfg) };
        uart.init();
        uart
    });
    let crit = *CRITICAL.call_once(critical_cores);
    DRAINER.store(
        logic::drainer(&crit[..cpus()], &[true; MAX_CPUS][..cpus()]),
        Ordering::Relaxed,
    );
    #[cfg(feature = "paced-console")]
    {
        // A board's console: 115200 baud, a 32-byte FIFO (the PL011's).
        DRAIN.lock().pace = Some(logic::PacedUart::new(time::freq(), 115_200, 32));
    }
    log::set_logger(&LOGGER).ok();
    log::set_max_level(log::LevelFilter::Info);
}

/// The core that drains the console.
pub fn drainer() -> usize {
    DRAINER.load(Ordering::Relaxed)
}

/// What the boot log says about the console.
pub fn describe() -> impl fmt::Display {
    struct D;
    impl fmt::Display for D {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "console: {} KiB line buffer per core, drained by core {}{}; event lines {} at once, then one per {} ms per partition",
                RING / 1024,
                drainer(),
                if cfg!(feature = "paced-console") {
                    ", paced at 115200 baud (test mode)"
                } else {
                    ""
                },
                EVENT_BURST,
                EVENT_INTERVAL_MS
            )
        }
    }
    D
}

struct BufWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for BufWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Queues `parts` as one line on this core's ring; the drainer kicks its
/// own drain at once.
fn queue(parts: &[&[u8]]) {
    if let Some(r) = RINGS.get(percpu::core()) {
        r.push(parts);
    }
    if percpu::core() == drainer() {
        poll();
    }
}

/// Queues one tagged line: `[tag] text`.
pub fn line(tag: &str, args: fmt::Arguments<'_>) {
    let mut buf = [0u8; MAX_LINE];
    let mut w = BufWriter {
        buf: &mut buf,
        len: 0,
    };
    let _ = w.write_fmt(args);
    let len = w.len;
    queue(&[b"[", tag.as_bytes(), b"] ", &buf[..len]]);
}

/// Queues a partition's console line (already sanitised by the vUART).
pub fn partition_line(tag: &str, bytes: &[u8]) {
    queue(&[b"[", tag.as_bytes(), b"] ", bytes]);
}

/// On the drainer core: moves what it can to the UART, never waiting.
/// Elsewhere: nothing. Cheap when nothing is queued.
pub fn poll() {
    if percpu::core() != drainer() || TERMINAL.load(Ordering::Relaxed) {
        return;
    }
    summaries();
    let Some(uart) = UART.get() else { return };
    if let Some(mut d) = DRAIN.try_lock() {
        d.run(uart, DRAIN_BUDGET, false);
    }
}

/// Summary lines for partitions whose events were suppressed and that have
/// gone quiet since.
fn summaries() {
    let now = time::ticks();
    for p in CONFIG.partitions {
        let Some(l) = LIMITS.get(p.id) else { continue };
        if let Some(n) = l.take_summary(now, event_interval(), EVENT_BURST) {
            suppressed_line(p.name, n);
        }
    }
}

fn suppressed_line(partition: &str, n: u32) {
    line(
        "septum",
        format_args!("partition '{partition}': {n} similar events suppressed"),
    );
}

fn event_interval() -> u64 {
    EVENT_INTERVAL_MS * time::freq() / 1000
}

/// When this core must drain next: `Some` on the drainer while anything is
/// queued (the EL2 timer is armed for it, liveness.rs).
pub fn next_drain() -> Option<u64> {
    if percpu::core() != drainer() || TERMINAL.load(Ordering::Relaxed) {
        return None;
    }
    let pending = RINGS.iter().take(cpus()).any(|r| r.pending())
        || LIMITS.iter().any(|l| l.pending_suppressed() > 0);
    pending.then(|| time::ticks() + DRAIN_PERIOD_US * time::freq() / 1_000_000)
}

/// Terminal output (a fatal fault, the safe state, a boot halt): takes the
/// console from the drainer (waiting for it briefly, then anyway), writes
/// out everything queued so far, then `args`, waiting for the UART as
/// needed. After the first call nothing more is drained from the rings.
pub fn emergency(args: fmt::Arguments<'_>) {
    let Some(uart) = UART.get() else { return };
    let mut tries = 0;
    let mut guard = loop {
        if let Some(g) = DRAIN.try_lock() {
            break Some(g);
        }
        tries += 1;
        if tries > 1_000_000 {
            break None;
        }
        core::hint::spin_loop();
    };
    let d: &mut Drain = match guard.as_deref_mut() {
        Some(d) => d,
        // SAFETY: terminal path only; the drainer is stuck mid-drain (or
        // hung, or this core was interrupted in it); a garbled line beats a
        // silent halt.
        None => unsafe { &mut *DRAIN.as_mut_ptr() },
    };
    if !TERMINAL.swap(true, Ordering::Relaxed) {
        d.run(uart, usize::MAX, true);
    }
    struct Direct<'a>(&'a mut Drain, &'a Uart);
    impl Write for Direct<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for &c in s.as_bytes() {
                if c == b'\n' {
                    self.0.emit(self.1, b'\r', true);
                }
                self.0.emit(self.1, c, true);
            }
            Ok(())
        }
    }
    let _ = Direct(d, uart).write_fmt(args);
}

struct Logger;
static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        // A line written while this core handles a partition's exit is that
        // partition's event: rate-limited, so no guest can flood the console.
        if let Some((p, _)) = percpu::running() {
            if let Some(l) = LIMITS.get(p.cfg.id) {
                match l.check(time::ticks(), event_interval(), EVENT_BURST) {
                    Verdict::Suppress => return,
                    Verdict::Print { suppressed: 0 } => {}
                    Verdict::Print { suppressed } => suppressed_line(p.name(), suppressed),
                }
            }
        }
        match record.level() {
            log::Level::Error => line("septum", format_args!("ERROR: {}", record.args())),
            log::Level::Warn => line("septum", format_args!("warning: {}", record.args())),
            _ => line("septum", *record.args()),
        }
    }

    fn flush(&self) {}
}
