//! Input shapes shared by the fuzz targets in `fuzz_targets/`.
//!
//! Register-file targets take MMIO accesses whose offset and width come from
//! the fuzzer. Drawing them uniformly from `u64`/`u8` would almost never hit a
//! register, so these types mostly produce plausible values (an offset inside
//! or just past the frame, a width of 1, 2, 4 or 8) and sometimes an
//! arbitrary one, which must be refused cleanly.

use libfuzzer_sys::arbitrary::{self, Arbitrary};

/// An access width: usually 1, 2, 4 or 8 bytes; sometimes any byte value.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub struct Width(u8);

impl Width {
    pub fn get(self) -> u8 {
        if self.0 & 0x80 == 0 {
            [1, 2, 4, 8][(self.0 & 3) as usize]
        } else {
            // Includes 0, 3, 16, 255 ... and occasionally a legal width again.
            self.0 & 0x7f
        }
    }
}

/// An offset into a register frame of `frame` bytes.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum Offset {
    /// Inside one of the target's register arrays (see [`Offset::get`]):
    /// `sel` picks the array, `index` the byte in it (4-byte aligned
    /// unless `bytes`).
    Reg { sel: u8, index: u16, bytes: bool },
    /// Inside the frame or up to 256 bytes past its end.
    Near(u32),
    /// Any value (frame overflow, `u64` wrap-around).
    Any(u64),
}

impl Offset {
    /// The offset; `regs` lists the frame's register arrays as
    /// (start, length in bytes), so that most offsets hit a register.
    pub fn get(self, frame: u64, regs: &[(u64, u64)]) -> u64 {
        match self {
            Self::Reg { sel, index, bytes } if !regs.is_empty() => {
                let (start, len) = regs[usize::from(sel) % regs.len()];
                let off = u64::from(index) % len.max(1);
                start + if bytes { off } else { off & !3 }
            }
            Self::Reg { index, .. } => u64::from(index) % frame,
            Self::Near(v) => u64::from(v) % (frame + 0x100),
            Self::Any(v) => v,
        }
    }
}

/// `value` masked to `width` bytes (`width` >= 8 keeps everything).
pub fn fits_width(value: u64, width: u8) -> bool {
    width >= 8 || value >> (8 * u32::from(width)) == 0
}

/// Interrupts a partition owns, as given to `VgicDist::new`: mostly
/// plausible SPIs, sometimes values outside 32..=1019, which the emulation
/// must ignore.
#[derive(Debug, Arbitrary)]
pub enum Owned {
    /// 32 + n: the low SPIs, where collisions with accesses are likely.
    Low(u8),
    /// `len` consecutive INTIDs from `start` (may run past 1019).
    Range { start: u16, len: u8 },
    /// Any value.
    Any(u16),
}

impl Owned {
    pub fn intids(&self) -> Vec<u32> {
        match *self {
            Self::Low(n) => vec![32 + u32::from(n)],
            Self::Range { start, len } => {
                let s = u32::from(start % 1100);
                (s..s + u32::from(len)).collect()
            }
            Self::Any(v) => vec![u32::from(v)],
        }
    }
}
