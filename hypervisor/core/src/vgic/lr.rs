//! GICv3 list registers (`ICH_LR<n>_EL2`) and a manager that fills them.
//!
//! LR layout: vINTID `[31:0]`, pINTID `[44:32]` (with HW = 1; with HW = 0 bit 41
//! is EOI, "maintenance interrupt on EOI"), Priority `[55:48]`, NMI `[59]`,
//! Group `[60]`, HW `[61]`, State `[63:62]`.
//!
//! The hardware has few list registers (4 on the targets). [`LrManager`]
//! decides where a new interrupt goes: a free LR, an LR holding a
//! lower-priority pending interrupt (which moves to the queue), or a
//! bounded, priority-ordered overflow queue. When something is queued the
//! caller enables the "no pending" maintenance interrupt (ICH_HCR_EL2.NPIE)
//! and calls [`LrManager::refill`] when it arrives.
//!
//! The caller reads the LRs from hardware into a slice, lets the manager
//! change it, and writes back the entries whose bit is set in the returned
//! mask (or simply all of them). It must do so while the vCPU is not
//! running, so the snapshot is exact.

/// State field of a list register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrState {
    Invalid,
    Pending,
    Active,
    PendingActive,
}

impl LrState {
    const fn bits(self) -> u64 {
        match self {
            Self::Invalid => 0b00,
            Self::Pending => 0b01,
            Self::Active => 0b10,
            Self::PendingActive => 0b11,
        }
    }
    const fn from_bits(b: u64) -> Self {
        match b & 0b11 {
            0b00 => Self::Invalid,
            0b01 => Self::Pending,
            0b10 => Self::Active,
            _ => Self::PendingActive,
        }
    }
}

/// A decoded list register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lr {
    pub vintid: u32,
    /// The physical INTID deactivated with it (HW = 1).
    pub pintid: Option<u32>,
    pub priority: u8,
    pub group1: bool,
    pub state: LrState,
    /// EOI bit (HW = 0 only): maintenance interrupt when the guest EOIs it.
    pub eoi_maintenance: bool,
}

const VINTID_MASK: u64 = 0xffff_ffff;
const PINTID_SHIFT: u32 = 32;
const PINTID_MASK: u64 = 0x1fff;
const EOI: u64 = 1 << 41;
const PRIORITY_SHIFT: u32 = 48;
const GROUP1: u64 = 1 << 60;
const HW: u64 = 1 << 61;
const STATE_SHIFT: u32 = 62;

/// Encodes a list register. Fields are truncated to their widths (pINTID to
/// 13 bits); validation is [`LrManager::inject`]'s job.
pub const fn encode_lr(
    vintid: u32,
    pintid: Option<u32>,
    priority: u8,
    group1: bool,
    state: LrState,
) -> u64 {
    let mut v = (vintid as u64 & VINTID_MASK)
        | ((priority as u64) << PRIORITY_SHIFT)
        | (state.bits() << STATE_SHIFT);
    if group1 {
        v |= GROUP1;
    }
    if let Some(p) = pintid {
        v |= HW | ((p as u64 & PINTID_MASK) << PINTID_SHIFT);
    }
    v
}

/// Decodes a list register.
pub const fn decode_lr(lr: u64) -> Lr {
    let hw = lr & HW != 0;
    Lr {
        vintid: (lr & VINTID_MASK) as u32,
        pintid: if hw {
            Some(((lr >> PINTID_SHIFT) & PINTID_MASK) as u32)
        } else {
            None
        },
        priority: (lr >> PRIORITY_SHIFT) as u8,
        group1: lr & GROUP1 != 0,
        state: LrState::from_bits(lr >> STATE_SHIFT),
        eoi_maintenance: !hw && lr & EOI != 0,
    }
}

/// An interrupt to deliver to the vCPU (always Group 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq {
    pub vintid: u32,
    /// `Some(p)`: hardware interrupt `p`, deactivated by the guest's EOI.
    pub pintid: Option<u32>,
    pub priority: u8,
}

impl Irq {
    const fn lr(self, state: LrState) -> u64 {
        encode_lr(self.vintid, self.pintid, self.priority, true, state)
    }
}

