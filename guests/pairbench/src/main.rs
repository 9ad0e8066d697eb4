//! septum-pairbench: the exit-cost benchmarks that need two vCPUs or a
//! device (scripts/bench.sh, docs/performance.md figure 3):
//! - SGI round trip: vCPU 0 sends SGI 1 to vCPU 1, whose handler answers
//!   with SGI 2; ticks from before the send to the first instruction of
//!   vCPU 0's handler for the answer;
//! - timer interrupt: from the virtual timer's compare value to the first
//!   instruction of the handler;
//! - no-op hypercall (HVC PSCI_VERSION) and trapped GICD_TYPER read: mean
//!   cost of 1,000;
//! - passthrough device interrupt: vCPU 0 writes a byte to UART1, which
//!   raises its transmit interrupt at once; ticks from before the write to
//!   the first instruction of the handler.
//!
//! The same image runs natively (QEMU `virt`, EL1, -smp 2) and in a
//! two-vCPU partition that owns UART1 (qemu/configs/virt-pairbench.toml).
//! Each figure is `WARMUP` unrecorded rounds and `SAMPLES` recorded ones,
//! printed as `bench: <name> n= min= p50= p99= max=`; then `bench: done`
//! and PSCI SYSTEM_OFF.
#![cfg_attr(target_os = "none", no_std, no_main)]

// Entry of both vCPUs, MMU, stacks and exception vectors (the handlers are
// in run.rs).
#[cfg(target_os = "none")]
use septum_guest_rt as _;
#[cfg(target_os = "none")]
mod hw;
#[cfg(target_os = "none")]
mod run;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("septum-pairbench runs only on aarch64-unknown-none");
}
