//! The static system configuration compiled into the hypervisor.
//!
//! The host tool `septum-config` parses and validates a partition TOML file
//! and emits Rust source that builds one [`SystemConfig`] value out of these
//! types. Nothing here is parsed at run time: a configuration that reaches the
//! hypervisor has already passed every rule in `septum-config`'s validator.
//! The hypervisor still re-checks the few facts it can observe at boot (the
//! device tree firmware hands over must agree with [`Platform`]).

use crate::addr::{GuestPhysAddr, GuestRange, PhysAddr, PhysRange};

/// Largest number of physical cores any supported platform has.
pub const MAX_CPUS: usize = 8;

/// The whole system: one platform, its partitions.
#[derive(Debug)]
pub struct SystemConfig {
    /// Short name of the configuration (the TOML file's stem), for the boot log.
    pub name: &'static str,
    /// Path of the TOML file this was generated from, for the boot log.
    pub source: &'static str,
    pub platform: Platform,
    pub boot: BootPolicy,
    pub partitions: &'static [Partition],
}

/// Measured-boot policy (docs/measured-boot.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootPolicy {
    /// Anti-rollback: the signed manifest's security version must be at
    /// least this.
    pub min_security_version: u32,
}

/// The board as data: everything that differs between machines.
#[derive(Debug)]
pub struct Platform {
    pub board: Board,
    /// Number of physical cores; core `n` has MPIDR affinity 0 equal to `n`.
    pub cpus: u8,
    /// RAM banks as the hardware has them.
    pub ram: &'static [PhysRange],
    /// MMIO windows in which passthrough devices may live.
    pub mmio: &'static [PhysRange],
    /// RAM reserved for the hypervisor (image, stacks, heap, page tables).
    /// Never mapped into any partition.
    pub hypervisor: PhysRange,
    /// Address the hypervisor image is linked for and loaded at.
    pub load_addr: PhysAddr,
    /// The hypervisor's console.
    pub console: Uart,
    pub gic: Gic,
    pub cpu_boot: CpuBoot,
    /// What the hypervisor does to the outside world when it enters the
    /// safe state (docs/fault-containment.md).
    pub safe_state: SafeStateAction,
}

/// The safe state's action beyond stopping every guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SafeStateAction {
    /// Every core parks; the console alarm is all that tells.
    Park,
    /// PSCI SYSTEM_OFF to the platform firmware (needs firmware PSCI).
    PowerOff,
    /// Drive a GPIO line (an alarm LED or buzzer) to `high` or low; then
    /// park. Raspberry Pi 4 only (BCM2711 GPIO block).
    Gpio { pin: u8, high: bool },
}

/// How the boot log and `septum-config table` describe the action.
impl core::fmt::Display for SafeStateAction {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SafeStateAction::Park => f.write_str("park every core"),
            SafeStateAction::PowerOff => f.write_str("PSCI SYSTEM_OFF (power off)"),
            SafeStateAction::Gpio { pin, high } => write!(
                f,
                "drive GPIO {pin} {}, then park every core",
                if *high { "high" } else { "low" }
            ),
        }
    }
}

/// The BCM2711's GPIO block (low-peripheral mode), which the hypervisor
/// keeps for the safe-state alarm line; no partition is given this page.
pub const BCM2711_GPIO_BASE: u64 = 0xfe20_0000;
/// The BCM2711 has GPIO 0..=57.
pub const BCM2711_GPIO_PINS: u8 = 58;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Board {
    QemuVirt,
    RaspberryPi4,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartKind {
    Pl011,
    /// The BCM2835 auxiliary mini-UART (Raspberry Pi).
    MiniUart,
}

#[derive(Clone, Copy, Debug)]
pub struct Uart {
    pub kind: UartKind,
    pub base: PhysAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    V2,
    V3,
}

/// Physical GIC layout.
#[derive(Clone, Copy, Debug)]
pub struct Gic {
    pub version: GicVersion,
    /// Distributor.
    pub gicd: PhysAddr,
    /// GICv3: first redistributor; core `n`'s frame is at `gicr + n * gicr_stride`.
    pub gicr: PhysAddr,
    pub gicr_stride: u64,
    /// GICv2: CPU interface, hypervisor control and virtual CPU interface.
    pub gicc: PhysAddr,
    pub gich: PhysAddr,
    pub gicv: PhysAddr,
    /// INTID of the maintenance interrupt (a PPI).
    pub maintenance_irq: u32,
}

/// How the hypervisor starts the secondary cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuBoot {
    /// PSCI `CPU_ON` through firmware, with the given conduit.
    Psci(Conduit),
    /// A spin table: core `n` (n >= 1) polls `release[n - 1]`.
    SpinTable { release: [PhysAddr; 3] },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    Smc,
    Hvc,
}

