//! Direct interrupt delivery (`interrupts = "direct"`, GICv3 only): how a
//! core whose partition takes its own interrupts at EL1 is set up. Pure, so
//! that the split between the hypervisor's and the partition's interrupts,
//! and the priority order that keeps the hypervisor in control of the core,
//! are host-tested. docs/architecture.md, "Direct interrupt delivery".
//!
//! On such a core the hypervisor's own interrupts (its IPIs, its EL2 timer,
//! the maintenance interrupt) are Group 0: signalled as FIQ, which
//! `HCR_EL2.FMO` routes to EL2 whatever the partition does with PSTATE.F.
//! Everything else on the core is Group 1, signalled as IRQ, which with
//! `HCR_EL2.IMO` clear goes straight to the partition's EL1 vector.

use crate::config::{InterruptDelivery, SystemConfig};

/// Physical priority of the hypervisor's Group 0 interrupts on a direct
/// core: above every priority a partition interrupt can be given
/// ([`physical_priority`]), so a partition that never ends its interrupt
/// handler still cannot hold off the hypervisor's timer or IPIs.
pub const HYP_PRIORITY: u8 = 0x40;

/// The physical priority of a partition interrupt whose guest-programmed
/// priority is `guest`: the top half of the range, in the guest's order
/// (`0x80 | guest >> 1`, so 0x00 → 0x80 and 0xff → 0xff). A GIC that
/// implements fewer priority bits keeps the guest's most significant ones.
pub const fn physical_priority(guest: u8) -> u8 {
    0x80 | (guest >> 1)
}

/// GICR_IGROUPR0 of a direct core: bit n set = SGI/PPI n is Group 1 (the
/// partition's). The SGIs and the hypervisor's PPIs `hyp_ppis` (one bit per
/// INTID) are Group 0; a partition gets no physical SGI.
pub const fn igroupr0(hyp_ppis: u32) -> u32 {
    !(0xffff | hyp_ppis)
}

/// Whether physical core `core` belongs to a partition with direct
/// delivery.
pub fn is_direct_core(cfg: &SystemConfig, core: usize) -> bool {
    cfg.partitions.iter().any(|p| {
        p.interrupts == InterruptDelivery::Direct && p.cores.iter().any(|&c| c as usize == core)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// REQ-TIME-4: every priority a direct partition can program stays
    /// below the hypervisor's, keeps the partition's order, and is never
    /// masked by the hypervisor's priority mask (0xff) unless the guest's
    /// own would mask it (0xff is masked natively too).
    #[test]
    fn partition_priorities_stay_below_the_hypervisors() {
        let mut last = 0;
        for g in 0..=255u8 {
            let p = physical_priority(g);
            assert!(p > HYP_PRIORITY, "guest {g:#x} -> {p:#x}");
            assert!(p >= 0x80);
            assert!(p >= last, "order kept");
            last = p;
            // The top five bits (a GIC-500's 32 levels) keep the guest's top four.
            assert_eq!(p & 0x78, (g >> 1) & 0x78);
        }
        assert_eq!(physical_priority(0), 0x80);
        assert_eq!(physical_priority(0xa0), 0xd0);
        assert_eq!(physical_priority(0xff), 0xff);
        // Five implemented bits: the hypervisor's level is still distinct.
        assert!(HYP_PRIORITY & 0xf8 < physical_priority(0) & 0xf8);
    }

    /// REQ-TIME-4: the SGIs and the hypervisor's PPIs are Group 0, the
    /// partition's timer PPIs Group 1.
    #[test]
    fn hypervisor_interrupts_are_group_0() {
        let hyp = (1 << 25) | (1 << 26);
        let g = igroupr0(hyp);
        assert_eq!(g & 0xffff, 0, "SGIs");
        assert_eq!(g & hyp, 0);
        for ppi in [23, 27, 29, 30] {
            assert_ne!(g & (1 << ppi), 0, "PPI {ppi} is the partition's");
        }
    }
}
