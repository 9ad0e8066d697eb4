//! REQ-ISO-1: the translation-table builder of both regimes (EL2 stage 1 and
//! stage 2), two trees sharing one bounded, garbage-filled arena.
//!
//! Checks, after every map request:
//! - no panic; the result is the one a reference model predicts
//!   (`Misaligned`, `OutOfRange`, `InvalidAttrs`, `Overlap` at the lowest
//!   mapped address), or `NoMemory` only when the arena really ran out or
//!   handed out an unusable table;
//! - after a successful map, `translate` of sampled addresses inside the
//!   range gives `pa + offset` and the requested attributes (Device never
//!   executable, stage 1 always readable);
//! - addresses the model says were never mapped (probes chosen by the
//!   fuzzer, every mapping's neighbours, addresses >= 2^39) translate to
//!   `None`, and mapped ones to the model's answer, in both trees; a
//!   failed map leaves every translation as it was;
//! - TCR_EL2, VTCR_EL2 and VTTBR_EL2 values are well-formed for any PA size.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use septum_core::addr::PhysAddr;
use septum_core::pgtable::{
    ps_encoding, tcr_el2_value, vtcr_el2_value, vttbr_value, MapAttrs, MapError, MemType,
    PageTable, Regime, TableArena, BLOCK_1G, BLOCK_2M, IA_LIMIT, OA_LIMIT, PAGE_SIZE,
};

/// A 4 KiB-aligned table array at `base`, at most `limit` tables, handing
/// out tables full of garbage (the builder must zero them) and, once if
/// asked, a misaligned address.
struct Arena {
    base: u64,
    tables: Vec<Box<[u64; 512]>>,
    limit: usize,
    bad_alloc_at: Option<usize>,
    allocs: usize,
    /// Some allocation failed or returned something unusable.
    exhausted: bool,
}

impl TableArena for Arena {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let n = self.allocs;
        self.allocs += 1;
        if Some(n) == self.bad_alloc_at {
            self.exhausted = true;
            return Some(PhysAddr::new(self.base + 0x10));
        }
        if self.tables.len() >= self.limit {
            self.exhausted = true;
            return None;
        }
        let addr = self.base + self.tables.len() as u64 * PAGE_SIZE;
        if addr >= OA_LIMIT {
            self.exhausted = true;
        }
        self.tables.push(Box::new([0xdead_beef_dead_beef; 512]));
        Some(PhysAddr::new(addr))
    }

    fn read(&self, table: PhysAddr, index: usize) -> u64 {
        self.tables[self.slot(table)][index]
    }

    fn write(&mut self, table: PhysAddr, index: usize, desc: u64) {
        let s = self.slot(table);
        self.tables[s][index] = desc;
    }
}

impl Arena {
    fn slot(&self, table: PhysAddr) -> usize {
        let off = table
            .raw()
            .checked_sub(self.base)
            .filter(|o| o % PAGE_SIZE == 0)
            .unwrap_or_else(|| panic!("table {:#x} was never allocated", table.raw()));
        let s = (off / PAGE_SIZE) as usize;
        assert!(
            s < self.tables.len(),
            "table {:#x} was never allocated",
            table.raw()
        );
        s
    }
}

#[derive(Clone, Copy, Debug, Arbitrary)]
enum Addr {
    /// GiB / 2 MiB block / page indices: aligned addresses in the low
    /// 8 GiB, where requests collide.
    Structured {
        gib: u8,
        block: u16,
        page: u16,
    },
    Raw(u64),
}

impl Addr {
    fn get(self) -> u64 {
        match self {
            Self::Structured { gib, block, page } => {
                u64::from(gib % 8) * BLOCK_1G
                    + u64::from(block % 512) * BLOCK_2M
                    + u64::from(page % 512) * PAGE_SIZE
            }
            Self::Raw(v) => v,
        }
    }
}

#[derive(Clone, Copy, Debug, Arbitrary)]
enum Size {
    Pages(u16),
    Blocks2M { blocks: u8, pages: u16 },
    Gib(u8),
    Raw(u64),
}

impl Size {
    fn get(self) -> u64 {
        match self {
            Self::Pages(n) => u64::from(n % 1024) * PAGE_SIZE,
            Self::Blocks2M { blocks, pages } => {
                u64::from(blocks % 16) * BLOCK_2M + u64::from(pages % 512) * PAGE_SIZE
            }
            Self::Gib(n) => u64::from(n % 3) * BLOCK_1G,
            Self::Raw(v) => v,
        }
    }
}

