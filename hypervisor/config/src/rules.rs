//! The validation rules, each with a stable ID.
//!
//! IDs are part of the tool's interface: the bad example configurations under
//! `qemu/configs/bad/` and `docs/configuration.md` refer to them, so a rule
//! keeps its ID forever (retired IDs are not reused).

macro_rules! rules {
    ($( $(#[$doc:meta])* $name:ident = $id:literal, $summary:literal; )*) => {
        /// A validation rule.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Rule {
            $( $(#[$doc])* $name, )*
        }

        impl Rule {
            /// Every rule, in ID order.
            pub const ALL: &'static [Rule] = &[$(Rule::$name),*];

            /// The stable ID, e.g. `CFG-24`.
            pub const fn id(self) -> &'static str {
                match self { $(Rule::$name => $id,)* }
            }

            /// One line saying what the rule demands.
            pub const fn summary(self) -> &'static str {
                match self { $(Rule::$name => $summary,)* }
            }
        }
    };
}

rules! {
    /// TOML syntax, unknown keys, missing keys, wrong types, unreadable file.
    Parse = "CFG-00", "the file must be readable TOML that matches the schema (known keys, required keys, right types)";

    // Platform.
    PlatformCpus = "CFG-01", "platform.cpus must be between 1 and 8 (septum_core::config::MAX_CPUS)";
    PlatformMemoryMap = "CFG-02", "platform RAM banks and MMIO windows: at least one of each, 4 KiB aligned, none overlapping another";
    HypervisorRegion = "CFG-03", "the hypervisor region must be 4 KiB aligned and lie inside one RAM bank";
    LoadAddr = "CFG-04", "load-addr must be 4 KiB aligned and lie inside the hypervisor region";
    GicForm = "CFG-05", "gic.version must be 2 or 3, with exactly that version's keys, aligned addresses and a valid gicr-stride";
    MaintenanceIrq = "CFG-06", "gic.maintenance-irq must be a PPI (16..=31)";
    PlatformMmio = "CFG-07", "the console UART page and every GIC frame must lie inside one platform MMIO window and not overlap each other";
    CpuBoot = "CFG-08", "cpu-boot: psci needs conduit smc|hvc; spin-table needs exactly cpus-1 (at most 3) 8-byte aligned release addresses in RAM";
    SafeStateAction = "CFG-09", "safe-state.action is park, power-off (needs cpu-boot method psci) or gpio (board rpi4 only; pin 0..=57, level high|low; its GPIO page is given to no partition)";

    // Partitions.
    PartitionCount = "CFG-10", "there must be at least one partition";
    OneCritical = "CFG-11", "exactly one partition must be critical";
    PartitionName = "CFG-12", "partition names must be non-empty and use only a-z, 0-9 and -";
    PartitionNameUnique = "CFG-13", "partition names must be unique";
    ItemNames = "CFG-14", "names of memory regions, devices and images must be non-empty and unique within their list";

    // Cores.
    CoreExists = "CFG-15", "every core must be below platform.cpus";
    CoreDuplicate = "CFG-16", "a partition must not list a core twice";
    CoreNone = "CFG-17", "every partition needs at least one core";
    CoreShared = "CFG-18", "no core may belong to two partitions";

    // Ranges in general.
    RangeEmpty = "CFG-19", "every range (RAM bank, MMIO window, hypervisor region, memory region, passthrough device) must have size > 0";
    RangeOverflow = "CFG-20", "base + size must stay below 2^64 (the end of every range must fit in 64 bits)";

    // Memory regions.
    MemAlign = "CFG-21", "memory region ipa, pa and size must be 4 KiB aligned";
    MemInRam = "CFG-22", "a memory region's PA range must lie entirely inside one platform RAM bank";
    MemHypervisor = "CFG-23", "a memory region must not overlap the hypervisor region";
    MemOverlap = "CFG-24", "memory PA ranges must not overlap, unless they are identical and in partitions that name each other in shared-with";
    SharedWith = "CFG-25", "shared-with must name other existing partitions, once each, that really have a matching region or device";
    IpaOverlap = "CFG-26", "IPA ranges of one partition's memory regions and devices must not overlap";
    IpaLimit = "CFG-27", "every IPA range must end at or below 2^39 (39-bit IPA space)";

    // Devices.
    DeviceForm = "CFG-28", "passthrough devices need pa, ipa and size; virtual-uart devices take only name, kind and ipa";
    DeviceAlign = "CFG-29", "device pa, ipa and size must be 4 KiB aligned";
    DeviceInMmio = "CFG-30", "a passthrough device's PA range must lie entirely inside one platform MMIO window";
    DeviceReserved = "CFG-31", "a passthrough device must not overlap the GIC or the hypervisor's console UART page";
    DeviceOverlap = "CFG-32", "passthrough PA ranges must not overlap, unless in partitions that name each other in shared-with";
    IrqRange = "CFG-33", "device irqs must be SPIs (32..=1019) and not the maintenance interrupt";
    IrqUnique = "CFG-34", "an irq may appear only once in the system, unless on devices that are shared between the partitions";
    DmaIdentity = "CFG-35", "DMA masters need identity mapping (no IOMMU): a partition with a dma = true device must have ipa == pa for every memory region";

    // Images and entry.
    ImageFile = "CFG-36", "every image file must exist and be readable (paths are relative to the TOML file's directory)";
    ImageEmpty = "CFG-37", "image files must not be empty";
    ImageFits = "CFG-38", "an image must fit entirely inside one memory region of its partition at its load address";
    ImageOverlap = "CFG-39", "images of one partition must not overlap each other";
    Entry = "CFG-40", "the entry point must lie inside an executable memory region of the partition";

    // Fault policy.
    InjectAbort = "CFG-41", "inject-abort is allowed only for access-violation and illegal-instruction";
    SafeState = "CFG-42", "safe-state is allowed only in the critical partition";
    RestartBudget = "CFG-43", "max-restarts and restart-window-ms must be in 0..=2^32-1, the window > 0 when restarts > 0, and restart needs max-restarts > 0";

    // Limits of the hypervisor's static tables.
    PartitionLimit = "CFG-44", "at most 255 partitions: VMIDs are index + 1 and 8 bits wide";
    RestartCapacity = "CFG-45", "max-restarts must be at most 16 (septum_core::fault::RESTART_BUDGET_CAPACITY)";

    // Device tree and Linux boot.
    DtDevice = "CFG-46", "compatible entries must be non-empty printable ASCII without spaces, and a device with a compatible needs a valid device-tree node name";
    RegSize = "CFG-47", "reg-size must be > 0 and <= the device's size";
    LinuxForm = "CFG-48", "a partition has either entry (with images, boot-arg) or a linux table, not both; linux strings hold no NUL and bootargs fits Linux's 2048-byte command line";
    KernelImage = "CFG-49", "linux.kernel must be an uncompressed arm64 Image: the 64-byte header with magic \"ARM\\x64\", little-endian, a non-zero image_size";
    LinuxPlacement = "CFG-50", "a Linux partition's first memory region must be rwx, private, 2 MiB aligned and hold the kernel, the initrd and a 2 MiB device-tree slot";
    LinuxStdout = "CFG-51", "linux.stdout must name a passthrough device of the partition that has a compatible";
    VcpuLimit = "CFG-52", "a partition may have at most as many vCPUs as the GIC has redistributor frames (GICv3: platform.cpus) or CPU interfaces (GICv2: 8)";
    GicIpa = "CFG-53", "a partition's memory and device IPA ranges must not overlap the GIC frames the hypervisor emulates there";

    // Measured boot.
    SecurityVersion = "CFG-54", "boot.security-version and boot.min-security-version must be in 0..=2^32-1, and security-version >= min-security-version";
    ManifestCapacity = "CFG-55", "image names must be at most 16 printable ASCII characters, and the system at most 48 images (the boot manifest's capacity)";
    Watchdog = "CFG-56", "watchdog: kind heartbeat (timeout-ms 1..=3600000, no ipa) or sbsa-gwdt (timeout-ms a multiple of 1000 in 2000..=3600000, a 4 KiB-aligned ipa whose two 4 KiB frames overlap no memory region or device of the partition)";
    DirectInterrupts = "CFG-57", "interrupts = \"direct\" needs a GICv3 (a GICv2's Group 0 is Secure, out of a Non-secure hypervisor's reach) and a partition with exactly one core (a direct partition has no virtual SGIs)";

    // Channels (docs/channels.md).
    ChannelForm = "CFG-58", "a channel's name must be 1 to 16 characters of a-z, 0-9 and -, unique among channels; writer and reader must name two different existing partitions";
    ChannelRange = "CFG-59", "a channel's pa, size, writer-ipa and reader-ipa must be 4 KiB aligned, and its size at most 1 MiB (septum_core::config::MAX_CHANNEL_SIZE)";
    ChannelMemory = "CFG-60", "a channel's PA range must lie inside one RAM bank and overlap neither the hypervisor region, nor any partition's memory region, nor another channel";
    ChannelIpa = "CFG-61", "each end of a channel must overlap none of its partition's memory regions, devices, virtual GIC frames, watchdog frames or other channel ends, nor may a doorbell's frame";
    ChannelDma = "CFG-62", "in a partition with a dma = true device, a channel end's IPA must equal the channel's PA (no IOMMU, as CFG-35)";
    ChannelLimit = "CFG-63", "a partition may be an end of at most 8 channels (septum_core::config::MAX_CHANNEL_ENDS)";
    DoorbellForm = "CFG-64", "a channel's doorbell irq must be an SPI (32..=1019) that is not the maintenance interrupt and that no device or other doorbell uses; its ipa 4 KiB aligned inside the 39-bit IPA space; rate 1..=1000 a second; burst 1..=16";
    DoorbellCritical = "CFG-65", "a doorbell may not ring into the critical partition: nothing another partition does may interrupt the therapy (it polls its channels)";
}

#[cfg(test)]
mod tests {
    use super::Rule;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for r in Rule::ALL {
            let id = r.id();
            assert!(seen.insert(id), "duplicate rule id {id}");
            assert!(id.len() == 6 && id.starts_with("CFG-"), "bad id {id}");
            assert!(id[4..].bytes().all(|b| b.is_ascii_digit()), "bad id {id}");
            assert!(!r.summary().is_empty());
        }
    }

    /// Every rule is documented in docs/configuration.md.
    #[test]
    fn every_rule_is_documented() {
        let doc = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let text = std::fs::read_to_string(doc).expect("docs/configuration.md exists");
        for r in Rule::ALL {
            assert!(
                text.contains(&format!("`{}`", r.id())),
                "{} is not documented in docs/configuration.md",
                r.id()
            );
        }
    }
}
