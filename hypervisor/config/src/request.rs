//! Signing therapy requests for the RTOS (docs/channels.md, "Requests"):
//! the host side of `septum_abi::channel::request`. The key is a clinician's
//! or back end's ed25519 key in the same file format as the boot-manifest
//! keys; `configs/keys/requests-dev.key` is the published development key.

use ed25519_dalek::{Signer, SigningKey};
use septum_core::abi::channel::request::{Request, ACK_ALARM, PAUSE, RESUME, SET_RATE, SLOT};

/// A command as written on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// The rate in hundredths of a mL/h.
    SetRate(i32),
    Pause,
    Resume,
    AckAlarm,
}

/// `set-rate 5.5` (mL/h, at most two decimals), `pause`, `resume`,
/// `ack-alarm`. Values are not judged here: the RTOS judges them (a tool
/// that refused out-of-limit values would hide the RTOS's refusal from a
/// test).
pub fn parse_command(words: &[&str]) -> Result<Command, String> {
    match words {
        ["set-rate", v] => parse_rate(v).map(Command::SetRate),
        ["pause"] => Ok(Command::Pause),
        ["resume"] => Ok(Command::Resume),
        ["ack-alarm"] => Ok(Command::AckAlarm),
        _ => Err("the command is `set-rate <mL/h>`, `pause`, `resume` or `ack-alarm`".into()),
    }
}

/// `5`, `5.5`, `-0.25` as hundredths.
fn parse_rate(v: &str) -> Result<i32, String> {
    let bad = || format!("`{v}` is not a rate in mL/h with at most two decimals");
    let (neg, digits) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || frac.len() > 2
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    let x = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)?;
    let x = if neg { -x } else { x };
    i32::try_from(x).map_err(|_| bad())
}

/// The request's slot, signed with `key`.
pub fn sign(key: &SigningKey, key_id: u32, request_id: u32, seq: u64, cmd: Command) -> [u8; SLOT] {
    let (command, arg) = match cmd {
        Command::SetRate(r) => (SET_RATE, r),
        Command::Pause => (PAUSE, 0),
        Command::Resume => (RESUME, 0),
        Command::AckAlarm => (ACK_ALARM, 0),
    };
    let r = Request {
        key_id,
        request_id,
        seq,
        command,
        arg,
    };
    r.slot(&key.sign(&r.message()).to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use septum_core::abi::channel::request::frame;

    #[test]
    fn commands_and_rates_parse() {
        assert_eq!(
            parse_command(&["set-rate", "5.5"]),
            Ok(Command::SetRate(550))
        );
        assert_eq!(parse_command(&["set-rate", "5"]), Ok(Command::SetRate(500)));
        assert_eq!(
            parse_command(&["set-rate", "0.05"]),
            Ok(Command::SetRate(5))
        );
        assert_eq!(
            parse_command(&["set-rate", "-1.25"]),
            Ok(Command::SetRate(-125))
        );
        assert_eq!(parse_command(&["pause"]), Ok(Command::Pause));
        assert_eq!(parse_command(&["resume"]), Ok(Command::Resume));
        assert_eq!(parse_command(&["ack-alarm"]), Ok(Command::AckAlarm));
        for bad in [
            "5.555",
            "",
            ".5",
            "5,5",
            "x",
            "99999999999",
            "99999999999999999999",
            "922337203685477580",
            "5.",
            "+5",
        ] {
            let is_err = parse_command(&["set-rate", bad]).is_err();
            // "5." is a whole number with an empty fraction: accepted.
            assert_eq!(is_err, bad != "5.", "{bad}");
        }
        assert!(parse_command(&["stop"]).is_err());
        assert!(parse_command(&["pause", "now"]).is_err());
    }

    /// The slot frames as the request it was made from, and the RTOS's
    /// gate accepts it (REQ-CHN-5).
    #[test]
    fn a_signed_slot_is_what_the_rtos_accepts() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let slot = sign(&key, 0, 42, 7, Command::SetRate(600));
        let (r, _, _) = frame(&slot).unwrap();
        assert_eq!(
            (r.key_id, r.request_id, r.seq, r.command, r.arg),
            (0, 42, 7, SET_RATE, 600)
        );
        let mut gate = septum_rtos::requests::Gate::new(
            &[key.verifying_key().to_bytes()],
            septum_rtos::requests::Limits::DEFAULT,
        );
        let pump = septum_rtos::requests::PumpView {
            rate_x100: 500,
            paused: false,
            alarm_pending: false,
            stopped: false,
        };
        let v = gate.check(&slot, 10_000, pump);
        assert_eq!(
            v.answer,
            septum_core::abi::channel::request::Answer::Accepted
        );
        assert_eq!(v.request_id, 42);
    }
}
