//! AArch64 EL2 glue: entry, vectors, MMU, traps. All `asm!` is in `asm.rs`.

pub mod asm;
pub mod mmu;
pub mod trap;
