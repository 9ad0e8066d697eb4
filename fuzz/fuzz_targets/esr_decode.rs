//! REQ-FLT-2: decoding of guest exit syndromes (ESR_EL2, HPFAR_EL2, FAR_EL2).
//!
//! Checks:
//! - no panic for any register values;
//! - `decode_data_abort` refuses with the reason of the first failing
//!   check (an independent re-statement of the rules), and when it
//!   accepts: width is 1, 2, 4 or 8, the register is 0..=31, the IPA's low
//!   12 bits are FAR's, its page is HPFAR.FIPA, and direction, sign
//!   extension and register width are the syndrome's bits;
//! - `load_value`/`extend_read` fit the access width unless sign-extended
//!   (then the upper bits copy the sign), stay within 32 bits for a W
//!   register, and `store_value` fits the width (0 for XZR);
//! - `decode_sysreg` yields in-range fields that re-encode to the ISS bits
//!   they came from, and ignores every bit outside ISS `[21:0]`;
//! - fault status and exception class decoding are total and depend only
//!   on their fields.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use septum_core::esr::{
    decode_data_abort, decode_sysreg, ec, encode, exception_class, extend_read, AbortDecodeError,
    DataAbortIss, ExceptionClass, FaultStatus,
};

#[derive(Debug, Arbitrary)]
struct Input {
    esr: u64,
    hpfar: u64,
    far: u64,
    raw: u64,
    reg_value: u64,
    /// Force the syndrome into an emulatable data abort shape, so that the
    /// accepting path is reached as often as the refusals.
    shape: bool,
}

fn mask(width: u8) -> u64 {
    if width >= 8 {
        u64::MAX
    } else {
        (1 << (8 * u32::from(width))) - 1
    }
}

fn check_fault_status(fsc: u8) {
    let level = match FaultStatus::from_fsc(fsc) {
        FaultStatus::AddressSize { level }
        | FaultStatus::Translation { level }
        | FaultStatus::AccessFlag { level }
        | FaultStatus::Permission { level }
        | FaultStatus::SyncExternalOnWalk { level }
        | FaultStatus::SyncParityOnWalk { level } => level,
        FaultStatus::Other(o) => {
            assert!(o < 0x40);
            0
        }
        _ => 0,
    };
    assert!((-1..=3).contains(&level));
    assert_eq!(
        FaultStatus::from_fsc(fsc),
        FaultStatus::from_fsc(fsc & 0x3f)
    );
}

