//! A GICv2 (GIC-400-like) distributor front-end, and GICv2 list registers.
//!
//! A guest built for GICv2 sees a 4 KiB distributor frame. Every access is
//! translated onto the GICv3 model: SPI registers onto the partition's
//! [`VgicDist`], the banked SGI/PPI registers (word or byte 0 of each
//! array) onto the accessing vCPU's [`VgicRedist`] at the same offset in
//! SGI_base. The interrupt state machine, the ownership checks and the
//! [`Effect`](super::Effect)s therefore stay those of the GICv3 emulation.
//!
//! What the guest sees:
//! - a GIC without Security Extensions and with one enable bit
//!   (GICD_CTLR bit 0); affinity routing and the other GICv3 controls
//!   stay internal;
//! - every interrupt in Group 0: IGROUPR is RAZ/WI. A GICv2 guest enables
//!   its virtual CPU interface with GICV_CTLR.EnableGrp0 (Linux sets only
//!   that bit), so the list registers must hold Group 0 interrupts, and
//!   the distributor says the same;
//! - GICD_ITARGETSR of an SPI holds one vCPU (the GICv3 route); for SGIs and
//!   PPIs it reads as the accessing vCPU's bit;
//! - GICD_SGIR returns the SGI to send ([`SgiTargets`], as
//!   [`decode_sgi1r`](super::decode_sgi1r) does); SGIs have one pending
//!   bit per vCPU, not one per source: GICD_SPENDSGIR shows source CPU 0.
//!
//! Widths: 32-bit everywhere; 8-bit also for IPRIORITYR, ITARGETSR,
//! CPENDSGIR and SPENDSGIR. Anything else is a [`VgicError`].

use super::lr::{decode_lr, encode_lr, LrState};
use super::{
    check_access, id_register, Effects, SgiTargets, VgicDist, VgicError, VgicRedist, GICR_SGI_BASE,
    IIDR,
};

/// Size of the GICv2 distributor frame.
pub const GICD_V2_SIZE: u64 = 0x1000;
/// GICD_PIDR2 of the GICv2 frame: ArchRev 2 and Arm's JEP106 bits (the
/// GIC-400 value).
pub const PIDR2_V2: u32 = 0x2b;

// GICv2 distributor offsets.
const CTLR: u64 = 0x000;
const TYPER: u64 = 0x004;
const IIDR_OFF: u64 = 0x008;
const IGROUPR: u64 = 0x080;
const ISENABLER: u64 = 0x100;
const ISPENDR: u64 = 0x200;
const ISACTIVER: u64 = 0x300;
const BITS_END: u64 = 0x3ff;
const IPRIORITYR: u64 = 0x400;
/// INTIDs 1020..=1023 have no priority.
const IPRIORITYR_LAST: u64 = 0x7fb;
const ITARGETSR: u64 = 0x800;
const ITARGETSR_LAST: u64 = 0x8fb;
const ICFGR: u64 = 0xc00;
const ICFGR_END: u64 = 0xcff;
/// GICD_SGIR's offset in the distributor frame.
pub const SGIR: u64 = 0xf00;
const CPENDSGIR: u64 = 0xf10;
const SPENDSGIR: u64 = 0xf20;
const SPENDSGIR_LAST: u64 = 0xf2f;
const ID_REGS: u64 = 0xfd0;

// The GICv3 registers this front-end drives.
const V3_CTLR: u64 = 0x0000;
const V3_TYPER: u64 = 0x0004;
const V3_CTLR_ENABLE_GRP1: u64 = 1 << 1;
const V3_IROUTER: u64 = 0x6000;
const V3_ISPENDR0: u64 = GICR_SGI_BASE + 0x0200;
const V3_ICPENDR0: u64 = GICR_SGI_BASE + 0x0280;

/// GICD_TYPER ITLinesNumber [4:0] and CPUNumber [7:5]: same place and
/// meaning in GICv3; the bits above are GICv3-only (SecurityExtn and LSPI
/// read 0 here).
const TYPER_V2_MASK: u64 = 0xff;

/// Bits of ISPENDR0/ICPENDR0 a GICv2 guest may write: the SGI bits are
/// WI (SGIs are made pending through SPENDSGIR/CPENDSGIR).
const PPI_BITS: u64 = 0xffff_0000;

#[derive(Clone, Copy)]
enum Reg {
    Ctlr,
    Typer,
    Iidr,
    /// Same offset in the GICv3 distributor.
    Dist(u64),
    /// The vCPU's redistributor frame at this offset; writes keep only
    /// the bits of the mask.
    Redist(u64, u64),
    /// ITARGETSR bytes of SGIs and PPIs (read-only).
    BankedTargets,
    /// ITARGETSR bytes of SPIs, starting at this INTID.
    Targets(u32),
    Sgir,
    /// CPENDSGIR (`set` false) or SPENDSGIR, starting at this SGI.
    SgiPending {
        set: bool,
        first: u32,
    },
    Id(u64),
    RazWi,
}

fn decode(offset: u64) -> Reg {
    // The arrays of INTIDs 0..=31 live in the redistributor's SGI_base at
    // the offsets GICv2 uses in the distributor.
    let banked = |o: u64| Reg::Redist(GICR_SGI_BASE + o, u64::MAX);
    match offset {
        CTLR..=0x003 => Reg::Ctlr,
        TYPER..=0x007 => Reg::Typer,
        IIDR_OFF..=0x00b => Reg::Iidr,
        // Group 0 for all (see the module docs).
        IGROUPR..=0x0ff => Reg::RazWi,
        ISENABLER..=BITS_END if offset % 0x80 < 4 => {
            if (ISPENDR..ISACTIVER).contains(&offset) {
                Reg::Redist(GICR_SGI_BASE + offset, PPI_BITS)
            } else {
                banked(offset)
            }
        }
        ISENABLER..=BITS_END => Reg::Dist(offset),
        IPRIORITYR..=0x41f => banked(offset),
        0x420..=IPRIORITYR_LAST => Reg::Dist(offset),
        ITARGETSR..=0x81f => Reg::BankedTargets,
        0x820..=ITARGETSR_LAST => Reg::Targets((offset - ITARGETSR) as u32),
        ICFGR..=0xc07 => banked(offset),
        0xc08..=ICFGR_END => Reg::Dist(offset),
        SGIR..=0xf03 => Reg::Sgir,
        CPENDSGIR..=0xf1f => Reg::SgiPending {
            set: false,
            first: (offset - CPENDSGIR) as u32,
        },
        SPENDSGIR..=SPENDSGIR_LAST => Reg::SgiPending {
            set: true,
            first: (offset - SPENDSGIR) as u32,
        },
        ID_REGS..=0xfff => Reg::Id(offset & !3),
        // IPRIORITYR/ITARGETSR of 1020..=1023, reserved, the
        // IMPLEMENTATION DEFINED 0xD00 block, NSACR.
        _ => Reg::RazWi,
    }
}

fn decode_checked(offset: u64, width: u8) -> Result<Reg, VgicError> {
    let byte_ok = matches!(
        offset,
        IPRIORITYR..=IPRIORITYR_LAST | ITARGETSR..=ITARGETSR_LAST | CPENDSGIR..=SPENDSGIR_LAST
    );
    check_access(offset, width, GICD_V2_SIZE, byte_ok, false)?;
    Ok(decode(offset))
}

/// Assembles `width` bytes, byte `i` from `f(i)`.
fn bytes(width: u8, mut f: impl FnMut(u32) -> u8) -> u64 {
    (0..u32::from(width)).fold(0, |v, i| v | u64::from(f(i)) << (8 * i))
}

