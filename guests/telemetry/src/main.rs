//! `septum-telemetry`: prints the RTOS's latest telemetry record, read from
//! the `telemetry` channel (docs/channels.md), as JSON (`--json`, the
//! default: `/cgi-bin/telemetry`) or text (`--text`: the status page).
//!
//! It runs on the connectivity partition's unmodified Linux, which has no
//! C library here: the binary is static, freestanding and calls the kernel
//! directly (aarch64 Linux system calls, `svc #0`). It finds the channel
//! under `/proc/device-tree/reserved-memory`, checks that the node says
//! `septum,channel` and `reader`, maps the page read-only through
//! `/dev/mem` (O_SYNC: a device mapping, which the channel's non-cacheable
//! stage 2 keeps coherent with the RTOS's stores) and copies the record
//! under its sequence lock. Exit status: 0 a record, 1 no record (the
//! JSON says why), 2 no channel, 3 usage.
//!
//! On the host the binary is an empty stub, as the other guests are.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod linux;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("septum-telemetry runs only on aarch64 Linux (built for aarch64-unknown-none)");
}
