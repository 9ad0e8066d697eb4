//! The RTOS's judgement of therapy requests (`septum_rtos::requests::Gate`)
//! on slots Linux controls: arbitrary bytes, and requests with arbitrary
//! fields properly signed by an authorised test key.
//!
//! Checks: no panic; an unsigned slot (arbitrary bytes) is never accepted;
//! a signed one is accepted only inside the limits (rate range, step from
//! the current rate, pacing, the pump's state), and the same slot a second
//! time is always a replay; only a request that framed, verified and was
//! fresh reaches a content verdict.
#![no_main]

use ed25519_dalek::{Signer, SigningKey};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use septum_abi::channel::request::{Answer, Request, SLOT};
use septum_rtos::requests::{Command, Gate, Limits, PumpView};

#[derive(Arbitrary, Debug)]
struct Input {
    raw: Vec<u8>,
    key_id: u8,
    request_id: u32,
    seq: u64,
    command: u8,
    arg: i32,
    now_ms: u64,
    rate_x100: i16,
    paused: bool,
    alarm_pending: bool,
    stopped: bool,
}

fuzz_target!(|input: Input| {
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut gate = Gate::new(&[key.verifying_key().to_bytes()], Limits::DEFAULT);
    let pump = PumpView {
        rate_x100: i32::from(input.rate_x100),
        paused: input.paused,
        alarm_pending: input.alarm_pending,
        stopped: input.stopped,
    };
    // Arbitrary bytes: never accepted.
    let mut raw = [0u8; SLOT];
    let n = input.raw.len().min(SLOT);
    raw[..n].copy_from_slice(&input.raw[..n]);
    let v = gate.check(&raw, input.now_ms, pump);
    assert_ne!(v.answer, Answer::Accepted, "an unsigned slot was accepted");
    assert!(v.command.is_none());

    // A signed request with arbitrary fields.
    let r = Request {
        key_id: u32::from(input.key_id % 3),
        request_id: input.request_id,
        seq: input.seq,
        command: u32::from(input.command % 6),
        arg: input.arg,
    };
    let slot = r.slot(&key.sign(&r.message()).to_bytes());
    let v = gate.check(&slot, input.now_ms, pump);
    assert_eq!(v.request_id, r.request_id);
    assert_eq!(v.command.is_some(), v.answer == Answer::Accepted);
    match r.key_id {
        0 if r.seq == 0 => assert_eq!(v.answer, Answer::Replay),
        0 => assert!(!matches!(
            v.answer,
            Answer::Framing | Answer::UnknownKey | Answer::BadSignature | Answer::Replay
        )),
        _ => assert_eq!(v.answer, Answer::UnknownKey),
    }
    if let Some(c) = v.command {
        assert!(!pump.stopped);
        let l = Limits::DEFAULT;
        match c {
            Command::SetRate(rate) => {
                assert!((l.min_rate_x100..=l.max_rate_x100).contains(&rate));
                assert!(
                    (i64::from(rate) - i64::from(pump.rate_x100)).abs()
                        <= i64::from(l.max_step_x100)
                );
            }
            Command::Pause => assert!(!pump.paused),
            Command::Resume => assert!(pump.paused),
            Command::AckAlarm => assert!(pump.alarm_pending),
        }
    }
    // The same slot again: a replay whenever it verified.
    if r.key_id == 0 {
        assert_eq!(gate.check(&slot, input.now_ms, pump).answer, Answer::Replay);
    }
});
