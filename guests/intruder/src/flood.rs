//! The `flood` build: the intruder on every vCPU of its partition, each
//! trapping into the hypervisor as fast as it can with something that makes
//! the hypervisor write an event line (qemu/tests/console.rs): vCPU 0 reads
//! memory outside its partition, vCPU 1 cleans the data cache by set/way
//! (`DC CISW`, trapped and done by the hypervisor), vCPU 2 reads an
//! IMPLEMENTATION DEFINED system register. The hypervisor injects an abort
//! or undefined-instruction exception each time (policy `inject-abort`);
//! the handler skips the instruction and the loop goes on, silently: the
//! flood is the hypervisor's lines alone.

use core::arch::asm;

use crate::console::{halt, put_dec, puts};

/// Outside the partition's RAM.
const FOREIGN_RAM: u64 = 0x4800_0000;
const PSCI_CPU_ON_64: u64 = 0xc400_0003;
/// vCPUs the flood runs on (the partition's cores).
const VCPUS: u64 = 3;

fn cpu_on(target: u64, entry: u64, ctx: u64) -> i64 {
    let mut r = PSCI_CPU_ON_64;
    // SAFETY: an SMCCC call to the hypervisor's PSCI; starts our own vCPU
    // `target` at our own code.
    unsafe {
        asm!("hvc #0", inout("x0") r, in("x1") target, in("x2") entry, in("x3") ctx,
             clobber_abi("C"), options(nostack))
    };
    r as i64
}

#[no_mangle]
extern "C" fn guest_main(vcpu: u64) -> ! {
    if vcpu == 0 {
        puts("intruder: flood on ");
        put_dec(VCPUS);
        puts(" vCPUs\n");
        for v in 1..VCPUS {
            if cpu_on(v, septum_guest_rt::secondary_entry(), v) != 0 {
                puts("intruder: CPU_ON failed\n");
            }
        }
    }
    loop {
        trap(vcpu);
        // About 50 µs between traps: 20,000 traps a second on each vCPU,
        // each an event line the console could not send in 10 ms. Without
        // a pause QEMU itself (each trap costs it far more host time than
        // the instructions do) would take an hour per guest minute.
        for _ in 0..PAUSE {
            core::hint::spin_loop();
        }
    }
}

/// Spin iterations between traps.
const PAUSE: u32 = 20_000;

/// One trap of vCPU `vcpu`'s kind.
#[inline(always)]
fn trap(vcpu: u64) {
    match vcpu {
        0 => {
            // SAFETY: a deliberate read outside the partition; the injected
            // abort is handled by `guest_on_sync`, which skips it.
            unsafe { asm!("ldr x0, [x1]", in("x1") FOREIGN_RAM, out("x0") _, clobber_abi("C")) }
        }
        1 => {
            // SAFETY: a deliberate set/way clean (trapped, refused with an
            // undefined-instruction exception, skipped as above).
            unsafe { asm!("dc cisw, {}", in(reg) 0u64, clobber_abi("C")) }
        }
        _ => {
            // SAFETY: a deliberate read of an IMPLEMENTATION DEFINED
            // register (trapped, refused, skipped as above).
            unsafe { asm!("mrs x0, s3_1_c15_c2_1", out("x0") _, clobber_abi("C")) }
        }
    }
}

/// Every exception here is the outcome of a trap in the loop: skip the
/// (4-byte) instruction. Nothing is written: a store near the code would
/// make QEMU retranslate it on every trap (its self-modifying-code check
/// works on 4 KiB pages), which measures QEMU, not the hypervisor.
#[no_mangle]
extern "C" fn guest_on_sync(_esr: u64, _far: u64, elr: u64) -> u64 {
    elr.wrapping_add(4)
}

#[no_mangle]
extern "C" fn guest_on_irq() {}

#[no_mangle]
extern "C" fn guest_on_unexpected(_esr: u64, _far: u64, _elr: u64) -> ! {
    halt("intruder: unexpected exception\n")
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    halt("intruder: panic\n")
}
