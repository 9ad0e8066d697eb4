//! SMC Calling Convention: the parts of a function ID, and the calls of the
//! architecture itself (owning entity 0) that Septum answers.

/// `SMCCC_VERSION`: the convention's version (Linux probes it).
pub const SMCCC_VERSION: u32 = 0x8000_0000;

/// The convention's own "not supported" (a negative 32-bit value in x0).
pub const NOT_SUPPORTED: i64 = -1;

/// Bit 31 of a function ID: a fast call (atomic, no yielding).
pub const FAST_CALL: u64 = 1 << 31;
/// Bit 30: the SMC64/HVC64 convention (64-bit arguments).
pub const CONV_64: u64 = 1 << 30;

/// Owning entities (bits 29:24).
pub const OWNER_ARCH: u8 = 0;
pub const OWNER_STANDARD_SECURE: u8 = 4;
pub const OWNER_VENDOR_HYP: u8 = 6;

/// The owning entity of function ID `fid`, or `None` if x0 is not a
/// function ID at all (bits 63:32 set, which SMCCC reserves).
pub const fn owner(fid: u64) -> Option<u8> {
    if fid >> 32 != 0 {
        return None;
    }
    Some(((fid >> 24) & 0x3f) as u8)
}

/// Whether `fid` is a fast call (every call Septum answers is).
pub const fn is_fast(fid: u64) -> bool {
    fid >> 32 == 0 && fid & FAST_CALL != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_parts_of_an_id() {
        assert_eq!(owner(u64::from(SMCCC_VERSION)), Some(OWNER_ARCH));
        assert!(is_fast(u64::from(SMCCC_VERSION)));
        assert_eq!(owner(0xC600_0010), Some(OWNER_VENDOR_HYP));
        assert_eq!(owner(0x8400_0000), Some(OWNER_STANDARD_SECURE));
        assert_eq!(owner(0xC400_0003), Some(OWNER_STANDARD_SECURE));
        assert_eq!(owner(1 << 32 | 0x8400_0000), None, "bits 63:32 reserved");
        assert!(!is_fast(0x0400_0000), "a yielding call");
        assert!(!is_fast(1 << 32 | 0x8400_0000));
    }
}
