//! The formats of `septum-telemetry`, the connectivity partition's reader
//! of the RTOS's telemetry channel (docs/channels.md): how it finds the
//! channel in Linux's device tree and how it prints a record. Everything
//! that touches Linux (system calls, `/dev/mem`) is in `main.rs`; this part
//! builds and is tested on the host.

#![no_std]
#![forbid(unsafe_code)]

use core::fmt::{self, Write};

use septum_abi::channel::request::Answer;
use septum_abi::channel::telemetry::Telemetry;
use septum_abi::channel::ReadError;

/// Where Linux shows its device tree's `/reserved-memory` node.
pub const RESERVED_MEMORY: &str = "/proc/device-tree/reserved-memory";
/// What a channel's node says it is.
pub const COMPATIBLE: &[u8] = b"septum,channel\0";
/// The reader's role, as the node says it.
pub const ROLE_READER: &[u8] = b"reader\0";
/// The writer's role (the `requests` mailbox is Linux's to write).
pub const ROLE_WRITER: &[u8] = b"writer\0";

/// A `reg` of one (address, size) pair under `/reserved-memory`, which
/// Septum's trees give two cells each: 16 bytes, big-endian.
pub fn parse_reg(reg: &[u8]) -> Option<(u64, u64)> {
    if reg.len() != 16 {
        return None;
    }
    let mut a = [0u8; 8];
    let mut s = [0u8; 8];
    a.copy_from_slice(&reg[..8]);
    s.copy_from_slice(&reg[8..]);
    Some((u64::from_be_bytes(a), u64::from_be_bytes(s)))
}

/// Whether directory entry `entry` is the node of channel `name`
/// (`<name>@<unit address>`).
pub fn is_channel_node(entry: &[u8], name: &[u8]) -> bool {
    entry.len() > name.len() + 1 && entry.starts_with(name) && entry[name.len()] == b'@'
}

/// How a read ended, for the JSON `error` field and the exit status.
pub fn error_name(e: ReadError) -> &'static str {
    match e {
        ReadError::NoRecord => "no-record",
        ReadError::Version(_) => "version",
        ReadError::Length(_) => "length",
        ReadError::Busy => "busy",
    }
}

/// `x100` as a decimal with two places (`-0.05`, `5.00`).
struct Hundredths(i32);

impl fmt::Display for Hundredths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = i64::from(self.0);
        let sign = if v < 0 { "-" } else { "" };
        let a = v.abs();
        write!(f, "{sign}{}.{:02}", a / 100, a % 100)
    }
}

/// The name of an answer code (`none` before the first request).
pub fn answer_name(code: u32) -> &'static str {
    match Answer::from_code(code) {
        Some(a) => a.name(),
        None if code == 0 => "none",
        None => "unknown",
    }
}

/// One record as a JSON object on one line (the `/cgi-bin/telemetry`
/// answer; docs/channels.md lists the fields).
pub fn json(out: &mut impl Write, seq: u32, t: &Telemetry) -> fmt::Result {
    write!(
        out,
        "{{\"seq\":{seq},\"heartbeat\":{},\"uptime_ms\":{},\"cycles\":{},\"misses\":{},\"jitter_max_us\":{},\"jitter_mean_us\":{},\"dose_ul\":{},\"rate_ml_h\":{},\"state\":\"{}\",\"alarms\":{},\"occlusions\":{},",
        t.heartbeat,
        t.uptime_ms,
        t.cycles,
        t.misses,
        t.jitter_max_us,
        t.jitter_mean_us,
        t.dose_ul,
        Hundredths(t.rate_x100),
        t.state.name(),
        t.alarms,
        t.occlusions
    )?;
    write!(
        out,
        "\"set_rate_ml_h\":{},\"requests_accepted\":{},\"requests_rejected\":{},\"requests_skipped\":{},\"last_request_id\":{},\"last_answer\":\"{}\"}}",
        Hundredths(t.set_rate_x100),
        t.requests_accepted,
        t.requests_rejected,
        t.requests_skipped,
        t.last_request_id,
        answer_name(t.last_answer)
    )
}

/// A failure as a JSON object: `{"error":"busy"}`.
pub fn json_error(out: &mut impl Write, what: &str) -> fmt::Result {
    write!(out, "{{\"error\":\"{what}\"}}")
}

