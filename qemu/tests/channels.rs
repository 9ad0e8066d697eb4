//! Channels between the partitions (docs/channels.md) on QEMU `virt`
//! (configs/qemu-virt.toml): the RTOS's telemetry, read by Linux's status
//! page, and signed therapy requests from Linux, judged by the RTOS.
//! Requirement IDs: docs/requirements.md.

use std::time::Duration;

use septum_qemu_tests::{
    assert_rtos_clean, boot_default, build_derived, heartbeats, repo_root, Options, Qemu,
    LINUX_BOOT, LINUX_READY,
};

/// The latest telemetry record once the RTOS has published its first
/// second (Linux can be up before that).
fn telemetry(q: &Qemu) -> String {
    let mut t = String::new();
    for _ in 0..60 {
        t = q.http_get("/cgi-bin/telemetry").expect("telemetry answers");
        if field(&t, "heartbeat") >= 1.0 {
            return t;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("no telemetry record after the first second: {t}");
}

/// A string field of the telemetry JSON.
fn text_field<'a>(json: &'a str, key: &str) -> &'a str {
    let at = json
        .find(&format!("\"{key}\":\""))
        .unwrap_or_else(|| panic!("no {key} in {json}"));
    let rest = &json[at + key.len() + 4..];
    &rest[..rest.find('"').unwrap_or(rest.len())]
}

/// A field of the telemetry JSON (`"key":value`), as a number.
fn field(json: &str, key: &str) -> f64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {json}"));
    let rest = &json[at + key.len() + 3..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end]
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

/// The value of `key=` in the console line `rtos: heartbeat N ...`.
fn status_field(out: &str, n: u64, key: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.contains(&format!("rtos: heartbeat {n} ")))
        .unwrap_or_else(|| panic!("no heartbeat {n} line"));
    let v = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line}"));
    v.parse().unwrap_or_else(|_| panic!("{key} in {line}"))
}

