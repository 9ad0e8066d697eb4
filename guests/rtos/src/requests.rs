//! Judging therapy requests from the connectivity partition
//! (docs/channels.md, "Requests"). Pure logic: the task that reads the
//! mailbox copies a slot into its own memory and hands the copy here, so
//! Linux cannot change the bytes between the checks and their use.
//!
//! The order is the point. A slot is framed (magic, version, reserved
//! bytes), then its signature is verified with the key it names, then its
//! sequence number is checked against replay; only a request that passed
//! all three is read for its content, and its sequence number is used up
//! whatever the content says (a signed request refused for its content
//! cannot be replayed once the pump's state would let it through). Content
//! is then judged against the pump's hard limits, the largest step one
//! request may make, and the shortest time between two changes.

use ed25519_dalek::{Signature, VerifyingKey};
use septum_abi::channel::request::{
    frame, message, Answer, Request, ACK_ALARM, PAUSE, RESUME, SET_RATE, SLOT,
};

/// The most keys the RTOS holds (as many as the telemetry page keeps
/// replay floors for).
pub const MAX_KEYS: usize = septum_abi::channel::telemetry::REPLAY_FLOOR_KEYS;

/// The pump's hard limits for requests, fixed at build time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The lowest and highest rate a request may set, 0.01 mL/h.
    pub min_rate_x100: i32,
    pub max_rate_x100: i32,
    /// The largest change of rate one request may make, 0.01 mL/h.
    pub max_step_x100: i32,
    /// The shortest time between two accepted changes, ms.
    pub min_interval_ms: u64,
}

impl Limits {
    /// The demo pump's (full scale 20 mL/h): 0.10 to 15.00 mL/h, at most
    /// 2.00 mL/h per request, one change every 5 s at most. The interval
    /// covers the supervisor's settling after a change and then a whole
    /// deviation window (checked below), so that a stream of changes cannot
    /// keep the deviation check from ever judging.
    pub const DEFAULT: Limits = Limits {
        min_rate_x100: 10,
        max_rate_x100: 1500,
        max_step_x100: 200,
        min_interval_ms: 5000,
    };
}

// The supervisor runs every 10 ms.
const _: () = assert!(
    Limits::DEFAULT.min_interval_ms
        >= (crate::infusion::SETTLE_CHECKS as u64
            + crate::infusion::SupervisorConfig::DEFAULT.deviation_checks as u64)
            * 10
);

/// What the pump is doing, as far as a request needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PumpView {
    /// The rate the pump is set to, 0.01 mL/h.
    pub rate_x100: i32,
    pub paused: bool,
    /// An alarm waits for acknowledgement.
    pub alarm_pending: bool,
    /// Stopped for good (dose complete, safety stop): nothing is accepted.
    pub stopped: bool,
}

/// A request that passed every check: what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    SetRate(i32),
    Pause,
    Resume,
    AckAlarm,
}

/// The verdict on one slot, and the request id to answer with (0 when
/// the slot was not a request at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub request_id: u32,
    pub answer: Answer,
    /// Set when `answer` is `Accepted`.
    pub command: Option<Command>,
}

#[derive(Debug)]
pub struct Gate {
    keys: [Option<VerifyingKey>; MAX_KEYS],
    last_seq: [u64; MAX_KEYS],
    limits: Limits,
    /// When the last change was accepted (`None`: never).
    last_change_ms: Option<u64>,
}

impl Gate {
    /// `keys` are the public halves of the authorised signers, from the
    /// RTOS's own signed image; a key that is not a valid point is left
    /// out (its slot never verifies).
    pub fn new(keys: &[[u8; 32]], limits: Limits) -> Self {
        let mut k = [None; MAX_KEYS];
        for (slot, bytes) in k.iter_mut().zip(keys) {
            *slot = VerifyingKey::from_bytes(bytes).ok();
        }
        Self {
            keys: k,
            last_seq: [0; MAX_KEYS],
            limits,
            last_change_ms: None,
        }
    }

    /// Raises each key's replay floor to at least `floors[k]`: the numbers
    /// a previous instance of the RTOS used up, kept where Linux cannot
    /// write them, so that a restart does not reopen them to replay.
    pub fn restore(&mut self, floors: [u64; MAX_KEYS]) {
        for (l, f) in self.last_seq.iter_mut().zip(floors) {
            *l = (*l).max(f);
        }
    }

