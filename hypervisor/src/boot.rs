//! Boot: the boot core sets up the machine and the partitions, then starts
//! the other cores; every core ends up running its pinned vCPU or idling.

use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, MIDR_EL1};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use septum_core::config::{Conduit, CpuBoot, Criticality, DeviceKind, Partition};
use septum_core::system::SystemState;
use tock_registers::interfaces::Readable;

use crate::arch::aarch64::{asm, mmu};
use crate::config::CONFIG;
use crate::partition::{self, State};
use crate::{console, heap, irq, measure, percpu, time, vcpu};

const PSCI_CPU_ON_64: u64 = 0xc400_0003;

fn pa_range_bits() -> u8 {
    match ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange) {
        0 => 32,
        1 => 36,
        2 => 40,
        3 => 42,
        4 => 44,
        _ => 48,
    }
}

/// Boot milestones: the counter on the boot core at each (0 until
/// reached). Printed by the console's drainer (a non-critical core), so that
/// the line never delays the critical partition.
#[derive(Clone, Copy)]
enum Mark {
    /// `primary` entered (.bss zeroed, stack set).
    Entry,
    /// EL2 map and console up.
    Mmu,
    /// Device tree checked, GIC and partitions (stage 2) built.
    Partitions,
    /// Manifest and critical images verified.
    Verified,
    /// Critical partitions scrubbed and loaded.
    Loaded,
    /// The boot core enters its (critical) partition and releases the
    /// other cores.
    Enter,
}

const MARKS: usize = 6;
static BOOT_CORE: AtomicUsize = AtomicUsize::new(usize::MAX);
static MARK: [AtomicU64; MARKS] = [const { AtomicU64::new(0) }; MARKS];

fn mark(m: Mark) {
    MARK[m as usize].store(time::ticks(), Ordering::Relaxed);
}

/// The boot timeline, in µs of the counter since reset.
fn print_timeline() {
    let us = |m: Mark| MARK[m as usize].load(Ordering::Relaxed) * 1_000_000 / time::freq();
    log::info!(
        "boot timeline (us since reset): primary {}, EL2 map {}, stage 2 built {}, verified {}, critical loaded {}, first critical instruction {}",
        us(Mark::Entry),
        us(Mark::Mmu),
        us(Mark::Partitions),
        us(Mark::Verified),
        us(Mark::Loaded),
        us(Mark::Enter)
    );
}

pub fn primary(dtb: u64, core: u64) -> ! {
    mark(Mark::Entry);
    // SAFETY: boot core, before any other core runs; then enabling on this core.
    let map = unsafe { mmu::build(&CONFIG.platform) };
    if map.is_ok() {
        // SAFETY: the tables are complete.
        unsafe { mmu::enable() };
    }
    console::init(&CONFIG.platform.console);
    mark(Mark::Mmu);
    let paged = match map {
        Ok(n) => n,
        // The linker script's assertions make this a build bug.
        Err(e) => panic!("cannot build the EL2 map: {e}"),
    };
    #[cfg(feature = "fault-inject")]
    crate::fault_inject::init();
    heap::init();
    log::info!(
        "Septum {} hypervisor, configuration '{}' ({})",
        env!("CARGO_PKG_VERSION"),
        CONFIG.name,
        CONFIG.source
    );
    log::info!(
        "boot core {core} at EL2, MIDR {:#x}, device tree at {dtb:#x}",
        MIDR_EL1.get()
    );
    #[cfg(feature = "fault-inject")]
    crate::fault_inject::announce();
    if !crate::dtb::present(dtb, &CONFIG.platform) {
        // QEMU's raspi4b without -dtb passes an ATAG pointer (0x100), and
        // virt's ELF path passes 0: nothing to compare with. The TOML is
        // the authority either way.
        log::warn!(
            "no device tree at {dtb:#x}; continuing with the compiled-in platform description"
        );
    } else {
        // SAFETY: x0 from firmware, untouched so far, and it holds a tree
        // header inside the RAM the EL2 map covers (checked).
        match unsafe { crate::dtb::check(dtb, &CONFIG.platform) } {
            Ok(f) => log::info!(
                "platform: {} ({} cores, device tree {} bytes) matches the configuration",
                f.model,
                f.cpus,
                f.size
            ),
            Err(errs) => {
                for e in &errs {
                    log::error!("platform check: {e}");
                }
                halt("the configuration does not describe this machine; refusing to boot");
            }
        }
    }
    percpu::set_pa_range_bits(pa_range_bits());
    irq::init_gic(&CONFIG.platform.gic);
    irq::gic().init_distributor();
    if !irq::init_core(CONFIG.platform.gic.maintenance_irq) {
        halt("no GIC redistributor for the boot core");
    }
    log::info!(
        "{}: {} interrupt lines, {} list registers; EL2 MMU and caches on (W^X, stack guard pages; {paged} blocks in 4 KiB pages)",
        irq::gic().name(),
        irq::gic().lines(),
        irq::num_lrs()
    );
    if let Err(e) = partition::build_all(pa_range_bits()) {
        halt_fmt(format_args!("building partitions failed: {e}"));
    }
    irq::init_routes();
    mark(Mark::Partitions);
    // The partition table is printed by the console's drainer once the
    // critical partition runs; only where every core is critical (no one
    // else to print it) does the boot core take the time.
    if drainer_is_critical() {
        print_partition_table();
    }
    verify_before_any_guest();
    crate::system::verified();
    mark(Mark::Verified);
    log::info!(
        "boot heap: {} KiB of {} KiB used; sealed (no allocation after boot)",
        heap::in_use() / 1024,
        heap::size() / 1024
    );
    heap::seal();
    // The critical partitions are loaded before any other core starts:
    // under QEMU's round-robin every core's work takes the same clock, and
    // on a board the other cores would compete for memory bandwidth.
    for p in partition::all() {
        if p.cfg.criticality == Criticality::Critical {
            load_partition(p);
        }
    }
    mark(Mark::Loaded);
    BOOT_CORE.store(core as usize, Ordering::Relaxed);
    start_secondaries();
    run_this_core()
}

