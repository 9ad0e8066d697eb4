//! Trees built token by token (with NOPs where QEMU and libfdt leave them),
//! and malformed blobs that must give errors, not panics. REQ-BOOT-1.

use super::builder::Builder;
use super::*;

/// A Pi-like tree: devices under /soc behind `ranges`, NOPs between
/// siblings and between properties (QEMU's raspi4b deletes nodes so).
fn pi_like() -> Vec<u8> {
    let mut b = Builder::default();
    b.begin("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[1])
        .prop("model", b"Raspberry Pi 4 Model B\0")
        .begin("memory@0")
        .prop("device_type", b"memory\0")
        .cells("reg", &[0, 0, 0x3b40_0000])
        .end()
        .nop()
        .nop()
        .begin("cpus")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[0]);
    for n in 0..4 {
        b.begin(&format!("cpu@{n}"))
            .prop("device_type", b"cpu\0")
            .nop()
            .cells("reg", &[n])
            .end();
    }
    b.end()
        .begin("soc")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[1])
        .cells("ranges", &[0x7e00_0000, 0, 0xfe00_0000, 0x0180_0000])
        .begin("serial@7e201000")
        .prop("compatible", b"arm,pl011\0arm,primecell\0")
        .cells("reg", &[0x7e20_1000, 0x200])
        .end()
        .nop()
        .begin("pcie@7d500000")
        .end()
        .end()
        .end();
    b.blob()
}

#[test]
fn walks_every_node_across_nops() {
    let blob = pi_like();
    let t = Fdt::new(&blob).unwrap();
    let names: Vec<(usize, &[u8])> = t.nodes().map(|n| (n.depth, n.name)).collect();
    assert_eq!(
        names,
        vec![
            (0, &b""[..]),
            (1, b"memory@0"),
            (1, b"cpus"),
            (2, b"cpu@0"),
            (2, b"cpu@1"),
            (2, b"cpu@2"),
            (2, b"cpu@3"),
            (1, b"soc"),
            (2, b"serial@7e201000"),
            (2, b"pcie@7d500000"),
        ]
    );
    assert_eq!(t.total_size(), blob.len());
}

#[test]
fn properties_and_lookups() {
    let blob = pi_like();
    let t = Fdt::new(&blob).unwrap();
    let root = t.find("/").unwrap();
    assert_eq!(root.prop_str("model"), Some("Raspberry Pi 4 Model B"));
    assert_eq!(root.child_cells(), (2, 1));
    let cpu2 = t.find("/cpus/cpu@2").unwrap();
    assert_eq!(cpu2.prop_u32("reg"), Some(2), "a property after a NOP");
    assert_eq!(cpu2.prop_str("device_type"), Some("cpu"));
    let serial = t.find("/soc/serial").unwrap();
    assert_eq!(serial.name, b"serial@7e201000");
    assert!(serial.compatible_with(&["arm,primecell"]));
    assert!(!serial.compatible_with(&["arm,gic-400"]));
    let regs: Vec<_> = reg_entries(serial.prop("reg").unwrap(), 1, 1).collect();
    assert_eq!(regs, vec![(0x7e20_1000, 0x200)]);
    let soc = t.find("/soc").unwrap();
    assert_eq!(soc.child_cells(), (1, 1));
    // Only properties before the first child belong to a node.
    assert_eq!(soc.props().count(), 3);
    assert!(t.find("/soc/serial@1").is_none());
    assert!(t.find("/nothing").is_none());
    assert!(t.find("/cpus/cpu@3/deeper").is_none());
    // A name must match within the same parent.
    assert!(t.find("/memory@0/cpu@0").is_none());
}

