//! Septum: a static-partitioning hypervisor for AArch64.
//!
//! See docs/architecture.md. The hardware-independent logic lives in the
//! `septum-core` crate (host-tested); this crate is the EL2 glue.

#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod boot;
mod console;
mod doorbell;
mod drivers;
mod dtb;
mod exit;
#[cfg(feature = "fault-inject")]
mod fault_inject;
mod guest_mem;
mod heap;
mod hypercall;
mod irq;
mod lifecycle;
mod liveness;
mod measure;
mod partition;
mod percpu;
mod psci;
mod system;
mod time;
mod vcpu;
mod vgic;
mod watchdog;

/// The system configuration generated from the partition TOML by
/// `septum-config` (see scripts/build.sh).
#[allow(dead_code)]
mod config {
    include!(concat!(env!("SEPTUM_GEN_DIR"), "/config.rs"));
}

/// Rust entry of the boot core (called from `arch::aarch64::asm`).
extern "C" fn primary_main(dtb: u64, core: u64) -> ! {
    boot::primary(dtb, core)
}

/// Rust entry of the other cores.
extern "C" fn secondary_main(core: u64) -> ! {
    boot::secondary(core)
}

/// A panic is a fault in the hypervisor: the trusted base can no longer be
/// trusted, so the whole system enters the safe state (a panic while
/// entering it just halts this core).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::emergency(format_args!(
        "\n[septum] PANIC on core {}: {info}\n",
        percpu::core()
    ));
    system::enter_safe(format_args!(
        "the hypervisor panicked on core {}",
        percpu::core()
    ))
}
