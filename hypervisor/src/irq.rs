//! Physical interrupts: taken at EL2, then either handled by the hypervisor
//! (its IPIs, the maintenance interrupt) or injected into the vCPU running
//! on this core through a list register with the HW bit, so that the
//! guest's own EOI deactivates the physical interrupt.

use core::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

use septum_core::config::MAX_CPUS;
use septum_core::vgic::lr::{hw_state_view, Irq, LrManager, StateReg};
use spin::mutex::SpinMutex as Mutex;
use spin::Once;
use tock_registers::interfaces::Readable;

use crate::drivers::gic::{Ack, FastIrq, Gic, ICH_HCR_NPIE, SPURIOUS};
use crate::percpu;

static GIC: Once<Gic> = Once::new();
static NUM_LRS: AtomicUsize = AtomicUsize::new(0);
/// One bit per implemented list register.
static LR_MASK: AtomicU64 = AtomicU64::new(1);

/// Per core, for each interrupt ID: the guest priority of a hardware
/// interrupt the core's partition owns, plus one (guest priorities keep
/// their low three bits clear); 0 for the hypervisor's own and for nobody's.
/// Cores are never shared, so the table is filled once at boot
/// ([`init_routes`]) and follows the partition's priority writes
/// ([`set_route_priority`]) and resets: the interrupt path reads one byte
/// instead of finding the running partition, its ownership of the interrupt
/// and the priority behind a lock.
static ROUTE: [[AtomicU8; 1024]; MAX_CPUS] =
    [const { [const { AtomicU8::new(0) }; 1024] }; MAX_CPUS];

fn route_slot(core: usize, intid: u32) -> Option<&'static AtomicU8> {
    ROUTE.get(core)?.get(intid as usize)
}

/// Marks every hardware interrupt of every partition (its vCPUs' timer
/// PPIs, its SPIs) as routed to its cores, at guest priority 0 (the vGIC's
/// reset value). Runs on the boot core before any guest.
pub fn init_routes() {
    for p in crate::partition::all() {
        reset_routes(p);
    }
}

/// `p`'s routes back to guest priority 0 (its vGIC was reset).
pub fn reset_routes(p: &crate::partition::PartitionRt) {
    for &c in p.cfg.cores {
        let core = c as usize;
        let ids = crate::partition::GUEST_PPIS
            .iter()
            .copied()
            .chain(p.cfg.owned_spis());
        for intid in ids {
            if let Some(slot) = route_slot(core, intid) {
                slot.store(1, Ordering::Relaxed);
            }
        }
    }
}

/// The partition wrote the priority of `intid` (an SGI/PPI of vCPU `vcpu`
/// below 32, an SPI above): its routes follow, if it is one of its hardware
/// interrupts.
pub fn set_route_priority(p: &crate::partition::PartitionRt, vcpu: usize, intid: u32, prio: u8) {
    let cores: &[u8] = if intid < 32 {
        match p.cfg.cores.get(vcpu) {
            Some(c) => core::slice::from_ref(c),
            None => return,
        }
    } else {
        p.cfg.cores
    };
    for &c in cores {
        if let Some(slot) = route_slot(c as usize, intid) {
            if slot.load(Ordering::Relaxed) != 0 {
                slot.store(
                    (prio & septum_core::vgic::PRIORITY_MASK) | 1,
                    Ordering::Relaxed,
                );
            }
        }
    }
}

/// Hypervisor SGIs (guests never see physical SGIs: theirs are virtual).
/// Stop the vCPU on the target core and park it.
pub const SGI_STOP: u32 = 0;
/// A parked core has a request in its mailbox (PSCI CPU_ON, restart).
pub const SGI_WAKE: u32 = 1;
/// The target vCPU has new virtual SGIs pending.
pub const SGI_KICK: u32 = 2;

/// Interrupts waiting for a free list register, per core (bounded, ordered
/// by priority, coalesced; see `septum_core::vgic::lr`).
static LRS: [Mutex<LrManager<64>>; MAX_CPUS] = [const { Mutex::new(LrManager::new()) }; MAX_CPUS];

pub fn init_gic(cfg: &septum_core::config::Gic) {
    GIC.call_once(|| {
        // SAFETY: the configuration (checked against the firmware's device
        // tree at boot) describes this machine's GIC.
        unsafe { Gic::new(cfg) }
    });
}

pub fn gic() -> &'static Gic {
    GIC.get().expect("GIC used before init")
}

