//! Partitions at run time: their stage-2 tables, virtual devices and state.
//!
//! Everything here is allocated by the boot core before any guest runs; the
//! exit paths only lock and mutate what exists.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, Ordering};

use septum_core::addr::{GuestPhysAddr, GuestRange, PhysAddr};
use septum_core::config::{DeviceKind, GicVersion, Partition, Perms};
use septum_core::emu::{Device, EmuTable};
use septum_core::fault::RestartBudget;
use septum_core::pgtable::{MapAttrs, MemType, PageTable, Regime, TableArena};
use septum_core::vgic::shadow::DistShadow;
use septum_core::vgic::{VgicDist, VgicRedist};
use septum_core::vuart::VUart;
use spin::mutex::SpinMutex as Mutex;
use spin::Once;

use crate::arch::aarch64::asm;
use crate::config::CONFIG;
use crate::guest_mem::{self, GuestMemError};
use septum_core::hypercall::Need;

/// Lifecycle of a partition.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Loading = 0,
    Running = 1,
    Stopped = 2,
    /// Never ran: its images failed verification, or it has no cores.
    Failed = 3,
}

/// Size of the emulated GIC distributor frame.
pub const GICD_SIZE: u64 = 0x1_0000;

/// A partition's run-time state.
pub struct PartitionRt {
    pub cfg: &'static Partition,
    state: AtomicU8,
    /// VTTBR_EL2 value (VMID and stage-2 root).
    pub vttbr: u64,
    pub vgic: Mutex<VgicDist>,
    /// The distributor's entry of `emulated` (where the guest sees it, and
    /// its kind), so that the MMIO path finds it with one compare before the
    /// table search.
    pub gicd: (GuestRange, Device),
    /// The distributor's first four words as the emulation answers them
    /// (refreshed under `vgic`'s lock by every write that can change them,
    /// and by `vgic::refresh_shadow`): a read of GICD_CTLR or GICD_TYPER
    /// needs no lock (`exit::fast_mmio`).
    pub gicd_shadow: DistShadow,
    /// One redistributor per vCPU, in vCPU order.
    pub redists: Box<[Mutex<VgicRedist>]>,
    /// Emulated UART, if the partition has one.
    pub vuart: Option<Mutex<VUart>>,
    /// Every emulated device's guest range: the one table a trapped MMIO
    /// access is dispatched through (`exit::emulate_mmio`).
    pub emulated: EmuTable,
    pub budget: Mutex<RestartBudget>,
    /// The hypervisor-kept watchdog (`watchdog.rs`).
    pub wd: Mutex<crate::watchdog::WdState>,
    /// Per channel end: the doorbell it receives, the doorbell it rings
    /// (`doorbell.rs`).
    pub bells: Box<[Option<crate::doorbell::Bell>]>,
    pub ringers: Box<[Option<crate::doorbell::Ringer>]>,
}

impl PartitionRt {
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Loading,
            1 => State::Running,
            2 => State::Stopped,
            _ => State::Failed,
        }
    }

    pub fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Release);
    }

    pub fn name(&self) -> &'static str {
        self.cfg.name
    }

    /// Whether physical interrupt `intid` belongs to this partition: its
    /// devices' and doorbells' SPIs, or the per-core timer PPIs of the
    /// cores it runs on.
    pub fn owns_irq(&self, intid: u32) -> bool {
        if GUEST_PPIS.contains(&intid) {
            return true;
        }
        self.cfg.owned_spis().any(|i| i == intid)
    }

    /// vCPU index of physical core `core`, if the partition runs on it.
    pub fn vcpu_of_core(&self, core: usize) -> Option<usize> {
        self.cfg.cores.iter().position(|&c| c as usize == core)
    }
}

/// PPIs a guest may use: the EL1 physical (30) and virtual (27) timers. The
/// hypervisor's own PPIs (maintenance, EL2 timer) never reach a guest.
pub const GUEST_PPIS: [u32; 2] = [27, 30];

static PARTITIONS: Once<Box<[PartitionRt]>> = Once::new();

/// All partitions (empty before [`build_all`]).
pub fn all() -> &'static [PartitionRt] {
    PARTITIONS.get().map(|b| &b[..]).unwrap_or(&[])
}

/// The partition that owns physical core `core`.
pub fn of_core(core: usize) -> Option<&'static PartitionRt> {
    all()
        .iter()
        .find(|p| p.cfg.cores.iter().any(|&c| c as usize == core))
}

/// Stage-2 tables live in heap memory, which the EL2 identity map makes
/// addressable at its physical address.
struct HeapArena;

