//! Measured and verified boot (docs/measured-boot.md) on QEMU `virt` with
//! configs/qemu-virt.toml: the log matches what the host computes, both
//! partitions can read it, and every kind of tampering gives its defined
//! outcome with no unverified code running. Requirement IDs:
//! docs/requirements.md.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use septum_config::tamper::Tamper;
use septum_core::measure::mlog::{LogView, Verdict};
use septum_core::measure::sha256::{soft_compress, Sha256};
use septum_qemu_tests::{build, build_variant, heartbeats, repo_root, Options, Qemu};

const CONFIG: &str = "configs/qemu-virt.toml";
const SAFE: &str = "*** ALARM: SAFE STATE ENTERED ***";

fn gen_dir() -> PathBuf {
    repo_root().join("target/septum/qemu-virt/gen")
}

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(soft_compress, data)
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The host-side files of every measured item: (partition/item, file).
fn items() -> Vec<(&'static str, PathBuf)> {
    let t = repo_root().join("target/septum");
    vec![
        ("septum/manifest", gen_dir().join("manifest.bin")),
        ("rtos/rtos", t.join("guests/septum-rtos.bin")),
        ("linux/kernel", t.join("linux/Image")),
        ("linux/initrd", t.join("linux/initramfs.cpio.gz")),
        ("linux/dtb", gen_dir().join("linux.dtb")),
    ]
}

/// A copy of the default image broken as `t` says, the way an assessor
/// makes one (`septum-config tamper`, docs/measured-boot.md).
fn tampered(name: &str, t: Tamper) -> PathBuf {
    let mut img = fs::read(build(CONFIG)).expect("image");
    let cfg = septum_config::load(&repo_root().join(CONFIG)).unwrap();
    septum_config::tamper::apply(&mut img, &cfg, &t).unwrap_or_else(|e| panic!("{name}: {e}"));
    let dir = repo_root().join("target/septum/tampered");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.img"));
    fs::write(&path, img).unwrap();
    path
}

fn flip(partition: &str, item: &str) -> Tamper {
    Tamper::FlipImage {
        partition: partition.into(),
        item: item.into(),
    }
}

fn dev_key() -> SigningKey {
    septum_config::sign::read_private_key(&repo_root().join("configs/keys/septum-dev.key")).unwrap()
}

/// Boots `img`, expects the boot-time safe state with `cause`, and checks
/// that no guest ever printed anything.
fn expect_safe_state(img: &Path, cause: &str) {
    let mut q = Qemu::boot(img, &Options::default());
    q.wait_for(SAFE, Duration::from_secs(120));
    // Give any (wrongly) started guest time to show itself.
    std::thread::sleep(Duration::from_secs(3));
    let out = q.output();
    assert!(out.contains(cause), "cause '{cause}' missing:\n{out}");
    assert!(!out.contains("[rtos]"), "the RTOS ran:\n{out}");
    assert!(
        !out.contains("entering partition"),
        "a guest was entered:\n{out}"
    );
    assert!(
        q.linux_output().is_empty(),
        "Linux ran:\n{}",
        q.linux_output()
    );
}

/// Boots `img`, expects Linux to be refused for `item`, and the RTOS to
/// run on without a miss.
fn expect_linux_refused(img: &Path, item: &str, verdict: Verdict) {
    let mut q = Qemu::boot(img, &Options::default());
    let needle = format!(
        "partition 'linux' failed verification (image '{item}': {}); it is not started",
        verdict.as_str()
    );
    q.wait_for(&needle, Duration::from_secs(120));
    let out = q.wait_for_count("[rtos] rtos: heartbeat ", 5, Duration::from_secs(120));
    assert!(
        heartbeats(&out).iter().all(|h| h.misses == 0),
        "the RTOS missed deadlines:\n{out}"
    );
    assert!(!out.contains("entering partition 'linux'"), "{out}");
    assert!(!out.contains(SAFE), "{out}");
    assert!(
        q.linux_output().is_empty(),
        "Linux ran:\n{}",
        q.linux_output()
    );
}

