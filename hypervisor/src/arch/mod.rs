//! Architecture glue. Only AArch64 is supported; the module boundary keeps
//! the hardware-specific code small and in one place.

pub mod aarch64;
