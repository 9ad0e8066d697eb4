//! Guest exits: every synchronous exception, interrupt and error a guest
//! causes arrives here. The rule is that nothing a guest controls can panic
//! the hypervisor: each path ends in emulation, an error code, an injected
//! exception, or the partition's fault policy.

use aarch64_cpu::registers::{
    ELR_EL1, ELR_EL2, ESR_EL1, ESR_EL2, FAR_EL1, FAR_EL2, HPFAR_EL2, SPSR_EL1, VBAR_EL1,
};
use septum_core::addr::GuestPhysAddr;
use septum_core::config::{ChannelEnd, ChannelRole, FaultAction};
use septum_core::emu::{Device, Hit};
use septum_core::esr::{self, ExceptionClass, MmioAccess};
use septum_core::fault::Fault;
use septum_core::inject;
use tock_registers::interfaces::{Readable, Writeable};

use crate::arch::aarch64::trap::{GuestRegs, Kind, Short, ShortFrame, TrapFrame, Vector};
use crate::partition::PartitionRt;
use crate::{console, irq, lifecycle, percpu, psci, vgic};

pub fn handle(frame: &mut TrapFrame, vector: Vector) {
    match vector {
        Vector::Current { kind } => fatal(frame, kind),
        Vector::LowerA64 { kind: Kind::Sync } => guest_sync(frame),
        // Normally taken by the short path (`trap::septum_irq`).
        Vector::LowerA64 {
            kind: Kind::Irq | Kind::Fiq,
        } => irq::handle(),
        Vector::LowerA64 { kind: Kind::SError } => guest_fault(
            frame,
            Fault::AccessViolation,
            format_args!("SError (asynchronous external abort)"),
        ),
        Vector::LowerA32 { .. } => guest_fault(
            frame,
            Fault::IllegalInstruction,
            format_args!("exception from AArch32 state"),
        ),
    }
}

/// The exits the short synchronous path finishes without ELR_EL2 and
/// SPSR_EL2 in a frame (`trap::ShortFrame`): hypercalls and PSCI calls that
/// only return values, SGI generation, the system registers that read as
/// zero, and emulated MMIO that succeeds. `Slow`, with nothing changed, for
/// everything else — faults, the calls that end or park a vCPU, `MLOG_READ`
/// — which the full path then handles from the start. (Every emulation
/// decides an error before it has any effect, so an access that failed here
/// is only tried again there.) `NeedsAll`, with nothing changed, when the
/// access's register is one of x19-x28 and the frame does not hold them.
pub fn fast<const ALL: bool>(frame: &mut ShortFrame<ALL>) -> Short {
    let esr = ESR_EL2.get();
    // The hypercall and the MMIO access stay inline (the MMIO path's
    // shadowed reads need few registers); the system registers are a call
    // of their own, so that these paths do not save the registers it needs.
    let ec = esr::exception_class(esr);
    if ec == ExceptionClass::Hvc64 {
        return if fast_hvc(frame) {
            Short::Done
        } else {
            Short::Slow
        };
    }
    match ec {
        // Tested here, not in the call: an SGI written from x19-x28 goes
        // straight back for the retry.
        ExceptionClass::SysReg64 if !ShortFrame::<ALL>::holds(esr::decode_sysreg(esr).rt) => {
            Short::NeedsAll
        }
        ExceptionClass::SysReg64 => fast_sysreg(frame, esr),
        ExceptionClass::DataAbortLower => fast_mmio(frame, esr),
        _ => Short::Slow,
    }
}

fn skip_trapped_instruction() {
    ELR_EL2.set(ELR_EL2.get().wrapping_add(4));
}

#[inline(never)]
fn fast_sysreg<const ALL: bool>(frame: &mut ShortFrame<ALL>, esr: u64) -> Short {
    if !sysreg_emulate(frame, esr) {
        return Short::Slow;
    }
    skip_trapped_instruction();
    Short::Done
}

