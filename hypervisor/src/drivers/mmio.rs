//! Volatile access to device registers at fixed physical addresses.
//!
//! The hypervisor's identity map makes physical == virtual at EL2, so a
//! device register is reached at its physical address.

use septum_core::addr::PhysAddr;

/// A window of device registers.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    base: PhysAddr,
}

impl Mmio {
    /// # Safety
    /// `base` must be a device mapped as device memory in the EL2 identity
    /// map that no other code accesses in a conflicting way.
    pub const unsafe fn new(base: PhysAddr) -> Self {
        Mmio { base }
    }

    pub fn base(&self) -> PhysAddr {
        self.base
    }

    /// The register's address. Wrapping, not checked: `base` is a device
    /// window below 2^48 and every `off` is a register offset of that
    /// device (a constant, or an index masked to the register file), so
    /// the sum cannot overflow; the release build's overflow check would
    /// add two instructions to every register access on the exit paths.
    #[inline(always)]
    fn at(&self, off: usize) -> usize {
        (self.base.raw() as usize).wrapping_add(off)
    }

    #[inline(always)]
    pub fn read32(&self, off: usize) -> u32 {
        // SAFETY: per `new`, base + off is a device register of this device.
        unsafe { core::ptr::read_volatile(self.at(off) as *const u32) }
    }

    #[inline(always)]
    pub fn write32(&self, off: usize, v: u32) {
        // SAFETY: per `new`, base + off is a device register of this device.
        unsafe { core::ptr::write_volatile(self.at(off) as *mut u32, v) }
    }

    #[inline(always)]
    pub fn read64(&self, off: usize) -> u64 {
        // SAFETY: per `new`, base + off is a 64-bit device register.
        unsafe { core::ptr::read_volatile(self.at(off) as *const u64) }
    }

    #[inline(always)]
    pub fn write64(&self, off: usize, v: u64) {
        // SAFETY: per `new`, base + off is a 64-bit device register.
        unsafe { core::ptr::write_volatile(self.at(off) as *mut u64, v) }
    }

    #[inline(always)]
    pub fn write8(&self, off: usize, v: u8) {
        // SAFETY: per `new`, base + off is a byte-accessible device register.
        unsafe { core::ptr::write_volatile(self.at(off) as *mut u8, v) }
    }
}
