//! The validated configuration: plain values, every rule already checked.
//!
//! Types without `&'static` data are borrowed from `septum_core::config`, so
//! that what the tool checks is literally what the hypervisor receives.

use std::path::PathBuf;

pub use septum_core::addr::{GuestPhysAddr, GuestRange, PhysAddr, PhysRange};
pub use septum_core::config::{
    Board, ChannelRole, Conduit, CpuBoot, Criticality, DeviceKind, Doorbell, FaultAction,
    FaultPolicy, Gic, GicVersion, InterruptDelivery, Perms, SafeStateAction, Uart, UartKind,
    Watchdog, WatchdogKind,
};

/// Default fault policy for keys a partition leaves out (documented in
/// docs/configuration.md).
pub const DEFAULT_FAULT_POLICY: FaultPolicy = FaultPolicy {
    access_violation: FaultAction::InjectAbort,
    illegal_instruction: FaultAction::InjectAbort,
    system_reset: FaultAction::Restart,
    system_off: FaultAction::Stop,
    watchdog: FaultAction::Restart,
    max_restarts: 3,
    restart_window_ms: 60_000,
};

/// A configuration that passed every rule.
#[derive(Clone, Debug)]
pub struct ValidatedConfig {
    /// The TOML file's stem.
    pub name: String,
    /// The TOML file's path as given to the tool.
    pub source: PathBuf,
    pub platform: Platform,
    pub boot: Boot,
    pub partitions: Vec<Partition>,
}

/// `[boot]`: the security version this build's manifest carries, and the
/// minimum the hypervisor accepts (anti-rollback).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Boot {
    pub security_version: u32,
    pub min_security_version: u32,
}

impl ValidatedConfig {
    /// Files the generated code depends on (the TOML file and every image), for
    /// `cargo:rerun-if-changed` in a build script.
    pub fn dependencies(&self) -> Vec<PathBuf> {
        let mut v = vec![self.source.clone()];
        for p in &self.partitions {
            v.extend(p.images.iter().map(|i| i.path.clone()));
        }
        v
    }
}

#[derive(Clone, Debug)]
pub struct Platform {
    pub board: Board,
    pub cpus: u8,
    pub ram: Vec<PhysRange>,
    pub mmio: Vec<PhysRange>,
    pub hypervisor: PhysRange,
    pub load_addr: PhysAddr,
    pub console: Uart,
    /// Keys of the other GIC version are zero.
    pub gic: Gic,
    /// For a spin table, entries past `cpus - 1` are zero.
    pub cpu_boot: CpuBoot,
    pub safe_state: SafeStateAction,
}

#[derive(Clone, Debug)]
pub struct Partition {
    pub id: usize,
    pub name: String,
    pub criticality: Criticality,
    /// `id + 1`.
    pub vmid: u16,
    pub cores: Vec<u8>,
    pub memory: Vec<MemRegion>,
    pub devices: Vec<Device>,
    pub images: Vec<Image>,
    pub entry: GuestPhysAddr,
    pub boot_arg: u64,
    pub fault_policy: FaultPolicy,
    pub watchdog: Option<Watchdog>,
    pub interrupts: InterruptDelivery,
    /// Its ends of the system's channels, in the order of the file.
    pub channels: Vec<ChannelEnd>,
    /// Set when the partition boots Linux: then `images` are the kernel and
    /// the initrd, `entry` is the kernel and `boot_arg` the device tree's IPA.
    pub linux: Option<Linux>,
}

/// Where a Linux partition's pieces land (see `linux::place`) and what goes
/// into its device tree.
#[derive(Clone, Debug)]
pub struct Linux {
    /// From the kernel's Image header.
    pub text_offset: u64,
    pub image_size: u64,
    /// `[kernel, kernel + image_size)`: the kernel's own, including its BSS.
    pub kernel: GuestPhysAddr,
    /// `[start, end)` of the initrd, when there is one.
    pub initrd: Option<GuestRange>,
    /// The 2 MiB-aligned slot the device tree is copied to (x0 at entry).
    pub dtb: GuestPhysAddr,
    pub bootargs: String,
    /// Name of the device that becomes /chosen stdout-path.
    pub stdout: Option<String>,
    /// The flattened device tree (filled in once the rest is validated).
    pub dtb_blob: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct MemRegion {
    pub name: String,
    pub ipa: GuestPhysAddr,
    pub pa: PhysAddr,
    pub size: u64,
    pub perms: Perms,
    pub shared_with: Vec<String>,
}

/// One partition's end of a `[[channel]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelEnd {
    pub name: String,
    pub ipa: GuestPhysAddr,
    pub pa: PhysAddr,
    pub size: u64,
    pub role: ChannelRole,
    /// Index of the partition at the other end.
    pub peer: usize,
    pub doorbell: Option<Doorbell>,
}

impl ChannelEnd {
    /// The doorbell this end receives (a reader's).
    pub fn incoming(&self) -> Option<Doorbell> {
        septum_core::config::incoming_doorbell(self.role, self.doorbell)
    }
}

#[derive(Clone, Debug)]
pub struct Device {
    pub name: String,
    pub kind: DeviceKind,
    pub irqs: Vec<u32>,
    pub shared_with: Vec<String>,
    /// Device-tree `compatible` entries; empty: not described in a tree.
    pub compatible: Vec<String>,
    /// Device-tree `reg` size (defaults to the mapped size).
    pub reg_size: u64,
}

impl Device {
    /// How the hypervisor silences it on a stop or restart: virtio-mmio
    /// transports (by their `compatible`) are reset.
    pub fn quiesce(&self) -> septum_core::config::Quiesce {
        if self.compatible.iter().any(|c| c == "virtio,mmio") {
            septum_core::config::Quiesce::VirtioMmio
        } else {
            septum_core::config::Quiesce::None
        }
    }
}

#[derive(Clone, Debug)]
pub struct Image {
    pub name: String,
    /// Absolute, canonical path of the file (what `include_bytes!` gets).
    pub path: PathBuf,
    pub len: u64,
    pub load: GuestPhysAddr,
}
