#!/usr/bin/env python3
"""Drives scripts/linux-console.sh in a real pseudo-terminal, as a person
would (qemu/tests/scripts.rs): waits for Linux's shell prompt, types a
command, reads its answer, detaches with Ctrl-], and checks the console
script put the terminal back and exited 0.

    console_pty.py SOCKET TIMEOUT_S

Exit status 0 when all of that happened; otherwise 1, with the transcript.
"""

import os
import pty
import select
import sys
import termios
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    sock, limit = sys.argv[1], float(sys.argv[2])
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(os.path.join(ROOT, "scripts", "linux-console.sh"),
                 ["linux-console.sh", sock])
    # The slave side's settings, as the console found them (cooked mode):
    # the same must hold after it detaches.
    cooked = termios.tcgetattr(fd)
    seen = b""
    deadline = time.monotonic() + limit

    def read_until(needle, poke=None):
        nonlocal seen
        last_poke = 0.0
        while needle not in seen:
            now = time.monotonic()
            if now > deadline:
                fail(f"timed out waiting for {needle!r}")
            if poke is not None and now - last_poke > 5:
                os.write(fd, poke)
                last_poke = now
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    fail(f"the console ended before {needle!r}")
                if not chunk:
                    fail(f"the console ended before {needle!r}")
                seen += chunk

    def fail(why):
        sys.stdout.write(f"console_pty: {why}\n--- transcript ---\n")
        sys.stdout.write(seen.decode("utf-8", "replace"))
        sys.stdout.write("\n---\n")
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        sys.exit(1)

    read_until(b"Ctrl-] detaches")
    # Linux may still be booting: press Enter now and then until its prompt.
    read_until(b"linux# ", poke=b"\r")
    mark = len(seen)
    os.write(fd, b"echo septum-sum=$((6*7))\r")
    read_until(b"septum-sum=42")
    if b"septum-sum=42" not in seen[mark:]:
        fail("the answer did not come after the command")
    os.write(fd, b"\x1d")
    read_until(b"detached")
    # The child exits on its own after Ctrl-].
    end = time.monotonic() + 10
    status = None
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        fail("linux-console.sh did not exit after Ctrl-]")
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        fail(f"linux-console.sh ended with status {status:#x}")
    try:
        after = termios.tcgetattr(fd)
    except termios.error:
        after = None
    if after is not None and after[3] != cooked[3]:
        fail("the terminal was not put back in its own mode")
    print("console_pty: typed a command into Linux's shell, read its answer, detached")
    return 0


if __name__ == "__main__":
    sys.exit(main())
