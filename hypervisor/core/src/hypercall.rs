//! Septum's own hypercalls, in the SMCCC range for vendor-specific
//! hypervisor services (SMC64 fast calls, owning entity 6: function IDs
//! `0xC600_0000..=0xC600_FFFF`, defined in `septum_abi::hypercall`), and
//! the checks on the guest buffers they name. PSCI and the SMCCC
//! architecture calls are separate (`psci`). Documented in
//! docs/measured-boot.md.

use crate::addr::{GuestPhysAddr, PhysAddr};
use crate::config::{ChannelEnd, MemRegion};

// The function IDs and return codes are the guests' ABI too.
pub use septum_abi::hypercall::{
    is_vendor_hyp, CHANNEL_INFO, CHANNEL_NOTIFY, HEARTBEAT, INVALID_PARAMETER, LIMITED, MAX_COPY,
    MLOG_READ, NOT_SUPPORTED, VENDOR_HYP_FIRST, VENDOR_HYP_LAST,
};

/// Where a guest buffer `[ipa, ipa + len)` is in physical memory, if it lies
/// entirely in one *writable* memory region of the partition. Anything else
/// (devices, unmapped space, read-only memory, a range that wraps or spans
/// two regions) is refused.
pub fn guest_buffer(regions: &[MemRegion], ipa: u64, len: u64) -> Option<PhysAddr> {
    translate(regions, GuestPhysAddr::new(ipa), len, Need::GuestWritable)
}

/// CHANNEL_INFO's answer: the caller's end of the channel whose name packs
/// to `name` (`septum_abi::channel::pack_name`), as x0..x3; INVALID_PARAMETER
/// when there is none. Every end is compared (the configuration bounds how
/// many a partition has), so the cost does not depend on the name asked.
pub fn channel_info(ends: &[ChannelEnd], name: [u64; 2]) -> [u64; 4] {
    match find_end(ends, name).map(|i| &ends[i]) {
        Some(e) => [0, e.ipa.raw(), e.size, e.role as u64],
        None => [INVALID_PARAMETER as u64, 0, 0, 0],
    }
}

