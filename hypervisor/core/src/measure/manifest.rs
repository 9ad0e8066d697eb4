//! The boot manifest: what each partition may load, signed with ed25519.
//!
//! Binary, little-endian, fixed-size records (no parser state, nothing to
//! allocate; see docs/measured-boot.md for the byte layout):
//!
//! ```text
//! 0    magic         "SEPTUMMF"
//! 8    format        u16 = 1
//! 10   count         u16   number of entries (<= MAX_ENTRIES)
//! 12   svn           u32   security version of this release
//! 16   total_len     u32   HEADER_LEN + count * ENTRY_LEN + SIG_LEN
//! 20   reserved      u32   zero
//! 24   config        [32]  SHA-256 of the canonical configuration
//! 56   entries       count x ENTRY_LEN:
//!        partition [16] name, NUL-padded
//!        item      [16] image name, NUL-padded
//!        load      u64  guest-physical load address
//!        size      u64  bytes
//!        digest    [32] SHA-256 of the image
//! ...  signature     [64]  ed25519 over every byte before it
//! ```
//!
//! [`Manifest::parse`] checks the structure only; nothing in a manifest may
//! be used before [`Manifest::verify`] has checked the signature.

use ed25519_dalek::{Signature, VerifyingKey};

pub const MAGIC: [u8; 8] = *b"SEPTUMMF";
pub const FORMAT: u16 = 1;
pub const HEADER_LEN: usize = 56;
pub const ENTRY_LEN: usize = 80;
pub const SIG_LEN: usize = 64;
pub const NAME_LEN: usize = 16;
/// Room for every image of every partition a configuration can have.
pub const MAX_ENTRIES: usize = 48;
/// The largest manifest; also the size of the slot the hypervisor image
/// reserves for it.
pub const MAX_LEN: usize = HEADER_LEN + MAX_ENTRIES * ENTRY_LEN + SIG_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// Shorter than its header or than `total_len` says.
    Truncated,
    BadMagic,
    UnsupportedFormat(u16),
    /// `count` above [`MAX_ENTRIES`], or `total_len` inconsistent with it.
    BadLength,
    /// Reserved bytes not zero, or a name that is empty, not NUL-padded or
    /// not printable ASCII.
    Malformed,
    /// The public key is not a valid ed25519 point.
    BadKey,
    /// The signature does not verify with the given key.
    BadSignature,
}

/// A name field: up to 16 printable ASCII bytes, NUL-padded.
pub fn name_field(name: &str) -> Option<[u8; NAME_LEN]> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > NAME_LEN || !b.iter().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    let mut f = [0u8; NAME_LEN];
    f[..b.len()].copy_from_slice(b);
    Some(f)
}

fn parse_name(f: &[u8]) -> Result<&str, ManifestError> {
    let len = f.iter().position(|&c| c == 0).unwrap_or(f.len());
    if len == 0 || f[len..].iter().any(|&c| c != 0) || !f[..len].iter().all(u8::is_ascii_graphic) {
        return Err(ManifestError::Malformed);
    }
    core::str::from_utf8(&f[..len]).map_err(|_| ManifestError::Malformed)
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// One image a partition may load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub partition: &'a str,
    pub item: &'a str,
    pub load: u64,
    pub size: u64,
    pub digest: [u8; 32],
}

