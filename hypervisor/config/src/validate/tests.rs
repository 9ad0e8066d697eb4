//! One test per rule: each breaks a valid fixture (tests/fixtures/good.toml,
//! or linux.toml for the Linux and device-tree rules) in one way (or several
//! related ways) and checks that exactly the intended rule fires, at the
//! right place; boundary cases check what must still pass.

use std::path::{Path, PathBuf};

use super::super::diag::Diagnostics;
use super::super::model::{FaultAction, ValidatedConfig};
use super::super::rules::Rule;
use super::super::{load_str, parse};

const GOOD: &str = include_str!("../../tests/fixtures/good.toml");

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good.toml")
}

/// The fixture with each `old` (which must occur exactly once) replaced.
fn patch(edits: &[(&str, &str)]) -> String {
    let mut s = GOOD.to_owned();
    for (old, new) in edits {
        assert_eq!(
            s.matches(old).count(),
            1,
            "fixture must contain {old:?} exactly once"
        );
        s = s.replacen(old, new, 1);
    }
    s
}

fn check(text: &str) -> Result<ValidatedConfig, Diagnostics> {
    load_str(&fixture_path(), text)
}

#[track_caller]
fn ok(text: &str) -> ValidatedConfig {
    check(text).unwrap_or_else(|d| panic!("expected a valid configuration, got:\n{d}"))
}

/// Asserts that `text` breaks `rule` and no other rule, with some message
/// containing `msg`.
#[track_caller]
fn fails(text: &str, rule: Rule, msg: &str) -> Diagnostics {
    let d = fails_with(text, rule, msg);
    assert!(
        d.errors().iter().all(|e| e.rule == rule),
        "expected only {}, got:\n{d}",
        rule.id()
    );
    d
}

/// Like [`fails`], but other rules may fire too.
#[track_caller]
fn fails_with(text: &str, rule: Rule, msg: &str) -> Diagnostics {
    let Err(d) = check(text) else {
        panic!(
            "expected {} to fire, but the configuration passed",
            rule.id()
        )
    };
    assert!(
        d.errors()
            .iter()
            .any(|e| e.rule == rule && e.message.contains(msg)),
        "expected {} with a message containing {msg:?}, got:\n{d}",
        rule.id()
    );
    d
}

/// `good.toml:line:col` of the first occurrence of `needle` in `text[from..]`.
fn loc(text: &str, needle: &str, from: usize) -> String {
    let at = from
        + text[from..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in text"));
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("good.toml:{line}:{col}")
}

#[track_caller]
fn assert_at(d: &Diagnostics, text: &str, needle: &str, from: usize) {
    let want = loc(text, needle, from);
    assert!(
        d.to_string().contains(&want),
        "expected an error at {want}:\n{d}"
    );
}

const RTOS_RAM: &str =
    r#"{ name = "ram", ipa = 0x4000_0000, pa = 0x4800_0000, size = 0x0100_0000, perms = "rwx" },"#;
const RTOS_SHM: &str = r#"{ name = "shm", ipa = 0x5000_0000, pa = 0x4900_0000, size = 0x1000, perms = "rw", shared-with = ["linux"] },"#;
const LINUX_RAM: &str =
    r#"{ name = "ram", ipa = 0x4000_0000, pa = 0x5000_0000, size = 0x1000_0000, perms = "rwx" },"#;
const LINUX_SHM: &str = r#"{ name = "shm", ipa = 0x7000_0000, pa = 0x4900_0000, size = 0x1000, perms = "rw", shared-with = ["rtos"] },"#;
const VUART: &str = r#"{ name = "console", kind = "virtual-uart", ipa = 0x0900_0000 },"#;
const UART1: &str = r#"{ name = "uart1", kind = "passthrough", pa = 0x0904_0000, ipa = 0x0904_0000, size = 0x1000, irqs = [40] },"#;
const GIC: &str = "gic = { version = 3, gicd = 0x0800_0000, gicr = 0x080a_0000, gicr-stride = 0x2_0000, maintenance-irq = 25 }";
const CPU_BOOT: &str = r#"cpu-boot = { method = "psci", conduit = "smc" }"#;
const LINUX_CORES: &str = "cores = [1, 2, 3]";

/// An extra region in the rtos partition.
fn rtos_region(region: &str) -> String {
    patch(&[(RTOS_RAM, &format!("{RTOS_RAM}\n    {region}"))])
}

/// An extra device in the rtos partition.
fn rtos_device(device: &str) -> String {
    patch(&[(VUART, &format!("{VUART}\n    {device}"))])
}

#[test]
fn the_fixture_is_valid() {
    let cfg = ok(GOOD);
    assert_eq!(cfg.name, "good");
    assert_eq!(cfg.partitions.len(), 2);
    assert_eq!(cfg.partitions[0].vmid, 1);
    assert_eq!(cfg.partitions[1].vmid, 2);
    assert_eq!(cfg.partitions[1].id, 1);
    assert_eq!(cfg.partitions[0].images[0].len, 43);
    assert!(cfg.partitions[0].images[0].path.is_absolute());
    // Defaults of omitted fault-policy keys.
    let fp = cfg.partitions[0].fault_policy;
    assert_eq!(fp.access_violation, FaultAction::InjectAbort);
    assert_eq!(fp.illegal_instruction, FaultAction::InjectAbort);
    assert_eq!(fp.system_reset, FaultAction::Restart);
    assert_eq!(fp.system_off, FaultAction::SafeState);
    assert_eq!((fp.max_restarts, fp.restart_window_ms), (3, 60_000));
    assert_eq!(cfg.dependencies().len(), 4);
}

#[test]
fn the_rpi4_fixture_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpi4.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    if let Err(d) = load_str(&path, &text) {
        panic!("{d}");
    }
}

