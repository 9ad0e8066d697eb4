//! The interface between Septum and the software it runs, in one place:
//! the hypervisor (`septum-core`) and every guest built here (the RTOS,
//! pairbench, the intruder) take their function IDs and return codes from
//! this crate, so a number cannot drift between a caller and its answer.
//!
//! Everything a guest can call goes through the Arm SMC Calling Convention
//! (SMCCC) on `HVC #0`: x0 holds a function ID, x1-x3 the arguments, x0-x1
//! the results. An ID's bits say what it is: bit 31 a fast call, bit 30 the
//! 64-bit convention, bits 29:24 the owning entity (0 the architecture, 4
//! standard secure services such as PSCI, 6 vendor-specific hypervisor
//! services: Septum's own calls). [`smccc`] decodes them; the tests check
//! every ID here against its entity.
//!
//! No dependencies, no `unsafe`, no allocation: it builds on the host (and
//! is tested there) and on both bare-metal targets.

#![no_std]
#![forbid(unsafe_code)]

pub mod channel;
pub mod hypercall;
pub mod psci;
pub mod smccc;