/// A structurally valid manifest, borrowed from its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Manifest<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> Manifest<'a> {
    /// Checks the structure of `bytes` (which may carry trailing padding,
    /// as in the hypervisor's fixed-size slot).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ManifestError> {
        if bytes.len() < HEADER_LEN {
            return Err(ManifestError::Truncated);
        }
        if bytes[..8] != MAGIC {
            return Err(ManifestError::BadMagic);
        }
        let format = u16_at(bytes, 8);
        if format != FORMAT {
            return Err(ManifestError::UnsupportedFormat(format));
        }
        let count = u16_at(bytes, 10) as usize;
        let total = u32_at(bytes, 16) as usize;
        if count > MAX_ENTRIES || total != HEADER_LEN + count * ENTRY_LEN + SIG_LEN {
            return Err(ManifestError::BadLength);
        }
        if bytes.len() < total {
            return Err(ManifestError::Truncated);
        }
        if u32_at(bytes, 20) != 0 {
            return Err(ManifestError::Malformed);
        }
        let m = Manifest {
            bytes: &bytes[..total],
            count,
        };
        for i in 0..count {
            m.entry_checked(i)?;
        }
        Ok(m)
    }

    /// The manifest's own bytes (without any slot padding).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> &'a [u8] {
        &self.bytes[..self.bytes.len() - SIG_LEN]
    }

    pub fn signature(&self) -> [u8; SIG_LEN] {
        let mut s = [0u8; SIG_LEN];
        s.copy_from_slice(&self.bytes[self.bytes.len() - SIG_LEN..]);
        s
    }

    /// Verifies the signature (strict ed25519: no malleable or small-order
    /// signatures) with `public_key`.
    pub fn verify(&self, public_key: &[u8; 32]) -> Result<(), ManifestError> {
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| ManifestError::BadKey)?;
        let sig = Signature::from_bytes(&self.signature());
        key.verify_strict(self.signed_bytes(), &sig)
            .map_err(|_| ManifestError::BadSignature)
    }

    pub fn svn(&self) -> u32 {
        u32_at(self.bytes, 12)
    }

    pub fn config_digest(&self) -> [u8; 32] {
        let mut d = [0u8; 32];
        d.copy_from_slice(&self.bytes[24..56]);
        d
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn entry_checked(&self, i: usize) -> Result<Entry<'a>, ManifestError> {
        let o = HEADER_LEN + i * ENTRY_LEN;
        let e = &self.bytes[o..o + ENTRY_LEN];
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&e[48..80]);
        Ok(Entry {
            partition: parse_name(&e[0..16])?,
            item: parse_name(&e[16..32])?,
            load: u64_at(e, 32),
            size: u64_at(e, 40),
            digest,
        })
    }

    pub fn entry(&self, i: usize) -> Option<Entry<'a>> {
        if i < self.count {
            self.entry_checked(i).ok()
        } else {
            None
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = Entry<'a>> + '_ {
        (0..self.count).filter_map(|i| self.entry(i))
    }

    /// The entry for `item` of `partition`. Names are unique per
    /// partition in a valid configuration; a manifest that repeats one is
    /// answered with the first, and the size and digest checks decide.
    pub fn find(&self, partition: &str, item: &str) -> Option<Entry<'a>> {
        self.entries()
            .find(|e| e.partition == partition && e.item == item)
    }
}

