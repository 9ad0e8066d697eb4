//! Every line of assembly in the hypervisor lives in this file.
//!
//! The boot entry (with its arm64 Image header), the EL2 exception vectors,
//! the guest entry path and the handful of instructions that have no
//! register-access wrapper in `aarch64-cpu`. Keeping it in one place makes it
//! easy for a reviewer to see the whole of the hand-written machine code.

use core::arch::{asm, global_asm};

use super::trap::TrapFrame;

use septum_core::config::MAX_CPUS;
use septum_core::el2map::{GUARD, SLOT, STACK};
/// Byte size of [`TrapFrame`]; checked against the Rust layout below.
pub const FRAME_SIZE: usize = 34 * 8;
/// The short interrupt path's frame: x0-x18, x29, x30, 16-byte aligned.
const IRQ_FRAME_SIZE: usize = 22 * 8;
const _: () = assert!(core::mem::size_of::<TrapFrame>() == FRAME_SIZE);

/// From a stack's top down to its emergency stack's top (one `sub ..., lsl
/// #12` in the entry code).
const TO_EMERGENCY: u64 = GUARD + STACK;
const _: () =
    assert!(TO_EMERGENCY.is_multiple_of(4096) && TO_EMERGENCY >> 12 < 4096 && SLOT >> 32 == 0);

// The Image header lets QEMU and the Raspberry Pi firmware load the raw
// binary as if it were a Linux kernel: at RAM base + text_offset, with x0 =
// the device tree. Layout per the Linux arm64 boot protocol.
global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    b       {primary}               // code0
    .long   0                       // code1
    .quad   0                       // text_offset
    .quad   __image_end - _start    // image_size, including .bss and stacks
    .quad   0x2                     // flags: little-endian, 4 KiB pages
    .quad   0
    .quad   0
    .quad   0
    .ascii  "ARM\x64"               // magic
    .long   0
"#,
    primary = sym primary_entry,
);

/// First instructions on the boot core: EL2, MMU off, x0 = device tree.
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn primary_entry() -> ! {
    core::arch::naked_asm!(
        "mov    x19, x0",               // device tree address from firmware
        "mrs    x1, CurrentEL",
        "cmp    x1, #(2 << 2)",
        "b.ne   2f",
        // No FP/SIMD traps (guests use FP; the Pi firmware leaves CPTR_EL2 random).
        "mov    x1, #0x33ff",
        "msr    cptr_el2, x1",
        "isb",
        "mrs    x20, mpidr_el1",
        "and    x20, x20, #0xff",       // core number = Aff0
        "cmp    x20, #{max_cpus}",
        "b.hs   2f",                    // no stack slot for this core
        // Stack: the top of this core's slot in .stacks; TPIDR_EL2 holds
        // the top of its emergency stack (see the vectors below).
        "adrp   x1, __stacks_start",
        "add    x1, x1, :lo12:__stacks_start",
        "add    x2, x20, #1",
        "mov    x3, #{slot_lo}",
        "movk   x3, #{slot_hi}, lsl #16",
        "madd   x1, x2, x3, x1",
        "mov    sp, x1",
        "sub    x1, x1, #{to_emergency}, lsl #12",
        "msr    tpidr_el2, x1",
        // Zero .bss, 64 bytes an iteration (64-aligned and sized in
        // link.ld.in). The stacks and the heap are not zeroed: they need
        // no initial value.
        "adrp   x1, __bss_start",
        "add    x1, x1, :lo12:__bss_start",
        "adrp   x2, __bss_end",
        "add    x2, x2, :lo12:__bss_end",
        "1:",
        "cmp    x1, x2",
        "b.hs   3f",
        "stp    xzr, xzr, [x1]",
        "stp    xzr, xzr, [x1, #16]",
        "stp    xzr, xzr, [x1, #32]",
        "stp    xzr, xzr, [x1, #48]",
        "add    x1, x1, #64",
        "b      1b",
        "3:",
        "adrp   x1, {vectors}",
        "add    x1, x1, :lo12:{vectors}",
        "msr    vbar_el2, x1",
        "isb",
        "mov    x0, x19",
        "mov    x1, x20",
        "bl     {main}",
        "2:",
        "wfe",
        "b      2b",
        max_cpus = const MAX_CPUS,
        slot_lo = const SLOT & 0xffff,
        slot_hi = const SLOT >> 16,
        to_emergency = const TO_EMERGENCY >> 12,
        vectors = sym exception_vectors,
        main = sym crate::primary_main,
    )
}

