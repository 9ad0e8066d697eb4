//! Transmit-only console UARTs: the PL011 (QEMU `virt`, Raspberry Pi uart0)
//! and the BCM2835 auxiliary mini-UART (Raspberry Pi).

use septum_core::config::{Uart as UartCfg, UartKind};

use super::mmio::Mmio;

// PL011 registers.
const PL011_DR: usize = 0x00;
const PL011_FR: usize = 0x18;
const PL011_FR_TXFF: u32 = 1 << 5;
const PL011_CR: usize = 0x30;
const PL011_LCRH: usize = 0x2c;
// Mini-UART registers, relative to the AUX block base.
const AUX_MU_IO: usize = 0x40;
const AUX_MU_LSR: usize = 0x54;
const AUX_MU_LSR_TX_EMPTY: u32 = 1 << 5;

#[derive(Debug)]
pub struct Uart {
    kind: UartKind,
    regs: Mmio,
}

impl Uart {
    /// # Safety
    /// `cfg.base` must be the platform console, mapped as device memory, used
    /// only through this driver.
    pub unsafe fn new(cfg: &UartCfg) -> Self {
        // SAFETY: per this function's contract.
        let regs = unsafe { Mmio::new(cfg.base) };
        Uart {
            kind: cfg.kind,
            regs,
        }
    }

    /// Enables transmission, keeping the firmware's baud-rate settings (QEMU
    /// ignores them; on the Pi the firmware configures the clock).
    pub fn init(&self) {
        if self.kind == UartKind::Pl011 {
            let cr = self.regs.read32(PL011_CR);
            // UARTEN | TXE | RXE
            self.regs.write32(PL011_CR, cr | 1 | (1 << 8) | (1 << 9));
            let lcrh = self.regs.read32(PL011_LCRH);
            // 8 bits, FIFOs on.
            self.regs.write32(PL011_LCRH, lcrh | (3 << 5) | (1 << 4));
        }
    }

    /// Whether the transmitter takes a byte now (never waits: the console
    /// decides what to do when it does not).
    pub fn tx_ready(&self) -> bool {
        match self.kind {
            UartKind::Pl011 => self.regs.read32(PL011_FR) & PL011_FR_TXFF == 0,
            UartKind::MiniUart => self.regs.read32(AUX_MU_LSR) & AUX_MU_LSR_TX_EMPTY != 0,
        }
    }

    /// Writes one byte; the caller checked [`tx_ready`](Self::tx_ready).
    pub fn put_raw(&self, c: u8) {
        match self.kind {
            UartKind::Pl011 => self.regs.write32(PL011_DR, c as u32),
            UartKind::MiniUart => self.regs.write32(AUX_MU_IO, c as u32),
        }
    }
}
