//! Fault containment and recovery (docs/fault-containment.md) on QEMU
//! `virt`: whatever Linux does, the RTOS keeps every deadline and Linux
//! comes back on its own. Requirement IDs: docs/requirements.md.
//! Timing checks run under `-icount shift=0,sleep=off` (the default).

use std::time::Duration;

use septum_qemu_tests::{assert_rtos_clean, build, build_derived, heartbeats, Options, Qemu};

const CONFIG: &str = "configs/qemu-virt.toml";
const READY: &str = "septum-linux: ready";
const BOOT: Duration = Duration::from_secs(300);

fn boot(limit: Duration) -> Qemu {
    boot_image(&build(CONFIG), limit)
}

fn boot_image(image: &std::path::Path, limit: Duration) -> Qemu {
    let mut q = Qemu::boot(
        image,
        &Options {
            limit,
            ..Options::default()
        },
    );
    q.wait_linux(READY, BOOT);
    q
}

/// Linux is back at its shell (the `n`th "ready") and serves its page.
fn expect_linux_back(q: &mut Qemu, n: usize) {
    q.wait_linux_count(READY, n, BOOT);
    let echo = q.linux_run("echo back-$((6*7))");
    assert!(echo.contains("back-42"), "no shell: {echo}");
    q.wait_status_page();
}

/// Waits until `secs` more RTOS heartbeats (virtual seconds) have passed.
fn let_time_pass(q: &mut Qemu, secs: usize) -> String {
    let n = heartbeats(&q.output()).len();
    q.wait_for_count(
        "[rtos] rtos: heartbeat ",
        n + secs,
        Duration::from_secs(300),
    )
}

/// What each failure mode is, how it is triggered from Linux, and what the
/// hypervisor console must say about it.
struct Mode {
    name: &'static str,
    trigger: &'static str,
    detected: &'static str,
    /// Wall time allowed for the detection.
    within: Duration,
}

const PANIC: Mode = Mode {
    name: "kernel panic with panic=-1 (sysrq c)",
    trigger: "echo c > /proc/sysrq-trigger",
    detected: "partition 'linux': PSCI SYSTEM_RESET -> restarting partition",
    within: BOOT,
};
const PANIC_SPINS: Mode = Mode {
    name: "kernel panic that spins (panic=0, sysrq c)",
    trigger: "echo 0 > /proc/sys/kernel/panic; echo c > /proc/sysrq-trigger",
    detected: "partition 'linux': its watchdog expired (no refresh) -> restarting partition",
    // A spinning guest slows QEMU's -icount about 30-fold for every
    // partition (issue 13; docs/fault-containment.md, "QEMU and spinning
    // guests"): each guest second of the spin takes 15-30 wall seconds.
    within: Duration::from_secs(900),
};
const REBOOT: Mode = Mode {
    name: "reboot -f",
    trigger: "reboot -f",
    detected: "partition 'linux': PSCI SYSTEM_RESET -> restarting partition",
    within: BOOT,
};
const POWEROFF: Mode = Mode {
    name: "poweroff -f",
    trigger: "poweroff -f",
    detected: "-> restarting partition",
    within: BOOT,
};
const WATCHDOG_KILLED: Mode = Mode {
    name: "watchdog daemon killed (a hang as the watchdog sees it)",
    trigger: "kill -9 $(pidof watchdog)",
    detected: "partition 'linux': its watchdog expired (no refresh) -> restarting partition",
    within: BOOT,
};

/// Triggers `m` and waits until Linux is back for the `n`th time.
fn crash_and_recover(q: &mut Qemu, m: &Mode, n: usize) {
    let before = q.output().matches(m.detected).count();
    q.linux_send(m.trigger);
    q.wait_for_count(m.detected, before + 1, m.within);
    expect_linux_back(q, n);
    eprintln!("recovered from: {}", m.name);
}

/// REQ-REC-1, REQ-REC-2, REQ-RT-3: every way Linux can die — a panic that
/// reboots, a panic that spins, reboot -f, poweroff -f, a dead watchdog
/// daemon — is detected and Linux comes back at its shell and serves its
/// page; the RTOS misses nothing and is never touched.
///
/// Linux's watchdog is 3 s here instead of the shipped 10 s (Linux's driver
/// takes it over 1 s after the partition starts): the spin before it expires
/// is the crawl of docs/fault-containment.md, and the shorter timeout keeps
/// the test inside its limits on a loaded 2-core machine. The soak below
/// runs the shipped 10 s (its killed-watchdog-daemon cycles).
#[test]
fn linux_comes_back_from_every_failure_mode() {
    let image = build_derived(
        CONFIG,
        "virt-linux-watchdog-3s",
        &[("timeout-ms = 10000", "timeout-ms = 3000")],
    );
    let mut q = boot_image(&image, Duration::from_secs(1800));
    let mut n = 1;
    for m in [&PANIC, &PANIC_SPINS, &REBOOT, &POWEROFF, &WATCHDOG_KILLED] {
        n += 1;
        crash_and_recover(&mut q, m, n);
        // Stay well inside the restart budget (10 a minute).
        let_time_pass(&mut q, 6);
    }
    assert_rtos_clean(&q.output(), 3);
}