#[test]
fn cells_and_strings() {
    assert_eq!(
        read_cells(&[0, 0, 0, 1, 0, 0, 0, 2], 2),
        Some((0x1_0000_0002, &[][..]))
    );
    assert_eq!(read_cells(&[0, 0, 1], 1), None);
    assert_eq!(read_cells(&[0, 0, 0, 1], 0), None);
    assert_eq!(
        read_cells(&[0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 2], 3),
        Some((0x1_0000_0002, &[][..])),
        "three cells keep the low 64 bits"
    );
    assert_eq!(strings(b"a\0bc\0").collect::<Vec<_>>(), ["a", "bc"]);
    assert_eq!(strings(b"no-nul").count(), 0);
    let regs: Vec<_> = reg_entries(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3], 1, 1).collect();
    assert_eq!(regs, vec![(1, 2)], "a trailing partial entry is dropped");
    let regs: Vec<_> = reg_entries(&[0, 0, 0, 7], 1, 0).collect();
    assert_eq!(regs, vec![(7, 0)]);
}

#[test]
fn header_errors() {
    let blob = pi_like();
    assert_eq!(Fdt::new(&blob[..3]).err(), Some(FdtError::BadMagic));
    assert_eq!(Fdt::new(&[0u8; 64]).err(), Some(FdtError::BadMagic));
    assert_eq!(
        Fdt::new(&blob[..blob.len() - 1]).err(),
        Some(FdtError::Truncated)
    );
    let mut old = blob.clone();
    old[20..24].copy_from_slice(&15u32.to_be_bytes());
    assert_eq!(Fdt::new(&old).err(), Some(FdtError::Version(15)));
    let mut bad = blob.clone();
    bad[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(Fdt::new(&bad).err(), Some(FdtError::Truncated));
    let mut small = blob.clone();
    small[4..8].copy_from_slice(&8u32.to_be_bytes());
    assert_eq!(Fdt::new(&small).err(), Some(FdtError::Truncated));
}

/// Every truncation and every single-byte corruption of the structure
/// block ends the walk quietly.
#[test]
fn corrupt_trees_never_panic() {
    let blob = pi_like();
    let t = Fdt::new(&blob).unwrap();
    let all = t.nodes().count();
    for i in HEADER_LEN..blob.len() {
        for v in [0u8, 1, 2, 3, 4, 9, 0x7f, 0xff] {
            let mut b = blob.clone();
            b[i] = v;
            if let Ok(t) = Fdt::new(&b) {
                let n = t
                    .nodes()
                    .inspect(|n| {
                        let _ = n.props().count();
                        let _ = n.child_cells();
                    })
                    .count();
                assert!(n <= all + 8, "byte {i} = {v}: {n} nodes");
                let _ = t.find("/soc/serial");
            }
        }
    }
}

#[test]
fn depth_is_bounded() {
    let mut b = Builder::default();
    for i in 0..(MAX_DEPTH + 4) {
        b.begin(&format!("n{i}"));
    }
    for _ in 0..(MAX_DEPTH + 4) {
        b.end();
    }
    let blob = b.blob();
    let t = Fdt::new(&blob).unwrap();
    assert_eq!(t.nodes().count(), MAX_DEPTH);
}

/// The Pi-like tree with a GIC under /soc's second range.
fn pi_with_gic() -> Vec<u8> {
    let mut b = Builder::default();
    b.begin("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[1])
        .prop("model", b"Raspberry Pi 4 Model B\0")
        .begin("memory@0")
        .prop("device_type", b"memory\0")
        .cells("reg", &[0, 0, 0x3b40_0000, 0, 0x4000_0000, 0x4000_0000])
        .end()
        .nop()
        .begin("cpus")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[0])
        .begin("cpu@0")
        .prop("device_type", b"cpu\0")
        .cells("reg", &[0])
        .end()
        .begin("cpu@1")
        .prop("device_type", b"cpu\0")
        .cells("reg", &[1])
        .end()
        .end()
        .begin("soc")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[1])
        .cells(
            "ranges",
            &[
                0x7e00_0000,
                0,
                0xfe00_0000,
                0x0180_0000,
                0x4000_0000,
                0,
                0xff80_0000,
                0x0080_0000,
            ],
        )
        .begin("serial@7e201000")
        .cells("reg", &[0x7e20_1000, 0x200])
        .end()
        .nop()
        .begin("interrupt-controller@40041000")
        .prop("compatible", b"arm,gic-400\0")
        .cells("reg", &[0x4004_1000, 0x1000, 0x4004_2000, 0x2000])
        .end()
        .begin("nobus")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[1])
        .begin("dev@5")
        .cells("reg", &[0x5, 0x10])
        .end()
        .end()
        .end()
        .begin("psci")
        .prop("method", b"smc\0")
        .end()
        .end();
    b.blob()
}

