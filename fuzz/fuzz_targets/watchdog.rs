//! REQ-FLT-2, REQ-REC-1: the emulated SBSA generic watchdog and the
//! heartbeat deadline under arbitrary guest accesses and time steps.
//!
//! Checks:
//! - no panic; an access is refused exactly for a width other than 4 (8
//!   only for WCV, aligned) and a refused access changes nothing;
//! - whatever the guest writes, the watchdog never fires later than the
//!   configured timeout after the last write that moves its deadline (WCS,
//!   WOR, WCV, WRR) or start: the guest can shorten it and keep it fed,
//!   never stretch one period or disable it beyond what WCS.EN = 0 does;
//! - `Expired` is reported at most once until the next refresh or start,
//!   and never before WS0 (the warning stage) was passed;
//! - W_IIDR reads the same in both frames; status bits read back as the
//!   model says;
//! - the heartbeat expires exactly when a pet is older than its timeout.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use septum_core::watchdog::{Heartbeat, SbsaGwdt, WdEvent, IIDR_VALUE, W_IIDR};

const TIMEOUT: u64 = 10_000;

#[derive(Debug, Arbitrary)]
enum Op {
    Control {
        offset: u16,
        width: u8,
        write: Option<u64>,
    },
    Refresh {
        offset: u16,
        width: u8,
        write: Option<u64>,
    },
    Advance(u16),
    Start,
    Pet,
}

fuzz_target!(|ops: Vec<Op>| {
    let mut w = SbsaGwdt::new(TIMEOUT);
    let mut h = Heartbeat::new(TIMEOUT);
    let mut now = 0u64;
    // Latest time the watchdog may fire, while it is enabled.
    let mut latest: Option<u64> = None;
    let mut expired_since_refresh = false;
    let mut last_pet: Option<u64> = None;
    for op in ops {
        let before = w;
        match op {
            Op::Control {
                offset,
                width,
                write,
            } => {
                let off = (offset & 0x1fff) as u64;
                let width = [1u8, 2, 4, 8][(width % 4) as usize];
                let legal = (width == 4 && off % 4 == 0) || (width == 8 && off == 0x010);
                let legal = legal && off < 0x1000;
                match write {
                    None => {
                        let r = w.read_control(off, width);
                        assert_eq!(r.is_ok(), legal, "read {off:#x}/{width}");
                        if off == W_IIDR && legal {
                            assert_eq!(r, Ok(IIDR_VALUE as u64));
                        }
                    }
                    Some(v) => {
                        let r = w.write_control(off, width, v, now);
                        assert_eq!(r.is_ok(), legal, "write {off:#x}/{width}");
                        // WCS, WOR and WCV writes all move the deadline
                        // (WCV is clamped to one WOR ahead).
                        if legal && matches!(off, 0x000 | 0x008 | 0x010 | 0x014) {
                            latest = (w.status() & 1 != 0).then_some(now + TIMEOUT);
                            expired_since_refresh = false;
                        }
                    }
                }
                if !legal {
                    assert_eq!(w, before, "a refused access changed the watchdog");
                }
            }
            Op::Refresh {
                offset,
                width,
                write,
            } => {
                let off = (offset & 0x1fff) as u64;
                let width = [1u8, 2, 4, 8][(width % 4) as usize];
                let legal = width == 4 && off % 4 == 0 && off < 0x1000;
                let r = match write {
                    None => w.read_refresh(off, width).map(|_| ()),
                    Some(v) => w.write_refresh(off, width, v, now),
                };
                assert_eq!(r.is_ok(), legal);
                if !legal {
                    assert_eq!(w, before);
                } else if write.is_some() && off == 0 {
                    latest = (w.status() & 1 != 0).then_some(now + TIMEOUT);
                    expired_since_refresh = false;
                }
            }
            Op::Advance(dt) => {
                now += dt as u64;
                let ev = w.advance(now);
                if ev == WdEvent::Expired {
                    assert!(!expired_since_refresh, "expired twice");
                    expired_since_refresh = true;
                    assert!(w.status() & 0b110 == 0b110, "expired without WS0 and WS1");
                }
                if let Some(l) = latest {
                    if w.status() & 1 != 0 && now >= l {
                        assert!(
                            expired_since_refresh || w.deadline().is_none(),
                            "not expired {} ticks after the timeout",
                            now - l
                        );
                    }
                }
                if let Some(d) = w.deadline() {
                    assert!(d <= now + TIMEOUT, "deadline beyond the timeout");
                }
                match (h.advance(now), last_pet) {
                    (WdEvent::Expired, Some(p)) => {
                        assert!(now >= p + TIMEOUT, "heartbeat expired early");
                        last_pet = None;
                    }
                    (WdEvent::Expired, None) => panic!("heartbeat expired while not armed"),
                    (_, Some(p)) => assert!(now < p + TIMEOUT, "heartbeat missed its deadline"),
                    _ => {}
                }
            }
            Op::Start => {
                w.start(now);
                latest = Some(now + TIMEOUT);
                expired_since_refresh = false;
                h.start(now);
                // The boot grace: ten timeouts.
                last_pet = Some(now + 9 * TIMEOUT);
            }
            Op::Pet => {
                h.pet(now);
                if last_pet.is_some() {
                    last_pet = Some(now);
                }
            }
        }
    }
});
