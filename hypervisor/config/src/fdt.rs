//! A small flattened-device-tree writer (DTB format version 17, as in the
//! Devicetree Specification, chapter 5) and the device tree a Linux
//! partition boots with.
//!
//! The tree is generated on the host at build time and describes only what
//! the partition is given: its memory, its vCPUs, PSCI over HVC, the virtual
//! GIC and timer the hypervisor provides, and the passthrough devices that
//! carry a `compatible`. docs/configuration.md shows it as a listing.

use std::collections::HashMap;

use super::model::{DeviceKind, GicVersion, ValidatedConfig};
use septum_core::config::DOORBELL_FRAME;

/// `/chosen` property that carries the measurement log to a Linux guest.
pub const MLOG_PROP: &str = "septum,measurement-log";
/// Its size: the log's header and up to 50 entries
/// (`septum_core::measure::mlog`).
pub const MLOG_PROP_LEN: usize = 4096;

// The format's constants, from the reader the hypervisor and the RTOS use.
use septum_core::fdt::{
    BEGIN_NODE as FDT_BEGIN_NODE, END as FDT_END, END_NODE as FDT_END_NODE, HEADER_LEN,
    MAGIC as FDT_MAGIC, PROP as FDT_PROP,
};
const VERSION: u32 = 17;
const LAST_COMP_VERSION: u32 = 16;

/// Builds a flattened device tree: nodes are opened and closed in order,
/// properties belong to the innermost open node.
#[derive(Debug, Default)]
pub struct FdtWriter {
    structure: Vec<u8>,
    strings: Vec<u8>,
    /// Offsets of property names already in `strings` (names are shared).
    offsets: HashMap<String, u32>,
    depth: usize,
}

impl FdtWriter {
    pub fn new() -> Self {
        Self::default()
    }

    fn word(&mut self, w: u32) {
        self.structure.extend_from_slice(&w.to_be_bytes());
    }

    /// Pads the structure block to the next 4-byte boundary.
    fn pad(&mut self) {
        while !self.structure.len().is_multiple_of(4) {
            self.structure.push(0);
        }
    }

    /// Opens a node; the root's name is "".
    pub fn begin_node(&mut self, name: &str) {
        debug_assert!(!name.contains('\0'));
        self.word(FDT_BEGIN_NODE);
        self.structure.extend_from_slice(name.as_bytes());
        self.structure.push(0);
        self.pad();
        self.depth += 1;
    }

    pub fn end_node(&mut self) {
        debug_assert!(self.depth > 0, "end_node without begin_node");
        self.word(FDT_END_NODE);
        self.depth -= 1;
    }

    fn name_offset(&mut self, name: &str) -> u32 {
        if let Some(&off) = self.offsets.get(name) {
            return off;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        self.offsets.insert(name.to_owned(), off);
        off
    }

    /// A property with raw bytes as its value.
    pub fn prop(&mut self, name: &str, value: &[u8]) {
        debug_assert!(self.depth > 0 && !name.contains('\0'));
        let off = self.name_offset(name);
        self.word(FDT_PROP);
        self.word(value.len() as u32);
        self.word(off);
        self.structure.extend_from_slice(value);
        self.pad();
    }

    /// A property without a value (`interrupt-controller;`).
    pub fn prop_empty(&mut self, name: &str) {
        self.prop(name, &[]);
    }

    /// Big-endian 32-bit cells.
    pub fn prop_cells(&mut self, name: &str, cells: &[u32]) {
        let bytes: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &bytes);
    }

    pub fn prop_u32(&mut self, name: &str, v: u32) {
        self.prop_cells(name, &[v]);
    }

    /// One 64-bit value as two cells.
    pub fn prop_u64(&mut self, name: &str, v: u64) {
        self.prop(name, &v.to_be_bytes());
    }

    /// A NUL-terminated string.
    pub fn prop_str(&mut self, name: &str, s: &str) {
        self.prop_strs(name, &[s]);
    }

    /// A string list: each entry NUL-terminated.
    pub fn prop_strs<S: AsRef<str>>(&mut self, name: &str, list: &[S]) {
        let mut bytes = Vec::new();
        for s in list {
            debug_assert!(!s.as_ref().contains('\0'));
            bytes.extend_from_slice(s.as_ref().as_bytes());
            bytes.push(0);
        }
        self.prop(name, &bytes);
    }

