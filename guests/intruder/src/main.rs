//! septum-intruder: a hostile EL1 guest for containment tests.
//!
//! It announces and then performs a series of accesses that its partition
//! must not be allowed to make. Each one should end in an exception injected
//! by the hypervisor (or be answered harmlessly, e.g. a denied PSCI call);
//! the guest reports what happened, skips the faulting instruction and goes
//! on, so a single run shows the outcome of every attack.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", not(feature = "flood")))]
mod attacks;
#[cfg(all(target_os = "none", feature = "flood"))]
mod flood;
// Entry, MMU, stack and exception vectors (the handlers are in attacks.rs,
// or flood.rs).
#[cfg(target_os = "none")]
use septum_guest_rt as _;
#[cfg(target_os = "none")]
mod console;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("septum-intruder runs only on aarch64-unknown-none");
}
