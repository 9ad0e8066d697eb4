//! Streaming SHA-256 over a pluggable block function.
//!
//! The padding and buffering live here; the 64-byte block compression is a
//! plain function pointer, so the hypervisor can pick, at run time, the
//! ARMv8 SHA-256 instructions (`arch::aarch64`) where the CPU has them and
//! [`soft_compress`] (the `sha2` crate's portable code) where it does not —
//! the same image runs on QEMU's cortex-a72 (crypto extension) and on the
//! Raspberry Pi 4 (none).

/// Compresses whole 64-byte blocks into the state.
pub type CompressFn = fn(&mut [u32; 8], &[[u8; 64]]);

/// The portable block function.
pub fn soft_compress(state: &mut [u32; 8], blocks: &[[u8; 64]]) {
    sha2::block_api::compress256(state, blocks)
}

const H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// A SHA-256 computation in progress.
#[derive(Clone)]
pub struct Sha256 {
    state: [u32; 8],
    buf: [u8; 64],
    buf_len: usize,
    total: u64,
    compress: CompressFn,
}

impl core::fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sha256")
            .field("total", &self.total)
            .finish()
    }
}

impl Sha256 {
    pub fn new(compress: CompressFn) -> Self {
        Sha256 {
            state: H0,
            buf: [0; 64],
            buf_len: 0,
            total: 0,
            compress,
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.buf_len > 0 {
            let take = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < 64 {
                return;
            }
            let block = self.buf;
            (self.compress)(&mut self.state, &[block]);
            self.buf_len = 0;
        }
        let (blocks, rest) = data.as_chunks::<64>();
        // Large inputs (a 27 MiB kernel) go in bounded runs, so that a
        // block function never sees an unbounded slice.
        for run in blocks.chunks(1024) {
            (self.compress)(&mut self.state, run);
        }
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    pub fn finalize(mut self) -> [u8; 32] {
        let bits = self.total.wrapping_mul(8);
        let mut pad = [0u8; 72];
        pad[0] = 0x80;
        // Pad to 56 mod 64, then the 64-bit big-endian bit length.
        let zeros = (119 - self.buf_len) % 64;
        let n = 1 + zeros;
        pad[n..n + 8].copy_from_slice(&bits.to_be_bytes());
        let total = self.total;
        self.update(&pad[..n + 8]);
        self.total = total;
        debug_assert_eq!(self.buf_len, 0);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// One-shot digest.
    pub fn digest(compress: CompressFn, data: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new(compress);
        h.update(data);
        h.finalize()
    }
}

const KAT_ABC: [u8; 32] = [
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
];
/// SHA-256 of the 1000 bytes `i * 7 % 251` (15 whole blocks and a tail).
const KAT_1000: [u8; 32] = [
    0x59, 0x42, 0x5e, 0x44, 0x12, 0xe2, 0x96, 0xfc, 0x74, 0x73, 0x66, 0x73, 0xce, 0x06, 0x70, 0x27,
    0xf3, 0x84, 0x20, 0x3f, 0x59, 0xc0, 0xd2, 0xc3, 0xe6, 0xbe, 0x7b, 0x13, 0x34, 0x7b, 0x3f, 0xfc,
];

/// Power-on self-test of a block function against known answers (one
/// block, and a multi-block input fed in uneven pieces). The hypervisor
/// runs it on each SHA-256 path before trusting it with a measurement.
pub fn self_test(compress: CompressFn) -> bool {
    if Sha256::digest(compress, b"abc") != KAT_ABC {
        return false;
    }
    let mut h = Sha256::new(compress);
    h.update(&KAT_1000_INPUT[..333]);
    h.update(&KAT_1000_INPUT[333..]);
    h.finalize() == KAT_1000
}

/// The input of the 1000-byte known answer (byte i is i * 7 mod 251), built
/// at compile time: the self-test runs before the critical partition
/// starts, and computing it there cost 8,000 instructions.
const KAT_1000_INPUT: [u8; 1000] = {
    let mut c = [0u8; 1000];
    let mut i = 0;
    while i < c.len() {
        c[i] = (i * 7 % 251) as u8;
        i += 1;
    }
    c
};

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: &[u8]) -> std::string::String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn known_answers() {
        assert_eq!(
            hex(&Sha256::digest(soft_compress, b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&Sha256::digest(soft_compress, b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&Sha256::digest(
                soft_compress,
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn self_test_passes_and_catches_a_broken_block_function() {
        assert!(self_test(soft_compress));
        fn broken(state: &mut [u32; 8], blocks: &[[u8; 64]]) {
            soft_compress(state, blocks);
            state[3] ^= 1;
        }
        assert!(!self_test(broken));
    }

    /// Every length around the block and padding boundaries, fed in
    /// uneven pieces, agrees with the sha2 crate's own hasher.
    #[test]
    fn matches_sha2_for_all_split_points() {
        use sha2::Digest;
        let data: std::vec::Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..data.len() {
            let want: [u8; 32] = sha2::Sha256::digest(&data[..len]).into();
            for split in [0, 1, 55, 56, 63, 64, 65, 128] {
                let split = split.min(len);
                let mut h = Sha256::new(soft_compress);
                h.update(&data[..split]);
                h.update(&data[split..len]);
                assert_eq!(h.finalize(), want, "len {len} split {split}");
            }
        }
    }
}
