//! Where the RTOS's interrupt controller and console are, decided once at
//! boot from facts the hardware states (one image for every board):
//!
//! 1. ID_AA64PFR0_EL1.GIC != 0 (a system-register CPU interface): a GICv3
//!    at QEMU virt's addresses, natively or in a Septum partition on virt.
//! 2. Otherwise a GICv2. If the boot argument x0 is a device tree with a
//!    GICv2 node, its frames are used (QEMU virt with gic-version=2 passes
//!    one; a Septum partition may get one).
//! 3. Otherwise the Raspberry Pi 4's GIC-400 at 0xff84_1000/0xff84_2000,
//!    which is also where Septum shows it to a partition on that board.
//!
//! Probing addresses instead is not an option: reading a frame that is
//! not there aborts. The console is QEMU virt's PL011 at 0x0900_0000
//! (Septum's partitions emulate one there), except on a Pi 4 running
//! without a hypervisor, where it is the board's PL011 (UART0).

use crate::fdt::Gicv2Frames;

pub const VIRT_GICD: usize = 0x0800_0000;
pub const VIRT_GICR: usize = 0x080a_0000;
pub const VIRT_UART: usize = 0x0900_0000;
pub const RPI4_GICD: usize = 0xff84_1000;
pub const RPI4_GICC: usize = 0xff84_2000;
pub const RPI4_UART: usize = 0xfe20_1000;
pub const GICV2_GICD_SIZE: usize = 0x1000;
/// GICC_DIR is in the second page.
pub const GICV2_GICC_SIZE: usize = 0x2000;

/// The Device-nGnRE windows of the boot map (rt/boot.rs): [0, 1 GiB) and
/// [3 GiB, 4 GiB). A frame elsewhere would fault on first access.
pub const DEVICE_WINDOWS: [(u64, u64); 2] = [(0, 0x4000_0000), (0xc000_0000, 0x1_0000_0000)];
/// The Normal-memory window of the boot map, where the RTOS's RAM is; a
/// device tree is read only if it lies inside.
pub const RAM_WINDOW: (u64, u64) = (0x4000_0000, 0x8000_0000);
/// Larger "device trees" are taken for garbage.
pub const DTB_MAX: usize = 2 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gic {
    V3 { gicd: usize, gicr: usize },
    V2 { gicd: usize, gicc: usize },
}

/// Why the GIC is where the RTOS thinks it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// GICv3 system registers: QEMU virt's layout.
    QemuVirt,
    /// A GICv2 node in the device tree passed in x0.
    DeviceTree,
    /// A GICv2 and no device tree naming it: the Raspberry Pi 4.
    RaspberryPi4,
}

