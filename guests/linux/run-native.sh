#!/usr/bin/env bash
# Boots the Linux guest directly under QEMU (no hypervisor), to check the
# kernel and initramfs on their own. The guest's port 80 is forwarded to
# 127.0.0.1:$PORT (default 18080): curl http://127.0.0.1:18080/cgi-bin/status
#
#   guests/linux/run-native.sh [--smp N] [--no-net] [--timeout SECONDS] [-- EXTRA_KERNEL_ARGS...]
#
# Quit QEMU with Ctrl-A X. The NIC sits on virtio-mmio-bus.0, the transport
# at 0x0a000000 with SPI 16 (INTID 48), see docs/linux-guest.md.
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib/deps.sh"
. "$SEPTUM_ROOT/scripts/lib/linux.sh"

smp=3
net=1
secs=3600
port="${PORT:-18080}"
while [ $# -gt 0 ]; do
    case "$1" in
        --smp) smp="$2"; shift 2 ;;
        --no-net) net=0; shift ;;
        --timeout) secs="$2"; shift 2 ;;
        --) shift; break ;;
        -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "run-native.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

ensure_host_tools
ensure_qemu
ensure_linux_guest
netargs=(-nic none)
if [ "$net" = 1 ]; then
    # shellcheck disable=SC2054 # the commas belong to QEMU option values
    netargs=(-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:80"
        -device virtio-net-device,netdev=n0,bus=virtio-mmio-bus.0)
fi
# -nodefaults: only the devices named here (no default NIC and its ROM).
exec timeout "$secs" qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a72 -smp "$smp" -m 1G \
    -nodefaults -nographic -serial mon:stdio -kernel "$SEPTUM_LINUX_OUT/Image" -initrd "$SEPTUM_LINUX_OUT/initramfs.cpio.gz" \
    -append "console=ttyAMA0 panic=-1 $*" "${netargs[@]}"
