//! The hypervisor's own EL2 stage-1 map, decided as data.
//!
//! EL2 protects itself: its code is read-only and executable, its read-only
//! data (which holds the pristine guest images and the signed manifest) is
//! read-only and never executable, its data and stacks are writable and
//! never executable, and each core's stacks sit between unmapped guard
//! pages, so an overflow faults instead of running into a neighbour. All
//! other RAM (the partitions' memory, which EL2 scrubs and loads) is
//! writable and never executable; MMIO is device memory, never executable.
//! `arch::aarch64::mmu` writes the tables this module describes.
//!
//! Each core's stack slot, from low to high addresses:
//! `[guard | emergency stack | guard | stack]`. The stack grows down into the
//! guard below it; an exception taken from EL2 itself (always a hypervisor
//! fault) switches to the emergency stack, so that a stack overflow can
//! still be reported and end in the safe state.

use crate::addr::PhysAddr;
use crate::config::{Platform, MAX_CPUS};

pub const PAGE: u64 = 4096;
/// A level-2 block: the map uses these where a whole block has one access.
pub const BLOCK: u64 = 2 << 20;
pub const GIB: u64 = 1 << 30;
/// The map covers `[0, MAPPED_GIB GiB)`, where every supported board keeps
/// its RAM and peripherals.
pub const MAPPED_GIB: usize = 4;

/// One unmapped page below each stack and below each emergency stack.
pub const GUARD: u64 = PAGE;
/// A core's ordinary EL2 stack.
pub const STACK: u64 = 64 * 1024;
/// The stack a fault taken at EL2 runs on.
pub const EMERGENCY: u64 = 16 * 1024;
/// One core's slot: `[guard | emergency | guard | stack]`.
pub const SLOT: u64 = GUARD + EMERGENCY + GUARD + STACK;
/// The `.stacks` section: one slot for every core the hypervisor supports.
pub const STACKS: u64 = SLOT * MAX_CPUS as u64;

/// Top of core `core`'s ordinary stack (the end of its slot).
pub const fn stack_top(stacks_start: u64, core: u64) -> u64 {
    stacks_start + (core + 1) * SLOT
}

/// Top of core `core`'s emergency stack.
pub const fn emergency_top(stacks_start: u64, core: u64) -> u64 {
    stacks_start + core * SLOT + GUARD + EMERGENCY
}

/// What EL2 may do with a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No mapping: any access faults.
    Unmapped,
    /// The hypervisor's code: read and execute, never written.
    Text,
    /// Read only, never executed.
    ReadOnly,
    /// Read and write, never executed.
    ReadWrite,
    /// Device memory (nGnRE), read and write, never executed.
    Device,
}

impl Access {
    pub fn writable(self) -> bool {
        matches!(self, Access::ReadWrite | Access::Device)
    }
    pub fn executable(self) -> bool {
        self == Access::Text
    }
}

/// Where the linker put the hypervisor image's sections (linker symbols).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLayout {
    /// `_start`: the first byte of code.
    pub start: u64,
    /// End of `.text` (page-aligned): `.rodata` starts here.
    pub text_end: u64,
    /// End of `.rodata` (page-aligned): `.data` and `.bss` start here.
    pub rodata_end: u64,
    /// Start of `.stacks` (page-aligned); `.data`/`.bss` end here.
    pub stacks_start: u64,
    /// End of `.stacks` and of the image.
    pub end: u64,
}

/// Why an image layout cannot be mapped as described.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// A section boundary is not page-aligned.
    Unaligned,
    /// The sections are out of order.
    Order,
    /// `.stacks` is not exactly [`STACKS`] bytes.
    StacksSize,
    /// The image is not inside the hypervisor's RAM region.
    OutsideRegion,
}

/// The whole EL2 map: the platform's RAM and MMIO plus the image's sections.
pub struct El2Map<'a> {
    platform: &'a Platform,
    image: ImageLayout,
}

impl<'a> El2Map<'a> {
    pub fn new(platform: &'a Platform, image: ImageLayout) -> Result<Self, LayoutError> {
        let l = &image;
        let bounds = [l.start, l.text_end, l.rodata_end, l.stacks_start, l.end];
        if bounds.iter().any(|b| !b.is_multiple_of(PAGE)) {
            return Err(LayoutError::Unaligned);
        }
        if bounds.windows(2).any(|w| w[0] > w[1]) || l.start == l.text_end {
            return Err(LayoutError::Order);
        }
        if l.end - l.stacks_start != STACKS {
            return Err(LayoutError::StacksSize);
        }
        let h = platform.hypervisor;
        if l.start < h.start.raw() || l.end > h.start.raw().saturating_add(h.size) {
            return Err(LayoutError::OutsideRegion);
        }
        Ok(El2Map { platform, image })
    }

