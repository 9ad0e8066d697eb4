//! Measured and verified boot (docs/measured-boot.md).
//!
//! Before any image is copied into a partition, the hypervisor checks the
//! boot manifest's ed25519 signature against the public key compiled in, the
//! configuration digest and the security version, then hashes each image's
//! pristine copy (inside the hypervisor image, never mapped to a guest) and
//! compares size, load address and SHA-256 with the manifest. Every item is
//! recorded in the measurement log, which guests read back through a
//! hypercall (and Linux also in its device tree).
//!
//! SHA-256 runs on the ARMv8 SHA-256 instructions where the CPU has them
//! (QEMU's cortex-a72) and on the portable code where it does not (the
//! Raspberry Pi 4), chosen at run time from ID_AA64ISAR0_EL1.

use core::sync::atomic::{AtomicBool, Ordering};

use septum_core::config::Image;
use septum_core::measure::manifest::{Manifest, ManifestError, MAX_LEN};
use septum_core::measure::mlog::{self, MeasurementLog, Verdict, SYSTEM};
use septum_core::measure::sha256::{soft_compress, CompressFn, Sha256};
use spin::mutex::SpinMutex as Mutex;

use crate::arch::aarch64::asm;
use crate::config::CONFIG;
use crate::partition::PartitionRt;

/// The public key manifests must be signed with (`septum-config trust`).
mod trust {
    include!(concat!(env!("SEPTUM_GEN_DIR"), "/trust.rs"));
}

const fn slot() -> [u8; MAX_LEN] {
    let src = include_bytes!(concat!(env!("SEPTUM_GEN_DIR"), "/manifest.bin"));
    assert!(src.len() <= MAX_LEN, "manifest.bin is larger than its slot");
    let mut s = [0u8; MAX_LEN];
    let mut i = 0;
    while i < src.len() {
        s[i] = src[i];
        i += 1;
    }
    s
}

/// The signed boot manifest, in a fixed-size slot of the image. Exported
/// by name so that tools (and the tamper tests) can find and replace it in
/// the image; read only through volatile loads, so that the compiler can
/// never fold its build-time contents into the checks.
#[no_mangle]
#[used]
pub static SEPTUM_MANIFEST_SLOT: ManifestSlot = ManifestSlot(slot());

/// The slot's bytes, 8-aligned so that they can be read a word at a time.
#[repr(C, align(8))]
pub struct ManifestSlot([u8; MAX_LEN]);

const _: () = assert!(MAX_LEN.is_multiple_of(8));

/// Entries the log holds: the manifest, the configuration and up to 48 images.
pub const LOG_CAPACITY: usize = 50;
pub const LOG_BYTES: usize = mlog::HEADER_LEN + LOG_CAPACITY * mlog::ENTRY_LEN;

struct State {
    log: MeasurementLog<LOG_CAPACITY>,
    encoded: [u8; LOG_BYTES],
    encoded_len: usize,
    /// A private copy of the slot (aligned like it: copied a word at a time).
    manifest: ManifestSlot,
    /// The manifest passed every check.
    manifest_ok: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    log: MeasurementLog::new(soft_compress),
    encoded: [0; LOG_BYTES],
    encoded_len: 0,
    manifest: ManifestSlot([0; MAX_LEN]),
    manifest_ok: false,
});

static HW_SHA: AtomicBool = AtomicBool::new(false);

fn hw_compress(state: &mut [u32; 8], blocks: &[[u8; 64]]) {
    // SAFETY: selected only when `asm::has_sha256()` said the CPU has the
    // instructions; FP/SIMD does not trap at EL2 (boot clears CPTR_EL2.TFP);
    // hashing runs only at boot or while a partition is reloaded on its own
    // core, when no guest FP/SIMD state is live here.
    unsafe { asm::sha256_blocks_ce(state, blocks) }
}

/// The SHA-256 block function for this CPU.
pub fn compress() -> CompressFn {
    if HW_SHA.load(Ordering::Relaxed) {
        hw_compress
    } else {
        soft_compress
    }
}

/// SHA-256 of `data`, in 1 MiB steps that each stamp this core's liveness
/// (28 MiB of Linux take about 50 ms here, longer on a board).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new(compress());
    for chunk in data.chunks(1 << 20) {
        h.update(chunk);
        crate::liveness::progress();
    }
    h.finalize()
}

