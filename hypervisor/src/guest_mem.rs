//! A partition's memory as the hypervisor writes it: the one place that
//! turns a guest-physical range into host memory and writes it.
//!
//! Every write names guest-physical addresses, is translated through the
//! partition's own memory regions (`septum_core::hypercall::translate`: one
//! region must hold the whole range, and a buffer the guest named must be
//! memory the guest may write itself), is checked against the EL2 map, and
//! is cleaned to the point of coherency afterwards, so that a guest running
//! with its caches off (at boot) reads what was written. Large writes go in
//! steps that mark this core alive (`liveness::progress`).

use septum_core::addr::{GuestPhysAddr, PhysAddr};
use septum_core::config::MemRegion;
use septum_core::hypercall::{translate, Need};

use crate::arch::aarch64::{asm, mmu};
use crate::partition::PartitionRt;

/// Scrubbing and copying go in steps of this many bytes, each stamping the
/// core's liveness (a 2 MiB step takes about 1 ms on a board).
const STEP: usize = 2 << 20;

/// Why a write was refused (nothing was written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestMemError {
    /// Not inside one memory region of the partition that the write may use.
    NotInPartition,
    /// Inside the partition, but outside the hypervisor's own map.
    OutsideMap,
}

fn target(
    p: &PartitionRt,
    ipa: GuestPhysAddr,
    len: u64,
    need: Need,
) -> Result<PhysAddr, GuestMemError> {
    let pa = translate(p.cfg.memory, ipa, len, need).ok_or(GuestMemError::NotInPartition)?;
    if !mmu::covers(pa.raw(), len) {
        return Err(GuestMemError::OutsideMap);
    }
    Ok(pa)
}

/// Whether `[ipa, ipa + len)` could be written for `need` (see [`write`]).
pub fn check(
    p: &PartitionRt,
    ipa: GuestPhysAddr,
    len: u64,
    need: Need,
) -> Result<(), GuestMemError> {
    target(p, ipa, len, need).map(|_| ())
}

/// Writes `data` at `ipa`, then `zeroes` zero bytes after it (nothing at
/// all for an empty write).
pub fn write(
    p: &PartitionRt,
    ipa: GuestPhysAddr,
    data: &[u8],
    zeroes: usize,
    need: Need,
) -> Result<(), GuestMemError> {
    let len = data.len() + zeroes;
    if len == 0 {
        return Ok(());
    }
    let pa = target(p, ipa, len as u64, need)?;
    for (i, chunk) in data.chunks(STEP).enumerate() {
        let at = pa.raw() + (i * STEP) as u64;
        // SAFETY: [pa, pa + len) lies in one memory region of this
        // partition (translate) and in the EL2 identity map (covers). That
        // memory is the partition's: nothing of the hypervisor's lives
        // there, and the region's validation keeps it disjoint from the
        // hypervisor and from other partitions.
        unsafe { core::ptr::copy_nonoverlapping(chunk.as_ptr(), at as *mut u8, chunk.len()) };
        asm::dcache_clean_inval_range(at, chunk.len() as u64);
        crate::liveness::progress();
    }
    if zeroes > 0 {
        let at = pa.raw() + data.len() as u64;
        // SAFETY: as above; the zeroes are inside the checked range.
        unsafe { core::ptr::write_bytes(at as *mut u8, 0, zeroes) };
        asm::dcache_clean_inval_range(at, zeroes as u64);
    }
    Ok(())
}

/// Zeroes a whole memory region of a partition that is not running (before
/// its images are loaded), with `DC ZVA` where the CPU allows it.
pub fn scrub(m: &MemRegion) -> Result<(), GuestMemError> {
    scrub_range(m.pa, m.size)
}

/// Zeroes `[pa, pa + size)` to the point of coherency (so that a
/// non-cacheable mapping of it, a channel's, sees the zeros and no dirty
/// line is left to be written back over the owner's stores later).
pub fn scrub_range(pa: PhysAddr, size: u64) -> Result<(), GuestMemError> {
    if !mmu::covers(pa.raw(), size) {
        return Err(GuestMemError::OutsideMap);
    }
    let mut at = pa.raw();
    let end = pa.raw() + size;
    while at < end {
        let n = (end - at).min(STEP as u64);
        if !asm::zero_to_poc(at, n) {
            // SAFETY: the range is RAM owned by this (not running)
            // partition alone, or a channel before any partition runs
            // (validated: disjoint from the hypervisor and from every other
            // partition's memory), in the EL2 map (checked).
            unsafe { core::ptr::write_bytes(at as *mut u8, 0, n as usize) };
            asm::dcache_clean_inval_range(at, n);
        }
        crate::liveness::progress();
        at += n;
    }
    Ok(())
}
