//! Thin wrappers around CPU system registers and PSTATE.

use core::arch::asm;

/// Masks IRQs and returns the previous DAIF value for `restore_daif`.
#[inline(always)]
pub fn mask_irqs() -> u64 {
    let daif: u64;
    // SAFETY: reads DAIF and sets PSTATE.I; touches no memory. No `nomem`
    // option, so the compiler keeps memory accesses on their side of it.
    unsafe {
        asm!("mrs {d}, daif", "msr daifset, #2", d = out(reg) daif, options(nostack, preserves_flags));
    }
    daif
}

/// Restores a DAIF value saved by `mask_irqs`.
#[inline(always)]
pub fn restore_daif(daif: u64) {
    // SAFETY: writes back a value previously read from DAIF, so it only
    // returns PSTATE to a state it was already in.
    unsafe {
        asm!("msr daif, {d}", d = in(reg) daif, options(nostack, preserves_flags));
    }
}

/// Unmasks IRQs.
///
/// # Safety
/// The caller must not be inside a critical section (`sync::IrqCell::with`)
/// whose exclusivity relies on IRQs staying masked.
#[inline(always)]
pub unsafe fn enable_irqs() {
    // SAFETY: the caller guarantees no critical section is open.
    unsafe { asm!("msr daifclr, #2", options(nostack, preserves_flags)) };
}

/// Masks IRQs.
#[inline(always)]
pub fn disable_irqs() {
    // SAFETY: masking interrupts cannot break any invariant.
    unsafe { asm!("msr daifset, #2", options(nostack, preserves_flags)) };
}

/// Masks debug, SError, IRQ and FIQ (used on the way to a halt).
#[inline(always)]
pub fn mask_all() {
    // SAFETY: masking exceptions cannot break any invariant.
    unsafe { asm!("msr daifset, #0xf", options(nostack, preserves_flags)) };
}

#[inline(always)]
pub fn wfi() {
    // SAFETY: wait-for-interrupt has no memory or register side effects.
    unsafe { asm!("wfi", options(nomem, nostack, preserves_flags)) };
}

macro_rules! read_sysreg {
    ($(#[$m:meta])* $name:ident, $reg:literal) => {
        $(#[$m])*
        #[inline(always)]
        pub fn $name() -> u64 {
            let v: u64;
            // SAFETY: reading this EL1-accessible register has no side effects.
            unsafe { asm!(concat!("mrs {v}, ", $reg), v = out(reg) v, options(nomem, nostack, preserves_flags)) };
            v
        }
    };
}

read_sysreg!(
    /// Affinity of this core (for finding its GIC redistributor).
    mpidr,
    "mpidr_el1"
);
read_sysreg!(
    /// Processor features: EL2 (bits [11:8]), GIC system registers ([27:24]).
    id_aa64pfr0,
    "id_aa64pfr0_el1"
);
read_sysreg!(esr, "esr_el1");
read_sysreg!(far, "far_el1");
read_sysreg!(elr, "elr_el1");
read_sysreg!(spsr, "spsr_el1");
