#!/usr/bin/env bash
# Deliberately re-pins the Raspberry Pi 4 firmware: the current
# raspi-firmware (start4.elf, fixup4.dat; bookworm non-free-firmware), or
# the version given.
#
#   scripts/update-rpi-firmware-lock.sh [--firmware VERSION]
#
# Writes scripts/rpi-firmware.lock (package, version, SHA-256 from the
# signed index) and fills the download cache. Review and commit the lock;
# scripts/mk-sdcard.sh then uses it. The board's device tree comes with the
# generic kernel: re-pin it with scripts/update-linux-lock.sh.
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"
. "$(dirname "$0")/lib/linux.sh"
. "$(dirname "$0")/lib/rpi-firmware.sh"

case "${1:-}" in
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
esac
ensure_host_tools
rpi_update_lock "$@"
git -C "$SEPTUM_ROOT" --no-pager diff --stat -- scripts/rpi-firmware.lock 2>/dev/null || true
