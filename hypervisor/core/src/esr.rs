//! Decoding of the exception syndrome (ESR_EL2) of guest exits.
//!
//! Layout: EC `[31:26]`, IL `[25]`, ISS `[24:0]`. Everything decoded here comes
//! from a guest's behaviour, so every field value has a defined result.

use crate::addr::GuestPhysAddr;

/// The exception class (ESR_EL2.EC) of an exit, named for the cases the
/// hypervisor handles; any other value is kept in [`ExceptionClass::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionClass {
    /// 0x00: unknown reason (e.g. an UNDEFINED instruction at EL2's request).
    Unknown,
    /// 0x01: trapped WFI or WFE.
    WfiWfe,
    /// 0x07: access to SVE, Advanced SIMD or floating point, trapped.
    SveFp,
    /// 0x0e: illegal execution state.
    IllegalState,
    /// 0x15: SVC from AArch64 (only reaches EL2 with HCR_EL2.TGE).
    Svc64,
    /// 0x16: HVC from AArch64.
    Hvc64,
    /// 0x17: SMC from AArch64, trapped by HCR_EL2.TSC.
    Smc64,
    /// 0x18: MSR, MRS or system instruction from AArch64, trapped.
    SysReg64,
    /// 0x19: SVE access, trapped.
    Sve,
    /// 0x20: instruction abort from a lower exception level.
    InstAbortLower,
    /// 0x21: instruction abort taken without a change of level (a hypervisor bug).
    InstAbortSame,
    /// 0x22: PC alignment fault.
    PcAlignment,
    /// 0x24: data abort from a lower exception level.
    DataAbortLower,
    /// 0x25: data abort taken without a change of level (a hypervisor bug).
    DataAbortSame,
    /// 0x26: SP alignment fault.
    SpAlignment,
    /// 0x2c: trapped floating-point exception from AArch64.
    FpException64,
    /// 0x2f: SError.
    SError,
    /// 0x30 (lower EL) or 0x31 (same EL): hardware breakpoint.
    Breakpoint,
    /// 0x32 (lower EL) or 0x33 (same EL): software step.
    SoftwareStep,
    /// 0x34 (lower EL) or 0x35 (same EL): watchpoint.
    Watchpoint,
    /// 0x3c: BRK instruction in AArch64.
    Brk,
    /// Any other class (AArch32 traps, pointer authentication, ...), raw EC.
    Other(u8),
}

impl ExceptionClass {
    /// Classifies a raw 6-bit EC value.
    #[inline]
    pub const fn from_ec(ec: u8) -> Self {
        match ec {
            0x00 => Self::Unknown,
            0x01 => Self::WfiWfe,
            0x07 => Self::SveFp,
            0x0e => Self::IllegalState,
            0x15 => Self::Svc64,
            0x16 => Self::Hvc64,
            0x17 => Self::Smc64,
            0x18 => Self::SysReg64,
            0x19 => Self::Sve,
            0x20 => Self::InstAbortLower,
            0x21 => Self::InstAbortSame,
            0x22 => Self::PcAlignment,
            0x24 => Self::DataAbortLower,
            0x25 => Self::DataAbortSame,
            0x26 => Self::SpAlignment,
            0x2c => Self::FpException64,
            0x2f => Self::SError,
            0x30 | 0x31 => Self::Breakpoint,
            0x32 | 0x33 => Self::SoftwareStep,
            0x34 | 0x35 => Self::Watchpoint,
            0x3c => Self::Brk,
            other => Self::Other(other),
        }
    }
}

/// EC field, bits `[31:26]`.
#[inline]
pub const fn ec(esr: u64) -> u8 {
    ((esr >> 26) & 0x3f) as u8
}

/// The exception class of `esr`.
#[inline]
pub const fn exception_class(esr: u64) -> ExceptionClass {
    ExceptionClass::from_ec(ec(esr))
}

/// IL, bit 25: the trapped instruction was 32 bits long (always, for AArch64).
pub const fn il(esr: u64) -> bool {
    esr & (1 << 25) != 0
}

/// ISS, bits `[24:0]`.
#[inline]
pub const fn iss(esr: u64) -> u32 {
    (esr & 0x1ff_ffff) as u32
}