/// One partition: a virtual machine with statically assigned resources.
#[derive(Debug)]
pub struct Partition {
    /// Index in [`SystemConfig::partitions`].
    pub id: usize,
    pub name: &'static str,
    pub criticality: Criticality,
    /// Stage-2 VMID (non-zero, unique).
    pub vmid: u16,
    /// Physical cores; vCPU `i` is pinned to `cores[i]`; vCPU 0 boots first.
    pub cores: &'static [u8],
    pub memory: &'static [MemRegion],
    pub devices: &'static [Device],
    /// Images copied into partition memory before it starts.
    pub images: &'static [Image],
    /// Where vCPU 0 starts.
    pub entry: GuestPhysAddr,
    /// Value of x0 at entry (for Linux: the device tree's address).
    pub boot_arg: u64,
    pub fault_policy: FaultPolicy,
    /// The watchdog the hypervisor keeps on the partition, if any.
    pub watchdog: Option<Watchdog>,
    /// How the partition's own physical interrupts reach it.
    pub interrupts: InterruptDelivery,
    /// The partition's ends of the system's channels (docs/channels.md).
    pub channels: &'static [ChannelEnd],
}

impl Partition {
    /// The SPIs the partition owns: its devices' and its incoming doorbells'.
    pub fn owned_spis(&self) -> impl Iterator<Item = u32> + Clone + '_ {
        let dev = self.devices.iter().flat_map(|d| d.irqs.iter().copied());
        let bells = self
            .channels
            .iter()
            .filter_map(|c| c.incoming_doorbell().map(|d| d.irq));
        dev.chain(bells)
    }
}

/// How a partition's physical interrupts (its timer PPIs, its devices'
/// SPIs) reach it. docs/architecture.md, "Direct interrupt delivery".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterruptDelivery {
    /// Taken at EL2 and forwarded through a list register (the default).
    Virtual,
    /// Taken by the partition itself at EL1, with no exit: its core's
    /// Group 1 interrupts are its own, the hypervisor keeps Group 0 (FIQ)
    /// for its timer and IPIs. GICv3 only, one-core partitions only.
    Direct,
}

/// A hypervisor-kept watchdog (docs/fault-containment.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watchdog {
    pub kind: WatchdogKind,
    /// Heartbeat: the longest gap between two heartbeats. SBSA watchdog:
    /// both stages together (the most a guest can program).
    pub timeout_ms: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchdogKind {
    /// The partition calls the HEARTBEAT hypercall.
    Heartbeat,
    /// An emulated SBSA generic watchdog: control frame at `ipa`, refresh
    /// frame at `ipa + 0x1000`.
    SbsaGwdt { ipa: GuestPhysAddr },
}

/// How the boot log and `septum-config table` describe the watchdog.
impl core::fmt::Display for Watchdog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.kind {
            WatchdogKind::Heartbeat => write!(
                f,
                "heartbeat hypercall, expires after {} ms without one",
                self.timeout_ms
            ),
            WatchdogKind::SbsaGwdt { ipa } => write!(
                f,
                "emulated SBSA generic watchdog, control frame IPA {:#x}, refresh frame IPA {:#x}, timeout at most {} ms",
                ipa.raw(),
                ipa.raw() + 0x1000,
                self.timeout_ms
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Criticality {
    Critical,
    NonCritical,
}

/// Access rights of a memory region at stage 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Perms {
    pub const RWX: Perms = Perms {
        read: true,
        write: true,
        exec: true,
    };
    pub const RW: Perms = Perms {
        read: true,
        write: true,
        exec: false,
    };
    pub const RX: Perms = Perms {
        read: true,
        write: false,
        exec: true,
    };
    pub const R: Perms = Perms {
        read: true,
        write: false,
        exec: false,
    };
}

/// `rwx` with `-` for a missing right (boot log, `septum-config table`).
impl core::fmt::Display for Perms {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (on, c) in [(self.read, "r"), (self.write, "w"), (self.exec, "x")] {
            f.write_str(if on { c } else { "-" })?;
        }
        Ok(())
    }
}

/// Normal memory given to a partition.
#[derive(Clone, Copy, Debug)]
pub struct MemRegion {
    pub name: &'static str,
    pub ipa: GuestPhysAddr,
    pub pa: PhysAddr,
    pub size: u64,
    pub perms: Perms,
    /// True when the TOML declares the region shared with another partition.
    pub shared: bool,
}

