//! REQ-FLT-2, REQ-ISO-2: the emulated GIC distributor under arbitrary guest
//! MMIO sequences.
//!
//! Checks, after every access:
//! - no panic; an access fails exactly when its width, alignment or offset
//!   is illegal (an independent table of the legal widths is the oracle),
//!   or with `EffectsFull` exactly when the effect list lacks room;
//! - a failed access changes nothing and adds no effect;
//! - every effect names an owned SPI and a vCPU below `nr_vcpus`, one write
//!   adds at most `MAX_EFFECTS_PER_WRITE`, the list never exceeds
//!   `EFFECTS_CAPACITY`, and "on change only" effects really are changes;
//! - the physical state the effects describe (enable, trigger, route)
//!   always equals what the emulation reports and what the guest reads;
//! - reads return 0 in every field of an interrupt the partition does not
//!   own (`owns` and `passthrough_mask` are the oracle), RAZ registers read
//!   0, and values fit the access width;
//! - the lock-free shadow of the first four words (`vgic::shadow`), refreshed
//!   as the hypervisor does (after a write it `covers`, and a reset), answers
//!   every read it answers as the emulation does.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use septum_core::vgic::shadow::{self, DistShadow};
use septum_core::vgic::{
    Effect, Effects, VgicDist, VgicError, EFFECTS_CAPACITY, GICD_SIZE, IIDR, MAX_EFFECTS_PER_WRITE,
    MAX_SPI, MAX_VCPUS, PIDR2, PRIORITY_MASK,
};
use septum_fuzz::{fits_width, Offset, Owned, Width};

/// The distributor's registers (start, bytes), to aim offsets at.
const DIST_REGS: &[(u64, u64)] = &[
    (0x0000, 0x10),   // CTLR, TYPER, IIDR
    (0x0080, 0x80),   // IGROUPR
    (0x0100, 0x300),  // IS/ICENABLER, IS/ICPENDR, IS/ICACTIVER
    (0x0400, 0x400),  // IPRIORITYR
    (0x0800, 0x400),  // ITARGETSR
    (0x0c00, 0x100),  // ICFGR
    (0x0d00, 0x200),  // IGRPMODR, NSACR
    (0x0f00, 0x30),   // SGIR, CPENDSGIR, SPENDSGIR
    (0x6000, 0x2000), // IROUTER
    (0xffd0, 0x30),   // ID registers
];

#[derive(Debug, Arbitrary)]
enum Op {
    Read {
        offset: Offset,
        width: Width,
    },
    /// A write into an empty effect list (what the hypervisor does).
    Write {
        offset: Offset,
        width: Width,
        value: u64,
    },
    /// A write that keeps the previous effects (exercises `EffectsFull`).
    WriteKeep {
        offset: Offset,
        width: Width,
        value: u64,
    },
    Reset,
}

#[derive(Debug, Arbitrary)]
struct Input {
    nr_vcpus: u8,
    owned: Vec<Owned>,
    ops: Vec<Op>,
}

/// The legal-access table of the GICv3 distributor as the module documents
/// it, written independently of the implementation.
fn expected_access(offset: u64, width: u8) -> Result<(), VgicError> {
    if !matches!(width, 1 | 2 | 4 | 8) {
        return Err(VgicError::BadWidth);
    }
    if offset >= GICD_SIZE || GICD_SIZE - offset < u64::from(width) {
        return Err(VgicError::OutOfFrame);
    }
    let legal = match width {
        4 => true,
        // IPRIORITYR, ITARGETSR, CPENDSGIR/SPENDSGIR.
        1 => matches!(offset, 0x400..=0xbff | 0xf10..=0xf2f),
        // IROUTER<n>.
        8 => (0x6000..0x8000).contains(&offset),
        _ => false,
    };
    if !legal {
        return Err(VgicError::BadWidth);
    }
    if !offset.is_multiple_of(u64::from(width)) {
        return Err(VgicError::Misaligned);
    }
    Ok(())
}

/// What the guest programmed and what the physical GIC was told.
struct Model {
    nr_vcpus: usize,
    owned: BTreeSet<u32>,
    /// GICD_CTLR EnableGrp0/1 as written.
    ctlr: u32,
    priority: Vec<u8>,
    /// Guest view of IROUTER: `None` = IRM (any vCPU, delivered to 0).
    route: Vec<Option<usize>>,
    /// State the effects put the physical GIC in.
    phys_enabled: Vec<bool>,
    phys_edge: Vec<bool>,
    phys_target: Vec<usize>,
}

