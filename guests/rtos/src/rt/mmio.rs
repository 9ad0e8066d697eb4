//! MMIO accessors.
//!
//! Every device register access in the RTOS goes through these functions.
//! Under the hypervisor the GIC distributor/redistributors and the PL011 are
//! emulated by trapping stage-2 faults; the hypervisor can only emulate an
//! access whose ESR_EL2 syndrome is valid (ISV = 1), which the architecture
//! provides only for single-register loads/stores without writeback. The
//! compiler is free to merge or split ordinary (even volatile) accesses into
//! ldp/stp or use pre/post-indexed forms, so the instructions are fixed here
//! in inline assembly: one `ldr`/`str` with a plain base register.

use core::arch::asm;

/// A device register block mapped Device-nGnRE by the boot identity map.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    base: usize,
    size: usize,
}

impl Mmio {
    /// # Safety
    /// `[base, base + size)` must be device registers inside the 0..1 GiB
    /// device mapping, owned by this code, and accessing them with 32-bit
    /// (and, where used, 64-bit) reads and writes must be harmless apart
    /// from the device's documented effects.
    pub const unsafe fn new(base: usize, size: usize) -> Self {
        Self { base, size }
    }

    pub const fn base(&self) -> usize {
        self.base
    }

    /// Address of the register at `off`; offsets are constants in this code,
    /// so a bad one is a programming error caught before touching the bus.
    fn addr(&self, off: usize, width: usize) -> usize {
        assert!(
            off.is_multiple_of(width) && off.checked_add(width).is_some_and(|e| e <= self.size),
            "bad MMIO offset"
        );
        self.base + off
    }

    #[inline]
    pub fn read32(&self, off: usize) -> u32 {
        let a = self.addr(off, 4);
        let v: u32;
        // SAFETY: `a` is an aligned register inside the region that `new`'s
        // contract declares mapped and accessible.
        unsafe {
            asm!("ldr {v:w}, [{a}]", a = in(reg) a, v = out(reg) v, options(nostack, preserves_flags))
        };
        v
    }

    #[inline]
    pub fn write32(&self, off: usize, v: u32) {
        let a = self.addr(off, 4);
        // SAFETY: as for `read32`.
        unsafe {
            asm!("str {v:w}, [{a}]", a = in(reg) a, v = in(reg) v, options(nostack, preserves_flags))
        };
    }

    #[inline]
    pub fn read64(&self, off: usize) -> u64 {
        let a = self.addr(off, 8);
        let v: u64;
        // SAFETY: as for `read32`; used only for 64-bit registers.
        unsafe {
            asm!("ldr {v}, [{a}]", a = in(reg) a, v = out(reg) v, options(nostack, preserves_flags))
        };
        v
    }
}
