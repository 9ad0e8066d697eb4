//! Links the hypervisor for the address its configuration names.
//!
//! `scripts/build.sh` runs `septum-config generate` first, which validates the
//! partition TOML and writes `config.rs` into `SEPTUM_GEN_DIR`; this script
//! reads the load address from it and writes the linker script.

use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=SEPTUM_GEN_DIR");
    println!("cargo:rerun-if-changed=link.ld.in");
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os != "none" {
        return;
    }
    let gen_dir = env::var("SEPTUM_GEN_DIR").unwrap_or_else(|_| {
        panic!("SEPTUM_GEN_DIR is not set: build the hypervisor with scripts/build.sh (it generates the configuration)")
    });
    let config = PathBuf::from(&gen_dir).join("config.rs");
    println!("cargo:rerun-if-changed={}", config.display());
    // Measured boot: the signed manifest and the trusted public key, written
    // by `septum-config sign` and `septum-config trust` (scripts/build.sh).
    for f in ["manifest.bin", "trust.rs"] {
        let p = PathBuf::from(&gen_dir).join(f);
        if !p.exists() {
            panic!(
                "{} is missing: build the hypervisor with scripts/build.sh (it signs the boot manifest)",
                p.display()
            );
        }
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let src = fs::read_to_string(&config)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", config.display()));
    let load = const_value(&src, "LOAD_ADDR");
    let template = fs::read_to_string("link.ld.in").expect("link.ld.in");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let script = out.join("link.ld");
    fs::write(
        &script,
        template.replace("@LOAD_ADDR@", &format!("{load:#x}")),
    )
    .unwrap();
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
}

fn const_value(src: &str, name: &str) -> u64 {
    let key = format!("pub const {name}: u64 = ");
    let rest = src
        .lines()
        .find_map(|l| l.trim().strip_prefix(&key))
        .unwrap_or_else(|| panic!("{name} not found in the generated configuration"));
    let v = rest.trim_end_matches(';').replace('_', "");
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).unwrap(),
        None => v.parse().unwrap(),
    }
}
