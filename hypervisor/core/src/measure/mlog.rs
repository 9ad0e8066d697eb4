//! The measurement log, in the manner of a TPM event log.
//!
//! One entry per measured item (the manifest, the configuration, every
//! image): partition, item, size, verdict and the SHA-256 *measured* (not
//! the expected one). Each entry is extended into a running digest,
//! `running = SHA-256(running || SHA-256(entry bytes))`, starting from 32
//! zero bytes, so the final value commits to every entry and their order.
//!
//! Byte layout (little-endian; docs/measured-boot.md):
//!
//! ```text
//! 0   magic    "SEPTUMML"
//! 8   format   u16 = 1
//! 10  count    u16
//! 12  reserved u32 = 0
//! 16  running  [32]
//! 48  entries  count x 80:
//!       partition [16] NUL-padded ("septum" for the manifest and config)
//!       item      [16] NUL-padded
//!       size      u64
//!       verdict   u32  (see Verdict)
//!       reserved  u32 = 0
//!       digest    [32] measured SHA-256
//! ```

use super::manifest::{name_field, NAME_LEN};
use super::sha256::{CompressFn, Sha256};

pub const MAGIC: [u8; 8] = *b"SEPTUMML";
pub const FORMAT: u16 = 1;
pub const HEADER_LEN: usize = 48;
pub const ENTRY_LEN: usize = 80;
/// Partition name used for the system-wide entries.
pub const SYSTEM: &str = "septum";

/// The outcome recorded for one measured item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Verdict {
    Ok = 0,
    /// The image's SHA-256 differs from the manifest's.
    DigestMismatch = 1,
    /// The image's size differs from the manifest's (truncated or grown).
    SizeMismatch = 2,
    /// The manifest loads the image elsewhere than the configuration.
    LoadMismatch = 3,
    /// The manifest has no entry for this image.
    NotInManifest = 4,
    /// The manifest's signature does not verify with the compiled-in key.
    BadSignature = 5,
    /// The manifest was made for another configuration.
    ConfigMismatch = 6,
    /// The manifest's security version is below the configured minimum.
    Rollback = 7,
    /// The manifest is not structurally valid.
    BadManifest = 8,
    /// Not measured: an earlier failure (the manifest's) decided already.
    NotMeasured = 9,
}

impl Verdict {
    pub fn from_u32(v: u32) -> Option<Verdict> {
        use Verdict::*;
        [
            Ok,
            DigestMismatch,
            SizeMismatch,
            LoadMismatch,
            NotInManifest,
            BadSignature,
            ConfigMismatch,
            Rollback,
            BadManifest,
            NotMeasured,
        ]
        .into_iter()
        .find(|x| *x as u32 == v)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::DigestMismatch => "DIGEST MISMATCH",
            Verdict::SizeMismatch => "SIZE MISMATCH",
            Verdict::LoadMismatch => "LOAD ADDRESS MISMATCH",
            Verdict::NotInManifest => "NOT IN MANIFEST",
            Verdict::BadSignature => "BAD SIGNATURE",
            Verdict::ConfigMismatch => "CONFIGURATION MISMATCH",
            Verdict::Rollback => "ROLLED BACK",
            Verdict::BadManifest => "MALFORMED",
            Verdict::NotMeasured => "not measured",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub partition: [u8; NAME_LEN],
    pub item: [u8; NAME_LEN],
    pub size: u64,
    pub verdict: Verdict,
    pub digest: [u8; 32],
}

fn name_str(f: &[u8; NAME_LEN]) -> &str {
    let n = f.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
    core::str::from_utf8(&f[..n]).unwrap_or("?")
}

impl LogEntry {
    pub fn partition(&self) -> &str {
        name_str(&self.partition)
    }
    pub fn item(&self) -> &str {
        name_str(&self.item)
    }

    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..16].copy_from_slice(&self.partition);
        b[16..32].copy_from_slice(&self.item);
        b[32..40].copy_from_slice(&self.size.to_le_bytes());
        b[40..44].copy_from_slice(&(self.verdict as u32).to_le_bytes());
        b[48..80].copy_from_slice(&self.digest);
        b
    }

    fn decode(b: &[u8]) -> Option<LogEntry> {
        let mut partition = [0u8; NAME_LEN];
        let mut item = [0u8; NAME_LEN];
        let mut digest = [0u8; 32];
        partition.copy_from_slice(&b[0..16]);
        item.copy_from_slice(&b[16..32]);
        digest.copy_from_slice(&b[48..80]);
        let mut size = [0u8; 8];
        size.copy_from_slice(&b[32..40]);
        let verdict = Verdict::from_u32(u32::from_le_bytes([b[40], b[41], b[42], b[43]]))?;
        if b[44..48] != [0; 4] {
            return None;
        }
        Some(LogEntry {
            partition,
            item,
            size: u64::from_le_bytes(size),
            verdict,
            digest,
        })
    }
}

