//! REQ-CHN-8, REQ-CHN-9: the doorbell's emulated PL061 under arbitrary guest
//! accesses and rings, and its token bucket under arbitrary clocks.
//!
//! Checks:
//! - no panic; an access is refused exactly for a width other than 1 or 4,
//!   a misaligned offset or one outside the 4 KiB frame, and a refused
//!   access changes nothing;
//! - the interrupt output is exactly `RIS & IE`, MIS reads that, and the
//!   identification registers always read as a PL061;
//! - a ring on an edge-sensitive input line is always seen in RIS until
//!   the guest clears it (a doorbell is never lost);
//! - the bucket never lets more than `burst + rate * elapsed` rings through.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use septum_core::doorbell::{
    Bucket, Pl061, GPIODIR, GPIOIE, GPIOIS, GPIOMIS, GPIORIS, ID_BASE, LINE,
};

#[derive(Debug, Arbitrary)]
enum Op {
    Access {
        offset: u16,
        width: u8,
        write: Option<u32>,
    },
    Ring,
    Take {
        advance: u32,
    },
}

#[derive(Debug, Arbitrary)]
struct Input {
    rate: u16,
    burst: u8,
    ops: Vec<Op>,
}

const FREQ: u64 = 62_500_000;

fuzz_target!(|input: Input| {
    let rate = u32::from(input.rate % 1000) + 1;
    let burst = u32::from(input.burst % 16) + 1;
    let mut g = Pl061::new();
    let mut b = Bucket::new();
    let start = 1_000 * FREQ;
    let mut now = start;
    let mut taken = 0u64;
    for op in input.ops {
        match op {
            Op::Access {
                offset,
                width,
                write,
            } => {
                let off = u64::from(offset & 0x1fff);
                let width = [1u8, 2, 4, 8][(width % 4) as usize];
                let legal =
                    (width == 1 || width == 4) && off % u64::from(width) == 0 && off < 0x1000;
                let before = g;
                let r = match write {
                    Some(v) => g.write(off, width, v).map(|()| 0),
                    None => g.read(off, width),
                };
                assert_eq!(r.is_ok(), legal, "{off:#x}/{width}");
                if !legal {
                    assert_eq!(g, before);
                }
            }
            Op::Ring => {
                let edge_input =
                    g.read(GPIOIS, 1).unwrap() & 1 == 0 && g.read(GPIODIR, 1).unwrap() & 1 == 0;
                g.pulse(LINE);
                if edge_input {
                    assert_eq!(g.read(GPIORIS, 1).unwrap() & 1, 1);
                }
            }
            Op::Take { advance } => {
                now += u64::from(advance);
                taken += u64::from(b.take(now, FREQ, rate, burst));
                let allowed = u64::from(burst) + u64::from(rate) * (now - start) / FREQ;
                assert!(taken <= allowed, "{taken} > {allowed}");
            }
        }
        let ris = g.read(GPIORIS, 1).unwrap();
        let ie = g.read(GPIOIE, 1).unwrap();
        assert_eq!(g.read(GPIOMIS, 1).unwrap(), ris & ie);
        assert_eq!(g.asserted(), ris & ie != 0);
        assert_eq!(g.read(ID_BASE, 4).unwrap(), 0x61);
    }
});
