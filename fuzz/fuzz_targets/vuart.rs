//! REQ-FLT-2: the emulated PL011 under arbitrary guest register accesses.
//!
//! Checks:
//! - no panic; an access fails exactly for a width other than 1, 2, 4, an
//!   offset outside the 4 KiB frame or one not 4-byte aligned;
//! - every line handed out (by a DR write or `flush`) is at most
//!   `LINE_CAPACITY` bytes of printable ASCII: no control character
//!   (< 0x20, 0x7f) and nothing above 0x7e can reach the operator's
//!   terminal;
//! - the lines are exactly what a reference model of the line discipline
//!   produces (newline ends a line, CR is dropped, a full buffer is
//!   emitted, loopback mode outputs nothing);
//! - reads fit the access width and return what the model says (registers
//!   read back masked, FR always "TX empty", the PrimeCell IDs).
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use septum_core::vuart::{VUart, VuartError, FRAME_SIZE, LINE_CAPACITY};
use septum_fuzz::{Offset, Width};

/// The PL011's registers (start, bytes), to aim offsets at.
const UART_REGS: &[(u64, u64)] = &[(0x000, 0x50), (0xfe0, 0x20)];

#[derive(Debug, Arbitrary)]
enum Op {
    Read {
        offset: Offset,
        width: Width,
    },
    Write {
        offset: Offset,
        width: Width,
        value: u32,
    },
    /// Bytes written to DR one by one (the common case, cheap to reach).
    Text(Vec<u8>),
    Flush,
    Reset,
}

#[derive(Default)]
struct Model {
    line: Vec<u8>,
    regs: [u32; 0x50 / 4],
}

impl Model {
    fn new() -> Self {
        let mut m = Self::default();
        m.regs[0x30 / 4] = 0x300;
        m.regs[0x34 / 4] = 0x12;
        m
    }

    fn reg_mask(off: u64) -> Option<u32> {
        Some(match off {
            0x20 => 0xff,
            0x24 => 0xffff,
            0x28 => 0x3f,
            0x2c => 0xff,
            0x30 => 0xff87,
            0x34 => 0x3f,
            0x38 => 0x7ff,
            0x48 => 0x7,
            _ => return None,
        })
    }

    fn read(&self, off: u64) -> u32 {
        const IDS: [u32; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];
        match off {
            0x18 => 0x90,
            o if Self::reg_mask(o).is_some() => self.regs[(o / 4) as usize],
            o if o >= 0xfe0 => IDS[((o - 0xfe0) / 4) as usize],
            _ => 0,
        }
    }

    /// A DR write: the line it completes, if any.
    fn put(&mut self, b: u8) -> Option<Vec<u8>> {
        if self.regs[0x30 / 4] & (1 << 7) != 0 {
            return None;
        }
        match b {
            b'\r' => None,
            b'\n' => Some(std::mem::take(&mut self.line)),
            _ => {
                self.line.push(match b {
                    b' '..=b'~' => b,
                    b'\t' => b' ',
                    _ => b'.',
                });
                (self.line.len() == LINE_CAPACITY).then(|| std::mem::take(&mut self.line))
            }
        }
    }
}

fn check_line(line: &[u8]) {
    assert!(line.len() <= LINE_CAPACITY, "line of {} bytes", line.len());
    assert!(
        line.iter().all(|&b| (0x20..0x7f).contains(&b)),
        "unprintable byte in {line:x?}"
    );
}

fn expected_check(off: u64, width: u8) -> Result<(), VuartError> {
    if !matches!(width, 1 | 2 | 4) {
        Err(VuartError::BadWidth)
    } else if off >= FRAME_SIZE {
        Err(VuartError::OutOfRange)
    } else if !off.is_multiple_of(4) {
        Err(VuartError::Misaligned)
    } else {
        Ok(())
    }
}

fn write(u: &mut VUart, m: &mut Model, off: u64, width: u8, value: u32) {
    let want = expected_check(off, width);
    let got = u.write(off, width, value).map(|l| l.map(<[u8]>::to_vec));
    match (got, want) {
        (Err(g), Err(w)) => assert_eq!(g, w, "write {off:#x}/{width}"),
        (Ok(line), Ok(())) => {
            if let Some(l) = &line {
                check_line(l);
            }
            let want_line = if off == 0 {
                m.put(value as u8)
            } else {
                if let Some(mask) = Model::reg_mask(off) {
                    m.regs[(off / 4) as usize] = value & mask;
                }
                None
            };
            assert_eq!(line, want_line, "write {off:#x} = {value:#x}");
        }
        (g, w) => panic!("write {off:#x}/{width}: got {g:?}, want {w:?}"),
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut u = VUart::new();
    let mut m = Model::new();
    for op in ops {
        match op {
            Op::Read { offset, width } => {
                let (off, width) = (offset.get(FRAME_SIZE, UART_REGS), width.get());
                match (u.read(off, width), expected_check(off, width)) {
                    (Err(g), Err(w)) => assert_eq!(g, w, "read {off:#x}/{width}"),
                    (Ok(v), Ok(())) => {
                        let mask = match width {
                            1 => 0xff,
                            2 => 0xffff,
                            _ => u32::MAX,
                        };
                        assert_eq!(v, m.read(off) & mask, "read {off:#x}/{width}");
                    }
                    (g, w) => panic!("read {off:#x}/{width}: got {g:?}, want {w:?}"),
                }
            }
            Op::Write {
                offset,
                width,
                value,
            } => write(
                &mut u,
                &mut m,
                offset.get(FRAME_SIZE, UART_REGS),
                width.get(),
                value,
            ),
            Op::Text(bytes) => {
                for b in bytes {
                    write(&mut u, &mut m, 0, 1, u32::from(b));
                }
            }
            Op::Flush => {
                let got = u.flush().map(<[u8]>::to_vec);
                if let Some(l) = &got {
                    check_line(l);
                }
                let want = (!m.line.is_empty()).then(|| std::mem::take(&mut m.line));
                assert_eq!(got, want, "flush");
            }
            Op::Reset => {
                u.reset();
                m = Model::new();
            }
        }
    }
});