impl Model {
    fn new(nr_vcpus: usize, owned: BTreeSet<u32>) -> Self {
        Self {
            nr_vcpus,
            owned,
            ctlr: 0,
            priority: vec![0; 1024],
            route: vec![Some(0); 1024],
            phys_enabled: vec![false; 1024],
            phys_edge: vec![false; 1024],
            phys_target: vec![0; 1024],
        }
    }

    fn reset(&mut self) {
        let owned = std::mem::take(&mut self.owned);
        *self = Self::new(self.nr_vcpus, owned);
    }

    fn owns(&self, intid: u64) -> bool {
        u32::try_from(intid).is_ok_and(|i| self.owned.contains(&i))
    }

    fn owned_word(&self, k: u64) -> u32 {
        (0..32).fold(0, |w, b| if self.owns(32 * k + b) { w | 1 << b } else { w })
    }

    fn effective_target(&self, intid: u32) -> usize {
        self.route[intid as usize].unwrap_or(0)
    }

    fn router_value(&self, n: u64) -> u64 {
        if !self.owns(n) {
            return 0;
        }
        match self.route[n as usize] {
            None => 1 << 31,
            Some(v) => v as u64,
        }
    }

    /// A guest write of IROUTER<n> (the architectural rule: only the
    /// partition's own vCPUs or IRM = 1 are accepted; anything else is
    /// ignored).
    fn write_router(&mut self, n: u64, half: u64, width: u8, value: u64) {
        if !self.owns(n) {
            return;
        }
        let old = self.router_value(n);
        let new = match (width, half) {
            (8, _) => value,
            (_, 0) => (old & !0xffff_ffff) | (value & 0xffff_ffff),
            _ => (old & 0xffff_ffff) | (value << 32),
        };
        if new & (1 << 31) != 0 {
            self.route[n as usize] = None;
        } else if new & 0xff_00ff_ff00 == 0 && ((new & 0xff) as usize) < self.nr_vcpus {
            self.route[n as usize] = Some((new & 0xff) as usize);
        }
    }
}

/// The value a read must return, as far as the model knows it.
fn expected_read(m: &Model, offset: u64, width: u8, highest: u32) -> u64 {
    let bytes = |f: &dyn Fn(u64) -> u64| -> u64 {
        (0..u64::from(width)).fold(0, |v, i| v | (f(offset + i) & 0xff) << (8 * i))
    };
    match offset {
        0x0 => u64::from(m.ctlr | 0x10 | 0x40),
        0x4 => u64::from(highest / 32) | ((m.nr_vcpus as u64 - 1) << 5) | (9 << 19),
        0x8 => u64::from(IIDR),
        // IGROUPR: owned interrupts are Group 1.
        0x80..=0xff => u64::from(m.owned_word((offset - 0x80) / 4)),
        // IS/ICENABLER.
        0x100..=0x1ff => {
            let k = (offset - 0x100) % 0x80 / 4;
            (0..32).fold(0, |w, b| {
                let i = 32 * k + b;
                if m.owns(i) && m.phys_enabled[i as usize] {
                    w | 1 << b
                } else {
                    w
                }
            })
        }
        // IS/ICPENDR, IS/ICACTIVER: state in hardware, read as 0.
        0x200..=0x3ff => 0,
        0x400..=0x7ff => bytes(&|o| {
            let i = o - 0x400;
            if m.owns(i) {
                u64::from(m.priority[i as usize])
            } else {
                0
            }
        }),
        0xc00..=0xcff => {
            let k = (offset - 0xc00) / 4;
            (0..16).fold(0, |w, f| {
                let i = 16 * k + f;
                if m.owns(i) && m.phys_edge[i as usize] {
                    w | 2 << (2 * f)
                } else {
                    w
                }
            })
        }
        0x6000..=0x7fff => {
            let full = m.router_value((offset - 0x6000) / 8);
            if width == 8 {
                full
            } else {
                (full >> (8 * (offset % 8))) & 0xffff_ffff
            }
        }
        0xffd0 => 0x04,
        0xffe0 => 0x00,
        0xffe4 => 0xb0,
        0xffe8 => u64::from(PIDR2),
        0xfff0 => 0x0d,
        0xfff4 => 0xf0,
        0xfff8 => 0x05,
        0xfffc => 0xb1,
        // ITARGETSR, SPENDSGIR, IGRPMODR, NSACR, reserved: RAZ.
        _ => 0,
    }
}

