//! The safe state is final (docs/fault-containment.md, "The safe state"):
//! whatever enters it — a spent restart budget, a failed re-verification, a
//! fault or a hang in the hypervisor itself on any core — no guest
//! instruction executes afterwards. Each test waits until the hypervisor
//! says the safe state has held for 30 s of guest time and checks that no
//! guest printed, no partition was entered or restarted meanwhile.
//! Requirement IDs: docs/requirements.md.

use std::time::Duration;

use septum_qemu_tests::{build, build_with_features, Options, Qemu};

const SAFE: &str = "*** ALARM: SAFE STATE ENTERED ***";
const HELD_10: &str = "*** SAFE STATE held for 10 s;";
const HELD_30: &str = "*** SAFE STATE held for 30 s;";
const LIMIT: Duration = Duration::from_secs(600);

/// Waits for the alarm with `cause`, then for 30 s of guest time in the
/// safe state, and checks that nothing ran in between.
fn expect_final(q: &mut Qemu, cause: &str) -> String {
    let out = q.wait_for(SAFE, LIMIT);
    let at = out.find(SAFE).unwrap();
    q.wait_for(HELD_10, LIMIT);
    let linux_then = q.linux_output().len();
    let out = q.wait_for(HELD_30, LIMIT);
    let after = &out[at..];
    assert!(after.contains(cause), "cause '{cause}' missing:\n{after}");
    for needle in [
        "[rtos]",
        "entering partition",
        "restarting partition",
        "reloaded",
        "starting at",
    ] {
        assert!(
            !after.contains(needle),
            "'{needle}' after the alarm:\n{after}"
        );
    }
    assert_eq!(
        q.linux_output().len(),
        linux_then,
        "Linux printed after the alarm:\n{}",
        &q.linux_output()[linux_then..]
    );
    out
}

/// The harness's QEMU options with a fault to inject (src/fault_inject.rs):
/// `kind` on `core`, `secs` after reset.
fn inject(kind: u64, core: u64, secs: u64) -> Options {
    let word = (0x5345_5054u64 << 32) | (secs << 16) | (kind << 8) | core;
    // The last page of configs/qemu-virt.toml's hypervisor region.
    let addr = 0x4000_0000u64 + 0x0800_0000 - 0x1000;
    Options {
        limit: LIMIT,
        extra: vec![
            "-device".into(),
            format!("loader,addr={addr:#x},data={word:#x},data-len=8"),
        ],
        ..Options::default()
    }
}

/// Boots `config` and waits until Linux is up (its watchdog armed).
fn boot_until_linux_is_up(config: &str) -> Qemu {
    let mut q = Qemu::boot(
        &build(config),
        &Options {
            limit: LIMIT,
            ..Options::default()
        },
    );
    q.wait_linux("septum-linux: ready", LIMIT);
    q
}

fn fault_inject_image() -> std::path::PathBuf {
    build_with_features("configs/qemu-virt.toml", "fault-inject", "fault-inject")
}

/// REQ-FLT-4: the scenario. The RTOS stops its heartbeat, is
/// restarted once, stops again: the budget is spent, and with Linux running
/// and its SBSA watchdog armed, nothing is restarted after the alarm.
#[test]
fn spent_budget_is_final_with_linux_running() {
    let mut q = boot_until_linux_is_up("qemu/configs/virt-failsafe.toml");
    let out = expect_final(
        &mut q,
        "the critical partition keeps failing (restart budget spent)",
    );
    assert!(out.contains("*** safe-state action: park every core ***"));
}

/// REQ-FLT-4: the RTOS's own PSCI SYSTEM_OFF (its policy: the safe state)
/// is final although restart budget is left and Linux's watchdog is armed.
#[test]
fn rtos_system_off_is_final() {
    let mut q = boot_until_linux_is_up("qemu/configs/virt-rtos-system-off.toml");
    let out = expect_final(&mut q, "PSCI SYSTEM_OFF");
    assert!(out.contains("rtos: fault-test: PSCI SYSTEM_OFF"), "{out}");
    assert!(out.contains("-> ENTERING SAFE STATE"), "{out}");
}

/// REQ-FLT-4, REQ-FLT-5: the `power-off` safe-state action: PSCI
/// SYSTEM_OFF, and QEMU powers off.
#[test]
fn power_off_action_ends_the_machine() {
    let image = build("qemu/configs/virt-failsafe-poweroff.toml");
    let mut q = Qemu::boot(
        &image,
        &Options {
            limit: LIMIT,
            ..Options::default()
        },
    );
    q.wait_for(SAFE, LIMIT);
    let status = q.wait_exit(Duration::from_secs(60));
    assert_eq!(status, Some(0), "{}", q.output());
    let out = q.output();
    assert!(
        out.contains("*** safe-state action: PSCI SYSTEM_OFF (power off) ***"),
        "{out}"
    );
}

