//! AArch64 translation tables (VMSAv8-64, 4 KiB granule, 39-bit input).
//!
//! One builder serves two regimes:
//! - [`Regime::El2Stage1`]: the hypervisor's own (identity) map, walked from
//!   `TTBR0_EL2` under [`tcr_el2_value`] and [`MAIR_EL2_VALUE`];
//! - [`Regime::Stage2`]: a partition's IPA → PA map, walked from `VTTBR_EL2`
//!   under [`vtcr_el2_value`].
//!
//! Both use T0SZ = 25 (a 2^39-byte input space) and start at level 1, so the
//! root is a single 4 KiB table of 512 entries of 1 GiB each:
//!
//! | level | input bits | entry covers | leaf kind        |
//! |-------|------------|--------------|------------------|
//! | 1     | `[38:30]`    | 1 GiB        | block            |
//! | 2     | `[29:21]`    | 2 MiB        | block            |
//! | 3     | `[20:12]`    | 4 KiB        | page             |
//!
//! Mapping only ever turns invalid entries into valid ones (a request that
//! touches an existing mapping fails with [`MapError::Overlap`]), so no
//! break-before-make sequence and no TLB invalidation is needed for tables
//! that are already live; the caller must still issue `dsb ishst` before the
//! new entries are relied upon. Tables are never freed: these are boot-time,
//! static maps.

use crate::addr::PhysAddr;

/// Translation granule and page size.
pub const PAGE_SIZE: u64 = 1 << 12;
/// Size of a level-2 block.
pub const BLOCK_2M: u64 = 1 << 21;
/// Size of a level-1 block.
pub const BLOCK_1G: u64 = 1 << 30;
/// Width of the input address space (T0SZ = 64 - 39 = 25).
pub const IA_BITS: u32 = 39;
/// First input address that cannot be mapped.
pub const IA_LIMIT: u64 = 1 << IA_BITS;
/// First output address a descriptor cannot hold (48-bit OA, no FEAT_LPA2).
pub const OA_LIMIT: u64 = 1 << 48;
/// The T0SZ value both regimes use.
pub const T0SZ: u64 = 64 - IA_BITS as u64;

const ENTRIES: usize = 512;
const ROOT_LEVEL: u32 = 1;
const LEAF_LEVEL: u32 = 3;

// Descriptor type bits [1:0].
const DESC_VALID: u64 = 1 << 0;
const DESC_TYPE_TABLE_OR_PAGE: u64 = 1 << 1;
const DESC_TABLE: u64 = 0b11;
const DESC_BLOCK: u64 = 0b01;
const DESC_PAGE: u64 = 0b11;
/// Output address / next-level table address, bits `[47:12]`.
const OA_MASK: u64 = 0x0000_ffff_ffff_f000;

// Attribute bits common to both regimes.
const SH_SHIFT: u32 = 8;
const SH_INNER: u64 = 0b11 << SH_SHIFT;
const AF: u64 = 1 << 10;
/// Stage 1 (single-privilege EL2 regime): XN. Stage 2: XN[1] — with
/// FEAT_XNX, XN = 0b10 means "not executable at EL1 or EL0"; without it,
/// bit 54 is the whole XN field. Either way: never executable.
const XN: u64 = 1 << 54;
// Bit 53 is PXN only in two-privilege regimes; in the non-VHE EL2 regime
// it is RES0, and at stage 2 it is XN[0] (FEAT_XNX) or RES0. Never set.

// EL2 stage 1.
const S1_ATTRINDX_SHIFT: u32 = 2;
const S1_ATTRINDX_MASK: u64 = 0b111 << S1_ATTRINDX_SHIFT;
/// AP[2]: read-only.
const S1_AP_RO: u64 = 1 << 7;
/// AP[1]: the regime has one privilege level, so AP[1] is RES1.
const S1_AP1_RES1: u64 = 1 << 6;
/// MAIR_EL2 index of Device-nGnRE.
pub const MAIR_IDX_DEVICE: u64 = 0;
/// MAIR_EL2 index of Normal write-back memory.
pub const MAIR_IDX_NORMAL: u64 = 1;

/// MAIR_EL2: Attr0 = Device-nGnRE (0x04), Attr1 = Normal, inner and outer
/// write-back non-transient, read- and write-allocate (0xff).
pub const MAIR_EL2_VALUE: u64 = (0x04 << (8 * MAIR_IDX_DEVICE)) | (0xff << (8 * MAIR_IDX_NORMAL));

// Stage 2.
const S2_MEMATTR_SHIFT: u32 = 2;
const S2_MEMATTR_MASK: u64 = 0b1111 << S2_MEMATTR_SHIFT;
/// MemAttr[3:2] = 0b11 outer WB, `[1:0]` = 0b11 inner WB (with HCR_EL2.FWB = 0).
const S2_MEMATTR_NORMAL_WB: u64 = 0b1111;
/// MemAttr[3:2] = 0b00 Device, `[1:0]` = 0b01 nGnRE.
const S2_MEMATTR_DEVICE_NGNRE: u64 = 0b0001;
/// MemAttr[3:2] = 0b01 outer non-cacheable, `[1:0]` = 0b01 inner
/// non-cacheable. Combined with any stage-1 type the guest picks, the
/// access is non-cacheable or device: never cached.
const S2_MEMATTR_NORMAL_NC: u64 = 0b0101;
/// S2AP[0] (bit 6): read allowed.
const S2AP_READ: u64 = 1 << 6;
/// S2AP[1] (bit 7): write allowed.
const S2AP_WRITE: u64 = 1 << 7;

