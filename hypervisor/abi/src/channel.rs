//! Channels: one-directional pages shared between two partitions
//! (docs/channels.md). The writer's stage 2 maps a channel read-write, the
//! reader's read-only, neither executable, both non-cacheable (the reader
//! may map it as device memory, as Linux's `/dev/mem` does, and must still
//! see every store). The hypervisor never reads or writes one.
//!
//! A channel carries one record under a sequence lock: the writer makes the
//! sequence number odd, writes the payload, makes it even again; a reader
//! copies the payload between two reads of the sequence and keeps the copy
//! only if both are the same even number. A reader therefore never acts on
//! a torn record, and the writer never waits for a reader: a reader that
//! is slow, stopped or hostile costs the writer nothing.
//!
//! The layout is 32-bit words, little-endian, every access one aligned
//! word: the only access that is single-copy atomic on every memory type a
//! reader may choose, device memory included.

use core::sync::atomic::{fence, Ordering};

/// A channel is whole pages.
/// A doorbell's GPIO line is named this followed by the channel's name
/// (in the reader's device tree, `gpio-line-names`).
pub const DOORBELL_LINE_PREFIX: &str = "septum-";

pub const PAGE: usize = 4096;
/// Words in one page.
pub const PAGE_WORDS: usize = PAGE / 4;

/// Header words: magic, version, sequence, payload length (in words).
pub const W_MAGIC: usize = 0;
pub const W_VERSION: usize = 1;
pub const W_SEQ: usize = 2;
pub const W_LEN: usize = 3;
pub const HEADER_WORDS: usize = 4;

/// The longest name `CHANNEL_INFO` can look up (two registers' worth).
pub const NAME_MAX: usize = 16;

/// A channel's name packed into the two argument registers of
/// `CHANNEL_INFO`: bytes little-endian, NUL-padded. `None` for a name that
/// is empty, too long or has a NUL.
pub fn pack_name(name: &str) -> Option<[u64; 2]> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > NAME_MAX || b.contains(&0) {
        return None;
    }
    let mut raw = [0u8; NAME_MAX];
    raw[..b.len()].copy_from_slice(b);
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&raw[..8]);
    hi.copy_from_slice(&raw[8..]);
    Some([u64::from_le_bytes(lo), u64::from_le_bytes(hi)])
}

/// A channel as `CHANNEL_INFO` describes it to one of its two partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Writer = 0,
    Reader = 1,
}

impl Role {
    /// `"writer"` or `"reader"`, as the device tree and the tools say it.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Reader => "reader",
        }
    }
}

/// Word access to a channel's page, implemented by each side with the
/// accesses its mapping needs (volatile loads and stores on the target, a
/// plain array in tests). Indices are below [`PAGE_WORDS`].
pub trait Words {
    fn load(&self, word: usize) -> u32;
    fn store(&mut self, word: usize, value: u32);
}

/// Why a read produced no record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// No writer has put this kind of record here (wrong magic).
    NoRecord,
    /// A record of another major version.
    Version(u32),
    /// The record is shorter than the reader's payload, or longer than the
    /// page.
    Length(u32),
    /// The writer was always mid-update (or had stopped mid-update): every
    /// try saw an odd or changing sequence number.
    Busy,
}

/// The writer's side of one channel: the magic and version it writes, and
/// the sequence number it continues.
#[derive(Debug)]
pub struct Writer {
    magic: u32,
    version: u32,
    seq: u32,
}

impl Writer {
    /// Takes over the page. The sequence continues from what the page
    /// holds (a restarted writer may find its predecessor mid-update), so a
    /// reader never sees a number repeat across a writer's restart.
    pub fn attach(page: &impl Words, magic: u32, version: u32) -> Self {
        Self {
            magic,
            version,
            seq: page.load(W_SEQ) | 1,
        }
    }