    /// Each key's last used-up sequence number.
    pub fn floors(&self) -> [u64; MAX_KEYS] {
        self.last_seq
    }

    /// Judges one slot (a copy the caller owns) at `now_ms`.
    pub fn check(&mut self, slot: &[u8; SLOT], now_ms: u64, pump: PumpView) -> Verdict {
        let refuse = |request_id, answer| Verdict {
            request_id,
            answer,
            command: None,
        };
        // 1. Framing: enough to know which key to verify with.
        let Ok((r, body, sig)) = frame(slot) else {
            return refuse(0, Answer::Framing);
        };
        // Until the signature verifies, nothing in the slot is believed,
        // the request id included: the answer names it so the sender can
        // match it, but a forger learns nothing from that.
        let key_index = r.key_id as usize;
        let Some(key) = self.keys.get(key_index).copied().flatten() else {
            return refuse(r.request_id, Answer::UnknownKey);
        };
        // 2. The signature, over the domain-separated body.
        if key
            .verify_strict(&message(&body), &Signature::from_bytes(&sig))
            .is_err()
        {
            return refuse(r.request_id, Answer::BadSignature);
        }
        // 3. Replay: strictly increasing per key; used up from here on.
        if r.seq <= self.last_seq[key_index] {
            return refuse(r.request_id, Answer::Replay);
        }
        self.last_seq[key_index] = r.seq;
        // 4. Content.
        match self.content(&r, now_ms, pump) {
            Ok(c) => Verdict {
                request_id: r.request_id,
                answer: Answer::Accepted,
                command: Some(c),
            },
            Err(a) => refuse(r.request_id, a),
        }
    }

