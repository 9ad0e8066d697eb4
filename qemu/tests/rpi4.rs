//! The Raspberry Pi 4 platform on QEMU `raspi4b` (docs/raspberry-pi-4.md):
//! the GIC-400 (GICv2) backend, the firmware's spin table, the same RTOS
//! image, containment and measured boot, as on `virt`. Requirement IDs:
//! docs/requirements.md.

use std::fs;
use std::time::Duration;

use std::process::Command;

use septum_qemu_tests::{
    assert_rtos_clean, build, heartbeats, repo_root, Machine, Options, Qemu, LINUX_BOOT,
    LINUX_READY,
};

const CONFIG: &str = "configs/rpi4.toml";
const SAFE: &str = "*** ALARM: SAFE STATE ENTERED ***";

fn pi() -> Options {
    Options {
        machine: Machine::Raspi4b,
        ..Options::default()
    }
}

/// REQ-PORT-2, REQ-RT-1: on the Pi the hypervisor drives the GIC-400,
/// releases the secondaries from the firmware's spin table, and the RTOS
/// (the same image as on `virt`) keeps every deadline on the emulated GICv2.
#[test]
fn rtos_keeps_its_deadlines_on_raspi4b() {
    let image = build(CONFIG);
    let mut q = Qemu::boot(&image, &pi());
    let out = q.wait_for("[rtos] rtos: heartbeat 10 ", Duration::from_secs(180));
    assert!(out.contains("[septum] GICv2: "), "GICv2 backend:\n{out}");
    // Each secondary reports from its own code once out of the spin table.
    assert!(
        out.contains("[septum] core 1: entering partition 'linux'"),
        "core 1 left the spin table:\n{out}"
    );
    for core in 2..=3 {
        let vcpu = core - 1;
        assert!(
            out.contains(&format!(
                "[septum] core {core}: vCPU {vcpu} of 'linux' waits for PSCI CPU_ON"
            )),
            "core {core} left the spin table:\n{out}"
        );
    }
    assert!(
        out.contains("[rtos] rtos: gic: GICv2 distributor 0xff841000"),
        "the RTOS found its GICv2:\n{out}"
    );
    let hb = heartbeats(&out);
    assert!(hb.len() >= 10, "ten heartbeats: {hb:?}");
    assert!(hb.iter().all(|h| h.misses == 0), "{out}");
    assert!(hb.last().unwrap().cycles >= 9_900, "{hb:?}");
    assert!(!out.contains("PANIC") && !out.contains("FATAL"), "{out}");
}

