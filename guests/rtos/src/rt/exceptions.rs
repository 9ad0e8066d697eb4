//! Exception vectors. IRQs (current EL, SP_ELx) go to the scheduler with the
//! full interrupted context saved, because the handler runs jobs with IRQs
//! unmasked and jobs use FP/SIMD. Everything else is unexpected: report the
//! syndrome and halt. Under the hypervisor this is where an injected abort
//! becomes visible.

use core::arch::global_asm;
use core::sync::atomic::{AtomicBool, Ordering};

use super::{cpu, gic, kernel, timer};

// IRQ frame (800 bytes, 16-byte aligned):
//   0..240   x0..x29        240 x30   248 ELR_EL1
//   256 SPSR_EL1   264 FPCR   272 FPSR   280 (pad)
//   288..800 q0..q31
global_asm!(
    r#"
    .section .text.vectors, "ax"
    .balign 2048
    .global rtos_vectors
rtos_vectors:
    // Current EL with SP_EL0 (never used by the RTOS)
    .balign 0x80
    mov     x0, #0
    b       rtos_vec_fatal
    .balign 0x80
    mov     x0, #1
    b       rtos_vec_fatal
    .balign 0x80
    mov     x0, #2
    b       rtos_vec_fatal
    .balign 0x80
    mov     x0, #3
    b       rtos_vec_fatal
    // Current EL with SP_ELx
    .balign 0x80
    mov     x0, #4
    b       rtos_vec_fatal
    .balign 0x80
    b       rtos_irq_entry
    .balign 0x80
    mov     x0, #6
    b       rtos_vec_fatal
    .balign 0x80
    mov     x0, #7
    b       rtos_vec_fatal
    // Lower EL, AArch64 (no EL0 in this RTOS)
    .balign 0x80
    mov     x0, #8
    b       rtos_vec_fatal
    .balign 0x80
    mov     x0, #9
    b       rtos_vec_fatal
    .balign 0x80
    mov     x0, #10
    b       rtos_vec_fatal
    .balign 0x80
    mov     x0, #11
    b       rtos_vec_fatal
    // Lower EL, AArch32
    .balign 0x80
    mov     x0, #12
    b       rtos_vec_fatal
    .balign 0x80
    mov     x0, #13
    b       rtos_vec_fatal
    .balign 0x80
    mov     x0, #14
    b       rtos_vec_fatal
    .balign 0x80
    mov     x0, #15
    b       rtos_vec_fatal

    .balign 0x80
    // A fault may come from a blown stack: report from a stack of its own.
rtos_vec_fatal:
    adrp    x1, __fault_stack_top
    add     x1, x1, :lo12:__fault_stack_top
    mov     sp, x1
    bl      rtos_fatal_exception
1:  wfi
    b       1b

rtos_irq_entry:
    sub     sp, sp, #800
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
    mrs     x0, elr_el1
    stp     x30, x0, [sp, #240]
    mrs     x0, spsr_el1
    mrs     x1, fpcr
    stp     x0, x1, [sp, #256]
    mrs     x0, fpsr
    str     x0, [sp, #272]
    add     x0, sp, #288
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]

    bl      rtos_irq_handler

    add     x0, sp, #288
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    ldr     x0, [sp, #272]
    msr     fpsr, x0
    ldp     x0, x1, [sp, #256]
    msr     spsr_el1, x0
    msr     fpcr, x1
    ldp     x30, x0, [sp, #240]
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
    add     sp, sp, #800
    eret
"#
);

const KINDS: [&str; 16] = [
    "sync (SP_EL0)",
    "irq (SP_EL0)",
    "fiq (SP_EL0)",
    "serror (SP_EL0)",
    "synchronous",
    "irq",
    "fiq",
    "serror",
    "sync from lower EL",
    "irq from lower EL",
    "fiq from lower EL",
    "serror from lower EL",
    "sync from AArch32",
    "irq from AArch32",
    "fiq from AArch32",
    "serror from AArch32",
];

static IN_FATAL: AtomicBool = AtomicBool::new(false);

#[no_mangle]
extern "C" fn rtos_fatal_exception(kind: u64) -> ! {
    // Read the syndrome first: printing could fault again and overwrite it.
    let (esr, far, elr, spsr) = (cpu::esr(), cpu::far(), cpu::elr(), cpu::spsr());
    if IN_FATAL.swap(true, Ordering::Relaxed) {
        // A fault while reporting a fault: stay silent and stop.
        super::halt();
    }
    let what = KINDS.get(kind as usize).copied().unwrap_or("?");
    crate::println!();
    crate::println!(
        "rtos: unexpected exception: {what} esr={esr:#x} (ec={:#x}) far={far:#x} elr={elr:#x} spsr={spsr:#x}",
        (esr >> 26) & 0x3f
    );
    crate::println!("rtos: halted");
    super::halt()
}

#[no_mangle]
extern "C" fn rtos_irq_handler() {
    #[cfg(feature = "bench")]
    let entry = timer::now();
    let ack = gic::ack();
    match ack.intid {
        timer::VIRTUAL_TIMER_INTID => {
            #[cfg(feature = "bench")]
            super::bench::irq_entry(entry, timer::compare());
            kernel::on_timer();
            #[cfg(feature = "bench")]
            super::bench::irq_released(timer::now());
            // Drop priority before dispatching so that the next release can
            // preempt the jobs this handler is about to run.
            gic::eoi(ack);
            kernel::dispatch();
        }
        1020..=1023 => {} // spurious: nothing to end
        _ => {
            kernel::note_unexpected_irq();
            gic::eoi(ack);
        }
    }
}
