//! The few devices the benchmark touches, at QEMU `virt`'s addresses (the
//! partition sees the same IPAs): the GIC — a GICv3's distributor and
//! redistributors by MMIO and its CPU interface by system registers, or a
//! GICv2's distributor and CPU interface (GICC) by MMIO, whichever
//! ID_AA64PFR0_EL1 says the core has — PL011 UART0 (console) and UART1 (the
//! passthrough device that raises the measured interrupt), the virtual
//! counter and PSCI over HVC.

use core::arch::asm;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use septum_abi::psci;

const GICD: usize = 0x0800_0000;
/// A GICv2's CPU interface on `virt` (in a partition: the hardware's GICV
/// at the same IPA).
const GICC: usize = 0x0801_0000;
const GICC_CTLR: usize = 0x00;
const GICC_PMR: usize = 0x04;
const GICC_IAR: usize = 0x0c;
const GICC_EOIR: usize = 0x10;
const GICD_SGIR: usize = 0xf00;
const GICR: usize = 0x080a_0000;
const GICR_STRIDE: usize = 0x2_0000;
const SGI_FRAME: usize = 0x1_0000;
const UART0: usize = 0x0900_0000;
pub const UART1: usize = 0x0904_0000;
/// UART1's interrupt: SPI 8.
pub const UART1_INTID: u32 = 40;
/// The EL1 virtual timer's PPI.
pub const VTIMER_INTID: u32 = 27;

const UART_DR: usize = 0x00;
const UART_FR: usize = 0x18;
const UART_CR: usize = 0x30;
const UART_IMSC: usize = 0x38;
const UART_ICR: usize = 0x44;
const UART_FR_TXFF: u32 = 1 << 5;
const UART_INT_TX: u32 = 1 << 5;
/// Polls of a busy bit before giving up: a dead device must not hang us.
const POLLS: u32 = 1_000_000;

/// Set by [`detect_gic`]: the GIC is a GICv2 (no system-register CPU
/// interface).
static V2: AtomicBool = AtomicBool::new(false);

/// Reads ID_AA64PFR0_EL1.GIC: 0 means no GICv3 system-register interface,
/// so a GICv2. Returns whether it is one.
pub fn detect_gic() -> bool {
    let pfr0: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe {
        asm!("mrs {v}, id_aa64pfr0_el1", v = out(reg) pfr0, options(nomem, nostack, preserves_flags))
    };
    let v2 = (pfr0 >> 24) & 0xf == 0;
    V2.store(v2, Ordering::Relaxed);
    v2
}

#[inline(always)]
fn v2() -> bool {
    V2.load(Ordering::Relaxed)
}

fn read32(addr: usize) -> u32 {
    let v: u32;
    // SAFETY: every caller passes a register of a device in the 0..1 GiB
    // device mapping (GIC, UART); register reads have no memory effects.
    unsafe {
        asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v, options(nostack, preserves_flags))
    };
    v
}

fn write32(addr: usize, v: u32) {
    // SAFETY: as in `read32`; the registers written belong to this guest
    // (its own GIC configuration and UARTs).
    unsafe {
        asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) v, options(nostack, preserves_flags))
    };
}

fn write64(addr: usize, v: u64) {
    // SAFETY: as in `write32`.
    unsafe {
        asm!("str {v}, [{a}]", a = in(reg) addr, v = in(reg) v, options(nostack, preserves_flags))
    };
}

/// The virtual counter, after the instructions before it completed.
#[inline(always)]
pub fn now() -> u64 {
    let v: u64;
    // SAFETY: reading CNTVCT_EL0 has no side effects; the ISB orders it
    // after the preceding instructions.
    unsafe {
        asm!("isb", "mrs {v}, cntvct_el0", v = out(reg) v, options(nostack, preserves_flags))
    };
    v
}

pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            for _ in 0..POLLS {
                if read32(UART0 + UART_FR) & UART_FR_TXFF == 0 {
                    break;
                }
            }
            write32(UART0 + UART_DR, u32::from(b));
        }
        Ok(())
    }
}

/// Sets `intid`'s byte in the IPRIORITYR array of `frame` (a distributor,
/// or a redistributor's SGI_base).
fn set_priority(frame: usize, intid: u32, priority: u8) {
    let reg = frame + 0x400 + (intid as usize & !3);
    let shift = (intid % 4) * 8;
    write32(
        reg,
        (read32(reg) & !(0xff << shift)) | (u32::from(priority) << shift),
    );
}

