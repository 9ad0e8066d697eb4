//! The rules of `rules.rs`, applied to a parsed file.
//!
//! The validator keeps going after an error so that one run reports as much
//! as it can. A value that breaks a basic rule (a range of size 0, say) is
//! left out of the later cross-checks, so that one mistake does not produce a
//! cascade of follow-on errors.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use septum_core::config::MAX_CPUS;
use septum_core::fault::RESTART_BUDGET_CAPACITY;
use septum_core::vgic::MAX_VCPUS;
use toml::Spanned;

use super::diag::{Diagnostic, Span};
use super::linux::{self, ImageHeader, PlaceError, Placement};
use super::model::{
    self, Board, Conduit, CpuBoot, Criticality, DeviceKind, FaultAction, FaultPolicy, Gic,
    GicVersion, GuestPhysAddr, GuestRange, InterruptDelivery, Perms, PhysAddr, PhysRange,
    SafeStateAction, Uart, UartKind, Watchdog, WatchdogKind, DEFAULT_FAULT_POLICY,
};
use super::rules::Rule;
use super::schema as s;
use super::util::{hex, normalize, range};
use septum_core::config::{BCM2711_GPIO_BASE, BCM2711_GPIO_PINS};

/// Stage-2 page size: the unit of every mapping.
pub const PAGE: u64 = 0x1000;
/// Size of the IPA space (39 bits: three-level stage-2 tables from level 1).
pub const IPA_LIMIT: u128 = 1 << 39;
/// Shared peripheral interrupts.
pub const SPIS: std::ops::RangeInclusive<u64> = 32..=1019;
/// Private peripheral interrupts.
pub const PPIS: std::ops::RangeInclusive<u64> = 16..=31;
/// GICv3 frames are 64 KiB; a redistributor has at least two of them.
const GIC_V3_FRAME: u64 = 0x1_0000;
/// GICv2 frame sizes (architectural register maps; GIC-400 layout).
const GICD_V2_SIZE: u64 = 0x1000;
const GICC_V2_SIZE: u64 = 0x2000;
const GICH_V2_SIZE: u64 = 0x2000;
const GICV_V2_SIZE: u64 = 0x2000;
/// Number of release addresses `septum_core::config::CpuBoot::SpinTable` holds.
const SPIN_TABLE_SLOTS: usize = 3;
/// VMIDs are `index + 1` and the hypervisor uses 8-bit VMIDs.
pub const MAX_PARTITIONS: usize = 255;
/// CPU interfaces a GICv2 distributor can target.
const GIC_V2_CPUS: u64 = 8;
/// Longest device-tree node name (without the unit address).
const NODE_NAME_MAX: usize = 31;

fn v<T: Copy>(x: &Spanned<T>) -> T {
    *x.get_ref()
}

fn hx(x: u64) -> String {
    hex(x.into())
}

fn aligned(x: u64, align: u64) -> bool {
    x & (align - 1) == 0
}

fn pa_range(base: u64, size: u64) -> PhysRange {
    PhysRange::new(PhysAddr(base), size)
}

fn ipa_range(base: u64, size: u64) -> GuestRange {
    GuestRange::new(GuestPhysAddr(base), size)
}

fn ends_above_ipa_space(r: &GuestRange) -> bool {
    u128::from(r.start.0) + u128::from(r.size) > IPA_LIMIT
}

/// A memory region that passed its basic checks (ranges are `None` when not).
struct Mem<'a> {
    part: usize,
    r: &'a s::MemRegion,
    pa: Option<PhysRange>,
    ipa: Option<GuestRange>,
}

/// A device and its ranges (`pa` only for passthrough).
struct Dev<'a> {
    part: usize,
    d: &'a s::Device,
    pa: Option<PhysRange>,
    ipa: Option<GuestRange>,
    /// Its PA range overlaps the GIC or the console (CFG-31).
    reserved: bool,
}

impl Dev<'_> {
    fn shared_with(&self) -> &[Spanned<String>] {
        self.d
            .shared_with
            .as_ref()
            .map_or(&[], |l| l.get_ref().as_slice())
    }

    fn dma(&self) -> bool {
        self.d.dma.as_ref().is_some_and(v)
    }
}

/// What an image file turned out to be.
#[derive(Clone)]
struct ImageFile {
    path: PathBuf,
    len: u64,
}

/// A Linux partition whose files and placement passed every check.
struct LinuxPlan {
    kernel: ImageFile,
    header: ImageHeader,
    initrd: Option<ImageFile>,
    at: Placement,
}

/// The GIC frames a partition sees at its platform addresses (the
/// redistributor block grows with the partition's vCPUs).
#[derive(Clone, Copy)]
enum GuestGic {
    V3 { gicd: u64, gicr: u64, stride: u64 },
    V2 { gicd: u64, gicc: u64 },
}

impl GuestGic {
    fn frames(self, vcpus: u64) -> Vec<(&'static str, GuestRange)> {
        match self {
            GuestGic::V3 { gicd, gicr, stride } => vec![
                ("GICD", ipa_range(gicd, GIC_V3_FRAME)),
                ("GICR", ipa_range(gicr, stride.saturating_mul(vcpus))),
            ],
            GuestGic::V2 { gicd, gicc } => vec![
                ("GICD", ipa_range(gicd, GICD_V2_SIZE)),
                ("GICC", ipa_range(gicc, GICC_V2_SIZE)),
            ],
        }
    }
}

/// A device-tree node name: 1 to 31 of `a-z A-Z 0-9 , . _ + -`, starting
/// with a letter (Devicetree Specification 2.2.1).
fn node_name_ok(name: &str) -> bool {
    name.len() <= NODE_NAME_MAX
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ",._+-".contains(c))
}

struct Validator<'a> {
    file: &'a s::File,
    base_dir: &'a Path,
    errs: Vec<Diagnostic>,
    // Platform facts that passed their rules, for the partition checks.
    cpus: Option<u64>,
    ram: Vec<PhysRange>,
    mmio: Vec<PhysRange>,
    hyp: Option<PhysRange>,
    /// GIC frames and the console page: never given to a partition.
    reserved: Vec<(String, PhysRange, Span)>,
    maintenance_irq: u64,
    mems: Vec<Mem<'a>>,
    devs: Vec<Dev<'a>>,
    /// Per partition, per image.
    images: Vec<Vec<Option<ImageFile>>>,
    /// Per partition: the Linux boot plan, when it has one that checked out.
    linux: Vec<Option<LinuxPlan>>,
    /// The GIC as partitions see it, when the platform's GIC checked out.
    guest_gic: Option<GuestGic>,
    chans: Vec<channels::Chan<'a>>,
}

/// Checks `file` (the parsed text of `path`); image paths are relative to
/// `base_dir`. Returns the validated configuration or every error found.
pub fn validate(
    file: &s::File,
    path: &Path,
    base_dir: &Path,
) -> Result<model::ValidatedConfig, Vec<Diagnostic>> {
    let mut val = Validator {
        file,
        base_dir,
        errs: Vec::new(),
        cpus: None,
        ram: Vec::new(),
        mmio: Vec::new(),
        hyp: None,
        reserved: Vec::new(),
        maintenance_irq: 0,
        mems: Vec::new(),
        devs: Vec::new(),
        images: Vec::new(),
        linux: Vec::new(),
        guest_gic: None,
        chans: Vec::new(),
    };
    val.platform();
    val.partitions();
    if !val.file.partition.is_empty() {
        val.channels();
    }
    let boot = val.boot();
    val.manifest_capacity();
    if !val.errs.is_empty() {
        return Err(val.errs);
    }
    let mut cfg = val.build(path, boot);
    // The device trees describe the validated configuration, so they are
    // made last; only their size can still be wrong.
    for i in 0..cfg.partitions.len() {
        if cfg.partitions[i].linux.is_none() {
            continue;
        }
        let blob = super::fdt::linux_dtb(&cfg, i);
        if blob.len() as u64 > linux::DTB_MAX {
            let span = file.partition[i]
                .get_ref()
                .linux
                .as_ref()
                .map(Spanned::span);
            val.err(
                Rule::LinuxPlacement,
                span,
                format!(
                    "the device tree of partition `{}` is {} bytes; Linux accepts at most 2 MiB",
                    cfg.partitions[i].name,
                    blob.len()
                ),
            );
        }
        if let Some(l) = cfg.partitions[i].linux.as_mut() {
            l.dtb_blob = blob;
        }
    }
    if val.errs.is_empty() {
        Ok(cfg)
    } else {
        Err(val.errs)
    }
}

impl<'a> Validator<'a> {
    fn push(&mut self, d: Diagnostic) {
        self.errs.push(d);
    }

    fn err(&mut self, rule: Rule, span: impl Into<Option<Span>>, msg: impl Into<String>) {
        self.errs.push(Diagnostic::new(rule, span, msg));
    }

