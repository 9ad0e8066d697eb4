//! The emulated distributor (GICD).

use super::{
    bits, check_access, id_register, Bitmap, Effect, Effects, PendingIrq, VgicError, VgicRedist,
    GICD_SIZE, ID_REGS_START, IIDR, MAX_SPI, MAX_VCPUS, PRIORITY_MASK,
};

const CTLR: u64 = 0x0000;
const TYPER: u64 = 0x0004;
const IIDR_OFF: u64 = 0x0008;
const IGROUPR: u64 = 0x0080;
const ISENABLER: u64 = 0x0100;
const ICENABLER: u64 = 0x0180;
const ISPENDR: u64 = 0x0200;
const ICPENDR: u64 = 0x0280;
const ISACTIVER: u64 = 0x0300;
const ICACTIVER: u64 = 0x0380;
const IPRIORITYR: u64 = 0x0400;
const ITARGETSR: u64 = 0x0800;
const ICFGR: u64 = 0x0c00;
const IGRPMODR: u64 = 0x0d00;
const NSACR: u64 = 0x0e00;
const CPENDSGIR: u64 = 0x0f10;
const IROUTER: u64 = 0x6000;
const IROUTER_END: u64 = 0x8000;

const CTLR_ENABLE_GRP0: u32 = 1 << 0;
const CTLR_ENABLE_GRP1: u32 = 1 << 1;
const CTLR_ARE: u32 = 1 << 4;
const CTLR_DS: u32 = 1 << 6;

const TYPER_IDBITS_10: u32 = 9 << 19;

const IROUTER_IRM: u64 = 1 << 31;
/// `route` value meaning IRM = 1 (any participating vCPU; delivered to vCPU 0).
const ROUTE_ANY: u8 = 0xff;

/// Which register an offset selects.
#[derive(Clone, Copy)]
enum Reg {
    Ctlr,
    Typer,
    Iidr,
    Id(u64),
    /// IGROUPR word `k`.
    Group(usize),
    /// A set/clear bit register, word `k`.
    Bits(BitOp, usize),
    /// IPRIORITYR byte offset from the start of the array.
    Priority(u64),
    /// ICFGR word `k` (16 interrupts).
    Config(usize),
    /// IROUTER<n>, byte offset inside the 8-byte register (0 or 4).
    Router(u32, u64),
    /// Reserved or RAZ/WI in this configuration, byte-accessible.
    RazWiBytes,
    /// Reserved or RAZ/WI.
    RazWi,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

fn decode(offset: u64) -> Reg {
    let word = |base: u64| ((offset - base) / 4) as usize;
    match offset {
        CTLR..=0x3 => Reg::Ctlr,
        TYPER..=0x7 => Reg::Typer,
        IIDR_OFF..=0xb => Reg::Iidr,
        IGROUPR..=0x00ff => Reg::Group(word(IGROUPR)),
        ISENABLER..=0x017f => Reg::Bits(BitOp::SetEnable, word(ISENABLER)),
        ICENABLER..=0x01ff => Reg::Bits(BitOp::ClearEnable, word(ICENABLER)),
        ISPENDR..=0x027f => Reg::Bits(BitOp::SetPending, word(ISPENDR)),
        ICPENDR..=0x02ff => Reg::Bits(BitOp::ClearPending, word(ICPENDR)),
        ISACTIVER..=0x037f => Reg::Bits(BitOp::SetActive, word(ISACTIVER)),
        ICACTIVER..=0x03ff => Reg::Bits(BitOp::ClearActive, word(ICACTIVER)),
        IPRIORITYR..=0x07ff => Reg::Priority(offset - IPRIORITYR),
        // ITARGETSR is RES0 with affinity routing; CPENDSGIR/SPENDSGIR too.
        ITARGETSR..=0x0bff => Reg::RazWiBytes,
        ICFGR..=0x0cff => Reg::Config(word(ICFGR)),
        IGRPMODR..=0x0d7f | NSACR..=0x0eff => Reg::RazWi,
        CPENDSGIR..=0x0f2f => Reg::RazWiBytes,
        IROUTER..IROUTER_END => Reg::Router(((offset - IROUTER) / 8) as u32, offset % 8),
        ID_REGS_START..=0xffff => Reg::Id(offset & !3),
        _ => Reg::RazWi,
    }
}

/// The emulated distributor of one partition.
#[derive(Clone, Debug)]
pub struct VgicDist {
    nr_vcpus: usize,
    owned: Bitmap,
    enabled: Bitmap,
    edge: Bitmap,
    priority: [u8; 1024],
    /// Target vCPU index, or `ROUTE_ANY`.
    route: [u8; 1024],
    ctlr: u32,
    it_lines: u32,
}

impl VgicDist {
    /// A distributor for a partition with `nr_vcpus` vCPUs that owns the SPIs
    /// in `owned_spis`. INTIDs outside 32..=1019 are ignored (the
    /// configuration validator has refused them already); `nr_vcpus` is
    /// clamped to 1..=[`MAX_VCPUS`].
    ///
    /// Every owned SPI starts disabled, level-triggered, priority 0 and
    /// routed to vCPU 0: the hypervisor must put the physical SPIs in the
    /// same state before the partition starts (see [`VgicDist::owned_spis`]).
    pub fn new(owned_spis: impl IntoIterator<Item = u32>, nr_vcpus: usize) -> Self {
        let mut owned = Bitmap::EMPTY;
        let mut highest = 0;
        for i in owned_spis {
            if (32..=MAX_SPI).contains(&i) {
                owned.set(i, true);
                highest = highest.max(i);
            }
        }
        Self {
            nr_vcpus: nr_vcpus.clamp(1, MAX_VCPUS),
            owned,
            enabled: Bitmap::EMPTY,
            edge: Bitmap::EMPTY,
            priority: [0; 1024],
            route: [0; 1024],
            ctlr: 0,
            // INTIDs up to 32 * (N + 1) - 1 exist.
            it_lines: highest / 32,
        }
    }