    /// The sequence number of the last complete record (even), or odd
    /// before the first.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Publishes `payload` (at most a page minus the header; longer is cut).
    pub fn publish(&mut self, page: &mut impl Words, payload: &[u32]) {
        let n = payload.len().min(PAGE_WORDS - HEADER_WORDS);
        // Odd: an update is in progress. The fence orders this store
        // before the payload's for every observer.
        self.seq |= 1;
        page.store(W_SEQ, self.seq);
        fence(Ordering::SeqCst);
        page.store(W_MAGIC, self.magic);
        page.store(W_VERSION, self.version);
        page.store(W_LEN, n as u32);
        for (i, &w) in payload[..n].iter().enumerate() {
            page.store(HEADER_WORDS + i, w);
        }
        fence(Ordering::SeqCst);
        self.seq = self.seq.wrapping_add(1);
        page.store(W_SEQ, self.seq);
    }
}

/// Copies the record into `out` (its first `out.len()` payload words) if
/// the page holds a complete one of `magic` and major `version`, with at
/// least `out.len()` payload words; tries at most `tries` times. Returns
/// the record's sequence number. Bounded: a writer that never finishes
/// costs the reader `tries` copies, then [`ReadError::Busy`].
pub fn read(
    page: &impl Words,
    magic: u32,
    version: u32,
    out: &mut [u32],
    tries: u32,
) -> Result<u32, ReadError> {
    if out.len() > PAGE_WORDS - HEADER_WORDS {
        return Err(ReadError::Length(out.len() as u32));
    }
    let mut last = ReadError::Busy;
    for _ in 0..tries {
        let s1 = page.load(W_SEQ);
        fence(Ordering::SeqCst);
        if s1 & 1 == 1 {
            last = ReadError::Busy;
            continue;
        }
        let m = page.load(W_MAGIC);
        let v = page.load(W_VERSION);
        let len = page.load(W_LEN);
        for (i, w) in out.iter_mut().enumerate() {
            *w = page.load(HEADER_WORDS + i);
        }
        fence(Ordering::SeqCst);
        if page.load(W_SEQ) != s1 {
            last = ReadError::Busy;
            continue;
        }
        // A stable copy: now its header may be judged.
        return if m != magic {
            Err(ReadError::NoRecord)
        } else if v >> 16 != version >> 16 {
            Err(ReadError::Version(v))
        } else if (len as usize) < out.len() || len as usize > PAGE_WORDS - HEADER_WORDS {
            Err(ReadError::Length(len))
        } else {
            Ok(s1)
        };
    }
    Err(last)
}

/// The RTOS's telemetry record (channel `telemetry`, RTOS → Linux),
/// published once a second by its status task.
pub mod telemetry {
    /// `"SPTM"` little-endian.
    pub const MAGIC: u32 = u32::from_le_bytes(*b"SPTM");
    /// Major version in the high half: a reader refuses another major;
    /// minor versions only append payload words. 1.1 added the request
    /// answers and the set rate (words 16-21).
    pub const VERSION: u32 = 1 << 16 | 1;

