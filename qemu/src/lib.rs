//! Test harness for Septum's QEMU integration tests.
//!
//! Builds images with `scripts/build.sh`, boots them in QEMU with a hard
//! timeout, collects the serial console and waits for expected lines. Every
//! [`Qemu`] kills its QEMU when dropped, so a failing test never leaves one
//! running.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
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

/// Builds a copy of `config` (relative to the repo root) with each
/// `(from, to)` text edit applied — each `from` must occur exactly once, so a
/// change to the original that a test depends on fails loudly — and returns
/// the image. The copy is `target/septum/derived/<name>.toml`; its relative
/// file paths are made absolute.
pub fn build_derived(config: &str, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let src = repo_root().join(config);
    let dir = src.parent().expect("config dir").display().to_string();
    let mut text = std::fs::read_to_string(&src).expect("read config");
    for (from, to) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "{config}: `{from}` must occur exactly once"
        );
        text = text.replace(from, to);
    }
    let text = text.replace("\"../", &format!("\"{dir}/../"));
    let out_dir = repo_root().join("target/septum/derived");
    std::fs::create_dir_all(&out_dir).expect("derived config dir");
    let path = out_dir.join(format!("{name}.toml"));
    // Written whole, then renamed: test binaries may build it concurrently.
    let tmp = out_dir.join(format!("{name}.toml.{}", std::process::id()));
    std::fs::write(&tmp, text).expect("write derived config");
    std::fs::rename(&tmp, &path).expect("rename derived config");
    build(&path.display().to_string())
}

/// The LLVM tool `name` (llvm-objcopy, llvm-nm) of the Rust toolchain.
fn llvm_tool(name: &str) -> PathBuf {
    let out = |args: &[&str]| {
        Command::new("rustc")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    };
    let sysroot = out(&["--print", "sysroot"]);
    let vv = out(&["-vV"]);
    let host = vv
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or("x86_64-unknown-linux-gnu");
    PathBuf::from(sysroot.trim())
        .join("lib/rustlib")
        .join(host.trim())
        .join("bin")
        .join(name)
}

/// Builds `config`, then builds its hypervisor once more from a copy of the
/// generated directory after `edit` changed that copy, into
/// `target/septum/variants/<name>/septum.img`. For tests that need an image
/// the signed manifest does not describe (a truncated guest image).
pub fn build_variant(config: &str, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let image = build(config);
    let gen = image.parent().expect("image dir").join("gen");
    let dir = repo_root().join("target/septum/variants").join(name);
    let vgen = dir.join("gen");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&vgen).expect("variant dir");
    for e in std::fs::read_dir(&gen).expect("gen dir").flatten() {
        std::fs::copy(e.path(), vgen.join(e.file_name())).expect("copy gen");
    }
    // The copy's config.rs must embed the copy's files (the device trees).
    let cfg = vgen.join("config.rs");
    let text = std::fs::read_to_string(&cfg).expect("config.rs");
    let text = text.replace(&gen.display().to_string(), &vgen.display().to_string());
    std::fs::write(&cfg, text).expect("config.rs");
    edit(&vgen);
    let out = dir.join("septum.img");
    build_hypervisor(&vgen, "", "target", &out);
    out
}

/// Builds the hypervisor for the generated configuration in `gen`, with
/// cargo `features`, in `target_dir` (relative to the repository), and
/// writes its raw image to `out`. Under the build lock: build.sh shares the
/// default target directory.
fn build_hypervisor(gen: &Path, features: &str, target_dir: &str, out: &Path) {
    let root = repo_root();
    let td = root.join(target_dir);
    let elf = td.join("aarch64-unknown-none-softfloat/release/septum");
    let script = format!(
        "cargo build -q --release --target aarch64-unknown-none-softfloat -p septum-hypervisor --features '{features}' --target-dir '{}' && '{}' -O binary '{}' '{}'",
        td.display(),
        llvm_tool("llvm-objcopy").display(),
        elf.display(),
        out.display()
    );
    let st = Command::new("flock")
        .arg(root.join("target/septum/.build.lock"))
        .args(["sh", "-c", &script])
        .current_dir(&root)
        .env("SEPTUM_GEN_DIR", gen)
        .status()
        .expect("run cargo");
    assert!(
        st.success(),
        "hypervisor build for {} failed",
        out.display()
    );
}

