//! Entry point: arm64 Image header, EL2 -> EL1 drop, FP enable, MMU on,
//! stack, .bss, vectors, then `rtos_main`. All of this runs before any Rust
//! code because Rust code may use FP/SIMD registers and unaligned-safe but
//! cache-assuming accesses.

use core::arch::global_asm;

// Stage-1 translation (4 KiB granule, T0SZ = 32: 4 GiB of VA, walk starts at
// level 1, so 1 GiB blocks):
//   0..1 GiB  Device-nGnRE, execute-never  (QEMU virt: GIC, PL011, ...)
//   1..2 GiB  Normal write-back, inner shareable (RAM)
//   2..3 GiB  unmapped
//   3..4 GiB  Device-nGnRE, execute-never  (Raspberry Pi 4: GIC-400, PL011)
// Nothing is ever accessed speculatively through a Device mapping, so the
// window that does not exist on a board costs nothing there.
// septum_rtos::platform::{DEVICE_WINDOWS, RAM_WINDOW} mirror this map.
// MAIR attr0 = 0x04 (Device-nGnRE), attr1 = 0xff (Normal WB RW-allocate).
// TCR: T0SZ=32, IRGN0=ORGN0=WB-WA, SH0=inner, TG0=4K, EPD1 (no TTBR1 walks),
// IPS=32 bits.
// SCTLR_EL1: the ARMv8.0 RES1 bits (0x30d00800) + M, C, SA, SA0, I; A = 0.
global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    b       rtos_entry              // code0
    .word   0                       // code1
    .quad   0                       // text_offset
    .quad   __image_size            // image_size (incl. bss and stacks)
    .quad   0x2                     // flags: little-endian, 4 KiB pages
    .quad   0                       // res2
    .quad   0                       // res3
    .quad   0                       // res4
    .word   0x644d5241              // magic "ARM\x64"
    .word   0                       // res5

rtos_entry:
    mrs     x19, CurrentEL
    ubfx    x19, x19, #2, #2        // x19 = entry EL (kept for rtos_main)
    mov     x20, x0                 // x20 = boot argument (DTB, if any)
    cmp     x19, #2
    b.eq    rtos_from_el2
    cmp     x19, #1
    b.eq    rtos_el1_entry
    b       rtos_boot_halt          // EL3 or EL0: not a supported entry

rtos_from_el2:
    mov     x0, #(1 << 31)          // HCR_EL2.RW: EL1 is AArch64, nothing trapped
    msr     hcr_el2, x0
    mrs     x0, cnthctl_el2
    orr     x0, x0, #3              // EL1PCTEN | EL1PCEN: counters/timers usable at EL1
    msr     cnthctl_el2, x0
    msr     cntvoff_el2, xzr
    mov     x0, #0x33ff             // CPTR_EL2: no FP/SIMD traps
    msr     cptr_el2, x0
    msr     hstr_el2, xzr
    mrs     x0, midr_el1
    msr     vpidr_el2, x0
    mrs     x0, mpidr_el1
    msr     vmpidr_el2, x0
    mrs     x0, id_aa64pfr0_el1
    ubfx    x0, x0, #24, #4         // GIC system-register interface present?
    cbz     x0, 1f
    mrs     x0, icc_sre_el2
    orr     x0, x0, #0xf            // SRE | DFB | DIB | Enable (EL1 may use ICC_SRE_EL1)
    msr     icc_sre_el2, x0
    isb
1:  movz    x0, #0x0800
    movk    x0, #0x30d0, lsl #16    // SCTLR_EL1: RES1 bits only, MMU off
    msr     sctlr_el1, x0
    mov     x0, #0x3c5              // EL1h, DAIF masked
    msr     spsr_el2, x0
    adr     x0, rtos_el1_entry
    msr     elr_el2, x0
    eret

rtos_el1_entry:
    msr     daifset, #0xf
    msr     spsel, #1
    mov     x0, #(3 << 20)          // CPACR_EL1.FPEN: no FP/SIMD traps
    msr     cpacr_el1, x0
    isb

    mov     x0, #0xff04
    msr     mair_el1, x0
    movz    x0, #0x3520
    movk    x0, #0x80, lsl #16
    msr     tcr_el1, x0
    adrp    x0, rtos_boot_l1
    add     x0, x0, :lo12:rtos_boot_l1
    msr     ttbr0_el1, x0
    msr     ttbr1_el1, xzr
    isb
    tlbi    vmalle1
    ic      iallu
    dsb     nsh
    isb
    movz    x0, #0x181d
    movk    x0, #0x30d0, lsl #16
    msr     sctlr_el1, x0
    isb

    adrp    x0, __stack_top
    add     x0, x0, :lo12:__stack_top
    mov     sp, x0

    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
2:  cmp     x0, x1
    b.hs    3f
    stp     xzr, xzr, [x0], #16
    b       2b

3:  adrp    x0, rtos_vectors
    add     x0, x0, :lo12:rtos_vectors
    msr     vbar_el1, x0
    isb

    mov     x0, x19
    mov     x1, x20
    bl      rtos_main

rtos_boot_halt:
    wfi
    b       rtos_boot_halt

    .section .rodata.rtos_boot_l1, "a"
    .balign 4096
rtos_boot_l1:
    .quad   0x0060000000000401      // 0 GiB: block, AttrIndx 0, AF, UXN|PXN
    .quad   0x0000000040000705      // 1 GiB: block, AttrIndx 1, SH inner, AF
    .quad   0
    .quad   0x00600000c0000401      // 3 GiB: block, AttrIndx 0, AF, UXN|PXN
"#
);
