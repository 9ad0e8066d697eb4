//! GICv3 distributor and redistributor emulation for one partition.
//!
//! The guest sees a complete-looking GICv3 (affinity routing on, one
//! security state, no LPIs) at the physical GIC's addresses: a 64 KiB
//! distributor frame ([`VgicDist`], one per partition) and per vCPU a
//! 128 KiB redistributor frame pair ([`VgicRedist`], one per vCPU). The CPU
//! interface is the hardware's virtual CPU interface, fed through list
//! registers ([`lr`]).
//!
//! # Which state lives where
//! - **SPIs** the partition owns (its devices' interrupts) are backed by the
//!   real GIC: the physical interrupt fires at EL2 and is injected with the
//!   HW bit. The emulation keeps enable, priority, trigger and routing (the
//!   guest's view) and turns every guest request that must reach hardware
//!   into an [`Effect`] the hypervisor applies to the physical GIC.
//!   Pending and active state is the hardware's: guest writes to
//!   IS/ICPENDR and IS/ICACTIVER become effects, and reads return 0 for
//!   those bits ([`VgicDist::passthrough_mask`]), which the hypervisor fills
//!   in from the physical GIC and its list registers
//!   ([`lr::hw_state_view`]).
//! - **PPIs** (16..=31) likewise belong to the physical PPI of the core the
//!   vCPU is pinned to (in practice the timers): enable, trigger, pending
//!   and active requests become effects naming the vCPU. The hypervisor
//!   decides which PPIs really reach hardware and drops the rest.
//! - **SGIs** (0..=15) are purely virtual: the hypervisor synthesises them
//!   when a guest writes ICC_SGI1R_EL1 ([`decode_sgi1r`]); their enable,
//!   pending and priority state lives in the redistributor, and
//!   [`VgicDist::pending_for`] picks the next one to put in a list register
//!   (the hypervisor's injection takes it with
//!   [`VgicRedist::take_best_pending`], the distributor's Group 1 enable
//!   read from its shadow).
//!
//! Interrupts a partition does not own read as zero and ignore writes, so a
//! guest can neither observe nor affect another partition's interrupts.
//!
//! # GICv2 guests
//! [`v2`] presents the same state as a 4 KiB GICv2 (GIC-400-like)
//! distributor: each GICv2 access becomes an access to [`VgicDist`] (SPIs)
//! or to the accessing vCPU's [`VgicRedist`] (SGIs and PPIs), so ownership,
//! effects and SGI delivery are the ones described here. GICD_ITARGETSR
//! maps onto IROUTER, GICD_SGIR yields an [`SgiTargets`] like
//! [`decode_sgi1r`], and [`v2::ich_lr_to_gich`] / [`v2::gich_lr_to_ich`]
//! convert [`lr`]'s list registers to and from `GICH_LR<n>`.
//!
//! # Access widths
//! Every register accepts naturally aligned 32-bit accesses. In addition:
//! 8-bit accesses to GICD_IPRIORITYR, GICD_ITARGETSR, GICD_CPENDSGIR,
//! GICD_SPENDSGIR and GICR_IPRIORITYR; 64-bit accesses to GICD_IROUTER (also
//! as two 32-bit halves), GICR_TYPER (also halves) and the 64-bit LPI
//! registers of RD_base (which read as zero). Any other width, a misaligned
//! offset or an offset outside the frame is a [`VgicError`]: the hypervisor
//! answers it with an abort.

pub mod direct;
mod dist;
pub mod lr;
mod redist;
pub mod shadow;
pub mod v2;

pub use dist::VgicDist;
pub use redist::VgicRedist;

/// Size of the distributor frame.
pub const GICD_SIZE: u64 = 0x1_0000;
/// Size of one vCPU's redistributor (RD_base + SGI_base; no VLPI frames).
pub const GICR_FRAME_SIZE: u64 = 0x2_0000;
/// Offset of SGI_base inside a redistributor frame.
pub const GICR_SGI_BASE: u64 = 0x1_0000;
/// Most vCPUs a partition can have.
pub const MAX_VCPUS: usize = crate::config::MAX_CPUS;
/// Highest SPI INTID (1020..=1023 are special).
pub const MAX_SPI: u32 = 1019;
/// Priority bits kept: 5, the minimum a GICv3 virtual CPU interface
/// implements, so that what the guest reads back is what the LR can hold.
pub const PRIORITY_MASK: u8 = 0xf8;

