//! The physical GICv3: distributor, redistributors and the EL2 view of the
//! CPU interface. Owned by the hypervisor; guests only ever see the virtual
//! GIC emulated in `vgic.rs` and the hardware virtual CPU interface.

use core::sync::atomic::{AtomicU64, Ordering};

use septum_core::vgic::direct;

use septum_core::addr::PhysAddr;
use septum_core::config::Gic as GicCfg;

use super::gic::Ack;
use super::gicd::{self, GICD_ICACTIVER, GICD_ICPENDR, GICD_ISPENDR};
use super::mmio::Mmio;
use crate::arch::aarch64::asm::gic as sys;

const GICD_CTLR: usize = 0x0000;
const GICD_TYPER: usize = 0x0004;
const GICD_IGROUPR: usize = 0x0080;
const GICD_ISENABLER: usize = 0x0100;
const GICD_ICENABLER: usize = 0x0180;
const GICD_IPRIORITYR: usize = 0x0400;
const GICD_IROUTER: usize = 0x6000;
const CTLR_RWP: u32 = 1 << 31;
/// GICD_CTLR.DS: one security state, so Non-secure software owns Group 0.
const CTLR_DS: u32 = 1 << 6;
const CTLR_ENABLE_GRP0: u32 = 1 << 0;

const GICR_CTLR: usize = 0x0000;
const GICR_TYPER: usize = 0x0008;
const GICR_WAKER: usize = 0x0014;
const GICR_SGI: usize = 0x1_0000;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const TYPER_LAST: u64 = 1 << 4;

/// Priority of interrupts forwarded to guests; the hypervisor's own
/// (maintenance, IPIs) are more urgent.
pub const PRIO_GUEST: u8 = 0xa0;
pub const PRIO_HYP: u8 = 0x80;

/// Spurious interrupt number returned by IAR.
pub const SPURIOUS: u32 = 1023;

const POLL_LIMIT: u32 = 1_000_000;

/// Redistributor frame base per core (0 = not found), filled at boot.
static RD_BASE: [AtomicU64; septum_core::config::MAX_CPUS] =
    [const { AtomicU64::new(0) }; septum_core::config::MAX_CPUS];
/// Cores with direct delivery (bit n = core n): their hypervisor SGIs are
/// Group 0, so they are sent with ICC_SGI0R_EL1.
static GROUP0_CORES: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, Debug)]
pub struct GicV3 {
    gicd: Mmio,
    gicr: PhysAddr,
    stride: u64,
}

impl GicV3 {
    /// # Safety
    /// `cfg` must describe this machine's GICv3, mapped as device memory.
    pub const unsafe fn new(cfg: &GicCfg) -> Self {
        GicV3 {
            // SAFETY: per this function's contract.
            gicd: unsafe { Mmio::new(cfg.gicd) },
            gicr: cfg.gicr,
            stride: cfg.gicr_stride,
        }
    }

    fn wait_rwp(&self) {
        let mut n = 0;
        while self.gicd.read32(GICD_CTLR) & CTLR_RWP != 0 && n < POLL_LIMIT {
            n += 1;
        }
    }

    /// The distributor frame (for the registers both versions share).
    pub fn gicd(&self) -> &Mmio {
        &self.gicd
    }

    /// Number of interrupt IDs the distributor implements (SPIs end below this).
    pub fn lines(&self) -> u32 {
        32 * ((self.gicd.read32(GICD_TYPER) & 0x1f) + 1)
    }

