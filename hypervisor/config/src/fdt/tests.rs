//! The writer's blob format, and every node and property of the tree a Linux
//! partition gets (read back with the independent `fdt` crate, and with
//! `dtc` when it is installed).

use std::path::{Path, PathBuf};
use std::process::Command;

use fdt::node::FdtNode;
use fdt::Fdt;

use super::FdtWriter;

const LINUX: &str = include_str!("../../tests/fixtures/linux.toml");

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/linux.toml")
}

/// The fixture with each `old` (which must occur exactly once) replaced.
fn patch(edits: &[(&str, &str)]) -> String {
    let mut s = LINUX.to_owned();
    for (old, new) in edits {
        assert_eq!(s.matches(old).count(), 1, "{old:?} must occur once");
        s = s.replacen(old, new, 1);
    }
    s
}

/// The device tree of the `linux` partition of `text`.
fn dtb_of(text: &str) -> Vec<u8> {
    let cfg = crate::load_str(&fixture_path(), text).unwrap_or_else(|d| panic!("{d}"));
    let p = &cfg.partitions[1];
    let blob = super::linux_dtb(&cfg, 1);
    assert_eq!(Some(&blob), p.linux.as_ref().map(|l| &l.dtb_blob));
    blob
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn cells(v: &[u8]) -> Vec<u32> {
    assert_eq!(v.len() % 4, 0, "not whole cells: {v:?}");
    v.chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn strs(v: &[u8]) -> Vec<&str> {
    assert_eq!(v.last(), Some(&0), "string list not NUL-terminated");
    std::str::from_utf8(&v[..v.len() - 1])
        .unwrap()
        .split('\0')
        .collect()
}

fn node<'b, 'a>(f: &'b Fdt<'a>, path: &str) -> FdtNode<'b, 'a> {
    f.find_node(path)
        .unwrap_or_else(|| panic!("no node {path}"))
}

fn prop<'a>(f: &Fdt<'a>, path: &str, name: &str) -> &'a [u8] {
    node(f, path)
        .property(name)
        .unwrap_or_else(|| panic!("no property {name} in {path}"))
        .value
}

/// Names of a node's properties, in order.
fn prop_names<'a>(f: &Fdt<'a>, path: &str) -> Vec<&'a str> {
    node(f, path).properties().map(|p| p.name).collect()
}

fn child_names<'a>(f: &Fdt<'a>, path: &str) -> Vec<&'a str> {
    node(f, path).children().map(|n| n.name).collect()
}

/// The header, the empty reservation block, 4-byte alignment, shared
/// property names and the tokens of the structure block.
#[test]
fn writer_emits_a_version_17_blob() {
    let mut w = FdtWriter::new();
    w.begin_node("");
    w.prop_u32("#address-cells", 2);
    w.begin_node("n@1");
    w.prop_u32("#address-cells", 1); // the name is stored once
    w.prop_str("s", "xyz"); // 4 bytes with the NUL
    w.prop_str("t", "ab"); // 3 bytes, padded to 4
    w.prop_empty("e");
    w.prop_u64("q", 0x1122_3344_5566_7788);
    w.prop_strs("l", &["a", "bc"]);
    w.end_node();
    w.end_node();
    let b = w.finish();

    assert_eq!(be32(&b, 0), 0xd00d_feed);
    assert_eq!(be32(&b, 4) as usize, b.len(), "totalsize");
    let (off_struct, off_strings, off_rsv) = (be32(&b, 8), be32(&b, 12), be32(&b, 16));
    assert_eq!((be32(&b, 20), be32(&b, 24)), (17, 16), "version");
    assert_eq!(be32(&b, 28), 0, "boot_cpuid_phys");
    let (size_strings, size_struct) = (be32(&b, 32), be32(&b, 36));
    assert_eq!(off_rsv, 40);
    assert_eq!(&b[40..56], &[0; 16], "one terminating reservation entry");
    assert_eq!(off_struct, 56);
    assert_eq!(off_struct % 4, 0);
    assert_eq!(off_strings, off_struct + size_struct);
    assert_eq!(off_strings + size_strings, b.len() as u32);
    assert_eq!(size_struct % 4, 0);
    let strings = &b[off_strings as usize..];
    assert_eq!(strings, b"#address-cells\0s\0t\0e\0q\0l\0");
    let st = &b[off_struct as usize..off_strings as usize];
    assert_eq!(be32(st, 0), 1, "FDT_BEGIN_NODE");
    assert_eq!(&st[4..8], &[0; 4], "root name \"\" padded");
    assert_eq!(be32(st, 8), 3, "FDT_PROP");
    assert_eq!((be32(st, 12), be32(st, 16), be32(st, 20)), (4, 0, 2));
    assert_eq!(be32(st, st.len() - 8), 2, "FDT_END_NODE");
    assert_eq!(be32(st, st.len() - 4), 9, "FDT_END");

    let f = Fdt::new(&b).unwrap();
    assert_eq!(prop(&f, "/n@1", "s"), b"xyz\0");
    assert_eq!(prop(&f, "/n@1", "t"), b"ab\0");
    assert_eq!(prop(&f, "/n@1", "e"), b"");
    assert_eq!(cells(prop(&f, "/n@1", "q")), [0x1122_3344, 0x5566_7788]);
    assert_eq!(strs(prop(&f, "/n@1", "l")), ["a", "bc"]);
    assert_eq!(cells(prop(&f, "/n@1", "#address-cells")), [1]);
}

