#!/usr/bin/env bash
# Boots Septum in QEMU.
#
#   scripts/run-qemu.sh [--config FILE] [--timeout SECS] [--realtime] [--http-port N]
#                       [--log FILE] [--linux-log FILE] [-- QEMU ARGS...]
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
#
# The second UART (the Linux partition's console) is a Unix socket: attach
# with scripts/linux-console.sh. The network device (virtio-net, QEMU user
# networking) forwards 127.0.0.1:<http-port> (default 8080) to port 80.
# In a headless run, --linux-log FILE writes the Linux console to FILE instead.
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"

config="$SEPTUM_ROOT/configs/qemu-virt.toml"
timeout_s=""
icount=1
logfile=""
http_port=8080
linux_log=""
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --config) config="$2"; shift 2 ;;
        --timeout) timeout_s="$2"; shift 2 ;;
        --realtime) icount=0; shift ;;
        --icount) icount=1; shift ;;
        --log) logfile="$2"; shift 2 ;;
        --http-port) http_port="$2"; shift 2 ;;
        --linux-log) linux_log="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
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
        # The network: a virtio-net device on the first virtio-mmio
        # transport (0x0a000000, SPI 16), given to Linux by the TOML.
        qemu+=(-netdev "user,id=net0,hostfwd=tcp:127.0.0.1:${http_port}-:80"
               -device virtio-net-device,netdev=net0,bus=virtio-mmio-bus.0)
        ;;
    rpi4)
        # Four Cortex-A72, 2 GiB, GIC-400; the first -serial is the PL011,
        # the second the mini-UART. No network: QEMU does not model the
        # Pi's Ethernet (docs/raspberry-pi-4.md).
        qemu+=(-M raspi4b)
        ;;
    *) echo "run-qemu.sh: board '$board' is not supported" >&2; exit 2 ;;
esac
run_dir="$SEPTUM_ROOT/target/septum/run"
mkdir -p "$run_dir"
sock="$run_dir/linux-console.sock"
rm -f "$sock"
qemu+=(-nographic -kernel "$image")
[ "$icount" = 1 ] && qemu+=(-icount shift=0,sleep=off)

if [ -z "$timeout_s" ]; then
    cat >&2 <<MSG
Septum on QEMU $board
  this terminal        hypervisor and RTOS console (quit QEMU with Ctrl-A X)
  Linux shell          scripts/linux-console.sh      (in another terminal)
MSG
    [ "$board" = qemu-virt ] && echo "  Linux status page    http://127.0.0.1:${http_port}/cgi-bin/status" >&2
    exec "${qemu[@]}" -serial mon:stdio -serial "unix:$sock,server=on,wait=off" "${extra[@]}"
fi

# Headless: console to stdout, bounded run; QEMU always ends with us.
qemu+=(-monitor none -serial stdio -display none)
if [ -n "$linux_log" ]; then
    qemu+=(-serial "file:$linux_log")
else
    qemu+=(-serial "unix:$sock,server=on,wait=off")
fi
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
