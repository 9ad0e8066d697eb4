//! The hypervisor's own (EL2 stage-1) translation: an identity map of the
//! platform's RAM (normal, cacheable) and MMIO windows (device, never
//! executable) in 2 MiB blocks over the low 4 GiB, where every supported
//! board keeps its RAM and peripherals.
//!
//! The tables are static and are filled by the boot core with the MMU off
//! (plain aligned stores only), so no allocator is needed to turn caches on.

use core::cell::UnsafeCell;

use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2};
use septum_core::config::Platform;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use super::asm;

const ENTRIES: usize = 512;
const GIB: u64 = 1 << 30;
const BLOCK: u64 = 2 << 20;
/// The identity map covers `[0, MAPPED_GIB GiB)`.
pub const MAPPED_GIB: usize = 4;

#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; ENTRIES]>);

// SAFETY: the tables are written only by the boot core before any other core
// runs, and are read-only (for the MMU) afterwards.
unsafe impl Sync for Table {}

impl Table {
    const fn new() -> Self {
        Table(UnsafeCell::new([0; ENTRIES]))
    }
}

static L1: Table = Table::new();
static L2: [Table; MAPPED_GIB] = [const { Table::new() }; MAPPED_GIB];

// MAIR_EL2 attribute indexes.
const ATTR_DEVICE: u64 = 0; // Device-nGnRE
const ATTR_NORMAL: u64 = 1; // Normal, write-back, read/write-allocate

const DESC_BLOCK: u64 = 0b01;
const DESC_TABLE: u64 = 0b11;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
const AP1_RES1: u64 = 1 << 6; // AP[1] is RES1 in the EL2 regime
const XN: u64 = 1 << 54;

/// Fills the static tables from the platform description.
///
/// # Safety
/// Boot core only, before [`enable`] runs on any core.
pub unsafe fn build(platform: &Platform) {
    for (gib, l2) in L2.iter().enumerate() {
        // SAFETY: single writer (boot core, other cores not started).
        let l2t = unsafe { &mut *l2.0.get() };
        for (i, e) in l2t.iter_mut().enumerate() {
            let base = gib as u64 * GIB + i as u64 * BLOCK;
            *e = block_desc(platform, base);
        }
        // SAFETY: as above.
        let l1t = unsafe { &mut *L1.0.get() };
        l1t[gib] = (l2.0.get() as u64) | DESC_TABLE;
    }
}

fn block_desc(p: &Platform, base: u64) -> u64 {
    let touches = |start: u64, size: u64| base < start.saturating_add(size) && start < base + BLOCK;
    if p.mmio.iter().any(|r| touches(r.start.raw(), r.size)) {
        return base | DESC_BLOCK | AF | AP1_RES1 | (ATTR_DEVICE << 2) | XN;
    }
    let inside =
        |start: u64, size: u64| base >= start && base + BLOCK <= start.saturating_add(size);
    if p.ram.iter().any(|r| inside(r.start.raw(), r.size)) {
        return base | DESC_BLOCK | AF | AP1_RES1 | SH_INNER | (ATTR_NORMAL << 2);
    }
    0
}

/// Turns on this core's EL2 MMU and caches with the static tables.
///
/// # Safety
/// [`build`] must have completed (and be visible to this core).
pub unsafe fn enable() {
    MAIR_EL2.set((0x04 << (8 * ATTR_DEVICE)) | (0xff << (8 * ATTR_NORMAL)));
    let pa_range = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange);
    TCR_EL2.write(
        TCR_EL2::T0SZ.val(25)
            + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL2::SH0::Inner
            + TCR_EL2::TG0::KiB_4
            + TCR_EL2::PS.val(pa_range.min(5)),
    );
    // RES1 bits 31 and 23 of TCR_EL2 (non-VHE).
    TCR_EL2.set(TCR_EL2.get() | (1 << 31) | (1 << 23));
    TTBR0_EL2.set_baddr(L1.0.get() as u64);
    asm::dsb_isb();
    asm::tlbi_alle2();
    SCTLR_EL2.modify(
        SCTLR_EL2::M::Enable
            + SCTLR_EL2::C::Cacheable
            + SCTLR_EL2::I::Cacheable
            + SCTLR_EL2::SA::Enable,
    );
    asm::dsb_isb();
}

/// Whether `[start, start+len)` lies in the identity map's range.
pub fn covers(start: u64, len: u64) -> bool {
    start
        .checked_add(len)
        .is_some_and(|e| e <= MAPPED_GIB as u64 * GIB)
}
