//! The facts `septum_rtos::platform::select` decides on: the GIC field of
//! ID_AA64PFR0_EL1, whether a hypervisor started us, and the device tree
//! the boot argument x0 may point to.

use septum_rtos::fdt::{self, Gicv2Frames};
use septum_rtos::platform::{self, Platform, PlatformError};

use super::cpu;

/// Runs before the console is chosen, so it prints nothing.
pub fn detect(under_hypervisor: bool, x0: u64) -> Result<Platform, PlatformError> {
    let sysregs = platform::has_gic_system_registers(cpu::id_aa64pfr0());
    platform::select(sysregs, under_hypervisor, || device_tree_gicv2(x0))
}

/// The GICv2 named by the device tree at `x0`, if x0 is one.
///
/// By the arm64 boot protocol a non-zero x0 is the address of a device
/// tree in RAM; QEMU passes one, Septum passes the partition's `boot-arg`
/// (0 unless the configuration provides a tree). Only addresses inside the
/// boot map's RAM window are read, and only after the header's magic
/// matched; the blob's contents are then checked by `fdt`.
fn device_tree_gicv2(x0: u64) -> Option<Gicv2Frames> {
    if !platform::dtb_header_readable(x0) {
        return None;
    }
    // SAFETY: x0 is 8-byte aligned and [x0, x0 + HEADER_LEN) lies in the
    // Normal-memory RAM window of the identity map; the loader placed the
    // tree outside this image (whose .bss and stacks are the only memory
    // written so far), so nothing writes it while this borrow lives.
    let header = unsafe { core::slice::from_raw_parts(x0 as *const u8, fdt::HEADER_LEN) };
    let total = fdt::total_size(header)?;
    if !platform::dtb_readable(x0, total) {
        return None;
    }
    // SAFETY: as above, for the whole blob, whose size the header gave and
    // which `dtb_readable` kept inside the RAM window.
    let blob = unsafe { core::slice::from_raw_parts(x0 as *const u8, total) };
    fdt::find_gicv2(blob)
}