/// Builds `config`'s hypervisor with `features` (its own target directory,
/// so the normal build stays as it is) into
/// `target/septum/variants/<name>/septum.img`.
pub fn build_with_features(config: &str, name: &str, features: &str) -> PathBuf {
    let image = build(config);
    let gen = image.parent().expect("image dir").join("gen");
    let dir = repo_root().join("target/septum/variants").join(name);
    std::fs::create_dir_all(&dir).expect("variant dir");
    let out = dir.join("septum.img");
    let td = format!("target/features/{}", features.replace(',', "-"));
    build_hypervisor(&gen, features, &td, &out);
    out
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
    /// `virt` without EL2, with a GICv2 (the RTOS natively, finding its GIC
    /// in QEMU's device tree).
    VirtNativeGicV2,
    /// QEMU's Raspberry Pi 4 (`raspi4b`: four Cortex-A72, 2 GiB, GIC-400,
    /// PL011 first, mini-UART second; no network device).
    Raspi4b,
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
    /// A device tree for QEMU to pass in x0 (`-dtb`), as a board's firmware
    /// would.
    pub dtb: Option<PathBuf>,
    /// More QEMU arguments (a `-device loader` that sets a fault to inject).
    pub extra: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            machine: Machine::VirtEl2,
            icount: true,
            limit: Duration::from_secs(240),
            dtb: None,
            extra: Vec::new(),
        }
    }
}