/// Per-core GIC setup; returns false if the core's redistributor is missing.
/// On a core whose partition has direct delivery, the hypervisor's own
/// interrupts (its SGIs, the EL2 timer, the maintenance interrupt) become
/// Group 0, taken as FIQ ([`handle_fiq`]).
pub fn init_core(maint: u32) -> bool {
    let m = aarch64_cpu::registers::MPIDR_EL1.get();
    // Aff3:Aff2:Aff1:Aff0 as GICR_TYPER packs them.
    let aff = ((m >> 8) & 0xff00_0000) | (m & 0xff_ffff);
    let core = percpu::core();
    let direct = septum_core::vgic::direct::is_direct_core(&crate::config::CONFIG, core)
        && gic().has_group0();
    let hyp_ppis = (1 << maint) | (1 << crate::watchdog::HYP_TIMER_INTID);
    let ok = gic().init_core(core, aff, maint, direct.then_some(hyp_ppis));
    // The EL2 timer carries the partition watchdogs (watchdog.rs).
    gic().set_ppi_enabled(core, crate::watchdog::HYP_TIMER_INTID, true);
    gic().init_cpu_interface(direct);
    NUM_LRS.store(gic().num_lrs(), Ordering::Relaxed);
    LR_MASK.store((1 << num_lrs()) - 1, Ordering::Relaxed);
    ok
}

/// Handles one physical FIQ taken while a guest ran on this core: a Group 0
/// interrupt, which only a core with direct delivery has (the hypervisor's
/// own there; its partition's interrupts never reach EL2). EOImode is 0 on
/// such a core, so the EOI also deactivates.
pub fn handle_fiq() {
    let gic = gic();
    let intid = gic.ack0();
    if intid >= SPURIOUS - 3 {
        return;
    }
    gic.eoi0(intid);
    if intid < 16 {
        handle_sgi(intid);
    } else if intid == crate::watchdog::HYP_TIMER_INTID {
        crate::watchdog::on_timer();
    }
    // The maintenance interrupt needs nothing: a direct core uses no list
    // registers.
}

/// For a core at EL2 with its vCPU off (parked, halted): acknowledges and
/// ends whatever interrupt woke it, of either group, and returns its ID. A
/// direct core's leftover partition interrupts (Group 1) are dropped the
/// same way.
pub fn take_at_el2() -> Option<u32> {
    let g = gic();
    if g.is_direct(percpu::core()) {
        let intid = g.ack0();
        if intid < 1020 {
            g.eoi0(intid);
            return Some(intid);
        }
        // EOImode 0: the EOI also deactivates.
        let a = g.ack();
        if a.intid() < 1020 {
            g.eoi(a);
            return Some(a.intid());
        }
        return None;
    }
    let a = g.ack();
    (a.intid() < 1020).then(|| {
        g.eoi(a);
        g.deactivate(a);
        a.intid()
    })
}

pub fn num_lrs() -> usize {
    NUM_LRS.load(Ordering::Relaxed).clamp(1, 16)
}

const LR_HW: u64 = 1 << 61;

/// Handles one physical IRQ taken while a guest ran on this core. The hot
/// case, one of the partition's own hardware interrupts into a free list
/// register, is a table lookup and three GIC accesses.
pub fn handle() {
    // SAFETY: `init_gic` ran on the boot core before any guest started,
    // and this runs only on an interrupt taken from a guest.
    let gic = unsafe { GIC.get_unchecked() };
    match gic {
        Gic::V3(g) => handle_on(gic, g),
        Gic::V2(g) => handle_on(gic, g),
    }
}

#[inline(always)]
fn handle_on<G: FastIrq>(gic: &Gic, g: &G) {
    let a = g.ack();
    let intid = a.intid();
    // The hypervisor's SGIs first: a virtual SGI's round trip takes two.
    if intid < 16 {
        g.eoi(a);
        g.deactivate(a);
        handle_sgi(intid);
        return;
    }
    let core = percpu::core();
    if let Some(e) = route_slot(core, intid).map(|s| s.load(Ordering::Relaxed)) {
        if e != 0 {
            inject_hw(gic, g, core, intid, e & !1);
            // Priority drop only: the guest's EOI deactivates it (HW bit).
            g.eoi(a);
            return;
        }
    }
    handle_own(gic, a);
}

/// Everything but a partition's hardware interrupt and the hypervisor's
/// SGIs: the EL2 timer, the maintenance interrupt, spurious IDs, and
/// interrupts nobody owns (dropped, so they cannot block the CPU interface).
#[inline(never)]
fn handle_own(gic: &Gic, a: Ack) {
    let intid = a.intid();
    if intid >= SPURIOUS - 3 {
        return;
    }
    gic.eoi(a);
    gic.deactivate(a);
    if intid == crate::watchdog::HYP_TIMER_INTID {
        crate::watchdog::on_timer();
    } else if intid == crate::config::CONFIG.platform.gic.maintenance_irq {
        refill();
    }
}