    fn part_name(&self, i: usize) -> &'a str {
        self.file.partition[i].get_ref().name.get_ref()
    }

    /// CFG-19: `size` of `what` must not be 0.
    fn nonempty(&mut self, what: &str, size: &Spanned<u64>) -> bool {
        if v(size) == 0 {
            self.err(Rule::RangeEmpty, size.span(), format!("{what} has size 0"));
            return false;
        }
        true
    }

    /// CFG-20: `base + size` must fit in 64 bits.
    fn no_overflow(
        &mut self,
        what: &str,
        key: &str,
        base: &Spanned<u64>,
        size: &Spanned<u64>,
    ) -> bool {
        if v(base).checked_add(v(size)).is_none() {
            self.err(
                Rule::RangeOverflow,
                size.span(),
                format!(
                    "{what}: {key} {} + size {} overflows the 64-bit address space",
                    hx(v(base)),
                    hx(v(size))
                ),
            );
            return false;
        }
        true
    }

    fn in_ram(&self, r: &PhysRange) -> bool {
        self.ram.iter().any(|b| b.contains_span(r.start, r.size))
    }

    fn in_mmio(&self, r: &PhysRange) -> bool {
        self.mmio.iter().any(|w| w.contains_span(r.start, r.size))
    }

    // ---------------------------------------------------------------- platform

    fn platform(&mut self) {
        let p = self.file.platform.get_ref();

        let cpus = v(&p.cpus);
        if cpus == 0 || cpus > MAX_CPUS as u64 {
            self.err(
                Rule::PlatformCpus,
                p.cpus.span(),
                format!("platform.cpus is {cpus}; it must be between 1 and {MAX_CPUS}"),
            );
        } else {
            self.cpus = Some(cpus);
        }

        self.memory_map(p);
        self.hypervisor_region(p);
        self.console(p);
        self.gic(p);
        self.cpu_boot(p);
        self.safe_state(p);
    }

    fn safe_state(&mut self, p: &'a s::Platform) {
        let Some(ss) = &p.safe_state else { return };
        let st = ss.get_ref();
        let extra = |this: &mut Self, what: &str| {
            for (key, span) in [
                ("pin", st.pin.as_ref().map(|x| x.span())),
                ("level", st.level.as_ref().map(|x| x.span())),
            ] {
                if let Some(span) = span {
                    this.err(
                        Rule::SafeStateAction,
                        span,
                        format!("`{key}` belongs to the gpio action, not {what}"),
                    );
                }
            }
        };
        match st.action.get_ref().as_str() {
            "park" => extra(self, "park"),
            "power-off" => {
                extra(self, "power-off");
                if v(&p.cpu_boot.get_ref().method) != s::BootMethod::Psci {
                    self.err(
                        Rule::SafeStateAction,
                        st.action.span(),
                        "power-off is a PSCI SYSTEM_OFF to the firmware: this platform has no firmware PSCI (cpu-boot is spin-table)",
                    );
                }
            }
            "gpio" => {
                if v(&p.board) != s::Board::Rpi4 {
                    self.err(
                        Rule::SafeStateAction,
                        st.action.span(),
                        "the gpio action drives the BCM2711's GPIO block: board rpi4 only",
                    );
                }
                match &st.pin {
                    None => self.err(
                        Rule::SafeStateAction,
                        ss.span(),
                        "the gpio action needs `pin` (0..=57)",
                    ),
                    Some(pin) if v(pin) >= u64::from(BCM2711_GPIO_PINS) => self.err(
                        Rule::SafeStateAction,
                        pin.span(),
                        format!(
                            "GPIO {} does not exist: the BCM2711 has GPIO 0..={}",
                            v(pin),
                            BCM2711_GPIO_PINS - 1
                        ),
                    ),
                    Some(_) => {}
                }
                match &st.level {
                    None => self.err(
                        Rule::SafeStateAction,
                        ss.span(),
                        "the gpio action needs `level = \"high\"` or `level = \"low\"`",
                    ),
                    Some(l) if l.get_ref() == "high" || l.get_ref() == "low" => {}
                    Some(l) => self.err(
                        Rule::SafeStateAction,
                        l.span(),
                        format!("level {:?} is neither \"high\" nor \"low\"", l.get_ref()),
                    ),
                }
                // The hypervisor keeps the GPIO page (CFG-31 keeps it from
                // every partition).
                self.reserved.push((
                    "the GPIO block (the safe-state alarm line)".into(),
                    pa_range(BCM2711_GPIO_BASE, PAGE),
                    st.action.span(),
                ));
            }
            other => self.err(
                Rule::SafeStateAction,
                st.action.span(),
                format!("safe-state action {other:?} is not park, power-off or gpio"),
            ),
        }
    }

    fn memory_map(&mut self, p: &'a s::Platform) {
        let mut seen: Vec<(&str, PhysRange, Span)> = Vec::new();
        for (key, kind, list) in [
            ("ram", "RAM bank", &p.ram),
            ("mmio", "MMIO window", &p.mmio),
        ] {
            if list.get_ref().is_empty() {
                self.err(
                    Rule::PlatformMemoryMap,
                    list.span(),
                    format!("platform.{key} is empty: at least one {kind} is needed"),
                );
            }
            for r in list.get_ref() {
                let rr = r.get_ref();
                if !self.nonempty(kind, &rr.size)
                    || !self.no_overflow(kind, "base", &rr.base, &rr.size)
                {
                    continue;
                }
                for (name, val) in [("base", &rr.base), ("size", &rr.size)] {
                    if !aligned(v(val), PAGE) {
                        self.err(
                            Rule::PlatformMemoryMap,
                            val.span(),
                            format!("{kind} {name} {} is not 4 KiB aligned", hx(v(val))),
                        );
                    }
                }
                let this = pa_range(v(&rr.base), v(&rr.size));
                for (other_kind, other, other_span) in &seen {
                    if other.overlaps(&this) {
                        self.push(
                            Diagnostic::new(
                                Rule::PlatformMemoryMap,
                                r.span(),
                                format!(
                                    "{kind} {} overlaps {other_kind} {}",
                                    range(this.start.0, this.size),
                                    range(other.start.0, other.size)
                                ),
                            )
                            .note(
                                other_span.clone(),
                                format!("the {other_kind} is declared here"),
                            ),
                        );
                    }
                }
                seen.push((kind, this, r.span()));
                if key == "ram" {
                    self.ram.push(this);
                } else {
                    self.mmio.push(this);
                }
            }
        }
    }

    fn hypervisor_region(&mut self, p: &'a s::Platform) {
        let h = p.hypervisor.get_ref();
        let what = "the hypervisor region";
        if self.nonempty(what, &h.size) && self.no_overflow(what, "base", &h.base, &h.size) {
            for (name, val) in [("base", &h.base), ("size", &h.size)] {
                if !aligned(v(val), PAGE) {
                    self.err(
                        Rule::HypervisorRegion,
                        val.span(),
                        format!("hypervisor {name} {} is not 4 KiB aligned", hx(v(val))),
                    );
                }
            }
            let r = pa_range(v(&h.base), v(&h.size));
            if !self.ram.is_empty() && !self.in_ram(&r) {
                self.err(
                    Rule::HypervisorRegion,
                    p.hypervisor.span(),
                    format!(
                        "the hypervisor region {} is not inside one RAM bank",
                        range(r.start.0, r.size)
                    ),
                );
            }
            self.hyp = Some(r);
        }

        let la = v(&p.load_addr);
        if !aligned(la, PAGE) {
            self.err(
                Rule::LoadAddr,
                p.load_addr.span(),
                format!("load-addr {} is not 4 KiB aligned", hx(la)),
            );
        }
        if let Some(h) = self.hyp {
            if !h.contains(PhysAddr(la)) {
                self.push(
                    Diagnostic::new(
                        Rule::LoadAddr,
                        p.load_addr.span(),
                        format!(
                            "load-addr {} is outside the hypervisor region {}",
                            hx(la),
                            range(h.start.0, h.size)
                        ),
                    )
                    .note(
                        p.hypervisor.span(),
                        "the hypervisor region is declared here",
                    ),
                );
            }
        }
    }

    fn console(&mut self, p: &'a s::Platform) {
        let c = p.console.get_ref();
        // The whole page: that is the unit a partition could be given.
        let page = pa_range(v(&c.base) & !(PAGE - 1), PAGE);
        self.reserved
            .push(("the console UART page".into(), page, c.base.span()));
        if !self.mmio.is_empty() && !self.in_mmio(&page) {
            self.err(
                Rule::PlatformMmio,
                c.base.span(),
                format!(
                    "the console UART page {} is not inside a platform MMIO window",
                    range(page.start.0, page.size)
                ),
            );
        }
    }

    fn gic(&mut self, p: &'a s::Platform) {
        let g = p.gic.get_ref();
        let version = v(&g.version);
        let m = v(&g.maintenance_irq);
        self.maintenance_irq = m;
        if !PPIS.contains(&m) {
            self.err(
                Rule::MaintenanceIrq,
                g.maintenance_irq.span(),
                format!("maintenance-irq {m} is not a PPI (16..=31)"),
            );
        }

        type Key<'k> = (&'static str, Option<&'k Spanned<u64>>);
        let v3_keys: [Key; 2] = [
            ("gicr", g.gicr.as_ref()),
            ("gicr-stride", g.gicr_stride.as_ref()),
        ];
        let v2_keys: [Key; 3] = [
            ("gicc", g.gicc.as_ref()),
            ("gich", g.gich.as_ref()),
            ("gicv", g.gicv.as_ref()),
        ];
        let (needed, forbidden, other): (&[Key], &[Key], u64) = match version {
            3 => (&v3_keys, &v2_keys, 2),
            2 => (&v2_keys, &v3_keys, 3),
            _ => {
                self.err(
                    Rule::GicForm,
                    g.version.span(),
                    format!("gic.version is {version}; it must be 2 or 3"),
                );
                return;
            }
        };
        let mut complete = true;
        for (key, val) in needed {
            if val.is_none() {
                complete = false;
                self.err(
                    Rule::GicForm,
                    p.gic.span(),
                    format!("a GICv{version} needs `{key}`"),
                );
            }
        }
        for (key, val) in forbidden {
            if let Some(val) = val {
                self.err(
                    Rule::GicForm,
                    val.span(),
                    format!("`{key}` is a GICv{other} key; it does not apply to a GICv{version}"),
                );
            }
        }
        if !complete {
            return;
        }

        // (name, base, size, alignment)
        let mut frames: Vec<(&str, &Spanned<u64>, Option<u64>, u64)> = Vec::new();
        match (version, &g.gicr, &g.gicr_stride, &g.gicc, &g.gich, &g.gicv) {
            (3, Some(gicr), Some(stride), ..) => {
                frames.push(("GICD", &g.gicd, Some(GIC_V3_FRAME), GIC_V3_FRAME));
                let st = v(stride);
                let stride_ok = st >= 2 * GIC_V3_FRAME && aligned(st, GIC_V3_FRAME);
                if !stride_ok {
                    self.err(
                        Rule::GicForm,
                        stride.span(),
                        format!(
                            "gicr-stride {} must be a multiple of 64 KiB and at least 128 KiB (two frames per redistributor)",
                            hx(st)
                        ),
                    );
                }
                if stride_ok {
                    self.guest_gic = Some(GuestGic::V3 {
                        gicd: v(&g.gicd),
                        gicr: v(gicr),
                        stride: st,
                    });
                }
                // The redistributors of every core, as one block.
                let size = self
                    .cpus
                    .filter(|_| stride_ok)
                    .and_then(|n| st.checked_mul(n));
                frames.push(("GICR", gicr, size, GIC_V3_FRAME));
            }
            (2, _, _, Some(gicc), Some(gich), Some(gicv)) => {
                self.guest_gic = Some(GuestGic::V2 {
                    gicd: v(&g.gicd),
                    gicc: v(gicc),
                });
                frames.push(("GICD", &g.gicd, Some(GICD_V2_SIZE), PAGE));
                frames.push(("GICC", gicc, Some(GICC_V2_SIZE), PAGE));
                frames.push(("GICH", gich, Some(GICH_V2_SIZE), PAGE));
                frames.push(("GICV", gicv, Some(GICV_V2_SIZE), PAGE));
            }
            _ => return,
        }

        for (name, base, size, align) in frames {
            let b = v(base);
            if !aligned(b, align) {
                self.err(
                    Rule::GicForm,
                    base.span(),
                    format!(
                        "{name} base {} is not aligned to {}",
                        hx(b),
                        super::util::size(align)
                    ),
                );
            }
            let Some(size) = size else { continue };
            if b.checked_add(size).is_none() {
                self.err(
                    Rule::RangeOverflow,
                    base.span(),
                    format!(
                        "the {name} frame at {} (size {}) overflows the 64-bit address space",
                        hx(b),
                        hx(size)
                    ),
                );
                continue;
            }
            let r = pa_range(b, size);
            if !self.mmio.is_empty() && !self.in_mmio(&r) {
                self.err(
                    Rule::PlatformMmio,
                    base.span(),
                    format!(
                        "the {name} frame {} is not inside a platform MMIO window",
                        range(b, size)
                    ),
                );
            }
            let label = format!("the GIC {name} frame");
            for (other, o, o_span) in &self.reserved {
                if o.overlaps(&r) {
                    let d = Diagnostic::new(
                        Rule::PlatformMmio,
                        base.span(),
                        format!(
                            "{label} {} overlaps {other} {}",
                            range(b, size),
                            range(o.start.0, o.size)
                        ),
                    )
                    .note(o_span.clone(), format!("{other} is declared here"));
                    self.errs.push(d);
                }
            }
            self.reserved.push((label, r, base.span()));
        }
    }

    fn cpu_boot(&mut self, p: &'a s::Platform) {
        let b = p.cpu_boot.get_ref();
        match v(&b.method) {
            s::BootMethod::Psci => {
                if let Some(r) = &b.release {
                    self.err(
                        Rule::CpuBoot,
                        r.span(),
                        "`release` belongs to spin-table; psci takes `conduit`",
                    );
                }
                match &b.conduit {
                    None => self.err(
                        Rule::CpuBoot,
                        p.cpu_boot.span(),
                        "psci needs `conduit = \"smc\"` or `conduit = \"hvc\"`",
                    ),
                    Some(c) if c.get_ref() == "smc" || c.get_ref() == "hvc" => {}
                    Some(c) => self.err(
                        Rule::CpuBoot,
                        c.span(),
                        format!("conduit {:?} is neither \"smc\" nor \"hvc\"", c.get_ref()),
                    ),
                }
            }
            s::BootMethod::SpinTable => {
                if let Some(c) = &b.conduit {
                    self.err(
                        Rule::CpuBoot,
                        c.span(),
                        "`conduit` belongs to psci; spin-table takes `release`",
                    );
                }
                let Some(rel) = &b.release else {
                    self.err(
                        Rule::CpuBoot,
                        p.cpu_boot.span(),
                        "spin-table needs `release`: one address per secondary core (cpus - 1)",
                    );
                    return;
                };
                if let Some(cpus) = self.cpus {
                    let want = (cpus - 1) as usize;
                    if want > SPIN_TABLE_SLOTS {
                        self.err(
                            Rule::CpuBoot,
                            b.method.span(),
                            format!(
                                "spin-table boots at most {} cores ({SPIN_TABLE_SLOTS} release addresses); platform.cpus is {cpus}",
                                SPIN_TABLE_SLOTS + 1
                            ),
                        );
                    } else if rel.get_ref().len() != want {
                        self.err(
                            Rule::CpuBoot,
                            rel.span(),
                            format!(
                                "spin-table has {} release addresses; platform.cpus = {cpus} needs exactly {want}",
                                rel.get_ref().len()
                            ),
                        );
                    }
                }
                for a in rel.get_ref() {
                    let x = v(a);
                    if !aligned(x, 8) {
                        self.err(
                            Rule::CpuBoot,
                            a.span(),
                            format!("release address {} is not 8-byte aligned", hx(x)),
                        );
                    } else if !self.ram.is_empty() && !self.in_ram(&pa_range(x, 8)) {
                        self.err(
                            Rule::CpuBoot,
                            a.span(),
                            format!("release address {} is not in RAM", hx(x)),
                        );
                    }
                }
            }
        }
    }

    // -------------------------------------------------------------- partitions

    fn partitions(&mut self) {
        let parts = &self.file.partition;
        if parts.is_empty() {
            self.err(
                Rule::PartitionCount,
                None,
                "no [[partition]]: at least one partition is needed",
            );
            return;
        }
        self.partition_limit();
        self.names_and_criticality();
        self.cores();
        for (i, p) in parts.iter().enumerate() {
            self.item_names(p.get_ref());
            for r in p.get_ref().memory.get_ref() {
                self.memory_region(i, r.get_ref());
            }
            for d in &p.get_ref().devices {
                self.device(i, d);
            }
        }
        self.shared_with();
        self.memory_overlaps();
        self.device_overlaps();
        self.ipa_overlaps();
        self.gic_ipa();
        self.vcpu_limit();
        self.direct_interrupts();
        self.irq_uniqueness();
        self.dma();
        for (i, p) in parts.iter().enumerate() {
            let p = p.get_ref();
            self.boot_form(p);
            if p.linux.is_none() {
                self.images(i, p);
            } else {
                // linux names its own files; `images` beside it is CFG-48.
                self.images.push(Vec::new());
            }
            let plan = self.linux(i, p);
            self.linux.push(plan);
            if let (None, Some(e)) = (&p.linux, &p.entry) {
                self.entry(i, p, e);
            }
            self.fault_policy(p);
            self.watchdog(i, p);
        }
    }

    /// CFG-56.
    fn watchdog(&mut self, i: usize, p: &'a s::Partition) {
        let Some(w) = &p.watchdog else { return };
        let w = w.get_ref();
        let t = v(&w.timeout_ms);
        match v(&w.kind) {
            s::WatchdogKind::Heartbeat => {
                if !(1..=3_600_000).contains(&t) {
                    self.err(
                        Rule::Watchdog,
                        w.timeout_ms.span(),
                        format!("heartbeat timeout-ms = {t}: must be 1..=3600000"),
                    );
                }
                if let Some(ipa) = &w.ipa {
                    self.err(
                        Rule::Watchdog,
                        ipa.span(),
                        "a heartbeat watchdog is a hypercall: it takes no ipa",
                    );
                }
            }
            s::WatchdogKind::SbsaGwdt => {
                if !(2_000..=3_600_000).contains(&t) || t % 1000 != 0 {
                    self.err(
                        Rule::Watchdog,
                        w.timeout_ms.span(),
                        format!("sbsa-gwdt timeout-ms = {t}: must be a multiple of 1000 in 2000..=3600000 (Linux takes whole seconds)"),
                    );
                }
                let Some(ipa) = &w.ipa else {
                    self.err(
                        Rule::Watchdog,
                        w.kind.span(),
                        "an sbsa-gwdt watchdog needs ipa (its control frame; the refresh frame follows)",
                    );
                    return;
                };
                let base = v(ipa);
                if base % 0x1000 != 0 || base.checked_add(0x2000).is_none_or(|e| e > 1 << 39) {
                    self.err(
                        Rule::Watchdog,
                        ipa.span(),
                        format!(
                            "sbsa-gwdt ipa {}: must be 4 KiB aligned and its 8 KiB below 2^39",
                            hx(base)
                        ),
                    );
                    return;
                }
                let frames = GuestRange::new(GuestPhysAddr(base), 0x2000);
                let clash = self
                    .mems
                    .iter()
                    .filter(|m| m.part == i)
                    .filter_map(|m| {
                        m.ipa
                            .map(|r| (format!("memory region `{}`", m.r.name.get_ref()), r))
                    })
                    .chain(self.devs.iter().filter(|d| d.part == i).filter_map(|d| {
                        d.ipa
                            .map(|r| (format!("device `{}`", d.d.name.get_ref()), r))
                    }))
                    .find(|(_, r)| r.overlaps(&frames));
                if let Some((what, r)) = clash {
                    self.err(
                        Rule::Watchdog,
                        ipa.span(),
                        format!(
                            "sbsa-gwdt frames at IPA {} overlap {what} at IPA {}",
                            range(base, 0x2000),
                            range(r.start.0, r.size)
                        ),
                    );
                }
            }
        }
    }

    /// CFG-44.
    fn partition_limit(&mut self) {
        let parts = &self.file.partition;
        if parts.len() > MAX_PARTITIONS {
            let p = parts[MAX_PARTITIONS].get_ref();
            self.err(
                Rule::PartitionLimit,
                p.name.span(),
                format!(
                    "{} partitions: at most {MAX_PARTITIONS} fit, since partition n gets VMID n + 1 and VMIDs are 8 bits (partition `{}` would get VMID {})",
                    parts.len(),
                    p.name.get_ref(),
                    MAX_PARTITIONS + 1
                ),
            );
        }
    }

    /// CFG-52: a vCPU without a redistributor frame (GICv3) or CPU interface
    /// (GICv2) could not take interrupts.
    fn vcpu_limit(&mut self) {
        let mut limits = vec![(
            MAX_VCPUS as u64,
            format!("the virtual GIC supports {MAX_VCPUS}"),
        )];
        match (self.guest_gic, self.cpus) {
            (Some(GuestGic::V3 { .. }), Some(cpus)) => limits.push((
                cpus,
                format!("the GICv3 has {cpus} redistributor frames (platform.cpus)"),
            )),
            (Some(GuestGic::V2 { .. }), _) => limits.push((
                GIC_V2_CPUS,
                format!("a GICv2 has {GIC_V2_CPUS} CPU interfaces"),
            )),
            _ => {}
        }
        let Some((limit, why)) = limits.into_iter().min_by_key(|(l, _)| *l) else {
            return;
        };
        for p in &self.file.partition {
            let p = p.get_ref();
            let n = p.cores.get_ref().len() as u64;
            if n > limit {
                self.err(
                    Rule::VcpuLimit,
                    p.cores.span(),
                    format!("partition `{}` has {n} vCPUs, but {why}", p.name.get_ref()),
                );
            }
        }
    }

    /// CFG-57: direct delivery leaves the hypervisor only Group 0 (FIQ) for
    /// its own interrupts, which a GICv2 reserves for the Secure world; and
    /// with IRQs no longer virtual, the partition can get no virtual SGIs
    /// between vCPUs.
    fn direct_interrupts(&mut self) {
        for p in &self.file.partition {
            let p = p.get_ref();
            let Some(i) = &p.interrupts else { continue };
            if v(i) != s::Interrupts::Direct {
                continue;
            }
            if let Some(GuestGic::V2 { .. }) = self.guest_gic {
                self.err(
                    Rule::DirectInterrupts,
                    i.span(),
                    format!(
                        "partition `{}`: interrupts = \"direct\" needs a GICv3; on a GICv2 the hypervisor (Non-secure EL2) cannot keep Group 0 interrupts for itself",
                        p.name.get_ref()
                    ),
                );
            }
            let n = p.cores.get_ref().len();
            if n != 1 {
                self.err(
                    Rule::DirectInterrupts,
                    p.cores.span(),
                    format!(
                        "partition `{}`: interrupts = \"direct\" needs exactly one core, not {n} (its vCPUs could not signal each other: SGIs are virtual)",
                        p.name.get_ref()
                    ),
                );
            }
        }
    }

    /// CFG-53: the hypervisor traps (GICD, GICR) or maps (GICv2 GICC) the
    /// GIC at the platform's addresses in every partition's IPA space.
    fn gic_ipa(&mut self) {
        let Some(gic) = self.guest_gic else { return };
        let parts = &self.file.partition;
        let vcpus = |part: usize| parts[part].get_ref().cores.get_ref().len() as u64;
        let mut items: Vec<(usize, String, GuestRange, Span)> = Vec::new();
        for m in &self.mems {
            if let Some(ipa) = m.ipa {
                let what = format!("memory region `{}`", m.r.name.get_ref());
                items.push((m.part, what, ipa, m.r.ipa.span()));
            }
        }
        // A device that is itself a GIC frame (CFG-31) is reported once.
        for d in self.devs.iter().filter(|d| !d.reserved) {
            if let Some(ipa) = d.ipa {
                let what = format!("device `{}`", d.d.name.get_ref());
                items.push((d.part, what, ipa, d.d.ipa.span()));
            }
        }
        let mut errs = Vec::new();
        for (part, what, ipa, span) in items {
            for (frame, r) in gic.frames(vcpus(part)) {
                if r.size > 0 && r.overlaps(&ipa) {
                    errs.push(Diagnostic::new(
                        Rule::GicIpa,
                        span.clone(),
                        format!(
                            "in partition `{}`, {what} at IPA {} overlaps the {frame} frame {} that the hypervisor provides at that IPA",
                            self.part_name(part),
                            range(ipa.start.0, ipa.size),
                            range(r.start.0, r.size)
                        ),
                    ));
                }
            }
        }
        self.errs.extend(errs);
    }

    /// CFG-48: how the partition boots.
    fn boot_form(&mut self, p: &'a s::Partition) {
        let name = p.name.get_ref();
        let Some(ls) = &p.linux else {
            if p.entry.is_none() {
                self.err(
                    Rule::LinuxForm,
                    p.name.span(),
                    format!(
                        "partition `{name}` needs `entry` (where vCPU 0 starts) or a `linux` table"
                    ),
                );
            }
            return;
        };
        if let Some(e) = &p.entry {
            self.push(
                Diagnostic::new(
                    Rule::LinuxForm,
                    e.span(),
                    format!("partition `{name}` boots Linux: its entry is the kernel's load address, computed from the Image header; remove `entry`"),
                )
                .note(ls.span(), "the linux table"),
            );
        }
        if let Some(b) = &p.boot_arg {
            self.push(
                Diagnostic::new(
                    Rule::LinuxForm,
                    b.span(),
                    format!("partition `{name}` boots Linux: x0 is the device tree's address, computed by the tool; remove `boot-arg`"),
                )
                .note(ls.span(), "the linux table"),
            );
        }
        if let Some(first) = p.images.first() {
            self.push(
                Diagnostic::new(
                    Rule::LinuxForm,
                    first.span(),
                    format!("partition `{name}` boots Linux: `images` and `linux` exclude each other (linux names the kernel and the initrd)"),
                )
                .note(ls.span(), "the linux table"),
            );
        }
        let l = ls.get_ref();
        for (key, val) in [
            ("kernel", Some(&l.kernel)),
            ("initrd", l.initrd.as_ref()),
            ("bootargs", l.bootargs.as_ref()),
            ("stdout", l.stdout.as_ref()),
        ] {
            if let Some(val) = val.filter(|x| x.get_ref().contains('\0')) {
                self.err(
                    Rule::LinuxForm,
                    val.span(),
                    format!("linux.{key} of partition `{name}` contains a NUL character"),
                );
            }
        }
        if let Some(b) = &l.bootargs {
            let len = b.get_ref().len();
            if len >= linux::COMMAND_LINE_SIZE {
                self.err(
                    Rule::LinuxForm,
                    b.span(),
                    format!(
                        "linux.bootargs of partition `{name}` is {len} bytes; Linux keeps at most {} (COMMAND_LINE_SIZE {} with the NUL)",
                        linux::COMMAND_LINE_SIZE - 1,
                        linux::COMMAND_LINE_SIZE
                    ),
                );
            }
        }
    }

    /// CFG-36..37, CFG-46, CFG-49..51: a Linux partition's files, the first
    /// memory region and where everything lands. `None` for other
    /// partitions and whenever something is wrong.
    fn linux(&mut self, part: usize, p: &'a s::Partition) -> Option<LinuxPlan> {
        let l = p.linux.as_ref()?.get_ref();
        let pname = p.name.get_ref();
        self.linux_stdout(p, l);
        // Regions that Linux must not use as RAM become /reserved-memory nodes.
        for m in p.memory.get_ref() {
            let m = m.get_ref();
            let general = m.shared_with.is_empty() && v(&m.perms) == s::Perms::Rwx;
            let name = m.name.get_ref();
            if !general && !name.is_empty() && !node_name_ok(name) {
                self.err(
                    Rule::DtDevice,
                    m.name.span(),
                    format!("memory region `{name}` of Linux partition `{pname}` is described under /reserved-memory, but {name:?} is not a device-tree node name (1 to {NODE_NAME_MAX} of a-z A-Z 0-9 , . _ + -, starting with a letter)"),
                );
            }
        }
        let what = format!("linux.kernel of partition `{pname}`");
        let kernel = self
            .open_file(&what, &l.kernel)
            .filter(|f| self.file_nonempty(&what, &l.kernel, f));
        let header = kernel
            .as_ref()
            .and_then(|k| self.kernel_header(&what, &l.kernel, k));
        let initrd = match &l.initrd {
            None => Some(None),
            Some(rel) => {
                let what = format!("linux.initrd of partition `{pname}`");
                self.open_file(&what, rel)
                    .filter(|f| self.file_nonempty(&what, rel, f))
                    .map(Some)
            }
        };
        let (base, size, region) = self.linux_region(part, p)?;
        let (kernel, header, initrd) = (kernel?, header?, initrd?);
        match linux::place(
            base,
            size,
            &header,
            kernel.len,
            initrd.as_ref().map(|f| f.len),
        ) {
            Ok(at) => Some(LinuxPlan {
                kernel,
                header,
                initrd,
                at,
            }),
            Err(PlaceError::Unaligned) => None, // reported by linux_region
            Err(PlaceError::TooSmall { needed_end }) => {
                let initrd_part = initrd
                    .as_ref()
                    .map(|f| format!(", an initrd of {} bytes", f.len))
                    .unwrap_or_default();
                self.err(
                    Rule::LinuxPlacement,
                    region.size.span(),
                    format!(
                        "memory region `{}` {} of Linux partition `{pname}` is too small for a kernel of {} bytes (text_offset {}, image_size {}){initrd_part} and a 2 MiB device-tree block above them: it must reach IPA {}, i.e. have a size of at least {}",
                        region.name.get_ref(),
                        range(base, size),
                        kernel.len,
                        hx(header.text_offset),
                        hx(header.image_size),
                        hex(needed_end),
                        hex(needed_end - u128::from(base))
                    ),
                );
                None
            }
            Err(PlaceError::InitrdWindow { span }) => {
                self.err(
                    Rule::LinuxPlacement,
                    region.size.span(),
                    format!(
                        "Linux partition `{pname}`: the initrd would end {} above the 1 GiB boundary below the kernel; Linux needs kernel and initrd inside one 32 GiB window",
                        hex(span)
                    ),
                );
                None
            }
        }
    }

    /// CFG-50: the first memory region, which holds kernel, initrd and
    /// device tree. Its IPA range, when it can be used.
    fn linux_region(
        &mut self,
        part: usize,
        p: &'a s::Partition,
    ) -> Option<(u64, u64, &'a s::MemRegion)> {
        let pname = p.name.get_ref();
        let Some(first) = p.memory.get_ref().first() else {
            self.err(
                Rule::LinuxPlacement,
                p.memory.span(),
                format!("Linux partition `{pname}` has no memory region to boot from"),
            );
            return None;
        };
        let r = first.get_ref();
        let what = format!(
            "memory region `{}` of Linux partition `{pname}` (the first one, which holds kernel, initrd and device tree)",
            r.name.get_ref()
        );
        let mut ok = true;
        if v(&r.perms) != s::Perms::Rwx {
            ok = false;
            self.err(
                Rule::LinuxPlacement,
                r.perms.span(),
                format!("{what} must be \"rwx\": the kernel runs from it"),
            );
        }
        if let Some(sw) = r.shared_with.first() {
            ok = false;
            self.err(
                Rule::LinuxPlacement,
                sw.span(),
                format!("{what} must not be shared: Linux takes it as its own RAM"),
            );
        }
        let ipa = v(&r.ipa);
        if !aligned(ipa, linux::ALIGN) {
            ok = false;
            self.err(
                Rule::LinuxPlacement,
                r.ipa.span(),
                format!(
                    "{what}: ipa {} is not 2 MiB aligned; the kernel's base must be",
                    hx(ipa)
                ),
            );
        }
        // The region's own rules (CFG-19..27) must have passed, too.
        let checked = self
            .mems
            .iter()
            .find(|m| m.part == part && std::ptr::eq(m.r, r))
            .and_then(|m| m.ipa)?;
        ok.then_some((checked.start.0, checked.size, r))
    }

    /// CFG-51.
    fn linux_stdout(&mut self, p: &'a s::Partition, l: &'a s::Linux) {
        let Some(out) = &l.stdout else { return };
        let (pname, name) = (p.name.get_ref(), out.get_ref());
        let dev = p
            .devices
            .iter()
            .find(|d| d.get_ref().name.get_ref() == name);
        let problem = match dev.map(|d| (d, d.get_ref())) {
            None => Some((
                format!("linux.stdout names `{name}`, but partition `{pname}` has no device of that name"),
                None,
            )),
            Some((ds, d)) if v(&d.kind) != s::DeviceKind::Passthrough => Some((
                format!("linux.stdout names `{name}`, a virtual-uart; it must be a passthrough device, since only those are described in the device tree"),
                Some(ds.span()),
            )),
            Some((ds, d)) if d.compatible.is_none() => Some((
                format!("linux.stdout names `{name}`, which has no compatible and so is not in the device tree"),
                Some(ds.span()),
            )),
            Some(_) => None,
        };
        if let Some((msg, at)) = problem {
            let mut d = Diagnostic::new(Rule::LinuxStdout, out.span(), msg);
            if let Some(at) = at {
                d = d.note(at, "the device");
            }
            self.push(d);
        }
    }

    /// CFG-49: the kernel's Image header.
    fn kernel_header(
        &mut self,
        what: &str,
        rel: &Spanned<String>,
        f: &ImageFile,
    ) -> Option<ImageHeader> {
        let mut head = Vec::with_capacity(linux::HEADER_LEN);
        let read = fs::File::open(&f.path)
            .and_then(|file| file.take(linux::HEADER_LEN as u64).read_to_end(&mut head));
        if let Err(e) = read {
            self.err(
                Rule::ImageFile,
                rel.span(),
                format!("{what}: cannot read {}: {e}", f.path.display()),
            );
            return None;
        }
        match linux::parse_header(&head) {
            Ok(h) => Some(h),
            Err(e) => {
                self.err(
                    Rule::KernelImage,
                    rel.span(),
                    format!("{what}: {} is not an arm64 Image: {e}", f.path.display()),
                );
                None
            }
        }
    }

    fn names_and_criticality(&mut self) {
        let parts = &self.file.partition;
        let mut names: HashMap<&str, Span> = HashMap::new();
        let mut critical: Vec<&Spanned<s::Criticality>> = Vec::new();
        for p in parts {
            let p = p.get_ref();
            let name = p.name.get_ref().as_str();
            if name.is_empty() {
                self.err(
                    Rule::PartitionName,
                    p.name.span(),
                    "partition name is empty",
                );
            } else if let Some(c) = name
                .chars()
                .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
            {
                self.err(
                    Rule::PartitionName,
                    p.name.span(),
                    format!("partition name {name:?} contains {c:?}; use only a-z, 0-9 and -"),
                );
            }
            if let Some(first) = names.get(name) {
                self.push(
                    Diagnostic::new(
                        Rule::PartitionNameUnique,
                        p.name.span(),
                        format!("there is already a partition named {name:?}"),
                    )
                    .note(first.clone(), "first defined here"),
                );
            } else {
                names.insert(name, p.name.span());
            }
            if v(&p.criticality) == s::Criticality::Critical {
                critical.push(&p.criticality);
            }
        }
        match critical.as_slice() {
            [] => self.err(
                Rule::OneCritical,
                parts[0].get_ref().criticality.span(),
                "no partition is critical; exactly one must be",
            ),
            [_] => {}
            [first, rest @ ..] => {
                for c in rest {
                    self.push(
                        Diagnostic::new(
                            Rule::OneCritical,
                            c.span(),
                            format!(
                                "{} partitions are critical; exactly one may be",
                                critical.len()
                            ),
                        )
                        .note(first.span(), "the first critical partition"),
                    );
                }
            }
        }
    }

    fn cores(&mut self) {
        let mut owner: HashMap<u64, (usize, Span)> = HashMap::new();
        for (i, p) in self.file.partition.iter().enumerate() {
            let p = p.get_ref();
            let name = p.name.get_ref();
            if p.cores.get_ref().is_empty() {
                self.err(
                    Rule::CoreNone,
                    p.cores.span(),
                    format!("partition `{name}` has no cores"),
                );
            }
            let mut seen: HashMap<u64, Span> = HashMap::new();
            for c in p.cores.get_ref() {
                let n = v(c);
                if let Some(cpus) = self.cpus {
                    if n >= cpus {
                        self.err(
                            Rule::CoreExists,
                            c.span(),
                            format!(
                                "core {n} does not exist: platform.cpus = {cpus}, so cores are 0..={}",
                                cpus - 1
                            ),
                        );
                        continue;
                    }
                }
                if let Some(first) = seen.get(&n) {
                    self.push(
                        Diagnostic::new(
                            Rule::CoreDuplicate,
                            c.span(),
                            format!("core {n} is listed twice in partition `{name}`"),
                        )
                        .note(first.clone(), "first listed here"),
                    );
                    continue;
                }
                seen.insert(n, c.span());
                if let Some((j, s)) = owner.get(&n) {
                    let d = Diagnostic::new(
                        Rule::CoreShared,
                        c.span(),
                        format!(
                            "core {n} already belongs to partition `{}`; cores are never shared",
                            self.part_name(*j)
                        ),
                    )
                    .note(s.clone(), "given away here");
                    self.push(d);
                } else {
                    owner.insert(n, (i, c.span()));
                }
            }
        }
    }

    fn item_names(&mut self, p: &'a s::Partition) {
        let lists: [(&str, Vec<&Spanned<String>>); 3] = [
            (
                "memory region",
                p.memory
                    .get_ref()
                    .iter()
                    .map(|r| &r.get_ref().name)
                    .collect(),
            ),
            (
                "device",
                p.devices.iter().map(|d| &d.get_ref().name).collect(),
            ),
            (
                "image",
                p.images.iter().map(|i| &i.get_ref().name).collect(),
            ),
        ];
        for (kind, names) in lists {
            let mut seen: HashMap<&str, Span> = HashMap::new();
            for n in names {
                if n.get_ref().is_empty() {
                    self.err(Rule::ItemNames, n.span(), format!("{kind} name is empty"));
                } else if let Some(first) = seen.get(n.get_ref().as_str()) {
                    self.push(
                        Diagnostic::new(
                            Rule::ItemNames,
                            n.span(),
                            format!(
                                "partition `{}` already has a {kind} named {:?}",
                                p.name.get_ref(),
                                n.get_ref()
                            ),
                        )
                        .note(first.clone(), "first defined here"),
                    );
                } else {
                    seen.insert(n.get_ref(), n.span());
                }
            }
        }
    }

    fn memory_region(&mut self, part: usize, r: &'a s::MemRegion) {
        let what = format!(
            "memory region `{}` of partition `{}`",
            r.name.get_ref(),
            self.part_name(part)
        );
        for (key, val) in [("ipa", &r.ipa), ("pa", &r.pa), ("size", &r.size)] {
            if !aligned(v(val), PAGE) {
                self.err(
                    Rule::MemAlign,
                    val.span(),
                    format!("{what}: {key} {} is not 4 KiB aligned", hx(v(val))),
                );
            }
        }
        let mut mem = Mem {
            part,
            r,
            pa: None,
            ipa: None,
        };
        if self.nonempty(&what, &r.size) {
            if self.no_overflow(&what, "pa", &r.pa, &r.size) {
                mem.pa = Some(pa_range(v(&r.pa), v(&r.size)));
            }
            if self.no_overflow(&what, "ipa", &r.ipa, &r.size) {
                mem.ipa = Some(ipa_range(v(&r.ipa), v(&r.size)));
            }
        }
        if let Some(pa) = mem.pa {
            if !self.ram.is_empty() && !self.in_ram(&pa) {
                let banks: Vec<String> =
                    self.ram.iter().map(|b| range(b.start.0, b.size)).collect();
                self.push(
                    Diagnostic::new(
                        Rule::MemInRam,
                        r.pa.span(),
                        format!(
                            "{what}: PA range {} is not inside one RAM bank",
                            range(pa.start.0, pa.size)
                        ),
                    )
                    .note(None, format!("RAM banks: {}", banks.join(", "))),
                );
            }
            if let Some(h) = self.hyp {
                if h.overlaps(&pa) {
                    self.push(
                        Diagnostic::new(
                            Rule::MemHypervisor,
                            r.pa.span(),
                            format!(
                                "{what}: PA range {} overlaps the hypervisor region {}",
                                range(pa.start.0, pa.size),
                                range(h.start.0, h.size)
                            ),
                        )
                        .note(
                            self.file.platform.get_ref().hypervisor.span(),
                            "the hypervisor region is declared here",
                        ),
                    );
                }
            }
        }
        if let Some(ipa) = mem.ipa {
            if ends_above_ipa_space(&ipa) {
                self.err(
                    Rule::IpaLimit,
                    r.ipa.span(),
                    format!(
                        "{what}: IPA range {} ends above 2^39 ({}), the top of the 39-bit IPA space",
                        range(ipa.start.0, ipa.size),
                        hex(IPA_LIMIT)
                    ),
                );
            }
        }
        self.mems.push(mem);
    }

    fn device(&mut self, part: usize, ds: &'a Spanned<s::Device>) {
        let d = ds.get_ref();
        let what = format!(
            "device `{}` of partition `{}`",
            d.name.get_ref(),
            self.part_name(part)
        );
        let mut dev = Dev {
            part,
            d,
            pa: None,
            ipa: None,
            reserved: false,
        };
        match v(&d.kind) {
            s::DeviceKind::Passthrough => {
                for (key, val) in [("pa", &d.pa), ("size", &d.size)] {
                    if val.is_none() {
                        self.err(
                            Rule::DeviceForm,
                            ds.span(),
                            format!("{what}: a passthrough device needs `{key}`"),
                        );
                    }
                }
                if let (Some(pa), Some(size)) = (&d.pa, &d.size) {
                    for (key, val) in [("pa", pa), ("ipa", &d.ipa), ("size", size)] {
                        if !aligned(v(val), PAGE) {
                            self.err(
                                Rule::DeviceAlign,
                                val.span(),
                                format!("{what}: {key} {} is not 4 KiB aligned", hx(v(val))),
                            );
                        }
                    }
                    if self.nonempty(&what, size) {
                        if self.no_overflow(&what, "pa", pa, size) {
                            dev.pa = Some(pa_range(v(pa), v(size)));
                        }
                        if self.no_overflow(&what, "ipa", &d.ipa, size) {
                            dev.ipa = Some(ipa_range(v(&d.ipa), v(size)));
                        }
                    }
                }
                if let (Some(r), Some(pa)) = (dev.pa, &d.pa) {
                    if !self.mmio.is_empty() && !self.in_mmio(&r) {
                        self.err(
                            Rule::DeviceInMmio,
                            pa.span(),
                            format!(
                                "{what}: PA range {} is not inside one platform MMIO window",
                                range(r.start.0, r.size)
                            ),
                        );
                    }
                    let clashes: Vec<Diagnostic> = self
                        .reserved
                        .iter()
                        .filter(|(_, res, _)| res.overlaps(&r))
                        .map(|(label, res, res_span)| {
                            Diagnostic::new(
                                Rule::DeviceReserved,
                                pa.span(),
                                format!(
                                    "{what}: PA range {} overlaps {label} {}, which only the hypervisor may use",
                                    range(r.start.0, r.size),
                                    range(res.start.0, res.size)
                                ),
                            )
                            .note(res_span.clone(), format!("{label} is declared here"))
                        })
                        .collect();
                    dev.reserved = !clashes.is_empty();
                    self.errs.extend(clashes);
                }
                self.device_tree_keys(&what, d);
            }
            s::DeviceKind::VirtualUart => {
                let extra: [(&str, Option<Span>); 7] = [
                    ("pa", d.pa.as_ref().map(Spanned::span)),
                    ("size", d.size.as_ref().map(Spanned::span)),
                    ("irqs", d.irqs.as_ref().map(Spanned::span)),
                    ("dma", d.dma.as_ref().map(Spanned::span)),
                    ("shared-with", d.shared_with.as_ref().map(Spanned::span)),
                    ("compatible", d.compatible.as_ref().map(Spanned::span)),
                    ("reg-size", d.reg_size.as_ref().map(Spanned::span)),
                ];
                for (key, span) in extra {
                    if let Some(span) = span {
                        self.err(
                            Rule::DeviceForm,
                            span,
                            format!("{what}: `{key}` does not apply to a virtual-uart (it takes name, kind and ipa)"),
                        );
                    }
                }
                if !aligned(v(&d.ipa), PAGE) {
                    self.err(
                        Rule::DeviceAlign,
                        d.ipa.span(),
                        format!("{what}: ipa {} is not 4 KiB aligned", hx(v(&d.ipa))),
                    );
                }
                if v(&d.ipa).checked_add(PAGE).is_some() {
                    dev.ipa = Some(ipa_range(v(&d.ipa), PAGE));
                }
            }
        }
        match dev.ipa {
            Some(ipa) if ends_above_ipa_space(&ipa) => self.err(
                Rule::IpaLimit,
                d.ipa.span(),
                format!(
                    "{what}: IPA range {} ends above 2^39 ({}), the top of the 39-bit IPA space",
                    range(ipa.start.0, ipa.size),
                    hex(IPA_LIMIT)
                ),
            ),
            None if v(&d.kind) == s::DeviceKind::VirtualUart => self.err(
                Rule::IpaLimit,
                d.ipa.span(),
                format!(
                    "{what}: ipa {} is beyond the 39-bit IPA space",
                    hx(v(&d.ipa))
                ),
            ),
            _ => {}
        }
        for irq in d.irqs.iter().flat_map(|l| l.get_ref()) {
            let n = v(irq);
            if n == self.maintenance_irq {
                self.err(
                    Rule::IrqRange,
                    irq.span(),
                    format!("{what}: irq {n} is the GIC maintenance interrupt"),
                );
            } else if !SPIS.contains(&n) {
                let kind = match n {
                    0..=15 => " (it is an SGI)",
                    16..=31 => " (it is a PPI, private to each core and owned by the hypervisor)",
                    _ => "",
                };
                self.err(
                    Rule::IrqRange,
                    irq.span(),
                    format!("{what}: irq {n} is not an SPI (32..=1019){kind}"),
                );
            }
        }
        self.devs.push(dev);
    }

    /// CFG-46, CFG-47: the keys that only feed the device tree.
    fn device_tree_keys(&mut self, what: &str, d: &'a s::Device) {
        if let Some(c) = &d.compatible {
            let list = &c.get_ref().0;
            if list.is_empty() {
                self.err(
                    Rule::DtDevice,
                    c.span(),
                    format!("{what}: compatible is an empty list; leave the key out to keep the device out of the device tree"),
                );
            }
            for entry in list {
                if entry.is_empty() {
                    self.err(
                        Rule::DtDevice,
                        c.span(),
                        format!("{what}: compatible has an empty entry"),
                    );
                } else if !entry.chars().all(|ch| ch.is_ascii_graphic()) {
                    self.err(
                        Rule::DtDevice,
                        c.span(),
                        format!("{what}: compatible entry {entry:?} must be printable ASCII without spaces"),
                    );
                }
            }
            let name = d.name.get_ref();
            if !name.is_empty() && !node_name_ok(name) {
                self.err(
                    Rule::DtDevice,
                    d.name.span(),
                    format!("{what}: {name:?} is not a device-tree node name (1 to {NODE_NAME_MAX} of a-z A-Z 0-9 , . _ + -, starting with a letter), which a device with a compatible needs"),
                );
            }
        }
        if let Some(r) = &d.reg_size {
            let rs = v(r);
            let size = d.size.as_ref().map(v);
            if rs == 0 {
                self.err(Rule::RegSize, r.span(), format!("{what}: reg-size is 0"));
            } else if let Some(size) = size.filter(|&sz| rs > sz) {
                self.err(
                    Rule::RegSize,
                    r.span(),
                    format!(
                        "{what}: reg-size {} is larger than the mapped size {}",
                        hx(rs),
                        hx(size)
                    ),
                );
            }
        }
    }

    /// CFG-25: every shared-with entry names another, existing partition,
    /// once, and that partition has the matching region or device.
    fn shared_with(&mut self) {
        let parts = &self.file.partition;
        let mut errs = Vec::new();
        for m in &self.mems {
            let what = format!(
                "memory region `{}` of partition `{}`",
                m.r.name.get_ref(),
                self.part_name(m.part)
            );
            for (q, e) in check_shared_list(&mut errs, parts, m.part, &what, &m.r.shared_with) {
                let Some(pa) = m.pa else { continue };
                if !self.mems.iter().any(|o| o.part == q && o.pa == Some(pa)) {
                    errs.push(Diagnostic::new(
                        Rule::SharedWith,
                        e.span(),
                        format!(
                            "{what} is shared with `{}`, but `{}` has no memory region with the same PA range {}",
                            e.get_ref(),
                            e.get_ref(),
                            range(pa.start.0, pa.size)
                        ),
                    ));
                }
            }
        }
        for d in &self.devs {
            let what = format!(
                "device `{}` of partition `{}`",
                d.d.name.get_ref(),
                self.part_name(d.part)
            );
            for (q, e) in check_shared_list(&mut errs, parts, d.part, &what, d.shared_with()) {
                let Some(pa) = d.pa else { continue };
                if !self
                    .devs
                    .iter()
                    .any(|o| o.part == q && o.pa.is_some_and(|o| o.overlaps(&pa)))
                {
                    errs.push(Diagnostic::new(
                        Rule::SharedWith,
                        e.span(),
                        format!(
                            "{what} is shared with `{}`, but `{}` has no passthrough device overlapping {}",
                            e.get_ref(),
                            e.get_ref(),
                            range(pa.start.0, pa.size)
                        ),
                    ));
                }
            }
        }
        self.errs.extend(errs);
    }

    fn lists(list: &[Spanned<String>], name: &str) -> bool {
        list.iter().any(|e| e.get_ref() == name)
    }

    /// CFG-24.
    fn memory_overlaps(&mut self) {
        let mut errs = Vec::new();
        for (j, b) in self.mems.iter().enumerate() {
            let Some(bpa) = b.pa else { continue };
            for a in &self.mems[..j] {
                let Some(apa) = a.pa else { continue };
                if !apa.overlaps(&bpa) {
                    continue;
                }
                let (an, bn) = (self.part_name(a.part), self.part_name(b.part));
                let msg = if a.part == b.part {
                    format!(
                        "memory regions `{}` {} and `{}` {} of partition `{an}` overlap in PA",
                        a.r.name.get_ref(),
                        range(apa.start.0, apa.size),
                        b.r.name.get_ref(),
                        range(bpa.start.0, bpa.size),
                    )
                } else {
                    let mutual =
                        Self::lists(&a.r.shared_with, bn) && Self::lists(&b.r.shared_with, an);
                    if mutual && apa == bpa {
                        continue;
                    }
                    let why = if mutual {
                        "shared regions must have identical PA ranges"
                    } else {
                        "memory may overlap only when both regions name each other's partition in shared-with"
                    };
                    format!(
                        "memory region `{}` of partition `{bn}` {} overlaps memory region `{}` of partition `{an}` {}: {why}",
                        b.r.name.get_ref(),
                        range(bpa.start.0, bpa.size),
                        a.r.name.get_ref(),
                        range(apa.start.0, apa.size),
                    )
                };
                errs.push(
                    Diagnostic::new(Rule::MemOverlap, b.r.pa.span(), msg)
                        .note(a.r.pa.span(), "the other region"),
                );
            }
        }
        self.errs.extend(errs);
    }

    /// CFG-32.
    fn device_overlaps(&mut self) {
        let mut errs = Vec::new();
        for (j, b) in self.devs.iter().enumerate() {
            let (Some(bpa), Some(bspan)) = (b.pa, b.d.pa.as_ref().map(Spanned::span)) else {
                continue;
            };
            for a in &self.devs[..j] {
                let (Some(apa), Some(aspan)) = (a.pa, a.d.pa.as_ref().map(Spanned::span)) else {
                    continue;
                };
                if !apa.overlaps(&bpa) {
                    continue;
                }
                let (an, bn) = (self.part_name(a.part), self.part_name(b.part));
                if a.part != b.part
                    && Self::lists(a.shared_with(), bn)
                    && Self::lists(b.shared_with(), an)
                {
                    continue;
                }
                let why = if a.part == b.part {
                    "devices of one partition must not overlap"
                } else {
                    "devices may overlap only when both name each other's partition in shared-with"
                };
                errs.push(
                    Diagnostic::new(
                        Rule::DeviceOverlap,
                        bspan.clone(),
                        format!(
                            "device `{}` of partition `{bn}` {} overlaps device `{}` of partition `{an}` {}: {why}",
                            b.d.name.get_ref(),
                            range(bpa.start.0, bpa.size),
                            a.d.name.get_ref(),
                            range(apa.start.0, apa.size)
                        ),
                    )
                    .note(aspan, "the other device"),
                );
            }
        }
        self.errs.extend(errs);
    }

    /// CFG-26: a partition's memory and devices at distinct IPAs.
    fn ipa_overlaps(&mut self) {
        let mut items: Vec<(usize, String, GuestRange, Span)> = Vec::new();
        for m in &self.mems {
            if let Some(ipa) = m.ipa {
                items.push((
                    m.part,
                    format!("memory region `{}`", m.r.name.get_ref()),
                    ipa,
                    m.r.ipa.span(),
                ));
            }
        }
        for d in &self.devs {
            if let Some(ipa) = d.ipa {
                items.push((
                    d.part,
                    format!("device `{}`", d.d.name.get_ref()),
                    ipa,
                    d.d.ipa.span(),
                ));
            }
        }
        let mut errs = Vec::new();
        for (j, (bp, bn, br, bs)) in items.iter().enumerate() {
            for (ap, an, ar, as_) in &items[..j] {
                if ap == bp && ar.overlaps(br) {
                    errs.push(
                        Diagnostic::new(
                            Rule::IpaOverlap,
                            bs.clone(),
                            format!(
                                "in partition `{}`, {bn} at IPA {} overlaps {an} at IPA {}",
                                self.part_name(*bp),
                                range(br.start.0, br.size),
                                range(ar.start.0, ar.size)
                            ),
                        )
                        .note(as_.clone(), "the other range"),
                    );
                }
            }
        }
        self.errs.extend(errs);
    }

    /// CFG-34.
    fn irq_uniqueness(&mut self) {
        // (irq, device index, span), in file order.
        let mut all: Vec<(u64, usize, Span)> = Vec::new();
        for (i, d) in self.devs.iter().enumerate() {
            for irq in d.d.irqs.iter().flat_map(|l| l.get_ref()) {
                all.push((v(irq), i, irq.span()));
            }
        }
        let mut errs = Vec::new();
        for (k, (irq, bi, bspan)) in all.iter().enumerate() {
            let b = &self.devs[*bi];
            for (_, ai, aspan) in all[..k].iter().filter(|(n, ..)| n == irq) {
                let a = &self.devs[*ai];
                let (an, bn) = (self.part_name(a.part), self.part_name(b.part));
                let msg = if ai == bi {
                    format!(
                        "irq {irq} is listed twice for device `{}`",
                        b.d.name.get_ref()
                    )
                } else if a.part == b.part {
                    format!(
                        "irq {irq} of device `{}` is already used by device `{}` of the same partition `{bn}`",
                        b.d.name.get_ref(),
                        a.d.name.get_ref()
                    )
                } else if Self::lists(a.shared_with(), bn) && Self::lists(b.shared_with(), an) {
                    continue;
                } else {
                    format!(
                        "irq {irq} of device `{}` (partition `{bn}`) is already routed to device `{}` of partition `{an}`; only shared devices may share an irq",
                        b.d.name.get_ref(),
                        a.d.name.get_ref()
                    )
                };
                errs.push(
                    Diagnostic::new(Rule::IrqUnique, bspan.clone(), msg)
                        .note(aspan.clone(), "first used here"),
                );
                break;
            }
        }
        self.errs.extend(errs);
    }

    /// CFG-35: without an IOMMU a device's DMA addresses are physical, so the
    /// guest's idea of "physical" (the IPA) must be the real one.
    fn dma(&mut self) {
        let mut errs = Vec::new();
        for d in self.devs.iter().filter(|d| d.dma()) {
            let dma_span = d.d.dma.as_ref().map(Spanned::span);
            for m in self.mems.iter().filter(|m| m.part == d.part) {
                let (ipa, pa) = (v(&m.r.ipa), v(&m.r.pa));
                if ipa != pa {
                    errs.push(
                        Diagnostic::new(
                            Rule::DmaIdentity,
                            m.r.ipa.span(),
                            format!(
                                "DMA masters need identity mapping (no IOMMU): partition `{}` owns DMA-capable device `{}`, so memory region `{}` needs ipa == pa (it has ipa {}, pa {})",
                                self.part_name(d.part),
                                d.d.name.get_ref(),
                                m.r.name.get_ref(),
                                hx(ipa),
                                hx(pa)
                            ),
                        )
                        .note(dma_span.clone(), "dma = true here"),
                    );
                }
            }
        }
        self.errs.extend(errs);
    }

    /// The partition's memory regions that passed their checks.
    fn regions_of(&self, part: usize) -> impl Iterator<Item = (&'a s::MemRegion, GuestRange)> + '_ {
        self.mems
            .iter()
            .filter(move |m| m.part == part)
            .filter_map(|m| m.ipa.map(|ipa| (m.r, ipa)))
    }

    /// CFG-36: opens the file `rel` names (relative to the TOML file).
    fn open_file(&mut self, what: &str, rel: &Spanned<String>) -> Option<ImageFile> {
        let span = rel.span();
        let rel = rel.get_ref();
        let tried = normalize(&self.base_dir.join(rel));
        let opened = fs::File::open(&tried).and_then(|f| f.metadata());
        match opened {
            Err(e) => {
                self.err(
                    Rule::ImageFile,
                    span,
                    format!(
                        "{what}: cannot read {rel:?}: tried {}: {e}",
                        tried.display()
                    ),
                );
                None
            }
            Ok(m) if !m.is_file() => {
                self.err(
                    Rule::ImageFile,
                    span,
                    format!(
                        "{what}: {rel:?} is not a regular file (tried {})",
                        tried.display()
                    ),
                );
                None
            }
            Ok(m) => match fs::canonicalize(&tried) {
                Ok(path) if path.to_str().is_some() => Some(ImageFile { path, len: m.len() }),
                Ok(path) => {
                    self.err(
                        Rule::ImageFile,
                        span,
                        format!(
                            "{what}: the path {} is not UTF-8, which include_bytes! needs",
                            path.display()
                        ),
                    );
                    None
                }
                Err(e) => {
                    self.err(
                        Rule::ImageFile,
                        span,
                        format!("{what}: cannot resolve {}: {e}", tried.display()),
                    );
                    None
                }
            },
        }
    }

    /// CFG-37.
    fn file_nonempty(&mut self, what: &str, rel: &Spanned<String>, f: &ImageFile) -> bool {
        if f.len == 0 {
            self.err(
                Rule::ImageEmpty,
                rel.span(),
                format!("{what}: {} is empty", f.path.display()),
            );
        }
        f.len > 0
    }

    /// CFG-36..39.
    fn images(&mut self, part: usize, p: &'a s::Partition) {
        let pname = p.name.get_ref();
        let mut files = Vec::new();
        for img in &p.images {
            let img = img.get_ref();
            let what = format!("image `{}` of partition `{pname}`", img.name.get_ref());
            let file = self.open_file(&what, &img.file);
            if let Some(f) = &file {
                if self.file_nonempty(&what, &img.file, f) {
                    self.image_fits(part, img, &what, f.len);
                }
            }
            files.push(file);
        }

        // CFG-39, between images whose size is known.
        let mut placed: Vec<(GuestRange, &s::Image)> = Vec::new();
        for (img, f) in p.images.iter().zip(&files) {
            let img = img.get_ref();
            let Some(f) = f.as_ref().filter(|f| f.len > 0) else {
                continue;
            };
            let r = ipa_range(v(&img.load), f.len);
            for (o, other) in &placed {
                if o.overlaps(&r) {
                    self.push(
                        Diagnostic::new(
                            Rule::ImageOverlap,
                            img.load.span(),
                            format!(
                                "image `{}` {} overlaps image `{}` {} of partition `{pname}`",
                                img.name.get_ref(),
                                range(r.start.0, r.size),
                                other.name.get_ref(),
                                range(o.start.0, o.size)
                            ),
                        )
                        .note(other.load.span(), "the other image"),
                    );
                }
            }
            placed.push((r, img));
        }
        self.images.push(files);
    }

    /// CFG-38.
    fn image_fits(&mut self, part: usize, img: &s::Image, what: &str, len: u64) {
        let load = v(&img.load);
        let mut host = None;
        for (r, ipa) in self.regions_of(part) {
            if ipa.contains_span(GuestPhysAddr(load), len) {
                return;
            }
            if ipa.contains(GuestPhysAddr(load)) {
                host = Some((r, ipa));
            }
        }
        let msg = match host {
            Some((r, ipa)) => format!(
                "{what}: {len} bytes loaded at {} end at {}, past the end of memory region `{}` {}",
                hx(load),
                hex(u128::from(load) + u128::from(len)),
                r.name.get_ref(),
                range(ipa.start.0, ipa.size)
            ),
            None => format!(
                "{what}: load address {} is not inside any memory region of the partition",
                hx(load)
            ),
        };
        self.err(Rule::ImageFits, img.load.span(), msg);
    }

    /// CFG-40.
    fn entry(&mut self, part: usize, p: &'a s::Partition, entry: &'a Spanned<u64>) {
        let e = v(entry);
        let hit = self
            .regions_of(part)
            .find(|(_, ipa)| ipa.contains(GuestPhysAddr(e)));
        match hit {
            Some((r, _)) if matches!(v(&r.perms), s::Perms::Rx | s::Perms::Rwx) => {}
            Some((r, _)) => self.push(
                Diagnostic::new(
                    Rule::Entry,
                    entry.span(),
                    format!(
                        "entry {} of partition `{}` lies in memory region `{}`, which is not executable",
                        hx(e),
                        p.name.get_ref(),
                        r.name.get_ref()
                    ),
                )
                .note(r.perms.span(), "its permissions"),
            ),
            None => self.err(
                Rule::Entry,
                entry.span(),
                format!("entry {} of partition `{}` is not inside any of its memory regions", hx(e), p.name.get_ref()),
            ),
        }
    }

    /// CFG-41..43.
    fn fault_policy(&mut self, p: &'a s::Partition) {
        let Some(fp) = &p.fault_policy else { return };
        let fp = fp.get_ref();
        let pname = p.name.get_ref();
        let critical = v(&p.criticality) == s::Criticality::Critical;
        let actions = [
            (
                "access-violation",
                &fp.access_violation,
                DEFAULT_FAULT_POLICY.access_violation,
            ),
            (
                "illegal-instruction",
                &fp.illegal_instruction,
                DEFAULT_FAULT_POLICY.illegal_instruction,
            ),
            (
                "system-reset",
                &fp.system_reset,
                DEFAULT_FAULT_POLICY.system_reset,
            ),
            (
                "system-off",
                &fp.system_off,
                DEFAULT_FAULT_POLICY.system_off,
            ),
            ("watchdog", &fp.watchdog, DEFAULT_FAULT_POLICY.watchdog),
        ];
        for (key, val, _) in &actions {
            let Some(val) = val else { continue };
            match v(val) {
                s::FaultAction::InjectAbort if matches!(*key, "system-reset" | "system-off" | "watchdog") => self.err(
                    Rule::InjectAbort,
                    val.span(),
                    format!("{key} = \"inject-abort\": a {key} request has no instruction to abort; use restart, stop or safe-state"),
                ),
                s::FaultAction::SafeState if !critical => self.err(
                    Rule::SafeState,
                    val.span(),
                    format!("{key} = \"safe-state\" in non-critical partition `{pname}`: only the critical partition may stop the whole system"),
                ),
                _ => {}
            }
        }

        let mut max = u64::from(DEFAULT_FAULT_POLICY.max_restarts);
        let mut window = u64::from(DEFAULT_FAULT_POLICY.restart_window_ms);
        for (key, val, out) in [
            ("max-restarts", &fp.max_restarts, &mut max),
            ("restart-window-ms", &fp.restart_window_ms, &mut window),
        ] {
            let Some(val) = val else { continue };
            match u32::try_from(v(val)) {
                Ok(x) => *out = u64::from(x),
                Err(_) => self.err(
                    Rule::RestartBudget,
                    val.span(),
                    format!("{key} is {}; it must be between 0 and {}", v(val), u32::MAX),
                ),
            }
        }
        if max > RESTART_BUDGET_CAPACITY as u64 {
            let span = fp.max_restarts.as_ref().map(Spanned::span);
            self.err(
                Rule::RestartCapacity,
                span,
                format!("max-restarts is {max}; the hypervisor's restart budget tracks at most {RESTART_BUDGET_CAPACITY} restarts"),
            );
        }
        if max > 0 && window == 0 {
            let span = fp.restart_window_ms.as_ref().map(Spanned::span);
            self.err(
                Rule::RestartBudget,
                span,
                format!("restart-window-ms is 0 but max-restarts is {max}: the restart budget needs a window"),
            );
        }
        if max == 0 && fp.max_restarts.is_some() {
            for (key, val, default) in &actions {
                let explicit = val.as_ref().map(|x| (v(x), x.span()));
                let restart = match &explicit {
                    Some((a, _)) => *a == s::FaultAction::Restart,
                    // A default for a watchdog the partition does not have
                    // never applies.
                    None if *key == "watchdog" && p.watchdog.is_none() => false,
                    None => *default == FaultAction::Restart,
                };
                if !restart {
                    continue;
                }
                let (span, how) = match explicit {
                    Some((_, span)) => (Some(span), "is"),
                    None => (fp.max_restarts.as_ref().map(Spanned::span), "defaults to"),
                };
                self.err(
                    Rule::RestartBudget,
                    span,
                    format!("{key} {how} \"restart\" but max-restarts = 0 forbids every restart; choose stop (or safe-state) or allow restarts"),
                );
            }
        }
    }

    // ------------------------------------------------------------ build model

    /// CFG-54: the `[boot]` table (both versions default to 0).
    fn boot(&mut self) -> model::Boot {
        let Some(b) = &self.file.boot else {
            return model::Boot {
                security_version: 0,
                min_security_version: 0,
            };
        };
        let b = b.get_ref();
        let mut get = |key: &str, x: &Option<Spanned<i64>>| -> u32 {
            let Some(x) = x else { return 0 };
            match u32::try_from(v(x)) {
                Ok(n) => n,
                Err(_) => {
                    self.err(
                        Rule::SecurityVersion,
                        x.span(),
                        format!("{key} = {} is outside 0..=4294967295", v(x)),
                    );
                    0
                }
            }
        };
        let svn = get("security-version", &b.security_version);
        let min = get("min-security-version", &b.min_security_version);
        if svn < min {
            let span = b
                .security_version
                .as_ref()
                .or(b.min_security_version.as_ref())
                .map(Spanned::span);
            self.err(
                Rule::SecurityVersion,
                span,
                format!(
                    "security-version {svn} is below min-security-version {min}: the hypervisor built from this file would refuse its own manifest"
                ),
            );
        }
        model::Boot {
            security_version: svn,
            min_security_version: min,
        }
    }

    /// CFG-55: every image fits a manifest entry, and all of them fit the
    /// manifest. A Linux partition loads `kernel`, `initrd` (if any) and `dtb`.
    fn manifest_capacity(&mut self) {
        use septum_core::measure::manifest::{name_field, MAX_ENTRIES};
        let mut total = 0usize;
        let mut last_span = None;
        for p in &self.file.partition {
            let p = p.get_ref();
            if let Some(l) = &p.linux {
                let l = l.get_ref();
                total += 2 + usize::from(l.initrd.is_some());
                last_span = Some(p.name.span());
            }
            for img in &p.images {
                let img = img.get_ref();
                total += 1;
                last_span = Some(img.name.span());
                if !img.name.get_ref().is_empty() && name_field(img.name.get_ref()).is_none() {
                    self.err(
                        Rule::ManifestCapacity,
                        img.name.span(),
                        format!(
                            "image name {:?} does not fit the boot manifest: at most 16 printable ASCII characters, no spaces",
                            img.name.get_ref()
                        ),
                    );
                }
            }
            if name_field(p.name.get_ref()).is_none() && !p.name.get_ref().is_empty() {
                self.err(
                    Rule::ManifestCapacity,
                    p.name.span(),
                    format!(
                        "partition name {:?} does not fit the boot manifest: at most 16 characters",
                        p.name.get_ref()
                    ),
                );
            }
        }
        if total > MAX_ENTRIES {
            self.err(
                Rule::ManifestCapacity,
                last_span,
                format!(
                    "{total} images in the system; the boot manifest holds at most {MAX_ENTRIES}"
                ),
            );
        }
    }

    fn build(&self, path: &Path, boot: model::Boot) -> model::ValidatedConfig {
        let p = self.file.platform.get_ref();
        let g = p.gic.get_ref();
        let opt = |x: &Option<Spanned<u64>>| x.as_ref().map_or(0, v);
        let gic = Gic {
            version: if v(&g.version) == 2 {
                GicVersion::V2
            } else {
                GicVersion::V3
            },
            gicd: PhysAddr(v(&g.gicd)),
            gicr: PhysAddr(opt(&g.gicr)),
            gicr_stride: opt(&g.gicr_stride),
            gicc: PhysAddr(opt(&g.gicc)),
            gich: PhysAddr(opt(&g.gich)),
            gicv: PhysAddr(opt(&g.gicv)),
            maintenance_irq: v(&g.maintenance_irq) as u32,
        };
        let b = p.cpu_boot.get_ref();
        let cpu_boot = match v(&b.method) {
            s::BootMethod::Psci => {
                CpuBoot::Psci(match b.conduit.as_ref().map(|c| c.get_ref().as_str()) {
                    Some("hvc") => Conduit::Hvc,
                    _ => Conduit::Smc,
                })
            }
            s::BootMethod::SpinTable => {
                let mut release = [PhysAddr(0); SPIN_TABLE_SLOTS];
                for (slot, a) in release
                    .iter_mut()
                    .zip(b.release.iter().flat_map(|r| r.get_ref()))
                {
                    *slot = PhysAddr(v(a));
                }
                CpuBoot::SpinTable { release }
            }
        };
        let safe_state = match p.safe_state.as_ref().map(|s| s.get_ref()) {
            Some(st) if st.action.get_ref() == "power-off" => SafeStateAction::PowerOff,
            Some(st) if st.action.get_ref() == "gpio" => SafeStateAction::Gpio {
                pin: st.pin.as_ref().map_or(0, v) as u8,
                high: st.level.as_ref().is_none_or(|l| l.get_ref() == "high"),
            },
            _ => SafeStateAction::Park,
        };
        let console = p.console.get_ref();
        let platform = model::Platform {
            board: match v(&p.board) {
                s::Board::QemuVirt => Board::QemuVirt,
                s::Board::Rpi4 => Board::RaspberryPi4,
            },
            cpus: v(&p.cpus) as u8,
            ram: self.ram.clone(),
            mmio: self.mmio.clone(),
            hypervisor: self.hyp.unwrap_or(PhysRange::new(PhysAddr(0), 0)),
            load_addr: PhysAddr(v(&p.load_addr)),
            console: Uart {
                kind: match v(&console.kind) {
                    s::UartKind::Pl011 => UartKind::Pl011,
                    s::UartKind::MiniUart => UartKind::MiniUart,
                },
                base: PhysAddr(v(&console.base)),
            },
            gic,
            cpu_boot,
            safe_state,
        };
        let partitions = self
            .file
            .partition
            .iter()
            .enumerate()
            .map(|(id, ps)| self.build_partition(id, ps.get_ref()))
            .collect();
        model::ValidatedConfig {
            name: path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("config")
                .to_owned(),
            source: path.to_owned(),
            platform,
            boot,
            partitions,
        }
    }

    fn build_partition(&self, id: usize, p: &s::Partition) -> model::Partition {
        let names =
            |l: &[Spanned<String>]| l.iter().map(|n| n.get_ref().clone()).collect::<Vec<_>>();
        let memory = p
            .memory
            .get_ref()
            .iter()
            .map(|r| {
                let r = r.get_ref();
                model::MemRegion {
                    name: r.name.get_ref().clone(),
                    ipa: GuestPhysAddr(v(&r.ipa)),
                    pa: PhysAddr(v(&r.pa)),
                    size: v(&r.size),
                    perms: match v(&r.perms) {
                        s::Perms::R => Perms::R,
                        s::Perms::Rw => Perms::RW,
                        s::Perms::Rx => Perms::RX,
                        s::Perms::Rwx => Perms::RWX,
                    },
                    shared_with: names(&r.shared_with),
                }
            })
            .collect();
        let devices = p
            .devices
            .iter()
            .map(|d| {
                let d = d.get_ref();
                let kind = match v(&d.kind) {
                    s::DeviceKind::Passthrough => DeviceKind::Passthrough {
                        pa: PhysAddr(d.pa.as_ref().map_or(0, v)),
                        ipa: GuestPhysAddr(v(&d.ipa)),
                        size: d.size.as_ref().map_or(0, v),
                        dma: d.dma.as_ref().is_some_and(v),
                    },
                    s::DeviceKind::VirtualUart => DeviceKind::VirtualUart {
                        ipa: GuestPhysAddr(v(&d.ipa)),
                    },
                };
                model::Device {
                    name: d.name.get_ref().clone(),
                    kind,
                    irqs: d
                        .irqs
                        .iter()
                        .flat_map(|l| l.get_ref())
                        .map(|i| v(i) as u32)
                        .collect(),
                    shared_with: d
                        .shared_with
                        .as_ref()
                        .map_or_else(Vec::new, |l| names(l.get_ref())),
                    compatible: d
                        .compatible
                        .as_ref()
                        .map_or_else(Vec::new, |c| c.get_ref().0.clone()),
                    reg_size: d.reg_size.as_ref().or(d.size.as_ref()).map_or(PAGE, v),
                }
            })
            .collect();
        let files = self.images.get(id).map_or(&[][..], Vec::as_slice);
        let mut images: Vec<model::Image> = p
            .images
            .iter()
            .zip(files)
            .filter_map(|(img, f)| {
                let (img, f) = (img.get_ref(), f.as_ref()?);
                Some(model::Image {
                    name: img.name.get_ref().clone(),
                    path: f.path.clone(),
                    len: f.len,
                    load: GuestPhysAddr(v(&img.load)),
                })
            })
            .collect();
        let fp = p.fault_policy.as_ref().map(|f| f.get_ref());
        let action = |x: Option<&Spanned<s::FaultAction>>, default: FaultAction| match x.map(v) {
            None => default,
            Some(s::FaultAction::InjectAbort) => FaultAction::InjectAbort,
            Some(s::FaultAction::Restart) => FaultAction::Restart,
            Some(s::FaultAction::Stop) => FaultAction::Stop,
            Some(s::FaultAction::SafeState) => FaultAction::SafeState,
        };
        let d = DEFAULT_FAULT_POLICY;
        let fault_policy = FaultPolicy {
            access_violation: action(
                fp.and_then(|f| f.access_violation.as_ref()),
                d.access_violation,
            ),
            illegal_instruction: action(
                fp.and_then(|f| f.illegal_instruction.as_ref()),
                d.illegal_instruction,
            ),
            system_reset: action(fp.and_then(|f| f.system_reset.as_ref()), d.system_reset),
            system_off: action(fp.and_then(|f| f.system_off.as_ref()), d.system_off),
            watchdog: action(fp.and_then(|f| f.watchdog.as_ref()), d.watchdog),
            max_restarts: fp
                .and_then(|f| f.max_restarts.as_ref())
                .map_or(d.max_restarts, |x| v(x) as u32),
            restart_window_ms: fp
                .and_then(|f| f.restart_window_ms.as_ref())
                .map_or(d.restart_window_ms, |x| v(x) as u32),
        };
        let mut entry = GuestPhysAddr(p.entry.as_ref().map_or(0, v));
        let mut boot_arg = p.boot_arg.as_ref().map_or(0, v);
        let plan = self.linux.get(id).and_then(Option::as_ref);
        let linux = match (plan, &p.linux) {
            (Some(plan), Some(l)) => {
                let l = l.get_ref();
                let at = &plan.at;
                images.push(model::Image {
                    name: "kernel".into(),
                    path: plan.kernel.path.clone(),
                    len: plan.kernel.len,
                    load: GuestPhysAddr(at.kernel),
                });
                if let (Some(f), Some((start, _))) = (&plan.initrd, at.initrd) {
                    images.push(model::Image {
                        name: "initrd".into(),
                        path: f.path.clone(),
                        len: f.len,
                        load: GuestPhysAddr(start),
                    });
                }
                entry = GuestPhysAddr(at.kernel);
                boot_arg = at.dtb;
                Some(model::Linux {
                    text_offset: plan.header.text_offset,
                    image_size: plan.header.image_size,
                    kernel: GuestPhysAddr(at.kernel),
                    initrd: at
                        .initrd
                        .map(|(s, e)| GuestRange::new(GuestPhysAddr(s), e - s)),
                    dtb: GuestPhysAddr(at.dtb),
                    bootargs: l
                        .bootargs
                        .as_ref()
                        .map_or_else(String::new, |b| b.get_ref().clone()),
                    stdout: l.stdout.as_ref().map(|x| x.get_ref().clone()),
                    dtb_blob: Vec::new(),
                })
            }
            _ => None,
        };
        model::Partition {
            id,
            name: p.name.get_ref().clone(),
            criticality: match v(&p.criticality) {
                s::Criticality::Critical => Criticality::Critical,
                s::Criticality::NonCritical => Criticality::NonCritical,
            },
            vmid: (id + 1) as u16,
            cores: p.cores.get_ref().iter().map(|c| v(c) as u8).collect(),
            memory,
            devices,
            images,
            entry,
            boot_arg,
            fault_policy,
            watchdog: p.watchdog.as_ref().map(|w| {
                let w = w.get_ref();
                Watchdog {
                    kind: match v(&w.kind) {
                        s::WatchdogKind::Heartbeat => WatchdogKind::Heartbeat,
                        s::WatchdogKind::SbsaGwdt => WatchdogKind::SbsaGwdt {
                            ipa: GuestPhysAddr(w.ipa.as_ref().map_or(0, v)),
                        },
                    },
                    timeout_ms: v(&w.timeout_ms).clamp(0, u32::MAX as i64) as u32,
                }
            }),
            interrupts: match p.interrupts.as_ref().map(v) {
                Some(s::Interrupts::Direct) => InterruptDelivery::Direct,
                _ => InterruptDelivery::Virtual,
            },
            channels: self.channel_ends(id),
            linux,
        }
    }
}

