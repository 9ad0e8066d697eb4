//! PSCI (Power State Coordination Interface), the calls Septum offers every
//! partition over `HVC` for its own vCPUs (docs/architecture.md, "PSCI").

/// Return codes (negative 32-bit values in x0, sign-extended).
pub const SUCCESS: i64 = 0;
pub const NOT_SUPPORTED: i64 = -1;
pub const INVALID_PARAMETERS: i64 = -2;
pub const DENIED: i64 = -3;
pub const ALREADY_ON: i64 = -4;
pub const ON_PENDING: i64 = -5;
pub const INTERNAL_FAILURE: i64 = -6;
pub const INVALID_ADDRESS: i64 = -9;

/// AFFINITY_INFO answers.
pub const AFFINITY_ON: i64 = 0;
pub const AFFINITY_OFF: i64 = 1;
pub const AFFINITY_ON_PENDING: i64 = 2;

/// Function IDs (SMC32 and SMC64 where both exist).
pub const PSCI_VERSION: u32 = 0x8400_0000;
pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
pub const CPU_SUSPEND_64: u32 = 0xc400_0001;
pub const CPU_OFF: u32 = 0x8400_0002;
pub const CPU_ON_32: u32 = 0x8400_0003;
pub const CPU_ON_64: u32 = 0xc400_0003;
pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
pub const SYSTEM_OFF: u32 = 0x8400_0008;
pub const SYSTEM_RESET: u32 = 0x8400_0009;
pub const PSCI_FEATURES: u32 = 0x8400_000a;

/// The version Septum implements: PSCI 1.1.
pub const VERSION_1_1: i64 = 0x0001_0001;

/// Every function ID above, for tables and tests.
pub const ALL: [u32; 12] = [
    PSCI_VERSION,
    CPU_SUSPEND_32,
    CPU_SUSPEND_64,
    CPU_OFF,
    CPU_ON_32,
    CPU_ON_64,
    AFFINITY_INFO_32,
    AFFINITY_INFO_64,
    MIGRATE_INFO_TYPE,
    SYSTEM_OFF,
    SYSTEM_RESET,
    PSCI_FEATURES,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smccc::{self, CONV_64};

    #[test]
    fn every_id_is_a_fast_standard_secure_call_and_distinct() {
        for (i, &f) in ALL.iter().enumerate() {
            let f = u64::from(f);
            assert!(smccc::is_fast(f), "{f:#x}");
            assert_eq!(
                smccc::owner(f),
                Some(smccc::OWNER_STANDARD_SECURE),
                "{f:#x}"
            );
            assert!(!ALL[..i].contains(&(f as u32)), "{f:#x} twice");
        }
    }

    #[test]
    fn the_64_bit_forms_differ_from_the_32_bit_only_in_the_convention_bit() {
        for (w32, w64) in [
            (CPU_SUSPEND_32, CPU_SUSPEND_64),
            (CPU_ON_32, CPU_ON_64),
            (AFFINITY_INFO_32, AFFINITY_INFO_64),
        ] {
            assert_eq!(u64::from(w32) | CONV_64, u64::from(w64));
        }
    }
}
