//! REQ-FLT-2: the list-register manager under random inject / refill
//! sequences, with a simulated guest acknowledging and deactivating
//! interrupts, on 4 or 16 list registers and a small or large queue.
//!
//! Checks, after every step:
//! - no panic; `inject` refuses exactly the invalid interrupts (own oracle)
//!   and reports `QueueFull` only with a full queue; a refused injection
//!   changes neither the LRs nor the queue;
//! - no vINTID sits in two valid LRs, and (when the caller keeps its
//!   contract, see `run`) none is both pending in an LR and queued; the
//!   queue is bounded, sorted by priority, free of duplicates;
//! - every LR the manager wrote is a valid Group 1 entry (HW entries name a
//!   PPI/SPI and are never SGIs);
//! - nothing pending is lost: what was pending (in an LR or queued) before
//!   an inject/refill still is afterwards, and so is the injected interrupt;
//! - the outcome tells the truth (`Written` used a free LR, `Preempted`
//!   evicted a less urgent pending entry into the queue, ...);
//! - `refill` changes only the LRs it reports and leaves nothing queued
//!   that it could have placed;
//! - `hw_state_view` (REQ-ISO-5) agrees, bit by bit, with a per-interrupt
//!   oracle over the LRs and queue, for random physical pending/active
//!   words and masks.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use septum_core::vgic::lr::{
    decode_lr, hw_state_view, Irq, LrError, LrManager, LrOutcome, LrState, StateReg,
};

/// A vINTID or pINTID: mostly from a small range so that collisions happen.
#[derive(Clone, Copy, Debug, Arbitrary)]
enum IntId {
    Small(u8),
    Any(u32),
}