/// GICD_IIDR / GICR_IIDR: implementer Arm (JEP106 0x43B), product 'S'.
pub const IIDR: u32 = 0x5300_043b;
/// PIDR2: ArchRev 3 (GICv3) and the JEP106 bits of Arm.
pub const PIDR2: u32 = 0x3b;

/// A physical action the hypervisor must take for a guest's register write.
/// vCPU numbers are partition-relative indices; the hypervisor maps them to
/// cores and re-checks ownership before touching the physical GIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Enable SPI `intid`; it is routed to `target_vcpu`.
    EnableSpi {
        intid: u32,
        target_vcpu: usize,
    },
    DisableSpi {
        intid: u32,
    },
    /// Set the SPI's trigger: `edge` or level. (Sent only on a change; the
    /// architecture leaves a change while enabled UNPREDICTABLE, so the
    /// hypervisor may disable around it.)
    SetSpiConfig {
        intid: u32,
        edge: bool,
    },
    /// Route the SPI to the core of `target_vcpu`.
    RouteSpi {
        intid: u32,
        target_vcpu: usize,
    },
    /// Make SPI `intid` pending.
    SetPending {
        intid: u32,
    },
    ClearPending {
        intid: u32,
    },
    SetActive {
        intid: u32,
    },
    ClearActive {
        intid: u32,
    },
    EnablePpi {
        vcpu: usize,
        intid: u32,
    },
    DisablePpi {
        vcpu: usize,
        intid: u32,
    },
    /// Sent only on a change (PPI triggers may be fixed in hardware).
    SetPpiConfig {
        vcpu: usize,
        intid: u32,
        edge: bool,
    },
    SetPpiPending {
        vcpu: usize,
        intid: u32,
    },
    ClearPpiPending {
        vcpu: usize,
        intid: u32,
    },
    SetPpiActive {
        vcpu: usize,
        intid: u32,
    },
    ClearPpiActive {
        vcpu: usize,
        intid: u32,
    },
    /// A virtual interrupt (an SGI) became deliverable to `vcpu`: make it
    /// look at [`VgicDist::pending_for`] (an IPI if it runs elsewhere).
    Kick {
        vcpu: usize,
    },
}

/// Room in an [`Effects`] list.
pub const EFFECTS_CAPACITY: usize = 40;
/// Most effects one register write can produce: a 32-bit bit-per-interrupt
/// register covers 32 interrupts (one effect each), plus one `Kick`.
pub const MAX_EFFECTS_PER_WRITE: usize = 33;

/// A bounded list of effects, filled by `write` and applied by the caller.
///
/// One effect per interrupt (rather than mask/base ranges) keeps the
/// consumer simple and lets it check ownership per interrupt; the bound is
/// small because one write touches at most 32 interrupts.
#[derive(Clone, Debug)]
pub struct Effects {
    items: [Effect; EFFECTS_CAPACITY],
    len: usize,
}

impl Default for Effects {
    fn default() -> Self {
        Self::new()
    }
}

impl Effects {
    pub const fn new() -> Self {
        Self {
            items: [Effect::Kick { vcpu: 0 }; EFFECTS_CAPACITY],
            len: 0,
        }
    }
    pub fn as_slice(&self) -> &[Effect] {
        &self.items[..self.len]
    }
    pub fn iter(&self) -> core::slice::Iter<'_, Effect> {
        self.as_slice().iter()
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn clear(&mut self) {
        self.len = 0;
    }
    /// Whether another full write fits (checked by every `write` up front,
    /// so a write never stops half-way).
    fn has_room_for_a_write(&self) -> bool {
        EFFECTS_CAPACITY - self.len >= MAX_EFFECTS_PER_WRITE
    }
    /// Appends; the up-front room check makes overflow impossible, and if
    /// it happened anyway the effect is dropped rather than panicking.
    fn push(&mut self, e: Effect) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = e;
            self.len += 1;
        }
    }
}