/// Puts `intid` into a free list register, or queues it for the
/// maintenance interrupt when all are busy. Nothing is queued exactly when
/// the underflow interrupt is off (ICH_HCR_EL2.NPIE, kept by `set_npie`
/// with the queue), so the common case needs neither the queue nor its lock.
#[inline(always)]
fn inject_hw<G: FastIrq>(gic: &Gic, g: &G, core: usize, intid: u32, prio: u8) {
    if !g.npie(core) {
        let free = g.free_lrs(LR_MASK.load(Ordering::Relaxed));
        if free != 0 {
            let i = free.trailing_zeros() as usize;
            g.write_hw_pending_lr(i, intid, prio);
            return;
        }
    }
    inject_hw_queued(gic, core, intid, prio);
}

#[cold]
#[inline(never)]
fn inject_hw_queued(g: &Gic, core: usize, intid: u32, prio: u8) {
    let Some(mgr) = LRS.get(core) else {
        return;
    };
    let mut mgr = mgr.lock();
    let n = num_lrs();
    let mut lrs = read_lrs(g, n);
    let before = lrs;
    let irq = Irq {
        vintid: intid,
        pintid: Some(intid),
        priority: prio,
    };
    if let Err(e) = mgr.inject(&mut lrs[..n], irq) {
        // Queue full or a routing conflict (neither can happen with one
        // entry per interrupt ID and one source per ID, but never lose a
        // hardware interrupt silently): drop it at the GIC.
        log::warn!("core {}: interrupt {intid} dropped ({e:?})", percpu::core());
        g.deactivate(Ack::of(intid));
    }
    write_changed(g, &before[..n], &lrs[..n]);
    set_npie(g, mgr.has_queued());
}

/// This core's first `n` list registers (the rest of the array 0).
fn read_lrs(g: &Gic, n: usize) -> [u64; 16] {
    let mut lrs = [0u64; 16];
    for (i, lr) in lrs.iter_mut().enumerate().take(n) {
        *lr = g.read_lr(i);
    }
    lrs
}

fn write_changed(g: &Gic, before: &[u64], after: &[u64]) {
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        if b != a {
            g.write_lr(i, *a);
        }
    }
}

fn set_npie(g: &Gic, on: bool) {
    let hcr = g.hcr();
    let new = if on {
        hcr | ICH_HCR_NPIE
    } else {
        hcr & !ICH_HCR_NPIE
    };
    if new != hcr {
        g.set_hcr(new);
    }
}

/// Moves queued interrupts into list registers that have become free.
fn refill() {
    let Some(mgr) = LRS.get(percpu::core()) else {
        return;
    };
    let g = gic();
    let mut mgr = mgr.lock();
    let n = num_lrs();
    let mut lrs = read_lrs(g, n);
    let before = lrs;
    mgr.refill(&mut lrs[..n]);
    write_changed(g, &before[..n], &lrs[..n]);
    set_npie(g, mgr.has_queued());
}

fn handle_sgi(sgi: u32) {
    match sgi {
        SGI_STOP => crate::lifecycle::park_current(),
        SGI_KICK => inject_pending_sgis(),
        // SGI_WAKE only matters to a parked core; a running one ignores it.
        _ => {}
    }
}

/// Injects a purely virtual interrupt (an SGI) into this core's vCPU.
fn inject_virtual(intid: u32, prio: u8) {
    let gic = gic();
    match gic {
        Gic::V3(g) => inject_virtual_on(gic, g, intid, prio),
        Gic::V2(g) => inject_virtual_on(gic, g, intid, prio),
    }
}

#[inline(always)]
fn inject_virtual_on<G: FastIrq>(gic: &Gic, g: &G, intid: u32, prio: u8) {
    let Some(mgr) = LRS.get(percpu::core()) else {
        return;
    };
    let mut mgr = mgr.lock();
    // Fast path: nothing queued and every list register empty, so the SGI
    // cannot be pending in one already (which the manager would coalesce).
    let all = LR_MASK.load(Ordering::Relaxed);
    if !mgr.has_queued() && g.free_lrs(all) == all {
        g.write_virtual_pending_lr(0, intid, prio);
        return;
    }
    inject_through_manager(gic, &mut mgr, num_lrs(), intid, prio);
}

/// `inject_virtual` when a list register is in use or something is queued:
/// the manager decides. Out of line, so that the common case above (and
/// its caller) saves few registers and no LR snapshot.
#[inline(never)]
fn inject_through_manager(g: &Gic, mgr: &mut LrManager<64>, n: usize, intid: u32, prio: u8) {
    let mut lrs = read_lrs(g, n);
    let before = lrs;
    let irq = Irq {
        vintid: intid,
        pintid: None,
        priority: prio,
    };
    if let Err(e) = mgr.inject(&mut lrs[..n], irq) {
        log::warn!(
            "core {}: virtual SGI {intid} dropped ({e:?})",
            percpu::core()
        );
    }
    write_changed(g, &before[..n], &lrs[..n]);
    set_npie(g, mgr.has_queued());
}

