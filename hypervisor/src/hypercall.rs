//! Septum's vendor-specific hypercalls (function IDs and argument checks in
//! `septum_core::hypercall`; the interface in docs/measured-boot.md).

use septum_core::addr::GuestPhysAddr;
use septum_core::hypercall::{self as hc, Need, INVALID_PARAMETER, MAX_COPY, NOT_SUPPORTED};

use crate::arch::aarch64::trap::TrapFrame;
use crate::partition::PartitionRt;
use crate::{guest_mem, measure};

#[inline(never)]
pub fn handle(p: &PartitionRt, frame: &mut TrapFrame) {
    if frame.x[0] == hc::CHANNEL_INFO {
        let r = hc::channel_info(p.cfg.channels, [frame.x[1], frame.x[2]]);
        frame.x[..4].copy_from_slice(&r);
        return;
    }
    if frame.x[0] == hc::CHANNEL_NOTIFY {
        frame.x[0] = crate::doorbell::notify(p, [frame.x[1], frame.x[2]]) as u64;
        return;
    }
    let (x0, x1) = match register_only(p, frame.x[0]) {
        Some(r) => r,
        None => mlog_read(p, frame.x[1], frame.x[2], frame.x[3]),
    };
    frame.x[0] = x0 as u64;
    frame.x[1] = x1;
}

/// The calls answered in x0/x1 without touching guest memory (every call
/// but `MLOG_READ`, `CHANNEL_INFO`, which answers in x0..x3, and
/// `CHANNEL_NOTIFY`, which takes a name in x1/x2: `None`):
/// what the short exit path may finish.
pub fn register_only(p: &PartitionRt, call: u64) -> Option<(i64, u64)> {
    match call {
        hc::MLOG_READ | hc::CHANNEL_INFO | hc::CHANNEL_NOTIFY => None,
        hc::HEARTBEAT if crate::watchdog::heartbeat(p) => Some((0, 0)),
        _ => Some((NOT_SUPPORTED, 0)),
    }
}

/// MLOG_READ(buffer_ipa, len, offset) -> (copied or error, total).
fn mlog_read(p: &PartitionRt, ipa: u64, len: u64, offset: u64) -> (i64, u64) {
    let mut chunk = [0u8; MAX_COPY as usize];
    let total = measure::log_len();
    if len == 0 || len > MAX_COPY || offset > total as u64 {
        return (INVALID_PARAMETER, total as u64);
    }
    // Only memory the guest may write itself, the whole buffer it named.
    let buf = GuestPhysAddr::new(ipa);
    if guest_mem::check(p, buf, len, Need::GuestWritable).is_err() {
        return (INVALID_PARAMETER, total as u64);
    }
    let (n, total) = measure::read_log(offset as usize, &mut chunk[..len as usize]);
    if guest_mem::write(p, buf, &chunk[..n], 0, Need::GuestWritable).is_err() {
        return (INVALID_PARAMETER, total as u64);
    }
    (n as i64, total as u64)
}
