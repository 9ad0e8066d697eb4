//! Septum's hypercalls, when the RTOS runs under it: the measurement log
//! (MLOG_READ, docs/measured-boot.md), reported at start, and the
//! heartbeat (HEARTBEAT, docs/fault-containment.md) that the supervisor
//! task sends every 10 ms. Natively (no hypervisor) both are skipped.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

use super::cpu;
use super::sync::IrqCell;

use septum_abi::channel::{pack_name, Role};
use septum_abi::hypercall::{
    CHANNEL_INFO, CHANNEL_NOTIFY, HEARTBEAT, LIMITED, MAX_COPY, MLOG_READ,
};
use septum_abi::psci;

/// One MLOG_READ's worth: the most the hypervisor copies per call.
const LOG_MAX: usize = MAX_COPY as usize;

/// Started at EL1 on a CPU with EL2: a hypervisor started us.
static UNDER_HYPERVISOR: AtomicBool = AtomicBool::new(false);
/// HEARTBEAT is answered (the partition has a heartbeat watchdog).
static HEARTBEAT_ON: AtomicBool = AtomicBool::new(false);

static BUF: IrqCell<[u8; LOG_MAX]> = IrqCell::new([0; LOG_MAX]);

/// Whether EL2 is implemented (ID_AA64PFR0_EL1.EL2, bits [11:8]).
fn el2_implemented() -> bool {
    (cpu::id_aa64pfr0() >> 8) & 0xf != 0
}

/// `hvc #0` with x0..x3; returns x0, x1.
fn hvc(fid: u64, a1: u64, a2: u64, a3: u64) -> (u64, u64) {
    let [r0, r1, _, _] = hvc4(fid, a1, a2, a3);
    (r0, r1)
}

/// `hvc #0` with x0..x3; returns x0..x3.
fn hvc4(fid: u64, a1: u64, a2: u64, a3: u64) -> [u64; 4] {
    let (r0, r1, r2, r3);
    // SAFETY: an SMCCC call to the hypervisor: only x0-x3 are inputs, x0-x17
    // may be clobbered by the callee (SMCCC 1.1); the buffer it writes is
    // this partition's own memory, handed over as the call's argument.
    unsafe {
        asm!(
            "hvc #0",
            inout("x0") fid => r0,
            inout("x1") a1 => r1,
            inout("x2") a2 => r2,
            inout("x3") a3 => r3,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack)
        )
    };
    [r0, r1, r2, r3]
}

/// Notes and returns whether a hypervisor started us: `entry_el` 1 means
/// we were started at EL1; with EL2 implemented, that is by a hypervisor.
/// No output, so it can run before the console is chosen.
pub fn detect(entry_el: u64) -> bool {
    let under = entry_el == 1 && el2_implemented();
    UNDER_HYPERVISOR.store(under, Ordering::Relaxed);
    under
}

/// Sends the first heartbeat (after `detect`), which also tells whether
/// the hypervisor watches one.
pub fn init() {
    if UNDER_HYPERVISOR.load(Ordering::Relaxed) {
        let (r, _) = hvc(HEARTBEAT, 0, 0, 0);
        let on = r == 0;
        HEARTBEAT_ON.store(on, Ordering::Relaxed);
        if on {
            crate::println!("rtos: hypervisor watchdog: heartbeat every 10 ms");
        }
    }
}

/// A bare call with only a function ID (benchmarks).
#[cfg_attr(not(feature = "bench"), allow(dead_code))]
pub fn hvc_raw(fid: u64) -> u64 {
    hvc(fid, 0, 0, 0).0
}

/// Stops sending heartbeats (the `fault-test-stop-heartbeat` build).
#[cfg_attr(not(feature = "fault-test-stop-heartbeat"), allow(dead_code))]
pub fn stop_heartbeat() {
    HEARTBEAT_ON.store(false, Ordering::Relaxed);
}