/// A fault status code (DFSC / IFSC, ISS bits `[5:0]`) classified. Levels are
/// `i8` because FEAT_LPA2 adds level -1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultStatus {
    AddressSize {
        level: i8,
    },
    Translation {
        level: i8,
    },
    AccessFlag {
        level: i8,
    },
    Permission {
        level: i8,
    },
    /// Synchronous external abort, not on a table walk.
    SyncExternal,
    /// Synchronous external abort on a translation table walk.
    SyncExternalOnWalk {
        level: i8,
    },
    /// Synchronous parity or ECC error on a memory access, not on a walk.
    SyncParity,
    /// Synchronous parity or ECC error on a translation table walk.
    SyncParityOnWalk {
        level: i8,
    },
    /// Synchronous tag check fault (MTE).
    TagCheck,
    Alignment,
    TlbConflict,
    /// Any other code (implementation defined, unsupported atomic update...).
    Other(u8),
}

impl FaultStatus {
    /// Classifies a 6-bit FSC.
    pub const fn from_fsc(fsc: u8) -> Self {
        let fsc = fsc & 0x3f;
        let level = (fsc & 0b11) as i8;
        match fsc {
            0x00..=0x03 => Self::AddressSize { level },
            0x04..=0x07 => Self::Translation { level },
            0x08..=0x0b => Self::AccessFlag { level },
            0x0c..=0x0f => Self::Permission { level },
            0x10 => Self::SyncExternal,
            0x11 => Self::TagCheck,
            0x13 => Self::SyncExternalOnWalk { level: -1 },
            0x14..=0x17 => Self::SyncExternalOnWalk { level },
            0x18 => Self::SyncParity,
            0x1b => Self::SyncParityOnWalk { level: -1 },
            0x1c..=0x1f => Self::SyncParityOnWalk { level },
            0x21 => Self::Alignment,
            0x29 => Self::AddressSize { level: -1 },
            0x2b => Self::Translation { level: -1 },
            0x30 => Self::TlbConflict,
            other => Self::Other(other),
        }
    }
}

// Data abort ISS fields.
const ISS_DFSC_MASK: u32 = 0x3f;
const ISS_WNR: u32 = 1 << 6;
const ISS_S1PTW: u32 = 1 << 7;
const ISS_CM: u32 = 1 << 8;
const ISS_EA: u32 = 1 << 9;
const ISS_FNV: u32 = 1 << 10;
const ISS_SF: u32 = 1 << 15;
const ISS_SRT_SHIFT: u32 = 16;
const ISS_SSE: u32 = 1 << 21;
const ISS_SAS_SHIFT: u32 = 22;
const ISS_ISV: u32 = 1 << 24;

/// The data-abort syndrome fields, decoded without judging them (for logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAbortIss {
    pub fault: FaultStatus,
    /// WnR: the access was a write.
    pub write: bool,
    /// The fault happened on the stage-2 translation of a stage-1 table walk.
    pub s1ptw: bool,
    /// A cache maintenance or address translation instruction faulted.
    pub cm: bool,
    /// External abort type (implementation defined classification).
    pub ea: bool,
    /// FAR is not valid.
    pub fnv: bool,
    /// ISV: bits `[23:14]` (access size, register...) are valid.
    pub isv: bool,
}

impl DataAbortIss {
    /// Decodes the ISS of a data abort.
    #[inline]
    pub const fn from_iss(iss: u32) -> Self {
        Self {
            fault: FaultStatus::from_fsc((iss & ISS_DFSC_MASK) as u8),
            write: iss & ISS_WNR != 0,
            s1ptw: iss & ISS_S1PTW != 0,
            cm: iss & ISS_CM != 0,
            ea: iss & ISS_EA != 0,
            fnv: iss & ISS_FNV != 0,
            isv: iss & ISS_ISV != 0,
        }
    }
}

/// A guest load or store that hit an unmapped IPA and can be emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// The faulting guest-physical address (byte exact).
    pub ipa: GuestPhysAddr,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub width: u8,
    pub write: bool,
    /// Transfer register: 0..=30, or 31 for XZR/WZR (loads into it are
    /// discarded, stores from it store zero; it is never SP here).
    pub reg: u8,
    /// SSE: a load sign-extends to the register width.
    pub sign_extend: bool,
    /// SF: the register is 64 bits wide (X), otherwise 32 (W).
    pub sixty_four: bool,
}

