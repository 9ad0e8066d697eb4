//! The RTOS's search for its GICv2 (`septum_rtos::fdt`, over the shared
//! `septum-fdt` reader) in the tree its boot argument points at: arbitrary
//! blobs, with and without a valid header in front.
//!
//! Checks: no panic and no read outside the slice (the reader only takes
//! slices); `total_size` is `None` without the FDT magic and never below
//! the header; `find_gicv2` finds nothing in a blob whose header is not an
//! FDT header, and its answer does not depend on bytes beyond `totalsize`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use septum_rtos::fdt::{find_gicv2, total_size, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    check(data);
    // The same bytes behind a header that claims to be a tree, so that the
    // structure walk is reached as well as the header checks.
    let mut framed = Vec::with_capacity(data.len() + HEADER_LEN);
    let total = (data.len() + HEADER_LEN) as u32;
    framed.extend_from_slice(&0xd00d_feedu32.to_be_bytes());
    framed.extend_from_slice(&total.to_be_bytes());
    framed.extend_from_slice(&(HEADER_LEN as u32).to_be_bytes()); // off_dt_struct
    let strings = data
        .get(..4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        % total.max(1);
    framed.extend_from_slice(&strings.to_be_bytes()); // off_dt_strings
    framed.extend_from_slice(&[0; 4]); // off_mem_rsvmap
    framed.extend_from_slice(&17u32.to_be_bytes()); // version
    framed.extend_from_slice(&[0; 8]); // last_comp_version, boot_cpuid_phys
    framed.extend_from_slice(&(total - strings).to_be_bytes()); // size_dt_strings: to the end
    framed.extend_from_slice(&(data.len() as u32).to_be_bytes()); // size_dt_struct
    framed.extend_from_slice(data);
    check(&framed);
});

fn check(blob: &[u8]) {
    let total = total_size(blob);
    let magic = blob.get(..4) == Some(&0xd00d_feedu32.to_be_bytes()[..]);
    if !magic {
        assert_eq!(total, None);
        assert_eq!(find_gicv2(blob), None);
        return;
    }
    if let Some(t) = total {
        assert!(t >= HEADER_LEN);
    }
    let found = find_gicv2(blob);
    if let Some(t) = total {
        if t <= blob.len() {
            // Bytes past totalsize are not part of the tree.
            assert_eq!(find_gicv2(&blob[..t]), found);
        } else {
            // A blob shorter than its header claims is refused.
            assert_eq!(found, None);
        }
    }
}