impl<'a> IntoIterator for &'a Effects {
    type Item = &'a Effect;
    type IntoIter = core::slice::Iter<'a, Effect>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A register access the emulation refuses; the hypervisor injects an abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VgicError {
    /// A width the register does not support (see the module docs).
    BadWidth,
    /// Offset not a multiple of the access width.
    Misaligned,
    /// Offset outside the frame.
    OutOfFrame,
    /// The [`Effects`] list passed in lacks room for [`MAX_EFFECTS_PER_WRITE`]
    /// more; nothing was changed.
    EffectsFull,
}

/// A virtual interrupt ready for a list register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingIrq {
    pub intid: u32,
    pub priority: u8,
}

/// The vCPUs an SGI goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SgiTargets {
    /// SGI number, 0..=15.
    pub intid: u32,
    /// Bit `n` set: vCPU `n` is a target.
    pub targets: u32,
}

/// Decodes a guest's write of `value` to ICC_SGI1R_EL1 (or ICC_ASGI1R_EL1)
/// from vCPU `sender` of a partition with `nr_vcpus` vCPUs.
///
/// vCPU `n` has the virtual affinity Aff3.Aff2.Aff1.Aff0 = 0.0.0.n, so a
/// target list addresses vCPUs `16 * RS + bit` when Aff1..Aff3 are zero;
/// any other affinity matches no vCPU. IRM = 1 targets every vCPU but the
/// sender. Non-existent targets are dropped, never an error.
pub const fn decode_sgi1r(value: u64, sender: usize, nr_vcpus: usize) -> SgiTargets {
    let intid = ((value >> 24) & 0xf) as u32;
    let nr = if nr_vcpus > MAX_VCPUS {
        MAX_VCPUS
    } else {
        nr_vcpus
    };
    let all = if nr >= 32 { u32::MAX } else { (1u32 << nr) - 1 };
    if value & (1 << 40) != 0 {
        let me = if sender < 32 { 1u32 << sender } else { 0 };
        return SgiTargets {
            intid,
            targets: all & !me,
        };
    }
    let aff1 = (value >> 16) & 0xff;
    let aff2 = (value >> 32) & 0xff;
    let aff3 = (value >> 48) & 0xff;
    let rs = (value >> 44) & 0xf;
    let list = value & 0xffff;
    // With at most MAX_VCPUS (< 16) vCPUs only range 0 can hold targets.
    let targets = if aff1 == 0 && aff2 == 0 && aff3 == 0 && rs == 0 {
        list as u32 & all
    } else {
        0
    };
    SgiTargets { intid, targets }
}

/// Validates an access against the frame and the register's legal widths.
fn check_access(
    offset: u64,
    width: u8,
    frame: u64,
    byte_ok: bool,
    dword_ok: bool,
) -> Result<(), VgicError> {
    if !matches!(width, 1 | 2 | 4 | 8) {
        return Err(VgicError::BadWidth);
    }
    if offset >= frame || frame - offset < width as u64 {
        return Err(VgicError::OutOfFrame);
    }
    let legal = match width {
        4 => true,
        1 => byte_ok,
        8 => dword_ok,
        _ => false,
    };
    if !legal {
        return Err(VgicError::BadWidth);
    }
    if !offset.is_multiple_of(width as u64) {
        return Err(VgicError::Misaligned);
    }
    Ok(())
}

/// The identification registers at 0xFFD0..=0xFFFC of both frames (PIDR4..7,
/// PIDR0..3, CIDR0..3): an Arm-designed GICv3 component.
fn id_register(offset: u64) -> u32 {
    match offset {
        0xffd0 => 0x04, // PIDR4: JEP106 continuation code of Arm
        0xffe0 => 0x00, // PIDR0: part number [7:0]
        0xffe4 => 0xb0, // PIDR1: JEP106 identity [3:0]
        0xffe8 => PIDR2,
        0xfff0 => 0x0d,
        0xfff4 => 0xf0,
        0xfff8 => 0x05,
        0xfffc => 0xb1,
        _ => 0, // PIDR5..7, PIDR3
    }
}

/// Offsets of the identification registers (both frames).
const ID_REGS_START: u64 = 0xffd0;

