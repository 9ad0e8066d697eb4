//! The Linux side: entry, system calls, `/dev/mem`.

use core::arch::{asm, global_asm};
use core::fmt::Write;

use septum_abi::channel::request::{self, MAILBOX_MAGIC, SLOT, W_HEAD};
use septum_abi::channel::telemetry::{Telemetry, MAGIC, VERSION, WORDS};
use septum_abi::channel::DOORBELL_LINE_PREFIX;
use septum_abi::channel::{read, ReadError, Words, PAGE, PAGE_WORDS};
use septum_telemetry::{
    error_name, gpio, is_channel_node, json, json_error, parse_reg, text, Buf, COMPATIBLE, OUT_MAX,
    RESERVED_MEMORY, ROLE_READER, ROLE_WRITER,
};

// The kernel enters with sp at argc, argv[], NULL, envp[], NULL, auxv.
global_asm!(
    ".globl _start",
    "_start:",
    "mov x0, sp",
    "mov x29, xzr",
    "mov x30, xzr",
    "and sp, x0, #~15",
    "bl tool_main",
    "brk #0",
);

const SYS_GETDENTS64: u64 = 61;
const SYS_OPENAT: u64 = 56;
const SYS_CLOSE: u64 = 57;
const SYS_READ: u64 = 63;
const SYS_WRITE: u64 = 64;
const SYS_EXIT_GROUP: u64 = 94;
const SYS_NANOSLEEP: u64 = 101;
const SYS_MMAP: u64 = 222;
const SYS_IOCTL: u64 = 29;
const SYS_FLOCK: u64 = 32;
const LOCK_EX: u64 = 2;
const O_CREAT: u64 = 0o100;
/// Serialises the writers of the requests mailbox (`Outbox::open`).
const MAILBOX_LOCK: &[u8] = b"/tmp/.septum-requests.lock";
const SYS_PPOLL: u64 = 73;
const POLLIN: u16 = 1;
const AT_FDCWD: i64 = -100;
const O_RDONLY: u64 = 0;
const O_DIRECTORY: u64 = 0o40000;
const O_SYNC: u64 = 0o4010000;
const O_CLOEXEC: u64 = 0o2000000;
const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const O_RDWR: u64 = 2;
const MAP_SHARED: u64 = 1;

/// One system call with up to six arguments; returns x0 (negative errno).
fn syscall(nr: u64, a: [u64; 6]) -> i64 {
    let r: i64;
    // SAFETY: a Linux system call: x8 the number, x0-x5 the arguments, x0
    // the result; the kernel preserves every other register. The callers
    // pass only pointers to live buffers of the lengths they name.
    unsafe {
        asm!(
            "svc #0",
            in("x8") nr,
            inlateout("x0") a[0] => r,
            in("x1") a[1], in("x2") a[2], in("x3") a[3], in("x4") a[4], in("x5") a[5],
            options(nostack)
        )
    };
    r
}

fn exit(code: u64) -> ! {
    loop {
        // exit_group does not return; the loop only satisfies the type.
        syscall(SYS_EXIT_GROUP, [code, 0, 0, 0, 0, 0]);
    }
}

fn write_all(fd: u64, mut b: &[u8]) {
    while !b.is_empty() {
        let n = syscall(SYS_WRITE, [fd, b.as_ptr() as u64, b.len() as u64, 0, 0, 0]);
        if n <= 0 {
            return;
        }
        b = &b[n as usize..];
    }
}

/// A NUL-terminated path in a fixed buffer.
struct Path(Buf<256>);

impl Path {
    fn new(parts: &[&[u8]]) -> Self {
        let mut b = Buf::new();
        for p in parts {
            b.push(p);
        }
        b.push(b"\0");
        Path(b)
    }
    fn ptr(&self) -> u64 {
        self.0.as_bytes().as_ptr() as u64
    }
}

/// `openat`; a file that `O_CREAT` makes is the owner's alone (0600).
fn open(path: &Path, flags: u64) -> Option<u64> {
    let fd = syscall(
        SYS_OPENAT,
        [AT_FDCWD as u64, path.ptr(), flags | O_CLOEXEC, 0o600, 0, 0],
    );
    (fd >= 0).then_some(fd as u64)
}

