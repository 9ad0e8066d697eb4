//! The connectivity partition: unmodified Debian Linux beside the RTOS on
//! QEMU `virt` (configs/qemu-virt.toml). Requirement IDs: docs/requirements.md.

use std::time::Duration;

use septum_qemu_tests::{
    assert_rtos_clean, boot_default, heartbeats, Qemu, LINUX_BOOT, LINUX_READY,
};

/// REQ-LNX-1, REQ-ISO-1, REQ-ISO-2: Linux boots to its shell with exactly
/// the CPUs and memory the TOML gives it, and sees no other device.
#[test]
fn linux_sees_exactly_its_cpus_memory_and_devices() {
    let mut q = boot_default();
    assert_eq!(q.linux_run("nproc").trim(), "3", "three vCPUs");
    let mem = q.linux_run("grep MemTotal /proc/meminfo");
    let kb: u64 = mem
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("MemTotal");
    // 0x7000_0000 bytes = 1835008 KiB, minus what the kernel reserves.
    assert!((1_600_000..=1_835_008).contains(&kb), "MemTotal {kb} kB");
    let iomem = q.linux_run("cat /proc/iomem");
    let ram: Vec<&str> = iomem.lines().filter(|l| l.contains("System RAM")).collect();
    assert_eq!(ram, vec!["50000000-bfffffff : System RAM"], "{iomem}");
    // Top-level resources: the GIC distributor, exactly three
    // redistributor frames (0x20000 each), its UART, its virtio transport,
    // the two frames of the emulated watchdog, the telemetry doorbell's
    // emulated PL061 (at the address of QEMU's own GPIO block, which Linux
    // is not given) and its RAM; nothing else.
    for l in iomem
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(' '))
    {
        let ok = l.starts_with("08000000-0800ffff : GICD")
            || l.starts_with("080a0000-080fffff : GICR")
            || l.starts_with("09040000-09040fff")
            || l.starts_with("0c000000-0c000fff : c000000.watchdog")
            || l.starts_with("0c001000-0c001fff : c000000.watchdog")
            || l.starts_with("0a000000-0a0001ff")
            || l.starts_with("09030000-09030fff : gpio@9030000")
            || l.starts_with("50000000-bfffffff");
        assert!(ok, "unexpected resource '{l}' in:\n{iomem}");
    }
    let devs = q.linux_run("ls /sys/bus/platform/devices");
    for forbidden in [
        "9000000.pl011",
        "9010000.pl031",
        "9030000.pl061",
        "a000200.virtio_mmio",
    ] {
        assert!(!devs.contains(forbidden), "{forbidden} visible:\n{devs}");
    }
    assert_rtos_clean(&q.output(), 1);
}

/// REQ-REC-1: the watchdog daemon that feeds the emulated watchdog runs at
/// nice -20, so that a busy userland cannot starve it into a false hang.
#[test]
fn watchdog_daemon_runs_at_the_highest_nice_level() {
    let mut q = boot_default();
    // /proc/<pid>/stat: the 19th field is the nice value (the command name
    // in field 2 has no spaces here).
    let stat = q.linux_run("cat /proc/$(pidof watchdog)/stat");
    let nice = stat.split_whitespace().nth(18);
    assert_eq!(
        nice,
        Some("-20"),
        "watchdog daemon: {stat}\n{}",
        q.linux_output()
    );
    assert!(
        q.linux_output().contains("(timeout 10s, nice -20)"),
        "{}",
        q.linux_output()
    );
    assert_rtos_clean(&q.output(), 1);
}

/// REQ-LNX-2: the status page answers from the host through the port forward.
#[test]
fn http_status_page_answers_from_the_host() {
    let q = boot_default();
    let body = q.wait_status_page();
    assert!(body.contains("cpus online: 3"), "{body}");
    assert_rtos_clean(&q.output(), 1);
}

