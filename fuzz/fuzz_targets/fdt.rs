//! REQ-BOOT-1: the hypervisor's device-tree reader (`septum_core::fdt`),
//! which parses the firmware's tree at boot: arbitrary blobs, raw and behind
//! a header that makes the structure walk reachable.
//!
//! Checks: no panic; `Fdt::new` fails without the magic; every node is
//! shallower than `MAX_DEPTH` and the first is the root at depth 0 (depths
//! never jump by more than one); property names and values lie inside the
//! blob; `find("/")` is the first node; `survey` records at most
//! `MAX_MEMORY_BANKS` banks; bytes past `totalsize` never change anything.
#![no_main]

use libfuzzer_sys::fuzz_target;
use septum_core::fdt::{survey, Fdt, HEADER_LEN, MAX_DEPTH, MAX_MEMORY_BANKS};

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut framed = Vec::with_capacity(data.len() + HEADER_LEN);
    let total = (data.len() + HEADER_LEN) as u32;
    let sel = |i: usize| data.get(i).copied().unwrap_or(0) as u32;
    for v in [
        0xd00d_feed,
        total,
        HEADER_LEN as u32,                        // off_dt_struct
        (HEADER_LEN as u32 + sel(0) * 4) % total, // off_dt_strings
        0,
        16 + sel(1) % 2, // version 16 or 17
        16,
        0,
        sel(2) * 4,        // size_dt_strings
        data.len() as u32, // size_dt_struct
    ] {
        framed.extend_from_slice(&v.to_be_bytes());
    }
    framed.extend_from_slice(data);
    check(&framed);
});

fn check(blob: &[u8]) {
    let Ok(tree) = Fdt::new(blob) else {
        return;
    };
    assert_eq!(blob.get(..4), Some(&0xd00d_feedu32.to_be_bytes()[..]));
    let range = blob.as_ptr_range();
    let mut prev: Option<usize> = None;
    for (i, node) in tree.nodes().enumerate() {
        assert!(node.depth < MAX_DEPTH);
        if i == 0 {
            assert_eq!(node.depth, 0);
        }
        if let Some(p) = prev {
            assert!(
                node.depth <= p + 1,
                "depth jumps from {p} to {}",
                node.depth
            );
        }
        prev = Some(node.depth);
        for (name, value) in node.props() {
            assert!(range.contains(&name.as_ptr()) || name.is_empty());
            assert!(value.is_empty() || range.contains(&value.as_ptr()));
        }
        let _ = node.child_cells();
        let _ = node.compatible_with(&["arm,gic-400"]);
    }
    if let (Some(root), Some(first)) = (tree.find("/"), tree.nodes().next()) {
        assert_eq!(root.name, first.name);
    }
    let _ = tree.find("/soc/serial");
    let s = survey(&tree, &["arm,gic-400", "arm,gic-v3"], 0xfe20_1000);
    assert!(s.memory_banks <= MAX_MEMORY_BANKS);
    let t = tree.total_size();
    if t < blob.len() {
        let cut = Fdt::new(&blob[..t]).expect("the same tree without its tail");
        assert_eq!(cut.nodes().count(), tree.nodes().count());
        assert_eq!(survey(&cut, &["arm,gic-400", "arm,gic-v3"], 0xfe20_1000), s);
    }
}