/// A bitmap over INTIDs 0..1024.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bitmap([u32; 32]);

impl Bitmap {
    const EMPTY: Self = Self([0; 32]);
    fn get(&self, intid: u32) -> bool {
        match self.0.get((intid / 32) as usize) {
            Some(w) => w & (1 << (intid % 32)) != 0,
            None => false,
        }
    }
    fn set(&mut self, intid: u32, on: bool) {
        if let Some(w) = self.0.get_mut((intid / 32) as usize) {
            if on {
                *w |= 1 << (intid % 32);
            } else {
                *w &= !(1 << (intid % 32));
            }
        }
    }
    fn word(&self, k: usize) -> u32 {
        self.0.get(k).copied().unwrap_or(0)
    }
}

/// Iterates the set bits of `mask` as `base + bit`.
fn bits(mask: u32, base: u32) -> impl Iterator<Item = u32> {
    (0..32u32)
        .filter(move |b| mask & (1 << b) != 0)
        .map(move |b| base + b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgi1r_target_list() {
        // INTID 5 to vCPUs 1 and 2 (Aff1..3 = 0, RS = 0).
        let v = (5 << 24) | 0b110;
        assert_eq!(
            decode_sgi1r(v, 0, 4),
            SgiTargets {
                intid: 5,
                targets: 0b110
            }
        );
        // Non-existent vCPUs are dropped.
        assert_eq!(decode_sgi1r((1 << 24) | 0xffff, 0, 2).targets, 0b11);
        // Sending to itself is allowed.
        assert_eq!(decode_sgi1r(1, 0, 1).targets, 1);
    }

    /// REQ-ISO-2: SGIs reach only the partition's own vCPUs.
    #[test]
    fn sgi1r_foreign_affinity_matches_nothing() {
        let base = (3 << 24) | 0xf;
        for extra in [1u64 << 16, 1 << 32, 1 << 48, 1 << 44] {
            assert_eq!(decode_sgi1r(base | extra, 0, 4).targets, 0, "{extra:#x}");
        }
    }

    #[test]
    fn sgi1r_broadcast_excludes_sender() {
        let v = (1 << 40) | (15 << 24) | (0xff << 16);
        assert_eq!(
            decode_sgi1r(v, 1, 4),
            SgiTargets {
                intid: 15,
                targets: 0b1101
            }
        );
        assert_eq!(decode_sgi1r(v, 0, 1).targets, 0);
        assert_eq!(
            decode_sgi1r(v, 0, 100).targets,
            0xfe,
            "vCPU count clamped to MAX_VCPUS"
        );
    }

    #[test]
    fn access_checks() {
        assert_eq!(check_access(0, 4, 0x100, false, false), Ok(()));
        assert_eq!(
            check_access(2, 4, 0x100, false, false),
            Err(VgicError::Misaligned)
        );
        assert_eq!(
            check_access(0, 2, 0x100, true, true),
            Err(VgicError::BadWidth)
        );
        assert_eq!(
            check_access(0, 3, 0x100, true, true),
            Err(VgicError::BadWidth)
        );
        assert_eq!(
            check_access(0, 1, 0x100, false, false),
            Err(VgicError::BadWidth)
        );
        assert_eq!(check_access(1, 1, 0x100, true, false), Ok(()));
        assert_eq!(check_access(8, 8, 0x100, false, true), Ok(()));
        assert_eq!(
            check_access(4, 8, 0x100, false, true),
            Err(VgicError::Misaligned)
        );
        assert_eq!(
            check_access(0x100, 4, 0x100, false, false),
            Err(VgicError::OutOfFrame)
        );
        assert_eq!(
            check_access(u64::MAX - 3, 4, 0x100, false, false),
            Err(VgicError::OutOfFrame)
        );
    }

    #[test]
    fn effects_bounded() {
        let mut fx = Effects::new();
        assert!(fx.has_room_for_a_write());
        for i in 0..EFFECTS_CAPACITY + 5 {
            fx.push(Effect::Kick { vcpu: i });
        }
        assert_eq!(fx.len(), EFFECTS_CAPACITY);
        assert!(!fx.has_room_for_a_write());
        fx.clear();
        assert!(fx.is_empty());
    }
}
