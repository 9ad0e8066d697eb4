//! REQ-FLT-2, REQ-ISO-2: the emulated GIC redistributor of one vCPU, and SGI
//! routing (`decode_sgi1r`), under arbitrary guest sequences.
//!
//! Checks, after every step:
//! - no panic; an access fails exactly when width, alignment or offset is
//!   illegal (independent table), or with `EffectsFull` exactly when the
//!   effect list lacks room; a failed access adds no effect;
//! - effects name only this vCPU and PPIs 16..=31 (never an SPI), at most
//!   `MAX_EFFECTS_PER_WRITE` per write, never more than `EFFECTS_CAPACITY`;
//!   a `Kick` comes exactly when an SGI became deliverable;
//! - reads agree with a model of the guest-visible state; PPI pending and
//!   active bits (the `passthrough_mask`) read 0; RAZ registers read 0;
//!   GICR_TYPER names the affinity 0.0.0.vcpu that `decode_sgi1r` uses;
//! - `decode_sgi1r` never targets a vCPU >= nr_vcpus, an SGI above 15, the
//!   sender on a broadcast, or anything for a foreign affinity;
//! - `VgicDist::pending_for` picks the most urgent enabled, pending SGI.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use septum_core::vgic::{
    decode_sgi1r, Effect, Effects, PendingIrq, VgicDist, VgicError, VgicRedist, EFFECTS_CAPACITY,
    GICR_FRAME_SIZE, GICR_SGI_BASE, IIDR, MAX_EFFECTS_PER_WRITE, MAX_VCPUS, PIDR2, PRIORITY_MASK,
};
use septum_fuzz::{fits_width, Offset, Width};

/// The redistributor's registers (start, bytes), to aim offsets at.
const REDIST_REGS: &[(u64, u64)] = &[
    (0x0000, 0x100),                 // RD_base: CTLR .. LPI registers
    (0xffd0, 0x30),                  // ID registers
    (GICR_SGI_BASE + 0x0080, 0x380), // IGROUPR0 .. ICACTIVER0
    (GICR_SGI_BASE + 0x0400, 0x20),  // IPRIORITYR
    (GICR_SGI_BASE + 0x0c00, 0x100), // ICFGR0/1, IGRPMODR0, NSACR
];

#[derive(Debug, Arbitrary)]
enum Op {
    Read {
        offset: Offset,
        width: Width,
    },
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
    /// A guest on vCPU `sender` writes ICC_SGI1R_EL1.
    Sgi1r {
        value: u64,
        sender: u8,
    },
    SetSgiPending(u8),
    TakePending(u8),
    /// GICD_CTLR.EnableGrp1 of the partition's distributor.
    Group1(bool),
    Reset,
}

#[derive(Debug, Arbitrary)]
struct Input {
    vcpu: u8,
    nr_vcpus: u8,
    ops: Vec<Op>,
}

const LPI_REGS64: [u64; 6] = [0x40, 0x48, 0x70, 0x78, 0xa0, 0xb0];
const SGI: u64 = GICR_SGI_BASE;

