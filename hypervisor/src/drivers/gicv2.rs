//! The physical GICv2 (GIC-400 on the Raspberry Pi 4): distributor, the
//! EL2 view of the CPU interface (GICC) and the virtual interface control
//! block (GICH). Guests see the emulated distributor (`septum_core::vgic::v2`)
//! and the hardware's virtual CPU interface (GICV) mapped where their GICC
//! would be.
//!
//! Differences from the GICv3 driver that shape this code:
//! - SGI and PPI registers of the distributor are banked: a core reaches
//!   only its own, so per-core requests for another core are refused (the
//!   callers do per-core work on the core itself);
//! - an acknowledged SGI carries its source CPU in GICC_IAR, and the EOI
//!   and deactivation must name the same source, so `ack` hands back the
//!   whole IAR value (an [`Ack`]) for `eoi` and `deactivate`;
//! - interrupts stay in the group the firmware left them in (Group 1 when
//!   the Pi firmware's GIC setup ran in the secure world; Group 0 on a GIC
//!   without security extensions, as QEMU's): bit 0 of GICC_CTLR enables
//!   exactly that group in both views.

use core::sync::atomic::{AtomicBool, Ordering};

use septum_core::addr::PhysAddr;
use septum_core::config::{Gic as GicCfg, MAX_CPUS};

use super::gic::{Ack, ICH_HCR_NPIE};
use super::gicd::{self, GICD_ICACTIVER, GICD_ICPENDR, GICD_ISPENDR};
use super::mmio::Mmio;
use crate::percpu;

const GICD_CTLR: usize = 0x000;
const GICD_TYPER: usize = 0x004;
const GICD_ISENABLER: usize = 0x100;
const GICD_ICENABLER: usize = 0x180;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_ITARGETSR: usize = 0x800;
const GICD_SGIR: usize = 0xf00;

const GICC_CTLR: usize = 0x000;
const GICC_PMR: usize = 0x004;
const GICC_BPR: usize = 0x008;
const GICC_IAR: usize = 0x00c;
const GICC_EOIR: usize = 0x010;
const GICC_DIR: usize = 0x1000;
/// GICC_CTLR: enable the interrupts' group (see the module comment) and
/// EOImode 1 (priority drop and deactivation separate).
const GICC_CTLR_ENABLE: u32 = 1;
const GICC_CTLR_EOIMODE: u32 = 1 << 9;

const GICH_HCR: usize = 0x000;
const GICH_VTR: usize = 0x004;
const GICH_VMCR: usize = 0x008;
const GICH_ELRSR0: usize = 0x030;
const GICH_APR: usize = 0x0f0;
const GICH_LR: usize = 0x100;

use super::gicv3::{PRIO_GUEST, PRIO_HYP};

/// GICH_HCR.NPIE of each core as last written: the IRQ fast path asks it
/// on every interrupt, and GICH is memory-mapped (a load from memory is
/// cheaper than a device read, on a board by far). Only the core itself
/// writes its GICH, through `set_hcr`, so the copy cannot go stale.
static NPIE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

#[derive(Clone, Copy, Debug)]
pub struct GicV2 {
    gicd: Mmio,
    gicc: Mmio,
    gich: Mmio,
}

impl GicV2 {
    /// # Safety
    /// `cfg` must describe this machine's GICv2, whose frames are mapped as
    /// device memory (GICC and GICH including their second 4 KiB page).
    pub const unsafe fn new(cfg: &GicCfg) -> Self {
        // SAFETY: per this function's contract.
        unsafe {
            GicV2 {
                gicd: Mmio::new(cfg.gicd),
                gicc: Mmio::new(cfg.gicc),
                gich: Mmio::new(cfg.gich),
            }
        }
    }

    /// The distributor frame (for the registers both versions share).
    pub fn gicd(&self) -> &Mmio {
        &self.gicd
    }

