//! REQ-CFG-1, REQ-CFG-2: the configuration tool on arbitrary UTF-8 text.
//!
//! The file is placed (by name only) in the test-fixture directory of
//! septum-config, so that the fixtures' image names (`rtos.bin`, ...)
//! resolve and valid configurations reach code generation; others name
//! missing images and fail validation, which is fine.
//!
//! Checks:
//! - `load_str` never panics;
//! - on error: at least one diagnostic, every span inside the text, and
//!   rendering the diagnostics (line/column, snippet, carets) never panics
//!   and names the file and the rule of each error;
//! - on success: `generate_rust` and `output_files` (summary table, device
//!   trees of Linux partitions) never panic, the generated code is
//!   non-empty, every output lies in the output directory, and loading is
//!   deterministic (the same text yields the same code).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn config_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../hypervisor/config/tests/fixtures/fuzz.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = config_path();
    match septum_config::load_str(path, text) {
        Ok(cfg) => {
            // Nothing is written: output_files only builds the contents.
            let out = Path::new("/nonexistent/septum-fuzz-out");
            let code = septum_config::generate_rust(&cfg, out);
            assert!(!code.is_empty());
            let files = septum_config::output_files(&cfg, out);
            assert!(files.iter().all(|(p, _)| p.starts_with(out)));
            let again = septum_config::load_str(path, text).expect("second load failed");
            assert_eq!(
                septum_config::generate_rust(&again, out),
                code,
                "not deterministic"
            );
        }
        Err(diags) => {
            assert!(!diags.is_empty(), "an error without diagnostics");
            for d in diags.errors() {
                if let Some(s) = &d.span {
                    assert!(
                        s.start <= s.end && s.end <= text.len(),
                        "span {s:?} of {d:?}"
                    );
                }
                for n in &d.notes {
                    if let Some(s) = &n.span {
                        assert!(s.start <= s.end && s.end <= text.len(), "note span {s:?}");
                    }
                }
            }
            let rendered = diags.to_string();
            assert!(rendered.contains(diags.file()));
            for d in diags.errors() {
                assert!(rendered.contains(d.rule.id()), "{rendered}");
            }
        }
    }
});
