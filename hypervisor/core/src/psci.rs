//! PSCI (Power State Coordination Interface) as Septum offers it to guests
//! over HVC: the call decoding and argument checks, independent of hardware.
//!
//! A partition may only ever address its own vCPUs; everything else gets the
//! PSCI error codes the specification defines.

// The function IDs, return codes and version are the guests' ABI too.
pub use septum_abi::psci::{
    AFFINITY_INFO_32, AFFINITY_INFO_64, AFFINITY_OFF, AFFINITY_ON, AFFINITY_ON_PENDING, ALREADY_ON,
    CPU_OFF, CPU_ON_32, CPU_ON_64, CPU_SUSPEND_32, CPU_SUSPEND_64, DENIED, INTERNAL_FAILURE,
    INVALID_ADDRESS, INVALID_PARAMETERS, MIGRATE_INFO_TYPE, NOT_SUPPORTED, ON_PENDING,
    PSCI_FEATURES, PSCI_VERSION, SUCCESS, SYSTEM_OFF, SYSTEM_RESET, VERSION_1_1,
};
pub use septum_abi::smccc::SMCCC_VERSION;

/// MIGRATE_INFO_TYPE: "trusted OS not present / migration not required".
pub const MIGRATE_NOT_REQUIRED: i64 = 2;

/// What the hypervisor must do with a guest's HVC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Return this value in x0 and continue.
    Return(i64),
    /// Start vCPU `vcpu` at `entry` with `context` in x0.
    CpuOn {
        vcpu: usize,
        entry: u64,
        context: u64,
    },
    /// Turn the calling vCPU off.
    CpuOff,
    /// Report vCPU `vcpu`'s power state (0 on, 1 off, 2 on-pending).
    AffinityInfo {
        vcpu: usize,
    },
    SystemOff,
    SystemReset,
}

/// Maps an MPIDR value a guest passes to one of its vCPU indexes. Guests see
/// a flat topology: vCPU n has Aff0 = n and the higher affinity levels zero.
pub fn vcpu_of_mpidr(mpidr: u64, vcpus: usize) -> Option<usize> {
    // Bits other than Aff0..Aff3 must be zero (bit 31 RES1 is tolerated).
    let aff = mpidr & !(1 << 31);
    if aff & !0xff_00ff_ffff != 0 || aff >> 8 != 0 {
        return None;
    }
    let n = (aff & 0xff) as usize;
    (n < vcpus).then_some(n)
}

/// Decodes a call. `x0`..`x3` are the guest's registers; `vcpus` the number
/// of vCPUs of its partition. Unknown functions get NOT_SUPPORTED. Inlined:
/// it is on the hypercall exit path, where a call and its returned enum cost
/// more than the decoding.
#[inline(always)]
pub fn decode(x0: u64, x1: u64, x2: u64, x3: u64, vcpus: usize) -> Call {
    // SMCCC: function IDs are 32 bits; the upper half of x0 is ignored.
    let fid = x0 as u32;
    match fid {
        PSCI_VERSION => Call::Return(VERSION_1_1),
        SMCCC_VERSION => Call::Return(0x1_0001),
        MIGRATE_INFO_TYPE => Call::Return(MIGRATE_NOT_REQUIRED),
        PSCI_FEATURES => Call::Return(features(x1 as u32)),
        CPU_OFF => Call::CpuOff,
        SYSTEM_OFF => Call::SystemOff,
        SYSTEM_RESET => Call::SystemReset,
        CPU_ON_32 | CPU_ON_64 => {
            let (target, entry, ctx) = if fid == CPU_ON_32 {
                (x1 & 0xffff_ffff, x2 & 0xffff_ffff, x3 & 0xffff_ffff)
            } else {
                (x1, x2, x3)
            };
            match vcpu_of_mpidr(target, vcpus) {
                Some(v) => Call::CpuOn {
                    vcpu: v,
                    entry,
                    context: ctx,
                },
                None => Call::Return(INVALID_PARAMETERS),
            }
        }
        AFFINITY_INFO_32 | AFFINITY_INFO_64 => {
            let (target, level) = if fid == AFFINITY_INFO_32 {
                (x1 & 0xffff_ffff, x2 & 0xffff_ffff)
            } else {
                (x1, x2)
            };
            // Only level 0 (a single vCPU) is meaningful in a flat topology.
            if level != 0 {
                return Call::Return(INVALID_PARAMETERS);
            }
            match vcpu_of_mpidr(target, vcpus) {
                Some(v) => Call::AffinityInfo { vcpu: v },
                None => Call::Return(INVALID_PARAMETERS),
            }
        }
        _ => Call::Return(NOT_SUPPORTED),
    }
}

