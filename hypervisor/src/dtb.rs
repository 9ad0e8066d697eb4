//! Checks the device tree that firmware passes in x0 against the compiled-in
//! platform description. The TOML is the authority (it was validated and,
//! later, signed); the device tree only confirms we run on the machine the
//! TOML describes. Any disagreement stops the boot before a guest runs.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use septum_core::config::{Conduit, CpuBoot, GicVersion, Platform};

/// Facts learnt from the tree, for the boot log.
#[derive(Debug, Default)]
pub struct Facts {
    pub model: String,
    pub cpus: usize,
    pub size: usize,
}

/// Parses the tree at `addr` and compares it with `plat`.
///
/// # Safety
/// `addr` must be the device tree the firmware handed over (or 0).
pub unsafe fn check(addr: u64, plat: &Platform) -> Result<Facts, Vec<String>> {
    if addr == 0 {
        return Err(alloc::vec![String::from("no device tree was passed in x0")]);
    }
    // SAFETY: per this function's contract; the header is validated by `fdt`.
    let fdt = unsafe { fdt::Fdt::from_ptr(addr as *const u8) }
        .map_err(|e| alloc::vec![format!("device tree at {addr:#x} is invalid: {e:?}")])?;
    let mut errs = Vec::new();
    let facts = Facts {
        model: String::from(fdt.root().model()),
        cpus: fdt.cpus().count(),
        size: fdt.total_size(),
    };
    if facts.cpus < plat.cpus as usize {
        errs.push(format!(
            "the TOML gives {} cores but the machine has {}",
            plat.cpus, facts.cpus
        ));
    }

    // RAM: every configured bank must be real memory.
    let mut mem: Vec<(u64, u64)> = Vec::new();
    for node in fdt.all_nodes().filter(|n| n.name.starts_with("memory")) {
        if let Some(regs) = node.reg() {
            for r in regs {
                mem.push((r.starting_address as u64, r.size.unwrap_or(0) as u64));
            }
        }
    }
    for r in plat.ram {
        let ok = mem
            .iter()
            .any(|&(b, s)| r.start.raw() >= b && r.start.raw() + r.size <= b + s);
        if !ok {
            errs.push(format!(
                "RAM {:#x}+{:#x} from the TOML is not memory in the device tree ({mem:x?})",
                r.start.raw(),
                r.size
            ));
        }
    }

    // GIC.
    let compat: &[&str] = match plat.gic.version {
        GicVersion::V3 => &["arm,gic-v3"],
        GicVersion::V2 => &["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a7-gic"],
    };
    match fdt.find_compatible(compat) {
        None => errs.push(format!(
            "no {compat:?} interrupt controller in the device tree"
        )),
        Some(node) => {
            let regs: Vec<u64> = node
                .reg()
                .map(|r| r.map(|m| m.starting_address as u64).collect())
                .unwrap_or_default();
            let want = match plat.gic.version {
                GicVersion::V3 => [plat.gic.gicd.raw(), plat.gic.gicr.raw()],
                GicVersion::V2 => [plat.gic.gicd.raw(), plat.gic.gicc.raw()],
            };
            if regs.get(..2) != Some(&want[..]) {
                errs.push(format!(
                    "GIC registers in the device tree {regs:#x?} differ from the TOML {want:#x?}"
                ));
            }
        }
    }

    // Console UART.
    let console = plat.console.base.raw();
    let has_uart = fdt.all_nodes().any(|n| {
        n.reg()
            .and_then(|mut r| r.next())
            .is_some_and(|m| m.starting_address as u64 == console)
    });
    if !has_uart {
        errs.push(format!(
            "no device at the console address {console:#x} in the device tree"
        ));
    }

    // Secondary-core bring-up.
    if let CpuBoot::Psci(conduit) = plat.cpu_boot {
        let method = fdt
            .find_node("/psci")
            .and_then(|n| n.property("method"))
            .and_then(|p| p.as_str());
        let want = match conduit {
            Conduit::Smc => "smc",
            Conduit::Hvc => "hvc",
        };
        if method != Some(want) {
            errs.push(format!(
                "the TOML says PSCI over {want}, the device tree says {method:?}"
            ));
        }
    }
    if errs.is_empty() {
        Ok(facts)
    } else {
        Err(errs)
    }
}