    /// Resets the distributor: every SPI disabled, non-pending, inactive,
    /// group 1, guest priority, routed to core 0; affinity routing on.
    pub fn init_distributor(&self) {
        self.gicd.write32(GICD_CTLR, 0);
        self.wait_rwp();
        let lines = self.lines().min(1020);
        for reg in 1..(lines / 32) as usize {
            self.gicd.write32(GICD_ICENABLER + 4 * reg, u32::MAX);
            self.gicd.write32(GICD_ICPENDR + 4 * reg, u32::MAX);
            self.gicd.write32(GICD_ICACTIVER + 4 * reg, u32::MAX);
            self.gicd.write32(GICD_IGROUPR + 4 * reg, u32::MAX);
        }
        for intid in 32..lines as usize {
            self.gicd.write8(GICD_IPRIORITYR + intid, PRIO_GUEST);
            self.gicd.write64(GICD_IROUTER + 8 * intid, 0);
        }
        self.wait_rwp();
        // ARE_NS | EnableGrp1NS (bits 4 and 1 in both the DS=1 and NS views);
        // with one security state also Group 0, which direct delivery
        // keeps for the hypervisor (in the NS view bit 0 means otherwise).
        let grp0 = if self.has_group0() {
            CTLR_ENABLE_GRP0
        } else {
            0
        };
        self.gicd.write32(GICD_CTLR, (1 << 4) | (1 << 1) | grp0);
        self.wait_rwp();
    }

    /// Whether the GIC has one security state (GICD_CTLR.DS = 1, as on
    /// QEMU's `virt` without EL3), so that Group 0 is the hypervisor's to
    /// use: what direct delivery needs.
    pub fn has_group0(&self) -> bool {
        self.gicd.read32(GICD_CTLR) & CTLR_DS != 0
    }

    /// Finds this core's redistributor, wakes it and resets its SGIs/PPIs;
    /// enables the hypervisor's own PPI (`maint`) and SGIs 0..8. With
    /// `direct`, the SGIs and the hypervisor's PPIs (`hyp_ppis`, one bit per
    /// INTID) become Group 0 at the top priority and everything else on the
    /// core is the partition's Group 1 (`septum_core::vgic::direct`).
    pub fn init_redistributor(
        &self,
        core: usize,
        mpidr_aff: u64,
        maint: u32,
        direct: Option<u32>,
    ) -> bool {
        let Some(rd) = self.find_redistributor(mpidr_aff) else {
            return false;
        };
        if let Some(slot) = RD_BASE.get(core) {
            slot.store(rd.base().raw(), Ordering::Release);
        }
        let waker = rd.read32(GICR_WAKER);
        rd.write32(GICR_WAKER, waker & !WAKER_PROCESSOR_SLEEP);
        let mut n = 0;
        while rd.read32(GICR_WAKER) & WAKER_CHILDREN_ASLEEP != 0 && n < POLL_LIMIT {
            n += 1;
        }
        rd.write32(GICR_SGI + GICD_IGROUPR, u32::MAX);
        rd.write32(GICR_SGI + GICD_ICENABLER, u32::MAX);
        rd.write32(GICR_SGI + GICD_ICPENDR, u32::MAX);
        rd.write32(GICR_SGI + GICD_ICACTIVER, u32::MAX);
        for i in 0..32 {
            rd.write8(GICR_SGI + GICD_IPRIORITYR + i, PRIO_GUEST);
        }
        for i in 0..8 {
            rd.write8(GICR_SGI + GICD_IPRIORITYR + i, PRIO_HYP);
        }
        rd.write8(GICR_SGI + GICD_IPRIORITYR + maint as usize, PRIO_HYP);
        if let Some(hyp_ppis) = direct {
            rd.write32(GICR_SGI + GICD_IGROUPR, direct::igroupr0(hyp_ppis));
            for i in 0..32 {
                if i < 16 || hyp_ppis & (1 << i) != 0 {
                    rd.write8(GICR_SGI + GICD_IPRIORITYR + i, direct::HYP_PRIORITY);
                }
            }
            GROUP0_CORES.fetch_or(1 << (core % 64), Ordering::Release);
        }
        self.wait_rd(&rd);
        rd.write32(GICR_SGI + GICD_ISENABLER, 0xff | (1 << maint));
        true
    }

    fn wait_rd(&self, rd: &Mmio) {
        let mut n = 0;
        while rd.read32(GICR_CTLR) & (1 << 3) != 0 && n < POLL_LIMIT {
            n += 1;
        }
    }

