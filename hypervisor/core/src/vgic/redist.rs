//! The emulated redistributor (GICR) of one vCPU.

use super::{
    bits, check_access, id_register, Effect, Effects, PendingIrq, VgicError, GICR_FRAME_SIZE,
    GICR_SGI_BASE, ID_REGS_START, IIDR, MAX_VCPUS, PRIORITY_MASK,
};

// RD_base.
const CTLR: u64 = 0x0000;
const IIDR_OFF: u64 = 0x0004;
const TYPER: u64 = 0x0008;
const WAKER: u64 = 0x0014;
/// 64-bit LPI registers (SETLPIR, CLRLPIR, PROPBASER, PENDBASER, INVLPIR,
/// INVALLR): no LPIs here, so they read as zero, but accept 64-bit access.
const LPI_REGS64: [u64; 6] = [0x0040, 0x0048, 0x0070, 0x0078, 0x00a0, 0x00b0];

// SGI_base.
const IGROUPR0: u64 = GICR_SGI_BASE + 0x0080;
const ISENABLER0: u64 = GICR_SGI_BASE + 0x0100;
const ICENABLER0: u64 = GICR_SGI_BASE + 0x0180;
const ISPENDR0: u64 = GICR_SGI_BASE + 0x0200;
const ICPENDR0: u64 = GICR_SGI_BASE + 0x0280;
const ISACTIVER0: u64 = GICR_SGI_BASE + 0x0300;
const ICACTIVER0: u64 = GICR_SGI_BASE + 0x0380;
const IPRIORITYR: u64 = GICR_SGI_BASE + 0x0400;
const IPRIORITYR_END: u64 = GICR_SGI_BASE + 0x041f;
const ICFGR0: u64 = GICR_SGI_BASE + 0x0c00;
const ICFGR1: u64 = GICR_SGI_BASE + 0x0c04;

const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
const TYPER_LAST: u64 = 1 << 4;

const SGI_MASK: u32 = 0x0000_ffff;
const PPI_MASK: u32 = 0xffff_0000;
/// ICFGR0: every SGI is edge-triggered (0b10 per field), read-only.
const ICFGR0_VALUE: u32 = 0xaaaa_aaaa;

#[derive(Clone, Copy)]
enum Reg {
    Iidr,
    Typer(u64),
    Waker,
    Id(u64),
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
    Priority(u64),
    Config0,
    Config1,
    RazWi64,
    RazWi,
}

fn decode(offset: u64) -> Reg {
    match offset {
        IIDR_OFF => Reg::Iidr,
        TYPER | 0x000c => Reg::Typer(offset - TYPER),
        WAKER => Reg::Waker,
        o if LPI_REGS64.contains(&o) || LPI_REGS64.contains(&(o & !7)) => Reg::RazWi64,
        o if (ID_REGS_START..GICR_SGI_BASE).contains(&o) => Reg::Id(o),
        IGROUPR0 => Reg::Group,
        ISENABLER0 => Reg::SetEnable,
        ICENABLER0 => Reg::ClearEnable,
        ISPENDR0 => Reg::SetPending,
        ICPENDR0 => Reg::ClearPending,
        ISACTIVER0 => Reg::SetActive,
        ICACTIVER0 => Reg::ClearActive,
        IPRIORITYR..=IPRIORITYR_END => Reg::Priority(offset - IPRIORITYR),
        ICFGR0 => Reg::Config0,
        ICFGR1 => Reg::Config1,
        // No LPIs: EnableLPIs is RES0 and RWP reads 0.
        CTLR => Reg::RazWi,
        // STATUSR, SYNCR, IGRPMODR0, NSACR, extended PPI ranges, reserved.
        _ => Reg::RazWi,
    }
}

/// The emulated redistributor of one vCPU: SGI and PPI state.
#[derive(Clone, Debug)]
pub struct VgicRedist {
    vcpu: usize,
    nr_vcpus: usize,
    /// Bits 0..=15: SGIs (virtual); 16..=31: PPIs (shadow of the guest's
    /// requests, mirrored to hardware through effects).
    enabled: u32,
    /// SGI pending state (bits 0..=15 only).
    sgi_pending: u32,
    /// PPI trigger (bit n set: INTID n edge-triggered), bits 16..=31.
    ppi_edge: u32,
    priority: [u8; 32],
    sleep: bool,
}