/// Bytes as lowercase hex, 32 at a time into one `write_str`: digests are
/// printed before the critical partition starts, and `{:02x}` per byte cost
/// about 150 instructions a byte.
struct Hex<'a>(&'a [u8]);
impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        for chunk in self.0.chunks(32) {
            for (b, out) in chunk.iter().zip(buf.chunks_exact_mut(2)) {
                out[0] = DIGITS[usize::from(b >> 4)];
                out[1] = DIGITS[usize::from(b & 0xf)];
            }
            let text = &buf[..2 * chunk.len()];
            // Only ASCII digits were written.
            f.write_str(core::str::from_utf8(text).map_err(|_| core::fmt::Error)?)?;
        }
        Ok(())
    }
}

/// Picks the SHA-256 path and takes a private copy of the manifest slot.
pub fn init() {
    // Power-on self-tests: a SHA-256 path that gets a known answer wrong is
    // never used; without a working one nothing can be verified. The
    // portable code is tested only when it is the one used (its test costs
    // the critical partition's start about 40 us).
    let mut hw = asm::has_sha256();
    if hw && !septum_core::measure::sha256::self_test(hw_compress) {
        log::error!("SHA-256 instructions fail the self-test; using the portable code");
        hw = false;
    }
    if !hw && !septum_core::measure::sha256::self_test(soft_compress) {
        crate::lifecycle::safe_state_boot(format_args!("the SHA-256 self-test failed"));
    }
    HW_SHA.store(hw, Ordering::Relaxed);
    let mut st = STATE.lock();
    st.log.set_compress(compress());
    // A word at a time: a volatile load per byte cost the critical
    // partition's start about 30 us.
    let words = SEPTUM_MANIFEST_SLOT.0.as_ptr().cast::<u64>();
    let copy = st.manifest.0.as_mut_ptr().cast::<u64>();
    for i in 0..MAX_LEN / 8 {
        // SAFETY: `i < MAX_LEN / 8` and both are 8-aligned arrays of
        // MAX_LEN bytes, so the words lie inside them; a volatile read of
        // plain bytes (see SEPTUM_MANIFEST_SLOT).
        unsafe { copy.add(i).write(core::ptr::read_volatile(words.add(i))) };
    }
    log::info!(
        "measured boot: SHA-256 (self-tested) on {}; manifest key {}{}",
        if hw {
            "the ARMv8 SHA-256 instructions"
        } else {
            "the portable code (no ARMv8 SHA-256 instructions)"
        },
        trust::MANIFEST_KEY_ID,
        if trust::MANIFEST_KEY_IS_DEVELOPMENT {
            " (the published DEVELOPMENT key: this build is not fit for a product)"
        } else {
            ""
        }
    );
}

static COST_REPORTED: AtomicBool = AtomicBool::new(false);

/// Prints, once, what SHA-256 costs here per MiB on each available path
/// (timed over 16 KiB of the hypervisor's own image, about 0.5 ms). Called
/// by a non-critical partition's boot core, so the critical partition's
/// start does not wait for it.
pub fn report_sha256_cost() {
    if COST_REPORTED.swap(true, Ordering::Relaxed) {
        return;
    }
    let hw = HW_SHA.load(Ordering::Relaxed);
    const SAMPLE: usize = 16 * 1024;
    let start = asm::image_start();
    // SAFETY: the first 16 KiB of the hypervisor's own loaded image: mapped,
    // read-only in use, never written while this runs.
    let data = unsafe { core::slice::from_raw_parts(start as *const u8, SAMPLE) };
    let per_mib = |f: CompressFn| {
        let t = crate::time::ticks();
        core::hint::black_box(Sha256::digest(f, data));
        (crate::time::ticks() - t) * (1024 * 1024 / SAMPLE as u64)
    };
    let soft = per_mib(soft_compress);
    if hw {
        let ce = per_mib(hw_compress);
        log::info!(
            "SHA-256 cost: {ce} ticks/MiB with the ARMv8 instructions, {soft} ticks/MiB portable"
        );
    } else {
        log::info!("SHA-256 cost: {soft} ticks/MiB portable (no ARMv8 SHA-256 instructions)");
    }
}

/// What a measured item is, for its log line: a blob's size, or the
/// compiled-in configuration (a digest of structured data).
struct What(Option<u64>);

impl core::fmt::Display for What {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n} bytes"),
            None => f.write_str("digest of the compiled-in configuration"),
        }
    }
}