/// The CPU-mask bit of vCPU `vcpu` (0 if it has none: GICv2 has 8 CPUs).
fn cpu_bit(vcpu: usize) -> u8 {
    u32::try_from(vcpu)
        .ok()
        .and_then(|v| 1u8.checked_shl(v))
        .unwrap_or(0)
}

/// Bit `n` set for every vCPU `n` below `nr_vcpus`.
fn all_vcpus(nr_vcpus: usize) -> u32 {
    u32::try_from(nr_vcpus)
        .ok()
        .and_then(|n| 1u32.checked_shl(n))
        .map_or(u32::MAX, |b| b - 1)
}

/// A guest read of `width` bytes at `offset` of the GICv2 distributor
/// frame, by the vCPU whose redistributor is `redist`.
pub fn read(
    dist: &mut VgicDist,
    redist: &mut VgicRedist,
    offset: u64,
    width: u8,
) -> Result<u64, VgicError> {
    let v = match decode_checked(offset, width)? {
        Reg::Ctlr => u64::from(dist.group1_enabled()),
        Reg::Typer => dist.read(V3_TYPER, 4)? & TYPER_V2_MASK,
        Reg::Iidr => u64::from(IIDR),
        Reg::Dist(o) => dist.read(o, width)?,
        Reg::Redist(o, _) => redist.read(o, width)?,
        Reg::BankedTargets => {
            let me = cpu_bit(redist.vcpu());
            bytes(width, |_| me)
        }
        Reg::Targets(first) => bytes(width, |i| dist.target_vcpu(first + i).map_or(0, cpu_bit)),
        Reg::SgiPending { first, .. } => bytes(width, |i| u8::from(redist.sgi_pending(first + i))),
        Reg::Id(o) => u64::from(match o {
            0xfe8 => PIDR2_V2,
            // Otherwise the GICv3 frame's identification (same layout, 0xF000 lower).
            _ => id_register(o | 0xf000),
        }),
        // GICD_SGIR is write-only.
        Reg::Sgir | Reg::RazWi => 0,
    };
    Ok(v)
}

/// A guest write of `width` bytes at `offset` of the GICv2 distributor
/// frame by the vCPU whose redistributor is `redist`. Physical consequences
/// and kicks are appended to `fx`, as the GICv3 emulation does.
///
/// Returns the SGI a GICD_SGIR write asks for, to be handled like the
/// result of [`decode_sgi1r`](super::decode_sgi1r): make it pending in each
/// target's redistributor and kick it. `None` for every other write, for
/// the reserved TargetListFilter and when no vCPU of the partition is
/// targeted.
pub fn write(
    dist: &mut VgicDist,
    redist: &mut VgicRedist,
    offset: u64,
    width: u8,
    value: u64,
    fx: &mut Effects,
) -> Result<Option<SgiTargets>, VgicError> {
    let reg = decode_checked(offset, width)?;
    // Checked once here so that a write is never refused half-way.
    if !fx.has_room_for_a_write() {
        return Err(VgicError::EffectsFull);
    }
    match reg {
        Reg::Ctlr => {
            let enable = if value & 1 != 0 {
                V3_CTLR_ENABLE_GRP1
            } else {
                0
            };
            dist.write(V3_CTLR, 4, enable, fx)?;
        }
        Reg::Dist(o) => dist.write(o, width, value, fx)?,
        Reg::Redist(o, writable) => redist.write(o, width, value & writable, fx)?,
        Reg::Targets(first) => write_targets(dist, first, width, value, fx)?,
        Reg::Sgir => return Ok(decode_sgir(value as u32, redist.vcpu(), dist.nr_vcpus())),
        Reg::SgiPending { set, first } => {
            // Any source bit of an SGI's byte stands for the SGI.
            let mut sgis = 0u64;
            for i in 0..u32::from(width) {
                if (value >> (8 * i)) as u8 != 0 {
                    sgis |= 1u64.checked_shl(first + i).unwrap_or(0);
                }
            }
            let o = if set { V3_ISPENDR0 } else { V3_ICPENDR0 };
            redist.write(o, 4, sgis & 0xffff, fx)?;
        }
        Reg::Typer | Reg::Iidr | Reg::BankedTargets | Reg::Id(_) | Reg::RazWi => {}
    }
    Ok(None)
}

/// ITARGETSR of SPIs: each byte is a CPU mask. The SPI goes to the lowest
/// vCPU of the partition in the mask (a GICv2 may pick any CPU of the
/// mask); bits of vCPUs that do not exist are ignored, and a mask naming
/// none of the partition's vCPUs leaves the route unchanged, as GICv3
/// IROUTER does for a foreign affinity. Written as IROUTER (Aff0 = vCPU)
/// so the RouteSpi effects are the GICv3 ones.
fn write_targets(
    dist: &mut VgicDist,
    first: u32,
    width: u8,
    value: u64,
    fx: &mut Effects,
) -> Result<(), VgicError> {
    let valid = all_vcpus(dist.nr_vcpus());
    // One IROUTER write per byte: each checks for a whole write's room,
    // so collect them apart and append (at most 4 effects, room checked).
    let mut routed = Effects::new();
    for i in 0..u32::from(width) {
        let intid = first + i;
        let mask = u32::from((value >> (8 * i)) as u8) & valid;
        if mask == 0 || !dist.owns(intid) {
            continue;
        }
        let target = u64::from(mask.trailing_zeros());
        dist.write(V3_IROUTER + 8 * u64::from(intid), 8, target, &mut routed)?;
    }
    for &e in &routed {
        fx.push(e);
    }
    Ok(())
}

/// A GICD_SGIR write without the emulation's state: `Some` with what
/// [`write`] would return when the access is a legal GICD_SGIR write (which
/// changes no state and has no effect but the SGI), `None` for every other
/// access. It needs neither lock, so SGI generation can skip them.
#[inline]
pub fn sgir_write(
    offset: u64,
    width: u8,
    value: u64,
    sender: usize,
    nr_vcpus: usize,
) -> Option<Option<SgiTargets>> {
    (offset == SGIR && width == 4).then(|| decode_sgir(value as u32, sender, nr_vcpus))
}

/// Decodes a GICD_SGIR write from vCPU `sender` of a partition with
/// `nr_vcpus` vCPUs: TargetListFilter `[25:24]`, CPUTargetList `[23:16]`, SGI
/// INTID `[3:0]` (NSATT is meaningless without Security Extensions).
fn decode_sgir(value: u32, sender: usize, nr_vcpus: usize) -> Option<SgiTargets> {
    let all = all_vcpus(nr_vcpus.min(super::MAX_VCPUS));
    let me = u32::from(cpu_bit(sender));
    let targets = match (value >> 24) & 0b11 {
        0 => (value >> 16) & 0xff,
        1 => !me,
        2 => me,
        _ => return None, // reserved: the write is ignored
    } & all;
    (targets != 0).then_some(SgiTargets {
        intid: value & 0xf,
        targets,
    })
}

/// For a read of GICD_ISPENDR/ICPENDR/ISACTIVER/ICACTIVER at `offset`: the
/// bits whose state is in hardware and reads as 0 here (the vCPU's PPIs in
/// word 0, owned SPIs elsewhere). A hypervisor that wants exact answers
/// reads the same register of the physical GIC on the vCPU's core and ORs
/// in `phys & mask`. `None` for every other offset.
pub fn passthrough_mask(dist: &VgicDist, redist: &VgicRedist, offset: u64) -> Option<u32> {
    if offset >= GICD_V2_SIZE || !offset.is_multiple_of(4) {
        return None;
    }
    match decode(offset) {
        Reg::Dist(o) => dist.passthrough_mask(o),
        Reg::Redist(o, _) => redist.passthrough_mask(o),
        _ => None,
    }
}