impl VgicRedist {
    /// The redistributor of vCPU `vcpu` in a partition of `nr_vcpus`.
    /// `nr_vcpus` is clamped to 1..=[`MAX_VCPUS`] and `vcpu` below it (both
    /// come from the validated configuration).
    ///
    /// The vCPU's virtual affinity (its VMPIDR_EL2) must be Aff0 = `vcpu`,
    /// Aff1..Aff3 = 0: that is what GICR_TYPER reports.
    pub fn new(vcpu: usize, nr_vcpus: usize) -> Self {
        let nr_vcpus = nr_vcpus.clamp(1, MAX_VCPUS);
        Self {
            vcpu: vcpu.min(nr_vcpus - 1),
            nr_vcpus,
            enabled: 0,
            sgi_pending: 0,
            ppi_edge: 0,
            priority: [0; 32],
            sleep: true,
        }
    }

    /// Back to the power-on state (for a partition restart).
    pub fn reset(&mut self) {
        *self = Self::new(self.vcpu, self.nr_vcpus);
    }

    /// The vCPU this redistributor belongs to.
    pub fn vcpu(&self) -> usize {
        self.vcpu
    }

    /// Guest-programmed priority of SGI/PPI `intid` (0..=31); 0 otherwise.
    pub fn priority(&self, intid: u32) -> u8 {
        self.priority.get(intid as usize).copied().unwrap_or(0)
    }

    /// Whether the guest has enabled SGI/PPI `intid`.
    pub fn enabled(&self, intid: u32) -> bool {
        intid < 32 && self.enabled & (1 << intid) != 0
    }

    /// Whether PPI `intid` is configured edge-triggered.
    pub fn ppi_edge(&self, intid: u32) -> bool {
        (16..32).contains(&intid) && self.ppi_edge & (1 << intid) != 0
    }

    /// GICR_WAKER.ProcessorSleep: the guest has not (yet) woken this
    /// redistributor.
    pub fn asleep(&self) -> bool {
        self.sleep
    }

    /// Makes SGI `sgi` (0..=15) pending, as a guest's ICC_SGI1R_EL1 write
    /// asked. Returns whether it is now deliverable (enabled), i.e. whether
    /// the vCPU needs a kick. Other INTIDs are ignored (`false`).
    pub fn set_sgi_pending(&mut self, sgi: u32) -> bool {
        if sgi >= 16 {
            return false;
        }
        self.sgi_pending |= 1 << sgi;
        self.enabled(sgi)
    }

    /// Whether SGI `sgi` is pending.
    pub fn sgi_pending(&self, sgi: u32) -> bool {
        sgi < 16 && self.sgi_pending & (1 << sgi) != 0
    }

    /// Clears SGI `intid`'s pending state once it is in a list register.
    /// Returns whether it was pending.
    pub fn take_pending(&mut self, intid: u32) -> bool {
        if intid >= 16 {
            return false;
        }
        let was = self.sgi_pending & (1 << intid) != 0;
        self.sgi_pending &= !(1 << intid);
        was
    }

    /// Takes the highest-priority pending and enabled SGI out of the
    /// pending state (for a list register), with whether another one is
    /// still waiting. The distributor's Group 1 enable is the caller's to
    /// check ([`VgicDist::pending_for`] is this without the take).
    ///
    /// [`VgicDist::pending_for`]: super::VgicDist::pending_for
    pub fn take_best_pending(&mut self) -> Option<(PendingIrq, bool)> {
        let best = self.best_pending()?;
        self.take_pending(best.intid);
        Some((best, self.best_pending().is_some()))
    }

    /// Highest-priority pending and enabled SGI (lowest INTID on ties).
    pub(super) fn best_pending(&self) -> Option<PendingIrq> {
        // Set bits in ascending order, a new best only on a strictly higher
        // priority (lower value): ties keep the lower INTID. A loop over
        // the set bits, not an iterator over all sixteen: this runs on
        // every SGI delivery.
        let mut ready = self.sgi_pending & self.enabled & SGI_MASK;
        let mut best: Option<PendingIrq> = None;
        while ready != 0 {
            let intid = ready.trailing_zeros();
            ready &= ready - 1;
            let priority = self
                .priority
                .get(intid as usize)
                .copied()
                .unwrap_or(u8::MAX);
            if best.is_none_or(|b| priority < b.priority) {
                best = Some(PendingIrq { intid, priority });
            }
        }
        best
    }