/// Backing store for translation tables.
///
/// On hardware this is identity-mapped RAM owned by the hypervisor; in tests
/// it is a vector. Addresses are the tables' physical addresses because that
/// is what descriptors hold.
pub trait TableArena {
    /// A fresh 4 KiB-aligned table (it is zeroed again by the caller), or
    /// `None` when the arena is exhausted.
    fn alloc_table(&mut self) -> Option<PhysAddr>;
    /// Entry `index` (0..512) of `table`.
    fn read(&self, table: PhysAddr, index: usize) -> u64;
    /// Sets entry `index` (0..512) of `table`.
    fn write(&mut self, table: PhysAddr, index: usize, desc: u64);
    /// Sets every entry of a table fresh from [`Self::alloc_table`], not
    /// yet linked into a tree, to 0 (an arena can do it faster than 512
    /// [`Self::write`]s).
    fn clear(&mut self, table: PhysAddr) {
        for i in 0..ENTRIES {
            self.write(table, i, 0);
        }
    }
}

/// Which translation regime a table belongs to (the descriptor formats differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// The hypervisor's own stage-1 map (non-VHE EL2, one privilege level).
    El2Stage1,
    /// A partition's stage-2 (IPA → PA) map.
    Stage2,
}

/// Memory type of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    /// Normal memory, inner and outer write-back cacheable, inner shareable.
    Normal,
    /// Device-nGnRE. Never executable.
    Device,
    /// Normal memory, inner and outer non-cacheable: a channel page, which
    /// its reader may map as device memory (Linux's `/dev/mem` does), so
    /// neither side may keep it in a cache. Stage 2 only, never executable.
    NonCacheable,
}

/// Access rights and memory type of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapAttrs {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub mem: MemType,
}

/// Why a mapping request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// `ia`, `pa` or `size` is not a multiple of 4 KiB, or `size` is 0.
    Misaligned,
    /// The input range reaches past 2^39, or the output range past 2^48.
    OutOfRange,
    /// Input address `at` (the lowest one in the request) is already mapped.
    Overlap { at: u64 },
    /// The arena ran out of tables (or returned an unusable address).
    NoMemory,
    /// The attributes cannot be expressed in this regime (see [`leaf_attributes`]).
    InvalidAttrs,
}

/// A translation table tree for one regime.
#[derive(Debug)]
pub struct PageTable {
    root: PhysAddr,
    regime: Regime,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Read only: fail with Overlap if anything in the range is mapped.
    Check,
    /// Allocate and link every table the commit pass will descend into.
    Prepare,
    /// Write the leaf descriptors (cannot run out of memory).
    Commit,
}

/// The request being mapped: `pa(ia) = pa0 + (ia - ia0)`.
struct Request {
    ia0: u64,
    pa0: u64,
    leaf_attrs: u64,
}

const fn level_shift(level: u32) -> u32 {
    12 + 9 * (LEAF_LEVEL - level)
}

const fn index_at(ia: u64, level: u32) -> usize {
    ((ia >> level_shift(level)) as usize) & (ENTRIES - 1)
}

/// Allocates a table, checks the address and zeroes it. Zeroing here rather
/// than trusting the arena means a stale table can never leak old mappings.
fn new_table(arena: &mut impl TableArena) -> Result<PhysAddr, MapError> {
    let t = arena.alloc_table().ok_or(MapError::NoMemory)?;
    if !t.is_aligned(PAGE_SIZE) || t.raw() >= OA_LIMIT {
        return Err(MapError::NoMemory);
    }
    arena.clear(t);
    Ok(t)
}

/// The attribute bits (everything but the address and the type bits) of a
/// leaf descriptor for `attrs` in `regime`.
///
/// Rules: Device and non-cacheable memory are always execute-never (an
/// `exec` request is dropped, not refused). Non-cacheable memory exists
/// only at stage 2 (the hypervisor's own map has no such attribute). At EL2 stage 1 every valid mapping is readable, so
/// `read = false` is [`MapError::InvalidAttrs`]. At stage 2 write-only is
/// expressible, but a mapping with neither read nor write is refused
/// (leave the range unmapped instead).
pub fn leaf_attributes(regime: Regime, attrs: MapAttrs) -> Result<u64, MapError> {
    let exec = attrs.exec && attrs.mem == MemType::Normal;
    let mut d = AF | SH_INNER;
    if !exec {
        d |= XN;
    }
    match regime {
        Regime::El2Stage1 => {
            if !attrs.read {
                return Err(MapError::InvalidAttrs);
            }
            let idx = match attrs.mem {
                MemType::Normal => MAIR_IDX_NORMAL,
                MemType::Device => MAIR_IDX_DEVICE,
                MemType::NonCacheable => return Err(MapError::InvalidAttrs),
            };
            d |= idx << S1_ATTRINDX_SHIFT;
            d |= S1_AP1_RES1;
            if !attrs.write {
                d |= S1_AP_RO;
            }
        }
        Regime::Stage2 => {
            if !attrs.read && !attrs.write {
                return Err(MapError::InvalidAttrs);
            }
            let m = match attrs.mem {
                MemType::Normal => S2_MEMATTR_NORMAL_WB,
                MemType::Device => S2_MEMATTR_DEVICE_NGNRE,
                MemType::NonCacheable => S2_MEMATTR_NORMAL_NC,
            };
            d |= m << S2_MEMATTR_SHIFT;
            if attrs.read {
                d |= S2AP_READ;
            }
            if attrs.write {
                d |= S2AP_WRITE;
            }
        }
    }
    Ok(d)
}

/// Decodes the attributes of a leaf descriptor this module wrote.
fn decode_attrs(regime: Regime, desc: u64) -> MapAttrs {
    let exec = desc & XN == 0;
    match regime {
        Regime::El2Stage1 => MapAttrs {
            read: true,
            write: desc & S1_AP_RO == 0,
            exec,
            mem: if (desc & S1_ATTRINDX_MASK) >> S1_ATTRINDX_SHIFT == MAIR_IDX_NORMAL {
                MemType::Normal
            } else {
                MemType::Device
            },
        },
        Regime::Stage2 => MapAttrs {
            read: desc & S2AP_READ != 0,
            write: desc & S2AP_WRITE != 0,
            exec,
            mem: match (desc & S2_MEMATTR_MASK) >> S2_MEMATTR_SHIFT {
                S2_MEMATTR_NORMAL_WB => MemType::Normal,
                S2_MEMATTR_NORMAL_NC => MemType::NonCacheable,
                _ => MemType::Device,
            },
        },
    }
}