/// Where [`LrManager::inject`] put an interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrOutcome {
    /// Written to free LR `lr`.
    Written { lr: usize },
    /// Written to LR `lr`, whose lower-priority pending interrupt `evicted`
    /// (a vINTID) moved to the queue.
    Preempted { lr: usize, evicted: u32 },
    /// The same vINTID was active in LR `lr`; it is now pending and active.
    MadePendingActive { lr: usize },
    /// Already pending in LR `lr`: nothing to do (coalesced).
    AlreadyPending { lr: usize },
    /// Already queued: coalesced.
    AlreadyQueued,
    /// Queued; the caller must enable the maintenance interrupt.
    Queued,
}

/// Why an interrupt could not be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrError {
    /// vINTID ≥ 1020, or a hardware interrupt whose pINTID is not a PPI/SPI
    /// (16..=1019) or whose vINTID is an SGI.
    Invalid,
    /// The overflow queue is full. Size it for every interrupt that can
    /// target the vCPU (16 SGIs + 16 PPIs + the partition's SPIs), since
    /// each is queued at most once.
    QueueFull,
    /// The vINTID is already in flight (in an LR or queued) as the other
    /// kind (hardware-linked vs. virtual) or linked to another pINTID. One
    /// vINTID has one source; mixing them would let a guest EOI deactivate
    /// the wrong physical interrupt, so the caller has a routing bug.
    Conflict,
}

/// A per-vCPU list-register allocator with an overflow queue of `Q` entries.
#[derive(Clone, Debug)]
pub struct LrManager<const Q: usize> {
    /// Sorted by priority (lowest value, i.e. most urgent, first), FIFO among equals.
    queue: [Irq; Q],
    len: usize,
}

impl<const Q: usize> Default for LrManager<Q> {
    fn default() -> Self {
        Self::new()
    }
}

const fn valid(irq: &Irq) -> bool {
    if irq.vintid >= 1020 {
        return false;
    }
    match irq.pintid {
        Some(p) => p >= 16 && p < 1020 && irq.vintid >= 16,
        None => true,
    }
}

fn free_lr(lrs: &[u64]) -> Option<usize> {
    lrs.iter()
        .position(|&lr| decode_lr(lr).state == LrState::Invalid)
}

/// Result of looking for `irq`'s vINTID in the LRs.
enum Present {
    No,
    /// Pending already (maybe also active).
    Pending(usize),
    /// Active only; `mergeable` if both are virtual (HW = 0) interrupts.
    Active {
        lr: usize,
        mergeable: bool,
    },
}

fn find(lrs: &[u64], irq: &Irq) -> Present {
    for (i, &raw) in lrs.iter().enumerate() {
        let lr = decode_lr(raw);
        if lr.vintid != irq.vintid {
            continue;
        }
        return match lr.state {
            LrState::Invalid => continue,
            LrState::Pending | LrState::PendingActive => Present::Pending(i),
            // A HW interrupt cannot be both pending and active in an LR:
            // its pending state is the physical GIC's.
            LrState::Active => Present::Active {
                lr: i,
                mergeable: lr.pintid.is_none() && irq.pintid.is_none(),
            },
        };
    }
    Present::No
}

impl<const Q: usize> LrManager<Q> {
    pub const fn new() -> Self {
        Self {
            queue: [Irq {
                vintid: 0,
                pintid: None,
                priority: 0,
            }; Q],
            len: 0,
        }
    }

    /// Number of queued interrupts.
    pub fn queued(&self) -> usize {
        self.len
    }

    /// Whether anything waits for a free LR (keep ICH_HCR_EL2.NPIE set).
    pub fn has_queued(&self) -> bool {
        self.len > 0
    }

    /// The queued interrupts, most urgent first.
    pub fn queue(&self) -> &[Irq] {
        &self.queue[..self.len]
    }

    /// Drops everything queued (the vCPU stops). Hardware interrupts among
    /// them are active at the physical GIC: the caller deactivates them.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Removes `vintid` from the queue (e.g. the guest cleared its pending
    /// state). Returns the entry if it was queued.
    pub fn remove(&mut self, vintid: u32) -> Option<Irq> {
        let i = self.queue().iter().position(|q| q.vintid == vintid)?;
        Some(self.remove_at(i))
    }

    fn remove_at(&mut self, i: usize) -> Irq {
        let irq = self.queue[i];
        self.queue.copy_within(i + 1..self.len, i);
        self.len -= 1;
        irq
    }

