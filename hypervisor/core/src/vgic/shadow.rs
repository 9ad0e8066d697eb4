//! The distributor's first four words (GICD_CTLR, GICD_TYPER, GICD_IIDR and
//! the word at 0x00C), kept as the emulation would answer them, so that a
//! guest's read of them needs neither the distributor's lock nor its
//! register decoder.
//!
//! Why these: Linux polls GICD_CTLR (its RWP bit) after every change of an
//! SPI's enable and configuration, and reads GICD_TYPER to size the GIC;
//! the words change only when the guest writes one of them, or on a reset.
//! So a shadow refreshed after those writes and resets answers every read
//! exactly as the emulation does ([`tests`] checks it against arbitrary
//! write sequences, on both frame layouts).
//!
//! A read racing a write on another vCPU sees the old or the new value,
//! as it would on hardware.
//!
//! The shadow also keeps whether the distributor forwards Group 1
//! interrupts (GICD_CTLR), which SGI injection asks on every SGI: it then
//! needs only the target's redistributor lock, not the distributor's.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{v2, VgicDist, VgicRedist};

/// Bytes of the frame the shadow covers, from offset 0.
pub const SPAN: u64 = 16;

/// Whether a write at `offset` may change a shadowed word (the caller then
/// refreshes the shadow while it still holds the emulation's lock).
#[inline]
pub fn covers(offset: u64) -> bool {
    offset < SPAN
}

/// Bit 32 of a shadow word: the emulation answers an aligned 32-bit read of
/// it (one it refuses stays the emulation's to refuse). In the word itself,
/// so that a read is one load.
const VALID: u64 = 1 << 32;

#[derive(Debug, Default)]
pub struct DistShadow {
    words: [AtomicU64; 4],
    group1: AtomicBool,
}

impl DistShadow {
    pub const fn new() -> DistShadow {
        DistShadow {
            words: [const { AtomicU64::new(0) }; 4],
            group1: AtomicBool::new(false),
        }
    }

    /// Whether the distributor forwards Group 1 interrupts
    /// ([`VgicDist::group1_enabled`]) as of the last refresh.
    #[inline(always)]
    pub fn group1_enabled(&self) -> bool {
        self.group1.load(Ordering::Acquire)
    }

    /// The answer to a guest read of `width` bytes at `offset` of the
    /// distributor frame, if the shadow has it: aligned 32-bit reads of the
    /// first four words.
    #[inline(always)]
    pub fn read(&self, offset: u64, width: u8) -> Option<u32> {
        if width != 4 || offset >= SPAN || offset & 3 != 0 {
            return None;
        }
        let w = self
            .words
            .get((offset >> 2) as usize)?
            .load(Ordering::Relaxed);
        (w & VALID != 0).then_some(w as u32)
    }

    /// Refreshes every word from a GICv3 distributor.
    pub fn refresh_v3(&self, d: &mut VgicDist) {
        self.refresh(|off| d.read(off, 4).ok());
        self.group1.store(d.group1_enabled(), Ordering::Release);
    }

    /// Refreshes every word from a GICv2 distributor frame (its first four
    /// words are not banked, so any vCPU's redistributor will do).
    pub fn refresh_v2(&self, d: &mut VgicDist, r: &mut VgicRedist) {
        self.refresh(|off| v2::read(d, r, off, 4).ok());
        self.group1.store(d.group1_enabled(), Ordering::Release);
    }

    fn refresh(&self, mut read: impl FnMut(u64) -> Option<u64>) {
        for (n, w) in self.words.iter().enumerate() {
            let v = read(n as u64 * 4).map_or(0, |v| (v & 0xffff_ffff) | VALID);
            w.store(v, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vgic::Effects;

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn check_v3(d: &mut VgicDist, s: &DistShadow) {
        for off in 0..SPAN + 8 {
            for width in [1u8, 2, 4, 8] {
                if let Some(v) = s.read(off, width) {
                    assert_eq!(Ok(u64::from(v)), d.read(off, width), "offset {off:#x}");
                }
            }
        }
        for off in (0..SPAN).step_by(4) {
            assert_eq!(
                s.read(off, 4).map(u64::from),
                d.read(off, 4).ok(),
                "offset {off:#x} not shadowed"
            );
        }
        assert_eq!(s.group1_enabled(), d.group1_enabled());
    }

    #[test]
    fn v3_shadow_answers_as_the_emulation_after_any_writes() {
        let mut d = VgicDist::new([33, 40].into_iter().chain(64..96), 4);
        let s = DistShadow::new();
        assert_eq!(s.read(0, 4), None, "an empty shadow answers nothing");
        s.refresh_v3(&mut d);
        check_v3(&mut d, &s);
        let mut rng = Rng(0x5e97_0d15);
        for _ in 0..20_000 {
            // Mostly the control words, also everything else in the frame.
            let off = if rng.next().is_multiple_of(2) {
                rng.next() % SPAN
            } else {
                rng.next() % 0x1_0000
            } & !3;
            let v = rng.next();
            let mut fx = Effects::new();
            if d.write(off, 4, v, &mut fx).is_ok() && covers(off) {
                s.refresh_v3(&mut d);
            }
            check_v3(&mut d, &s);
        }
        d.reset();
        s.refresh_v3(&mut d);
        check_v3(&mut d, &s);
    }

    #[test]
    fn v2_shadow_answers_as_the_emulation_after_any_writes() {
        let mut d = VgicDist::new([33, 40].into_iter().chain(64..96), 2);
        let mut r = VgicRedist::new(0, 2);
        let s = DistShadow::new();
        s.refresh_v2(&mut d, &mut r);
        let mut rng = Rng(0x0bad_cafe);
        for _ in 0..20_000 {
            let off = if rng.next().is_multiple_of(2) {
                rng.next() % SPAN
            } else {
                rng.next() % v2::GICD_V2_SIZE
            } & !3;
            let mut fx = Effects::new();
            if v2::write(&mut d, &mut r, off, 4, rng.next(), &mut fx).is_ok() && covers(off) {
                s.refresh_v2(&mut d, &mut r);
            }
            for off in (0..SPAN).step_by(4) {
                assert_eq!(
                    s.read(off, 4).map(u64::from),
                    v2::read(&mut d, &mut r, off, 4).ok(),
                    "offset {off:#x}"
                );
            }
            assert_eq!(s.group1_enabled(), d.group1_enabled());
        }
    }

    #[test]
    fn only_aligned_words_are_shadowed() {
        let mut d = VgicDist::new([40], 1);
        let s = DistShadow::new();
        s.refresh_v3(&mut d);
        assert!(s.read(4, 4).is_some());
        for (off, width) in [(4, 8), (4, 2), (5, 4), (2, 4), (16, 4), (!3, 4)] {
            assert_eq!(s.read(off, width), None, "{off:#x}/{width}");
        }
    }
}
