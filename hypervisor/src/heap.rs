//! Boot-time heap.
//!
//! Page tables, per-partition state and the like are allocated while the
//! system boots; after [`seal`] every allocation fails loudly, which enforces
//! that no exit or interrupt path allocates (a failed allocation halts the
//! core with a message, it never corrupts state).

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use buddy_system_allocator::LockedHeap;

const HEAP_SIZE: usize = 4 << 20;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<MaybeUninit<[u8; HEAP_SIZE]>>);

// SAFETY: handed to the allocator once (init), never touched directly after.
unsafe impl Sync for Arena {}

// In its own NOLOAD section (link.ld.in), not in .bss: the allocator needs
// no zeroed memory, and zeroing 4 MiB with the MMU off cost the boot core
// about 1.6 ms before anything else ran.
#[unsafe(link_section = ".heap")]
static ARENA: Arena = Arena(UnsafeCell::new(MaybeUninit::uninit()));
static SEALED: AtomicBool = AtomicBool::new(false);
static IN_USE: AtomicUsize = AtomicUsize::new(0);

struct BootHeap(LockedHeap<32>);

#[global_allocator]
static HEAP: BootHeap = BootHeap(LockedHeap::empty());

// SAFETY: delegates to the buddy allocator; refuses (null) after sealing.
unsafe impl GlobalAlloc for BootHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if SEALED.load(Ordering::Relaxed) {
            return core::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

/// Hands the arena to the allocator. Boot core, once.
pub fn init() {
    let start = ARENA.0.get() as usize;
    // SAFETY: the arena is a static used only by the allocator from now on.
    unsafe { HEAP.0.lock().init(start, HEAP_SIZE) };
}

/// Ends the boot phase: from now on every allocation fails.
pub fn seal() {
    SEALED.store(true, Ordering::SeqCst);
}

/// Bytes allocated and not freed (for the boot log and leak checks).
pub fn in_use() -> usize {
    IN_USE.load(Ordering::Relaxed)
}

pub const fn size() -> usize {
    HEAP_SIZE
}
