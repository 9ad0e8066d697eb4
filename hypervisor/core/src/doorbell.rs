//! A channel's doorbell (docs/channels.md, "Doorbell"): the writer's rate
//! limit ([`Bucket`]) and the reader's view of it, an input line of an
//! emulated ARM PL061 GPIO controller ([`Pl061`]), which an unmodified
//! Linux drives with its built-in `gpio-pl061` driver and whose edges its
//! userland waits for through the GPIO character device.
//!
//! A ring is a pulse on line 0: the line reads low before and after, so
//! every edge-sensitive configuration (rising, falling, both) latches it in
//! the raw interrupt status, as does high-level sensing (the pulse is held
//! until the guest clears it: a doorbell is never lost to sampling). A
//! low-level-sensitive line is always active, as on the real part.
//! Lines 1..=7 exist (the driver always has eight) and never change.
//!
//! The controller's interrupt output is level: asserted while
//! `RIS & IE != 0` ([`Pl061::asserted`]). The hypervisor makes the physical
//! SPI pending whenever the output may have risen (a ring; a write that
//! unmasks or leaves a line raised), so the edge-triggered SPI the guest
//! sees behaves as that level.

/// Offsets (PL061 TRM, "Register summary").
pub const GPIODATA_END: u64 = 0x3fc;
pub const GPIODIR: u64 = 0x400;
pub const GPIOIS: u64 = 0x404;
pub const GPIOIBE: u64 = 0x408;
pub const GPIOIEV: u64 = 0x40c;
pub const GPIOIE: u64 = 0x410;
pub const GPIORIS: u64 = 0x414;
pub const GPIOMIS: u64 = 0x418;
pub const GPIOIC: u64 = 0x41c;
pub const GPIOAFSEL: u64 = 0x420;
/// GPIOPeriphID0..3 and GPIOPCellID0..3, one byte in each word.
pub const ID_BASE: u64 = 0xfe0;
const ID: [u8; 8] = [0x61, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1];
/// The line a doorbell pulses.
pub const LINE: u8 = 1 << 0;

/// An access the controller does not answer: the hypervisor aborts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pl061Error {
    /// Not an 8- or 32-bit access.
    Width,
    /// Not naturally aligned.
    Misaligned,
    /// Outside the 4 KiB frame.
    Offset,
}

/// The register file. The guest's writes reach nothing but these bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pl061 {
    dir: u8,
    is: u8,
    ibe: u8,
    iev: u8,
    ie: u8,
    /// Latched events (edge, or a held high-level pulse).
    latched: u8,
    afsel: u8,
}

impl Pl061 {
    /// The reset state: all inputs, edge-sensitive, masked.
    pub const fn new() -> Self {
        Pl061 {
            dir: 0,
            is: 0,
            ibe: 0,
            iev: 0,
            ie: 0,
            latched: 0,
            afsel: 0,
        }
    }

    /// Pulses the lines in `lines` (a ring, or several folded together).
    pub fn pulse(&mut self, lines: u8) {
        // An output line does not sense its pin; low-level lines are always active.
        let inputs = lines & !self.dir;
        let edge = inputs & !self.is;
        let high = inputs & self.is & self.iev;
        self.latched |= edge | high;
    }

    /// Raw interrupt status: latched events, and low-level lines (the pins idle low).
    pub fn ris(&self) -> u8 {
        self.latched | (self.is & !self.iev & !self.dir)
    }

    pub fn mis(&self) -> u8 {
        self.ris() & self.ie
    }

    /// Whether the interrupt output is asserted.
    pub fn asserted(&self) -> bool {
        self.mis() != 0
    }

    /// A guest read of `width` bytes (1 or 4) at `offset`.
    pub fn read(&self, offset: u64, width: u8) -> Result<u32, Pl061Error> {
        check(offset, width)?;
        // A 32-bit read returns the byte register in its low bits.
        let word = offset & !3;
        let byte = (offset & 3) as u32;
        let v = match word {
            // DATA: address bits [9:2] mask the lines; every pin reads low.
            0..=GPIODATA_END => 0,
            GPIODIR => self.dir,
            GPIOIS => self.is,
            GPIOIBE => self.ibe,
            GPIOIEV => self.iev,
            GPIOIE => self.ie,
            GPIORIS => self.ris(),
            GPIOMIS => self.mis(),
            GPIOAFSEL => self.afsel,
            o if o >= ID_BASE => ID[((o - ID_BASE) / 4) as usize],
            // IC is write-only; the rest is reserved: read as zero.
            _ => 0,
        };
        Ok(if byte == 0 { u32::from(v) } else { 0 })
    }

