//! Doorbells at run time (docs/channels.md, "Doorbell"): the writer's
//! CHANNEL_NOTIFY and the reader's emulated PL061 (`septum_core::doorbell`).
//!
//! The two sides share one atomic byte and nothing else. The writer's core
//! sets its bit and makes the reader's physical SPI pending (a single
//! write-one-to-set register, no lock); the reader's cores fold the bit
//! into their PL061 under a lock only they take. So a ring costs the writer
//! a bounded handful of instructions whatever the reader does, and the
//! reader's core does the reader's work. The writer's rate limit is a
//! token bucket only the writer's cores touch.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU8, Ordering};

use septum_core::abi::channel::Role;
use septum_core::config::{ChannelEnd, Partition};
use septum_core::doorbell::{Bucket, Pl061, LINE};
use septum_core::hypercall::{find_end, INVALID_PARAMETER, LIMITED, NOT_SUPPORTED};
use spin::mutex::SpinMutex as Mutex;

use crate::arch::aarch64::asm;
use crate::partition::PartitionRt;
use crate::{irq, time};

/// A doorbell the partition receives (one of its reader ends).
pub struct Bell {
    irq: u32,
    /// Set by the writer's core; folded into `regs` by the reader's.
    rung: AtomicU8,
    /// Taken only on the reader's cores.
    regs: Mutex<Pl061>,
}

/// A doorbell the partition rings (one of its writer ends).
pub struct Ringer {
    bucket: Mutex<Bucket>,
    /// The reader and the index of its end.
    peer: usize,
    peer_end: usize,
}

/// Per channel end of `cfg`, in order: its bell (reader ends with a
/// doorbell) and its ringer (writer ends with one). A doorbell whose SPI
/// the GIC does not have is left out (its ring answers NOT_SUPPORTED).
#[allow(clippy::type_complexity)]
pub fn build(
    cfg: &'static Partition,
    all: &'static [Partition],
) -> (Box<[Option<Bell>]>, Box<[Option<Ringer>]>) {
    let lines = irq::gic().lines();
    let bells = cfg
        .channels
        .iter()
        .map(|c| {
            let d = c.incoming_doorbell()?;
            if d.irq >= lines {
                log::warn!(
                    "{}: doorbell of channel '{}': SPI {} is beyond the GIC's {lines} lines; it never rings",
                    cfg.name,
                    c.name,
                    d.irq
                );
                return None;
            }
            Some(Bell {
                irq: d.irq,
                rung: AtomicU8::new(0),
                regs: Mutex::new(Pl061::new()),
            })
        })
        .collect();
    let ringers = cfg
        .channels
        .iter()
        .map(|c| {
            c.doorbell.filter(|_| c.role == Role::Writer)?;
            let peer_end = all
                .get(c.peer)?
                .channels
                .iter()
                .position(|e| is_reader_of(e, c))?;
            Some(Ringer {
                bucket: Mutex::new(Bucket::new()),
                peer: c.peer,
                peer_end,
            })
        })
        .collect();
    (bells, ringers)
}

fn is_reader_of(e: &ChannelEnd, writer: &ChannelEnd) -> bool {
    e.role == Role::Reader && e.name == writer.name
}

/// CHANNEL_NOTIFY(name_lo, name_hi) from `p`: x0. Every end is compared, as
/// for CHANNEL_INFO, so the cost does not depend on the name asked.
pub fn notify(p: &PartitionRt, name: [u64; 2]) -> i64 {
    let Some(i) = find_end(p.cfg.channels, name) else {
        return INVALID_PARAMETER;
    };
    let ringer = p.ringers.get(i).and_then(Option::as_ref);
    let (Some(r), Some(d)) = (ringer, p.cfg.channels[i].doorbell) else {
        return INVALID_PARAMETER;
    };
    if !r
        .bucket
        .lock()
        .take(time::ticks(), time::freq(), d.per_second, d.burst)
    {
        return LIMITED;
    }
    let bell = crate::partition::all()
        .get(r.peer)
        .and_then(|q| q.bells.get(r.peer_end))
        .and_then(Option::as_ref);
    let Some(bell) = bell else {
        return NOT_SUPPORTED;
    };
    bell.rung.fetch_or(LINE, Ordering::Release);
    // The bit before the interrupt: the reader's core, taking the SPI,
    // finds it (the same barrier Linux puts before a GICv2 SGI).
    asm::dmb_ishst();
    irq::gic().set_spi_pending(bell.irq, true);
    0
}

/// A trapped access by `p` to its doorbell frame for channel end `end`.
pub fn mmio(
    p: &PartitionRt,
    end: usize,
    off: u64,
    width: u8,
    store: Option<u64>,
) -> Result<u64, &'static str> {
    let bell = p
        .bells
        .get(end)
        .and_then(Option::as_ref)
        .ok_or("no doorbell")?;
    let mut g = bell.regs.lock();
    g.pulse(bell.rung.swap(0, Ordering::Acquire));
    let bad = |_| "invalid doorbell access";
    match store {
        None => g.read(off, width).map(u64::from).map_err(bad),
        Some(v) => {
            g.write(off, width, v as u32).map_err(bad)?;
            // The output is a level: still (or newly) asserted after an
            // unmask or a clear, the SPI fires again.
            if g.asserted() {
                irq::gic().set_spi_pending(bell.irq, true);
            }
            Ok(0)
        }
    }
}

/// The reader's doorbells back to reset (its restart). A ring racing this
/// is either folded or dropped; the reader reads its channel on start.
pub fn reset(p: &PartitionRt) {
    for b in p.bells.iter().flatten() {
        *b.regs.lock() = Pl061::new();
        b.rung.store(0, Ordering::Relaxed);
    }
}