/// Per-CPU counts of the interrupt whose /proc/interrupts line names `dev`.
fn irq_counts(q: &mut Qemu, dev: &str) -> (String, Vec<u64>) {
    let table = q.linux_run("cat /proc/interrupts");
    let line = table
        .lines()
        .find(|l| l.contains(dev))
        .unwrap_or_else(|| panic!("no '{dev}' in:\n{table}"));
    let mut f = line.split_whitespace();
    let irq = f.next().unwrap().trim_end_matches(':').to_string();
    let counts = f.take(3).map(|c| c.parse().unwrap()).collect();
    (irq, counts)
}

/// REQ-LNX-1, REQ-ISO-2: the emulated distributor's GICD_IROUTER routes a
/// passthrough SPI to the vCPU Linux chooses, and to its core only: after
/// each move every interrupt of the next traffic reaches that vCPU.
///
/// (Earlier builds let one to three interrupts still reach vCPU 0 after the
/// first move, and this test tolerated it. With the current GIC code, 11
/// runs instrumented to log any SPI arriving on a core other than its
/// route's showed none, so every move must now be exact.)
#[test]
fn spi_affinity_follows_gicd_irouter() {
    let mut q = boot_default();
    q.wait_status_page();
    for (i, cpu) in [1usize, 2, 0, 1].into_iter().enumerate() {
        let (irq, _) = irq_counts(&mut q, "virtio0");
        q.linux_run(&format!("echo {} > /proc/irq/{irq}/smp_affinity", 1 << cpu));
        // Let the last connection's trailing packets arrive first.
        q.linux_run("sleep 2");
        let (_, before) = irq_counts(&mut q, "virtio0");
        for _ in 0..5 {
            q.wait_status_page();
        }
        let (_, after) = irq_counts(&mut q, "virtio0");
        let delta: Vec<u64> = (0..3).map(|c| after[c] - before[c]).collect();
        let grew: Vec<usize> = (0..3).filter(|&c| delta[c] > 0).collect();
        assert_eq!(grew, vec![cpu], "move {i} to {cpu}: {delta:?}");
        assert!(
            delta[cpu] > 20,
            "move {i} to {cpu}: too little traffic {delta:?}"
        );
    }
    assert_rtos_clean(&q.output(), 1);
}

/// REQ-RT-3: while Linux boots and then runs a load on all its
/// CPUs (busy loops, console output, network traffic), the RTOS keeps its
/// heartbeat and misses no deadline.
#[test]
fn rtos_keeps_deadlines_while_linux_boots_and_is_loaded() {
    let mut q = boot_default();
    q.linux_send("for i in 1 2 3; do (while :; do :; done) & done");
    q.linux_send("(while :; do echo load-line-from-linux; done) &");
    let served = (0..20)
        .filter(|_| q.http_get("/cgi-bin/status").is_ok())
        .count();
    assert!(served > 0, "no HTTP traffic reached Linux");
    assert!(
        q.linux_output().contains("load-line-from-linux"),
        "console load did not start"
    );
    let n = heartbeats(&q.output()).len();
    let out = q.wait_for_count("[rtos] rtos: heartbeat ", n + 10, Duration::from_secs(300));
    assert_rtos_clean(&out, 1);
}

/// REQ-FLT-1, REQ-LNX-3: `reboot -f` (PSCI SYSTEM_RESET) and `poweroff -f`
/// (SYSTEM_OFF) restart only the Linux partition (its policy in
/// configs/qemu-virt.toml), which comes back each time. The RTOS runs on.
#[test]
fn reboot_and_poweroff_leave_the_rtos_running() {
    let mut q = boot_default();
    q.linux_send("reboot -f");
    q.wait_for(
        "partition 'linux': PSCI SYSTEM_RESET",
        Duration::from_secs(60),
    );
    q.wait_linux_count(LINUX_READY, 2, LINUX_BOOT);
    q.linux_send("poweroff -f");
    q.wait_for(
        "partition 'linux': PSCI SYSTEM_OFF",
        Duration::from_secs(60),
    );
    q.wait_linux_count(LINUX_READY, 3, LINUX_BOOT);
    let out = q.output();
    let n = heartbeats(&out).len();
    let out = q.wait_for_count("[rtos] rtos: heartbeat ", n + 3, Duration::from_secs(120));
    assert_rtos_clean(&out, 1);
}