/// REQ-LINUX-DT: the tree describes exactly what the partition gets, with
/// the properties and cell patterns Linux (and QEMU's own tree) use.
#[test]
fn linux_tree_describes_exactly_the_partition() {
    let b = dtb_of(LINUX);
    let f = Fdt::new(&b).unwrap();
    assert_eq!(f.total_size(), b.len());
    assert_eq!(f.memory_reservations().count(), 0);

    // Root.
    assert_eq!(
        prop_names(&f, "/"),
        [
            "compatible",
            "model",
            "#address-cells",
            "#size-cells",
            "interrupt-parent"
        ]
    );
    assert_eq!(
        strs(prop(&f, "/", "compatible")),
        ["septum,partition", "linux,dummy-virt"]
    );
    assert_eq!(strs(prop(&f, "/", "model")), ["Septum partition linux"]);
    assert_eq!(cells(prop(&f, "/", "#address-cells")), [2]);
    assert_eq!(cells(prop(&f, "/", "#size-cells")), [2]);
    let gic_phandle = cells(prop(&f, "/", "interrupt-parent"))[0];
    // Nothing else: no PCIe, fw-cfg, RTC, GPIO, other UARTs; the gpio
    // device has no compatible and is mapped but not described.
    assert_eq!(
        child_names(&f, "/"),
        [
            "chosen",
            "memory@50000000",
            "memory@49000000",
            "reserved-memory",
            "cpus",
            "psci",
            "timer",
            "interrupt-controller@8000000",
            "apb-pclk",
            "uart1@9040000",
            "net0@a000000",
        ]
    );

    // /chosen: the initrd follows the kernel's image_size (0x150_0000),
    // rounded up to 2 MiB; the fixture's initrd is 34 bytes.
    assert_eq!(
        prop_names(&f, "/chosen"),
        [
            "bootargs",
            "stdout-path",
            "linux,initrd-start",
            "linux,initrd-end",
            "septum,measurement-log"
        ]
    );
    assert_eq!(
        strs(prop(&f, "/chosen", "bootargs")),
        ["console=ttyAMA0 panic=-1"]
    );
    assert_eq!(strs(prop(&f, "/chosen", "stdout-path")), ["/uart1@9040000"]);
    // Zeros until the hypervisor writes the measurement log into the copy.
    assert_eq!(prop(&f, "/chosen", "septum,measurement-log"), [0u8; 4096]);
    assert_eq!(
        cells(prop(&f, "/chosen", "linux,initrd-start")),
        [0, 0x5160_0000]
    );
    assert_eq!(
        cells(prop(&f, "/chosen", "linux,initrd-end")),
        [0, 0x5160_0022]
    );

    // Memory: every region; the shared one also reserved with no-map.
    for (path, reg) in [
        ("/memory@50000000", [0, 0x5000_0000, 0, 0x7000_0000]),
        ("/memory@49000000", [0, 0x4900_0000, 0, 0x1000]),
    ] {
        assert_eq!(prop_names(&f, path), ["device_type", "reg"]);
        assert_eq!(strs(prop(&f, path, "device_type")), ["memory"]);
        assert_eq!(cells(prop(&f, path, "reg")), reg);
    }
    assert_eq!(child_names(&f, "/reserved-memory"), ["shm@49000000"]);
    assert_eq!(cells(prop(&f, "/reserved-memory", "#address-cells")), [2]);
    assert_eq!(cells(prop(&f, "/reserved-memory", "#size-cells")), [2]);
    assert_eq!(prop(&f, "/reserved-memory", "ranges"), b"");
    let shm = "/reserved-memory/shm@49000000";
    assert_eq!(cells(prop(&f, shm, "reg")), [0, 0x4900_0000, 0, 0x1000]);
    assert_eq!(prop(&f, shm, "no-map"), b"");

    // One cpu per vCPU; reg is the virtual MPIDR Aff0.
    assert_eq!(cells(prop(&f, "/cpus", "#address-cells")), [1]);
    assert_eq!(cells(prop(&f, "/cpus", "#size-cells")), [0]);
    assert_eq!(child_names(&f, "/cpus"), ["cpu@0", "cpu@1", "cpu@2"]);
    for n in 0..3u32 {
        let path = format!("/cpus/cpu@{n}");
        assert_eq!(strs(prop(&f, &path, "device_type")), ["cpu"]);
        assert_eq!(strs(prop(&f, &path, "compatible")), ["arm,cortex-a72"]);
        assert_eq!(cells(prop(&f, &path, "reg")), [n]);
        assert_eq!(strs(prop(&f, &path, "enable-method")), ["psci"]);
    }

    assert_eq!(
        strs(prop(&f, "/psci", "compatible")),
        ["arm,psci-1.0", "arm,psci-0.2"]
    );
    assert_eq!(strs(prop(&f, "/psci", "method")), ["hvc"]);

    // Timer: the four PPIs as QEMU virt describes them with a GICv3.
    assert_eq!(strs(prop(&f, "/timer", "compatible")), ["arm,armv8-timer"]);
    assert_eq!(
        cells(prop(&f, "/timer", "interrupts")),
        [1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]
    );
    assert_eq!(prop(&f, "/timer", "always-on"), b"");

    // GICv3: GICD 64 KiB, redistributors of 3 vCPUs; no maintenance
    // interrupt, no ITS, no redistributor-stride (the default 128 KiB).
    let gic = "/interrupt-controller@8000000";
    assert_eq!(strs(prop(&f, gic, "compatible")), ["arm,gic-v3"]);
    assert_eq!(
        cells(prop(&f, gic, "reg")),
        [0, 0x0800_0000, 0, 0x1_0000, 0, 0x080a_0000, 0, 0x6_0000]
    );
    assert_eq!(cells(prop(&f, gic, "#interrupt-cells")), [3]);
    assert_eq!(prop(&f, gic, "interrupt-controller"), b"");
    assert_eq!(cells(prop(&f, gic, "#address-cells")), [2]);
    assert_eq!(cells(prop(&f, gic, "#size-cells")), [2]);
    assert_eq!(prop(&f, gic, "ranges"), b"");
    assert_eq!(cells(prop(&f, gic, "phandle")), [gic_phandle]);
    assert!(node(&f, gic).property("interrupts").is_none());
    assert!(node(&f, gic).property("redistributor-stride").is_none());
    assert_eq!(child_names(&f, gic).len(), 0);

    let clk = "/apb-pclk";
    assert_eq!(strs(prop(&f, clk, "compatible")), ["fixed-clock"]);
    assert_eq!(cells(prop(&f, clk, "#clock-cells")), [0]);
    assert_eq!(cells(prop(&f, clk, "clock-frequency")), [24_000_000]);
    assert_eq!(strs(prop(&f, clk, "clock-output-names")), ["clk24mhz"]);
    let clk_phandle = cells(prop(&f, clk, "phandle"))[0];
    assert_ne!(clk_phandle, gic_phandle);

    // A PL011: "arm,primecell" added for Linux's AMBA bus; level-high SPI
    // 40 - 32; both clocks.
    let uart = "/uart1@9040000";
    assert_eq!(
        prop_names(&f, uart),
        ["compatible", "reg", "interrupts", "clocks", "clock-names"]
    );
    assert_eq!(
        strs(prop(&f, uart, "compatible")),
        ["arm,pl011", "arm,primecell"]
    );
    assert_eq!(cells(prop(&f, uart, "reg")), [0, 0x0904_0000, 0, 0x1000]);
    assert_eq!(cells(prop(&f, uart, "interrupts")), [0, 8, 4]);
    assert_eq!(cells(prop(&f, uart, "clocks")), [clk_phandle, clk_phandle]);
    assert_eq!(strs(prop(&f, uart, "clock-names")), ["uartclk", "apb_pclk"]);

    // virtio-mmio: reg-size 0x200, edge-triggered SPI 48 - 32, dma-coherent.
    let net = "/net0@a000000";
    assert_eq!(
        prop_names(&f, net),
        ["compatible", "reg", "interrupts", "dma-coherent"]
    );
    assert_eq!(strs(prop(&f, net, "compatible")), ["virtio,mmio"]);
    assert_eq!(cells(prop(&f, net, "reg")), [0, 0x0a00_0000, 0, 0x200]);
    assert_eq!(cells(prop(&f, net, "interrupts")), [0, 16, 1]);
}

