//! Deliberately broken copies of a built image: how an assessor reproduces
//! each refusal of measured boot (docs/measured-boot.md, "Reproducing each
//! refusal"), and what the QEMU tests boot.
//!
//! Every edit is made to the bytes of `septum.img` as the hypervisor will
//! see them: an embedded guest image is found by its bytes (the
//! configuration's own files), the manifest slot by parsing.

use ed25519_dalek::SigningKey;
use septum_core::measure::manifest::{Manifest, MAGIC, MAX_LEN};

use super::model::ValidatedConfig;

/// One way to break an image.
#[derive(Debug)]
pub enum Tamper {
    /// Flip one bit in the middle of an embedded image (`partition/item`,
    /// as in the boot log: `rtos/rtos`, `linux/kernel`, `linux/initrd`,
    /// `linux/dtb`).
    FlipImage { partition: String, item: String },
    /// Flip one bit of the manifest's signature.
    FlipSignature,
    /// Re-sign the manifest's body with `key`, its security version set to
    /// `svn` if given (another key; a rollback with the right key).
    Resign { key: SigningKey, svn: Option<u32> },
    /// Put another manifest (another configuration's, say) into the slot.
    Manifest(Vec<u8>),
}

/// The first place `needle` stands in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    let head = &needle[..needle.len().min(64)];
    let mut from = 0;
    while let Some(i) = hay[from..].windows(head.len()).position(|w| w == head) {
        let at = from + i;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Where the manifest slot starts: the one place that holds the magic and
/// parses as a manifest (the magic alone also stands in the code's data).
pub fn manifest_slot(img: &[u8]) -> Result<usize, String> {
    let mut from = 0;
    while let Some(at) = find(&img[from..], &MAGIC).map(|i| from + i) {
        let end = (at + MAX_LEN).min(img.len());
        if Manifest::parse(&img[at..end]).is_ok() {
            return Ok(at);
        }
        from = at + 1;
    }
    Err("no boot manifest in the image (was it built by scripts/build.sh?)".into())
}

/// Applies `t` to `img` (built from `cfg`); says what it changed.
pub fn apply(img: &mut [u8], cfg: &ValidatedConfig, t: &Tamper) -> Result<String, String> {
    match t {
        Tamper::FlipImage { partition, item } => {
            let images = super::sign::images(cfg)?;
            let im = images
                .iter()
                .find(|i| &i.partition == partition && &i.item == item)
                .ok_or_else(|| {
                    let names: Vec<String> = images
                        .iter()
                        .map(|i| format!("{}/{}", i.partition, i.item))
                        .collect();
                    format!(
                        "no image {partition}/{item} in this configuration (it has {})",
                        names.join(", ")
                    )
                })?;
            let at = find(img, &im.data).ok_or_else(|| {
                format!("{partition}/{item} is not in this image: built from another configuration, or from other files?")
            })?;
            let byte = at + im.data.len() / 2;
            img[byte] ^= 0x10;
            Ok(format!(
                "flipped bit 4 of byte {byte:#x}, the middle of {partition}/{item} ({} bytes at {at:#x})",
                im.data.len()
            ))
        }
        Tamper::FlipSignature => {
            let at = manifest_slot(img)?;
            let len = Manifest::parse(&img[at..(at + MAX_LEN).min(img.len())])
                .map_err(|e| format!("manifest: {e:?}"))?
                .bytes()
                .len();
            img[at + len - 1] ^= 0x01;
            Ok(format!(
                "flipped bit 0 of the manifest signature's last byte ({:#x})",
                at + len - 1
            ))
        }
        Tamper::Resign { key, svn } => {
            let at = manifest_slot(img)?;
            let mut body = Manifest::parse(&img[at..(at + MAX_LEN).min(img.len())])
                .map_err(|e| format!("manifest: {e:?}"))?
                .signed_bytes()
                .to_vec();
            if let Some(svn) = svn {
                body[12..16].copy_from_slice(&svn.to_le_bytes());
            }
            let m = super::sign::sign(body, key);
            put_manifest(img, at, &m)?;
            Ok(format!(
                "re-signed the manifest with key {}{}",
                super::sign::key_id(&key.verifying_key().to_bytes()),
                svn.map(|s| format!(", security version {s}"))
                    .unwrap_or_default()
            ))
        }
        Tamper::Manifest(m) => {
            let at = manifest_slot(img)?;
            put_manifest(img, at, m)?;
            Ok(format!("replaced the manifest ({} bytes)", m.len()))
        }
    }
}

/// `m`, zero-padded, into the slot at `at`.
fn put_manifest(img: &mut [u8], at: usize, m: &[u8]) -> Result<(), String> {
    if m.len() > MAX_LEN || at + MAX_LEN > img.len() {
        return Err(format!(
            "a manifest of {} bytes does not fit the {MAX_LEN}-byte slot",
            m.len()
        ));
    }
    img[at..at + MAX_LEN].fill(0);
    img[at..at + m.len()].copy_from_slice(m);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_needs_the_whole_needle() {
        let mut hay = vec![0u8; 300];
        hay[100..200].copy_from_slice(&[7u8; 100]);
        let mut needle = vec![7u8; 100];
        assert_eq!(find(&hay, &needle), Some(100));
        needle[99] = 8;
        assert_eq!(find(&hay, &needle), None);
        assert_eq!(find(&hay, &[]), None);
        assert_eq!(find(&[1, 2], &[1, 2, 3]), None);
    }

    #[test]
    fn the_slot_is_the_magic_that_parses() {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let body = crate::sign::manifest_body(1, &[9u8; 32], &[]).expect("an empty manifest");
        let m = crate::sign::sign(body, &key);
        // The magic alone first (as in the code's data), then the slot.
        let mut img = vec![0u8; 64];
        img.extend_from_slice(&MAGIC);
        img.extend_from_slice(&[0u8; 100]);
        let slot = img.len();
        img.extend_from_slice(&m);
        img.resize(slot + MAX_LEN + 16, 0);
        assert_eq!(manifest_slot(&img), Ok(slot));

        let cfg = crate::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/good.toml"
        )))
        .unwrap_or_else(|d| panic!("{d}"));
        let mut bad = img.clone();
        apply(&mut bad, &cfg, &Tamper::FlipSignature).unwrap();
        let parsed = Manifest::parse(&bad[slot..slot + MAX_LEN]).unwrap();
        assert!(parsed.verify(&key.verifying_key().to_bytes()).is_err());

        let mut rolled = img.clone();
        let t = Tamper::Resign {
            key: key.clone(),
            svn: Some(0),
        };
        apply(&mut rolled, &cfg, &t).unwrap();
        let parsed = Manifest::parse(&rolled[slot..slot + MAX_LEN]).unwrap();
        assert_eq!(parsed.svn(), 0);
        assert!(parsed.verify(&key.verifying_key().to_bytes()).is_ok());
    }
}
