//! GICv2 register values that do not depend on the hardware: which enable
//! bits to set, and the priority and acknowledge field layouts.
//!
//! The RTOS meets three kinds of GICv2 CPU interface:
//! - a GIC without the Security Extensions (QEMU's, natively): Group 0 and
//!   Group 1 each have an enable bit, and interrupts reset to Group 0;
//! - the Non-secure view of a GIC with them (a Raspberry Pi 4 natively,
//!   after the firmware's secure set-up): bit 0 of GICD_CTLR and GICC_CTLR
//!   enables Group 1, the only group Non-secure software may use, and the
//!   other low bits are reserved;
//! - the virtual CPU interface a hypervisor maps at GICC (Septum): always
//!   without a security view, and the group of a virtual interrupt is the
//!   hypervisor's choice.
//!
//! The RTOS never runs in the Secure state, so "Security Extensions
//! present" means the Non-secure view unless a hypervisor provides the
//! interface.

/// GICD_TYPER.SecurityExtn.
pub const TYPER_SECURITY_EXTN: u32 = 1 << 10;
/// GICD_CTLR / GICC_CTLR without a security view: EnableGrp0, EnableGrp1.
/// In the Non-secure view bit 0 is EnableGrp1.
pub const CTLR_ENABLE_GRP0: u32 = 1 << 0;
pub const CTLR_ENABLE_GRP1: u32 = 1 << 1;
/// GICC_CTLR.AckCtl: GICC_IAR/GICC_EOIR handle Group 1 as well as Group 0.
pub const GICC_CTLR_ACK_CTL: u32 = 1 << 2;
/// GICC_IAR: interrupt ID; bits [12:10] are the source CPU of an SGI.
pub const IAR_INTID_MASK: u32 = 0x3ff;

/// What to set in GICD_CTLR and to write to GICC_CTLR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enables {
    pub gicd_ctlr: u32,
    pub gicc_ctlr: u32,
}

/// Whether the RTOS sees the Non-secure view of a GIC whose GICD_TYPER
/// reads `typer`; `virtual_cpu_if` when a hypervisor started the RTOS (its
/// GICC is then a virtual one, whatever the distributor reports).
pub fn non_secure_view(typer: u32, virtual_cpu_if: bool) -> bool {
    typer & TYPER_SECURITY_EXTN != 0 && !virtual_cpu_if
}

/// The enables for either view.
///
/// Without a security view, both groups are enabled and AckCtl is set, so
/// the timer is signalled as IRQ (FIQEn = 0) and acknowledged by GICC_IAR
/// whichever group the reset value or the hypervisor gave it. In the
/// Non-secure view only bit 0 is written: the reserved bits stay 0.
pub fn enables(non_secure_view: bool) -> Enables {
    if non_secure_view {
        Enables {
            gicd_ctlr: CTLR_ENABLE_GRP0,
            gicc_ctlr: CTLR_ENABLE_GRP0,
        }
    } else {
        Enables {
            gicd_ctlr: CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1,
            gicc_ctlr: CTLR_ENABLE_GRP0 | CTLR_ENABLE_GRP1 | GICC_CTLR_ACK_CTL,
        }
    }
}

/// Offset of the 32-bit GICD_IPRIORITYR word holding `intid`'s byte,
/// relative to GICD_IPRIORITYR0.
pub fn priority_word(intid: u32) -> usize {
    intid as usize & !3
}

/// `word` (a GICD_IPRIORITYR value) with `intid`'s byte set to `priority`.
/// The byte fields are updated by a word read-modify-write because the
/// hypervisor emulates the distributor from word accesses only.
pub fn with_priority(word: u32, intid: u32, priority: u8) -> u32 {
    let shift = (intid % 4) * 8;
    (word & !(0xff << shift)) | (u32::from(priority) << shift)
}

/// The interrupt ID of a GICC_IAR value (1020..=1023: none/spurious).
pub fn iar_intid(iar: u32) -> u32 {
    iar & IAR_INTID_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GICD_TYPER of QEMU virt with gic-version=2, 4 CPUs, no security.
    const QEMU_TYPER: u32 = (3 << 5) | 0x7;
    /// GIC-400 with security extensions, as the Pi 4 has it.
    const PI_TYPER: u32 = TYPER_SECURITY_EXTN | (3 << 5) | 0x7;

    #[test]
    fn no_security_view_enables_both_groups() {
        assert!(!non_secure_view(QEMU_TYPER, false));
        let e = enables(false);
        assert_eq!(e.gicd_ctlr, 0b11);
        assert_eq!(e.gicc_ctlr, 0b111);
    }

    #[test]
    fn non_secure_view_writes_bit_0_only() {
        assert!(non_secure_view(PI_TYPER, false));
        assert_eq!(
            enables(true),
            Enables {
                gicd_ctlr: 1,
                gicc_ctlr: 1
            }
        );
    }

    #[test]
    fn virtual_interface_has_no_security_view() {
        // Whatever the emulated distributor reports, the CPU interface is
        // GICV: both groups and AckCtl.
        for typer in [QEMU_TYPER, PI_TYPER] {
            assert!(!non_secure_view(typer, true));
        }
    }

    #[test]
    fn priority_byte_of_the_virtual_timer() {
        // INTID 27: byte 3 of GICD_IPRIORITYR6 (offset 24).
        assert_eq!(priority_word(27), 24);
        assert_eq!(with_priority(0xa0a0_a0a0, 27, 0x80), 0x80a0_a0a0);
        assert_eq!(with_priority(0, 24, 0x80), 0x80);
        assert_eq!(priority_word(0), 0);
        assert_eq!(priority_word(31), 28);
    }

    #[test]
    fn iar_drops_the_sgi_source() {
        assert_eq!(iar_intid(27), 27);
        assert_eq!(iar_intid((3 << 10) | 5), 5);
        assert_eq!(iar_intid(1023), 1023);
    }
}
