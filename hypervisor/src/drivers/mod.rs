//! Drivers for the few devices the hypervisor itself uses.

pub mod gic;
pub mod gicd;
pub mod gicv2;
pub mod gicv3;
pub mod gpio;
pub mod mmio;
pub mod uart;
