//! The shared console cannot stall the critical partition
//! (docs/architecture.md, "The console"). The hypervisor is built with
//! `paced-console`: its UART sends at 115200 baud with a 32-byte FIFO,
//! modelled on the counter, so QEMU shows what a board's console costs.
//! Requirement IDs: docs/requirements.md.

use std::time::Duration;

use septum_qemu_tests::{build_with_features, heartbeats, Options, Qemu};

const LIMIT: Duration = Duration::from_secs(900);

/// REQ-TIME-1: three vCPUs flood the hypervisor with faults, each an event
/// line, on a console that takes 11.5 KB/s: the RTOS misses no deadline,
/// its heartbeat watchdog never fires, none of its lines is lost, and the
/// console stays readable (whole lines, the flood summarised).
#[test]
fn a_fault_flood_on_three_cores_does_not_delay_the_rtos() {
    let image = build_with_features(
        "qemu/configs/virt-console-flood.toml",
        "console-flood-paced",
        "paced-console",
    );
    let mut q = Qemu::boot(
        &image,
        &Options {
            limit: LIMIT,
            ..Options::default()
        },
    );
    let out = q.wait_for("[rtos] rtos: heartbeat 20 ", LIMIT);
    assert!(out.contains("paced at 115200 baud (test mode)"), "{out}");
    assert!(out.contains("intruder: flood on 3 vCPUs"), "{out}");
    // The RTOS: every status line, consecutive, no miss; no watchdog.
    let hb = heartbeats(&out);
    assert!(hb.len() >= 20, "{hb:?}");
    for (i, h) in hb.iter().enumerate() {
        assert_eq!(h.n, i as u64 + 1, "an RTOS line was lost: {hb:?}");
        assert_eq!(h.misses, 0, "{h:?}");
    }
    for bad in [
        "no heartbeat within the watchdog timeout",
        "restarting partition 'rtos'",
        "PANIC",
        "FATAL",
        "SAFE STATE",
    ] {
        assert!(!out.contains(bad), "'{bad}':\n{out}");
    }
    // The flood happened and was rate-limited: every kind of fault logged,
    // then summaries of many suppressed lines.
    for kind in [
        "8-byte read of IPA 0x48000000",
        "S1_0_C7_C14_2",
        "S3_1_C15_C2_1",
    ] {
        assert!(out.contains(kind), "no '{kind}' event:\n{out}");
    }
    let suppressed: u64 = out
        .lines()
        .filter_map(|l| {
            l.split(" similar events suppressed")
                .next()
                .filter(|_| l.contains("similar events suppressed"))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(
        suppressed > 100_000,
        "only {suppressed} events suppressed:\n{out}"
    );
    // Readable: whole tagged lines only, none cut into another.
    for l in out
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("qemu-system-aarch64: "))
    {
        const TAGS: [&str; 3] = ["[septum] ", "[rtos] ", "[intruder] "];
        let tagged = TAGS.iter().any(|t| l.starts_with(t));
        assert!(tagged, "an untagged or broken line: {l:?}");
        assert_eq!(
            TAGS.iter().map(|t| l.matches(t).count()).sum::<usize>(),
            1,
            "{l:?}"
        );
    }
}