/// Moves every pending, enabled virtual SGI of this core's vCPU into the
/// list registers (or their queue).
pub fn inject_pending_sgis() {
    let Some((p, vcpu)) = percpu::running() else {
        return;
    };
    let Some(r) = p.redists.get(vcpu) else { return };
    // The distributor's enable from its shadow, so that only this vCPU's
    // redistributor is locked (an enabling write kicks the vCPUs after it
    // refreshed the shadow).
    if !p.gicd_shadow.group1_enabled() {
        return;
    }
    // Bounded: at most 16 SGIs can be pending. Whether another one waits is
    // read under the same hold of the lock (usually none does: one SGI per
    // kick), so the last round does not take it again.
    for _ in 0..16 {
        let Some((b, more)) = r.lock().take_best_pending() else {
            break;
        };
        inject_virtual(b.intid, b.priority);
        if !more {
            break;
        }
    }
}

/// Tells vCPU `vcpu` of `p` that it has new virtual SGIs: directly if it
/// runs here, by a hypervisor SGI if it runs on another core, not at all if
/// it is off (they are injected when it starts). Out of line: inlined into
/// the delivery loop, its constants would be hoisted into callee-saved
/// registers that every SGI then saves and restores.
#[inline(never)]
pub fn kick(p: &crate::partition::PartitionRt, vcpu: usize) {
    let Some(&core) = p.cfg.cores.get(vcpu) else {
        return;
    };
    let core = core as usize;
    if core == percpu::core() {
        inject_pending_sgis();
    } else if percpu::power(core) == percpu::Power::On {
        gic().send_sgi(core as u64, SGI_KICK);
    }
}

/// Drops everything queued for this core (its vCPU is stopping).
pub fn flush_core() {
    let g = gic();
    if let Gic::V2(_) = g {
        // A GICv2's PPI registers are banked: only this core reaches its
        // timer PPIs, so they are silenced here rather than by the core
        // that stops the partition (`vgic::quiesce`).
        let core = percpu::core();
        for &i in &crate::partition::GUEST_PPIS {
            g.set_ppi_enabled(core, i, false);
            g.set_ppi_pending(core, i, false);
            g.clear_ppi_active(core, i);
        }
    }
    if let Some(mgr) = LRS.get(percpu::core()) {
        let mut mgr = mgr.lock();
        for q in mgr.queue() {
            if let Some(p) = q.pintid {
                g.deactivate(Ack::of(p));
            }
        }
        mgr.clear();
    }
    // Direct delivery: the partition's interrupts stop reaching the core.
    if g.is_direct(percpu::core()) {
        g.park_direct_interface();
    }
    // A hardware-linked interrupt still in a list register is active at the
    // physical GIC: deactivate it, or it would never fire again.
    for i in 0..num_lrs() {
        let lr = g.read_lr(i);
        if lr >> 62 != 0 && lr & LR_HW != 0 {
            g.deactivate(Ack::of(((lr >> 32) & 0x1fff) as u32));
        }
        g.write_lr(i, 0);
    }
    g.set_hcr(0);
}

/// What a guest reads from a pending or active register (`reg`) for the
/// hardware-backed interrupts `mask` of word `word`: the physical GIC's
/// state (word 0: core `core`'s PPIs) combined with the guest's copies in
/// this core's list registers and queue, when the word is this core's
/// (`septum_core::vgic::lr::hw_state_view`). 0 where the GIC's state
/// cannot be read from here (another core's PPIs on a GICv2).
pub fn hw_state(core: usize, reg: StateReg, word: u32, mask: u32) -> u32 {
    if mask == 0 {
        return 0;
    }
    let g = gic();
    let Some((pending, active)) = g.state_word(core, word) else {
        return 0;
    };
    let mut lrs = [0u64; 16];
    let mut queued = [0u32; 64];
    let (mut nl, mut nq) = (0, 0);
    if core == percpu::core() || word > 0 {
        nl = num_lrs();
        lrs = read_lrs(g, nl);
        if let Some(m) = LRS.get(percpu::core()) {
            for (slot, q) in queued.iter_mut().zip(m.lock().queue()) {
                *slot = q.vintid;
                nq += 1;
            }
        }
    }
    hw_state_view(reg, word, mask, pending, active, &lrs[..nl], &queued[..nq])
}
