//! Entry, EL2 -> EL1 drop (for native runs with virtualization=on), FP,
//! a two-entry identity map, stack, .bss and the exception vectors.
//!
//! Only PC-relative addressing (adr/adrp) is used, so the image also runs
//! when loaded somewhere other than its link address.

use core::arch::global_asm;

// Page table: level 1, 4 KiB granule, T0SZ = 32.
//   entry 0: 0..1 GiB, Device-nGnRE (MAIR attr 0), AF, never executable
//   entry 1: 1..2 GiB, Normal WB (MAIR attr 1), inner shareable, AF
global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    b       intruder_entry
    .word   0
    .quad   0                       // text_offset
    .quad   __image_size
    .quad   0x2                     // LE, 4 KiB pages
    .quad   0, 0, 0
    .word   0x644d5241              // "ARM\x64"
    .word   0

intruder_entry:
    msr     daifset, #0xf
    mrs     x9, CurrentEL
    lsr     x9, x9, #2
    cmp     x9, #2
    b.ne    intruder_el1
    // EL2 (native QEMU with virtualization=on): plain AArch64 EL1 below.
    mov     x9, #(1 << 31)
    msr     hcr_el2, x9
    mov     x9, #0x33ff
    msr     cptr_el2, x9
    mov     x9, #3
    msr     cnthctl_el2, x9
    movz    x9, #0x0800
    movk    x9, #0x30d0, lsl #16
    msr     sctlr_el1, x9
    mov     x9, #0x3c5
    msr     spsr_el2, x9
    adr     x9, intruder_el1
    msr     elr_el2, x9
    eret

intruder_el1:
    msr     spsel, #1
    mov     x9, #(3 << 20)          // CPACR_EL1.FPEN
    msr     cpacr_el1, x9
    isb
    mov     x9, #0xff04
    msr     mair_el1, x9
    movz    x9, #0x3520
    movk    x9, #0x80, lsl #16
    msr     tcr_el1, x9
    adrp    x9, intruder_l1
    add     x9, x9, :lo12:intruder_l1
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

    adrp    x9, __stack_top
    add     x9, x9, :lo12:__stack_top
    mov     sp, x9
    adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
1:  cmp     x9, x10
    b.hs    2f
    str     xzr, [x9], #8
    b       1b
2:  adrp    x9, intruder_vectors
    add     x9, x9, :lo12:intruder_vectors
    msr     vbar_el1, x9
    isb
    bl      intruder_main
3:  wfi
    b       3b

    .section .text.vectors, "ax"
    .balign 2048
intruder_vectors:
    .rept 4
    .balign 0x80
    b       intruder_unexpected     // current EL, SP_EL0
    .endr
    .balign 0x80
    b       intruder_sync_entry     // current EL, SP_ELx, synchronous
    .rept 11
    .balign 0x80
    b       intruder_unexpected
    .endr

    .balign 0x80
intruder_unexpected:
    mrs     x0, esr_el1
    mrs     x1, far_el1
    mrs     x2, elr_el1
    bl      intruder_on_unexpected
4:  wfi
    b       4b

    // Saves every general-purpose register, so the interrupted attack
    // sees them unchanged apart from ELR moving past the faulting instruction.
intruder_sync_entry:
    sub     sp, sp, #256
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
    mrs     x0, esr_el1
    mrs     x1, far_el1
    mrs     x2, elr_el1
    bl      intruder_on_sync
    msr     elr_el1, x0
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    add     sp, sp, #256
    eret

    .section .rodata.intruder_l1, "a"
    .balign 4096
intruder_l1:
    .quad   0x0060000000000401
    .quad   0x0000000040000705
    .quad   0
    .quad   0
"#
);