impl MmioAccess {
    /// The value to store: `reg_value` (the contents of the transfer
    /// register; pass 0 for register 31) truncated to the access width.
    pub const fn store_value(&self, reg_value: u64) -> u64 {
        if self.reg == 31 {
            return 0;
        }
        reg_value & width_mask(self.width)
    }

    /// The value a load puts in the register, from the `raw` value the
    /// device returned: truncated to the access width, sign-extended if the
    /// instruction asks for it, and cut to 32 bits for a W register (a
    /// write to Wn zeroes the upper half of Xn).
    #[inline]
    pub const fn load_value(&self, raw: u64) -> u64 {
        // The loaded bytes moved to the top and back: the shift back
        // extends with zeroes or with the sign (a few instructions on the
        // MMIO exit path, no branches on the width).
        let shift = 64u32.wrapping_sub(self.width as u32 * 8) & 63;
        let top = raw << shift;
        let v = if self.sign_extend {
            ((top as i64) >> shift) as u64
        } else {
            top >> shift
        };
        if self.sixty_four {
            v
        } else {
            v & 0xffff_ffff
        }
    }
}

const fn width_mask(width: u8) -> u64 {
    match width {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

/// The register value for a load: [`MmioAccess::load_value`] as a function.
#[inline]
pub const fn extend_read(acc: &MmioAccess, raw: u64) -> u64 {
    acc.load_value(raw)
}

/// Why a data abort cannot be emulated as a simple load or store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortDecodeError {
    /// The syndrome is not a data abort from a lower exception level (raw EC).
    NotDataAbort(u8),
    /// The fault is on the stage-2 translation of the guest's own table walk.
    StageOneWalk,
    /// An external abort (ESR.EA), not a translation fault.
    ExternalAbort,
    /// A cache maintenance or address translation instruction.
    CacheMaintenance,
    /// FAR_EL2 is not valid, so the byte address is unknown.
    FarNotValid,
    /// Not a stage-2 translation or access-flag fault. HPFAR_EL2 is only
    /// guaranteed valid for those (it may be stale on a permission fault),
    /// and an emulated device region is never mapped, so these are never
    /// emulated.
    NotTranslationFault(FaultStatus),
    /// ISV = 0: the instruction (load/store pair, writeback, SIMD, atomic,
    /// exclusive...) is not described by the syndrome.
    NoSyndrome,
}

/// The faulting IPA of a stage-2 abort: HPFAR_EL2.FIPA (bits `[43:4]`, holding
/// `IPA[51:12]`) shifted into place, with the page offset from FAR_EL2.
#[inline]
pub const fn fault_ipa(hpfar: u64, far: u64) -> GuestPhysAddr {
    let fipa = (hpfar >> 4) & ((1 << 40) - 1);
    GuestPhysAddr::new((fipa << 12) | (far & 0xfff))
}

/// Decodes a guest data abort (ESR_EL2, HPFAR_EL2, FAR_EL2) into an access
/// the hypervisor can emulate.
///
/// Checks, in order: the class is 0x24; not S1PTW; not an external abort;
/// not cache maintenance; FAR valid; DFSC a translation or access-flag
/// fault; ISV set. The first failing check is reported.
#[inline(always)]
pub fn decode_data_abort(esr: u64, hpfar: u64, far: u64) -> Result<MmioAccess, AbortDecodeError> {
    // The common case in three tests (the MMIO exit path): a data abort
    // from a lower level with a valid syndrome, not on a stage-1 walk, not
    // external, not cache maintenance, FAR valid, and a translation or
    // access-flag fault at levels 0-3 (DFSC 0b0001xx or 0b0010xx). Anything
    // else takes the checks below, which name the first that fails.
    let iss = iss(esr);
    let flags = ISS_ISV | ISS_FNV | ISS_EA | ISS_CM | ISS_S1PTW;
    let dfsc = iss & ISS_DFSC_MASK;
    if ec(esr) == 0x24 && iss & flags == ISS_ISV && (dfsc >> 2).wrapping_sub(1) < 2 {
        return Ok(mmio_access(iss, hpfar, far));
    }
    decode_data_abort_checked(esr, hpfar, far)
}

#[inline(always)]
const fn mmio_access(iss: u32, hpfar: u64, far: u64) -> MmioAccess {
    MmioAccess {
        ipa: fault_ipa(hpfar, far),
        width: 1 << ((iss >> ISS_SAS_SHIFT) & 0b11),
        write: iss & ISS_WNR != 0,
        reg: ((iss >> ISS_SRT_SHIFT) & 0x1f) as u8,
        sign_extend: iss & ISS_SSE != 0,
        sixty_four: iss & ISS_SF != 0,
    }
}

/// [`decode_data_abort`], one check at a time (out of line: the rare case).
#[cold]
#[inline(never)]
fn decode_data_abort_checked(
    esr: u64,
    hpfar: u64,
    far: u64,
) -> Result<MmioAccess, AbortDecodeError> {
    if exception_class(esr) != ExceptionClass::DataAbortLower {
        return Err(AbortDecodeError::NotDataAbort(ec(esr)));
    }
    let iss = iss(esr);
    let d = DataAbortIss::from_iss(iss);
    if d.s1ptw {
        return Err(AbortDecodeError::StageOneWalk);
    }
    if d.ea {
        return Err(AbortDecodeError::ExternalAbort);
    }
    if d.cm {
        return Err(AbortDecodeError::CacheMaintenance);
    }
    if d.fnv {
        return Err(AbortDecodeError::FarNotValid);
    }
    match d.fault {
        FaultStatus::Translation { .. } | FaultStatus::AccessFlag { .. } => {}
        other => return Err(AbortDecodeError::NotTranslationFault(other)),
    }
    if !d.isv {
        return Err(AbortDecodeError::NoSyndrome);
    }
    Ok(mmio_access(iss, hpfar, far))
}

/// A trapped MSR/MRS (EC 0x18).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
    /// The general-purpose register: 0..=30, or 31 for XZR.
    pub rt: u8,
    /// Direction: `true` for MRS (read), `false` for MSR (write).
    pub read: bool,
}

