//! Passes the linker script for the bare-metal target only, so the library
//! still builds and tests on the host; and compiles in the public keys
//! therapy requests must be signed with (docs/channels.md, "Requests").
//!
//! The keys come from `SEPTUM_REQUEST_KEYS` (`:`-separated `.pub` files),
//! or else the repository's development key. They are part of the RTOS
//! image, which the hypervisor measures against the signed boot manifest:
//! a Linux partition can neither see nor change which keys are trusted.
use std::env;
use std::fmt::Write;
use std::path::PathBuf;

fn main() {
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SEPTUM_REQUEST_KEYS");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
    }
    let dev = PathBuf::from(&dir).join("../../configs/keys/requests-dev.pub");
    let paths: Vec<PathBuf> = match env::var("SEPTUM_REQUEST_KEYS") {
        Ok(list) if !list.is_empty() => list.split(':').map(PathBuf::from).collect(),
        _ => vec![dev.clone()],
    };
    // The RTOS keeps replay floors for four keys (septum_rtos::requests::MAX_KEYS).
    assert!(
        (1..=4).contains(&paths.len()),
        "SEPTUM_REQUEST_KEYS names {} keys; the RTOS holds 1 to 4",
        paths.len()
    );
    let dev_key = public_key(&dev);
    let mut out = String::from("/// The public keys therapy requests are verified with (build.rs).\npub const REQUEST_KEYS: &[[u8; 32]] = &[\n");
    let mut any_dev = false;
    for p in &paths {
        let hex = public_key(p);
        any_dev |= hex == dev_key;
        let _ = write!(out, "    [");
        for i in 0..32 {
            let _ = write!(out, "0x{}, ", &hex[2 * i..2 * i + 2]);
        }
        let _ = writeln!(out, "],");
    }
    let _ = writeln!(out, "];\n/// Whether one of them is the published development key (by its bytes).\npub const REQUEST_KEYS_ARE_DEV: bool = {any_dev};");
    let dst =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("request_keys.rs");
    std::fs::write(&dst, out).expect("write request_keys.rs");
}

/// The 64 hex digits of a `.pub` file's `ed25519-public:` line.
fn public_key(p: &std::path::Path) -> String {
    println!("cargo:rerun-if-changed={}", p.display());
    let text =
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("request key {}: {e}", p.display()));
    let hex = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find_map(|l| l.strip_prefix("ed25519-public:"))
        .map(|h| h.trim().to_ascii_lowercase())
        .unwrap_or_else(|| panic!("{}: no `ed25519-public: <hex>` line", p.display()));
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{}: the key is not 64 hex digits",
        p.display()
    );
    hex
}