    /// Back to the state [`VgicDist::new`] gave (for a partition restart).
    pub fn reset(&mut self) {
        self.enabled = Bitmap::EMPTY;
        self.edge = Bitmap::EMPTY;
        self.priority = [0; 1024];
        self.route = [0; 1024];
        self.ctlr = 0;
    }

    /// Number of vCPUs of the partition.
    pub fn nr_vcpus(&self) -> usize {
        self.nr_vcpus
    }

    /// Whether the partition owns SPI `intid`.
    pub fn owns(&self, intid: u32) -> bool {
        self.owned.get(intid)
    }

    /// The SPIs the partition owns, in ascending order.
    pub fn owned_spis(&self) -> impl Iterator<Item = u32> + '_ {
        (32..=MAX_SPI).filter(|&i| self.owned.get(i))
    }

    /// Guest-programmed priority of an owned SPI (masked to
    /// [`PRIORITY_MASK`]); 0 for SPIs it does not own.
    pub fn priority(&self, intid: u32) -> u8 {
        if self.owns(intid) {
            self.priority[intid as usize]
        } else {
            0
        }
    }

    /// The vCPU an owned SPI is delivered to (IRM = 1 means vCPU 0).
    pub fn target_vcpu(&self, intid: u32) -> Option<usize> {
        if !self.owns(intid) {
            return None;
        }
        Some(self.effective_target(intid))
    }

    fn effective_target(&self, intid: u32) -> usize {
        match self.route[intid as usize] {
            ROUTE_ANY => 0,
            v => v as usize,
        }
    }

    /// Whether the guest has enabled owned SPI `intid`.
    pub fn spi_enabled(&self, intid: u32) -> bool {
        self.owns(intid) && self.enabled.get(intid)
    }

    /// Whether owned SPI `intid` is configured edge-triggered.
    pub fn spi_edge(&self, intid: u32) -> bool {
        self.owns(intid) && self.edge.get(intid)
    }

    /// GICD_CTLR.EnableGrp1: the guest lets Group 1 interrupts through.
    /// The hypervisor should hold back hardware SPIs while this is clear.
    pub fn group1_enabled(&self) -> bool {
        self.ctlr & CTLR_ENABLE_GRP1 != 0
    }

    /// For a read of GICD_ISPENDR/ICPENDR/ISACTIVER/ICACTIVER word `offset`:
    /// the bits the partition owns. The emulation reads those registers as
    /// 0 (the state is in hardware); a hypervisor that wants exact answers
    /// reads the same offset of the physical distributor and ANDs it with
    /// this mask. `None` for every other offset.
    pub fn passthrough_mask(&self, offset: u64) -> Option<u32> {
        if !offset.is_multiple_of(4) {
            return None;
        }
        match decode(offset) {
            Reg::Bits(op, k) if !matches!(op, BitOp::SetEnable | BitOp::ClearEnable) => {
                Some(self.owned.word(k))
            }
            _ => None,
        }
    }

    /// The highest-priority virtual interrupt ready for `redist`'s vCPU: a
    /// pending and enabled SGI, provided the guest has enabled Group 1. SPIs
    /// and PPIs are never returned (the hardware delivers them). Ties go to
    /// the lower INTID.
    pub fn pending_for(&self, redist: &VgicRedist) -> Option<PendingIrq> {
        if !self.group1_enabled() {
            return None;
        }
        redist.best_pending()
    }

