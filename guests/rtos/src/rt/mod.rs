//! Bare-metal runtime: everything that touches the hardware.
//!
//! Single core by construction: the image runs on the boot CPU only (the
//! partition has one vCPU; natively, secondaries stay parked by PSCI), which
//! is what makes the interrupt-masking critical sections in `sync` sufficient.

#[cfg(feature = "bench")]
mod bench;
mod boot;
pub mod console;
pub mod cpu;
mod exceptions;
pub mod gic;
mod hyp;
pub mod kernel;
pub mod mmio;
pub mod sync;
mod tasks;
pub mod timer;
pub mod uart;

use septum_rtos::time::Clock;
use septum_rtos::VERSION;

/// Called from `boot` with the MMU, caches and FP on, the stack set up and
/// .bss zeroed. `entry_el` is the exception level the image was entered at.
#[no_mangle]
extern "C" fn rtos_main(entry_el: u64, _dtb: u64) -> ! {
    console::init();
    let hz = timer::frequency();
    crate::println!("rtos: septum-rtos {VERSION} starting (EL{entry_el}, cntfrq={hz})");
    if entry_el == 2 {
        crate::println!("rtos: entered at EL2, dropped to EL1");
    }
    hyp::init(entry_el);
    hyp::report_measurements();
    #[cfg(feature = "bench")]
    bench::exit_costs(hyp::under_hypervisor());
    let Some(clock) = Clock::new(hz) else {
        fatal("CNTFRQ_EL0 is 0")
    };
    match gic::init(timer::VIRTUAL_TIMER_INTID, gic::TIMER_PRIORITY) {
        Ok(rd) => crate::println!(
            "rtos: gic: redistributor {:#x} (mpidr {:#x})",
            rd,
            cpu::mpidr()
        ),
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