    /// The blob: header, an empty memory reservation block, the structure
    /// block and the strings block.
    pub fn finish(mut self) -> Vec<u8> {
        debug_assert_eq!(self.depth, 0, "unclosed nodes");
        self.word(FDT_END);
        // The reservation block is 8-byte aligned; 40 already is.
        let off_rsvmap = HEADER_LEN;
        let rsvmap_len = 16; // only the terminating (0, 0) entry
        let off_struct = off_rsvmap + rsvmap_len;
        let off_strings = off_struct + self.structure.len();
        let total = off_strings + self.strings.len();
        let mut out = Vec::with_capacity(total);
        for w in [
            FDT_MAGIC,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            off_rsvmap as u32,
            VERSION,
            LAST_COMP_VERSION,
            0, // boot_cpuid_phys: vCPU 0 boots
            self.strings.len() as u32,
            self.structure.len() as u32,
        ] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out.resize(off_struct, 0);
        out.extend_from_slice(&self.structure);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// phandles of the nodes others refer to.
const GIC_PHANDLE: u32 = 1;
const CLOCK_PHANDLE: u32 = 2;
const AUX_CLOCK_PHANDLE: u32 = 3;
const AUX_GATE_PHANDLE: u32 = 4;

/// The Raspberry Pi's mini-UART (binding "brcm,bcm2835-aux-uart"): its
/// registers start 0x40 into the AUX page the device maps, and its baud
/// clock is the VideoCore core clock, which the firmware holds at 500 MHz
/// with `core_freq=500` (scripts/mk-sdcard.sh writes it).
///
/// The page starts with the AUX block's own registers (interrupt status,
/// then AUXENB, which powers the mini-UART and both SPI masters). Nothing
/// else enables the mini-UART when the firmware's console is the PL011, so
/// the tree also describes the AUX block ("brcm,bcm2835-aux", Linux's
/// clk-bcm2835-aux driver): its gate clock 0 is AUXENB bit 0, and the UART
/// takes its clock through it, so Linux switches the UART on itself.
const AUX_UART: &str = "brcm,bcm2835-aux-uart";
const AUX_UART_REGS: (u64, u64) = (0x40, 0x40);
const AUX_CLOCK_HZ: u32 = 500_000_000;
const AUX_BLOCK: &str = "brcm,bcm2835-aux";
/// AUX_IRQ and AUXENB.
const AUX_BLOCK_REGS: u64 = 0x8;
/// Gate index of the mini-UART (BCM2835_AUX_CLOCK_UART).
const AUX_GATE_UART: u32 = 0;

/// What every vCPU claims to be. Both supported boards have Cortex-A72
/// cores (QEMU `-cpu cortex-a72`, BCM2711); a platform key can replace this
/// constant once one differs.
pub const CPU_COMPATIBLE: &str = "arm,cortex-a72";

/// Architected timer PPIs, as device-tree PPI numbers (INTID - 16): secure
/// physical, non-secure physical, virtual, hypervisor physical. The same on
/// QEMU `virt` and the Raspberry Pi 4.
const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];

/// Interrupt specifier flags (third cell).
const IRQ_EDGE_RISING: u32 = 1;
const IRQ_LEVEL_HIGH: u32 = 4;
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;

/// The fixed clock the PL011 and SP805 bindings need (QEMU's `apb-pclk`).
const CLOCK_HZ: u32 = 24_000_000;

/// GICv2 CPU interface frame (the GIC-400's 8 KiB) and distributor frame.
const GICV2_GICD_SIZE: u64 = 0x1000;
const GICV2_GICC_SIZE: u64 = 0x2000;
/// GICv3 distributor frame.
const GICV3_GICD_SIZE: u64 = 0x1_0000;
/// The redistributor stride Linux assumes without `redistributor-stride`.
const GICV3_DEFAULT_STRIDE: u64 = 0x2_0000;

fn cells64(v: u64) -> [u32; 2] {
    [(v >> 32) as u32, v as u32]
}

/// `reg` with two address and two size cells.
fn reg(ranges: &[(u64, u64)]) -> Vec<u32> {
    ranges
        .iter()
        .flat_map(|&(a, s)| cells64(a).into_iter().chain(cells64(s)))
        .collect()
}

/// PrimeCell peripherals (AMBA bus) whose bindings we know. Linux probes a
/// node on the AMBA bus only when it also lists "arm,primecell", so that
/// entry is added when the configuration leaves it out.
const PRIMECELLS: [(&str, [&str; 2]); 2] = [
    ("arm,pl011", ["uartclk", "apb_pclk"]),
    ("arm,sp805", ["wdog_clk", "apb_pclk"]),
];

/// Where a passthrough device's registers start in its mapped window: the
/// window's base, or further in where the binding says so.
pub fn node_addr(compatible: &[String], ipa: u64) -> u64 {
    if compatible.iter().any(|c| c == AUX_UART) {
        ipa + AUX_UART_REGS.0
    } else {
        ipa
    }
}

/// The device-tree path of a described device (used for stdout-path).
pub fn device_path(name: &str, ipa: u64) -> String {
    format!("/{name}@{ipa:x}")
}

/// `compatible` of a channel's node under /reserved-memory.
pub const CHANNEL_COMPATIBLE: &str = "septum,channel";

/// The GPIO line name of a channel's doorbell, which the reader looks up.
pub fn doorbell_line_name(channel: &str) -> String {
    format!(
        "{}{channel}",
        septum_core::abi::channel::DOORBELL_LINE_PREFIX
    )
}

/// Whether a memory region is ordinary RAM for Linux: private and rwx.
/// Shared or restricted regions are also listed under /reserved-memory with
/// `no-map`, so that the kernel never allocates from them (it would write
/// into the other partition's data, or fault on a missing permission).
pub fn is_general_ram(m: &super::model::MemRegion) -> bool {
    m.shared_with.is_empty() && m.perms.read && m.perms.write && m.perms.exec
}

/// The flattened device tree for partition `partition` (an index into
/// `cfg.partitions`). Values that only a Linux partition has (bootargs,
/// stdout, initrd) come from its `linux` table and are left out otherwise.
pub fn linux_dtb(cfg: &ValidatedConfig, partition: usize) -> Vec<u8> {
    let p = &cfg.partitions[partition];
    let g = &cfg.platform.gic;
    let nvcpus = p.cores.len();
    let mut w = FdtWriter::new();

    let described: Vec<_> = p
        .devices
        .iter()
        .filter(|d| !d.compatible.is_empty())
        .filter_map(|d| match d.kind {
            DeviceKind::Passthrough { ipa, .. } => Some((d, node_addr(&d.compatible, ipa.0))),
            DeviceKind::VirtualUart { .. } => None,
        })
        .collect();
    let bells: Vec<_> = p
        .channels
        .iter()
        .filter_map(|c| c.incoming().map(|d| (c, d)))
        .collect();
    let needs_clock = !bells.is_empty()
        || described.iter().any(|(d, _)| {
            PRIMECELLS
                .iter()
                .any(|(c, _)| d.compatible.iter().any(|x| x == c))
        });
    let needs_aux_clock = described
        .iter()
        .any(|(d, _)| d.compatible.iter().any(|x| x == AUX_UART));

    w.begin_node("");
    w.prop_strs("compatible", &["septum,partition", "linux,dummy-virt"]);
    w.prop_str("model", &format!("Septum partition {}", p.name));
    w.prop_u32("#address-cells", 2);
    w.prop_u32("#size-cells", 2);
    w.prop_u32("interrupt-parent", GIC_PHANDLE);

    w.begin_node("chosen");
    if let Some(l) = &p.linux {
        w.prop_str("bootargs", &l.bootargs);
        if let Some(out) = &l.stdout {
            if let Some((d, ipa)) = described.iter().find(|(d, _)| &d.name == out) {
                w.prop_str("stdout-path", &device_path(&d.name, *ipa));
            }
        }
        if let Some(r) = l.initrd {
            w.prop_u64("linux,initrd-start", r.start.0);
            w.prop_u64("linux,initrd-end", r.start.0 + r.size);
        }
    }
    // Room for the measurement log, which the hypervisor writes into the
    // partition's copy of this tree at boot (the pristine tree, measured
    // like every image, holds zeros here). Linux shows it to userland as
    // /proc/device-tree/chosen/septum,measurement-log.
    w.prop(MLOG_PROP, &[0u8; MLOG_PROP_LEN]);
    w.end_node();

    for m in &p.memory {
        w.begin_node(&format!("memory@{:x}", m.ipa.0));
        w.prop_str("device_type", "memory");
        w.prop_cells("reg", &reg(&[(m.ipa.0, m.size)]));
        w.end_node();
    }
    let reserved: Vec<_> = p.memory.iter().filter(|m| !is_general_ram(m)).collect();
    if !reserved.is_empty() || !p.channels.is_empty() {
        w.begin_node("reserved-memory");
        w.prop_u32("#address-cells", 2);
        w.prop_u32("#size-cells", 2);
        w.prop_empty("ranges");
        for m in reserved {
            w.begin_node(&format!("{}@{:x}", m.name, m.ipa.0));
            w.prop_cells("reg", &reg(&[(m.ipa.0, m.size)]));
            w.prop_empty("no-map");
            w.end_node();
        }
        // Channels (docs/channels.md): outside every memory node, so the
        // kernel never uses them; no-map says the same to a kernel that
        // looks. A userland reader finds its channel here by name and
        // maps it through /dev/mem.
        for c in &p.channels {
            w.begin_node(&format!("{}@{:x}", c.name, c.ipa.0));
            w.prop_str("compatible", CHANNEL_COMPATIBLE);
            w.prop_cells("reg", &reg(&[(c.ipa.0, c.size)]));
            w.prop_empty("no-map");
            w.prop_str("label", &c.name);
            w.prop_str("septum,role", c.role.name());
            w.end_node();
        }
        w.end_node();
    }

    w.begin_node("cpus");
    w.prop_u32("#address-cells", 1);
    w.prop_u32("#size-cells", 0);
    for n in 0..nvcpus {
        // reg is the vCPU's virtual MPIDR affinity 0.
        w.begin_node(&format!("cpu@{n:x}"));
        w.prop_str("device_type", "cpu");
        w.prop_str("compatible", CPU_COMPATIBLE);
        w.prop_u32("reg", n as u32);
        w.prop_str("enable-method", "psci");
        w.end_node();
    }
    w.end_node();

    w.begin_node("psci");
    w.prop_strs("compatible", &["arm,psci-1.0", "arm,psci-0.2"]);
    w.prop_str("method", "hvc");
    w.end_node();

    // GICv2 PPI specifiers carry a CPU mask in bits [15:8] (as QEMU does).
    let ppi_flags = match g.version {
        GicVersion::V3 => IRQ_LEVEL_HIGH,
        GicVersion::V2 => (((1u32 << nvcpus.min(8)) - 1) << 8) | IRQ_LEVEL_HIGH,
    };
    w.begin_node("timer");
    w.prop_str("compatible", "arm,armv8-timer");
    let timer: Vec<u32> = TIMER_PPIS
        .iter()
        .flat_map(|&ppi| [GIC_PPI, ppi, ppi_flags])
        .collect();
    w.prop_cells("interrupts", &timer);
    w.prop_empty("always-on");
    w.end_node();

    // The guest sees the GIC at the platform's addresses: GICD (and the
    // GICv3 redistributors of vCPUs 0..n-1 from GICR) are emulated by the
    // hypervisor; with a GICv2 the hardware's virtual CPU interface (GICV)
    // is mapped at the guest's GICC address.
    w.begin_node(&format!("interrupt-controller@{:x}", g.gicd.0));
    match g.version {
        GicVersion::V3 => {
            w.prop_str("compatible", "arm,gic-v3");
            w.prop_cells(
                "reg",
                &reg(&[
                    (g.gicd.0, GICV3_GICD_SIZE),
                    (g.gicr.0, g.gicr_stride * nvcpus as u64),
                ]),
            );
            if g.gicr_stride != GICV3_DEFAULT_STRIDE {
                w.prop_u64("redistributor-stride", g.gicr_stride);
            }
        }
        GicVersion::V2 => {
            w.prop_str("compatible", "arm,gic-400");
            w.prop_cells(
                "reg",
                &reg(&[(g.gicd.0, GICV2_GICD_SIZE), (g.gicc.0, GICV2_GICC_SIZE)]),
            );
        }
    }
    w.prop_u32("#interrupt-cells", 3);
    w.prop_empty("interrupt-controller");
    // No children, but dtc expects an interrupt provider to say how its
    // children would be addressed; QEMU does the same.
    w.prop_u32("#address-cells", 2);
    w.prop_u32("#size-cells", 2);
    w.prop_empty("ranges");
    w.prop_u32("phandle", GIC_PHANDLE);
    w.end_node();

    if needs_clock {
        w.begin_node("apb-pclk");
        w.prop_str("compatible", "fixed-clock");
        w.prop_u32("#clock-cells", 0);
        w.prop_u32("clock-frequency", CLOCK_HZ);
        w.prop_str("clock-output-names", "clk24mhz");
        w.prop_u32("phandle", CLOCK_PHANDLE);
        w.end_node();
    }
    if needs_aux_clock {
        w.begin_node("aux-uart-clk");
        w.prop_str("compatible", "fixed-clock");
        w.prop_u32("#clock-cells", 0);
        w.prop_u32("clock-frequency", AUX_CLOCK_HZ);
        w.prop_str("clock-output-names", "core");
        w.prop_u32("phandle", AUX_CLOCK_PHANDLE);
        w.end_node();
    }

    for (d, ipa) in &described {
        let has = |c: &str| d.compatible.iter().any(|x| x == c);
        w.begin_node(&device_path(&d.name, *ipa)[1..]);
        let mut compatible = d.compatible.clone();
        let primecell = PRIMECELLS.iter().find(|(c, _)| has(c));
        if primecell.is_some() && !has("arm,primecell") {
            compatible.push("arm,primecell".to_owned());
        }
        w.prop_strs("compatible", &compatible);
        if has(AUX_UART) {
            w.prop_cells("reg", &reg(&[(*ipa, AUX_UART_REGS.1)]));
            w.prop_cells("clocks", &[AUX_GATE_PHANDLE, AUX_GATE_UART]);
        } else {
            w.prop_cells("reg", &reg(&[(*ipa, d.reg_size)]));
        }
        if !d.irqs.is_empty() {
            // QEMU describes virtio-mmio interrupts as edge, the rest as level.
            let flags = if has("virtio,mmio") {
                IRQ_EDGE_RISING
            } else {
                IRQ_LEVEL_HIGH
            };
            let cells: Vec<u32> = d
                .irqs
                .iter()
                .flat_map(|&i| [GIC_SPI, i.saturating_sub(32), flags])
                .collect();
            w.prop_cells("interrupts", &cells);
        }
        if let Some((_, names)) = primecell {
            w.prop_cells("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE]);
            w.prop_strs("clock-names", names);
        }
        if has("virtio,mmio") {
            w.prop_empty("dma-coherent");
        }
        w.end_node();
        if has(AUX_UART) {
            // The AUX block at the start of the same page (see AUX_UART).
            let block = *ipa - AUX_UART_REGS.0;
            w.begin_node(&format!("aux@{block:x}"));
            w.prop_str("compatible", AUX_BLOCK);
            w.prop_cells("reg", &reg(&[(block, AUX_BLOCK_REGS)]));
            w.prop_u32("#clock-cells", 1);
            w.prop_cells("clocks", &[AUX_CLOCK_PHANDLE]);
            w.prop_u32("phandle", AUX_GATE_PHANDLE);
            w.end_node();
        }
    }

    // Doorbells (docs/channels.md): each an emulated PL061 for Linux's
    // built-in gpio-pl061 driver; line 0, named after the channel, pulses
    // on every ring, and userland waits for it through /dev/gpiochipN.
    for (c, d) in &bells {
        w.begin_node(&format!("gpio@{:x}", d.ipa.0));
        w.prop_strs("compatible", &["arm,pl061", "arm,primecell"]);
        w.prop_cells("reg", &reg(&[(d.ipa.0, DOORBELL_FRAME)]));
        w.prop_cells("interrupts", &[GIC_SPI, d.irq - 32, IRQ_EDGE_RISING]);
        w.prop_empty("gpio-controller");
        w.prop_u32("#gpio-cells", 2);
        w.prop_empty("interrupt-controller");
        w.prop_u32("#interrupt-cells", 2);
        // An interrupt provider says so (dtc's interrupt_provider check).
        w.prop_u32("#address-cells", 0);
        w.prop_cells("clocks", &[CLOCK_PHANDLE]);
        w.prop_str("clock-names", "apb_pclk");
        let line = doorbell_line_name(&c.name);
        w.prop_strs(
            "gpio-line-names",
            &[line.as_str(), "", "", "", "", "", "", ""],
        );
        w.prop_str("septum,channel", &c.name);
        w.end_node();
    }

    // The watchdog the hypervisor emulates, for Linux's stock sbsa_gwdt
    // driver: control frame, then refresh frame; no WS0 interrupt (the
    // driver then relies on the second stage, which is the reset).
    if let Some(septum_core::config::Watchdog {
        kind: septum_core::config::WatchdogKind::SbsaGwdt { ipa },
        timeout_ms,
    }) = p.watchdog
    {
        w.begin_node(&format!("watchdog@{:x}", ipa.0));
        w.prop_str("compatible", "arm,sbsa-gwdt");
        w.prop_cells("reg", &reg(&[(ipa.0, 0x1000), (ipa.0 + 0x1000, 0x1000)]));
        w.prop_u32("timeout-sec", timeout_ms / 1000);
        w.end_node();
    }

    w.end_node();
    w.finish()
}

#[cfg(test)]
mod tests;