impl MemRegion {
    pub const fn guest_range(&self) -> GuestRange {
        GuestRange::new(self.ipa, self.size)
    }
    pub const fn phys_range(&self) -> PhysRange {
        PhysRange::new(self.pa, self.size)
    }
}

/// One partition's end of a channel: a page range of RAM that is in no
/// partition's memory, mapped read-write (writer) or read-only (reader),
/// never executable, non-cacheable. docs/channels.md.
#[derive(Clone, Copy, Debug)]
pub struct ChannelEnd {
    pub name: &'static str,
    pub ipa: GuestPhysAddr,
    pub pa: PhysAddr,
    pub size: u64,
    pub role: ChannelRole,
    /// Index in [`SystemConfig::partitions`] of the partition at the other end.
    pub peer: usize,
    /// The reader's doorbell, on both ends (docs/channels.md, "Doorbell").
    pub doorbell: Option<Doorbell>,
}

pub use septum_abi::channel::Role as ChannelRole;

/// The stage-2 permissions of a channel end in `role`.
pub const fn channel_perms(role: ChannelRole) -> Perms {
    match role {
        ChannelRole::Writer => Perms::RW,
        ChannelRole::Reader => Perms::R,
    }
}

/// The doorbell an end in `role` receives: a reader's; a writer rings it.
pub const fn incoming_doorbell(role: ChannelRole, doorbell: Option<Doorbell>) -> Option<Doorbell> {
    match role {
        ChannelRole::Reader => doorbell,
        ChannelRole::Writer => None,
    }
}

/// A channel's doorbell: an input line of an emulated PL061 GPIO controller
/// in the reader, whose interrupt is the physical SPI `irq` (one no device
/// drives; the reader owns it). The writer rings it with CHANNEL_NOTIFY, at
/// most `burst` times at once and `per_second` on average.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Doorbell {
    pub irq: u32,
    /// Where the reader sees the controller's 4 KiB frame.
    pub ipa: GuestPhysAddr,
    pub per_second: u32,
    pub burst: u32,
}

/// The doorbell frame's size.
pub const DOORBELL_FRAME: u64 = 0x1000;
/// The fastest a doorbell may be configured to ring, per second.
pub const MAX_DOORBELL_RATE: u32 = 1000;
/// The most rings a doorbell may allow at once.
pub const MAX_DOORBELL_BURST: u32 = 16;

/// The most channel ends one partition may have: CHANNEL_INFO compares
/// every one, so this bounds its cost.
pub const MAX_CHANNEL_ENDS: usize = 8;
/// The longest channel name (CHANNEL_INFO passes it in two registers).
pub const CHANNEL_NAME_MAX: usize = septum_abi::channel::NAME_MAX;
/// The largest channel, bytes.
pub const MAX_CHANNEL_SIZE: u64 = 0x10_0000;

impl ChannelEnd {
    /// Stage-2 permissions: a reader can never store, nobody executes.
    pub const fn perms(&self) -> Perms {
        channel_perms(self.role)
    }
    pub const fn guest_range(&self) -> GuestRange {
        GuestRange::new(self.ipa, self.size)
    }
    pub const fn phys_range(&self) -> PhysRange {
        PhysRange::new(self.pa, self.size)
    }

    /// The doorbell this end receives (a reader's), if any.
    pub const fn incoming_doorbell(&self) -> Option<Doorbell> {
        incoming_doorbell(self.role, self.doorbell)
    }

    /// The end among `ends` that holds `ipa` (to name it in a fault report).
    pub fn at(ends: &[ChannelEnd], ipa: GuestPhysAddr) -> Option<&ChannelEnd> {
        ends.iter().find(|e| e.guest_range().contains_span(ipa, 1))
    }
}