/// Property names are stored once each in the strings block.
#[test]
fn strings_are_deduplicated() {
    let b = dtb_of(LINUX);
    let (off, size) = (be32(&b, 12) as usize, be32(&b, 32) as usize);
    let names: Vec<&[u8]> = b[off..off + size - 1].split(|&c| c == 0).collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(names.len(), unique.len(), "duplicate names in {names:?}");
    assert!(names.contains(&&b"compatible"[..]));
}

const GICV2: &str = "gic = { version = 2, gicd = 0x0800_0000, gicc = 0x0801_0000, gich = 0x0803_0000, gicv = 0x0804_0000, maintenance-irq = 25 }";
const GICV3: &str = "gic = { version = 3, gicd = 0x0800_0000, gicr = 0x080a_0000, gicr-stride = 0x2_0000, maintenance-irq = 25 }";

/// GICv2: a GIC-400 with the distributor and the CPU interface (the
/// hypervisor backs the guest's GICC with the GICV frame); timer PPIs carry
/// the CPU mask of the partition's 3 vCPUs.
#[test]
fn gicv2_tree() {
    let b = dtb_of(&patch(&[(GICV3, GICV2)]));
    let f = Fdt::new(&b).unwrap();
    let gic = "/interrupt-controller@8000000";
    assert_eq!(strs(prop(&f, gic, "compatible")), ["arm,gic-400"]);
    assert_eq!(
        cells(prop(&f, gic, "reg")),
        [0, 0x0800_0000, 0, 0x1000, 0, 0x0801_0000, 0, 0x2000]
    );
    assert_eq!(cells(prop(&f, gic, "#interrupt-cells")), [3]);
    assert_eq!(
        cells(prop(&f, "/timer", "interrupts")),
        [1, 13, 0x704, 1, 14, 0x704, 1, 11, 0x704, 1, 10, 0x704]
    );
}