    /// For a read of GICR_ISPENDR0/ICPENDR0/ISACTIVER0/ICACTIVER0 (`offset`
    /// in the frame): the PPI bits whose state is in hardware. The
    /// emulation reads those bits as 0; the hypervisor fills in the ones
    /// it backs from the vCPU's core (`lr::hw_state_view`).
    pub fn passthrough_mask(&self, offset: u64) -> Option<u32> {
        match decode(offset) {
            Reg::SetPending | Reg::ClearPending | Reg::SetActive | Reg::ClearActive => {
                Some(PPI_MASK)
            }
            _ => None,
        }
    }

    fn typer(&self) -> u64 {
        let last = if self.vcpu + 1 == self.nr_vcpus {
            TYPER_LAST
        } else {
            0
        };
        // Affinity_Value [63:32] = Aff3.Aff2.Aff1.Aff0 = 0.0.0.vcpu;
        // Processor_Number [23:8]; no LPIs, no VLPIs (two 64 KiB frames).
        ((self.vcpu as u64) << 32) | ((self.vcpu as u64) << 8) | last
    }

    /// A guest read of `width` bytes at `offset` in this vCPU's 128 KiB frame.
    pub fn read(&mut self, offset: u64, width: u8) -> Result<u64, VgicError> {
        let reg = decode_checked(offset, width)?;
        let v = match reg {
            Reg::Iidr => IIDR as u64,
            Reg::Typer(half) => {
                if width == 8 {
                    self.typer()
                } else {
                    (self.typer() >> (8 * half)) & 0xffff_ffff
                }
            }
            Reg::Waker => {
                // ChildrenAsleep follows ProcessorSleep at once: there is
                // nothing to quiesce.
                let s = if self.sleep {
                    WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP
                } else {
                    0
                };
                s as u64
            }
            Reg::Id(o) => id_register(o & !3) as u64,
            Reg::Group => u32::MAX as u64,
            Reg::SetEnable | Reg::ClearEnable => self.enabled as u64,
            Reg::SetPending | Reg::ClearPending => self.sgi_pending as u64,
            // SGI active state lives in the list registers; PPIs' in hardware.
            Reg::SetActive | Reg::ClearActive => 0,
            Reg::Priority(b) => {
                let mut v = 0u64;
                for i in 0..width as u64 {
                    v |= (self.priority[(b + i) as usize] as u64) << (8 * i);
                }
                v
            }
            Reg::Config0 => ICFGR0_VALUE as u64,
            Reg::Config1 => self.ppi_edge_config() as u64,
            Reg::RazWi64 | Reg::RazWi => 0,
        };
        Ok(v)
    }

    fn ppi_edge_config(&self) -> u32 {
        let mut v = 0;
        for i in 0..16 {
            if self.ppi_edge & (1 << (16 + i)) != 0 {
                v |= 2 << (2 * i);
            }
        }
        v
    }