    /// What the pump is doing.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub enum PumpState {
        #[default]
        Infusing = 0,
        /// Stopped by an occlusion; resumes by itself.
        OcclusionAlarm = 1,
        /// Stopped for good (dose complete or safety stop).
        Stopped = 2,
        /// Held on request (an accepted pause).
        Paused = 3,
        /// A value this reader does not know.
        Unknown = 0xff,
    }

    impl PumpState {
        pub fn from_word(w: u32) -> Self {
            match w {
                0 => Self::Infusing,
                1 => Self::OcclusionAlarm,
                2 => Self::Stopped,
                3 => Self::Paused,
                _ => Self::Unknown,
            }
        }

        pub fn name(self) -> &'static str {
            match self {
                Self::Infusing => "infusing",
                Self::OcclusionAlarm => "occlusion-alarm",
                Self::Stopped => "stopped",
                Self::Paused => "paused",
                Self::Unknown => "unknown",
            }
        }
    }

    /// One record: the fields of the RTOS's status line, and the pump's
    /// state.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Telemetry {
        /// Status records published since the RTOS started (its heartbeat).
        pub heartbeat: u64,
        /// Milliseconds since the control loop started.
        pub uptime_ms: u64,
        /// Control periods completed.
        pub cycles: u64,
        /// Deadline misses of any task since the RTOS started.
        pub misses: u64,
        /// Release jitter of the control task, microseconds.
        pub jitter_max_us: u32,
        pub jitter_mean_us: u32,
        /// Volume delivered, microlitres.
        pub dose_ul: u64,
        /// Measured flow, hundredths of a mL/h.
        pub rate_x100: i32,
        pub state: PumpState,
        /// Supervisor alarms raised (deviation, over-rate, stall).
        pub alarms: u32,
        /// Occlusions detected.
        pub occlusions: u32,
        /// Therapy requests accepted and rejected since the RTOS started.
        pub requests_accepted: u32,
        pub requests_rejected: u32,
        /// The last request judged: its id and the answer's code
        /// (`request::Answer`; 0 before the first).
        pub last_request_id: u32,
        pub last_answer: u32,
        /// The rate the therapy is set to, hundredths of a mL/h.
        pub set_rate_x100: i32,
        /// Mailbox slots overwritten (or claimed to be) before they were read.
        pub requests_skipped: u32,
    }

    /// Payload words of this version.
    pub const WORDS: usize = 22;

    /// Outside the record, the page's last words keep the RTOS's replay
    /// floors: for each of `REPLAY_FLOOR_KEYS` request keys, the last
    /// sequence number it used up (low word, high word). The RTOS writes
    /// them when it uses a number up and reads them back when it restarts
    /// (the page survives a partition restart; Linux can read but never
    /// write them, and sequence numbers are no secret).
    pub const REPLAY_FLOOR_KEYS: usize = 4;
    pub const W_REPLAY_FLOOR: usize = super::PAGE_WORDS - 2 * REPLAY_FLOOR_KEYS;
    const _: () = assert!(W_REPLAY_FLOOR >= super::HEADER_WORDS + WORDS);

    fn lo(x: u64) -> u32 {
        x as u32
    }

    fn hi(x: u64) -> u32 {
        (x >> 32) as u32
    }

    fn join(lo: u32, hi: u32) -> u64 {
        u64::from(lo) | u64::from(hi) << 32
    }

    impl Telemetry {
        pub fn encode(&self) -> [u32; WORDS] {
            [
                lo(self.heartbeat),
                hi(self.heartbeat),
                lo(self.uptime_ms),
                hi(self.uptime_ms),
                lo(self.cycles),
                hi(self.cycles),
                lo(self.misses),
                hi(self.misses),
                self.jitter_max_us,
                self.jitter_mean_us,
                lo(self.dose_ul),
                hi(self.dose_ul),
                self.rate_x100 as u32,
                self.state as u32,
                self.alarms,
                self.occlusions,
                self.requests_accepted,
                self.requests_rejected,
                self.last_request_id,
                self.last_answer,
                self.set_rate_x100 as u32,
                self.requests_skipped,
            ]
        }

        pub fn decode(w: &[u32; WORDS]) -> Self {
            Self {
                heartbeat: join(w[0], w[1]),
                uptime_ms: join(w[2], w[3]),
                cycles: join(w[4], w[5]),
                misses: join(w[6], w[7]),
                jitter_max_us: w[8],
                jitter_mean_us: w[9],
                dose_ul: join(w[10], w[11]),
                rate_x100: w[12] as i32,
                state: PumpState::from_word(w[13]),
                alarms: w[14],
                occlusions: w[15],
                requests_accepted: w[16],
                requests_rejected: w[17],
                last_request_id: w[18],
                last_answer: w[19],
                set_rate_x100: w[20] as i32,
                requests_skipped: w[21],
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::telemetry::{PumpState, Telemetry, MAGIC, VERSION, WORDS};
    use super::*;
    use core::cell::Cell;

    struct Page([u32; PAGE_WORDS]);

    impl Words for Page {
        fn load(&self, word: usize) -> u32 {
            self.0[word]
        }
        fn store(&mut self, word: usize, value: u32) {
            self.0[word] = value;
        }
    }

    fn sample() -> Telemetry {
        Telemetry {
            heartbeat: 0x1_0000_0002,
            uptime_ms: 123_456_789_012,
            cycles: 3,
            misses: u64::MAX,
            jitter_max_us: 41,
            jitter_mean_us: 7,
            dose_ul: 1 << 40,
            rate_x100: -5,
            state: PumpState::OcclusionAlarm,
            alarms: 2,
            occlusions: 1,
            requests_accepted: 3,
            requests_rejected: 0xffff_0001,
            last_request_id: 9,
            last_answer: 5,
            set_rate_x100: -650,
            requests_skipped: 17,
        }
    }

    #[test]
    fn telemetry_round_trips() {
        let t = sample();
        assert_eq!(Telemetry::decode(&t.encode()), t);
        assert_eq!(
            Telemetry::decode(&Telemetry::default().encode()),
            Telemetry::default()
        );
    }

    #[test]
    fn unknown_pump_states_decode_as_unknown() {
        let mut w = sample().encode();
        w[13] = 7;
        assert_eq!(Telemetry::decode(&w).state, PumpState::Unknown);
        for s in [
            PumpState::Infusing,
            PumpState::OcclusionAlarm,
            PumpState::Stopped,
            PumpState::Paused,
        ] {
            assert_eq!(PumpState::from_word(s as u32), s);
        }
    }

    #[test]
    fn a_published_record_reads_back() {
        let mut p = Page([0; PAGE_WORDS]);
        let mut out = [0; WORDS];
        assert_eq!(
            read(&p, MAGIC, VERSION, &mut out, 3),
            Err(ReadError::NoRecord)
        );
        let mut w = Writer::attach(&p, MAGIC, VERSION);
        w.publish(&mut p, &sample().encode());
        let s = read(&p, MAGIC, VERSION, &mut out, 3).unwrap();
        assert_eq!(s, 2);
        assert_eq!(Telemetry::decode(&out), sample());
        w.publish(&mut p, &Telemetry::default().encode());
        assert_eq!(read(&p, MAGIC, VERSION, &mut out, 3), Ok(4));
        assert_eq!(w.seq(), 4);
    }

    #[test]
    fn a_restarted_writer_continues_the_sequence() {
        let mut p = Page([0; PAGE_WORDS]);
        let mut w = Writer::attach(&p, MAGIC, VERSION);
        w.publish(&mut p, &[1; WORDS]);
        // Stopped mid-update: the sequence is left odd.
        p.0[W_SEQ] = 5;
        let mut out = [0; WORDS];
        assert_eq!(read(&p, MAGIC, VERSION, &mut out, 4), Err(ReadError::Busy));
        let mut w = Writer::attach(&p, MAGIC, VERSION);
        w.publish(&mut p, &[2; WORDS]);
        assert_eq!(read(&p, MAGIC, VERSION, &mut out, 1), Ok(6));
        assert_eq!(out, [2; WORDS]);
    }

    #[test]
    fn header_is_judged_on_a_stable_copy() {
        let mut p = Page([0; PAGE_WORDS]);
        let mut out = [0; WORDS];
        Writer::attach(&p, MAGIC, VERSION | 3).publish(&mut p, &[0; WORDS + 2]);
        // Another minor version, longer payload: fine.
        assert!(read(&p, MAGIC, VERSION, &mut out, 1).is_ok());
        Writer::attach(&p, MAGIC, 2 << 16).publish(&mut p, &[0; WORDS]);
        assert_eq!(
            read(&p, MAGIC, VERSION, &mut out, 1),
            Err(ReadError::Version(2 << 16))
        );
        Writer::attach(&p, MAGIC, VERSION).publish(&mut p, &[0; WORDS - 1]);
        assert_eq!(
            read(&p, MAGIC, VERSION, &mut out, 1),
            Err(ReadError::Length(WORDS as u32 - 1))
        );
        // A length word beyond the page (a writer bug or a hostile writer).
        p.0[W_LEN] = u32::MAX;
        assert_eq!(
            read(&p, MAGIC, VERSION, &mut out, 1),
            Err(ReadError::Length(u32::MAX))
        );
        let mut huge = [0; PAGE_WORDS];
        assert!(matches!(
            read(&p, MAGIC, VERSION, &mut huge, 1),
            Err(ReadError::Length(_))
        ));
        // The writer cuts an oversized payload to the page.
        let mut w = Writer::attach(&p, MAGIC, VERSION);
        w.publish(&mut p, &[9; PAGE_WORDS]);
        assert_eq!(p.0[W_LEN] as usize, PAGE_WORDS - HEADER_WORDS);
        assert_eq!(p.0[PAGE_WORDS - 1], 9);
    }

    /// A page whose writer starts an update while the reader is copying:
    /// the reader must drop that copy and take the next stable one.
    struct Racing {
        page: core::cell::RefCell<Page>,
        writer: core::cell::RefCell<Writer>,
        /// Updates still to start mid-copy.
        races: Cell<u32>,
        /// Payload word whose load starts one.
        at: usize,
        value: Cell<u32>,
    }

    impl Words for Racing {
        fn load(&self, word: usize) -> u32 {
            let v = self.page.borrow().0[word];
            if word == HEADER_WORDS + self.at && self.races.get() > 0 {
                self.races.set(self.races.get() - 1);
                self.value.set(self.value.get() + 1);
                let payload = [self.value.get(); WORDS];
                let mut page = self.page.borrow_mut();
                self.writer.borrow_mut().publish(&mut *page, &payload);
            }
            v
        }
        fn store(&mut self, word: usize, value: u32) {
            self.page.get_mut().0[word] = value;
        }
    }

    #[test]
    fn a_torn_copy_is_never_returned() {
        for at in [0, WORDS / 2, WORDS - 1] {
            for races in 0..4 {
                let mut page = Page([0; PAGE_WORDS]);
                let mut writer = Writer::attach(&page, MAGIC, VERSION);
                writer.publish(&mut page, &[0; WORDS]);
                let r = Racing {
                    page: core::cell::RefCell::new(page),
                    writer: core::cell::RefCell::new(writer),
                    races: Cell::new(races),
                    at,
                    value: Cell::new(0),
                };
                let mut out = [0xdead; WORDS];
                let got = read(&r, MAGIC, VERSION, &mut out, 3);
                if races < 3 {
                    // Every word of the copy is from the same record.
                    assert_eq!(got, Ok(2 + 2 * races), "at {at} races {races}");
                    assert_eq!(out, [races; WORDS], "at {at} races {races}");
                } else {
                    assert_eq!(got, Err(ReadError::Busy), "at {at} races {races}");
                }
            }
        }
    }

    #[test]
    fn names_pack_into_two_registers() {
        assert_eq!(pack_name("a"), Some([0x61, 0]));
        assert_eq!(
            pack_name("telemetry"),
            Some([u64::from_le_bytes(*b"telemetr"), u64::from(b'y')])
        );
        assert!(pack_name("0123456789abcdef").is_some());
        assert_eq!(pack_name("0123456789abcdefg"), None);
        assert_eq!(pack_name(""), None);
        assert_eq!(pack_name("a\0b"), None);
    }
}

/// Therapy requests (channel `requests`, Linux → RTOS; docs/channels.md,
/// "Requests"): fixed-size slots, each a request body signed with ed25519
/// by a key the RTOS holds from its own signed image. Linux only carries
/// the bytes. This module is the framing alone: what a slot holds and
/// what is signed. Judging a request (signature, replay, content, limits)
/// is the RTOS's (`septum_rtos::requests`), in that order.
pub mod request {
    /// `"SPRQ"` little-endian.
    pub const MAGIC: u32 = u32::from_le_bytes(*b"SPRQ");
    /// Major version in the high half; a slot of another major is refused.
    pub const VERSION: u32 = 1 << 16;
    /// Bytes of one slot.
    pub const SLOT: usize = 128;
    /// Bytes of the signed body, at the start of the slot.
    pub const BODY: usize = 48;
    /// The ed25519 signature, after the body.
    pub const SIG: usize = 64;
    /// What is signed: this prefix, then the body (so that a signature made
    /// for anything else never verifies as a request).
    pub const DOMAIN: &[u8; 26] = b"septum-therapy-request-v1\0";
    /// `DOMAIN` and the body.
    pub const MESSAGE: usize = DOMAIN.len() + BODY;

    /// Command codes.
    pub const SET_RATE: u32 = 1;
    pub const PAUSE: u32 = 2;
    pub const RESUME: u32 = 3;
    pub const ACK_ALARM: u32 = 4;

    /// A request's fields as the slot holds them (nothing judged yet but
    /// the framing).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Request {
        /// Index of the signing key in the RTOS's table.
        pub key_id: u32,
        /// Chosen by the sender; the answer names it.
        pub request_id: u32,
        /// Strictly increasing per key: a slot with a sequence number not
        /// above the last accepted one is a replay.
        pub seq: u64,
        pub command: u32,
        /// SET_RATE: the rate in hundredths of a mL/h; otherwise 0.
        pub arg: i32,
    }

    /// Why a slot is not a request at all.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum FrameError {
        Magic,
        Version,
        /// A reserved byte is not zero.
        Reserved,
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&b[at..at + 4]);
        u32::from_le_bytes(w)
    }

    impl Request {
        /// The signed body: magic, version, key, request id, sequence,
        /// command, argument, 16 reserved zero bytes.
        pub fn body(&self) -> [u8; BODY] {
            let mut b = [0u8; BODY];
            b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
            b[4..8].copy_from_slice(&VERSION.to_le_bytes());
            b[8..12].copy_from_slice(&self.key_id.to_le_bytes());
            b[12..16].copy_from_slice(&self.request_id.to_le_bytes());
            b[16..24].copy_from_slice(&self.seq.to_le_bytes());
            b[24..28].copy_from_slice(&self.command.to_le_bytes());
            b[28..32].copy_from_slice(&self.arg.to_le_bytes());
            b
        }

        /// The bytes the signature covers.
        pub fn message(&self) -> [u8; MESSAGE] {
            message(&self.body())
        }

        /// A whole slot: the body, the signature, 16 reserved zero bytes.
        pub fn slot(&self, sig: &[u8; SIG]) -> [u8; SLOT] {
            let mut s = [0u8; SLOT];
            s[..BODY].copy_from_slice(&self.body());
            s[BODY..BODY + SIG].copy_from_slice(sig);
            s
        }
    }

    /// `DOMAIN` followed by `body`.
    pub fn message(body: &[u8; BODY]) -> [u8; MESSAGE] {
        let mut m = [0u8; MESSAGE];
        m[..DOMAIN.len()].copy_from_slice(DOMAIN);
        m[DOMAIN.len()..].copy_from_slice(body);
        m
    }

    /// The framing of a slot: its request, its signed body and signature.
    /// Checks only magic, major version and the reserved bytes (what is
    /// needed to know which key to verify with); the caller verifies the
    /// signature over [`message`] of the body before anything else.
    pub fn frame(slot: &[u8; SLOT]) -> Result<(Request, [u8; BODY], [u8; SIG]), FrameError> {
        if u32_at(slot, 0) != MAGIC {
            return Err(FrameError::Magic);
        }
        if u32_at(slot, 4) >> 16 != VERSION >> 16 {
            return Err(FrameError::Version);
        }
        if slot[32..BODY]
            .iter()
            .chain(&slot[BODY + SIG..])
            .any(|&b| b != 0)
        {
            return Err(FrameError::Reserved);
        }
        let mut body = [0u8; BODY];
        body.copy_from_slice(&slot[..BODY]);
        let mut sig = [0u8; SIG];
        sig.copy_from_slice(&slot[BODY..BODY + SIG]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&slot[16..24]);
        let r = Request {
            key_id: u32_at(slot, 8),
            request_id: u32_at(slot, 12),
            seq: u64::from_le_bytes(seq),
            command: u32_at(slot, 24),
            arg: u32_at(slot, 28) as i32,
        };
        Ok((r, body, sig))
    }

    /// The RTOS's answer to one request, as the telemetry record carries
    /// it. Codes are stable.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Answer {
        Accepted = 1,
        /// Not a request (magic, version, reserved bytes).
        Framing = 2,
        /// `key_id` names no key the RTOS holds.
        UnknownKey = 3,
        /// The signature does not verify.
        BadSignature = 4,
        /// `seq` is not above the last one of that key.
        Replay = 5,
        /// A command the RTOS does not know, or an argument where there is
        /// none.
        Malformed = 6,
        /// Outside the pump's hard clinical limits.
        OutOfLimits = 7,
        /// A rate change larger than one request may make.
        TooLargeAStep = 8,
        /// Too soon after the last accepted change.
        TooSoon = 9,
        /// Nothing to do in the pump's state (resume when not paused, an
        /// acknowledgement with no alarm).
        NotApplicable = 10,
    }

    impl Answer {
        pub const ALL: [Answer; 10] = [
            Answer::Accepted,
            Answer::Framing,
            Answer::UnknownKey,
            Answer::BadSignature,
            Answer::Replay,
            Answer::Malformed,
            Answer::OutOfLimits,
            Answer::TooLargeAStep,
            Answer::TooSoon,
            Answer::NotApplicable,
        ];

        pub fn from_code(c: u32) -> Option<Answer> {
            Self::ALL.into_iter().find(|a| *a as u32 == c)
        }

        pub fn name(self) -> &'static str {
            match self {
                Answer::Accepted => "accepted",
                Answer::Framing => "framing",
                Answer::UnknownKey => "unknown-key",
                Answer::BadSignature => "bad-signature",
                Answer::Replay => "replay",
                Answer::Malformed => "malformed",
                Answer::OutOfLimits => "out-of-limits",
                Answer::TooLargeAStep => "too-large-a-step",
                Answer::TooSoon => "too-soon",
                Answer::NotApplicable => "not-applicable",
            }
        }
    }

    /// The mailbox: the `requests` channel's first 128 bytes are a header
    /// (magic `"SPMB"`, version, `head`: slots written so far, wrapping),
    /// then slot `i % SLOTS` at byte `SLOT * (1 + i % SLOTS)`.
    pub const MAILBOX_MAGIC: u32 = u32::from_le_bytes(*b"SPMB");
    /// Word index of `head` in the header.
    pub const W_HEAD: usize = 2;

    /// Slots in a mailbox of `size` bytes.
    pub const fn slots(size: usize) -> usize {
        (size / SLOT).saturating_sub(1)
    }

    /// The first word of slot `n` (of a mailbox with more than `n` slots).
    pub const fn slot_word(n: usize) -> usize {
        SLOT / 4 * (1 + n)
    }

    /// The reader's place in the mailbox. `head` is the writer's (Linux's)
    /// and believed in nothing: a head that runs more than a ring ahead, or
    /// backwards, only makes the reader skip to the newest ring's worth
    /// (counted), and every slot it then reads is judged like any other.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Cursor {
        tail: u32,
    }

    /// What to do next with the mailbox.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Next {
        /// The slot to copy out and judge.
        pub slot: usize,
        /// Slots the writer overwrote (or claimed to) before they were read.
        pub skipped: u32,
    }

    impl Cursor {
        /// Starts at the writer's current head: what was written before the
        /// reader started (a previous instance's backlog) is not acted on.
        pub fn at(head: u32) -> Self {
            Self { tail: head }
        }

        /// The next slot to read for a mailbox of `slots` slots whose writer
        /// says it has written `head`, or `None` when there is nothing new
        /// (or `slots` is 0 or above 2^32: no mailbox [`slots`] makes).
        pub fn next(&mut self, head: u32, slots: usize) -> Option<Next> {
            let n = u32::try_from(slots).ok().filter(|&n| n > 0)?;
            let ahead = head.wrapping_sub(self.tail);
            if ahead == 0 {
                return None;
            }
            let mut skipped = 0;
            if ahead > n {
                skipped = ahead - n;
                self.tail = head.wrapping_sub(n);
            }
            let slot = (self.tail % n) as usize;
            self.tail = self.tail.wrapping_add(1);
            Some(Next { slot, skipped })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_cursor_follows_an_honest_writer() {
            let mut c = Cursor::at(5);
            assert_eq!(c.next(5, 4), None);
            assert_eq!(
                c.next(7, 4),
                Some(Next {
                    slot: 1,
                    skipped: 0
                })
            );
            assert_eq!(
                c.next(7, 4),
                Some(Next {
                    slot: 2,
                    skipped: 0
                })
            );
            assert_eq!(c.next(7, 4), None);
            // Across the wrap of the 32-bit counter.
            let mut c = Cursor::at(u32::MAX);
            assert_eq!(
                c.next(1, 4),
                Some(Next {
                    slot: 3,
                    skipped: 0
                })
            );
            assert_eq!(
                c.next(1, 4),
                Some(Next {
                    slot: 0,
                    skipped: 0
                })
            );
            assert_eq!(c.next(1, 4), None);
        }

        #[test]
        fn the_cursor_bounds_a_hostile_writer() {
            // A ring's worth and more ahead: the oldest are skipped.
            let mut c = Cursor::at(0);
            assert_eq!(
                c.next(10, 4),
                Some(Next {
                    slot: 2,
                    skipped: 6
                })
            );
            for want in [3, 0, 1] {
                assert_eq!(c.next(10, 4).map(|n| n.slot), Some(want));
            }
            assert_eq!(c.next(10, 4), None);
            // Backwards is "far ahead": at most one ring, then nothing.
            let mut c = Cursor::at(100);
            let mut reads = 0;
            while c.next(50, 4).is_some() {
                reads += 1;
            }
            assert_eq!(reads, 4);
            // No slots, or more than a 32-bit head can address: nothing.
            assert_eq!(Cursor::at(0).next(3, 0), None);
            assert_eq!(Cursor::at(0).next(3, usize::MAX), None);
        }

        fn sample() -> Request {
            Request {
                key_id: 1,
                request_id: 77,
                seq: 0x1_0000_0005,
                command: SET_RATE,
                arg: -450,
            }
        }

        #[test]
        fn a_slot_frames_back_to_its_request() {
            let sig = [0xa5; SIG];
            let slot = sample().slot(&sig);
            let (r, body, s) = frame(&slot).unwrap();
            assert_eq!(r, sample());
            assert_eq!(body, sample().body());
            assert_eq!(s, sig);
            assert_eq!(&message(&body)[..DOMAIN.len()], DOMAIN);
            assert_eq!(sample().message(), message(&body));
            assert_eq!(BODY + SIG + 16, SLOT);
        }

        #[test]
        fn framing_refuses_wrong_magic_version_and_reserved_bytes() {
            let good = sample().slot(&[1; SIG]);
            let mut s = good;
            s[0] ^= 1;
            assert_eq!(frame(&s), Err(FrameError::Magic));
            let mut s = good;
            s[6] = 2;
            assert_eq!(frame(&s), Err(FrameError::Version));
            let mut s = good;
            s[4] = 9; // another minor version is fine
            assert!(frame(&s).is_ok());
            for at in (32..BODY).chain(BODY + SIG..SLOT) {
                let mut s = good;
                s[at] = 1;
                assert_eq!(frame(&s), Err(FrameError::Reserved), "byte {at}");
            }
        }

        #[test]
        fn answer_codes_round_trip_and_are_distinct() {
            for (i, a) in Answer::ALL.iter().enumerate() {
                assert_eq!(Answer::from_code(*a as u32), Some(*a));
                assert!(!Answer::ALL[..i].iter().any(|b| b.name() == a.name()));
            }
            assert_eq!(Answer::from_code(0), None);
            assert_eq!(Answer::from_code(11), None);
        }

        #[test]
        fn mailbox_slots() {
            assert_eq!(slots(4096), 31);
            assert_eq!(slots(128), 0);
            assert_eq!(slots(0), 0);
        }
    }
}
