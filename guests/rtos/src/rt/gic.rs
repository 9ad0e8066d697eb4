//! The interrupt controller, GICv3 or GICv2, chosen at boot
//! (`septum_rtos::platform`).
//!
//! GICv3: distributor and this core's redistributor by MMIO (emulated by the
//! hypervisor when running in a partition), CPU interface by system
//! registers (virtualised by hardware).
//!
//! GICv2: distributor by MMIO (emulated under a hypervisor) and the CPU
//! interface (GICC) by MMIO too; under Septum that frame is the hardware's
//! virtual CPU interface, so it is not trapped.
//!
//! Priority scheme (lower value = more urgent): the timer runs at
//! `TIMER_PRIORITY`; the priority mask (ICC_PMR_EL1 / GICC_PMR) is
//! `RUN_PMR`, which lets it (and anything more urgent) through. A halting
//! RTOS writes PMR = 0, which masks every interrupt at the CPU interface,
//! independently of PSTATE.

use core::arch::asm;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use septum_rtos::platform::{Gic, GICV2_GICC_SIZE, GICV2_GICD_SIZE};
use septum_rtos::{gicr, gicv2};

use super::cpu;
use super::mmio::Mmio;

const GICV3_GICD_SIZE: usize = 0x1_0000;
/// Upper bound on the walk, in case no frame carries GICR_TYPER.Last.
const GICR_MAX_FRAMES: usize = 64;

const GICD_CTLR: usize = 0x0000;
const GICD_TYPER: usize = 0x0004;
const GICD_CTLR_ENABLE_GRP1: u32 = 1 << 1;
const GICD_CTLR_ARE: u32 = 1 << 4;
const GICD_CTLR_RWP: u32 = 1 << 31;

const GICR_TYPER: usize = 0x0008;
const GICR_WAKER: usize = 0x0014;
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// SGI_base frame, relative to RD_base.
const SGI_FRAME: usize = 0x1_0000;
const GICR_IGROUPR0: usize = 0x0080;
const GICR_ISENABLER0: usize = 0x0100;
const GICR_IPRIORITYR: usize = 0x0400;

/// GICv2 distributor registers for SGIs and PPIs (banked per core).
const GICD_ISENABLER0: usize = 0x0100;
const GICD_IPRIORITYR: usize = 0x0400;

const GICC_CTLR: usize = 0x0000;
const GICC_PMR: usize = 0x0004;
const GICC_IAR: usize = 0x000c;
const GICC_EOIR: usize = 0x0010;

pub const TIMER_PRIORITY: u8 = 0x80;
const RUN_PMR: u32 = 0xf0;