/// Logs and records one measurement. `size` is `None` for a digest of
/// structured data rather than of a blob (the configuration), which the
/// log records with size 0.
/// Logs and records one measurement. The console line is written before
/// the log's lock is taken: a line on a real UART takes milliseconds.
fn record(partition: &str, item: &str, size: Option<u64>, v: Verdict, d: [u8; 32]) {
    let level = if v == Verdict::Ok {
        log::Level::Info
    } else {
        log::Level::Error
    };
    log::log!(
        level,
        "  measured {partition}/{item}: {}, sha256 {}: {}",
        What(size),
        Hex(&d),
        v.as_str()
    );
    let full = {
        let mut st = STATE.lock();
        let full = st
            .log
            .record(partition, item, size.unwrap_or(0), v, d)
            .is_err();
        let State {
            log: l, encoded, ..
        } = &mut *st;
        st.encoded_len = l.encode_into(encoded).unwrap_or(0);
        full
    };
    if full {
        log::warn!("measurement log full; {partition}/{item} is not logged");
    }
}

/// Checks the manifest: structure, signature, configuration digest and
/// security version. Records the manifest and the configuration in the log.
pub fn verify_manifest() -> Result<(), Verdict> {
    let config = septum_core::measure::config_digest(&CONFIG, compress());
    let bytes = STATE.lock().manifest.0;
    let verdict = match Manifest::parse(&bytes) {
        Err(e) => {
            log::error!("boot manifest: {e:?}");
            Err((Verdict::BadManifest, &bytes[..]))
        }
        Ok(m) => match m.verify(&trust::MANIFEST_PUBLIC_KEY) {
            Err(ManifestError::BadSignature) | Err(_) => {
                log::error!(
                    "boot manifest: the signature does not verify with key {}",
                    trust::MANIFEST_KEY_ID
                );
                Err((Verdict::BadSignature, m.bytes()))
            }
            Ok(()) if m.config_digest() != config => {
                log::error!(
                    "boot manifest: made for configuration {}, this is {}",
                    Hex(&m.config_digest()),
                    Hex(&config)
                );
                Err((Verdict::ConfigMismatch, m.bytes()))
            }
            Ok(()) if m.svn() < CONFIG.boot.min_security_version => {
                log::error!(
                    "boot manifest: security version {} is below the minimum {} (rollback)",
                    m.svn(),
                    CONFIG.boot.min_security_version
                );
                Err((Verdict::Rollback, m.bytes()))
            }
            Ok(()) => {
                log::info!(
                    "boot manifest: signature ok, {} images, security version {} (minimum {})",
                    m.len(),
                    m.svn(),
                    CONFIG.boot.min_security_version
                );
                Ok(m.bytes())
            }
        },
    };
    let (v, body) = match verdict {
        Ok(b) => (Verdict::Ok, b),
        Err((v, b)) => (v, b),
    };
    let digest = sha256(body);
    let len = body.len() as u64;
    record(SYSTEM, "manifest", Some(len), v, digest);
    let cv = if v == Verdict::ConfigMismatch {
        Verdict::ConfigMismatch
    } else {
        Verdict::Ok
    };
    record(SYSTEM, "config", None, cv, config);
    STATE.lock().manifest_ok = v == Verdict::Ok;
    if v == Verdict::Ok {
        Ok(())
    } else {
        Err(v)
    }
}

/// Checks one image against the verified manifest.
fn check_image(m: &Manifest<'_>, partition: &str, img: &Image, digest: &[u8; 32]) -> Verdict {
    let Some(e) = m.find(partition, img.name) else {
        return Verdict::NotInManifest;
    };
    if e.size != img.data.len() as u64 {
        Verdict::SizeMismatch
    } else if e.load != img.load.raw() {
        Verdict::LoadMismatch
    } else if e.digest != *digest {
        Verdict::DigestMismatch
    } else {
        Verdict::Ok
    }
}

/// A partition's images that failed: the first failure.
#[derive(Clone, Copy, Debug)]
pub struct Failure {
    pub item: &'static str,
    pub verdict: Verdict,
}

