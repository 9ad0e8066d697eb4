//! Test harness for Septum's QEMU integration tests.
//!
//! Builds images with `scripts/build.sh`, boots them in QEMU with a hard
//! timeout, collects the serial console and waits for expected lines. Every
//! [`Qemu`] kills its QEMU when dropped, so a failing test never leaves one
//! running.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The repository root (this crate lives in `qemu/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("qemu/ has a parent")
        .to_path_buf()
}

/// Output of a build attempt.
#[derive(Debug)]
pub struct BuildOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `scripts/build.sh --config <config>`.
pub fn try_build(config: &Path) -> BuildOutput {
    let out = Command::new(repo_root().join("scripts/build.sh"))
        .arg("--config")
        .arg(config)
        .arg("--quiet")
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/build.sh");
    BuildOutput {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Builds the image for `config` (relative to the repo root) and returns its path.
pub fn build(config: &str) -> PathBuf {
    let b = try_build(&repo_root().join(config));
    assert!(
        b.success,
        "build of {config} failed:\n{}\n{}",
        b.stdout, b.stderr
    );
    PathBuf::from(
        b.stdout
            .lines()
            .last()
            .expect("build.sh prints the image path")
            .trim(),
    )
}

/// A machine to boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// `virt` with EL2 (for the hypervisor).
    VirtEl2,
    /// `virt` without EL2 (the RTOS natively, at EL1).
    VirtNative,
    /// `virt` with EL2 but a GICv2: a machine the virt configuration does not describe.
    VirtEl2GicV2,
}

/// Options for a run.
#[derive(Clone, Debug)]
pub struct Options {
    pub machine: Machine,
    /// `-icount shift=0,sleep=off`: guest time advances one tick per
    /// instruction, so host load cannot change timing results.
    pub icount: bool,
    /// Hard limit after which QEMU is killed.
    pub limit: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            machine: Machine::VirtEl2,
            icount: true,
            limit: Duration::from_secs(240),
        }
    }
}

/// A running QEMU with its console captured.
pub struct Qemu {
    child: Child,
    out: Arc<Mutex<String>>,
    started: Instant,
    limit: Duration,
}

impl Qemu {
    pub fn boot(image: &Path, opts: &Options) -> Qemu {
        let mut cmd = Command::new("qemu-system-aarch64");
        match opts.machine {
            Machine::VirtEl2 => cmd.args(["-M", "virt,virtualization=on,gic-version=3"]),
            Machine::VirtEl2GicV2 => cmd.args(["-M", "virt,virtualization=on,gic-version=2"]),
            Machine::VirtNative => cmd.args(["-M", "virt,gic-version=3"]),
        };
        cmd.args(["-cpu", "cortex-a72", "-smp", "4", "-m", "2G"]);
        cmd.args([
            "-display", "none", "-monitor", "none", "-serial", "stdio", "-serial", "null",
        ]);
        if opts.icount {
            cmd.args(["-icount", "shift=0,sleep=off"]);
        }
        cmd.arg("-kernel").arg(image);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start qemu-system-aarch64");
        let out = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
        ] {
            let out = Arc::clone(&out);
            thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let s = String::from_utf8_lossy(&buf[..n]).replace('\r', "");
                    out.lock().unwrap().push_str(&s);
                }
            });
        }
        Qemu {
            child,
            out,
            started: Instant::now(),
            limit: opts.limit,
        }
    }

    /// Everything the console printed so far.
    pub fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the output, or fails with the output.
    pub fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.output();
            if pred(&out) {
                return out;
            }
            let exited = self.child.try_wait().ok().flatten();
            if Instant::now() > deadline || self.started.elapsed() > self.limit || exited.is_some()
            {
                panic!(
                    "timed out after {:?} waiting for {what} (qemu exit: {exited:?}); console:\n{}",
                    timeout,
                    tail(&out, 120)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for a line containing `needle`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let n = needle.to_string();
        self.wait_until(&format!("'{needle}'"), timeout, move |o| o.contains(&n))
    }

    /// Waits until `needle` has appeared `count` times.
    pub fn wait_for_count(&mut self, needle: &str, count: usize, timeout: Duration) -> String {
        let n = needle.to_string();
        self.wait_until(&format!("{count} x '{needle}'"), timeout, move |o| {
            o.matches(&n).count() >= count
        })
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A parsed RTOS status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub n: u64,
    pub misses: u64,
    pub cycles: u64,
}

/// Every `rtos: heartbeat` line in `out`.
pub fn heartbeats(out: &str) -> Vec<Heartbeat> {
    out.lines()
        .filter_map(|l| {
            let i = l.find("rtos: heartbeat ")?;
            let rest = &l[i + "rtos: heartbeat ".len()..];
            let n = rest.split_whitespace().next()?.parse().ok()?;
            Some(Heartbeat {
                n,
                misses: field(rest, "misses=")?,
                cycles: field(rest, "cycles=")?,
            })
        })
        .collect()
}

fn field(s: &str, key: &str) -> Option<u64> {
    let i = s.find(key)?;
    s[i + key.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heartbeats() {
        let out = "[rtos] rtos: heartbeat 3 uptime_ms=3000 cycles=3000 misses=0 jitter_us=max:5 mean:1\nnoise\n";
        assert_eq!(
            heartbeats(out),
            vec![Heartbeat {
                n: 3,
                misses: 0,
                cycles: 3000
            }]
        );
    }
}
