#!/usr/bin/env bash
# Boots Septum in QEMU.
#
#   scripts/run-qemu.sh [--config FILE] [--image FILE] [--timeout SECS]
#                       [--paced | --deterministic | --realtime] [--http-port N]
#                       [--log FILE] [--linux-log FILE] [-- QEMU ARGS...]
#
# Without --timeout it runs interactively: the hypervisor/RTOS console is on
# this terminal (Ctrl-A X quits QEMU). With --timeout it runs headless for
# SECS seconds, prints the console to stdout (and --log FILE), then ends
# QEMU; it ends at once, with exit status 3 and the reason, when the system
# stops for good (BOOT HALTED, or the safe state).
#
# --image FILE boots FILE as it is (a prebuilt or deliberately tampered image,
# docs/measured-boot.md "Reproducing each refusal"): nothing is built;
# --config then only names the board (default configs/qemu-virt.toml).
#
# Timing (docs/rtos.md, "Timing modes in QEMU"). By default guest time
# follows executed instructions (-icount, sleep=off), so a busy host can
# neither cause nor hide a deadline miss:
#   --paced          interactive default: -icount shift=2,sleep=off (4 ns of
#                    guest time per instruction), and scripts/lib/pacer.py
#                    pauses the machine over QMP whenever guest time runs
#                    ahead of the wall clock: about one RTOS status line per
#                    wall-clock second, idle or busy.
#   --deterministic  headless default (tests, benchmarks): -icount
#                    shift=0,sleep=off, 1 ns per instruction, never paused:
#                    idle time passes many times faster than the wall clock.
#   --realtime       the host clock, no -icount: a busy host delays QEMU's
#                    threads, which the RTOS sees as deadline misses that
#                    real hardware would not have.
#
# The Linux partition's console (the second UART) is a Unix socket of this
# run's own, printed at start: attach with scripts/linux-console.sh. In a
# headless run, --linux-log FILE writes it to FILE instead. The network
# device (virtio-net, QEMU user networking) forwards 127.0.0.1:<http-port>
# to the guest's port 80: 8080, or a free port when 8080 is taken (an
# explicit --http-port that is taken is an error).
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"

config="$SEPTUM_ROOT/configs/qemu-virt.toml"
image=""
timeout_s=""
timing=""
logfile=""
http_port=""
linux_log=""
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --config) config="$2"; shift 2 ;;
        --image) image="$2"; shift 2 ;;
        --timeout) timeout_s="$2"; shift 2 ;;
        --paced) timing=paced; shift ;;
        --deterministic|--icount) timing=deterministic; shift ;;
        --realtime) timing=realtime; shift ;;
        --log) logfile="$2"; shift 2 ;;
        --http-port) http_port="$2"; shift 2 ;;
        --linux-log) linux_log="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
        *) echo "run-qemu.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
if [ -z "$timing" ]; then
    if [ -n "$timeout_s" ]; then timing=deterministic; else timing=paced; fi
fi
[ -f "$config" ] || { echo "run-qemu.sh: no configuration file $config" >&2; exit 2; }
board="$(sed -n 's/^board *= *"\([a-z0-9-]*\)".*/\1/p' "$config" | head -n1)"

ensure_all
if [ -n "$image" ]; then
    [ -s "$image" ] || { echo "run-qemu.sh: no image file $image" >&2; exit 2; }
else
    if [ ! -s "$SEPTUM_ROOT/target/septum/$(basename "$config" .toml)/septum.img" ]; then
        echo "[septum] first build for $(basename "$config"): the RTOS, the Linux guest (Debian's kernel and busybox, downloaded once) and the hypervisor; about 5 minutes on 2 cores, seconds from then on" >&2
    else
        echo "[septum] building for $(basename "$config") (seconds when nothing changed)" >&2
    fi
    image="$("$SEPTUM_ROOT/scripts/build.sh" --config "$config" --steps | tail -n1)"
fi

