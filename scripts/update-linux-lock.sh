#!/usr/bin/env bash
# Deliberately re-pins the Linux guest's Debian arm64 packages: the current
# linux-image-cloud-arm64 kernel and busybox-static of bookworm (with its
# -updates and -security suites), or the versions given.
#
#   scripts/update-linux-lock.sh [--kernel META_VERSION] [--busybox VERSION]
#
# META_VERSION is a version of the linux-image-cloud-arm64 metapackage; the
# lock records the image package it depends on. Writes guests/linux/packages.lock
# (package, version, SHA-256 from the signed index) and fills the download
# cache. Review and commit the lock file change; then scripts/build.sh
# rebuilds target/septum/linux/.
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"
. "$(dirname "$0")/lib/linux.sh"

case "${1:-}" in
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
esac
linux_update_lock "$@"
git -C "$SEPTUM_ROOT" --no-pager diff --stat -- guests/linux/packages.lock 2>/dev/null || true
