//! The configuration digest: SHA-256 over a canonical encoding of the
//! [`SystemConfig`] the hypervisor enforces.
//!
//! The hypervisor computes it at boot from its compiled-in configuration and
//! compares it with the digest in the signed manifest, so a manifest signed
//! for one configuration cannot vouch for images under another. The host
//! tool computes the same function over the same value (`septum-config`
//! builds a `SystemConfig` from the validated TOML), and a host test keeps
//! the two sides equal.
//!
//! Covered: the name, the platform, the boot policy and every partition
//! (cores, memory, devices, interrupts, image names and load addresses,
//! entry, fault policy, watchdog, interrupt delivery, channel ends and their doorbells). Not
//! covered: the TOML's path (it differs between
//! checkouts) and the images' bytes and sizes (the manifest's entries carry
//! those, under the same signature).

use super::sha256::{CompressFn, Sha256};
use crate::config::{
    Board, ChannelRole, Conduit, CpuBoot, Criticality, DeviceKind, FaultAction, GicVersion,
    InterruptDelivery, Quiesce, SafeStateAction, SystemConfig, UartKind, WatchdogKind,
};

/// Domain separation: a new encoding gets a new tag.
const TAG: &[u8] = b"septum-config-digest-v3";

struct Enc(Sha256);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.update(&[v]);
    }
    fn u32(&mut self, v: u32) {
        self.0.update(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.update(&v.to_le_bytes());
    }
    fn bool(&mut self, v: bool) {
        self.u8(v as u8);
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.update(s.as_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(n as u32);
    }
    fn action(&mut self, a: FaultAction) {
        self.u8(match a {
            FaultAction::InjectAbort => 0,
            FaultAction::Restart => 1,
            FaultAction::Stop => 2,
            FaultAction::SafeState => 3,
        });
    }
}

pub fn config_digest(cfg: &SystemConfig, compress: CompressFn) -> [u8; 32] {
    let mut e = Enc(Sha256::new(compress));
    e.0.update(TAG);
    e.str(cfg.name);
    let p = &cfg.platform;
    e.u8(match p.board {
        Board::QemuVirt => 0,
        Board::RaspberryPi4 => 1,
    });
    e.u8(p.cpus);
    e.len(p.ram.len());
    for r in p.ram {
        e.u64(r.start.raw());
        e.u64(r.size);
    }
    e.len(p.mmio.len());
    for r in p.mmio {
        e.u64(r.start.raw());
        e.u64(r.size);
    }
    e.u64(p.hypervisor.start.raw());
    e.u64(p.hypervisor.size);
    e.u64(p.load_addr.raw());
    e.u8(match p.console.kind {
        UartKind::Pl011 => 0,
        UartKind::MiniUart => 1,
    });
    e.u64(p.console.base.raw());
    let g = &p.gic;
    e.u8(match g.version {
        GicVersion::V2 => 2,
        GicVersion::V3 => 3,
    });
    for a in [g.gicd, g.gicr, g.gicc, g.gich, g.gicv] {
        e.u64(a.raw());
    }
    e.u64(g.gicr_stride);
    e.u32(g.maintenance_irq);
    match p.cpu_boot {
        CpuBoot::Psci(c) => {
            e.u8(0);
            e.u8(match c {
                Conduit::Smc => 0,
                Conduit::Hvc => 1,
            });
        }
        CpuBoot::SpinTable { release } => {
            e.u8(1);
            for a in release {
                e.u64(a.raw());
            }
        }
    }
    match p.safe_state {
        SafeStateAction::Park => e.u8(0),
        SafeStateAction::PowerOff => e.u8(1),
        SafeStateAction::Gpio { pin, high } => {
            e.u8(2);
            e.u8(pin);
            e.u8(high as u8);
        }
    }
    e.u32(cfg.boot.min_security_version);
    e.len(cfg.partitions.len());
    for part in cfg.partitions {
        e.u64(part.id as u64);
        e.str(part.name);
        e.u8(match part.criticality {
            Criticality::Critical => 0,
            Criticality::NonCritical => 1,
        });
        e.u32(part.vmid.into());
        e.len(part.cores.len());
        for &c in part.cores {
            e.u8(c);
        }
        e.len(part.memory.len());
        for m in part.memory {
            e.str(m.name);
            e.u64(m.ipa.raw());
            e.u64(m.pa.raw());
            e.u64(m.size);
            e.bool(m.perms.read);
            e.bool(m.perms.write);
            e.bool(m.perms.exec);
            e.bool(m.shared);
        }
        e.len(part.devices.len());
        for d in part.devices {
            e.str(d.name);
            match d.kind {
                DeviceKind::Passthrough { pa, ipa, size, dma } => {
                    e.u8(0);
                    e.u64(pa.raw());
                    e.u64(ipa.raw());
                    e.u64(size);
                    e.bool(dma);
                }
                DeviceKind::VirtualUart { ipa } => {
                    e.u8(1);
                    e.u64(ipa.raw());
                }
            }
            e.len(d.irqs.len());
            for &i in d.irqs {
                e.u32(i);
            }
            e.u8(match d.quiesce {
                Quiesce::None => 0,
                Quiesce::VirtioMmio => 1,
            });
        }
        e.len(part.images.len());
        for i in part.images {
            e.str(i.name);
            e.u64(i.load.raw());
        }
        e.u64(part.entry.raw());
        e.u64(part.boot_arg);
        let f = &part.fault_policy;
        for a in [
            f.access_violation,
            f.illegal_instruction,
            f.system_reset,
            f.system_off,
            f.watchdog,
        ] {
            e.action(a);
        }
        e.u32(f.max_restarts);
        e.u32(f.restart_window_ms);
        match part.watchdog {
            None => e.u8(0),
            Some(w) => {
                match w.kind {
                    WatchdogKind::Heartbeat => e.u8(1),
                    WatchdogKind::SbsaGwdt { ipa } => {
                        e.u8(2);
                        e.u64(ipa.raw());
                    }
                }
                e.u32(w.timeout_ms);
            }
        }
        e.u8(match part.interrupts {
            InterruptDelivery::Virtual => 0,
            InterruptDelivery::Direct => 1,
        });
        e.len(part.channels.len());
        for c in part.channels {
            e.str(c.name);
            e.u64(c.ipa.raw());
            e.u64(c.pa.raw());
            e.u64(c.size);
            e.u8(match c.role {
                ChannelRole::Writer => 0,
                ChannelRole::Reader => 1,
            });
            e.len(c.peer);
            e.bool(c.doorbell.is_some());
            if let Some(d) = c.doorbell {
                e.u32(d.irq);
                e.u64(d.ipa.raw());
                e.u32(d.per_second);
                e.u32(d.burst);
            }
        }
    }
    e.0.finalize()
}