/// REQ-CHN-2, REQ-CHN-3: the status page and /cgi-bin/telemetry show the
/// pump live, from the RTOS's record on the telemetry channel: the same
/// figures as the RTOS's own status line, advancing; and REQ-CHN-4: Linux
/// cannot write the channel (a store is a stage-2 permission fault, an
/// abort injected into the storing process), and the record survives it.
#[test]
fn status_page_shows_the_pump_live_and_linux_cannot_write_it() {
    let mut q = boot_default();
    let first = telemetry(&q);
    let page = q.wait_status_page();
    assert!(
        page.contains("pump (from the RTOS, telemetry channel):"),
        "{page}"
    );
    assert!(
        page.contains("  pump: infusing, set to 5.00 mL/h, measured "),
        "{page}"
    );
    let hb = field(&first, "heartbeat") as u64;
    assert!(hb >= 1, "{first}");
    // Every figure is the RTOS's own for that second.
    let out = q.wait_for(&format!("rtos: heartbeat {hb} "), Duration::from_secs(60));
    for key in ["cycles", "misses", "dose_ul", "alarms"] {
        assert_eq!(
            field(&first, key) as u64,
            status_field(&out, hb, key),
            "{key}: {first}"
        );
    }
    assert_eq!(
        field(&first, "rate_ml_h"),
        status_field(&out, hb, "rate") as f64 / 100.0
    );
    assert_eq!(
        field(&first, "seq") as u64 % 2,
        0,
        "a complete record: {first}"
    );
    assert!(first.contains("\"state\":\"infusing\""), "{first}");
    // Five seconds later: later record, more dose.
    q.wait_for(
        &format!("rtos: heartbeat {} ", hb + 5),
        Duration::from_secs(60),
    );
    let later = q.http_get("/cgi-bin/telemetry").expect("telemetry answers");
    assert!(
        field(&later, "heartbeat") as u64 >= hb + 5,
        "{first}\n{later}"
    );
    assert!(
        field(&later, "seq") > field(&first, "seq"),
        "{first}\n{later}"
    );
    assert!(
        field(&later, "dose_ul") > field(&first, "dose_ul"),
        "{first}\n{later}"
    );
    assert!(field(&later, "uptime_ms") >= field(&first, "uptime_ms") + 5000.0);

    // REQ-CHN-8: Linux's reader waits on the doorbell (line 0 of the
    // emulated PL061, through the GPIO character device) and wakes for
    // each record the RTOS publishes.
    assert!(
        q.output()
            .contains("rtos: telemetry: channel at 0x40400000, published once a second, doorbell rung after each"),
        "the RTOS's channel has a doorbell"
    );
    let f = q.linux_run("septum-telemetry --follow 3; echo rc=$?");
    assert!(f.contains("rc=0"), "{f}");
    let lines: Vec<&str> = f.lines().filter(|l| l.starts_with("follow: ")).collect();
    assert_eq!(lines.len(), 3, "{f}");
    let mut seqs = Vec::new();
    for l in &lines {
        assert!(l.starts_with("follow: woken by doorbell ("), "{f}");
        let seq = l
            .split("record seq ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no seq in {l}"));
        seqs.push(seq);
    }
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{f}");
    // The kernel counted the doorbell's interrupts on line 0 of the
    // PL061 at 0x9030000 (the row stays after the reader let go).
    let irqs = q.linux_run("cat /proc/interrupts");
    assert!(doorbell_interrupts(&irqs) >= 3, "{irqs}");

    // A store from Linux: busybox devmem maps /dev/mem read-write and
    // writes one word over the record's magic.
    let before = q.output().len();
    let w = q.linux_run("devmem 0x48400000 32 0x0badf00d; echo rc=$?");
    assert!(w.contains("rc=135"), "devmem died of SIGBUS (128 + 7): {w}");
    let out = q.wait_for("abort injected", Duration::from_secs(60));
    let fault = out[before..]
        .lines()
        .find(|l| l.contains("partition 'linux'") && l.contains("abort injected"))
        .unwrap_or_else(|| panic!("no fault line:\n{}", &out[before..]));
    assert!(
        fault.contains("access to channel 'telemetry' at IPA 0x48400000 refused (this partition's end: reader, read-only)"),
        "{fault}"
    );
    // The RTOS goes on publishing, and the record is whole.
    let next = field(&later, "heartbeat") as u64 + 2;
    q.wait_for(&format!("rtos: heartbeat {next} "), Duration::from_secs(60));
    let after = q.http_get("/cgi-bin/telemetry").expect("telemetry answers");
    assert!(
        field(&after, "seq") > field(&later, "seq"),
        "record intact: {after}"
    );
    assert!(
        q.linux_run("devmem 0x48400000 32").contains("0x4D545053"),
        "magic SPTM"
    );
    assert_rtos_clean(&q.output(), 1);
}

