//! REQ-FLT-1, REQ-FLT-2: injecting a synchronous exception into a guest's EL1
//! for any guest PSTATE, PC, VBAR_EL1 and SCTLR_EL1.
//!
//! Checks:
//! - no panic (VBAR near 2^64 must wrap, not overflow);
//! - AArch32 and modes other than EL0t/EL1t/EL1h are refused with the
//!   reason;
//! - when accepted: the new ELR_EL2 is VBAR_EL1 (bits [10:0] cleared) plus
//!   the synchronous vector of the mode (0x000 EL1t, 0x200 EL1h, 0x400
//!   EL0t; never 0x600, the AArch32 one); SPSR_EL2 is EL1h with D, A, I, F
//!   set, NZCV and DIT kept, PAN and SSBS as SCTLR_EL1 says, nothing else;
//!   ESR_EL1 has the right class for the kind and the source level, IL set
//!   and the external-abort FSC; FAR_EL1, ELR_EL1 and SPSR_EL1 are the
//!   fault's values; `compute` is `compute_with_sctlr` with SPAN = 1,
//!   DSSBS = 0.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use septum_core::inject::{compute, compute_with_sctlr, InjectError, Injection};

#[derive(Debug, Arbitrary)]
enum Kind {
    DataAbort(u64),
    InstructionAbort(u64),
    Undefined,
}

#[derive(Debug, Arbitrary)]
struct Input {
    spsr: u64,
    elr: u64,
    vbar: u64,
    sctlr: u64,
    kind: Kind,
    /// Replace SPSR.M[4:0] by one of the accepted modes.
    force_mode: Option<u8>,
}

const DAIF: u64 = 0b1111 << 6;
const NZCV: u64 = 0b1111 << 28;
const DIT: u64 = 1 << 24;
const PAN: u64 = 1 << 22;
const SSBS: u64 = 1 << 12;
const SPAN: u64 = 1 << 23;
const DSSBS: u64 = 1 << 44;

fuzz_target!(|input: Input| {
    let mut spsr = input.spsr;
    if let Some(m) = input.force_mode {
        spsr = (spsr & !0x1f) | [0b0000, 0b0100, 0b0101][usize::from(m % 3)];
    }
    let what = match input.kind {
        Kind::DataAbort(far) => Injection::DataAbort { far },
        Kind::InstructionAbort(far) => Injection::InstructionAbort { far },
        Kind::Undefined => Injection::Undefined,
    };
    let got = compute_with_sctlr(spsr, input.elr, input.vbar, input.sctlr, what);
    assert_eq!(
        compute(spsr, input.elr, input.vbar, what),
        compute_with_sctlr(spsr, input.elr, input.vbar, SPAN, what)
    );

    let mode = spsr & 0xf;
    let (vector, same_el) = match mode {
        0b0000 => (0x400, false),
        0b0100 => (0x000, true),
        0b0101 => (0x200, true),
        _ => (u64::MAX, false),
    };
    if spsr & (1 << 4) != 0 {
        assert_eq!(got, Err(InjectError::AArch32));
        return;
    }
    if vector == u64::MAX {
        assert_eq!(got, Err(InjectError::BadMode(mode as u8)));
        return;
    }
    let r = got.unwrap_or_else(|e| panic!("mode {mode:#x} refused: {e:?}"));

    let base = input.vbar & !0x7ff;
    let off = r.elr_el2.wrapping_sub(base);
    assert!(
        [0x000, 0x200, 0x400].contains(&off),
        "vector offset {off:#x}"
    );
    assert_eq!(off, vector, "vector for mode {mode:#x}");

    assert_eq!(r.spsr_el2 & 0x1f, 0b0_0101, "not EL1h");
    assert_eq!(r.spsr_el2 & DAIF, DAIF, "D, A, I, F not all masked");
    assert_eq!(r.spsr_el2 & (NZCV | DIT), spsr & (NZCV | DIT));
    let want_pan = spsr & PAN != 0 || input.sctlr & SPAN == 0;
    assert_eq!(r.spsr_el2 & PAN != 0, want_pan);
    assert_eq!(r.spsr_el2 & SSBS != 0, input.sctlr & DSSBS != 0);
    assert_eq!(
        r.spsr_el2 & !(0x1f | DAIF | NZCV | DIT | PAN | SSBS),
        0,
        "stray PSTATE bits {:#x}",
        r.spsr_el2
    );

    let (ec, iss, far) = match what {
        Injection::DataAbort { far } => (if same_el { 0x25 } else { 0x24 }, 0x10, far),
        Injection::InstructionAbort { far } => (if same_el { 0x21 } else { 0x20 }, 0x10, far),
        Injection::Undefined => (0x00, 0, 0),
    };
    assert_eq!(r.esr_el1, (ec << 26) | (1 << 25) | iss);
    assert_eq!(r.far_el1, far);
    assert_eq!(r.elr_el1, input.elr);
    assert_eq!(r.spsr_el1, spsr);
});
