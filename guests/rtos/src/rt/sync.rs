//! Shared-state cells for a single core with interrupt-driven preemption.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use super::cpu;

/// State shared between contexts of different priority (jobs of several
/// tasks, the timer interrupt). Access masks IRQs for the closure's duration,
/// so keep closures short (copies, counters).
pub struct IrqCell<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the RTOS runs on one core; `with` masks IRQs (the only source of
// concurrency) and the `busy` flag rejects nested access, so at most one
// `&mut T` exists at any time.
unsafe impl<T: Send> Sync for IrqCell<T> {}

impl<T> IrqCell<T> {
    pub const fn new(value: T) -> Self {
        Self {
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let daif = cpu::mask_irqs();
        if self.busy.swap(true, Ordering::Acquire) {
            super::fatal("nested IrqCell access");
        }
        // SAFETY: IRQs are masked on the only core and `busy` was clear, so
        // no other reference to the value exists until we clear it again.
        let r = f(unsafe { &mut *self.value.get() });
        self.busy.store(false, Ordering::Release);
        cpu::restore_daif(daif);
        r
    }
}

/// State owned by the jobs of exactly one task. Jobs of one task never
/// overlap (the scheduler keeps at most one in flight), so no masking is
/// needed; the flag turns a design error (a second user) into a clean halt
/// instead of aliasing.
pub struct JobCell<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: exclusive access is enforced at run time by the atomic `busy` flag
// (swap is a single atomic read-modify-write, so a preempting context cannot
// also acquire it).
unsafe impl<T: Send> Sync for JobCell<T> {}

impl<T> JobCell<T> {
    pub const fn new(value: T) -> Self {
        Self {
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        if self.busy.swap(true, Ordering::Acquire) {
            super::fatal("JobCell used by two contexts");
        }
        // SAFETY: we hold `busy`, so this is the only reference.
        let r = f(unsafe { &mut *self.value.get() });
        self.busy.store(false, Ordering::Release);
        r
    }
}