    fn content(&mut self, r: &Request, now_ms: u64, pump: PumpView) -> Result<Command, Answer> {
        let cmd = match (r.command, r.arg) {
            (SET_RATE, rate) => Command::SetRate(rate),
            (PAUSE, 0) => Command::Pause,
            (RESUME, 0) => Command::Resume,
            (ACK_ALARM, 0) => Command::AckAlarm,
            _ => return Err(Answer::Malformed),
        };
        if pump.stopped {
            return Err(Answer::NotApplicable);
        }
        let l = self.limits;
        match cmd {
            Command::SetRate(rate) => {
                if rate < l.min_rate_x100 || rate > l.max_rate_x100 {
                    return Err(Answer::OutOfLimits);
                }
                if (i64::from(rate) - i64::from(pump.rate_x100)).abs() > i64::from(l.max_step_x100)
                {
                    return Err(Answer::TooLargeAStep);
                }
            }
            Command::Pause if pump.paused => return Err(Answer::NotApplicable),
            Command::Resume if !pump.paused => return Err(Answer::NotApplicable),
            Command::AckAlarm if !pump.alarm_pending => return Err(Answer::NotApplicable),
            _ => {}
        }
        // Changes of the therapy are paced; an acknowledgement is not a change.
        if cmd != Command::AckAlarm {
            if let Some(t) = self.last_change_ms {
                if now_ms.saturating_sub(t) < l.min_interval_ms {
                    return Err(Answer::TooSoon);
                }
            }
            self.last_change_ms = Some(now_ms);
        }
        Ok(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn gate() -> Gate {
        Gate::new(
            &[
                key(1).verifying_key().to_bytes(),
                key(2).verifying_key().to_bytes(),
            ],
            Limits::DEFAULT,
        )
    }

    fn signed(k: &SigningKey, r: Request) -> [u8; SLOT] {
        r.slot(&k.sign(&r.message()).to_bytes())
    }

    fn req(seq: u64, command: u32, arg: i32) -> Request {
        Request {
            key_id: 0,
            request_id: (seq as u32).wrapping_add(100),
            seq,
            command,
            arg,
        }
    }

    const PUMP: PumpView = PumpView {
        rate_x100: 500,
        paused: false,
        alarm_pending: false,
        stopped: false,
    };

    fn answer(g: &mut Gate, slot: &[u8; SLOT], now: u64) -> Answer {
        g.check(slot, now, PUMP).answer
    }

    /// REQ-CHN-5: a request signed by an authorised key, within limits,
    /// is accepted and says what to do.
    #[test]
    fn a_signed_request_within_limits_is_accepted() {
        let mut g = gate();
        let v = g.check(&signed(&key(1), req(1, SET_RATE, 650)), 10_000, PUMP);
        assert_eq!(
            v,
            Verdict {
                request_id: 101,
                answer: Answer::Accepted,
                command: Some(Command::SetRate(650))
            }
        );
        // The second key, its own sequence.
        let r = Request {
            key_id: 1,
            ..req(1, PAUSE, 0)
        };
        let v = g.check(&signed(&key(2), r), 20_000, PUMP);
        assert_eq!(v.command, Some(Command::Pause));
    }

    /// REQ-CHN-5: unsigned, wrongly signed, other-key, and tampered
    /// requests are refused before their content is looked at.
    #[test]
    fn forgeries_are_refused_before_the_content() {
        let mut g = gate();
        let good = signed(&key(1), req(1, SET_RATE, 650));
        // Unsigned: a zero signature.
        assert_eq!(
            answer(&mut g, &req(1, SET_RATE, 650).slot(&[0; 64]), 0),
            Answer::BadSignature
        );
        // Signed by a key the RTOS does not hold, claiming key 0.
        assert_eq!(
            answer(&mut g, &signed(&key(9), req(1, SET_RATE, 650)), 0),
            Answer::BadSignature
        );
        // Signed by key 2 but claiming key 0.
        assert_eq!(
            answer(&mut g, &signed(&key(2), req(1, SET_RATE, 650)), 0),
            Answer::BadSignature
        );
        // Every single bit of the body and signature matters.
        for byte in 0..112 {
            let mut s = good;
            s[byte] ^= 0x10;
            let a = answer(&mut g, &s, 0);
            assert!(
                matches!(
                    a,
                    Answer::BadSignature | Answer::Framing | Answer::UnknownKey
                ),
                "byte {byte}: {a:?}"
            );
        }
        // Content is not judged for a bad signature: an absurd rate gets
        // BadSignature, not OutOfLimits.
        assert_eq!(
            answer(&mut g, &req(2, SET_RATE, i32::MAX).slot(&[7; 64]), 0),
            Answer::BadSignature
        );
        // A key index the RTOS does not have.
        let r = Request {
            key_id: 3,
            ..req(1, PAUSE, 0)
        };
        assert_eq!(answer(&mut g, &signed(&key(1), r), 0), Answer::UnknownKey);
        let r = Request {
            key_id: u32::MAX,
            ..req(1, PAUSE, 0)
        };
        assert_eq!(answer(&mut g, &signed(&key(1), r), 0), Answer::UnknownKey);
        assert_eq!(answer(&mut g, &[0; SLOT], 0), Answer::Framing);
        // None of that used up sequence 1.
        assert_eq!(answer(&mut g, &good, 10_000), Answer::Accepted);
    }

    /// REQ-CHN-5: a replayed or older request is refused, also when its
    /// content was refused the first time.
    #[test]
    fn replays_are_refused() {
        let mut g = gate();
        let a = signed(&key(1), req(5, SET_RATE, 650));
        assert_eq!(answer(&mut g, &a, 10_000), Answer::Accepted);
        assert_eq!(answer(&mut g, &a, 20_000), Answer::Replay);
        assert_eq!(
            answer(&mut g, &signed(&key(1), req(4, SET_RATE, 600)), 30_000),
            Answer::Replay
        );
        // Refused for its content (a step of 5 mL/h), its number is used.
        let big = signed(&key(1), req(6, SET_RATE, 1000));
        assert_eq!(answer(&mut g, &big, 40_000), Answer::TooLargeAStep);
        assert_eq!(answer(&mut g, &big, 50_000), Answer::Replay);
        assert_eq!(
            answer(&mut g, &signed(&key(1), req(u64::MAX, PAUSE, 0)), 60_000),
            Answer::Accepted
        );
        assert_eq!(
            answer(&mut g, &signed(&key(1), req(u64::MAX, PAUSE, 0)), 70_000),
            Answer::Replay
        );
    }

    /// REQ-CHN-6: even a validly signed request cannot leave the hard
    /// limits, step too far, come too soon or do what does not apply.
    #[test]
    fn valid_requests_stay_inside_the_limits() {
        let mut g = gate();
        let l = Limits::DEFAULT;
        let mut seq = 0;
        let mut at = |g: &mut Gate, cmd, arg, now, pump: PumpView| {
            seq += 1;
            g.check(&signed(&key(1), req(seq, cmd, arg)), now, pump)
                .answer
        };
        let low = PumpView {
            rate_x100: 20,
            ..PUMP
        };
        let high = PumpView {
            rate_x100: 1450,
            ..PUMP
        };
        assert_eq!(
            at(&mut g, SET_RATE, l.min_rate_x100 - 1, 0, low),
            Answer::OutOfLimits
        );
        assert_eq!(
            at(&mut g, SET_RATE, l.max_rate_x100 + 1, 0, high),
            Answer::OutOfLimits
        );
        assert_eq!(at(&mut g, SET_RATE, -500, 0, PUMP), Answer::OutOfLimits);
        assert_eq!(
            at(&mut g, SET_RATE, 500 + l.max_step_x100 + 1, 0, PUMP),
            Answer::TooLargeAStep
        );
        assert_eq!(
            at(&mut g, SET_RATE, 500 - l.max_step_x100 - 1, 0, PUMP),
            Answer::TooLargeAStep
        );
        assert_eq!(
            at(&mut g, SET_RATE, 500 + l.max_step_x100, 0, PUMP),
            Answer::Accepted
        );
        // The next change only after min_interval_ms.
        assert_eq!(at(&mut g, SET_RATE, 600, 4999, PUMP), Answer::TooSoon);
        assert_eq!(at(&mut g, PAUSE, 0, 4999, PUMP), Answer::TooSoon);
        assert_eq!(at(&mut g, SET_RATE, 600, 5000, PUMP), Answer::Accepted);
        // State.
        let paused = PumpView {
            paused: true,
            ..PUMP
        };
        assert_eq!(at(&mut g, PAUSE, 0, 10_000, paused), Answer::NotApplicable);
        assert_eq!(at(&mut g, RESUME, 0, 10_000, PUMP), Answer::NotApplicable);
        assert_eq!(at(&mut g, RESUME, 0, 10_000, paused), Answer::Accepted);
        assert_eq!(
            at(&mut g, ACK_ALARM, 0, 10_001, PUMP),
            Answer::NotApplicable
        );
        let alarm = PumpView {
            alarm_pending: true,
            ..PUMP
        };
        // An acknowledgement is not paced.
        assert_eq!(at(&mut g, ACK_ALARM, 0, 10_001, alarm), Answer::Accepted);
        let stopped = PumpView {
            stopped: true,
            ..PUMP
        };
        assert_eq!(
            at(&mut g, SET_RATE, 500, 90_000, stopped),
            Answer::NotApplicable
        );
        // Malformed: unknown command, an argument where none belongs.
        assert_eq!(at(&mut g, 0, 0, 90_000, PUMP), Answer::Malformed);
        assert_eq!(at(&mut g, 99, 0, 90_000, PUMP), Answer::Malformed);
        assert_eq!(at(&mut g, PAUSE, 1, 90_000, PUMP), Answer::Malformed);
    }

    /// REQ-CHN-5: what a previous instance used up stays used up.
    #[test]
    fn restored_floors_keep_replays_out() {
        let mut g = gate();
        let a = signed(&key(1), req(5, SET_RATE, 650));
        assert_eq!(answer(&mut g, &a, 10_000), Answer::Accepted);
        let floors = g.floors();
        assert_eq!(floors, [5, 0, 0, 0]);
        // A restarted RTOS: a fresh gate, then the floors.
        let mut g = gate();
        g.restore(floors);
        assert_eq!(answer(&mut g, &a, 10_000), Answer::Replay);
        assert_eq!(
            answer(&mut g, &signed(&key(1), req(6, SET_RATE, 650)), 10_000),
            Answer::Accepted
        );
        // Restoring never lowers a floor.
        g.restore([0; MAX_KEYS]);
        assert_eq!(g.floors()[0], 6);
    }

    #[test]
    fn an_invalid_key_is_left_out() {
        // Not a point on the curve (y = 2 has no x).
        let mut bad = [0u8; 32];
        bad[0] = 2;
        let mut g = Gate::new(&[bad], Limits::DEFAULT);
        assert_eq!(
            answer(&mut g, &signed(&key(1), req(1, PAUSE, 0)), 0),
            Answer::UnknownKey
        );
    }
}
