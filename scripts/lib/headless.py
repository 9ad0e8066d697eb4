#!/usr/bin/env python3
"""A bounded, headless QEMU run for scripts/run-qemu.sh --timeout.

    headless.py SECONDS LOGFILE|- QEMU ARGS...

Copies QEMU's first serial port (its standard output) to standard output
(and LOGFILE), and ends QEMU, with its whole process group:
- after SECONDS of wall time: the normal end of a headless run, exit 0;
- at once when the system has stopped for good, with the reason, exit 3:
  the hypervisor's `BOOT HALTED: ...` line, or its safe-state alarm (kept
  until the alarm's last line, so the cause is printed);
- when QEMU exits on its own: its status (QEMU's own messages are on
  standard error, which is passed through).
"""

import ctypes
import os
import select
import signal
import subprocess
import sys
import time

HALTED = "BOOT HALTED:"
SAFE = "*** ALARM: SAFE STATE ENTERED ***"
SAFE_END = "service required"
CAUSE = "*** cause: "


def stop(p):
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=5)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def die_with_parent():
    """In the child: QEMU gets SIGKILL when this process ends, however it
    ends (a `timeout`, a killed test, SIGKILL): no QEMU outlives its run."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main():
    secs = float(sys.argv[1])
    log = open(sys.argv[2], "w") if sys.argv[2] != "-" else None
    cmd = sys.argv[3:]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         start_new_session=True, preexec_fn=die_with_parent)

    def ended(signum, _frame):
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, ended)
    deadline = time.monotonic() + secs
    reason = None
    end_by = None
    os.set_blocking(p.stdout.fileno(), False)
    buf = b""
    try:
        while True:
            now = time.monotonic()
            if now >= deadline or (end_by is not None and now >= end_by):
                break
            chunk = p.stdout.read()
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
                if log:
                    log.write(chunk.decode("utf-8", "replace"))
                    log.flush()
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace").replace("\r", "")
                    if HALTED in line and reason is None:
                        reason = line[line.index(HALTED):]
                        end_by = now
                    elif SAFE in line and reason is None:
                        reason = "SAFE STATE ENTERED"
                        end_by = now + 2.0
                    elif CAUSE in line and reason == "SAFE STATE ENTERED":
                        reason += ": " + line[line.index(CAUSE) + len(CAUSE):].rstrip(" *")
                    elif SAFE_END in line and reason and reason.startswith("SAFE"):
                        end_by = now
            elif p.poll() is not None:
                break
            else:
                # Wait for output rather than poll: a line reaches our
                # reader (a person, a test timing it) when QEMU writes it.
                select.select([p.stdout], [], [], 0.05)
    except KeyboardInterrupt:
        reason = reason or "interrupted"
    finally:
        stop(p)
        if log:
            log.close()
    if reason is not None:
        print(f"\nrun-qemu.sh: the system stopped for good: {reason}", file=sys.stderr)
        return 3
    if p.returncode not in (None, -signal.SIGTERM, -signal.SIGKILL) and time.monotonic() < deadline:
        print(f"\nrun-qemu.sh: QEMU exited with status {p.returncode} before the timeout",
              file=sys.stderr)
        return p.returncode if p.returncode > 0 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
