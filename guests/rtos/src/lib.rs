//! septum-rtos: the critical partition's RTOS.
//!
//! This library holds the hardware-independent part of the RTOS so it can be
//! unit-tested on the host: scheduler bookkeeping, jitter statistics, the
//! infusion-pump model and its PI controller, the supervisor's checks, the
//! status-line format, the GIC redistributor walk, the GICv2 register values
//! and the choice of platform (GIC and console addresses, with the small
//! device-tree reader it uses). The bare-metal binary (`src/main.rs`) adds
//! boot code, MMU, exception vectors, GIC, timer and UART on top.
#![cfg_attr(not(test), no_std)]

pub mod fdt;
pub mod gicr;
pub mod gicv2;
pub mod hist;
pub mod infusion;
pub mod pi;
pub mod platform;
pub mod prng;
pub mod pump;
pub mod requests;
pub mod sched;
pub mod stats;
pub mod status;
pub mod time;

/// Version printed in the first boot line.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
