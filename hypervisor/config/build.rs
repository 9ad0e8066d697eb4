//! Generates Rust source from the test fixtures, so that `cargo test` compiles
//! the generator's output against septum-core for real (tests/codegen.rs
//! `include!`s it and inspects the values).
//!
//! The generator itself is this crate's library, compiled here a second time
//! as a module of the build script (a build script cannot depend on its own
//! package). A fixture that fails validation becomes a `compile_error!` in the
//! generated file, which breaks only the test that includes it, never the
//! library or the hypervisor builds that use it.

use std::path::PathBuf;
use std::{env, fs};

#[allow(dead_code, unused_imports)]
#[path = "src/lib.rs"]
mod septum_config;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=tests/fixtures");
    for name in ["good", "rpi4", "linux"] {
        let toml = manifest.join("tests/fixtures").join(format!("{name}.toml"));
        // Each fixture gets its own directory, as `septum-config generate`
        // would; the generated code embeds its device trees from there.
        let dir = out.join(format!("fixture_{name}"));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let code = match septum_config::load(&toml) {
            Ok(cfg) => {
                for (file, data) in septum_config::output_files(&cfg, &dir) {
                    fs::write(&file, data)
                        .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
                }
                septum_config::generate_rust(&cfg, &dir)
            }
            Err(d) => format!("compile_error!({:?});\n", d.to_string()),
        };
        let dest = out.join(format!("fixture_{name}.rs"));
        fs::write(&dest, code).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
    }
}