/// Which CPU interface `ack`/`eoi`/`mask_all_priorities` use; `NONE` until
/// `init` has one to use (before that the ICC registers may not be
/// accessible and no GICC address is known).
const NONE: u8 = 0;
const V3: u8 = 3;
const V2: u8 = 2;
static CPU_IF: AtomicU8 = AtomicU8::new(NONE);
/// The GICv2 CPU interface, set by `init` before `CPU_IF` becomes `V2`.
static GICC_BASE: AtomicUsize = AtomicUsize::new(0);
/// Polls of a "busy" bit before giving up.
const POLL_LIMIT: u32 = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicError {
    /// No redistributor's affinity matches MPIDR_EL1.
    NoRedistributor { mpidr: u64 },
    /// A register stayed busy (RWP / ChildrenAsleep).
    Timeout(&'static str),
    /// ICC_SRE_EL1.SRE would not stick: no system-register interface.
    NoSystemRegisters,
    /// Only SGIs and PPIs (0..32) are configured (per-core registers).
    NotPrivate(u32),
    /// GICD_ISENABLER0 did not take the enable: on a GICv2 in the
    /// Non-secure view, the firmware left the interrupt in Group 0.
    EnableIgnored(u32),
}

/// What `init` found.
#[derive(Clone, Copy, Debug)]
pub enum Ready {
    V3 {
        redistributor: usize,
    },
    /// `non_secure_view`: the banked Non-secure view of a GIC with the
    /// Security Extensions (see `septum_rtos::gicv2`).
    V2 {
        non_secure_view: bool,
    },
}

fn poll(what: &'static str, mut busy: impl FnMut() -> bool) -> Result<(), GicError> {
    for _ in 0..POLL_LIMIT {
        if !busy() {
            return Ok(());
        }
    }
    Err(GicError::Timeout(what))
}

/// This core's redistributor (RD_base frame followed by its SGI_base frame).
fn find_redistributor(gicr_base: usize) -> Result<Mmio, GicError> {
    let mpidr = cpu::mpidr();
    let frame = gicr::find_frame(
        gicr_base,
        GICR_MAX_FRAMES,
        gicr::mpidr_affinity(mpidr),
        |frame| {
            // SAFETY: `find_frame` only visits `gicr_base` (the platform's
            // redistributor block, in the device map) and frames that the
            // previous frame's GICR_TYPER (Last = 0) announced.
            let rd = unsafe { Mmio::new(frame, gicr::FRAME_STRIDE) };
            rd.read64(GICR_TYPER)
        },
    )
    .ok_or(GicError::NoRedistributor { mpidr })?;
    // SAFETY: `frame` is a redistributor frame whose affinity is ours, so its
    // RD_base and SGI_base pages belong to this core.
    Ok(unsafe { Mmio::new(frame, gicr::FRAME_STRIDE) })
}

/// Sets up the GIC so that private interrupt `intid` reaches this core as
/// an IRQ at `priority`. `under_hypervisor`: a hypervisor started the RTOS,
/// so a GICv2 CPU interface is a virtual one.
pub fn init(gic: Gic, under_hypervisor: bool, intid: u32, priority: u8) -> Result<Ready, GicError> {
    if intid >= 32 {
        return Err(GicError::NotPrivate(intid));
    }
    match gic {
        Gic::V3 { gicd, gicr } => {
            init_v3(gicd, gicr, intid, priority).map(|redistributor| Ready::V3 { redistributor })
        }
        Gic::V2 { gicd, gicc } => init_v2(gicd, gicc, under_hypervisor, intid, priority)
            .map(|non_secure_view| Ready::V2 { non_secure_view }),
    }
}

/// GICv3: Group 1 through the redistributor; returns the redistributor's
/// address.
fn init_v3(
    gicd_base: usize,
    gicr_base: usize,
    intid: u32,
    priority: u8,
) -> Result<usize, GicError> {
    // SAFETY: the GICv3 distributor of QEMU virt / of the partition's IPA
    // map (`platform::select`), inside the boot map's device window.
    let gicd = unsafe { Mmio::new(gicd_base, GICV3_GICD_SIZE) };
    // Affinity routing first, then the group enable (changing ARE with the
    // group enabled is UNPREDICTABLE).
    let ctlr = gicd.read32(GICD_CTLR);
    gicd.write32(GICD_CTLR, ctlr | GICD_CTLR_ARE);
    poll("GICD_CTLR.RWP", || {
        gicd.read32(GICD_CTLR) & GICD_CTLR_RWP != 0
    })?;
    gicd.write32(GICD_CTLR, ctlr | GICD_CTLR_ARE | GICD_CTLR_ENABLE_GRP1);
    poll("GICD_CTLR.RWP", || {
        gicd.read32(GICD_CTLR) & GICD_CTLR_RWP != 0
    })?;

    let rd = find_redistributor(gicr_base)?;
    let waker = rd.read32(GICR_WAKER);
    rd.write32(GICR_WAKER, waker & !GICR_WAKER_PROCESSOR_SLEEP);
    poll("GICR_WAKER.ChildrenAsleep", || {
        rd.read32(GICR_WAKER) & GICR_WAKER_CHILDREN_ASLEEP != 0
    })?;

    let bit = 1u32 << intid;
    let sgi_off = |r: usize| SGI_FRAME + r;
    let group = rd.read32(sgi_off(GICR_IGROUPR0));
    rd.write32(sgi_off(GICR_IGROUPR0), group | bit);
    // Priorities are byte fields; use a 32-bit read-modify-write so the
    // emulated register sees only word accesses.
    let word = sgi_off(GICR_IPRIORITYR) + (intid as usize & !3);
    let shift = (intid % 4) * 8;
    let prio = rd.read32(word);
    rd.write32(
        word,
        (prio & !(0xff << shift)) | (u32::from(priority) << shift),
    );
    rd.write32(sgi_off(GICR_ISENABLER0), bit);

    enable_cpu_interface()?;
    Ok(rd.base())
}

/// GICv2: the distributor's banked SGI/PPI registers and the memory-mapped
/// CPU interface. The interrupt keeps the group the reset value, the
/// firmware or the hypervisor gave it; `gicv2::enables` picks enable bits
/// that deliver it as IRQ in every case. Returns whether the interface is
/// the Non-secure view.
fn init_v2(
    gicd_base: usize,
    gicc_base: usize,
    under_hypervisor: bool,
    intid: u32,
    priority: u8,
) -> Result<bool, GicError> {
    // SAFETY: `platform::select` only returns GICv2 frames that are 4 KiB
    // aligned and inside the boot map's device windows; they are the
    // board's (or the partition's) distributor and CPU interface, which
    // only this module touches.
    let (gicd, gicc) = unsafe {
        (
            Mmio::new(gicd_base, GICV2_GICD_SIZE),
            Mmio::new(gicc_base, GICV2_GICC_SIZE),
        )
    };
    GICC_BASE.store(gicc_base, Ordering::Relaxed);
    CPU_IF.store(V2, Ordering::Relaxed);

    let typer = gicd.read32(GICD_TYPER);
    let non_secure_view = gicv2::non_secure_view(typer, under_hypervisor);
    let en = gicv2::enables(non_secure_view);
    let ctlr = gicd.read32(GICD_CTLR);
    gicd.write32(GICD_CTLR, ctlr | en.gicd_ctlr);

    let word = GICD_IPRIORITYR + gicv2::priority_word(intid);
    let prio = gicd.read32(word);
    gicd.write32(word, gicv2::with_priority(prio, intid, priority));
    let bit = 1u32 << intid;
    gicd.write32(GICD_ISENABLER0, bit);
    // A Non-secure write to a Group 0 interrupt's enable is ignored; say so
    // instead of waiting forever for the timer.
    if gicd.read32(GICD_ISENABLER0) & bit == 0 {
        return Err(GicError::EnableIgnored(intid));
    }

    gicc.write32(GICC_PMR, RUN_PMR);
    // EOImode 0: a GICC_EOIR write drops the priority and deactivates.
    gicc.write32(GICC_CTLR, en.gicc_ctlr);
    Ok(non_secure_view)
}

/// The GICv2 CPU interface (only once `CPU_IF` is `V2`).
fn gicc() -> Mmio {
    // SAFETY: `init_v2` stored a validated GICC frame (see there) before
    // publishing `V2`, the only state in which this is called.
    unsafe { Mmio::new(GICC_BASE.load(Ordering::Relaxed), GICV2_GICC_SIZE) }
}

fn enable_cpu_interface() -> Result<(), GicError> {
    let sre: u64;
    // SAFETY: enables the system-register interface of this core's GIC CPU
    // interface (SRE, and bypass disables DFB/DIB) and reads it back.
    unsafe {
        asm!(
            "mrs {t}, icc_sre_el1",
            "orr {t}, {t}, #7",
            "msr icc_sre_el1, {t}",
            "isb",
            "mrs {t}, icc_sre_el1",
            t = out(reg) sre,
            options(nostack, preserves_flags)
        );
    }
    if sre & 1 == 0 {
        return Err(GicError::NoSystemRegisters);
    }
    CPU_IF.store(V3, Ordering::Relaxed);
    // SAFETY: PMR/BPR/IGRPEN1 of this core's CPU interface belong to the
    // RTOS. BPR1 = 0 uses every priority bit for preemption decisions.
    unsafe {
        asm!(
            "msr icc_pmr_el1, {pmr}",
            "msr icc_bpr1_el1, xzr",
            "msr icc_igrpen1_el1, {one}",
            "isb",
            pmr = in(reg) u64::from(RUN_PMR),
            one = in(reg) 1u64,
            options(nostack, preserves_flags)
        );
    }
    Ok(())
}

/// GICD_TYPER of `gic`'s distributor (a benchmark of a trapped, emulated
/// register read; usable before `init`).
#[cfg_attr(not(feature = "bench"), allow(dead_code))]
pub fn read_typer(gic: Gic) -> u32 {
    let (Gic::V3 { gicd, .. } | Gic::V2 { gicd, .. }) = gic;
    // SAFETY: `platform::select` chose this distributor (mapped as device
    // memory; its first page exists in both versions); reading GICD_TYPER
    // has no side effects.
    let gicd = unsafe { Mmio::new(gicd, GICV2_GICD_SIZE) };
    gicd.read32(GICD_TYPER)
}

/// An acknowledged interrupt: its ID, and the raw value `eoi` hands back
/// (a GICv2 SGI's source CPU must be returned with it).
#[derive(Clone, Copy, Debug)]
pub struct Ack {
    /// 1020..=1023: nothing was acknowledged (spurious).
    pub intid: u32,
    raw: u32,
}

/// Acknowledges the highest-priority pending interrupt.
#[inline]
pub fn ack() -> Ack {
    if CPU_IF.load(Ordering::Relaxed) == V2 {
        let raw = gicc().read32(GICC_IAR);
        return Ack {
            intid: gicv2::iar_intid(raw),
            raw,
        };
    }
    let v: u64;
    // SAFETY: reading IAR1 acknowledges an interrupt; it is called only from
    // the IRQ handler, which completes it with `eoi`.
    unsafe { asm!("mrs {v}, icc_iar1_el1", v = out(reg) v, options(nostack, preserves_flags)) };
    let intid = (v & 0x00ff_ffff) as u32;
    Ack { intid, raw: intid }
}

/// Ends an acknowledged interrupt (EOImode 0: priority drop + deactivate).
#[inline]
pub fn eoi(ack: Ack) {
    if CPU_IF.load(Ordering::Relaxed) == V2 {
        gicc().write32(GICC_EOIR, ack.raw);
        return;
    }
    // SAFETY: `ack` was returned by `ack()` on this core.
    unsafe {
        asm!("msr icc_eoir1_el1, {v}", v = in(reg) u64::from(ack.raw), options(nostack, preserves_flags))
    };
}

/// Masks every interrupt at the CPU interface (used when halting). In a
/// GICv2's Non-secure view PMR = 0 reads back as 0x80, which still masks
/// every interrupt Non-secure software can receive.
pub fn mask_all_priorities() {
    match CPU_IF.load(Ordering::Relaxed) {
        V3 => {
            // SAFETY: PMR = 0 only stops interrupt delivery to this core.
            unsafe {
                asm!(
                    "msr icc_pmr_el1, xzr",
                    "isb",
                    options(nostack, preserves_flags)
                )
            };
        }
        V2 => gicc().write32(GICC_PMR, 0),
        // Before `init`: nothing is enabled, and nothing may be accessible.
        _ => {}
    }
}
