//! The `septum-config` command line: exit codes and outputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_septum-config"))
        .args(args)
        .output()
        .expect("runs")
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_ok_and_failing() {
    let out = run(&["check", &fixture("good.toml")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ok: 2 partitions\n");

    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../qemu/configs/bad/shared-core.toml");
    let out = run(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("error[CFG-18]: ") && err.contains("shared-core.toml:"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["frobnicate", "x.toml"],
        &["check"],
        &["generate", "x.toml"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains("usage: septum-config"),
            "{args:?}"
        );
    }
    assert_eq!(run(&["--help"]).status.code(), Some(0));
    let rules = text(&run(&["rules"]).stdout);
    assert!(
        rules.contains("CFG-35  DMA masters need identity mapping (no IOMMU)"),
        "{rules}"
    );
}

#[test]
fn generate_writes_config_and_summary() {
    let out_dir: PathBuf =
        std::env::temp_dir().join(format!("septum-config-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = run(&[
        "generate",
        &fixture("rpi4.toml"),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let code = std::fs::read_to_string(out_dir.join("config.rs")).unwrap();
    assert!(code.contains("pub static CONFIG: ::septum_core::config::SystemConfig"));
    assert!(code.contains("board: Board::RaspberryPi4,"));
    let summary = std::fs::read_to_string(out_dir.join("summary.txt")).unwrap();
    assert!(
        summary.contains("spin table, release at 0xe0, 0xe8, 0xf0"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn table_prints_partitions() {
    let out = run(&["table", &fixture("good.toml")]);
    assert_eq!(out.status.code(), Some(0));
    let t = text(&out.stdout);
    assert!(t.contains("linux  non-critical  1,2,3"), "{t}");
    assert!(t.contains("physical memory map"), "{t}");
}

/// `generate` writes a device tree per Linux partition and embeds it from
/// there; `table` shows where kernel, initrd and device tree land.
#[test]
fn generate_and_table_for_linux() {
    let out_dir: PathBuf =
        std::env::temp_dir().join(format!("septum-config-linux-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = run(&[
        "generate",
        &fixture("linux.toml"),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("and 1 device tree"),
        "{}",
        text(&out.stdout)
    );
    let dtb = std::fs::read(out_dir.join("linux.dtb")).unwrap();
    assert_eq!(&dtb[..4], &[0xd0, 0x0d, 0xfe, 0xed]);
    let code = std::fs::read_to_string(out_dir.join("config.rs")).unwrap();
    let embed = format!(
        "data: include_bytes!({:?}),",
        out_dir.join("linux.dtb").display().to_string()
    );
    assert!(code.contains(&embed), "{code}");
    assert!(code.contains("name: \"dtb\","), "{code}");
    assert!(code.contains("boot_arg: 0xbfe0_0000,"), "{code}");

    let t = text(&run(&["table", &fixture("linux.toml")]).stdout);
    for piece in [
        "image   kernel  4096 bytes   IPA [0x5000_0000, 0x5000_1000)",
        "image   initrd  34 bytes     IPA [0x5160_0000, 0x5160_0022)",
        "(generated; 2 MiB slot [0xbfe0_0000, 0xc000_0000))",
        "linux   kernel at 0x5000_0000 (text_offset 0x0, image_size 0x150_0000: claims [0x5000_0000, 0x5150_0000)); entry 0x5000_0000, x0 = device tree at 0xbfe0_0000",
        "stdout uart1 (/uart1@9040000)",
        "dt virtio,mmio; reg-size 0x200",
    ] {
        assert!(t.contains(piece), "missing {piece:?} in\n{t}");
    }
    let _ = std::fs::remove_dir_all(&out_dir);
}

/// REQ-MB-1, REQ-MB-2: keygen, sign and trust from the command line: keygen
/// prints the key id, the manifest verifies with the generated public key, trust.rs names it, the
/// private key is 0600 and is never overwritten.
#[test]
fn keygen_sign_trust() {
    use std::os::unix::fs::PermissionsExt;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("keygen_sign_trust");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = dir.join("product");
    let keygen = run(&["keygen", prefix.to_str().unwrap()]);
    assert_eq!(keygen.status.code(), Some(0), "{}", text(&keygen.stderr));
    let key = dir.join("product.key");
    let public = dir.join("product.pub");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = run(&["keygen", prefix.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("refusing to overwrite"));

    let manifest = dir.join("manifest.bin");
    let out = run(&[
        "sign",
        &fixture("good.toml"),
        "--key",
        key.to_str().unwrap(),
        "--out",
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let pk = septum_config::sign::read_public_key(&public).unwrap();
    // keygen printed the key id the procedures ask to record.
    let printed = format!("key id {} ", septum_config::sign::key_id(&pk));
    assert!(
        text(&keygen.stdout).contains(&printed),
        "{}",
        text(&keygen.stdout)
    );
    let bytes = std::fs::read(&manifest).unwrap();
    let m = septum_core::measure::manifest::Manifest::parse(&bytes).unwrap();
    m.verify(&pk).unwrap();
    let cfg = septum_config::load(Path::new(&fixture("good.toml"))).unwrap();
    assert_eq!(m.config_digest(), septum_config::sign::config_digest(&cfg));
    let digest = run(&["digest", &fixture("good.toml")]);
    let hex: String = m
        .config_digest()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(text(&digest.stdout).trim(), hex);

    let out = run(&[
        "trust",
        public.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let trust = std::fs::read_to_string(dir.join("trust.rs")).unwrap();
    assert!(
        trust.contains(&format!("0x{:02x}, 0x{:02x}", pk[0], pk[1])),
        "{trust}"
    );
    assert!(trust.contains("MANIFEST_KEY_IS_DEVELOPMENT: bool = false"));
    // A bad key file is refused with its name.
    std::fs::write(dir.join("bad.key"), "ed25519-private: 12\n").unwrap();
    let out = run(&[
        "sign",
        &fixture("good.toml"),
        "--key",
        dir.join("bad.key").to_str().unwrap(),
        "--out",
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("bad.key"),
        "{}",
        text(&out.stderr)
    );
}