/// Set by the boot core just before it enters its partition (or, when it
/// is in no critical partition, once the critical ones are loaded): the other
/// cores wait for it before doing any work of their own, so that nothing
/// they do (loading Linux, the boot log) runs before the critical
/// partition's first instruction (under QEMU's round-robin it would take
/// the boot core's time; on a board, its memory bandwidth).
static BOOT_CORE_DONE: AtomicBool = AtomicBool::new(false);

pub fn secondary(core: u64) -> ! {
    // SAFETY: the boot core built the tables before starting us.
    unsafe { mmu::enable() };
    if !irq::init_core(CONFIG.platform.gic.maintenance_irq) {
        log::error!("core {core}: no GIC redistributor; parking");
        crate::lifecycle::park_current();
    }
    while !BOOT_CORE_DONE.load(Ordering::Acquire) {
        // The safe state (a boot failure on the boot core) sends an event.
        if crate::system::state() == SystemState::Safe {
            crate::system::halt_core();
        }
        asm::wfe();
    }
    run_this_core()
}

/// The core of a partition's vCPU 0 loads that partition (so that a large
/// Linux partition loads in parallel with the already running RTOS) and
/// starts it; other cores wait in the park loop for PSCI CPU_ON.
fn run_this_core() -> ! {
    let core = percpu::core();
    crate::liveness::start();
    let critical =
        partition::of_core(core).is_some_and(|p| p.cfg.criticality == Criticality::Critical);
    if !critical {
        // A boot core outside the critical partitions has nothing more to
        // do for them (they are loaded): their cores may go now, before it
        // loads its own partition.
        mark_entered(core);
    }
    if core == console::drainer() && !drainer_is_critical() {
        print_partition_table();
        print_timeline();
    }
    if let Some(p) = partition::of_core(core) {
        let vcpu = p.vcpu_of_core(core).unwrap_or(0);
        if vcpu == 0 {
            if p.cfg.criticality != Criticality::Critical {
                load_partition(p);
            }
            log::info!(
                "core {core}: entering partition '{}' at {:#x} (counter {})",
                p.name(),
                p.cfg.entry.raw(),
                time::ticks()
            );
            percpu::set_power(core, percpu::Power::On);
            crate::watchdog::start(p);
            mark_entered(core);
            vcpu::enter(p, 0, p.cfg.entry.raw(), p.cfg.boot_arg);
        }
        log::info!(
            "core {core}: vCPU {vcpu} of '{}' waits for PSCI CPU_ON",
            p.name()
        );
    } else {
        log::info!("core {core}: in no partition; idle");
    }
    mark_entered(core);
    crate::lifecycle::park_current()
}

fn drainer_is_critical() -> bool {
    partition::of_core(console::drainer())
        .is_some_and(|p| p.cfg.criticality == Criticality::Critical)
}