    fn enqueue(&mut self, irq: Irq) -> Result<(), LrError> {
        if self.len >= Q {
            return Err(LrError::QueueFull);
        }
        let pos = self
            .queue()
            .iter()
            .position(|q| q.priority > irq.priority)
            .unwrap_or(self.len);
        self.queue.copy_within(pos..self.len, pos + 1);
        self.queue[pos] = irq;
        self.len += 1;
        Ok(())
    }

    /// Delivers `irq` given the current LR contents `lrs` (changed in place).
    ///
    /// Order of preference: coalesce with the same vINTID already in an LR
    /// or in the queue; a free LR; displacing the least urgent purely
    /// pending LR if `irq` is strictly more urgent; the queue.
    pub fn inject(&mut self, lrs: &mut [u64], irq: Irq) -> Result<LrOutcome, LrError> {
        if !valid(&irq) {
            return Err(LrError::Invalid);
        }
        let other_kind =
            |vintid: u32, pintid: Option<u32>| vintid == irq.vintid && pintid != irq.pintid;
        if lrs
            .iter()
            .map(|&r| decode_lr(r))
            .any(|l| l.state != LrState::Invalid && other_kind(l.vintid, l.pintid))
            || self.queue().iter().any(|q| other_kind(q.vintid, q.pintid))
        {
            return Err(LrError::Conflict);
        }
        match find(lrs, &irq) {
            Present::Pending(lr) => return Ok(LrOutcome::AlreadyPending { lr }),
            Present::Active {
                lr,
                mergeable: true,
            } => {
                lrs[lr] = (lrs[lr] & !(0b11 << STATE_SHIFT))
                    | (LrState::PendingActive.bits() << STATE_SHIFT);
                return Ok(LrOutcome::MadePendingActive { lr });
            }
            Present::Active {
                mergeable: false, ..
            } => {
                // It may not occupy a second LR: wait for this one to end.
                return self.queue_unique(irq);
            }
            Present::No => {}
        }
        if self.queue().iter().any(|q| q.vintid == irq.vintid) {
            return Ok(LrOutcome::AlreadyQueued);
        }
        if let Some(lr) = free_lr(lrs) {
            lrs[lr] = irq.lr(LrState::Pending);
            return Ok(LrOutcome::Written { lr });
        }
        if self.len < Q {
            let victim = lrs
                .iter()
                .enumerate()
                .map(|(i, &raw)| (i, decode_lr(raw)))
                .filter(|(_, l)| l.state == LrState::Pending && l.priority > irq.priority)
                .max_by_key(|(i, l)| (l.priority, *i));
            if let Some((lr, old)) = victim {
                self.enqueue(Irq {
                    vintid: old.vintid,
                    pintid: old.pintid,
                    priority: old.priority,
                })?;
                lrs[lr] = irq.lr(LrState::Pending);
                return Ok(LrOutcome::Preempted {
                    lr,
                    evicted: old.vintid,
                });
            }
        }
        self.enqueue(irq)?;
        Ok(LrOutcome::Queued)
    }

    fn queue_unique(&mut self, irq: Irq) -> Result<LrOutcome, LrError> {
        if self.queue().iter().any(|q| q.vintid == irq.vintid) {
            return Ok(LrOutcome::AlreadyQueued);
        }
        self.enqueue(irq)?;
        Ok(LrOutcome::Queued)
    }

    /// Moves queued interrupts, most urgent first, into free LRs (or merges
    /// them into an LR holding the same vINTID). Returns a bit mask of the
    /// LRs changed. Entries that cannot be placed stay queued.
    pub fn refill(&mut self, lrs: &mut [u64]) -> u32 {
        let mut changed = 0u32;
        let mut i = 0;
        while i < self.len {
            let irq = self.queue[i];
            match find(lrs, &irq) {
                Present::Pending(_) => {
                    self.remove_at(i);
                }
                Present::Active {
                    lr,
                    mergeable: true,
                } => {
                    lrs[lr] = (lrs[lr] & !(0b11 << STATE_SHIFT))
                        | (LrState::PendingActive.bits() << STATE_SHIFT);
                    changed |= 1 << lr;
                    self.remove_at(i);
                }
                Present::Active {
                    mergeable: false, ..
                } => i += 1,
                Present::No => match free_lr(lrs) {
                    Some(lr) => {
                        lrs[lr] = irq.lr(LrState::Pending);
                        changed |= 1 << lr;
                        self.remove_at(i);
                    }
                    None => i += 1,
                },
            }
        }
        changed
    }
}

/// Which state a read of `IS/ICPENDR` or `IS/ICACTIVER` asks for (the set
/// and clear registers read the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateReg {
    Pending,
    Active,
}