/// PSCI_FEATURES: which functions exist.
pub fn features(fid: u32) -> i64 {
    match fid {
        PSCI_VERSION | CPU_OFF | CPU_ON_32 | CPU_ON_64 | AFFINITY_INFO_32 | AFFINITY_INFO_64
        | MIGRATE_INFO_TYPE | SYSTEM_OFF | SYSTEM_RESET | PSCI_FEATURES | SMCCC_VERSION => SUCCESS,
        _ => NOT_SUPPORTED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_features() {
        assert_eq!(
            decode(PSCI_VERSION as u64, 0, 0, 0, 1),
            Call::Return(VERSION_1_1)
        );
        assert_eq!(
            decode(PSCI_FEATURES as u64, CPU_ON_64 as u64, 0, 0, 1),
            Call::Return(SUCCESS)
        );
        assert_eq!(
            decode(PSCI_FEATURES as u64, CPU_SUSPEND_64 as u64, 0, 0, 1),
            Call::Return(NOT_SUPPORTED)
        );
        assert_eq!(
            decode(PSCI_FEATURES as u64, 0xdead_beef, 0, 0, 1),
            Call::Return(NOT_SUPPORTED)
        );
    }

    #[test]
    fn upper_half_of_function_id_ignored() {
        assert_eq!(
            decode(0xffff_ffff_0000_0000 | PSCI_VERSION as u64, 0, 0, 0, 1),
            Call::Return(VERSION_1_1)
        );
    }

    #[test]
    fn cpu_on_only_own_vcpus() {
        assert_eq!(
            decode(CPU_ON_64 as u64, 2, 0x4000_0000, 7, 3),
            Call::CpuOn {
                vcpu: 2,
                entry: 0x4000_0000,
                context: 7
            }
        );
        assert_eq!(
            decode(CPU_ON_64 as u64, 3, 0x4000_0000, 0, 3),
            Call::Return(INVALID_PARAMETERS)
        );
        // Aff1 set: another cluster that this partition does not have.
        assert_eq!(
            decode(CPU_ON_64 as u64, 0x100, 0, 0, 3),
            Call::Return(INVALID_PARAMETERS)
        );
        // Garbage in the upper bits.
        assert_eq!(
            decode(CPU_ON_64 as u64, 1 << 45, 0, 0, 3),
            Call::Return(INVALID_PARAMETERS)
        );
    }

    #[test]
    fn cpu_on_32_truncates_arguments() {
        assert_eq!(
            decode(
                CPU_ON_32 as u64,
                0xffff_ffff_0000_0001,
                0xffff_ffff_4000_0000,
                0,
                2
            ),
            Call::CpuOn {
                vcpu: 1,
                entry: 0x4000_0000,
                context: 0
            }
        );
    }

    #[test]
    fn system_calls() {
        assert_eq!(decode(SYSTEM_OFF as u64, 0, 0, 0, 1), Call::SystemOff);
        assert_eq!(decode(SYSTEM_RESET as u64, 0, 0, 0, 1), Call::SystemReset);
        assert_eq!(decode(CPU_OFF as u64, 0, 0, 0, 1), Call::CpuOff);
    }

    #[test]
    fn unknown_functions() {
        for fid in [
            0u64,
            0x8400_00ff,
            0xc600_0000,
            CPU_SUSPEND_64 as u64,
            u64::MAX,
        ] {
            assert_eq!(
                decode(fid, 0, 0, 0, 4),
                Call::Return(NOT_SUPPORTED),
                "fid {fid:#x}"
            );
        }
    }

    #[test]
    fn affinity_info_levels() {
        assert_eq!(
            decode(AFFINITY_INFO_64 as u64, 1, 0, 0, 2),
            Call::AffinityInfo { vcpu: 1 }
        );
        assert_eq!(
            decode(AFFINITY_INFO_64 as u64, 0, 1, 0, 2),
            Call::Return(INVALID_PARAMETERS)
        );
        assert_eq!(
            decode(AFFINITY_INFO_64 as u64, 5, 0, 0, 2),
            Call::Return(INVALID_PARAMETERS)
        );
    }

    #[test]
    fn mpidr_mapping() {
        assert_eq!(vcpu_of_mpidr(0x8000_0000, 1), Some(0));
        assert_eq!(vcpu_of_mpidr(1, 1), None);
        assert_eq!(vcpu_of_mpidr(0xff, 8), None);
        assert_eq!(vcpu_of_mpidr(7, 8), Some(7));
    }
}