/// Where secondary cores start (PSCI CPU_ON or spin-table release): EL2,
/// MMU off, x0 = our context argument = core number.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn secondary_entry() -> ! {
    core::arch::naked_asm!(
        "mov    x1, #0x33ff",
        "msr    cptr_el2, x1",
        "isb",
        "mrs    x20, mpidr_el1",
        "and    x20, x20, #0xff",
        "cmp    x20, #{max_cpus}",
        "b.hs   1f",
        "adrp   x1, __stacks_start",
        "add    x1, x1, :lo12:__stacks_start",
        "add    x2, x20, #1",
        "mov    x3, #{slot_lo}",
        "movk   x3, #{slot_hi}, lsl #16",
        "madd   x1, x2, x3, x1",
        "mov    sp, x1",
        "sub    x1, x1, #{to_emergency}, lsl #12",
        "msr    tpidr_el2, x1",
        "adrp   x1, {vectors}",
        "add    x1, x1, :lo12:{vectors}",
        "msr    vbar_el2, x1",
        "isb",
        "mov    x0, x20",
        "bl     {main}",
        "1:",
        "wfe",
        "b      1b",
        max_cpus = const MAX_CPUS,
        slot_lo = const SLOT & 0xffff,
        slot_hi = const SLOT >> 16,
        to_emergency = const TO_EMERGENCY >> 12,
        vectors = sym exception_vectors,
        main = sym crate::secondary_main,
    )
}

