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

/// What the short synchronous path saved (`asm.rs`, `septum_sync_common`):
/// x0-x18, x29 and x30 where a [`TrapFrame`] has them. Not x19-x28 at
/// first (`ALL = false`): the short handler, a C-ABI function, keeps those
/// in their registers, so an exit that reads or writes one of them
/// ([`ShortFrame::holds`]) is handed back, the assembly stores x19-x28 and
/// tries again with all of them (`ALL = true`). Never ELR_EL2 and SPSR_EL2,
/// which stay in their registers.
#[repr(C)]
pub struct ShortFrame<const ALL: bool> {
    x: [u64; 31],
}

const _: () =
    assert!(core::mem::size_of::<ShortFrame<true>>() <= core::mem::size_of::<TrapFrame>());

/// A guest's general-purpose registers as an exit handler sees them.
pub trait GuestRegs {
    /// Register `n` (31 is XZR).
    fn get(&self, n: u8) -> u64;
    /// Writes register `n`; writes to XZR are discarded.
    fn put(&mut self, n: u8, v: u64);
}

impl GuestRegs for TrapFrame {
    fn get(&self, n: u8) -> u64 {
        self.reg(n)
    }
    fn put(&mut self, n: u8, v: u64) {
        self.set_reg(n, v);
    }
}

impl<const ALL: bool> ShortFrame<ALL> {
    /// x0-x3: a hypercall's function ID and first arguments.
    pub fn args(&self) -> [u64; 4] {
        [self.x[0], self.x[1], self.x[2], self.x[3]]
    }

    /// A hypercall's results in x0 and x1.
    pub fn set_results(&mut self, x0: u64, x1: u64) {
        self.x[0] = x0;
        self.x[1] = x1;
    }

    /// Whether register `n` is in the frame, or is XZR.
    #[inline(always)]
    pub fn holds(n: u8) -> bool {
        ALL || !(19..=28).contains(&n)
    }
}

/// Only for registers the frame [`holds`](ShortFrame::holds): the short
/// paths check before they emulate. Anything else reads as 0 and is not
/// written (never reached; no panic on an exit path).
impl<const ALL: bool> GuestRegs for ShortFrame<ALL> {
    fn get(&self, n: u8) -> u64 {
        if !Self::holds(n) {
            return 0;
        }
        self.x.get(n as usize).copied().unwrap_or(0)
    }
    fn put(&mut self, n: u8, v: u64) {
        if !Self::holds(n) {
            return;
        }
        if let Some(r) = self.x.get_mut(n as usize) {
            *r = v;
        }
    }
}

/// What became of an exit on the short synchronous path.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Short {
    /// Nothing changed; the full path takes the exit.
    Slow = 0,
    /// Handled; back to the guest.
    Done = 1,
    /// Nothing changed; it needs one of x19-x28 (try again with them).
    NeedsAll = 2,
}

/// Called by the short synchronous path (a trap from a guest running
/// AArch64), first with x19-x28 still in their registers.
pub extern "C" fn septum_sync_fast(frame: &mut ShortFrame<false>) -> u32 {
    finish(crate::exit::fast(frame))
}

/// The same, again, with x19-x28 in the frame too (`NeedsAll`). Never
/// answers `NeedsAll`: a frame with every register cannot lack one, and
/// should a future exit claim otherwise it takes the full path, because the
/// assembly would return to the guest on a second `NeedsAll`.
pub extern "C" fn septum_sync_retry(frame: &mut ShortFrame<true>) -> u32 {
    match crate::exit::fast(frame) {
        Short::NeedsAll => Short::Slow as u32,
        r => finish(r),
    }
}

#[inline(always)]
fn finish(r: Short) -> u32 {
    if r == Short::Done && !crate::system::guests_may_run() {
        crate::system::halt_core();
    }
    r as u32
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
