//! Measured boot, host side: key files, the configuration digest and the
//! signed boot manifest (format: `septum_core::measure::manifest`;
//! procedures: docs/measured-boot.md).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use septum_core::config as core;
use septum_core::measure::manifest::{self, Entry, MAX_LEN, SIG_LEN};
use septum_core::measure::sha256::{soft_compress, Sha256};

use super::model::ValidatedConfig;

const PRIVATE_TAG: &str = "ed25519-private:";
const PUBLIC_TAG: &str = "ed25519-public:";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The value after `tag` on the file's one non-comment line.
fn key_line(path: &Path, tag: &str) -> Result<[u8; 32], String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match (line.strip_prefix(tag), found) {
            (Some(v), None) => found = Some(v.to_owned()),
            _ => {
                return Err(format!(
                    "{}: expected exactly one line `{tag} <64 hex digits>` (and # comments)",
                    path.display()
                ))
            }
        }
    }
    found
        .and_then(|v| unhex32(&v))
        .ok_or_else(|| format!("{}: no valid `{tag} <64 hex digits>` line", path.display()))
}

/// Reads a private key file (the 32-byte ed25519 seed).
pub fn read_private_key(path: &Path) -> Result<SigningKey, String> {
    key_line(path, PRIVATE_TAG).map(|seed| SigningKey::from_bytes(&seed))
}

/// Reads a public key file.
pub fn read_public_key(path: &Path) -> Result<[u8; 32], String> {
    let k = key_line(path, PUBLIC_TAG)?;
    ed25519_dalek::VerifyingKey::from_bytes(&k)
        .map_err(|_| format!("{}: not a valid ed25519 public key", path.display()))?;
    Ok(k)
}

pub fn public_key_text(key: &[u8; 32], comment: &str) -> String {
    format!("# {comment}\n{PUBLIC_TAG} {}\n", hex(key))
}

/// A short, printable key identifier: the first 8 bytes of SHA-256(key).
pub fn key_id(key: &[u8; 32]) -> String {
    hex(&Sha256::digest(soft_compress, key)[..8])
}

/// Creates `<prefix>.key` (mode 0600) and `<prefix>.pub` from 32 bytes of
/// the operating system's randomness. Refuses to overwrite either.
pub fn keygen(prefix: &Path, comment: &str) -> Result<(PathBuf, PathBuf), String> {
    let private = prefix.with_extension("key");
    let public = prefix.with_extension("pub");
    for p in [&private, &public] {
        if p.exists() {
            return Err(format!(
                "{} exists; refusing to overwrite a key",
                p.display()
            ));
        }
    }
    let mut seed = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let sk = SigningKey::from_bytes(&seed);
    let text = format!(
        "# Septum ed25519 private key ({comment}). Secret: see docs/measured-boot.md.\n{PRIVATE_TAG} {}\n",
        hex(&seed)
    );
    write_private(&private, &text)?;
    fs::write(
        &public,
        public_key_text(&sk.verifying_key().to_bytes(), comment),
    )
    .map_err(|e| format!("cannot write {}: {e}", public.display()))?;
    Ok((private, public))
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn leak<T>(v: Vec<T>) -> &'static [T] {
    Vec::leak(v)
}
fn leak_str(s: &str) -> &'static str {
    String::leak(s.to_owned())
}

/// The `SystemConfig` the generated code describes, built in memory (with
/// empty image data: the digest does not cover image bytes). Leaks; meant
/// for a short-lived host tool.
pub fn core_config(cfg: &ValidatedConfig) -> core::SystemConfig {
    let p = &cfg.platform;
    let partitions = cfg
        .partitions
        .iter()
        .map(|part| {
            let mut images: Vec<core::Image> = part
                .images
                .iter()
                .map(|i| core::Image {
                    name: leak_str(&i.name),
                    data: &[],
                    load: i.load,
                })
                .collect();
            if let Some(l) = &part.linux {
                images.push(core::Image {
                    name: "dtb",
                    data: &[],
                    load: l.dtb,
                });
            }
            core::Partition {
                id: part.id,
                name: leak_str(&part.name),
                criticality: part.criticality,
                vmid: part.vmid,
                cores: leak(part.cores.clone()),
                memory: leak(
                    part.memory
                        .iter()
                        .map(|m| core::MemRegion {
                            name: leak_str(&m.name),
                            ipa: m.ipa,
                            pa: m.pa,
                            size: m.size,
                            perms: m.perms,
                            shared: !m.shared_with.is_empty(),
                        })
                        .collect(),
                ),
                devices: leak(
                    part.devices
                        .iter()
                        .map(|d| core::Device {
                            name: leak_str(&d.name),
                            kind: d.kind,
                            irqs: leak(d.irqs.clone()),
                            quiesce: d.quiesce(),
                        })
                        .collect(),
                ),
                images: leak(images),
                entry: part.entry,
                boot_arg: part.boot_arg,
                fault_policy: part.fault_policy,
                watchdog: part.watchdog,
                interrupts: part.interrupts,
                channels: leak(
                    part.channels
                        .iter()
                        .map(|c| core::ChannelEnd {
                            name: leak_str(&c.name),
                            ipa: c.ipa,
                            pa: c.pa,
                            size: c.size,
                            role: c.role,
                            peer: c.peer,
                            doorbell: c.doorbell,
                        })
                        .collect(),
                ),
            }
        })
        .collect();
    core::SystemConfig {
        name: leak_str(&cfg.name),
        source: leak_str(&cfg.source.display().to_string()),
        platform: core::Platform {
            board: p.board,
            cpus: p.cpus,
            ram: leak(p.ram.clone()),
            mmio: leak(p.mmio.clone()),
            hypervisor: p.hypervisor,
            load_addr: p.load_addr,
            console: p.console,
            gic: p.gic,
            cpu_boot: p.cpu_boot,
            safe_state: p.safe_state,
        },
        boot: core::BootPolicy {
            min_security_version: cfg.boot.min_security_version,
        },
        partitions: leak(partitions),
    }
}