/// The distributor: affinity routing and Group 1 on; the benchmark's SPI
/// (UART1) in Group 1 at `priority`, routed to vCPU 0.
pub fn gicd_init(priority: u8) {
    if v2() {
        // Both groups on (no Security Extensions here, or a virtual
        // interface: the interrupts keep their reset group); UART1 at
        // `priority`, targeted at vCPU 0.
        write32(GICD, 0b11);
        let word = (UART1_INTID / 32) as usize * 4;
        set_priority(GICD, UART1_INTID, priority);
        let targets = GICD + 0x800 + (UART1_INTID as usize & !3);
        let shift = (UART1_INTID % 4) * 8;
        write32(targets, (read32(targets) & !(0xff << shift)) | (1 << shift));
        write32(GICD + 0x100 + word, 1 << (UART1_INTID % 32));
        return;
    }
    const CTLR_ENABLE_GRP1: u32 = 1 << 1;
    const CTLR_ARE: u32 = 1 << 4;
    const CTLR_RWP: u32 = 1 << 31;
    let ctlr = read32(GICD);
    write32(GICD, ctlr | CTLR_ARE);
    write32(GICD, ctlr | CTLR_ARE | CTLR_ENABLE_GRP1);
    for _ in 0..POLLS {
        if read32(GICD) & CTLR_RWP == 0 {
            break;
        }
    }
    let (word, bit) = ((UART1_INTID / 32) as usize * 4, 1u32 << (UART1_INTID % 32));
    write32(GICD + 0x80 + word, read32(GICD + 0x80 + word) | bit); // IGROUPR
    set_priority(GICD, UART1_INTID, priority);
    write64(GICD + 0x6000 + UART1_INTID as usize * 8, 0); // IROUTER: Aff 0.0.0.0
    write32(GICD + 0x100 + word, bit); // ISENABLER
}

/// vCPU `cpu`'s redistributor awake, SGIs `sgis` in Group 1 at `priority`
/// and enabled, and its CPU interface on. `false` if the redistributor at
/// the expected place does not carry this vCPU's affinity.
pub fn cpu_init(cpu: usize, sgis: u32, priority: u8) -> bool {
    if v2() {
        // The SGIs' enable and priority are banked in the distributor.
        for intid in 0..16u32 {
            if sgis & (1 << intid) != 0 {
                set_priority(GICD, intid, priority);
            }
        }
        write32(GICD + 0x100, sgis);
        write32(GICC + GICC_PMR, 0xff);
        // EnableGrp0 | EnableGrp1 | AckCtl: either group is signalled as an
        // IRQ and acknowledged through GICC_IAR.
        write32(GICC + GICC_CTLR, 0b111);
        return true;
    }
    let rd = GICR + cpu * GICR_STRIDE;
    let typer_hi = read32(rd + 0x0c); // GICR_TYPER[63:32]: affinity
    if typer_hi & 0xff != cpu as u32 {
        return false;
    }
    write32(rd + 0x14, read32(rd + 0x14) & !(1 << 1)); // WAKER.ProcessorSleep
    for _ in 0..POLLS {
        if read32(rd + 0x14) & (1 << 2) == 0 {
            break;
        }
    }
    let sgi = rd + SGI_FRAME;
    write32(sgi + 0x80, read32(sgi + 0x80) | sgis); // IGROUPR0
    for intid in 0..16u32 {
        if sgis & (1 << intid) != 0 {
            set_priority(sgi, intid, priority);
        }
    }
    write32(sgi + 0x100, sgis); // ISENABLER0
                                // SAFETY: this vCPU's own CPU interface: system registers on, every
                                // priority let through, Group 1 enabled.
    unsafe {
        asm!(
            "mrs {t}, icc_sre_el1",
            "orr {t}, {t}, #7",
            "msr icc_sre_el1, {t}",
            "isb",
            "msr icc_pmr_el1, {pmr}",
            "msr icc_bpr1_el1, xzr",
            "msr icc_igrpen1_el1, {one}",
            "isb",
            t = out(reg) _,
            pmr = in(reg) 0xffu64,
            one = in(reg) 1u64,
            options(nostack, preserves_flags)
        );
    }
    true
}

/// Sends SGI `intid` to vCPU `target` (Aff0, affinity 0.0.0).
#[inline(always)]
pub fn send_sgi(intid: u32, target: usize) {
    if v2() {
        write32(GICD + GICD_SGIR, (1 << (16 + (target & 7))) | (intid & 0xf));
        return;
    }
    let v = (u64::from(intid & 0xf) << 24) | (1u64 << (target & 0xf));
    // SAFETY: ICC_SGI1R_EL1 only raises an SGI on a vCPU of this guest.
    unsafe {
        asm!("msr icc_sgi1r_el1, {v}", "isb", v = in(reg) v, options(nostack, preserves_flags))
    };
}

