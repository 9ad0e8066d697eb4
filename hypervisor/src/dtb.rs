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

    // Every node's register addresses as the CPU sees them: on the Pi the
    // devices sit under /soc, whose `ranges` maps bus addresses
    // (0x7e20_1000 for the PL011) to CPU addresses (0xfe20_1000).
    let mut devices = Vec::new();
    if let Some(root) = fdt.find_node("/") {
        collect(root, &mut Vec::new(), &mut devices, 0);
    }

    // GIC.
    let compat: &[&str] = match plat.gic.version {
        GicVersion::V3 => &["arm,gic-v3"],
        GicVersion::V2 => &["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a7-gic"],
    };
    let gic = devices.iter().find(|(node, _)| {
        node.compatible()
            .is_some_and(|c| c.all().any(|s| compat.contains(&s)))
    });
    match gic {
        None => errs.push(format!(
            "no {compat:?} interrupt controller in the device tree"
        )),
        Some((_, regs)) => {
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
    let has_uart = devices
        .iter()
        .any(|(_, regs)| regs.first() == Some(&console));
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

/// A bus node's `ranges`: None = absent (its children's addresses do not
/// reach the CPU), empty = identity, else (child, parent, length) triples.
type Ranges = Option<Vec<(u64, u64, u64)>>;

/// Deepest nesting walked: real trees are a few levels deep.
const MAX_DEPTH: usize = 16;

/// Reads `cells` (1 or 2; more keeps the low 64 bits) big-endian cells.
fn cells(b: &[u8], cells: usize) -> Option<(u64, &[u8])> {
    let (head, rest) = b.split_at_checked(cells * 4)?;
    let v = head.chunks_exact(4).fold(0u64, |v, c| {
        (v << 32) | u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    });
    Some((v, rest))
}

fn ranges_of(node: fdt::node::FdtNode<'_, '_>, parent_addr_cells: usize) -> Ranges {
    let prop = node.property("ranges")?;
    let own = node.cell_sizes();
    let mut out = Vec::new();
    let mut b = prop.value;
    while !b.is_empty() {
        let (child, r) = cells(b, own.address_cells)?;
        let (parent, r) = cells(r, parent_addr_cells)?;
        let (len, r) = cells(r, own.size_cells)?;
        out.push((child, parent, len));
        b = r;
    }
    Some(out)
}

/// Translates a bus address up through `chain` (innermost bus last).
fn translate(mut addr: u64, chain: &[Ranges]) -> Option<u64> {
    for ranges in chain.iter().rev() {
        let ranges = ranges.as_ref()?;
        if ranges.is_empty() {
            continue;
        }
        let &(c, p, _) = ranges
            .iter()
            .find(|&&(c, _, l)| addr >= c && addr - c < l)?;
        addr = p + (addr - c);
    }
    Some(addr)
}

/// Every node below `node` with its `reg` start addresses in CPU terms.
fn collect<'b, 'a>(
    node: fdt::node::FdtNode<'b, 'a>,
    chain: &mut Vec<Ranges>,
    out: &mut Vec<(fdt::node::FdtNode<'b, 'a>, Vec<u64>)>,
    depth: usize,
) {
    if depth >= MAX_DEPTH {
        return;
    }
    let addr_cells = node.cell_sizes().address_cells;
    for child in node.children() {
        let regs = child
            .reg()
            .map(|r| {
                r.filter_map(|m| translate(m.starting_address as u64, chain))
                    .collect()
            })
            .unwrap_or_default();
        out.push((child, regs));
        chain.push(ranges_of(child, addr_cells));
        collect(child, chain, out, depth + 1);
        chain.pop();
    }
}
