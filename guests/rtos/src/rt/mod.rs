//! Bare-metal runtime: everything that touches the hardware.
//!
//! Single core by construction: the image runs on the boot CPU only (the
//! partition has one vCPU; natively, secondaries stay parked by PSCI), which
//! is what makes the interrupt-masking critical sections in `sync` sufficient.

#[cfg(feature = "bench")]
mod bench;
mod board;
mod boot;
pub mod console;
pub mod cpu;
mod exceptions;
pub mod gic;
mod hyp;
pub mod kernel;
pub mod mmio;
mod requests;
pub mod sync;
mod tasks;
mod telemetry;
pub mod timer;
pub mod uart;

use septum_rtos::platform::{self, Gic};
use septum_rtos::time::Clock;
use septum_rtos::VERSION;

/// Called from `boot` with the MMU, caches and FP on, the stack set up and
/// .bss zeroed. `entry_el` is the exception level the image was entered at,
/// `boot_arg` the x0 it was entered with (0 or a device tree).
#[no_mangle]
extern "C" fn rtos_main(entry_el: u64, boot_arg: u64) -> ! {
    // The counter frequency is read once; every time conversion uses it.
    let hz = timer::frequency();
    let clock = Clock::new(hz);
    let under_hypervisor = hyp::detect(entry_el);
    let platform = board::detect(under_hypervisor, boot_arg);
    console::init(platform.map_or(platform::VIRT_UART, |p| p.uart), clock);
    crate::println!("rtos: septum-rtos {VERSION} starting (EL{entry_el}, cntfrq={hz})");
    if entry_el == 2 {
        crate::println!("rtos: entered at EL2, dropped to EL1");
    }
    let platform = match platform {
        Ok(p) => p,
        Err(e) => {
            crate::println!("rtos: platform: {e:?}");
            fatal("no usable interrupt controller address")
        }
    };
    hyp::init();
    hyp::report_measurements();
    telemetry::init();
    requests::init();
    #[cfg(feature = "bench")]
    bench::exit_costs(under_hypervisor, platform.gic);
    let Some(clock) = clock else {
        fatal("CNTFRQ_EL0 is 0")
    };
    timer::init(clock);
    match gic::init(
        platform.gic,
        under_hypervisor,
        timer::VIRTUAL_TIMER_INTID,
        gic::TIMER_PRIORITY,
    ) {
        Ok(gic::Ready::V3 { redistributor }) => crate::println!(
            "rtos: gic: redistributor {:#x} (mpidr {:#x})",
            redistributor,
            cpu::mpidr()
        ),
        Ok(gic::Ready::V2 { non_secure_view }) => {
            if let Gic::V2 { gicd, gicc } = platform.gic {
                crate::println!(
                    "rtos: gic: GICv2 distributor {gicd:#x} cpu interface {gicc:#x} ({}{})",
                    platform.source.describe(),
                    if non_secure_view {
                        ", non-secure view"
                    } else {
                        ""
                    }
                );
            }
        }
        Err(e) => {
            crate::println!("rtos: gic: {e:?}");
            fatal("interrupt controller unusable")
        }
    }
    kernel::start(clock)
}

/// Stops this partition for good: everything masked, timer off, wfi forever.
pub fn halt() -> ! {
    cpu::mask_all();
    timer::disarm();
    gic::mask_all_priorities();
    loop {
        cpu::wfi();
    }
}

pub fn fatal(why: &str) -> ! {
    crate::println!("rtos: FATAL: {why}");
    halt()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    cpu::mask_all();
    crate::println!("rtos: panic: {info}");
    halt()
}
