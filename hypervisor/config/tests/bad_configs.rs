//! The broken example configurations under qemu/configs/bad/ each fail with
//! the rule and message their first line promises (`# expect: CFG-xx text`),
//! and with nothing else; configs/qemu-virt.toml is valid apart from, at
//! most, its not-yet-built guest images.

use std::fs;
use std::path::{Path, PathBuf};

use septum_config::Rule;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn bad_configs_fail_as_promised() {
    let dir = repo().join("qemu/configs/bad");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("qemu/configs/bad exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "expected at least 5 bad configs in {}",
        dir.display()
    );
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let expect = first.strip_prefix("# expect: ").unwrap_or_else(|| {
            panic!(
                "{}: first line must be `# expect: CFG-xx text`",
                f.display()
            )
        });
        let (id, msg) = expect.split_once(' ').unwrap_or((expect, ""));
        let rule = Rule::ALL
            .iter()
            .copied()
            .find(|r| r.id() == id)
            .unwrap_or_else(|| panic!("{}: unknown rule {id}", f.display()));
        let d = match septum_config::load(&f) {
            Ok(_) => panic!("{} passed validation, expected {id}", f.display()),
            Err(d) => d,
        };
        assert!(
            d.errors().iter().all(|e| e.rule == rule),
            "{}: expected only {id}, got:\n{d}",
            f.display()
        );
        let rendered = d.to_string();
        assert!(
            rendered.contains(&format!("error[{id}]: ")),
            "{}:\n{rendered}",
            f.display()
        );
        assert!(
            rendered.contains(msg),
            "{}: no {msg:?} in:\n{rendered}",
            f.display()
        );
    }
}

/// The default configuration is valid, except that the guest images may not
/// be built yet (the RTOS by scripts/build.sh, the Linux kernel and initrd
/// by the Linux build script into target/septum/linux/).
#[test]
fn qemu_virt_config_is_valid_but_for_unbuilt_images() {
    match septum_config::load(&repo().join("configs/qemu-virt.toml")) {
        Ok(cfg) => {
            assert_eq!(cfg.partitions[0].name, "rtos");
            let linux = &cfg.partitions[1];
            assert_eq!(linux.name, "linux");
            assert!(linux.linux.is_some());
            assert_eq!(linux.memory[0].ipa.0, 0x5000_0000);
        }
        Err(d) => {
            assert!(d.errors().iter().all(|e| e.rule == Rule::ImageFile), "{d}");
            for e in d.errors() {
                assert!(
                    ["septum-rtos.bin", "linux/Image", "linux/initramfs.cpio.gz"]
                        .iter()
                        .any(|f| e.message.contains(f)),
                    "{d}"
                );
            }
        }
    }
}