impl TableArena for HeapArena {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        let layout = core::alloc::Layout::from_size_align(4096, 4096).ok()?;
        // SAFETY: a valid, non-zero-size layout. Not zeroed here: the
        // page-table code clears every table it takes (`clear`).
        let p = unsafe { alloc::alloc::alloc(layout) };
        (!p.is_null()).then(|| PhysAddr::new(p as u64))
    }

    fn read(&self, table: PhysAddr, index: usize) -> u64 {
        assert!(index < 512);
        // SAFETY: `table` came from alloc_table (a live 4 KiB table).
        unsafe { core::ptr::read_volatile((table.raw() as *const u64).add(index)) }
    }

    fn write(&mut self, table: PhysAddr, index: usize, desc: u64) {
        assert!(index < 512);
        // SAFETY: as in `read`; the MMU walks these tables, so volatile.
        unsafe { core::ptr::write_volatile((table.raw() as *mut u64).add(index), desc) }
    }

    fn clear(&mut self, table: PhysAddr) {
        // SAFETY: as in `read`; a whole table that is not linked into any
        // tree yet (no walker can see it), so plain stores (memset) do.
        unsafe { core::ptr::write_bytes(table.raw() as *mut u64, 0, 512) }
    }
}

fn attrs(p: Perms, mem: MemType) -> MapAttrs {
    MapAttrs {
        read: p.read,
        write: p.write,
        exec: p.exec,
        mem,
    }
}

/// Builds every partition's stage-2 tables and virtual devices.
pub fn build_all(pa_range_bits: u8) -> Result<(), alloc::string::String> {
    let _ = pa_range_bits;
    let plat = &CONFIG.platform;
    let mut v = Vec::with_capacity(CONFIG.partitions.len());
    for cfg in CONFIG.partitions {
        let mut arena = HeapArena;
        let mut pt = PageTable::new(&mut arena, Regime::Stage2)
            .map_err(|e| alloc::format!("{}: stage-2 root: {e:?}", cfg.name))?;
        for m in cfg.memory {
            pt.map(
                &mut arena,
                m.ipa.raw(),
                m.pa,
                m.size,
                attrs(m.perms, MemType::Normal),
            )
            .map_err(|e| alloc::format!("{}: memory '{}': {e:?}", cfg.name, m.name))?;
        }
        // Channels: the reader's end read-only, neither executable, both
        // non-cacheable (docs/channels.md). Zeroed here, once, before any
        // partition runs; a restart of either side leaves the page alone
        // (the writer takes its sequence up from what is there).
        for c in cfg.channels {
            pt.map(
                &mut arena,
                c.ipa.raw(),
                c.pa,
                c.size,
                attrs(c.perms(), MemType::NonCacheable),
            )
            .map_err(|e| alloc::format!("{}: channel '{}': {e:?}", cfg.name, c.name))?;
            if c.role == septum_core::config::ChannelRole::Writer {
                guest_mem::scrub_range(c.pa, c.size)
                    .map_err(|e| alloc::format!("{}: channel '{}': {e:?}", cfg.name, c.name))?;
            }
        }
        let mut vuart = None;
        let mut emulated = EmuTable::new();
        for d in cfg.devices {
            match d.kind {
                DeviceKind::Passthrough { pa, ipa, size, .. } => {
                    pt.map(
                        &mut arena,
                        ipa.raw(),
                        pa,
                        size,
                        attrs(Perms::RW, MemType::Device),
                    )
                    .map_err(|e| alloc::format!("{}: device '{}': {e:?}", cfg.name, d.name))?;
                }
                DeviceKind::VirtualUart { ipa } => {
                    vuart = Some(Mutex::new(VUart::new()));
                    emulated
                        .add(GuestRange::new(ipa, 0x1000), Device::Uart)
                        .map_err(|e| alloc::format!("{}: device '{}': {e:?}", cfg.name, d.name))?;
                }
            }
        }
        let vgic = VgicDist::new(cfg.owned_spis(), cfg.cores.len());
        let redists: Box<[Mutex<VgicRedist>]> = (0..cfg.cores.len())
            .map(|i| Mutex::new(VgicRedist::new(i, cfg.cores.len())))
            .collect();
        // The guest's GIC at the platform's addresses: a GICv3 distributor
        // and redistributors, all trapped; or a GICv2 distributor (trapped)
        // and the hardware's virtual CPU interface where the guest expects
        // its CPU interface.
        let gicd_at = GuestPhysAddr::new(plat.gic.gicd.raw());
        let mut add_gic = |range, device| {
            emulated
                .add(range, device)
                .map_err(|e| alloc::format!("{}: virtual GIC: {e:?}", cfg.name))
        };
        let gicd = match plat.gic.version {
            GicVersion::V3 => (GuestRange::new(gicd_at, GICD_SIZE), Device::GicdV3),
            GicVersion::V2 => (
                GuestRange::new(gicd_at, septum_core::vgic::v2::GICD_V2_SIZE),
                Device::GicdV2,
            ),
        };
        match plat.gic.version {
            GicVersion::V3 => {
                add_gic(gicd.0, gicd.1)?;
                add_gic(
                    GuestRange::new(
                        GuestPhysAddr::new(plat.gic.gicr.raw()),
                        plat.gic.gicr_stride * cfg.cores.len() as u64,
                    ),
                    Device::Gicr {
                        stride: plat.gic.gicr_stride,
                    },
                )?;
            }
            GicVersion::V2 => {
                let (gicv, size) = crate::drivers::gicv2::gicv_frame(&plat.gic);
                pt.map(
                    &mut arena,
                    plat.gic.gicc.raw(),
                    gicv,
                    size,
                    attrs(Perms::RW, MemType::Device),
                )
                .map_err(|e| alloc::format!("{}: GICV: {e:?}", cfg.name))?;
                add_gic(gicd.0, gicd.1)?;
            }
        }
        if let Some(septum_core::config::Watchdog {
            kind: septum_core::config::WatchdogKind::SbsaGwdt { ipa },
            ..
        }) = cfg.watchdog
        {
            emulated
                .add(
                    GuestRange::new(ipa, crate::watchdog::GWDT_SIZE),
                    Device::Watchdog,
                )
                .map_err(|e| alloc::format!("{}: watchdog: {e:?}", cfg.name))?;
        }
        for (end, c) in cfg.channels.iter().enumerate() {
            if let Some(d) = c.incoming_doorbell() {
                emulated
                    .add(
                        GuestRange::new(d.ipa, septum_core::config::DOORBELL_FRAME),
                        Device::Doorbell { end },
                    )
                    .map_err(|e| alloc::format!("{}: doorbell '{}': {e:?}", cfg.name, c.name))?;
            }
        }
        let (bells, ringers) = crate::doorbell::build(cfg, CONFIG.partitions);
        v.push(PartitionRt {
            cfg,
            state: AtomicU8::new(State::Loading as u8),
            vttbr: septum_core::pgtable::vttbr_value(cfg.vmid, pt.root()),
            vgic: Mutex::new(vgic),
            gicd,
            gicd_shadow: DistShadow::new(),
            redists,
            vuart,
            emulated,
            budget: Mutex::new(RestartBudget::new(
                cfg.fault_policy.max_restarts,
                cfg.fault_policy.restart_window_ms,
            )),
            wd: crate::watchdog::new_state(cfg),
            bells,
            ringers,
        });
    }
    for p in &v {
        crate::vgic::refresh_shadow(p);
    }
    PARTITIONS.call_once(|| v.into_boxed_slice());
    Ok(())
}