/// One record as lines of text, for the plain status page.
pub fn text(out: &mut impl Write, seq: u32, t: &Telemetry) -> fmt::Result {
    writeln!(
        out,
        "pump: {}, set to {} mL/h, measured {} mL/h, {} uL delivered, {} alarms, {} occlusions",
        t.state.name(),
        Hundredths(t.set_rate_x100),
        Hundredths(t.rate_x100),
        t.dose_ul,
        t.alarms,
        t.occlusions
    )?;
    writeln!(
        out,
        "rtos: heartbeat {}, up {}.{:03} s, {} control periods, {} deadline misses, jitter max {} us mean {} us (record {seq})",
        t.heartbeat,
        t.uptime_ms / 1000,
        t.uptime_ms % 1000,
        t.cycles,
        t.misses,
        t.jitter_max_us,
        t.jitter_mean_us
    )?;
    writeln!(
        out,
        "requests: {} accepted, {} rejected, {} skipped; last: request {} {}",
        t.requests_accepted,
        t.requests_rejected,
        t.requests_skipped,
        t.last_request_id,
        answer_name(t.last_answer)
    )
}

/// The Linux GPIO character device (uapi `linux/gpio.h`, v2), through which
/// the reader waits for its channel's doorbell: the hypervisor presents the
/// doorbell as line 0 of an emulated PL061, named `septum-<channel>`.
pub mod gpio {
    /// `_IOWR(0xB4, nr, size)`.
    pub const fn iowr(nr: u64, size: usize) -> u64 {
        (3 << 30) | ((size as u64) << 16) | (0xB4 << 8) | nr
    }
    /// `struct gpio_v2_line_info`, and its ioctl.
    pub const LINEINFO_SIZE: usize = 256;
    pub const GET_LINEINFO: u64 = iowr(0x05, LINEINFO_SIZE);
    /// `struct gpio_v2_line_request`, and its ioctl.
    pub const REQUEST_SIZE: usize = 592;
    pub const GET_LINE: u64 = iowr(0x07, REQUEST_SIZE);
    /// `struct gpio_v2_line_event`.
    pub const EVENT_SIZE: usize = 48;
    const FLAG_INPUT: u64 = 1 << 2;
    const FLAG_EDGE_RISING: u64 = 1 << 4;
    const INFO_OFFSET: usize = 64;
    const REQ_CONSUMER: usize = 256;
    const REQ_FLAGS: usize = 288;
    const REQ_NUM_LINES: usize = 560;
    const REQ_FD: usize = 588;

    /// A GET_LINEINFO query for line `offset`.
    pub fn lineinfo_query(offset: u32) -> [u8; LINEINFO_SIZE] {
        let mut b = [0; LINEINFO_SIZE];
        b[INFO_OFFSET..INFO_OFFSET + 4].copy_from_slice(&offset.to_ne_bytes());
        b
    }

    /// The line's name from a GET_LINEINFO answer (up to its NUL).
    pub fn line_name(info: &[u8; LINEINFO_SIZE]) -> &[u8] {
        let n = &info[..32];
        &n[..n.iter().position(|&b| b == 0).unwrap_or(32)]
    }

    /// A GET_LINE request: line `offset` as an input reporting rising edges.
    pub fn edge_request(offset: u32, consumer: &[u8]) -> [u8; REQUEST_SIZE] {
        let mut b = [0; REQUEST_SIZE];
        b[..4].copy_from_slice(&offset.to_ne_bytes());
        let c = &consumer[..consumer.len().min(31)];
        b[REQ_CONSUMER..REQ_CONSUMER + c.len()].copy_from_slice(c);
        b[REQ_FLAGS..REQ_FLAGS + 8].copy_from_slice(&(FLAG_INPUT | FLAG_EDGE_RISING).to_ne_bytes());
        b[REQ_NUM_LINES..REQ_NUM_LINES + 4].copy_from_slice(&1u32.to_ne_bytes());
        b
    }

    /// The line's file descriptor, which GET_LINE fills in.
    pub fn request_fd(req: &[u8; REQUEST_SIZE]) -> i32 {
        let mut f = [0; 4];
        f.copy_from_slice(&req[REQ_FD..REQ_FD + 4]);
        i32::from_ne_bytes(f)
    }
}

/// The output buffer's size: one JSON record and its text form.
pub const OUT_MAX: usize = 1024;

/// A `fmt::Write` into a fixed buffer; what does not fit is dropped.
#[derive(Debug)]
pub struct Buf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Buf<N> {
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    pub fn clear(&mut self) {
        self.len = 0;
    }
    pub fn push(&mut self, b: &[u8]) {
        let n = b.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
    }
}