impl IntId {
    fn get(self) -> u32 {
        match self {
            Self::Small(v) => u32::from(v % 48),
            Self::Any(v) => v,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Inject {
        vintid: IntId,
        pintid: Option<IntId>,
        priority: u8,
    },
    Refill,
    /// The guest acknowledges the interrupt in LR `n`: Pending -> Active.
    Ack(u8),
    /// The guest deactivates LR `n`: Active -> Invalid, PendingActive -> Pending.
    Deactivate(u8),
    Remove(IntId),
    Clear,
}

#[derive(Debug, Arbitrary)]
struct Input {
    sixteen_lrs: bool,
    big_queue: bool,
    /// Drop the caller contract (see `run`): a vINTID may be injected both
    /// as a HW and as a virtual interrupt, and a HW one while in flight.
    free: bool,
    /// Physical pending and active words and a mask, for `hw_state_view`.
    phys: [u32; 3],
    ops: Vec<Op>,
}

fn valid(irq: &Irq) -> bool {
    irq.vintid < 1020
        && match irq.pintid {
            None => true,
            Some(p) => (16..1020).contains(&p) && irq.vintid >= 16,
        }
}

fn is_pending(s: LrState) -> bool {
    matches!(s, LrState::Pending | LrState::PendingActive)
}

/// vINTIDs pending in an LR or queued.
fn pending_set<const Q: usize>(lrs: &[u64], mgr: &LrManager<Q>) -> BTreeSet<u32> {
    lrs.iter()
        .map(|&r| decode_lr(r))
        .filter(|l| is_pending(l.state))
        .map(|l| l.vintid)
        .chain(mgr.queue().iter().map(|q| q.vintid))
        .collect()
}

/// The LR holding `vintid` in a non-pending active state that blocks it
/// from a second LR (see `LrManager::inject`): a HW entry, or `irq` is HW.
fn blocked(lrs: &[u64], irq: &Irq) -> bool {
    lrs.iter().map(|&r| decode_lr(r)).any(|l| {
        l.vintid == irq.vintid
            && l.state == LrState::Active
            && (l.pintid.is_some() || irq.pintid.is_some())
    })
}

/// The guest's view of one interrupt (see `hw_state_view`), per bit.
fn check_state_view<const Q: usize>(lrs: &[u64], mgr: &LrManager<Q>, phys: [u32; 3]) {
    let queued: Vec<u32> = mgr.queue().iter().map(|q| q.vintid).collect();
    let [pp, pa, mask] = phys;
    for word in 0..2u32 {
        for reg in [StateReg::Pending, StateReg::Active] {
            let got = hw_state_view(reg, word, mask, pp, pa, lrs, &queued);
            for bit in 0..32 {
                let intid = word * 32 + bit;
                let copies: Vec<LrState> = lrs
                    .iter()
                    .map(|&r| decode_lr(r))
                    .filter(|l| l.pintid.is_some() && l.vintid == intid)
                    .map(|l| l.state)
                    .filter(|&s| s != LrState::Invalid)
                    .collect();
                let in_queue = queued.contains(&intid);
                let held = !copies.is_empty() || in_queue;
                let want = mask & (1 << bit) != 0
                    && match reg {
                        StateReg::Pending => {
                            pp & (1 << bit) != 0
                                || in_queue
                                || copies.iter().any(|&s| is_pending(s))
                        }
                        StateReg::Active => {
                            copies
                                .iter()
                                .any(|&s| matches!(s, LrState::Active | LrState::PendingActive))
                                || (pa & (1 << bit) != 0 && !held)
                        }
                    };
                assert_eq!(
                    got & (1 << bit) != 0,
                    want,
                    "{reg:?} of {intid}: {lrs:x?} {queued:?} {phys:x?}"
                );
            }
        }
    }
}

fn check_invariants<const Q: usize>(lrs: &[u64], mgr: &LrManager<Q>, contract: bool) {
    let mut seen = BTreeSet::new();
    for (i, &raw) in lrs.iter().enumerate() {
        let l = decode_lr(raw);
        if l.state == LrState::Invalid {
            continue;
        }
        assert!(
            seen.insert(l.vintid),
            "vINTID {} in two LRs: {lrs:x?}",
            l.vintid
        );
        assert!(l.vintid < 1020 && l.group1, "LR{i} = {raw:#x}");
        assert!(!l.eoi_maintenance, "LR{i} = {raw:#x}");
        if let Some(p) = l.pintid {
            assert!(
                (16..1020).contains(&p) && l.vintid >= 16,
                "LR{i} = {raw:#x}"
            );
            assert_ne!(l.state, LrState::PendingActive, "HW LR{i} pending+active");
        }
    }
    let q = mgr.queue();
    assert!(q.len() <= Q && mgr.queued() == q.len());
    assert_eq!(mgr.has_queued(), !q.is_empty());
    assert!(
        q.windows(2).all(|w| w[0].priority <= w[1].priority),
        "queue order {q:?}"
    );
    let mut qs = BTreeSet::new();
    for irq in q {
        assert!(valid(irq), "invalid queued {irq:?}");
        assert!(qs.insert(irq.vintid), "{} queued twice", irq.vintid);
        let in_lr = lrs
            .iter()
            .map(|&r| decode_lr(r))
            .any(|l| l.vintid == irq.vintid && is_pending(l.state));
        if contract {
            assert!(!in_lr, "{} pending in an LR and queued", irq.vintid);
        }
    }
}

/// Runs `ops`. Unless `free`, the injections follow the hypervisor's
/// contract: a vINTID is always injected the same way (HW with the same
/// pINTID, or virtual: the first injection decides), and a HW interrupt
/// is not injected again while it is in flight (in an LR or queued),
/// because the physical GIC does not signal an active interrupt again
/// until the guest's deactivation reaches it.
fn run<const Q: usize>(nr_lrs: usize, ops: Vec<Op>, free: bool, phys: [u32; 3]) {
    let mut lrs = vec![0u64; nr_lrs];
    let mut mgr = LrManager::<Q>::new();
    let mut kind: BTreeMap<u32, Option<u32>> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Inject {
                vintid,
                pintid,
                priority,
            } => {
                let mut irq = Irq {
                    vintid: vintid.get(),
                    pintid: pintid.map(IntId::get),
                    priority,
                };
                if !free {
                    irq.pintid = *kind.entry(irq.vintid).or_insert(irq.pintid);
                    let in_flight = lrs
                        .iter()
                        .map(|&r| decode_lr(r))
                        .any(|l| l.vintid == irq.vintid && l.state != LrState::Invalid)
                        || mgr.queue().iter().any(|q| q.vintid == irq.vintid);
                    if irq.pintid.is_some() && in_flight {
                        continue;
                    }
                }
                let (lrs_before, q_before) = (lrs.clone(), mgr.queue().to_vec());
                let pending_before = pending_set(&lrs, &mgr);
                let free_before = lrs_before
                    .iter()
                    .any(|&r| decode_lr(r).state == LrState::Invalid);
                match mgr.inject(&mut lrs, irq) {
                    Err(e) => {
                        match e {
                            LrError::Invalid => assert!(!valid(&irq), "{irq:?} refused"),
                            LrError::Conflict => {
                                let lr_kinds =
                                    lrs_before.iter().map(|&r| decode_lr(r)).filter(|l| {
                                        l.state != LrState::Invalid && l.vintid == irq.vintid
                                    });
                                let mixed = lr_kinds
                                    .map(|l| l.pintid)
                                    .chain(
                                        q_before
                                            .iter()
                                            .filter(|q| q.vintid == irq.vintid)
                                            .map(|q| q.pintid),
                                    )
                                    .any(|p| p != irq.pintid);
                                assert!(mixed, "Conflict without a mixed-kind vINTID: {irq:?}");
                            }
                            LrError::QueueFull => {
                                assert!(valid(&irq));
                                assert_eq!(q_before.len(), Q, "QueueFull with room");
                            }
                        }
                        assert_eq!(lrs, lrs_before, "refused inject changed the LRs");
                        assert_eq!(
                            mgr.queue(),
                            &q_before[..],
                            "refused inject changed the queue"
                        );
                    }
                    Ok(outcome) => {
                        assert!(valid(&irq), "{irq:?} accepted");
                        let queued = |v: u32| mgr.queue().iter().any(|q| q.vintid == v);
                        let lr_of = |i: usize| decode_lr(lrs[i]);
                        match outcome {
                            LrOutcome::Written { lr } => {
                                assert_eq!(decode_lr(lrs_before[lr]).state, LrState::Invalid);
                                let l = lr_of(lr);
                                assert_eq!(
                                    (l.vintid, l.pintid, l.priority, l.state),
                                    (irq.vintid, irq.pintid, irq.priority, LrState::Pending)
                                );
                            }
                            LrOutcome::Preempted { lr, evicted } => {
                                assert!(!free_before, "preempted with a free LR");
                                let old = decode_lr(lrs_before[lr]);
                                assert_eq!(old.state, LrState::Pending);
                                assert_eq!(old.vintid, evicted);
                                assert!(old.priority > irq.priority, "evicted a more urgent one");
                                assert!(queued(evicted), "evicted {evicted} lost");
                                assert_eq!(lr_of(lr).vintid, irq.vintid);
                            }
                            LrOutcome::MadePendingActive { lr } => {
                                let l = lr_of(lr);
                                assert_eq!(
                                    (l.vintid, l.state),
                                    (irq.vintid, LrState::PendingActive)
                                );
                                assert_eq!(decode_lr(lrs_before[lr]).state, LrState::Active);
                            }
                            LrOutcome::AlreadyPending { lr } => {
                                let l = lr_of(lr);
                                assert!(l.vintid == irq.vintid && is_pending(l.state));
                                assert_eq!(lrs, lrs_before);
                            }
                            LrOutcome::AlreadyQueued => {
                                assert!(queued(irq.vintid));
                                assert_eq!(lrs, lrs_before);
                                assert_eq!(mgr.queue(), &q_before[..]);
                            }
                            LrOutcome::Queued => {
                                assert!(queued(irq.vintid));
                                assert!(
                                    !free_before || blocked(&lrs_before, &irq),
                                    "{irq:?} queued although an LR was free"
                                );
                                assert_eq!(lrs, lrs_before);
                            }
                        }
                        let after = pending_set(&lrs, &mgr);
                        assert!(after.contains(&irq.vintid), "{irq:?} lost");
                        assert!(
                            after.is_superset(&pending_before),
                            "inject lost an interrupt"
                        );
                    }
                }
            }
            Op::Refill => {
                let lrs_before = lrs.clone();
                let pending_before = pending_set(&lrs, &mgr);
                let changed = mgr.refill(&mut lrs);
                assert_eq!(u64::from(changed) >> nr_lrs, 0, "mask {changed:#x}");
                for i in 0..nr_lrs {
                    if changed & (1 << i) == 0 {
                        assert_eq!(lrs[i], lrs_before[i], "LR{i} changed, not reported");
                    }
                }
                assert!(
                    pending_set(&lrs, &mgr).is_superset(&pending_before),
                    "refill lost one"
                );
                let free = lrs.iter().any(|&r| decode_lr(r).state == LrState::Invalid);
                for q in mgr.queue() {
                    assert!(
                        !free || blocked(&lrs, q),
                        "{q:?} left queued with a free LR"
                    );
                }
            }
            Op::Ack(n) => {
                let i = usize::from(n) % nr_lrs;
                let mut l = decode_lr(lrs[i]);
                if l.state == LrState::Pending {
                    l.state = LrState::Active;
                    lrs[i] = septum_core::vgic::lr::encode_lr(
                        l.vintid, l.pintid, l.priority, l.group1, l.state,
                    );
                }
            }
            Op::Deactivate(n) => {
                let i = usize::from(n) % nr_lrs;
                let mut l = decode_lr(lrs[i]);
                let next = match l.state {
                    LrState::Active => Some(LrState::Invalid),
                    LrState::PendingActive => Some(LrState::Pending),
                    _ => None,
                };
                if let Some(s) = next {
                    l.state = s;
                    lrs[i] = septum_core::vgic::lr::encode_lr(
                        l.vintid, l.pintid, l.priority, l.group1, l.state,
                    );
                }
            }
            Op::Remove(v) => {
                let v = v.get();
                let was = mgr.queue().iter().find(|q| q.vintid == v).copied();
                assert_eq!(mgr.remove(v), was);
                assert!(!mgr.queue().iter().any(|q| q.vintid == v));
            }
            Op::Clear => {
                mgr.clear();
                assert_eq!(mgr.queued(), 0);
            }
        }
        check_invariants(&lrs, &mgr, !free);
        check_state_view(&lrs, &mgr, phys);
    }
}

fuzz_target!(|input: Input| {
    let nr_lrs = if input.sixteen_lrs { 16 } else { 4 };
    if input.big_queue {
        run::<64>(nr_lrs, input.ops, input.free, input.phys);
    } else {
        run::<4>(nr_lrs, input.ops, input.free, input.phys);
    }
});
