//! The native reproducer for QEMU's icount collapse under a spinning vCPU
//! (docs/fault-containment.md, "QEMU and spinning guests"), built and run
//! by `scripts/repro-spin.sh`. No hypervisor: a bare-metal program at EL1
//! on QEMU `virt` (GICv3, 4 cores).
//!
//! Core 0 is the "RTOS": it sleeps in WFI on its virtual timer and prints
//! `t` on the PL011 every 10 ms of guest time. Core 1 runs the loop chosen
//! by the word QEMU's loader device writes at 0x4050_0000:
//!   0 `wfi` (idle: the reference), 1 `wfe`, 2 `yield`,
//!   3 counter polling, 4 Linux's `__delay` loop (`wfe`, then read the
//!   counter), 5 `nop` (busy: the other reference).
//! Cores 2 and 3 stay off. The number of `t`s per wall second is guest
//! time per wall second in units of 10 ms.
#![no_std]
#![no_main]

use core::arch::global_asm;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

global_asm!(
    r#"
.section .text.start
.global _start
_start:
    mrs x0, mpidr_el1
    and x0, x0, #0xff
    cbnz x0, secondary
    // PSCI CPU_ON(core 1, secondary) over HVC (virt without EL2).
    movz x0, #0x0003
    movk x0, #0xC400, lsl #16
    mov x1, #1
    adr x2, secondary
    mov x3, #0
    hvc #0
    // PL011: enabled, transmit on.
    ldr x20, =0x09000000
    mov w1, #0x301
    str w1, [x20, #0x30]
    // Distributor: affinity routing, both groups.
    ldr x1, =0x08000000
    mov w2, #0x13
    str w2, [x1]
    // Core 0's redistributor: awake; PPI 27 (virtual timer) group 1, enabled.
    ldr x1, =0x080A0000
    ldr w2, [x1, #0x14]
    bic w2, w2, #2
    str w2, [x1, #0x14]
1:  ldr w2, [x1, #0x14]
    tbnz w2, #2, 1b
    ldr x1, =0x080B0000
    mov w2, #-1
    str w2, [x1, #0x80]
    mov w2, #(1 << 27)
    str w2, [x1, #0x100]
    // CPU interface: system registers, priority mask open, group 1 on.
    mrs x2, S3_0_C12_C12_5
    orr x2, x2, #1
    msr S3_0_C12_C12_5, x2
    isb
    mov x2, #0xff
    msr S3_0_C4_C6_0, x2
    mov x2, #1
    msr S3_0_C12_C12_7, x2
    isb
    // 10 ms of counter ticks.
    mrs x21, cntfrq_el0
    mov x3, #100
    udiv x21, x21, x3
    mrs x22, cntvct_el0
tick:
    add x22, x22, x21
    msr cntv_cval_el0, x22
    mov x2, #1
    msr cntv_ctl_el0, x2
    isb
    // Interrupts stay masked (PSTATE.I): WFI still wakes on the pending
    // timer interrupt, and moving the compare value drops it.
2:  wfi
    mrs x2, cntv_ctl_el0
    tbz x2, #2, 2b
    mov w2, #'t'
    str w2, [x20]
    mov w2, #'\n'
    str w2, [x20]
    b tick

secondary:
    ldr x9, =0x40500000
    ldr w9, [x9]
    cmp w9, #1
    b.eq m1
    cmp w9, #2
    b.eq m2
    cmp w9, #3
    b.eq m3
    cmp w9, #4
    b.eq m4
    cmp w9, #5
    b.eq m5
m0: wfi
    b m0
m1: wfe
    b m1
m2: yield
    b m2
m3: mrs x0, cntvct_el0
    b m3
m4: wfe
    isb
    mrs x0, cntvct_el0
    b m4
m5: nop
    b m5
"#
);
