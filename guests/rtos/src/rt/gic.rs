//! GICv3: distributor and this core's redistributor by MMIO (emulated by the
//! hypervisor when running in a partition), CPU interface by system
//! registers (virtualised by hardware).
//!
//! Priority scheme (lower value = more urgent): the timer runs at
//! `TIMER_PRIORITY`; ICC_PMR_EL1 is `RUN_PMR`, which lets it (and anything
//! more urgent) through. A halting RTOS writes PMR = 0, which masks every
//! interrupt at the CPU interface, independently of PSTATE.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

use septum_rtos::gicr;

use super::cpu;
use super::mmio::Mmio;

const GICD_BASE: usize = 0x0800_0000;
const GICD_SIZE: usize = 0x1_0000;
const GICR_BASE: usize = 0x080a_0000;
/// Upper bound on the walk, in case no frame carries GICR_TYPER.Last.
const GICR_MAX_FRAMES: usize = 64;

const GICD_CTLR: usize = 0x0000;
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

pub const TIMER_PRIORITY: u8 = 0x80;
const RUN_PMR: u64 = 0xf0;
/// Set once the system-register CPU interface is enabled.
static CPU_IF_ON: AtomicBool = AtomicBool::new(false);
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
    /// Only SGIs and PPIs (0..32) are configured through the redistributor.
    NotPrivate(u32),
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
fn find_redistributor() -> Result<Mmio, GicError> {
    let mpidr = cpu::mpidr();
    let frame = gicr::find_frame(
        GICR_BASE,
        GICR_MAX_FRAMES,
        gicr::mpidr_affinity(mpidr),
        |frame| {
            // SAFETY: `find_frame` only visits GICR_BASE and frames that the
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

/// Sets up the GIC so that private interrupt `intid` reaches this core as a
/// Group 1 IRQ at `priority`; returns the redistributor's address.
pub fn init(intid: u32, priority: u8) -> Result<usize, GicError> {
    if intid >= 32 {
        return Err(GicError::NotPrivate(intid));
    }
    // SAFETY: the GICv3 distributor of QEMU virt / of the partition's IPA map.
    let gicd = unsafe { Mmio::new(GICD_BASE, GICD_SIZE) };
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

    let rd = find_redistributor()?;
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
    CPU_IF_ON.store(true, Ordering::Relaxed);
    // SAFETY: PMR/BPR/IGRPEN1 of this core's CPU interface belong to the
    // RTOS. BPR1 = 0 uses every priority bit for preemption decisions.
    unsafe {
        asm!(
            "msr icc_pmr_el1, {pmr}",
            "msr icc_bpr1_el1, xzr",
            "msr icc_igrpen1_el1, {one}",
            "isb",
            pmr = in(reg) RUN_PMR,
            one = in(reg) 1u64,
            options(nostack, preserves_flags)
        );
    }
    Ok(())
}

/// Acknowledges the highest-priority pending Group 1 interrupt (1020..1023
/// = spurious).
#[inline]
/// GICD_TYPER (a benchmark of a trapped, emulated register read).
#[cfg_attr(not(feature = "bench"), allow(dead_code))]
pub fn read_typer() -> u32 {
    // SAFETY: the distributor frame is mapped (device memory) and reading
    // GICD_TYPER has no side effects.
    let gicd = unsafe { Mmio::new(GICD_BASE, GICD_SIZE) };
    gicd.read32(0x0004)
}

pub fn ack() -> u32 {
    let v: u64;
    // SAFETY: reading IAR1 acknowledges an interrupt; it is called only from
    // the IRQ handler, which completes it with `eoi`.
    unsafe { asm!("mrs {v}, icc_iar1_el1", v = out(reg) v, options(nostack, preserves_flags)) };
    (v & 0x00ff_ffff) as u32
}

/// Ends an acknowledged interrupt (EOImode 0: priority drop + deactivate).
#[inline]
pub fn eoi(intid: u32) {
    // SAFETY: `intid` was returned by `ack` on this core.
    unsafe {
        asm!("msr icc_eoir1_el1, {v}", v = in(reg) u64::from(intid), options(nostack, preserves_flags))
    };
}

/// Masks every interrupt at the CPU interface (used when halting).
pub fn mask_all_priorities() {
    if !CPU_IF_ON.load(Ordering::Relaxed) {
        // Before `init` the ICC registers may not be accessible yet.
        return;
    }
    // SAFETY: PMR = 0 only stops interrupt delivery to this core.
    unsafe {
        asm!(
            "msr icc_pmr_el1, xzr",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}