#[inline(always)]
fn fast_mmio<const ALL: bool>(frame: &mut ShortFrame<ALL>, esr: u64) -> Short {
    let Some(p) = percpu::running_partition() else {
        return Short::Slow;
    };
    let Ok(acc) = esr::decode_data_abort(esr, HPFAR_EL2.get(), FAR_EL2.get()) else {
        return Short::Slow;
    };
    if !ShortFrame::<ALL>::holds(acc.reg) {
        return Short::NeedsAll;
    }
    // The shadowed distributor words first, in this leaf function: a read
    // of GICD_CTLR (which Linux polls) costs little more than the decode.
    // (The emulation would answer the same, `septum_core::vgic::shadow`.)
    let gicd_off = acc.ipa.raw().wrapping_sub(p.gicd.0.start.raw());
    if !acc.write {
        if let Some(v) = p.gicd_shadow.read(gicd_off, acc.width) {
            frame.put(acc.reg, esr::extend_read(&acc, u64::from(v)));
            skip_trapped_instruction();
            return Short::Done;
        }
    } else if gicd_off == septum_core::vgic::v2::SGIR && p.gicd.1 == Device::GicdV2 {
        // SGI generation on a GICv2, without the second decode and the
        // device dispatch (the counterpart of a trapped ICC_SGI1R_EL1).
        return fast_sgir_v2(p, acc.width, frame.get(acc.reg));
    }
    fast_emulate(p, frame, esr)
}

#[inline(never)]
fn fast_sgir_v2(p: &PartitionRt, width: u8, value: u64) -> Short {
    if vgic::sgir_write_v2(p, percpu::running_vcpu(), width, value).is_err() {
        return Short::Slow;
    }
    skip_trapped_instruction();
    Short::Done
}

/// The rest of `fast_mmio`, which decodes the access again: cheaper than
/// handing the decoded one over, for the shadowed reads above.
#[inline(never)]
fn fast_emulate(p: &PartitionRt, regs: &mut impl GuestRegs, esr: u64) -> Short {
    let Ok(acc) = esr::decode_data_abort(esr, HPFAR_EL2.get(), FAR_EL2.get()) else {
        return Short::Slow;
    };
    if emulate_mmio(p, percpu::running_vcpu(), regs, &acc).is_err() {
        return Short::Slow;
    }
    skip_trapped_instruction();
    Short::Done
}

fn fast_hvc<const ALL: bool>(frame: &mut ShortFrame<ALL>) -> bool {
    let Some(p) = percpu::running_partition() else {
        return false;
    };
    let [x0, x1, x2, x3] = frame.args();
    if septum_core::hypercall::is_vendor_hyp(x0) {
        let Some((r0, r1)) = crate::hypercall::register_only(p, x0) else {
            return false;
        };
        frame.set_results(r0 as u64, r1);
        return true;
    }
    // Only the calls that return a value; the others end or park the vCPU.
    match psci::handle(p, [x0, x1, x2, x3]) {
        psci::Outcome::Return(v) => {
            frame.set_results(v, x1);
            true
        }
        _ => false,
    }
}

fn guest_sync(frame: &mut TrapFrame) {
    let esr = ESR_EL2.get();
    let pc = frame.elr;
    match esr::exception_class(esr) {
        ExceptionClass::DataAbortLower => data_abort(frame, esr),
        ExceptionClass::InstAbortLower => {
            let ipa = fault_ipa();
            guest_fault(
                frame,
                Fault::AccessViolation,
                format_args!(
                    "instruction fetch from IPA {ipa:#x} outside the partition (pc {pc:#x})"
                ),
            );
        }
        ExceptionClass::Hvc64 => {
            // The preferred return address is already past the HVC.
            hvc(frame);
        }
        ExceptionClass::Smc64 => guest_fault(
            frame,
            Fault::IllegalInstruction,
            format_args!(
                "SMC #{} at pc {pc:#x} (firmware calls are not allowed)",
                esr & 0xffff
            ),
        ),
        ExceptionClass::SysReg64 => sysreg(frame, esr),
        ExceptionClass::WfiWfe => frame.skip_instruction(),
        ec => guest_fault(
            frame,
            Fault::IllegalInstruction,
            format_args!("unhandled exception class {ec:?} (ESR {esr:#x}) at pc {pc:#x}"),
        ),
    }
}

fn fault_ipa() -> u64 {
    ((HPFAR_EL2.get() >> 4) << 12) | (FAR_EL2.get() & 0xfff)
}