fn check_effect(m: &mut Model, e: Effect) {
    match e {
        Effect::EnableSpi { intid, target_vcpu } => {
            assert!(m.owned.contains(&intid), "{e:?}: not owned");
            assert!(target_vcpu < m.nr_vcpus, "{e:?}: no such vCPU");
            assert_eq!(
                target_vcpu,
                m.effective_target(intid),
                "{e:?}: wrong target"
            );
            m.phys_enabled[intid as usize] = true;
            m.phys_target[intid as usize] = target_vcpu;
        }
        Effect::DisableSpi { intid } => {
            assert!(m.owned.contains(&intid), "{e:?}: not owned");
            m.phys_enabled[intid as usize] = false;
        }
        Effect::SetSpiConfig { intid, edge } => {
            assert!(m.owned.contains(&intid), "{e:?}: not owned");
            assert_ne!(m.phys_edge[intid as usize], edge, "{e:?}: not a change");
            m.phys_edge[intid as usize] = edge;
        }
        Effect::RouteSpi { intid, target_vcpu } => {
            assert!(m.owned.contains(&intid), "{e:?}: not owned");
            assert!(target_vcpu < m.nr_vcpus, "{e:?}: no such vCPU");
            assert_ne!(
                m.phys_target[intid as usize], target_vcpu,
                "{e:?}: not a change"
            );
            m.phys_target[intid as usize] = target_vcpu;
        }
        Effect::SetPending { intid }
        | Effect::ClearPending { intid }
        | Effect::SetActive { intid }
        | Effect::ClearActive { intid } => {
            assert!(m.owned.contains(&intid), "{e:?}: not owned");
        }
        other => panic!("the distributor produced a PPI/SGI effect: {other:?}"),
    }
}

/// Model side of a successful write (the effects are checked separately).
fn model_write(m: &mut Model, offset: u64, width: u8, value: u64) {
    match offset {
        0x0 => m.ctlr = value as u32 & 0b11,
        0x400..=0x7ff => {
            for i in 0..u64::from(width) {
                let intid = offset - 0x400 + i;
                if m.owns(intid) {
                    m.priority[intid as usize] = (value >> (8 * i)) as u8 & PRIORITY_MASK;
                }
            }
        }
        0x6000..=0x7fff => m.write_router((offset - 0x6000) / 8, offset % 8, width, value),
        _ => {}
    }
}

/// How many effects a write must produce, where that is fixed by the value
/// alone (one per owned interrupt in a set/clear register).
fn expected_effect_count(m: &Model, offset: u64, value: u64) -> Option<usize> {
    match offset {
        // Set-enable re-sends every owned bit written as 1, even if already
        // enabled; the others forward every owned bit written as 1.
        0x100..=0x3ff => {
            Some((value as u32 & m.owned_word((offset % 0x80) / 4)).count_ones() as usize)
        }
        _ => None,
    }
}

fn check_consistent(d: &VgicDist, m: &Model) {
    for &i in &m.owned {
        let u = i as usize;
        assert_eq!(d.spi_enabled(i), m.phys_enabled[u], "SPI {i} enable");
        assert_eq!(d.spi_edge(i), m.phys_edge[u], "SPI {i} trigger");
        assert_eq!(d.target_vcpu(i), Some(m.phys_target[u]), "SPI {i} route");
        assert_eq!(
            m.phys_target[u],
            m.effective_target(i),
            "SPI {i} guest route"
        );
        assert_eq!(d.priority(i), m.priority[u], "SPI {i} priority");
    }
    assert_eq!(d.group1_enabled(), m.ctlr & 2 != 0);
}

