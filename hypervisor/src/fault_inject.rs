//! Fault injection into the hypervisor itself, for the tests of
//! docs/fault-containment.md ("A fault in the hypervisor"). Compiled only
//! with the `fault-inject` feature: a product build has none of this, and a
//! build that has it says so in its boot log.
//!
//! The fault to inject is chosen per run, without rebuilding: the test
//! puts a 64-bit word into the last page of the hypervisor's RAM region
//! before the machine starts (QEMU `-device loader`), which nothing else
//! uses:
//!
//! `0x5345_5054 << 32 | seconds << 16 | kind << 8 | core`
//!
//! - kind 1: an EL2 data abort (a load from an unmapped address) on `core`,
//!   `seconds` after reset;
//! - kind 2: a panic on `core`, likewise;
//! - kind 3: `core` hangs at EL2 with interrupts masked, likewise;
//! - kind 4: the critical partition's images fail their re-verification
//!   before a restart;
//! - kind 5: `core` overflows its EL2 stack (unbounded recursion), likewise;
//! - kind 6: `core` writes to the hypervisor's own code;
//! - kind 7: `core` writes to the critical partition's pristine image;
//! - kind 8: `core` jumps into its own (writable) stack.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::config::CONFIG;
use crate::{percpu, time};

const MAGIC: u64 = 0x5345_5054;
static WORD: AtomicU64 = AtomicU64::new(0);

/// Where the test leaves the word.
fn slot() -> u64 {
    let h = CONFIG.platform.hypervisor;
    h.start.raw() + h.size - 0x1000
}

/// Reads the word (boot core, first thing after the MMU is on).
pub fn init() {
    // SAFETY: the last page of the hypervisor's own RAM, in the EL2 map,
    // used by nothing else (the image, stacks and heap lie far below it).
    let w = unsafe { core::ptr::read_volatile(slot() as *const u64) };
    if w >> 32 == MAGIC {
        WORD.store(w, Ordering::Relaxed);
    }
}

pub fn announce() {
    let w = WORD.load(Ordering::Relaxed);
    log::warn!(
        "FAULT-INJECTION BUILD (not for a product): {}",
        match (w >> 8) & 0xff {
            0 => "nothing to inject in this run",
            1 => "an EL2 data abort",
            2 => "a hypervisor panic",
            3 => "a core hung at EL2",
            4 => "a failing re-verification of the critical partition",
            5 => "an EL2 stack overflow",
            6 => "a write to the hypervisor's code",
            7 => "a write to a pristine guest image",
            8 => "an EL2 jump into writable memory",
            _ => "an unknown fault (ignored)",
        }
    );
}

/// The liveness tick of this core: inject now if this is the time and
/// place.
pub fn on_tick() {
    let w = WORD.load(Ordering::Relaxed);
    let kind = (w >> 8) & 0xff;
    if !matches!(kind, 1..=3 | 5..=8) || (w & 0xff) as usize != percpu::core() {
        return;
    }
    if time::ticks() < ((w >> 16) & 0xffff) * time::freq() {
        return;
    }
    WORD.store(0, Ordering::Relaxed);
    match kind {
        1 => {
            log::warn!("fault injection: EL2 data abort on core {}", percpu::core());
            // Beyond the EL2 map (4 GiB): a translation fault at EL2.
            // SAFETY: none: this load is meant to fault.
            let _ = unsafe { core::ptr::read_volatile(0x80_0000_0000 as *const u64) };
        }
        2 => panic!("fault injection on core {}", percpu::core()),
        5 => {
            log::warn!(
                "fault injection: EL2 stack overflow on core {}",
                percpu::core()
            );
            let _ = core::hint::black_box(recurse(0));
        }
        6 => {
            log::warn!(
                "fault injection: write to EL2 code on core {}",
                percpu::core()
            );
            let at = on_tick as *const () as u64;
            // SAFETY: none: the hypervisor's code is read-only; this store
            // is meant to fault (a permission fault).
            unsafe { core::ptr::write_volatile(at as *mut u64, 0) };
        }
        7 => {
            log::warn!(
                "fault injection: write to a pristine image on core {}",
                percpu::core()
            );
            let at = CONFIG
                .partitions
                .iter()
                .find(|p| p.criticality == septum_core::config::Criticality::Critical)
                .and_then(|p| p.images.first())
                .map_or(0, |i| i.data.as_ptr() as u64);
            // SAFETY: none: the pristine images are read-only at EL2; this
            // store is meant to fault.
            unsafe { core::ptr::write_volatile(at as *mut u64, 0) };
        }
        8 => {
            log::warn!(
                "fault injection: jump into the EL2 stack on core {}",
                percpu::core()
            );
            // Four `ret` instructions, on this core's stack.
            let code = core::hint::black_box([0xd65f_03c0u32; 4]);
            // SAFETY: none: the stack is never executable; the branch is
            // meant to fault (an instruction abort).
            let f: extern "C" fn() = unsafe { core::mem::transmute(code.as_ptr()) };
            f();
        }
        _ => {
            log::warn!(
                "fault injection: core {} hangs at EL2, interrupts masked",
                percpu::core()
            );
            loop {
                core::hint::spin_loop();
            }
        }
    }
}

/// Whether the critical partition's re-verification is to fail.
pub fn recheck_fails(p: &crate::partition::PartitionRt) -> bool {
    (WORD.load(Ordering::Relaxed) >> 8) & 0xff == 4
        && p.cfg.criticality == septum_core::config::Criticality::Critical
}

/// Recursion that keeps 512 bytes per frame until the guard page stops it.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth.wrapping_add(1)).wrapping_add(frame[0])
}