/// A device given to a partition.
#[derive(Clone, Copy, Debug)]
pub struct Device {
    pub name: &'static str,
    pub kind: DeviceKind,
    /// Physical INTIDs (SPIs) routed to the partition, injected with the same number.
    pub irqs: &'static [u32],
    /// How the hypervisor silences the device when the partition stops or
    /// restarts (so that it cannot DMA into memory being scrubbed).
    pub quiesce: Quiesce,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quiesce {
    /// Nothing to do (no DMA, or no known way).
    None,
    /// A virtio-mmio transport: writing 0 to its Status register resets
    /// the device, which ends its DMA (virtio 1.x, 4.2.2).
    VirtioMmio,
}

#[derive(Clone, Copy, Debug)]
pub enum DeviceKind {
    /// Real MMIO mapped at stage 2 (as device memory).
    Passthrough {
        pa: PhysAddr,
        ipa: GuestPhysAddr,
        size: u64,
        /// The device masters DMA (the partition must then be identity-mapped).
        dma: bool,
    },
    /// A PL011 emulated by the hypervisor; output goes to the hypervisor's
    /// console, each line tagged with the partition's name.
    VirtualUart { ipa: GuestPhysAddr },
}

/// An image copied into partition memory at boot.
#[derive(Clone, Copy, Debug)]
pub struct Image {
    pub name: &'static str,
    /// The pristine copy inside the hypervisor image (never mapped to a guest).
    pub data: &'static [u8],
    pub load: GuestPhysAddr,
}

/// What the hypervisor does when a partition misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Inject a synchronous external abort / undefined instruction into the guest.
    InjectAbort,
    /// Reload and restart the partition (within the restart budget).
    Restart,
    /// Stop the partition's vCPUs; the rest of the system runs on.
    Stop,
    /// Stop every partition and raise the alarm (critical partitions only).
    SafeState,
}

/// The per-event policy of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultPolicy {
    /// A stage-2 fault: access outside the partition's memory and devices.
    pub access_violation: FaultAction,
    /// An instruction the partition may not use (SMC, trapped system register, ...).
    pub illegal_instruction: FaultAction,
    /// The guest asked to reset itself (PSCI SYSTEM_RESET).
    pub system_reset: FaultAction,
    /// The guest asked to power off (PSCI SYSTEM_OFF) or all its vCPUs turned off.
    pub system_off: FaultAction,
    /// Its watchdog expired (no heartbeat, or the SBSA watchdog's reset).
    pub watchdog: FaultAction,
    /// Restart budget: at most `max_restarts` within `window_ms`; then stop.
    pub max_restarts: u32,
    pub restart_window_ms: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// REQ-CHN-4: a reader's end is read-only and never executable, a
    /// writer's read-write and never executable; a fault is attributed to
    /// the end that holds it.
    #[test]
    fn channel_ends_permissions_and_lookup() {
        let end = |role, ipa| ChannelEnd {
            name: "telemetry",
            ipa: GuestPhysAddr::new(ipa),
            pa: PhysAddr::new(0x4840_0000),
            size: 0x1000,
            role,
            peer: 1,
            doorbell: Some(Doorbell {
                irq: 220,
                ipa: GuestPhysAddr::new(0x0903_0000),
                per_second: 10,
                burst: 2,
            }),
        };
        assert_eq!(
            end(ChannelRole::Reader, 0)
                .incoming_doorbell()
                .map(|d| d.irq),
            Some(220)
        );
        assert_eq!(end(ChannelRole::Writer, 0).incoming_doorbell(), None);
        let r = end(ChannelRole::Reader, 0x4840_0000).perms();
        assert!(r.read && !r.write && !r.exec);
        let w = end(ChannelRole::Writer, 0x4040_0000).perms();
        assert!(w.read && w.write && !w.exec);
        let ends = [end(ChannelRole::Reader, 0x4840_0000)];
        for (ipa, hit) in [
            (0x4840_0000, true),
            (0x4840_0fff, true),
            (0x4841_0000, false),
            (0x483f_ffff, false),
        ] {
            assert_eq!(
                ChannelEnd::at(&ends, GuestPhysAddr::new(ipa)).is_some(),
                hit,
                "{ipa:#x}"
            );
        }
    }

    #[test]
    fn watchdogs_describe_themselves() {
        let hb = Watchdog {
            kind: WatchdogKind::Heartbeat,
            timeout_ms: 50,
        };
        assert_eq!(
            hb.to_string(),
            "heartbeat hypercall, expires after 50 ms without one"
        );
        let sbsa = Watchdog {
            kind: WatchdogKind::SbsaGwdt {
                ipa: GuestPhysAddr::new(0x0c00_0000),
            },
            timeout_ms: 10_000,
        };
        assert_eq!(
            SafeStateAction::Gpio {
                pin: 42,
                high: true
            }
            .to_string(),
            "drive GPIO 42 high, then park every core"
        );
        assert_eq!(
            sbsa.to_string(),
            "emulated SBSA generic watchdog, control frame IPA 0xc000000, refresh frame IPA 0xc001000, timeout at most 10000 ms"
        );
    }
}