/// A system register's encoding as one number, for `match`:
/// `op0:op1:CRn:CRm:op2` packed into bits `[15:0]` as in the MRS/MSR
/// instruction's immediate.
pub const fn encode(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> u32 {
    ((op0 as u32 & 0b11) << 14)
        | ((op1 as u32 & 0b111) << 11)
        | ((crn as u32 & 0xf) << 7)
        | ((crm as u32 & 0xf) << 3)
        | (op2 as u32 & 0b111)
}

/// ICC_SGI1R_EL1 (3, 0, 12, 11, 5): generate a Group 1 SGI.
pub const ICC_SGI1R_EL1: u32 = encode(3, 0, 12, 11, 5);
/// ICC_ASGI1R_EL1 (3, 0, 12, 11, 6): generate a Group 1 SGI for the other security state.
pub const ICC_ASGI1R_EL1: u32 = encode(3, 0, 12, 11, 6);
/// ICC_SGI0R_EL1 (3, 0, 12, 11, 7): generate a Group 0 SGI.
pub const ICC_SGI0R_EL1: u32 = encode(3, 0, 12, 11, 7);

impl SysRegAccess {
    /// The register's [`encode`] key.
    pub const fn key(&self) -> u32 {
        encode(self.op0, self.op1, self.crn, self.crm, self.op2)
    }

    /// Whether the register is a debug, trace, performance-monitor or
    /// statistical-profiling register (the ones MDCR_EL2/CPTR_EL2 trap so
    /// that a guest cannot reach shared debug hardware):
    /// - op0 = 2: the debug and trace space (OSLAR, DBGB*, MDSCR, TRC*...);
    /// - op0 = 3, CRn = 9, CRm = 9..=14, op1 = 0 or 3: SPE, TRBE, PMU
    ///   (PMCR_EL0, PMCNTEN*, PMINTEN*, PMUSERENR_EL0...);
    /// - op0 = 3, op1 = 3, CRn = 14, CRm = 8..=15: PMEVCNTR/PMEVTYPER, PMCCFILTR.
    ///
    /// The generic timer (CRn = 14, CRm 0..=3) is not included.
    pub const fn is_debug_or_pmu(&self) -> bool {
        let pmu_spe = self.op0 == 3
            && self.crn == 9
            && self.crm >= 9
            && self.crm <= 14
            && (self.op1 == 0 || self.op1 == 3);
        let pmev = self.op0 == 3 && self.op1 == 3 && self.crn == 14 && self.crm >= 8;
        self.op0 == 2 || pmu_spe || pmev
    }
}

/// Decodes the ISS of a trapped MSR/MRS: Op0 `[21:20]`, Op2 `[19:17]`,
/// Op1 `[16:14]`, CRn `[13:10]`, Rt `[9:5]`, CRm `[4:1]`, Direction `[0]` (1 = read).
/// The exception class is not checked: call this for EC 0x18 only.
pub const fn decode_sysreg(esr: u64) -> SysRegAccess {
    let iss = iss(esr);
    SysRegAccess {
        op0: ((iss >> 20) & 0b11) as u8,
        op2: ((iss >> 17) & 0b111) as u8,
        op1: ((iss >> 14) & 0b111) as u8,
        crn: ((iss >> 10) & 0xf) as u8,
        rt: ((iss >> 5) & 0x1f) as u8,
        crm: ((iss >> 1) & 0xf) as u8,
        read: iss & 1 != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC_DABT_LOW: u64 = 0x24 << 26;
    const IL: u64 = 1 << 25;

    /// A data abort ESR with ISV set: SAS, SRT, WnR, SSE, SF; DFSC = translation level 3.
    fn dabt(sas: u64, srt: u64, write: bool, sse: bool, sf: bool) -> u64 {
        EC_DABT_LOW
            | IL
            | (1 << 24)
            | (sas << 22)
            | ((sse as u64) << 21)
            | (srt << 16)
            | ((sf as u64) << 15)
            | ((write as u64) << 6)
            | 0x07
    }

    #[test]
    fn exception_classes() {
        let cases = [
            (0x00, ExceptionClass::Unknown),
            (0x01, ExceptionClass::WfiWfe),
            (0x07, ExceptionClass::SveFp),
            (0x0e, ExceptionClass::IllegalState),
            (0x16, ExceptionClass::Hvc64),
            (0x17, ExceptionClass::Smc64),
            (0x18, ExceptionClass::SysReg64),
            (0x20, ExceptionClass::InstAbortLower),
            (0x21, ExceptionClass::InstAbortSame),
            (0x24, ExceptionClass::DataAbortLower),
            (0x25, ExceptionClass::DataAbortSame),
            (0x30, ExceptionClass::Breakpoint),
            (0x31, ExceptionClass::Breakpoint),
            (0x32, ExceptionClass::SoftwareStep),
            (0x35, ExceptionClass::Watchpoint),
            (0x3c, ExceptionClass::Brk),
            (0x2f, ExceptionClass::SError),
            (0x03, ExceptionClass::Other(0x03)),
            (0x3f, ExceptionClass::Other(0x3f)),
        ];
        for (e, c) in cases {
            assert_eq!(exception_class(e << 26 | IL | 0x1ff_ffff), c, "EC {e:#x}");
        }
        // Bits above 31 (ISS2) do not disturb the class.
        assert_eq!(
            exception_class(0xffff_ffff_0000_0000 | (0x16 << 26)),
            ExceptionClass::Hvc64
        );
        assert!(il(IL));
        assert_eq!(iss(u64::MAX), 0x1ff_ffff);
    }

    #[test]
    fn fault_status_codes() {
        assert_eq!(
            FaultStatus::from_fsc(0x04),
            FaultStatus::Translation { level: 0 }
        );
        assert_eq!(
            FaultStatus::from_fsc(0x07),
            FaultStatus::Translation { level: 3 }
        );
        assert_eq!(
            FaultStatus::from_fsc(0x2b),
            FaultStatus::Translation { level: -1 }
        );
        assert_eq!(
            FaultStatus::from_fsc(0x09),
            FaultStatus::AccessFlag { level: 1 }
        );
        assert_eq!(
            FaultStatus::from_fsc(0x0f),
            FaultStatus::Permission { level: 3 }
        );
        assert_eq!(
            FaultStatus::from_fsc(0x01),
            FaultStatus::AddressSize { level: 1 }
        );
        assert_eq!(FaultStatus::from_fsc(0x10), FaultStatus::SyncExternal);
        assert_eq!(
            FaultStatus::from_fsc(0x15),
            FaultStatus::SyncExternalOnWalk { level: 1 }
        );
        assert_eq!(FaultStatus::from_fsc(0x21), FaultStatus::Alignment);
        assert_eq!(FaultStatus::from_fsc(0x30), FaultStatus::TlbConflict);
        assert_eq!(FaultStatus::from_fsc(0x3f), FaultStatus::Other(0x3f));
        // Only the low 6 bits count.
        assert_eq!(
            FaultStatus::from_fsc(0xc4),
            FaultStatus::Translation { level: 0 }
        );
    }

    #[test]
    fn decode_store_word() {
        // str w3, [x0] to IPA 0x0800_0104.
        let a = decode_data_abort(
            dabt(2, 3, true, false, false),
            0x8000 << 4,
            0xffff_0000_0000_0104,
        )
        .unwrap();
        assert_eq!(a.ipa, GuestPhysAddr::new(0x0800_0104));
        assert_eq!(
            (a.width, a.write, a.reg, a.sign_extend, a.sixty_four),
            (4, true, 3, false, false)
        );
    }

    /// REQ-FLT-2: every access size and register decodes.
    #[test]
    fn decode_widths_and_registers() {
        for (sas, w) in [(0, 1), (1, 2), (2, 4), (3, 8)] {
            let a = decode_data_abort(dabt(sas, 30, false, true, true), 0, 0).unwrap();
            assert_eq!(a.width, w);
            assert_eq!(a.reg, 30);
            assert!(a.sign_extend && a.sixty_four && !a.write);
        }
        let a = decode_data_abort(dabt(2, 31, true, false, false), 0, 0).unwrap();
        assert_eq!(a.reg, 31);
        assert_eq!(a.store_value(0x1234), 0, "xzr stores zero");
    }

    #[test]
    fn ipa_uses_all_fipa_bits() {
        // FIPA holds IPA[51:12] in HPFAR bits [43:4]; bits above are ignored.
        let hpfar = (0xff_ffff_ffffu64 << 4) | (0xfu64 << 44) | 0xf;
        let a = decode_data_abort(dabt(2, 0, false, false, false), hpfar, 0xabc).unwrap();
        assert_eq!(a.ipa, GuestPhysAddr::new(0x000f_ffff_ffff_fabc));
        assert_eq!(
            fault_ipa(0x12345 << 4, 0xffff_ffff_ffff_f008),
            GuestPhysAddr::new(0x1234_5008)
        );
    }

    /// REQ-FLT-2: aborts that cannot be emulated are refused with a reason.
    #[test]
    fn refusals() {
        let ok = dabt(2, 1, true, false, false);
        assert!(decode_data_abort(ok, 0, 0).is_ok());
        assert_eq!(
            decode_data_abort(ok & !(1 << 24), 0, 0),
            Err(AbortDecodeError::NoSyndrome)
        );
        assert_eq!(
            decode_data_abort(ok | (1 << 7), 0, 0),
            Err(AbortDecodeError::StageOneWalk)
        );
        assert_eq!(
            decode_data_abort(ok | (1 << 9), 0, 0),
            Err(AbortDecodeError::ExternalAbort)
        );
        assert_eq!(
            decode_data_abort(ok | (1 << 8), 0, 0),
            Err(AbortDecodeError::CacheMaintenance)
        );
        assert_eq!(
            decode_data_abort(ok | (1 << 10), 0, 0),
            Err(AbortDecodeError::FarNotValid)
        );
        let perm = (ok & !0x3f) | 0x0f;
        assert_eq!(
            decode_data_abort(perm, 0, 0),
            Err(AbortDecodeError::NotTranslationFault(
                FaultStatus::Permission { level: 3 }
            ))
        );
        let af = (ok & !0x3f) | 0x0b;
        assert!(decode_data_abort(af, 0, 0).is_ok());
        let same_el = (ok & !(0x3f << 26)) | (0x25 << 26);
        assert_eq!(
            decode_data_abort(same_el, 0, 0),
            Err(AbortDecodeError::NotDataAbort(0x25))
        );
        assert_eq!(
            decode_data_abort(0x16 << 26, 0, 0),
            Err(AbortDecodeError::NotDataAbort(0x16))
        );
    }

    #[test]
    fn iss_fields_for_logs() {
        let d = DataAbortIss::from_iss(0x0000_07c7);
        assert!(d.write && d.s1ptw && d.cm && d.ea && d.fnv && !d.isv);
        assert_eq!(d.fault, FaultStatus::Translation { level: 3 });
    }

    #[test]
    fn the_quick_data_abort_test_agrees_with_the_checks() {
        // Every combination of the ISS bits that take part (DFSC, WnR,
        // S1PTW, CM, EA, FnV: bits 0-10; ISV), with the other fields clear
        // or set, for the data-abort class and its neighbours.
        let others = 0x3f_0000 | ISS_SF | ISS_SSE | (3 << ISS_SAS_SHIFT);
        for ec in [0x24u64, 0x25, 0x20, 0x16] {
            for low in 0u32..(1 << 11) {
                for isv in [0, ISS_ISV] {
                    for hi in [0, others] {
                        let esr = (ec << 26) | (1 << 25) | u64::from(low | isv | hi);
                        assert_eq!(
                            decode_data_abort(esr, 0x1234_5670, 0xabc),
                            decode_data_abort_checked(esr, 0x1234_5670, 0xabc),
                            "ESR {esr:#x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn load_values_match_a_masking_reference() {
        // The obvious definition, to check the shifting one against.
        let reference = |acc: &MmioAccess, raw: u64| {
            let bits = acc.width as u32 * 8;
            let mut v = raw & width_mask(acc.width);
            if acc.sign_extend && bits < 64 && v & (1 << (bits - 1)) != 0 {
                v |= !width_mask(acc.width);
            }
            if !acc.sixty_four {
                v &= 0xffff_ffff;
            }
            v
        };
        let raws = [
            0,
            1,
            0x7f,
            0x80,
            0xff,
            0x7fff,
            0x8000,
            0xffff,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            0x1234_5678_9abc_def0,
            0x8000_0000_0000_0000,
            u64::MAX,
        ];
        for width in [1, 2, 4, 8] {
            for sign_extend in [false, true] {
                for sixty_four in [false, true] {
                    let acc = MmioAccess {
                        ipa: GuestPhysAddr::new(0),
                        width,
                        write: false,
                        reg: 0,
                        sign_extend,
                        sixty_four,
                    };
                    for raw in raws {
                        assert_eq!(
                            acc.load_value(raw),
                            reference(&acc, raw),
                            "{acc:?} {raw:#x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn load_values() {
        let acc = |w, sse, sf| MmioAccess {
            ipa: GuestPhysAddr::new(0),
            width: w,
            write: false,
            reg: 0,
            sign_extend: sse,
            sixty_four: sf,
        };
        // ldrb w0: zero-extended, truncated.
        assert_eq!(acc(1, false, false).load_value(0x1ff), 0xff);
        // ldrsb x0.
        assert_eq!(acc(1, true, true).load_value(0x80), 0xffff_ffff_ffff_ff80);
        // ldrsb w0: sign-extended to 32 bits only.
        assert_eq!(acc(1, true, false).load_value(0x80), 0xffff_ff80);
        // ldrsh x0 with a positive value.
        assert_eq!(acc(2, true, true).load_value(0x7fff), 0x7fff);
        // ldrsw x0.
        assert_eq!(
            extend_read(&acc(4, true, true), 0x8000_0000),
            0xffff_ffff_8000_0000
        );
        // ldr w0 ignores device garbage above 32 bits.
        assert_eq!(
            acc(4, false, false).load_value(0xdead_beef_1234_5678),
            0x1234_5678
        );
        // ldr x0.
        assert_eq!(acc(8, false, true).load_value(u64::MAX), u64::MAX);
        assert_eq!(
            acc(8, true, true).load_value(0x8000_0000_0000_0000),
            0x8000_0000_0000_0000
        );
        // Stores truncate.
        assert_eq!(acc(2, false, false).store_value(0x1_2345), 0x2345);
    }

    #[test]
    fn sysreg_decode_and_keys() {
        // msr ICC_SGI1R_EL1, x5: Op0 3, Op2 5, Op1 0, CRn 12, Rt 5, CRm 11, write.
        let iss = (3 << 20) | (5 << 17) | (12 << 10) | (5 << 5) | (11 << 1);
        let a = decode_sysreg((0x18 << 26) | IL | iss);
        assert_eq!(
            a,
            SysRegAccess {
                op0: 3,
                op1: 0,
                crn: 12,
                crm: 11,
                op2: 5,
                rt: 5,
                read: false
            }
        );
        assert_eq!(a.key(), ICC_SGI1R_EL1);
        assert_ne!(ICC_SGI1R_EL1, ICC_ASGI1R_EL1);
        // mrs x30, PMCR_EL0 (3, 3, 9, 12, 0).
        let iss = (3 << 20) | (3 << 14) | (9 << 10) | (30 << 5) | (12 << 1) | 1;
        let a = decode_sysreg((0x18 << 26) | iss);
        assert_eq!(
            (a.op0, a.op1, a.crn, a.crm, a.op2, a.rt, a.read),
            (3, 3, 9, 12, 0, 30, true)
        );
        assert!(a.is_debug_or_pmu());
        // Every field at its maximum decodes independently.
        let a = decode_sysreg(0x1ff_ffff);
        assert_eq!(
            (a.op0, a.op1, a.crn, a.crm, a.op2, a.rt, a.read),
            (3, 7, 15, 15, 7, 31, true)
        );
    }

    #[test]
    fn encode_is_injective_over_fields() {
        assert_eq!(encode(3, 0, 12, 11, 5), 0xc65d);
        assert_eq!(encode(3, 7, 15, 15, 7), 0xffff);
        assert_eq!(encode(0, 0, 0, 0, 0), 0);
        assert_ne!(encode(3, 0, 12, 11, 5), encode(3, 0, 11, 12, 5));
    }

    #[test]
    fn debug_and_pmu_classification() {
        let r = |op0, op1, crn, crm, op2| SysRegAccess {
            op0,
            op1,
            crn,
            crm,
            op2,
            rt: 0,
            read: true,
        };
        assert!(r(2, 0, 1, 0, 4).is_debug_or_pmu()); // OSLAR_EL1
        assert!(r(2, 0, 0, 2, 2).is_debug_or_pmu()); // MDSCR_EL1
        assert!(r(2, 3, 0, 1, 0).is_debug_or_pmu()); // MDCCSR_EL0
        assert!(r(3, 0, 9, 14, 1).is_debug_or_pmu()); // PMINTENSET_EL1
        assert!(r(3, 3, 9, 12, 0).is_debug_or_pmu()); // PMCR_EL0
        assert!(r(3, 3, 9, 14, 0).is_debug_or_pmu()); // PMUSERENR_EL0
        assert!(r(3, 3, 14, 8, 0).is_debug_or_pmu()); // PMEVCNTR0_EL0
        assert!(r(3, 3, 14, 15, 7).is_debug_or_pmu()); // PMCCFILTR_EL0
        assert!(r(3, 0, 9, 10, 0).is_debug_or_pmu()); // PMBLIMITR_EL1 (SPE)
        assert!(!r(3, 3, 14, 2, 1).is_debug_or_pmu()); // CNTP_CTL_EL0
        assert!(!r(3, 3, 14, 0, 0).is_debug_or_pmu()); // CNTFRQ_EL0
        assert!(!r(3, 0, 12, 11, 5).is_debug_or_pmu()); // ICC_SGI1R_EL1
        assert!(!r(3, 0, 1, 0, 1).is_debug_or_pmu()); // ACTLR_EL1
        assert!(!r(3, 1, 15, 2, 0).is_debug_or_pmu()); // CPUACTLR_EL1 (impdef)
        assert!(!r(1, 0, 7, 6, 2).is_debug_or_pmu()); // DC ISW
    }
}