/// A redistributor stride other than 128 KiB is spelled out, and the
/// redistributor block grows with it.
#[test]
fn redistributor_stride_when_not_the_default() {
    let b = dtb_of(&patch(&[(
        "gicr-stride = 0x2_0000",
        "gicr-stride = 0x4_0000",
    )]));
    let f = Fdt::new(&b).unwrap();
    let gic = "/interrupt-controller@8000000";
    assert_eq!(
        cells(prop(&f, gic, "reg")),
        [0, 0x0800_0000, 0, 0x1_0000, 0, 0x080a_0000, 0, 0xc_0000]
    );
    assert_eq!(cells(prop(&f, gic, "redistributor-stride")), [0, 0x4_0000]);
}

/// Without initrd, stdout and PrimeCells, /chosen holds only the bootargs
/// and there is no clock node.
#[test]
fn optional_pieces_are_left_out() {
    let b = dtb_of(&patch(&[
        (
            r#"linux = { kernel = "linux.Image", initrd = "initrd.cpio.gz", bootargs = "console=ttyAMA0 panic=-1", stdout = "uart1" }"#,
            r#"linux = { kernel = "linux.Image" }"#,
        ),
        (", compatible = \"arm,pl011\"", ""),
    ]));
    let f = Fdt::new(&b).unwrap();
    assert_eq!(
        prop_names(&f, "/chosen"),
        ["bootargs", "septum,measurement-log"]
    );
    assert_eq!(prop(&f, "/chosen", "bootargs"), b"\0");
    let children = child_names(&f, "/");
    assert!(!children.contains(&"apb-pclk"), "{children:?}");
    assert!(
        !children.iter().any(|c| c.starts_with("uart1")),
        "{children:?}"
    );
    assert!(children.contains(&"net0@a000000"), "{children:?}");
}