    pub fn lines(&self) -> u32 {
        32 * ((self.gicd.read32(GICD_TYPER) & 0x1f) + 1)
    }

    /// Every SPI disabled, non-pending, inactive, at guest priority, aimed at
    /// core 0; the distributor on.
    pub fn init_distributor(&self) {
        self.gicd.write32(GICD_CTLR, 0);
        let lines = self.lines().min(1020);
        for reg in 1..(lines / 32) as usize {
            self.gicd.write32(GICD_ICENABLER + 4 * reg, u32::MAX);
            self.gicd.write32(GICD_ICPENDR + 4 * reg, u32::MAX);
            self.gicd.write32(GICD_ICACTIVER + 4 * reg, u32::MAX);
        }
        for intid in 32..lines as usize {
            self.gicd.write8(GICD_IPRIORITYR + intid, PRIO_GUEST);
            self.gicd.write8(GICD_ITARGETSR + intid, 1);
        }
        // Non-secure view of a GIC with security extensions (the Pi): bit 0
        // is EnableGrp1, the rest reserved. Without them (QEMU): bits 0 and
        // 1 enable Group 0 and Group 1.
        let secure_extn = self.gicd.read32(GICD_TYPER) & (1 << 10) != 0;
        self.gicd
            .write32(GICD_CTLR, if secure_extn { 0b1 } else { 0b11 });
    }

    /// This core's banked SGIs and PPIs: all off and clean, then the
    /// hypervisor's SGIs 0..8 and `maint` enabled at hypervisor priority.
    /// Runs on the core itself.
    pub fn init_core(&self, maint: u32) -> bool {
        self.gicd.write32(GICD_ICENABLER, u32::MAX);
        self.gicd.write32(GICD_ICPENDR, u32::MAX);
        self.gicd.write32(GICD_ICACTIVER, u32::MAX);
        for i in 0..32 {
            self.gicd.write8(GICD_IPRIORITYR + i, PRIO_GUEST);
        }
        for i in 0..8 {
            self.gicd.write8(GICD_IPRIORITYR + i, PRIO_HYP);
        }
        self.gicd
            .write8(GICD_IPRIORITYR + (maint & 31) as usize, PRIO_HYP);
        self.gicd
            .write32(GICD_ISENABLER, 0xff | (1 << (maint & 31)));
        true
    }

    pub fn init_cpu_interface(&self) {
        self.gicc.write32(GICC_PMR, 0xff);
        self.gicc.write32(GICC_BPR, 0);
        self.gicc
            .write32(GICC_CTLR, GICC_CTLR_ENABLE | GICC_CTLR_EOIMODE);
    }

    /// Interface number of core `core` in ITARGETSR / SGIR: the Pi's
    /// GIC-400 (and QEMU's) number CPU interfaces like the cores.
    fn target(core: u64) -> u8 {
        1u8 << (core & 7)
    }

    pub fn enable_spi(&self, intid: u32, core: u64) {
        self.route_spi(intid, core);
        let (off, bit) = gicd::bit(intid);
        self.gicd.write32(GICD_ISENABLER + off, bit);
    }

    pub fn disable_spi(&self, intid: u32) {
        let (off, bit) = gicd::bit(intid);
        self.gicd.write32(GICD_ICENABLER + off, bit);
    }

    pub fn route_spi(&self, intid: u32, core: u64) {
        if (32..1020).contains(&intid) {
            self.gicd
                .write8(GICD_ITARGETSR + intid as usize, Self::target(core));
        }
    }

    /// The banked register of `core`, or None when asked from another core.
    fn own_bank(core: usize) -> bool {
        core == percpu::core()
    }

    pub fn set_ppi_enabled(&self, core: usize, intid: u32, enabled: bool) {
        if Self::own_bank(core) {
            let reg = if enabled {
                GICD_ISENABLER
            } else {
                GICD_ICENABLER
            };
            self.gicd.write32(reg, 1 << (intid % 32));
        }
    }