#[test]
fn survey_translates_through_ranges() {
    let blob = pi_with_gic();
    let t = Fdt::new(&blob).unwrap();
    let s = survey(&t, &["arm,gic-400"], 0xfe20_1000);
    assert_eq!(s.model, Some("Raspberry Pi 4 Model B"));
    assert_eq!(s.cpus, 2);
    assert_eq!(
        s.memory(),
        &[(0, 0x3b40_0000), (0x4000_0000, 0x4000_0000)][..]
    );
    assert_eq!(s.gic, Some([Some(0xff84_1000), Some(0xff84_2000)]));
    assert!(s.device_found, "the PL011 at its CPU address");
    assert_eq!(s.psci_method, Some("smc"));
    // The bus address is not a CPU address.
    assert!(!survey(&t, &["arm,gic-400"], 0x7e20_1000).device_found);
    // A node under a bus without `ranges` does not reach the CPU.
    assert!(!survey(&t, &[], 0x5).device_found);
    assert_eq!(survey(&t, &["arm,gic-v3"], 0).gic, None);
}

/// The one-pass walk and the node-by-node one agree on a tree with
/// repeated and NOP'd properties, properties after a child (ignored by
/// both), more names than the cache has entries, and deep nesting.
#[test]
fn survey_in_one_pass_matches_the_node_walk() {
    let mut b = Builder::default();
    b.begin("")
        .prop("model", b"m\0")
        .nop()
        .prop("model", b"second\0")
        .cells("#address-cells", &[1])
        .cells("#size-cells", &[1]);
    for i in 0..40u32 {
        b.begin(&format!("n{i}@{i:x}"))
            .cells(&format!("x-unique-{i}"), &[i])
            .cells("reg", &[i * 0x1000, 0x100])
            .prop(
                "compatible",
                if i == 30 {
                    b"arm,gic-400\0"
                } else {
                    b"other\0"
                },
            )
            .end();
    }
    b.begin("memory@0")
        .prop("device_type", b"memory\0")
        .cells("reg", &[0, 0x1000_0000])
        .end();
    for d in 0..MAX_DEPTH + 2 {
        b.begin(&format!("deep{d}")).cells("reg", &[0x10, 0x10]);
    }
    for _ in 0..MAX_DEPTH + 2 {
        b.end();
    }
    b.end();
    let blob = b.blob();
    let t = Fdt::new(&blob).unwrap();
    for at in [0, 0x1000, 0x1e000, 0x10] {
        let s = survey(&t, &["arm,gic-400"], at);
        assert_eq!(
            s,
            crate::survey_by_nodes(&t, &["arm,gic-400"], at),
            "{at:#x}"
        );
    }
    let s = survey(&t, &["arm,gic-400"], 0x1e000);
    assert_eq!(s.model, Some("m"));
    assert_eq!(s.gic, Some([Some(0x1e000), None]));
    assert!(s.device_found);
    assert_eq!(s.memory(), &[(0, 0x1000_0000)][..]);
}

#[test]
fn survey_of_corrupt_trees_never_panics() {
    let blob = pi_with_gic();
    for i in HEADER_LEN..blob.len() {
        for v in [0u8, 1, 3, 4, 0xff] {
            let mut b = blob.clone();
            b[i] = v;
            if let Ok(t) = Fdt::new(&b) {
                let s = survey(&t, &["arm,gic-400"], 0xfe20_1000);
                assert!(s.memory_banks <= MAX_MEMORY_BANKS);
                // The one-pass walk answers as the node-by-node one, on
                // every corruption too.
                assert_eq!(
                    s,
                    crate::survey_by_nodes(&t, &["arm,gic-400"], 0xfe20_1000),
                    "byte {i} = {v:#x}"
                );
            }
        }
    }
}
