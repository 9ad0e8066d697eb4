//! Finding this core's GICv3 redistributor: pure logic over a register
//! reader, so the walk can be tested without hardware.

/// GICR_TYPER.VLPIS: the frame has two extra 64 KiB pages (VLPI, reserved).
pub const TYPER_VLPIS: u64 = 1 << 1;
/// GICR_TYPER.Last: no redistributor frames follow this one.
pub const TYPER_LAST: u64 = 1 << 4;
/// RD_base + SGI_base.
pub const FRAME_STRIDE: usize = 0x2_0000;
/// RD_base + SGI_base + VLPI_base + reserved.
pub const FRAME_STRIDE_VLPI: usize = 0x4_0000;

/// MPIDR_EL1 affinity in the layout of GICR_TYPER bits 63..32: Aff3.Aff2.Aff1.Aff0.
pub fn mpidr_affinity(mpidr: u64) -> u32 {
    let aff0_2 = (mpidr & 0x00ff_ffff) as u32;
    let aff3 = ((mpidr >> 32) & 0xff) as u32;
    (aff3 << 24) | aff0_2
}

/// Walks the frames from `base`, reading each GICR_TYPER with `read_typer`
/// (given the frame address), until the affinity matches `affinity`, a frame
/// says it is the last, or `max_frames` frames were seen (a bound in case an
/// emulation never sets Last). Returns the matching frame's address.
pub fn find_frame(
    base: usize,
    max_frames: usize,
    affinity: u32,
    mut read_typer: impl FnMut(usize) -> u64,
) -> Option<usize> {
    let mut frame = base;
    for _ in 0..max_frames {
        let typer = read_typer(frame);
        if (typer >> 32) as u32 == affinity {
            return Some(frame);
        }
        if typer & TYPER_LAST != 0 {
            return None;
        }
        let stride = if typer & TYPER_VLPIS != 0 {
            FRAME_STRIDE_VLPI
        } else {
            FRAME_STRIDE
        };
        frame = frame.checked_add(stride)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: usize = 0x080a_0000;

    fn typer(aff: u32, last: bool, vlpis: bool) -> u64 {
        (u64::from(aff) << 32)
            | if last { TYPER_LAST } else { 0 }
            | if vlpis { TYPER_VLPIS } else { 0 }
    }

    /// QEMU virt with 4 cores: affinities 0..3, Last on the fourth frame.
    fn qemu4(frame: usize) -> u64 {
        let i = (frame - BASE) / FRAME_STRIDE;
        typer(i as u32, i == 3, false)
    }

    #[test]
    fn affinity_layout() {
        assert_eq!(mpidr_affinity(0x8000_0000), 0);
        assert_eq!(mpidr_affinity(0x8000_0102), 0x0102);
        assert_eq!(mpidr_affinity(0x0000_00ab_0003_0201), 0xab03_0201);
    }

    #[test]
    fn finds_own_frame() {
        assert_eq!(find_frame(BASE, 64, 0, qemu4), Some(BASE));
        assert_eq!(
            find_frame(BASE, 64, 2, qemu4),
            Some(BASE + 2 * FRAME_STRIDE)
        );
        assert_eq!(
            find_frame(BASE, 64, 3, qemu4),
            Some(BASE + 3 * FRAME_STRIDE)
        );
    }

    #[test]
    fn stops_at_last_frame() {
        let mut reads = 0;
        let r = find_frame(BASE, 64, 7, |f| {
            reads += 1;
            qemu4(f)
        });
        assert_eq!(r, None);
        assert_eq!(reads, 4);
    }

    #[test]
    fn vlpi_frames_are_twice_as_big() {
        let r = find_frame(BASE, 64, 1, |f| {
            let i = (f - BASE) / FRAME_STRIDE_VLPI;
            assert_eq!((f - BASE) % FRAME_STRIDE_VLPI, 0);
            typer(i as u32, i == 1, true)
        });
        assert_eq!(r, Some(BASE + FRAME_STRIDE_VLPI));
    }

    #[test]
    fn bounded_without_last_bit() {
        let mut reads = 0;
        let r = find_frame(BASE, 8, 99, |f| {
            reads += 1;
            typer(((f - BASE) / FRAME_STRIDE) as u32, false, false)
        });
        assert_eq!(r, None);
        assert_eq!(reads, 8);
    }
}