    fn find_redistributor(&self, mpidr_aff: u64) -> Option<Mmio> {
        // At most 64 frames: a runaway walk on a bad configuration stops.
        for i in 0..64u64 {
            let base = self.gicr.checked_add(i * self.stride)?;
            // SAFETY: redistributor frames lie in the platform's GIC window,
            // mapped as device memory.
            let rd = unsafe { Mmio::new(base) };
            let typer = rd.read64(GICR_TYPER);
            if typer >> 32 == mpidr_aff {
                return Some(rd);
            }
            if typer & TYPER_LAST != 0 {
                break;
            }
        }
        None
    }

    fn rd(&self, core: usize) -> Option<Mmio> {
        let base = RD_BASE.get(core)?.load(Ordering::Acquire);
        // SAFETY: recorded by init_redistributor from the GIC window.
        (base != 0).then(|| unsafe { Mmio::new(PhysAddr::new(base)) })
    }

    /// Sets up this core's CPU interface: system registers, no priority
    /// masking, EOImode 1 (priority drop and deactivation separate, so a
    /// guest's virtual EOI can deactivate the physical interrupt).
    ///
    /// With `direct` the core's Group 1 belongs to its partition, which
    /// ends its interrupts itself with ICC_EOIR1_EL1 (ICC_DIR_EL1 would be
    /// its virtual one): EOImode 0, Group 1 off until the partition enables
    /// it, and the hypervisor's own Group 0 on.
    pub fn init_cpu_interface(&self, direct: bool) {
        // SRE | DFB | DIB | Enable (lets EL1 use ICC_SRE_EL1 = its virtual view).
        sys::write_sre_el2(0xf);
        crate::arch::aarch64::asm::dsb_isb();
        sys::write_pmr(0xff);
        sys::write_bpr1(0);
        if direct {
            sys::write_bpr0(0);
            sys::write_ctlr(0);
            sys::write_igrpen1(0);
            sys::write_igrpen0(1);
        } else {
            sys::write_ctlr(1 << 1);
            sys::write_igrpen1(1);
        }
        crate::arch::aarch64::asm::dsb_isb();
    }

    /// Direct delivery, on entering the partition: no active priority left
    /// from a previous run (an interrupt it acknowledged and never ended
    /// would otherwise block its own interrupts), and Group 1 off until it
    /// enables it, as on a core out of reset.
    pub fn reset_direct_interface(&self) {
        sys::write_igrpen1(0);
        sys::write_ap1r0(0);
        // AP1R1 exists with 6 priority bits, AP1R2/3 with 7 (ICC_CTLR_EL1.PRIbits
        // holds bits - 1); a Cortex-A72's GIC has 5.
        let bits = ((sys::read_ctlr() >> 8) & 7) + 1;
        if bits >= 6 {
            sys::write_ap1r1(0);
        }
        if bits >= 7 {
            sys::write_ap1r2(0);
            sys::write_ap1r3(0);
        }
        crate::arch::aarch64::asm::dsb_isb();
    }

    /// Direct delivery, on leaving the partition: its interrupts stop
    /// reaching (and waking) the core.
    pub fn park_direct_interface(&self) {
        sys::write_igrpen1(0);
        crate::arch::aarch64::asm::dsb_isb();
    }

    /// Whether core `core` has direct delivery.
    pub fn is_direct(&self, core: usize) -> bool {
        core < 64 && GROUP0_CORES.load(Ordering::Acquire) & (1 << core) != 0
    }

    /// Sets the physical priority of SPI `intid`.
    pub fn set_spi_priority(&self, intid: u32, prio: u8) {
        self.gicd.write8(GICD_IPRIORITYR + intid as usize, prio);
    }

    /// Sets the physical priority of core `core`'s PPI `intid`.
    pub fn set_ppi_priority(&self, core: usize, intid: u32, prio: u8) {
        let Some(rd) = self.rd(core) else { return };
        rd.write8(GICR_SGI + GICD_IPRIORITYR + (intid % 32) as usize, prio);
    }

