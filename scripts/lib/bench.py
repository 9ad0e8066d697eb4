#!/usr/bin/env python3
"""Runs Septum's benchmarks in QEMU and writes the report (scripts/bench.sh).

Every run uses -icount shift=0,sleep=off (one instruction per nanosecond of
guest time) and a 1 GHz counter (-global cortex-a72-arm-cpu.cntfrq=...), so
one counter tick is one instruction: every figure is in instructions, repeats
exactly and does not depend on the host. (At QEMU's default 62.5 MHz a tick
would be 16 instructions.) docs/performance.md explains each figure.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "target", "bench")
# -nodefaults: only the devices each line names (no default NIC, whose ROM
# a fresh machine does not have).
QEMU_BASE = ["qemu-system-aarch64", "-nodefaults", "-cpu", "cortex-a72", "-smp", "4", "-m", "2G",
             "-nographic", "-monitor", "none", "-icount", "shift=0,sleep=off",
             "-global", "cortex-a72-arm-cpu.cntfrq=1000000000"]
# Linux's network device, as scripts/run-qemu.sh gives it.
NET = ["-netdev", "user,id=net0", "-device", "virtio-net-device,netdev=net0,bus=virtio-mmio-bus.0"]
# Counter frequency set above (CNTFRQ): one tick per instruction.
HZ = 1_000_000_000


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def stop_qemu(p):
    """Ends QEMU's process group, if it is still there (a QEMU that exited
    on its own has already been reaped by poll())."""
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def exited_early(name, p, text):
    """Stops the benchmark for a QEMU that ended on its own, with what it said."""
    raise SystemExit(f"bench: {name}: QEMU exited early with status {p.returncode}; it said:\n"
                     + "\n".join(text.splitlines()[-30:]))


def run_qemu(name, args, until, limit_s, linux_log=None):
    """Runs QEMU until a line containing `until` appears on the first
    serial port (or `limit_s` wall seconds pass); returns its output. The
    second serial port (UART1) goes to `linux_log`, or nowhere."""
    cmd = QEMU_BASE + args + ["-serial", "stdio", "-serial", f"file:{linux_log}" if linux_log else "null"]
    log(f"{name}: {' '.join(cmd)}")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    out = []
    deadline = time.time() + limit_s
    os.set_blocking(p.stdout.fileno(), False)
    buf = b""
    done = False
    while time.time() < deadline and not done:
        chunk = p.stdout.read()
        if chunk:
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                s = line.decode("utf-8", "replace").replace("\r", "")
                out.append(s)
                if until in s:
                    done = True
        elif p.poll() is not None:
            break
        else:
            time.sleep(0.05)
    stop_qemu(p)
    if buf:
        out.append(buf.decode("utf-8", "replace").replace("\r", ""))
    text = "\n".join(out)
    with open(os.path.join(OUT, f"{name}.log"), "w") as f:
        f.write(text + "\n")
    if not done and p.returncode not in (None, -signal.SIGTERM, -signal.SIGKILL):
        exited_early(name, p, text)
    if not done:
        raise SystemExit(f"bench: {name} did not reach '{until}' within {limit_s} s "
                         f"(see target/bench/{name}.log)")
    return text


def run_recovery(img, limit_s):
    """Boots `img` with Linux's console on a socket, crashes Linux (sysrq c,
    panic=-1) once it is up and idle, and waits until it is back."""
    import socket
    sock_path = os.path.join(OUT, "recovery-linux.sock")
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    cmd = QEMU_BASE + ["-M", "virt,virtualization=on,gic-version=3", "-kernel", img] + NET + [
        "-serial", "stdio", "-serial", f"unix:{sock_path},server=on,wait=off"]
    log("recovery: " + " ".join(cmd))
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    os.set_blocking(p.stdout.fileno(), False)
    for _ in range(100):
        if os.path.exists(sock_path) or p.poll() is not None:
            break
        time.sleep(0.1)
    if p.poll() is not None:
        exited_early("recovery", p, p.stdout.read().decode("utf-8", "replace"))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.setblocking(False)
    hv, lx = b"", b""
    deadline = time.time() + limit_s
    crashed = False
    try:
        while time.time() < deadline:
            try:
                hv += p.stdout.read() or b""
            except (BlockingIOError, TypeError):
                pass
            try:
                lx += s.recv(65536)
            except BlockingIOError:
                pass
            ready = lx.count(b"septum-linux: ready")
            if ready >= 1 and not crashed and hv.count(b"rtos: heartbeat ") >= 6:
                s.sendall(b"echo c > /proc/sysrq-trigger\n")
                crashed = True
            if crashed and ready >= 2 and hv.count(b"rtos: heartbeat ") >= 12:
                break
            if p.poll() is not None:
                exited_early("recovery", p, hv.decode("utf-8", "replace"))
            time.sleep(0.05)
        else:
            raise SystemExit("bench: recovery run did not complete")
    finally:
        stop_qemu(p)
    hv_t = hv.decode("utf-8", "replace").replace("\r", "")
    lx_t = lx.decode("utf-8", "replace").replace("\r", "")
    for name, t in [("recovery.log", hv_t), ("recovery-linux.log", lx_t)]:
        with open(os.path.join(OUT, name), "w") as f:
            f.write(t)
    enter = int(re.search(r"entering partition 'linux' at 0x[0-9a-f]+ \(counter (\d+)\)", hv_t).group(1))
    crash_t = float(re.search(r"\[\s*([0-9.]+)\] sysrq: Trigger a crash", lx_t).group(1))
    crash = enter + int(crash_t * HZ)
    detect = int(re.search(r"partition 'linux': PSCI SYSTEM_RESET -> restarting partition \(counter (\d+)\)", hv_t).group(1))
    restart = int(re.search(r"partition 'linux': reloaded \d+ bytes of images; restarting at counter (\d+)", hv_t).group(1))
    ups = re.findall(r"septum-linux: ready \(uptime ([0-9.]+) s\)", lx_t)
    back = restart + int(float(ups[-1]) * HZ)
    misses = [int(x) for x in re.findall(r"rtos: heartbeat \d+ .*? misses=(\d+)", hv_t)]
    return {"crash_to_detection_ticks": detect - crash,
            "detection_to_reload_done_ticks": restart - detect,
            "crash_to_linux_shell_ticks": back - crash,
            "rtos_misses": misses[-1] if misses else None}


def parse_pair(text):
    """septum-pairbench's figures: {name: {n, min, p50, p99, max}}."""
    r = {}
    for m in re.finditer(r"bench: (sgi_round_trip|device_irq|timer_irq) n=(\d+) min=(\d+) p50=(\d+) p99=(\d+) max=(\d+)", text):
        r[m.group(1)] = dict(zip(["n", "min", "p50", "p99", "max"], [int(x) for x in m.groups()[1:]]))
    for m in re.finditer(r"bench: (hvc_round_trip|gicd_read) mean_x1000=(\d+)", text):
        r[m.group(1)] = {"mean": int(m.group(2)) / 1000.0}
    return r