/// REQ-PORT-2, REQ-BOOT-1: given the Pi 4's own device tree (Debian's
/// `bcm2711-rpi-4-b.dtb`, the one scripts/mk-sdcard.sh puts on the card) in
/// x0 as the firmware passes it, the hypervisor reads it (QEMU NOPs out the
/// nodes it does not model), translates the /soc addresses and finds the
/// machine its configuration describes.
#[test]
fn the_pi_device_tree_matches_the_configuration() {
    let out = repo_root().join("target/septum/sdcard-test");
    let st = Command::new(repo_root().join("scripts/mk-sdcard.sh"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run scripts/mk-sdcard.sh");
    assert!(st.success(), "mk-sdcard.sh failed");
    let image = build(CONFIG);
    let mut q = Qemu::boot(
        &image,
        &Options {
            dtb: Some(out.join("bcm2711-rpi-4-b.dtb")),
            ..pi()
        },
    );
    let out = q.wait_for("[rtos] rtos: heartbeat 2 ", Duration::from_secs(120));
    assert!(
        out.contains("[septum] platform: Raspberry Pi 4 Model B (4 cores, device tree ")
            && out.contains("matches the configuration"),
        "{out}"
    );
    assert!(!out.contains("platform check"), "{out}");
}

/// REQ-PORT-2: the hypervisor's console may be the mini-UART instead of the
/// PL011 (QEMU's second serial port); the RTOS's output follows it.
#[test]
fn hypervisor_console_on_the_mini_uart() {
    let image = build("qemu/configs/rpi4-miniuart-console.toml");
    let mut q = Qemu::boot(&image, &pi());
    let out = q.wait_linux("[rtos] rtos: heartbeat 2 ", Duration::from_secs(120));
    assert!(out.contains("[septum] GICv2: "), "{out}");
    assert!(
        !q.output().contains("[septum]"),
        "the PL011 was used:\n{}",
        q.output()
    );
}

/// REQ-PORT-2, REQ-ISO-1, REQ-FLT-1: the intruder's attacks end in
/// injected aborts on the Pi too, and the RTOS does not notice.
#[test]
fn intruder_gets_aborts_on_raspi4b() {
    let image = build("qemu/configs/rpi4-intruder-abort.toml");
    let mut q = Qemu::boot(&image, &pi());
    let out = q.wait_for(
        "[intruder] intruder: survived all attacks",
        Duration::from_secs(120),
    );
    assert_eq!(
        out.matches("[intruder] intruder: caught exception").count(),
        4,
        "{out}"
    );
    assert_eq!(out.matches("abort injected").count(), 4, "{out}");
    let before = heartbeats(&out).len();
    let out = q.wait_for_count(
        "[rtos] rtos: heartbeat ",
        before + 3,
        Duration::from_secs(120),
    );
    assert!(heartbeats(&out).iter().all(|h| h.misses == 0), "{out}");
    assert!(!out.contains("PANIC") && !out.contains("FATAL"), "{out}");
}

/// A copy of the rpi4 image with one bit flipped in the middle of `file`'s
/// bytes inside it.
fn with_flipped_bit(file: &str, name: &str) -> std::path::PathBuf {
    let mut img = fs::read(build(CONFIG)).expect("image");
    let data = fs::read(repo_root().join(file)).expect("file");
    let at = img
        .windows(64)
        .position(|w| w == &data[..64])
        .unwrap_or_else(|| panic!("{file} inside the hypervisor image"));
    img[at + data.len() / 2] ^= 0x10;
    let dir = repo_root().join("target/septum/tampered");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.img"));
    fs::write(&path, img).unwrap();
    path
}

/// REQ-PORT-2, REQ-MB-3: a Linux initramfs with one flipped bit is not
/// started on the Pi; the RTOS runs on without a miss.
#[test]
fn tampered_linux_initrd_is_not_started_on_raspi4b() {
    let path = with_flipped_bit(
        "target/septum/linux-generic/initramfs.cpio.gz",
        "rpi4-initrd-bit",
    );
    let mut q = Qemu::boot(&path, &pi());
    q.wait_for(
        "partition 'linux' failed verification (image 'initrd': DIGEST MISMATCH); it is not started",
        Duration::from_secs(120),
    );
    let out = q.wait_for_count("[rtos] rtos: heartbeat ", 3, Duration::from_secs(120));
    assert!(heartbeats(&out).iter().all(|h| h.misses == 0), "{out}");
    assert!(!out.contains("entering partition 'linux'"), "{out}");
    assert!(
        q.linux_output().is_empty(),
        "Linux ran:\n{}",
        q.linux_output()
    );
}

/// REQ-PORT-2, REQ-MB-2, REQ-MB-3: one flipped bit in the RTOS image is
/// caught by the portable or ARMv8 SHA-256, whichever the core has, and
/// the Pi enters the safe state with no guest run.
#[test]
fn tampered_rtos_image_enters_the_safe_state_on_raspi4b() {
    let path = with_flipped_bit("target/septum/guests/septum-rtos.bin", "rpi4-rtos-bit");

    let mut q = Qemu::boot(&path, &pi());
    q.wait_for(SAFE, Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(3));
    let out = q.output();
    assert!(
        out.contains("measured rtos/rtos") && out.contains("DIGEST MISMATCH"),
        "{out}"
    );
    assert!(!out.contains("[rtos]"), "the RTOS ran:\n{out}");
    assert!(!out.contains("entering partition"), "{out}");
}

/// REQ-PORT-2, REQ-LNX-1, REQ-ISO-1: Debian's generic kernel boots on the
/// Pi's three Linux cores with exactly its RAM, its console on the
/// mini-UART, its telemetry doorbell, and no other device of the board.
#[test]
fn linux_sees_exactly_its_cpus_memory_and_devices_on_raspi4b() {
    let image = build(CONFIG);
    let mut q = Qemu::boot(&image, &pi());
    q.wait_linux(LINUX_READY, LINUX_BOOT);
    assert_eq!(q.linux_run("nproc").trim(), "3", "three vCPUs");
    let iomem = q.linux_run("cat /proc/iomem");
    let ram: Vec<&str> = iomem.lines().filter(|l| l.contains("System RAM")).collect();
    assert_eq!(ram, vec!["09000000-3affffff : System RAM"], "{iomem}");
    for l in iomem
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(' '))
    {
        let ok = l.starts_with("09000000-3affffff")
            || l.starts_with("3f000000-3f000fff : 3f000000.watchdog")
            || l.starts_with("3f001000-3f001fff : 3f000000.watchdog")
            || l.starts_with("3f100000-3f100fff : gpio@3f100000")
            || l.starts_with("fe215000-fe215007 : fe215000.aux")
            || l.starts_with("fe215040-fe21507f")
            || l.starts_with("ff841000-ff841fff")
            || l.starts_with("ff842000-ff843fff");
        assert!(ok, "unexpected resource '{l}' in:\n{iomem}");
    }
    // Linux's own AUX clock driver holds the mini-UART's enable bit (on
    // the board nothing else sets it while the firmware uses the PL011).
    let aux = q.linux_run("ls /sys/bus/platform/drivers/bcm2835-aux-clk/");
    assert!(
        aux.contains("fe215000.aux"),
        "AUX clock driver not bound: {aux}"
    );
    // REQ-CHN-8 on a GICv2: the telemetry doorbell (the emulated PL061 at
    // 0x3f100000) wakes Linux's reader for each record.
    let f = q.linux_run("septum-telemetry --follow 2; echo rc=$?");
    assert!(f.contains("rc=0"), "{f}");
    let woken = f
        .lines()
        .filter(|l| l.starts_with("follow: woken by doorbell ("))
        .count();
    assert_eq!(woken, 2, "{f}");
    let out = q.wait_for_count("[rtos] rtos: heartbeat ", 3, Duration::from_secs(120));
    assert_rtos_clean(&out, 3);
}

/// REQ-PORT-2, REQ-REC-1, REQ-ISO-1: on the Pi, Linux's writes to the
/// RTOS's and the hypervisor's RAM and to the hypervisor's UART end in
/// aborts; a panic that reboots and one that spins (caught by the emulated
/// watchdog) both bring Linux back; the RTOS misses nothing.
#[test]
fn linux_attacks_and_crashes_are_contained_on_raspi4b() {
    let image = build(CONFIG);
    let mut q = Qemu::boot(
        &image,
        &Options {
            limit: Duration::from_secs(1500),
            ..pi()
        },
    );
    q.wait_linux(LINUX_READY, LINUX_BOOT);
    for (what, addr) in [
        ("RTOS RAM", "0x08000000"),
        ("hypervisor RAM", "0x00200000"),
        ("hypervisor console UART", "0xfe201000"),
    ] {
        let out = q.linux_run(&format!("devmem {addr} 32 0xdeadbeef; echo rc=$?"));
        assert!(
            out.contains("Bus error") || out.contains("rc=135") || out.contains("rc=1"),
            "{what}: the write did not fault: {out}"
        );
        // The hypervisor's line is queued on the faulting core and drained
        // by another: wait for it rather than look once (it failed that
        // way under load).
        let ipa = u64::from_str_radix(&addr[2..], 16).unwrap();
        q.wait_for(&format!("IPA {ipa:#x}"), Duration::from_secs(30));
    }
    let mut n = 1;
    // The spinning panic needs 10 s of guest time for the watchdog, and a
    // spinning core makes QEMU's icount crawl (docs/fault-containment.md,
    // "QEMU and spinning guests"): under a loaded host 300 s of wall time
    // covered 3 s of it once, so that step gets fault.rs's 15 minutes.
    for (trigger, detected, within) in [
        (
            "echo c > /proc/sysrq-trigger",
            "partition 'linux': PSCI SYSTEM_RESET -> restarting partition",
            LINUX_BOOT,
        ),
        (
            "echo 0 > /proc/sys/kernel/panic; echo c > /proc/sysrq-trigger",
            "partition 'linux': its watchdog expired (no refresh) -> restarting partition",
            Duration::from_secs(900),
        ),
    ] {
        let before = q.output().matches(detected).count();
        q.linux_send(trigger);
        q.wait_for_count(detected, before + 1, within);
        n += 1;
        q.wait_linux_count(LINUX_READY, n, LINUX_BOOT);
        let echo = q.linux_run("echo back-$((6*7))");
        assert!(
            echo.contains("back-42"),
            "no shell after '{trigger}': {echo}"
        );
    }
    assert_rtos_clean(&q.output(), 3);
}

/// REQ-FLT-5: the `gpio` safe-state action on `raspi4b`: the RTOS asks for
/// PSCI SYSTEM_OFF (policy: the safe state), and the hypervisor drives GPIO
/// 21 high through the BCM2711 GPIO block; QEMU's GPIO model reads it back
/// high. Then the safe state holds with no guest output.
#[test]
fn gpio_safe_state_action_on_raspi4b() {
    let image = build("qemu/configs/rpi4-failsafe-gpio.toml");
    let mut q = Qemu::boot(
        &image,
        &Options {
            limit: Duration::from_secs(600),
            ..pi()
        },
    );
    let out = q.wait_for("*** SAFE STATE held for 10 s;", Duration::from_secs(600));
    let at = out.find(SAFE).expect("the alarm");
    let after = &out[at..];
    assert!(after.contains("PSCI SYSTEM_OFF"), "{after}");
    assert!(
        after.contains("*** GPIO 21 driven high; it reads back high ***"),
        "{after}"
    );
    assert!(!after.contains("[rtos]"), "{after}");
    assert!(!after.contains("entering partition"), "{after}");
}
