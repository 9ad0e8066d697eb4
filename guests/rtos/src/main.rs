//! septum-rtos binary: boots at EL1 (or drops from EL2), enables its MMU and
//! runs the task set. All hardware code lives in `rt` and exists only for the
//! bare-metal target; on the host the binary is an empty stub so that
//! `cargo build`/`clippy --all-targets` on the workspace keep working.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod rt;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("septum-rtos runs only on aarch64-unknown-none");
}