# Bao 738e3dc on the same kind of guest, same QEMU line and counter
# (../shared/platform-facts.md, issue 14): native, Bao, in instructions.
# Its timer figure runs to the first instruction of the IRQ vector, ours to
# the first of the handler after the vector saved registers, so the paths
# are compared by their overhead over native, never by total.
# (Bao's HVC overhead is over the 4 instructions the call and its loop take
# without a trap; natively QEMU answers PSCI itself in about that.)
BAO = {"timer_irq": (4, 203), "gicd_read": (3, 227), "hvc_round_trip": (4, 192),
       "sgi_round_trip": (71, 1669)}
# Septum's targets: half of Bao's overhead on every path (issue 14).
TARGET = {"timer_irq": 100, "gicd_read": 112, "hvc_round_trip": 94, "sgi_round_trip": 800,
          "device_irq": 100}


# The five exit paths the targets are for, in table order.
PATHS = [("timer_irq", "virtual timer, CVAL → handler (p50 of 1000)"),
         ("gicd_read", "trapped GICD_TYPER read (mean of 1000)"),
         ("hvc_round_trip", "HVC PSCI_VERSION round trip (mean of 1000)"),
         ("sgi_round_trip", "SGI round trip vCPU0 → vCPU1 → vCPU0 (p50 of 1000)"),
         ("device_irq", "passthrough device interrupt, write → handler (p50 of 1000)")]


def pair_value(d, name):
    v = d.get(name)
    if not v:
        return None
    return v["mean"] if "mean" in v else v["p50"]


def bao_rows(pair_native, pair_septum):
    """(path, native, Bao, Septum, Bao overhead, Septum overhead, Septum/Bao, target) rows."""
    rows = []
    for name, label in PATHS:
        n, sp = pair_value(pair_native, name), pair_value(pair_septum, name)
        b_native, b = BAO.get(name, (None, None))
        b_over = None if b is None else b - (b_native or 0)
        s_over = None if sp is None or n is None else sp - n
        rows.append((label, n, b, sp, b_over, s_over,
                     f"{s_over / b_over:.2f}" if s_over is not None and b_over else "n/a", TARGET[name]))
    return rows


def v2_rows(pair_native_v2, pair_septum_v2):
    """(path, native, Septum, overhead, target) on the GICv2 backend. Bao
    was measured on a GICv3 only; the targets are the same overheads."""
    rows = []
    for name, label in PATHS:
        n, sp = pair_value(pair_native_v2, name), pair_value(pair_septum_v2, name)
        rows.append((label, n, sp, None if n is None or sp is None else sp - n, TARGET[name]))
    return rows


