//! A human-readable summary of a validated configuration: the partition
//! table, each partition's resources and the physical memory map.

use std::fmt::Write;

use super::model::{
    Board, Conduit, CpuBoot, Criticality, DeviceKind, FaultAction, GicVersion, InterruptDelivery,
    Perms, UartKind, ValidatedConfig,
};
use super::util::{hex, range, size};

fn hx(x: u64) -> String {
    hex(x.into())
}

/// Left-aligned columns separated by two spaces.
fn columns(rows: &[Vec<String>], indent: &str) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::from(indent);
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn perms(p: Perms) -> String {
    p.to_string()
}

fn action(a: FaultAction) -> &'static str {
    match a {
        FaultAction::InjectAbort => "inject-abort",
        FaultAction::Restart => "restart",
        FaultAction::Stop => "stop",
        FaultAction::SafeState => "safe-state",
    }
}

/// The summary printed by `septum-config table` and written to summary.txt.
pub fn partition_table(cfg: &ValidatedConfig) -> String {
    let p = &cfg.platform;
    let mut o = String::new();
    let _ = writeln!(o, "configuration `{}` ({})", cfg.name, cfg.source.display());
    let board = match p.board {
        Board::QemuVirt => "qemu-virt",
        Board::RaspberryPi4 => "rpi4",
    };
    let g = &p.gic;
    let gic = match g.version {
        GicVersion::V3 => format!(
            "GICv3: GICD {}, GICR {} + core * {}",
            hx(g.gicd.0),
            hx(g.gicr.0),
            hx(g.gicr_stride)
        ),
        GicVersion::V2 => format!(
            "GICv2: GICD {}, GICC {}, GICH {}, GICV {}",
            hx(g.gicd.0),
            hx(g.gicc.0),
            hx(g.gich.0),
            hx(g.gicv.0)
        ),
    };
    let boot = match p.cpu_boot {
        CpuBoot::Psci(Conduit::Smc) => "PSCI via SMC".to_owned(),
        CpuBoot::Psci(Conduit::Hvc) => "PSCI via HVC".to_owned(),
        CpuBoot::SpinTable { release } => {
            let used = usize::from(p.cpus.saturating_sub(1)).min(release.len());
            let a: Vec<String> = release[..used].iter().map(|a| hx(a.0)).collect();
            format!("spin table, release at {}", a.join(", "))
        }
    };
    let uart = match p.console.kind {
        UartKind::Pl011 => "PL011",
        UartKind::MiniUart => "mini-UART",
    };
    let ranges = |v: &[super::model::PhysRange]| {
        v.iter()
            .map(|r| format!("{} {}", range(r.start.0, r.size), size(r.size)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut rows = vec![
        vec!["board".into(), format!("{board}, {} cpus", p.cpus)],
        vec![
            "gic".into(),
            format!("{gic}, maintenance irq {}", g.maintenance_irq),
        ],
        vec![
            "console".into(),
            format!("{uart} at {}", hx(p.console.base.0)),
        ],
        vec!["cpu boot".into(), boot],
        vec!["safe state".into(), p.safe_state.to_string()],
        vec!["ram".into(), ranges(&p.ram)],
        vec!["mmio".into(), ranges(&p.mmio)],
    ];
    rows.push(vec![
        "hypervisor".into(),
        format!(
            "{} {}, loaded at {}",
            range(p.hypervisor.start.0, p.hypervisor.size),
            size(p.hypervisor.size),
            hx(p.load_addr.0)
        ),
    ]);
    o.push_str(&columns(&rows, ""));

    let _ = writeln!(o);
    let mut rows = vec![[
        "ID",
        "VMID",
        "NAME",
        "CRITICALITY",
        "CORES",
        "ENTRY",
        "BOOT-ARG",
    ]
    .map(String::from)
    .to_vec()];
    for part in &cfg.partitions {
        let cores: Vec<String> = part.cores.iter().map(u8::to_string).collect();
        rows.push(vec![
            part.id.to_string(),
            part.vmid.to_string(),
            part.name.clone(),
            match part.criticality {
                Criticality::Critical => "critical".into(),
                Criticality::NonCritical => "non-critical".into(),
            },
            cores.join(","),
            hx(part.entry.0),
            hx(part.boot_arg),
        ]);
    }
    o.push_str(&columns(&rows, ""));

    for part in &cfg.partitions {
        let _ = writeln!(o, "\npartition {} `{}`", part.id, part.name);
        let mut rows = Vec::new();
        for m in &part.memory {
            let mut extra = String::new();
            if !m.shared_with.is_empty() {
                extra = format!("shared with {}", m.shared_with.join(", "));
            }
            rows.push(vec![
                "memory".into(),
                m.name.clone(),
                perms(m.perms),
                format!("IPA {}", range(m.ipa.0, m.size)),
                format!("PA {}", range(m.pa.0, m.size)),
                size(m.size),
                extra,
            ]);
        }
        for c in &part.channels {
            let mut extra = format!("{}; non-cacheable", c.role.name());
            if let Some(d) = c.doorbell {
                let _ = write!(
                    extra,
                    "; doorbell irq {}{}, at most {} at once and {}/s",
                    d.irq,
                    match c.incoming() {
                        Some(_) => format!(" (PL061 at IPA {:#x})", d.ipa.0),
                        None => " (rings it)".to_owned(),
                    },
                    d.burst,
                    d.per_second
                );
            }
            rows.push(vec![
                "channel".into(),
                c.name.clone(),
                perms(septum_core::config::channel_perms(c.role)),
                format!("IPA {}", range(c.ipa.0, c.size)),
                format!("PA {}", range(c.pa.0, c.size)),
                size(c.size),
                extra,
            ]);
        }
        for d in &part.devices {
            let irqs: Vec<String> = d.irqs.iter().map(u32::to_string).collect();
            let mut extra = Vec::new();
            if !irqs.is_empty() {
                extra.push(format!("irqs {}", irqs.join(",")));
            }
            match d.kind {
                DeviceKind::Passthrough {
                    pa,
                    ipa,
                    size: sz,
                    dma,
                } => {
                    if dma {
                        extra.push("dma".into());
                    }
                    if !d.shared_with.is_empty() {
                        extra.push(format!("shared with {}", d.shared_with.join(", ")));
                    }
                    if !d.compatible.is_empty() {
                        extra.push(format!("dt {}", d.compatible.join(" ")));
                        if d.reg_size != sz {
                            extra.push(format!("reg-size {}", hx(d.reg_size)));
                        }
                    }
                    rows.push(vec![
                        "device".into(),
                        d.name.clone(),
                        "passthrough".into(),
                        format!("IPA {}", range(ipa.0, sz)),
                        format!("PA {}", range(pa.0, sz)),
                        size(sz),
                        extra.join("; "),
                    ]);
                }
                DeviceKind::VirtualUart { ipa } => rows.push(vec![
                    "device".into(),
                    d.name.clone(),
                    "virtual-uart".into(),
                    format!("IPA {}", range(ipa.0, 0x1000)),
                    "(emulated)".into(),
                    String::new(),
                    extra.join("; "),
                ]),
            }
        }
        for i in &part.images {
            rows.push(vec![
                "image".into(),
                i.name.clone(),
                format!("{} bytes", i.len),
                format!("IPA {}", range(i.load.0, i.len)),
                String::new(),
                String::new(),
                i.path.display().to_string(),
            ]);
        }
        if let Some(l) = &part.linux {
            rows.push(vec![
                "image".into(),
                "dtb".into(),
                format!("{} bytes", l.dtb_blob.len()),
                format!("IPA {}", range(l.dtb.0, l.dtb_blob.len() as u64)),
                String::new(),
                String::new(),
                format!(
                    "(generated; 2 MiB slot {})",
                    range(l.dtb.0, super::linux::DTB_MAX)
                ),
            ]);
        }
        o.push_str(&columns(&rows, "  "));
        if let Some(l) = &part.linux {
            let _ = writeln!(
                o,
                "  linux   kernel at {} (text_offset {}, image_size {}: claims {}); entry {}, x0 = device tree at {}",
                hx(l.kernel.0),
                hx(l.text_offset),
                hx(l.image_size),
                range(l.kernel.0, l.image_size),
                hx(part.entry.0),
                hx(l.dtb.0)
            );
            if let Some(r) = l.initrd {
                let _ = writeln!(
                    o,
                    "  linux   initrd {} (linux,initrd-start/-end)",
                    range(r.start.0, r.size)
                );
            }
            let stdout = l.stdout.as_ref().map_or_else(
                || "none".to_owned(),
                |name| {
                    let path = part.devices.iter().find_map(|d| match d.kind {
                        DeviceKind::Passthrough { ipa, .. } if &d.name == name => {
                            Some(super::fdt::device_path(
                                name,
                                super::fdt::node_addr(&d.compatible, ipa.0),
                            ))
                        }
                        _ => None,
                    });
                    format!("{name} ({})", path.unwrap_or_default())
                },
            );
            let _ = writeln!(o, "  linux   bootargs {:?}; stdout {stdout}", l.bootargs);
        }
        let f = &part.fault_policy;
        let _ = writeln!(
            o,
            "  faults  access-violation={} illegal-instruction={} system-reset={} system-off={} watchdog={}; at most {} restarts per {} ms",
            action(f.access_violation),
            action(f.illegal_instruction),
            action(f.system_reset),
            action(f.system_off),
            action(f.watchdog),
            f.max_restarts,
            f.restart_window_ms
        );
        match &part.watchdog {
            Some(w) => writeln!(o, "  watchdog {w}"),
            None => writeln!(o, "  watchdog none"),
        }
        .ok();
        let _ = writeln!(
            o,
            "  irqs    {}",
            match part.interrupts {
                InterruptDelivery::Virtual =>
                    "virtual (taken at EL2, forwarded through list registers)",
                InterruptDelivery::Direct =>
                    "direct (taken by the partition at EL1; the hypervisor keeps Group 0)",
            }
        );
    }

    // Who owns which physical memory, in address order: the view to review
    // isolation by.
    let _ = writeln!(o, "\nphysical memory map");
    let mut map: Vec<(u64, u64, String)> =
        vec![(p.hypervisor.start.0, p.hypervisor.size, "hypervisor".into())];
    for part in &cfg.partitions {
        for m in &part.memory {
            let owner = format!("{}:{}", part.name, m.name);
            match map
                .iter_mut()
                .find(|(b, s, _)| *b == m.pa.0 && *s == m.size)
            {
                Some(entry) => {
                    entry.2.push_str(", ");
                    entry.2.push_str(&owner);
                }
                None => map.push((m.pa.0, m.size, owner)),
            }
        }
    }
    // A channel once, by its writer's end: "channel NAME: W writes, R reads".
    for part in &cfg.partitions {
        for c in part
            .channels
            .iter()
            .filter(|c| c.role == super::model::ChannelRole::Writer)
        {
            let reader = cfg
                .partitions
                .iter()
                .find(|q| q.channels.iter().any(|e| e.pa == c.pa && e.role != c.role))
                .map_or("?", |q| q.name.as_str());
            map.push((
                c.pa.0,
                c.size,
                format!("channel {}: {} writes, {reader} reads", c.name, part.name),
            ));
        }
    }
    map.sort();
    let rows: Vec<Vec<String>> = map
        .into_iter()
        .map(|(b, s, who)| vec![range(b, s), size(s), who])
        .collect();
    o.push_str(&columns(&rows, "  "));
    o
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn table_lists_partitions_and_memory_map() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/good.toml"
        ));
        let mut cfg = crate::load(path).unwrap_or_else(|d| panic!("{d}"));
        cfg.partitions[0].watchdog = Some(crate::model::Watchdog {
            kind: crate::model::WatchdogKind::Heartbeat,
            timeout_ms: 50,
        });
        let t = super::partition_table(&cfg);
        assert!(
            t.contains("ID  VMID  NAME   CRITICALITY   CORES  ENTRY"),
            "{t}"
        );
        assert!(t.contains("0   1     rtos   critical      0"), "{t}");
        assert!(t.contains("1   2     linux  non-critical  1,2,3"), "{t}");
        assert!(
            t.contains("  watchdog heartbeat hypercall, expires after 50 ms without one"),
            "{t}"
        );
        assert!(t.contains("  watchdog none"), "{t}");
        assert!(
            t.contains("[0x4900_0000, 0x4900_1000)  4 KiB    rtos:shm, linux:shm"),
            "{t}"
        );
        assert!(
            t.contains("[0x4000_0000, 0x4800_0000)  128 MiB  hypervisor"),
            "{t}"
        );
    }
}
