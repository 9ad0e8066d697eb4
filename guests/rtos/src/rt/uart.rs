//! PL011 transmit side. Under the hypervisor only DR writes and FR reads are
//! emulated faithfully, so that is all the steady-state path uses.

use super::mmio::Mmio;
use super::timer;

const DR: usize = 0x00;
const FR: usize = 0x18;
const CR: usize = 0x30;
const FR_TXFF: u32 = 1 << 5;
const CR_UARTEN: u32 = 1 << 0;
const CR_TXE: u32 = 1 << 8;
const CR_RXE: u32 = 1 << 9;

pub struct Pl011 {
    regs: Mmio,
}

impl Pl011 {
    pub const fn new(regs: Mmio) -> Self {
        Self { regs }
    }

    /// Enables the transmitter (line settings are left to firmware/QEMU).
    pub fn init(&self) {
        self.regs.write32(CR, CR_UARTEN | CR_TXE | CR_RXE);
    }

    /// Sends one byte, waiting at most `timeout_ticks` for FIFO space;
    /// `false` if the byte had to be dropped. The bound keeps a stuck or
    /// slow UART from stealing unbounded time from the calling job.
    pub fn putc(&self, byte: u8, timeout_ticks: u64) -> bool {
        if self.regs.read32(FR) & FR_TXFF != 0 {
            let start = timer::now();
            while self.regs.read32(FR) & FR_TXFF != 0 {
                if timer::now().wrapping_sub(start) > timeout_ticks {
                    return false;
                }
            }
        }
        self.regs.write32(DR, u32::from(byte));
        true
    }
}
