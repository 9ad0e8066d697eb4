//! Injecting a synchronous exception into a guest's EL1.
//!
//! Computes the register values the architecture itself would produce when
//! taking a synchronous exception to AArch64 EL1, so that the guest's own
//! handler sees an ordinary abort or undefined instruction. The hypervisor
//! writes the results to ESR_EL1, FAR_EL1, ELR_EL1, SPSR_EL1 and returns to
//! the guest with the new ELR_EL2/SPSR_EL2.

/// What to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injection {
    /// A synchronous external data abort on an access to virtual address `far`.
    DataAbort { far: u64 },
    /// A synchronous external instruction abort on a fetch from `far`.
    InstructionAbort { far: u64 },
    /// An undefined instruction (EC 0x00). FAR_EL1 is UNKNOWN for it; 0 is reported.
    Undefined,
}

/// Register values for the guest after the injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injected {
    /// Where the guest resumes: its EL1 vector for the exception.
    pub elr_el2: u64,
    /// PSTATE it resumes with: EL1h, D/A/I/F masked (see [`compute_with_sctlr`]).
    pub spsr_el2: u64,
    pub esr_el1: u64,
    pub far_el1: u64,
    /// The guest's PC at the fault (its preferred return address).
    pub elr_el1: u64,
    /// The guest's PSTATE at the fault.
    pub spsr_el1: u64,
}

/// Why an exception cannot be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectError {
    /// The guest was in AArch32 state (`SPSR.M[4]` = 1): not supported; stop it.
    AArch32,
    /// SPSR_EL2.M does not describe EL0t, EL1t or EL1h (raw `M[3:0]`): the
    /// exception did not come from a guest.
    BadMode(u8),
}

// PSTATE / SPSR bits.
const M_MASK: u64 = 0xf;
const M_AARCH32: u64 = 1 << 4;
const M_EL0T: u64 = 0b0000;
const M_EL1T: u64 = 0b0100;
const M_EL1H: u64 = 0b0101;
const DAIF: u64 = 0b1111 << 6;
const SSBS: u64 = 1 << 12;
const PAN: u64 = 1 << 22;
const DIT: u64 = 1 << 24;
const NZCV: u64 = 0b1111 << 28;

// SCTLR_EL1 bits.
const SCTLR_SPAN: u64 = 1 << 23;
const SCTLR_DSSBS: u64 = 1 << 44;

// Vector table offsets.
const VEC_CURRENT_SP0: u64 = 0x000;
const VEC_CURRENT_SPX: u64 = 0x200;
const VEC_LOWER_A64: u64 = 0x400;
/// The lower-EL AArch32 vectors; never used (AArch32 guests are refused).
pub const VEC_LOWER_A32: u64 = 0x600;

// ESR.
const EC_SHIFT: u32 = 26;
const ESR_IL: u64 = 1 << 25;
const EC_UNKNOWN: u64 = 0x00;
const EC_IABT_LOWER: u64 = 0x20;
const EC_IABT_SAME: u64 = 0x21;
const EC_DABT_LOWER: u64 = 0x24;
const EC_DABT_SAME: u64 = 0x25;
/// DFSC/IFSC: synchronous external abort, not on a table walk.
const FSC_SYNC_EXTERNAL: u64 = 0x10;

/// [`compute_with_sctlr`] for a guest whose SCTLR_EL1 is not at hand: as if
/// SPAN = 1 (PSTATE.PAN kept as it was) and DSSBS = 0 (SSBS cleared, the
/// conservative speculation setting). Exact for CPUs without FEAT_PAN and
/// FEAT_SSBS, such as the Cortex-A72.
pub fn compute(
    spsr_el2: u64,
    elr_el2: u64,
    vbar_el1: u64,
    what: Injection,
) -> Result<Injected, InjectError> {
    compute_with_sctlr(spsr_el2, elr_el2, vbar_el1, SCTLR_SPAN, what)
}

