//! Septum's hardware-independent logic.
//!
//! Everything here is plain Rust that builds for `aarch64-unknown-none` (inside
//! the hypervisor) and for the host (where `cargo test` exercises it). Nothing
//! in this crate touches hardware: the hypervisor's `arch` module feeds it
//! register values and applies the decisions it returns.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub use septum_abi as abi;
pub mod addr;
pub mod config;
pub mod console;
pub mod doorbell;
pub mod el2map;
pub mod emu;
pub mod esr;
pub mod fault;
pub mod gpio;
pub mod hypercall;
pub mod inject;
pub mod measure;
pub mod pgtable;
pub mod psci;
pub mod system;
pub mod vgic;
pub mod vuart;
pub mod watchdog;

/// The device-tree reader (crate `septum-fdt`, which the RTOS uses too).
pub use septum_fdt as fdt;