#[derive(Clone, Copy, Debug, Arbitrary)]
struct Attrs {
    read: bool,
    write: bool,
    exec: bool,
    device: bool,
}

#[derive(Debug, Arbitrary)]
struct MapReq {
    stage2: bool,
    ia: Addr,
    pa: Addr,
    size: Size,
    attrs: Attrs,
    /// Offsets (modulo the size) to translate after a successful map.
    samples: Vec<u64>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    arena_base: u8,
    table_limit: u16,
    bad_alloc_at: Option<u8>,
    maps: Vec<MapReq>,
    /// Addresses checked against the model after every request.
    probes: Vec<Addr>,
    /// ID_AA64MMFR0_EL1.PARange in bits, and a VMID, for the register values.
    pa_bits: u8,
    vmid: u16,
}

/// TCR_EL2 / VTCR_EL2 / VTTBR_EL2 for any PA size and VMID: T0SZ 25, a
/// PS encoding the CPU supports (never above its PA size, 48 bits at
/// most), the fixed fields, and the root address and VMID in VTTBR.
fn check_registers(pa_bits: u8, vmid: u16, root: PhysAddr) {
    let ps = ps_encoding(pa_bits);
    let ps_bits = [32, 36, 40, 42, 44, 48][ps as usize];
    assert!(ps_bits <= pa_bits.max(32), "PS {ps} for {pa_bits} bits");
    if pa_bits > 0 {
        assert!(ps >= ps_encoding(pa_bits - 1), "PS not monotonic");
    }
    let tcr = tcr_el2_value(pa_bits);
    assert_eq!(tcr & 0x3f, 25);
    assert_eq!((tcr >> 16) & 0b111, ps);
    assert_eq!(tcr & (1 << 31 | 1 << 23), 1 << 31 | 1 << 23, "TCR_EL2 RES1");
    let vtcr = vtcr_el2_value(pa_bits);
    assert_eq!(vtcr & 0x3f, 25);
    assert_eq!((vtcr >> 6) & 0b11, 0b01, "SL0: start at level 1");
    assert_eq!((vtcr >> 16) & 0b111, ps);
    assert_eq!(vtcr & (1 << 19), 0, "8-bit VMIDs");
    let vttbr = vttbr_value(vmid, root);
    assert_eq!(vttbr >> 48, u64::from(vmid));
    assert_eq!(vttbr & 0xffff_ffff_ffff, root.raw());
}

/// Mapped intervals: start -> (end, pa, attrs as translate reports them).
type Model = BTreeMap<u64, (u64, u64, MapAttrs)>;

fn lookup(m: &Model, ia: u64) -> Option<(u64, MapAttrs)> {
    let (&start, &(end, pa, attrs)) = m.range(..=ia).next_back()?;
    (ia < end).then(|| (pa + (ia - start), attrs))
}

/// The lowest mapped address in `[ia, end)`.
fn first_overlap(m: &Model, ia: u64, end: u64) -> Option<u64> {
    if lookup(m, ia).is_some() {
        return Some(ia);
    }
    m.range(ia..end).next().map(|(&s, _)| s)
}

/// The attributes `translate` must report, or the refusal.
fn effective_attrs(stage2: bool, a: Attrs) -> Result<MapAttrs, MapError> {
    let mem = if a.device {
        MemType::Device
    } else {
        MemType::Normal
    };
    let exec = a.exec && !a.device;
    if stage2 {
        if !a.read && !a.write {
            return Err(MapError::InvalidAttrs);
        }
        Ok(MapAttrs {
            read: a.read,
            write: a.write,
            exec,
            mem,
        })
    } else {
        if !a.read {
            return Err(MapError::InvalidAttrs);
        }
        Ok(MapAttrs {
            read: true,
            write: a.write,
            exec,
            mem,
        })
    }
}

fn expected(
    m: &Model,
    stage2: bool,
    ia: u64,
    pa: u64,
    size: u64,
    a: Attrs,
) -> Result<MapAttrs, MapError> {
    if size == 0
        || !ia.is_multiple_of(PAGE_SIZE)
        || !pa.is_multiple_of(PAGE_SIZE)
        || !size.is_multiple_of(PAGE_SIZE)
    {
        return Err(MapError::Misaligned);
    }
    let ia_end = ia.checked_add(size).ok_or(MapError::OutOfRange)?;
    let pa_end = pa.checked_add(size).ok_or(MapError::OutOfRange)?;
    if ia_end > IA_LIMIT || pa_end > OA_LIMIT {
        return Err(MapError::OutOfRange);
    }
    let attrs = effective_attrs(stage2, a)?;
    if let Some(at) = first_overlap(m, ia, ia_end) {
        return Err(MapError::Overlap { at });
    }
    Ok(attrs)
}