/// REQ-FLT-3: an EL2 data abort on the RTOS's core: syndrome printed, then
/// the safe state for the whole system.
#[test]
fn hypervisor_fault_on_the_rtos_core_is_a_system_fault() {
    let mut q = Qemu::boot(&fault_inject_image(), &inject(1, 0, 3));
    let out = expect_final(&mut q, "hypervisor exception (Sync, ESR_EL2 0x96");
    assert!(
        out.contains("FATAL: hypervisor exception (Sync) on core 0"),
        "{out}"
    );
    assert!(out.contains(") on core 0 ***"), "{out}");
    assert!(out.contains("FAULT-INJECTION BUILD"));
}

/// REQ-FLT-3: the same on a Linux core, with Linux up.
#[test]
fn hypervisor_fault_on_a_linux_core_is_a_system_fault() {
    let mut q = Qemu::boot(&fault_inject_image(), &inject(1, 2, 6));
    q.wait_linux("septum-linux: ready", LIMIT);
    expect_final(&mut q, "on core 2");
}

/// REQ-FLT-3: a hypervisor panic.
#[test]
fn hypervisor_panic_is_a_system_fault() {
    let mut q = Qemu::boot(&fault_inject_image(), &inject(2, 0, 3));
    let out = expect_final(&mut q, "the hypervisor panicked on core 0");
    assert!(out.contains("PANIC on core 0: panicked at"), "{out}");
    assert!(out.contains("fault injection on core 0"), "{out}");
}

/// REQ-FLT-6: a core hung at EL2 with interrupts masked is noticed by
/// another core within the stated bound (60 ms).
#[test]
fn a_hung_core_is_noticed_by_another() {
    let mut q = Qemu::boot(&fault_inject_image(), &inject(3, 1, 6));
    let out = expect_final(&mut q, "core 1 stopped responding");
    let line = out
        .lines()
        .find(|l| l.contains("core 1 stopped responding"))
        .unwrap();
    let ms: u64 = line
        .split("no sign of life for ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!((50..=60).contains(&ms), "{line}");
}

/// REQ-FLT-4: a critical image that fails its re-verification before a
/// restart: the safe state (the RTOS test build stops its heartbeat, so a
/// restart is attempted).
#[test]
fn failed_reverification_before_a_restart_is_final() {
    let image = build_with_features(
        "qemu/configs/virt-failsafe.toml",
        "failsafe-inject",
        "fault-inject",
    );
    let mut q = Qemu::boot(&image, &inject(4, 0, 0));
    expect_final(&mut q, "its image failed verification before a restart");
}

/// EL2 protects itself (docs/fault-containment.md, "EL2 protects itself"):
/// the injected fault on core `core` is stopped by the EL2 map, reported
/// with `needle`, and ends in the safe state like any hypervisor fault.
fn el2_map_stops(kind: u64, core: u64, needles: &[&str]) {
    let mut q = Qemu::boot(&fault_inject_image(), &inject(kind, core, 2));
    let out = q.wait_for(HELD_10, LIMIT);
    let at = out
        .find("fault injection:")
        .expect("the fault was injected");
    let after = &out[at..];
    assert!(
        after.contains(&format!(
            "FATAL: hypervisor exception (Sync) on core {core}"
        )),
        "{after}"
    );
    for n in needles {
        assert!(after.contains(n), "'{n}' missing:\n{after}");
    }
    assert!(after.contains(SAFE), "{after}");
    let alarm = &after[after.find(SAFE).unwrap()..];
    assert!(
        !alarm.contains("[rtos]"),
        "the RTOS ran after the alarm:\n{alarm}"
    );
}

/// REQ-FLT-7: a core that overflows its EL2 stack faults on the guard page
/// below it (instead of writing over the next core's stack), and the fault
/// is reported from the emergency stack.
#[test]
fn an_el2_stack_overflow_stops_at_its_guard_page() {
    el2_map_stops(
        5,
        1,
        &["in the guard page below core 1's EL2 stack: a stack overflow"],
    );
}

/// REQ-FLT-7: the hypervisor's code is not writable (a permission fault:
/// data abort, EC 0x25, DFSC 0b0011xx, WnR).
#[test]
fn el2_code_is_not_writable() {
    el2_map_stops(6, 0, &["(EC 0x25)", "ESR_EL2 0x9600004"]);
}

/// REQ-FLT-7: the pristine guest images are read-only at EL2.
#[test]
fn pristine_images_are_not_writable() {
    el2_map_stops(7, 0, &["(EC 0x25)", "ESR_EL2 0x9600004"]);
}

/// REQ-FLT-7: writable memory is never executable at EL2 (an instruction
/// abort, EC 0x21, on a permission fault).
#[test]
fn el2_stacks_are_not_executable() {
    el2_map_stops(8, 0, &["(EC 0x21)"]);
}
