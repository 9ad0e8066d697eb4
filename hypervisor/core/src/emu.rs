//! A partition's emulated devices by guest address: the table every trapped
//! MMIO access is dispatched through, once (docs/architecture.md, "Trap
//! policy").
//!
//! Built when the partition is built, from its configuration: the virtual
//! GIC's distributor (GICv3 or GICv2 layout) and redistributors, its
//! emulated UART, its watchdog and its doorbells. Lookups return the device and the offset
//! inside its frame; an address in no range is not the partition's device
//! (the fault policy decides). Ranges never overlap (`EmuTable::add`
//! refuses one that would), so the answer does not depend on order.

use crate::addr::{GuestPhysAddr, GuestRange};

/// An emulated device kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// GICv3 distributor (64 KiB).
    GicdV3,
    /// GICv2 distributor (4 KiB), which also holds the banked SGI/PPI state.
    GicdV2,
    /// GICv3 redistributors, one frame of `stride` bytes per vCPU.
    Gicr { stride: u64 },
    /// The emulated UART.
    Uart,
    /// The SBSA generic watchdog (control and refresh frames).
    Watchdog,
    /// The PL061 of the doorbell of channel end `end` (an index into the
    /// partition's `channels`).
    Doorbell { end: usize },
}

/// Where an access landed: the device, and for a redistributor the vCPU
/// whose frame it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    pub device: Device,
    /// Offset in the device's frame (in the vCPU's frame for `Gicr`).
    pub offset: u64,
    /// The redistributor's vCPU (0 for the other devices).
    pub vcpu: usize,
}

/// Most emulated ranges a partition has.
pub const MAX_RANGES: usize = 4 + crate::config::MAX_CHANNEL_ENDS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmuError {
    Full,
    Empty,
    Overlap,
}

#[derive(Clone, Debug)]
pub struct EmuTable {
    ranges: [(GuestRange, Device); MAX_RANGES],
    len: usize,
}

impl Default for EmuTable {
    fn default() -> Self {
        Self::new()
    }
}

impl EmuTable {
    pub const fn new() -> Self {
        EmuTable {
            ranges: [(GuestRange::new(GuestPhysAddr::new(0), 0), Device::Uart); MAX_RANGES],
            len: 0,
        }
    }

    /// Adds `device` at `range`; refuses an empty range, a full table, or
    /// a range that overlaps one already there.
    pub fn add(&mut self, range: GuestRange, device: Device) -> Result<(), EmuError> {
        if range.size == 0 {
            return Err(EmuError::Empty);
        }
        if self.ranges[..self.len]
            .iter()
            .any(|(r, _)| r.overlaps(&range))
        {
            return Err(EmuError::Overlap);
        }
        let slot = self.ranges.get_mut(self.len).ok_or(EmuError::Full)?;
        *slot = (range, device);
        self.len += 1;
        Ok(())
    }

    /// The device at `ipa`, if any.
    #[inline]
    pub fn lookup(&self, ipa: GuestPhysAddr) -> Option<Hit> {
        let (range, device) = self.ranges[..self.len]
            .iter()
            .find(|(r, _)| r.contains(ipa))?;
        let rel = ipa.raw() - range.start.raw();
        Some(match *device {
            Device::Gicr { stride } if stride > 0 => Hit {
                device: *device,
                offset: rel % stride,
                vcpu: (rel / stride) as usize,
            },
            d => Hit {
                device: d,
                offset: rel,
                vcpu: 0,
            },
        })
    }

    /// The ranges, in the order added.
    pub fn ranges(&self) -> &[(GuestRange, Device)] {
        &self.ranges[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u64, size: u64) -> GuestRange {
        GuestRange::new(GuestPhysAddr::new(start), size)
    }

    fn virt() -> EmuTable {
        let mut t = EmuTable::new();
        t.add(range(0x0800_0000, 0x1_0000), Device::GicdV3).unwrap();
        t.add(
            range(0x080a_0000, 3 * 0x2_0000),
            Device::Gicr { stride: 0x2_0000 },
        )
        .unwrap();
        t.add(range(0x0904_0000, 0x1000), Device::Uart).unwrap();
        t.add(range(0x0903_0000, 0x2000), Device::Watchdog).unwrap();
        t
    }

    #[test]
    fn every_range_is_found_with_its_offset_and_edges_are_exact() {
        let t = virt();
        let at = |a: u64| t.lookup(GuestPhysAddr::new(a));
        assert_eq!(
            at(0x0800_0004),
            Some(Hit {
                device: Device::GicdV3,
                offset: 4,
                vcpu: 0
            })
        );
        assert_eq!(at(0x0800_ffff).map(|h| h.offset), Some(0xffff));
        assert_eq!(at(0x0801_0000), None);
        assert_eq!(at(0x07ff_ffff), None);
        // Third redistributor, SGI_base + 0x200.
        assert_eq!(
            at(0x080a_0000 + 2 * 0x2_0000 + 0x1_0200),
            Some(Hit {
                device: Device::Gicr { stride: 0x2_0000 },
                offset: 0x1_0200,
                vcpu: 2
            })
        );
        assert_eq!(at(0x080a_0000 + 3 * 0x2_0000), None);
        assert_eq!(
            at(0x0904_0018).map(|h| (h.device, h.offset)),
            Some((Device::Uart, 0x18))
        );
        assert_eq!(
            at(0x0903_1000).map(|h| (h.device, h.offset)),
            Some((Device::Watchdog, 0x1000))
        );
        assert_eq!(at(0x0903_2000), None);
        assert_eq!(at(0), None);
        assert_eq!(at(u64::MAX), None);
    }

    #[test]
    fn overlapping_empty_and_too_many_ranges_are_refused() {
        let mut t = virt();
        assert_eq!(
            t.add(range(0x0800_8000, 0x1000), Device::Uart),
            Err(EmuError::Overlap)
        );
        assert_eq!(
            t.add(range(0x0904_0fff, 2), Device::Uart),
            Err(EmuError::Overlap)
        );
        assert_eq!(
            t.add(range(0x1000_0000, 0), Device::Uart),
            Err(EmuError::Empty)
        );
        // Fill the table: a doorbell frame for each channel end.
        let mut at = 0x1000_0000;
        while t.ranges().len() < MAX_RANGES {
            t.add(range(at, 0x1000), Device::Doorbell { end: 0 })
                .unwrap();
            at += 0x1000;
        }
        assert_eq!(t.add(range(at, 0x1000), Device::Uart), Err(EmuError::Full));
        assert_eq!(t.ranges().len(), MAX_RANGES);
        let mut e = EmuTable::new();
        assert_eq!(e.lookup(GuestPhysAddr::new(0x0800_0000)), None);
        e.add(range(0x0800_0000, 0x1000), Device::GicdV2).unwrap();
        assert_eq!(
            e.lookup(GuestPhysAddr::new(0x0800_0f00)).map(|h| h.device),
            Some(Device::GicdV2)
        );
    }
}