    /// Access for the page containing `addr`.
    pub fn page(&self, addr: u64) -> Access {
        let l = &self.image;
        if addr >= l.start && addr < l.end {
            return if addr < l.text_end {
                Access::Text
            } else if addr < l.rodata_end {
                Access::ReadOnly
            } else if addr < l.stacks_start {
                Access::ReadWrite
            } else {
                match (addr - l.stacks_start) % SLOT {
                    o if o < GUARD => Access::Unmapped,
                    o if o < GUARD + EMERGENCY => Access::ReadWrite,
                    o if o < GUARD + EMERGENCY + GUARD => Access::Unmapped,
                    _ => Access::ReadWrite,
                }
            };
        }
        self.block_rule(addr & !(BLOCK - 1))
    }

    /// `Some(access)` when every page of the 2 MiB block at `base` has that
    /// access (the map then uses one block descriptor), `None` when the block
    /// needs a page table.
    pub fn block(&self, base: u64) -> Option<Access> {
        let l = &self.image;
        let inside = |b: u64| b > base && b < base + BLOCK;
        let sections = [l.start, l.text_end, l.rodata_end, l.stacks_start, l.end];
        let stacks_in_block = l.stacks_start < base + BLOCK && base < l.end;
        if sections.iter().any(|&b| inside(b)) || stacks_in_block {
            return None;
        }
        // No boundary inside: the first page speaks for the whole block.
        Some(self.page(base))
    }

    /// The next address above `addr` where [`Self::page`] or
    /// [`Self::block`] may answer differently: a boundary of the image's
    /// sections or stack slots, of an MMIO window or of a RAM bank. Every
    /// page in `[addr, until)` has `page(addr)`'s access, and every block
    /// `b` with `addr <= b` and `b + BLOCK <= until` has `block(addr)`'s
    /// when that is `Some` (host-tested). The boot core fills its tables
    /// with one decision per run instead of one per entry (the critical
    /// partition waits for it).
    pub fn uniform_until(&self, addr: u64) -> u64 {
        let l = &self.image;
        let mut until = u64::MAX;
        let mut consider = |b: u64| {
            if b > addr && b < until {
                until = b;
            }
        };
        for b in [l.start, l.text_end, l.rodata_end, l.stacks_start, l.end] {
            consider(b);
        }
        if addr >= l.stacks_start && addr < l.end {
            let slot = l.stacks_start + (addr - l.stacks_start) / SLOT * SLOT;
            for o in [GUARD, GUARD + EMERGENCY, GUARD + EMERGENCY + GUARD, SLOT] {
                consider(slot + o);
            }
        }
        for r in self.platform.mmio.iter().chain(self.platform.ram.iter()) {
            consider(r.start.raw());
            consider(r.start.raw().saturating_add(r.size));
        }
        until
    }

    /// How many entries of `size` from `at` share `at`'s decision: at least
    /// one, at most `left` (the rest of the table).
    fn run_len(&self, at: u64, size: u64, left: usize) -> usize {
        (((self.uniform_until(at) - at) / size) as usize).clamp(1, left)
    }

    /// Fills a level-3 table: `table[j]` maps the page at `base + j * PAGE`.
    /// One decision per run of equal pages ([`Self::uniform_until`]), then
    /// a store per entry: this runs before the critical partition's first
    /// instruction.
    pub fn fill_pages(&self, base: u64, table: &mut [u64]) {
        let mut j = 0;
        while j < table.len() {
            let pa = base + j as u64 * PAGE;
            let a = self.page(pa);
            let n = self.run_len(pa, PAGE, table.len() - j);
            fill_run(
                &mut table[j..j + n],
                descriptor(PhysAddr::new(pa), a, true),
                PAGE,
            );
            j += n;
        }
    }

    /// Fills a level-2 table: `table[i]` maps the block at `base + i *
    /// BLOCK`, in runs as [`Self::fill_pages`]. A block that needs pages
    /// gets `pages(block base)`: the descriptor of a level-3 table the
    /// caller filled with [`Self::fill_pages`], or `None` when it has no
    /// table left, which ends the fill with `false`.
    pub fn fill_blocks(
        &self,
        base: u64,
        table: &mut [u64],
        mut pages: impl FnMut(u64) -> Option<u64>,
    ) -> bool {
        let mut i = 0;
        while i < table.len() {
            let b = base + i as u64 * BLOCK;
            match self.block(b) {
                Some(a) => {
                    let n = self.run_len(b, BLOCK, table.len() - i);
                    fill_run(
                        &mut table[i..i + n],
                        descriptor(PhysAddr::new(b), a, false),
                        BLOCK,
                    );
                    i += n;
                }
                None => match pages(b) {
                    Some(d) => {
                        table[i] = d;
                        i += 1;
                    }
                    None => return false,
                },
            }
        }
        true
    }