fn data_abort(frame: &mut TrapFrame, esr: u64) {
    let pc = frame.elr;
    let Some((p, vcpu)) = percpu::running() else {
        return;
    };
    let acc = match esr::decode_data_abort(esr, HPFAR_EL2.get(), FAR_EL2.get()) {
        Ok(a) => a,
        Err(e) => {
            let ipa = fault_ipa();
            if let Some(c) = ChannelEnd::at(p.cfg.channels, GuestPhysAddr::new(ipa)) {
                return guest_fault(
                    frame,
                    Fault::AccessViolation,
                    format_args!(
                        "access to channel '{}' at IPA {ipa:#x} refused (this partition's end: {}) at pc {pc:#x}",
                        c.name,
                        match c.role {
                            ChannelRole::Reader => "reader, read-only",
                            ChannelRole::Writer => "writer, plain loads and stores only",
                        }
                    ),
                );
            }
            return guest_fault(
                frame,
                Fault::AccessViolation,
                format_args!("access to IPA {ipa:#x} outside the partition or not emulable ({e:?}) at pc {pc:#x}"),
            );
        }
    };
    match emulate_mmio(p, vcpu, frame, &acc) {
        Ok(()) => frame.skip_instruction(),
        Err(why) => guest_fault(
            frame,
            Fault::AccessViolation,
            format_args!(
                "{}-byte {} of IPA {:#x} at pc {pc:#x}: {why}",
                acc.width,
                if acc.write { "write" } else { "read" },
                acc.ipa.raw(),
            ),
        ),
    }
}

/// Emulates one trapped load or store against the partition's virtual
/// devices, found in its table of emulated ranges (`septum_core::emu`,
/// built with the partition). A load's value goes to its register.
fn emulate_mmio(
    p: &PartitionRt,
    vcpu: usize,
    regs: &mut impl GuestRegs,
    acc: &MmioAccess,
) -> Result<(), &'static str> {
    // The distributor by one compare (the same answer as the table's: the
    // ranges never overlap), everything else through the table.
    let (gicd, device) = p.gicd;
    let gicd_off = acc.ipa.raw().wrapping_sub(gicd.start.raw());
    let hit = if gicd_off < gicd.size {
        Hit {
            device,
            offset: gicd_off,
            vcpu: 0,
        }
    } else {
        p.emulated
            .lookup(acc.ipa)
            .ok_or("no memory or device of the partition there")?
    };
    let store = acc.write.then(|| regs.get(acc.reg));
    let (off, width) = (hit.offset, acc.width);
    let loaded = match hit.device {
        Device::GicdV3 => vgic::mmio_dist(p, vcpu, off, width, store)?,
        Device::GicdV2 => vgic::mmio_dist_v2(p, vcpu, off, width, store)?,
        Device::Gicr { .. } => vgic::mmio_redist(p, hit.vcpu, off, width, store)?,
        Device::Watchdog => crate::watchdog::mmio(p, off, width, store)?,
        Device::Uart => mmio_uart(p, off, width, store)?,
        Device::Doorbell { end } => crate::doorbell::mmio(p, end, off, width, store)?,
    };
    if !acc.write {
        regs.put(acc.reg, esr::extend_read(acc, loaded));
    }
    Ok(())
}

/// The partition's emulated UART: a store may complete a console line.
#[inline(never)]
fn mmio_uart(
    p: &PartitionRt,
    off: u64,
    width: u8,
    store: Option<u64>,
) -> Result<u64, &'static str> {
    let uart = p.vuart.as_ref().ok_or("no UART")?;
    let mut u = uart.lock();
    match store {
        Some(v) => {
            if let Some(line) = u
                .write(off, width, v as u32)
                .map_err(|_| "invalid UART access")?
            {
                console::partition_line(p.name(), line);
            }
            Ok(0)
        }
        None => Ok(u64::from(
            u.read(off, width).map_err(|_| "invalid UART access")?,
        )),
    }
}

fn hvc(frame: &mut TrapFrame) {
    let Some(p) = percpu::running_partition() else {
        return;
    };
    if septum_core::hypercall::is_vendor_hyp(frame.x[0]) {
        crate::hypercall::handle(p, frame);
        return;
    }
    match psci::handle(p, [frame.x[0], frame.x[1], frame.x[2], frame.x[3]]) {
        psci::Outcome::Return(v) => frame.x[0] = v,
        psci::Outcome::Fault(f) => guest_fault(frame, f, format_args!("{}", psci::describe(f))),
        psci::Outcome::CpuOff => lifecycle::park_current(),
    }
}

/// Trapped system-register accesses. Debug and PMU registers are trapped so a
/// partition cannot reach the shared debug hardware; they read as zero and
/// ignore writes (Linux probes some of them at boot). Anything else that
/// traps (implementation-defined, auxiliary control, set/way) is illegal.
/// `true`: emulated, the guest continues after the instruction; `false`: not
/// a register a guest may use.
fn sysreg_emulate(regs: &mut impl GuestRegs, esr: u64) -> bool {
    let acc = esr::decode_sysreg(esr);
    let key = acc.key();
    let sgi1 = key == esr::ICC_SGI1R_EL1 || key == esr::ICC_ASGI1R_EL1;
    if sgi1 && !acc.read {
        if let Some((p, vcpu)) = percpu::running() {
            crate::vgic::send_sgi(p, vcpu, regs.get(acc.rt));
        }
        return true;
    }
    // Group-0 SGIs do not exist for guests, and the SGI registers are
    // write-only: ignored, as a GIC with a single security state would.
    if key == esr::ICC_SGI0R_EL1 || sgi1 || acc.is_debug_or_pmu() {
        if acc.read {
            regs.put(acc.rt, 0);
        }
        return true;
    }
    false
}

