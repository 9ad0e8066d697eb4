//! The attack sequence and the synchronous-exception handler.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::console::{halt, put_dec, put_hex, puts};

/// Outside the partition's RAM (which is at most 0x4000_0000 + 16 MiB).
const FOREIGN_RAM: u64 = 0x4800_0000;
/// IPA 0 is not mapped in any partition.
const UNMAPPED: u64 = 0x0;
/// PSCI CPU_ON (SMC64) for core 1, which belongs to another partition.
const PSCI_CPU_ON_64: u64 = septum_abi::psci::CPU_ON_64 as u64;
const OTHER_CORE_MPIDR: u64 = 1;

/// Set while an attack instruction runs: only then is skipping the faulting
/// instruction the right recovery.
static IN_ATTACK: AtomicBool = AtomicBool::new(false);
/// Exceptions caught so far (to tell whether an attack faulted).
static CAUGHT: AtomicU32 = AtomicU32::new(0);
static IN_HANDLER: AtomicBool = AtomicBool::new(false);

/// Entry on the boot vCPU (septum-guest-rt); the intruder has only one.
#[no_mangle]
extern "C" fn guest_main(_vcpu: u64) -> ! {
    puts("intruder: start\n");

    attack(1, "read 0x48000000 (outside own memory)", || {
        let v: u64;
        // SAFETY: deliberately reads memory outside the partition; the
        // resulting abort is handled by `guest_on_sync`. Clobbering the C
        // ABI makes the compiler keep nothing live in registers across it.
        unsafe {
            asm!("ldr x0, [x1]", in("x1") FOREIGN_RAM, inout("x0") 0u64 => v, clobber_abi("C"))
        };
        Some(v)
    });
    attack(2, "write to 0x0 (unmapped IPA)", || {
        // SAFETY: as above, a deliberate write to an address nobody gave us.
        unsafe { asm!("str x0, [x1]", in("x1") UNMAPPED, in("x0") 0x5eb7u64, clobber_abi("C")) };
        None
    });
    attack(3, "smc #0 (PSCI CPU_ON for core 1, not ours)", || {
        let mut x0 = PSCI_CPU_ON_64;
        // SAFETY: deliberate secure monitor call; x2 (entry point) is our
        // own image so even a successful CPU_ON would only park a core.
        unsafe {
            asm!(
                "adr x2, 1f",
                "smc #0",
                "b 2f",
                "1: wfi",
                "b 1b",
                "2:",
                inout("x0") x0,
                in("x1") OTHER_CORE_MPIDR,
                out("x2") _,
                in("x3") 0u64,
                clobber_abi("C"),
            )
        };
        Some(x0)
    });
    attack(
        4,
        "read CPUECTLR_EL1 (implementation defined, s3_1_c15_c2_1)",
        || {
            let v: u64;
            // SAFETY: deliberate read of an IMPLEMENTATION DEFINED register.
            unsafe { asm!("mrs x0, s3_1_c15_c2_1", inout("x0") 0u64 => v, clobber_abi("C")) };
            Some(v)
        },
    );
    attack(5, "read MDSCR_EL1 (debug register)", || {
        let v: u64;
        // SAFETY: deliberate read of a debug control register.
        unsafe { asm!("mrs x0, mdscr_el1", inout("x0") 0u64 => v, clobber_abi("C")) };
        Some(v)
    });
    attack(6, "read PMCR_EL0 (performance monitors)", || {
        let v: u64;
        // SAFETY: deliberate read of the PMU control register.
        unsafe { asm!("mrs x0, pmcr_el0", inout("x0") 0u64 => v, clobber_abi("C")) };
        Some(v)
    });

    puts("intruder: survived all attacks\n");
    loop {
        // SAFETY: waiting for an interrupt has no side effects.
        unsafe { asm!("wfi", options(nomem, nostack, preserves_flags)) };
    }
}

/// Announces attack `n`, runs it, and reports when it did not fault (with
/// the value it obtained, if any).
fn attack(n: u64, what: &str, f: impl FnOnce() -> Option<u64>) {
    puts("intruder: attack ");
    put_dec(n);
    puts(": ");
    puts(what);
    puts("\n");
    let before = CAUGHT.load(Ordering::Relaxed);
    IN_ATTACK.store(true, Ordering::Relaxed);
    let v = f();
    IN_ATTACK.store(false, Ordering::Relaxed);
    if CAUGHT.load(Ordering::Relaxed) == before {
        puts("intruder: attack ");
        put_dec(n);
        puts(": no exception");
        if let Some(v) = v {
            puts(" (x0=");
            put_hex(v);
            puts(")");
        }
        puts("\n");
    }
}

/// Synchronous exception at EL1: returns the address to resume at.
#[no_mangle]
extern "C" fn guest_on_sync(esr: u64, far: u64, elr: u64) -> u64 {
    if IN_HANDLER.swap(true, Ordering::Relaxed) || !IN_ATTACK.load(Ordering::Relaxed) {
        guest_on_unexpected(esr, far, elr);
    }
    puts("intruder: caught exception esr=");
    put_hex(esr);
    puts(" far=");
    put_hex(far);
    puts("\n");
    CAUGHT.store(CAUGHT.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    IN_HANDLER.store(false, Ordering::Relaxed);
    // Every attack instruction is a 4-byte A64 instruction.
    elr.wrapping_add(4)
}

/// The intruder never unmasks interrupts: one arriving is unexpected.
#[no_mangle]
extern "C" fn guest_on_irq() {
    guest_on_unexpected(0, 0, 0);
}

/// Anything that is not the outcome of an attack: report and stop.
#[no_mangle]
extern "C" fn guest_on_unexpected(esr: u64, far: u64, elr: u64) -> ! {
    puts("intruder: unexpected exception esr=");
    put_hex(esr);
    puts(" far=");
    put_hex(far);
    puts(" elr=");
    put_hex(elr);
    halt("\n")
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // The message is not printed: formatting would need core::fmt.
    halt("intruder: panic\n")
}