fuzz_target!(|input: Input| {
    let mut esr = input.esr;
    if input.shape {
        // EC 0x24, ISV, not S1PTW/EA/CM/FnV, DFSC translation or access flag.
        esr = (esr & !(0x3f << 26) & !0x780 & !0x3f) | (0x24 << 26) | (1 << 24);
        let fsc = if input.raw & 1 == 0 { 0x04 } else { 0x08 };
        esr |= fsc | ((input.raw >> 1) & 3);
    }
    let (hpfar, far) = (input.hpfar, input.far);

    // Exception class: total, depends on bits [31:26] only.
    let class = exception_class(esr);
    assert_eq!(class, ExceptionClass::from_ec(ec(esr)));
    assert_eq!(class, exception_class(esr & (0x3f << 26)));
    if let ExceptionClass::Other(o) = class {
        assert!(o < 0x40);
    }
    check_fault_status(input.raw as u8);

    let iss = (esr & 0x1ff_ffff) as u32;
    let d = DataAbortIss::from_iss(iss);
    let want_err = if ec(esr) != 0x24 {
        Some(AbortDecodeError::NotDataAbort(ec(esr)))
    } else if iss & (1 << 7) != 0 {
        Some(AbortDecodeError::StageOneWalk)
    } else if iss & (1 << 9) != 0 {
        Some(AbortDecodeError::ExternalAbort)
    } else if iss & (1 << 8) != 0 {
        Some(AbortDecodeError::CacheMaintenance)
    } else if iss & (1 << 10) != 0 {
        Some(AbortDecodeError::FarNotValid)
    } else if !matches!(iss & 0x3f, 0x04..=0x0b | 0x2b) {
        Some(AbortDecodeError::NotTranslationFault(d.fault))
    } else if iss & (1 << 24) == 0 {
        Some(AbortDecodeError::NoSyndrome)
    } else {
        None
    };

    match decode_data_abort(esr, hpfar, far) {
        Err(e) => assert_eq!(Some(e), want_err, "esr {esr:#x}"),
        Ok(acc) => {
            assert_eq!(want_err, None, "esr {esr:#x} accepted");
            assert!(matches!(acc.width, 1 | 2 | 4 | 8), "{acc:?}");
            assert!(acc.reg <= 31, "{acc:?}");
            let ipa = acc.ipa.raw();
            assert_eq!(ipa & 0xfff, far & 0xfff, "IPA page offset is FAR's");
            assert_eq!(
                ipa >> 12,
                (hpfar >> 4) & ((1 << 40) - 1),
                "IPA page is HPFAR.FIPA"
            );
            assert!(ipa < 1 << 52);
            assert_eq!(u64::from(acc.width), 1 << ((iss >> 22) & 3));
            assert_eq!(u32::from(acc.reg), (iss >> 16) & 0x1f);
            assert_eq!(acc.write, iss & (1 << 6) != 0);
            assert_eq!(acc.sign_extend, iss & (1 << 21) != 0);
            assert_eq!(acc.sixty_four, iss & (1 << 15) != 0);

            let bits = 8 * u32::from(acc.width);
            let v = extend_read(&acc, input.raw);
            assert_eq!(v, acc.load_value(input.raw));
            let truncated = input.raw & mask(acc.width);
            assert_eq!(
                v & mask(acc.width),
                truncated
                    & if acc.sixty_four {
                        u64::MAX
                    } else {
                        0xffff_ffff
                    }
            );
            if !acc.sixty_four {
                assert_eq!(
                    v >> 32,
                    0,
                    "a W register load sets bits above 31: {acc:?} {v:#x}"
                );
            }
            let negative = bits < 64 && truncated >> (bits - 1) & 1 == 1;
            if acc.sign_extend && negative {
                let reg_bits = if acc.sixty_four { 64 } else { 32 };
                if bits < reg_bits {
                    let upper = mask(reg_bits as u8 / 8) & !mask(acc.width);
                    assert_eq!(v & upper, upper, "sign extension {acc:?} {v:#x}");
                }
            } else {
                assert_eq!(
                    v & !mask(acc.width),
                    0,
                    "load {acc:?} of {:#x} = {v:#x}",
                    input.raw
                );
            }
            let s = acc.store_value(input.reg_value);
            if acc.reg == 31 {
                assert_eq!(s, 0, "XZR stores zero");
            } else {
                assert_eq!(s, input.reg_value & mask(acc.width));
            }
        }
    }

    // MSR/MRS.
    let a = decode_sysreg(esr);
    assert!(a.op0 <= 3 && a.op1 <= 7 && a.op2 <= 7 && a.crn <= 15 && a.crm <= 15 && a.rt <= 31);
    assert_eq!(
        a,
        decode_sysreg(esr & 0x3f_ffff),
        "bits outside ISS[21:0] matter"
    );
    let reenc = (u64::from(a.op0) << 20)
        | (u64::from(a.op2) << 17)
        | (u64::from(a.op1) << 14)
        | (u64::from(a.crn) << 10)
        | (u64::from(a.rt) << 5)
        | (u64::from(a.crm) << 1)
        | u64::from(a.read);
    assert_eq!(reenc, esr & 0x3f_ffff);
    let key = a.key();
    assert!(key <= 0xffff);
    assert_eq!(key, encode(a.op0, a.op1, a.crn, a.crm, a.op2));
    // The debug/PMU classification is a pure function of the fields.
    let _ = a.is_debug_or_pmu();
});