/// The entries of one shared-with list that name another existing
/// partition, once each; errors for the rest go to `errs`.
fn check_shared_list<'l>(
    errs: &mut Vec<Diagnostic>,
    parts: &[Spanned<s::Partition>],
    part: usize,
    what: &str,
    list: &'l [Spanned<String>],
) -> Vec<(usize, &'l Spanned<String>)> {
    let mut seen: HashMap<&str, Span> = HashMap::new();
    let mut targets = Vec::new();
    for e in list {
        let n = e.get_ref().as_str();
        if let Some(first) = seen.get(n) {
            errs.push(
                Diagnostic::new(
                    Rule::SharedWith,
                    e.span(),
                    format!("{what}: shared-with lists `{n}` twice"),
                )
                .note(first.clone(), "first listed here"),
            );
            continue;
        }
        seen.insert(n, e.span());
        match parts.iter().position(|p| p.get_ref().name.get_ref() == n) {
            Some(q) if q == part => errs.push(Diagnostic::new(
                Rule::SharedWith,
                e.span(),
                format!("{what}: shared-with names its own partition `{n}`"),
            )),
            Some(q) => targets.push((q, e)),
            None => errs.push(Diagnostic::new(
                Rule::SharedWith,
                e.span(),
                format!("{what}: shared-with names `{n}`, but there is no partition `{n}`"),
            )),
        }
    }
    targets
}

mod channels;
#[cfg(test)]
mod tests;
