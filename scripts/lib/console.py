#!/usr/bin/env python3
"""Attaches the terminal to a QEMU serial port that is a Unix socket
(scripts/linux-console.sh). Raw mode on the terminal, so that every key,
Ctrl-C included, goes to the guest; Ctrl-] (0x1d) detaches.

A program of its own file, not a here-document: the terminal must stay on
standard input."""

import os
import select
import socket
import sys
import termios
import tty

DETACH = b"\x1d"


def main():
    if len(sys.argv) != 2:
        print("usage: console.py SOCKET", file=sys.stderr)
        return 2
    fd = sys.stdin.fileno()
    if not os.isatty(fd):
        print("linux-console.sh: standard input is not a terminal (run it in one)", file=sys.stderr)
        return 2
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sys.argv[1])
    except OSError as e:
        print(f"linux-console.sh: cannot connect to {sys.argv[1]}: {e.strerror}", file=sys.stderr)
        return 1
    old = termios.tcgetattr(fd)
    out = sys.stdout.fileno()
    os.write(out, b"connected to the Linux partition's console; Ctrl-] detaches\r\n")
    why = "detached"
    try:
        tty.setraw(fd)
        # A fresh prompt: the socket does not replay what came before.
        s.sendall(b"\n")
        while True:
            r, _, _ = select.select([s, fd], [], [])
            if s in r:
                data = s.recv(4096)
                if not data:
                    why = "the console closed (QEMU ended)"
                    break
                os.write(out, data)
            if fd in r:
                data = os.read(fd, 1024)
                if DETACH in data:
                    s.sendall(data[: data.index(DETACH)])
                    break
                s.sendall(data)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
        s.close()
    os.write(out, f"\r\n{why}\r\n".encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
