//! Applies the virtual GIC's decisions to the physical GIC.
//!
//! The register emulation is in `septum_core::vgic`; it tells us, as a list
//! of effects, what the physical GIC must do for interrupts that are backed
//! by hardware (the partition's SPIs and its timer PPIs).

use septum_core::vgic::lr::state_reg;
use septum_core::vgic::{shadow, v2, Effect, Effects, GICR_SGI_BASE};

use crate::partition::{PartitionRt, GUEST_PPIS};
use crate::{irq, percpu};

fn core_of(p: &PartitionRt, vcpu: usize) -> Option<u64> {
    p.cfg.cores.get(vcpu).map(|&c| c as u64)
}

/// A trapped access at `off` in the partition's GICv3 distributor: a load's
/// value (pending and active bits of hardware interrupts filled in from
/// the GIC), or a store applied (its effects on the physical GIC).
#[inline]
pub fn mmio_dist(
    p: &PartitionRt,
    vcpu: usize,
    off: u64,
    width: u8,
    store: Option<u64>,
) -> Result<u64, &'static str> {
    let mut d = p.vgic.lock();
    if let Some(v) = store {
        let mut fx = Effects::new();
        d.write(off, width, v, &mut fx)
            .map_err(|_| "invalid distributor access")?;
        if shadow::covers(off) {
            p.gicd_shadow.refresh_v3(&mut d);
        }
        drop(d);
        apply(p, &fx);
        if (DIST_IPRIORITYR..DIST_IPRIORITYR + 0x400).contains(&off) {
            let first = (off - DIST_IPRIORITYR) as u32;
            priorities_written(p, vcpu, first..first + u32::from(width));
        }
        return Ok(0);
    }
    let hw = state_reg(off).and_then(|_| d.passthrough_mask(off));
    let v = d
        .read(off, width)
        .map_err(|_| "invalid distributor access")?;
    drop(d);
    Ok(filled(p, vcpu, off, hw, v))
}

/// The same for a GICv2 distributor, whose frame also holds the accessing
/// vCPU's banked SGI and PPI registers and GICD_SGIR.
pub fn mmio_dist_v2(
    p: &PartitionRt,
    vcpu: usize,
    off: u64,
    width: u8,
    store: Option<u64>,
) -> Result<u64, &'static str> {
    // SGI generation first, without the locks or an effects list (the
    // GICv2 counterpart of a trapped ICC_SGI1R_EL1 write).
    if let (Some(v), v2::SGIR) = (store, off) {
        if sgir_write_v2(p, vcpu, width, v).is_ok() {
            return Ok(0);
        }
    }
    let r = p.redists.get(vcpu).ok_or("no such vCPU")?;
    let (mut d, mut r) = (p.vgic.lock(), r.lock());
    if let Some(v) = store {
        let mut fx = Effects::new();
        let sgi = v2::write(&mut d, &mut r, off, width, v, &mut fx)
            .map_err(|_| "invalid distributor access")?;
        if shadow::covers(off) {
            p.gicd_shadow.refresh_v2(&mut d, &mut r);
        }
        drop((d, r));
        apply(p, &fx);
        // The banked word 0 is the writing vCPU's, the rest are SPIs.
        if (DIST_IPRIORITYR..DIST_IPRIORITYR + 0x400).contains(&off) {
            let first = (off - DIST_IPRIORITYR) as u32;
            priorities_written(p, vcpu, first..first + u32::from(width));
        }
        if let Some(sgi) = sgi {
            deliver_sgi(p, sgi.intid, sgi.targets);
        }
        return Ok(0);
    }
    let hw = state_reg(off).and_then(|_| v2::passthrough_mask(&d, &r, off));
    let v = v2::read(&mut d, &mut r, off, width).map_err(|_| "invalid distributor access")?;
    drop((d, r));
    Ok(filled(p, vcpu, off, hw, v))
}

/// A GICD_SGIR write of `width` bytes by vCPU `vcpu`: the SGI it names is
/// delivered; `Err` for a width GICD_SGIR does not take, which the
/// emulation then answers (`v2::write`).
#[inline(always)]
pub fn sgir_write_v2(p: &PartitionRt, vcpu: usize, width: u8, v: u64) -> Result<(), ()> {
    if vcpu >= p.redists.len() {
        return Err(());
    }
    match v2::sgir_write(v2::SGIR, width, v, vcpu, p.redists.len()) {
        Some(Some(sgi)) => deliver_sgi(p, sgi.intid, sgi.targets),
        Some(None) => {}
        None => return Err(()),
    }
    Ok(())
}

