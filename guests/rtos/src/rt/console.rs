//! `print!`/`println!` on a PL011: QEMU virt's (and a Septum partition's)
//! at 0x0900_0000, or the one `platform::select` chose.

use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use septum_rtos::platform;
use septum_rtos::time::Clock;

use super::mmio::Mmio;
use super::uart::Pl011;

const UART_SIZE: usize = 0x1000;
/// Longest wait for FIFO space per character: a byte at 115200 baud takes
/// about 87 us, so a healthy UART never hits this.
const CHAR_TIMEOUT_US: u64 = 200;

/// The UART's address: QEMU virt's until `init` says otherwise, so that
/// even a very early panic is reported there.
static UART_BASE: AtomicUsize = AtomicUsize::new(platform::VIRT_UART);
static TIMEOUT_TICKS: AtomicU64 = AtomicU64::new(u64::MAX);
/// Characters dropped because the transmit FIFO stayed full (inspect with a
/// debugger; the status line format is fixed).
static DROPPED: AtomicU32 = AtomicU32::new(0);

fn uart() -> Pl011 {
    // SAFETY: `UART_BASE` only ever holds `platform::VIRT_UART` or
    // `platform::RPI4_UART`, PL011s in the boot map's device windows (the
    // partition's emulated one under a hypervisor); only this module uses
    // them.
    Pl011::new(unsafe { Mmio::new(UART_BASE.load(Ordering::Relaxed), UART_SIZE) })
}

/// Switches to the PL011 at `base` (a `platform` constant) and enables it.
/// Without a usable counter frequency the per-character wait is one tick.
pub fn init(base: usize, clock: Option<Clock>) {
    assert!(base == platform::VIRT_UART || base == platform::RPI4_UART);
    UART_BASE.store(base, Ordering::Relaxed);
    let ticks = clock.map_or(1, |c| c.us_to_ticks(CHAR_TIMEOUT_US));
    TIMEOUT_TICKS.store(ticks.max(1), Ordering::Relaxed);
    uart().init();
}

pub fn write_bytes(bytes: &[u8]) {
    let timeout = TIMEOUT_TICKS.load(Ordering::Relaxed);
    let uart = uart();
    for &b in bytes {
        if !uart.putc(b, timeout) {
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