/// Acknowledges the pending interrupt: (its INTID, the value [`eoi`] takes;
/// on a GICv2 an SGI's includes its source CPU).
pub fn ack() -> (u32, u32) {
    if v2() {
        let iar = read32(GICC + GICC_IAR);
        return (iar & 0x3ff, iar);
    }
    let v: u64;
    // SAFETY: acknowledges the pending interrupt this handler then ends.
    unsafe { asm!("mrs {v}, icc_iar1_el1", v = out(reg) v, options(nostack, preserves_flags)) };
    let intid = (v & 0x00ff_ffff) as u32;
    (intid, intid)
}

pub fn eoi(token: u32) {
    if v2() {
        write32(GICC + GICC_EOIR, token);
        return;
    }
    // SAFETY: `token` came from `ack` on this vCPU.
    unsafe {
        asm!("msr icc_eoir1_el1, {v}", v = in(reg) u64::from(token), options(nostack, preserves_flags))
    };
}

/// UART1 enabled with only its transmit interrupt unmasked.
pub fn uart1_init() {
    write32(UART1 + UART_IMSC, 0);
    write32(UART1 + UART_ICR, 0x7ff);
    write32(UART1 + UART_CR, (1 << 8) | 1); // TXE | UARTEN
    write32(UART1 + UART_IMSC, UART_INT_TX);
}

/// Sends one byte on UART1: the device raises its transmit interrupt.
#[inline(always)]
pub fn uart1_kick() {
    write32(UART1 + UART_DR, u32::from(b'.'));
}

/// Drops UART1's transmit interrupt (from its handler, before the EOI).
pub fn uart1_clear() {
    write32(UART1 + UART_ICR, UART_INT_TX);
}

/// Waits, interrupts masked between checks, until `done()`; interrupts
/// are taken only at the one unmasking point, so no interrupt is lost
/// between the check and the WFI. `false` after `limit` wake-ups.
pub fn wait_for_interrupt(mut done: impl FnMut() -> bool, limit: u32) -> bool {
    for _ in 0..limit {
        if done() {
            return true;
        }
        // SAFETY: WFI with IRQs masked wakes on a pending interrupt, which
        // is then taken between the unmask and the mask; the handler may
        // clobber what the C ABI lets a call clobber.
        unsafe {
            asm!(
                "wfi",
                "msr daifclr, #2",
                "isb",
                "msr daifset, #2",
                clobber_abi("C"),
                options(nostack)
            )
        };
    }
    done()
}

/// PSCI CPU_ON (64-bit) of Aff0 `target` at `entry` with context `ctx`;
/// returns the PSCI status (0 = success).
pub fn cpu_on(target: u64, entry: u64, ctx: u64) -> i64 {
    let mut r = u64::from(psci::CPU_ON_64);
    // SAFETY: a PSCI call; the started vCPU runs this image's secondary
    // entry with its own stack.
    unsafe {
        asm!("hvc #0", inout("x0") r, in("x1") target, in("x2") entry, in("x3") ctx,
             clobber_abi("C"), options(nostack))
    };
    r as i64
}

/// PSCI SYSTEM_OFF: ends the run (natively QEMU exits; under Septum the
/// partition's policy decides).
pub fn system_off() {
    // SAFETY: a PSCI call that does not return on success.
    unsafe {
        asm!("hvc #0", in("x0") u64::from(psci::SYSTEM_OFF), clobber_abi("C"), options(nostack))
    };
}

/// vCPU 0's SGI_base frame.
const SGI0: usize = GICR + SGI_FRAME;
const ISENABLER: usize = 0x100;
const ICENABLER: usize = 0x180;
const ISPENDR: usize = 0x200;
const ICPENDR: usize = 0x280;
const ISACTIVER: usize = 0x300;
const ICACTIVER: usize = 0x380;

/// One interrupt's state as the four pending/active registers of its word
/// report it: (ISPENDR, ICPENDR, ISACTIVER, ICACTIVER), each 0 or 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqState(pub u32, pub u32, pub u32, pub u32);

impl IrqState {
    pub fn pending(self) -> bool {
        self.0 != 0 && self.1 != 0
    }
    pub fn idle(self) -> bool {
        self == IrqState(0, 0, 0, 0)
    }
    pub fn active_only(self) -> bool {
        self.2 != 0 && self.3 != 0
    }
}

