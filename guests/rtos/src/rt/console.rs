//! `print!`/`println!` on the PL011 at 0x0900_0000.

use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::mmio::Mmio;
use super::timer;
use super::uart::Pl011;

const UART_BASE: usize = 0x0900_0000;
const UART_SIZE: usize = 0x1000;
/// Longest wait for FIFO space per character: a byte at 115200 baud takes
/// about 87 us, so a healthy UART never hits this.
const CHAR_TIMEOUT_US: u64 = 200;

// SAFETY: 0x0900_0000 is the PL011 on QEMU virt and in the partition's IPA
// space; it lies in the 0..1 GiB device mapping and only this module uses it.
static UART: Pl011 = Pl011::new(unsafe { Mmio::new(UART_BASE, UART_SIZE) });
static TIMEOUT_TICKS: AtomicU64 = AtomicU64::new(u64::MAX);
/// Characters dropped because the transmit FIFO stayed full (inspect with a
/// debugger; the status line format is fixed).
static DROPPED: AtomicU32 = AtomicU32::new(0);

pub fn init() {
    let hz = timer::frequency();
    let ticks = hz.saturating_mul(CHAR_TIMEOUT_US) / 1_000_000;
    TIMEOUT_TICKS.store(ticks.max(1), Ordering::Relaxed);
    UART.init();
}

pub fn write_bytes(bytes: &[u8]) {
    let timeout = TIMEOUT_TICKS.load(Ordering::Relaxed);
    for &b in bytes {
        if !UART.putc(b, timeout) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        let _ = core::fmt::Write::write_fmt(&mut $crate::rt::console::Console, format_args!($($arg)*));
    }};
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {{
        $crate::print!($($arg)*);
        $crate::print!("\n");
    }};
}