impl PageTable {
    /// An empty tree: allocates and zeroes the root table.
    pub fn new(arena: &mut impl TableArena, regime: Regime) -> Result<Self, MapError> {
        Ok(Self {
            root: new_table(arena)?,
            regime,
        })
    }

    /// Physical address of the root table (for `TTBR0_EL2` / [`vttbr_value`]).
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The regime the tree was built for.
    pub fn regime(&self) -> Regime {
        self.regime
    }

    /// Maps `[ia, ia + size)` to `[pa, pa + size)` with `attrs`.
    ///
    /// Uses 1 GiB blocks, then 2 MiB blocks, wherever the input address, the
    /// output address and the remaining size allow, and 4 KiB pages
    /// elsewhere. Level-1 blocks with the 4 KiB granule need no optional
    /// feature, at either stage. Where an (empty) table already sits in
    /// place of a block, the range is mapped through that table instead.
    ///
    /// Never replaces a valid entry: if any part of the range is already
    /// mapped, nothing is changed and the lowest such address is reported
    /// as [`MapError::Overlap`].
    ///
    /// On [`MapError::NoMemory`] no new translation is visible (no leaf is
    /// written until every table is in place), but tables allocated on the
    /// way may remain linked into the tree, empty. They are harmless: they
    /// translate nothing, and a later `map` over the same range reuses them.
    pub fn map(
        &mut self,
        arena: &mut impl TableArena,
        ia: u64,
        pa: PhysAddr,
        size: u64,
        attrs: MapAttrs,
    ) -> Result<(), MapError> {
        if size == 0
            || !ia.is_multiple_of(PAGE_SIZE)
            || !pa.is_aligned(PAGE_SIZE)
            || !size.is_multiple_of(PAGE_SIZE)
        {
            return Err(MapError::Misaligned);
        }
        let ia_end = ia.checked_add(size).ok_or(MapError::OutOfRange)?;
        let pa_end = pa.raw().checked_add(size).ok_or(MapError::OutOfRange)?;
        if ia_end > IA_LIMIT || pa_end > OA_LIMIT {
            return Err(MapError::OutOfRange);
        }
        let req = Request {
            ia0: ia,
            pa0: pa.raw(),
            leaf_attrs: leaf_attributes(self.regime, attrs)?,
        };
        for pass in [Pass::Check, Pass::Prepare, Pass::Commit] {
            visit(arena, pass, self.root, ROOT_LEVEL, ia, ia_end, &req)?;
        }
        Ok(())
    }

    /// Walks the tree: the output address and attributes for `ia`, or `None`
    /// if it is unmapped (or at or above 2^39).
    pub fn translate(&self, arena: &impl TableArena, ia: u64) -> Option<(PhysAddr, MapAttrs)> {
        if ia >= IA_LIMIT {
            return None;
        }
        let mut table = self.root;
        let mut level = ROOT_LEVEL;
        loop {
            let desc = arena.read(table, index_at(ia, level));
            if desc & DESC_VALID == 0 {
                return None;
            }
            let is_table_or_page = desc & DESC_TYPE_TABLE_OR_PAGE != 0;
            if level < LEAF_LEVEL && is_table_or_page {
                table = PhysAddr::new(desc & OA_MASK);
                level += 1;
                continue;
            }
            if level == LEAF_LEVEL && !is_table_or_page {
                // 0b01 at level 3 is a reserved encoding: a fault.
                return None;
            }
            let size = 1u64 << level_shift(level);
            let out = (desc & OA_MASK & !(size - 1)) | (ia & (size - 1));
            return Some((PhysAddr::new(out), decode_attrs(self.regime, desc)));
        }
    }
}

/// One pass of [`PageTable::map`] over `[start, end)` inside `table`.
fn visit(
    arena: &mut impl TableArena,
    pass: Pass,
    table: PhysAddr,
    level: u32,
    start: u64,
    end: u64,
    req: &Request,
) -> Result<(), MapError> {
    let size = 1u64 << level_shift(level);
    let mut ia = start;
    while ia < end {
        let idx = index_at(ia, level);
        let entry_base = ia & !(size - 1);
        let chunk_end = end.min(entry_base + size);
        let desc = arena.read(table, idx);
        if level < LEAF_LEVEL && desc & DESC_TABLE == DESC_TABLE {
            let next = PhysAddr::new(desc & OA_MASK);
            visit(arena, pass, next, level + 1, ia, chunk_end, req)?;
        } else if desc & DESC_VALID != 0 {
            // A block or page (or a reserved level-3 encoding) is there.
            // Only the Check pass can see this: it ran over the same range.
            return Err(MapError::Overlap { at: ia });
        } else {
            let pa = req.pa0 + (ia - req.ia0);
            let whole_entry = ia == entry_base && chunk_end == entry_base + size;
            let leaf_fits = level == LEAF_LEVEL || (whole_entry && pa.is_multiple_of(size));
            match pass {
                Pass::Check => {}
                Pass::Prepare => {
                    if !leaf_fits {
                        let t = new_table(arena)?;
                        arena.write(table, idx, (t.raw() & OA_MASK) | DESC_TABLE);
                        visit(arena, pass, t, level + 1, ia, chunk_end, req)?;
                    }
                }
                Pass::Commit => {
                    if !leaf_fits {
                        // Prepare linked a table here; reaching this means
                        // the arena did not return what was written to it.
                        return Err(MapError::NoMemory);
                    }
                    let kind = if level == LEAF_LEVEL {
                        DESC_PAGE
                    } else {
                        DESC_BLOCK
                    };
                    arena.write(table, idx, (pa & OA_MASK) | req.leaf_attrs | kind);
                }
            }
        }
        ia = chunk_end;
    }
    Ok(())
}

