//! Entry of both vCPUs (the boot vCPU at `_start`, the second through PSCI
//! CPU_ON at `pairbench_secondary` with its index in x0), MMU on with a
//! two-entry identity map, one stack per vCPU, and the exception vectors.
//!
//! The guest starts at EL1: natively on QEMU `virt` without
//! virtualization=on (PSCI then answers HVC, as under Septum), and in its
//! partition.

use core::arch::global_asm;

// Stage-1 map, level 1, 4 KiB granule, T0SZ = 32:
//   0..1 GiB  Device-nGnRE (MAIR attr 0), never executable: GIC, UARTs
//   1..2 GiB  Normal write-back (MAIR attr 1), inner shareable: RAM
global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    b       pairbench_primary
    .word   0
    .quad   0                       // text_offset
    .quad   __image_size
    .quad   0x2                     // LE, 4 KiB pages
    .quad   0, 0, 0
    .word   0x644d5241              // "ARM\x64"
    .word   0

pairbench_primary:
    mov     x19, #0
    b       pairbench_common

    .global pairbench_secondary
pairbench_secondary:
    mov     x19, x0                 // CPU_ON context id: the vCPU index

pairbench_common:
    msr     daifset, #0xf
    mrs     x9, CurrentEL
    cmp     x9, #(1 << 2)
    b.ne    pairbench_halt          // EL1 only (see the module comment)
    msr     spsel, #1
    mov     x9, #(3 << 20)          // CPACR_EL1.FPEN
    msr     cpacr_el1, x9
    isb
    mov     x9, #0xff04
    msr     mair_el1, x9
    movz    x9, #0x3520
    movk    x9, #0x80, lsl #16
    msr     tcr_el1, x9
    adrp    x9, pairbench_l1
    add     x9, x9, :lo12:pairbench_l1
    msr     ttbr0_el1, x9
    isb
    tlbi    vmalle1
    ic      iallu
    dsb     nsh
    isb
    movz    x9, #0x181d             // M, C, SA, SA0, I + RES1
    movk    x9, #0x30d0, lsl #16
    msr     sctlr_el1, x9
    isb

    adrp    x9, __stacks_top
    add     x9, x9, :lo12:__stacks_top
    sub     x9, x9, x19, lsl #14    // 16 KiB per vCPU
    mov     sp, x9
    cbnz    x19, 2f                 // the boot vCPU clears .bss, once
    adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
1:  cmp     x9, x10
    b.hs    2f
    str     xzr, [x9], #8
    b       1b
2:  adrp    x9, pairbench_vectors
    add     x9, x9, :lo12:pairbench_vectors
    msr     vbar_el1, x9
    isb
    mov     x0, x19
    bl      pairbench_main
pairbench_halt:
    wfi
    b       pairbench_halt

    .section .text.vectors, "ax"
    .balign 2048
pairbench_vectors:
    .rept 5
    .balign 0x80
    b       pairbench_unexpected    // SP_EL0 x4, current EL synchronous
    .endr
    .balign 0x80
    b       pairbench_irq_entry     // current EL, SP_ELx, IRQ
    .rept 10
    .balign 0x80
    b       pairbench_unexpected
    .endr

    .balign 0x80
pairbench_unexpected:
    mrs     x0, esr_el1
    mrs     x1, elr_el1
    bl      pairbench_on_unexpected
    b       pairbench_halt

    // Interrupts are taken only inside `wait_for_interrupt`, whose asm
    // block clobbers the C ABI's caller-saved registers, so saving those
    // here is belt and braces.
pairbench_irq_entry:
    sub     sp, sp, #176
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    str     x30, [sp, #160]
    bl      pairbench_on_irq
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x29, [sp, #144]
    ldr     x30, [sp, #160]
    add     sp, sp, #176
    eret

    .section .rodata.pairbench_l1, "a"
    .balign 4096
pairbench_l1:
    .quad   0x0060000000000401
    .quad   0x0000000040000705
    .quad   0
    .quad   0
"#
);