/// A running QEMU with its consoles captured: the first UART (hypervisor
/// and RTOS) and the second (the Linux partition's console, a Unix socket
/// the harness connects to), and an HTTP port forwarded to the guest's 80.
pub struct Qemu {
    child: Child,
    out: Arc<Mutex<String>>,
    linux_out: Arc<Mutex<String>>,
    linux_in: Option<UnixStream>,
    sock: PathBuf,
    /// Host port forwarded to port 80 of the network device's owner.
    pub http_port: u16,
    started: Instant,
    limit: Duration,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

fn spawn_reader(stream: Box<dyn Read + Send>, out: Arc<Mutex<String>>) {
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

impl Qemu {
    pub fn boot(image: &Path, opts: &Options) -> Qemu {
        let mut cmd = Command::new("qemu-system-aarch64");
        let virt = match opts.machine {
            Machine::VirtEl2 => Some("virt,virtualization=on,gic-version=3"),
            Machine::VirtEl2GicV2 => Some("virt,virtualization=on,gic-version=2"),
            Machine::VirtNative => Some("virt,gic-version=3"),
            Machine::VirtNativeGicV2 => Some("virt,gic-version=2"),
            Machine::Raspi4b => None,
        };
        match virt {
            Some(m) => cmd.args(["-M", m, "-cpu", "cortex-a72", "-smp", "4", "-m", "2G"]),
            None => cmd.args(["-M", "raspi4b"]),
        };
        let sock = std::env::temp_dir().join(format!(
            "septum-linux-{}-{}.sock",
            std::process::id(),
            SOCK_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&sock);
        let http_port = free_port();
        // -nodefaults: no device this line does not name (no default NIC,
        // whose ROM a fresh machine lacks; no default monitor or display).
        cmd.arg("-nodefaults");
        cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
        // wait=on: QEMU does not start the machine until the harness has
        // connected, so nothing the second UART prints early is lost (the
        // hypervisor's first lines, when it is the console).
        cmd.arg("-serial")
            .arg(format!("unix:{},server=on,wait=on", sock.display()));
        if virt.is_some() {
            cmd.arg("-netdev").arg(format!(
                "user,id=net0,hostfwd=tcp:127.0.0.1:{http_port}-:80"
            ));
            cmd.args([
                "-device",
                "virtio-net-device,netdev=net0,bus=virtio-mmio-bus.0",
            ]);
        }
        if opts.icount {
            cmd.args(["-icount", "shift=0,sleep=off"]);
        }
        if let Some(dtb) = &opts.dtb {
            cmd.arg("-dtb").arg(dtb);
        }
        cmd.arg("-kernel").arg(image);
        cmd.args(&opts.extra);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start qemu-system-aarch64");
        let out = Arc::new(Mutex::new(String::new()));
        spawn_reader(Box::new(child.stdout.take().unwrap()), Arc::clone(&out));
        spawn_reader(Box::new(child.stderr.take().unwrap()), Arc::clone(&out));
        // The Linux console socket appears once QEMU has started; the
        // machine runs only after this connects (wait=on above).
        let linux_out = Arc::new(Mutex::new(String::new()));
        let mut linux_in = None;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Ok(s) = UnixStream::connect(&sock) {
                if let Ok(r) = s.try_clone() {
                    spawn_reader(Box::new(r), Arc::clone(&linux_out));
                }
                linux_in = Some(s);
                break;
            }
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        if linux_in.is_none() {
            let exited = child.try_wait().ok().flatten();
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&sock);
            // Let the readers collect what QEMU said before it went.
            thread::sleep(Duration::from_millis(200));
            match exited {
                Some(status) => panic!(
                    "QEMU exited at once ({status}) without starting the machine; it said:\n{}",
                    out.lock().unwrap()
                ),
                None => panic!(
                    "QEMU did not open its second serial port {} within 30 s:\n{}",
                    sock.display(),
                    out.lock().unwrap()
                ),
            }
        }
        Qemu {
            child,
            out,
            linux_out,
            linux_in,
            sock,
            http_port,
            started: Instant::now(),
            limit: opts.limit,
        }
    }

    /// Everything the Linux partition's console printed so far.
    pub fn linux_output(&self) -> String {
        self.linux_out.lock().unwrap().clone()
    }

    /// Types `line` (plus a newline) on the Linux console.
    pub fn linux_send(&mut self, line: &str) {
        if let Some(s) = self.linux_in.as_mut() {
            let _ = s.write_all(line.as_bytes());
            let _ = s.write_all(b"\n");
        }
    }

    /// Waits until `needle` has appeared `count` times on the Linux console.
    pub fn wait_linux_count(&mut self, needle: &str, count: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.linux_output();
            if out.matches(needle).count() >= count {
                return out;
            }
            if Instant::now() > deadline || self.child.try_wait().ok().flatten().is_some() {
                panic!(
                    "timed out waiting for {count} x '{needle}' on the Linux console:\n{}\n--- hypervisor console:\n{}",
                    tail(&out, 80),
                    tail(&self.output(), 60)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for `needle` on the Linux console.
    /// Polls the Linux status page (30 tries, 1 s apart) until it answers
    /// with its closing line; returns the page, panics with the last answer.
    pub fn wait_status_page(&self) -> String {
        let mut last = String::new();
        for _ in 0..30 {
            match self.http_get("/cgi-bin/status") {
                Ok(body) if body.contains("septum-linux status ok") => return body,
                Ok(body) => last = body,
                Err(e) => last = e,
            }
            thread::sleep(Duration::from_secs(1));
        }
        panic!("no status page: {last}\n{}", tail(&self.linux_output(), 40));
    }

    /// Runs `cmd` in the Linux shell and returns what it printed between two
    /// unique markers.
    pub fn linux_run(&mut self, cmd: &str) -> String {
        let n = self.linux_output().len();
        let tag = format!("M{n}");
        self.linux_send(&format!("echo {tag}-BEGIN; {cmd}; echo {tag}-END"));
        let out = self.wait_linux(&format!("\n{tag}-END"), Duration::from_secs(60));
        let body = &out[n..];
        let start = body
            .find(&format!("\n{tag}-BEGIN"))
            .map(|i| i + tag.len() + 7)
            .unwrap_or(0);
        let end = body.rfind(&format!("\n{tag}-END")).unwrap_or(body.len());
        body[start..end].to_string()
    }

    pub fn wait_linux(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_linux_count(needle, 1, timeout)
    }

    /// `GET path` on the forwarded HTTP port; the response body or an error.
    pub fn http_get(&self, path: &str) -> Result<String, String> {
        self.http(&format!("GET {path} HTTP/1.0\r\nHost: septum\r\n\r\n"), &[])
    }

    /// `POST path` with `body` on the forwarded HTTP port; the response
    /// body or an error.
    pub fn http_post(&self, path: &str, body: &[u8]) -> Result<String, String> {
        let head = format!(
            "POST {path} HTTP/1.0\r\nHost: septum\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.http(&head, body)
    }

    /// One HTTP/1.0 exchange: `head` then `body`; the response's body.
    fn http(&self, head: &str, body: &[u8]) -> Result<String, String> {
        let e = |e: std::io::Error| e.to_string();
        let mut s = TcpStream::connect(("127.0.0.1", self.http_port)).map_err(e)?;
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(e)?;
        s.write_all(head.as_bytes()).map_err(e)?;
        s.write_all(body).map_err(e)?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).map_err(e)?;
        if !resp.starts_with("HTTP/1.") {
            return Err(format!("not an HTTP response: {resp:?}"));
        }
        Ok(resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default())
    }

    /// Everything the console printed so far.
    pub fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the output (its complete lines), or fails with the output.
    pub fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            // Only complete lines: a line still being written must not
            // count as seen (its end would be missing from the result).
            let mut out = self.output();
            out.truncate(out.rfind('\n').map_or(0, |i| i + 1));
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

    /// Waits until QEMU exits by itself; its exit code (`None`: killed by
    /// a signal), or a panic after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(st) = self.child.try_wait().ok().flatten() {
                return st.code();
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "QEMU did not exit within {timeout:?}:\n{}",
            tail(&self.output(), 60)
        );
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
        let _ = std::fs::remove_file(&self.sock);
    }
}

static SOCK_SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

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

/// How long the default Linux may take to boot under TCG, and the line its
/// init prints when its services are up.
pub const LINUX_BOOT: Duration = Duration::from_secs(300);
pub const LINUX_READY: &str = "septum-linux: ready";

/// Boots the default system (configs/qemu-virt.toml) and waits for Linux.
pub fn boot_default() -> Qemu {
    let image = build("configs/qemu-virt.toml");
    let mut q = Qemu::boot(&image, &Options::default());
    q.wait_linux(LINUX_READY, LINUX_BOOT);
    q
}

/// The RTOS ran clean through `out`: at least `min` heartbeats, none lost
/// (no stall, no restart), no deadline miss, no safe state, no panic.
pub fn assert_rtos_clean(out: &str, min: usize) {
    let hb = heartbeats(out);
    assert!(hb.len() >= min, "too few RTOS heartbeats:\n{out}");
    for w in hb.windows(2) {
        assert_eq!(
            w[1].n,
            w[0].n + 1,
            "the RTOS heartbeat stalled or restarted:\n{out}"
        );
    }
    assert!(
        hb.iter().all(|h| h.misses == 0),
        "RTOS deadline misses: {hb:?}"
    );
    assert!(!out.contains("SAFE STATE"), "{out}");
    assert!(!out.contains("PANIC") && !out.contains("FATAL"), "{out}");
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
        let out = "[rtos] rtos: heartbeat 3 guest_time=3.000s cycles=3000 misses=0 jitter_us=max:5 mean:1\nnoise\n";
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