/// An explicit "arm,primecell" is not repeated; an SP805 gets its clocks.
#[test]
fn primecells() {
    let b = dtb_of(&patch(&[(
        ", compatible = \"arm,pl011\"",
        ", compatible = [\"arm,sp805\", \"arm,primecell\"]",
    )]));
    let f = Fdt::new(&b).unwrap();
    let wdt = "/uart1@9040000";
    assert_eq!(
        strs(prop(&f, wdt, "compatible")),
        ["arm,sp805", "arm,primecell"]
    );
    assert_eq!(strs(prop(&f, wdt, "clock-names")), ["wdog_clk", "apb_pclk"]);
}

/// The fixture with a telemetry channel from the RTOS whose doorbell rings
/// into Linux.
fn with_doorbell() -> String {
    format!(
        "{LINUX}\n[[channel]]\nname = \"telemetry\"\nwriter = \"rtos\"\nreader = \"linux\"\npa = 0x4a00_0000\nsize = 0x1000\nwriter-ipa = 0x4100_0000\ndoorbell = {{ irq = 220, ipa = 0x0905_0000, rate = 10 }}\n"
    )
}

/// REQ-CHN-2, REQ-CHN-8: the channel under /reserved-memory, and the
/// doorbell as a PL061 for the stock driver: its frame, the SPI (edge), a
/// GPIO and interrupt controller, the clock the AMBA bus needs, and line 0
/// named after the channel.
#[test]
fn channel_and_doorbell() {
    let b = dtb_of(&with_doorbell());
    let f = Fdt::new(&b).unwrap();
    let ch = "/reserved-memory/telemetry@4a000000";
    assert_eq!(strs(prop(&f, ch, "compatible")), ["septum,channel"]);
    assert_eq!(strs(prop(&f, ch, "septum,role")), ["reader"]);
    assert_eq!(prop(&f, ch, "no-map"), b"");
    let g = "/gpio@9050000";
    assert_eq!(
        strs(prop(&f, g, "compatible")),
        ["arm,pl061", "arm,primecell"]
    );
    assert_eq!(cells(prop(&f, g, "reg")), [0, 0x0905_0000, 0, 0x1000]);
    assert_eq!(cells(prop(&f, g, "interrupts")), [0, 188, 1]);
    assert_eq!(prop(&f, g, "gpio-controller"), b"");
    assert_eq!(prop(&f, g, "interrupt-controller"), b"");
    assert_eq!(cells(prop(&f, g, "#gpio-cells")), [2]);
    assert_eq!(cells(prop(&f, g, "#interrupt-cells")), [2]);
    assert_eq!(strs(prop(&f, g, "clock-names")), ["apb_pclk"]);
    let names = strs(prop(&f, g, "gpio-line-names"));
    assert_eq!(names.len(), 8);
    assert_eq!(names[0], "septum-telemetry");
    assert_eq!(strs(prop(&f, g, "septum,channel")), ["telemetry"]);
    // The writer's tree (the RTOS has none) and a reader without a doorbell: no PL061.
    let plain = dtb_of(&with_doorbell().replace(
        "doorbell = { irq = 220, ipa = 0x0905_0000, rate = 10 }\n",
        "",
    ));
    let f = Fdt::new(&plain).unwrap();
    assert!(f.find_node("/gpio@9050000").is_none());
}

