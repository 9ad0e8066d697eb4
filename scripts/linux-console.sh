#!/usr/bin/env bash
# Attaches this terminal to the Linux partition's console (its UART) of a
# system started by scripts/run-qemu.sh. Detach with Ctrl-].
#
#   scripts/linux-console.sh [SOCKET]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
sock="${1:-$root/target/septum/run/linux-console.sock}"
if [ ! -S "$sock" ]; then
    echo "linux-console.sh: no console socket at $sock (is scripts/run-qemu.sh running?)" >&2
    exit 1
fi
exec python3 - "$sock" <<'PY'
import os, select, socket, sys, termios, tty
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
fd = sys.stdin.fileno()
old = termios.tcgetattr(fd)
print("connected to the Linux partition's console; Ctrl-] detaches\r")
try:
    tty.setraw(fd)
    s.sendall(b"\n")
    while True:
        r, _, _ = select.select([s, fd], [], [])
        if s in r:
            data = s.recv(4096)
            if not data:
                break
            os.write(sys.stdout.fileno(), data)
        if fd in r:
            data = os.read(fd, 1024)
            if b"\x1d" in data:
                break
            s.sendall(data)
finally:
    termios.tcsetattr(fd, termios.TCSADRAIN, old)
    print("\ndetached")
PY
