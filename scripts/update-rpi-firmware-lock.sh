#!/usr/bin/env bash
# Deliberately re-pins the Raspberry Pi 4 boot files: the current
# raspi-firmware (start4.elf, fixup4.dat; bookworm non-free-firmware) and
# the generic arm64 kernel package that carries bcm2711-rpi-4-b.dtb
# (bookworm with -updates and -security), or the versions given.
#
#   scripts/update-rpi-firmware-lock.sh [--firmware VERSION] [--kernel META_VERSION]
#
# META_VERSION is a version of the linux-image-arm64 metapackage; the lock
# records the image package it depends on. Writes scripts/rpi-firmware.lock
# (package, version, SHA-256 from the signed index) and fills the download
# cache. Review and commit the lock; scripts/mk-sdcard.sh then uses it.
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"
. "$(dirname "$0")/lib/linux.sh"
. "$(dirname "$0")/lib/rpi-firmware.sh"

case "${1:-}" in
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
esac
ensure_host_tools
rpi_update_lock "$@"
git -C "$SEPTUM_ROOT" --no-pager diff --stat -- scripts/rpi-firmware.lock 2>/dev/null || true