/// PSCI SYSTEM_OFF (the `fault-test-system-off` build): under Septum the
/// critical partition's policy turns it into the safe state. It does not
/// return; if it does, the RTOS spins with interrupts as they are.
#[cfg_attr(not(feature = "fault-test-system-off"), allow(dead_code))]
pub fn system_off() {
    let _ = hvc(u64::from(psci::SYSTEM_OFF), 0, 0, 0);
}

/// PSCI SYSTEM_RESET (the `fault-test-reset-after-accept` build): the
/// hypervisor restarts the partition by its fault policy.
#[cfg(feature = "fault-test-reset-after-accept")]
pub fn system_reset() {
    let _ = hvc(u64::from(psci::SYSTEM_RESET), 0, 0, 0);
}

/// Tells the hypervisor the control loop is alive.
pub fn heartbeat() {
    if HEARTBEAT_ON.load(Ordering::Relaxed) {
        hvc(HEARTBEAT, 0, 0, 0);
    }
}

/// Prints `rtos: measured boot: ...` from the log.
pub fn report_measurements() {
    if !UNDER_HYPERVISOR.load(Ordering::Relaxed) {
        crate::println!("rtos: measured boot: no hypervisor, no measurement log");
        return;
    }
    BUF.with(|buf| {
        // The RTOS's stage-1 map is the identity, so this is the IPA.
        let ipa = buf.as_mut_ptr() as u64;
        let (r0, total) = hvc(MLOG_READ, ipa, LOG_MAX as u64, 0);
        let n = r0 as i64;
        if n < 0 {
            crate::println!("rtos: measured boot: MLOG_READ failed ({n})");
            return;
        }
        let log = &buf[..(n as usize).min(LOG_MAX)];
        if log.len() < 48 || &log[..8] != b"SEPTUMML" {
            crate::println!("rtos: measured boot: no valid log ({n} of {total} bytes)");
            return;
        }
        let count = u16::from_le_bytes([log[10], log[11]]);
        let mut hex = [0u8; 64];
        for (i, b) in log[16..48].iter().enumerate() {
            const H: &[u8; 16] = b"0123456789abcdef";
            hex[2 * i] = H[(b >> 4) as usize];
            hex[2 * i + 1] = H[(b & 0xf) as usize];
        }
        crate::println!(
            "rtos: measured boot: log of {count} entries ({total} bytes), running digest {}",
            core::str::from_utf8(&hex).unwrap_or("?")
        );
    });
}

/// This partition's end of channel `name`: its IPA, size and role, from
/// CHANNEL_INFO. `None` without a hypervisor or without such a channel.
pub fn channel(name: &str) -> Option<(u64, u64, Role)> {
    if !UNDER_HYPERVISOR.load(Ordering::Relaxed) {
        return None;
    }
    let [lo, hi] = pack_name(name)?;
    let [r, ipa, size, role] = hvc4(CHANNEL_INFO, lo, hi, 0);
    let role = match role {
        0 => Role::Writer,
        1 => Role::Reader,
        _ => return None,
    };
    (r == 0).then_some((ipa, size, role))
}

/// What CHANNEL_NOTIFY answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ring {
    Rang,
    /// The channel's rate limit dropped it (the reader gets the next one).
    Limited,
    /// No hypervisor, or the channel has no doorbell.
    NoDoorbell,
}

/// Rings the doorbell of channel `name`, which this partition writes. Never
/// waits: the hypervisor sets a bit and an interrupt's pending state.
pub fn notify(name: &str) -> Ring {
    if !UNDER_HYPERVISOR.load(Ordering::Relaxed) {
        return Ring::NoDoorbell;
    }
    let Some([lo, hi]) = pack_name(name) else {
        return Ring::NoDoorbell;
    };
    match hvc(CHANNEL_NOTIFY, lo, hi, 0).0 as i64 {
        0 => Ring::Rang,
        LIMITED => Ring::Limited,
        _ => Ring::NoDoorbell,
    }
}