    /// A guest read of `width` bytes at `offset` in the distributor frame.
    pub fn read(&mut self, offset: u64, width: u8) -> Result<u64, VgicError> {
        let reg = decode_checked(offset, width)?;
        let v: u64 = match reg {
            Reg::Ctlr => (self.ctlr | CTLR_ARE | CTLR_DS) as u64,
            Reg::Typer => {
                (self.it_lines | ((self.nr_vcpus as u32 - 1) << 5) | TYPER_IDBITS_10) as u64
            }
            Reg::Iidr => IIDR as u64,
            Reg::Id(o) => id_register(o) as u64,
            // Every owned interrupt is Group 1 (non-secure) and stays so.
            Reg::Group(k) => self.owned.word(k) as u64,
            Reg::Bits(BitOp::SetEnable | BitOp::ClearEnable, k) => {
                (self.enabled.word(k) & self.owned.word(k)) as u64
            }
            // Pending and active state is in the physical GIC.
            Reg::Bits(_, _) => 0,
            Reg::Priority(b) => {
                let mut v = 0u64;
                for i in 0..width as u64 {
                    v |= (self.priority((b + i) as u32) as u64) << (8 * i);
                }
                v
            }
            Reg::Config(k) => self.read_config(k) as u64,
            Reg::Router(n, half) => {
                let full = self.read_router(n);
                if width == 8 {
                    full
                } else {
                    (full >> (8 * half)) & 0xffff_ffff
                }
            }
            Reg::RazWi | Reg::RazWiBytes => 0,
        };
        Ok(v)
    }

    /// A guest write; physical consequences are appended to `fx`.
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
        let v32 = value as u32;
        match reg {
            Reg::Ctlr => {
                let was = self.group1_enabled();
                self.ctlr = v32 & (CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1);
                if !was && self.group1_enabled() {
                    // SGIs made pending while the distributor was off are
                    // deliverable now: every vCPU looks again.
                    for vcpu in 0..self.nr_vcpus.min(super::MAX_VCPUS) {
                        fx.push(Effect::Kick { vcpu });
                    }
                }
            }
            Reg::Bits(op, k) => self.write_bits(op, k, v32, fx),
            Reg::Priority(b) => {
                for i in 0..width as u64 {
                    let intid = (b + i) as u32;
                    if self.owns(intid) {
                        self.priority[intid as usize] = (value >> (8 * i)) as u8 & PRIORITY_MASK;
                    }
                }
            }
            Reg::Config(k) => self.write_config(k, v32, fx),
            Reg::Router(n, half) => self.write_router(n, half, width, value, fx),
            Reg::Typer | Reg::Iidr | Reg::Id(_) | Reg::Group(_) | Reg::RazWi | Reg::RazWiBytes => {}
        }
        Ok(())
    }

    fn write_bits(&mut self, op: BitOp, k: usize, v: u32, fx: &mut Effects) {
        let mask = v & self.owned.word(k);
        let base = 32 * k as u32;
        for intid in bits(mask, base) {
            let e = match op {
                BitOp::SetEnable => {
                    self.enabled.set(intid, true);
                    Effect::EnableSpi {
                        intid,
                        target_vcpu: self.effective_target(intid),
                    }
                }
                BitOp::ClearEnable => {
                    self.enabled.set(intid, false);
                    Effect::DisableSpi { intid }
                }
                BitOp::SetPending => Effect::SetPending { intid },
                BitOp::ClearPending => Effect::ClearPending { intid },
                BitOp::SetActive => Effect::SetActive { intid },
                BitOp::ClearActive => Effect::ClearActive { intid },
            };
            fx.push(e);
        }
    }

    fn read_config(&self, k: usize) -> u32 {
        let mut v = 0;
        for i in 0..16u32 {
            let intid = 16 * k as u32 + i;
            if self.spi_edge(intid) {
                v |= 2 << (2 * i);
            }
        }
        v
    }

    fn write_config(&mut self, k: usize, v: u32, fx: &mut Effects) {
        for i in 0..16u32 {
            let intid = 16 * k as u32 + i;
            if !self.owns(intid) {
                continue;
            }
            // Int_config[1] selects edge; Int_config[0] is RES0.
            let edge = v & (2 << (2 * i)) != 0;
            if self.edge.get(intid) != edge {
                self.edge.set(intid, edge);
                fx.push(Effect::SetSpiConfig { intid, edge });
            }
        }
    }

    fn read_router(&self, n: u32) -> u64 {
        if !self.owns(n) {
            return 0;
        }
        match self.route[n as usize] {
            ROUTE_ANY => IROUTER_IRM,
            v => v as u64, // Aff0 = vCPU index, Aff1..3 = 0
        }
    }

    /// Accepts a route only to one of the partition's own vCPUs (or IRM = 1).
    /// Any other affinity — which on hardware would name another
    /// partition's core or no core — is refused: the write is ignored and
    /// the previous route stays (and reads back).
    fn write_router(&mut self, n: u32, half: u64, width: u8, value: u64, fx: &mut Effects) {
        if !self.owns(n) {
            return;
        }
        let old = self.read_router(n);
        let new = match (width, half) {
            (8, _) => value,
            (_, 0) => (old & !0xffff_ffff) | (value & 0xffff_ffff),
            _ => (old & 0xffff_ffff) | ((value & 0xffff_ffff) << 32),
        };
        let aff0 = new & 0xff;
        let aff_rest = new & 0xff_00ff_ff00; // Aff1 [15:8], Aff2 [23:16], Aff3 [39:32]
        let route = if new & IROUTER_IRM != 0 {
            ROUTE_ANY
        } else if aff_rest == 0 && (aff0 as usize) < self.nr_vcpus {
            aff0 as u8
        } else {
            return;
        };
        let before = self.effective_target(n);
        self.route[n as usize] = route;
        let after = self.effective_target(n);
        if before != after {
            fx.push(Effect::RouteSpi {
                intid: n,
                target_vcpu: after,
            });
        }
    }
}