/// `SHA-256(running || SHA-256(entry))`.
pub fn extend(compress: CompressFn, running: &[u8; 32], entry: &LogEntry) -> [u8; 32] {
    let event = Sha256::digest(compress, &entry.encode());
    let mut h = Sha256::new(compress);
    h.update(running);
    h.update(&event);
    h.finalize()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogFull;

/// A fixed-capacity log (no allocation: it lives in the hypervisor's BSS).
#[derive(Clone, Debug)]
pub struct MeasurementLog<const N: usize> {
    entries: [LogEntry; N],
    len: usize,
    running: [u8; 32],
    compress: CompressFn,
}

impl<const N: usize> MeasurementLog<N> {
    pub const fn new(compress: CompressFn) -> Self {
        MeasurementLog {
            entries: [LogEntry {
                partition: [0; NAME_LEN],
                item: [0; NAME_LEN],
                size: 0,
                verdict: Verdict::Ok,
                digest: [0; 32],
            }; N],
            len: 0,
            running: [0; 32],
            compress,
        }
    }

    /// Appends an entry and extends the running digest. Names longer than
    /// 16 bytes are cut (the configuration validator keeps them shorter).
    pub fn record(
        &mut self,
        partition: &str,
        item: &str,
        size: u64,
        verdict: Verdict,
        digest: [u8; 32],
    ) -> Result<(), LogFull> {
        if self.len >= N {
            return Err(LogFull);
        }
        let field = |s: &str| {
            name_field(s).unwrap_or_else(|| {
                let mut f = [b'?'; NAME_LEN];
                for (d, c) in f.iter_mut().zip(s.bytes().filter(u8::is_ascii_graphic)) {
                    *d = c;
                }
                f
            })
        };
        let e = LogEntry {
            partition: field(partition),
            item: field(item),
            size,
            verdict,
            digest,
        };
        self.running = extend(self.compress, &self.running, &e);
        self.entries[self.len] = e;
        self.len += 1;
        Ok(())
    }

    pub fn entries(&self) -> &[LogEntry] {
        &self.entries[..self.len]
    }

    /// Chooses the block function (the hypervisor picks its SHA-256 path
    /// at run time); only before the first entry, so that one log never
    /// mixes implementations.
    pub fn set_compress(&mut self, compress: CompressFn) {
        if self.len == 0 {
            self.compress = compress;
        }
    }

    pub fn running(&self) -> [u8; 32] {
        self.running
    }

    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.len * ENTRY_LEN
    }

    /// Serialises the log into `out`; `None` if it does not fit.
    pub fn encode_into(&self, out: &mut [u8]) -> Option<usize> {
        let n = self.encoded_len();
        let out = out.get_mut(..n)?;
        out.fill(0);
        out[..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&FORMAT.to_le_bytes());
        out[10..12].copy_from_slice(&(self.len as u16).to_le_bytes());
        out[16..48].copy_from_slice(&self.running);
        for (i, e) in self.entries().iter().enumerate() {
            let o = HEADER_LEN + i * ENTRY_LEN;
            out[o..o + ENTRY_LEN].copy_from_slice(&e.encode());
        }
        Some(n)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogError {
    Truncated,
    BadMagic,
    UnsupportedFormat(u16),
    Malformed,
    /// The entries do not reproduce the running digest in the header.
    DigestMismatch,
}

/// A serialised log, checked: what a verifier (or a guest) reads back.
#[derive(Clone, Copy, Debug)]
pub struct LogView<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> LogView<'a> {
    /// Parses `bytes` (trailing bytes are ignored) and replays the
    /// entries to check the running digest.
    pub fn parse(bytes: &'a [u8], compress: CompressFn) -> Result<Self, LogError> {
        if bytes.len() < HEADER_LEN {
            return Err(LogError::Truncated);
        }
        if bytes[..8] != MAGIC {
            return Err(LogError::BadMagic);
        }
        let format = u16::from_le_bytes([bytes[8], bytes[9]]);
        if format != FORMAT {
            return Err(LogError::UnsupportedFormat(format));
        }
        if bytes[12..16] != [0; 4] {
            return Err(LogError::Malformed);
        }
        let count = u16::from_le_bytes([bytes[10], bytes[11]]) as usize;
        let len = HEADER_LEN + count * ENTRY_LEN;
        if bytes.len() < len {
            return Err(LogError::Truncated);
        }
        let v = LogView {
            bytes: &bytes[..len],
            count,
        };
        let mut running = [0u8; 32];
        for i in 0..count {
            let e = v.entry(i).ok_or(LogError::Malformed)?;
            running = extend(compress, &running, &e);
        }
        if running != v.running() {
            return Err(LogError::DigestMismatch);
        }
        Ok(v)
    }

    pub fn running(&self) -> [u8; 32] {
        let mut r = [0u8; 32];
        r.copy_from_slice(&self.bytes[16..48]);
        r
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn entry(&self, i: usize) -> Option<LogEntry> {
        if i >= self.count {
            return None;
        }
        let o = HEADER_LEN + i * ENTRY_LEN;
        LogEntry::decode(&self.bytes[o..o + ENTRY_LEN])
    }

    pub fn entries(&self) -> impl Iterator<Item = LogEntry> + '_ {
        (0..self.count).filter_map(|i| self.entry(i))
    }
}

#[cfg(test)]
mod tests {
    use super::super::sha256::soft_compress;
    use super::*;

    #[test]
    fn record_encode_parse_round_trip() {
        let mut log = MeasurementLog::<4>::new(soft_compress);
        log.record(SYSTEM, "manifest", 300, Verdict::Ok, [1; 32])
            .unwrap();
        log.record("rtos", "rtos", 50_000, Verdict::DigestMismatch, [2; 32])
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = log.encode_into(&mut buf).unwrap();
        assert_eq!(n, HEADER_LEN + 2 * ENTRY_LEN);
        let v = LogView::parse(&buf[..n], soft_compress).unwrap();
        assert_eq!(v.running(), log.running());
        let e: std::vec::Vec<_> = v.entries().collect();
        assert_eq!(e.len(), 2);
        assert_eq!((e[1].partition(), e[1].item()), ("rtos", "rtos"));
        assert_eq!(e[1].verdict, Verdict::DigestMismatch);
        assert_eq!(e[1].digest, [2; 32]);
    }

    /// REQ-MB-4: the running digest commits to every entry and their order.
    #[test]
    fn running_digest_detects_edits_and_reordering() {
        let mut a = MeasurementLog::<4>::new(soft_compress);
        a.record("p", "x", 1, Verdict::Ok, [1; 32]).unwrap();
        a.record("p", "y", 2, Verdict::Ok, [2; 32]).unwrap();
        let mut b = MeasurementLog::<4>::new(soft_compress);
        b.record("p", "y", 2, Verdict::Ok, [2; 32]).unwrap();
        b.record("p", "x", 1, Verdict::Ok, [1; 32]).unwrap();
        assert_ne!(a.running(), b.running());
        let mut buf = [0u8; 512];
        let n = a.encode_into(&mut buf).unwrap();
        for i in HEADER_LEN..n {
            let mut t = buf;
            t[i] ^= 0x10;
            assert!(LogView::parse(&t[..n], soft_compress).is_err(), "byte {i}");
        }
    }

    #[test]
    fn capacity_and_errors() {
        let mut log = MeasurementLog::<1>::new(soft_compress);
        log.record("p", "x", 1, Verdict::Ok, [0; 32]).unwrap();
        assert_eq!(log.record("p", "y", 1, Verdict::Ok, [0; 32]), Err(LogFull));
        let mut small = [0u8; 10];
        assert_eq!(log.encode_into(&mut small), None);
        assert_eq!(
            LogView::parse(&[0u8; 10], soft_compress).unwrap_err(),
            LogError::Truncated
        );
        assert_eq!(
            LogView::parse(&[0u8; 64], soft_compress).unwrap_err(),
            LogError::BadMagic
        );
    }

    #[test]
    fn initial_running_digest_is_zero() {
        let log = MeasurementLog::<1>::new(soft_compress);
        assert_eq!(log.running(), [0; 32]);
    }
}
