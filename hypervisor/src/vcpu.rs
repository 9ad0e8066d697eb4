//! Starting a vCPU on the current physical core.
//!
//! Every vCPU is pinned to one core for the system's lifetime, so the guest's
//! EL1 system registers simply stay in the hardware: an exit saves only the
//! general-purpose registers (see `asm.rs`). The hypervisor is built for the
//! soft-float target, so it never touches the guest's FP/SIMD registers.

use aarch64_cpu::registers::*;
use tock_registers::interfaces::{Readable, Writeable};

use crate::arch::aarch64::asm;
use crate::partition::PartitionRt;
use crate::percpu;

/// SPSR for entering a guest: EL1h with D, A, I and F masked.
const SPSR_EL1H_MASKED: u64 = 0x3c5;
/// SCTLR_EL1 at reset: RES1 bits only, MMU and caches off.
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// The trap configuration every guest runs under (see docs/architecture.md):
/// stage 2 on; physical IRQ/FIQ/SError to EL2; SMC, set/way cache
/// maintenance, implementation-defined and auxiliary-control registers
/// trapped; EL1 is AArch64; barriers upgraded to inner shareable. FB
/// (force broadcast) is off: a vCPU is pinned to its core, so a guest's
/// local TLB and instruction-cache maintenance (`TLBI VMALLE1`, `IC
/// IALLU`) stays on its own core instead of reaching the critical
/// partition's (docs/architecture.md, "What the platform cannot isolate").
///
/// With `direct` delivery IMO is clear: physical IRQs (the core's Group 1,
/// all the partition's) go to EL1 without an exit. FMO stays set, which
/// keeps the hypervisor's Group 0 FIQs at EL2, traps the partition's SGI
/// generation (ICC_SGI0R/SGI1R/ASGI1R) and gives it the virtual copies of
/// the CPU interface's common registers (PMR, CTLR, DIR, RPR), so the
/// physical priority mask and EOI mode stay the hypervisor's.
fn hcr_value(direct: bool) -> u64 {
    let imo = if direct {
        HCR_EL2::IMO::DisableVirtualIRQ
    } else {
        HCR_EL2::IMO::EnableVirtualIRQ
    };
    (HCR_EL2::VM::Enable
        + HCR_EL2::SWIO::SET
        + HCR_EL2::FMO::EnableVirtualFIQ
        + imo
        + HCR_EL2::AMO::SET
        + HCR_EL2::BSU::InnerShareable
        + HCR_EL2::TSC::EnableTrapEl1SmcToEl2
        + HCR_EL2::TSW::SET
        + HCR_EL2::TIDCP::SET
        + HCR_EL2::TACR::SET
        + HCR_EL2::RW::EL1IsAarch64)
        .value
}

/// Debug and performance-monitor registers trap to EL2 (and are not
/// granted): a guest cannot reach the hardware debugger or count events
/// on another partition's behalf.
fn mdcr_value() -> u64 {
    // Keep all counters in the EL2-reserved range (HPMN = 0 is not allowed
    // on every implementation): read PMCR_EL0.N.
    let pmcr = read_pmcr();
    let n = (pmcr >> 11) & 0x1f;
    (1 << 9) | (1 << 10) | (1 << 11) | (1 << 6) | (1 << 5) | n
}

fn read_pmcr() -> u64 {
    asm::read_pmcr_el0()
}

/// Configures EL2 and EL1 for `p`'s vCPU `vcpu` on this core and enters it
/// at `pc` with `x0 = arg`. Also used to restart a vCPU.
pub fn enter(p: &'static PartitionRt, vcpu: usize, pc: u64, arg: u64) -> ! {
    // The one way into a guest: never before measured boot has passed,
    // never in the safe state.
    if !crate::system::guests_may_run() {
        crate::system::halt_core();
    }
    // Stage 2.
    VTCR_EL2.set(septum_core::pgtable::vtcr_el2_value(percpu::pa_range_bits()));
    VTTBR_EL2.set(p.vttbr);
    asm::dsb_isb();
    asm::tlbi_vmalls12e1is();
    let gic = crate::irq::gic();
    let direct = gic.is_direct(percpu::core());
    HCR_EL2.set(hcr_value(direct));
    MDCR_EL2.set(mdcr_value());
    // Trace registers trap; FP/SIMD does not.
    CPTR_EL2.set(0x33ff | (1 << 20));
    // The guest gets the physical counter and EL1 physical timer; no offset
    // so that its timestamps compare directly with the hypervisor's.
    CNTHCTL_EL2.set(0b11);
    CNTVOFF_EL2.set(0);
    // Identity: the real MIDR, and a virtual MPIDR in which vCPU n is Aff0 = n.
    asm::write_vpidr_el2(MIDR_EL1.get());
    VMPIDR_EL2.set((1 << 31) | vcpu as u64);
    // A clean EL1: MMU off, no vectors, timers off (a restart must not
    // inherit a pending timer from the previous run).
    SCTLR_EL1.set(SCTLR_EL1_RESET);
    VBAR_EL1.set(0);
    CNTV_CTL_EL0.set(0);
    CNTP_CTL_EL0.set(0);
    CNTKCTL_EL1.set(0);
    CPACR_EL1.set(0);
    TCR_EL1.set(0);
    TTBR0_EL1.set(0);
    TTBR1_EL1.set(0);
    // Virtual CPU interface: empty list registers, enabled (off with direct
    // delivery, which uses the physical one).
    for i in 0..crate::irq::num_lrs() {
        gic.write_lr(i, 0);
    }
    gic.reset_vcpu_interface();
    if direct {
        gic.reset_direct_interface();
    } else {
        gic.set_hcr(1);
    }
    asm::dsb_isb();
    percpu::set_running(p, vcpu);
    // SGIs sent to this vCPU while it was off.
    crate::irq::inject_pending_sgis();
    // SAFETY: stage 2, HCR_EL2 and EL1 state were set above; the stack top is
    // this core's own.
    unsafe { asm::enter_guest(pc, arg, SPSR_EL1H_MASKED, percpu::stack_top()) }
}