fn close(fd: u64) {
    syscall(SYS_CLOSE, [fd, 0, 0, 0, 0, 0]);
}

/// The first bytes of a (small, /proc/device-tree) file.
fn read_file<'b>(path: &Path, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let fd = open(path, O_RDONLY)?;
    let n = syscall(
        SYS_READ,
        [fd, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0],
    );
    close(fd);
    (n >= 0).then(|| &buf[..n as usize])
}

/// The entry `<name>@...` of /proc/device-tree/reserved-memory.
fn find_node(name: &[u8], out: &mut Buf<64>) -> bool {
    let Some(fd) = open(
        &Path::new(&[RESERVED_MEMORY.as_bytes()]),
        O_RDONLY | O_DIRECTORY,
    ) else {
        return false;
    };
    let mut buf = [0u8; 2048];
    let mut found = false;
    'outer: loop {
        let n = syscall(
            SYS_GETDENTS64,
            [fd, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0],
        );
        if n <= 0 {
            break;
        }
        // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name.
        let mut at = 0usize;
        while at + 19 <= n as usize {
            let reclen = usize::from(u16::from_ne_bytes([buf[at + 16], buf[at + 17]]));
            if reclen == 0 || at + reclen > n as usize {
                break 'outer;
            }
            let raw = &buf[at + 19..at + reclen];
            let entry = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
            if is_channel_node(entry, name) {
                out.push(entry);
                found = true;
                break 'outer;
            }
            at += reclen;
        }
    }
    close(fd);
    found
}

/// The channel's page, mapped read-only from /dev/mem.
struct Mapped {
    base: u64,
}

impl Words for Mapped {
    fn load(&self, word: usize) -> u32 {
        if word >= PAGE_WORDS {
            return 0;
        }
        // SAFETY: `base` is a live, read-only mapping of the whole
        // channel (mmap succeeded); `word` is inside it and aligned. A
        // device mapping needs single aligned loads: volatile u32 is one.
        unsafe { core::ptr::read_volatile((self.base as *const u32).add(word)) }
    }

    fn store(&mut self, _word: usize, _value: u32) {
        // The reader never stores (and its mapping could not).
    }
}

fn sleep_ms(ms: u64) {
    let ts = [0u64, ms * 1_000_000];
    syscall(SYS_NANOSLEEP, [ts.as_ptr() as u64, 0, 0, 0, 0, 0]);
}

fn fail(out: &mut Buf<OUT_MAX>, as_json: bool, what: &str, code: u64) -> ! {
    if as_json {
        let _ = json_error(out, what);
        out.push(b"\n");
    } else {
        let _ = writeln!(out, "telemetry: {what}");
    }
    write_all(1, out.as_bytes());
    exit(code)
}

#[no_mangle]
extern "C" fn tool_main(sp: *const u64) -> ! {
    // SAFETY: the kernel's initial stack: argc, then argc pointers to
    // NUL-terminated strings.
    let argc = unsafe { *sp } as usize;
    let mut as_json = true;
    let mut name: &[u8] = b"telemetry";
    let mut mode = Mode::Read;
    let mut want_path = false;
    let mut want_count = false;
    let mut want_follow = false;
    for i in 1..argc {
        // SAFETY: as above; i < argc.
        let p = unsafe { *sp.add(1 + i) } as *const u8;
        let mut len = 0;
        // SAFETY: a NUL-terminated argument string.
        while unsafe { *p.add(len) } != 0 {
            len += 1;
        }
        // SAFETY: `len` bytes before the NUL.
        let arg = unsafe { core::slice::from_raw_parts(p, len) };
        if want_path {
            // SAFETY: `p` is NUL-terminated at `len`, and lives as long as
            // the process (the kernel's initial stack).
            mode = Mode::Submit(unsafe { core::slice::from_raw_parts(p, len + 1) });
            want_path = false;
            continue;
        }
        if want_count {
            mode = Mode::Flood(parse_u64(arg).unwrap_or_else(|| usage()));
            want_count = false;
            continue;
        }
        if want_follow {
            mode = Mode::Follow(parse_u64(arg).unwrap_or_else(|| usage()));
            want_follow = false;
            continue;
        }
        match arg {
            b"--json" => as_json = true,
            b"--text" => as_json = false,
            b"--submit" => want_path = true,
            b"--flood" => want_count = true,
            b"--follow" => want_follow = true,
            a if !a.starts_with(b"-") && a.len() <= 16 => name = a,
            _ => usage(),
        }
    }
    let mut out = Buf::<OUT_MAX>::new();
    match mode {
        Mode::Submit(path) => submit(&mut out, path),
        Mode::Flood(n) => flood(&mut out, n),
        Mode::Read | Mode::Follow(_) => {}
    }
    let base = match map_channel(name, ROLE_READER, false) {
        Ok((base, _)) => base,
        Err(what) => fail(&mut out, as_json, what, 2),
    };
    let page = Mapped { base };
    if let Mode::Follow(n) = mode {
        follow(&mut out, &page, name, n);
    }
    let mut words = [0u32; WORDS];
    match read_record(&page, &mut words) {
        Ok(seq) => {
            let t = Telemetry::decode(&words);
            let _ = if as_json {
                json(&mut out, seq, &t).and_then(|()| out.write_str("\n"))
            } else {
                text(&mut out, seq, &t)
            };
            write_all(1, out.as_bytes());
            exit(0)
        }
        Err(e) => fail(&mut out, as_json, error_name(e), 1),
    }
}