    /// Enables an SPI and routes it to core `core` (Aff0).
    pub fn enable_spi(&self, intid: u32, core: u64) {
        self.gicd.write64(GICD_IROUTER + 8 * intid as usize, core);
        let (off, bit) = gicd::bit(intid);
        self.gicd.write32(GICD_ISENABLER + off, bit);
    }

    pub fn disable_spi(&self, intid: u32) {
        let (off, bit) = gicd::bit(intid);
        self.gicd.write32(GICD_ICENABLER + off, bit);
        self.wait_rwp();
    }

    pub fn route_spi(&self, intid: u32, core: u64) {
        self.gicd.write64(GICD_IROUTER + 8 * intid as usize, core);
    }

    /// Enables or disables a PPI (or SGI) on core `core`.
    pub fn set_ppi_enabled(&self, core: usize, intid: u32, enabled: bool) {
        let Some(rd) = self.rd(core) else { return };
        let reg = if enabled {
            GICD_ISENABLER
        } else {
            GICD_ICENABLER
        };
        rd.write32(GICR_SGI + reg, 1 << (intid % 32));
        if !enabled {
            self.wait_rd(&rd);
        }
    }

    pub fn set_ppi_pending(&self, core: usize, intid: u32, pending: bool) {
        let Some(rd) = self.rd(core) else { return };
        let reg = if pending { GICD_ISPENDR } else { GICD_ICPENDR };
        rd.write32(GICR_SGI + reg, 1 << (intid % 32));
    }

    /// Pending and active bits of core `core`'s SGIs and PPIs.
    pub fn ppi_state(&self, core: usize) -> Option<(u32, u32)> {
        let rd = self.rd(core)?;
        Some((
            rd.read32(GICR_SGI + GICD_ISPENDR),
            rd.read32(GICR_SGI + gicd::GICD_ISACTIVER),
        ))
    }

    pub fn clear_ppi_active(&self, core: usize, intid: u32) {
        let Some(rd) = self.rd(core) else { return };
        rd.write32(GICR_SGI + GICD_ICACTIVER, 1 << (intid % 32));
    }

    /// Sends hypervisor SGI `sgi` (0..16) to core `core` (Aff0 < 16, Aff1..3 = 0).
    pub fn send_sgi(&self, core: u64, sgi: u32) {
        let v = ((sgi as u64 & 0xf) << 24) | (1 << (core & 0xf));
        // What the SGI announces (a pending bit, a posted start) must be
        // visible to the target before it takes the interrupt.
        crate::arch::aarch64::asm::sgi_write_fence_then(|| {
            if self.is_direct(core as usize) {
                sys::write_sgi0r(v);
            } else {
                sys::write_sgi1r(v);
            }
        });
    }

    /// Acknowledges the highest-priority pending Group 0 interrupt.
    #[inline(always)]
    pub fn ack0(&self) -> u32 {
        (sys::read_iar0() & 0xff_ffff) as u32
    }

    /// Ends a Group 0 interrupt on a direct core (EOImode 0: priority drop
    /// and deactivation in one).
    #[inline(always)]
    pub fn eoi0(&self, intid: u32) {
        sys::write_eoir0(intid as u64);
    }

    /// Acknowledges the highest-priority pending interrupt.
    #[inline(always)]
    pub fn ack(&self) -> Ack {
        Ack::of((sys::read_iar1() & 0xff_ffff) as u32)
    }

    /// Priority drop only (EOImode 1): the interrupt stays active until a
    /// deactivation, by us ([`Self::deactivate`]) or by the guest through
    /// a hardware-linked list register.
    #[inline(always)]
    pub fn eoi(&self, a: Ack) {
        sys::write_eoir1(u64::from(a.raw()));
    }

    #[inline(always)]
    pub fn deactivate(&self, a: Ack) {
        sys::write_dir(u64::from(a.raw()));
    }
}