/// Why a partition could not be loaded. No allocation: this also runs on
/// the restart path, after the heap is sealed.
#[derive(Clone, Copy, Debug)]
pub enum LoadError {
    /// An image does not fit one of the partition's memory regions.
    ImageDoesNotFit(&'static str),
    /// An image or region lies outside the hypervisor's own map.
    OutsideMap(&'static str),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::ImageDoesNotFit(n) => {
                write!(f, "image '{n}' does not fit the partition's memory")
            }
            LoadError::OutsideMap(n) => write!(f, "'{n}' is outside the hypervisor's map"),
        }
    }
}

/// Scrubs a partition's private memory and copies its images in from the
/// pristine copies inside the hypervisor image (which no partition maps).
/// Shared regions are left alone: they belong to more than one partition.
pub fn load_images(p: &PartitionRt) -> Result<usize, LoadError> {
    let mut total = 0;
    for m in p.cfg.memory.iter().filter(|m| !m.shared) {
        guest_mem::scrub(m).map_err(|_| LoadError::OutsideMap(m.name))?;
    }
    for img in p.cfg.images {
        guest_mem::write(p, img.load, img.data, 0, Need::Loader).map_err(|e| match e {
            GuestMemError::NotInPartition => LoadError::ImageDoesNotFit(img.name),
            GuestMemError::OutsideMap => LoadError::OutsideMap(img.name),
        })?;
        total += img.data.len();
    }
    asm::ic_iallu();
    Ok(total)
}
