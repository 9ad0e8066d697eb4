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
/// x0-x30 where a [`TrapFrame`] has them, but not ELR_EL2 and SPSR_EL2,
/// which stay in their registers. On return only x0-x18, x29 and x30 are
/// reloaded, unless a handler wrote one of x19-x28 (`reload`): the handler,
/// a C-ABI function, keeps those itself.
#[repr(C)]
pub struct ShortFrame {
    x: [u64; 31],
    /// Set when one of x19-x28 was written. (The slot where a `TrapFrame`
    /// keeps ELR_EL2; the full path fills it in after the short one gave up.)
    reload: u64,
}

const _: () = assert!(core::mem::size_of::<ShortFrame>() <= core::mem::size_of::<TrapFrame>());
const _: () =
    assert!(core::mem::offset_of!(ShortFrame, reload) == core::mem::offset_of!(TrapFrame, elr));

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

impl ShortFrame {
    /// x0-x3: a hypercall's function ID and first arguments.
    pub fn args(&self) -> [u64; 4] {
        [self.x[0], self.x[1], self.x[2], self.x[3]]
    }

    /// A hypercall's results in x0 and x1.
    pub fn set_results(&mut self, x0: u64, x1: u64) {
        self.x[0] = x0;
        self.x[1] = x1;
    }
}

impl GuestRegs for ShortFrame {
    fn get(&self, n: u8) -> u64 {
        self.x.get(n as usize).copied().unwrap_or(0)
    }
    fn put(&mut self, n: u8, v: u64) {
        if let Some(r) = self.x.get_mut(n as usize) {
            *r = v;
            if (19..=28).contains(&n) {
                self.reload = 1;
            }
        }
    }
}

/// What the short synchronous path does next (`septum_sync_fast`'s result).
const SLOW: u32 = 0;
const DONE: u32 = 1;
const DONE_RELOAD: u32 = 2;

/// Called by the short synchronous path (a trap from a guest running
/// AArch64). `DONE` or `DONE_RELOAD`: handled, back to the guest; `SLOW`:
/// nothing was changed, and the full path handles the exit.
pub extern "C" fn septum_sync_fast(frame: &mut ShortFrame) -> u32 {
    frame.reload = 0;
    if !crate::exit::fast(frame) {
        return SLOW;
    }
    if !crate::system::guests_may_run() {
        crate::system::halt_core();
    }
    if frame.reload != 0 {
        DONE_RELOAD
    } else {
        DONE
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
