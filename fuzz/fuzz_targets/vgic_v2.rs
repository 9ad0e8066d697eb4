//! REQ-FLT-2, REQ-ISO-2: the GICv2 distributor front-end (`vgic::v2`) over a
//! partition's `VgicDist` and one `VgicRedist` per vCPU, under arbitrary
//! guest MMIO sequences from arbitrary vCPUs; and the GICH_LR conversions.
//!
//! Checks, after every step:
//! - no panic; an access fails exactly when its width, alignment or offset
//!   is illegal (an independent table is the oracle), or with `EffectsFull`
//!   exactly when the effect list lacks room; a failed access changes no
//!   state and adds no effect;
//! - a write changes no other vCPU's banked state; its effects name owned
//!   SPIs, vCPUs below `nr_vcpus`, and PPIs and kicks only of the accessing
//!   vCPU; at most `MAX_EFFECTS_PER_WRITE` per write;
//! - reads agree with the state the GICv3 model reports: GICD_CTLR is only
//!   bit 0, ITARGETSR of SGIs/PPIs is the reader's bit, ITARGETSR of an SPI
//!   is its route's bit (0 if not owned), priorities, enables, triggers and
//!   SGI pending bytes are the model's; RAZ registers read 0;
//! - an ITARGETSR write routes each owned SPI to the lowest existing vCPU
//!   of its mask or leaves it; GICD_SGIR yields exactly the targets an
//!   independent decoder computes, never a vCPU >= `nr_vcpus`, and
//!   `sgir_write` (the hypervisor's lock-free path) answers the same with no
//!   state change or effect;
//!   SPENDSGIR/CPENDSGIR set/clear exactly the SGIs of non-zero bytes, and
//!   ISPENDR0/ICPENDR0 never change an SGI;
//! - `ich_lr_to_gich` / `gich_lr_to_ich` keep every field GICv2 can hold
//!   (priority: the top 5 bits) and give 0 for what it cannot.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use septum_core::vgic::lr::{decode_lr, encode_lr, LrState};
use septum_core::vgic::v2::{self, GICD_V2_SIZE, PIDR2_V2};
use septum_core::vgic::{
    Effect, Effects, SgiTargets, VgicDist, VgicError, VgicRedist, EFFECTS_CAPACITY, IIDR,
    MAX_EFFECTS_PER_WRITE, MAX_SPI, MAX_VCPUS,
};
use septum_fuzz::{fits_width, Offset, Owned, Width};

/// The GICv2 distributor's registers (start, bytes), to aim offsets at.
const V2_REGS: &[(u64, u64)] = &[
    (0x000, 0x10),  // CTLR, TYPER, IIDR
    (0x080, 0x380), // IGROUPR .. ICACTIVER
    (0x400, 0x400), // IPRIORITYR
    (0x800, 0x100), // ITARGETSR
    (0xc00, 0x100), // ICFGR
    (0xe00, 0x100), // NSACR
    (0xf00, 0x30),  // SGIR, CPENDSGIR, SPENDSGIR
    (0xfd0, 0x30),  // ID registers
];

#[derive(Debug, Arbitrary)]
enum Op {
    Read {
        vcpu: u8,
        offset: Offset,
        width: Width,
    },
    /// A write into an empty effect list (what the hypervisor does).
    Write {
        vcpu: u8,
        offset: Offset,
        width: Width,
        value: u64,
    },
    /// A write that keeps the previous effects (exercises `EffectsFull`).
    WriteKeep {
        vcpu: u8,
        offset: Offset,
        width: Width,
        value: u64,
    },
    /// A GICD_SGIR write with its fields drawn separately.
    Sgir {
        vcpu: u8,
        filter: u8,
        list: u8,
        intid: u8,
        other: u32,
    },
    /// The hypervisor moves the vCPU's most urgent SGI into a list register.
    TakeSgi {
        vcpu: u8,
    },
    IchLr(u64),
    GichLr(u32),
    Reset,
}

#[derive(Debug, Arbitrary)]
struct Input {
    nr_vcpus: u8,
    owned: Vec<Owned>,
    ops: Vec<Op>,
}