    pub fn set_ppi_pending(&self, core: usize, intid: u32, pending: bool) {
        if Self::own_bank(core) {
            let reg = if pending { GICD_ISPENDR } else { GICD_ICPENDR };
            self.gicd.write32(reg, 1 << (intid % 32));
        }
    }

    /// Pending and active bits of core `core`'s SGIs and PPIs: only the
    /// core itself sees its bank.
    pub fn ppi_state(&self, core: usize) -> Option<(u32, u32)> {
        Self::own_bank(core).then(|| gicd::state_word(&self.gicd, 0))
    }

    pub fn clear_ppi_active(&self, core: usize, intid: u32) {
        if Self::own_bank(core) {
            self.gicd.write32(GICD_ICACTIVER, 1 << (intid % 32));
        }
    }

    pub fn send_sgi(&self, core: u64, sgi: u32) {
        // What the SGI announces must be visible to the target first.
        crate::arch::aarch64::asm::dmb_ishst();
        self.gicd.write32(
            GICD_SGIR,
            (u32::from(Self::target(core)) << 16) | (sgi & 0xf),
        );
    }

    /// Acknowledges the highest-priority pending interrupt. The answer
    /// keeps an SGI's source CPU, which its EOI and deactivation must name.
    #[inline(always)]
    pub fn ack(&self) -> Ack {
        Ack::from_iar(self.gicc.read32(GICC_IAR))
    }

    #[inline(always)]
    pub fn eoi(&self, a: Ack) {
        self.gicc.write32(GICC_EOIR, a.raw());
    }

    #[inline(always)]
    pub fn deactivate(&self, a: Ack) {
        self.gicc.write32(GICC_DIR, a.raw());
    }

    // The virtual interface control block (GICH). List registers are in
    // GICv2 format; the callers convert to and from the GICv3 format the
    // list-register manager keeps.

    pub fn num_lrs(&self) -> usize {
        ((self.gich.read32(GICH_VTR) & 0x3f) + 1) as usize
    }

    pub fn read_lr(&self, i: usize) -> u32 {
        self.gich.read32(GICH_LR + 4 * (i & 63))
    }

    pub fn write_lr(&self, i: usize, v: u32) {
        self.gich.write32(GICH_LR + 4 * (i & 63), v);
    }

    /// The empty list registers among `mask` (one bit each): ELRSR1 is read
    /// only when `mask` reaches past LR 31 (a GIC-400 has four).
    #[inline(always)]
    pub fn free_lrs(&self, mask: u64) -> u64 {
        let low = u64::from(self.gich.read32(GICH_ELRSR0));
        if mask >> 32 == 0 {
            low & mask
        } else {
            (low | (u64::from(self.gich.read32(GICH_ELRSR0 + 4)) << 32)) & mask
        }
    }

    pub fn hcr(&self) -> u32 {
        self.gich.read32(GICH_HCR)
    }

    pub fn set_hcr(&self, v: u32) {
        if let Some(n) = NPIE.get(percpu::core()) {
            n.store(u64::from(v) & ICH_HCR_NPIE != 0, Ordering::Relaxed);
        }
        self.gich.write32(GICH_HCR, v);
    }

    /// GICH_HCR.NPIE of core `core` (this core), from its copy.
    #[inline(always)]
    pub fn npie(&self, core: usize) -> bool {
        NPIE.get(core).is_some_and(|n| n.load(Ordering::Relaxed))
    }

    /// The virtual CPU interface as a vCPU finds it at power-on.
    pub fn reset_vcpu_interface(&self) {
        self.gich.write32(GICH_VMCR, 0);
        self.gich.write32(GICH_APR, 0);
    }
}

/// The guest's virtual CPU interface frame (GICV) and its size, mapped at
/// the partition's GICC address.
pub fn gicv_frame(cfg: &GicCfg) -> (PhysAddr, u64) {
    (cfg.gicv, 0x2000)
}