/// The `PS`/`IPS` encoding for a physical address size given in bits
/// (32, 36, 40, 42, 44, 48, 52 as ID_AA64MMFR0_EL1.PARange describes).
/// Other values round down to the next encodable size; 52 bits is reported
/// as 48 because 52-bit output with a 4 KiB granule needs FEAT_LPA2 and
/// TCR.DS, which these tables do not use.
pub const fn ps_encoding(pa_range_bits: u8) -> u64 {
    match pa_range_bits {
        0..=35 => 0b000,
        36..=39 => 0b001,
        40..=41 => 0b010,
        42..=43 => 0b011,
        44..=47 => 0b100,
        _ => 0b101,
    }
}

// TCR_EL2 / VTCR_EL2 fields shared by both.
const TCR_IRGN0_WBWA: u64 = 0b01 << 8;
const TCR_ORGN0_WBWA: u64 = 0b01 << 10;
const TCR_SH0_INNER: u64 = 0b11 << 12;
const TCR_TG0_4K: u64 = 0b00 << 14;
const TCR_PS_SHIFT: u32 = 16;
const TCR_EL2_RES1: u64 = (1 << 31) | (1 << 23);
const VTCR_SL0_LEVEL1: u64 = 0b01 << 6;
const VTCR_RES1: u64 = 1 << 31;

/// TCR_EL2 (non-VHE): T0SZ = 25, 4 KiB granule, table walks inner/outer
/// write-back write-allocate and inner shareable, PS from the CPU's
/// physical address size in bits (see [`ps_encoding`]), TBI = 0, and the
/// RES1 bits 23 and 31 set.
pub const fn tcr_el2_value(pa_range_bits: u8) -> u64 {
    T0SZ | TCR_IRGN0_WBWA
        | TCR_ORGN0_WBWA
        | TCR_SH0_INNER
        | TCR_TG0_4K
        | (ps_encoding(pa_range_bits) << TCR_PS_SHIFT)
        | TCR_EL2_RES1
}

/// VTCR_EL2: T0SZ = 25 with SL0 = 0b01 (start at level 1, which with the
/// 4 KiB granule accepts T0SZ 25..=33), 4 KiB granule, walks write-back
/// inner shareable, PS from the physical address size in bits, 8-bit VMIDs
/// (VS = 0), bit 31 RES1.
///
/// The 39-bit IPA space must not be larger than the PA size: on a CPU with
/// fewer than 40 PA bits (PARange 32 or 36) the caller must not use this
/// configuration (stage 2 would fault on the upper IPAs). Every core the
/// project targets (Cortex-A72: 44 bits; QEMU `virt` ≥ 40) is fine.
pub const fn vtcr_el2_value(pa_range_bits: u8) -> u64 {
    T0SZ | VTCR_SL0_LEVEL1
        | TCR_IRGN0_WBWA
        | TCR_ORGN0_WBWA
        | TCR_SH0_INNER
        | TCR_TG0_4K
        | (ps_encoding(pa_range_bits) << TCR_PS_SHIFT)
        | VTCR_RES1
}