/// The latest record. The writer holds the lock for microseconds once a
/// second: a few quick tries, then a few after a pause, then give up
/// (bounded).
fn read_record(page: &Mapped, words: &mut [u32; WORDS]) -> Result<u32, ReadError> {
    let mut got = Err(ReadError::Busy);
    for _ in 0..10 {
        got = read(page, MAGIC, VERSION, words, 4);
        if got != Err(ReadError::Busy) {
            break;
        }
        sleep_ms(1);
    }
    got
}

/// The GPIO line of channel `name`'s doorbell, requested for rising edges:
/// its file descriptor. `None` when no chip has it (no doorbell in the
/// configuration, or a kernel without the PL061 driver).
fn doorbell_line(name: &[u8]) -> Option<u64> {
    let mut want = Buf::<32>::new();
    want.push(DOORBELL_LINE_PREFIX.as_bytes());
    want.push(name);
    for chip in 0..16u8 {
        let digits = [b'0' + chip / 10, b'0' + chip % 10];
        let num: &[u8] = if chip < 10 { &digits[1..] } else { &digits };
        let Some(fd) = open(&Path::new(&[b"/dev/gpiochip", num]), O_RDONLY) else {
            continue;
        };
        let mut info = gpio::lineinfo_query(0);
        let r = syscall(
            SYS_IOCTL,
            [fd, gpio::GET_LINEINFO, info.as_mut_ptr() as u64, 0, 0, 0],
        );
        if r == 0 && gpio::line_name(&info) == want.as_bytes() {
            let mut req = gpio::edge_request(0, want.as_bytes());
            let r = syscall(
                SYS_IOCTL,
                [fd, gpio::GET_LINE, req.as_mut_ptr() as u64, 0, 0, 0],
            );
            close(fd);
            let line = gpio::request_fd(&req);
            return (r == 0 && line > 0).then_some(line as u64);
        }
        close(fd);
    }
    None
}

/// `--follow COUNT`: prints COUNT records as they are published, one line
/// each, woken by the channel's doorbell when it has one (waiting at most
/// 3 s for it, then reading anyway) and polling once a second otherwise.
fn follow(out: &mut Buf<OUT_MAX>, page: &Mapped, name: &[u8], count: u64) -> ! {
    let line = doorbell_line(name);
    let mut events = [0u8; 16 * gpio::EVENT_SIZE];
    let mut words = [0u32; WORDS];
    let mut last = None;
    let mut shown = 0;
    while shown < count {
        let woken = match line {
            Some(fd) => {
                let mut pfd = [0u8; 8];
                pfd[..4].copy_from_slice(&(fd as i32).to_ne_bytes());
                pfd[4..6].copy_from_slice(&POLLIN.to_ne_bytes());
                let ts = [3u64, 0];
                let r = syscall(
                    SYS_PPOLL,
                    [pfd.as_mut_ptr() as u64, 1, ts.as_ptr() as u64, 0, 8, 0],
                );
                if r > 0 {
                    let n = syscall(
                        SYS_READ,
                        [fd, events.as_mut_ptr() as u64, events.len() as u64, 0, 0, 0],
                    );
                    Some(n.max(0) as usize / gpio::EVENT_SIZE)
                } else {
                    None
                }
            }
            None => {
                sleep_ms(1000);
                None
            }
        };
        let Ok(seq) = read_record(page, &mut words) else {
            continue;
        };
        if last == Some(seq) {
            continue;
        }
        last = Some(seq);
        shown += 1;
        let t = Telemetry::decode(&words);
        out.clear();
        let _ = match woken {
            Some(n) => write!(out, "follow: woken by doorbell ({n} edge(s)), "),
            None if line.is_some() => write!(out, "follow: no doorbell in 3 s, "),
            None => write!(out, "follow: polled (no doorbell line), "),
        };
        let _ = writeln!(
            out,
            "record seq {seq}, heartbeat {}, uptime {} ms",
            t.heartbeat, t.uptime_ms
        );
        write_all(1, out.as_bytes());
    }
    exit(0)
}

