//! The GICv2 in the device tree the RTOS's boot argument points at, read
//! with `septum-fdt`: the same bounds-checked, fuzzed reader the hypervisor
//! uses, so a corrupt blob yields `None`, never a panic or a read outside
//! the slice.

use septum_fdt::{survey, Fdt};

pub use septum_fdt::HEADER_LEN;

/// Compatible strings of a GICv2 whose first two `reg` entries are the
/// distributor and the CPU interface (QEMU virt says `arm,cortex-a15-gic`,
/// Septum's partition trees and the Pi's `arm,gic-400`).
pub const GICV2_COMPATIBLE: [&str; 3] = ["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a7-gic"];

/// Physical (or intermediate physical) addresses of a GICv2's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gicv2Frames {
    pub gicd: u64,
    pub gicc: u64,
}

/// The blob's total size from its header; `None` if `header` does not
/// start with an FDT header.
pub fn total_size(header: &[u8]) -> Option<usize> {
    septum_fdt::total_size(header).ok()
}

/// The frames of the first GICv2 node in the tree, as CPU addresses: a
/// `reg` under a bus (the Pi firmware's tree has the GIC under /soc) is
/// translated through the buses' `ranges`. `None` when the first such node
/// lacks either frame.
pub fn find_gicv2(dtb: &[u8]) -> Option<Gicv2Frames> {
    let tree = Fdt::new(dtb).ok()?;
    // The survey's device check is not wanted here; its answer is ignored.
    let [gicd, gicc] = survey(&tree, &GICV2_COMPATIBLE, u64::MAX).gic?;
    Some(Gicv2Frames {
        gicd: gicd?,
        gicc: gicc?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use septum_fdt::builder::Builder;

    /// The shape of QEMU virt's tree with gic-version=2: two-cell
    /// addresses, the GIC with a GICv2m child that has a `reg` of its own.
    fn qemu_virt_v2() -> Vec<u8> {
        let mut t = Builder::default();
        t.begin("")
            .cells("#address-cells", &[2])
            .cells("#size-cells", &[2])
            .strs("compatible", &["linux,dummy-virt"])
            .begin("memory@40000000")
            .cells("reg", &[0, 0x4000_0000, 0, 0x4000_0000])
            .end()
            .begin("intc@8000000")
            .cells(
                "reg",
                &[0, 0x0800_0000, 0, 0x1_0000, 0, 0x0801_0000, 0, 0x1_0000],
            )
            .strs("compatible", &["arm,cortex-a15-gic"])
            .begin("v2m@8020000")
            .strs("compatible", &["arm,gic-v2m-frame"])
            .cells("reg", &[0, 0x0802_0000, 0, 0x1000])
            .end()
            .end()
            .end();
        t.blob()
    }

    #[test]
    fn finds_qemu_virt_gicv2() {
        assert_eq!(
            find_gicv2(&qemu_virt_v2()),
            Some(Gicv2Frames {
                gicd: 0x0800_0000,
                gicc: 0x0801_0000
            })
        );
    }

    #[test]
    fn finds_septum_partition_gic400() {
        let mut t = Builder::default();
        t.begin("")
            .strs("compatible", &["septum,partition", "linux,dummy-virt"])
            .cells("#address-cells", &[2])
            .cells("#size-cells", &[2])
            .begin("chosen")
            .end()
            .begin("interrupt-controller@ff841000")
            .strs("compatible", &["arm,gic-400"])
            .cells(
                "reg",
                &[0, 0xff84_1000, 0, 0x1000, 0, 0xff84_2000, 0, 0x2000],
            )
            .cells("#interrupt-cells", &[3])
            .prop("interrupt-controller", &[])
            .end()
            .end();
        assert_eq!(
            find_gicv2(&t.blob()),
            Some(Gicv2Frames {
                gicd: 0xff84_1000,
                gicc: 0xff84_2000
            })
        );
    }

    #[test]
    fn one_cell_addresses() {
        let mut t = Builder::default();
        t.begin("")
            .cells("#address-cells", &[1])
            .cells("#size-cells", &[1])
            .begin("gic")
            .strs("compatible", &["vendor,thing", "arm,cortex-a7-gic"])
            .cells("reg", &[0x2c00_1000, 0x1000, 0x2c00_2000, 0x2000])
            .end()
            .end();
        assert_eq!(
            find_gicv2(&t.blob()),
            Some(Gicv2Frames {
                gicd: 0x2c00_1000,
                gicc: 0x2c00_2000
            })
        );
    }

    /// The Pi firmware's tree: the GIC sits under /soc, whose `ranges` maps
    /// bus address 0x4000_0000 to CPU address 0xff80_0000.
    #[test]
    fn gic_under_a_bus_is_translated() {
        let mut t = Builder::default();
        t.begin("")
            .cells("#address-cells", &[2])
            .cells("#size-cells", &[1])
            .begin("soc")
            .cells("#address-cells", &[1])
            .cells("#size-cells", &[1])
            .cells("ranges", &[0x4000_0000, 0, 0xff80_0000, 0x80_0000])
            .begin("interrupt-controller@40041000")
            .strs("compatible", &["arm,gic-400"])
            .cells("reg", &[0x4004_1000, 0x1000, 0x4004_2000, 0x2000])
            .end()
            .end()
            .end();
        assert_eq!(
            find_gicv2(&t.blob()),
            Some(Gicv2Frames {
                gicd: 0xff84_1000,
                gicc: 0xff84_2000
            })
        );
    }

    #[test]
    fn gicv3_and_incomplete_nodes_are_not_a_gicv2() {
        for (first, reg) in [
            ("no-reg", &[][..]),
            ("one-reg", &[0, 0x0800_0000, 0, 0x1000][..]),
        ] {
            let mut t = Builder::default();
            t.begin("")
                .cells("#address-cells", &[2])
                .cells("#size-cells", &[2])
                .begin("intc@8000000")
                .strs("compatible", &["arm,gic-v3"])
                .cells(
                    "reg",
                    &[0, 0x0800_0000, 0, 0x1_0000, 0, 0x080a_0000, 0, 0xf6_0000],
                )
                .end()
                .begin(first)
                .strs("compatible", &["arm,gic-400"]);
            if !reg.is_empty() {
                t.cells("reg", reg);
            }
            t.end().end();
            assert_eq!(find_gicv2(&t.blob()), None, "{first}");
        }
    }

    #[test]
    fn header() {
        let b = qemu_virt_v2();
        assert_eq!(total_size(&b), Some(b.len()));
        assert_eq!(total_size(&b[..HEADER_LEN]), Some(b.len()));
        assert_eq!(total_size(&b[..7]), None);
        assert_eq!(total_size(&[0u8; HEADER_LEN]), None);
    }

    #[test]
    fn truncated_or_corrupt_blobs_do_not_panic() {
        let b = qemu_virt_v2();
        for len in 0..b.len() {
            assert_eq!(find_gicv2(&b[..len]), None, "truncated to {len}");
        }
        for i in 0..b.len() {
            for x in [0x01, 0x80, 0xff] {
                let mut c = b.clone();
                c[i] ^= x;
                let _ = find_gicv2(&c);
            }
        }
    }
}
