//! EL2 exception entry from the vectors in `asm.rs`.

/// The register file saved on every exception, in the order `asm.rs` writes it.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    /// x0..x30.
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

impl TrapFrame {
    /// Reads general-purpose register `n` as an instruction sees it: 31 is XZR.
    pub fn reg(&self, n: u8) -> u64 {
        self.x.get(n as usize).copied().unwrap_or(0)
    }

    /// Steps the guest past the trapped (32-bit) instruction. The guest's
    /// PC wraps as the architecture's does: a trap at the top of the
    /// address space is no overflow for the hypervisor to panic on.
    pub fn skip_instruction(&mut self) {
        self.elr = self.elr.wrapping_add(4);
    }

    /// Writes register `n`; writes to 31 (XZR) are discarded.
    pub fn set_reg(&mut self, n: u8, v: u64) {
        if let Some(r) = self.x.get_mut(n as usize) {
            *r = v;
        }
    }
}

/// Which vector was taken (the number the vector stub loads into x0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vector {
    /// From EL2 itself: always a hypervisor bug.
    Current { kind: Kind },
    /// From a guest running AArch64.
    LowerA64 { kind: Kind },
    /// From a guest running AArch32 (never allowed).
    LowerA32 { kind: Kind },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sync,
    Irq,
    Fiq,
    SError,
}

impl Vector {
    fn from_number(n: u64) -> Vector {
        let kind = match n & 3 {
            0 => Kind::Sync,
            1 => Kind::Irq,
            2 => Kind::Fiq,
            _ => Kind::SError,
        };
        match n >> 2 {
            0 | 1 => Vector::Current { kind },
            2 => Vector::LowerA64 { kind },
            _ => Vector::LowerA32 { kind },
        }
    }
}

/// Called by the common vector path with the saved frame.
pub extern "C" fn septum_trap(frame: &mut TrapFrame, vector: u64) {
    crate::exit::handle(frame, Vector::from_number(vector));
    // The way back into the guest: closed once the safe state was entered
    // (by any core, while this one handled the exit).
    if !crate::system::guests_may_run() {
        crate::system::halt_core();
    }
}

/// Called by the short interrupt path (an IRQ taken from a guest) with no
/// frame: the interrupt handling never reads or changes the guest's
/// registers.
pub extern "C" fn septum_irq() {
    crate::irq::handle();
    if !crate::system::guests_may_run() {
        crate::system::halt_core();
    }
}

/// The same for an FIQ: a Group 0 interrupt, the hypervisor's own on a core
/// whose partition has direct delivery.
pub extern "C" fn septum_fiq() {
    crate::irq::handle_fiq();
    if !crate::system::guests_may_run() {
        crate::system::halt_core();
    }
}
