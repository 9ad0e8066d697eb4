//! Distributor registers that GICv2 and GICv3 lay out the same way (the
//! SPI trigger, pending and active bits), used by both backends through
//! `drivers/gic.rs`.

use spin::mutex::TicketMutex;

use super::mmio::Mmio;

/// One `GICD_ICFGR` word covers 16 interrupts, possibly of two partitions,
/// so its read-modify-write is serialised. A ticket lock (first come, first
/// served), held for the three register accesses alone with interrupts
/// masked: a core waits at most for the other cores' single accesses, and
/// no partition can hold it longer.
static ICFGR: TicketMutex<()> = TicketMutex::new(());

pub const GICD_ISPENDR: usize = 0x0200;
pub const GICD_ICPENDR: usize = 0x0280;
pub const GICD_ISACTIVER: usize = 0x0300;
pub const GICD_ICACTIVER: usize = 0x0380;
pub const GICD_ICFGR: usize = 0x0c00;

/// Byte offset of `intid`'s word in a bit-per-interrupt array, and its bit.
pub fn bit(intid: u32) -> (usize, u32) {
    ((intid / 32) as usize * 4, 1 << (intid % 32))
}

pub fn set_spi_edge(gicd: &Mmio, intid: u32, edge: bool) {
    let off = GICD_ICFGR + (intid / 16) as usize * 4;
    let shift = (intid % 16) * 2 + 1;
    let _rmw = ICFGR.lock();
    let v = gicd.read32(off);
    let v = if edge {
        v | (1 << shift)
    } else {
        v & !(1 << shift)
    };
    gicd.write32(off, v);
}

pub fn set_spi_pending(gicd: &Mmio, intid: u32, pending: bool) {
    let (off, bit) = bit(intid);
    let reg = if pending { GICD_ISPENDR } else { GICD_ICPENDR };
    gicd.write32(reg + off, bit);
}

pub fn clear_spi_active(gicd: &Mmio, intid: u32) {
    let (off, bit) = bit(intid);
    gicd.write32(GICD_ICACTIVER + off, bit);
}

/// Pending and active bits of interrupt word `word` (INTIDs `32 * word ..`)
/// in the frame `regs` (a distributor, or a redistributor's SGI_base).
pub fn state_word(regs: &Mmio, word: u32) -> (u32, u32) {
    let off = word as usize * 4;
    (
        regs.read32(GICD_ISPENDR + off),
        regs.read32(GICD_ISACTIVER + off),
    )
}
