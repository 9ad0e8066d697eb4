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
mod drivers;
mod dtb;
mod exit;
mod heap;
mod hypercall;
mod irq;
mod measure;
mod partition;
mod percpu;
mod psci;
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

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::emergency(format_args!(
        "\n[septum] PANIC on core {}: {info}\n[septum] core {} halted\n",
        percpu::core(),
        percpu::core()
    ));
    loop {
        arch::aarch64::asm::wfi();
    }
}