/// CFG-09: the safe-state action and what each needs.
#[test]
fn cfg09_safe_state_action() {
    use crate::model::SafeStateAction;
    let with = |ss: &str| patch(&[(CPU_BOOT, &format!("{CPU_BOOT}\nsafe-state = {ss}"))]);
    // Absent: park.
    assert_eq!(ok(GOOD).platform.safe_state, SafeStateAction::Park);
    let c = ok(&with(r#"{ action = "park" }"#));
    assert_eq!(c.platform.safe_state, SafeStateAction::Park);
    let c = ok(&with(r#"{ action = "power-off" }"#));
    assert_eq!(c.platform.safe_state, SafeStateAction::PowerOff);
    fails(
        &with(r#"{ action = "explode" }"#),
        Rule::SafeStateAction,
        "safe-state action \"explode\" is not park, power-off or gpio",
    );
    fails(
        &with(r#"{ action = "park", pin = 4 }"#),
        Rule::SafeStateAction,
        "`pin` belongs to the gpio action, not park",
    );
    fails(
        &with(r#"{ action = "gpio", pin = 4, level = "high" }"#),
        Rule::SafeStateAction,
        "board rpi4 only",
    );
    // Power-off needs firmware PSCI.
    let spin = patch(&[(
        CPU_BOOT,
        r#"cpu-boot = { method = "spin-table", release = [0x4000_00e0, 0x4000_00e8, 0x4000_00f0] }
safe-state = { action = "power-off" }"#,
    )]);
    fails(&spin, Rule::SafeStateAction, "no firmware PSCI");

    // The Raspberry Pi: a GPIO line, which no partition may then be given.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpi4.toml");
    let rpi = std::fs::read_to_string(&path).unwrap();
    let boot = r#"cpu-boot = { method = "spin-table", release = [0xe0, 0xe8, 0xf0] }"#;
    assert!(rpi.contains(boot));
    let pi = |ss: &str| rpi.replacen(boot, &format!("{boot}\nsafe-state = {ss}"), 1);
    let c = load_str(
        &path,
        &pi(r#"{ action = "gpio", pin = 42, level = "low" }"#),
    )
    .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        c.platform.safe_state,
        SafeStateAction::Gpio {
            pin: 42,
            high: false
        }
    );
    for (ss, msg) in [
        (
            r#"{ action = "gpio", pin = 58, level = "high" }"#,
            "GPIO 58 does not exist",
        ),
        (r#"{ action = "gpio", level = "high" }"#, "needs `pin`"),
        (r#"{ action = "gpio", pin = 3 }"#, "needs `level"),
        (
            r#"{ action = "gpio", pin = 3, level = "on" }"#,
            "level \"on\" is neither",
        ),
        (r#"{ action = "power-off" }"#, "no firmware PSCI"),
    ] {
        let d = load_str(&path, &pi(ss)).unwrap_err();
        assert!(
            d.errors()
                .iter()
                .any(|e| e.rule == Rule::SafeStateAction && e.message.contains(msg)),
            "{ss}: {d}"
        );
    }
    // CFG-31: the GPIO page is the hypervisor's once it drives the alarm.
    let gpio_dev = pi(r#"{ action = "gpio", pin = 42, level = "high" }"#).replacen(
        "pa = 0xfe34_0000, ipa = 0xfe34_0000",
        "pa = 0xfe20_0000, ipa = 0xfe34_0000",
        1,
    );
    let d = load_str(&path, &gpio_dev).unwrap_err();
    assert!(
        d.errors()
            .iter()
            .any(|e| e.rule == Rule::DeviceReserved && e.message.contains("the GPIO block")),
        "{d}"
    );
}

#[test]
fn all_errors_are_reported_not_just_the_first() {
    let text = patch(&[
        ("cpus = 4", "cpus = 9"),
        (LINUX_CORES, "cores = []"),
        (
            "fault-policy = { system-off",
            "fault-policy = { system-reset = \"inject-abort\", system-off",
        ),
    ]);
    let d = check(&text).unwrap_err();
    for r in [Rule::PlatformCpus, Rule::CoreNone, Rule::InjectAbort] {
        assert!(d.has(r), "missing {}:\n{d}", r.id());
    }
}

/// CFG-00: syntax errors, unknown keys, wrong types and missing keys name
/// file, line and column.
#[test]
fn cfg00_parse_errors() {
    let text = patch(&[("cpus = 4", "cpus = 4\ncpu = 4")]);
    let d = fails(&text, Rule::Parse, "unknown field `cpu`");
    assert_at(&d, &text, "cpu = 4", 0);

    let text = patch(&[("cpus = 4", "cpus = \"4\"")]);
    let d = fails(&text, Rule::Parse, "invalid type");
    assert_at(&d, &text, "\"4\"", 0);

    let text = patch(&[("load-addr = 0x4020_0000", "load-addr = -1")]);
    fails(&text, Rule::Parse, "expected u64");

    let text = patch(&[("load-addr = 0x4020_0000\n", "")]);
    fails(&text, Rule::Parse, "missing field `load-addr`");

    let text = patch(&[("[platform]", "[platform")]);
    fails(&text, Rule::Parse, "");

    let text = patch(&[(RTOS_RAM, &RTOS_RAM.replace("\"rwx\"", "\"rwxs\""))]);
    fails(&text, Rule::Parse, "unknown variant `rwxs`");

    let d = super::super::load(Path::new("/nonexistent/septum.toml")).unwrap_err();
    assert!(d.has(Rule::Parse));
    assert!(
        d.to_string()
            .contains("/nonexistent/septum.toml:1:1: cannot read"),
        "{d}"
    );
}

/// CFG-01: 1 <= cpus <= MAX_CPUS.
#[test]
fn cfg01_cpu_count() {
    ok(&patch(&[("cpus = 4", "cpus = 8")]));
    let text = patch(&[("cpus = 4", "cpus = 9")]);
    let d = fails(&text, Rule::PlatformCpus, "between 1 and 8");
    assert_at(&d, &text, "9", 0);
    fails(
        &patch(&[("cpus = 4", "cpus = 0")]),
        Rule::PlatformCpus,
        "cpus is 0",
    );
}

/// CFG-02: RAM and MMIO exist, are aligned and disjoint; touching is fine.
#[test]
fn cfg02_platform_memory_map() {
    let ram = "ram = [{ base = 0x4000_0000, size = 0x8000_0000 }]";
    fails(
        &patch(&[(ram, "ram = []")]),
        Rule::PlatformMemoryMap,
        "platform.ram is empty",
    );
    fails(
        &patch(&[(
            "mmio = [{ base = 0x0800_0000, size = 0x3800_0000 }]",
            "mmio = []",
        )]),
        Rule::PlatformMemoryMap,
        "platform.mmio is empty",
    );
    // Unaligned size, which also makes the window run into RAM.
    let d = fails(
        &patch(&[("size = 0x3800_0000", "size = 0x3800_0800")]),
        Rule::PlatformMemoryMap,
        "size 0x3800_0800 is not 4 KiB aligned",
    );
    assert!(
        d.errors().iter().any(|e| e.message.contains("overlaps")),
        "{d}"
    );
    fails(
        &patch(&[(ram, "ram = [{ base = 0x4000_0000, size = 0x8000_0000 }, { base = 0xbfff_f000, size = 0x2000 }]")]),
        Rule::PlatformMemoryMap,
        "RAM bank [0xbfff_f000, 0xc000_1000) overlaps RAM bank",
    );
    // Two touching banks; the MMIO window already touches RAM.
    ok(&patch(&[(ram, "ram = [{ base = 0x4000_0000, size = 0x4000_0000 }, { base = 0x8000_0000, size = 0x4000_0000 }]")]));
}

/// CFG-03: hypervisor region aligned, inside one RAM bank (may end at its end).
#[test]
fn cfg03_hypervisor_region() {
    let hyp = "hypervisor = { base = 0x4000_0000, size = 0x0800_0000 }";
    fails(
        &patch(&[(
            hyp,
            "hypervisor = { base = 0x4000_0000, size = 0x07ff_f800 }",
        )]),
        Rule::HypervisorRegion,
        "hypervisor size 0x7ff_f800 is not 4 KiB aligned",
    );
    fails(
        &patch(&[(
            hyp,
            "hypervisor = { base = 0x3ff0_0000, size = 0x0800_0000 }",
        )]),
        Rule::HypervisorRegion,
        "is not inside one RAM bank",
    );
    ok(&patch(&[
        (
            hyp,
            "hypervisor = { base = 0xb800_0000, size = 0x0800_0000 }",
        ),
        ("load-addr = 0x4020_0000", "load-addr = 0xb820_0000"),
    ]));
}

/// CFG-04: load-addr aligned and inside the hypervisor region (end exclusive).
#[test]
fn cfg04_load_addr() {
    let la = "load-addr = 0x4020_0000";
    fails(
        &patch(&[(la, "load-addr = 0x4020_0800")]),
        Rule::LoadAddr,
        "not 4 KiB aligned",
    );
    fails(
        &patch(&[(la, "load-addr = 0x4800_0000")]),
        Rule::LoadAddr,
        "outside the hypervisor region",
    );
    ok(&patch(&[(la, "load-addr = 0x47ff_f000")]));
    ok(&patch(&[(la, "load-addr = 0x4000_0000")]));
}

/// CFG-05: version 2 or 3, the right keys, aligned frames, sane stride.
#[test]
fn cfg05_gic_form() {
    fails(
        &patch(&[(GIC, &GIC.replace("version = 3", "version = 4"))]),
        Rule::GicForm,
        "must be 2 or 3",
    );
    fails(
        &patch(&[(GIC, &GIC.replace("gicr = 0x080a_0000, ", ""))]),
        Rule::GicForm,
        "a GICv3 needs `gicr`",
    );
    fails(
        &patch(&[(
            GIC,
            &GIC.replace("maintenance-irq", "gicc = 0x0801_0000, maintenance-irq"),
        )]),
        Rule::GicForm,
        "`gicc` is a GICv2 key",
    );
    fails(
        &patch(&[(
            GIC,
            &GIC.replace("gicr-stride = 0x2_0000", "gicr-stride = 0x1_0000"),
        )]),
        Rule::GicForm,
        "gicr-stride 0x1_0000 must be a multiple of 64 KiB",
    );
    fails(
        &patch(&[(
            GIC,
            &GIC.replace("gicd = 0x0800_0000", "gicd = 0x0800_1000"),
        )]),
        Rule::GicForm,
        "GICD base 0x800_1000 is not aligned to 64 KiB",
    );
    fails(
        &patch(&[(GIC, "gic = { version = 2, gicd = 0x0800_0000, gicc = 0x0801_0000, gicv = 0x0804_0000, maintenance-irq = 25 }")]),
        Rule::GicForm,
        "a GICv2 needs `gich`",
    );
    ok(&patch(&[(
        GIC,
        "gic = { version = 2, gicd = 0x0800_0000, gicc = 0x0801_0000, gich = 0x0803_0000, gicv = 0x0804_0000, maintenance-irq = 25 }",
    )]));
}

/// CFG-06: the maintenance interrupt is a PPI.
#[test]
fn cfg06_maintenance_irq() {
    for bad in [15, 32] {
        let text = patch(&[(
            GIC,
            &GIC.replace("maintenance-irq = 25", &format!("maintenance-irq = {bad}")),
        )]);
        fails(&text, Rule::MaintenanceIrq, "is not a PPI");
    }
    for good in [16, 31] {
        ok(&patch(&[(
            GIC,
            &GIC.replace("maintenance-irq = 25", &format!("maintenance-irq = {good}")),
        )]));
    }
}

/// CFG-07: console page and GIC frames inside MMIO, not overlapping each other.
#[test]
fn cfg07_platform_mmio() {
    let console = r#"console = { kind = "pl011", base = 0x0900_0000 }"#;
    fails(
        &patch(&[(
            console,
            r#"console = { kind = "pl011", base = 0x0600_0000 }"#,
        )]),
        Rule::PlatformMmio,
        "console UART page [0x600_0000, 0x600_1000) is not inside",
    );
    // GICR block of 4 cores * 128 KiB: ending one page past the window fails,
    // ending exactly at its end passes.
    fails(
        &patch(&[(
            GIC,
            &GIC.replace("gicr = 0x080a_0000", "gicr = 0x3ffa_0000"),
        )]),
        Rule::PlatformMmio,
        "the GICR frame [0x3ffa_0000, 0x4002_0000) is not inside",
    );
    ok(&patch(&[(
        GIC,
        &GIC.replace("gicr = 0x080a_0000", "gicr = 0x3ff8_0000"),
    )]));
    fails(
        &patch(&[(
            console,
            r#"console = { kind = "pl011", base = 0x0800_f000 }"#,
        )]),
        Rule::PlatformMmio,
        "overlaps the console UART page",
    );
}

/// CFG-08: psci needs a valid conduit; spin-table needs cpus-1 good addresses.
#[test]
fn cfg08_cpu_boot() {
    fails(
        &patch(&[(CPU_BOOT, r#"cpu-boot = { method = "psci" }"#)]),
        Rule::CpuBoot,
        "psci needs `conduit",
    );
    fails(
        &patch(&[(
            CPU_BOOT,
            r#"cpu-boot = { method = "psci", conduit = "svc" }"#,
        )]),
        Rule::CpuBoot,
        "conduit \"svc\" is neither",
    );
    ok(&patch(&[(
        CPU_BOOT,
        r#"cpu-boot = { method = "psci", conduit = "hvc" }"#,
    )]));
    fails(
        &patch(&[(
            CPU_BOOT,
            r#"cpu-boot = { method = "psci", conduit = "smc", release = [0x4000_00e0] }"#,
        )]),
        Rule::CpuBoot,
        "`release` belongs to spin-table",
    );
    let spin = |rel: &str| {
        patch(&[(
            CPU_BOOT,
            &format!(r#"cpu-boot = {{ method = "spin-table", release = [{rel}] }}"#),
        )])
    };
    ok(&spin("0x4000_00e0, 0x4000_00e8, 0x4000_00f0"));
    fails(
        &spin("0x4000_00e0, 0x4000_00e8"),
        Rule::CpuBoot,
        "needs exactly 3",
    );
    fails(
        &spin("0x4000_00e0, 0x4000_00e8, 0x4000_00f4"),
        Rule::CpuBoot,
        "not 8-byte aligned",
    );
    fails(
        &spin("0xe0, 0x4000_00e8, 0x4000_00f0"),
        Rule::CpuBoot,
        "release address 0xe0 is not in RAM",
    );
    fails(
        &patch(&[
            (
                CPU_BOOT,
                r#"cpu-boot = { method = "spin-table", release = [0x4000_00e0, 0x4000_00e8, 0x4000_00f0, 0x4000_00f8] }"#,
            ),
            ("cpus = 4", "cpus = 5"),
        ]),
        Rule::CpuBoot,
        "spin-table boots at most 4 cores",
    );
    fails(
        &patch(&[(CPU_BOOT, r#"cpu-boot = { method = "spin-table" }"#)]),
        Rule::CpuBoot,
        "needs `release`",
    );
}

/// CFG-10: at least one partition.
#[test]
fn cfg10_no_partition() {
    let text = &GOOD[..GOOD.find("[[partition]]").unwrap()];
    let d = fails(text, Rule::PartitionCount, "at least one partition");
    assert!(d.to_string().contains("good.toml:1:1"), "{d}");
}

/// CFG-11: exactly one critical partition.
#[test]
fn cfg11_one_critical() {
    let text = patch(&[
        (
            "criticality = \"critical\"",
            "criticality = \"non-critical\"",
        ),
        ("fault-policy = { system-off = \"safe-state\" }", ""),
    ]);
    fails(&text, Rule::OneCritical, "no partition is critical");
    let text = patch(&[(
        "criticality = \"non-critical\"",
        "criticality = \"critical\"",
    )]);
    let d = fails(&text, Rule::OneCritical, "2 partitions are critical");
    assert_at(&d, &text, "\"critical\"\ncores = [1", 0);
}

/// CFG-12: names are non-empty, [a-z0-9-].
#[test]
fn cfg12_partition_name() {
    let rename = |n: &str| {
        patch(&[
            ("name = \"linux\"", &format!("name = \"{n}\"")),
            (
                "shared-with = [\"linux\"]",
                &format!("shared-with = [\"{n}\"]"),
            ),
        ])
    };
    fails(&rename("Linux"), Rule::PartitionName, "contains 'L'");
    fails(&rename("linux_1"), Rule::PartitionName, "contains '_'");
    fails(&rename(""), Rule::PartitionName, "partition name is empty");
    ok(&rename("linux-2"));
}

const EXTRA: &str = r#"
[[partition]]
name = "extra"
criticality = "non-critical"
cores = [3]
entry = 0x4000_0000
memory = [{ name = "ram", ipa = 0x4000_0000, pa = 0x6000_0000, size = 0x1000, perms = "rx" }]
"#;

/// The fixture plus a third small partition on core 3.
fn with_extra(extra: &str) -> String {
    patch(&[(LINUX_CORES, "cores = [1, 2]")]) + extra
}

/// CFG-13: names are unique.
#[test]
fn cfg13_partition_name_unique() {
    ok(&with_extra(EXTRA));
    let text = with_extra(&EXTRA.replace("name = \"extra\"", "name = \"rtos\""));
    let d = fails(
        &text,
        Rule::PartitionNameUnique,
        "already a partition named \"rtos\"",
    );
    assert!(d.errors()[0].notes[0]
        .message
        .contains("first defined here"));
}

/// CFG-14: region, device and image names unique per list, non-empty.
#[test]
fn cfg14_item_names() {
    fails(
        &patch(&[(RTOS_SHM, &RTOS_SHM.replace("\"shm\"", "\"ram\""))]),
        Rule::ItemNames,
        "already has a memory region named \"ram\"",
    );
    fails(
        &patch(&[(VUART, &VUART.replace("\"console\"", "\"\""))]),
        Rule::ItemNames,
        "device name is empty",
    );
    // The same name in different lists or partitions is fine.
    ok(&patch(&[(VUART, &VUART.replace("\"console\"", "\"ram\""))]));
}

/// CFG-15: cores exist (the last one, cpus-1, does).
#[test]
fn cfg15_core_exists() {
    let text = patch(&[(LINUX_CORES, "cores = [1, 2, 4]")]);
    let d = fails(&text, Rule::CoreExists, "core 4 does not exist");
    assert_at(&d, &text, "4]", 0);
}

/// CFG-16: no core twice in one partition.
#[test]
fn cfg16_core_duplicate() {
    fails(
        &patch(&[(LINUX_CORES, "cores = [1, 2, 2]")]),
        Rule::CoreDuplicate,
        "core 2 is listed twice",
    );
}

/// CFG-17: at least one core.
#[test]
fn cfg17_core_none() {
    fails(
        &patch(&[(LINUX_CORES, "cores = []")]),
        Rule::CoreNone,
        "partition `linux` has no cores",
    );
}

/// CFG-18: cores are never shared.
#[test]
fn cfg18_core_shared() {
    let text = patch(&[(LINUX_CORES, "cores = [0, 1, 2]")]);
    let d = fails(
        &text,
        Rule::CoreShared,
        "core 0 already belongs to partition `rtos`",
    );
    assert_at(&d, &text, "0, 1, 2]", 0);
}

/// CFG-19: no range of size 0.
#[test]
fn cfg19_range_empty() {
    fails(
        &rtos_region(
            r#"{ name = "x", ipa = 0x6000_0000, pa = 0x6000_0000, size = 0, perms = "r" },"#,
        ),
        Rule::RangeEmpty,
        "memory region `x` of partition `rtos` has size 0",
    );
    fails(
        &patch(&[(UART1, &UART1.replace("size = 0x1000", "size = 0"))]),
        Rule::RangeEmpty,
        "device `uart1` of partition `linux` has size 0",
    );
    fails(
        &patch(&[("ram = [{ base = 0x4000_0000, size = 0x8000_0000 }]", "ram = [{ base = 0x4000_0000, size = 0x8000_0000 }, { base = 0x1_0000_0000, size = 0 }]")]),
        Rule::RangeEmpty,
        "RAM bank has size 0",
    );
    fails(
        &patch(&[(
            "hypervisor = { base = 0x4000_0000, size = 0x0800_0000 }",
            "hypervisor = { base = 0x4000_0000, size = 0 }",
        )]),
        Rule::RangeEmpty,
        "hypervisor region has size 0",
    );
}

/// CFG-20: base + size beyond 2^64. TOML integers stop at 2^63 - 1, so the
/// values are planted into the parsed file directly.
#[test]
fn cfg20_range_overflow() {
    let dir = fixture_path().parent().unwrap().to_path_buf();
    let run = |pa: u64| {
        let mut file = parse::parse(GOOD).unwrap();
        // The rtos RAM region, size 0x100_0000.
        *file.partition[0].get_mut().memory.get_mut()[0]
            .get_mut()
            .pa
            .get_mut() = pa;
        super::validate(&file, &fixture_path(), &dir).unwrap_err()
    };
    let errs = run(u64::MAX - 0xfff);
    assert!(
        errs.iter().all(|e| e.rule == Rule::RangeOverflow),
        "{errs:?}"
    );
    assert!(
        errs[0]
            .message
            .contains("pa 0xffff_ffff_ffff_f000 + size 0x100_0000 overflows"),
        "{errs:?}"
    );
    // A range ending exactly at 2^64 cannot be represented either.
    let errs = run(0u64.wrapping_sub(0x100_0000));
    assert!(
        errs.iter().all(|e| e.rule == Rule::RangeOverflow),
        "{errs:?}"
    );
    // One region size lower it fits in 64 bits (and then is simply not in RAM).
    let errs = run(0u64.wrapping_sub(0x200_0000));
    assert!(errs.iter().all(|e| e.rule == Rule::MemInRam), "{errs:?}");
}

/// CFG-21: memory region ipa, pa, size page-aligned.
#[test]
fn cfg21_memory_alignment() {
    let text = patch(&[(
        RTOS_RAM,
        &RTOS_RAM.replace("ipa = 0x4000_0000", "ipa = 0x4000_0800"),
    )]);
    let d = fails(
        &text,
        Rule::MemAlign,
        "ipa 0x4000_0800 is not 4 KiB aligned",
    );
    assert_at(&d, &text, "0x4000_0800", 0);
    fails(
        &patch(&[(
            LINUX_RAM,
            &LINUX_RAM.replace("size = 0x1000_0000", "size = 0x1000_0800"),
        )]),
        Rule::MemAlign,
        "size 0x1000_0800 is not 4 KiB aligned",
    );
}

/// CFG-22: memory inside one RAM bank; ending exactly at the bank's end is fine.
#[test]
fn cfg22_memory_in_ram() {
    ok(&patch(&[(
        RTOS_RAM,
        &RTOS_RAM.replace("pa = 0x4800_0000", "pa = 0xbf00_0000"),
    )]));
    fails(
        &patch(&[(
            RTOS_RAM,
            &RTOS_RAM.replace("pa = 0x4800_0000", "pa = 0xbf00_1000"),
        )]),
        Rule::MemInRam,
        "PA range [0xbf00_1000, 0xc000_1000) is not inside one RAM bank",
    );
    // Across two touching banks: still not inside *one*.
    fails(
        &patch(&[
            ("ram = [{ base = 0x4000_0000, size = 0x8000_0000 }]", "ram = [{ base = 0x4000_0000, size = 0x4000_0000 }, { base = 0x8000_0000, size = 0x4000_0000 }]"),
            (RTOS_RAM, &RTOS_RAM.replace("pa = 0x4800_0000", "pa = 0x7ff0_0000")),
        ]),
        Rule::MemInRam,
        "not inside one RAM bank",
    );
}

/// CFG-23: memory never overlaps the hypervisor; touching its end is fine.
#[test]
fn cfg23_memory_vs_hypervisor() {
    let text = patch(&[(
        RTOS_RAM,
        &RTOS_RAM.replace("pa = 0x4800_0000", "pa = 0x47ff_f000"),
    )]);
    let d = fails(
        &text,
        Rule::MemHypervisor,
        "overlaps the hypervisor region [0x4000_0000, 0x4800_0000)",
    );
    assert_at(&d, &text, "0x47ff_f000", 0);
    // The fixture's rtos RAM starts right at the hypervisor's end.
    ok(GOOD);
}

/// CFG-24: PA overlap only for identical, mutually shared regions.
#[test]
fn cfg24_memory_overlap() {
    let text = patch(&[(
        LINUX_RAM,
        &LINUX_RAM.replace("pa = 0x5000_0000", "pa = 0x48ff_f000"),
    )]);
    let d = fails(
        &text,
        Rule::MemOverlap,
        "overlaps memory region `ram` of partition `rtos`",
    );
    assert_at(&d, &text, "0x48ff_f000", 0);
    // Touching the shared page: fine.
    ok(&patch(&[(
        LINUX_RAM,
        &LINUX_RAM.replace("pa = 0x5000_0000", "pa = 0x4900_1000"),
    )]));
    // Shared by one side only.
    fails(
        &patch(&[(
            LINUX_SHM,
            &LINUX_SHM.replace(r#", shared-with = ["rtos"]"#, ""),
        )]),
        Rule::MemOverlap,
        "both regions name each other's partition",
    );
    // Mutually shared, but not identical.
    fails_with(
        &patch(&[(
            LINUX_SHM,
            &LINUX_SHM.replace("size = 0x1000", "size = 0x2000"),
        )]),
        Rule::MemOverlap,
        "identical PA ranges",
    );
    // Within one partition.
    fails(
        &rtos_region(
            r#"{ name = "alias", ipa = 0x6000_0000, pa = 0x4880_0000, size = 0x1000, perms = "r" },"#,
        ),
        Rule::MemOverlap,
        "of partition `rtos` overlap in PA",
    );
}

/// CFG-25: shared-with names another existing partition that reciprocates.
#[test]
fn cfg25_shared_with() {
    fails(
        &patch(&[(
            RTOS_SHM,
            &RTOS_SHM.replace(r#"["linux"]"#, r#"["linux", "nobody"]"#),
        )]),
        Rule::SharedWith,
        "there is no partition `nobody`",
    );
    fails(
        &patch(&[(
            RTOS_SHM,
            &RTOS_SHM.replace(r#"["linux"]"#, r#"["linux", "rtos"]"#),
        )]),
        Rule::SharedWith,
        "names its own partition `rtos`",
    );
    fails(
        &patch(&[(
            RTOS_SHM,
            &RTOS_SHM.replace(r#"["linux"]"#, r#"["linux", "linux"]"#),
        )]),
        Rule::SharedWith,
        "lists `linux` twice",
    );
    // Declared shared, but linux has nothing there.
    fails(
        &patch(&[(
            LINUX_SHM,
            r#"{ name = "shm", ipa = 0x7000_0000, pa = 0x4900_1000, size = 0x1000, perms = "rw" },"#,
        )]),
        Rule::SharedWith,
        "`linux` has no memory region with the same PA range [0x4900_0000, 0x4900_1000)",
    );
    fails(
        &patch(&[(
            UART1,
            &UART1.replace("irqs = [40]", r#"irqs = [40], shared-with = ["rtos"]"#),
        )]),
        Rule::SharedWith,
        "`rtos` has no passthrough device overlapping",
    );
}

/// CFG-26: one partition's IPA ranges are disjoint (memory and devices).
#[test]
fn cfg26_ipa_overlap() {
    let text = patch(&[(
        RTOS_SHM,
        &RTOS_SHM.replace("ipa = 0x5000_0000", "ipa = 0x40ff_f000"),
    )]);
    let d = fails(
        &text,
        Rule::IpaOverlap,
        "memory region `shm` at IPA [0x40ff_f000, 0x4100_0000) overlaps memory region `ram`",
    );
    assert_at(&d, &text, "0x40ff_f000", 0);
    ok(&patch(&[(
        RTOS_SHM,
        &RTOS_SHM.replace("ipa = 0x5000_0000", "ipa = 0x4100_0000"),
    )]));
    fails(
        &patch(&[(
            VUART,
            &VUART.replace("ipa = 0x0900_0000", "ipa = 0x4000_0000"),
        )]),
        Rule::IpaOverlap,
        "device `console` at IPA [0x4000_0000, 0x4000_1000) overlaps memory region `ram`",
    );
    // Different partitions may use the same IPAs (both RAMs start at 0x4000_0000).
    ok(GOOD);
}

/// CFG-27: IPA ranges end at or below 2^39.
#[test]
fn cfg27_ipa_limit() {
    ok(&patch(&[(
        RTOS_SHM,
        &RTOS_SHM.replace("ipa = 0x5000_0000", "ipa = 0x7f_ffff_f000"),
    )]));
    fails(
        &patch(&[(
            RTOS_SHM,
            &RTOS_SHM.replace("ipa = 0x5000_0000", "ipa = 0x80_0000_0000"),
        )]),
        Rule::IpaLimit,
        "ends above 2^39",
    );
    fails(
        &patch(&[(
            VUART,
            &VUART.replace("ipa = 0x0900_0000", "ipa = 0x80_0000_0000"),
        )]),
        Rule::IpaLimit,
        "ends above 2^39",
    );
}

/// CFG-28: the keys each device kind takes.
#[test]
fn cfg28_device_form() {
    fails(
        &patch(&[(UART1, &UART1.replace(", pa = 0x0904_0000", ""))]),
        Rule::DeviceForm,
        "a passthrough device needs `pa`",
    );
    fails(
        &patch(&[(
            VUART,
            &VUART.replace("ipa = 0x0900_0000", "ipa = 0x0900_0000, irqs = [33]"),
        )]),
        Rule::DeviceForm,
        "`irqs` does not apply to a virtual-uart",
    );
}

/// CFG-29: device addresses page-aligned.
#[test]
fn cfg29_device_alignment() {
    fails(
        &patch(&[(
            UART1,
            &UART1.replace(", pa = 0x0904_0000", ", pa = 0x0904_0800"),
        )]),
        Rule::DeviceAlign,
        "pa 0x904_0800 is not 4 KiB aligned",
    );
    fails(
        &patch(&[(
            VUART,
            &VUART.replace("ipa = 0x0900_0000", "ipa = 0x0900_0800"),
        )]),
        Rule::DeviceAlign,
        "ipa 0x900_0800 is not 4 KiB aligned",
    );
}

/// CFG-30: passthrough inside one MMIO window; the last page is fine.
#[test]
fn cfg30_device_in_mmio() {
    fails(
        &patch(&[(
            UART1,
            &UART1.replace(", pa = 0x0904_0000", ", pa = 0x4000_0000"),
        )]),
        Rule::DeviceInMmio,
        "PA range [0x4000_0000, 0x4000_1000) is not inside one platform MMIO window",
    );
    ok(&patch(&[(
        UART1,
        &UART1.replace(", pa = 0x0904_0000", ", pa = 0x3fff_f000"),
    )]));
}

/// CFG-31: the GIC and the console page stay with the hypervisor.
#[test]
fn cfg31_device_reserved() {
    let at = |pa: &str| {
        patch(&[(
            UART1,
            &UART1.replace(", pa = 0x0904_0000", &format!(", pa = {pa}")),
        )])
    };
    fails(
        &at("0x0800_0000"),
        Rule::DeviceReserved,
        "overlaps the GIC GICD frame",
    );
    fails(
        &at("0x0900_0000"),
        Rule::DeviceReserved,
        "overlaps the console UART page",
    );
    // Last page of the GICR block of 4 cores, then the page after it.
    fails(
        &at("0x0811_f000"),
        Rule::DeviceReserved,
        "overlaps the GIC GICR frame",
    );
    ok(&at("0x0812_0000"));
}

/// CFG-32: passthrough PA ranges disjoint unless mutually shared.
#[test]
fn cfg32_device_overlap() {
    let dev = r#"{ name = "uart1", kind = "passthrough", pa = 0x0904_0000, ipa = 0x0a00_0000, size = 0x1000 },"#;
    let text = rtos_device(dev);
    let d = fails(
        &text,
        Rule::DeviceOverlap,
        "devices may overlap only when both name each other's partition",
    );
    assert!(d.errors()[0].notes[0].message.contains("the other device"));
    ok(&patch(&[
        (
            VUART,
            &format!(
                "{VUART}\n    {}",
                dev.replace("size = 0x1000", r#"size = 0x1000, shared-with = ["linux"]"#)
            ),
        ),
        (
            UART1,
            &UART1.replace("irqs = [40]", r#"irqs = [40], shared-with = ["rtos"]"#),
        ),
    ]));
    fails(
        &patch(&[(
            UART1,
            &format!(
                "{UART1}\n    {}",
                dev.replace("0x0a00_0000", "0x0a00_1000")
                    .replace("uart1", "uart1b")
            ),
        )]),
        Rule::DeviceOverlap,
        "devices of one partition must not overlap",
    );
}

/// CFG-33: irqs are SPIs, 32..=1019.
#[test]
fn cfg33_irq_range() {
    let irqs = |l: &str| {
        patch(&[(
            UART1,
            &UART1.replace("irqs = [40]", &format!("irqs = [{l}]")),
        )])
    };
    fails(
        &irqs("31"),
        Rule::IrqRange,
        "irq 31 is not an SPI (32..=1019) (it is a PPI",
    );
    fails(&irqs("1020"), Rule::IrqRange, "irq 1020 is not an SPI");
    fails(&irqs("3"), Rule::IrqRange, "it is an SGI");
    ok(&irqs("32, 1019"));
    // The maintenance interrupt (normally a PPI, so CFG-06 fires too).
    let text = patch(&[(
        GIC,
        &GIC.replace("maintenance-irq = 25", "maintenance-irq = 40"),
    )]);
    fails_with(
        &text,
        Rule::IrqRange,
        "irq 40 is the GIC maintenance interrupt",
    );
}

/// CFG-34: one owner per irq, unless the devices are shared.
#[test]
fn cfg34_irq_unique() {
    let other = r#"{ name = "gpio", kind = "passthrough", pa = 0x0903_0000, ipa = 0x0903_0000, size = 0x1000, irqs = [40] },"#;
    fails(&rtos_device(other), Rule::IrqUnique, "irq 40 of device `uart1` (partition `linux`) is already routed to device `gpio` of partition `rtos`");
    fails(
        &patch(&[(UART1, &UART1.replace("irqs = [40]", "irqs = [40, 41, 40]"))]),
        Rule::IrqUnique,
        "irq 40 is listed twice for device `uart1`",
    );
    // A device shared by both partitions may deliver its irq to both.
    ok(&patch(&[
        (
            VUART,
            &format!(
                "{VUART}\n    {}",
                UART1.replace("irqs = [40]", r#"irqs = [40], shared-with = ["linux"]"#)
            ),
        ),
        (
            UART1,
            &UART1.replace("irqs = [40]", r#"irqs = [40], shared-with = ["rtos"]"#),
        ),
    ]));
}

/// CFG-35: DMA masters need identity mapping (no IOMMU).
#[test]
fn cfg35_dma_identity() {
    let text = patch(&[(
        UART1,
        &UART1.replace("irqs = [40]", "irqs = [40], dma = true"),
    )]);
    let d = fails(
        &text,
        Rule::DmaIdentity,
        "DMA masters need identity mapping (no IOMMU)",
    );
    assert_eq!(
        d.len(),
        2,
        "both linux regions are not identity-mapped:\n{d}"
    );
    // Identity-mapped linux (shared page mapped at its PA too): fine.
    ok(&patch(&[
        (
            UART1,
            &UART1.replace("irqs = [40]", "irqs = [40], dma = true"),
        ),
        (
            LINUX_RAM,
            &LINUX_RAM.replace("ipa = 0x4000_0000", "ipa = 0x5000_0000"),
        ),
        (
            LINUX_SHM,
            &LINUX_SHM.replace("ipa = 0x7000_0000", "ipa = 0x4900_0000"),
        ),
        (
            "entry = 0x4020_0000\nboot-arg",
            "entry = 0x5020_0000\nboot-arg",
        ),
        (
            r#"file = "linux.bin", load = 0x4020_0000"#,
            r#"file = "linux.bin", load = 0x5020_0000"#,
        ),
        (
            r#"file = "rtos.bin", load = 0x4400_0000"#,
            r#"file = "rtos.bin", load = 0x5400_0000"#,
        ),
    ]));
}

/// CFG-36: image files exist; the message says which path was tried.
#[test]
fn cfg36_image_file() {
    let text = patch(&[(
        r#"file = "rtos.bin", load = 0x4020_0000"#,
        r#"file = "../missing/rtos.bin", load = 0x4020_0000"#,
    )]);
    let d = fails(
        &text,
        Rule::ImageFile,
        "cannot read \"../missing/rtos.bin\": tried ",
    );
    let tried = std::fs::canonicalize(env!("CARGO_MANIFEST_DIR"))
        .unwrap()
        .join("tests/missing/rtos.bin");
    assert!(d.to_string().contains(&tried.display().to_string()), "{d}");
    assert_at(&d, &text, "\"../missing/rtos.bin\"", 0);
    // A directory is not an image.
    fails(
        &patch(&[(
            r#"file = "rtos.bin", load = 0x4020_0000"#,
            r#"file = ".", load = 0x4020_0000"#,
        )]),
        Rule::ImageFile,
        "is not a regular file",
    );
}

/// CFG-37: image files are not empty.
#[test]
fn cfg37_image_empty() {
    fails(
        &patch(&[(
            r#"file = "rtos.bin", load = 0x4020_0000"#,
            r#"file = "empty.bin", load = 0x4020_0000"#,
        )]),
        Rule::ImageEmpty,
        "is empty",
    );
}

/// CFG-38: an image fits in one region; ending exactly at its end is fine.
#[test]
fn cfg38_image_fits() {
    let load = |at: &str| {
        patch(&[(
            r#"file = "rtos.bin", load = 0x4020_0000"#,
            &format!(r#"file = "rtos.bin", load = {at}"#),
        )])
    };
    // rtos.bin is 43 bytes; rtos RAM ends at 0x4100_0000.
    ok(&load(&format!("{:#x}", 0x4100_0000 - 43)));
    fails(
        &load(&format!("{:#x}", 0x4100_0000 - 42)),
        Rule::ImageFits,
        "past the end of memory region `ram` [0x4000_0000, 0x4100_0000)",
    );
    fails(
        &load("0x6000_0000"),
        Rule::ImageFits,
        "load address 0x6000_0000 is not inside any memory region",
    );
}

/// CFG-39: a partition's images don't overlap; touching is fine.
#[test]
fn cfg39_image_overlap() {
    let dtb = r#"file = "rtos.bin", load = 0x4400_0000"#;
    // linux.bin is 51 bytes at 0x4020_0000.
    ok(&patch(&[(
        dtb,
        &format!(r#"file = "rtos.bin", load = {:#x}"#, 0x4020_0000 + 51),
    )]));
    fails(
        &patch(&[(
            dtb,
            &format!(r#"file = "rtos.bin", load = {:#x}"#, 0x4020_0000 + 50),
        )]),
        Rule::ImageOverlap,
        "image `dtb` [0x4020_0032, 0x4020_005d) overlaps image `kernel`",
    );
}

/// CFG-40: the entry point lies in an executable region.
#[test]
fn cfg40_entry() {
    let entry = "entry = 0x4020_0000\nmemory";
    fails(
        &patch(&[(entry, "entry = 0x6000_0000\nmemory")]),
        Rule::Entry,
        "is not inside any of its memory regions",
    );
    let text = patch(&[(entry, "entry = 0x5000_0000\nmemory")]);
    let d = fails(
        &text,
        Rule::Entry,
        "lies in memory region `shm`, which is not executable",
    );
    assert_at(&d, &text, "0x5000_0000\nmemory", 0);
    ok(&patch(&[(entry, "entry = 0x40ff_fffc\nmemory")]));
}

/// CFG-41: inject-abort only for faults.
#[test]
fn cfg41_inject_abort() {
    let fp = "fault-policy = { system-off = \"safe-state\" }";
    fails(
        &patch(&[(
            fp,
            "fault-policy = { system-reset = \"inject-abort\", system-off = \"safe-state\" }",
        )]),
        Rule::InjectAbort,
        "system-reset = \"inject-abort\"",
    );
    fails(
        &patch(&[(fp, "fault-policy = { system-off = \"inject-abort\" }")]),
        Rule::InjectAbort,
        "system-off = \"inject-abort\"",
    );
    ok(&patch(&[(fp, "fault-policy = { access-violation = \"inject-abort\", illegal-instruction = \"inject-abort\" }")]));
}

/// CFG-42: safe-state only in the critical partition.
#[test]
fn cfg42_safe_state() {
    let fp = "fault-policy = { access-violation = \"stop\",";
    fails(
        &patch(&[(fp, "fault-policy = { access-violation = \"safe-state\",")]),
        Rule::SafeState,
        "non-critical partition `linux`",
    );
    ok(&patch(&[("fault-policy = { system-off = \"safe-state\" }", "fault-policy = { access-violation = \"safe-state\", illegal-instruction = \"safe-state\", system-reset = \"safe-state\", system-off = \"safe-state\" }")]));
}

/// CFG-43: the restart budget.
#[test]
fn cfg43_restart_budget() {
    let fp = "max-restarts = 5, restart-window-ms = 10000";
    let with = |s: &str| patch(&[(fp, s)]);
    fails(
        &with("max-restarts = -1, restart-window-ms = 10000"),
        Rule::RestartBudget,
        "max-restarts is -1",
    );
    fails(
        &with("max-restarts = 4294967296, restart-window-ms = 10000"),
        Rule::RestartBudget,
        "between 0 and 4294967295",
    );
    fails(
        &with("max-restarts = 5, restart-window-ms = 0"),
        Rule::RestartBudget,
        "restart-window-ms is 0",
    );
    // No restarts at all, while system-reset is left at its default "restart".
    let d = fails(
        &with("max-restarts = 0"),
        Rule::RestartBudget,
        "system-reset defaults to \"restart\"",
    );
    let text = with("max-restarts = 0");
    assert_at(&d, &text, "0 }\n", text.rfind("max-restarts").unwrap());
    fails(
        &with("system-off = \"restart\", system-reset = \"stop\", max-restarts = 0"),
        Rule::RestartBudget,
        "system-off is \"restart\"",
    );
    ok(&with(
        "system-reset = \"stop\", max-restarts = 0, restart-window-ms = 0",
    ));
    // The u32 bound of CFG-43 on the window; max-restarts is capped lower by
    // CFG-45.
    ok(&with("max-restarts = 16, restart-window-ms = 4294967295"));
}

/// CFG-44: VMIDs are 8 bits, so at most 255 partitions (the cores run out
/// long before, which the other rules report).
#[test]
fn cfg44_partition_limit() {
    let platform = &GOOD[..GOOD.find("[[partition]]").unwrap()];
    let with = |n: usize| {
        let mut t = platform.to_owned();
        for i in 0..n {
            let crit = if i == 0 { "critical" } else { "non-critical" };
            t.push_str(&format!(
                "[[partition]]\nname = \"p{i}\"\ncriticality = \"{crit}\"\ncores = []\nentry = 0\nmemory = []\n"
            ));
        }
        t
    };
    let d = check(&with(255)).unwrap_err();
    assert!(!d.has(Rule::PartitionLimit), "{d}");
    let text = with(256);
    let d = fails_with(
        &text,
        Rule::PartitionLimit,
        "256 partitions: at most 255 fit, since partition n gets VMID n + 1 and VMIDs are 8 bits (partition `p255` would get VMID 256)",
    );
    assert_at(&d, &text, "\"p255\"", 0);
}

/// CFG-45: the restart budget holds at most 16 restarts.
#[test]
fn cfg45_restart_capacity() {
    let fp = "max-restarts = 5, restart-window-ms = 10000";
    ok(&patch(&[(
        fp,
        "max-restarts = 16, restart-window-ms = 10000",
    )]));
    let text = patch(&[(fp, "max-restarts = 17, restart-window-ms = 10000")]);
    let d = fails(
        &text,
        Rule::RestartCapacity,
        "max-restarts is 17; the hypervisor's restart budget tracks at most 16 restarts",
    );
    assert_at(&d, &text, "17", 0);
}

// ------------------------------------------------------------------ Linux

const LINUX: &str = include_str!("../../tests/fixtures/linux.toml");
const LINUX_TABLE: &str = r#"linux = { kernel = "linux.Image", initrd = "initrd.cpio.gz", bootargs = "console=ttyAMA0 panic=-1", stdout = "uart1" }"#;
const LINUX_RAM_REGION: &str =
    r#"{ name = "ram", ipa = 0x5000_0000, pa = 0x5000_0000, size = 0x7000_0000, perms = "rwx" },"#;
const NET0: &str = r#"{ name = "net0", kind = "passthrough", pa = 0x0a00_0000, ipa = 0x0a00_0000, size = 0x1000, reg-size = 0x200, irqs = [48], dma = true, compatible = ["virtio,mmio"] },"#;

/// The Linux fixture with each `old` (which must occur exactly once) replaced.
fn patch_linux(edits: &[(&str, &str)]) -> String {
    let mut s = LINUX.to_owned();
    for (old, new) in edits {
        assert_eq!(s.matches(old).count(), 1, "{old:?} must occur once");
        s = s.replacen(old, new, 1);
    }
    s
}

/// The linux table with `key = value` pairs instead of the fixture's.
fn linux_table(pairs: &str) -> String {
    patch_linux(&[(LINUX_TABLE, &format!("linux = {{ {pairs} }}"))])
}

/// REQ-LINUX-BOOT: kernel, initrd and device tree land where the documented
/// algorithm puts them, as images "kernel", "initrd" (and "dtb" in codegen).
#[test]
fn the_linux_fixture_is_valid_and_placed() {
    let cfg = ok(LINUX);
    let p = &cfg.partitions[1];
    let l = p.linux.as_ref().expect("a Linux partition");
    assert_eq!((l.text_offset, l.image_size), (0, 0x150_0000));
    assert_eq!(l.kernel.0, 0x5000_0000);
    assert_eq!(p.entry.0, 0x5000_0000);
    let initrd = l.initrd.unwrap();
    assert_eq!((initrd.start.0, initrd.size), (0x5160_0000, 34));
    assert_eq!(l.dtb.0, 0xbfe0_0000);
    assert_eq!(p.boot_arg, 0xbfe0_0000);
    assert_eq!(l.bootargs, "console=ttyAMA0 panic=-1");
    assert_eq!(l.stdout.as_deref(), Some("uart1"));
    // The tree plus the 4 KiB measurement-log property.
    assert!(!l.dtb_blob.is_empty() && l.dtb_blob.len() < 8192);
    let images: Vec<(&str, u64, u64)> = p
        .images
        .iter()
        .map(|i| (i.name.as_str(), i.load.0, i.len))
        .collect();
    assert_eq!(
        images,
        [("kernel", 0x5000_0000, 4096), ("initrd", 0x5160_0000, 34)]
    );
    let net = &p.devices[1];
    assert_eq!(net.compatible, ["virtio,mmio"]);
    assert_eq!(net.reg_size, 0x200);
    assert_eq!(p.devices[0].reg_size, 0x1000, "defaults to size");
    assert!(p.devices[2].compatible.is_empty());
    // The kernel and initrd are build dependencies.
    assert!(cfg
        .dependencies()
        .iter()
        .any(|d| d.ends_with("initrd.cpio.gz")));
}

/// CFG-28: the device-tree keys do not apply to a virtual UART.
#[test]
fn cfg28_device_tree_keys_on_a_virtual_uart() {
    let vuart = r#"{ name = "console", kind = "virtual-uart", ipa = 0x0900_0000 }"#;
    fails(
        &patch_linux(&[(
            vuart,
            r#"{ name = "console", kind = "virtual-uart", ipa = 0x0900_0000, compatible = "arm,pl011" }"#,
        )]),
        Rule::DeviceForm,
        "`compatible` does not apply to a virtual-uart",
    );
    fails(
        &patch_linux(&[(
            vuart,
            r#"{ name = "console", kind = "virtual-uart", ipa = 0x0900_0000, reg-size = 0x200 }"#,
        )]),
        Rule::DeviceForm,
        "`reg-size` does not apply to a virtual-uart",
    );
}

/// CFG-46: compatible entries and the node names they need.
#[test]
fn cfg46_device_tree_names() {
    let compat = r#"compatible = ["virtio,mmio"]"#;
    let net = |c: &str| patch_linux(&[(compat, c)]);
    let text = net(r#"compatible = """#);
    let d = fails(&text, Rule::DtDevice, "compatible has an empty entry");
    assert_at(&d, &text, "\"\" }", 0);
    fails(
        &net("compatible = []"),
        Rule::DtDevice,
        "compatible is an empty list",
    );
    fails(
        &net(r#"compatible = ["virtio,mmio", "tab\t"]"#),
        Rule::DtDevice,
        "must be printable ASCII without spaces",
    );
    fails(
        &net(r#"compatible = "virtio, mmio""#),
        Rule::DtDevice,
        "\"virtio, mmio\" must be printable ASCII without spaces",
    );
    fails(
        &net("compatible = 5"),
        Rule::Parse,
        "expected a string or an array of strings",
    );
    ok(&net(r#"compatible = ["virtio,mmio", "x"]"#));

    // Node names: up to 31 characters, starting with a letter.
    let name = |n: &str| patch_linux(&[(r#"name = "net0""#, &format!("name = \"{n}\""))]);
    ok(&name(&format!("n{}", "_".repeat(30))));
    fails(
        &name(&format!("n{}", "_".repeat(31))),
        Rule::DtDevice,
        "is not a device-tree node name",
    );
    fails(
        &name("0net"),
        Rule::DtDevice,
        "\"0net\" is not a device-tree node name",
    );
    // Without a compatible the device is not in the tree: any name will do.
    ok(&patch_linux(&[(r#"name = "gpio""#, r#"name = "0 gpio""#)]));

    // Regions Linux must not use as RAM are nodes under /reserved-memory.
    let shm = r#"{ name = "shm", ipa = 0x4900_0000"#;
    fails(
        &patch_linux(&[(shm, r#"{ name = "shared memory", ipa = 0x4900_0000"#)]),
        Rule::DtDevice,
        "memory region `shared memory` of Linux partition `linux` is described under /reserved-memory",
    );
    ok(&patch_linux(&[(
        LINUX_RAM_REGION,
        &LINUX_RAM_REGION.replace("\"ram\"", "\"main ram\""),
    )]));
}

/// CFG-47: 0 < reg-size <= size.
#[test]
fn cfg47_reg_size() {
    let rs = |v: &str| patch_linux(&[("reg-size = 0x200", &format!("reg-size = {v}"))]);
    ok(&rs("0x1000"));
    ok(&rs("1"));
    let text = rs("0x1001");
    let d = fails(
        &text,
        Rule::RegSize,
        "reg-size 0x1001 is larger than the mapped size 0x1000",
    );
    assert_at(&d, &text, "0x1001", 0);
    fails(&rs("0"), Rule::RegSize, "reg-size is 0");
}

/// CFG-48: entry/images/boot-arg or linux, never both; clean strings.
#[test]
fn cfg48_linux_form() {
    let cores = "cores = [1, 2, 3]\nmemory";
    fails(
        &patch_linux(&[(cores, "cores = [1, 2, 3]\nentry = 0x5000_0000\nmemory")]),
        Rule::LinuxForm,
        "partition `linux` boots Linux: its entry is the kernel's load address",
    );
    fails(
        &patch_linux(&[(cores, "cores = [1, 2, 3]\nboot-arg = 0\nmemory")]),
        Rule::LinuxForm,
        "remove `boot-arg`",
    );
    fails(
        &patch_linux(&[(
            cores,
            "cores = [1, 2, 3]\nimages = [{ name = \"k\", file = \"linux.Image\", load = 0x5000_0000 }]\nmemory",
        )]),
        Rule::LinuxForm,
        "`images` and `linux` exclude each other",
    );
    // Neither: the partition cannot start.
    let text = patch(&[("entry = 0x4020_0000\nboot-arg", "boot-arg")]);
    let d = fails(
        &text,
        Rule::LinuxForm,
        "partition `linux` needs `entry` (where vCPU 0 starts) or a `linux` table",
    );
    assert_at(
        &d,
        &text,
        "\"linux\"",
        text.find("name = \"linux\"").unwrap(),
    );

    let args = |b: &str| linux_table(&format!(r#"kernel = "linux.Image", bootargs = "{b}""#));
    ok(&args(&"x".repeat(2047)));
    fails(
        &args(&"x".repeat(2048)),
        Rule::LinuxForm,
        "linux.bootargs of partition `linux` is 2048 bytes; Linux keeps at most 2047",
    );
    fails(
        &args("console=ttyAMA0\\u0000init=/evil"),
        Rule::LinuxForm,
        "linux.bootargs of partition `linux` contains a NUL character",
    );
    // The table's own schema.
    fails(
        &linux_table(r#"initrd = "initrd.cpio.gz""#),
        Rule::Parse,
        "missing field `kernel`",
    );
    fails(
        &linux_table(r#"kernel = "linux.Image", dtb = "x.dtb""#),
        Rule::Parse,
        "unknown field `dtb`",
    );
}

/// CFG-36, CFG-37 cover the kernel and the initrd like any image file.
#[test]
fn linux_files_exist_and_are_not_empty() {
    let text = linux_table(r#"kernel = "../missing/Image""#);
    let d = fails(
        &text,
        Rule::ImageFile,
        "linux.kernel of partition `linux`: cannot read \"../missing/Image\": tried ",
    );
    assert_at(&d, &text, "\"../missing/Image\"", 0);
    fails(
        &linux_table(r#"kernel = "linux.Image", initrd = "missing.cpio""#),
        Rule::ImageFile,
        "linux.initrd of partition `linux`: cannot read \"missing.cpio\"",
    );
    fails(
        &linux_table(r#"kernel = "linux.Image", initrd = "empty.bin""#),
        Rule::ImageEmpty,
        "linux.initrd of partition `linux`: ",
    );
    fails(
        &linux_table(r#"kernel = "empty.bin""#),
        Rule::ImageEmpty,
        "is empty",
    );
}

/// CFG-49: the kernel must be an arm64 Image; the error names the file.
#[test]
fn cfg49_kernel_image() {
    let fixtures =
        std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"))
            .unwrap();
    let text = linux_table(r#"kernel = "nomagic.Image""#);
    let d = fails(
        &text,
        Rule::KernelImage,
        &format!(
            "linux.kernel of partition `linux`: {} is not an arm64 Image: it has no arm64 Image magic \"ARM\\x64\" at offset 56",
            fixtures.join("nomagic.Image").display()
        ),
    );
    assert_at(&d, &text, "\"nomagic.Image\"", 0);
    fails(
        &linux_table(r#"kernel = "rtos.bin""#),
        Rule::KernelImage,
        "it is 43 bytes long, shorter than the 64-byte arm64 Image header",
    );
}

/// CFG-50: the first region holds everything: rwx, private, 2 MiB aligned,
/// big enough (boundary: exactly big enough), and the tree fits in 2 MiB.
#[test]
fn cfg50_linux_placement() {
    let ram = |r: &str| patch_linux(&[(LINUX_RAM_REGION, r)]);
    // Kernel [0x5000_0000, 0x5150_0000), initrd at 0x5160_0000 (34 bytes),
    // then a 2 MiB block for the tree: the region must reach 0x51a0_0000.
    ok(&ram(
        r#"{ name = "ram", ipa = 0x5000_0000, pa = 0x5000_0000, size = 0x01a0_0000, perms = "rwx" },"#,
    ));
    let text = ram(
        r#"{ name = "ram", ipa = 0x5000_0000, pa = 0x5000_0000, size = 0x019f_f000, perms = "rwx" },"#,
    );
    let d = fails(
        &text,
        Rule::LinuxPlacement,
        "memory region `ram` [0x5000_0000, 0x519f_f000) of Linux partition `linux` is too small for a kernel of 4096 bytes (text_offset 0x0, image_size 0x150_0000), an initrd of 34 bytes and a 2 MiB device-tree block above them: it must reach IPA 0x51a0_0000, i.e. have a size of at least 0x1a0_0000",
    );
    assert_at(&d, &text, "0x019f_f000", 0);
    fails(
        &ram(
            r#"{ name = "ram", ipa = 0x5010_0000, pa = 0x5010_0000, size = 0x6ff0_0000, perms = "rwx" },"#,
        ),
        Rule::LinuxPlacement,
        "ipa 0x5010_0000 is not 2 MiB aligned",
    );
    fails(
        &ram(
            r#"{ name = "ram", ipa = 0x5000_0000, pa = 0x5000_0000, size = 0x7000_0000, perms = "rw" },"#,
        ),
        Rule::LinuxPlacement,
        "must be \"rwx\": the kernel runs from it",
    );
    // The shared region first: not Linux's own RAM.
    let shm = r#"{ name = "shm", ipa = 0x4900_0000, pa = 0x4900_0000, size = 0x1000, perms = "rwx", shared-with = ["rtos"] },"#;
    let d = fails(
        &patch_linux(&[
            (LINUX_RAM_REGION, shm),
            (
                r#"{ name = "shm", ipa = 0x4900_0000, pa = 0x4900_0000, size = 0x1000, perms = "rw", shared-with = ["rtos"] },"#,
                LINUX_RAM_REGION,
            ),
        ]),
        Rule::LinuxPlacement,
        "must not be shared: Linux takes it as its own RAM",
    );
    assert_eq!(d.len(), 1, "{d}");
    fails(
        &patch_linux(&[(
            "memory = [\n    { name = \"ram\", ipa = 0x5000_0000",
            "memory = []\nmem = [\n    { name = \"ram\", ipa = 0x5000_0000",
        )]),
        Rule::Parse,
        "unknown field `mem`",
    );
    // A device tree over 2 MiB.
    let huge = format!(r#"compatible = ["virtio,mmio", "{}"]"#, "x".repeat(2 << 20));
    fails(
        &patch_linux(&[(r#"compatible = ["virtio,mmio"]"#, &huge)]),
        Rule::LinuxPlacement,
        "the device tree of partition `linux` is ",
    );
}

/// CFG-50: a Linux partition without memory has nothing to boot from.
#[test]
fn cfg50_no_memory() {
    let start = LINUX
        .find("memory = [\n    { name = \"ram\", ipa = 0x5000_0000")
        .unwrap();
    let end = start + LINUX[start..].find("]\ndevices").unwrap() + 1;
    let mut text = LINUX.to_owned();
    text.replace_range(start..end, "memory = []");
    // The rtos still shares "shm" with it (CFG-25).
    let d = fails_with(
        &text,
        Rule::LinuxPlacement,
        "Linux partition `linux` has no memory region to boot from",
    );
    assert!(
        d.errors()
            .iter()
            .all(|e| matches!(e.rule, Rule::LinuxPlacement | Rule::SharedWith)),
        "{d}"
    );
}

/// CFG-51: stdout names a described passthrough device.
#[test]
fn cfg51_linux_stdout() {
    let out = |n: &str| linux_table(&format!(r#"kernel = "linux.Image", stdout = "{n}""#));
    ok(&out("net0"));
    let text = out("uart9");
    let d = fails(
        &text,
        Rule::LinuxStdout,
        "linux.stdout names `uart9`, but partition `linux` has no device of that name",
    );
    assert_at(&d, &text, "\"uart9\"", 0);
    fails(
        &out("gpio"),
        Rule::LinuxStdout,
        "linux.stdout names `gpio`, which has no compatible",
    );
    let with_vuart = patch_linux(&[
        (
            NET0,
            &format!(
                "{NET0}\n    {{ name = \"con\", kind = \"virtual-uart\", ipa = 0x0b00_0000 }},"
            ),
        ),
        (
            LINUX_TABLE,
            r#"linux = { kernel = "linux.Image", stdout = "con" }"#,
        ),
    ]);
    fails(
        &with_vuart,
        Rule::LinuxStdout,
        "linux.stdout names `con`, a virtual-uart",
    );
}

/// CFG-52: no more vCPUs than the GIC has redistributor frames.
#[test]
fn cfg52_vcpu_limit() {
    let text = patch(&[(LINUX_CORES, "cores = [1, 2, 3, 3, 2]")]);
    let d = fails_with(
        &text,
        Rule::VcpuLimit,
        "partition `linux` has 5 vCPUs, but the GICv3 has 4 redistributor frames (platform.cpus)",
    );
    assert!(
        d.errors()
            .iter()
            .all(|e| matches!(e.rule, Rule::VcpuLimit | Rule::CoreDuplicate)),
        "{d}"
    );
    assert!(!check(&patch(&[(LINUX_CORES, "cores = [1, 2, 3, 3]")]))
        .unwrap_err()
        .has(Rule::VcpuLimit));
}

/// CFG-53: the GIC frames a partition sees are not memory or devices.
#[test]
fn cfg53_gic_ipa() {
    // The rtos (1 vCPU) sees GICD [0x800_0000, 0x801_0000) and GICR
    // [0x80a_0000, 0x80c_0000); linux (3 vCPUs) GICR up to 0x810_0000.
    let text = rtos_region(
        r#"{ name = "low", ipa = 0x0800_f000, pa = 0x4a00_0000, size = 0x1000, perms = "rw" },"#,
    );
    let d = fails(
        &text,
        Rule::GicIpa,
        "in partition `rtos`, memory region `low` at IPA [0x800_f000, 0x801_0000) overlaps the GICD frame [0x800_0000, 0x801_0000)",
    );
    assert_at(&d, &text, "0x0800_f000", 0);
    ok(&rtos_region(
        r#"{ name = "low", ipa = 0x0801_0000, pa = 0x4a00_0000, size = 0x1000, perms = "rw" },"#,
    ));
    ok(&rtos_region(
        r#"{ name = "low", ipa = 0x080c_0000, pa = 0x4a00_0000, size = 0x1000, perms = "rw" },"#,
    ));
    let uart = |ipa: &str| {
        patch(&[(
            UART1,
            &UART1.replace("ipa = 0x0904_0000", &format!("ipa = {ipa}")),
        )])
    };
    ok(&uart("0x0810_0000"));
    fails(
        &uart("0x080f_f000"),
        Rule::GicIpa,
        "in partition `linux`, device `uart1` at IPA [0x80f_f000, 0x810_0000) overlaps the GICR frame [0x80a_0000, 0x810_0000)",
    );
    // A device that is a GIC frame by PA is reported once, by CFG-31.
    let gicd = UART1.replace("0x0904_0000", "0x0800_0000");
    fails(
        &patch(&[(UART1, &gicd)]),
        Rule::DeviceReserved,
        "overlaps the GIC GICD frame",
    );
    // GICv2: GICD 4 KiB and the CPU interface, 8 KiB.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rpi4.toml");
    let rpi = std::fs::read_to_string(&path).unwrap();
    let emmc = "ipa = 0xfe34_0000";
    let at = |ipa: &str| load_str(&path, &rpi.replacen(emmc, &format!("ipa = {ipa}"), 1));
    assert!(at("0xff84_4000").is_ok());
    let d = at("0xff84_3000").unwrap_err();
    assert!(d.errors().iter().all(|e| e.rule == Rule::GicIpa), "{d}");
    assert!(
        d.to_string()
            .contains("overlaps the GICC frame [0xff84_2000, 0xff84_4000)"),
        "{d}"
    );
}

// ------------------------------------------------------------ measured boot

/// CFG-54: versions are 32-bit and the build's is not below the minimum.
#[test]
fn cfg54_security_version() {
    let anchor = "cpu-boot = { method = \"psci\", conduit = \"smc\" }\n";
    let with_boot = |b: &str| patch(&[(anchor, &format!("{anchor}\n{b}\n"))]);
    let c = ok(&with_boot(
        "[boot]\nsecurity-version = 3\nmin-security-version = 2",
    ));
    assert_eq!(c.boot.security_version, 3);
    assert_eq!(c.boot.min_security_version, 2);
    // Absent: both 0.
    assert_eq!(
        ok(GOOD).boot,
        crate::model::Boot {
            security_version: 0,
            min_security_version: 0
        }
    );
    let text = with_boot("[boot]\nsecurity-version = 1\nmin-security-version = 2");
    let d = fails(
        &text,
        Rule::SecurityVersion,
        "security-version 1 is below min-security-version 2",
    );
    assert_at(&d, &text, "1\nmin", 0);
    fails(
        &with_boot("[boot]\nsecurity-version = 4294967296"),
        Rule::SecurityVersion,
        "security-version = 4294967296 is outside 0..=4294967295",
    );
    fails(
        &with_boot("[boot]\nmin-security-version = -1"),
        Rule::SecurityVersion,
        "min-security-version = -1 is outside",
    );
}

/// CFG-55: image names fit the manifest's 16-byte fields.
#[test]
fn cfg55_manifest_capacity() {
    let text = patch(&[(
        r#"images = [{ name = "rtos", file"#,
        r#"images = [{ name = "rtos-image-name-17", file"#,
    )]);
    let d = fails(
        &text,
        Rule::ManifestCapacity,
        "image name \"rtos-image-name-17\" does not fit the boot manifest",
    );
    assert_at(&d, &text, "\"rtos-image-name-17\"", 0);
    ok(&patch(&[(
        r#"images = [{ name = "rtos", file"#,
        r#"images = [{ name = "rtos-image-16ch", file"#,
    )]));
}

/// CFG-56: watchdog forms.
#[test]
fn cfg56_watchdog() {
    let fp = "fault-policy = { access-violation = \"stop\", max-restarts = 5, restart-window-ms = 10000 }";
    let with = |w: &str| patch(&[(fp, &format!("{fp}\nwatchdog = {w}"))]);
    let c = ok(&with(
        r#"{ kind = "sbsa-gwdt", ipa = 0x0c00_0000, timeout-ms = 10000 }"#,
    ));
    let w = c.partitions[1].watchdog.unwrap();
    assert_eq!(w.timeout_ms, 10_000);
    assert_eq!(
        w.kind,
        septum_core::config::WatchdogKind::SbsaGwdt {
            ipa: septum_core::addr::GuestPhysAddr(0x0c00_0000)
        }
    );
    ok(&with(r#"{ kind = "heartbeat", timeout-ms = 1 }"#));
    fails(
        &with(r#"{ kind = "heartbeat", timeout-ms = 0 }"#),
        Rule::Watchdog,
        "heartbeat timeout-ms = 0: must be 1..=3600000",
    );
    fails(
        &with(r#"{ kind = "heartbeat", timeout-ms = 5, ipa = 0x0c00_0000 }"#),
        Rule::Watchdog,
        "it takes no ipa",
    );
    fails(
        &with(r#"{ kind = "sbsa-gwdt", ipa = 0x0c00_0000, timeout-ms = 1500 }"#),
        Rule::Watchdog,
        "must be a multiple of 1000 in 2000..=3600000",
    );
    fails(
        &with(r#"{ kind = "sbsa-gwdt", timeout-ms = 2000 }"#),
        Rule::Watchdog,
        "needs ipa",
    );
    fails(
        &with(r#"{ kind = "sbsa-gwdt", ipa = 0x0c00_0800, timeout-ms = 2000 }"#),
        Rule::Watchdog,
        "must be 4 KiB aligned",
    );
    let text = with(r#"{ kind = "sbsa-gwdt", ipa = 0x0903_f000, timeout-ms = 2000 }"#);
    let d = fails(
        &text,
        Rule::Watchdog,
        "sbsa-gwdt frames at IPA [0x903_f000, 0x904_1000) overlap device `uart1`",
    );
    assert_at(&d, &text, "0x0903_f000", 0);
}

/// CFG-57: direct interrupt delivery needs a GICv3 and a one-core partition.
#[test]
fn cfg57_direct_interrupts() {
    use septum_core::config::InterruptDelivery;
    let fp = "fault-policy = { system-off = \"safe-state\" }";
    let direct = format!("{fp}\ninterrupts = \"direct\"");
    let c = ok(&patch(&[(fp, &direct)]));
    assert_eq!(c.partitions[0].interrupts, InterruptDelivery::Direct);
    assert_eq!(c.partitions[1].interrupts, InterruptDelivery::Virtual);
    let c = ok(&patch(&[(fp, &format!("{fp}\ninterrupts = \"virtual\""))]));
    assert_eq!(c.partitions[0].interrupts, InterruptDelivery::Virtual);
    let v2 = "gic = { version = 2, gicd = 0x0800_0000, gicc = 0x0801_0000, gich = 0x0803_0000, gicv = 0x0804_0000, maintenance-irq = 25 }";
    let text = patch(&[(GIC, v2), (fp, &direct)]);
    let d = fails(&text, Rule::DirectInterrupts, "needs a GICv3");
    assert_at(&d, &text, "\"direct\"", 0);
    let text = patch(&[
        (fp, &direct),
        ("cores = [0]", "cores = [0, 4]"),
        ("cpus = 4", "cpus = 5"),
    ]);
    fails(
        &text,
        Rule::DirectInterrupts,
        "needs exactly one core, not 2",
    );
}

/// A telemetry channel from rtos to linux, appended to the fixture, with
/// `extra` keys.
fn with_channel(text: &str, channel: &str) -> String {
    format!("{text}\n[[channel]]\n{channel}\n")
}

const CHANNEL: &str = r#"name = "telemetry"
writer = "rtos"
reader = "linux"
pa = 0x4a00_0000
size = 0x1000
writer-ipa = 0x4100_0000
reader-ipa = 0x6000_0000"#;

fn channel(edits: &[(&str, &str)]) -> String {
    let mut c = CHANNEL.to_owned();
    for (old, new) in edits {
        assert_eq!(c.matches(old).count(), 1, "{old:?}");
        c = c.replacen(old, new, 1);
    }
    with_channel(GOOD, &c)
}

/// REQ-CHN-1: a valid channel gives each partition one end, the writer's
/// read-write and the reader's read-only, and the reader-ipa defaults to
/// the PA.
#[test]
fn channels_give_each_side_its_end() {
    use septum_core::config::ChannelRole;
    let c = ok(&channel(&[]));
    let (w, r) = (&c.partitions[0].channels, &c.partitions[1].channels);
    assert_eq!((w.len(), r.len()), (1, 1));
    assert_eq!(w[0].role, ChannelRole::Writer);
    assert_eq!(r[0].role, ChannelRole::Reader);
    assert_eq!((w[0].ipa.0, r[0].ipa.0), (0x4100_0000, 0x6000_0000));
    assert_eq!(
        (w[0].pa.0, r[0].pa.0, w[0].size),
        (0x4a00_0000, 0x4a00_0000, 0x1000)
    );
    let c = ok(&channel(&[
        ("reader-ipa = 0x6000_0000", ""),
        ("pa = 0x4a00_0000", "pa = 0x6100_0000"),
    ]));
    assert_eq!(c.partitions[1].channels[0].ipa.0, 0x6100_0000);
    // The other direction, several pages.
    let c = ok(&channel(&[
        ("writer = \"rtos\"", "writer = \"linux\""),
        ("reader = \"linux\"", "reader = \"rtos\""),
        ("size = 0x1000", "size = 0x4000"),
        ("writer-ipa = 0x4100_0000", "writer-ipa = 0x6000_0000"),
        ("reader-ipa = 0x6000_0000", "reader-ipa = 0x4100_0000"),
    ]));
    assert_eq!(c.partitions[0].channels[0].role, ChannelRole::Reader);
    assert_eq!(c.partitions[0].channels[0].ipa.0, 0x4100_0000);
    assert_eq!(c.partitions[0].channels[0].size, 0x4000);
}

/// CFG-58: names, and two different, existing partitions.
#[test]
fn cfg58_channel_form() {
    for bad in [
        "\"\"",
        "\"Telemetry\"",
        "\"tele_metry\"",
        "\"0123456789abcdefg\"",
    ] {
        let text = channel(&[("\"telemetry\"", bad)]);
        let d = fails(&text, Rule::ChannelForm, "must be 1 to 16 characters");
        assert_at(&d, &text, bad, GOOD.len());
    }
    ok(&channel(&[("\"telemetry\"", "\"0123456789abcde-\"")]));
    let text = channel(&[("writer = \"rtos\"", "writer = \"rots\"")]);
    let d = fails(
        &text,
        Rule::ChannelForm,
        "writer names `rots`, but there is no partition",
    );
    assert_at(&d, &text, "\"rots\"", GOOD.len());
    let text = channel(&[("reader = \"linux\"", "reader = \"rtos\"")]);
    fails(
        &text,
        Rule::ChannelForm,
        "writer and reader are both `rtos`",
    );
    // Two channels of one name (the second elsewhere in memory).
    let second = CHANNEL
        .replace("0x4a00_0000", "0x4a00_1000")
        .replace("0x4100_0000", "0x4100_1000")
        .replace("0x6000_0000", "0x6000_1000");
    let text = with_channel(&channel(&[]), &second);
    fails(&text, Rule::ChannelForm, "two channels named `telemetry`");
    ok(&with_channel(
        &channel(&[]),
        &second.replace("\"telemetry\"", "\"requests\""),
    ));
}

/// CFG-59: page alignment and the size limit; CFG-19, -20 and -27 apply
/// to channels as to every range.
#[test]
fn cfg59_channel_range() {
    for (old, new) in [
        ("pa = 0x4a00_0000", "pa = 0x4a00_0800"),
        ("size = 0x1000", "size = 0x1800"),
        ("writer-ipa = 0x4100_0000", "writer-ipa = 0x4100_0004"),
        ("reader-ipa = 0x6000_0000", "reader-ipa = 0x6000_0100"),
    ] {
        let text = channel(&[(old, new)]);
        let d = fails(&text, Rule::ChannelRange, "is not 4 KiB aligned");
        assert_at(&d, &text, &new[new.find('0').unwrap()..], GOOD.len());
    }
    fails(
        &channel(&[("size = 0x1000", "size = 0x10_1000")]),
        Rule::ChannelRange,
        "above the largest channel, 0x10_0000",
    );
    ok(&channel(&[("size = 0x1000", "size = 0x10_0000")]));
    fails(
        &channel(&[("size = 0x1000", "size = 0")]),
        Rule::RangeEmpty,
        "has size 0",
    );
    // (TOML integers stop at 2^63, so no channel can reach CFG-20.)
    fails(
        &channel(&[(
            "writer-ipa = 0x4100_0000",
            "writer-ipa = 0x7fff_ffff_ffff_f000",
        )]),
        Rule::IpaLimit,
        "writer-ipa range",
    );
    fails(
        &channel(&[("reader-ipa = 0x6000_0000", "reader-ipa = 0x80_0000_0000")]),
        Rule::IpaLimit,
        "reader-ipa range",
    );
}

/// CFG-60: RAM that is no partition's and not the hypervisor's.
#[test]
fn cfg60_channel_memory() {
    let text = channel(&[("pa = 0x4a00_0000", "pa = 0x3000_0000")]);
    let d = fails(&text, Rule::ChannelMemory, "is not inside one RAM bank");
    assert_at(&d, &text, "0x3000_0000", GOOD.len());
    fails(
        &channel(&[("pa = 0x4a00_0000", "pa = 0x4000_0000")]),
        Rule::ChannelMemory,
        "overlaps the hypervisor region",
    );
    fails(
        &channel(&[
            ("pa = 0x4a00_0000", "pa = 0x48ff_f000"),
            ("size = 0x1000", "size = 0x2000"),
        ]),
        Rule::ChannelMemory,
        "overlaps memory region `ram` of partition `rtos`",
    );
    // A shared region is ordinary memory too.
    fails(
        &channel(&[("pa = 0x4a00_0000", "pa = 0x4900_0000")]),
        Rule::ChannelMemory,
        "overlaps memory region `shm` of partition `rtos`",
    );
    fails(
        &channel(&[("pa = 0x4a00_0000", "pa = 0x5fff_f000")]),
        Rule::ChannelMemory,
        "of partition `linux`",
    );
    let second = CHANNEL
        .replace("\"telemetry\"", "\"requests\"")
        .replace("0x4100_0000", "0x4100_1000")
        .replace("0x6000_0000", "0x6000_1000");
    fails(
        &with_channel(&channel(&[]), &second),
        Rule::ChannelMemory,
        "overlaps channel `telemetry`",
    );
    // Just below the Linux partition's RAM is fine.
    ok(&channel(&[("pa = 0x4a00_0000", "pa = 0x4fff_f000")]));
}

/// CFG-61: each end is a hole in its partition's IPA space.
#[test]
fn cfg61_channel_ipa() {
    let text = channel(&[("writer-ipa = 0x4100_0000", "writer-ipa = 0x40ff_f000")]);
    let d = fails(
        &text,
        Rule::ChannelIpa,
        "the writer end at IPA [0x40ff_f000, 0x4100_0000) in partition `rtos` overlaps memory region `ram`",
    );
    assert_at(&d, &text, "0x40ff_f000", GOOD.len());
    fails(
        &channel(&[("writer-ipa = 0x4100_0000", "writer-ipa = 0x0900_0000")]),
        Rule::ChannelIpa,
        "overlaps device `console`",
    );
    fails(
        &channel(&[("reader-ipa = 0x6000_0000", "reader-ipa = 0x0904_0000")]),
        Rule::ChannelIpa,
        "in partition `linux` overlaps device `uart1`",
    );
    fails(
        &channel(&[("reader-ipa = 0x6000_0000", "reader-ipa = 0x0800_0000")]),
        Rule::ChannelIpa,
        "the virtual GIC's GICD frame",
    );
    // Linux has three vCPUs: three redistributor frames of 0x2_0000.
    fails(
        &channel(&[("reader-ipa = 0x6000_0000", "reader-ipa = 0x080f_f000")]),
        Rule::ChannelIpa,
        "the virtual GIC's GICR frame",
    );
    ok(&channel(&[(
        "reader-ipa = 0x6000_0000",
        "reader-ipa = 0x0810_0000",
    )]));
    let wd = "fault-policy = { access-violation = \"stop\"";
    let text = patch(&[(
        wd,
        "watchdog = { kind = \"sbsa-gwdt\", ipa = 0x6000_0000, timeout-ms = 2000 }\nfault-policy = { access-violation = \"stop\"",
    )]);
    fails(
        &with_channel(&text, CHANNEL),
        Rule::ChannelIpa,
        "the sbsa-gwdt frames",
    );
    let second = CHANNEL
        .replace("\"telemetry\"", "\"requests\"")
        .replace("0x4a00_0000", "0x4a00_1000")
        .replace("0x6000_0000", "0x6000_1000");
    fails(
        &with_channel(&channel(&[]), &second),
        Rule::ChannelIpa,
        "overlaps the writer end of channel `telemetry`",
    );
}

/// CFG-62: a partition with a DMA master sees its channels at their PAs.
#[test]
fn cfg62_channel_dma() {
    let dma = UART1.replace("irqs = [40]", "irqs = [40], dma = true");
    // The fixture's Linux RAM is not identity-mapped, which CFG-35 also
    // reports.
    let text = with_channel(&patch(&[(UART1, &dma)]), CHANNEL);
    let d = fails_with(
        &text,
        Rule::ChannelDma,
        "has the DMA master `uart1`, so its reader end must be at IPA == PA (0x4a00_0000), not 0x6000_0000",
    );
    assert!(
        d.errors()
            .iter()
            .all(|e| [Rule::ChannelDma, Rule::DmaIdentity].contains(&e.rule)),
        "{d}"
    );
    let text = with_channel(
        &patch(&[(UART1, &dma)]),
        &CHANNEL
            .replace("reader-ipa = 0x6000_0000", "")
            .replace("0x4a00_0000", "0x6100_0000"),
    );
    let d = check(&text).unwrap_err();
    assert!(
        d.errors().iter().all(|e| e.rule == Rule::DmaIdentity),
        "{d}"
    );
}

/// CFG-63: at most eight ends per partition.
#[test]
fn cfg63_channel_limit() {
    let mut text = GOOD.to_owned();
    for i in 0..9u64 {
        let c = CHANNEL
            .replace("\"telemetry\"", &format!("\"c{i}\""))
            .replace("0x4a00_0000", &format!("{:#x}", 0x4a00_0000 + i * 0x1000))
            .replace("0x4100_0000", &format!("{:#x}", 0x4100_0000 + i * 0x1000))
            .replace("0x6000_0000", &format!("{:#x}", 0x6000_0000 + i * 0x1000));
        text = with_channel(&text, &c);
        if i == 7 {
            ok(&text);
        }
    }
    let d = fails(
        &text,
        Rule::ChannelLimit,
        "partition `rtos` is an end of 9 channels; at most 8",
    );
    assert!(
        d.errors()
            .iter()
            .any(|e| e.message.contains("partition `linux`")),
        "{d}"
    );
}

const DOORBELL: &str = "doorbell = { irq = 220, ipa = 0x0903_0000, rate = 10, burst = 4 }";

/// REQ-CHN-8: a doorbell reaches both ends: the writer's rate and the
/// reader's SPI and frame; burst defaults to 1.
#[test]
fn doorbells_reach_both_ends() {
    use septum_core::addr::GuestPhysAddr;
    use septum_core::config::Doorbell;
    let c = ok(&channel(&[(
        "reader-ipa = 0x6000_0000",
        &format!("reader-ipa = 0x6000_0000\n{DOORBELL}"),
    )]));
    let want = Doorbell {
        irq: 220,
        ipa: GuestPhysAddr(0x0903_0000),
        per_second: 10,
        burst: 4,
    };
    let (w, r) = (&c.partitions[0].channels[0], &c.partitions[1].channels[0]);
    assert_eq!((w.doorbell, r.doorbell), (Some(want), Some(want)));
    assert_eq!((w.peer, r.peer), (1, 0));
    assert_eq!(r.incoming(), Some(want));
    assert_eq!(w.incoming(), None);
    let c = ok(&channel(&[(
        "reader-ipa = 0x6000_0000",
        "reader-ipa = 0x6000_0000\ndoorbell = { irq = 220, ipa = 0x0903_0000, rate = 1 }",
    )]));
    assert_eq!(
        c.partitions[1].channels[0].doorbell.map(|d| d.burst),
        Some(1)
    );
}

fn with_doorbell(bell: &str) -> String {
    channel(&[(
        "reader-ipa = 0x6000_0000",
        &format!("reader-ipa = 0x6000_0000\n{bell}"),
    )])
}

/// CFG-64: the doorbell's own keys, and an SPI nobody else has.
#[test]
fn cfg64_doorbell_form() {
    for (bad, msg) in [
        ("irq = 31", "doorbell irq 31 is not an SPI"),
        ("irq = 1020", "doorbell irq 1020 is not an SPI"),
        ("irq = 25", "is the GIC maintenance interrupt"),
        (
            "irq = 40",
            "doorbell irq 40 is already used by device `uart1` of partition `linux`",
        ),
        ("ipa = 0x0903_0800", "is not 4 KiB aligned"),
        ("ipa = 0x80_0000_0000", "ends above 2^39"),
        ("rate = 0", "doorbell rate 0 is not in 1..=1000"),
        ("rate = 1001", "doorbell rate 1001 is not in 1..=1000"),
        ("burst = 0", "doorbell burst 0 is not in 1..=16"),
        ("burst = 17", "doorbell burst 17 is not in 1..=16"),
    ] {
        let good = match bad.split(" = ").next().unwrap() {
            "irq" => "irq = 220",
            "ipa" => "ipa = 0x0903_0000",
            "rate" => "rate = 10",
            _ => "burst = 4",
        };
        let text = with_doorbell(&DOORBELL.replacen(good, bad, 1));
        let d = fails(&text, Rule::DoorbellForm, msg);
        let value_at = text.rfind(bad).unwrap() + bad.find("= ").unwrap() + 2;
        assert_at(&d, &text, bad.split(" = ").nth(1).unwrap(), value_at);
    }
    // Two doorbells on one SPI.
    let second = CHANNEL
        .replace("\"telemetry\"", "\"second\"")
        .replace("0x4a00_0000", "0x4a00_1000")
        .replace("0x4100_0000", "0x4100_1000")
        .replace(
            "0x6000_0000",
            &format!(
                "0x6000_1000\n{}",
                DOORBELL.replace("0x0903_0000", "0x0903_1000")
            ),
        );
    let text = with_channel(&with_doorbell(DOORBELL), &second);
    fails(
        &text,
        Rule::DoorbellForm,
        "doorbell irq 220 is already the doorbell of channel `telemetry`",
    );
    ok(&with_channel(
        &with_doorbell(DOORBELL),
        &second.replace("irq = 220", "irq = 221"),
    ));
}

/// CFG-61 for the doorbell's frame: a hole in the reader's IPA space.
#[test]
fn cfg61_doorbell_frame_is_a_hole() {
    let text = with_doorbell(&DOORBELL.replace("0x0903_0000", "0x0904_0000"));
    fails(
        &text,
        Rule::ChannelIpa,
        "the doorbell frame at IPA [0x904_0000, 0x904_1000) in partition `linux` overlaps device `uart1`",
    );
    let text = with_doorbell(&DOORBELL.replace("0x0903_0000", "0x6000_0000"));
    fails(
        &text,
        Rule::ChannelIpa,
        "overlaps the reader end of channel `telemetry`",
    );
}

/// CFG-65: nothing rings into the critical partition.
#[test]
fn cfg65_no_doorbell_into_the_critical_partition() {
    let text = channel(&[
        ("writer = \"rtos\"", "writer = \"linux\""),
        ("reader = \"linux\"", "reader = \"rtos\""),
        ("writer-ipa = 0x4100_0000", "writer-ipa = 0x6000_0000"),
        (
            "reader-ipa = 0x6000_0000",
            &format!("reader-ipa = 0x4100_0000\n{DOORBELL}"),
        ),
    ]);
    let d = fails(
        &text,
        Rule::DoorbellCritical,
        "would interrupt `rtos`, the critical partition",
    );
    assert_at(&d, &text, "{ irq = 220", GOOD.len());
}
