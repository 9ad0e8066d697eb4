//! Just enough of a flattened device tree (DTB) reader to find a GICv2:
//! the RTOS needs nothing else from a tree, so this is not a general
//! parser. Every read is bounds-checked, so a corrupt blob yields `None`,
//! never a panic or a read outside the slice.

const MAGIC: u32 = 0xd00d_feed;
/// Bytes of the header fields read here (up to `size_dt_struct`).
pub const HEADER_LEN: usize = 40;

const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

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

fn be32(b: &[u8], off: usize) -> Option<u32> {
    let bytes = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// The NUL-terminated string at `off`, without the NUL.
fn cstr(b: &[u8], off: usize) -> Option<&[u8]> {
    let s = b.get(off..)?;
    let len = s.iter().position(|&c| c == 0)?;
    Some(&s[..len])
}

/// The blob's total size from its header; `None` if `header` does not
/// start with an FDT header.
pub fn total_size(header: &[u8]) -> Option<usize> {
    if be32(header, 0)? != MAGIC {
        return None;
    }
    let total = usize::try_from(be32(header, 4)?).ok()?;
    (total >= HEADER_LEN).then_some(total)
}

/// The frames of the first GICv2 node that is a direct child of the root.
///
/// Only root children count: their `reg` is in the root's address space,
/// so it needs no translation through a bus's `ranges` (QEMU's and
/// Septum's trees put the GIC there; the Pi firmware's tree has it under
/// `/soc`, which this deliberately does not follow).
pub fn find_gicv2(dtb: &[u8]) -> Option<Gicv2Frames> {
    let total = total_size(dtb)?;
    let dtb = dtb.get(..total)?;
    let struct_off = usize::try_from(be32(dtb, 8)?).ok()?;
    let strings = dtb.get(usize::try_from(be32(dtb, 12)?).ok()?..)?;
    // size_dt_struct exists from version 17 on; before, the blob's end bounds it.
    let struct_end = if be32(dtb, 20)? >= 17 {
        struct_off.checked_add(usize::try_from(be32(dtb, 36)?).ok()?)?
    } else {
        total
    };
    let block = dtb.get(struct_off..struct_end)?;

    // The spec's defaults when the root does not say.
    let (mut addr_cells, mut size_cells) = (2, 1);
    let mut depth = 0usize;
    let mut is_gic = false;
    let mut reg: Option<&[u8]> = None;
    let mut pos = 0;
    // Each pass consumes at least one 4-byte token, and `be32` fails at the
    // end of the block, so the loop ends.
    loop {
        let token = be32(block, pos)?;
        pos += 4;
        match token {
            BEGIN_NODE => {
                let name = cstr(block, pos)?;
                pos = align4(pos + name.len() + 1)?;
                depth += 1;
                if depth == 2 {
                    is_gic = false;
                    reg = None;
                }
            }
            END_NODE => {
                if depth == 2 && is_gic {
                    if let Some(f) = reg.and_then(|r| decode_reg(r, addr_cells, size_cells)) {
                        return Some(f);
                    }
                }
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return None;
                }
            }
            PROP => {
                let len = usize::try_from(be32(block, pos)?).ok()?;
                let name = cstr(strings, usize::try_from(be32(block, pos + 4)?).ok()?)?;
                let start = pos + 8;
                let value = block.get(start..start.checked_add(len)?)?;
                pos = align4(start + len)?;
                match (depth, name) {
                    (1, b"#address-cells") => addr_cells = be32(value, 0)?,
                    (1, b"#size-cells") => size_cells = be32(value, 0)?,
                    (2, b"compatible") => {
                        is_gic = value
                            .split(|&c| c == 0)
                            .any(|s| GICV2_COMPATIBLE.iter().any(|c| c.as_bytes() == s));
                    }
                    (2, b"reg") => reg = Some(value),
                    _ => {}
                }
            }
            NOP => {}
            END => return None,
            _ => return None,
        }
    }
}

/// The first two (address, size) entries of `reg` as GICD and GICC.
fn decode_reg(reg: &[u8], addr_cells: u32, size_cells: u32) -> Option<Gicv2Frames> {
    if !(1..=2).contains(&addr_cells) || size_cells > 2 {
        return None;
    }
    let entry = 4 * (addr_cells + size_cells) as usize;
    let addr = |i: usize| -> Option<u64> {
        (0..addr_cells as usize).try_fold(0u64, |a, c| {
            Some((a << 32) | u64::from(be32(reg, i * entry + 4 * c)?))
        })
    };
    Some(Gicv2Frames {
        gicd: addr(0)?,
        gicc: addr(1)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a version-17 blob: header, an empty reservation map, the
    /// structure block, the strings.
    #[derive(Default)]
    struct Tree {
        structs: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Tree {
        fn word(&mut self, w: u32) -> &mut Self {
            self.structs.extend_from_slice(&w.to_be_bytes());
            self
        }
        fn pad(&mut self) {
            while !self.structs.len().is_multiple_of(4) {
                self.structs.push(0);
            }
        }
        fn begin(&mut self, name: &str) -> &mut Self {
            self.word(BEGIN_NODE);
            self.structs.extend_from_slice(name.as_bytes());
            self.structs.push(0);
            self.pad();
            self
        }
        fn end(&mut self) -> &mut Self {
            self.word(END_NODE)
        }
        fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            self.word(PROP).word(value.len() as u32).word(off);
            self.structs.extend_from_slice(value);
            self.pad();
            self
        }
        fn cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
            let v: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
            self.prop(name, &v)
        }
        fn strs(&mut self, name: &str, strs: &[&str]) -> &mut Self {
            let v: Vec<u8> = strs
                .iter()
                .flat_map(|s| s.bytes().chain(core::iter::once(0)))
                .collect();
            self.prop(name, &v)
        }
        fn blob(&mut self) -> Vec<u8> {
            self.word(END);
            let rsv = HEADER_LEN as u32;
            let structs = rsv + 16;
            let strings = structs + self.structs.len() as u32;
            let total = strings + self.strings.len() as u32;
            let mut b = Vec::new();
            for w in [
                MAGIC,
                total,
                structs,
                strings,
                rsv,
                17,
                16,
                0,
                self.strings.len() as u32,
                self.structs.len() as u32,
            ] {
                b.extend_from_slice(&w.to_be_bytes());
            }
            b.extend_from_slice(&[0; 16]);
            b.extend_from_slice(&self.structs);
            b.extend_from_slice(&self.strings);
            b
        }
    }

    /// The shape of QEMU virt's tree with gic-version=2: two-cell
    /// addresses, the GIC with a GICv2m child that has a `reg` of its own.
    fn qemu_virt_v2() -> Vec<u8> {
        let mut t = Tree::default();
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
        let mut t = Tree::default();
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
        let mut t = Tree::default();
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

    #[test]
    fn gic_under_a_bus_is_not_followed() {
        // The Pi firmware's tree: the GIC sits under /soc, behind `ranges`.
        let mut t = Tree::default();
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
        assert_eq!(find_gicv2(&t.blob()), None);
    }

    #[test]
    fn gicv3_and_incomplete_nodes_are_not_a_gicv2() {
        let mut t = Tree::default();
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
            .begin("no-reg")
            .strs("compatible", &["arm,gic-400"])
            .end()
            .begin("one-reg")
            .strs("compatible", &["arm,gic-400"])
            .cells("reg", &[0, 0x0800_0000, 0, 0x1000])
            .end()
            .end();
        assert_eq!(find_gicv2(&t.blob()), None);
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
