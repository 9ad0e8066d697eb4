//! The `flood` build: the intruder on every vCPU of its partition, each
//! trapping into the hypervisor as fast as it can with something that makes
//! the hypervisor write an event line (qemu/tests/console.rs): vCPU 0 reads
//! memory outside its partition, vCPU 1 cleans the data cache by set/way
//! (`DC CISW`, trapped and done by the hypervisor), vCPU 2 reads an
//! IMPLEMENTATION DEFINED system register. The hypervisor injects an abort
//! or undefined-instruction exception each time (policy `inject-abort`);
//! the handler skips the instruction and the loop goes on, silently: the
//! flood is the hypervisor's lines alone.
//!
//! The `flood-irq` build traps as often with interrupt-controller work the
//! hypervisor does not refuse (scripts/bench.sh, interference): vCPU 0
//! broadcasts SGIs to the other two, vCPU 1 writes a distributor
//! register, vCPU 2 reads its redistributor's pending bits.

use core::arch::asm;

use crate::console::{halt, put_dec, puts};

/// Outside the partition's RAM.
#[cfg(not(feature = "flood-irq"))]
const FOREIGN_RAM: u64 = 0x4800_0000;
const PSCI_CPU_ON_64: u64 = septum_abi::psci::CPU_ON_64 as u64;
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
        puts(if cfg!(feature = "flood-irq") {
            "intruder: SGI and GIC MMIO flood on "
        } else {
            "intruder: flood on "
        });
        put_dec(VCPUS);
        puts(" vCPUs\n");
        for v in 1..VCPUS {
            if cpu_on(v, septum_guest_rt::secondary_entry(), v) != 0 {
                puts("intruder: CPU_ON failed\n");
            }
        }
    }
    #[cfg(feature = "flood-irq")]
    if vcpu == 0 {
        // ICC_SRE_EL1.SRE: the system-register interface, for ICC_SGI1R_EL1.
        // SAFETY: this vCPU's own (virtual) GIC CPU interface setting.
        unsafe {
            asm!("mrs {t}, icc_sre_el1", "orr {t}, {t}, #1", "msr icc_sre_el1, {t}", "isb",
                 t = out(reg) _, options(nostack))
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

/// The emulated GIC at the platform's addresses (QEMU virt).
#[cfg(feature = "flood-irq")]
const GICD_ISENABLER1: u64 = 0x0800_0104;
#[cfg(feature = "flood-irq")]
const GICR_ISPENDR0: u64 = 0x080a_0000 + 2 * 0x2_0000 + 0x1_0000 + 0x200;

/// One trap of vCPU `vcpu`'s kind (`flood-irq`): SGIs and GIC MMIO, which
/// the hypervisor emulates without an event line (nothing is refused).
#[cfg(feature = "flood-irq")]
#[inline(always)]
fn trap(vcpu: u64) {
    match vcpu {
        0 => {
            // ICC_SGI1R_EL1: INTID 3 (bits 27:24) to every other vCPU of the
            // partition (IRM, bit 40). IRQs stay masked here, so the SGIs
            // stay pending: the cost is the hypervisor's, per write.
            let sgi = (1u64 << 40) | (3 << 24);
            // SAFETY: a trapped system-register write; no memory effects here.
            unsafe { asm!("msr icc_sgi1r_el1, {}", in(reg) sgi, options(nostack)) }
        }
        1 => {
            // SAFETY: a trapped store to the emulated distributor (enable
            // SPIs 32-63: none is ours, so the write changes nothing).
            unsafe {
                asm!("str {v:w}, [{a}]", a = in(reg) GICD_ISENABLER1, v = in(reg) u64::MAX,
                     options(nostack))
            }
        }
        _ => {
            // SAFETY: a trapped load from our own emulated redistributor.
            unsafe {
                asm!("ldr {v:w}, [{a}]", a = in(reg) GICR_ISPENDR0, v = out(reg) _,
                     options(nostack))
            }
        }
    }
}

/// One trap of vCPU `vcpu`'s kind.
#[cfg(not(feature = "flood-irq"))]
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