/// The `measured P/I: N bytes, sha256 H: V` lines of the boot log (the
/// configuration's line says what its digest is of instead of a size: 0).
fn measured(out: &str) -> Vec<(String, u64, String, String)> {
    out.lines()
        .filter_map(|l| l.split_once("measured ").map(|(_, r)| r))
        .filter_map(|r| {
            let (name, r) = r.split_once(": ")?;
            let (what, r) = r.split_once(", sha256 ")?;
            let size = match what.strip_suffix(" bytes") {
                Some(n) => n.parse().ok()?,
                None if what == "digest of the compiled-in configuration" => 0,
                None => return None,
            };
            let (digest, verdict) = r.split_once(": ")?;
            Some((
                name.to_owned(),
                size,
                digest.to_owned(),
                verdict.trim().to_owned(),
            ))
        })
        .collect()
}

/// REQ-MB-1, REQ-MB-4, REQ-MB-5: every image is measured before it runs,
/// the log's digests equal what the host computes with SHA-256 (as
/// `sha256sum` does), and both partitions read the same log back: the RTOS
/// through the MLOG_READ hypercall, Linux from its device tree.
#[test]
fn measurement_log_matches_the_host_and_both_partitions_read_it() {
    let image = build(CONFIG);
    let mut q = Qemu::boot(&image, &Options::default());
    q.wait_linux("septum-linux: ready", Duration::from_secs(300));
    let out = q.output();
    let m = measured(&out);
    for (name, file) in items() {
        let data = fs::read(&file).unwrap();
        let e = m
            .iter()
            .find(|e| e.0 == name)
            .unwrap_or_else(|| panic!("{name} not measured:\n{out}"));
        assert_eq!(e.1, data.len() as u64, "{name} size");
        assert_eq!(e.2, hex(&sha(&data)), "{name} digest vs {}", file.display());
        assert_eq!(e.3, "ok", "{name}");
    }
    let cfg = septum_config::load(&repo_root().join(CONFIG)).unwrap();
    let config_digest = hex(&septum_config::sign::config_digest(&cfg));
    assert!(
        m.iter()
            .any(|e| e.0 == "septum/config" && e.2 == config_digest),
        "config digest {config_digest} not in:\n{out}"
    );
    // The running digests the hypervisor printed, in order.
    let running: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once("running digest ").map(|(_, d)| d.trim()))
        .collect();
    let rtos = out
        .lines()
        .find(|l| l.contains("rtos: measured boot: log of"))
        .expect("the RTOS read the log");
    assert!(
        running.iter().any(|d| rtos.ends_with(d)),
        "RTOS saw {rtos}, hypervisor printed {running:?}"
    );
    // Linux: the log in its device tree, replayed and compared.
    let dump = q.linux_run("od -An -v -tx1 /proc/device-tree/chosen/septum,measurement-log");
    let bytes: Vec<u8> = dump
        .split_whitespace()
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect();
    assert_eq!(bytes.len(), 4096, "{dump}");
    let log = LogView::parse(&bytes, soft_compress).expect("a valid log in Linux's device tree");
    assert_eq!(
        Some(&hex(&log.running()).as_str()),
        running.last(),
        "final running digest"
    );
    for (name, file) in items() {
        let (p, i) = name.split_once('/').unwrap();
        let e = log
            .entries()
            .find(|e| e.partition() == p && e.item() == i)
            .unwrap_or_else(|| panic!("{name} missing from Linux's log"));
        let data = fs::read(&file).unwrap();
        assert_eq!(e.digest, sha(&data), "{name} in Linux's log");
        assert_eq!(e.verdict, Verdict::Ok);
    }
}