/// The frame and bit of `intid`: vCPU 0's redistributor for SGIs and PPIs
/// (on a GICv2, the distributor's banked word 0), the distributor for SPIs.
fn frame_bit(intid: u32) -> (usize, u32) {
    // A GICv2's SGI and PPI registers are word 0 of the distributor's,
    // banked per CPU.
    if intid < 32 && !v2() {
        (SGI0, 1 << intid)
    } else {
        (GICD + (intid / 32) as usize * 4, 1 << (intid % 32))
    }
}

pub fn irq_state(intid: u32) -> IrqState {
    let (f, bit) = frame_bit(intid);
    let b = |off: usize| u32::from(read32(f + off) & bit != 0);
    IrqState(b(ISPENDR), b(ICPENDR), b(ISACTIVER), b(ICACTIVER))
}

/// Enables or disables `intid` in the GIC (a PPI of vCPU 0, or an SPI).
pub fn irq_enable(intid: u32, on: bool) {
    let (f, bit) = frame_bit(intid);
    write32(f + if on { ISENABLER } else { ICENABLER }, bit);
}

/// vCPU 0's virtual timer PPI in Group 1 at `priority`.
pub fn vtimer_irq_init(priority: u8) {
    if v2() {
        set_priority(GICD, VTIMER_INTID, priority);
        return;
    }
    write32(SGI0 + 0x80, read32(SGI0 + 0x80) | (1 << VTIMER_INTID)); // IGROUPR0
    set_priority(SGI0, VTIMER_INTID, priority);
}

/// Arms the virtual timer to fire at once (its line stays high until
/// [`vtimer_off`]).
pub fn vtimer_fire() {
    vtimer_at(now());
}

/// Arms the virtual timer for counter value `cval`.
pub fn vtimer_at(cval: u64) {
    // SAFETY: programs this vCPU's own EL1 virtual timer.
    unsafe {
        asm!(
            "msr cntv_cval_el0, {c}",
            "msr cntv_ctl_el0, {one}",
            "isb",
            c = in(reg) cval,
            one = in(reg) 1u64,
            options(nostack, preserves_flags)
        )
    };
}

/// GICD_TYPER (trapped and emulated in a partition).
#[inline(always)]
pub fn gicd_typer() -> u32 {
    read32(GICD + 0x4)
}

/// What a trapped load and a hypercall leave in the registers the
/// hypervisor's short exit path treats specially (x19-x28, which it saves
/// only for an exit that needs one of them): GICD_TYPER loaded into x20 and x28, then PSCI_VERSION
/// over HVC with x19, x21 and x27 holding known values. Natively the load is
/// a device read and QEMU answers the HVC.
pub fn trap_registers() -> [u64; 5] {
    let (r19, r20, r21, r27, r28): (u64, u64, u64, u64, u64);
    // SAFETY: reads of this guest's distributor and a PSCI query. x19 and
    // x29 cannot be asm operands, so they are saved and restored here on
    // the stack.
    unsafe {
        asm!(
            "stp x19, x29, [sp, #-16]!",
            "mov x19, #0x1919",
            "ldr w20, [x10]",
            "ldr w28, [x10]",
            "mov x0, x11",
            "hvc #0",
            "mov x9, x19",
            "ldp x19, x29, [sp], #16",
            in("x10") GICD + 0x4,
            in("x11") u64::from(psci::PSCI_VERSION),
            out("x9") r19,
            inout("x21") 0x2121u64 => r21,
            inout("x27") 0x2727u64 => r27,
            out("x20") r20,
            out("x28") r28,
            clobber_abi("C"),
        )
    };
    [r19, r20, r21, r27, r28]
}

/// PSCI_VERSION over HVC: answered by the hypervisor (natively, by QEMU's
/// own PSCI emulation).
#[inline(always)]
pub fn psci_version() -> u64 {
    let mut r = u64::from(psci::PSCI_VERSION);
    // SAFETY: a PSCI query without side effects.
    unsafe { asm!("hvc #0", inout("x0") r, clobber_abi("C"), options(nostack)) };
    r
}

/// Disables the virtual timer (its line drops).
pub fn vtimer_off() {
    // SAFETY: as in `vtimer_fire`.
    unsafe {
        asm!(
            "msr cntv_ctl_el0, xzr",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Polls `cond` up to `POLLS` times.
pub fn poll(mut cond: impl FnMut() -> bool) -> bool {
    (0..POLLS).any(|_| cond())
}