/// The legal accesses of the GICv2 frame, written from the module docs.
fn expected_access(offset: u64, width: u8) -> Result<(), VgicError> {
    if !matches!(width, 1 | 2 | 4 | 8) {
        return Err(VgicError::BadWidth);
    }
    if offset >= GICD_V2_SIZE || GICD_V2_SIZE - offset < u64::from(width) {
        return Err(VgicError::OutOfFrame);
    }
    let legal = match width {
        4 => true,
        1 => matches!(offset, 0x400..=0x7fb | 0x800..=0x8fb | 0xf10..=0xf2f),
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

/// GICD_SGIR, decoded independently.
fn expected_sgir(value: u32, sender: usize, nr: usize) -> Option<SgiTargets> {
    let all = (1u32 << nr) - 1;
    let me = 1u32 << sender;
    let targets = match (value >> 24) & 3 {
        0 => (value >> 16) & 0xff & all,
        1 => all & !me,
        2 => me,
        _ => 0,
    };
    (targets != 0).then_some(SgiTargets {
        intid: value & 0xf,
        targets,
    })
}

struct Part {
    nr: usize,
    highest: u32,
    dist: VgicDist,
    redists: Vec<VgicRedist>,
}

impl Part {
    fn snapshot(&self) -> (String, Vec<String>) {
        (
            format!("{:?}", self.dist),
            self.redists.iter().map(|r| format!("{r:?}")).collect(),
        )
    }

    fn byte_at(&self, vcpu: usize, offset: u64) -> u64 {
        let r = &self.redists[vcpu];
        let d = &self.dist;
        let intid = |base: u64| (offset - base) as u32;
        u64::from(match offset {
            0x400..=0x41f => r.priority(intid(0x400)),
            0x420..=0x7fb => d.priority(intid(0x400)),
            0x800..=0x81f => 1 << vcpu,
            0x820..=0x8fb => d.target_vcpu(intid(0x800)).map_or(0, |t| 1 << t),
            0xf10..=0xf1f => u8::from(r.sgi_pending(intid(0xf10))),
            0xf20..=0xf2f => u8::from(r.sgi_pending(intid(0xf20))),
            _ => 0,
        })
    }

    /// The value a read must return, from the GICv3 model's accessors.
    fn expected_read(&self, vcpu: usize, offset: u64, width: u8) -> u64 {
        let r = &self.redists[vcpu];
        let d = &self.dist;
        let word = |f: &dyn Fn(u32) -> bool, base: u32| {
            (0..32).fold(0u64, |w, b| if f(base + b) { w | 1 << b } else { w })
        };
        let cfg = |f: &dyn Fn(u32) -> bool, base: u32| {
            (0..16).fold(0u64, |w, i| if f(base + i) { w | 2 << (2 * i) } else { w })
        };
        match offset {
            0x000 => u64::from(d.group1_enabled()),
            0x004 => u64::from(self.highest / 32) | ((self.nr as u64 - 1) << 5),
            0x008 => u64::from(IIDR),
            0x100 | 0x180 => word(&|i| r.enabled(i), 0),
            0x104..=0x17f | 0x184..=0x1ff => {
                let k = ((offset % 0x80) / 4) as u32;
                word(&|i| d.spi_enabled(i), 32 * k)
            }
            // SGI pending (PPI pending and all active state: hardware).
            0x200 | 0x280 => word(&|i| r.sgi_pending(i), 0),
            0xc00 => 0xaaaa_aaaa,
            0xc04 => cfg(&|i| r.ppi_edge(i), 16),
            0xc08..=0xcff => cfg(&|i| d.spi_edge(i), 16 * ((offset - 0xc00) / 4) as u32),
            0x400..=0x7fb | 0x800..=0x8fb | 0xf10..=0xf2f => {
                (0..u64::from(width)).fold(0, |v, i| v | self.byte_at(vcpu, offset + i) << (8 * i))
            }
            0xfd0 => 0x04,
            0xfe4 => 0xb0,
            0xfe8 => u64::from(PIDR2_V2),
            0xff0 => 0x0d,
            0xff4 => 0xf0,
            0xff8 => 0x05,
            0xffc => 0xb1,
            // IGROUPR, SPI pending/active, NSACR, SGIR, reserved.
            _ => 0,
        }
    }
}

fn check_effect(p: &Part, vcpu: usize, e: Effect) {
    match e {
        Effect::EnableSpi { intid, target_vcpu } | Effect::RouteSpi { intid, target_vcpu } => {
            assert!(p.dist.owns(intid), "{e:?}: not owned");
            assert!(target_vcpu < p.nr, "{e:?}: no such vCPU");
        }
        Effect::DisableSpi { intid }
        | Effect::SetSpiConfig { intid, .. }
        | Effect::SetPending { intid }
        | Effect::ClearPending { intid }
        | Effect::SetActive { intid }
        | Effect::ClearActive { intid } => assert!(p.dist.owns(intid), "{e:?}: not owned"),
        Effect::EnablePpi { vcpu: v, intid }
        | Effect::DisablePpi { vcpu: v, intid }
        | Effect::SetPpiConfig { vcpu: v, intid, .. }
        | Effect::SetPpiPending { vcpu: v, intid }
        | Effect::ClearPpiPending { vcpu: v, intid }
        | Effect::SetPpiActive { vcpu: v, intid }
        | Effect::ClearPpiActive { vcpu: v, intid } => {
            assert_eq!(v, vcpu, "{e:?} names another vCPU");
            assert!((16..32).contains(&intid), "{e:?} is not a PPI");
        }
        Effect::Kick { vcpu: v } => assert_eq!(v, vcpu, "{e:?} kicks another vCPU"),
    }
}

/// Whether GICv2 can hold this list register (vINTID < 1020; HW only
/// linking a PPI/SPI to a non-SGI; no NMI).
fn expressible_ich(lr: u64) -> bool {
    let d = decode_lr(lr);
    lr & (1 << 59) == 0
        && d.vintid < 1020
        && d.pintid
            .is_none_or(|p| (16..1020).contains(&p) && d.vintid >= 16)
}

fn check_ich(lr: u64) {
    let g = v2::ich_lr_to_gich(lr);
    let d = decode_lr(lr);
    if !expressible_ich(lr) {
        assert_eq!(g, 0, "{lr:#x} has no GICv2 form");
        return;
    }
    let back = decode_lr(v2::gich_lr_to_ich(g));
    assert_eq!(back.vintid, d.vintid, "{lr:#x}");
    assert_eq!(back.pintid, d.pintid, "{lr:#x}");
    assert_eq!(back.priority, d.priority & 0xf8, "{lr:#x}");
    assert_eq!(back.group1, d.group1, "{lr:#x}");
    assert_eq!(back.state, d.state, "{lr:#x}");
    assert_eq!(back.eoi_maintenance, d.eoi_maintenance, "{lr:#x}");
    assert_eq!(g & 0x3ff, d.vintid);
    assert_eq!(g & 0x0070_0000, 0, "reserved bits");
    assert_eq!(v2::ich_lr_to_gich(v2::gich_lr_to_ich(g)), g);
}

fn check_gich(lr: u32) {
    let hw = lr & (1 << 31) != 0;
    let vintid = lr & 0x3ff;
    let pintid = (lr >> 10) & 0x3ff;
    let ich = v2::gich_lr_to_ich(lr);
    if vintid >= 1020 || (hw && (!(16..1020).contains(&pintid) || vintid < 16)) {
        assert_eq!(ich, 0, "{lr:#x} is not a valid GICH_LR");
        return;
    }
    // Reserved bits, and the SGI source without HW, have no GICv3 form.
    let dropped = if hw { 0x0070_0000 } else { 0x0077_fc00 };
    assert_eq!(v2::ich_lr_to_gich(ich), lr & !dropped, "{lr:#x}");
    assert!(expressible_ich(ich));
}

fuzz_target!(|input: Input| {
    let nr = usize::from(input.nr_vcpus).clamp(1, MAX_VCPUS);
    let raw: Vec<u32> = input.owned.iter().flat_map(Owned::intids).collect();
    let highest = raw
        .iter()
        .copied()
        .filter(|i| (32..=MAX_SPI).contains(i))
        .max()
        .unwrap_or(0);
    let mut p = Part {
        nr,
        highest,
        dist: VgicDist::new(raw.iter().copied(), nr),
        redists: (0..nr).map(|v| VgicRedist::new(v, nr)).collect(),
    };
    let mut fx = Effects::new();

    for op in input.ops {
        match op {
            Op::Reset => {
                p.dist.reset();
                p.redists.iter_mut().for_each(VgicRedist::reset);
                fx.clear();
            }
            Op::IchLr(lr) => check_ich(lr),
            Op::GichLr(lr) => check_gich(lr),
            Op::TakeSgi { vcpu } => {
                let v = usize::from(vcpu) % nr;
                if let Some(irq) = p.dist.pending_for(&p.redists[v]) {
                    assert!(irq.intid < 16 && p.redists[v].sgi_pending(irq.intid));
                    assert!(p.redists[v].take_pending(irq.intid));
                    let ich = encode_lr(irq.intid, None, irq.priority, true, LrState::Pending);
                    let g = v2::ich_lr_to_gich(ich);
                    assert_eq!(g & 0x3ff, irq.intid);
                    assert_eq!(v2::gich_lr_to_ich(g), ich, "priorities are 5-bit");
                }
            }
            Op::Read {
                vcpu,
                offset,
                width,
            } => {
                let v = usize::from(vcpu) % nr;
                let (offset, width) = (offset.get(GICD_V2_SIZE, V2_REGS), width.get());
                let before = p.snapshot();
                let got = v2::read(&mut p.dist, &mut p.redists[v], offset, width);
                assert_eq!(p.snapshot(), before, "a read changed state");
                match (got, expected_access(offset, width)) {
                    (Err(g), Err(w)) => assert_eq!(g, w, "read {offset:#x}/{width}"),
                    (Ok(val), Ok(())) => {
                        assert!(fits_width(val, width), "{offset:#x}/{width} = {val:#x}");
                        let want = p.expected_read(v, offset, width);
                        assert_eq!(val, want, "vCPU {v} read {offset:#x}/{width}");
                        if offset == 0 {
                            assert!(val <= 1, "GICD_CTLR shows only bit 0");
                        }
                        if let Some(mask) = v2::passthrough_mask(&p.dist, &p.redists[v], offset) {
                            assert_eq!(val & u64::from(mask), 0, "hardware state leaked");
                        }
                    }
                    (g, w) => panic!("read {offset:#x}/{width}: got {g:?}, want {w:?}"),
                }
            }
            Op::Write {
                vcpu,
                offset,
                width,
                value,
            } => {
                fx.clear();
                let (offset, width) = (offset.get(GICD_V2_SIZE, V2_REGS), width.get());
                write_step(
                    &mut p,
                    &mut fx,
                    usize::from(vcpu) % nr,
                    offset,
                    width,
                    value,
                );
            }
            Op::WriteKeep {
                vcpu,
                offset,
                width,
                value,
            } => {
                let (offset, width) = (offset.get(GICD_V2_SIZE, V2_REGS), width.get());
                write_step(
                    &mut p,
                    &mut fx,
                    usize::from(vcpu) % nr,
                    offset,
                    width,
                    value,
                );
            }
            Op::Sgir {
                vcpu,
                filter,
                list,
                intid,
                other,
            } => {
                // NSATT and the reserved bits vary too.
                let value = (u32::from(filter & 3) << 24)
                    | (u32::from(list) << 16)
                    | u32::from(intid & 0xf)
                    | (other & 0xfc00_fff0);
                fx.clear();
                write_step(
                    &mut p,
                    &mut fx,
                    usize::from(vcpu) % nr,
                    0xf00,
                    4,
                    u64::from(value),
                );
            }
        }
    }
});

fn write_step(p: &mut Part, fx: &mut Effects, v: usize, offset: u64, width: u8, value: u64) {
    let before_fx: Vec<Effect> = fx.as_slice().to_vec();
    let before = p.snapshot();
    let targets: Vec<Option<usize>> = (0..1024).map(|i| p.dist.target_vcpu(i)).collect();
    let ready: Vec<u32> = p
        .redists
        .iter()
        .map(|r| {
            (0..16)
                .filter(|&s| r.sgi_pending(s) && r.enabled(s))
                .fold(0, |m, s| m | 1 << s)
        })
        .collect();
    let pending: Vec<bool> = (0..16).map(|s| p.redists[v].sgi_pending(s)).collect();

    let quick = v2::sgir_write(offset, width, value, v, p.redists.len());
    let group1_was = p.dist.group1_enabled();
    let got = v2::write(&mut p.dist, &mut p.redists[v], offset, width, value, fx);
    if let Some(q) = quick {
        // The lock-free GICD_SGIR path: the same SGI, no state, no effect
        // (the full path may only refuse for want of effect room).
        if got != Err(VgicError::EffectsFull) {
            assert_eq!(got, Ok(q), "vCPU {v} GICD_SGIR = {value:#x}");
            assert_eq!(fx.len(), before_fx.len(), "GICD_SGIR produced effects");
            assert_eq!(p.snapshot(), before, "GICD_SGIR changed state");
        }
    } else {
        assert!(
            offset != 0xf00 || width != 4,
            "a GICD_SGIR write missed by sgir_write"
        );
    }
    let mut want = expected_access(offset, width);
    if want.is_ok() && EFFECTS_CAPACITY - before_fx.len() < MAX_EFFECTS_PER_WRITE {
        want = Err(VgicError::EffectsFull);
    }
    assert_eq!(
        got.map(|_| ()),
        want,
        "vCPU {v} write {offset:#x}/{width} = {value:#x}"
    );
    assert!(fx.len() <= EFFECTS_CAPACITY);
    assert_eq!(&fx.as_slice()[..before_fx.len()], &before_fx[..]);
    let new: Vec<Effect> = fx.as_slice()[before_fx.len()..].to_vec();
    let Ok(sgi) = got else {
        assert!(new.is_empty(), "a refused write produced effects");
        assert_eq!(p.snapshot(), before, "a refused write changed state");
        return;
    };
    assert!(new.len() <= MAX_EFFECTS_PER_WRITE);
    if !group1_was && p.dist.group1_enabled() {
        // Enabling the distributor: every vCPU looks for SGIs that became
        // pending while it was off, and nothing else happens.
        let kicks: Vec<Effect> = (0..p.nr).map(|vcpu| Effect::Kick { vcpu }).collect();
        assert_eq!(new, kicks, "enabling Group 1");
    } else {
        for &e in &new {
            check_effect(p, v, e);
        }
    }
    // Banking: no other vCPU's state moved.
    let after = p.snapshot();
    for (n, (a, b)) in after.1.iter().zip(&before.1).enumerate() {
        if n != v {
            assert_eq!(a, b, "vCPU {v}'s write changed vCPU {n}");
        }
    }
    // A kick exactly when an SGI of this vCPU became deliverable (an
    // enable's kicks are checked above).
    if group1_was || !p.dist.group1_enabled() {
        let r = &p.redists[v];
        let ready_now = (0..16)
            .filter(|&s| r.sgi_pending(s) && r.enabled(s))
            .fold(0u32, |m, s| m | 1 << s);
        assert_eq!(
            new.contains(&Effect::Kick { vcpu: v }),
            ready_now & !ready[v] != 0,
            "kick of {offset:#x} = {value:#x}: {new:?}"
        );
    }
    // Routes: the last RouteSpi of each SPI is its route now.
    let mut seen = Vec::new();
    for e in new.iter().rev() {
        if let Effect::RouteSpi { intid, target_vcpu } = *e {
            if !seen.contains(&intid) {
                seen.push(intid);
                assert_eq!(p.dist.target_vcpu(intid), Some(target_vcpu), "{e:?}");
            }
        }
    }

    let bytes = |i: u64| (value >> (8 * i)) as u8;
    match offset {
        0x000 => assert_eq!(p.dist.group1_enabled(), value & 1 != 0),
        0x820..=0x8fb => {
            for i in 0..u64::from(width) {
                let intid = (offset - 0x800 + i) as u32;
                let mask = u32::from(bytes(i)) & ((1 << p.nr) - 1);
                let old = targets[intid as usize];
                let now = p.dist.target_vcpu(intid);
                if old.is_none() {
                    assert_eq!(now, None, "SPI {intid} is not owned");
                } else if mask == 0 {
                    assert_eq!(now, old, "SPI {intid}: mask {:#x} names no vCPU", bytes(i));
                } else {
                    assert_eq!(now, Some(mask.trailing_zeros() as usize), "SPI {intid}");
                }
            }
        }
        0xf10..=0xf2f => {
            let set = offset >= 0xf20;
            let first = (offset & 0xf) as u32;
            for s in 0..16u32 {
                let hit = (first..first + u32::from(width)).contains(&s)
                    && bytes(u64::from(s - first)) != 0;
                let now = p.redists[v].sgi_pending(s);
                let want = if hit { set } else { pending[s as usize] };
                assert_eq!(now, want, "SGI {s} after {offset:#x} = {value:#x}");
            }
        }
        0x200 | 0x280 => {
            for s in 0..16 {
                assert_eq!(
                    p.redists[v].sgi_pending(s),
                    pending[s as usize],
                    "SGI bits are WI"
                );
            }
        }
        _ => {}
    }
    if offset == 0xf00 {
        assert_eq!(sgi, expected_sgir(value as u32, v, p.nr), "SGIR {value:#x}");
        if let Some(t) = sgi {
            assert!(t.intid < 16 && t.targets >> p.nr == 0);
            // What the hypervisor does with it.
            for n in 0..p.nr {
                if t.targets & (1 << n) != 0 {
                    p.redists[n].set_sgi_pending(t.intid);
                }
            }
        }
    } else {
        assert_eq!(sgi, None, "only GICD_SGIR sends SGIs");
    }
}