/// The edges the kernel counted on the doorbell's GPIO line (the PL061
/// at 0x9030000), summed over the CPUs.
fn doorbell_interrupts(proc_interrupts: &str) -> u64 {
    let row = proc_interrupts
        .lines()
        .find(|l| l.contains("9030000.gpio"))
        .unwrap_or_else(|| panic!("no doorbell row:\n{proc_interrupts}"));
    row.split_whitespace()
        .skip(1)
        .take(3)
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

/// The default system with the RTOS image `rtos_bin` (a test build),
/// booted until Linux is up.
fn boot_with_rtos(name: &str, rtos_bin: &str) -> Qemu {
    let image = build_derived(
        "configs/qemu-virt.toml",
        name,
        &[("septum-rtos.bin", rtos_bin)],
    );
    let mut q = Qemu::boot(&image, &Options::default());
    q.wait_linux(LINUX_READY, LINUX_BOOT);
    q
}

/// REQ-CHN-9: an RTOS that asks for 1,000 rings a second (the
/// `fault-test-doorbell-storm` build) reaches Linux at the configured rate
/// and no faster (configs/qemu-virt.toml: 10 a second, 4 at once), and
/// the storm costs the RTOS no deadline.
#[test]
fn a_doorbell_storm_is_held_to_the_configured_rate() {
    let mut q = boot_with_rtos("virt-doorbell-storm", "septum-rtos-doorbell-storm.bin");
    let f = q.linux_run("septum-telemetry --follow 6; cat /proc/interrupts");
    let uptimes: Vec<u64> = f
        .lines()
        .filter(|l| l.starts_with("follow: woken by doorbell"))
        .filter_map(|l| l.split("uptime ").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(uptimes.len(), 6, "{f}");
    let span_s = (uptimes[5] - uptimes[0]) / 1000;
    let edges = doorbell_interrupts(&f);
    // The line was held from before the first record to after the last.
    assert!(
        edges <= 4 + 10 * (span_s + 2),
        "{edges} edges in about {span_s} s:\n{f}"
    );
    assert!(
        edges >= 5 * span_s,
        "the rate is reached: {edges} in {span_s} s:\n{f}"
    );
    // The RTOS's own count: asked 1,000 a second, rang at most 10.
    let out = q.wait_for_count("doorbell storm: asked ", 8, Duration::from_secs(60));
    let storms: Vec<(u64, u64)> = out
        .lines()
        .filter_map(|l| {
            let r = l.split("doorbell storm: asked ").nth(1)?;
            let (a, b) = r.split_once(" rang ")?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        })
        .collect();
    let secs = storms.len() as u64;
    let (asked, rang) = *storms.last().expect("storm lines");
    assert!(asked >= 900 * (secs - 1), "{storms:?}");
    assert!(rang <= 4 + 10 * (secs + 1), "{storms:?}");
    assert!(rang >= 5 * (secs - 1), "{storms:?}");
    assert_rtos_clean(&out, 1);
}

/// REQ-CHN-5: the replay floors survive an RTOS restart. The RTOS built
/// with `fault-test-reset-after-accept` asks for PSCI SYSTEM_RESET right
/// after it accepts a request; the hypervisor restarts it from its pristine
/// image (its `system-reset = "restart"` policy), and the same slot
/// submitted again is a replay; a fresh one is accepted.
#[test]
fn replay_floors_survive_an_rtos_restart() {
    let mut q = boot_with_rtos(
        "virt-reset-after-accept",
        "septum-rtos-reset-after-accept.bin",
    );
    let a = signed(DEV_KEY, 1, 1, &["set-rate", "6"]);
    submit(&q, &a);
    assert_eq!(verdict(&mut q, 1), "accepted: set rate 6.00 mL/h");
    q.wait_for(
        "partition 'rtos': PSCI SYSTEM_RESET -> restarting partition",
        Duration::from_secs(60),
    );
    // The restarted RTOS publishes again (its heartbeat starts over).
    telemetry_until(&q, "the restarted RTOS's record", |t| {
        field(t, "heartbeat") >= 1.0 && field(t, "requests_accepted") == 0.0
    });
    submit(&q, &a);
    assert_eq!(verdict(&mut q, 1), "rejected: replay");
    submit(&q, &signed(DEV_KEY, 2, 2, &["pause"]));
    assert_eq!(verdict(&mut q, 2), "accepted: Pause");
    let out = q.output();
    assert!(!out.contains("SAFE STATE"), "{out}");
}

/// A slot signed with the key file `key` (relative to the repository).
fn signed(key: &str, seq: u64, id: u32, cmd: &[&str]) -> [u8; 128] {
    let key = septum_config::sign::read_private_key(&repo_root().join(key)).expect("key file");
    let cmd = septum_config::request::parse_command(cmd).expect("command");
    septum_config::request::sign(&key, 0, id, seq, cmd)
}

const DEV_KEY: &str = "configs/keys/requests-dev.key";

/// Posts a slot to the status page's upload and checks Linux took it.
fn submit(q: &Qemu, slot: &[u8; 128]) {
    let r = q
        .http_post("/cgi-bin/request", slot)
        .expect("upload answers");
    assert!(r.contains("\"submitted\":"), "{r}");
}

/// Waits for the RTOS's line about request `id` and returns its verdict
/// ("accepted: ..." or "rejected: ...").
fn verdict(q: &mut Qemu, id: u32) -> String {
    let needle = format!("rtos: request {id}: ");
    let before = q.output().matches(&needle).count();
    let out = q.wait_for_count(&needle, before + 1, Duration::from_secs(60));
    let line = out
        .lines()
        .filter(|l| l.contains(&needle))
        .nth(before)
        .expect("the line waited for");
    line[line.find(&needle).unwrap() + needle.len()..]
        .trim()
        .to_owned()
}

/// Polls the telemetry until `pred` holds (the record is published once a
/// second); returns the record.
fn telemetry_until(q: &Qemu, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let mut t = String::new();
    for _ in 0..120 {
        t = q.http_get("/cgi-bin/telemetry").expect("telemetry answers");
        if pred(&t) {
            return t;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("telemetry never showed {what}: {t}");
}

/// REQ-CHN-5, REQ-CHN-6, REQ-CHN-7: therapy requests uploaded to Linux's
/// status page reach the RTOS, which applies a signed one within limits
/// and shows it in telemetry; unsigned, wrongly signed, replayed,
/// out-of-limit, too large a step and malformed requests are refused and
/// counted; and a flood of random bytes into the mailbox, as fast as
/// Linux can write, leaves the RTOS at 0 misses with the rate unchanged,
/// after which a valid request still gets through.
#[test]
fn requests_from_linux_are_judged_by_the_rtos() {
    let mut q = boot_default();
    let out = q.wait_for(
        "rtos: requests: mailbox at 0x40410000, 31 slots",
        Duration::from_secs(10),
    );
    assert!(
        out.contains("(one is the DEVELOPMENT key: anyone can sign)"),
        "{out}"
    );
    let t = telemetry(&q);
    assert_eq!(text_field(&t, "last_answer"), "none", "{t}");
    assert_eq!(field(&t, "set_rate_ml_h"), 5.0, "{t}");

    // Accepted: 5.00 -> 6.00 mL/h (a step of 1.00, inside every limit).
    let a = signed(DEV_KEY, 1, 1, &["set-rate", "6"]);
    submit(&q, &a);
    assert_eq!(verdict(&mut q, 1), "accepted: set rate 6.00 mL/h");
    let t = telemetry_until(&q, "the new rate", |t| field(t, "set_rate_ml_h") == 6.0);
    assert_eq!(field(&t, "requests_accepted"), 1.0, "{t}");
    assert_eq!(field(&t, "last_request_id"), 1.0, "{t}");
    assert_eq!(text_field(&t, "last_answer"), "accepted", "{t}");

    // Refused, each for its reason.
    submit(&q, &a);
    assert_eq!(verdict(&mut q, 1), "rejected: replay");
    let mut unsigned = signed(DEV_KEY, 2, 2, &["set-rate", "6.5"]);
    unsigned[48..112].fill(0);
    submit(&q, &unsigned);
    assert_eq!(verdict(&mut q, 2), "rejected: bad-signature");
    // Signed, but by the boot-manifest key, which the RTOS does not trust.
    submit(
        &q,
        &signed("configs/keys/septum-dev.key", 3, 3, &["set-rate", "6.5"]),
    );
    assert_eq!(verdict(&mut q, 3), "rejected: bad-signature");
    submit(&q, &signed(DEV_KEY, 4, 4, &["set-rate", "16"]));
    assert_eq!(verdict(&mut q, 4), "rejected: out-of-limits");
    submit(&q, &signed(DEV_KEY, 5, 5, &["set-rate", "8.5"]));
    assert_eq!(verdict(&mut q, 5), "rejected: too-large-a-step");
    submit(&q, &signed(DEV_KEY, 6, 6, &["resume"]));
    assert_eq!(verdict(&mut q, 6), "rejected: not-applicable");
    // Not a request at all: counted, not printed.
    let mut junk = [0x5au8; 128];
    junk[..4].copy_from_slice(b"JUNK");
    submit(&q, &junk);
    let t = telemetry_until(&q, "the junk counted", |t| {
        text_field(t, "last_answer") == "framing"
    });
    assert_eq!(field(&t, "requests_rejected"), 7.0, "{t}");
    assert_eq!(field(&t, "set_rate_ml_h"), 6.0, "{t}");
    // The upload takes exactly one slot.
    let r = q
        .http_post("/cgi-bin/request", b"short")
        .expect("upload answers");
    assert!(r.contains("exactly one 128-byte"), "{r}");

    // The flood: as fast as Linux can write them, random slots and
    // well-framed forgeries that cost a full signature check each. The
    // RTOS judges one every 250 ms and skips the rest.
    let before = heartbeats(&q.output()).len();
    q.linux_send("septum-telemetry --flood 100000 >/dev/null &");
    let out = q.wait_for_count(
        "[rtos] rtos: heartbeat ",
        before + 8,
        Duration::from_secs(300),
    );
    let t = telemetry_until(&q, "skipped slots", |t| {
        field(t, "requests_skipped") > 1000.0
    });
    assert_eq!(field(&t, "set_rate_ml_h"), 6.0, "{t}");
    assert_eq!(field(&t, "requests_accepted"), 1.0, "{t}");
    assert_rtos_clean(&out, 1);
    q.linux_run("wait");

    // Still open for business: 6.00 -> 6.50 mL/h.
    submit(&q, &signed(DEV_KEY, 7, 7, &["set-rate", "6.5"]));
    assert_eq!(verdict(&mut q, 7), "accepted: set rate 6.50 mL/h");
    let t = telemetry_until(&q, "the pump at 6.5 mL/h", |t| {
        (field(t, "rate_ml_h") - 6.5).abs() < 0.1 && field(t, "set_rate_ml_h") == 6.5
    });
    assert_eq!(field(&t, "alarms"), 0.0, "no alarm from the changes: {t}");

    // Two uploads at the same moment each get their own slot (the writers
    // take a lock): both are judged. Whichever comes second is a replay
    // if its sequence number is the lower one.
    let (s8, s9) = (
        signed(DEV_KEY, 8, 8, &["set-rate", "20"]),
        signed(DEV_KEY, 9, 9, &["set-rate", "20"]),
    );
    let mark = q.output().len();
    let heads: Vec<String> = std::thread::scope(|sc| {
        let qr = &q;
        let a = sc.spawn(move || qr.http_post("/cgi-bin/request", &s8));
        let b = sc.spawn(move || qr.http_post("/cgi-bin/request", &s9));
        [a, b]
            .into_iter()
            .map(|h| h.join().unwrap().expect("upload answers"))
            .collect()
    });
    assert!(
        heads.iter().all(|h| h.contains("\"submitted\":")),
        "{heads:?}"
    );
    assert_ne!(heads[0], heads[1], "two slots");
    // Judged in either order: both lines after the uploads.
    let out = q.wait_until("both uploads judged", Duration::from_secs(60), |o| {
        o[mark..].contains("rtos: request 8: ") && o[mark..].contains("rtos: request 9: ")
    });
    let v: Vec<String> = [8, 9]
        .iter()
        .map(|id| {
            let needle = format!("rtos: request {id}: ");
            let l = out[mark..].lines().find(|l| l.contains(&needle)).unwrap();
            l[l.find(&needle).unwrap() + needle.len()..]
                .trim()
                .to_owned()
        })
        .collect();
    assert!(v.contains(&"rejected: out-of-limits".to_owned()), "{v:?}");
    assert!(
        v.iter()
            .all(|a| a == "rejected: out-of-limits" || a == "rejected: replay"),
        "{v:?}"
    );
    assert_rtos_clean(&q.output(), 1);
}