fn decode_checked(offset: u64, width: u8) -> Result<Reg, VgicError> {
    // Decode first only to learn the legal widths; check before using it.
    let reg = if offset < GICD_SIZE {
        decode(offset)
    } else {
        Reg::RazWi
    };
    let (byte_ok, dword_ok) = match reg {
        Reg::Priority(_) | Reg::RazWiBytes => (true, false),
        Reg::Router(..) => (false, true),
        _ => (false, false),
    };
    check_access(offset, width, GICD_SIZE, byte_ok, dword_ok)?;
    Ok(reg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Owns SPIs 33, 40 and 64..=95; 4 vCPUs.
    fn dist() -> VgicDist {
        VgicDist::new([33, 40].into_iter().chain(64..96), 4)
    }

    fn w(d: &mut VgicDist, off: u64, width: u8, v: u64) -> Vec<Effect> {
        let mut fx = Effects::new();
        d.write(off, width, v, &mut fx).unwrap();
        fx.as_slice().to_vec()
    }

    fn r(d: &mut VgicDist, off: u64) -> u64 {
        d.read(off, 4).unwrap()
    }

    #[test]
    fn ctlr() {
        let mut d = dist();
        assert_eq!(
            r(&mut d, CTLR),
            0x50,
            "ARE and DS always set, groups disabled"
        );
        let kicks: Vec<Effect> = (0..4).map(|vcpu| Effect::Kick { vcpu }).collect();
        assert_eq!(
            w(&mut d, CTLR, 4, 0xffff_ffff),
            kicks,
            "enabling Group 1 kicks every vCPU (SGIs pending while it was off)"
        );
        assert_eq!(r(&mut d, CTLR), 0x53, "RWP and the rest stay 0");
        assert!(d.group1_enabled());
        assert!(
            w(&mut d, CTLR, 4, 0x2).is_empty(),
            "no kick when it stays enabled"
        );
        assert!(
            w(&mut d, CTLR, 4, 0x1).is_empty(),
            "nor when it is disabled"
        );
        assert!(!d.group1_enabled());
        assert_eq!(r(&mut d, CTLR), 0x51);
        assert_eq!(w(&mut d, CTLR, 4, 0x2), kicks);
    }

    #[test]
    fn typer_and_ids() {
        let mut d = dist();
        // Highest owned SPI 95 -> ITLinesNumber 2; CPUNumber 3; IDbits 9.
        assert_eq!(r(&mut d, TYPER), 2 | (3 << 5) | (9 << 19));
        let mut one = VgicDist::new([32], 1);
        assert_eq!(r(&mut one, TYPER) & 0xff, 1);
        let mut none = VgicDist::new([], 2);
        assert_eq!(r(&mut none, TYPER) & 0xff, 1 << 5);
        let mut top = VgicDist::new([1019], 8);
        assert_eq!(r(&mut top, TYPER) & 0xff, 31 | (7 << 5));
        assert_eq!(r(&mut d, IIDR_OFF), IIDR as u64);
        assert_eq!(r(&mut d, 0xffe8) >> 4 & 0xf, 3, "PIDR2.ArchRev = GICv3");
        assert_eq!(r(&mut d, 0xfff0), 0x0d);
        assert_eq!(r(&mut d, 0xfffc), 0xb1);
        w(&mut d, TYPER, 4, 0);
        w(&mut d, 0xffe8, 4, 0);
        assert_eq!(r(&mut d, 0xffe8), 0x3b);
    }

    #[test]
    fn construction_ignores_bad_intids_and_clamps_vcpus() {
        let d = VgicDist::new([0, 15, 31, 1020, 1023, 5000, u32::MAX, 34], 0);
        assert_eq!(d.owned_spis().collect::<Vec<_>>(), vec![34]);
        assert_eq!(d.nr_vcpus(), 1);
        assert_eq!(VgicDist::new([], 99).nr_vcpus(), MAX_VCPUS);
    }

    /// REQ-ISO-2: only owned SPIs are visible and reach hardware.
    #[test]
    fn enable_masks_to_owned_and_emits_effects() {
        let mut d = dist();
        let fx = w(&mut d, ISENABLER + 4, 4, 0xffff_ffff);
        assert_eq!(
            fx,
            vec![
                Effect::EnableSpi {
                    intid: 33,
                    target_vcpu: 0
                },
                Effect::EnableSpi {
                    intid: 40,
                    target_vcpu: 0
                }
            ]
        );
        assert_eq!(r(&mut d, ISENABLER + 4), (1 << 1) | (1 << 8));
        assert_eq!(r(&mut d, ICENABLER + 4), (1 << 1) | (1 << 8));
        assert!(d.spi_enabled(33) && !d.spi_enabled(34));
        // Word 0 (SGIs/PPIs) is RAZ/WI at the distributor.
        assert!(w(&mut d, ISENABLER, 4, 0xffff_ffff).is_empty());
        assert_eq!(r(&mut d, ISENABLER), 0);
        // All 32 of a fully owned word: 32 effects, within bounds.
        let fx = w(&mut d, ISENABLER + 8, 4, 0xffff_ffff);
        assert_eq!(fx.len(), 32);
        assert_eq!(r(&mut d, ISENABLER + 8), 0xffff_ffff);
        let fx = w(&mut d, ICENABLER + 4, 4, 1 << 1);
        assert_eq!(fx, vec![Effect::DisableSpi { intid: 33 }]);
        assert_eq!(r(&mut d, ISENABLER + 4), 1 << 8);
        // Writing zeros does nothing.
        assert!(w(&mut d, ICENABLER + 4, 4, 0).is_empty());
        // Beyond ITLinesNumber and the last words: RAZ/WI.
        assert!(w(&mut d, ISENABLER + 0x7c, 4, 0xffff_ffff).is_empty());
        assert_eq!(r(&mut d, ISENABLER + 0x7c), 0);
    }

    /// REQ-ISO-2: pending/active requests only for owned SPIs.
    #[test]
    fn pending_and_active_are_forwarded_and_read_zero() {
        let mut d = dist();
        assert_eq!(
            w(&mut d, ISPENDR + 4, 4, 0xffff_fffd),
            vec![Effect::SetPending { intid: 40 }]
        );
        assert_eq!(
            w(&mut d, ICPENDR + 4, 4, 2),
            vec![Effect::ClearPending { intid: 33 }]
        );
        assert_eq!(
            w(&mut d, ISACTIVER + 4, 4, 2),
            vec![Effect::SetActive { intid: 33 }]
        );
        assert_eq!(
            w(&mut d, ICACTIVER + 4, 4, 0x102),
            vec![
                Effect::ClearActive { intid: 33 },
                Effect::ClearActive { intid: 40 }
            ]
        );
        for off in [ISPENDR, ICPENDR, ISACTIVER, ICACTIVER] {
            assert_eq!(r(&mut d, off + 4), 0);
            assert_eq!(d.passthrough_mask(off + 4), Some((1 << 1) | (1 << 8)));
            assert_eq!(d.passthrough_mask(off), Some(0));
            assert_eq!(d.passthrough_mask(off + 8), Some(0xffff_ffff));
        }
        assert_eq!(d.passthrough_mask(ISENABLER + 4), None);
        assert_eq!(d.passthrough_mask(ISPENDR + 5), None);
        assert_eq!(d.passthrough_mask(CTLR), None);
        // Not owned: nothing forwarded.
        assert!(w(&mut d, ISPENDR + 0x10, 4, 0xffff_ffff).is_empty());
    }

    #[test]
    fn group_registers() {
        let mut d = dist();
        assert_eq!(r(&mut d, IGROUPR + 4), (1 << 1) | (1 << 8));
        assert_eq!(r(&mut d, IGROUPR + 8), 0xffff_ffff);
        assert_eq!(r(&mut d, IGROUPR), 0);
        w(&mut d, IGROUPR + 4, 4, 0);
        assert_eq!(
            r(&mut d, IGROUPR + 4),
            (1 << 1) | (1 << 8),
            "group is fixed"
        );
        for off in [IGRPMODR + 4, NSACR + 8] {
            w(&mut d, off, 4, 0xffff_ffff);
            assert_eq!(r(&mut d, off), 0);
        }
    }

    /// REQ-ISO-2: priorities of foreign interrupts are RAZ/WI.
    #[test]
    fn priorities_bytes_and_words() {
        let mut d = dist();
        // Word with INTIDs 32..=35: only 33 is owned.
        assert!(w(&mut d, IPRIORITYR + 32, 4, 0xffff_ffff).is_empty());
        assert_eq!(r(&mut d, IPRIORITYR + 32), 0x0000_f800);
        assert_eq!(d.priority(33), 0xf8);
        assert_eq!(d.priority(32), 0);
        // Byte access to INTID 40.
        w(&mut d, IPRIORITYR + 40, 1, 0xa7);
        assert_eq!(d.read(IPRIORITYR + 40, 1).unwrap(), 0xa0);
        assert_eq!(d.read(IPRIORITYR + 41, 1).unwrap(), 0);
        // Word over 64..=67 (all owned).
        w(&mut d, IPRIORITYR + 64, 4, 0x4030_2010);
        assert_eq!(r(&mut d, IPRIORITYR + 64), 0x4030_2010);
        assert_eq!(d.read(IPRIORITYR + 66, 1).unwrap(), 0x30);
        // SGI/PPI bytes are RAZ/WI at the distributor.
        w(&mut d, IPRIORITYR, 4, 0xffff_ffff);
        assert_eq!(r(&mut d, IPRIORITYR), 0);
        // Halfword and doubleword accesses are refused.
        assert_eq!(d.read(IPRIORITYR + 64, 2), Err(VgicError::BadWidth));
        assert_eq!(d.read(IPRIORITYR + 64, 8), Err(VgicError::BadWidth));
        assert_eq!(d.read(IPRIORITYR + 65, 4), Err(VgicError::Misaligned));
        d.reset();
        assert_eq!(d.priority(64), 0);
    }

    /// REQ-ISO-2: trigger changes only for owned SPIs.
    #[test]
    fn config_registers() {
        let mut d = dist();
        // ICFGR2 covers 32..=47; only 33 and 40 are owned.
        let fx = w(&mut d, ICFGR + 8, 4, 0xffff_ffff);
        assert_eq!(
            fx,
            vec![
                Effect::SetSpiConfig {
                    intid: 33,
                    edge: true
                },
                Effect::SetSpiConfig {
                    intid: 40,
                    edge: true
                }
            ]
        );
        assert_eq!(r(&mut d, ICFGR + 8), (2 << 2) | (2 << 16));
        assert!(d.spi_edge(33));
        // Same value again: no change, no effect. Int_config[0] is ignored.
        assert!(w(&mut d, ICFGR + 8, 4, 0xffff_ffff).is_empty());
        assert!(w(&mut d, ICFGR + 8, 4, (2 << 2) | (2 << 16) | 0x5555_5555).is_empty());
        let fx = w(&mut d, ICFGR + 8, 4, 2 << 16);
        assert_eq!(
            fx,
            vec![Effect::SetSpiConfig {
                intid: 33,
                edge: false
            }]
        );
        // SGI/PPI config words: RAZ/WI.
        assert!(w(&mut d, ICFGR, 4, 0xffff_ffff).is_empty());
        assert_eq!(r(&mut d, ICFGR + 4), 0);
        // ICFGR4 (64..=79): 16 effects at most.
        assert_eq!(w(&mut d, ICFGR + 16, 4, 0xaaaa_aaaa).len(), 16);
    }

    #[test]
    fn router_valid_targets() {
        let mut d = dist();
        let off = IROUTER + 8 * 40;
        assert_eq!(d.read(off, 8).unwrap(), 0);
        assert_eq!(
            w(&mut d, off, 8, 3),
            vec![Effect::RouteSpi {
                intid: 40,
                target_vcpu: 3
            }]
        );
        assert_eq!(d.read(off, 8).unwrap(), 3);
        assert_eq!(d.target_vcpu(40), Some(3));
        // Enabling reports the current target.
        assert_eq!(
            w(&mut d, ISENABLER + 4, 4, 1 << 8),
            vec![Effect::EnableSpi {
                intid: 40,
                target_vcpu: 3
            }]
        );
        // Same route again: no effect.
        assert!(w(&mut d, off, 8, 3).is_empty());
        // IRM = 1: delivered to vCPU 0, reads back IRM.
        assert_eq!(
            w(&mut d, off, 8, 1 << 31),
            vec![Effect::RouteSpi {
                intid: 40,
                target_vcpu: 0
            }]
        );
        assert_eq!(d.read(off, 8).unwrap(), 1 << 31);
        assert_eq!(d.target_vcpu(40), Some(0));
        // IRM with garbage affinity is still IRM.
        w(&mut d, off, 8, (1 << 31) | 0xff_00ff_ffff);
        assert_eq!(d.read(off, 8).unwrap(), 1 << 31);
    }

    /// REQ-ISO-2: an SPI cannot be routed to another partition's core.
    #[test]
    fn router_foreign_affinity_is_refused() {
        let mut d = dist();
        let off = IROUTER + 8 * 64;
        w(&mut d, off, 8, 2);
        // vCPU 4 does not exist; Aff1/Aff2/Aff3 name other clusters.
        for bad in [4u64, 0xff, 1 << 8, 1 << 16, 1 << 32, 0x01_0000_0002] {
            assert!(w(&mut d, off, 8, bad).is_empty(), "{bad:#x}");
            assert_eq!(d.read(off, 8).unwrap(), 2, "route kept after {bad:#x}");
        }
        // Not-owned SPIs: RAZ/WI.
        assert!(w(&mut d, IROUTER + 8 * 34, 8, 1).is_empty());
        assert_eq!(d.read(IROUTER + 8 * 34, 8).unwrap(), 0);
        assert_eq!(d.target_vcpu(34), None);
        // IROUTER<0..31> and beyond 1019 are reserved: RAZ/WI.
        assert_eq!(d.read(IROUTER, 8).unwrap(), 0);
        assert_eq!(d.read(0x7fe0, 8).unwrap(), 0);
    }

    #[test]
    fn router_32_bit_halves() {
        let mut d = dist();
        let off = IROUTER + 8 * 65;
        assert_eq!(
            w(&mut d, off, 4, 1),
            vec![Effect::RouteSpi {
                intid: 65,
                target_vcpu: 1
            }]
        );
        assert_eq!(d.read(off, 4).unwrap(), 1);
        assert_eq!(d.read(off + 4, 4).unwrap(), 0);
        // Upper half (Aff3) zero: accepted, nothing changes.
        assert!(w(&mut d, off + 4, 4, 0).is_empty());
        // Upper half non-zero: refused.
        assert!(w(&mut d, off + 4, 4, 1).is_empty());
        assert_eq!(d.read(off, 8).unwrap(), 1);
        // 64-bit at a 4-aligned offset is misaligned; byte and halfword refused.
        assert_eq!(d.read(off + 4, 8), Err(VgicError::Misaligned));
        assert_eq!(d.read(off, 1), Err(VgicError::BadWidth));
        assert_eq!(d.read(off, 2), Err(VgicError::BadWidth));
    }

    #[test]
    fn raz_wi_regions() {
        let mut d = dist();
        for off in [
            0x000c,
            0x0010,
            0x0040,
            0x0f00,
            0x1000,
            0x5ffc,
            0x8000,
            0xc000,
            0xfffc - 0x30,
        ] {
            assert!(w(&mut d, off, 4, 0xffff_ffff).is_empty(), "{off:#x}");
            assert_eq!(r(&mut d, off), 0, "{off:#x}");
        }
        // ITARGETSR and the SGI pending registers: RES0 with affinity routing, byte-accessible.
        for off in [0x0800, 0x0820, 0x0bff, 0x0f10, 0x0f2f] {
            assert_eq!(d.read(off, 1).unwrap(), 0);
            assert!(w(&mut d, off, 1, 0xff).is_empty());
        }
        assert_eq!(d.read(0x0820, 4).unwrap(), 0);
    }

    /// REQ-FLT-2: malformed accesses get an error, never a panic.
    #[test]
    fn bad_widths_and_offsets() {
        let mut d = dist();
        let mut fx = Effects::new();
        assert_eq!(d.read(CTLR, 8), Err(VgicError::BadWidth));
        assert_eq!(d.read(CTLR, 2), Err(VgicError::BadWidth));
        assert_eq!(d.read(CTLR, 1), Err(VgicError::BadWidth));
        assert_eq!(d.read(ISENABLER + 4, 1), Err(VgicError::BadWidth));
        assert_eq!(d.read(ISENABLER + 2, 4), Err(VgicError::Misaligned));
        assert_eq!(d.read(0x1_0000, 4), Err(VgicError::OutOfFrame));
        assert_eq!(d.read(u64::MAX, 1), Err(VgicError::OutOfFrame));
        assert_eq!(d.read(0, 0), Err(VgicError::BadWidth));
        assert_eq!(d.read(0, 16), Err(VgicError::BadWidth));
        assert_eq!(
            d.write(ISENABLER + 4, 8, u64::MAX, &mut fx),
            Err(VgicError::BadWidth)
        );
        assert_eq!(
            d.write(ISENABLER + 4, 1, 0xff, &mut fx),
            Err(VgicError::BadWidth)
        );
        assert!(fx.is_empty());
        assert!(!d.spi_enabled(33), "a refused write changes nothing");
    }

    #[test]
    fn full_effects_list_refuses_without_change() {
        let mut d = dist();
        let mut fx = Effects::new();
        d.write(ISENABLER + 8, 4, 0xffff_ffff, &mut fx).unwrap();
        assert_eq!(fx.len(), 32);
        assert_eq!(
            d.write(ICENABLER + 8, 4, 0xffff_ffff, &mut fx),
            Err(VgicError::EffectsFull)
        );
        assert_eq!(r(&mut d, ISENABLER + 8), 0xffff_ffff);
    }

    /// REQ-FLT-2: every write has a bounded, defined result.
    #[test]
    fn no_write_exceeds_the_effect_bound() {
        // Every 4-aligned offset, all-ones, with 32- and (where legal) 64-bit writes.
        let mut d = VgicDist::new(32..=MAX_SPI, 8);
        for off in (0..GICD_SIZE).step_by(4) {
            for width in [4u8, 8] {
                let mut fx = Effects::new();
                match d.write(off, width, u64::MAX, &mut fx) {
                    Ok(()) => assert!(fx.len() <= super::super::MAX_EFFECTS_PER_WRITE, "{off:#x}"),
                    Err(e) => assert!(matches!(
                        e,
                        VgicError::BadWidth | VgicError::Misaligned | VgicError::OutOfFrame
                    )),
                }
            }
        }
    }

    #[test]
    fn pending_for_needs_group1() {
        let mut d = dist();
        let mut rd = VgicRedist::new(0, 4);
        let mut fx = Effects::new();
        rd.write(super::super::GICR_SGI_BASE + 0x100, 4, 1 << 3, &mut fx)
            .unwrap();
        rd.set_sgi_pending(3);
        assert_eq!(d.pending_for(&rd), None);
        w(&mut d, CTLR, 4, 2);
        assert_eq!(
            d.pending_for(&rd),
            Some(PendingIrq {
                intid: 3,
                priority: 0
            })
        );
    }

    #[test]
    fn pending_for_picks_the_most_urgent_sgi_then_the_lowest_id() {
        let mut d = dist();
        w(&mut d, CTLR, 4, 2);
        let mut rd = VgicRedist::new(0, 4);
        let mut fx = Effects::new();
        let sgi = super::super::GICR_SGI_BASE;
        // SGIs 2, 5, 9, 14 enabled; priorities 0x80, 0x40, 0x40, 0x20.
        rd.write(
            sgi + 0x100,
            4,
            (1 << 2) | (1 << 5) | (1 << 9) | (1 << 14),
            &mut fx,
        )
        .unwrap();
        for (intid, prio) in [(2u64, 0x80u64), (5, 0x40), (9, 0x40), (14, 0x20)] {
            rd.write(sgi + 0x400 + intid, 1, prio, &mut fx).unwrap();
        }
        let next = |rd: &VgicRedist| d.pending_for(rd).map(|p| (p.intid, p.priority));
        assert_eq!(next(&rd), None);
        for i in [2, 5, 9, 14, 7] {
            rd.set_sgi_pending(i); // 7 is not enabled
        }
        let mut order = Vec::new();
        while let Some((i, p)) = next(&rd) {
            order.push((i, p));
            rd.take_pending(i);
        }
        assert_eq!(order, [(14, 0x20), (5, 0x40), (9, 0x40), (2, 0x80)]);
    }

    #[test]
    fn reset_restores_power_on_state() {
        let mut d = dist();
        w(&mut d, CTLR, 4, 3);
        w(&mut d, ISENABLER + 8, 4, 0xffff_ffff);
        w(&mut d, ICFGR + 16, 4, 0xaaaa_aaaa);
        w(&mut d, IROUTER + 8 * 64, 8, 2);
        d.reset();
        assert_eq!(r(&mut d, CTLR), 0x50);
        assert_eq!(r(&mut d, ISENABLER + 8), 0);
        assert_eq!(r(&mut d, ICFGR + 16), 0);
        assert_eq!(d.read(IROUTER + 8 * 64, 8).unwrap(), 0);
        assert!(d.owns(64), "ownership survives a reset");
    }
}