fn translate(pt: &PageTable, arena: &Arena, ia: u64) -> Option<(u64, MapAttrs)> {
    pt.translate(arena, ia).map(|(pa, a)| (pa.raw(), a))
}

fn check_point(pt: &PageTable, arena: &Arena, m: &Model, ia: u64) {
    assert_eq!(
        translate(pt, arena, ia),
        lookup(m, ia),
        "{:?} translate({ia:#x})",
        pt.regime()
    );
}

fn check_all(trees: &[(PageTable, Model)], arena: &Arena, probes: &[u64]) {
    for (pt, m) in trees {
        for &p in probes {
            check_point(pt, arena, m, p);
        }
        // Both edges of every mapping, and just outside them.
        for (&s, &(e, _, _)) in m {
            for ia in [s.wrapping_sub(1), s, e - 1, e] {
                check_point(pt, arena, m, ia);
            }
        }
        for ia in [IA_LIMIT, IA_LIMIT + PAGE_SIZE, u64::MAX] {
            assert_eq!(translate(pt, arena, ia), None);
        }
    }
}

fuzz_target!(|input: Input| {
    let base = match input.arena_base {
        0..=127 => 0x4000_0000,
        // The last pages below 2^48: the fourth table cannot be described.
        128..=191 => OA_LIMIT - 3 * PAGE_SIZE,
        b => u64::from(b) << 32,
    };
    let mut arena = Arena {
        base,
        tables: Vec::new(),
        limit: usize::from(input.table_limit % 1200),
        bad_alloc_at: input.bad_alloc_at.map(usize::from),
        allocs: 0,
        exhausted: false,
    };
    let Ok(s1) = PageTable::new(&mut arena, Regime::El2Stage1) else {
        assert!(arena.exhausted);
        return;
    };
    let Ok(s2) = PageTable::new(&mut arena, Regime::Stage2) else {
        assert!(arena.exhausted);
        return;
    };
    assert_eq!(
        (s1.regime(), s2.regime()),
        (Regime::El2Stage1, Regime::Stage2)
    );
    assert_ne!(s1.root(), s2.root());
    check_registers(input.pa_bits, input.vmid, s2.root());
    let mut trees = [(s1, Model::new()), (s2, Model::new())];
    let probes: Vec<u64> = input.probes.iter().map(|a| a.get()).collect();
    check_all(&trees, &arena, &probes);

    for req in input.maps {
        let (ia, pa, size) = (req.ia.get(), req.pa.get(), req.size.get());
        let (pt, m) = &mut trees[usize::from(req.stage2)];
        let want = expected(m, req.stage2, ia, pa, size, req.attrs);
        let attrs = MapAttrs {
            read: req.attrs.read,
            write: req.attrs.write,
            exec: req.attrs.exec,
            mem: if req.attrs.device {
                MemType::Device
            } else {
                MemType::Normal
            },
        };
        let got = pt.map(&mut arena, ia, PhysAddr::new(pa), size, attrs);
        match (got, want) {
            (Ok(()), Ok(eff)) => {
                m.insert(ia, (ia + size, pa, eff));
                let mut offs = vec![0, size / 2, size - PAGE_SIZE, size - 1];
                offs.extend(req.samples.iter().map(|s| s % size));
                for off in offs {
                    assert_eq!(
                        translate(pt, &arena, ia + off),
                        Some((pa + off, eff)),
                        "map {ia:#x}+{size:#x} -> {pa:#x}: offset {off:#x}"
                    );
                }
            }
            (Err(MapError::NoMemory), Ok(_)) => {
                assert!(arena.exhausted, "NoMemory although the arena had room");
                // Nothing of the request became visible.
                let mut offs = vec![0, size / 2, size - 1];
                offs.extend(req.samples.iter().map(|s| s % size));
                for off in offs {
                    assert_eq!(translate(pt, &arena, ia + off), None, "after NoMemory");
                }
            }
            (g, w) => assert_eq!(
                g,
                w.map(|_| ()),
                "map {ia:#x}+{size:#x} -> {pa:#x} {:?} {:?}",
                req.attrs,
                pt.regime()
            ),
        }
        check_all(&trees, &arena, &probes);
    }
});