fuzz_target!(|input: Input| {
    let nr_vcpus = usize::from(input.nr_vcpus).clamp(1, MAX_VCPUS);
    let raw: Vec<u32> = input.owned.iter().flat_map(Owned::intids).collect();
    let owned: BTreeSet<u32> = raw
        .iter()
        .copied()
        .filter(|i| (32..=MAX_SPI).contains(i))
        .collect();
    let highest = owned.iter().next_back().copied().unwrap_or(0);
    let mut d = VgicDist::new(raw.iter().copied(), usize::from(input.nr_vcpus));
    assert_eq!(d.nr_vcpus(), nr_vcpus);
    assert!(d.owned_spis().eq(owned.iter().copied()));
    for i in (0..1100).chain([u32::MAX, 1 << 16]) {
        assert_eq!(d.owns(i), owned.contains(&i), "owns({i})");
        if !owned.contains(&i) {
            assert_eq!(d.target_vcpu(i), None);
            assert!(!d.spi_enabled(i) && !d.spi_edge(i));
            assert_eq!(d.priority(i), 0);
        }
    }
    let mut m = Model::new(nr_vcpus, owned);
    let mut fx = Effects::new();
    let sh = DistShadow::new();
    sh.refresh_v3(&mut d);

    for op in input.ops {
        match op {
            Op::Reset => {
                d.reset();
                sh.refresh_v3(&mut d);
                m.reset();
                fx.clear();
            }
            Op::Read { offset, width } => {
                let (offset, width) = (offset.get(GICD_SIZE, DIST_REGS), width.get());
                let got = d.read(offset, width);
                let want = expected_access(offset, width);
                match (got, want) {
                    (Err(g), Err(w)) => assert_eq!(g, w, "read {offset:#x}/{width}"),
                    (Ok(v), Ok(())) => {
                        assert!(fits_width(v, width), "read {offset:#x}/{width} = {v:#x}");
                        let e = expected_read(&m, offset, width, highest);
                        assert_eq!(v, e, "read {offset:#x}/{width}");
                        if let Some(mask) = d.passthrough_mask(offset) {
                            assert_eq!(v & !u64::from(mask), 0);
                        }
                    }
                    (g, w) => panic!("read {offset:#x}/{width}: got {g:?}, want {w:?}"),
                }
            }
            Op::Write {
                offset,
                width,
                value,
            }
            | Op::WriteKeep {
                offset,
                width,
                value,
            } => {
                if matches!(op, Op::Write { .. }) {
                    fx.clear();
                }
                let (offset, width) = (offset.get(GICD_SIZE, DIST_REGS), width.get());
                let before: Vec<Effect> = fx.as_slice().to_vec();
                let got = d.write(offset, width, value, &mut fx);
                if got.is_ok() && shadow::covers(offset) {
                    sh.refresh_v3(&mut d);
                }
                let mut want = expected_access(offset, width);
                if want.is_ok() && EFFECTS_CAPACITY - before.len() < MAX_EFFECTS_PER_WRITE {
                    want = Err(VgicError::EffectsFull);
                }
                assert_eq!(got, want, "write {offset:#x}/{width} = {value:#x}");
                assert!(fx.len() <= EFFECTS_CAPACITY);
                assert_eq!(
                    &fx.as_slice()[..before.len()],
                    &before[..],
                    "earlier effects kept"
                );
                let new = &fx.as_slice()[before.len()..];
                if got.is_err() {
                    assert!(new.is_empty(), "a refused write produced effects");
                } else {
                    assert!(new.len() <= MAX_EFFECTS_PER_WRITE);
                    // Route first: an EnableSpi names the target in force
                    // after the write.
                    let group1_was = m.ctlr & 0b10 != 0;
                    model_write(&mut m, offset, width, value);
                    if !group1_was && m.ctlr & 0b10 != 0 {
                        // Enabling Group 1: every vCPU looks for SGIs that
                        // became pending while it was off; nothing else.
                        let kicks: Vec<Effect> =
                            (0..m.nr_vcpus).map(|vcpu| Effect::Kick { vcpu }).collect();
                        assert_eq!(new, &kicks[..], "enabling Group 1");
                    } else {
                        if let Some(n) = expected_effect_count(&m, offset, value) {
                            assert_eq!(
                                new.len(),
                                n,
                                "effects of {offset:#x} = {value:#x}: {new:?}"
                            );
                        }
                        for &e in new {
                            check_effect(&mut m, e);
                        }
                    }
                }
            }
        }
        check_consistent(&d, &m);
        for off in 0..shadow::SPAN + 4 {
            for width in [1u8, 2, 4, 8] {
                if let Some(v) = sh.read(off, width) {
                    assert_eq!(
                        d.read(off, width),
                        Ok(u64::from(v)),
                        "shadow {off:#x}/{width}"
                    );
                }
            }
        }
        // The passthrough mask is exactly the owned bits of the word.
        for off in [0x200u64, 0x284, 0x300, 0x37c, 0x380, 0x3fc] {
            assert_eq!(
                d.passthrough_mask(off),
                Some(m.owned_word((off % 0x80) / 4))
            );
        }
        for off in [
            0x100u64,
            0x180,
            0x201,
            0x400,
            0x6000,
            GICD_SIZE + 0x200,
            u64::MAX,
        ] {
            assert_eq!(d.passthrough_mask(off), None, "{off:#x}");
        }
    }
});
