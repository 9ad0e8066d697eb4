//! The Linux side: entry, system calls, `/dev/mem`.

use core::arch::{asm, global_asm};
use core::fmt::Write;

use septum_abi::channel::telemetry::{Telemetry, MAGIC, VERSION, WORDS};
use septum_abi::channel::{read, ReadError, Words, PAGE, PAGE_WORDS};
use septum_telemetry::{
    error_name, is_channel_node, json, json_error, parse_reg, text, Buf, COMPATIBLE, OUT_MAX,
    RESERVED_MEMORY, ROLE_READER,
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
const AT_FDCWD: i64 = -100;
const O_RDONLY: u64 = 0;
const O_DIRECTORY: u64 = 0o40000;
const O_SYNC: u64 = 0o4010000;
const O_CLOEXEC: u64 = 0o2000000;
const PROT_READ: u64 = 1;
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

fn open(path: &Path, flags: u64) -> Option<u64> {
    let fd = syscall(
        SYS_OPENAT,
        [AT_FDCWD as u64, path.ptr(), flags | O_CLOEXEC, 0, 0, 0],
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
        // SAFETY: `base` is a live, page-sized, read-only mapping of the
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
        match arg {
            b"--json" => as_json = true,
            b"--text" => as_json = false,
            a if !a.starts_with(b"-") && a.len() <= 16 => name = a,
            _ => {
                write_all(2, b"usage: septum-telemetry [--json|--text] [CHANNEL]\n");
                exit(3)
            }
        }
    }
    let mut out = Buf::<OUT_MAX>::new();
    let mut node = Buf::<64>::new();
    if !find_node(name, &mut node) {
        fail(&mut out, as_json, "no-channel", 2);
    }
    let dir: [&[u8]; 3] = [RESERVED_MEMORY.as_bytes(), b"/", node.as_bytes()];
    let mut b = [0u8; 64];
    let compatible = read_file(
        &Path::new(&[dir[0], dir[1], dir[2], b"/compatible"]),
        &mut b,
    );
    if compatible != Some(COMPATIBLE) {
        fail(&mut out, as_json, "not-a-channel", 2);
    }
    let role = read_file(
        &Path::new(&[dir[0], dir[1], dir[2], b"/septum,role"]),
        &mut b,
    );
    if role != Some(ROLE_READER) {
        fail(&mut out, as_json, "not-the-reader", 2);
    }
    let reg = read_file(&Path::new(&[dir[0], dir[1], dir[2], b"/reg"]), &mut b).and_then(parse_reg);
    let Some((addr, _size)) = reg.filter(|&(a, s)| a % PAGE as u64 == 0 && s >= PAGE as u64) else {
        fail(&mut out, as_json, "bad-reg", 2);
    };
    let Some(fd) = open(&Path::new(&[b"/dev/mem"]), O_RDONLY | O_SYNC) else {
        fail(&mut out, as_json, "no-dev-mem", 2);
    };
    let base = syscall(SYS_MMAP, [0, PAGE as u64, PROT_READ, MAP_SHARED, fd, addr]);
    close(fd);
    if base < 0 {
        fail(&mut out, as_json, "mmap", 2);
    }
    let page = Mapped { base: base as u64 };
    let mut words = [0u32; WORDS];
    // The writer holds the lock for microseconds once a second: a few
    // quick tries, then a few after a pause, then give up (bounded).
    let mut got = Err(ReadError::Busy);
    for _ in 0..10 {
        got = read(&page, MAGIC, VERSION, &mut words, 4);
        if got != Err(ReadError::Busy) {
            break;
        }
        sleep_ms(1);
    }
    match got {
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

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    write_all(2, b"septum-telemetry: internal error\n");
    exit(4)
}
