//! The physical GIC, whichever version the platform has. The rest of the
//! hypervisor talks to this type only; list registers cross it in the
//! GICv3 (ICH_LR<n>_EL2) format the list-register manager keeps, and the
//! GICv2 side converts (`septum_core::vgic::v2`).

use septum_core::config::{Gic as GicCfg, GicVersion};
use septum_core::vgic::lr::{encode_lr, LrState};
use septum_core::vgic::v2::{
    gich_hw_pending, gich_lr_to_ich, gich_virtual_pending, ich_lr_to_gich,
};

use super::gicd;
use super::gicv2::GicV2;
use super::gicv3::GicV3;
use super::mmio::Mmio;
use crate::arch::aarch64::asm::gic as sys;

pub use super::gicv3::SPURIOUS;

/// GICv2 virtual interrupts are Group 0: the group a GICv2 guest (Linux's
/// driver, our RTOS) enables in its CPU interface and leaves its
/// interrupts in.
const GICH_LR_GROUP1: u32 = 1 << 30;

/// An acknowledged interrupt, as its EOI and deactivation must name it:
/// the INTID and, on a GICv2, an SGI's source CPU (GICC_IAR bits 12:10),
/// carried from `ack` to `eoi`/`deactivate` instead of kept aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    intid: u32,
    raw: u32,
}

impl Ack {
    /// Interrupt `intid` with no source: any PPI or SPI, any GICv3 INTID.
    #[inline(always)]
    pub const fn of(intid: u32) -> Self {
        Ack { intid, raw: intid }
    }

    /// A GICC_IAR value (INTID bits 9:0, source CPU bits 12:10).
    #[inline(always)]
    pub const fn from_iar(iar: u32) -> Self {
        Ack {
            intid: iar & 0x3ff,
            raw: iar & 0x1fff,
        }
    }

    /// The INTID; 1020 and above is no interrupt (spurious).
    #[inline(always)]
    pub const fn intid(self) -> u32 {
        self.intid
    }

    /// The value the GIC's EOI and deactivation registers take.
    #[inline(always)]
    pub const fn raw(self) -> u32 {
        self.raw
    }
}

/// ICH_HCR_EL2 / GICH_HCR.NPIE: En (bit 0) and NPIE (bit 3) sit at the
/// same place in both.
pub const ICH_HCR_NPIE: u64 = 1 << 3;

/// What the IRQ fast path needs of a GIC, implemented by each version so
/// that `irq::handle` is compiled once per version: one dispatch per
/// interrupt instead of one per register access.
pub trait FastIrq {
    /// Acknowledges the highest-priority pending interrupt.
    fn ack(&self) -> Ack;
    /// Priority drop (EOImode 1).
    fn eoi(&self, a: Ack);
    fn deactivate(&self, a: Ack);
    /// Whether the underflow interrupt is on (NPIE) on core `core`, which
    /// must be this core: the list-register manager has interrupts queued
    /// exactly then.
    fn npie(&self, core: usize) -> bool;
    /// The empty list registers among `mask`, one bit each.
    fn free_lrs(&self, mask: u64) -> u64;
    /// A pending Group 1 hardware interrupt (vINTID = pINTID = `intid`,
    /// priority `prio`) into list register `i`, built in the GIC's own
    /// format (a GICv2's directly, not converted; Group 0 there).
    fn write_hw_pending_lr(&self, i: usize, intid: u32, prio: u8);
    /// A pending Group 1 purely virtual interrupt (an SGI) into list
    /// register `i`, likewise.
    fn write_virtual_pending_lr(&self, i: usize, intid: u32, prio: u8);
}

impl FastIrq for GicV3 {
    #[inline(always)]
    fn ack(&self) -> Ack {
        GicV3::ack(self)
    }
    #[inline(always)]
    fn eoi(&self, a: Ack) {
        GicV3::eoi(self, a)
    }
    #[inline(always)]
    fn deactivate(&self, a: Ack) {
        GicV3::deactivate(self, a)
    }
    #[inline(always)]
    fn npie(&self, _core: usize) -> bool {
        sys::read_ich_hcr() & ICH_HCR_NPIE != 0
    }
    #[inline(always)]
    fn free_lrs(&self, mask: u64) -> u64 {
        sys::read_ich_elrsr() & mask
    }
    #[inline(always)]
    fn write_hw_pending_lr(&self, i: usize, intid: u32, prio: u8) {
        sys::write_lr(
            i,
            encode_lr(intid, Some(intid), prio, true, LrState::Pending),
        )
    }
    #[inline(always)]
    fn write_virtual_pending_lr(&self, i: usize, intid: u32, prio: u8) {
        sys::write_lr(i, encode_lr(intid, None, prio, true, LrState::Pending))
    }
}