/// The index of the end among `ends` whose name packs to `name`
/// (CHANNEL_INFO, CHANNEL_NOTIFY). Every end is compared, so the cost does
/// not depend on the name asked.
pub fn find_end(ends: &[ChannelEnd], name: [u64; 2]) -> Option<usize> {
    let mut found = None;
    for (i, e) in ends.iter().enumerate() {
        if septum_abi::channel::pack_name(e.name) == Some(name) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

/// Whose write a translation is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// A buffer the guest named (a hypercall's): only memory the guest may
    /// write itself, so the hypervisor writes nothing the guest could not.
    GuestWritable,
    /// The loader's (images, the device tree's measurement log): any of the
    /// partition's memory regions, read-only ones included.
    Loader,
}

/// Where `[ipa, ipa + len)` is in physical memory, if it lies entirely in
/// one memory region of the partition that `need` allows. Devices,
/// unmapped space, a range that wraps or spans two regions, and an empty
/// one are refused.
pub fn translate(
    regions: &[MemRegion],
    ipa: GuestPhysAddr,
    len: u64,
    need: Need,
) -> Option<PhysAddr> {
    if len == 0 {
        return None;
    }
    ipa.raw().checked_add(len)?;
    let r = regions.iter().find(|r| {
        (need == Need::Loader || r.perms.write) && r.guest_range().contains_span(ipa, len)
    })?;
    Some(PhysAddr::new(r.pa.raw() + (ipa.raw() - r.ipa.raw())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Perms;

    const REGIONS: [MemRegion; 2] = [
        MemRegion {
            name: "ram",
            ipa: GuestPhysAddr(0x4000_0000),
            pa: PhysAddr(0x4800_0000),
            size: 0x10_0000,
            perms: Perms::RWX,
            shared: false,
        },
        MemRegion {
            name: "rom",
            ipa: GuestPhysAddr(0x5000_0000),
            pa: PhysAddr(0x5800_0000),
            size: 0x1000,
            perms: Perms::R,
            shared: false,
        },
    ];

    const ENDS: [ChannelEnd; 2] = [
        ChannelEnd {
            name: "telemetry",
            ipa: GuestPhysAddr(0x4040_0000),
            pa: PhysAddr(0x4840_0000),
            size: 0x1000,
            role: crate::config::ChannelRole::Writer,
            peer: 1,
            doorbell: None,
        },
        ChannelEnd {
            name: "requests",
            ipa: GuestPhysAddr(0x4041_0000),
            pa: PhysAddr(0x4841_0000),
            size: 0x2000,
            role: crate::config::ChannelRole::Reader,
            peer: 1,
            doorbell: None,
        },
    ];

    /// REQ-CHN-1: a partition finds its own channel ends by name, and only
    /// those.
    #[test]
    fn channel_info_finds_the_callers_ends_by_name() {
        let pack = |n| septum_abi::channel::pack_name(n).unwrap();
        assert_eq!(
            channel_info(&ENDS, pack("telemetry")),
            [0, 0x4040_0000, 0x1000, 0]
        );
        assert_eq!(
            channel_info(&ENDS, pack("requests")),
            [0, 0x4041_0000, 0x2000, 1]
        );
        let miss = [INVALID_PARAMETER as u64, 0, 0, 0];
        assert_eq!(channel_info(&ENDS, pack("telemetr")), miss);
        assert_eq!(channel_info(&ENDS, pack("telemetryy")), miss);
        assert_eq!(channel_info(&ENDS, [0, 0]), miss);
        assert_eq!(channel_info(&ENDS, [u64::MAX, u64::MAX]), miss);
        assert_eq!(channel_info(&[], pack("telemetry")), miss);
    }

    /// REQ-FLT-2: a guest buffer is accepted only inside its own writable RAM.
    #[test]
    fn buffers() {
        assert_eq!(
            guest_buffer(&REGIONS, 0x4000_1000, 0x100),
            Some(PhysAddr(0x4800_1000))
        );
        assert_eq!(
            guest_buffer(&REGIONS, 0x400f_ff00, 0x100),
            Some(PhysAddr(0x480f_ff00))
        );
        // One byte past the end, zero length, read-only, unmapped, wrapping.
        assert_eq!(guest_buffer(&REGIONS, 0x400f_ff00, 0x101), None);
        assert_eq!(guest_buffer(&REGIONS, 0x4000_0000, 0), None);
        assert_eq!(guest_buffer(&REGIONS, 0x5000_0000, 0x10), None);
        assert_eq!(guest_buffer(&REGIONS, 0x0900_0000, 0x10), None);
        assert_eq!(guest_buffer(&REGIONS, u64::MAX - 4, 0x10), None);
    }

    #[test]
    fn the_loader_may_write_read_only_regions_a_guest_buffer_may_not() {
        let rom = GuestPhysAddr(0x5000_0800);
        assert_eq!(translate(&REGIONS, rom, 0x800, Need::GuestWritable), None);
        assert_eq!(
            translate(&REGIONS, rom, 0x800, Need::Loader),
            Some(PhysAddr(0x5800_0800))
        );
        // Still one region, inside it, never empty, never wrapping.
        assert_eq!(translate(&REGIONS, rom, 0x801, Need::Loader), None);
        assert_eq!(translate(&REGIONS, rom, 0, Need::Loader), None);
        assert_eq!(
            translate(&REGIONS, GuestPhysAddr(0x0900_0000), 4, Need::Loader),
            None
        );
        assert_eq!(
            translate(&REGIONS, GuestPhysAddr(u64::MAX - 4), 0x10, Need::Loader),
            None
        );
    }

    #[test]
    fn range() {
        assert!(is_vendor_hyp(MLOG_READ));
        assert!(!is_vendor_hyp(0x8400_0000));
        assert!(!is_vendor_hyp(0xC700_0000));
    }
}