/// VTTBR_EL2: VMID in bits `[63:48]`, root table address (BADDR) below, CnP 0.
///
/// [`vtcr_el2_value`] selects 8-bit VMIDs (every core the project targets
/// has only those), so bits `[63:56]` are RES0 there and `vmid` must be below
/// 256 to stay unique: the configuration validator must enforce it.
/// The value is placed unmasked so that a violation is visible, not aliased.
pub const fn vttbr_value(vmid: u16, root: PhysAddr) -> u64 {
    ((vmid as u64) << 48) | (root.raw() & OA_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Tables in a map keyed by address; addresses start at `base` and step
    /// by 4 KiB; `limit` tables at most.
    struct TestArena {
        tables: BTreeMap<u64, [u64; ENTRIES]>,
        next: u64,
        limit: usize,
    }

    impl TestArena {
        fn new(limit: usize) -> Self {
            Self {
                tables: BTreeMap::new(),
                next: 0x8000_0000,
                limit,
            }
        }
        fn count(&self) -> usize {
            self.tables.len()
        }
    }

    impl TableArena for TestArena {
        fn alloc_table(&mut self) -> Option<PhysAddr> {
            if self.tables.len() >= self.limit {
                return None;
            }
            let a = self.next;
            self.next += PAGE_SIZE;
            // Filled with garbage: PageTable must zero it itself.
            self.tables.insert(a, [0xdead_beef_dead_beef; ENTRIES]);
            Some(PhysAddr::new(a))
        }
        fn read(&self, table: PhysAddr, index: usize) -> u64 {
            self.tables[&table.raw()][index]
        }
        fn write(&mut self, table: PhysAddr, index: usize, desc: u64) {
            self.tables.get_mut(&table.raw()).unwrap()[index] = desc;
        }
    }

    const RW: MapAttrs = MapAttrs {
        read: true,
        write: true,
        exec: false,
        mem: MemType::Normal,
    };
    const RX: MapAttrs = MapAttrs {
        read: true,
        write: false,
        exec: true,
        mem: MemType::Normal,
    };
    const DEV: MapAttrs = MapAttrs {
        read: true,
        write: true,
        exec: false,
        mem: MemType::Device,
    };

    fn s2(limit: usize) -> (TestArena, PageTable) {
        let mut a = TestArena::new(limit);
        let pt = PageTable::new(&mut a, Regime::Stage2).unwrap();
        (a, pt)
    }

    /// The descriptor at `level` that translates `ia`, for checking kinds.
    fn leaf(a: &TestArena, pt: &PageTable, ia: u64) -> (u32, u64) {
        let mut t = pt.root();
        for level in 1..=3 {
            let d = a.read(t, index_at(ia, level));
            if level < 3 && d & 0b11 == 0b11 {
                t = PhysAddr::new(d & OA_MASK);
                continue;
            }
            return (level, d);
        }
        unreachable!()
    }

    #[test]
    fn root_is_zeroed_even_if_arena_is_not() {
        let (a, pt) = s2(8);
        assert!((0..ENTRIES).all(|i| a.read(pt.root(), i) == 0));
        assert_eq!(pt.translate(&a, 0), None);
    }

    #[test]
    fn gigabyte_block_when_everything_aligned() {
        let (mut a, mut pt) = s2(8);
        pt.map(
            &mut a,
            0x4000_0000,
            PhysAddr::new(0x8000_0000),
            BLOCK_1G,
            RW,
        )
        .unwrap();
        assert_eq!(a.count(), 1, "a 1 GiB block needs no table below the root");
        let (level, d) = leaf(&a, &pt, 0x4000_0000);
        assert_eq!(level, 1);
        assert_eq!(d & 0b11, DESC_BLOCK);
        assert_eq!(
            pt.translate(&a, 0x4000_0000),
            Some((PhysAddr::new(0x8000_0000), RW))
        );
        assert_eq!(
            pt.translate(&a, 0x7fff_ffff).unwrap().0,
            PhysAddr::new(0xbfff_ffff)
        );
        assert_eq!(pt.translate(&a, 0x8000_0000), None);
        assert_eq!(pt.translate(&a, 0x3fff_ffff), None);
    }

    #[test]
    fn gigabyte_aligned_ia_but_unaligned_pa_uses_2m_blocks() {
        let (mut a, mut pt) = s2(8);
        pt.map(
            &mut a,
            0x4000_0000,
            PhysAddr::new(0x8020_0000),
            BLOCK_1G,
            RW,
        )
        .unwrap();
        assert_eq!(a.count(), 2);
        assert_eq!(leaf(&a, &pt, 0x4000_0000).0, 2);
        assert_eq!(leaf(&a, &pt, 0x7fe0_0000).0, 2);
        assert_eq!(
            pt.translate(&a, 0x7fff_fff8).unwrap().0,
            PhysAddr::new(0xc01f_fff8)
        );
    }

    #[test]
    fn block_and_page_selection_at_boundaries() {
        let (mut a, mut pt) = s2(16);
        // 4 KiB below a 2 MiB boundary up to 4 KiB past the next one:
        // one page, one 2 MiB block, one page.
        let ia = 0x20_0000 - PAGE_SIZE;
        let size = BLOCK_2M + 2 * PAGE_SIZE;
        pt.map(&mut a, ia, PhysAddr::new(0x4000_0000 + ia), size, RW)
            .unwrap();
        assert_eq!(leaf(&a, &pt, ia).0, 3);
        assert_eq!(leaf(&a, &pt, 0x20_0000).0, 2);
        assert_eq!(leaf(&a, &pt, 0x3f_f000).0, 2);
        assert_eq!(leaf(&a, &pt, 0x40_0000).0, 3);
        assert_eq!(pt.translate(&a, 0x40_1000), None);
        assert_eq!(pt.translate(&a, ia - 1), None);
        // Both pages map the right frames.
        assert_eq!(
            pt.translate(&a, ia).unwrap().0,
            PhysAddr::new(0x4000_0000 + ia)
        );
        assert_eq!(
            pt.translate(&a, 0x40_0fff).unwrap().0,
            PhysAddr::new(0x4040_0fff)
        );
    }

    #[test]
    fn size_one_page_short_of_a_block_uses_pages() {
        let (mut a, mut pt) = s2(16);
        pt.map(
            &mut a,
            0x20_0000,
            PhysAddr::new(0x20_0000),
            BLOCK_2M - PAGE_SIZE,
            RW,
        )
        .unwrap();
        assert_eq!(leaf(&a, &pt, 0x20_0000).0, 3);
        assert_eq!(leaf(&a, &pt, 0x3f_e000).0, 3);
        assert_eq!(pt.translate(&a, 0x3f_f000), None);
    }

    #[test]
    fn misaligned_pa_relative_to_ia_forces_pages() {
        let (mut a, mut pt) = s2(16);
        pt.map(&mut a, 0x20_0000, PhysAddr::new(0x1000), BLOCK_2M, RW)
            .unwrap();
        assert_eq!(leaf(&a, &pt, 0x20_0000).0, 3);
        assert_eq!(
            pt.translate(&a, 0x3f_ffff).unwrap().0,
            PhysAddr::new(0x20_0fff)
        );
    }

    #[test]
    fn translate_through_every_level() {
        let (mut a, mut pt) = s2(16);
        pt.map(&mut a, 0, PhysAddr::new(0x1_0000_0000), BLOCK_1G, RW)
            .unwrap(); // L1
        pt.map(
            &mut a,
            0x4000_0000,
            PhysAddr::new(0x2_0000_0000),
            BLOCK_2M,
            RX,
        )
        .unwrap(); // L2
        pt.map(
            &mut a,
            0x4020_0000,
            PhysAddr::new(0x3_0000_0000),
            PAGE_SIZE,
            DEV,
        )
        .unwrap(); // L3
        assert_eq!(leaf(&a, &pt, 0x1234_5678).0, 1);
        assert_eq!(leaf(&a, &pt, 0x4000_0000).0, 2);
        assert_eq!(leaf(&a, &pt, 0x4020_0000).0, 3);
        assert_eq!(
            pt.translate(&a, 0x1234_5678),
            Some((PhysAddr::new(0x1_1234_5678), RW))
        );
        assert_eq!(
            pt.translate(&a, 0x401f_fff0),
            Some((PhysAddr::new(0x2_001f_fff0), RX))
        );
        assert_eq!(
            pt.translate(&a, 0x4020_0abc),
            Some((PhysAddr::new(0x3_0000_0abc), DEV))
        );
        assert_eq!(pt.translate(&a, 0x4020_1000), None);
        assert_eq!(pt.translate(&a, IA_LIMIT), None);
        assert_eq!(pt.translate(&a, u64::MAX), None);
    }

    #[test]
    fn highest_page_of_the_input_space() {
        let (mut a, mut pt) = s2(8);
        pt.map(
            &mut a,
            IA_LIMIT - PAGE_SIZE,
            PhysAddr::new(0x5000),
            PAGE_SIZE,
            RW,
        )
        .unwrap();
        assert_eq!(
            pt.translate(&a, IA_LIMIT - 1).unwrap().0,
            PhysAddr::new(0x5fff)
        );
    }

    /// REQ-ISO-1: nothing is mapped outside the 39-bit IPA / 48-bit PA spaces.
    #[test]
    fn out_of_range() {
        let (mut a, mut pt) = s2(8);
        let e = Err(MapError::OutOfRange);
        assert_eq!(pt.map(&mut a, IA_LIMIT, PhysAddr::new(0), PAGE_SIZE, RW), e);
        assert_eq!(
            pt.map(
                &mut a,
                IA_LIMIT - PAGE_SIZE,
                PhysAddr::new(0),
                2 * PAGE_SIZE,
                RW
            ),
            e
        );
        assert_eq!(
            pt.map(&mut a, u64::MAX - 0xfff, PhysAddr::new(0), PAGE_SIZE, RW),
            e
        );
        assert_eq!(pt.map(&mut a, 0, PhysAddr::new(OA_LIMIT), PAGE_SIZE, RW), e);
        assert_eq!(
            pt.map(
                &mut a,
                0,
                PhysAddr::new(OA_LIMIT - PAGE_SIZE),
                2 * PAGE_SIZE,
                RW
            ),
            e
        );
        assert_eq!(
            pt.map(&mut a, 0, PhysAddr::new(u64::MAX - 0xfff), PAGE_SIZE, RW),
            e
        );
        assert_eq!(a.count(), 1, "refused requests allocate nothing");
        // The last OA page is fine.
        pt.map(
            &mut a,
            0,
            PhysAddr::new(OA_LIMIT - PAGE_SIZE),
            PAGE_SIZE,
            RW,
        )
        .unwrap();
    }

    #[test]
    fn misalignment() {
        let (mut a, mut pt) = s2(8);
        let e = Err(MapError::Misaligned);
        assert_eq!(pt.map(&mut a, 0x800, PhysAddr::new(0), PAGE_SIZE, RW), e);
        assert_eq!(pt.map(&mut a, 0, PhysAddr::new(0x10), PAGE_SIZE, RW), e);
        assert_eq!(pt.map(&mut a, 0, PhysAddr::new(0), 0x1800, RW), e);
        assert_eq!(pt.map(&mut a, 0, PhysAddr::new(0), 0, RW), e);
        assert_eq!(a.count(), 1);
    }

    /// REQ-ISO-1: no silent remap of an existing mapping.
    #[test]
    fn overlap_is_refused_and_changes_nothing() {
        let (mut a, mut pt) = s2(16);
        pt.map(
            &mut a,
            0x10_0000,
            PhysAddr::new(0x10_0000),
            4 * PAGE_SIZE,
            RW,
        )
        .unwrap();
        let before = a.tables.clone();
        // Exactly the same range.
        assert_eq!(
            pt.map(
                &mut a,
                0x10_0000,
                PhysAddr::new(0x90_0000),
                4 * PAGE_SIZE,
                RW
            ),
            Err(MapError::Overlap { at: 0x10_0000 })
        );
        // A range that starts before and ends inside: reports the first mapped address.
        assert_eq!(
            pt.map(
                &mut a,
                0x0f_e000,
                PhysAddr::new(0x90_0000),
                3 * PAGE_SIZE,
                RW
            ),
            Err(MapError::Overlap { at: 0x10_0000 })
        );
        // Starts inside the last page.
        assert_eq!(
            pt.map(
                &mut a,
                0x10_3000,
                PhysAddr::new(0x90_0000),
                2 * PAGE_SIZE,
                RW
            ),
            Err(MapError::Overlap { at: 0x10_3000 })
        );
        // A 2 MiB block over the table that holds the pages.
        assert_eq!(
            pt.map(&mut a, 0, PhysAddr::new(0), BLOCK_2M, RW),
            Err(MapError::Overlap { at: 0x10_0000 })
        );
        // A 1 GiB block over it.
        assert_eq!(
            pt.map(&mut a, 0, PhysAddr::new(0), BLOCK_1G, RW),
            Err(MapError::Overlap { at: 0x10_0000 })
        );
        assert_eq!(a.tables, before, "a refused map must not touch the tables");
        // Adjacent ranges are fine.
        pt.map(&mut a, 0x10_4000, PhysAddr::new(0x10_4000), PAGE_SIZE, RW)
            .unwrap();
        pt.map(&mut a, 0x0f_f000, PhysAddr::new(0x0f_f000), PAGE_SIZE, RW)
            .unwrap();
    }

    /// REQ-ISO-1: no silent remap inside a block.
    #[test]
    fn page_inside_an_existing_block_is_an_overlap() {
        let (mut a, mut pt) = s2(16);
        pt.map(&mut a, 0x20_0000, PhysAddr::new(0x20_0000), BLOCK_2M, RW)
            .unwrap();
        assert_eq!(
            pt.map(&mut a, 0x30_0000, PhysAddr::new(0x1000), PAGE_SIZE, RW),
            Err(MapError::Overlap { at: 0x30_0000 })
        );
        pt.map(
            &mut a,
            0x4000_0000,
            PhysAddr::new(0x4000_0000),
            BLOCK_1G,
            RW,
        )
        .unwrap();
        assert_eq!(
            pt.map(
                &mut a,
                0x7fff_f000,
                PhysAddr::new(0x1000),
                2 * PAGE_SIZE,
                RW
            ),
            Err(MapError::Overlap { at: 0x7fff_f000 })
        );
        // The mapping is still the block.
        assert_eq!(leaf(&a, &pt, 0x30_0000).0, 2);
    }

    /// REQ-ISO-1: a failed map leaves no partial mapping.
    #[test]
    fn arena_exhaustion_leaves_no_partial_mapping() {
        // Root + 1 level-2 table, but the request needs 2 level-3 tables.
        let (mut a, mut pt) = s2(3);
        let ia = 0x20_0000 - PAGE_SIZE;
        let r = pt.map(&mut a, ia, PhysAddr::new(ia), BLOCK_2M + 2 * PAGE_SIZE, RW);
        assert_eq!(r, Err(MapError::NoMemory));
        for off in (0..BLOCK_2M + 2 * PAGE_SIZE).step_by(PAGE_SIZE as usize) {
            assert_eq!(
                pt.translate(&a, ia + off),
                None,
                "partial mapping at {:#x}",
                ia + off
            );
        }
        // With more room, the same request succeeds and reuses the tables
        // the failed attempt linked.
        a.limit = 4;
        pt.map(&mut a, ia, PhysAddr::new(ia), BLOCK_2M + 2 * PAGE_SIZE, RW)
            .unwrap();
        assert_eq!(a.count(), 4);
        assert_eq!(pt.translate(&a, ia).unwrap().0, PhysAddr::new(ia));
        assert_eq!(
            pt.translate(&a, 0x40_0000).unwrap().0,
            PhysAddr::new(0x40_0000)
        );
    }

    #[test]
    fn empty_leftover_table_does_not_block_a_later_map() {
        // A failed map leaves an empty level-2 table under entry 0; a 2 MiB
        // request there is then mapped through it (no overlap).
        let (mut a, mut pt) = s2(2);
        assert_eq!(
            pt.map(&mut a, 0, PhysAddr::new(0), PAGE_SIZE, RW),
            Err(MapError::NoMemory)
        );
        assert_eq!(a.count(), 2);
        pt.map(&mut a, 0, PhysAddr::new(0), BLOCK_2M, RW).unwrap();
        assert_eq!(leaf(&a, &pt, 0).0, 2);
        // And a 1 GiB request over the whole entry is mapped at level 2.
        let (mut a, mut pt) = s2(2);
        assert_eq!(
            pt.map(&mut a, 0, PhysAddr::new(0), PAGE_SIZE, RW),
            Err(MapError::NoMemory)
        );
        pt.map(&mut a, 0, PhysAddr::new(0), BLOCK_1G, RW).unwrap();
        assert_eq!(leaf(&a, &pt, 0x3fe0_0000).0, 2);
        assert_eq!(
            pt.translate(&a, 0x3fff_ffff).unwrap().0,
            PhysAddr::new(0x3fff_ffff)
        );
    }

    #[test]
    fn arena_returning_bad_address_is_no_memory() {
        struct Bad;
        impl TableArena for Bad {
            fn alloc_table(&mut self) -> Option<PhysAddr> {
                Some(PhysAddr::new(0x1234))
            }
            fn read(&self, _: PhysAddr, _: usize) -> u64 {
                0
            }
            fn write(&mut self, _: PhysAddr, _: usize, _: u64) {}
        }
        assert_eq!(
            PageTable::new(&mut Bad, Regime::Stage2).unwrap_err(),
            MapError::NoMemory
        );
    }

    // Attribute encodings, against hand-computed constants.
    // Stage 2: AF (1<<10) | SH inner (3<<8) | S2AP | MemAttr<<2 | XN (1<<54).
    /// REQ-ISO-1: stage-2 permissions and memory types are encoded as configured.
    #[test]
    fn stage2_encodings() {
        let e = |r, w, x, mem| {
            leaf_attributes(
                Regime::Stage2,
                MapAttrs {
                    read: r,
                    write: w,
                    exec: x,
                    mem,
                },
            )
        };
        // RWX normal: 0x400 | 0x300 | 0xc0 | 0x3c
        assert_eq!(e(true, true, true, MemType::Normal), Ok(0x7fc));
        // RW normal: + XN
        assert_eq!(
            e(true, true, false, MemType::Normal),
            Ok(0x0040_0000_0000_07fc)
        );
        // RX normal: S2AP = 01
        assert_eq!(e(true, false, true, MemType::Normal), Ok(0x77c));
        // R only.
        assert_eq!(
            e(true, false, false, MemType::Normal),
            Ok(0x0040_0000_0000_077c)
        );
        // Write-only is expressible at stage 2: S2AP = 10.
        assert_eq!(
            e(false, true, false, MemType::Normal),
            Ok(0x0040_0000_0000_07bc)
        );
        // Device RW: MemAttr 0001 -> 0x04, XN forced even when exec is asked.
        assert_eq!(
            e(true, true, false, MemType::Device),
            Ok(0x0040_0000_0000_07c4)
        );
        assert_eq!(
            e(true, true, true, MemType::Device),
            Ok(0x0040_0000_0000_07c4)
        );
        // Non-cacheable (a channel): MemAttr 0101 -> 0x14, XN forced; the
        // reader's read-only form has S2AP = 01.
        assert_eq!(
            e(true, true, true, MemType::NonCacheable),
            Ok(0x0040_0000_0000_07d4)
        );
        assert_eq!(
            e(true, false, false, MemType::NonCacheable),
            Ok(0x0040_0000_0000_0754)
        );
        // No access at all is refused.
        assert_eq!(
            e(false, false, true, MemType::Normal),
            Err(MapError::InvalidAttrs)
        );
        assert_eq!(
            e(false, false, false, MemType::Device),
            Err(MapError::InvalidAttrs)
        );
    }

    // EL2 stage 1: AF | SH inner | AP[1] RES1 (1<<6) | AP[2] RO (1<<7) | AttrIndx<<2 | XN.
    /// REQ-ISO-1: EL2 stage-1 permissions and memory types.
    #[test]
    fn el2_stage1_encodings() {
        let e = |r, w, x, mem| {
            leaf_attributes(
                Regime::El2Stage1,
                MapAttrs {
                    read: r,
                    write: w,
                    exec: x,
                    mem,
                },
            )
        };
        // RW normal, XN: 0x400|0x300|0x40|(1<<2) + XN
        assert_eq!(
            e(true, true, false, MemType::Normal),
            Ok(0x0040_0000_0000_0744)
        );
        // RX normal: AP[2] set, no XN.
        assert_eq!(e(true, false, true, MemType::Normal), Ok(0x7c4));
        // RWX normal.
        assert_eq!(e(true, true, true, MemType::Normal), Ok(0x744));
        // Device RW: AttrIndx 0, XN forced.
        assert_eq!(
            e(true, true, true, MemType::Device),
            Ok(0x0040_0000_0000_0740)
        );
        // The hypervisor's own map has no non-cacheable attribute.
        assert_eq!(
            e(true, true, false, MemType::NonCacheable),
            Err(MapError::InvalidAttrs)
        );
        // Bit 53 (PXN elsewhere) is RES0 here and never set.
        assert_eq!(
            e(true, true, false, MemType::Normal).unwrap() & (1 << 53),
            0
        );
        // No "write-only" or "no access" at stage 1.
        assert_eq!(
            e(false, true, false, MemType::Normal),
            Err(MapError::InvalidAttrs)
        );
        assert_eq!(
            e(false, false, false, MemType::Normal),
            Err(MapError::InvalidAttrs)
        );
    }

    #[test]
    fn stage1_descriptors_and_translate() {
        let mut a = TestArena::new(8);
        let mut pt = PageTable::new(&mut a, Regime::El2Stage1).unwrap();
        pt.map(
            &mut a,
            0x4000_0000,
            PhysAddr::new(0x4000_0000),
            BLOCK_2M,
            RX,
        )
        .unwrap();
        pt.map(
            &mut a,
            0x0900_0000,
            PhysAddr::new(0x0900_0000),
            PAGE_SIZE,
            DEV,
        )
        .unwrap();
        let (l, d) = leaf(&a, &pt, 0x4000_0000);
        assert_eq!((l, d), (2, 0x4000_0000 | 0x7c4 | DESC_BLOCK));
        let (l, d) = leaf(&a, &pt, 0x0900_0000);
        assert_eq!((l, d), (3, 0x0040_0000_0900_0000 | 0x740 | DESC_PAGE));
        assert_eq!(
            pt.translate(&a, 0x4000_1234),
            Some((PhysAddr::new(0x4000_1234), RX))
        );
        assert_eq!(
            pt.translate(&a, 0x0900_0018),
            Some((PhysAddr::new(0x0900_0018), DEV))
        );
        assert_eq!(
            pt.map(
                &mut a,
                0,
                PhysAddr::new(0),
                PAGE_SIZE,
                MapAttrs { read: false, ..RW }
            ),
            Err(MapError::InvalidAttrs)
        );
    }

    #[test]
    fn device_exec_request_translates_as_not_executable() {
        let (mut a, mut pt) = s2(8);
        pt.map(
            &mut a,
            0,
            PhysAddr::new(0x0900_0000),
            PAGE_SIZE,
            MapAttrs { exec: true, ..DEV },
        )
        .unwrap();
        assert_eq!(pt.translate(&a, 0).unwrap().1, DEV);
    }

    #[test]
    fn table_descriptor_format() {
        let (mut a, mut pt) = s2(8);
        pt.map(&mut a, 0, PhysAddr::new(0), PAGE_SIZE, RW).unwrap();
        let l1 = a.read(pt.root(), 0);
        assert_eq!(l1 & 0b11, DESC_TABLE);
        assert_eq!(
            l1 & !OA_MASK & !0b11,
            0,
            "no table attributes (APTable, XNTable...) are set"
        );
    }

    #[test]
    fn register_values() {
        assert_eq!(MAIR_EL2_VALUE, 0xff04);
        // T0SZ 25 | IRGN0 01 | ORGN0 01 | SH0 11 | TG0 00 | PS | RES1 23, 31.
        assert_eq!(tcr_el2_value(40), 0x8082_3519);
        assert_eq!(tcr_el2_value(44), 0x8084_3519);
        assert_eq!(tcr_el2_value(48), 0x8085_3519);
        assert_eq!(
            tcr_el2_value(52),
            0x8085_3519,
            "52-bit PA is used as 48 without LPA2"
        );
        assert_eq!(tcr_el2_value(32), 0x8080_3519);
        // VTCR: as above with SL0 = 01 (0x40), no bit 23.
        assert_eq!(vtcr_el2_value(40), 0x8002_3559);
        assert_eq!(vtcr_el2_value(44), 0x8004_3559);
        assert_eq!(vtcr_el2_value(36), 0x8001_3559);
        assert_eq!(
            vttbr_value(5, PhysAddr::new(0x4123_4000)),
            0x0005_0000_4123_4000
        );
        assert_eq!(
            vttbr_value(0xff, PhysAddr::new(0xffff_ffff_f000)),
            0x00ff_ffff_ffff_f000
        );
    }

    #[test]
    fn ps_encodings() {
        let table = [
            (32, 0),
            (36, 1),
            (40, 2),
            (42, 3),
            (44, 4),
            (48, 5),
            (52, 5),
            (0, 0),
            (39, 1),
            (255, 5),
        ];
        for (bits, ps) in table {
            assert_eq!(ps_encoding(bits), ps, "{bits} bits");
        }
    }
}
