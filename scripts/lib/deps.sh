#!/usr/bin/env bash
# Idempotent installation of everything Septum's scripts need.
# Sourced by run-qemu.sh, test.sh, build.sh and bench.sh.
set -euo pipefail

SEPTUM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SEPTUM_CACHE="${SEPTUM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/septum}"
QEMU_MIN_MAJOR=9

log_dep() { printf '[deps] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_update_once() {
    if [ "$apt_updated" = 0 ]; then
        as_root apt-get update -qq >&2
        apt_updated=1
    fi
}

# The Rust toolchain named by rust-toolchain.toml, with the bare-metal target
# and llvm-tools (for llvm-objcopy). RUSTUP_AUTO_INSTALL may be off, so ask.
ensure_rust() {
    if ! command -v rustup >/dev/null 2>&1; then
        log_dep "rustup is required (https://rustup.rs); install it and re-run"
        exit 1
    fi
    local tc
    tc="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$SEPTUM_ROOT/rust-toolchain.toml")"
    if ! rustup toolchain list | grep -q "^$tc"; then
        log_dep "installing Rust toolchain $tc"
        rustup toolchain install "$tc" --profile minimal >&2
    fi
    local have
    have="$(rustup +"$tc" target list --installed)"
    for t in aarch64-unknown-none aarch64-unknown-none-softfloat; do
        if ! grep -qx "$t" <<<"$have"; then
            log_dep "adding Rust target $t"
            rustup +"$tc" target add "$t" >&2
        fi
    done
    local comps
    comps="$(rustup +"$tc" component list --installed)"
    for c in llvm-tools clippy rustfmt; do
        if ! grep -q "^$c" <<<"$comps"; then
            log_dep "adding Rust component $c"
            rustup +"$tc" component add "$c" >&2
        fi
    done
}

llvm_objcopy() {
    local sysroot
    sysroot="$(rustc --print sysroot)"
    local host
    host="$(rustc -vV | sed -n 's/^host: //p')"
    echo "$sysroot/lib/rustlib/$host/bin/llvm-objcopy"
}

qemu_major() {
    qemu-system-aarch64 --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -n1
}

# QEMU >= 9 (raspi4b needs it). Debian bookworm ships 7.2: take it from
# bookworm-backports, which we add as an apt source of our own if missing.
ensure_qemu() {
    local major
    major="$(qemu_major || true)"
    if [ -n "$major" ] && [ "$major" -ge "$QEMU_MIN_MAJOR" ]; then
        return 0
    fi
    log_dep "installing qemu-system-arm >= $QEMU_MIN_MAJOR"
    local codename=""
    if [ -r /etc/os-release ]; then
        codename="$(. /etc/os-release; echo "${VERSION_CODENAME:-}")"
    fi
    if [ "$codename" = bookworm ]; then
        if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
            echo 'deb http://deb.debian.org/debian bookworm-backports main' |
                as_root tee /etc/apt/sources.list.d/septum-backports.list >/dev/null
            apt_updated=0
        fi
        apt_update_once
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            -t bookworm-backports qemu-system-arm >/dev/null
    else
        apt_update_once
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-arm >/dev/null
    fi
    major="$(qemu_major || true)"
    if [ -z "$major" ] || [ "$major" -lt "$QEMU_MIN_MAJOR" ]; then
        log_dep "could not install QEMU >= $QEMU_MIN_MAJOR (found '${major:-none}')"
        exit 1
    fi
}

ensure_host_tools() {
    local missing=()
    command -v timeout >/dev/null || missing+=(coreutils)
    command -v python3 >/dev/null || missing+=(python3)
    # The Linux guest: Debian arm64 packages fetched with our own apt state
    # (scripts/lib/linux.sh), verified against the Debian archive key.
    command -v dpkg-deb >/dev/null || missing+=(dpkg)
    command -v xz >/dev/null || missing+=(xz-utils)
    command -v gzip >/dev/null || missing+=(gzip)
    command -v flock >/dev/null || missing+=(util-linux)
    command -v cmp >/dev/null || missing+=(diffutils)
    # septum-config's device-tree test has dtc check every generated tree.
    command -v dtc >/dev/null || missing+=(device-tree-compiler)
    [ -r /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_update_once
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
}

# mkfs.vfat (dosfstools) and mcopy (mtools): scripts/mk-sdcard.sh --image
# builds a FAT32 file system in a file, without root or a loop device.
ensure_sdcard_tools() {
    local missing=()
    command -v mkfs.vfat >/dev/null || [ -x /usr/sbin/mkfs.vfat ] || [ -x /sbin/mkfs.vfat ] ||
        missing+=(dosfstools)
    command -v mcopy >/dev/null || missing+=(mtools)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_update_once
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
}

ensure_all() {
    ensure_rust
    ensure_host_tools
    ensure_qemu
}

# The nightly toolchain and cargo-fuzz, for scripts/fuzz.sh (libFuzzer's
# instrumentation needs nightly rustc flags; the rest of the tree stays on
# the pinned stable toolchain).
ensure_fuzz() {
    if ! command -v rustup >/dev/null 2>&1; then
        log_dep "rustup is required (https://rustup.rs); install it and re-run"
        exit 1
    fi
    if ! rustup toolchain list | grep -q '^nightly'; then
        log_dep "installing the nightly Rust toolchain (for cargo-fuzz)"
        rustup toolchain install nightly --profile minimal >&2
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        log_dep "installing cargo-fuzz"
        cargo install cargo-fuzz --locked >&2
    fi
}
