//! The hypervisor console: one physical UART shared by the hypervisor's log
//! and the partitions' emulated UARTs. Every line carries its source tag, and
//! whole lines are written under one lock so sources never interleave.

use core::fmt::{self, Write};

use septum_core::config::Uart as UartCfg;
use spin::mutex::SpinMutex as Mutex;
use spin::Once;

use crate::drivers::uart::Uart;

static CONSOLE: Once<Mutex<Uart>> = Once::new();

/// Brings up the console UART. Called once by the boot core.
pub fn init(cfg: &UartCfg) {
    CONSOLE.call_once(|| {
        // SAFETY: the configuration names the platform console, which the
        // EL2 identity map covers as device memory and nothing else drives.
        let uart = unsafe { Uart::new(cfg) };
        uart.init();
        Mutex::new(uart)
    });
    log::set_logger(&LOGGER).ok();
    log::set_max_level(log::LevelFilter::Info);
}

struct LineWriter<'a>(&'a Uart);

impl Write for LineWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Writes one tagged line: `[tag] text`.
pub fn line(tag: &str, args: fmt::Arguments<'_>) {
    if let Some(c) = CONSOLE.get() {
        let uart = c.lock();
        let mut w = LineWriter(&uart);
        let _ = write!(w, "[{tag}] ");
        let _ = w.write_fmt(args);
        let _ = w.write_str("\n");
    }
}

/// Writes a partition's console line (already sanitised by the vUART).
pub fn partition_line(tag: &str, bytes: &[u8]) {
    if let Some(c) = CONSOLE.get() {
        let uart = c.lock();
        uart.write_bytes(b"[");
        uart.write_bytes(tag.as_bytes());
        uart.write_bytes(b"] ");
        uart.write_bytes(bytes);
        uart.write_bytes(b"\n");
    }
}

/// Last-resort output for a fatal error: takes the console even if another
/// core (or this one, interrupted mid-line) holds the lock.
pub fn emergency(args: fmt::Arguments<'_>) {
    if let Some(c) = CONSOLE.get() {
        // Give a line in progress a moment to finish; then write anyway.
        let mut tries = 0;
        let guard = loop {
            if let Some(g) = c.try_lock() {
                break Some(g);
            }
            tries += 1;
            if tries > 1_000_000 {
                break None;
            }
        };
        match guard {
            Some(uart) => {
                let _ = LineWriter(&uart).write_fmt(args);
            }
            None => {
                // SAFETY: fatal path only; a garbled line beats a silent halt.
                let uart = unsafe { &*c.as_mut_ptr() };
                let _ = LineWriter(uart).write_fmt(args);
            }
        }
    }
}

struct Logger;
static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        match record.level() {
            log::Level::Error => line("septum", format_args!("ERROR: {}", record.args())),
            log::Level::Warn => line("septum", format_args!("warning: {}", record.args())),
            _ => line("septum", *record.args()),
        }
    }

    fn flush(&self) {}
}
