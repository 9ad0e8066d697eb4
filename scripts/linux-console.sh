#!/usr/bin/env bash
# Attaches this terminal to the Linux partition's console (its UART) of a
# system started by scripts/run-qemu.sh. Detach with Ctrl-].
#
#   scripts/linux-console.sh [SOCKET]
#
# Without SOCKET: the console of the one run-qemu.sh that is running (each
# run has its own socket, under target/septum/run/<pid>/, and prints it).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -ge 1 ]; then
    case "$1" in -h|--help) sed -n '2,8p' "$0"; exit 0 ;; esac
    sock="$1"
else
    socks=()
    for s in "$root"/target/septum/run/*/linux-console.sock; do
        pid="$(basename "$(dirname "$s")")"
        [ -S "$s" ] && kill -0 "$pid" 2>/dev/null && socks+=("$s")
    done
    if [ "${#socks[@]}" = 0 ]; then
        echo "linux-console.sh: no running scripts/run-qemu.sh has a Linux console socket" >&2
        exit 1
    fi
    if [ "${#socks[@]}" -gt 1 ]; then
        echo "linux-console.sh: several runs are up; name one:" >&2
        printf '  scripts/linux-console.sh %s\n' "${socks[@]}" >&2
        exit 2
    fi
    sock="${socks[0]}"
fi
if [ ! -S "$sock" ]; then
    echo "linux-console.sh: no console socket at $sock (is scripts/run-qemu.sh running?)" >&2
    exit 1
fi
exec python3 "$root/scripts/lib/console.py" "$sock"