impl<const N: usize> Default for Buf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Write for Buf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use septum_abi::channel::telemetry::PumpState;

    fn sample() -> Telemetry {
        Telemetry {
            heartbeat: 12,
            uptime_ms: 12_345,
            cycles: 12_000,
            misses: 0,
            jitter_max_us: 41,
            jitter_mean_us: 7,
            dose_ul: 17,
            rate_x100: 500,
            state: PumpState::Infusing,
            alarms: 0,
            occlusions: 1,
            requests_accepted: 2,
            requests_rejected: 3,
            last_request_id: 9,
            last_answer: 5,
            set_rate_x100: 550,
            requests_skipped: 0,
        }
    }

    /// REQ-CHN-3: the JSON answer carries every field of the record.
    #[test]
    fn json_has_every_field() {
        let mut b = Buf::<512>::new();
        json(&mut b, 24, &sample()).unwrap();
        assert_eq!(
            core::str::from_utf8(b.as_bytes()).unwrap(),
            "{\"seq\":24,\"heartbeat\":12,\"uptime_ms\":12345,\"cycles\":12000,\"misses\":0,\"jitter_max_us\":41,\"jitter_mean_us\":7,\"dose_ul\":17,\"rate_ml_h\":5.00,\"state\":\"infusing\",\"alarms\":0,\"occlusions\":1,\"set_rate_ml_h\":5.50,\"requests_accepted\":2,\"requests_rejected\":3,\"requests_skipped\":0,\"last_request_id\":9,\"last_answer\":\"replay\"}"
        );
        let mut b = Buf::<64>::new();
        json_error(&mut b, error_name(ReadError::Busy)).unwrap();
        assert_eq!(b.as_bytes(), b"{\"error\":\"busy\"}");
    }

    #[test]
    fn rates_print_with_two_places() {
        let mut b = Buf::<32>::new();
        for (v, s) in [(500, "5.00"), (5, "0.05"), (-5, "-0.05"), (-1234, "-12.34")] {
            b.len = 0;
            write!(b, "{}", Hundredths(v)).unwrap();
            assert_eq!(b.as_bytes(), s.as_bytes());
        }
        b.len = 0;
        write!(b, "{}", Hundredths(i32::MIN)).unwrap();
        assert_eq!(b.as_bytes(), b"-21474836.48");
    }

    #[test]
    fn the_worst_record_fits_the_output_buffer() {
        let t = Telemetry {
            heartbeat: u64::MAX,
            uptime_ms: u64::MAX,
            cycles: u64::MAX,
            misses: u64::MAX,
            jitter_max_us: u32::MAX,
            jitter_mean_us: u32::MAX,
            dose_ul: u64::MAX,
            rate_x100: i32::MIN,
            state: PumpState::OcclusionAlarm,
            alarms: u32::MAX,
            occlusions: u32::MAX,
            requests_accepted: u32::MAX,
            requests_rejected: u32::MAX,
            last_request_id: u32::MAX,
            last_answer: u32::MAX,
            set_rate_x100: i32::MIN,
            requests_skipped: u32::MAX,
        };
        let mut b = Buf::<{ crate::OUT_MAX }>::new();
        json(&mut b, u32::MAX, &t).unwrap();
        text(&mut b, u32::MAX, &t).unwrap();
        assert!(b.as_bytes().len() < OUT_MAX);
    }

    /// The ioctl numbers the kernel's uapi header gives (GPIO_V2_GET_LINEINFO_IOCTL,
    /// GPIO_V2_GET_LINE_IOCTL), and the request's layout.
    #[test]
    fn gpio_ioctls_and_layout() {
        assert_eq!(gpio::GET_LINEINFO, 0xc100_b405);
        assert_eq!(gpio::GET_LINE, 0xc250_b407);
        let r = gpio::edge_request(0, b"septum-telemetry");
        assert_eq!(&r[256..272], b"septum-telemetry");
        assert_eq!(r[288], 0x14);
        assert_eq!(r[560], 1);
        assert_eq!(gpio::request_fd(&r), 0);
        let mut info = gpio::lineinfo_query(3);
        assert_eq!(info[64], 3);
        info[..16].copy_from_slice(b"septum-telemetry");
        assert_eq!(gpio::line_name(&info), b"septum-telemetry");
    }

    #[test]
    fn reg_and_node_names() {
        let mut reg = [0u8; 16];
        reg[..8].copy_from_slice(&0x4840_0000u64.to_be_bytes());
        reg[8..].copy_from_slice(&0x1000u64.to_be_bytes());
        assert_eq!(parse_reg(&reg), Some((0x4840_0000, 0x1000)));
        assert_eq!(parse_reg(&reg[..8]), None);
        assert!(is_channel_node(b"telemetry@48400000", b"telemetry"));
        assert!(!is_channel_node(b"telemetry@", b"telemetry"));
        assert!(!is_channel_node(b"telemetryx@48400000", b"telemetry"));
        assert!(!is_channel_node(b"tele@1", b"telemetry"));
    }
}
