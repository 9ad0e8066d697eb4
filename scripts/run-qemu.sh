#!/usr/bin/env bash
# Boots Septum in QEMU.
#
#   scripts/run-qemu.sh [--config FILE] [--timeout SECS] [--realtime] [--log FILE] [-- QEMU ARGS...]
#
# Without --timeout it runs interactively: the hypervisor/RTOS console is on
# this terminal (Ctrl-A X quits QEMU). With --timeout it runs headless for
# SECS seconds, prints the console to stdout (and --log FILE), then ends QEMU.
#
# By default QEMU runs with -icount shift=0,sleep=off: guest time advances one
# counter tick per instruction, so timing (deadlines, jitter) does not depend
# on how busy the host is, and idle time passes faster than wall-clock time.
# --realtime runs on the host clock instead; on a busy host, late wake-ups of
# QEMU's threads then show up as RTOS deadline misses that real hardware
# would not have (see docs/rtos.md).
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"

config="$SEPTUM_ROOT/configs/qemu-virt.toml"
timeout_s=""
icount=1
logfile=""
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --config) config="$2"; shift 2 ;;
        --timeout) timeout_s="$2"; shift 2 ;;
        --realtime) icount=0; shift ;;
        --icount) icount=1; shift ;;
        --log) logfile="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "run-qemu.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

ensure_all
image="$("$SEPTUM_ROOT/scripts/build.sh" --config "$config" --quiet | tail -n1)"
board="$(sed -n 's/^board *= *"\([a-z0-9-]*\)".*/\1/p' "$config" | head -n1)"

qemu=(qemu-system-aarch64)
case "$board" in
    qemu-virt)
        qemu+=(-M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -smp 4 -m 2G)
        ;;
    *) echo "run-qemu.sh: board '$board' is not supported yet" >&2; exit 2 ;;
esac
qemu+=(-nographic -kernel "$image")
[ "$icount" = 1 ] && qemu+=(-icount shift=0,sleep=off)

if [ -z "$timeout_s" ]; then
    echo "Septum on QEMU $board: console below; quit with Ctrl-A X." >&2
    # Second serial port (the Linux partition's UART) on a local socket.
    exec "${qemu[@]}" -serial mon:stdio -serial null "${extra[@]}"
fi

# Headless: console to stdout, bounded run; QEMU always ends with us.
qemu+=(-monitor none -serial stdio -serial null -display none)
set +e
if [ -n "$logfile" ]; then
    timeout --foreground -k 5 "$timeout_s" "${qemu[@]}" "${extra[@]}" </dev/null | tee "$logfile"
else
    timeout --foreground -k 5 "$timeout_s" "${qemu[@]}" "${extra[@]}" </dev/null
fi
rc=${PIPESTATUS[0]}
set -e
# 124 = our timeout ended the run, which is the normal end of a headless run.
if [ "$rc" = 124 ] || [ "$rc" = 0 ]; then exit 0; fi
exit "$rc"