    /// A guest write; physical consequences (PPIs) and kicks (SGIs) are
    /// appended to `fx`.
    pub fn write(
        &mut self,
        offset: u64,
        width: u8,
        value: u64,
        fx: &mut Effects,
    ) -> Result<(), VgicError> {
        let reg = decode_checked(offset, width)?;
        if !fx.has_room_for_a_write() {
            return Err(VgicError::EffectsFull);
        }
        let v = value as u32;
        let vcpu = self.vcpu;
        let ready_before = self.sgi_pending & self.enabled & SGI_MASK;
        match reg {
            Reg::Waker => self.sleep = v & WAKER_PROCESSOR_SLEEP != 0,
            Reg::SetEnable => {
                self.enabled |= v;
                for intid in bits(v & PPI_MASK, 0) {
                    fx.push(Effect::EnablePpi { vcpu, intid });
                }
            }
            Reg::ClearEnable => {
                self.enabled &= !v;
                for intid in bits(v & PPI_MASK, 0) {
                    fx.push(Effect::DisablePpi { vcpu, intid });
                }
            }
            Reg::SetPending => {
                self.sgi_pending |= v & SGI_MASK;
                for intid in bits(v & PPI_MASK, 0) {
                    fx.push(Effect::SetPpiPending { vcpu, intid });
                }
            }
            Reg::ClearPending => {
                self.sgi_pending &= !(v & SGI_MASK);
                for intid in bits(v & PPI_MASK, 0) {
                    fx.push(Effect::ClearPpiPending { vcpu, intid });
                }
            }
            Reg::SetActive => {
                for intid in bits(v & PPI_MASK, 0) {
                    fx.push(Effect::SetPpiActive { vcpu, intid });
                }
            }
            Reg::ClearActive => {
                for intid in bits(v & PPI_MASK, 0) {
                    fx.push(Effect::ClearPpiActive { vcpu, intid });
                }
            }
            Reg::Priority(b) => {
                for i in 0..width as u64 {
                    self.priority[(b + i) as usize] = (value >> (8 * i)) as u8 & PRIORITY_MASK;
                }
            }
            Reg::Config1 => {
                for i in 0..16u32 {
                    let intid = 16 + i;
                    let edge = v & (2 << (2 * i)) != 0;
                    if self.ppi_edge(intid) != edge {
                        self.ppi_edge ^= 1 << intid;
                        fx.push(Effect::SetPpiConfig { vcpu, intid, edge });
                    }
                }
            }
            Reg::Iidr
            | Reg::Typer(_)
            | Reg::Id(_)
            | Reg::Group
            | Reg::Config0
            | Reg::RazWi64
            | Reg::RazWi => {}
        }
        let ready_after = self.sgi_pending & self.enabled & SGI_MASK;
        if ready_after & !ready_before != 0 {
            fx.push(Effect::Kick { vcpu });
        }
        Ok(())
    }
}