/// On the boot core, once: the last step before its guest (or, outside
/// the critical partitions, before its own work), which releases the
/// other cores.
fn mark_entered(core: usize) {
    if core == BOOT_CORE.load(Ordering::Relaxed) && !BOOT_CORE_DONE.load(Ordering::Relaxed) {
        mark(Mark::Enter);
        BOOT_CORE_DONE.store(true, Ordering::Release);
        asm::sev();
    }
}

/// Measured boot, the part that must finish before any guest runs: the
/// manifest and every critical partition. A failure here enters the safe
/// state with no guest started. Other partitions are measured by their own
/// boot core just before loading (`load_partition`), so that a large Linux
/// image does not delay the critical partition's start.
fn verify_before_any_guest() {
    measure::init();
    if let Err(v) = measure::verify_manifest() {
        for p in partition::all() {
            // Logged as not measured: nothing in the manifest can be trusted.
            let _ = measure::measure_partition(p);
        }
        crate::lifecycle::safe_state_boot(format_args!(
            "the boot manifest failed verification ({})",
            v.as_str()
        ));
    }
    for p in partition::all() {
        if p.cfg.criticality != Criticality::Critical {
            continue;
        }
        if let Err(f) = measure::measure_partition(p) {
            crate::lifecycle::safe_state_boot(format_args!(
                "critical partition '{}' failed verification: image '{}': {}",
                p.name(),
                f.item,
                f.verdict.as_str()
            ));
        }
    }
}

fn load_partition(p: &'static partition::PartitionRt) {
    if p.cfg.criticality != Criticality::Critical {
        measure::report_sha256_cost();
        if let Err(f) = measure::measure_partition(p) {
            p.set_state(State::Failed);
            log::error!(
                "partition '{}' failed verification (image '{}': {}); it is not started",
                p.name(),
                f.item,
                f.verdict.as_str()
            );
            crate::lifecycle::park_current();
        }
    }
    let t = time::ticks();
    match partition::load_images(p) {
        Ok(bytes) => {
            measure::publish_to_dtb(p);
            p.set_state(State::Running);
            log::info!(
                "partition '{}': {bytes} bytes of images loaded in {} us",
                p.name(),
                (time::ticks() - t) * 1_000_000 / time::freq()
            );
        }
        Err(e) => {
            p.set_state(State::Failed);
            log::error!("partition '{}' will not run: {e}", p.name());
            if p.cfg.criticality == Criticality::Critical {
                crate::lifecycle::safe_state(p, format_args!("its images could not be loaded"));
            }
            crate::lifecycle::park_current();
        }
    }
}

fn start_secondaries() {
    let entry = asm::secondary_entry as *const () as u64;
    for core in 1..CONFIG.platform.cpus as u64 {
        match CONFIG.platform.cpu_boot {
            CpuBoot::Psci(conduit) => {
                let r =
                    asm::firmware_call(conduit == Conduit::Hvc, PSCI_CPU_ON_64, core, entry, core);
                if r != 0 {
                    log::error!("PSCI CPU_ON for core {core} failed: {}", r as i64);
                }
            }
            CpuBoot::SpinTable { release } => {
                let Some(slot) = release.get(core as usize - 1) else {
                    continue;
                };
                // SAFETY: the spin-table slot is firmware memory the
                // secondary polls; RAM, in our identity map.
                unsafe { core::ptr::write_volatile(slot.raw() as *mut u64, entry) };
                asm::dcache_clean_inval_range(slot.raw(), 8);
                asm::sev();
            }
        }
    }
}

fn print_partition_table() {
    log::info!(
        "partition table ({} partitions, {} cores):",
        CONFIG.partitions.len(),
        CONFIG.platform.cpus
    );
    for p in CONFIG.partitions {
        print_partition(p);
    }
    let idle = || {
        (0..CONFIG.platform.cpus).filter(|c| !CONFIG.partitions.iter().any(|p| p.cores.contains(c)))
    };
    if idle().next().is_some() {
        log::info!("  cores in no partition (idle): {}", List(idle));
    }
    log::info!(
        "  hypervisor: PA {:#x}..{:#x} (never mapped into a partition)",
        CONFIG.platform.hypervisor.start.raw(),
        CONFIG.platform.hypervisor.start.raw() + CONFIG.platform.hypervisor.size
    );
    let l = septum_core::system::Liveness::at(time::freq());
    log::info!(
        "  safe state: {}; every core watched by another (silent {} ms = hung, detected within {} ms)",
        CONFIG.platform.safe_state,
        l.timeout * 1000 / time::freq(),
        l.bound() * 1000 / time::freq()
    );
    log::info!("  {}", console::describe());
}

