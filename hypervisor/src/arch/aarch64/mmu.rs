//! The hypervisor's own (EL2 stage-1) translation: an identity map of the
//! low 4 GiB, where every supported board keeps its RAM and peripherals,
//! with the access `septum_core::el2map` decides for each page: code RX,
//! read-only data (the pristine guest images among it) R, data and stacks
//! RW and never executable, unmapped guard pages around every stack, other
//! RAM RW and never executable, MMIO device memory. 2 MiB blocks where a
//! whole block has one access, 4 KiB pages in the few blocks that hold a
//! section boundary or the stacks.
//!
//! The tables are static and are filled by the boot core with the MMU off
//! (plain aligned stores only), so no allocator is needed to turn caches on.

use core::cell::UnsafeCell;

use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2};
use septum_core::config::Platform;
use septum_core::el2map::{
    El2Map, ImageLayout, LayoutError, ATTR_DEVICE, ATTR_NORMAL, DESC_TABLE, GIB,
};
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use super::asm;

pub use septum_core::el2map::MAPPED_GIB;

const ENTRIES: usize = 512;
/// Level-3 tables for the blocks that need pages (the image has at most
/// five section boundaries and 704 KiB of stacks: four or five blocks).
const L3_TABLES: usize = 8;

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
static L3: [Table; L3_TABLES] = [const { Table::new() }; L3_TABLES];

unsafe extern "C" {
    static _start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __stacks_start: u8;
    static __image_end: u8;
}

/// Where the linker put the image's sections.
pub fn image_layout() -> ImageLayout {
    ImageLayout {
        start: (&raw const _start) as u64,
        text_end: (&raw const __text_end) as u64,
        rodata_end: (&raw const __rodata_end) as u64,
        stacks_start: (&raw const __stacks_start) as u64,
        end: (&raw const __image_end) as u64,
    }
}

/// Why the map could not be built.
#[derive(Clone, Copy, Debug)]
pub enum MapError {
    Layout(LayoutError),
    /// More blocks need pages than there are level-3 tables.
    OutOfTables,
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MapError::Layout(e) => {
                write!(f, "the image's sections are not as the map expects ({e:?})")
            }
            MapError::OutOfTables => write!(f, "more than {L3_TABLES} blocks need 4 KiB pages"),
        }
    }
}

/// Fills the static tables from the platform description and the image's
/// layout; returns how many 2 MiB blocks needed 4 KiB pages.
///
/// # Safety
/// Boot core only, before [`enable`] runs on any core.
pub unsafe fn build(platform: &Platform) -> Result<usize, MapError> {
    let map = El2Map::new(platform, image_layout()).map_err(MapError::Layout)?;
    let mut l3_used = 0;
    // SAFETY: single writer (boot core, other cores not started).
    let l1t = unsafe { &mut *L1.0.get() };
    for (gib, l2) in L2.iter().enumerate() {
        // SAFETY: as above.
        let l2t = unsafe { &mut *l2.0.get() };
        let filled = map.fill_blocks(gib as u64 * GIB, l2t, |base| {
            let l3 = L3.get(l3_used)?;
            l3_used += 1;
            // SAFETY: as above; each level-3 table is used once.
            map.fill_pages(base, unsafe { &mut *l3.0.get() });
            Some((l3.0.get() as u64) | DESC_TABLE)
        });
        if !filled {
            return Err(MapError::OutOfTables);
        }
        l1t[gib] = (l2.0.get() as u64) | DESC_TABLE;
    }
    Ok(l3_used)
}

/// Which core's stack guard a faulting address hit, if any (`true`: the
/// guard below the ordinary stack, i.e. a stack overflow).
pub fn guard_hit(platform: &Platform, far: u64) -> Option<(usize, bool)> {
    El2Map::new(platform, image_layout()).ok()?.guard_hit(far)
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
    // WXN: whatever is writable is never executable, whatever the tables say.
    SCTLR_EL2.modify(
        SCTLR_EL2::M::Enable
            + SCTLR_EL2::C::Cacheable
            + SCTLR_EL2::I::Cacheable
            + SCTLR_EL2::SA::Enable
            + SCTLR_EL2::WXN::Enable,
    );
    asm::dsb_isb();
}

/// Whether `[start, start+len)` lies in the identity map's range.
pub fn covers(start: u64, len: u64) -> bool {
    start
        .checked_add(len)
        .is_some_and(|e| e <= MAPPED_GIB as u64 * GIB)
}
