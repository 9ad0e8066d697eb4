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
    pub boot: Option<Spanned<Boot>>,
    #[serde(default)]
    pub partition: Vec<Spanned<Partition>>,
    #[serde(default)]
    pub channel: Vec<Spanned<Channel>>,
}

/// `[[channel]]`: a one-directional shared page range (docs/channels.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Channel {
    pub name: Spanned<String>,
    /// Partition names.
    pub writer: Spanned<String>,
    pub reader: Spanned<String>,
    pub pa: Spanned<u64>,
    pub size: Spanned<u64>,
    /// Where each side sees it; the PA when left out.
    pub writer_ipa: Option<Spanned<u64>>,
    pub reader_ipa: Option<Spanned<u64>>,
    /// The reader's doorbell, rung by the writer (docs/channels.md).
    pub doorbell: Option<Spanned<Doorbell>>,
}

/// `doorbell = { irq, ipa, rate, burst }` of a `[[channel]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Doorbell {
    /// The SPI (INTID) the reader's emulated GPIO controller interrupts with.
    pub irq: Spanned<u64>,
    /// Where the reader sees that controller's 4 KiB frame.
    pub ipa: Spanned<u64>,
    /// Most rings a second, on average.
    pub rate: Spanned<u64>,
    /// Most rings at once (default 1).
    pub burst: Option<Spanned<u64>>,
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
    #[serde(default)]
    pub safe_state: Option<Spanned<SafeState>>,
}

/// `safe-state = { action = "park" | "power-off" | "gpio", pin = N, level = "high" | "low" }`.
/// Strings rather than enums so that a wrong value breaks CFG-09, not CFG-00.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SafeState {
    pub action: Spanned<String>,
    pub pin: Option<Spanned<u64>>,
    pub level: Option<Spanned<String>>,
}

/// `[boot]`: measured-boot policy (docs/measured-boot.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Boot {
    pub security_version: Option<Spanned<i64>>,
    pub min_security_version: Option<Spanned<i64>>,
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
    /// Required unless the partition boots Linux (`linux`), which computes it.
    pub entry: Option<Spanned<u64>>,
    pub boot_arg: Option<Spanned<u64>>,
    pub memory: Spanned<Vec<Spanned<MemRegion>>>,
    #[serde(default)]
    pub devices: Vec<Spanned<Device>>,
    #[serde(default)]
    pub images: Vec<Spanned<Image>>,
    pub linux: Option<Spanned<Linux>>,
    pub fault_policy: Option<Spanned<FaultPolicy>>,
    pub watchdog: Option<Spanned<Watchdog>>,
    /// `"virtual"` (default) or `"direct"` (CFG-57).
    pub interrupts: Option<Spanned<Interrupts>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Interrupts {
    Virtual,
    Direct,
}

/// `watchdog = { kind = "heartbeat" | "sbsa-gwdt", timeout-ms = N, ipa = A }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Watchdog {
    pub kind: Spanned<WatchdogKind>,
    pub timeout_ms: Spanned<i64>,
    pub ipa: Option<Spanned<u64>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum WatchdogKind {
    Heartbeat,
    SbsaGwdt,
}

/// `[partition.linux]`: boot an unmodified arm64 Linux kernel; the tool
/// places kernel, initrd and a generated device tree.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Linux {
    pub kernel: Spanned<String>,
    pub initrd: Option<Spanned<String>>,
    pub bootargs: Option<Spanned<String>>,
    /// Name of a passthrough device of the partition: /chosen stdout-path.
    pub stdout: Option<Spanned<String>>,
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
    /// Device-tree `compatible` (one string or a list); only for the tree.
    pub compatible: Option<Spanned<Compatible>>,
    /// Device-tree `reg` size when the register block is smaller than `size`.
    pub reg_size: Option<Spanned<u64>>,
}

/// A `compatible` value: `"arm,pl011"` or `["arm,pl011", "arm,primecell"]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compatible(pub Vec<String>);

impl<'de> Deserialize<'de> for Compatible {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Compatible;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Compatible, E> {
                Ok(Compatible(vec![s.to_owned()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Compatible, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = a.next_element::<String>()? {
                    v.push(s);
                }
                Ok(Compatible(v))
            }
        }
        d.deserialize_any(V)
    }
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
    pub watchdog: Option<Spanned<FaultAction>>,
    /// Signed so that a negative value breaks CFG-43 rather than CFG-00.
    pub max_restarts: Option<Spanned<i64>>,
    pub restart_window_ms: Option<Spanned<i64>>,
}
