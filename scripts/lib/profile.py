#!/usr/bin/env python3
"""Instruction profile of one exit path (scripts/profile-exits.sh).

Boots an image whose pairbench runs one figure (SEPTUM_PAIRBENCH_ONLY) with
QEMU's `-d in_asm,exec,nochain` trace, stops QEMU at "bench: done", and
attributes the EL2 instructions core 0 executed while the guest was in its
main function to the hypervisor's symbols, per round of the figure.

Trace facts it relies on (QEMU 10): each translation is logged (`IN:` and
one line per instruction) just before the first execution of its block,
whose `Trace` line names the block's host address, so host address ->
length is known for every later execution; the third field of a `Trace`
line holds the block's flags, which differ between EL2 and EL1 (the EL2
ones are those seen before the guest's first instruction). Guest and
hypervisor both run at 0x4020_0000, so addresses alone cannot tell them
apart.
"""

import bisect
import collections
import os
import re
import signal
import subprocess
import sys
import time


def symbols(nm, elf):
    out = subprocess.run([nm, "-C", "-n", "-S", elf], capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        p = line.split(" ", 3)
        if len(p) == 4 and p[2] in "tTwW":
            syms.append((int(p[0], 16), int(p[1], 16), p[3]))
        elif len(p) == 3 and p[1] in "tTwW":
            syms.append((int(p[0], 16), 0, p[2]))
    syms.sort()
    return syms


def run(cmd, log, limit):
    p = subprocess.Popen(cmd + ["-d", "in_asm,exec,nochain", "-D", log], stdout=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    buf, t0 = b"", time.time()
    try:
        while time.time() - t0 < limit:
            chunk = p.stdout.read1(4096)
            if not chunk:
                break
            buf += chunk
            if b"bench: done" in buf:
                break
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    text = buf.decode(errors="replace")
    if "bench: done" not in text:
        raise SystemExit(f"profile: the guest did not finish within {limit} s:\n{text[-2000:]}")
    return text


def profile(log, syms, guest_syms, window, rounds, detail, addr2line, elf):
    addrs = [a for a, _, _ in syms]

    def sym(pc):
        i = bisect.bisect_right(addrs, pc) - 1
        return syms[i][2] if i >= 0 else "?"

    win = [(a, a + max(sz, 4)) for a, sz, n in guest_syms if window in n]
    if not win:
        raise SystemExit(f"profile: no guest symbol contains '{window}'")
    insn = re.compile(r"^0x[0-9a-f]+:\s")
    trace = re.compile(r"^Trace (\d+): (0x[0-9a-f]+) \[[0-9a-f]+/([0-9a-f]+)/([0-9a-f]+)/")
    length, el2_flags = {}, set()
    by_sym, by_tb, total = collections.Counter(), collections.Counter(), collections.Counter()
    pend_sym, pend_tb, pend_n = collections.Counter(), collections.Counter(), 0
    n_new, started, inside, n_exec = 0, False, False, 0
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith("IN:"):
                n_new = 0
                continue
            if insn.match(line):
                n_new += 1
                continue
            m = trace.match(line)
            if not m:
                continue
            cpu, host, pc, flags = m.group(1), m.group(2), int(m.group(3), 16), m.group(4)
            if n_new:
                length[host], n_new = n_new, 0
            n = length.get(host, 1)
            n_exec += 1
            if not started:
                # The guest's first instruction: the entry, once EL2 has run.
                if pc == 0x40200000 and n_exec > 1000:
                    started = True
                else:
                    el2_flags.add(flags)
                continue
            if cpu != "0":
                continue
            if flags not in el2_flags:
                if any(a <= pc < b for a, b in win):
                    # EL2 work between two guest blocks of the window is the
                    # figure's; after the window's last block it is not.
                    inside = True
                    by_sym.update(pend_sym)
                    by_tb.update(pend_tb)
                    total["EL2"] += pend_n
                    pend_sym.clear(), pend_tb.clear()
                    pend_n = 0
                continue
            if inside:
                pend_sym[sym(pc)] += n
                pend_tb[(pc, n)] += 1
                pend_n += n
    print(f"EL2 instructions on core 0 per round: {total['EL2'] / rounds:.1f} ({rounds} rounds)")
    for s, c in by_sym.most_common(25):
        print(f"{c / rounds:9.1f}  {s[:110]}")
    if detail:
        print(f"\nblocks of symbols containing '{detail}' (start, length, instructions per round, inlined from):")
        for (pc, n), c in sorted(by_tb.items()):
            if detail not in sym(pc) or c * n / rounds < 0.5:
                continue
            w = subprocess.run([addr2line, "-e", elf, "-f", "-C", "-i", "-s", hex(pc)],
                               capture_output=True, text=True).stdout.strip().splitlines()
            where = " <- ".join(w[1::2])
            print(f"  {pc:#x} {n:3} {c * n / rounds:7.1f}  {where[:150]}")


def main():
    image, elf, guest_elf, nm, addr2line, log = sys.argv[1:7]
    detail = sys.argv[7] if len(sys.argv) > 7 else ""
    cmd = ["qemu-system-aarch64", "-nodefaults", "-M", "virt,virtualization=on,gic-version=" + os.environ.get("SEPTUM_PROFILE_GIC", "3"), "-cpu", "cortex-a72",
           "-smp", "4", "-m", "2G", "-nographic", "-monitor", "none", "-icount", "shift=0,sleep=off",
           "-global", "cortex-a72-arm-cpu.cntfrq=1000000000", "-kernel", image, "-serial", "stdio", "-serial", "null"]
    out = run(cmd, log, 300)
    for line in out.splitlines():
        if "bench: " in line:
            print(line.strip())
    # pairbench's figures: WARMUP (100) + SAMPLES (1000) rounds.
    profile(log, symbols(nm, elf), symbols(nm, guest_elf), "guest_main", 1100, detail, addr2line, elf)


if __name__ == "__main__":
    main()