/// Hashes each image of `p` and checks it against the verified manifest
/// (`NotMeasured`, without hashing, when there is none). At boot every
/// image is recorded; a re-check records only a failure and stops there.
/// Returns the first failure.
///
/// The log's lock is held only to copy the manifest and to record: never
/// while hashing (28 MiB of Linux), so that the RTOS's MLOG_READ on its own
/// core never waits for another partition's measurement.
fn check_images(p: &PartitionRt, recheck: bool) -> Option<Failure> {
    let (bytes, ok) = {
        let st = STATE.lock();
        (st.manifest.0, st.manifest_ok)
    };
    let manifest = if ok {
        Manifest::parse(&bytes).ok()
    } else {
        None
    };
    let mut first = None;
    for img in p.cfg.images {
        let (v, d) = match &manifest {
            Some(m) => {
                let d = sha256(img.data);
                (check_image(m, p.name(), img, &d), d)
            }
            None => (Verdict::NotMeasured, [0; 32]),
        };
        if !recheck || v != Verdict::Ok {
            record(p.name(), img.name, Some(img.data.len() as u64), v, d);
        }
        if v != Verdict::Ok {
            first.get_or_insert(Failure {
                item: img.name,
                verdict: v,
            });
            if recheck {
                break;
            }
        }
    }
    first
}

/// Measures every image of `p` (its pristine copies) against the manifest
/// and records them. `Err` names the first image that failed; an
/// unverified manifest fails every image without hashing it.
pub fn measure_partition(p: &PartitionRt) -> Result<(), Failure> {
    let t = crate::time::ticks();
    let first = check_images(p, false);
    let total: usize = p.cfg.images.iter().map(|i| i.data.len()).sum();
    let st = STATE.lock();
    log::info!(
        "partition '{}': {} images ({} bytes) measured in {} us; log: {} entries, running digest {}",
        p.name(),
        p.cfg.images.len(),
        total,
        (crate::time::ticks() - t) * 1_000_000 / crate::time::freq(),
        st.log.entries().len(),
        Hex(&st.log.running())
    );
    first.map_or(Ok(()), Err)
}

/// Re-checks `p`'s images before a reload (the pristine copies cannot be
/// written by any guest, so this guards against memory faults and bugs);
/// not logged again unless an image fails.
pub fn recheck_partition(p: &PartitionRt) -> Result<(), Failure> {
    #[cfg(feature = "fault-inject")]
    if crate::fault_inject::recheck_fails(p) {
        return Err(Failure {
            item: "rtos",
            verdict: Verdict::DigestMismatch,
        });
    }
    if !STATE.lock().manifest_ok {
        return Err(Failure {
            item: "manifest",
            verdict: Verdict::NotMeasured,
        });
    }
    check_images(p, true).map_or(Ok(()), Err)
}

/// Copies log bytes from `offset` into `out`; returns (copied, total size).
pub fn read_log(offset: usize, out: &mut [u8]) -> (usize, usize) {
    let st = STATE.lock();
    let total = st.encoded_len;
    if offset >= total {
        return (0, total);
    }
    let n = out.len().min(total - offset);
    out[..n].copy_from_slice(&st.encoded[offset..offset + n]);
    (n, total)
}

/// The serialised log's size in bytes.
pub fn log_len() -> usize {
    STATE.lock().encoded_len
}

/// Writes the measurement log into the `/chosen/septum,measurement-log`
/// property of the partition's loaded device tree (the `dtb` image), so
/// that Linux userland can read it. The pristine tree holds zeros there and
/// is what was measured; this writes only the partition's own copy.
pub fn publish_to_dtb(p: &PartitionRt) {
    let Some(img) = p.cfg.images.iter().find(|i| i.name == "dtb") else {
        return;
    };
    let Ok(tree) = septum_core::fdt::Fdt::new(img.data) else {
        return;
    };
    let Some(value) = tree
        .find("/chosen")
        .and_then(|n| n.prop("septum,measurement-log"))
    else {
        return;
    };
    let offset = value.as_ptr() as usize - img.data.as_ptr() as usize;
    let len = value.len();
    let mut buf = [0u8; LOG_BYTES];
    let (n, _) = read_log(0, &mut buf[..len.min(LOG_BYTES)]);
    // The property's value inside the partition's copy of its device tree
    // (the partition is not running yet); the rest of it zeroed.
    let at = septum_core::addr::GuestPhysAddr::new(img.load.raw() + offset as u64);
    let _ = crate::guest_mem::write(
        p,
        at,
        &buf[..n],
        len - n,
        septum_core::hypercall::Need::Loader,
    );
}