enum Mode {
    Read,
    /// Records to print as they come.
    Follow(u64),
    /// A NUL-terminated path of one 128-byte slot.
    Submit(&'static [u8]),
    /// Slots of random bytes to write.
    Flood(u64),
}

fn usage() -> ! {
    write_all(
        2,
        b"usage: septum-telemetry [--json|--text] [CHANNEL]\n       septum-telemetry --follow COUNT [CHANNEL]\n       septum-telemetry --submit SLOT-FILE\n       septum-telemetry --flood COUNT\n",
    );
    exit(3)
}

fn parse_u64(a: &[u8]) -> Option<u64> {
    if a.is_empty() || a.len() > 19 || !a.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(a.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Finds channel `name` (node `<name>@...`, compatible and `role` as
/// given) and maps all of it, read-only or read-write; returns the
/// mapping and the channel's size, or what went wrong.
fn map_channel(name: &[u8], role: &[u8], write: bool) -> Result<(u64, u64), &'static str> {
    let mut node = Buf::<64>::new();
    if !find_node(name, &mut node) {
        return Err("no-channel");
    }
    let dir: [&[u8]; 3] = [RESERVED_MEMORY.as_bytes(), b"/", node.as_bytes()];
    let mut b = [0u8; 64];
    let compatible = read_file(
        &Path::new(&[dir[0], dir[1], dir[2], b"/compatible"]),
        &mut b,
    );
    if compatible != Some(COMPATIBLE) {
        return Err("not-a-channel");
    }
    let r = read_file(
        &Path::new(&[dir[0], dir[1], dir[2], b"/septum,role"]),
        &mut b,
    );
    if r != Some(role) {
        return Err("wrong-role");
    }
    let reg = read_file(&Path::new(&[dir[0], dir[1], dir[2], b"/reg"]), &mut b).and_then(parse_reg);
    // Whole pages, at most a megabyte (rule CFG-59 says the same).
    let Some((addr, size)) = reg.filter(|&(a, s)| {
        a % PAGE as u64 == 0 && s >= PAGE as u64 && s % PAGE as u64 == 0 && s <= 1 << 20
    }) else {
        return Err("bad-reg");
    };
    let (flags, prot) = if write {
        (O_RDWR | O_SYNC, PROT_READ | PROT_WRITE)
    } else {
        (O_RDONLY | O_SYNC, PROT_READ)
    };
    let Some(fd) = open(&Path::new(&[b"/dev/mem"]), flags) else {
        return Err("no-dev-mem");
    };
    let base = syscall(SYS_MMAP, [0, size, prot, MAP_SHARED, fd, addr]);
    close(fd);
    if base < 0 {
        return Err("mmap");
    }
    Ok((base as u64, size))
}

/// The writer's end of the mailbox, all of it mapped.
struct Outbox {
    base: u64,
    slots: usize,
}

impl Outbox {
    /// Maps the mailbox, holding an exclusive lock on `MAILBOX_LOCK` until
    /// the process exits: the head is read, a slot written and the head
    /// advanced, and two writers at once (two uploads) would lose a slot.
    fn open() -> Result<Outbox, &'static str> {
        let lock = open(&Path::new(&[MAILBOX_LOCK]), O_RDWR | O_CREAT);
        if lock.is_none_or(|fd| syscall(SYS_FLOCK, [fd, LOCK_EX, 0, 0, 0, 0]) != 0) {
            return Err("no-lock");
        }
        let (base, size) = map_channel(b"requests", ROLE_WRITER, true)?;
        // As many as the RTOS counts in the same size.
        let slots = request::slots(size as usize);
        if slots == 0 {
            return Err("bad-reg");
        }
        let o = Outbox { base, slots };
        if o.load(0) != MAILBOX_MAGIC {
            o.store(0, MAILBOX_MAGIC);
            o.store(1, request::VERSION);
        }
        Ok(o)
    }
    fn load(&self, w: usize) -> u32 {
        // SAFETY: a live, read-write mapping of the whole channel; `w` is
        // below its size in words (the header's, or a slot's below `slots`).
        unsafe { core::ptr::read_volatile((self.base as *const u32).add(w)) }
    }
    fn store(&self, w: usize, v: u32) {
        // SAFETY: as in `load`.
        unsafe { core::ptr::write_volatile((self.base as *mut u32).add(w), v) }
    }
    /// Writes `slot` into the next slot, then publishes it by advancing
    /// the head (after a barrier, so the RTOS never sees a head before the
    /// slot it counts).
    fn put(&self, slot: &[u8; SLOT]) -> u32 {
        let head = self.load(W_HEAD);
        let first = request::slot_word(head as usize % self.slots);
        for (i, c) in slot.chunks_exact(4).enumerate() {
            self.store(first + i, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        let next = head.wrapping_add(1);
        self.store(W_HEAD, next);
        next
    }
}

/// `--submit FILE`: one slot from a file (what `septum-config request`
/// wrote) into the mailbox. Prints `{"submitted":HEAD}`.
fn submit(out: &mut Buf<OUT_MAX>, path: &'static [u8]) -> ! {
    let mut slot = [0u8; SLOT];
    let p = Path::new(&[&path[..path.len() - 1]]);
    let Some(fd) = open(&p, O_RDONLY) else {
        fail(out, true, "no-file", 2)
    };
    let n = syscall(
        SYS_READ,
        [fd, slot.as_mut_ptr() as u64, SLOT as u64, 0, 0, 0],
    );
    close(fd);
    if n != SLOT as i64 {
        fail(out, true, "not-a-slot", 2);
    }
    let o = Outbox::open().unwrap_or_else(|e| fail(out, true, e, 2));
    let head = o.put(&slot);
    let _ = writeln!(out, "{{\"submitted\":{head}}}");
    write_all(1, out.as_bytes());
    exit(0)
}

/// `--flood COUNT`: COUNT slots as fast as they can be written (the test of
/// a hostile Linux): every other one random bytes, the others well-framed
/// forgeries (right magic, version and key index, reserved bytes zero, a
/// random signature with a canonical scalar), which the RTOS can refuse
/// only by verifying them in full. Prints `{"flooded":COUNT}`.
fn flood(out: &mut Buf<OUT_MAX>, count: u64) -> ! {
    let o = Outbox::open().unwrap_or_else(|e| fail(out, true, e, 2));
    let Some(fd) = open(&Path::new(&[b"/dev/urandom"]), O_RDONLY) else {
        fail(out, true, "no-urandom", 2)
    };
    let mut slot = [0u8; SLOT];
    for i in 0..count {
        syscall(
            SYS_READ,
            [fd, slot.as_mut_ptr() as u64, SLOT as u64, 0, 0, 0],
        );
        if i % 2 == 1 {
            slot[..4].copy_from_slice(&request::MAGIC.to_le_bytes());
            slot[4..8].copy_from_slice(&request::VERSION.to_le_bytes());
            slot[8..12].fill(0);
            slot[32..request::BODY].fill(0);
            // s below 2^252, so that it is canonical.
            slot[request::BODY + request::SIG - 1] &= 0x0f;
            slot[request::BODY + request::SIG..].fill(0);
        }
        o.put(&slot);
    }
    close(fd);
    let _ = writeln!(out, "{{\"flooded\":{count}}}");
    write_all(1, out.as_bytes());
    exit(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    write_all(2, b"septum-telemetry: internal error\n");
    exit(4)
}
