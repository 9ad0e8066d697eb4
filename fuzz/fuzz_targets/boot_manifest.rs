//! REQ-MB-2, REQ-FLT-2: the boot manifest and measurement-log parsers, and
//! the hypercall buffer check, on arbitrary bytes.
//!
//! Checks:
//! - `Manifest::parse` never panics; when it accepts, every entry decodes,
//!   `bytes()` is exactly `total_len` long, `signed_bytes()` is it minus
//!   the 64-byte signature, and re-encoding the entries with
//!   `encode_unsigned` reproduces `signed_bytes()` (no field is ignored);
//! - verifying with a fixed key never panics and never accepts bytes that
//!   the key did not sign (the fuzzer cannot forge ed25519; a pass would be
//!   a parser bug letting unsigned bytes through);
//! - `LogView::parse` never panics, and an accepted log re-encodes to the
//!   same bytes through `MeasurementLog` (same entries, same running
//!   digest);
//! - `hypercall::guest_buffer` returns an address only for a buffer inside
//!   one writable region, translated by that region's offset.
#![no_main]

use libfuzzer_sys::fuzz_target;
use septum_core::addr::{GuestPhysAddr, PhysAddr};
use septum_core::config::{MemRegion, Perms};
use septum_core::hypercall::guest_buffer;
use septum_core::measure::manifest::{encode_unsigned, Entry, Manifest, MAX_LEN, SIG_LEN};
use septum_core::measure::mlog::{LogView, MeasurementLog};
use septum_core::measure::sha256::soft_compress;

/// An arbitrary valid ed25519 public key (the base point's encoding).
const KEY: [u8; 32] = [
    0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
    0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
];

const REGIONS: [MemRegion; 2] = [
    MemRegion {
        name: "ram",
        ipa: GuestPhysAddr(0x4000_0000),
        pa: PhysAddr(0x4800_0000),
        size: 0x10_0000,
        perms: Perms::RWX,
        shared: false,
    },
    MemRegion {
        name: "ro",
        ipa: GuestPhysAddr(0x5000_0000),
        pa: PhysAddr(0x6000_0000),
        size: 0x1000,
        perms: Perms::R,
        shared: false,
    },
];

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        let entries: Vec<Entry<'_>> = (0..m.len()).map(|i| m.entry(i).expect("entry")).collect();
        assert_eq!(m.bytes().len(), m.signed_bytes().len() + SIG_LEN);
        let mut buf = vec![0u8; MAX_LEN];
        let n =
            encode_unsigned(m.svn(), &m.config_digest(), &entries, &mut buf).expect("re-encode");
        assert_eq!(&buf[..n], m.signed_bytes(), "re-encoding differs");
        assert!(m.verify(&KEY).is_err(), "unsigned bytes verified");
    }
    if let Ok(v) = LogView::parse(data, soft_compress) {
        let mut log = MeasurementLog::<64>::new(soft_compress);
        for e in v.entries() {
            log.record(e.partition(), e.item(), e.size, e.verdict, e.digest)
                .expect("capacity");
        }
        if log.entries().len() == v.len() {
            let mut out = vec![0u8; 48 + 80 * v.len()];
            let n = log.encode_into(&mut out).unwrap();
            // Names with bytes `record` would not store differently re-encode
            // exactly; the running digest must match either way when they do.
            if out[..n] == data[..n] {
                assert_eq!(log.running(), v.running());
            }
        }
    }
    if data.len() >= 16 {
        let ipa = u64::from_le_bytes(data[..8].try_into().unwrap());
        let len = u64::from_le_bytes(data[8..16].try_into().unwrap());
        if let Some(pa) = guest_buffer(&REGIONS, ipa, len) {
            let r = REGIONS
                .iter()
                .find(|r| r.perms.write && r.guest_range().contains_span(GuestPhysAddr(ipa), len))
                .expect("accepted buffer lies in a writable region");
            assert!(len > 0);
            assert_eq!(pa.raw(), r.pa.raw() + (ipa - r.ipa.raw()));
        }
    }
});
