//! The shape of the TOML file, as serde reads it.
//!
//! Every value that a rule may complain about is wrapped in [`Spanned`] so that
//! the error can point at it. Keys whose presence depends on another key (the
//! GIC version, the device kind, the boot method) are optional here and
//! checked by the validator, which gives a better message than serde would.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct File {
    pub platform: Spanned<Platform>,
    #[serde(default)]
    pub partition: Vec<Spanned<Partition>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Platform {
    pub board: Spanned<Board>,
    pub cpus: Spanned<u64>,
    pub load_addr: Spanned<u64>,
    pub ram: Spanned<Vec<Spanned<Range>>>,
    pub mmio: Spanned<Vec<Spanned<Range>>>,
    pub hypervisor: Spanned<Range>,
    pub console: Spanned<Console>,
    pub gic: Spanned<Gic>,
    pub cpu_boot: Spanned<CpuBoot>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Range {
    pub base: Spanned<u64>,
    pub size: Spanned<u64>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Board {
    QemuVirt,
    Rpi4,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Console {
    pub kind: Spanned<UartKind>,
    pub base: Spanned<u64>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum UartKind {
    Pl011,
    MiniUart,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Gic {
    pub version: Spanned<u64>,
    pub gicd: Spanned<u64>,
    pub gicr: Option<Spanned<u64>>,
    pub gicr_stride: Option<Spanned<u64>>,
    pub gicc: Option<Spanned<u64>>,
    pub gich: Option<Spanned<u64>>,
    pub gicv: Option<Spanned<u64>>,
    pub maintenance_irq: Spanned<u64>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BootMethod {
    Psci,
    SpinTable,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CpuBoot {
    pub method: Spanned<BootMethod>,
    /// A string rather than an enum so that a wrong value breaks CFG-08, not CFG-00.
    pub conduit: Option<Spanned<String>>,
    pub release: Option<Spanned<Vec<Spanned<u64>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Partition {
    pub name: Spanned<String>,
    pub criticality: Spanned<Criticality>,
    pub cores: Spanned<Vec<Spanned<u64>>>,
    pub entry: Spanned<u64>,
    pub boot_arg: Option<Spanned<u64>>,
    pub memory: Spanned<Vec<Spanned<MemRegion>>>,
    #[serde(default)]
    pub devices: Vec<Spanned<Device>>,
    #[serde(default)]
    pub images: Vec<Spanned<Image>>,
    pub fault_policy: Option<Spanned<FaultPolicy>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Criticality {
    Critical,
    NonCritical,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Perms {
    R,
    Rw,
    Rx,
    Rwx,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MemRegion {
    pub name: Spanned<String>,
    pub ipa: Spanned<u64>,
    pub pa: Spanned<u64>,
    pub size: Spanned<u64>,
    pub perms: Spanned<Perms>,
    #[serde(default)]
    pub shared_with: Vec<Spanned<String>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    Passthrough,
    VirtualUart,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Device {
    pub name: Spanned<String>,
    pub kind: Spanned<DeviceKind>,
    pub ipa: Spanned<u64>,
    pub pa: Option<Spanned<u64>>,
    pub size: Option<Spanned<u64>>,
    pub irqs: Option<Spanned<Vec<Spanned<u64>>>>,
    pub dma: Option<Spanned<bool>>,
    pub shared_with: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Image {
    pub name: Spanned<String>,
    pub file: Spanned<String>,
    pub load: Spanned<u64>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FaultAction {
    InjectAbort,
    Restart,
    Stop,
    SafeState,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FaultPolicy {
    pub access_violation: Option<Spanned<FaultAction>>,
    pub illegal_instruction: Option<Spanned<FaultAction>>,
    pub system_reset: Option<Spanned<FaultAction>>,
    pub system_off: Option<Spanned<FaultAction>>,
    /// Signed so that a negative value breaks CFG-43 rather than CFG-00.
    pub max_restarts: Option<Spanned<i64>>,
    pub restart_window_ms: Option<Spanned<i64>>,
}