    /// The platform rule for a block outside the image: MMIO windows are
    /// device memory (a block touching one is device, since windows need not
    /// be 2 MiB-aligned), RAM banks wholly containing the block are
    /// read-write, everything else is unmapped.
    fn block_rule(&self, base: u64) -> Access {
        let touches =
            |start: u64, size: u64| base < start.saturating_add(size) && start < base + BLOCK;
        if self
            .platform
            .mmio
            .iter()
            .any(|r| touches(r.start.raw(), r.size))
        {
            return Access::Device;
        }
        let inside =
            |start: u64, size: u64| base >= start && base + BLOCK <= start.saturating_add(size);
        if self
            .platform
            .ram
            .iter()
            .any(|r| inside(r.start.raw(), r.size))
        {
            return Access::ReadWrite;
        }
        Access::Unmapped
    }

    /// Which core's stack guard `far` (a faulting address) fell in, and
    /// whether it is the guard below the ordinary stack (`true`) or below
    /// the emergency stack (`false`).
    pub fn guard_hit(&self, far: u64) -> Option<(usize, bool)> {
        let l = &self.image;
        if far < l.stacks_start || far >= l.end {
            return None;
        }
        let off = far - l.stacks_start;
        let core = (off / SLOT) as usize;
        match off % SLOT {
            o if o < GUARD => Some((core, false)),
            o if (GUARD + EMERGENCY..GUARD + EMERGENCY + GUARD).contains(&o) => Some((core, true)),
            _ => None,
        }
    }
}

// Stage-1 descriptor bits (EL2 translation regime, one VA range, 4 KiB granule).
const DESC_BLOCK: u64 = 0b01;
const DESC_PAGE: u64 = 0b11;
pub const DESC_TABLE: u64 = 0b11;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
/// AP[2]: read-only.
const AP_RO: u64 = 1 << 7;
/// AP[1] is RES1 in the EL2 regime.
const AP1_RES1: u64 = 1 << 6;
/// XN (bit 54; the EL2 regime has no PXN).
const XN: u64 = 1 << 54;
/// MAIR_EL2 attribute indexes.
pub const ATTR_DEVICE: u64 = 0;
pub const ATTR_NORMAL: u64 = 1;

/// Consecutive descriptors from `first`, each mapping `step` bytes more
/// than the one before (all 0 when `first` is the invalid descriptor).
fn fill_run(entries: &mut [u64], first: u64, step: u64) {
    let step = if first == 0 { 0 } else { step };
    let mut d = first;
    // Four at a time: two stores per two entries instead of a loop trip
    // each (the EL2 map has 4,096 entries to fill at boot).
    let mut quads = entries.chunks_exact_mut(4);
    for q in &mut quads {
        q[0] = d;
        q[1] = d + step;
        q[2] = d + 2 * step;
        q[3] = d + 3 * step;
        d += 4 * step;
    }
    for e in quads.into_remainder() {
        *e = d;
        d += step;
    }
}