/// A trapped access at `off` in vCPU `target`'s redistributor frame.
#[inline]
pub fn mmio_redist(
    p: &PartitionRt,
    target: usize,
    off: u64,
    width: u8,
    store: Option<u64>,
) -> Result<u64, &'static str> {
    let r = p.redists.get(target).ok_or("no such redistributor")?;
    let mut r = r.lock();
    if let Some(v) = store {
        let mut fx = Effects::new();
        r.write(off, width, v, &mut fx)
            .map_err(|_| "invalid redistributor access")?;
        drop(r);
        apply(p, &fx);
        let prio = GICR_SGI_BASE + DIST_IPRIORITYR;
        if (prio..prio + 32).contains(&off) {
            let first = (off - prio) as u32;
            priorities_written(p, target, first..first + u32::from(width));
        }
        return Ok(0);
    }
    let sgi_off = off.saturating_sub(GICR_SGI_BASE);
    let hw = state_reg(sgi_off).and_then(|_| r.passthrough_mask(off));
    let v = r
        .read(off, width)
        .map_err(|_| "invalid redistributor access")?;
    drop(r);
    Ok(filled(p, target, sgi_off, hw, v))
}

/// GICD_IPRIORITYR, also at this offset in a redistributor's SGI_base frame.
const DIST_IPRIORITYR: u64 = 0x400;

fn is_direct(p: &PartitionRt) -> bool {
    p.cfg.interrupts == septum_core::config::InterruptDelivery::Direct
}

/// The partition wrote the priorities of `intids`: those of its hardware
/// interrupts (its SPIs, vCPU `vcpu`'s timer PPIs) follow in the interrupt
/// routes (`irq::set_route_priority`) and, with direct delivery, where the
/// partition takes them itself, at the GIC, below the hypervisor's
/// (`septum_core::vgic::direct::physical_priority`). Bounded: at most the
/// 8 bytes of one access.
fn priorities_written(p: &PartitionRt, vcpu: usize, intids: core::ops::Range<u32>) {
    let Some(core) = core_of(p, vcpu) else { return };
    let gic = irq::gic();
    let direct = is_direct(p);
    for intid in intids {
        let guest = if intid < 32 {
            if !GUEST_PPIS.contains(&intid) {
                continue;
            }
            match p.redists.get(vcpu) {
                Some(r) => r.lock().priority(intid),
                None => continue,
            }
        } else if p.owns_irq(intid) {
            p.vgic.lock().priority(intid)
        } else {
            continue;
        };
        irq::set_route_priority(p, vcpu, intid, guest);
        if direct {
            let prio = septum_core::vgic::direct::physical_priority(guest);
            gic.set_priority(core as usize, intid, prio);
        }
    }
}

/// `v` with the hardware-backed bits `hw` (a passthrough mask, if the
/// register has one) filled in.
fn filled(p: &PartitionRt, vcpu: usize, off: u64, hw: Option<u32>, v: u64) -> u64 {
    match hw {
        Some(mask) => with_hw_state(p, vcpu, off, mask, v),
        None => v,
    }
}

/// Bits of interrupt word 0 whose state is the hardware's: the guest timer
/// PPIs (every other SGI and PPI a guest sees is virtual).
fn guest_ppi_mask() -> u32 {
    GUEST_PPIS.iter().fold(0, |m, &i| m | (1 << i))
}

/// A guest's read of a pending or active register of partition `p`: `off`
/// in the distributor frame, or in SGI_base of vCPU `vcpu`'s redistributor
/// (on a GICv2, the banked word 0 is the reading vCPU's). `emulated` is the
/// emulation's answer, in which the hardware-backed interrupts `mask` (from
/// `passthrough_mask`) read as 0; they are filled in as a native guest
/// would see them (`irq::hw_state`).
#[inline(never)]
pub fn with_hw_state(p: &PartitionRt, vcpu: usize, off: u64, mask: u32, emulated: u64) -> u64 {
    let Some((reg, word)) = state_reg(off) else {
        return emulated;
    };
    let (core, mask) = if word == 0 {
        match core_of(p, vcpu) {
            Some(c) => (c as usize, mask & guest_ppi_mask()),
            None => return emulated,
        }
    } else {
        (percpu::core(), mask)
    };
    emulated | u64::from(irq::hw_state(core, reg, word, mask))
}