/// The pending or active array and the 32-interrupt word that a read at
/// `offset` of a distributor frame (GICv2 or GICv3) or of a
/// redistributor's SGI_base frame (`offset` within that 64 KiB frame)
/// addresses; `None` for any other register.
pub const fn state_reg(offset: u64) -> Option<(StateReg, u32)> {
    let word = ((offset & 0x7f) / 4) as u32;
    match offset {
        0x200..=0x2ff => Some((StateReg::Pending, word)),
        0x300..=0x3ff => Some((StateReg::Active, word)),
        _ => None,
    }
}

/// The guest's view of the hardware-backed interrupts `mask` of word `word`
/// (INTIDs `32 * word ..`), as a native guest would read them.
///
/// Once the hypervisor has acknowledged a hardware interrupt it is active
/// in the physical GIC while the guest's copy sits in a list register (or
/// in the manager's queue) as pending, active or both; before that, and
/// while the guest keeps it disabled, it is only pending in the GIC. So:
/// pending if the GIC has it pending or the guest's copy is pending
/// (`lrs`, `queued`: this core's list registers and queued vINTIDs); active
/// if the guest's copy is active, or if the GIC has it active and this
/// core holds no copy (a copy in another core's list registers, which this
/// core cannot read: the closest answer). Pass empty `lrs` and `queued` for
/// an interrupt word of another core (a redistributor of a vCPU running
/// elsewhere): the answer is then the GIC's state alone.
pub fn hw_state_view(
    reg: StateReg,
    word: u32,
    mask: u32,
    phys_pending: u32,
    phys_active: u32,
    lrs: &[u64],
    queued: &[u32],
) -> u32 {
    let (mut copy_pending, mut copy_active, mut held) = (0u32, 0u32, 0u32);
    let mut note = |vintid: u32, pending: bool, active: bool| {
        if vintid / 32 == word {
            let b = 1u32 << (vintid % 32);
            held |= b;
            if pending {
                copy_pending |= b;
            }
            if active {
                copy_active |= b;
            }
        }
    };
    for &v in lrs {
        let lr = decode_lr(v);
        if lr.pintid.is_some() {
            match lr.state {
                LrState::Invalid => {}
                LrState::Pending => note(lr.vintid, true, false),
                LrState::Active => note(lr.vintid, false, true),
                LrState::PendingActive => note(lr.vintid, true, true),
            }
        }
    }
    for &q in queued {
        note(q, true, false);
    }
    let v = match reg {
        StateReg::Pending => phys_pending | copy_pending,
        StateReg::Active => copy_active | (phys_active & !held),
    };
    v & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn virt(vintid: u32, priority: u8) -> Irq {
        Irq {
            vintid,
            pintid: None,
            priority,
        }
    }
    const fn hw(intid: u32, priority: u8) -> Irq {
        Irq {
            vintid: intid,
            pintid: Some(intid),
            priority,
        }
    }

    fn state(lr: u64) -> LrState {
        decode_lr(lr).state
    }

    #[test]
    fn encode_against_hand_computed_values() {
        // vINTID 27, pINTID 27, priority 0xa0, group 1, pending, HW.
        assert_eq!(
            encode_lr(27, Some(27), 0xa0, true, LrState::Pending),
            0x70a0_001b_0000_001b
        );
        // Virtual SGI 3, priority 0, group 1, pending.
        assert_eq!(
            encode_lr(3, None, 0, true, LrState::Pending),
            0x5000_0000_0000_0003
        );
        // Active, group 0, no HW.
        assert_eq!(
            encode_lr(1019, None, 0xf8, false, LrState::Active),
            0x80f8_0000_0000_03fb
        );
        assert_eq!(encode_lr(0, None, 0, false, LrState::Invalid), 0);
        assert_eq!(
            encode_lr(5, None, 0, true, LrState::PendingActive) >> 62,
            0b11
        );
        // pINTID is 13 bits wide.
        assert_eq!(
            encode_lr(40, Some(0xffff), 0, true, LrState::Pending) >> 32 & 0x1fff,
            0x1fff
        );
    }

    #[test]
    fn round_trip() {
        for state in [
            LrState::Invalid,
            LrState::Pending,
            LrState::Active,
            LrState::PendingActive,
        ] {
            for (v, p) in [
                (0, None),
                (15, None),
                (27, Some(27)),
                (1019, Some(1019)),
                (64, Some(33)),
            ] {
                for prio in [0u8, 0x80, 0xf8, 0xff] {
                    for g in [false, true] {
                        let lr = decode_lr(encode_lr(v, p, prio, g, state));
                        assert_eq!(
                            lr,
                            Lr {
                                vintid: v,
                                pintid: p,
                                priority: prio,
                                group1: g,
                                state,
                                eoi_maintenance: false
                            }
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn eoi_bit_only_without_hw() {
        let raw = encode_lr(5, None, 0, true, LrState::Pending) | EOI;
        assert!(decode_lr(raw).eoi_maintenance);
        // With HW = 1 bit 41 is part of pINTID.
        let raw = encode_lr(512, Some(512), 0, true, LrState::Pending);
        assert_eq!(raw & EOI, EOI);
        assert!(!decode_lr(raw).eoi_maintenance);
        assert_eq!(decode_lr(raw).pintid, Some(512));
    }

    /// REQ-FLT-2: one vINTID never has two sources in flight. A virtual
    /// injection of a vINTID that sits in an LR (or the queue) as a
    /// hardware interrupt, or linked to another pINTID, is refused and
    /// changes nothing.
    #[test]
    fn mixed_kinds_of_one_vintid_are_refused() {
        let mut m = LrManager::<8>::new();
        let mut lrs = [0u64; 1];
        assert!(m.inject(&mut lrs, hw(40, 0x80)).is_ok());
        let before = lrs;
        assert_eq!(m.inject(&mut lrs, virt(40, 0x80)), Err(LrError::Conflict));
        let other_p = Irq {
            vintid: 40,
            pintid: Some(41),
            priority: 0x80,
        };
        assert_eq!(m.inject(&mut lrs, other_p), Err(LrError::Conflict));
        assert_eq!(lrs, before);
        // The same conflict against the overflow queue.
        assert!(m.inject(&mut lrs, virt(50, 0x90)).is_ok()); // queued: LR full
        assert_eq!(m.queue().len(), 1);
        assert_eq!(m.inject(&mut lrs, hw(50, 0x90)), Err(LrError::Conflict));
        assert_eq!(m.queue().len(), 1);
        // The same kind again is fine.
        assert!(m.inject(&mut lrs, hw(40, 0x80)).is_ok());
    }

    /// REQ-FLT-2: invalid interrupts are refused, not encoded.
    #[test]
    fn validation() {
        let mut m = LrManager::<4>::new();
        let mut lrs = [0u64; 4];
        assert_eq!(m.inject(&mut lrs, virt(1020, 0)), Err(LrError::Invalid));
        assert_eq!(
            m.inject(&mut lrs, hw(5, 0)),
            Err(LrError::Invalid),
            "SGIs are never HW"
        );
        assert_eq!(
            m.inject(
                &mut lrs,
                Irq {
                    vintid: 40,
                    pintid: Some(1020),
                    priority: 0
                }
            ),
            Err(LrError::Invalid)
        );
        assert_eq!(
            m.inject(
                &mut lrs,
                Irq {
                    vintid: 40,
                    pintid: Some(15),
                    priority: 0
                }
            ),
            Err(LrError::Invalid)
        );
        assert_eq!(lrs, [0; 4]);
        assert_eq!(
            m.inject(&mut lrs, hw(16, 0)),
            Ok(LrOutcome::Written { lr: 0 })
        );
        assert_eq!(
            m.inject(&mut lrs, hw(1019, 0)),
            Ok(LrOutcome::Written { lr: 1 })
        );
    }

    #[test]
    fn fills_free_lrs_in_order() {
        let mut m = LrManager::<8>::new();
        let mut lrs = [0u64; 4];
        lrs[1] = encode_lr(9, None, 0, true, LrState::Active);
        assert_eq!(
            m.inject(&mut lrs, hw(33, 0x80)),
            Ok(LrOutcome::Written { lr: 0 })
        );
        assert_eq!(
            m.inject(&mut lrs, hw(34, 0x80)),
            Ok(LrOutcome::Written { lr: 2 })
        );
        assert_eq!(
            decode_lr(lrs[0]),
            Lr {
                vintid: 33,
                pintid: Some(33),
                priority: 0x80,
                group1: true,
                state: LrState::Pending,
                eoi_maintenance: false
            }
        );
        // An invalid LR with stale fields counts as free.
        lrs[3] = encode_lr(77, Some(77), 0, true, LrState::Invalid);
        assert_eq!(
            m.inject(&mut lrs, virt(1, 0)),
            Ok(LrOutcome::Written { lr: 3 })
        );
    }

    #[test]
    fn coalescing_with_lrs() {
        let mut m = LrManager::<8>::new();
        let mut lrs = [0u64; 2];
        m.inject(&mut lrs, virt(3, 0x40)).unwrap();
        assert_eq!(
            m.inject(&mut lrs, virt(3, 0x40)),
            Ok(LrOutcome::AlreadyPending { lr: 0 })
        );
        // Active virtual: becomes pending+active in place.
        lrs[0] = encode_lr(3, None, 0x40, true, LrState::Active);
        assert_eq!(
            m.inject(&mut lrs, virt(3, 0x40)),
            Ok(LrOutcome::MadePendingActive { lr: 0 })
        );
        assert_eq!(state(lrs[0]), LrState::PendingActive);
        assert_eq!(decode_lr(lrs[0]).vintid, 3);
        assert_eq!(
            m.inject(&mut lrs, virt(3, 0x40)),
            Ok(LrOutcome::AlreadyPending { lr: 0 })
        );
        // Active HW: may not be pending+active, nor take a second LR: queued.
        lrs[1] = encode_lr(40, Some(40), 0x40, true, LrState::Active);
        assert_eq!(m.inject(&mut lrs, hw(40, 0x40)), Ok(LrOutcome::Queued));
        assert_eq!(
            m.inject(&mut lrs, hw(40, 0x40)),
            Ok(LrOutcome::AlreadyQueued)
        );
        assert_eq!(state(lrs[1]), LrState::Active);
        assert_eq!(m.queued(), 1);
    }

    #[test]
    fn overflow_queue_is_priority_ordered_and_coalesced() {
        let mut m = LrManager::<8>::new();
        let mut lrs = [0u64; 2];
        // Two active interrupts occupy the LRs (cannot be displaced).
        lrs[0] = encode_lr(1, None, 0x00, true, LrState::Active);
        lrs[1] = encode_lr(2, None, 0x00, true, LrState::Active);
        for (v, p) in [
            (10, 0x80),
            (11, 0x40),
            (12, 0x80),
            (13, 0xc0),
            (14, 0x40),
            (11, 0x40),
        ] {
            let o = m.inject(&mut lrs, virt(v, p)).unwrap();
            assert!(matches!(o, LrOutcome::Queued | LrOutcome::AlreadyQueued));
        }
        let order: Vec<u32> = m.queue().iter().map(|q| q.vintid).collect();
        assert_eq!(
            order,
            vec![11, 14, 10, 12, 13],
            "by priority, FIFO within a priority, 11 once"
        );
        assert!(m.has_queued());
        // The guest finishes one: refill puts the most urgent in.
        lrs[1] = 0;
        assert_eq!(m.refill(&mut lrs), 0b10);
        assert_eq!(decode_lr(lrs[1]).vintid, 11);
        assert_eq!(m.queued(), 4);
        // All free: the next two come in.
        lrs = [0, 0];
        assert_eq!(m.refill(&mut lrs), 0b11);
        assert_eq!(
            [decode_lr(lrs[0]).vintid, decode_lr(lrs[1]).vintid],
            [14, 10]
        );
        assert_eq!(
            m.queue().iter().map(|q| q.vintid).collect::<Vec<_>>(),
            vec![12, 13]
        );
        // No free LR: nothing changes.
        assert_eq!(m.refill(&mut lrs), 0);
    }

    #[test]
    fn more_pending_than_lrs_all_delivered_in_priority_order() {
        // 4 LRs, 20 interrupts; the guest handles one LR at a time.
        let mut m = LrManager::<32>::new();
        let mut lrs = [0u64; 4];
        for v in 32..52u32 {
            m.inject(&mut lrs, hw(v, ((v * 37) % 32) as u8 * 8))
                .unwrap();
        }
        assert_eq!(m.queued(), 16);
        let mut delivered = Vec::new();
        while lrs.iter().any(|&l| state(l) != LrState::Invalid) {
            // The guest takes the most urgent LR and completes it.
            let (i, l) = lrs
                .iter()
                .enumerate()
                .filter(|(_, l)| state(**l) != LrState::Invalid)
                .min_by_key(|(_, l)| decode_lr(**l).priority)
                .unwrap();
            delivered.push(decode_lr(*l).vintid);
            lrs[i] = 0;
            m.refill(&mut lrs);
        }
        delivered.sort();
        assert_eq!(delivered, (32..52).collect::<Vec<_>>());
        assert!(!m.has_queued());
    }

    #[test]
    fn urgent_interrupt_displaces_least_urgent_pending() {
        let mut m = LrManager::<4>::new();
        let mut lrs = [
            encode_lr(40, Some(40), 0x80, true, LrState::Pending),
            encode_lr(41, Some(41), 0xc0, true, LrState::Pending),
            encode_lr(42, Some(42), 0x00, true, LrState::Active),
        ];
        assert_eq!(
            m.inject(&mut lrs, hw(50, 0x40)),
            Ok(LrOutcome::Preempted { lr: 1, evicted: 41 })
        );
        assert_eq!(decode_lr(lrs[1]).vintid, 50);
        assert_eq!(
            m.queue(),
            &[hw(41, 0xc0)],
            "the evicted HW interrupt keeps its pINTID"
        );
        // Equal priority does not displace.
        assert_eq!(
            m.inject(&mut lrs, hw(51, 0x40)),
            Ok(LrOutcome::Preempted { lr: 0, evicted: 40 })
        );
        assert_eq!(m.inject(&mut lrs, hw(52, 0x40)), Ok(LrOutcome::Queued));
        // The most urgent displaces one of the two 0x40 entries (the later
        // LR on a tie), never the active LR.
        assert_eq!(
            m.inject(&mut lrs, hw(53, 0x00)),
            Ok(LrOutcome::Preempted { lr: 1, evicted: 50 })
        );
        assert_eq!(state(lrs[2]), LrState::Active);
        assert_eq!(
            m.queue().iter().map(|q| q.vintid).collect::<Vec<_>>(),
            vec![52, 50, 40, 41]
        );
        // Queue full: no displacement either (the victim would have nowhere to go).
        assert_eq!(m.inject(&mut lrs, hw(54, 0x00)), Err(LrError::QueueFull));
        assert_eq!(decode_lr(lrs[0]).vintid, 51);
    }

    #[test]
    fn refill_merges_and_drops_duplicates() {
        let mut m = LrManager::<4>::new();
        let mut lrs = [encode_lr(3, None, 0, true, LrState::Active)];
        // Queue SGI 5 (no room), and HW 40 behind an active HW 40.
        assert_eq!(m.inject(&mut lrs, virt(5, 0)), Ok(LrOutcome::Queued));
        // SGI 3 is active in the LR: merged immediately, never queued.
        assert_eq!(
            m.inject(&mut lrs, virt(3, 0)),
            Ok(LrOutcome::MadePendingActive { lr: 0 })
        );
        // Now make LR 0 hold SGI 5 active: the queued SGI 5 merges on refill.
        lrs[0] = encode_lr(5, None, 0, true, LrState::Active);
        assert_eq!(m.refill(&mut lrs), 0b1);
        assert_eq!(state(lrs[0]), LrState::PendingActive);
        assert!(!m.has_queued());
        // A queued entry already pending in an LR is dropped on refill.
        let mut m = LrManager::<4>::new();
        let mut lrs = [encode_lr(7, None, 0, true, LrState::Active)];
        m.inject(&mut lrs, virt(8, 0)).unwrap();
        lrs[0] = encode_lr(8, None, 0, true, LrState::Pending);
        assert_eq!(m.refill(&mut lrs), 0);
        assert!(!m.has_queued());
        // A HW entry behind its own active LR stays queued.
        let mut m = LrManager::<4>::new();
        let mut lrs = [encode_lr(40, Some(40), 0, true, LrState::Active), 0];
        assert_eq!(m.inject(&mut lrs, hw(40, 0)), Ok(LrOutcome::Queued));
        assert_eq!(m.refill(&mut lrs), 0);
        assert_eq!(m.queued(), 1);
        lrs[0] = 0;
        assert_eq!(m.refill(&mut lrs), 0b1);
        assert_eq!(state(lrs[0]), LrState::Pending);
    }

    #[test]
    fn remove_and_clear() {
        let mut m = LrManager::<4>::new();
        let mut lrs: [u64; 0] = [];
        m.inject(&mut lrs, virt(1, 0)).unwrap();
        m.inject(&mut lrs, virt(2, 0)).unwrap();
        assert_eq!(m.remove(1), Some(virt(1, 0)));
        assert_eq!(m.remove(1), None);
        assert_eq!(m.queue(), &[virt(2, 0)]);
        m.clear();
        assert!(!m.has_queued());
    }

    #[test]
    fn zero_capacity_queue() {
        let mut m = LrManager::<0>::new();
        let mut lrs = [encode_lr(1, None, 0xf8, true, LrState::Pending)];
        assert_eq!(m.inject(&mut lrs, virt(2, 0)), Err(LrError::QueueFull));
        assert_eq!(decode_lr(lrs[0]).vintid, 1);
    }
    #[test]
    fn state_registers_decode() {
        assert_eq!(state_reg(0x200), Some((StateReg::Pending, 0)));
        assert_eq!(state_reg(0x284), Some((StateReg::Pending, 1)));
        assert_eq!(state_reg(0x37c), Some((StateReg::Active, 31)));
        assert_eq!(state_reg(0x380), Some((StateReg::Active, 0)));
        assert_eq!(state_reg(0x100), None);
        assert_eq!(state_reg(0x400), None);
    }

    #[test]
    fn hardware_state_seen_as_a_native_guest_would() {
        let timer = 1u32 << 27;
        let mask = 0xffff_0000;
        let hw = |state| encode_lr(27, Some(27), 0xa0, true, state);
        // Disabled by the guest and fired: pending in the GIC only.
        assert_eq!(
            hw_state_view(StateReg::Pending, 0, mask, timer, 0, &[], &[]),
            timer
        );
        assert_eq!(
            hw_state_view(StateReg::Active, 0, mask, timer, 0, &[], &[]),
            0
        );
        // Taken by the hypervisor (active in the GIC), pending in an LR:
        // pending, not active, to the guest.
        let lrs = [hw(LrState::Pending), 0];
        assert_eq!(
            hw_state_view(StateReg::Pending, 0, mask, 0, timer, &lrs, &[]),
            timer
        );
        assert_eq!(
            hw_state_view(StateReg::Active, 0, mask, 0, timer, &lrs, &[]),
            0
        );
        // Acknowledged by the guest: active.
        let lrs = [hw(LrState::Active)];
        assert_eq!(
            hw_state_view(StateReg::Pending, 0, mask, 0, timer, &lrs, &[]),
            0
        );
        assert_eq!(
            hw_state_view(StateReg::Active, 0, mask, 0, timer, &lrs, &[]),
            timer
        );
        // Active, and the level still asserted: both.
        assert_eq!(
            hw_state_view(StateReg::Pending, 0, mask, timer, timer, &lrs, &[]),
            timer
        );
        // Waiting in the queue for a list register: pending.
        assert_eq!(
            hw_state_view(StateReg::Pending, 0, mask, 0, timer, &[], &[27]),
            timer
        );
        assert_eq!(
            hw_state_view(StateReg::Active, 0, mask, 0, timer, &[], &[27]),
            0
        );
        // Another core's interrupt: the GIC's state alone.
        assert_eq!(
            hw_state_view(StateReg::Active, 0, mask, 0, timer, &[], &[]),
            timer
        );
        // Deactivated by the guest's EOI: nothing.
        assert_eq!(
            hw_state_view(
                StateReg::Active,
                0,
                mask,
                0,
                0,
                &[hw(LrState::Invalid)],
                &[]
            ),
            0
        );
    }

    #[test]
    fn hardware_state_is_masked_and_per_word() {
        // SPI 40 (word 1, bit 8) in an LR; a virtual SGI's LR (no HW bit)
        // and bits outside the mask never show.
        let spi = encode_lr(40, Some(40), 0x80, true, LrState::Active);
        let sgi = encode_lr(1, None, 0x80, true, LrState::Active);
        let lrs = [spi, sgi];
        assert_eq!(
            hw_state_view(StateReg::Active, 1, 1 << 8, 0, 1 << 8, &lrs, &[]),
            1 << 8
        );
        assert_eq!(
            hw_state_view(StateReg::Active, 0, u32::MAX, 0, 0, &lrs, &[]),
            0
        );
        assert_eq!(
            hw_state_view(StateReg::Active, 1, 0, u32::MAX, u32::MAX, &lrs, &[]),
            0
        );
        assert_eq!(
            hw_state_view(StateReg::Pending, 1, 1 << 9, u32::MAX, 0, &lrs, &[40]),
            1 << 9
        );
    }
}
