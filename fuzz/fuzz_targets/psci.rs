//! REQ-FLT-2, REQ-ISO-3: PSCI calls with arbitrary guest registers.
//!
//! Checks:
//! - no panic;
//! - `CpuOn` (and `AffinityInfo`) only for CPU_ON (AFFINITY_INFO level 0),
//!   and only ever naming a vCPU below `vcpus`, the one whose MPIDR
//!   (Aff0 = n, Aff1..3 = 0) the guest passed; the SMC32 forms use only the
//!   low 32 bits of their arguments;
//! - the upper half of x0 is ignored (SMCCC function IDs are 32 bits);
//! - power-state calls only for their function IDs; every returned code is
//!   a PSCI one; PSCI_FEATURES agrees with `features`;
//! - `vcpu_of_mpidr` accepts only MPIDRs of the partition's own vCPUs.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use septum_core::psci::{self, Call};

#[derive(Debug, Arbitrary)]
struct Input {
    x0: u64,
    x1: u64,
    x2: u64,
    x3: u64,
    vcpus: u8,
    /// Replace the low half of x0 by a known function ID.
    known_fid: Option<u8>,
    /// Replace x1 by a small MPIDR (Aff0 only).
    small_mpidr: Option<u8>,
}

const FIDS: [u32; 14] = [
    psci::PSCI_VERSION,
    psci::CPU_SUSPEND_32,
    psci::CPU_SUSPEND_64,
    psci::CPU_OFF,
    psci::CPU_ON_32,
    psci::CPU_ON_64,
    psci::AFFINITY_INFO_32,
    psci::AFFINITY_INFO_64,
    psci::MIGRATE_INFO_TYPE,
    psci::SYSTEM_OFF,
    psci::SYSTEM_RESET,
    psci::PSCI_FEATURES,
    psci::SMCCC_VERSION,
    0x8400_0005,
];

/// The MPIDR rule: Aff0 = vCPU index, Aff1..Aff3 = 0, bit 31 (RES1)
/// tolerated, every other bit 0.
fn own_vcpu(mpidr: u64, vcpus: usize) -> Option<usize> {
    let n = (mpidr & 0xff) as usize;
    (mpidr & !(0xff | 1 << 31) == 0 && n < vcpus).then_some(n)
}

fuzz_target!(|input: Input| {
    // 0..=8: zero vCPUs must never yield a CpuOn.
    let vcpus = usize::from(input.vcpus % 9);
    let mut x0 = input.x0;
    if let Some(i) = input.known_fid {
        x0 = (x0 & !0xffff_ffff) | u64::from(FIDS[usize::from(i) % FIDS.len()]);
    }
    let mut x1 = input.x1;
    if let Some(a) = input.small_mpidr {
        x1 = u64::from(a & 0xf) | if a & 0x80 != 0 { 1 << 31 } else { 0 };
    }
    let (x2, x3) = (input.x2, input.x3);
    let fid = x0 as u32;

    assert_eq!(
        psci::vcpu_of_mpidr(x1, vcpus),
        own_vcpu(x1, vcpus),
        "MPIDR {x1:#x}"
    );

    let call = psci::decode(x0, x1, x2, x3, vcpus);
    assert_eq!(
        call,
        psci::decode(u64::from(fid), x1, x2, x3, vcpus),
        "x0[63:32] matters"
    );
    match call {
        Call::CpuOn {
            vcpu,
            entry,
            context,
        } => {
            assert!(vcpu < vcpus, "CpuOn of vCPU {vcpu} with {vcpus} vCPUs");
            match fid {
                psci::CPU_ON_64 => {
                    assert_eq!(Some(vcpu), own_vcpu(x1, vcpus));
                    assert_eq!((entry, context), (x2, x3));
                }
                psci::CPU_ON_32 => {
                    assert_eq!(Some(vcpu), own_vcpu(x1 & 0xffff_ffff, vcpus));
                    assert_eq!((entry, context), (x2 & 0xffff_ffff, x3 & 0xffff_ffff));
                }
                _ => panic!("CpuOn for function {fid:#x}"),
            }
        }
        Call::AffinityInfo { vcpu } => {
            assert!(
                vcpu < vcpus,
                "AffinityInfo of vCPU {vcpu} with {vcpus} vCPUs"
            );
            let (target, level) = match fid {
                psci::AFFINITY_INFO_32 => (x1 & 0xffff_ffff, x2 & 0xffff_ffff),
                psci::AFFINITY_INFO_64 => (x1, x2),
                _ => panic!("AffinityInfo for function {fid:#x}"),
            };
            assert_eq!(level, 0, "AffinityInfo for level {level}");
            assert_eq!(Some(vcpu), own_vcpu(target, vcpus));
        }
        Call::CpuOff => assert_eq!(fid, psci::CPU_OFF),
        Call::SystemOff => assert_eq!(fid, psci::SYSTEM_OFF),
        Call::SystemReset => assert_eq!(fid, psci::SYSTEM_RESET),
        Call::Return(v) => {
            assert!(
                [
                    psci::SUCCESS,
                    psci::NOT_SUPPORTED,
                    psci::INVALID_PARAMETERS,
                    psci::VERSION_1_1,
                    psci::MIGRATE_NOT_REQUIRED,
                    0x1_0001,
                ]
                .contains(&v),
                "return value {v:#x}"
            );
            match fid {
                psci::CPU_ON_32 | psci::CPU_ON_64 => {
                    assert_eq!(v, psci::INVALID_PARAMETERS);
                    let target = if fid == psci::CPU_ON_32 {
                        x1 & 0xffff_ffff
                    } else {
                        x1
                    };
                    assert_eq!(own_vcpu(target, vcpus), None);
                }
                psci::PSCI_FEATURES => assert_eq!(v, psci::features(x1 as u32)),
                psci::AFFINITY_INFO_32 | psci::AFFINITY_INFO_64 => {
                    assert_eq!(v, psci::INVALID_PARAMETERS);
                    let (target, level) = if fid == psci::AFFINITY_INFO_32 {
                        (x1 & 0xffff_ffff, x2 & 0xffff_ffff)
                    } else {
                        (x1, x2)
                    };
                    assert!(level != 0 || own_vcpu(target, vcpus).is_none());
                }
                psci::CPU_OFF | psci::SYSTEM_OFF | psci::SYSTEM_RESET => {
                    panic!("{fid:#x} answered with a return value")
                }
                _ => {}
            }
        }
    }
    let f = psci::features(x1 as u32);
    assert!(f == psci::SUCCESS || f == psci::NOT_SUPPORTED);
});