/// REQ-MB-2, REQ-MB-3: one flipped bit in the critical partition's image:
/// the safe state, and no guest code runs.
#[test]
fn rtos_image_with_one_flipped_bit_enters_the_safe_state() {
    let img = tampered("rtos-bitflip", flip("rtos", "rtos"));
    expect_safe_state(
        &img,
        "critical partition 'rtos' failed verification: image 'rtos': DIGEST MISMATCH",
    );
}

/// REQ-MB-2, REQ-MB-3: the critical partition's image shorter than the
/// manifest says.
#[test]
fn truncated_rtos_image_enters_the_safe_state() {
    let img = build_variant(CONFIG, "rtos-truncated", |gen| {
        let src = repo_root().join("target/septum/guests/septum-rtos.bin");
        let data = fs::read(&src).unwrap();
        let short = gen.join("rtos-truncated.bin");
        fs::write(&short, &data[..data.len() - 4096]).unwrap();
        let cfg = gen.join("config.rs");
        let text = fs::read_to_string(&cfg).unwrap();
        let text = text.replace(&src.display().to_string(), &short.display().to_string());
        fs::write(cfg, text).unwrap();
    });
    expect_safe_state(
        &img,
        "critical partition 'rtos' failed verification: image 'rtos': SIZE MISMATCH",
    );
}

/// REQ-MB-2, REQ-MB-3: one flipped bit in the Linux initramfs: Linux is
/// not started, the RTOS runs normally.
#[test]
fn linux_initrd_with_one_flipped_bit_is_not_started() {
    let img = tampered("linux-bitflip", flip("linux", "initrd"));
    expect_linux_refused(&img, "initrd", Verdict::DigestMismatch);
}

/// REQ-MB-2, REQ-MB-3: a truncated Linux device tree: not started.
#[test]
fn truncated_linux_image_is_not_started() {
    let img = build_variant(CONFIG, "linux-truncated", |gen| {
        let dtb = gen.join("linux.dtb");
        let data = fs::read(&dtb).unwrap();
        fs::write(&dtb, &data[..data.len() - 64]).unwrap();
    });
    expect_linux_refused(&img, "dtb", Verdict::SizeMismatch);
}

/// REQ-MB-2: a manifest signed with another key.
#[test]
fn manifest_signed_with_another_key_enters_the_safe_state() {
    let other = SigningKey::from_bytes(&[0x42; 32]);
    let img = tampered(
        "other-key",
        Tamper::Resign {
            key: other,
            svn: None,
        },
    );
    expect_safe_state(
        &img,
        "the boot manifest failed verification (BAD SIGNATURE)",
    );
}

/// REQ-MB-2: a corrupted signature.
#[test]
fn corrupted_signature_enters_the_safe_state() {
    let img = tampered("bad-signature", Tamper::FlipSignature);
    expect_safe_state(
        &img,
        "the boot manifest failed verification (BAD SIGNATURE)",
    );
}

/// REQ-MB-2: a correctly signed manifest, but for another configuration.
#[test]
fn manifest_for_another_configuration_enters_the_safe_state() {
    let other = "qemu/configs/virt-intruder-stop.toml";
    build(other);
    let cfg = septum_config::load(&repo_root().join(other)).unwrap();
    let m = septum_config::sign::build_manifest(&cfg, &dev_key()).unwrap();
    let img = tampered("other-config", Tamper::Manifest(m));
    expect_safe_state(
        &img,
        "the boot manifest failed verification (CONFIGURATION MISMATCH)",
    );
}

/// REQ-MB-6: a correctly signed manifest with a security version below the
/// configured minimum (a rollback to an older release).
#[test]
fn rolled_back_security_version_enters_the_safe_state() {
    let cfg = septum_config::load(&repo_root().join(CONFIG)).unwrap();
    assert!(
        cfg.boot.min_security_version >= 1,
        "the test needs a minimum above 0"
    );
    let img = tampered(
        "rollback",
        Tamper::Resign {
            key: dev_key(),
            svn: Some(cfg.boot.min_security_version - 1),
        },
    );
    expect_safe_state(&img, "the boot manifest failed verification (ROLLED BACK)");
}