/// The Raspberry Pi's mini-UART: registers 0x40 into the AUX page, its
/// clock gate 0 of the AUX block at the start of the page (so Linux sets
/// AUXENB itself), fed by a fixed clock (the VideoCore core clock);
/// stdout-path to the node.
#[test]
fn bcm2835_aux_uart() {
    let b = dtb_of(&patch(&[
        (
            "pa = 0x0904_0000, ipa = 0x0904_0000, size = 0x1000, irqs = [40], compatible = \"arm,pl011\"",
            "pa = 0x0904_0000, ipa = 0x0904_0000, size = 0x1000, irqs = [40], compatible = \"brcm,bcm2835-aux-uart\"",
        ),
    ]));
    let f = Fdt::new(&b).unwrap();
    let uart = "/uart1@9040040";
    assert_eq!(
        strs(prop(&f, uart, "compatible")),
        ["brcm,bcm2835-aux-uart"]
    );
    assert_eq!(cells(prop(&f, uart, "reg")), [0, 0x0904_0040, 0, 0x40]);
    let aux = "/aux@9040000";
    assert_eq!(strs(prop(&f, aux, "compatible")), ["brcm,bcm2835-aux"]);
    assert_eq!(cells(prop(&f, aux, "reg")), [0, 0x0904_0000, 0, 0x8]);
    assert_eq!(cells(prop(&f, aux, "#clock-cells")), [1]);
    let clk = cells(prop(&f, uart, "clocks"));
    assert_eq!(clk, [cells(prop(&f, aux, "phandle"))[0], 0], "gate 0: UART");
    assert_eq!(
        cells(prop(&f, aux, "clocks")),
        cells(prop(&f, "/aux-uart-clk", "phandle"))
    );
    assert_eq!(
        cells(prop(&f, "/aux-uart-clk", "clock-frequency")),
        [500_000_000]
    );
    assert!(
        !child_names(&f, "/").contains(&"apb-pclk"),
        "no PL011 clock"
    );
    assert_eq!(strs(prop(&f, "/chosen", "stdout-path")), [uart]);
}

/// `dtc` decompiles the tree without a single warning (skipped, with a
/// note, where dtc is not installed; scripts/test.sh installs it).
#[test]
fn dtc_accepts_the_tree_without_warnings() {
    if Command::new("dtc").arg("--version").output().is_err() {
        eprintln!("note: dtc (device-tree-compiler) is not installed; skipping the dtc check");
        return;
    }
    let dir = std::env::temp_dir().join(format!("septum-config-dtc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let aux = patch(&[(
        "irqs = [40], compatible = \"arm,pl011\"",
        "irqs = [40], compatible = \"brcm,bcm2835-aux-uart\"",
    )]);
    for (name, text) in [
        ("v3", LINUX.to_owned()),
        ("v2", patch(&[(GICV3, GICV2)])),
        ("aux", aux),
        ("doorbell", with_doorbell()),
    ] {
        let file = dir.join(format!("{name}.dtb"));
        std::fs::write(&file, dtb_of(&text)).unwrap();
        let out = Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts", "-o", "-"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "dtc failed on {name}: {stderr}");
        assert!(stderr.trim().is_empty(), "dtc warns on {name}:\n{stderr}");
        let dts = String::from_utf8_lossy(&out.stdout);
        let uart = if name == "aux" { "9040040" } else { "9040000" };
        assert!(
            dts.contains(&format!("stdout-path = \"/uart1@{uart}\";")),
            "{dts}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