def direct_rows(pair_native, pair_septum, pair_direct):
    """(path, native, Septum virtual, Septum direct, direct overhead) for the
    interrupt paths that direct delivery changes."""
    rows = []
    for name, label in [("timer_irq", "virtual timer, CVAL → handler (p50 of 1000)"),
                        ("device_irq", "passthrough device interrupt, write → handler (p50 of 1000)")]:
        n, v, d = (pair_value(x, name) for x in (pair_native, pair_septum, pair_direct))
        rows.append((label, n, v, d, None if n is None or d is None else d - n))
    return rows


def parse_rtos(text):
    r = {"exit": {}, "hist": {}}
    for line in text.splitlines():
        m = re.search(r"bench: exit (\w+) ticks_x1000=(\d+)", line)
        if m:
            r["exit"][m.group(1)] = int(m.group(2)) / 1000.0
        m = re.search(r"bench: (irq_latency|release_jitter) n=(\d+) min=(\d+) p50=(\d+) p99=(\d+) max=(\d+)", line)
        if m:
            r[m.group(1)] = dict(zip(["n", "min", "p50", "p99", "max"],
                                     [int(x) for x in m.groups()[1:]]))
        m = re.search(r"bench: hist (\w+) (.*)", line)
        if m:
            h = r["hist"].setdefault(m.group(1), {})
            for pair in m.group(2).split():
                v, c = pair.split(":")
                h[int(v)] = h.get(int(v), 0) + int(c)
        m = re.search(r"bench: worst_release at=(\d+) irq_entry=(\S+) released=(\S+) start=\+(\d+)", line)
        if m:
            r["worst_release"] = {"irq_entry": m.group(2).lstrip("+"), "released": m.group(3).lstrip("+"),
                                  "start": int(m.group(4))}
    hb = [int(x) for x in re.findall(r"rtos: heartbeat \d+ .*? misses=(\d+)", text)]
    r["misses"] = hb[-1] if hb else None
    return r


def parse_hyp(text, linux_text):
    h = {}
    m = re.search(r"SHA-256 cost: (\d+) ticks/MiB with the ARMv8 instructions, (\d+) ticks/MiB portable", text)
    if m:
        h["sha256_ticks_per_mib"] = {"armv8": int(m.group(1)), "portable": int(m.group(2))}
    for part, counter in re.findall(r"entering partition '(\w+)' at 0x[0-9a-f]+ \(counter (\d+)\)", text):
        h.setdefault("enter_ticks", {})[part] = int(counter)
    for part, us in re.findall(r"partition '(\w+)': \d+ images \(\d+ bytes\) measured in (\d+) us", text):
        h.setdefault("measure_us", {})[part] = int(us)
    m = re.search(r"boot timeline \(us since reset\): (.*)", text)
    if m:
        # "primary 24, EL2 map 132, ...": milestone name -> µs of guest time
        # (under -icount shift=0, 1000 instructions each, whatever CNTFRQ).
        h["timeline_us"] = {k.strip(): int(v) for k, v in
                            (part.rsplit(" ", 1) for part in m.group(1).split(", "))}
    m = re.search(r"septum-linux: ready \(uptime ([0-9.]+) s\)", linux_text or "")
    if m and "linux" in h.get("enter_ticks", {}):
        h["linux_shell_ticks"] = h["enter_ticks"]["linux"] + int(float(m.group(1)) * HZ)
    return h


def footprint(elf, config_summary):
    tool = llvm_tool("llvm-size")
    out = subprocess.run([tool, "-A", elf], capture_output=True, text=True, check=True).stdout
    sec = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sec[parts[0]] = int(parts[1])
    images = 0
    with open(config_summary) as f:
        for line in f:
            m = re.match(r"\s+image\s+\S+\s+(\d+) bytes", line)
            if m:
                images += int(m.group(1))
    loc = {}
    for name, d in [("hypervisor (EL2 glue)", "hypervisor/src"),
                    ("septum-core (logic)", "hypervisor/core/src"),
                    ("septum-fdt (device-tree reader)", "hypervisor/fdt/src")]:
        loc[name] = count_lines(os.path.join(ROOT, d))
    text = sec.get(".text", 0)
    rodata = sec.get(".rodata", 0)
    return {
        "text_bytes": text,
        "rodata_bytes_without_guest_images": max(rodata - images, 0),
        "data_bytes": sec.get(".data", 0),
        "bss_bytes": sec.get(".bss", 0),
        "guest_images_bytes": images,
        "reserved_ram_bytes": 128 * 1024 * 1024,
        "lines_of_code": loc,
    }