port_free() {
    python3 -c 'import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

qemu=(qemu-system-aarch64 -nodefaults)
case "$board" in
    qemu-virt)
        if [ -z "$http_port" ]; then
            http_port=8080
            if ! port_free "$http_port"; then
                http_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
                echo "[septum] port 8080 is taken (another run?): the status page is on port $http_port" >&2
            fi
        elif ! port_free "$http_port"; then
            echo "run-qemu.sh: port $http_port on 127.0.0.1 is taken; choose another --http-port, or leave it out to get a free one" >&2
            exit 2
        fi
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
case "$timing" in
    paced) qemu+=(-icount shift=2,sleep=off) ;;
    deterministic) qemu+=(-icount shift=0,sleep=off) ;;
    realtime) ;;
esac

# This run's own directory (its console socket); directories of runs that
# have ended are removed.
runs="$SEPTUM_ROOT/target/septum/run"
mkdir -p "$runs"
for d in "$runs"/*/; do
    [ -d "$d" ] || continue
    pid="$(basename "$d")"
    kill -0 "$pid" 2>/dev/null || rm -rf "$d"
done
run_dir="$runs/$$"
mkdir -p "$run_dir"
end_run() {
    local pids
    pids="$(jobs -p)"
    [ -z "$pids" ] || kill $pids 2>/dev/null || true
    [ -n "${SEPTUM_KEEP_RUN:-}" ] || rm -rf "$run_dir"
}
trap end_run EXIT
sock="$run_dir/linux-console.sock"
qemu+=(-display none -kernel "$image")
# The first UART: this terminal (or stdout), and a log of it that the
# pacer reads the RTOS's guest time from. signal=off: Ctrl-C goes to the
# guest; Ctrl-A X quits.
qemu+=(-chardev "stdio,id=con,mux=on,signal=off,logfile=$run_dir/console.log" -serial chardev:con)
pacer=()
if [ "$timing" = paced ]; then
    qemu+=(-qmp "unix:$run_dir/qmp.sock,server=on,wait=off")
    # QEMU below the pacer's priority: on a busy host the pacer's 5 ms
    # decisions must not wait for QEMU's own host thread (a pacer that does
    # not run cannot hold the guest back). Raising niceness needs no
    # privilege.
    qemu=(nice -n 10 "${qemu[@]}")
    pacer=(python3 "$SEPTUM_ROOT/scripts/lib/pacer.py" "$run_dir/qmp.sock" "$run_dir/console.log")
fi
start_pacer() {
    if [ "${#pacer[@]}" -gt 0 ]; then
        "${pacer[@]}" </dev/null >"$run_dir/pacer.log" 2>&1 &
    fi
}

if [ -z "$timeout_s" ]; then
    cat >&2 <<MSG
Septum on QEMU $board ($timing timing: docs/rtos.md)
  this terminal        hypervisor and RTOS console (quit QEMU with Ctrl-A X)
  Linux shell          scripts/linux-console.sh $sock
MSG
    [ "$board" = qemu-virt ] && echo "  Linux status page    http://127.0.0.1:${http_port}/cgi-bin/status" >&2
    start_pacer
    rc=0
    "${qemu[@]}" -mon chardev=con -serial "unix:$sock,server=on,wait=off" "${extra[@]}" || rc=$?
    exit "$rc"
fi

# Headless: console to stdout, bounded run; QEMU always ends with us.
echo "[septum] headless run of $image for ${timeout_s} s ($timing timing); Linux console: ${linux_log:-$sock}" >&2
qemu+=(-monitor none)
if [ -n "$linux_log" ]; then
    qemu+=(-serial "file:$linux_log")
else
    qemu+=(-serial "unix:$sock,server=on,wait=off")
fi
[ "$board" = qemu-virt ] && echo "[septum] Linux status page: http://127.0.0.1:${http_port}/cgi-bin/status" >&2
start_pacer
set +e
python3 "$SEPTUM_ROOT/scripts/lib/headless.py" "$timeout_s" "${logfile:--}" "${qemu[@]}" "${extra[@]}"
rc=$?
set -e
exit "$rc"
