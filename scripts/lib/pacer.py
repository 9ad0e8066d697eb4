#!/usr/bin/env python3
"""Paces a deterministic QEMU run to the wall clock (scripts/run-qemu.sh
--paced, the interactive default; docs/rtos.md "Timing modes in QEMU").

    pacer.py QMP_SOCKET CONSOLE_LOG

QEMU runs with -icount shift=0,sleep=off: guest time is a function of the
instructions executed alone, so nothing the host does can make the RTOS
late. Idle guests therefore run many times faster than the wall clock. This
process holds the guest back to the wall clock from outside: it reads the
RTOS's status lines (`guest_time=...`) from the console log QEMU writes, and
pauses and resumes the whole machine over QMP (`stop` / `cont`), so that
guest time never runs ahead of wall-clock time. A paused machine's clock is
paused with it: the guest cannot tell, and no deadline moves.

When the host is too slow to keep up (Linux busy on three vCPUs), guest time
falls behind and the pacer never pauses; it does not make up the lag later
(no burst of status lines), it only holds the guest back.

What it can promise: the pacer sees guest time only at status lines, one a
second, so a status line is never more than that one interval (plus a
decision tick) ahead of the wall clock since the first line. It guesses
where the guest is between lines from the guest's recent speed, taking the
fastest of the last few intervals so that a guest speeding up (Linux going
idle) is held back rather than let run ahead. SEPTUM_PACER_LOG=FILE records
each status line as the pacer saw it (`line GUEST_S WALL_S`, wall seconds
since the first line): what qemu/tests/scripts.rs checks.
"""

import collections
import json
import os
import re
import socket
import sys
import time

TICK = 0.005  # control period, s
SLACK = 0.5  # the most guest time may lag before the target is moved up
SLICE = 0.2  # the most guest time one control period may cover while running, s
MIN_TICK = 0.0005  # the shortest control period, s
DEBUG = bool(os.environ.get("SEPTUM_PACER_DEBUG"))
LINE = re.compile(rb"rtos: heartbeat \d+ guest_time=(\d+)\.(\d{3})s")


class Qmp:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rwb", buffering=0)
        self.f.readline()  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name):
        self.f.write(json.dumps({"execute": name}).encode() + b"\n")
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError
            msg = json.loads(line)
            if "return" in msg or "error" in msg:
                return msg


def connect(path, limit=60.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            return Qmp(path)
        except OSError:
            time.sleep(0.05)
    sys.exit(f"pacer: no QMP socket at {path}")


def main():
    qmp = connect(sys.argv[1])
    log_path = sys.argv[2]
    while not os.path.exists(log_path):
        time.sleep(0.05)
    log = open(log_path, "rb")
    buf = b""
    running = True
    # Guest time at the last status line, and the machine's running time
    # since then; the guest's speed (guest s per running wall s) over the
    # last few intervals.
    last_g = None
    run_since = 0.0
    speeds = collections.deque([1.0], maxlen=4)
    # The fastest the guest has ever run (an idle machine under icount runs
    # hundreds of times faster than the wall clock): while it runs, the
    # control period is cut so that even at that speed one period covers
    # at most SLICE of guest time, since the guess cannot see past the next
    # status line and a fast guest would otherwise print two in one period.
    peak = 1.0
    record = open(os.environ["SEPTUM_PACER_LOG"], "a") if os.environ.get("SEPTUM_PACER_LOG") else None
    first = None  # wall time of the first status line
    anchor = None  # (guest, wall): guest time should be guest + (now - wall)
    prev = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if running:
                run_since += now - prev
            prev = now
            chunk = log.read()
            if chunk:
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    m = LINE.search(line)
                    if not m:
                        continue
                    g = int(m.group(1)) + int(m.group(2)) / 1000
                    if last_g is not None and g > last_g and run_since > 0:
                        speeds.append((g - last_g) / run_since)
                        peak = max(peak, speeds[-1])
                    last_g, run_since = g, 0.0
                    if anchor is None:
                        anchor = (g, now)
                        first = now
                    if record:
                        record.write(f"line {g:.3f} {now - first:.3f}\n")
                        record.flush()
            if anchor is not None:
                speed = max(speeds)
                # The next line comes at last_g + 1 s of guest time: until
                # it has, the guest cannot be past that.
                guess = min(last_g + speed * run_since, last_g + 1.0)
                target = anchor[0] + (now - anchor[1])
                if target > guess + SLACK:
                    # Behind (a slow host): hold no lag to make up later.
                    anchor = (guess + SLACK, now)
                    target = guess + SLACK
                ahead = guess > target
                if DEBUG:
                    print(f"{now:.3f} g={guess:.3f} t={target:.3f} speed={speed:.2f} run={running}", flush=True)
                if ahead and running:
                    qmp.cmd("stop")
                    running = False
                elif not ahead and not running:
                    qmp.cmd("cont")
                    running = True
            time.sleep(min(TICK, max(MIN_TICK, SLICE / peak)) if running else TICK)
    except (EOFError, OSError, ValueError):
        return 0  # QEMU has ended


if __name__ == "__main__":
    sys.exit(main())
