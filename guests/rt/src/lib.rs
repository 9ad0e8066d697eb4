//! septum-guest-rt: the EL1 start-up and exception entry of the small test
//! and benchmark guests (`septum-intruder`, `septum-pairbench`). The RTOS
//! has its own runtime (tasks, context switches); these guests need only:
//!
//! - an arm64 Image header at `_start` (`text_offset` 0, `image_size` =
//!   `__image_size` from the guest's linker script, LE, 4 KiB pages);
//! - entry of the boot vCPU at `_start` and of any other vCPU at
//!   [`secondary_entry`] (PSCI CPU_ON, context id = its vCPU index);
//! - from EL2 (QEMU with virtualization=on, natively), a drop to EL1 with
//!   nothing left at EL2 (a guest that then calls HVC, as pairbench does
//!   for PSCI, must be started at EL1);
//! - FP/SIMD enabled, the MMU and caches on with a two-entry identity map
//!   (0..1 GiB Device-nGnRE and never executable: GIC, UARTs; 1..2 GiB
//!   Normal write-back, inner shareable: RAM);
//! - one 16 KiB stack per vCPU below `__stacks_top` (vCPU n's starts
//!   n * 16 KiB below it), `.bss` cleared once by the boot vCPU;
//! - exception vectors: a synchronous exception or an IRQ at EL1 calls the
//!   guest's handler with every general-purpose register kept for the
//!   interrupted code (a synchronous one resumes where the handler says);
//!   anything else is reported.
//!
//! The guest provides, with `#[no_mangle] extern "C"`:
//!
//! | symbol | called |
//! |---|---|
//! | `guest_main(vcpu: u64)` | on each vCPU once the above is done; the vCPU halts (WFI) when it returns |
//! | `guest_on_sync(esr: u64, far: u64, elr: u64) -> u64` | for a synchronous exception at EL1; returns the address to resume at |
//! | `guest_on_irq()` | for an IRQ at EL1 |
//! | `guest_on_unexpected(esr: u64, far: u64, elr: u64)` | for any other exception; the vCPU halts when it returns |
//!
//! The guest's linker script defines `__image_size`, `__bss_start`,
//! `__bss_end` and `__stacks_top`, and keeps `.text.entry` first.
//!
//! Only PC-relative addressing (`adr`/`adrp`, `b`/`bl`) is used, so an image
//! also runs loaded somewhere other than its link address (the intruder
//! relies on this).
#![no_std]

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    b       guest_rt_primary
    .word   0
    .quad   0                       // text_offset
    .quad   __image_size
    .quad   0x2                     // LE, 4 KiB pages
    .quad   0, 0, 0
    .word   0x644d5241              // "ARM\x64"
    .word   0

guest_rt_primary:
    mov     x19, #0
    b       guest_rt_common

    .global guest_rt_secondary
guest_rt_secondary:
    mov     x19, x0                 // CPU_ON context id: the vCPU index

guest_rt_common:
    msr     daifset, #0xf
    mrs     x9, CurrentEL
    lsr     x9, x9, #2
    cmp     x9, #2
    b.ne    guest_rt_el1
    // EL2 (native QEMU with virtualization=on): plain AArch64 EL1 below.
    mov     x9, #(1 << 31)          // HCR_EL2.RW
    msr     hcr_el2, x9
    mov     x9, #0x33ff             // CPTR_EL2: no FP/SIMD traps
    msr     cptr_el2, x9
    mov     x9, #3                  // CNTHCTL_EL2: EL1 counter and timer access
    msr     cnthctl_el2, x9
    movz    x9, #0x0800             // SCTLR_EL1 RES1 bits, MMU off
    movk    x9, #0x30d0, lsl #16
    msr     sctlr_el1, x9
    mov     x9, #0x3c5              // EL1h, DAIF masked
    msr     spsr_el2, x9
    adr     x9, guest_rt_el1
    msr     elr_el2, x9
    eret

guest_rt_el1:
    msr     spsel, #1
    mov     x9, #(3 << 20)          // CPACR_EL1.FPEN
    msr     cpacr_el1, x9
    isb
    mov     x9, #0xff04             // MAIR: attr 0 Device-nGnRE, attr 1 Normal WB
    msr     mair_el1, x9
    movz    x9, #0x3520             // TCR: T0SZ 32, WB WA inner shareable, 4 KiB
    movk    x9, #0x80, lsl #16      // EPD1
    msr     tcr_el1, x9
    adrp    x9, guest_rt_l1
    add     x9, x9, :lo12:guest_rt_l1
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
2:  adrp    x9, guest_rt_vectors
    add     x9, x9, :lo12:guest_rt_vectors
    msr     vbar_el1, x9
    isb
    mov     x0, x19
    bl      guest_main
guest_rt_halt:
    wfi
    b       guest_rt_halt

    .section .text.vectors, "ax"
    .balign 2048
guest_rt_vectors:
    .rept 4
    .balign 0x80
    b       guest_rt_unexpected     // current EL, SP_EL0
    .endr
    .balign 0x80
    b       guest_rt_sync_entry     // current EL, SP_ELx, synchronous
    .balign 0x80
    b       guest_rt_irq_entry      // current EL, SP_ELx, IRQ
    .rept 10
    .balign 0x80
    b       guest_rt_unexpected     // FIQ, SError, lower ELs
    .endr

    .balign 0x80
guest_rt_unexpected:
    mrs     x0, esr_el1
    mrs     x1, far_el1
    mrs     x2, elr_el1
    bl      guest_on_unexpected
    b       guest_rt_halt

    // Both entries call a C-ABI function, which preserves the callee-saved
    // registers (x19-x28) itself: saving the caller-saved ones and the
    // frame pointer here gives the interrupted code back every
    // general-purpose register unchanged. FP/SIMD registers, ELR and SPSR
    // are not saved, so a guest may unmask IRQs only where its code
    // declares the C ABI's caller-saved registers clobbered (pairbench's
    // WFI wait does) and must not nest exceptions. pairbench's interrupt
    // figures start counting before the IRQ entry, so it is kept short.
    .macro guest_rt_save
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
    .endm

    .macro guest_rt_restore
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
    .endm

    // The handler's answer replaces ELR (the intruder skips the faulting
    // instruction).
guest_rt_sync_entry:
    guest_rt_save
    mrs     x0, esr_el1
    mrs     x1, far_el1
    mrs     x2, elr_el1
    bl      guest_on_sync
    msr     elr_el1, x0
    guest_rt_restore
    eret

guest_rt_irq_entry:
    guest_rt_save
    bl      guest_on_irq
    guest_rt_restore
    eret

    // Stage-1 table, level 1, 4 KiB granule, T0SZ = 32.
    .section .rodata.guest_rt_l1, "a"
    .balign 4096
guest_rt_l1:
    .quad   0x0060000000000401      // 0..1 GiB: Device-nGnRE, AF, UXN+PXN
    .quad   0x0000000040000705      // 1..2 GiB: Normal WB, inner shareable, AF
    .quad   0
    .quad   0
"#
);

#[cfg(target_os = "none")]
extern "C" {
    fn guest_rt_secondary();
}

/// The address at which a secondary vCPU enters (PSCI CPU_ON's entry
/// point, with its vCPU index as the context id), where the image runs now
/// (computed PC-relative). With the MMU's identity map that is also the
/// physical (or intermediate physical) address CPU_ON wants.
#[cfg(target_os = "none")]
pub fn secondary_entry() -> u64 {
    guest_rt_secondary as *const () as usize as u64
}