/// REQ-ISO-1, REQ-ISO-2, REQ-REC-1: Linux (root, /dev/mem) attacking memory
/// and devices outside its partition — the RTOS's RAM, the hypervisor's,
/// a GIC redistributor frame it was not given, the hypervisor's UART —
/// gets an abort (the process dies with SIGBUS), and Linux carries on.
#[test]
fn linux_attacks_are_aborted_and_linux_carries_on() {
    let mut q = boot(Duration::from_secs(600));
    for (what, addr) in [
        ("RTOS RAM", "0x48000000"),
        ("hypervisor RAM", "0x40200000"),
        (
            "a GIC redistributor frame beyond Linux's three",
            "0x08100000",
        ),
        ("hypervisor console UART", "0x09000000"),
    ] {
        let out = q.linux_run(&format!("devmem {addr} 32 0xdeadbeef; echo rc=$?"));
        assert!(
            out.contains("Bus error") || out.contains("rc=135") || out.contains("rc=1"),
            "{what}: the write did not fault: {out}"
        );
        // Queued on the faulting core, drained by another: wait for it.
        let ipa = u64::from_str_radix(&addr[2..], 16).unwrap();
        q.wait_for(&format!("IPA {ipa:#x}"), Duration::from_secs(30));
        let read = q.linux_run(&format!("devmem {addr} 32; echo rc=$?"));
        assert!(!read.contains("0xDEADBEEF"), "{what}: {read}");
    }
    // Linux is still up, unrestarted, and serving.
    expect_linux_back(&mut q, 1);
    let out = let_time_pass(&mut q, 3);
    assert!(!out.contains("partition 'linux': reloaded"), "{out}");
    assert_rtos_clean(&out, 3);
}

/// REQ-REC-2, REQ-REC-3, REQ-RT-3: soak — 20 crash/restart cycles of mixed
/// modes in a row. Every restart succeeds, the RTOS heartbeat never stalls
/// and it misses no deadline, and the hypervisor's memory use stays the same.
#[test]
fn soak_twenty_crash_restart_cycles() {
    let mut q = boot(Duration::from_secs(2400));
    let modes = [&PANIC, &REBOOT, &POWEROFF, &PANIC, &WATCHDOG_KILLED];
    for i in 0..20 {
        crash_and_recover(&mut q, modes[i % modes.len()], i + 2);
        let_time_pass(&mut q, 7);
    }
    let out = q.output();
    assert_rtos_clean(&out, 3);
    let heaps: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once("hypervisor heap: ").map(|(_, r)| r))
        .collect();
    assert_eq!(heaps.len(), 20, "one reload line per restart:\n{out}");
    assert!(
        heaps.windows(2).all(|w| w[0] == w[1]),
        "memory use changed: {heaps:?}"
    );
    assert!(!out.contains("restart budget spent"), "{out}");
}

/// REQ-REC-4: the RTOS watchdog. An RTOS build that stops its heartbeat
/// after 5 s is restarted by the hypervisor's heartbeat watchdog; when it
/// keeps failing, the restart budget ends in the safe state
/// (qemu/configs/virt-rtos-watchdog.toml).
#[test]
fn rtos_heartbeat_watchdog_restarts_then_enters_the_safe_state() {
    let image = build("qemu/configs/virt-rtos-watchdog.toml");
    let mut q = Qemu::boot(&image, &Options::default());
    let out = q.wait_for(
        "*** ALARM: SAFE STATE ENTERED ***",
        Duration::from_secs(180),
    );
    let detected =
        "partition 'rtos': no heartbeat within the watchdog timeout -> restarting partition";
    assert_eq!(out.matches(detected).count(), 3, "{out}");
    assert_eq!(
        out.matches("partition 'rtos': reloaded").count(),
        2,
        "{out}"
    );
    assert_eq!(
        out.matches("rtos: septum-rtos 0.1.0 starting").count(),
        3,
        "{out}"
    );
    assert!(out.contains("restart budget spent"), "{out}");
    // Detection is prompt: the heartbeat stops at 5 s of RTOS time, and the
    // first restart follows before another status line could.
    let first = out.find(detected).unwrap();
    let stop = out.find("rtos: fault-test: stopping heartbeat").unwrap();
    assert!(stop < first);
    assert!(!out[stop..first].contains("rtos: heartbeat "), "{out}");
}