// GICH_LR<n> fields.
const GICH_VID_MASK: u32 = 0x3ff;
const GICH_PID_SHIFT: u32 = 10;
const GICH_PID_MASK: u32 = 0x3ff;
const GICH_EOI: u32 = 1 << 19;
const GICH_PRIORITY_SHIFT: u32 = 23;
const GICH_PRIORITY_MASK: u32 = 0x1f;
const GICH_STATE_SHIFT: u32 = 28;
const GICH_GRP1: u32 = 1 << 30;
const GICH_HW: u32 = 1 << 31;
// ICH_LR<n>_EL2 bits `decode_lr`/`encode_lr` leave to the caller.
const ICH_EOI: u64 = 1 << 41;
const ICH_NMI: u64 = 1 << 59;

const fn state_bits(s: LrState) -> u32 {
    match s {
        LrState::Invalid => 0b00,
        LrState::Pending => 0b01,
        LrState::Active => 0b10,
        LrState::PendingActive => 0b11,
    }
}

const fn state_from_bits(b: u32) -> LrState {
    match b & 0b11 {
        0b00 => LrState::Invalid,
        0b01 => LrState::Pending,
        0b10 => LrState::Active,
        _ => LrState::PendingActive,
    }
}

/// Whether a list register's interrupt can be expressed: the vINTID is
/// below 1020 and a hardware interrupt links a PPI/SPI to a non-SGI (the
/// rule [`LrManager::inject`](super::lr::LrManager::inject) enforces).
const fn expressible(vintid: u32, pintid: Option<u32>) -> bool {
    if vintid >= 1020 {
        return false;
    }
    match pintid {
        Some(p) => p >= 16 && p < 1020 && vintid >= 16,
        None => true,
    }
}

/// Converts an `ICH_LR<n>_EL2` value (as [`LrManager`](super::lr::LrManager)
/// keeps them) to a GICv2 `GICH_LR<n>`: VirtualID `[9:0]`, PhysicalID
/// `[19:10]` with HW = 1 (else EOI `[19]`, and CPUID `[12:10]` = 0, the
/// source the distributor shows for SGIs), Priority `[27:23]`, State
/// `[29:28]`, Grp1 `[30]`, HW `[31]`.
///
/// The priority keeps its top 5 bits (all the emulation stores). A value
/// GICv2 cannot express (vINTID ≥ 1020, an out-of-range or SGI hardware
/// link, the GICv3.3 NMI bit) becomes 0, an invalid LR, never a wrong one.
/// The group is copied: the caller clears Grp1 for guests that enable only
/// Group 0 (see the module docs).
pub const fn ich_lr_to_gich(lr: u64) -> u32 {
    let d = decode_lr(lr);
    if lr & ICH_NMI != 0 || !expressible(d.vintid, d.pintid) {
        return 0;
    }
    let mut v = d.vintid
        | (((d.priority >> 3) as u32) << GICH_PRIORITY_SHIFT)
        | (state_bits(d.state) << GICH_STATE_SHIFT);
    if d.group1 {
        v |= GICH_GRP1;
    }
    match d.pintid {
        Some(p) => v |= GICH_HW | (p << GICH_PID_SHIFT),
        None if d.eoi_maintenance => v |= GICH_EOI,
        None => {}
    }
    v
}

/// The `GICH_LR<n>` of a pending hardware interrupt whose vINTID is its
/// pINTID `intid`, at priority `prio`, Group 0 (a GICv2 guest's group):
/// what [`ich_lr_to_gich`] makes of the GICv3 list register the interrupt
/// path builds, with the group cleared, but built directly (no decode on
/// the interrupt path). 0 where a GICv2 cannot express it.
#[inline(always)]
pub const fn gich_hw_pending(intid: u32, prio: u8) -> u32 {
    if !expressible(intid, Some(intid)) {
        return 0;
    }
    intid
        | (((prio >> 3) as u32) << GICH_PRIORITY_SHIFT)
        | (state_bits(LrState::Pending) << GICH_STATE_SHIFT)
        | GICH_HW
        | (intid << GICH_PID_SHIFT)
}

/// The `GICH_LR<n>` of a pending purely virtual interrupt (an SGI, source
/// CPU 0) `intid` at priority `prio`, Group 0: [`ich_lr_to_gich`] of the
/// GICv3 list register SGI injection builds, with the group cleared, built
/// directly. 0 where a GICv2 cannot express it.
#[inline(always)]
pub const fn gich_virtual_pending(intid: u32, prio: u8) -> u32 {
    if !expressible(intid, None) {
        return 0;
    }
    intid
        | (((prio >> 3) as u32) << GICH_PRIORITY_SHIFT)
        | (state_bits(LrState::Pending) << GICH_STATE_SHIFT)
}

/// Converts a GICv2 `GICH_LR<n>` back to the `ICH_LR<n>_EL2` form. The
/// SGI source (CPUID) is dropped, GICv3 LRs have none; reserved bits are
/// ignored. A value outside what [`ich_lr_to_gich`] produces (vINTID
/// 1020..=1023, an SGI or out-of-range hardware link) becomes 0.
pub const fn gich_lr_to_ich(lr: u32) -> u64 {
    let vintid = lr & GICH_VID_MASK;
    let pintid = if lr & GICH_HW != 0 {
        Some((lr >> GICH_PID_SHIFT) & GICH_PID_MASK)
    } else {
        None
    };
    if !expressible(vintid, pintid) {
        return 0;
    }
    let priority = (((lr >> GICH_PRIORITY_SHIFT) & GICH_PRIORITY_MASK) as u8) << 3;
    let state = state_from_bits(lr >> GICH_STATE_SHIFT);
    let v = encode_lr(vintid, pintid, priority, lr & GICH_GRP1 != 0, state);
    if pintid.is_none() && lr & GICH_EOI != 0 {
        v | ICH_EOI
    } else {
        v
    }
}

/// REQ-ISO-2: a GICv2 guest reaches only its partition's interrupts and
/// vCPUs, and sees its own banked SGI/PPI state; REQ-FLT-2: malformed
/// accesses are refused, never a panic.
#[cfg(test)]
mod tests {
    use super::super::{Effect, MAX_EFFECTS_PER_WRITE, PRIORITY_MASK};
    use super::*;

    #[test]
    fn gich_hw_pending_is_the_conversion_of_the_gicv3_form() {
        use crate::vgic::lr::encode_lr;
        for intid in 0..1100u32 {
            for prio in 0..=255u8 {
                let ich = encode_lr(intid, Some(intid), prio, true, LrState::Pending);
                assert_eq!(
                    gich_hw_pending(intid, prio),
                    ich_lr_to_gich(ich) & !GICH_GRP1,
                    "INTID {intid}, priority {prio:#x}"
                );
            }
        }
    }

    #[test]
    fn gich_virtual_pending_is_the_conversion_of_the_gicv3_form() {
        use crate::vgic::lr::encode_lr;
        for intid in 0..1100u32 {
            for prio in 0..=255u8 {
                let ich = encode_lr(intid, None, prio, true, LrState::Pending);
                assert_eq!(
                    gich_virtual_pending(intid, prio),
                    ich_lr_to_gich(ich) & !GICH_GRP1,
                    "INTID {intid}, priority {prio:#x}"
                );
            }
        }
    }