/// Writes a manifest's unsigned part (header and entries) into `out`;
/// returns its length. The caller appends the 64-byte signature over
/// exactly these bytes. `None` if `out` is too small, there are too many
/// entries or a name does not fit.
pub fn encode_unsigned(
    svn: u32,
    config: &[u8; 32],
    entries: &[Entry<'_>],
    out: &mut [u8],
) -> Option<usize> {
    let count = entries.len();
    if count > MAX_ENTRIES {
        return None;
    }
    let len = HEADER_LEN + count * ENTRY_LEN;
    if out.len() < len {
        return None;
    }
    let out = &mut out[..len];
    out.fill(0);
    out[..8].copy_from_slice(&MAGIC);
    out[8..10].copy_from_slice(&FORMAT.to_le_bytes());
    out[10..12].copy_from_slice(&(count as u16).to_le_bytes());
    out[12..16].copy_from_slice(&svn.to_le_bytes());
    out[16..20].copy_from_slice(&((len + SIG_LEN) as u32).to_le_bytes());
    out[24..56].copy_from_slice(config);
    for (i, e) in entries.iter().enumerate() {
        let o = HEADER_LEN + i * ENTRY_LEN;
        out[o..o + 16].copy_from_slice(&name_field(e.partition)?);
        out[o + 16..o + 32].copy_from_slice(&name_field(e.item)?);
        out[o + 32..o + 40].copy_from_slice(&e.load.to_le_bytes());
        out[o + 40..o + 48].copy_from_slice(&e.size.to_le_bytes());
        out[o + 48..o + 80].copy_from_slice(&e.digest);
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const SEED: [u8; 32] = [7; 32];

    fn sample(svn: u32) -> std::vec::Vec<u8> {
        let entries = [
            Entry {
                partition: "rtos",
                item: "rtos",
                load: 0x4020_0000,
                size: 50_000,
                digest: [1; 32],
            },
            Entry {
                partition: "linux",
                item: "kernel",
                load: 0x5000_0000,
                size: 27_000_000,
                digest: [2; 32],
            },
        ];
        let mut buf = std::vec![0u8; MAX_LEN];
        let n = encode_unsigned(svn, &[9; 32], &entries, &mut buf).unwrap();
        buf.truncate(n);
        let sig = SigningKey::from_bytes(&SEED).sign(&buf);
        buf.extend_from_slice(&sig.to_bytes());
        buf
    }

    fn public() -> [u8; 32] {
        SigningKey::from_bytes(&SEED).verifying_key().to_bytes()
    }

    #[test]
    fn round_trip_and_verify() {
        let b = sample(3);
        let m = Manifest::parse(&b).unwrap();
        m.verify(&public()).unwrap();
        assert_eq!(m.svn(), 3);
        assert_eq!(m.config_digest(), [9; 32]);
        assert_eq!(m.len(), 2);
        let k = m.find("linux", "kernel").unwrap();
        assert_eq!(
            (k.load, k.size, k.digest),
            (0x5000_0000, 27_000_000, [2; 32])
        );
        assert!(m.find("linux", "rtos").is_none());
        // Slot padding after the manifest is ignored.
        let mut padded = b.clone();
        padded.resize(MAX_LEN, 0);
        assert_eq!(Manifest::parse(&padded).unwrap().bytes(), &b[..]);
    }

    /// REQ-MB-2: any changed byte of a signed manifest fails verification
    /// (or parsing), never verifies.
    #[test]
    fn every_flipped_bit_is_refused() {
        let b = sample(1);
        for i in 0..b.len() {
            for bit in [0, 3, 7] {
                let mut t = b.clone();
                t[i] ^= 1 << bit;
                if let Ok(m) = Manifest::parse(&t) {
                    assert!(m.verify(&public()).is_err(), "byte {i} bit {bit}");
                }
            }
        }
    }

    #[test]
    fn other_key_is_refused() {
        let b = sample(1);
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert_eq!(
            Manifest::parse(&b).unwrap().verify(&other),
            Err(ManifestError::BadSignature)
        );
    }

    #[test]
    fn structural_errors() {
        let b = sample(1);
        assert_eq!(
            Manifest::parse(&b[..10]).unwrap_err(),
            ManifestError::Truncated
        );
        assert_eq!(
            Manifest::parse(&b[..b.len() - 1]).unwrap_err(),
            ManifestError::Truncated
        );
        let mut t = b.clone();
        t[0] = b'X';
        assert_eq!(Manifest::parse(&t).unwrap_err(), ManifestError::BadMagic);
        let mut t = b.clone();
        t[8] = 2;
        assert_eq!(
            Manifest::parse(&t).unwrap_err(),
            ManifestError::UnsupportedFormat(2)
        );
        let mut t = b.clone();
        t[10] = 3; // count no longer matches total_len
        assert_eq!(Manifest::parse(&t).unwrap_err(), ManifestError::BadLength);
        let mut t = b.clone();
        t[HEADER_LEN] = 0; // empty partition name
        assert_eq!(Manifest::parse(&t).unwrap_err(), ManifestError::Malformed);
        let mut t = b.clone();
        t[HEADER_LEN + 5] = b'x'; // "rtos\0x": garbage after the NUL
        assert_eq!(Manifest::parse(&t).unwrap_err(), ManifestError::Malformed);
    }

    #[test]
    fn names() {
        assert!(name_field("").is_none());
        assert!(name_field("a b").is_none());
        assert!(name_field("0123456789abcdefX").is_none());
        assert_eq!(&name_field("rtos").unwrap()[..5], b"rtos\0");
    }
}