/// SHA-256 of the canonical configuration (what the hypervisor computes).
pub fn config_digest(cfg: &ValidatedConfig) -> [u8; 32] {
    septum_core::measure::config_digest(&core_config(cfg), soft_compress)
}

/// One image as the hypervisor will load it.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    pub partition: String,
    pub item: String,
    pub load: u64,
    pub data: Vec<u8>,
}

/// Every image of every partition, in configuration order, with its bytes
/// (Linux partitions: kernel, initrd, then the generated device tree).
pub fn images(cfg: &ValidatedConfig) -> Result<Vec<LoadedImage>, String> {
    let mut out = Vec::new();
    for p in &cfg.partitions {
        for i in &p.images {
            let data =
                fs::read(&i.path).map_err(|e| format!("cannot read {}: {e}", i.path.display()))?;
            out.push(LoadedImage {
                partition: p.name.clone(),
                item: i.name.clone(),
                load: i.load.0,
                data,
            });
        }
        if let Some(l) = &p.linux {
            out.push(LoadedImage {
                partition: p.name.clone(),
                item: "dtb".to_owned(),
                load: l.dtb.0,
                data: l.dtb_blob.clone(),
            });
        }
    }
    Ok(out)
}

/// The unsigned manifest body for `images` under configuration digest
/// `config` and security version `svn`.
pub fn manifest_body(
    svn: u32,
    config: &[u8; 32],
    images: &[LoadedImage],
) -> Result<Vec<u8>, String> {
    let entries: Vec<Entry<'_>> = images
        .iter()
        .map(|i| Entry {
            partition: &i.partition,
            item: &i.item,
            load: i.load,
            size: i.data.len() as u64,
            digest: Sha256::digest(soft_compress, &i.data),
        })
        .collect();
    let mut buf = vec![0u8; MAX_LEN];
    let n = manifest::encode_unsigned(svn, config, &entries, &mut buf)
        .ok_or("too many images or a name too long for the manifest (CFG-55)")?;
    buf.truncate(n);
    Ok(buf)
}

/// Appends the ed25519 signature over `body`.
pub fn sign(mut body: Vec<u8>, key: &SigningKey) -> Vec<u8> {
    let sig = key.sign(&body).to_bytes();
    debug_assert_eq!(sig.len(), SIG_LEN);
    body.extend_from_slice(&sig);
    body
}

/// The signed manifest of a validated configuration, at its
/// `boot.security-version`.
pub fn build_manifest(cfg: &ValidatedConfig, key: &SigningKey) -> Result<Vec<u8>, String> {
    let imgs = images(cfg)?;
    let body = manifest_body(cfg.boot.security_version, &config_digest(cfg), &imgs)?;
    Ok(sign(body, key))
}

/// Rust source with the public key the hypervisor trusts.
pub fn trust_rs(key: &[u8; 32], development: bool) -> String {
    let bytes: Vec<String> = key.iter().map(|b| format!("0x{b:02x}")).collect();
    format!(
        "// @generated by septum-config trust. Do not edit.\n\
         /// The ed25519 public key boot manifests must be signed with.\n\
         pub const MANIFEST_PUBLIC_KEY: [u8; 32] = [{}];\n\
         /// Printable identifier of that key (first 8 bytes of its SHA-256).\n\
         pub const MANIFEST_KEY_ID: &str = \"{}\";\n\
         /// True for Septum's published development key: the boot log then\n\
         /// warns that this build is not fit for a product.\n\
         pub const MANIFEST_KEY_IS_DEVELOPMENT: bool = {development};\n",
        bytes.join(", "),
        key_id(key)
    )
}

/// The development key pair's public half, as committed in the repository.
pub const DEVELOPMENT_PUBLIC_KEY_FILE: &str = include_str!("../../../configs/keys/septum-dev.pub");

/// Whether `key` is the published development key.
pub fn is_development_key(key: &[u8; 32]) -> bool {
    DEVELOPMENT_PUBLIC_KEY_FILE
        .lines()
        .filter_map(|l| l.trim().strip_prefix(PUBLIC_TAG))
        .filter_map(unhex32)
        .any(|k| &k == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let k = [0xa5u8; 32];
        assert_eq!(unhex32(&hex(&k)), Some(k));
        assert_eq!(unhex32("zz"), None);
    }

    #[test]
    fn development_key_is_recognised() {
        let k = key_line(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/keys/septum-dev.pub"),
            PUBLIC_TAG,
        )
        .unwrap();
        assert!(is_development_key(&k));
        assert!(!is_development_key(&[1; 32]));
        // The committed private half matches.
        let sk = read_private_key(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/keys/septum-dev.key"),
        )
        .unwrap();
        assert_eq!(sk.verifying_key().to_bytes(), k);
    }
}