impl FastIrq for GicV2 {
    #[inline(always)]
    fn ack(&self) -> Ack {
        GicV2::ack(self)
    }
    #[inline(always)]
    fn eoi(&self, a: Ack) {
        GicV2::eoi(self, a)
    }
    #[inline(always)]
    fn deactivate(&self, a: Ack) {
        GicV2::deactivate(self, a)
    }
    #[inline(always)]
    fn npie(&self, core: usize) -> bool {
        GicV2::npie(self, core)
    }
    #[inline(always)]
    fn free_lrs(&self, mask: u64) -> u64 {
        GicV2::free_lrs(self, mask)
    }
    #[inline(always)]
    fn write_hw_pending_lr(&self, i: usize, intid: u32, prio: u8) {
        self.write_lr(i, gich_hw_pending(intid, prio))
    }
    #[inline(always)]
    fn write_virtual_pending_lr(&self, i: usize, intid: u32, prio: u8) {
        self.write_lr(i, gich_virtual_pending(intid, prio))
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Gic {
    V3(GicV3),
    V2(GicV2),
}

macro_rules! both {
    ($self:ident, $g:ident => $e:expr) => {
        match $self {
            Gic::V3($g) => $e,
            Gic::V2($g) => $e,
        }
    };
}

impl Gic {
    /// # Safety
    /// `cfg` must describe this machine's GIC, mapped as device memory.
    pub unsafe fn new(cfg: &GicCfg) -> Self {
        match cfg.version {
            // SAFETY: per this function's contract.
            GicVersion::V3 => Gic::V3(unsafe { GicV3::new(cfg) }),
            // SAFETY: per this function's contract.
            GicVersion::V2 => Gic::V2(unsafe { GicV2::new(cfg) }),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Gic::V3(_) => "GICv3",
            Gic::V2(_) => "GICv2",
        }
    }

    pub fn lines(&self) -> u32 {
        both!(self, g => g.lines())
    }

    pub fn init_distributor(&self) {
        both!(self, g => g.init_distributor())
    }

    /// This core's share of the GIC (redistributor or banked registers);
    /// runs on the core itself. False if the core has none.
    /// `direct`: the core's partition takes its own interrupts (the
    /// hypervisor's PPIs, one bit per INTID, become Group 0); GICv3 only,
    /// as the configuration guarantees (rule CFG-57).
    pub fn init_core(&self, core: usize, mpidr_aff: u64, maint: u32, direct: Option<u32>) -> bool {
        match self {
            Gic::V3(g) => g.init_redistributor(core, mpidr_aff, maint, direct),
            Gic::V2(g) => g.init_core(maint),
        }
    }

    pub fn init_cpu_interface(&self, direct: bool) {
        match self {
            Gic::V3(g) => g.init_cpu_interface(direct),
            Gic::V2(g) => g.init_cpu_interface(),
        }
    }

    /// Whether the GIC lets the hypervisor keep Group 0 for itself (what
    /// direct delivery needs): a GICv3 with one security state.
    pub fn has_group0(&self) -> bool {
        match self {
            Gic::V3(g) => g.has_group0(),
            Gic::V2(_) => false,
        }
    }

    /// Whether core `core` has direct delivery.
    #[inline(always)]
    pub fn is_direct(&self, core: usize) -> bool {
        match self {
            Gic::V3(g) => g.is_direct(core),
            Gic::V2(_) => false,
        }
    }

    /// Acknowledges a Group 0 interrupt (only a direct core has any).
    #[inline(always)]
    pub fn ack0(&self) -> u32 {
        match self {
            Gic::V3(g) => g.ack0(),
            Gic::V2(_) => SPURIOUS,
        }
    }

    /// Ends a Group 0 interrupt (priority drop and deactivation).
    #[inline(always)]
    pub fn eoi0(&self, intid: u32) {
        if let Gic::V3(g) = self {
            g.eoi0(intid)
        }
    }

    /// Direct delivery: this core's CPU interface as the partition should
    /// find it on entry, or left when it stops.
    pub fn reset_direct_interface(&self) {
        if let Gic::V3(g) = self {
            g.reset_direct_interface()
        }
    }

    pub fn park_direct_interface(&self) {
        if let Gic::V3(g) = self {
            g.park_direct_interface()
        }
    }

    /// Physical priority of SPI `intid`, or of core `core`'s PPI `intid`.
    pub fn set_priority(&self, core: usize, intid: u32, prio: u8) {
        match self {
            Gic::V3(g) if intid < 32 => g.set_ppi_priority(core, intid, prio),
            Gic::V3(g) => g.set_spi_priority(intid, prio),
            Gic::V2(_) => {}
        }
    }

    pub fn enable_spi(&self, intid: u32, core: u64) {
        both!(self, g => g.enable_spi(intid, core))
    }

    pub fn disable_spi(&self, intid: u32) {
        both!(self, g => g.disable_spi(intid))
    }

    pub fn route_spi(&self, intid: u32, core: u64) {
        both!(self, g => g.route_spi(intid, core))
    }

    fn gicd(&self) -> &Mmio {
        both!(self, g => g.gicd())
    }

    pub fn set_spi_edge(&self, intid: u32, edge: bool) {
        gicd::set_spi_edge(self.gicd(), intid, edge)
    }

    pub fn set_spi_pending(&self, intid: u32, pending: bool) {
        gicd::set_spi_pending(self.gicd(), intid, pending)
    }

    pub fn clear_spi_active(&self, intid: u32) {
        gicd::clear_spi_active(self.gicd(), intid)
    }

    /// On a GICv2 only the core itself reaches its PPIs; from another core
    /// this does nothing (the core quiesces its own when it parks).
    pub fn set_ppi_enabled(&self, core: usize, intid: u32, enabled: bool) {
        both!(self, g => g.set_ppi_enabled(core, intid, enabled))
    }

    pub fn set_ppi_pending(&self, core: usize, intid: u32, pending: bool) {
        both!(self, g => g.set_ppi_pending(core, intid, pending))
    }

    pub fn clear_ppi_active(&self, core: usize, intid: u32) {
        both!(self, g => g.clear_ppi_active(core, intid))
    }

    /// Pending and active bits of interrupt word `word` (INTIDs
    /// `32 * word ..`): word 0 is core `core`'s SGIs and PPIs (`None` where
    /// this core cannot read them: another core's bank on a GICv2), the
    /// others are SPIs in the distributor.
    pub fn state_word(&self, core: usize, word: u32) -> Option<(u32, u32)> {
        if word == 0 {
            both!(self, g => g.ppi_state(core))
        } else if word < 32 {
            Some(gicd::state_word(self.gicd(), word))
        } else {
            None
        }
    }

    pub fn send_sgi(&self, core: u64, sgi: u32) {
        both!(self, g => g.send_sgi(core, sgi))
    }

    pub fn ack(&self) -> Ack {
        both!(self, g => g.ack())
    }

    pub fn eoi(&self, a: Ack) {
        both!(self, g => g.eoi(a))
    }

    pub fn deactivate(&self, a: Ack) {
        both!(self, g => g.deactivate(a))
    }

    // The virtual CPU interface of this core.

    pub fn num_lrs(&self) -> usize {
        match self {
            Gic::V3(_) => ((sys::read_ich_vtr() & 0x1f) + 1) as usize,
            Gic::V2(g) => g.num_lrs(),
        }
    }

    /// List register `i`, in ICH_LR<n>_EL2 format.
    #[inline(always)]
    pub fn read_lr(&self, i: usize) -> u64 {
        match self {
            Gic::V3(_) => sys::read_lr(i),
            Gic::V2(g) => gich_lr_to_ich(g.read_lr(i)),
        }
    }

    /// Writes list register `i` from an ICH_LR<n>_EL2 value.
    #[inline(always)]
    pub fn write_lr(&self, i: usize, v: u64) {
        match self {
            Gic::V3(_) => sys::write_lr(i, v),
            Gic::V2(g) => g.write_lr(i, ich_lr_to_gich(v) & !GICH_LR_GROUP1),
        }
    }

    /// ICH_HCR_EL2 / GICH_HCR (see [`ICH_HCR_NPIE`]).
    pub fn hcr(&self) -> u64 {
        match self {
            Gic::V3(_) => sys::read_ich_hcr(),
            Gic::V2(g) => u64::from(g.hcr()),
        }
    }

    pub fn set_hcr(&self, v: u64) {
        match self {
            Gic::V3(_) => sys::write_ich_hcr(v),
            Gic::V2(g) => g.set_hcr(v as u32),
        }
    }

    /// Active priorities and the guest's CPU-interface settings back to
    /// their power-on values (list registers are cleared by the caller).
    pub fn reset_vcpu_interface(&self) {
        match self {
            Gic::V3(_) => {
                sys::write_ich_ap1r0(0);
                sys::write_ich_ap0r0(0);
                sys::write_ich_vmcr(0);
            }
            Gic::V2(g) => g.reset_vcpu_interface(),
        }
    }
}