def count_lines(d):
    """Non-blank, non-comment lines of Rust outside `#[cfg(test)]` modules
    (which the code base keeps at the end of each file), test-only files
    (`tests.rs`, and septum-fdt's `builder.rs`, a tree writer compiled only
    for tests) left out."""
    n = 0
    for base, _, files in os.walk(d):
        for fn in files:
            if not fn.endswith(".rs") or fn in ("tests.rs", "builder.rs"):
                continue
            with open(os.path.join(base, fn)) as f:
                lines = f.read().splitlines()
            for i, l in enumerate(lines):
                s = l.strip()
                if s == "#[cfg(test)]" and i + 1 < len(lines) and lines[i + 1].strip().startswith("mod tests"):
                    break
                if s and not s.startswith("//"):
                    n += 1
    return n


def llvm_tool(name):
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
    host = re.search(r"host: (\S+)", subprocess.run(["rustc", "-vV"], capture_output=True, text=True).stdout).group(1)
    return os.path.join(sysroot, "lib", "rustlib", host, "bin", name)


def svg_histogram(title, series, path):
    """One SVG with a step histogram per condition (ticks on x, share of
    samples on a log-free linear y)."""
    colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a"]
    xmax = max((max(h) for h in series.values() if h), default=1)
    xmax = max(xmax, 1)
    W, H, L, B = 720, 320, 60, 40
    ymax = max((max(c / max(sum(h.values()), 1) for c in h.values()) for h in series.values() if h), default=1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             f'<text x="{W/2}" y="18" text-anchor="middle">{title}</text>',
             f'<line x1="{L}" y1="{H-B}" x2="{W-10}" y2="{H-B}" stroke="black"/>',
             f'<line x1="{L}" y1="30" x2="{L}" y2="{H-B}" stroke="black"/>',
             f'<text x="{W/2}" y="{H-8}" text-anchor="middle">instructions (1 GHz counter ticks)</text>',
             f'<text x="{L-5}" y="{H-B}" text-anchor="end">0</text>',
             f'<text x="{W-10}" y="{H-B+15}" text-anchor="end">{xmax}</text>',
             f'<text x="{L-5}" y="38" text-anchor="end">{ymax:.0%}</text>']
    for i, (name, h) in enumerate(series.items()):
        total = max(sum(h.values()), 1)
        c = colors[i % len(colors)]
        for v, cnt in sorted(h.items()):
            x = L + (W - 10 - L) * v / xmax
            y = (H - B) - (H - B - 30) * (cnt / total) / ymax
            parts.append(f'<line x1="{x:.1f}" y1="{H-B}" x2="{x:.1f}" y2="{y:.1f}" stroke="{c}" stroke-width="2" opacity="0.7"/>')
        parts.append(f'<text x="{W-15}" y="{40 + 16*i}" text-anchor="end" fill="{c}">{name}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b not in (None, 0) else "n/a"


def smoke():
    """scripts/bench.sh --smoke (run by scripts/test.sh): the quick runs
    only, to keep the benchmark builds, the QEMU invocations and the parsers
    working. It checks that every figure is reported, never its value."""
    os.makedirs(OUT, exist_ok=True)
    limit = int(os.environ.get("SEPTUM_BENCH_LIMIT", "300"))
    found = {
        "rtos_native": parse_rtos(run_qemu(
            "smoke-rtos-native", ["-M", "virt,gic-version=3", "-kernel",
                                  os.path.join(ROOT, "target/septum/guests/septum-rtos-bench.bin")],
            "bench: done", limit)),
        "pair_native": parse_pair(run_qemu(
            "smoke-pair-native", ["-M", "virt,gic-version=3", "-kernel",
                                  os.path.join(ROOT, "target/septum/guests/septum-pairbench.bin")],
            "bench: done", limit)),
    }
    pair_txt = run_qemu("smoke-pair-septum", ["-M", "virt,virtualization=on,gic-version=3", "-kernel",
                                              os.path.join(ROOT, "target/septum/virt-pairbench/septum.img")],
                        "bench: done", limit)
    found["pair_septum"] = parse_pair(pair_txt)
    found["pair_direct"] = parse_pair(run_qemu(
        "smoke-pair-direct", ["-M", "virt,virtualization=on,gic-version=3", "-kernel",
                              os.path.join(ROOT, "target/septum/virt-pairbench-direct/septum.img")],
        "bench: done", limit))
    found["pair_native_v2"] = parse_pair(run_qemu(
        "smoke-pair-native-v2", ["-M", "virt,gic-version=2", "-kernel",
                                 os.path.join(ROOT, "target/septum/guests/septum-pairbench.bin")],
        "bench: done", limit))
    found["pair_septum_v2"] = parse_pair(run_qemu(
        "smoke-pair-septum-v2", ["-M", "virt,virtualization=on,gic-version=2", "-kernel",
                                 os.path.join(ROOT, "target/septum/virt-pairbench-v2/septum.img")],
        "bench: done", limit))
    found["boot"] = parse_hyp(pair_txt, "")
    every = ["sgi_round_trip", "device_irq", "timer_irq", "hvc_round_trip", "gicd_read"]
    missing = [f"{run}: {fig}" for run, figs in
               [("rtos_native", ["irq_latency", "release_jitter"]),
                ("pair_native", every), ("pair_native_v2", every), ("pair_septum_v2", every),
                ("pair_septum", ["sgi_round_trip", "device_irq", "timer_irq", "hvc_round_trip", "gicd_read"]),
                ("pair_direct", ["device_irq", "timer_irq"])]
               for fig in figs if fig not in found[run]]
    missing += [f"rtos_native: exit {op}" for op in ["gicd_read"] if op not in found["rtos_native"]["exit"]]
    if "worst_release" not in found["rtos_native"]:
        missing.append("rtos_native: worst_release")
    if "first critical instruction" not in found["boot"].get("timeline_us", {}):
        missing.append("pair_septum: boot timeline")
    with open(os.path.join(OUT, "smoke.json"), "w") as f:
        json.dump(found, f, indent=2, sort_keys=True)
    if missing:
        raise SystemExit("bench smoke: figures not reported: " + ", ".join(missing))
    log(f"smoke: every figure reported ({OUT}/smoke.json)")


def main():
    if sys.argv[1:] == ["--smoke"]:
        smoke()
        return
    os.makedirs(OUT, exist_ok=True)
    rtos_native = os.path.join(ROOT, "target/septum/guests/septum-rtos-bench.bin")
    idle_img = os.path.join(ROOT, "target/septum/bench-idle/septum.img")
    load_img = os.path.join(ROOT, "target/septum/bench-load/septum.img")
    rpi4_img = os.path.join(ROOT, "target/septum/bench-rpi4/septum.img")
    pair_native_img = os.path.join(ROOT, "target/septum/guests/septum-pairbench.bin")
    pair_img = os.path.join(ROOT, "target/septum/virt-pairbench/septum.img")
    limit = int(os.environ.get("SEPTUM_BENCH_LIMIT", "900"))

    # The boot figure on the product itself: configs/qemu-virt.toml with the
    # RTOS's normal build (the benchmark build is bigger, so it hashes and
    # copies more before its first instruction).
    product = parse_hyp(run_qemu("boot", ["-M", "virt,virtualization=on,gic-version=3", "-kernel",
                                          os.path.join(ROOT, "target/septum/qemu-virt/septum.img")] + NET,
                                 "boot timeline", limit), "")
    native = parse_rtos(run_qemu("native", ["-M", "virt,gic-version=3", "-kernel", rtos_native],
                                 "bench: done", limit))
    pair_native = parse_pair(run_qemu("pair-native", ["-M", "virt,gic-version=3", "-kernel", pair_native_img],
                                      "bench: done", limit))
    pair_septum = parse_pair(run_qemu("pair-septum", ["-M", "virt,virtualization=on,gic-version=3", "-kernel", pair_img],
                                      "bench: done", limit))
    pair_direct = parse_pair(run_qemu("pair-direct", ["-M", "virt,virtualization=on,gic-version=3", "-kernel",
                                                      os.path.join(ROOT, "target/septum/virt-pairbench-direct/septum.img")],
                                      "bench: done", limit))
    pair_native_v2 = parse_pair(run_qemu("pair-native-v2", ["-M", "virt,gic-version=2", "-kernel", pair_native_img],
                                         "bench: done", limit))
    pair_septum_v2 = parse_pair(run_qemu("pair-septum-v2", ["-M", "virt,virtualization=on,gic-version=2", "-kernel",
                                                            os.path.join(ROOT, "target/septum/virt-pairbench-v2/septum.img")],
                                         "bench: done", limit))
    idle_txt = run_qemu("septum-idle", ["-M", "virt,virtualization=on,gic-version=3", "-kernel", idle_img] + NET,
                        "bench: done", limit, os.path.join(OUT, "septum-idle-linux.log"))
    load_txt = run_qemu("septum-load", ["-M", "virt,virtualization=on,gic-version=3", "-kernel", load_img] + NET,
                        "bench: done", limit, os.path.join(OUT, "septum-load-linux.log"))
    # Interference: the same RTOS beside a Linux crash loop, and beside a
    # hostile guest on the other three cores flooding faults, or SGIs and
    # GIC MMIO (no NIC there: the intruder has none).
    crash_txt = run_qemu("septum-crash", ["-M", "virt,virtualization=on,gic-version=3", "-kernel",
                                          os.path.join(ROOT, "target/septum/bench-crash/septum.img")] + NET,
                         "bench: done", limit, os.path.join(OUT, "septum-crash-linux.log"))
    flood = parse_rtos(run_qemu("septum-flood", ["-M", "virt,virtualization=on,gic-version=3", "-kernel",
                                                 os.path.join(ROOT, "target/septum/bench-flood/septum.img")],
                                "bench: done", limit))
    flood_irq = parse_rtos(run_qemu("septum-flood-irq", ["-M", "virt,virtualization=on,gic-version=3", "-kernel",
                                                         os.path.join(ROOT, "target/septum/bench-flood-irq/septum.img")],
                                    "bench: done", limit))
    crash = parse_rtos(crash_txt)
    crash["linux_restarts"] = crash_txt.count("partition 'linux': reloaded")
    rpi4 = parse_rtos(run_qemu("septum-rpi4", ["-M", "raspi4b", "-kernel", rpi4_img],
                               "bench: done", limit, os.path.join(OUT, "septum-rpi4-linux.log")))
    idle, load = parse_rtos(idle_txt), parse_rtos(load_txt)
    with open(os.path.join(OUT, "septum-idle-linux.log"), errors="replace") as f:
        hyp = parse_hyp(idle_txt, f.read())
    with open(os.path.join(OUT, "septum-load-linux.log"), errors="replace") as f:
        load_linux = f.read()
    recovery = run_recovery(idle_img, limit)
    fp = footprint(os.path.join(ROOT, "target/septum/bench-idle/septum.elf"),
                   os.path.join(ROOT, "target/septum/bench-idle/gen/summary.txt"))

    report = {
        "conditions": {
            "native": "the RTOS alone on QEMU virt at EL1, no hypervisor",
            "septum_linux_idle": "under Septum, Linux booted and idle",
            "septum_linux_loaded": "under Septum, Linux running busy loops on its 3 CPUs, console output and network traffic (septum.load=1)",
        },
        "units": "instructions (-icount shift=0,sleep=off with a 1 GHz counter: one tick per instruction)",
        "irq_latency": {"native": native.get("irq_latency"), "septum_linux_idle": idle.get("irq_latency"),
                        "septum_linux_loaded": load.get("irq_latency")},
        "release_jitter": {"native": native.get("release_jitter"), "septum_linux_idle": idle.get("release_jitter"),
                           "septum_linux_loaded": load.get("release_jitter")},
        "exit_costs": {"native": native["exit"], "septum": idle["exit"]},
        "exit_round_trips": {"native": pair_native, "septum": pair_septum, "septum_direct": pair_direct},
        "direct_delivery": [dict(zip(["path", "native", "septum_virtual", "septum_direct", "direct_overhead"], r))
                            for r in direct_rows(pair_native, pair_septum, pair_direct)],
        "bao_comparison": [dict(zip(["path", "native", "bao", "septum", "bao_overhead", "septum_overhead",
                                     "septum_over_bao", "target_overhead"], r))
                           for r in bao_rows(pair_native, pair_septum)],
        "exit_paths_gicv2": [dict(zip(["path", "native", "septum", "septum_overhead", "target_overhead"], r))
                             for r in v2_rows(pair_native_v2, pair_septum_v2)],
        "rpi4_gicv2_linux_idle": {k: rpi4.get(k) for k in ["irq_latency", "release_jitter"]}
        | {"exit": rpi4["exit"], "misses": rpi4["misses"]},
        "boot": hyp,
        "boot_product": product,
        "rtos_misses": {"native": native["misses"], "septum_linux_idle": idle["misses"],
                        "septum_linux_loaded": load["misses"]},
        "linux_load_running": "septum-linux: load running" in load_linux,
        "interference": {
            "units": "instructions",
            "conditions": {
                "native": native, "linux_idle": idle, "linux_busy": load, "fault_flood": flood,
                "sgi_mmio_flood": flood_irq, "linux_crash_loop": crash,
            },
        },
        "footprint": fp,
        "recovery": recovery,
    }
    with open(os.path.join(OUT, "report.json"), "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    for kind in ["irq_latency", "release_jitter"]:
        svg_histogram(f"RTOS {kind.replace('_', ' ')}",
                      {"native": native["hist"].get(kind, {}),
                       "Septum, Linux idle": idle["hist"].get(kind, {}),
                       "Septum, Linux loaded": load["hist"].get(kind, {})},
                      os.path.join(OUT, f"{kind}.svg"))

    def row(name, d):
        n = d.get("native") or {}
        cells = [name]
        for k in ["native", "septum_linux_idle", "septum_linux_loaded"]:
            s = d.get(k)
            cells.append("n/a" if not s else f"{s['min']} / {s['p50']} / {s['p99']} / {s['max']}")
        i = d.get("septum_linux_idle") or {}
        cells.append(ratio(i.get("p50"), n.get("p50")) if n.get("p50") else
                     f"+{i.get('p50', 0) - n.get('p50', 0)}")
        return "| " + " | ".join(cells) + " |"

    md = ["# Septum benchmark report", "",
          f"Generated by scripts/bench.sh. {report['units']}. Figures repeat exactly run to run.",
          "", "## RTOS timing (min / median / p99 / max)", "",
          "| figure | native | Septum, Linux idle | Septum, Linux loaded | median, Septum idle vs native |",
          "|---|---|---|---|---|",
          row("timer interrupt latency", report["irq_latency"]),
          row("1 kHz release jitter", report["release_jitter"]), "",
          f"RTOS deadline misses: native {native['misses']}, Linux idle {idle['misses']}, "
          f"Linux loaded {load['misses']} (load running: {report['linux_load_running']}).", "",
          "Histograms: `irq_latency.svg`, `release_jitter.svg`.", "",
          "## Interference (instructions; min / median / p99 / max)", "",
          "The RTOS's figures beside each thing another partition can do. Goal: the maximum of "
          "every row equal to Linux idle's (no interference through the hypervisor). Under QEMU the "
          "cores share one clock in round-robin slices, so a busy neighbour shows up here as QEMU's "
          "serialisation as well (docs/performance.md).", "",
          "| other partition | timer interrupt latency | 1 kHz release jitter | max vs idle (latency / jitter) | RTOS misses |",
          "|---|---|---|---|---|"]
    def instr(s):
        return "n/a" if not s else " / ".join(f"{s[k]:,}" for k in ["min", "p50", "p99", "max"])

    def vs_idle(s, kind):
        i = idle.get(kind)
        if not s or not i:
            return "n/a"
        return f"{s['max'] - i['max']:+,}"

    for label, d in [("none (native, no hypervisor)", native), ("Linux idle", idle),
                     ("Linux busy (septum.load=1)", load),
                     (f"Linux crash loop ({crash['linux_restarts']} restarts in the run)", crash),
                     ("fault flood, 3 vCPUs", flood), ("SGI + GIC MMIO flood, 3 vCPUs", flood_irq)]:
        md.append(f"| {label} | {instr(d.get('irq_latency'))} | {instr(d.get('release_jitter'))} | "
                  f"{vs_idle(d.get('irq_latency'), 'irq_latency')} / {vs_idle(d.get('release_jitter'), 'release_jitter')} | "
                  f"{d.get('misses')} |")
    md += ["", "Where the worst release's time went (instructions after the release: the timer "
           "interrupt's entry, the due jobs released, the control job's start):", ""]
    for label, d in [("native", native), ("Linux idle", idle), ("Linux busy", load), ("Linux crash loop", crash),
                     ("fault flood", flood), ("SGI + GIC MMIO flood", flood_irq)]:
        w = d.get("worst_release")
        if w:
            md.append(f"- {label}: entry +{w['irq_entry']}, released +{w['released']}, start +{w['start']:,}")
    md += ["", "## Exit costs in the RTOS (instructions per operation, mean of 1000)", "",
           "Timed at the RTOS's start, while Linux boots on the other cores: under icount's one "
           "clock their instructions count too. \"Exit paths against Bao\" below has the paths' own cost.", "",
           "| operation | native | Septum | ratio |", "|---|---|---|---|"]
    for op in ["hvc_round_trip", "gicd_read"]:
        a, b = native["exit"].get(op), idle["exit"].get(op)
        md.append(f"| {op} | {a if a is not None else 'n/a'} | {b} | {ratio(b, a)} |")
    md += ["", "## Interrupt round trips (instructions; min / median / p99 / max of 1000)", "",
           "SGI between two vCPUs of one partition: send to the first instruction of the sender's handler "
           "for the answer. Passthrough device interrupt: the UART1 write that raises it to the first "
           "instruction of the handler (guests/pairbench).", "",
           "| operation | native | Septum | median, Septum vs native |", "|---|---|---|---|"]
    def cell(s):
        return "n/a" if not s else f"{s['min']} / {s['p50']} / {s['p99']} / {s['max']}"

    for op in ["sgi_round_trip", "device_irq"]:
        a, b = pair_native.get(op), pair_septum.get(op)
        md.append(f"| {op} | {cell(a)} | {cell(b)} | "
                  f"{ratio(b and b['p50'], a and a['p50'])} (+{(b or {}).get('p50', 0) - (a or {}).get('p50', 0)}) |")
    md += ["", "## Exit paths against Bao (instructions)", "",
           "guests/pairbench natively and in qemu/configs/virt-pairbench.toml, beside Bao 738e3dc's figures on "
           "the same QEMU line and counter. Overheads are over native on each path; the target is half of "
           "Bao's overhead.", "",
           "| path | native | Bao | Septum | Bao overhead | Septum overhead | Septum/Bao | target |",
           "|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "—" if v is None else (f"{v:,.1f}" if isinstance(v, float) and v != int(v) else f"{int(v):,}")
    for label, n, b, sp, bo, so, r, t in bao_rows(pair_native, pair_septum):
        ok = "" if so is None else (" ✓" if so <= t else " ✗")
        md.append(f"| {label} | {fmt(n)} | {fmt(b)} | {fmt(sp)} | {fmt(bo) if bo is None else '+' + fmt(bo)} | "
                  f"{fmt(so) if so is None else '+' + fmt(so)} | {r} | ≤ +{t}{ok} |")
    md += ["", "## Direct interrupt delivery (instructions)", "",
           "The same guest in qemu/configs/virt-pairbench-direct.toml (`interrupts = \"direct\"`, one vCPU): "
           "its timer PPI and UART1's SPI are taken at EL1 with no exit (docs/architecture.md, "
           "\"Direct interrupt delivery\"). Issue 14's goal: native (+0).", "",
           "| path | native | Septum, virtual | Septum, direct | direct overhead |", "|---|---|---|---|---|"]
    for label, n, v, d, o in direct_rows(pair_native, pair_septum, pair_direct):
        md.append(f"| {label} | {fmt(n)} | {fmt(v)} | {fmt(d)} | {'—' if o is None else f'{o:+d}'} |")
    md += ["", "## Exit paths on the GICv2 backend (instructions)", "",
           "guests/pairbench natively on QEMU virt with gic-version=2 and in "
           "qemu/configs/virt-pairbench-v2.toml (GICv2 distributor emulated, list registers in GICH, "
           "the guest's CPU interface the hardware's GICV). Bao was measured on a GICv3 only; the "
           "targets are the same overheads.", "",
           "| path | native | Septum | Septum overhead | target |", "|---|---|---|---|---|"]
    for label, n, sp, so, t in v2_rows(pair_native_v2, pair_septum_v2):
        ok = "" if so is None else (" ✓" if so <= t else " ✗")
        md.append(f"| {label} | {fmt(n)} | {fmt(sp)} | {'—' if so is None else '+' + fmt(so)} | ≤ +{t}{ok} |")
    md += ["", "## Raspberry Pi 4 (QEMU raspi4b, GICv2 backend), Linux idle", "",
           "The same benchmark RTOS in configs/rpi4.toml: list registers in GICH (MMIO), "
           "the GICv2 distributor emulated, the CPU interface the hardware's GICV.", "",
           "| figure | Septum on raspi4b | Septum on virt (GICv3) |", "|---|---|---|"]
    for kind, label in [("irq_latency", "timer interrupt latency"), ("release_jitter", "1 kHz release jitter")]:
        md.append(f"| {label} (min / median / p99 / max) | {cell(rpi4.get(kind))} | {cell(idle.get(kind))} |")
    for op in ["hvc_round_trip", "gicd_read"]:
        md.append(f"| {op} (mean of 1000) | {rpi4['exit'].get(op, 'n/a')} | {idle['exit'].get(op, 'n/a')} |")
    md += ["", f"RTOS deadline misses on raspi4b: {rpi4['misses']}."]
    md += ["", "## Boot", ""]
    for label, tl in [("configs/qemu-virt.toml (the product)", product.get("timeline_us")),
                      ("the same with the benchmark RTOS", hyp.get("timeline_us"))]:
        if not tl:
            continue
        first = tl.get("first critical instruction")
        md += [f"{label}: reset to the critical partition's first instruction: **{first} µs** of guest time "
               f"({first * 1000 if first is not None else 'n/a'} instructions; goal ≤ 1000 µs). "
               "Milestones on the boot core (µs since reset; the hypervisor's boot log line "
               "`boot timeline`):", "",
               "| " + " | ".join(tl) + " |", "|" + "---|" * len(tl),
               "| " + " | ".join(str(v) for v in tl.values()) + " |", ""]
    et = hyp.get("enter_ticks", {})
    for part, t in et.items():
        md.append(f"- first instruction of partition `{part}`: counter {t} ({t / HZ * 1000:.1f} ms)")
    if "linux_shell_ticks" in hyp:
        t = hyp["linux_shell_ticks"]
        md.append(f"- Linux shell ready: counter {t} ({t / HZ * 1000:.1f} ms; Linux's own uptime added)")
    for part, us in hyp.get("measure_us", {}).items():
        md.append(f"- measuring and verifying `{part}`'s images: {us} µs")
    sha = hyp.get("sha256_ticks_per_mib")
    if sha:
        md.append(f"- SHA-256: {sha['armv8']} instructions/MiB with the ARMv8 instructions, "
                  f"{sha['portable']} instructions/MiB portable ({sha['portable'] / sha['armv8']:.1f}x)")
    md += ["", "## Recovery (Linux: sysrq c with panic=-1)", ""]
    for k, v in recovery.items():
        if k.endswith("_ticks"):
            md.append(f"- {k[:-6].replace('_', ' ')}: {v:,} instructions ({v / HZ * 1000:.1f} ms)")
        else:
            md.append(f"- RTOS deadline misses through it: {v}")
    md += ["", "## Footprint", ""]
    for k, v in fp.items():
        md.append(f"- {k}: {v}")
    with open(os.path.join(OUT, "report.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    log(f"wrote {OUT}/report.md, report.json, irq_latency.svg, release_jitter.svg")
    print("\n".join(md))


if __name__ == "__main__":
    main()