/// Applies effects produced by an emulated register write of partition `p`.
/// Effects naming interrupts or vCPUs the partition does not own are
/// dropped here as a second line of defence.
pub fn apply(p: &PartitionRt, fx: &Effects) {
    let gic = irq::gic();
    for e in fx.iter() {
        match *e {
            Effect::EnableSpi { intid, target_vcpu } => {
                if let (true, Some(core)) =
                    (p.owns_irq(intid) && intid >= 32, core_of(p, target_vcpu))
                {
                    gic.enable_spi(intid, core);
                }
            }
            Effect::DisableSpi { intid } if intid >= 32 && p.owns_irq(intid) => {
                gic.disable_spi(intid)
            }
            Effect::RouteSpi { intid, target_vcpu } => {
                if let (true, Some(core)) =
                    (p.owns_irq(intid) && intid >= 32, core_of(p, target_vcpu))
                {
                    gic.route_spi(intid, core);
                }
            }
            Effect::SetSpiConfig { intid, edge } if intid >= 32 && p.owns_irq(intid) => {
                gic.set_spi_edge(intid, edge)
            }
            Effect::SetPending { intid } if intid >= 32 && p.owns_irq(intid) => {
                gic.set_spi_pending(intid, true)
            }
            Effect::ClearPending { intid } if intid >= 32 && p.owns_irq(intid) => {
                gic.set_spi_pending(intid, false)
            }
            Effect::ClearActive { intid } if intid >= 32 && p.owns_irq(intid) => {
                gic.clear_spi_active(intid)
            }
            Effect::EnablePpi { vcpu, intid } if GUEST_PPIS.contains(&intid) => {
                if let Some(core) = core_of(p, vcpu) {
                    gic.set_ppi_enabled(core as usize, intid, true);
                }
            }
            Effect::DisablePpi { vcpu, intid } if GUEST_PPIS.contains(&intid) => {
                if let Some(core) = core_of(p, vcpu) {
                    gic.set_ppi_enabled(core as usize, intid, false);
                }
            }
            Effect::Kick { vcpu } => irq::kick(p, vcpu),
            _ => {}
        }
    }
}

/// A guest's write to ICC_SGI1R_EL1 (or ICC_ASGI1R_EL1): make the SGI
/// pending for each target vCPU of the same partition and kick them.
/// Targets outside the partition do not exist for it and are dropped.
pub fn send_sgi(p: &PartitionRt, sender: usize, value: u64) {
    let t = septum_core::vgic::decode_sgi1r(value, sender, p.redists.len());
    deliver_sgi(p, t.intid, t.targets);
}

/// Makes SGI `intid` pending for each vCPU in `targets` (bit n = vCPU n;
/// vCPUs the partition does not have are ignored) and kicks them.
pub fn deliver_sgi(p: &PartitionRt, intid: u32, targets: u32) {
    // Only the targets' bits are visited (usually one), in ascending order.
    let mut t = targets;
    while t != 0 {
        let vcpu = t.trailing_zeros() as usize;
        t &= t - 1;
        if let Some(r) = p.redists.get(vcpu) {
            if r.lock().set_sgi_pending(intid) {
                irq::kick(p, vcpu);
            }
        }
    }
}

/// Silences every physical interrupt of `p`: its SPIs and its cores' timer PPIs.
pub fn quiesce(p: &PartitionRt) {
    quiesce_devices(p);
    let gic = irq::gic();
    for i in p.cfg.owned_spis() {
        gic.disable_spi(i);
        gic.set_spi_pending(i, false);
        gic.clear_spi_active(i);
    }
    for &c in p.cfg.cores {
        for &i in &GUEST_PPIS {
            gic.set_ppi_enabled(c as usize, i, false);
            gic.set_ppi_pending(c as usize, i, false);
            gic.clear_ppi_active(c as usize, i);
        }
    }
}

/// Returns the partition's virtual GIC to its power-on state.
pub fn reset(p: &PartitionRt) {
    p.vgic.lock().reset();
    for r in p.redists.iter() {
        r.lock().reset();
    }
    refresh_shadow(p);
    irq::reset_routes(p);
}

/// Brings `p.gicd_shadow` up to date with the distributor (after it was
/// built or reset; a guest's write refreshes it in `mmio_dist*`).
pub fn refresh_shadow(p: &PartitionRt) {
    let mut d = p.vgic.lock();
    let v2 = p.gicd.1 == septum_core::emu::Device::GicdV2;
    match p.redists.first() {
        Some(r) if v2 => p.gicd_shadow.refresh_v2(&mut d, &mut r.lock()),
        _ => p.gicd_shadow.refresh_v3(&mut d),
    }
}

/// Silences `p`'s DMA-capable devices before its memory is scrubbed or
/// handed back: a virtio-mmio transport is reset (Status = 0), which makes
/// the device drop its queues and stop writing guest memory. The transport
/// is checked first (magic "virt"), so a misconfigured device is left alone.
fn quiesce_devices(p: &PartitionRt) {
    use septum_core::config::{DeviceKind, Quiesce};
    const MAGIC: usize = 0x000;
    const STATUS: usize = 0x070;
    const VIRT: u32 = 0x7472_6976;
    for d in p.cfg.devices {
        let (Quiesce::VirtioMmio, DeviceKind::Passthrough { pa, size, .. }) = (d.quiesce, d.kind)
        else {
            continue;
        };
        if size < 0x100 || !crate::arch::aarch64::mmu::covers(pa.raw(), size) {
            continue;
        }
        // SAFETY: `pa` is the partition's passthrough virtio-mmio transport,
        // inside a platform MMIO window that the EL2 map covers as device
        // memory (checked); the partition's vCPUs are stopped or stopping,
        // and only this core touches the transport now.
        let regs = unsafe { crate::drivers::mmio::Mmio::new(pa) };
        if regs.read32(MAGIC) == VIRT {
            regs.write32(STATUS, 0);
        }
    }
}