// EL2 exception vectors. Each entry saves x0/x1, loads its vector number
// and joins the common path, which saves the full guest (or hypervisor)
// register file as a TrapFrame on this core's stack and calls Rust.
//
// A synchronous exception or SError taken from EL2 itself (vectors 0-4 and
// 7) is always a hypervisor fault, possibly a stack overflow into the guard
// page, where pushing a frame would fault again: those switch to this core's
// emergency stack (its top in TPIDR_EL2) first. SP_EL0 is the scratch
// register: it belongs to the guest, which never runs again after an EL2
// fault (the safe state). EL2's own interrupts (vectors 5, 6) keep the
// current stack.
macro_rules! vector_table {
    () => {
        r#"
    .section .text.vectors, "ax"
    .balign 2048
    .global septum_vectors
septum_vectors:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 128
    .if (\n <= 4) || (\n == 7)
    msr     sp_el0, x0
    mrs     x0, tpidr_el2
    mov     sp, x0
    mrs     x0, sp_el0
    .endif
    .if (\n == 9) || (\n == 10)
    sub     sp, sp, #{irq_frame}
    stp     x0, x1, [sp, #0]
    .if \n == 9
    b       septum_irq_common
    .else
    b       septum_fiq_common
    .endif
    .elseif \n == 8
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #0]
    b       septum_sync_common
    .else
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #0]
    mov     x0, #\n
    b       septum_trap_common
    .endif
    .endr

// A guest's IRQ or FIQ: the short path. The handler (a C-ABI function)
// keeps the callee-saved registers x19-x28 itself, so only the
// caller-saved ones, the frame pointer and the link register are saved;
// ELR_EL2 and SPSR_EL2 stay in their registers, because nothing on an
// interrupt path that returns to the guest changes them (the paths that
// enter a guest anew, a restart or a CPU_ON, never return here). An IRQ is
// Group 1 (a guest's interrupt, or the hypervisor's on a core with virtual
// delivery), an FIQ Group 0 (the hypervisor's on a core with direct
// delivery): each has its own handler, so neither pays for telling them apart.
.macro septum_short_path handler
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x29, [sp, #16 * 9]
    str     x30, [sp, #16 * 10]
    bl      \handler
    ldr     x30, [sp, #16 * 10]
    ldp     x18, x29, [sp, #16 * 9]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{irq_frame}
    eret
.endm

septum_irq_common:
    septum_short_path {irq_handler}

septum_fiq_common:
    septum_short_path {fiq_handler}

// Stores or loads x19-x28 where a TrapFrame has them.
.macro septum_x19_x28 one, two
    \one    x19, [sp, #16 * 9 + 8]
    \two    x20, x21, [sp, #16 * 10]
    \two    x22, x23, [sp, #16 * 11]
    \two    x24, x25, [sp, #16 * 12]
    \two    x26, x27, [sp, #16 * 13]
    \one    x28, [sp, #16 * 14]
.endm

// A synchronous exception from a guest running AArch64: the caller-saved
// registers, x29 and x30 where a TrapFrame has them, but not x19-x28 (the
// handler, a C-ABI function, keeps those itself), ELR_EL2 or SPSR_EL2
// (which stay in their registers), and the short handler, which finishes
// the exits that need no more (most hypercalls, SGI generation, trapped
// debug registers, emulated MMIO). It answers (trap::Short) 1, done; 2,
// the exit needs one of x19-x28: they are stored (still the guest's, the
// handler kept them) and the retry handler, which may write them, runs on
// the whole register file; or 0, nothing changed, and the full path takes
// the exit with ELR/SPSR stored too.
septum_sync_common:
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    str     x18, [sp, #16 * 9]
    stp     x29, x30, [sp, #16 * 14 + 8]
    mov     x0, sp
    bl      {sync_fast}
    tbz     w0, #0, 2f
1:
    ldp     x29, x30, [sp, #16 * 14 + 8]
    ldr     x18, [sp, #16 * 9]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{frame}
    eret
2:
    septum_x19_x28 str, stp
    cbz     w0, 3f
    mov     x0, sp
    bl      {sync_retry}
    cbz     w0, 3f
    septum_x19_x28 ldr, ldp
    b       1b
3:
    mrs     x21, elr_el2
    mrs     x22, spsr_el2
    stp     x21, x22, [sp, #16 * 15 + 8]
    mov     x0, sp
    mov     x1, #8
    bl      {handler}
    b       septum_trap_return

septum_trap_common:
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    mrs     x21, elr_el2
    mrs     x22, spsr_el2
    stp     x30, x21, [sp, #16 * 15]
    str     x22, [sp, #16 * 16]
    mov     x1, x0
    mov     x0, sp
    bl      {handler}
septum_trap_return:
    ldr     x22, [sp, #16 * 16]
    ldp     x30, x21, [sp, #16 * 15]
    msr     elr_el2, x21
    msr     spsr_el2, x22
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x19, [sp, #16 * 9]
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x28, x29, [sp, #16 * 14]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{frame}
    eret
"#
    };
}

global_asm!(
    vector_table!(),
    frame = const FRAME_SIZE,
    irq_frame = const IRQ_FRAME_SIZE,
    handler = sym super::trap::septum_trap,
    irq_handler = sym super::trap::septum_irq,
    fiq_handler = sym super::trap::septum_fiq,
    sync_fast = sym super::trap::septum_sync_fast,
    sync_retry = sym super::trap::septum_sync_retry,
);

unsafe extern "C" {
    #[link_name = "septum_vectors"]
    static exception_vectors: u8;
}

// SHA-256 block compression with the ARMv8 SHA-256 instructions:
// septum_sha256_blocks(state: *mut [u32; 8], blocks: *const u8, n: usize,
// k: *const [u32; 64]). The hypervisor is built soft-float, so the assembler
// is told about SIMD and SHA2 here only; the caller makes sure the CPU has
// them (ID_AA64ISAR0_EL1.SHA2) and that no guest FP/SIMD state is live on
// this core (boot, or a partition being reloaded on its own core).
global_asm!(
    ".arch_extension fp",
    ".arch_extension simd",
    ".arch_extension sha2",
    ".pushsection .text.septum_sha256_blocks, \"ax\"",
    ".global septum_sha256_blocks",
    ".type septum_sha256_blocks, %function",
    ".balign 16",
    "septum_sha256_blocks:",
    "cbz x2, 2f",
    "ld1 {{v0.4s, v1.4s}}, [x0]",
    "1:",
    "ld1 {{v4.16b, v5.16b, v6.16b, v7.16b}}, [x1], #64",
    "rev32 v4.16b, v4.16b",
    "rev32 v5.16b, v5.16b",
    "rev32 v6.16b, v6.16b",
    "rev32 v7.16b, v7.16b",
    "mov v18.16b, v0.16b",
    "mov v19.16b, v1.16b",
    "mov x4, x3",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v4.4s",
    "sha256su0 v4.4s, v5.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "sha256su1 v4.4s, v6.4s, v7.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v5.4s",
    "sha256su0 v5.4s, v6.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "sha256su1 v5.4s, v7.4s, v4.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v6.4s",
    "sha256su0 v6.4s, v7.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "sha256su1 v6.4s, v4.4s, v5.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v7.4s",
    "sha256su0 v7.4s, v4.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "sha256su1 v7.4s, v5.4s, v6.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v4.4s",
    "sha256su0 v4.4s, v5.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "sha256su1 v4.4s, v6.4s, v7.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v5.4s",
    "sha256su0 v5.4s, v6.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "sha256su1 v5.4s, v7.4s, v4.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v6.4s",
    "sha256su0 v6.4s, v7.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "sha256su1 v6.4s, v4.4s, v5.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v7.4s",
    "sha256su0 v7.4s, v4.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "sha256su1 v7.4s, v5.4s, v6.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v4.4s",
    "sha256su0 v4.4s, v5.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "sha256su1 v4.4s, v6.4s, v7.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v5.4s",
    "sha256su0 v5.4s, v6.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "sha256su1 v5.4s, v7.4s, v4.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v6.4s",
    "sha256su0 v6.4s, v7.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "sha256su1 v6.4s, v4.4s, v5.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v7.4s",
    "sha256su0 v7.4s, v4.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "sha256su1 v7.4s, v5.4s, v6.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v4.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v5.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v6.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "ld1 {{v16.4s}}, [x4], #16",
    "add v16.4s, v16.4s, v7.4s",
    "mov v2.16b, v0.16b",
    "sha256h q0, q1, v16.4s",
    "sha256h2 q1, q2, v16.4s",
    "add v0.4s, v0.4s, v18.4s",
    "add v1.4s, v1.4s, v19.4s",
    "subs x2, x2, #1",
    "b.ne 1b",
    "st1 {{v0.4s, v1.4s}}, [x0]",
    "2:",
    "ret",
    ".size septum_sha256_blocks, . - septum_sha256_blocks",
    ".popsection",
);

extern "C" {
    fn septum_sha256_blocks(state: *mut [u32; 8], blocks: *const u8, n: usize, k: *const [u32; 64]);
}

/// SHA-256 round constants (FIPS 180-4, 4.2.2).
static SHA256_K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Arms this core's EL2 physical timer (CNTHP) for physical count `cval`,
/// interrupt unmasked.
pub fn hyp_timer_arm(cval: u64) {
    // SAFETY: CNTHP belongs to the hypervisor alone (guests cannot reach
    // it); programming it only schedules PPI 26 on this core.
    unsafe {
        asm!(
            "msr cnthp_cval_el2, {v}",
            "msr cnthp_ctl_el2, {en}",
            "isb",
            v = in(reg) cval,
            en = in(reg) 1u64,
            options(nostack, preserves_flags)
        )
    };
}

/// Stops this core's EL2 physical timer.
pub fn hyp_timer_disarm() {
    // SAFETY: as for `hyp_timer_arm`; disabling drops the interrupt line.
    unsafe {
        asm!(
            "msr cnthp_ctl_el2, xzr",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Address of the hypervisor image's first byte (its Image header).
pub fn image_start() -> u64 {
    let a: u64;
    // SAFETY: computes a link-time address; no memory is accessed.
    unsafe {
        asm!("adrp {a}, _start", "add {a}, {a}, :lo12:_start", a = out(reg) a, options(nomem, nostack, preserves_flags))
    };
    a
}

/// Whether this CPU implements the SHA-256 instructions
/// (ID_AA64ISAR0_EL1.SHA2, bits [15:12], non-zero).
pub fn has_sha256() -> bool {
    let v: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe {
        asm!("mrs {}, id_aa64isar0_el1", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    (v >> 12) & 0xf != 0
}

/// SHA-256 compression with the ARMv8 instructions.
///
/// # Safety
/// The CPU must implement them ([`has_sha256`]), FP/SIMD must not trap at
/// EL2, and no guest's FP/SIMD registers may be live on this core (they are
/// clobbered).
pub unsafe fn sha256_blocks_ce(state: &mut [u32; 8], blocks: &[[u8; 64]]) {
    // SAFETY: the pointers cover `state`, `blocks.len()` 64-byte blocks and
    // the 64 round constants; the routine touches nothing else in memory.
    // The caller guarantees the instructions exist and the SIMD registers
    // are free (see above).
    unsafe {
        septum_sha256_blocks(state, blocks.as_ptr().cast(), blocks.len(), &SHA256_K);
    }
}

/// Enters a guest at `pc` (EL1h, interrupts masked) with `x0 = arg` and every
/// other general-purpose register zero, resetting this core's EL2 stack to
/// `stack_top`: nothing of the hypervisor's call chain survives the switch.
///
/// # Safety
/// `stack_top` must be this core's stack top, and the caller must have set
/// up stage 2, HCR_EL2 and the guest's EL1 state.
pub unsafe fn enter_guest(pc: u64, arg: u64, spsr: u64, stack_top: u64) -> ! {
    // SAFETY: per the function contract; the asm never returns.
    unsafe {
        asm!(
            "mov    sp, {st}",
            "msr    elr_el2, {pc}",
            "msr    spsr_el2, {spsr}",
            "mov    x0, {arg}",
            "mov    x1, xzr", "mov x2, xzr", "mov x3, xzr", "mov x4, xzr",
            "mov    x5, xzr", "mov x6, xzr", "mov x7, xzr", "mov x8, xzr",
            "mov    x9, xzr", "mov x10, xzr", "mov x11, xzr", "mov x12, xzr",
            "mov    x13, xzr", "mov x14, xzr", "mov x15, xzr", "mov x16, xzr",
            "mov    x17, xzr", "mov x18, xzr", "mov x19, xzr", "mov x20, xzr",
            "mov    x21, xzr", "mov x22, xzr", "mov x23, xzr", "mov x24, xzr",
            "mov    x25, xzr", "mov x26, xzr", "mov x27, xzr", "mov x28, xzr",
            "mov    x29, xzr", "mov x30, xzr",
            "eret",
            st = in(reg) stack_top,
            pc = in(reg) pc,
            spsr = in(reg) spsr,
            arg = in(reg) arg,
            options(noreturn)
        )
    }
}

/// A call into firmware (PSCI) over SMC or HVC, SMCCC 64-bit convention.
pub fn firmware_call(hvc: bool, fid: u64, a1: u64, a2: u64, a3: u64) -> u64 {
    let ret: u64;
    // SAFETY: an SMCCC call clobbers at most x0-x17; firmware does not touch
    // our memory beyond what the PSCI function defines (CPU_ON starts a core
    // at our own entry point).
    unsafe {
        if hvc {
            asm!("hvc #0", inlateout("x0") fid => ret, inlateout("x1") a1 => _,
                 inlateout("x2") a2 => _, inlateout("x3") a3 => _,
                 out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                 out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
                 out("x14") _, out("x15") _, out("x16") _, out("x17") _, options(nostack));
        } else {
            asm!("smc #0", inlateout("x0") fid => ret, inlateout("x1") a1 => _,
                 inlateout("x2") a2 => _, inlateout("x3") a3 => _,
                 out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                 out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
                 out("x14") _, out("x15") _, out("x16") _, out("x17") _, options(nostack));
        }
    }
    ret
}

/// Waits for an interrupt (or an event, on some cores).
#[inline(always)]
pub fn wfi() {
    // SAFETY: wfi has no memory effects.
    unsafe { asm!("wfi", options(nomem, nostack, preserves_flags)) }
}

/// Waits for an event (`sev`) or an unmasked interrupt.
#[inline(always)]
pub fn wfe() {
    // SAFETY: wfe has no memory effects; the caller re-checks its condition.
    unsafe { asm!("wfe", options(nostack, preserves_flags)) }
}

/// Signals an event to all cores (wakes `wfe`).
#[inline(always)]
pub fn sev() {
    // SAFETY: sev has no memory effects.
    unsafe { asm!("dsb sy", "sev", options(nostack, preserves_flags)) }
}

/// Makes this core's earlier stores (a virtual SGI's pending bit) visible to
/// the other cores before a GICv3 SGI register write, which memory barriers
/// alone do not order; `isb` afterwards makes the write take effect.
#[inline(always)]
pub fn sgi_write_fence_then(write: impl FnOnce()) {
    // SAFETY: barriers only order memory accesses and instructions.
    unsafe { asm!("dsb ishst", options(nostack, preserves_flags)) };
    write();
    // SAFETY: as above.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// Orders this core's earlier stores before a later Device-memory store (a
/// GICv2 GICD_SGIR write).
#[inline(always)]
pub fn dmb_ishst() {
    // SAFETY: a barrier only orders memory accesses.
    unsafe { asm!("dmb ishst", options(nostack, preserves_flags)) }
}

/// Full-system data synchronization barrier followed by an isb.
#[inline(always)]
pub fn dsb_isb() {
    // SAFETY: barriers only order memory accesses.
    unsafe { asm!("dsb sy", "isb", options(nostack, preserves_flags)) }
}

/// Invalidates all stage-1 EL2 TLB entries on this core.
pub fn tlbi_alle2() {
    // SAFETY: TLB maintenance has no effect on memory contents.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi alle2",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    }
}

/// Invalidates the stage-1 and stage-2 TLB entries of the current VMID (VTTBR_EL2).
pub fn tlbi_vmalls12e1is() {
    // SAFETY: TLB maintenance has no effect on memory contents.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    }
}

/// Invalidates the whole instruction cache to the point of unification.
pub fn ic_iallu() {
    // SAFETY: cache maintenance without data loss.
    unsafe {
        asm!(
            "ic iallu",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    }
}

/// Cleans and invalidates data cache lines covering `[start, start+len)` to
/// the point of coherency, so that a guest that starts with its MMU and caches
/// off sees what the hypervisor wrote.
pub fn dcache_clean_inval_range(start: u64, len: u64) {
    let line = dcache_line_size();
    let mut a = start & !(line - 1);
    let end = start.saturating_add(len);
    while a < end {
        // SAFETY: `dc civac` on an address mapped in our identity map; it
        // writes back dirty lines and cannot lose data.
        unsafe { asm!("dc civac, {}", in(reg) a, options(nostack, preserves_flags)) };
        a += line;
    }
    // SAFETY: a barrier.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// Zeroes `[start, start+len)` and cleans and invalidates it to the point
/// of coherency with `DC ZVA` + `DC CIVAC`, two instructions per cache line
/// (a plain store loop takes about ten times as many). Returns false, having
/// done nothing, where the CPU forbids `DC ZVA` (DCZID_EL0.DZP), its block
/// is not one cache line, or the range is not a whole number of 4-line
/// groups: the caller then zeroes with stores. Normal memory only (`DC ZVA`
/// on Device memory faults): the EL2 map's RAM.
pub fn zero_to_poc(start: u64, len: u64) -> bool {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack, preserves_flags)) };
    let block = 4u64 << (dczid & 0xf);
    let step = 4 * block;
    if dczid & 0x10 != 0
        || block != dcache_line_size()
        || !start.is_multiple_of(step)
        || !len.is_multiple_of(step)
    {
        return false;
    }
    if len == 0 {
        return true;
    }
    // SAFETY: the caller owns [start, start+len), Normal memory in the EL2
    // map that nothing else uses meanwhile; four lines per iteration.
    unsafe {
        asm!(
            "1:",
            "dc zva, {a}",
            "dc civac, {a}",
            "add {a}, {a}, {b}",
            "dc zva, {a}",
            "dc civac, {a}",
            "add {a}, {a}, {b}",
            "dc zva, {a}",
            "dc civac, {a}",
            "add {a}, {a}, {b}",
            "dc zva, {a}",
            "dc civac, {a}",
            "add {a}, {a}, {b}",
            "cmp {a}, {end}",
            "b.lo 1b",
            "dsb sy",
            a = inout(reg) start => _,
            b = in(reg) block,
            end = in(reg) start + len,
            options(nostack)
        )
    };
    true
}

fn dcache_line_size() -> u64 {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    4 << ((ctr >> 16) & 0xf)
}

/// PMCR_EL0 (for MDCR_EL2.HPMN); `aarch64-cpu` has no wrapper for it.
pub fn read_pmcr_el0() -> u64 {
    let v: u64;
    // SAFETY: reading PMCR_EL0 at EL2 has no side effects.
    unsafe { asm!("mrs {}, pmcr_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// VPIDR_EL2: the MIDR value a guest reads.
pub fn write_vpidr_el2(v: u64) {
    // SAFETY: only changes what EL1 reads from MIDR_EL1.
    unsafe { asm!("msr vpidr_el2, {}", in(reg) v, options(nostack, preserves_flags)) };
}

/// GICv3 system registers without an `aarch64-cpu` wrapper.
pub mod gic {
    use core::arch::asm;

    macro_rules! sysreg_read {
        ($name:ident, $enc:literal) => {
            #[inline(always)]
            pub fn $name() -> u64 {
                let v: u64;
                // SAFETY: reading a GIC CPU-interface register at EL2.
                unsafe { asm!(concat!("mrs {}, ", $enc), out(reg) v, options(nomem, nostack, preserves_flags)) };
                v
            }
        };
    }
    macro_rules! sysreg_write {
        ($name:ident, $enc:literal) => {
            #[inline(always)]
            pub fn $name(v: u64) {
                // SAFETY: the hypervisor owns the physical CPU interface and
                // the virtual interface's control registers.
                unsafe { asm!(concat!("msr ", $enc, ", {}"), in(reg) v, options(nostack, preserves_flags)) };
            }
        };
    }

    sysreg_read!(read_iar1, "s3_0_c12_c12_0"); // ICC_IAR1_EL1
    sysreg_read!(read_iar0, "s3_0_c12_c8_0"); // ICC_IAR0_EL1
    sysreg_write!(write_eoir0, "s3_0_c12_c8_1"); // ICC_EOIR0_EL1
    sysreg_write!(write_bpr0, "s3_0_c12_c8_3"); // ICC_BPR0_EL1
    sysreg_write!(write_igrpen0, "s3_0_c12_c12_6"); // ICC_IGRPEN0_EL1
    sysreg_write!(write_sgi0r, "s3_0_c12_c11_7"); // ICC_SGI0R_EL1
    sysreg_write!(write_ap1r0, "s3_0_c12_c9_0"); // ICC_AP1R0_EL1
    sysreg_write!(write_ap1r1, "s3_0_c12_c9_1"); // ICC_AP1R1_EL1
    sysreg_write!(write_ap1r2, "s3_0_c12_c9_2"); // ICC_AP1R2_EL1
    sysreg_write!(write_ap1r3, "s3_0_c12_c9_3"); // ICC_AP1R3_EL1
    sysreg_write!(write_eoir1, "s3_0_c12_c12_1"); // ICC_EOIR1_EL1
    sysreg_write!(write_dir, "s3_0_c12_c11_1"); // ICC_DIR_EL1
    sysreg_write!(write_pmr, "s3_0_c4_c6_0"); // ICC_PMR_EL1
    sysreg_write!(write_bpr1, "s3_0_c12_c12_3"); // ICC_BPR1_EL1
    sysreg_write!(write_igrpen1, "s3_0_c12_c12_7"); // ICC_IGRPEN1_EL1
    sysreg_write!(write_ctlr, "s3_0_c12_c12_4"); // ICC_CTLR_EL1
    sysreg_read!(read_ctlr, "s3_0_c12_c12_4");
    sysreg_write!(write_sgi1r, "s3_0_c12_c11_5"); // ICC_SGI1R_EL1
    sysreg_write!(write_sre_el2, "s3_4_c12_c9_5"); // ICC_SRE_EL2
    sysreg_read!(read_ich_hcr, "s3_4_c12_c11_0"); // ICH_HCR_EL2
    sysreg_write!(write_ich_hcr, "s3_4_c12_c11_0");
    sysreg_read!(read_ich_vtr, "s3_4_c12_c11_1"); // ICH_VTR_EL2
    sysreg_read!(read_ich_elrsr, "s3_4_c12_c11_5"); // ICH_ELRSR_EL2
    sysreg_write!(write_ich_vmcr, "s3_4_c12_c11_7"); // ICH_VMCR_EL2
    sysreg_write!(write_ich_ap1r0, "s3_4_c12_c9_0"); // ICH_AP1R0_EL2
    sysreg_write!(write_ich_ap0r0, "s3_4_c12_c8_0"); // ICH_AP0R0_EL2

    macro_rules! lr_access {
        ($($n:literal => $enc:literal),* $(,)?) => {
            /// Reads list register `n` (`n` < 16; larger values read as 0).
            pub fn read_lr(n: usize) -> u64 {
                let v: u64;
                match n {
                    // SAFETY: reading an ICH_LR register at EL2.
                    $($n => unsafe { asm!(concat!("mrs {}, ", $enc), out(reg) v, options(nomem, nostack, preserves_flags)) },)*
                    _ => v = 0,
                }
                v
            }
            /// Writes list register `n` (`n` < 16; larger values are ignored).
            pub fn write_lr(n: usize, v: u64) {
                match n {
                    // SAFETY: the hypervisor owns the list registers.
                    $($n => unsafe { asm!(concat!("msr ", $enc, ", {}"), in(reg) v, options(nostack, preserves_flags)) },)*
                    _ => {}
                }
            }
        };
    }
    lr_access!(
        0 => "s3_4_c12_c12_0", 1 => "s3_4_c12_c12_1", 2 => "s3_4_c12_c12_2", 3 => "s3_4_c12_c12_3",
        4 => "s3_4_c12_c12_4", 5 => "s3_4_c12_c12_5", 6 => "s3_4_c12_c12_6", 7 => "s3_4_c12_c12_7",
        8 => "s3_4_c12_c13_0", 9 => "s3_4_c12_c13_1", 10 => "s3_4_c12_c13_2", 11 => "s3_4_c12_c13_3",
        12 => "s3_4_c12_c13_4", 13 => "s3_4_c12_c13_5", 14 => "s3_4_c12_c13_6", 15 => "s3_4_c12_c13_7",
    );
}

// The hypervisor's `memcpy` and `memset`, in place of compiler-builtins'
// portable ones (weak symbols): those move 8 bytes per four instructions,
// or one byte at a time when the source is not 8-aligned, and they were a
// tenth of the instructions before the critical partition's first one
// (struct moves in the signature check, the RTOS image copy, building the
// partitions). These move 64 bytes per twelve, and up to 16 bytes in
// about ten instructions with no loop. With the MMU off (early
// boot) every access is Device memory, where an unaligned access faults:
// then only 8-aligned pointers take the wide path. Never used on MMIO
// (registers are reached through volatile accessors).

/// `memcpy(dst, src, n)`: non-overlapping copy; returns `dst`.
///
/// # Safety
/// The C contract: `[src, src+n)` readable, `[dst, dst+n)` writable, the two
/// disjoint.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    core::arch::naked_asm!(
        "mov    x3, x0",
        "cbz    x2, 9f",
        "mrs    x4, sctlr_el2",
        "tbz    x4, #0, 20f",
        "cmp    x2, #16",
        "b.hi   1f",
        // MMU on, 1..=16 bytes: two (possibly overlapping) accesses from
        // each end, no loop (the exit paths move small structs).
        "add    x6, x1, x2",
        "add    x7, x0, x2",
        "cmp    x2, #8",
        "b.lo   5f",
        "ldr    x4, [x1]",
        "ldur   x5, [x6, #-8]",
        "str    x4, [x0]",
        "stur   x5, [x7, #-8]",
        "ret",
        "5:",
        "cmp    x2, #4",
        "b.lo   6f",
        "ldr    w4, [x1]",
        "ldur   w5, [x6, #-4]",
        "str    w4, [x0]",
        "stur   w5, [x7, #-4]",
        "ret",
        "6:",
        "ldrb   w4, [x1]",
        "strb   w4, [x0]",
        "cmp    x2, #1",
        "b.eq   9f",
        "ldurh  w5, [x6, #-2]",
        "sturh  w5, [x7, #-2]",
        "ret",
        "20:",
        "orr    x4, x0, x1",
        "tst    x4, #7",
        "b.ne   8f",
        "1:",
        "cmp    x2, #64",
        "b.lo   3f",
        "2:",
        "ldp    x4, x5, [x1]",
        "ldp    x6, x7, [x1, #16]",
        "ldp    x8, x9, [x1, #32]",
        "ldp    x10, x11, [x1, #48]",
        "add    x1, x1, #64",
        "sub    x2, x2, #64",
        "stp    x4, x5, [x3]",
        "stp    x6, x7, [x3, #16]",
        "stp    x8, x9, [x3, #32]",
        "stp    x10, x11, [x3, #48]",
        "add    x3, x3, #64",
        "cmp    x2, #64",
        "b.hs   2b",
        "3:",
        "cmp    x2, #8",
        "b.lo   8f",
        "4:",
        "ldr    x4, [x1], #8",
        "sub    x2, x2, #8",
        "str    x4, [x3], #8",
        "cmp    x2, #8",
        "b.hs   4b",
        "8:",
        "cbz    x2, 9f",
        "7:",
        "ldrb   w4, [x1], #1",
        "subs   x2, x2, #1",
        "strb   w4, [x3], #1",
        "b.ne   7b",
        "9:",
        "ret",
    )
}

/// `memset(dst, c, n)`: fills with the byte `c`; returns `dst`.
///
/// # Safety
/// The C contract: `[dst, dst+n)` writable.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    core::arch::naked_asm!(
        "mov    x3, x0",
        "cbz    x2, 9f",
        "and    x4, x1, #0xff",
        "mov    x5, #0x0101010101010101",
        "mul    x4, x4, x5",
        "mrs    x5, sctlr_el2",
        "tbz    x5, #0, 20f",
        "cmp    x2, #16",
        "b.hi   1f",
        // MMU on, 1..=16 bytes: two (possibly overlapping) stores from each
        // end.
        "add    x7, x0, x2",
        "cmp    x2, #8",
        "b.lo   5f",
        "str    x4, [x0]",
        "stur   x4, [x7, #-8]",
        "ret",
        "5:",
        "cmp    x2, #4",
        "b.lo   6f",
        "str    w4, [x0]",
        "stur   w4, [x7, #-4]",
        "ret",
        "6:",
        "strb   w4, [x0]",
        "cmp    x2, #1",
        "b.eq   9f",
        "sturh  w4, [x7, #-2]",
        "ret",
        "20:",
        "tst    x0, #7",
        "b.ne   8f",
        "1:",
        "cmp    x2, #64",
        "b.lo   3f",
        "2:",
        "stp    x4, x4, [x3]",
        "stp    x4, x4, [x3, #16]",
        "stp    x4, x4, [x3, #32]",
        "stp    x4, x4, [x3, #48]",
        "add    x3, x3, #64",
        "sub    x2, x2, #64",
        "cmp    x2, #64",
        "b.hs   2b",
        "3:",
        "cmp    x2, #8",
        "b.lo   8f",
        "4:",
        "str    x4, [x3], #8",
        "sub    x2, x2, #8",
        "cmp    x2, #8",
        "b.hs   4b",
        "8:",
        "cbz    x2, 9f",
        "7:",
        "strb   w4, [x3], #1",
        "subs   x2, x2, #1",
        "b.ne   7b",
        "9:",
        "ret",
    )
}