fn decode_checked(offset: u64, width: u8) -> Result<Reg, VgicError> {
    let reg = if offset < GICR_FRAME_SIZE {
        decode(offset)
    } else {
        Reg::RazWi
    };
    let (byte_ok, dword_ok) = match reg {
        Reg::Priority(_) => (true, false),
        Reg::Typer(_) | Reg::RazWi64 => (false, true),
        _ => (false, false),
    };
    check_access(offset, width, GICR_FRAME_SIZE, byte_ok, dword_ok)?;
    Ok(reg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(r: &mut VgicRedist, off: u64, width: u8, v: u64) -> Vec<Effect> {
        let mut fx = Effects::new();
        r.write(off, width, v, &mut fx).unwrap();
        fx.as_slice().to_vec()
    }

    fn rd(r: &mut VgicRedist, off: u64) -> u64 {
        r.read(off, 4).unwrap()
    }

    #[test]
    fn typer_affinity_last_and_number() {
        let mut r0 = VgicRedist::new(0, 3);
        let mut r2 = VgicRedist::new(2, 3);
        assert_eq!(r0.read(TYPER, 8).unwrap(), 0);
        assert_eq!(
            r2.read(TYPER, 8).unwrap(),
            (2 << 32) | (2 << 8) | TYPER_LAST
        );
        assert_eq!(rd(&mut r2, TYPER), (2 << 8) | TYPER_LAST);
        assert_eq!(rd(&mut r2, TYPER + 4), 2);
        let mut only = VgicRedist::new(0, 1);
        assert_eq!(only.read(TYPER, 8).unwrap(), TYPER_LAST);
        // Read-only.
        w(&mut r2, TYPER, 8, 0);
        assert_eq!(r2.read(TYPER, 8).unwrap() & TYPER_LAST, TYPER_LAST);
        assert_eq!(r2.read(TYPER + 4, 8), Err(VgicError::Misaligned));
    }

    #[test]
    fn construction_clamps() {
        let r = VgicRedist::new(9, 4);
        assert_eq!(r.vcpu(), 3);
        let r = VgicRedist::new(0, 0);
        assert_eq!(r.vcpu(), 0);
    }

    #[test]
    fn ids_ctlr_and_lpi_registers() {
        let mut r = VgicRedist::new(0, 2);
        assert_eq!(rd(&mut r, IIDR_OFF), IIDR as u64);
        assert_eq!(rd(&mut r, 0xffe8), 0x3b, "GICR_PIDR2: GICv3");
        assert_eq!(rd(&mut r, CTLR), 0);
        w(&mut r, CTLR, 4, 1);
        assert_eq!(rd(&mut r, CTLR), 0, "EnableLPIs is RES0 without LPIs");
        for off in LPI_REGS64 {
            assert_eq!(r.read(off, 8).unwrap(), 0);
            assert!(w(&mut r, off, 8, u64::MAX).is_empty());
            assert_eq!(rd(&mut r, off + 4), 0);
        }
        // The ID registers live in RD_base only.
        assert_eq!(rd(&mut r, GICR_SGI_BASE + 0xffe8), 0);
    }

    #[test]
    fn waker_handshake() {
        let mut r = VgicRedist::new(0, 1);
        assert_eq!(rd(&mut r, WAKER), 0b110, "asleep at reset");
        assert!(r.asleep());
        w(&mut r, WAKER, 4, 0);
        assert_eq!(rd(&mut r, WAKER), 0, "ChildrenAsleep clears at once");
        assert!(!r.asleep());
        w(
            &mut r,
            WAKER,
            4,
            WAKER_PROCESSOR_SLEEP as u64 | 1 | (1 << 31),
        );
        assert_eq!(
            rd(&mut r, WAKER),
            0b110,
            "implementation-defined bits stay 0"
        );
        w(&mut r, WAKER, 4, WAKER_CHILDREN_ASLEEP as u64);
        assert_eq!(rd(&mut r, WAKER), 0, "ChildrenAsleep is read-only");
    }

    #[test]
    fn sgi_enable_and_pending_are_virtual() {
        let mut r = VgicRedist::new(1, 2);
        // Enabling SGIs produces no physical effect.
        assert!(w(&mut r, ISENABLER0, 4, 0xffff).is_empty());
        assert_eq!(rd(&mut r, ISENABLER0), 0xffff);
        // Pending + enabled: a kick for this vCPU.
        assert_eq!(
            w(&mut r, ISPENDR0, 4, 1 << 5),
            vec![Effect::Kick { vcpu: 1 }]
        );
        assert_eq!(rd(&mut r, ISPENDR0), 1 << 5);
        assert_eq!(rd(&mut r, ICPENDR0), 1 << 5);
        // Already deliverable: no second kick.
        assert!(w(&mut r, ISPENDR0, 4, 1 << 5).is_empty());
        assert!(w(&mut r, ICPENDR0, 4, 1 << 5).is_empty());
        assert_eq!(rd(&mut r, ISPENDR0), 0);
        // Pending while disabled, then enabled: the kick comes with the enable.
        w(&mut r, ICENABLER0, 4, 1 << 7);
        assert!(w(&mut r, ISPENDR0, 4, 1 << 7).is_empty());
        assert_eq!(
            w(&mut r, ISENABLER0, 4, 1 << 7),
            vec![Effect::Kick { vcpu: 1 }]
        );
    }

    #[test]
    fn ppis_produce_effects() {
        let mut r = VgicRedist::new(2, 4);
        let fx = w(&mut r, ISENABLER0, 4, (1 << 27) | (1 << 30) | 1);
        assert_eq!(
            fx,
            vec![
                Effect::EnablePpi { vcpu: 2, intid: 27 },
                Effect::EnablePpi { vcpu: 2, intid: 30 }
            ]
        );
        assert!(r.enabled(27) && r.enabled(0) && !r.enabled(26));
        assert_eq!(
            w(&mut r, ICENABLER0, 4, 1 << 27),
            vec![Effect::DisablePpi { vcpu: 2, intid: 27 }]
        );
        assert_eq!(
            w(&mut r, ISPENDR0, 4, 1 << 27),
            vec![Effect::SetPpiPending { vcpu: 2, intid: 27 }]
        );
        assert_eq!(
            w(&mut r, ICPENDR0, 4, 1 << 27),
            vec![Effect::ClearPpiPending { vcpu: 2, intid: 27 }]
        );
        assert_eq!(
            w(&mut r, ISACTIVER0, 4, 1 << 27 | 1),
            vec![Effect::SetPpiActive { vcpu: 2, intid: 27 }]
        );
        assert_eq!(
            w(&mut r, ICACTIVER0, 4, 1 << 30),
            vec![Effect::ClearPpiActive { vcpu: 2, intid: 30 }]
        );
        // PPI pending/active read 0 here; the hypervisor may fill them in.
        assert_eq!(rd(&mut r, ISPENDR0) & PPI_MASK as u64, 0);
        assert_eq!(rd(&mut r, ISACTIVER0), 0);
        assert_eq!(r.passthrough_mask(ISPENDR0), Some(PPI_MASK));
        assert_eq!(r.passthrough_mask(ICACTIVER0), Some(PPI_MASK));
        assert_eq!(r.passthrough_mask(ISENABLER0), None);
        // All 16 PPIs at once: 16 effects.
        assert_eq!(w(&mut r, ICENABLER0, 4, u64::MAX).len(), 16);
    }

    #[test]
    fn groups_and_config() {
        let mut r = VgicRedist::new(0, 1);
        assert_eq!(rd(&mut r, IGROUPR0), 0xffff_ffff);
        w(&mut r, IGROUPR0, 4, 0);
        assert_eq!(rd(&mut r, IGROUPR0), 0xffff_ffff);
        assert_eq!(rd(&mut r, ICFGR0), 0xaaaa_aaaa);
        w(&mut r, ICFGR0, 4, 0);
        assert_eq!(rd(&mut r, ICFGR0), 0xaaaa_aaaa, "SGIs are always edge");
        assert_eq!(rd(&mut r, ICFGR1), 0, "PPIs start level-triggered");
        // INTID 27 is field 11 of ICFGR1.
        let fx = w(&mut r, ICFGR1, 4, 2 << 22);
        assert_eq!(
            fx,
            vec![Effect::SetPpiConfig {
                vcpu: 0,
                intid: 27,
                edge: true
            }]
        );
        assert!(r.ppi_edge(27));
        assert_eq!(rd(&mut r, ICFGR1), 2 << 22);
        assert!(w(&mut r, ICFGR1, 4, (2 << 22) | 0x5555_5555).is_empty());
        assert_eq!(w(&mut r, ICFGR1, 4, 0xaaaa_aaaa).len(), 15);
        for off in [
            GICR_SGI_BASE + 0x0d00,
            GICR_SGI_BASE + 0x0e00,
            GICR_SGI_BASE + 0x0104,
            0x0010,
            0x00c0,
        ] {
            assert!(w(&mut r, off, 4, u64::MAX).is_empty(), "{off:#x}");
            assert_eq!(rd(&mut r, off), 0, "{off:#x}");
        }
    }

    #[test]
    fn priorities() {
        let mut r = VgicRedist::new(0, 1);
        w(&mut r, IPRIORITYR, 4, 0x8070_6050);
        assert_eq!(rd(&mut r, IPRIORITYR), 0x8070_6050);
        w(&mut r, IPRIORITYR + 27, 1, 0xff);
        assert_eq!(r.priority(27), 0xf8);
        assert_eq!(r.read(IPRIORITYR + 27, 1).unwrap(), 0xf8);
        assert_eq!(r.priority(32), 0);
        assert_eq!(r.read(IPRIORITYR + 1, 2), Err(VgicError::BadWidth));
        assert_eq!(
            r.read(IPRIORITYR + 0x20, 1),
            Err(VgicError::BadWidth),
            "past the 32 priorities"
        );
    }

    #[test]
    fn pending_selection() {
        let mut r = VgicRedist::new(0, 1);
        w(&mut r, ISENABLER0, 4, 0xffff);
        w(&mut r, IPRIORITYR, 4, 0x0000_a0a0); // SGI 0, 1 at 0xa0
        w(&mut r, IPRIORITYR + 8, 1, 0x80); // SGI 8 at 0x80
        assert_eq!(r.best_pending(), None);
        r.set_sgi_pending(1);
        r.set_sgi_pending(0);
        assert_eq!(
            r.best_pending(),
            Some(PendingIrq {
                intid: 0,
                priority: 0xa0
            })
        );
        r.set_sgi_pending(8);
        assert_eq!(
            r.best_pending(),
            Some(PendingIrq {
                intid: 8,
                priority: 0x80
            })
        );
        assert!(r.take_pending(8));
        assert!(!r.take_pending(8));
        assert_eq!(r.best_pending().unwrap().intid, 0);
        // Disabled SGIs are not offered.
        w(&mut r, ICENABLER0, 4, 0b11);
        assert_eq!(r.best_pending(), None);
        assert!(r.sgi_pending(0));
        // Only SGIs can be made pending this way.
        assert!(!r.set_sgi_pending(16));
        assert!(!r.take_pending(27));
    }

    /// What SGI injection uses: the same choice as `best_pending`, taken
    /// out of the pending state, with whether another one still waits.
    #[test]
    fn take_best_pending_takes_in_order() {
        let mut r = VgicRedist::new(0, 1);
        w(&mut r, ISENABLER0, 4, 0xffff);
        w(&mut r, IPRIORITYR, 4, 0x0000_a0a0); // SGI 0, 1 at 0xa0
        w(&mut r, IPRIORITYR + 8, 1, 0x80); // SGI 8 at 0x80
        assert_eq!(r.take_best_pending(), None);
        for s in [1, 0, 8] {
            r.set_sgi_pending(s);
        }
        let mut order = Vec::new();
        while let Some((b, more)) = r.take_best_pending() {
            assert!(!r.sgi_pending(b.intid), "SGI {} taken", b.intid);
            assert_eq!(more, r.best_pending().is_some());
            order.push((b.intid, b.priority, more));
        }
        assert_eq!(order, [(8, 0x80, true), (0, 0xa0, true), (1, 0xa0, false)]);
        // A disabled SGI stays pending and is not taken.
        r.set_sgi_pending(2);
        w(&mut r, ICENABLER0, 4, 0b100);
        assert_eq!(r.take_best_pending(), None);
        assert!(r.sgi_pending(2));
    }

    /// REQ-FLT-2: malformed accesses get an error, never a panic.
    #[test]
    fn bad_accesses() {
        let mut r = VgicRedist::new(0, 1);
        let mut fx = Effects::new();
        assert_eq!(r.read(WAKER, 8), Err(VgicError::BadWidth));
        assert_eq!(r.read(WAKER, 2), Err(VgicError::BadWidth));
        assert_eq!(r.read(ISENABLER0, 1), Err(VgicError::BadWidth));
        assert_eq!(r.read(ISENABLER0 + 2, 4), Err(VgicError::Misaligned));
        assert_eq!(r.read(GICR_FRAME_SIZE, 4), Err(VgicError::OutOfFrame));
        assert_eq!(r.read(GICR_FRAME_SIZE - 4, 8), Err(VgicError::OutOfFrame));
        assert_eq!(
            r.write(ISENABLER0, 8, u64::MAX, &mut fx),
            Err(VgicError::BadWidth)
        );
        assert!(fx.is_empty());
        assert!(!r.enabled(27));
    }

    /// REQ-FLT-2: every write has a bounded, defined result.
    #[test]
    fn no_write_exceeds_the_effect_bound() {
        let mut r = VgicRedist::new(0, 8);
        for off in (0..GICR_FRAME_SIZE).step_by(4) {
            for width in [4u8, 8] {
                let mut fx = Effects::new();
                if r.write(off, width, u64::MAX, &mut fx).is_ok() {
                    assert!(fx.len() <= super::super::MAX_EFFECTS_PER_WRITE);
                }
            }
        }
    }

    #[test]
    fn reset_keeps_identity() {
        let mut r = VgicRedist::new(3, 4);
        w(&mut r, WAKER, 4, 0);
        w(&mut r, ISENABLER0, 4, u64::MAX);
        r.set_sgi_pending(2);
        r.reset();
        assert!(r.asleep());
        assert!(!r.enabled(2));
        assert!(!r.sgi_pending(2));
        assert_eq!(r.read(TYPER, 8).unwrap(), (3 << 32) | (3 << 8) | TYPER_LAST);
    }
}