fn expected_access(offset: u64, width: u8) -> Result<(), VgicError> {
    if !matches!(width, 1 | 2 | 4 | 8) {
        return Err(VgicError::BadWidth);
    }
    if offset >= GICR_FRAME_SIZE || GICR_FRAME_SIZE - offset < u64::from(width) {
        return Err(VgicError::OutOfFrame);
    }
    let legal = match width {
        4 => true,
        // GICR_IPRIORITYR0..7.
        1 => (SGI + 0x400..=SGI + 0x41f).contains(&offset),
        // GICR_TYPER (also as halves) and the 64-bit LPI registers.
        8 => matches!(offset, 0x8 | 0xc) || LPI_REGS64.contains(&(offset & !7)),
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

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Model {
    vcpu: usize,
    nr_vcpus: usize,
    enabled: u32,
    sgi_pending: u32,
    ppi_edge: u32,
    priority: [u8; 32],
    sleep: bool,
}

impl Model {
    fn new(vcpu: usize, nr_vcpus: usize) -> Self {
        Self {
            vcpu,
            nr_vcpus,
            enabled: 0,
            sgi_pending: 0,
            ppi_edge: 0,
            priority: [0; 32],
            sleep: true,
        }
    }

    fn ready(&self) -> u32 {
        self.enabled & self.sgi_pending & 0xffff
    }

    fn typer(&self) -> u64 {
        let last = if self.vcpu + 1 == self.nr_vcpus {
            1 << 4
        } else {
            0
        };
        ((self.vcpu as u64) << 32) | ((self.vcpu as u64) << 8) | last
    }

    fn read(&self, offset: u64, width: u8) -> u64 {
        match offset {
            0x4 => u64::from(IIDR),
            0x8 | 0xc => {
                if width == 8 {
                    self.typer()
                } else {
                    (self.typer() >> (8 * (offset - 8))) & 0xffff_ffff
                }
            }
            0x14 => {
                if self.sleep {
                    0b110
                } else {
                    0
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
            o if o == SGI + 0x80 => 0xffff_ffff,
            o if o == SGI + 0x100 || o == SGI + 0x180 => u64::from(self.enabled),
            o if o == SGI + 0x200 || o == SGI + 0x280 => u64::from(self.sgi_pending),
            o if (SGI + 0x400..=SGI + 0x41f).contains(&o) => (0..u64::from(width))
                .fold(0, |v, i| {
                    v | u64::from(self.priority[(o - SGI - 0x400 + i) as usize]) << (8 * i)
                }),
            o if o == SGI + 0xc00 => 0xaaaa_aaaa,
            o if o == SGI + 0xc04 => (0..16).fold(0, |v, i| {
                if self.ppi_edge & (1 << (16 + i)) != 0 {
                    v | 2 << (2 * i)
                } else {
                    v
                }
            }),
            // CTLR, STATUSR, the LPI registers, ISACTIVER0/ICACTIVER0 (SGI
            // active state is in the list registers, PPI state in
            // hardware), IGRPMODR0, NSACR, reserved: RAZ.
            _ => 0,
        }
    }

    /// Applies a write; returns the effects it must produce, in order.
    fn write(&mut self, offset: u64, width: u8, value: u64) -> Vec<Effect> {
        let v = value as u32;
        let vcpu = self.vcpu;
        let ppis = |v: u32| (16..32u32).filter(move |i| v & (1 << i) != 0);
        let ready_before = self.ready();
        let mut fx = Vec::new();
        match offset {
            0x14 => self.sleep = v & 2 != 0,
            o if o == SGI + 0x100 => {
                self.enabled |= v;
                fx.extend(ppis(v).map(|intid| Effect::EnablePpi { vcpu, intid }));
            }
            o if o == SGI + 0x180 => {
                self.enabled &= !v;
                fx.extend(ppis(v).map(|intid| Effect::DisablePpi { vcpu, intid }));
            }
            o if o == SGI + 0x200 => {
                self.sgi_pending |= v & 0xffff;
                fx.extend(ppis(v).map(|intid| Effect::SetPpiPending { vcpu, intid }));
            }
            o if o == SGI + 0x280 => {
                self.sgi_pending &= !(v & 0xffff);
                fx.extend(ppis(v).map(|intid| Effect::ClearPpiPending { vcpu, intid }));
            }
            o if o == SGI + 0x300 => {
                fx.extend(ppis(v).map(|intid| Effect::SetPpiActive { vcpu, intid }));
            }
            o if o == SGI + 0x380 => {
                fx.extend(ppis(v).map(|intid| Effect::ClearPpiActive { vcpu, intid }));
            }
            o if (SGI + 0x400..=SGI + 0x41f).contains(&o) => {
                for i in 0..u64::from(width) {
                    self.priority[(o - SGI - 0x400 + i) as usize] =
                        (value >> (8 * i)) as u8 & PRIORITY_MASK;
                }
            }
            o if o == SGI + 0xc04 => {
                for i in 0..16 {
                    let intid = 16 + i;
                    let edge = v & (2 << (2 * i)) != 0;
                    if (self.ppi_edge & (1 << intid) != 0) != edge {
                        self.ppi_edge ^= 1 << intid;
                        fx.push(Effect::SetPpiConfig { vcpu, intid, edge });
                    }
                }
            }
            _ => {}
        }
        if self.ready() & !ready_before != 0 {
            fx.push(Effect::Kick { vcpu });
        }
        fx
    }

    fn best(&self) -> Option<PendingIrq> {
        (0..16u32)
            .filter(|i| self.ready() & (1 << i) != 0)
            .map(|intid| PendingIrq {
                intid,
                priority: self.priority[intid as usize],
            })
            .min_by_key(|p| (p.priority, p.intid))
    }
}

fn check_effect(e: Effect, vcpu: usize, nr_vcpus: usize) {
    let (v, intid) = match e {
        Effect::EnablePpi { vcpu, intid }
        | Effect::DisablePpi { vcpu, intid }
        | Effect::SetPpiConfig { vcpu, intid, .. }
        | Effect::SetPpiPending { vcpu, intid }
        | Effect::ClearPpiPending { vcpu, intid }
        | Effect::SetPpiActive { vcpu, intid }
        | Effect::ClearPpiActive { vcpu, intid } => (vcpu, Some(intid)),
        Effect::Kick { vcpu } => (vcpu, None),
        other => panic!("a redistributor produced an SPI effect: {other:?}"),
    };
    assert_eq!(v, vcpu, "{e:?} names another vCPU");
    assert!(v < nr_vcpus);
    if let Some(i) = intid {
        assert!((16..32).contains(&i), "{e:?} is not a PPI");
    }
}

fn check_sgi1r(value: u64, sender: usize, nr_vcpus: usize) -> u32 {
    let t = decode_sgi1r(value, sender, nr_vcpus);
    let nr = nr_vcpus.min(MAX_VCPUS);
    assert!(t.intid < 16);
    assert_eq!(u64::from(t.intid), (value >> 24) & 0xf);
    assert_eq!(
        u64::from(t.targets) >> nr,
        0,
        "SGI1R {value:#x} from {sender} targets a vCPU >= {nr}"
    );
    if value & (1 << 40) != 0 {
        if sender < 32 {
            assert_eq!(
                t.targets & (1 << sender),
                0,
                "broadcast includes the sender"
            );
        }
        assert_eq!(
            t.targets,
            ((1u32 << nr) - 1) & !(1u32.checked_shl(sender as u32).unwrap_or(0))
        );
    } else if value & 0x00ff_00ff_00ff_0000 != 0 || (value >> 44) & 0xf != 0 {
        // Aff1..3 or RS non-zero: no vCPU of the partition has that affinity.
        assert_eq!(t.targets, 0, "SGI1R {value:#x} reached a foreign affinity");
    } else {
        assert_eq!(u64::from(t.targets), value & 0xffff & ((1 << nr) - 1));
    }
    t.targets
}

fuzz_target!(|input: Input| {
    let nr_vcpus = usize::from(input.nr_vcpus).clamp(1, MAX_VCPUS);
    let vcpu = usize::from(input.vcpu).min(nr_vcpus - 1);
    let mut r = VgicRedist::new(usize::from(input.vcpu), usize::from(input.nr_vcpus));
    assert_eq!(r.vcpu(), vcpu);
    let mut d = VgicDist::new([], nr_vcpus);
    let mut m = Model::new(vcpu, nr_vcpus);
    let mut fx = Effects::new();

    for op in input.ops {
        match op {
            Op::Reset => {
                r.reset();
                m = Model::new(vcpu, nr_vcpus);
                fx.clear();
            }
            Op::Group1(on) => {
                let was = d.group1_enabled();
                let mut tmp = Effects::new();
                d.write(0, 4, if on { 2 } else { 0 }, &mut tmp)
                    .expect("GICD_CTLR write");
                // Enabling kicks every vCPU (SGIs pending while it was
                // off); nothing else has an effect.
                let kicks: Vec<Effect> = if on && !was {
                    (0..nr_vcpus).map(|vcpu| Effect::Kick { vcpu }).collect()
                } else {
                    Vec::new()
                };
                assert_eq!(tmp.as_slice(), &kicks[..]);
            }
            Op::Sgi1r { value, sender } => {
                let targets = check_sgi1r(value, usize::from(sender), usize::from(input.nr_vcpus));
                if targets & (1 << vcpu) != 0 {
                    let intid = ((value >> 24) & 0xf) as u32;
                    let kick = r.set_sgi_pending(intid);
                    m.sgi_pending |= 1 << intid;
                    assert_eq!(kick, m.enabled & (1 << intid) != 0);
                }
            }
            Op::SetSgiPending(sgi) => {
                let sgi = u32::from(sgi);
                let kick = r.set_sgi_pending(sgi);
                if sgi < 16 {
                    m.sgi_pending |= 1 << sgi;
                    assert_eq!(kick, m.enabled & (1 << sgi) != 0);
                } else {
                    assert!(!kick);
                }
            }
            Op::TakePending(sgi) => {
                let sgi = u32::from(sgi);
                let was = r.take_pending(sgi);
                if sgi < 16 {
                    assert_eq!(was, m.sgi_pending & (1 << sgi) != 0);
                    m.sgi_pending &= !(1 << sgi);
                } else {
                    assert!(!was);
                }
            }
            Op::Read { offset, width } => {
                let (offset, width) = (offset.get(GICR_FRAME_SIZE, REDIST_REGS), width.get());
                match (r.read(offset, width), expected_access(offset, width)) {
                    (Err(g), Err(w)) => assert_eq!(g, w, "read {offset:#x}/{width}"),
                    (Ok(v), Ok(())) => {
                        assert!(fits_width(v, width), "read {offset:#x}/{width} = {v:#x}");
                        assert_eq!(v, m.read(offset, width), "read {offset:#x}/{width}");
                        if let Some(mask) = r.passthrough_mask(offset) {
                            assert_eq!(mask, 0xffff_0000);
                            assert_eq!(v & u64::from(mask), 0, "PPI state leaked");
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
                let (offset, width) = (offset.get(GICR_FRAME_SIZE, REDIST_REGS), width.get());
                let before = fx.len();
                let got = r.write(offset, width, value, &mut fx);
                let mut want = expected_access(offset, width);
                if want.is_ok() && EFFECTS_CAPACITY - before < MAX_EFFECTS_PER_WRITE {
                    want = Err(VgicError::EffectsFull);
                }
                assert_eq!(got, want, "write {offset:#x}/{width} = {value:#x}");
                assert!(fx.len() <= EFFECTS_CAPACITY);
                let new = &fx.as_slice()[before..];
                if got.is_err() {
                    assert!(new.is_empty());
                } else {
                    assert!(new.len() <= MAX_EFFECTS_PER_WRITE);
                    for &e in new {
                        check_effect(e, vcpu, nr_vcpus);
                    }
                    let expected = m.write(offset, width, value);
                    assert_eq!(
                        new,
                        &expected[..],
                        "effects of {offset:#x}/{width} = {value:#x}"
                    );
                }
            }
        }
        // Guest-visible state agrees with the model.
        for i in 0..32 {
            assert_eq!(r.enabled(i), m.enabled & (1 << i) != 0, "enable {i}");
            assert_eq!(r.priority(i), m.priority[i as usize]);
            assert_eq!(r.ppi_edge(i), i >= 16 && m.ppi_edge & (1 << i) != 0);
            assert_eq!(r.sgi_pending(i), i < 16 && m.sgi_pending & (1 << i) != 0);
        }
        assert!(!r.enabled(32) && !r.sgi_pending(16) && r.priority(32) == 0);
        assert_eq!(r.asleep(), m.sleep);
        let want = if d.group1_enabled() { m.best() } else { None };
        assert_eq!(d.pending_for(&r), want);
        for off in [SGI + 0x200, SGI + 0x280, SGI + 0x300, SGI + 0x380] {
            assert_eq!(r.passthrough_mask(off), Some(0xffff_0000));
        }
        for off in [
            0u64,
            SGI + 0x100,
            SGI + 0x180,
            0x200,
            GICR_FRAME_SIZE + SGI + 0x200,
        ] {
            assert_eq!(r.passthrough_mask(off), None, "{off:#x}");
        }
    }
});
