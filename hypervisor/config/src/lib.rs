//! `septum-config`: turns a partition TOML file into the static
//! configuration compiled into the Septum hypervisor.
//!
//! ```text
//! TOML text --parse--> schema --validate--> ValidatedConfig --codegen--> Rust source
//! ```
//!
//! [`load`] parses and checks a file against every rule in [`Rule`]; its
//! [`Diagnostics`] name file, line, column and rule of each problem.
//! [`generate_rust`] emits the `SystemConfig` static the hypervisor
//! `include!`s; [`output_files`] adds the summary and, for each partition
//! that boots Linux, the device tree [`fdt::linux_dtb`] generates. The TOML format and the rules are documented in
//! `docs/configuration.md`.
//!
//! Module paths are written relative (`super::`) because `build.rs` compiles
//! these same sources as a module of the build script.
#![forbid(unsafe_code)]

pub mod codegen;
pub mod diag;
pub mod fdt;
pub mod linux;
pub mod model;
mod parse;
pub mod request;
pub mod rules;
mod schema;
pub mod sign;
pub mod table;
pub mod tamper;
mod util;
mod validate;

use std::fs;
use std::path::{Path, PathBuf};

pub use codegen::{dtb_path, generate_rust, output_files};
pub use diag::{Diagnostic, Diagnostics};
pub use model::ValidatedConfig;
pub use rules::Rule;
pub use table::partition_table;

/// Reads, parses and validates the configuration at `path`. Image paths in
/// the file are relative to the file's directory.
pub fn load(path: &Path) -> Result<ValidatedConfig, Diagnostics> {
    match fs::read_to_string(path) {
        Ok(text) => load_str(path, &text),
        Err(e) => Err(Diagnostics::new(
            path,
            "",
            vec![Diagnostic::new(
                Rule::Parse,
                None,
                format!("cannot read the configuration: {e}"),
            )],
        )),
    }
}

/// Like [`load`], for text already in memory; `path` names the file in
/// messages and locates image files.
pub fn load_str(path: &Path, text: &str) -> Result<ValidatedConfig, Diagnostics> {
    let file = parse::parse(text).map_err(|d| Diagnostics::new(path, text, vec![d]))?;
    validate::validate(&file, path, &base_dir(path))
        .map_err(|list| Diagnostics::new(path, text, list))
}

/// The absolute directory of `path`, which image paths are relative to.
fn base_dir(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::canonicalize(&dir).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|cwd| util::normalize(&cwd.join(&dir)))
            .unwrap_or(dir)
    })
}
