//! Checks the device tree that firmware passes in x0 against the compiled-in
//! platform description. The TOML is the authority (it was validated and,
//! later, signed); the device tree only confirms we run on the machine the
//! TOML describes. Any disagreement stops the boot before a guest runs.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use septum_core::config::{Conduit, CpuBoot, GicVersion, Platform};
use septum_core::fdt;

/// Facts learnt from the tree, for the boot log.
#[derive(Debug, Default)]
pub struct Facts {
    pub model: String,
    pub cpus: usize,
    pub size: usize,
}

/// Size of a flattened device tree header.
const FDT_HEADER: u64 = 40;
const FDT_MAGIC: u32 = 0xd00d_feed;

/// Whether `addr` holds a device tree header: inside the platform's RAM
/// (so reading it cannot fault) and starting with the FDT magic.
pub fn present(addr: u64, plat: &Platform) -> bool {
    let in_ram = plat.ram.iter().any(|r| {
        addr >= r.start.raw()
            && addr
                .checked_add(FDT_HEADER)
                .is_some_and(|end| end <= r.start.raw() + r.size)
    });
    if addr == 0
        || !in_ram
        || !addr.is_multiple_of(4)
        || !crate::arch::aarch64::mmu::covers(addr, FDT_HEADER)
    {
        return false;
    }
    // SAFETY: `addr` is 4-byte aligned RAM in the EL2 identity map (checked
    // above); reading it has no side effects.
    let magic = unsafe { core::ptr::read_volatile(addr as *const u32) };
    u32::from_be(magic) == FDT_MAGIC
}

/// Parses the tree at `addr` and compares it with `plat`.
///
/// # Safety
/// `addr` must hold a device tree header ([`present`]) in RAM that stays
/// unchanged during the call.
pub unsafe fn check(addr: u64, plat: &Platform) -> Result<Facts, Vec<String>> {
    // SAFETY: per this function's contract, the header is readable.
    let header = unsafe { core::slice::from_raw_parts(addr as *const u8, FDT_HEADER as usize) };
    let total = fdt::total_size(header)
        .map_err(|e| alloc::vec![format!("device tree at {addr:#x} is invalid: {e:?}")])?;
    if !plat.ram.iter().any(|r| {
        addr >= r.start.raw()
            && addr
                .checked_add(total as u64)
                .is_some_and(|end| end <= r.start.raw() + r.size)
    }) {
        return Err(alloc::vec![format!(
            "device tree at {addr:#x} ({total} bytes) does not lie in RAM"
        )]);
    }
    // SAFETY: the whole blob lies in RAM (checked above), which the EL2
    // identity map covers; per the contract nothing changes it meanwhile.
    let blob = unsafe { core::slice::from_raw_parts(addr as *const u8, total) };
    let tree = fdt::Fdt::new(blob)
        .map_err(|e| alloc::vec![format!("device tree at {addr:#x} is invalid: {e:?}")])?;
    compare(&tree, plat)
}

/// The checks themselves, on a parsed tree.
fn compare(tree: &fdt::Fdt<'_>, plat: &Platform) -> Result<Facts, Vec<String>> {
    let compat: &[&str] = match plat.gic.version {
        GicVersion::V3 => &["arm,gic-v3"],
        GicVersion::V2 => &["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a7-gic"],
    };
    let console = plat.console.base.raw();
    let s = fdt::survey(tree, compat, console);
    let mut errs = Vec::new();
    let facts = Facts {
        model: String::from(s.model.unwrap_or("?")),
        cpus: s.cpus,
        size: tree.total_size(),
    };
    if facts.cpus < plat.cpus as usize {
        errs.push(format!(
            "the TOML gives {} cores but the machine has {}",
            plat.cpus, facts.cpus
        ));
    }

    // RAM: every configured bank must be real memory.
    let mem = s.memory();
    for r in plat.ram {
        let ok = mem.iter().any(|&(b, size)| {
            r.start.raw() >= b && r.start.raw() + r.size <= b.saturating_add(size)
        });
        if !ok {
            errs.push(format!(
                "RAM {:#x}+{:#x} from the TOML is not memory in the device tree ({mem:x?})",
                r.start.raw(),
                r.size
            ));
        }
    }

    // GIC.
    match s.gic {
        None => errs.push(format!(
            "no {compat:?} interrupt controller in the device tree"
        )),
        Some(regs) => {
            let want = match plat.gic.version {
                GicVersion::V3 => [plat.gic.gicd.raw(), plat.gic.gicr.raw()],
                GicVersion::V2 => [plat.gic.gicd.raw(), plat.gic.gicc.raw()],
            };
            if regs != [Some(want[0]), Some(want[1])] {
                errs.push(format!(
                    "GIC registers in the device tree {regs:x?} differ from the TOML {want:#x?}"
                ));
            }
        }
    }

    // Console UART.
    if !s.device_found {
        errs.push(format!(
            "no device at the console address {console:#x} in the device tree"
        ));
    }

    // Secondary-core bring-up.
    if let CpuBoot::Psci(conduit) = plat.cpu_boot {
        let want = match conduit {
            Conduit::Smc => "smc",
            Conduit::Hvc => "hvc",
        };
        if s.psci_method != Some(want) {
            errs.push(format!(
                "the TOML says PSCI over {want}, the device tree says {:?}",
                s.psci_method
            ));
        }
    }
    if errs.is_empty() {
        Ok(facts)
    } else {
        Err(errs)
    }
}
