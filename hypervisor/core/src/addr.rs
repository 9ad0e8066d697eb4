//! Typed addresses.
//!
//! A hypervisor juggles three address spaces; mixing them up is a classic
//! isolation bug. Each gets its own type so that the compiler keeps them apart
//! where they cross module boundaries.

use core::fmt;

macro_rules! addr_type {
    ($(#[$m:meta])* $name:ident, $tag:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// Wraps a raw address.
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }
            /// The raw value.
            pub const fn raw(self) -> u64 {
                self.0
            }
            /// `self + off`, or `None` on overflow.
            pub const fn checked_add(self, off: u64) -> Option<Self> {
                match self.0.checked_add(off) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
            /// `self + off`; the caller has already checked the range.
            pub const fn add(self, off: u64) -> Self {
                Self(self.0 + off)
            }
            /// Whether the address is a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }
            /// Rounds down to a multiple of `align` (a power of two).
            pub const fn align_down(self, align: u64) -> Self {
                Self(self.0 & !(align - 1))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($tag, ":{:#x}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

addr_type!(
    /// A host physical address (what the hypervisor's stage-1 maps and stage-2 outputs).
    PhysAddr,
    "PA"
);
addr_type!(
    /// A guest-physical (intermediate physical) address: what a partition sees as physical.
    GuestPhysAddr,
    "IPA"
);
addr_type!(
    /// A virtual address in the hypervisor's own EL2 translation regime.
    VirtAddr,
    "VA"
);

/// A half-open range `[start, start + size)` of addresses of one kind.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Range<A> {
    pub start: A,
    pub size: u64,
}

macro_rules! range_impl {
    ($a:ident) => {
        impl Range<$a> {
            /// A range; `size` may be zero (an empty range contains nothing).
            pub const fn new(start: $a, size: u64) -> Self {
                Self { start, size }
            }
            /// One past the last address, or `None` if that would overflow.
            pub const fn end(&self) -> Option<$a> {
                self.start.checked_add(self.size)
            }
            /// Whether `a` lies inside the range.
            pub const fn contains(&self, a: $a) -> bool {
                a.0 >= self.start.0 && a.0 - self.start.0 < self.size
            }
            /// Whether `[a, a + len)` lies entirely inside the range (`len` > 0).
            pub const fn contains_span(&self, a: $a, len: u64) -> bool {
                if len == 0 || !self.contains(a) {
                    return false;
                }
                // a >= start, so the subtraction cannot underflow.
                let off = a.0 - self.start.0;
                match off.checked_add(len) {
                    Some(e) => e <= self.size,
                    None => false,
                }
            }
            /// Whether two ranges share at least one address.
            pub const fn overlaps(&self, other: &Self) -> bool {
                if self.size == 0 || other.size == 0 {
                    return false;
                }
                // Compare as u128 so that ranges ending at 2^64 are handled.
                let (a0, a1) = (
                    self.start.0 as u128,
                    self.start.0 as u128 + self.size as u128,
                );
                let (b0, b1) = (
                    other.start.0 as u128,
                    other.start.0 as u128 + other.size as u128,
                );
                a0 < b1 && b0 < a1
            }
        }
    };
}
range_impl!(PhysAddr);
range_impl!(GuestPhysAddr);
range_impl!(VirtAddr);

pub type PhysRange = Range<PhysAddr>;
pub type GuestRange = Range<GuestPhysAddr>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_and_span() {
        let r = GuestRange::new(GuestPhysAddr(0x1000), 0x1000);
        assert!(r.contains(GuestPhysAddr(0x1000)));
        assert!(r.contains(GuestPhysAddr(0x1fff)));
        assert!(!r.contains(GuestPhysAddr(0x2000)));
        assert!(!r.contains(GuestPhysAddr(0xfff)));
        assert!(r.contains_span(GuestPhysAddr(0x1ffc), 4));
        assert!(!r.contains_span(GuestPhysAddr(0x1ffd), 4));
        assert!(!r.contains_span(GuestPhysAddr(0x1000), 0));
        let top = GuestRange::new(GuestPhysAddr(u64::MAX - 0xfff), 0x1000);
        assert!(top.contains_span(GuestPhysAddr(u64::MAX - 3), 4));
        assert!(!top.contains_span(GuestPhysAddr(u64::MAX - 3), 5));
    }

    #[test]
    fn overlap_edges() {
        let a = PhysRange::new(PhysAddr(0x1000), 0x1000);
        assert!(!a.overlaps(&PhysRange::new(PhysAddr(0x2000), 0x1000)));
        assert!(a.overlaps(&PhysRange::new(PhysAddr(0x1fff), 1)));
        assert!(!a.overlaps(&PhysRange::new(PhysAddr(0x1500), 0)));
        let top = PhysRange::new(PhysAddr(u64::MAX - 0xfff), 0x1000);
        assert!(top.overlaps(&PhysRange::new(PhysAddr(u64::MAX), 1)));
    }

    #[test]
    fn alignment() {
        assert!(PhysAddr(0x20_0000).is_aligned(0x20_0000));
        assert!(!PhysAddr(0x20_1000).is_aligned(0x20_0000));
        assert_eq!(PhysAddr(0x20_1234).align_down(0x1000), PhysAddr(0x20_1000));
    }
}
