//! Septum's own hypercalls, in the SMCCC range for vendor-specific
//! hypervisor services (SMC64 fast calls, owning entity 6: function IDs
//! `0xC600_0000..=0xC600_FFFF`, defined in `septum_abi::hypercall`), and
//! the checks on the guest buffers they name. PSCI and the SMCCC
//! architecture calls are separate (`psci`). Documented in
//! docs/measured-boot.md.

use crate::addr::{GuestPhysAddr, PhysAddr};
use crate::config::MemRegion;

// The function IDs and return codes are the guests' ABI too.
pub use septum_abi::hypercall::{
    is_vendor_hyp, HEARTBEAT, INVALID_PARAMETER, MAX_COPY, MLOG_READ, NOT_SUPPORTED,
    VENDOR_HYP_FIRST, VENDOR_HYP_LAST,
};

/// Where a guest buffer `[ipa, ipa + len)` is in physical memory, if it lies
/// entirely in one *writable* memory region of the partition. Anything else
/// (devices, unmapped space, read-only memory, a range that wraps or spans
/// two regions) is refused.
pub fn guest_buffer(regions: &[MemRegion], ipa: u64, len: u64) -> Option<PhysAddr> {
    translate(regions, GuestPhysAddr::new(ipa), len, Need::GuestWritable)
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