/// `[a, b, c]` of what the closure's iterator yields, without allocating
/// (the table is printed after the heap is sealed).
struct List<F>(F);

impl<F, I> core::fmt::Display for List<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: core::fmt::Display,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("[")?;
        for (i, x) in (self.0)().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{x}")?;
        }
        f.write_str("]")
    }
}

fn print_partition(p: &Partition) {
    let crit = if p.criticality == Criticality::Critical {
        "critical"
    } else {
        "non-critical"
    };
    log::info!(
        "  [{}] '{}' {crit}, VMID {}, cores {:?}, entry {:#x}",
        p.id,
        p.name,
        p.vmid,
        p.cores,
        p.entry.raw()
    );
    for m in p.memory {
        let perm = |b: bool, c: char| if b { c } else { '-' };
        log::info!(
            "      memory  {:<10} IPA {:#011x}..{:#011x} -> PA {:#011x} {}{}{} {} KiB{}",
            m.name,
            m.ipa.raw(),
            m.ipa.raw() + m.size,
            m.pa.raw(),
            perm(m.perms.read, 'r'),
            perm(m.perms.write, 'w'),
            perm(m.perms.exec, 'x'),
            m.size / 1024,
            if m.shared { " (shared)" } else { "" }
        );
    }
    for d in p.devices {
        match d.kind {
            DeviceKind::Passthrough { pa, ipa, size, dma } => log::info!(
                "      device  {:<10} IPA {:#011x} -> PA {:#011x} {} KiB{} irqs {:?}",
                d.name,
                ipa.raw(),
                pa.raw(),
                size / 1024,
                if dma { " DMA" } else { "" },
                d.irqs
            ),
            DeviceKind::VirtualUart { ipa } => {
                log::info!(
                    "      device  {:<10} IPA {:#011x} emulated PL011 -> console",
                    d.name,
                    ipa.raw()
                )
            }
        }
    }
    log::info!(
        "      irqs    timer PPIs {:?}, SPIs {}; GIC distributor and {} redistributor(s) emulated",
        partition::GUEST_PPIS,
        List(|| p.owned_spis()),
        p.cores.len()
    );
    for c in p.channels {
        log::info!(
            "      channel {:<10} IPA {:#011x} -> PA {:#011x} {} {} {} KiB, non-cacheable",
            c.name,
            c.ipa.raw(),
            c.pa.raw(),
            c.perms(),
            c.role.name(),
            c.size / 1024
        );
        if let Some(d) = c.doorbell {
            match c.incoming_doorbell() {
                Some(_) => log::info!(
                    "              doorbell SPI {} from an emulated PL061 at IPA {:#x}",
                    d.irq,
                    d.ipa.raw()
                ),
                None => log::info!(
                    "              doorbell rings SPI {}, at most {} at once and {} a second",
                    d.irq,
                    d.burst,
                    d.per_second
                ),
            }
        }
    }
    for i in p.images {
        log::info!(
            "      image   {:<10} {} bytes at IPA {:#x}",
            i.name,
            i.data.len(),
            i.load.raw()
        );
    }
    let f = &p.fault_policy;
    log::info!(
        "      policy  access-violation={:?} illegal-instruction={:?} system-reset={:?} system-off={:?} watchdog={:?} restarts={}/{}ms",
        f.access_violation,
        f.illegal_instruction,
        f.system_reset,
        f.system_off,
        f.watchdog,
        f.max_restarts,
        f.restart_window_ms
    );
    match &p.watchdog {
        Some(w) => log::info!("      watchdog {w}"),
        None => log::info!("      watchdog none"),
    }
    if p.interrupts == septum_core::config::InterruptDelivery::Direct {
        // Decided per core in irq::init_core; without Group 0 for the
        // hypervisor the partition gets virtual delivery instead.
        match crate::irq::gic().has_group0() {
            true => {
                log::info!("      irqs    direct (taken at EL1; the hypervisor keeps Group 0)")
            }
            false => log::warn!(
                "      irqs    direct unavailable (the GIC has two security states: Group 0 is Secure); virtual delivery"
            ),
        }
    }
}

pub fn halt(msg: &str) -> ! {
    halt_fmt(format_args!("{msg}"))
}

pub fn halt_fmt(args: core::fmt::Arguments<'_>) -> ! {
    console::emergency(format_args!("[septum] BOOT HALTED: {args}\n"));
    loop {
        asm::wfi();
    }
}