    /// A guest write; only the low byte of a register is kept.
    pub fn write(&mut self, offset: u64, width: u8, value: u32) -> Result<(), Pl061Error> {
        check(offset, width)?;
        if offset & 3 != 0 {
            // The upper bytes of an 8-bit register: ignored.
            return Ok(());
        }
        let v = value as u8;
        match offset {
            // Output pins drive nothing: there is no pin behind a doorbell.
            0..=GPIODATA_END => {}
            GPIODIR => {
                self.dir = v;
                self.latched &= !v;
            }
            GPIOIS => self.is = v,
            GPIOIBE => self.ibe = v,
            GPIOIEV => self.iev = v,
            GPIOIE => self.ie = v,
            GPIOIC => self.latched &= !v,
            GPIOAFSEL => self.afsel = v,
            // RIS, MIS, the IDs and the reserved space ignore writes.
            _ => {}
        }
        Ok(())
    }
}

fn check(offset: u64, width: u8) -> Result<(), Pl061Error> {
    if width != 1 && width != 4 {
        return Err(Pl061Error::Width);
    }
    if !offset.is_multiple_of(u64::from(width)) {
        return Err(Pl061Error::Misaligned);
    }
    if offset >= crate::config::DOORBELL_FRAME {
        return Err(Pl061Error::Offset);
    }
    Ok(())
}

/// A token bucket: at most `burst` rings at once, `per_second` on average.
/// Counted in counter ticks times `per_second` (one ring costs `freq`
/// units), so it is exact at any counter frequency, without division.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    units: u64,
    last: u64,
}

impl Default for Bucket {
    fn default() -> Self {
        Self::new()
    }
}

impl Bucket {
    /// Empty at counter 0: the first ring waits for one refill (at boot the
    /// counter is already far past it).
    pub const fn new() -> Self {
        Bucket { units: 0, last: 0 }
    }