/// The descriptor for `pa` with `access`, as a level-2 block (`page` false)
/// or a level-3 page (`page` true). Unmapped is the invalid descriptor 0.
pub fn descriptor(pa: PhysAddr, access: Access, page: bool) -> u64 {
    let kind = if page { DESC_PAGE } else { DESC_BLOCK };
    let normal = pa.raw() | kind | AF | AP1_RES1 | SH_INNER | (ATTR_NORMAL << 2);
    match access {
        Access::Unmapped => 0,
        Access::Text => normal | AP_RO,
        Access::ReadOnly => normal | AP_RO | XN,
        Access::ReadWrite => normal | XN,
        Access::Device => pa.raw() | kind | AF | AP1_RES1 | (ATTR_DEVICE << 2) | XN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{PhysAddr, PhysRange};
    use crate::config::{Board, CpuBoot, Gic, GicVersion, SafeStateAction, Uart, UartKind};

    const RAM: [PhysRange; 1] = [PhysRange {
        start: PhysAddr(0x4000_0000),
        size: 1 << 30,
    }];
    const MMIO: [PhysRange; 1] = [PhysRange {
        start: PhysAddr(0x0800_0000),
        size: 0x0200_0000,
    }];

    fn platform() -> Platform {
        Platform {
            board: Board::QemuVirt,
            cpus: 4,
            ram: &RAM,
            mmio: &MMIO,
            hypervisor: PhysRange {
                start: PhysAddr(0x4000_0000),
                size: 96 << 20,
            },
            load_addr: PhysAddr(0x4000_0000),
            console: Uart {
                kind: UartKind::Pl011,
                base: PhysAddr(0x0900_0000),
            },
            gic: Gic {
                version: GicVersion::V3,
                gicd: PhysAddr(0x0800_0000),
                gicr: PhysAddr(0x080a_0000),
                gicr_stride: 0x2_0000,
                gicc: PhysAddr(0),
                gich: PhysAddr(0),
                gicv: PhysAddr(0),
                maintenance_irq: 25,
            },
            cpu_boot: CpuBoot::Psci(crate::config::Conduit::Hvc),
            safe_state: SafeStateAction::Park,
        }
    }

    /// Text ends and rodata ends mid-block, as the real image does.
    fn layout() -> ImageLayout {
        let stacks_start = 0x4000_0000 + (40 << 20) + 0x3000;
        ImageLayout {
            start: 0x4000_0000,
            text_end: 0x4003_4000,
            rodata_end: 0x4000_0000 + (38 << 20) + 0x5000,
            stacks_start,
            end: stacks_start + STACKS,
        }
    }

    #[test]
    fn sections_get_their_access() {
        let p = platform();
        let m = El2Map::new(&p, layout()).unwrap();
        let l = layout();
        assert_eq!(m.page(l.start), Access::Text);
        assert_eq!(m.page(l.text_end - 1), Access::Text);
        assert_eq!(m.page(l.text_end), Access::ReadOnly);
        assert_eq!(m.page(l.rodata_end - 1), Access::ReadOnly);
        assert_eq!(m.page(l.rodata_end), Access::ReadWrite);
        assert_eq!(
            m.page(l.end),
            Access::ReadWrite,
            "partition RAM above the image"
        );
        assert_eq!(m.page(0x0900_0000), Access::Device);
        assert_eq!(m.page(0x3000_0000), Access::Unmapped, "no RAM, no MMIO");
    }

    #[test]
    fn nothing_is_both_writable_and_executable() {
        let p = platform();
        let m = El2Map::new(&p, layout()).unwrap();
        for page in (0..(MAPPED_GIB as u64 * GIB)).step_by(PAGE as usize * 7) {
            let a = m.page(page);
            assert!(!(a.writable() && a.executable()), "{page:#x}: {a:?}");
            if a.executable() {
                assert!(
                    (layout().start..layout().text_end).contains(&page),
                    "{page:#x}"
                );
            }
        }
    }

    #[test]
    fn every_stack_has_a_guard_below_it_and_below_its_emergency_stack() {
        let p = platform();
        let l = layout();
        let m = El2Map::new(&p, l).unwrap();
        for core in 0..MAX_CPUS as u64 {
            let top = stack_top(l.stacks_start, core);
            let bottom = top - STACK;
            assert_eq!(m.page(top - 1), Access::ReadWrite);
            assert_eq!(m.page(bottom), Access::ReadWrite);
            assert_eq!(
                m.page(bottom - 1),
                Access::Unmapped,
                "core {core}: guard below the stack"
            );
            assert_eq!(m.guard_hit(bottom - 8), Some((core as usize, true)));
            let etop = emergency_top(l.stacks_start, core);
            assert_eq!(etop, bottom - GUARD);
            assert_eq!(m.page(etop - 1), Access::ReadWrite);
            assert_eq!(m.page(etop - EMERGENCY), Access::ReadWrite);
            assert_eq!(m.page(etop - EMERGENCY - 1), Access::Unmapped);
            assert_eq!(
                m.guard_hit(etop - EMERGENCY - 1),
                Some((core as usize, false))
            );
            assert_eq!(m.guard_hit(top - 16), None);
            assert_eq!(top % 16, 0);
            assert_eq!(etop % 16, 0);
        }
        assert_eq!(m.guard_hit(l.stacks_start - 1), None);
    }

    #[test]
    fn blocks_split_only_where_a_boundary_falls_inside() {
        let p = platform();
        let l = layout();
        let m = El2Map::new(&p, l).unwrap();
        // The text/rodata boundary and the stacks need page tables.
        assert_eq!(m.block(0x4000_0000), None);
        assert_eq!(m.block(l.rodata_end & !(BLOCK - 1)), None);
        assert_eq!(m.block(l.stacks_start & !(BLOCK - 1)), None);
        // Blocks wholly inside one section, or outside the image, do not.
        assert_eq!(m.block(0x4000_0000 + (4 << 20)), Some(Access::ReadOnly));
        assert_eq!(m.block(0x4000_0000 + (100 << 20)), Some(Access::ReadWrite));
        assert_eq!(m.block(0x0800_0000), Some(Access::Device));
        // Whatever `block` says for a whole block, every page agrees.
        for base in (0..(MAPPED_GIB as u64 * GIB)).step_by(BLOCK as usize) {
            if let Some(a) = m.block(base) {
                for off in (0..BLOCK).step_by(PAGE as usize * 31) {
                    assert_eq!(m.page(base + off), a, "{:#x}", base + off);
                }
            }
        }
        let split = (0..(MAPPED_GIB as u64 * GIB))
            .step_by(BLOCK as usize)
            .filter(|&b| m.block(b).is_none())
            .count();
        assert!(split <= 4, "{split} page tables");
    }

    #[test]
    fn bad_layouts_are_refused() {
        let p = platform();
        let mut l = layout();
        l.text_end += 8;
        assert_eq!(El2Map::new(&p, l).err(), Some(LayoutError::Unaligned));
        let mut l = layout();
        l.rodata_end = l.text_end - PAGE;
        assert_eq!(El2Map::new(&p, l).err(), Some(LayoutError::Order));
        let mut l = layout();
        l.end -= PAGE;
        assert_eq!(El2Map::new(&p, l).err(), Some(LayoutError::StacksSize));
        let mut l = layout();
        l.start -= BLOCK;
        assert_eq!(El2Map::new(&p, l).err(), Some(LayoutError::OutsideRegion));
    }

    #[test]
    fn descriptors_encode_the_access() {
        let pa = PhysAddr(0x4020_0000);
        let t = descriptor(pa, Access::Text, true);
        assert_eq!(t & XN, 0);
        assert_ne!(t & AP_RO, 0);
        assert_eq!(t & 0b11, DESC_PAGE);
        let r = descriptor(pa, Access::ReadOnly, false);
        assert_ne!(r & XN, 0);
        assert_ne!(r & AP_RO, 0);
        assert_eq!(r & 0b11, DESC_BLOCK);
        let w = descriptor(pa, Access::ReadWrite, true);
        assert_ne!(w & XN, 0);
        assert_eq!(w & AP_RO, 0);
        let d = descriptor(pa, Access::Device, false);
        assert_eq!((d >> 2) & 7, ATTR_DEVICE);
        assert_ne!(d & XN, 0);
        assert_eq!(descriptor(pa, Access::Unmapped, true), 0);
        assert_eq!(t & !0xffff_0000_0000_0fff, pa.raw());
    }

    /// The run-length shortcut the boot core takes gives, entry for entry,
    /// what the per-entry decisions give, over the whole mapped range.
    #[test]
    fn filled_tables_match_every_decision() {
        let p = platform();
        let m = El2Map::new(&p, layout()).unwrap();
        for gib in 0..MAPPED_GIB as u64 {
            let mut l2 = [u64::MAX; 512];
            let mut needed = std::vec::Vec::new();
            assert!(m.fill_blocks(gib * GIB, &mut l2, |b| {
                needed.push(b);
                Some(0x5a5a_0003)
            }));
            for (i, &e) in l2.iter().enumerate() {
                let b = gib * GIB + i as u64 * BLOCK;
                match m.block(b) {
                    Some(a) => {
                        assert_eq!(e, descriptor(PhysAddr::new(b), a, false), "block {b:#x}")
                    }
                    None => {
                        assert_eq!(e, 0x5a5a_0003, "block {b:#x}");
                        assert!(needed.contains(&b));
                        let mut l3 = [u64::MAX; 512];
                        m.fill_pages(b, &mut l3);
                        for (j, &pe) in l3.iter().enumerate() {
                            let pa = b + j as u64 * PAGE;
                            assert_eq!(
                                pe,
                                descriptor(PhysAddr::new(pa), m.page(pa), true),
                                "page {pa:#x}"
                            );
                        }
                    }
                }
            }
        }
        // Out of level-3 tables: the fill says so.
        let mut l2 = [0u64; 512];
        let image_gib = layout().start / GIB;
        assert!(!m.fill_blocks(image_gib * GIB, &mut l2, |_| None));
    }
}
