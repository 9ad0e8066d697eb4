//! Septum's own hypercalls: SMCCC fast calls of the vendor-specific
//! hypervisor service (owning entity 6), function IDs
//! `0xC600_0000..=0xC600_FFFF`. What each does for which partition is in
//! docs/measured-boot.md (MLOG_READ), docs/fault-containment.md
//! (HEARTBEAT) and docs/channels.md (CHANNEL_INFO, CHANNEL_NOTIFY).

/// First and last function ID of the range.
pub const VENDOR_HYP_FIRST: u64 = 0xC600_0000;
pub const VENDOR_HYP_LAST: u64 = 0xC600_FFFF;

/// `MLOG_READ(buffer_ipa, buffer_len, offset)`: copies the measurement log's
/// bytes from `offset` into the caller's buffer. Returns x0 = bytes copied
/// (or a negative error), x1 = the log's total size.
pub const MLOG_READ: u64 = 0xC600_0010;

/// `HEARTBEAT()`: the critical partition is alive (its watchdog, if the
/// configuration gives it one, is pushed forward). Returns 0, or
/// NOT_SUPPORTED for a partition without a heartbeat watchdog.
pub const HEARTBEAT: u64 = 0xC600_0020;

/// `CHANNEL_INFO(name_lo, name_hi)`: finds one of the caller's channels by
/// name (packed by `channel::pack_name`). Returns x0 = 0, x1 = the
/// channel's IPA in the caller, x2 = its size in bytes, x3 = the caller's
/// `channel::Role`; or x0 = INVALID_PARAMETER when the caller has no
/// channel of that name. Constant time in the caller's channel count,
/// which the configuration bounds (docs/channels.md).
pub const CHANNEL_INFO: u64 = 0xC600_0030;

/// `CHANNEL_NOTIFY(name_lo, name_hi)`: rings the doorbell of the channel
/// the caller writes (named as for CHANNEL_INFO): the reader sees its
/// doorbell line pulse. Returns x0 = 0 when it rang; LIMITED when the
/// channel's rate limit (from the configuration) dropped this ring (the
/// reader finds the data at its next ring or poll); INVALID_PARAMETER when
/// the caller writes no channel of that name or the channel has no
/// doorbell. Never waits and never touches the reader's state but one
/// atomic bit (docs/channels.md, "Doorbell").
pub const CHANNEL_NOTIFY: u64 = 0xC600_0031;

/// Return codes (SMCCC's, negative in x0).
pub const NOT_SUPPORTED: i64 = crate::smccc::NOT_SUPPORTED;
pub const INVALID_PARAMETER: i64 = -2;
/// A rate limit refused the call; nothing happened.
pub const LIMITED: i64 = -3;

/// The largest buffer one MLOG_READ fills (a page); a bigger log is read
/// in pieces.
pub const MAX_COPY: u64 = 4096;

/// Every function ID above.
pub const ALL: [u64; 4] = [MLOG_READ, HEARTBEAT, CHANNEL_INFO, CHANNEL_NOTIFY];

/// Whether `fid` is in Septum's range (every other ID is PSCI, SMCCC or
/// refused).
pub const fn is_vendor_hyp(fid: u64) -> bool {
    fid >= VENDOR_HYP_FIRST && fid <= VENDOR_HYP_LAST
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smccc;

    #[test]
    fn the_range_is_the_vendor_hypervisor_service_s() {
        assert_eq!(
            smccc::owner(VENDOR_HYP_FIRST),
            Some(smccc::OWNER_VENDOR_HYP)
        );
        assert_eq!(smccc::owner(VENDOR_HYP_LAST), Some(smccc::OWNER_VENDOR_HYP));
        assert!(smccc::is_fast(VENDOR_HYP_FIRST) && VENDOR_HYP_FIRST & smccc::CONV_64 != 0);
        assert_eq!(VENDOR_HYP_LAST - VENDOR_HYP_FIRST, 0xffff);
        assert!(!is_vendor_hyp(VENDOR_HYP_FIRST - 1));
        assert!(!is_vendor_hyp(VENDOR_HYP_LAST + 1));
        assert!(!is_vendor_hyp(u64::from(crate::psci::PSCI_VERSION)));
    }

    #[test]
    fn every_call_is_in_the_range_and_distinct() {
        for (i, &f) in ALL.iter().enumerate() {
            assert!(is_vendor_hyp(f), "{f:#x}");
            assert!(!ALL[..i].contains(&f), "{f:#x} twice");
        }
    }
}