/// The architectural result of taking `what` to EL1, for a guest that was
/// at `spsr_el2`/`elr_el2` when it trapped, with `vbar_el1` and `sctlr_el1`.
///
/// `elr_el2` must be the address the guest's handler should see as the
/// faulting instruction: for aborts and most traps that is ELR_EL2 as the
/// trap left it; after an HVC (whose preferred return address is the next
/// instruction) the caller subtracts 4.
///
/// New PSTATE: EL1h, D/A/I/F set, NZCV and DIT kept, PAN kept or set when
/// SCTLR_EL1.SPAN = 0, SSBS = SCTLR_EL1.DSSBS, everything else (SS, IL,
/// UAO, BTYPE, TCO...) zero.
pub fn compute_with_sctlr(
    spsr_el2: u64,
    elr_el2: u64,
    vbar_el1: u64,
    sctlr_el1: u64,
    what: Injection,
) -> Result<Injected, InjectError> {
    if spsr_el2 & M_AARCH32 != 0 {
        return Err(InjectError::AArch32);
    }
    let mode = spsr_el2 & M_MASK;
    let (vector, same_el) = match mode {
        M_EL0T => (VEC_LOWER_A64, false),
        M_EL1T => (VEC_CURRENT_SP0, true),
        M_EL1H => (VEC_CURRENT_SPX, true),
        other => return Err(InjectError::BadMode(other as u8)),
    };
    let (ec, iss, far) = match what {
        Injection::DataAbort { far } => (
            if same_el { EC_DABT_SAME } else { EC_DABT_LOWER },
            FSC_SYNC_EXTERNAL,
            far,
        ),
        Injection::InstructionAbort { far } => (
            if same_el { EC_IABT_SAME } else { EC_IABT_LOWER },
            FSC_SYNC_EXTERNAL,
            far,
        ),
        Injection::Undefined => (EC_UNKNOWN, 0, 0),
    };
    let mut pstate = M_EL1H | DAIF | (spsr_el2 & (NZCV | DIT | PAN));
    if sctlr_el1 & SCTLR_SPAN == 0 {
        pstate |= PAN;
    }
    if sctlr_el1 & SCTLR_DSSBS != 0 {
        pstate |= SSBS;
    }
    Ok(Injected {
        // VBAR_EL1 bits [10:0] are RES0.
        elr_el2: (vbar_el1 & !0x7ff).wrapping_add(vector),
        spsr_el2: pstate,
        esr_el1: (ec << EC_SHIFT) | ESR_IL | iss,
        far_el1: far,
        elr_el1: elr_el2,
        spsr_el1: spsr_el2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VBAR: u64 = 0xffff_8000_1001_0800;
    const PC: u64 = 0xffff_8000_1234_5678;
    const FAR: u64 = 0xffff_0000_dead_b000;

    /// REQ-FLT-1: an injected abort looks architectural to the guest.
    #[test]
    fn data_abort_from_el1h() {
        let spsr = 0x6000_03c5; // Z, C, EL1h, DAIF masked.
        let r = compute(spsr, PC, VBAR, Injection::DataAbort { far: FAR }).unwrap();
        assert_eq!(r.elr_el2, VBAR + 0x200);
        assert_eq!(r.esr_el1, 0x9600_0010); // EC 0x25, IL, DFSC 0x10
        assert_eq!(r.far_el1, FAR);
        assert_eq!(r.elr_el1, PC);
        assert_eq!(r.spsr_el1, spsr);
        assert_eq!(r.spsr_el2, 0x6000_03c5);
    }

    #[test]
    fn data_abort_from_el1t_uses_sp0_vector() {
        let r = compute(0x4, PC, VBAR, Injection::DataAbort { far: FAR }).unwrap();
        assert_eq!(r.elr_el2, VBAR);
        assert_eq!(r.esr_el1, 0x9600_0010);
        assert_eq!(r.spsr_el2, 0x3c5);
    }

    #[test]
    fn data_abort_from_el0() {
        let spsr = 0x8000_0000; // N, EL0t, interrupts unmasked.
        let r = compute(spsr, 0x40_1000, VBAR, Injection::DataAbort { far: 0x1234 }).unwrap();
        assert_eq!(r.elr_el2, VBAR + 0x400);
        assert_eq!(r.esr_el1, 0x9200_0010); // EC 0x24
        assert_eq!(r.spsr_el2, 0x8000_03c5);
        assert_eq!(r.spsr_el1, spsr);
        assert_eq!(r.elr_el1, 0x40_1000);
    }

    #[test]
    fn instruction_aborts() {
        let r = compute(0x5, PC, VBAR, Injection::InstructionAbort { far: PC }).unwrap();
        assert_eq!(r.esr_el1, 0x8600_0010); // EC 0x21
        assert_eq!(r.far_el1, PC);
        assert_eq!(r.elr_el2, VBAR + 0x200);
        let r = compute(
            0x0,
            0x40_0000,
            VBAR,
            Injection::InstructionAbort { far: 0x40_0000 },
        )
        .unwrap();
        assert_eq!(r.esr_el1, 0x8200_0010); // EC 0x20
        assert_eq!(r.elr_el2, VBAR + 0x400);
        let r = compute(0x4, PC, VBAR, Injection::InstructionAbort { far: PC }).unwrap();
        assert_eq!(r.elr_el2, VBAR);
    }

    #[test]
    fn undefined_from_each_mode() {
        for (m, off) in [(0x0, 0x400), (0x4, 0x000), (0x5, 0x200)] {
            let r = compute(m, PC, VBAR, Injection::Undefined).unwrap();
            assert_eq!(r.esr_el1, 0x0200_0000, "EC 0 with IL");
            assert_eq!(r.far_el1, 0);
            assert_eq!(r.elr_el2, VBAR + off);
            assert_eq!(r.elr_el1, PC);
            assert_eq!(r.spsr_el2 & 0x3cf, 0x3c5);
        }
    }

    /// REQ-FLT-1: AArch32 or non-guest state is refused (the partition is stopped).
    #[test]
    fn refused_modes() {
        // AArch32 user / svc.
        assert_eq!(
            compute(0x10, PC, VBAR, Injection::Undefined),
            Err(InjectError::AArch32)
        );
        assert_eq!(
            compute(0x13, PC, VBAR, Injection::Undefined),
            Err(InjectError::AArch32)
        );
        // EL2 and EL3 modes, and reserved encodings.
        for m in [0x8u64, 0x9, 0xc, 0xd, 0x1, 0x2, 0x3, 0x6, 0x7, 0xf] {
            assert_eq!(
                compute(m, PC, VBAR, Injection::Undefined),
                Err(InjectError::BadMode(m as u8))
            );
        }
    }

    #[test]
    fn vbar_low_bits_are_ignored_and_no_overflow_panic() {
        let r = compute(0x5, PC, 0x4000_07ff, Injection::Undefined).unwrap();
        assert_eq!(r.elr_el2, 0x4000_0200);
        let r = compute(0x5, PC, u64::MAX, Injection::Undefined).unwrap();
        assert_eq!(r.elr_el2, (!0x7ffu64).wrapping_add(0x200));
    }

    #[test]
    fn pstate_bits_kept_and_cleared() {
        // SS (21), IL (20), UAO (23), BTYPE (11:10), TCO (25) dropped; DIT and PAN kept.
        let spsr = (1 << 21) | (1 << 20) | (1 << 23) | (0b11 << 10) | (1 << 25) | DIT | PAN | 0x5;
        let r = compute(spsr, PC, VBAR, Injection::Undefined).unwrap();
        assert_eq!(r.spsr_el2, DIT | PAN | 0x3c5);
        assert_eq!(r.spsr_el1, spsr);
    }

    #[test]
    fn span_and_dssbs() {
        // SPAN = 0: PAN set on entry even from a PAN = 0 state.
        let r = compute_with_sctlr(0x0, PC, VBAR, 0, Injection::Undefined).unwrap();
        assert_eq!(r.spsr_el2, PAN | 0x3c5);
        // DSSBS = 1: SSBS set.
        let r = compute_with_sctlr(
            0x5,
            PC,
            VBAR,
            SCTLR_SPAN | SCTLR_DSSBS,
            Injection::Undefined,
        )
        .unwrap();
        assert_eq!(r.spsr_el2, SSBS | 0x3c5);
        // SSBS of the old state is not carried over.
        let r = compute(SSBS | 0x5, PC, VBAR, Injection::Undefined).unwrap();
        assert_eq!(r.spsr_el2, 0x3c5);
    }
}