    #[test]
    fn sgir_write_answers_as_the_emulation() {
        let mut x = 0x1234_5678_9abc_def1u64;
        for nr in 1..=8usize {
            let mut d = VgicDist::new([40], nr);
            for sender in 0..nr {
                let mut r = VgicRedist::new(sender, nr);
                for _ in 0..500 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    for (off, width) in [(SGIR, 4u8), (SGIR, 1), (SGIR + 4, 4), (0x100, 4)] {
                        let mut fx = Effects::new();
                        let full = write(&mut d, &mut r, off, width, x, &mut fx);
                        match sgir_write(off, width, x, sender, nr) {
                            Some(got) => {
                                assert_eq!(Ok(got), full, "{x:#x} from {sender} of {nr}");
                                assert!(fx.as_slice().is_empty());
                            }
                            None => assert!(off != SGIR || width != 4),
                        }
                    }
                }
            }
        }
    }

    /// Owns SPIs 33, 40 and 64..=95; 4 vCPUs.
    fn part() -> (VgicDist, Vec<VgicRedist>) {
        let d = VgicDist::new([33, 40].into_iter().chain(64..96), 4);
        let rs = (0..4).map(|v| VgicRedist::new(v, 4)).collect();
        (d, rs)
    }

    fn w(d: &mut VgicDist, r: &mut VgicRedist, off: u64, width: u8, v: u64) -> Vec<Effect> {
        let mut fx = Effects::new();
        assert_eq!(write(d, r, off, width, v, &mut fx), Ok(None), "{off:#x}");
        fx.as_slice().to_vec()
    }

    fn rd(d: &mut VgicDist, r: &mut VgicRedist, off: u64) -> u64 {
        read(d, r, off, 4).unwrap()
    }

    fn sgir(d: &mut VgicDist, r: &mut VgicRedist, v: u64) -> Option<SgiTargets> {
        let mut fx = Effects::new();
        let out = write(d, r, SGIR, 4, v, &mut fx).unwrap();
        assert!(fx.is_empty(), "SGIR produces no effect itself");
        out
    }

    #[test]
    fn ctlr_enable_only() {
        let (mut d, mut rs) = part();
        let r = &mut rs[0];
        assert_eq!(rd(&mut d, r, CTLR), 0);
        assert_eq!(
            w(&mut d, r, CTLR, 4, 0xffff_ffff).len(),
            4,
            "enabling kicks each of the 4 vCPUs"
        );
        assert_eq!(rd(&mut d, r, CTLR), 1, "no ARE, DS or Group 1 bit shows");
        assert!(d.group1_enabled(), "bit 0 is the internal Group 1 enable");
        assert_eq!(d.read(V3_CTLR, 4).unwrap() & 0b11, 0b10);
        w(&mut d, r, CTLR, 4, 0b10);
        assert_eq!(rd(&mut d, r, CTLR), 0);
        assert!(!d.group1_enabled());
    }

    #[test]
    fn typer_iidr_and_ids() {
        let (mut d, mut rs) = part();
        let r = &mut rs[2];
        // Highest owned SPI 95: ITLinesNumber 2; CPUNumber 3; no SecurityExtn, LSPI.
        assert_eq!(rd(&mut d, r, TYPER), 2 | (3 << 5));
        let mut one = VgicDist::new([1019], 1);
        let mut r1 = VgicRedist::new(0, 1);
        assert_eq!(rd(&mut one, &mut r1, TYPER), 31);
        assert_eq!(rd(&mut d, r, IIDR_OFF), u64::from(IIDR));
        assert_eq!(rd(&mut d, r, 0xfe8), 0x2b, "PIDR2 of a GIC-400");
        assert_eq!(rd(&mut d, r, 0xfe8) >> 4 & 0xf, 2, "ArchRev = GICv2");
        let cidr: Vec<u64> = [0xff0, 0xff4, 0xff8, 0xffc]
            .iter()
            .map(|&o| rd(&mut d, r, o))
            .collect();
        assert_eq!(cidr, vec![0x0d, 0xf0, 0x05, 0xb1]);
        // The rest keeps the GICv3 frame's JEP106 identity (Arm).
        assert_eq!(rd(&mut d, r, 0xfd0), 0x04);
        assert_eq!(rd(&mut d, r, 0xfe4), 0xb0);
        for o in [0xfd4, 0xfd8, 0xfdc, 0xfe0, 0xfec] {
            assert_eq!(rd(&mut d, r, o), 0, "{o:#x}");
        }
        // Read-only.
        for o in [TYPER, IIDR_OFF, 0xfe8] {
            assert!(w(&mut d, r, o, 4, 0).is_empty());
        }
        assert_eq!(rd(&mut d, r, TYPER), 2 | (3 << 5));
        assert_eq!(rd(&mut d, r, 0xfe8), 0x2b);
    }

    #[test]
    fn groups_are_raz_wi() {
        let (mut d, mut rs) = part();
        let r = &mut rs[0];
        for o in [IGROUPR, IGROUPR + 4, IGROUPR + 8, 0x0fc] {
            assert!(w(&mut d, r, o, 4, u64::MAX).is_empty());
            assert_eq!(rd(&mut d, r, o), 0, "{o:#x}");
        }
    }

    /// REQ-ISO-2: word 0 is the accessing vCPU's own.
    #[test]
    fn banked_enables_per_vcpu() {
        let (mut d, mut rs) = part();
        let (r0, rest) = rs.split_first_mut().unwrap();
        let r1 = &mut rest[0];
        let fx = w(&mut d, r0, ISENABLER, 4, 0x0800_00ff);
        assert_eq!(fx, vec![Effect::EnablePpi { vcpu: 0, intid: 27 }]);
        assert_eq!(rd(&mut d, r0, ISENABLER), 0x0800_00ff);
        assert_eq!(rd(&mut d, r0, ISENABLER + 0x80), 0x0800_00ff, "ICENABLER0");
        assert_eq!(rd(&mut d, r1, ISENABLER), 0, "vCPU 1 has its own");
        let fx = w(&mut d, r1, ISENABLER, 4, 1 << 30);
        assert_eq!(fx, vec![Effect::EnablePpi { vcpu: 1, intid: 30 }]);
        let fx = w(&mut d, r0, ISENABLER + 0x80, 4, 0x0800_0001);
        assert_eq!(fx, vec![Effect::DisablePpi { vcpu: 0, intid: 27 }]);
        assert_eq!(rd(&mut d, r0, ISENABLER), 0xfe);
        assert!(r1.enabled(30) && !r0.enabled(30));
    }

    /// REQ-ISO-2: only owned SPIs are visible and reach hardware.
    #[test]
    fn spi_enables_go_to_the_distributor() {
        let (mut d, mut rs) = part();
        let r = &mut rs[1];
        let fx = w(&mut d, r, ISENABLER + 4, 4, 0xffff_ffff);
        assert_eq!(
            fx,
            vec![
                Effect::EnableSpi {
                    intid: 33,
                    target_vcpu: 0
                },
                Effect::EnableSpi {
                    intid: 40,
                    target_vcpu: 0
                }
            ]
        );
        assert_eq!(rd(&mut d, r, ISENABLER + 4), (1 << 1) | (1 << 8));
        assert!(d.spi_enabled(33) && !d.spi_enabled(34));
        assert_eq!(
            w(&mut d, r, ISENABLER + 0x84, 4, 1 << 1),
            vec![Effect::DisableSpi { intid: 33 }]
        );
        // Not owned: RAZ/WI.
        assert!(w(&mut d, r, ISENABLER + 0x10, 4, u64::MAX).is_empty());
        assert_eq!(rd(&mut d, r, ISENABLER + 0x10), 0);
        // A fully owned word: 32 effects, within the bound.
        assert_eq!(w(&mut d, r, ISENABLER + 8, 4, u64::MAX).len(), 32);
    }

    #[test]
    fn pending_and_active() {
        let (mut d, mut rs) = part();
        let r = &mut rs[3];
        // SPIs: forwarded, read 0 (state in hardware).
        assert_eq!(
            w(&mut d, r, ISPENDR + 4, 4, u64::MAX),
            vec![
                Effect::SetPending { intid: 33 },
                Effect::SetPending { intid: 40 }
            ]
        );
        assert_eq!(
            w(&mut d, r, ISPENDR + 0x80 + 4, 4, 1 << 8),
            vec![Effect::ClearPending { intid: 40 }]
        );
        assert_eq!(
            w(&mut d, r, ISACTIVER + 4, 4, 1 << 1),
            vec![Effect::SetActive { intid: 33 }]
        );
        assert_eq!(
            w(&mut d, r, ISACTIVER + 0x80 + 4, 4, 1 << 1),
            vec![Effect::ClearActive { intid: 33 }]
        );
        assert_eq!(rd(&mut d, r, ISPENDR + 4), 0);
        // PPIs: effects for this vCPU; the SGI bits of ISPENDR0/ICPENDR0 are WI.
        w(&mut d, r, ISENABLER, 4, 0xffff);
        assert_eq!(
            w(&mut d, r, ISPENDR, 4, (1 << 27) | 0xffff),
            vec![Effect::SetPpiPending { vcpu: 3, intid: 27 }]
        );
        assert_eq!(rd(&mut d, r, ISPENDR), 0, "no SGI became pending");
        r.set_sgi_pending(4);
        assert_eq!(
            rd(&mut d, r, ISPENDR),
            1 << 4,
            "but SGI pending state shows"
        );
        assert_eq!(rd(&mut d, r, ISPENDR + 0x80), 1 << 4);
        assert_eq!(
            w(&mut d, r, ISPENDR + 0x80, 4, (1 << 27) | 0xffff),
            vec![Effect::ClearPpiPending { vcpu: 3, intid: 27 }]
        );
        assert!(r.sgi_pending(4), "ICPENDR0 cannot clear an SGI");
        assert_eq!(
            w(&mut d, r, ISACTIVER, 4, 1 << 30),
            vec![Effect::SetPpiActive { vcpu: 3, intid: 30 }]
        );
        assert_eq!(
            w(&mut d, r, ISACTIVER + 0x80, 4, 1 << 30),
            vec![Effect::ClearPpiActive { vcpu: 3, intid: 30 }]
        );
        assert_eq!(rd(&mut d, r, ISACTIVER), 0);
    }

    #[test]
    fn passthrough_masks() {
        let (d, rs) = part();
        let r = &rs[0];
        for o in [ISPENDR, ISPENDR + 0x80, ISACTIVER, ISACTIVER + 0x80] {
            assert_eq!(passthrough_mask(&d, r, o), Some(0xffff_0000), "{o:#x}");
            assert_eq!(passthrough_mask(&d, r, o + 4), Some((1 << 1) | (1 << 8)));
            assert_eq!(passthrough_mask(&d, r, o + 8), Some(u32::MAX));
        }
        for o in [
            CTLR,
            IGROUPR,
            ISENABLER,
            ISENABLER + 4,
            ISPENDR + 2,
            IPRIORITYR,
            GICD_V2_SIZE + ISPENDR,
            u64::MAX,
        ] {
            assert_eq!(passthrough_mask(&d, r, o), None, "{o:#x}");
        }
    }

    /// REQ-ISO-2: priorities of foreign interrupts are RAZ/WI; SGI/PPI
    /// priorities are banked.
    #[test]
    fn priorities_bytes_and_words() {
        let (mut d, mut rs) = part();
        let (r0, rest) = rs.split_first_mut().unwrap();
        let r1 = &mut rest[0];
        // SGIs 0..=3 of vCPU 0, word access.
        assert!(w(&mut d, r0, IPRIORITYR, 4, 0x8070_6050).is_empty());
        assert_eq!(rd(&mut d, r0, IPRIORITYR), 0x8070_6050);
        assert_eq!(r0.priority(2), 0x70);
        assert_eq!(rd(&mut d, r1, IPRIORITYR), 0, "vCPU 1's own");
        // PPI 27, byte access.
        w(&mut d, r1, IPRIORITYR + 27, 1, 0xa7);
        assert_eq!(read(&mut d, r1, IPRIORITYR + 27, 1), Ok(0xa0));
        assert_eq!(r1.priority(27), 0xa7 & PRIORITY_MASK);
        assert_eq!(r0.priority(27), 0);
        assert_eq!(rd(&mut d, r1, IPRIORITYR + 24), 0xa0 << 24);
        // SPIs: 32..=35 (only 33 owned), word.
        w(&mut d, r0, IPRIORITYR + 32, 4, 0xffff_ffff);
        assert_eq!(rd(&mut d, r1, IPRIORITYR + 32), 0xf800, "shared, masked");
        assert_eq!(d.priority(33), 0xf8);
        // SPI 40, byte; its neighbours are not owned.
        w(&mut d, r0, IPRIORITYR + 40, 1, 0x48);
        assert_eq!(read(&mut d, r0, IPRIORITYR + 40, 1), Ok(0x48));
        assert_eq!(read(&mut d, r0, IPRIORITYR + 41, 1), Ok(0));
        // Last SPI priorities, then the reserved 1020..=1023 word.
        let mut all = VgicDist::new(32..=1019, 1);
        let mut ra = VgicRedist::new(0, 1);
        w(&mut all, &mut ra, IPRIORITYR + 1016, 4, 0x1020_3040);
        assert_eq!(rd(&mut all, &mut ra, IPRIORITYR + 1016), 0x1020_3040);
        assert_eq!(read(&mut all, &mut ra, 0x7fb, 1), Ok(0x10));
        w(&mut all, &mut ra, 0x7fc, 4, u64::MAX);
        assert_eq!(rd(&mut all, &mut ra, 0x7fc), 0);
        assert_eq!(read(&mut all, &mut ra, 0x7fc, 1), Err(VgicError::BadWidth));
    }

    #[test]
    fn sgi_and_ppi_targets_read_the_own_bit() {
        let (mut d, mut rs) = part();
        for (v, r) in rs.iter_mut().enumerate() {
            let bit = 1u64 << v;
            assert_eq!(rd(&mut d, r, ITARGETSR), bit * 0x0101_0101);
            assert_eq!(rd(&mut d, r, ITARGETSR + 0x1c), bit * 0x0101_0101);
            assert_eq!(read(&mut d, r, ITARGETSR + 27, 1), Ok(bit));
            // Read-only.
            assert!(w(&mut d, r, ITARGETSR, 4, 0).is_empty());
            assert!(w(&mut d, r, ITARGETSR + 5, 1, 0xff).is_empty());
            assert_eq!(rd(&mut d, r, ITARGETSR + 4), bit * 0x0101_0101);
        }
    }

    /// REQ-ISO-2: an SPI can only be routed to one of the partition's vCPUs.
    #[test]
    fn spi_targets_route_to_the_lowest_existing_vcpu() {
        let (mut d, mut rs) = part();
        let r = &mut rs[0];
        let off = ITARGETSR + 40;
        assert_eq!(read(&mut d, r, off, 1), Ok(0x01), "vCPU 0 at reset");
        // Byte write: vCPU 2.
        assert_eq!(
            w(&mut d, r, off, 1, 0x04),
            vec![Effect::RouteSpi {
                intid: 40,
                target_vcpu: 2
            }]
        );
        assert_eq!(read(&mut d, r, off, 1), Ok(0x04));
        assert_eq!(d.target_vcpu(40), Some(2));
        assert_eq!(d.read(V3_IROUTER + 8 * 40, 8), Ok(2), "the GICv3 route");
        // Several bits: the lowest one wins.
        assert_eq!(
            w(&mut d, r, off, 1, 0x0a),
            vec![Effect::RouteSpi {
                intid: 40,
                target_vcpu: 1
            }]
        );
        assert_eq!(read(&mut d, r, off, 1), Ok(0x02));
        // Bits of vCPUs 4..=7 do not exist here: ignored.
        assert_eq!(
            w(&mut d, r, off, 1, 0xf8),
            vec![Effect::RouteSpi {
                intid: 40,
                target_vcpu: 3
            }]
        );
        // A mask with no vCPU of the partition leaves the route as it is.
        for mask in [0x00, 0x10, 0xf0] {
            assert!(w(&mut d, r, off, 1, mask).is_empty(), "{mask:#x}");
            assert_eq!(d.target_vcpu(40), Some(3));
        }
        // The same target again: no effect.
        assert!(w(&mut d, r, off, 1, 0x08).is_empty());
        // Enabling reports the current target.
        assert_eq!(
            w(&mut d, r, ISENABLER + 4, 4, 1 << 8),
            vec![Effect::EnableSpi {
                intid: 40,
                target_vcpu: 3
            }]
        );
    }

    #[test]
    fn spi_targets_word_access() {
        let (mut d, mut rs) = part();
        let r = &mut rs[1];
        // INTIDs 64..=67, all owned: one effect per changed route.
        let fx = w(&mut d, r, ITARGETSR + 64, 4, 0x0801_0402);
        assert_eq!(
            fx,
            vec![
                Effect::RouteSpi {
                    intid: 64,
                    target_vcpu: 1
                },
                Effect::RouteSpi {
                    intid: 65,
                    target_vcpu: 2
                },
                Effect::RouteSpi {
                    intid: 67,
                    target_vcpu: 3
                }
            ]
        );
        assert_eq!(rd(&mut d, r, ITARGETSR + 64), 0x0801_0402);
        assert_eq!(read(&mut d, r, ITARGETSR + 66, 1), Ok(0x01));
        // The reserved 1020..=1023 word and beyond: RAZ/WI, word only.
        for o in [0x8fc, 0x900, 0xbfc] {
            assert!(w(&mut d, r, o, 4, u64::MAX).is_empty());
            assert_eq!(rd(&mut d, r, o), 0);
            assert_eq!(read(&mut d, r, o, 1), Err(VgicError::BadWidth));
        }
    }

    /// REQ-ISO-2: an SPI the partition does not own reads 0 and ignores
    /// writes, in every register.
    #[test]
    fn foreign_spis_are_invisible() {
        let (mut d, mut rs) = part();
        let r = &mut rs[0];
        let before = d.clone();
        // SPI 34 is not owned; 32..=35 share words with owned 33.
        assert_eq!(read(&mut d, r, ITARGETSR + 34, 1), Ok(0));
        assert!(w(&mut d, r, ITARGETSR + 34, 1, 0x02).is_empty());
        assert_eq!(read(&mut d, r, ITARGETSR + 34, 1), Ok(0));
        assert_eq!(d.target_vcpu(34), None);
        assert_eq!(rd(&mut d, r, ITARGETSR + 32), 0x0100, "only 33 shows");
        assert!(w(&mut d, r, IPRIORITYR + 34, 1, 0x80).is_empty());
        assert_eq!(read(&mut d, r, IPRIORITYR + 34, 1), Ok(0));
        assert!(w(&mut d, r, ICFGR + 8, 4, 2 << 4).is_empty(), "ICFGR of 34");
        assert_eq!(rd(&mut d, r, ICFGR + 8), 0);
        assert!(w(&mut d, r, ISENABLER + 4, 4, 1 << 2).is_empty());
        assert!(w(&mut d, r, ISPENDR + 4, 4, 1 << 2).is_empty());
        assert!(w(&mut d, r, ISACTIVER + 4, 4, 1 << 2).is_empty());
        assert_eq!(rd(&mut d, r, ISENABLER + 4), 0);
        assert_eq!(format!("{before:?}"), format!("{d:?}"), "nothing changed");
    }

    #[test]
    fn config_registers() {
        let (mut d, mut rs) = part();
        let (r0, rest) = rs.split_first_mut().unwrap();
        let r1 = &mut rest[0];
        // ICFGR0: SGIs are edge, read-only.
        assert_eq!(rd(&mut d, r0, ICFGR), 0xaaaa_aaaa);
        assert!(w(&mut d, r0, ICFGR, 4, 0).is_empty());
        assert_eq!(rd(&mut d, r0, ICFGR), 0xaaaa_aaaa);
        // ICFGR1: PPI 27 is field 11, banked.
        assert_eq!(
            w(&mut d, r0, ICFGR + 4, 4, 2 << 22),
            vec![Effect::SetPpiConfig {
                vcpu: 0,
                intid: 27,
                edge: true
            }]
        );
        assert_eq!(rd(&mut d, r0, ICFGR + 4), 2 << 22);
        assert_eq!(rd(&mut d, r1, ICFGR + 4), 0);
        // ICFGR2 (32..=47): only 33 and 40 are owned.
        assert_eq!(
            w(&mut d, r1, ICFGR + 8, 4, 0xffff_ffff),
            vec![
                Effect::SetSpiConfig {
                    intid: 33,
                    edge: true
                },
                Effect::SetSpiConfig {
                    intid: 40,
                    edge: true
                }
            ]
        );
        assert_eq!(rd(&mut d, r0, ICFGR + 8), (2 << 2) | (2 << 16));
        assert!(w(&mut d, r1, ICFGR + 0xfc, 4, u64::MAX).is_empty());
    }

    #[test]
    fn raz_wi_regions() {
        let (mut d, mut rs) = part();
        let r = &mut rs[0];
        for o in [
            0x00c, 0x07c, 0xd00, 0xdfc, 0xe00, 0xe04, 0xefc, 0xf04, 0xf0c, 0xf30, 0xfcc, 0xfd4,
        ] {
            assert!(w(&mut d, r, o, 4, u64::MAX).is_empty(), "{o:#x}");
            assert_eq!(rd(&mut d, r, o), 0, "{o:#x}");
        }
        assert_eq!(rd(&mut d, r, SGIR), 0, "GICD_SGIR is write-only");
    }

    #[test]
    fn sgir_filters() {
        let (mut d, mut rs) = part();
        let r1 = &mut rs[1];
        // Filter 0: the CPU target list.
        assert_eq!(
            sgir(&mut d, r1, (0b0101 << 16) | 7),
            Some(SgiTargets {
                intid: 7,
                targets: 0b0101
            })
        );
        // NSATT and the unused bits do not matter; SGI INTID is 4 bits.
        assert_eq!(
            sgir(&mut d, r1, (1 << 15) | (0b0010 << 16) | 0xff),
            Some(SgiTargets {
                intid: 15,
                targets: 0b0010
            })
        );
        // Filter 1: every vCPU but the requester.
        assert_eq!(
            sgir(&mut d, r1, (1 << 24) | 3),
            Some(SgiTargets {
                intid: 3,
                targets: 0b1101
            })
        );
        // Filter 2: the requester only, whatever the list says.
        assert_eq!(
            sgir(&mut d, r1, (2 << 24) | (0xff << 16) | 1),
            Some(SgiTargets {
                intid: 1,
                targets: 0b0010
            })
        );
        // Filter 3 is reserved: ignored.
        assert_eq!(sgir(&mut d, r1, (3 << 24) | (0xff << 16) | 1), None);
        // An empty list: nothing to send.
        assert_eq!(sgir(&mut d, r1, 5), None);
        // Upper bits beyond the 32-bit register are dropped.
        assert_eq!(
            sgir(&mut d, r1, (1 << 32) | (1 << 16)),
            Some(SgiTargets {
                intid: 0,
                targets: 1
            })
        );
    }

    /// REQ-ISO-2: SGIs reach only the partition's own vCPUs.
    #[test]
    fn sgir_targets_restricted_to_existing_vcpus() {
        let (mut d, mut rs) = part();
        let r0 = &mut rs[0];
        assert_eq!(
            sgir(&mut d, r0, 0xff << 16).map(|t| t.targets),
            Some(0b1111)
        );
        assert_eq!(
            sgir(&mut d, r0, 0xf0 << 16),
            None,
            "vCPUs 4..=7 do not exist"
        );
        let mut solo = VgicDist::new([], 1);
        let mut r = VgicRedist::new(0, 1);
        assert_eq!(sgir(&mut solo, &mut r, 1 << 24), None, "no other vCPU");
        assert_eq!(sgir(&mut solo, &mut r, 2 << 24).map(|t| t.targets), Some(1));
        let mut eight = VgicDist::new([], 8);
        let mut r7 = VgicRedist::new(7, 8);
        assert_eq!(
            sgir(&mut eight, &mut r7, 1 << 24).map(|t| t.targets),
            Some(0x7f)
        );
        // SGIR is 32-bit only.
        let mut fx = Effects::new();
        assert_eq!(
            write(&mut d, r0, SGIR, 1, 1, &mut fx),
            Err(VgicError::BadWidth)
        );
        assert_eq!(
            write(&mut d, r0, SGIR, 8, 1, &mut fx),
            Err(VgicError::BadWidth)
        );
    }

    #[test]
    fn sgi_pending_registers() {
        let (mut d, mut rs) = part();
        let (r0, rest) = rs.split_first_mut().unwrap();
        let r1 = &mut rest[0];
        w(&mut d, r0, ISENABLER, 4, 1 << 5);
        // SPENDSGIR byte 5 (any source bit): pending, deliverable: a kick.
        assert_eq!(
            w(&mut d, r0, SPENDSGIR + 5, 1, 0x80),
            vec![Effect::Kick { vcpu: 0 }]
        );
        assert!(r0.sgi_pending(5));
        assert!(!r1.sgi_pending(5), "banked");
        assert_eq!(read(&mut d, r0, SPENDSGIR + 5, 1), Ok(0x01), "source 0");
        assert_eq!(rd(&mut d, r0, SPENDSGIR + 4), 0x0100);
        assert_eq!(rd(&mut d, r0, CPENDSGIR + 4), 0x0100, "both read the same");
        assert_eq!(rd(&mut d, r1, SPENDSGIR + 4), 0);
        // Already pending: no second kick. Not enabled: no kick.
        assert!(w(&mut d, r0, SPENDSGIR + 4, 4, 0x0100).is_empty());
        assert!(w(&mut d, r0, SPENDSGIR + 0xc, 4, 0x0100_0001).is_empty());
        assert!(r0.sgi_pending(12) && r0.sgi_pending(15) && !r0.sgi_pending(13));
        assert_eq!(rd(&mut d, r0, SPENDSGIR + 0xc), 0x0100_0001);
        // Zero bytes change nothing.
        assert!(w(&mut d, r0, CPENDSGIR + 4, 4, 0xff00_00ff).is_empty());
        assert!(r0.sgi_pending(5), "byte 5 was 0");
        assert!(w(&mut d, r0, CPENDSGIR + 5, 1, 0x01).is_empty());
        assert!(!r0.sgi_pending(5));
        // The SGI a GICD_SGIR write asks for shows up once the caller sets it.
        let t = sgir(&mut d, r0, (0b10 << 16) | 9).unwrap();
        assert_eq!(t.targets, 0b10);
        r1.set_sgi_pending(t.intid);
        assert_eq!(read(&mut d, r1, SPENDSGIR + 9, 1), Ok(1));
        // Halfwords are refused.
        assert_eq!(read(&mut d, r0, SPENDSGIR, 2), Err(VgicError::BadWidth));
    }

    /// REQ-FLT-2: malformed accesses get an error, never a panic, and
    /// change nothing.
    #[test]
    fn bad_widths_and_offsets() {
        let (mut d, mut rs) = part();
        let r = &mut rs[0];
        let mut fx = Effects::new();
        for (o, width, e) in [
            (CTLR, 1, VgicError::BadWidth),
            (CTLR, 2, VgicError::BadWidth),
            (CTLR, 8, VgicError::BadWidth),
            (CTLR, 0, VgicError::BadWidth),
            (CTLR, 3, VgicError::BadWidth),
            (CTLR, 16, VgicError::BadWidth),
            (ISENABLER + 4, 1, VgicError::BadWidth),
            (ICFGR, 1, VgicError::BadWidth),
            (IPRIORITYR, 2, VgicError::BadWidth),
            (IPRIORITYR, 8, VgicError::BadWidth),
            (ITARGETSR + 32, 8, VgicError::BadWidth),
            (0xfe8, 1, VgicError::BadWidth),
            (ISENABLER + 2, 4, VgicError::Misaligned),
            (IPRIORITYR + 1, 4, VgicError::Misaligned),
            (ITARGETSR + 34, 4, VgicError::Misaligned),
            (SPENDSGIR + 2, 4, VgicError::Misaligned),
            (GICD_V2_SIZE, 4, VgicError::OutOfFrame),
            (GICD_V2_SIZE - 2, 4, VgicError::OutOfFrame),
            (0x6000, 8, VgicError::OutOfFrame),
            (u64::MAX, 1, VgicError::OutOfFrame),
            (u64::MAX - 3, 4, VgicError::OutOfFrame),
        ] {
            assert_eq!(read(&mut d, r, o, width), Err(e), "read {o:#x}/{width}");
            assert_eq!(
                write(&mut d, r, o, width, u64::MAX, &mut fx),
                Err(e),
                "write {o:#x}/{width}"
            );
        }
        assert!(fx.is_empty());
        assert!(!d.spi_enabled(33) && !r.enabled(0) && !d.group1_enabled());
    }

    #[test]
    fn full_effects_list_refuses_without_change() {
        let (mut d, mut rs) = part();
        let r = &mut rs[0];
        let mut fx = Effects::new();
        write(&mut d, r, ISENABLER + 8, 4, u64::MAX, &mut fx).unwrap();
        for (o, width, v) in [
            (ISENABLER + 0x88, 4, u64::MAX), // ICENABLER2
            (CTLR, 4, 1),
            (ITARGETSR + 64, 4, 0x0202_0202),
            (SPENDSGIR, 4, u64::MAX),
            (SGIR, 4, 1 << 16),
        ] {
            assert_eq!(
                write(&mut d, r, o, width, v, &mut fx),
                Err(VgicError::EffectsFull),
                "{o:#x}"
            );
        }
        assert_eq!(fx.len(), 32);
        assert_eq!(rd(&mut d, r, ISENABLER + 8), 0xffff_ffff);
        assert!(!d.group1_enabled());
        assert_eq!(d.target_vcpu(64), Some(0));
        assert!(!r.sgi_pending(0));
    }

    /// The route writes of one ITARGETSR word never trip the per-write
    /// room check of the distributor (each appends one effect).
    #[test]
    fn targets_word_fits_when_room_is_tight() {
        let (mut d, mut rs) = part();
        let r = &mut rs[0];
        let mut fx = Effects::new();
        for _ in 0..(super::super::EFFECTS_CAPACITY - MAX_EFFECTS_PER_WRITE) {
            fx.push(Effect::Kick { vcpu: 0 });
        }
        assert!(fx.has_room_for_a_write());
        write(&mut d, r, ITARGETSR + 64, 4, 0x0808_0808, &mut fx).unwrap();
        assert_eq!(
            fx.len(),
            super::super::EFFECTS_CAPACITY - MAX_EFFECTS_PER_WRITE + 4
        );
        assert_eq!(d.target_vcpu(67), Some(3));
    }

    /// REQ-FLT-2: every write has a bounded, defined result.
    #[test]
    fn every_offset_and_width() {
        let mut d = VgicDist::new(32..=1019, 8);
        let mut r = VgicRedist::new(5, 8);
        for o in 0..GICD_V2_SIZE + 8 {
            for width in [1u8, 2, 4, 8] {
                let mut fx = Effects::new();
                let rd = read(&mut d, &mut r, o, width);
                let wr = write(&mut d, &mut r, o, width, u64::MAX, &mut fx);
                assert_eq!(rd.is_ok(), wr.is_ok(), "{o:#x}/{width}");
                if let Ok(v) = rd {
                    assert!(width == 8 || v >> (8 * width) == 0, "{o:#x}/{width}");
                }
                assert!(fx.len() <= MAX_EFFECTS_PER_WRITE);
                if wr.is_err() {
                    assert!(fx.is_empty());
                }
            }
        }
    }

    #[test]
    fn lr_hand_computed_values() {
        // HW SPI 40 -> pINTID 40, priority 0xa0, Group 1, pending.
        let ich = encode_lr(40, Some(40), 0xa0, true, LrState::Pending);
        let gich = (1 << 31) | (1 << 30) | (0b01 << 28) | (0x14 << 23) | (40 << 10) | 40;
        assert_eq!(ich_lr_to_gich(ich), gich);
        assert_eq!(gich_lr_to_ich(gich), ich);
        // Virtual SGI 3, priority 0, Group 0, active, EOI maintenance.
        let ich = encode_lr(3, None, 0, false, LrState::Active) | ICH_EOI;
        assert_eq!(ich_lr_to_gich(ich), (0b10 << 28) | (1 << 19) | 3);
        assert_eq!(gich_lr_to_ich((0b10 << 28) | (1 << 19) | 3), ich);
        assert_eq!(ich_lr_to_gich(0), 0);
        assert_eq!(gich_lr_to_ich(0), 0);
    }

    #[test]
    fn lr_round_trips() {
        let states = [
            LrState::Invalid,
            LrState::Pending,
            LrState::Active,
            LrState::PendingActive,
        ];
        let links = [
            (0, None),
            (15, None),
            (16, None),
            (27, Some(27)),
            (64, Some(33)),
            (1019, None),
            (1019, Some(1019)),
            (16, Some(1019)),
        ];
        let mut n = 0;
        for state in states {
            for (v, p) in links {
                for group1 in [false, true] {
                    for eoi in [false, true] {
                        if eoi && p.is_some() {
                            continue; // bit 41 is pINTID with HW = 1
                        }
                        for prio in [0u8, 0x08, 0x80, 0xf8] {
                            let mut ich = encode_lr(v, p, prio, group1, state);
                            if eoi {
                                ich |= ICH_EOI;
                            }
                            let gich = ich_lr_to_gich(ich);
                            assert!(gich != 0 || ich == 0, "{ich:#x} is expressible");
                            assert_eq!(gich_lr_to_ich(gich), ich, "{ich:#x} -> {gich:#x}");
                            assert_eq!(ich_lr_to_gich(gich_lr_to_ich(gich)), gich);
                            assert_eq!(gich >> 28 & 3, state_bits(state));
                            assert_eq!(gich & GICH_HW != 0, p.is_some());
                            assert_eq!(gich & GICH_GRP1 != 0, group1);
                            n += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(
            n,
            4 * 2 * (4 * 2 + 4) * 4,
            "states, groups, links (EOI both ways without HW), priorities"
        );
    }

    #[test]
    fn lr_priority_keeps_the_top_five_bits() {
        let ich = encode_lr(40, Some(40), 0x87, true, LrState::Pending);
        let back = decode_lr(gich_lr_to_ich(ich_lr_to_gich(ich)));
        assert_eq!(back.priority, 0x80);
        assert_eq!(ich_lr_to_gich(ich) >> 23 & 0x1f, 0x10);
    }

    /// What GICv2 cannot express becomes an invalid LR, never another
    /// interrupt.
    #[test]
    fn lr_inexpressible_values_become_invalid() {
        for ich in [
            encode_lr(1020, None, 0, true, LrState::Pending),
            encode_lr(1023, None, 0, true, LrState::Pending),
            encode_lr(1024, None, 0, true, LrState::Pending), // would alias vINTID 0
            encode_lr(8192, None, 0, true, LrState::Pending), // an LPI
            encode_lr(u32::MAX, None, 0, true, LrState::Active),
            encode_lr(40, Some(1020), 0, true, LrState::Pending),
            encode_lr(40, Some(1024), 0, true, LrState::Pending), // would alias pINTID 0
            encode_lr(40, Some(0x1fff), 0, true, LrState::Pending),
            encode_lr(40, Some(15), 0, true, LrState::Pending),
            encode_lr(5, Some(40), 0, true, LrState::Pending), // HW SGI
            encode_lr(40, Some(40), 0, true, LrState::Pending) | ICH_NMI,
        ] {
            assert_eq!(ich_lr_to_gich(ich), 0, "{ich:#x}");
        }
        for gich in [
            (0b01 << 28) | 1020,
            (0b01 << 28) | 1023,
            GICH_HW | (0b01 << 28) | (1020 << 10) | 40,
            GICH_HW | (0b01 << 28) | (3 << 10) | 40,
            GICH_HW | (0b01 << 28) | (40 << 10) | 3,
        ] {
            assert_eq!(gich_lr_to_ich(gich), 0, "{gich:#x}");
        }
    }

    #[test]
    fn lr_sgi_source_and_reserved_bits_are_dropped() {
        // SGI 2 from CPU 5, with reserved bits [22:20] set.
        let gich = (0b01 << 28) | (0b111 << 20) | (5 << 10) | 2;
        let ich = gich_lr_to_ich(gich);
        assert_eq!(ich, encode_lr(2, None, 0, false, LrState::Pending));
        assert_eq!(ich_lr_to_gich(ich), (0b01 << 28) | 2, "source CPU 0");
    }
}