    /// Whether a ring at counter value `now` (ticks of `freq` Hz) may go;
    /// takes its token if so. A counter that goes backwards refills nothing.
    pub fn take(&mut self, now: u64, freq: u64, per_second: u32, burst: u32) -> bool {
        let cost = freq.max(1);
        let cap = cost.saturating_mul(u64::from(burst.max(1)));
        let elapsed = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        let refill = elapsed.saturating_mul(u64::from(per_second));
        self.units = self.units.saturating_add(refill).min(cap);
        if self.units >= cost {
            self.units -= cost;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RISING: [(u64, u32); 3] = [(GPIOIS, 0), (GPIOIBE, 0), (GPIOIEV, 1)];

    fn rising_unmasked() -> Pl061 {
        let mut g = Pl061::new();
        for (o, v) in RISING {
            g.write(o, 1, v).unwrap();
        }
        g.write(GPIOIE, 1, 1).unwrap();
        g
    }

    /// REQ-CHN-8: a ring raises the reader's interrupt once it has unmasked
    /// the line; clearing it drops the output until the next ring.
    #[test]
    fn a_ring_latches_until_cleared() {
        let mut g = rising_unmasked();
        assert!(!g.asserted());
        g.pulse(LINE);
        assert!(g.asserted());
        assert_eq!(g.read(GPIOMIS, 1), Ok(1));
        assert_eq!(g.read(GPIORIS, 4), Ok(1));
        g.pulse(LINE); // a second ring before the clear folds into the first
        g.write(GPIOIC, 1, 1).unwrap();
        assert!(!g.asserted());
        assert_eq!(g.read(GPIORIS, 1), Ok(0));
        g.pulse(LINE);
        assert!(g.asserted());
    }

    /// REQ-CHN-8: masked, a ring is kept in RIS and asserts on unmask, so a
    /// reader that arms late still sees the ring it missed.
    #[test]
    fn masked_rings_wait_for_the_unmask() {
        let mut g = Pl061::new();
        g.pulse(LINE);
        assert_eq!(g.read(GPIORIS, 1), Ok(1));
        assert!(!g.asserted());
        g.write(GPIOIE, 4, 0xffff_ff01).unwrap();
        assert!(g.asserted());
        assert_eq!(g.read(GPIOIE, 1), Ok(1));
    }

    #[test]
    fn every_sense_sees_a_pulse_and_low_level_is_always_active() {
        for (is, ibe, iev, seen) in [
            (0, 0, 0, true), // falling edge
            (0, 0, 1, true), // rising edge
            (0, 1, 0, true), // both edges
            (1, 0, 1, true), // high level, held until cleared
        ] {
            let mut g = Pl061::new();
            g.write(GPIOIS, 1, is).unwrap();
            g.write(GPIOIBE, 1, ibe).unwrap();
            g.write(GPIOIEV, 1, iev).unwrap();
            assert_eq!(g.read(GPIORIS, 1), Ok(0));
            g.pulse(LINE);
            assert_eq!(g.read(GPIORIS, 1).unwrap() & 1 == 1, seen);
        }
        let mut g = Pl061::new();
        g.write(GPIOIS, 1, 1).unwrap(); // line 0 low level: the idle pin is low
        assert_eq!(g.read(GPIORIS, 1), Ok(1));
        g.write(GPIOIC, 1, 0xff).unwrap();
        assert_eq!(g.read(GPIORIS, 1), Ok(1));
    }

    #[test]
    fn output_lines_sense_nothing_and_drive_nothing() {
        let mut g = rising_unmasked();
        g.write(GPIODIR, 1, 1).unwrap();
        g.pulse(LINE);
        assert!(!g.asserted());
        g.write(0x3fc, 1, 0xff).unwrap();
        assert_eq!(g.read(0x3fc, 1), Ok(0));
        assert_eq!(g.read(GPIODIR, 1), Ok(1));
    }

    /// The driver and the AMBA bus identify the part by these.
    #[test]
    fn identifies_as_a_pl061() {
        let g = Pl061::new();
        let id: Vec<u32> = (0..8)
            .map(|i| g.read(ID_BASE + 4 * i, 4).unwrap())
            .collect();
        assert_eq!(id, [0x61, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
    }

    /// REQ-CHN-8: anything else is a defined error or ignored, never a panic.
    #[test]
    fn bad_accesses_are_errors_and_read_only_registers_stay() {
        let mut g = Pl061::new();
        assert_eq!(g.read(GPIODIR, 2), Err(Pl061Error::Width));
        assert_eq!(g.read(GPIODIR, 8), Err(Pl061Error::Width));
        assert_eq!(g.read(GPIODIR + 2, 4), Err(Pl061Error::Misaligned));
        assert_eq!(g.read(0x1000, 1), Err(Pl061Error::Offset));
        assert_eq!(g.write(u64::MAX, 1, 0), Err(Pl061Error::Offset));
        g.pulse(LINE);
        let before = g;
        for o in [GPIORIS, GPIOMIS, ID_BASE, 0x800, 0xffc] {
            g.write(o, 4, u32::MAX).unwrap();
        }
        g.write(GPIOIE + 1, 1, 0xff).unwrap();
        assert_eq!(g, before);
        assert_eq!(g.read(GPIOIE + 1, 1), Ok(0));
        assert_eq!(g.read(GPIOIC, 4), Ok(0));
    }

    const F: u64 = 62_500_000;

    /// REQ-CHN-9: the writer can ring `burst` times at once, then at most
    /// `per_second` a second, however often it asks.
    #[test]
    fn the_bucket_bounds_rings() {
        let mut b = Bucket::new();
        let now = 1_000 * F;
        let rang = (0..100).filter(|_| b.take(now, F, 10, 4)).count();
        assert_eq!(rang, 4);
        // Asking a million times over ten seconds: 100 more rings.
        let mut rang = 0;
        for i in 1..=1_000_000u64 {
            rang += usize::from(b.take(now + i * 10 * F / 1_000_000, F, 10, 4));
        }
        assert_eq!(rang, 100);
        // Quiet for a minute: the bucket holds no more than burst.
        let later = now + 70 * F;
        assert_eq!((0..100).filter(|_| b.take(later, F, 10, 4)).count(), 4);
    }

    #[test]
    fn the_bucket_survives_any_clock() {
        let mut b = Bucket::new();
        assert!(b.take(u64::MAX, u64::MAX, 1000, 16));
        let mut b = Bucket::new();
        assert!(b.take(5 * F, F, 1, 1));
        // Backwards: no refill, and no refill later for the same span.
        assert!(!b.take(F, F, 1, 1));
        assert!(!b.take(5 * F, F, 1, 1));
        assert!(b.take(6 * F, F, 1, 1));
        // Zero frequency or rate: never a division, never a ring for free.
        let mut b = Bucket::new();
        assert!(!b.take(100, 0, 0, 0));
        assert!(b.take(u64::MAX, 0, 1, 0));
    }
}