#[inline(never)]
fn sysreg(frame: &mut TrapFrame, esr: u64) {
    if sysreg_emulate(frame, esr) {
        frame.skip_instruction();
        return;
    }
    let pc = frame.elr;
    let acc = esr::decode_sysreg(esr);
    guest_fault(
        frame,
        Fault::IllegalInstruction,
        format_args!(
            "{} of trapped system register S{}_{}_C{}_C{}_{} at pc {pc:#x}",
            if acc.read { "read" } else { "write" },
            acc.op0,
            acc.op1,
            acc.crn,
            acc.crm,
            acc.op2,
        ),
    );
}

/// Applies the partition's policy to a fault. Returns only when the guest
/// should continue (an exception was injected).
#[cold]
#[inline(never)]
pub fn guest_fault(frame: &mut TrapFrame, fault: Fault, what: core::fmt::Arguments<'_>) {
    let Some((p, _vcpu)) = percpu::running() else {
        log::error!("fault on core {} with no partition: {what}", percpu::core());
        return;
    };
    let action = septum_core::fault::action(&p.cfg.fault_policy, fault);
    lifecycle::announce(p, what, action);
    match action {
        FaultAction::InjectAbort => {
            let fetch = esr::exception_class(ESR_EL2.get()) == ExceptionClass::InstAbortLower;
            let kind = septum_core::fault::injection(fault, fetch, FAR_EL2.get());
            match inject::compute(frame.spsr, frame.elr, VBAR_EL1.get(), kind) {
                Ok(r) => {
                    ESR_EL1.set(r.esr_el1);
                    FAR_EL1.set(r.far_el1);
                    ELR_EL1.set(r.elr_el1);
                    SPSR_EL1.set(r.spsr_el1);
                    frame.elr = r.elr_el2;
                    frame.spsr = r.spsr_el2;
                }
                Err(_) => lifecycle::stop_partition(p, "cannot inject an exception into it"),
            }
        }
        FaultAction::Stop => lifecycle::stop_partition(p, "fault policy"),
        FaultAction::Restart => lifecycle::restart_partition(p),
        FaultAction::SafeState => lifecycle::safe_state(p, what),
    }
}

/// A fault in the hypervisor itself: print the syndrome and the registers,
/// then the whole system enters the safe state (the trusted base can no
/// longer be trusted). A fault while entering it just halts this core.
#[cold]
#[inline(never)]
fn fatal(frame: &TrapFrame, kind: Kind) -> ! {
    let esr = ESR_EL2.get();
    console::emergency(format_args!(
        "\n[septum] FATAL: hypervisor exception ({kind:?}) on core {}\n[septum]   ESR_EL2 {esr:#018x} (EC {:#x})  ELR_EL2 {:#018x}  FAR_EL2 {:#018x}  SPSR_EL2 {:#x}\n",
        percpu::core(),
        (esr >> 26) & 0x3f,
        frame.elr,
        FAR_EL2.get(),
        frame.spsr
    ));
    for i in (0..31).step_by(4) {
        console::emergency(format_args!("[septum]  "));
        for r in i..(i + 4).min(31) {
            console::emergency(format_args!(" x{r:<2} {:#018x}", frame.x[r]));
        }
        console::emergency(format_args!("\n"));
    }
    // The vectors put this handler on the emergency stack, so an overflow
    // into a guard page is reported like any other fault.
    let far = FAR_EL2.get();
    if let Some((core, ordinary)) =
        crate::arch::aarch64::mmu::guard_hit(&crate::config::CONFIG.platform, far)
    {
        let which = if ordinary { "stack" } else { "emergency stack" };
        console::emergency(format_args!(
            "[septum]   FAR_EL2 is in the guard page below core {core}'s EL2 {which}: a stack overflow\n"
        ));
    }
    crate::system::enter_safe(format_args!(
        "hypervisor exception ({kind:?}, ESR_EL2 {esr:#x}) on core {}",
        percpu::core()
    ))
}