impl Source {
    pub const fn describe(self) -> &'static str {
        match self {
            Source::QemuVirt => "QEMU virt layout",
            Source::DeviceTree => "from the device tree",
            Source::RaspberryPi4 => "Raspberry Pi 4 layout",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform {
    pub gic: Gic,
    pub source: Source,
    pub uart: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformError {
    /// The device tree puts the GIC where the boot map has no device
    /// memory, or not 4 KiB aligned.
    GicNotMappable { gicd: u64, gicc: u64 },
}

/// ID_AA64PFR0_EL1.GIC (bits [27:24]): a GIC system-register interface.
pub fn has_gic_system_registers(id_aa64pfr0: u64) -> bool {
    (id_aa64pfr0 >> 24) & 0xf != 0
}

fn within(range: (u64, u64), base: u64, len: usize) -> bool {
    base.checked_add(len as u64)
        .is_some_and(|end| base >= range.0 && end <= range.1)
}

/// Whether `[base, base + len)` is device memory in the boot map.
/// Whether a channel the hypervisor names (`CHANNEL_INFO`) can be used:
/// whole pages inside the RAM window of the RTOS's stage-1 map (where its
/// stores are Normal memory, which stage 2 makes non-cacheable). A channel
/// elsewhere would be device memory or unmapped; the RTOS then does
/// without telemetry rather than fault.
pub fn channel_usable(ipa: u64, size: u64) -> bool {
    ipa.is_multiple_of(4096)
        && size >= 4096
        && size.is_multiple_of(4096)
        && usize::try_from(size).is_ok_and(|len| within(RAM_WINDOW, ipa, len))
}

pub fn device_mapped(base: u64, len: usize) -> bool {
    DEVICE_WINDOWS.iter().any(|&w| within(w, base, len))
}

/// Whether x0 may be read as a device-tree header: non-zero, 8-byte
/// aligned (the boot protocol's rule) and inside the RAM window.
pub fn dtb_header_readable(x0: u64) -> bool {
    x0 != 0 && x0.is_multiple_of(8) && within(RAM_WINDOW, x0, crate::fdt::HEADER_LEN)
}

/// Whether a device tree of `total` bytes at x0 may be read whole.
pub fn dtb_readable(x0: u64, total: usize) -> bool {
    total <= DTB_MAX && within(RAM_WINDOW, x0, total)
}

/// Chooses the platform. `device_tree_gicv2` is asked only on a GICv2, so
/// a GICv3 boot never reads the memory x0 points to.
pub fn select(
    gic_system_registers: bool,
    under_hypervisor: bool,
    device_tree_gicv2: impl FnOnce() -> Option<Gicv2Frames>,
) -> Result<Platform, PlatformError> {
    if gic_system_registers {
        return Ok(Platform {
            gic: Gic::V3 {
                gicd: VIRT_GICD,
                gicr: VIRT_GICR,
            },
            source: Source::QemuVirt,
            uart: VIRT_UART,
        });
    }
    if let Some(Gicv2Frames { gicd, gicc }) = device_tree_gicv2() {
        let ok = gicd.is_multiple_of(0x1000)
            && gicc.is_multiple_of(0x1000)
            && device_mapped(gicd, GICV2_GICD_SIZE)
            && device_mapped(gicc, GICV2_GICC_SIZE);
        if !ok {
            return Err(PlatformError::GicNotMappable { gicd, gicc });
        }
        return Ok(Platform {
            gic: Gic::V2 {
                gicd: gicd as usize,
                gicc: gicc as usize,
            },
            source: Source::DeviceTree,
            uart: VIRT_UART,
        });
    }
    Ok(Platform {
        gic: Gic::V2 {
            gicd: RPI4_GICD,
            gicc: RPI4_GICC,
        },
        source: Source::RaspberryPi4,
        uart: if under_hypervisor {
            VIRT_UART
        } else {
            RPI4_UART
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_V2: Gicv2Frames = Gicv2Frames {
        gicd: 0x0800_0000,
        gicc: 0x0801_0000,
    };

    #[test]
    fn gic_field_of_id_aa64pfr0() {
        // QEMU cortex-a72 with a GICv3 (GIC = 1, EL0..EL3 AArch64 only).
        assert!(has_gic_system_registers(0x0100_2222));
        assert!(!has_gic_system_registers(0x0000_2222));
        assert!(has_gic_system_registers(0x3 << 24));
        assert!(!has_gic_system_registers(!(0xf << 24)));
    }

    #[test]
    fn gicv3_never_reads_the_device_tree() {
        for hyp in [false, true] {
            let p = select(true, hyp, || panic!("device tree read on a GICv3")).unwrap();
            assert_eq!(
                p.gic,
                Gic::V3 {
                    gicd: 0x0800_0000,
                    gicr: 0x080a_0000
                }
            );
            assert_eq!(p.uart, 0x0900_0000);
            assert_eq!(p.source, Source::QemuVirt);
        }
    }

    #[test]
    fn gicv2_from_the_device_tree() {
        let p = select(false, false, || Some(QEMU_V2)).unwrap();
        assert_eq!(
            p.gic,
            Gic::V2 {
                gicd: 0x0800_0000,
                gicc: 0x0801_0000
            }
        );
        assert_eq!(p.source, Source::DeviceTree);
        assert_eq!(p.uart, VIRT_UART);
    }

    #[test]
    fn gicv2_without_device_tree_is_the_pi() {
        let native = select(false, false, || None).unwrap();
        assert_eq!(
            native.gic,
            Gic::V2 {
                gicd: 0xff84_1000,
                gicc: 0xff84_2000
            }
        );
        assert_eq!(native.source, Source::RaspberryPi4);
        assert_eq!(native.uart, 0xfe20_1000);
        // In a Septum partition on the Pi: same GIC addresses, the
        // partition's emulated PL011 as console.
        let part = select(false, true, || None).unwrap();
        assert_eq!(part.gic, native.gic);
        assert_eq!(part.uart, 0x0900_0000);
    }

    #[test]
    fn unmappable_device_tree_gic_is_an_error() {
        for f in [
            Gicv2Frames {
                gicd: 0x4000_0000,
                gicc: 0x0801_0000,
            },
            Gicv2Frames {
                gicd: 0x0800_0000,
                gicc: 0x3fff_f000,
            },
            Gicv2Frames {
                gicd: 0x0800_0800,
                gicc: 0x0801_0000,
            },
            Gicv2Frames {
                gicd: 0x1_0800_0000,
                gicc: 0x0801_0000,
            },
            Gicv2Frames {
                gicd: !0xfff,
                gicc: 0x0801_0000,
            },
        ] {
            assert_eq!(
                select(false, false, || Some(f)),
                Err(PlatformError::GicNotMappable {
                    gicd: f.gicd,
                    gicc: f.gicc
                })
            );
        }
        // The Pi's frames are at the top of the 3..4 GiB window.
        assert!(device_mapped(0xff84_2000, GICV2_GICC_SIZE));
        assert!(device_mapped(0xffff_f000, 0x1000));
        assert!(!device_mapped(0xffff_f000, 0x2000));
    }

    #[test]
    fn device_tree_address_checks() {
        assert!(!dtb_header_readable(0));
        assert!(dtb_header_readable(0x4000_0000));
        assert!(!dtb_header_readable(0x4000_0004));
        assert!(!dtb_header_readable(0x3fff_fff8));
        assert!(!dtb_header_readable(0x8000_0000 - 32));
        assert!(dtb_header_readable(0x8000_0000 - 40));
        assert!(!dtb_header_readable(!7));
        assert!(dtb_readable(0x4000_0000, 0x10_0000));
        assert!(!dtb_readable(0x4000_0000, DTB_MAX + 1));
        assert!(!dtb_readable(0x7fff_0000, 0x2_0000));
    }

    /// REQ-CHN-2: the RTOS writes only a channel inside its RAM window.
    #[test]
    fn channels_must_be_whole_pages_in_the_ram_window() {
        assert!(channel_usable(0x4040_0000, 0x1000));
        assert!(channel_usable(0x7fff_f000, 0x1000));
        assert!(!channel_usable(0x7fff_f000, 0x2000));
        assert!(!channel_usable(0x3fff_f000, 0x1000));
        assert!(!channel_usable(0x0900_0000, 0x1000));
        assert!(!channel_usable(0x4040_0800, 0x1000));
        assert!(!channel_usable(0x4040_0000, 0x800));
        assert!(!channel_usable(0x4040_0000, 0));
        assert!(!channel_usable(u64::MAX - 0xfff, 0x1000));
        assert!(!channel_usable(0x4040_0000, !0xfff));
    }
}
