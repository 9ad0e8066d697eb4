# shellcheck shell=bash
# The Raspberry Pi 4 firmware for the SD card (scripts/mk-sdcard.sh):
# start4.elf and fixup4.dat from Debian's raspi-firmware package
# (non-free-firmware, Architecture: all), pinned with its SHA-256 in
# scripts/rpi-firmware.lock. (The board's device tree is not here: it comes
# with the generic kernel the Linux guest already pins, see linux.sh.)
# Sourced after scripts/lib/deps.sh and scripts/lib/linux.sh, whose private
# apt set-up and helpers it reuses with its own cache and sources list.
#
#   ensure_rpi_firmware -> prints ~/.cache/septum/rpi-firmware/<version>/
#                          (start4.elf fixup4.dat LICENCE.raspi-firmware.txt
#                          PINS SHA256SUMS)
#   rpi_update_lock     -> rewrites the lock (scripts/update-rpi-firmware-lock.sh)
#
# A complete cached folder whose PINS match the lock and whose files match
# its SHA256SUMS is used as it is, without apt or the network.

SEPTUM_RPI_LOCK="${SEPTUM_RPI_LOCK:-$SEPTUM_ROOT/scripts/rpi-firmware.lock}"
SEPTUM_RPI_CACHE="$SEPTUM_CACHE/rpi-firmware"
SEPTUM_RPI_FW_PKG=raspi-firmware

log_rpi() { printf '[rpi-firmware] %s\n' "$*" >&2; }
die_rpi() {
    log_rpi "error: $*"
    exit 1
}

rpi_need_tools() {
    local t
    for t in apt-get apt-cache dpkg-deb tar sha256sum flock cmp; do
        command -v "$t" >/dev/null 2>&1 ||
            die_rpi "'$t' is required (a Debian-based host with apt and dpkg)"
    done
}

# linux.sh's private arm64 apt options, pointed at our own cache and at a
# sources list that adds the non-free-firmware component.
rpi_apt_prepare() {
    local a="$SEPTUM_RPI_CACHE/apt" keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    SEPTUM_LINUX_CACHE="$SEPTUM_RPI_CACHE" linux_apt_prepare
    cat >"$a/etc/sources-rpi.list.tmp" <<EOF
deb [arch=arm64 signed-by=$keyring] $SEPTUM_DEBIAN_MIRROR $SEPTUM_LINUX_SUITE main non-free-firmware
deb [arch=arm64 signed-by=$keyring] $SEPTUM_DEBIAN_MIRROR $SEPTUM_LINUX_SUITE-updates main non-free-firmware
deb [arch=arm64 signed-by=$keyring] $SEPTUM_DEBIAN_SECURITY_MIRROR $SEPTUM_LINUX_SUITE-security main non-free-firmware
EOF
    mv "$a/etc/sources-rpi.list.tmp" "$a/etc/sources-rpi.list"
    # A later -o wins over linux.sh's own sources list.
    linux_apt_opts+=(-o Dir::Etc::SourceList="$a/etc/sources-rpi.list")
}

rpi_apt_update() {
    log_rpi "updating the private package lists ($SEPTUM_LINUX_SUITE main non-free-firmware, arm64)"
    apt-get -q "${linux_apt_opts[@]}" update >/dev/null ||
        die_rpi "apt-get update failed (network or mirror problem?)"
}

# Lock lines: "<role> <package> <version> <sha256>"; one role, firmware.
rpi_lock_line() {
    local lock="$1" role="$2" line
    [ -r "$lock" ] || die_rpi "missing $lock (run scripts/update-rpi-firmware-lock.sh)"
    line="$(awk -v r="$role" '$1 == r && NF == 4 { print $2, $3, $4 }' "$lock")"
    [ "$(printf '%s\n' "$line" | grep -c .)" = 1 ] ||
        die_rpi "$lock must have exactly one '$role <package> <version> <sha256>' line"
    printf '%s\n' "$line"
}

# The cached .deb of PKG=VER (apt-get download names it PKG_VER_ARCH.deb,
# ':' of an epoch as %3a; raspi-firmware is _all).
rpi_deb_file() {
    local f
    for f in "$SEPTUM_RPI_CACHE/debs/${1}_${2//:/%3a}_"*.deb; do
        [ -f "$f" ] && printf '%s\n' "$f" && return 0
    done
    return 1
}

# Makes sure the pinned .deb is cached with the pinned hash; a cached file
# with another hash is never used (nor silently replaced). Exits 2 when the
# version cannot be downloaded, 1 on any other error.
rpi_fetch_deb() {
    local pkg="$1" ver="$2" want="$3" deb have
    mkdir -p "$SEPTUM_RPI_CACHE/debs"
    if ! deb="$(rpi_deb_file "$pkg" "$ver")"; then
        if [ "${rpi_lists_fresh:-0}" = 0 ]; then
            rpi_apt_prepare
            rpi_apt_update
            rpi_lists_fresh=1
        fi
        log_rpi "downloading $pkg=$ver"
        if ! (cd "$SEPTUM_RPI_CACHE/debs" && apt-get -q "${linux_apt_opts[@]}" download "$pkg=$ver" >/dev/null); then
            log_rpi "error: cannot download $pkg=$ver: the mirror may have dropped this version;" \
                "run scripts/update-rpi-firmware-lock.sh to pin the current one"
            exit 2
        fi
        deb="$(rpi_deb_file "$pkg" "$ver")" || die_rpi "apt-get download did not produce ${pkg}_${ver}_*.deb"
    fi
    have="$(linux_sha256 "$deb")"
    if [ "$have" != "$want" ]; then
        die_rpi "SHA-256 mismatch for $deb: lock file says $want, file has $have." \
            "Refusing to continue; delete the file to fetch it again, or re-pin deliberately" \
            "with scripts/update-rpi-firmware-lock.sh"
    fi
}

# True when DIR is a complete folder made from exactly PINS and unchanged since.
rpi_dir_ok() {
    local dir="$1" pins="$2"
    [ -f "$dir/.complete" ] && [ -f "$dir/PINS" ] && [ -f "$dir/SHA256SUMS" ] || return 1
    [ "$(cat "$dir/PINS")" = "$pins" ] || return 1
    (cd "$dir" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1)
}

# First bytes of FILE, as hex.
rpi_magic() { head -c "$2" "$1" | od -An -tx1 | tr -d ' \n'; }

# Unpacks the two firmware files and the firmware licence from the verified
# .deb into DIR (made anew, then renamed into place).
rpi_build_dir() {
    local dir="$1" pins="$2" fwpkg="$3" fwver="$4"
    local tmp="$dir.tmp" x fwdeb
    rm -rf "$tmp"
    mkdir -p "$tmp/x"
    x="$tmp/x"
    fwdeb="$(rpi_deb_file "$fwpkg" "$fwver")"
    log_rpi "unpacking start4.elf, fixup4.dat from $fwpkg $fwver"
    dpkg-deb --fsys-tarfile "$fwdeb" | tar -xf - -C "$x" \
        ./usr/lib/raspi-firmware/start4.elf ./usr/lib/raspi-firmware/fixup4.dat \
        "./usr/share/doc/$fwpkg/copyright" ||
        die_rpi "$fwpkg $fwver lacks usr/lib/raspi-firmware/{start4.elf,fixup4.dat}"
    mv "$x/usr/lib/raspi-firmware/start4.elf" "$x/usr/lib/raspi-firmware/fixup4.dat" "$tmp/"
    mv "$x/usr/share/doc/$fwpkg/copyright" "$tmp/LICENCE.raspi-firmware.txt"
    rm -rf "$x"
    # A cheap sanity check: an ELF for the VideoCore.
    [ "$(rpi_magic "$tmp/start4.elf" 4)" = 7f454c46 ] || die_rpi "start4.elf is not an ELF file"
    printf '%s\n' "$pins" >"$tmp/PINS"
    (cd "$tmp" && sha256sum start4.elf fixup4.dat LICENCE.raspi-firmware.txt PINS >SHA256SUMS)
    touch "$tmp/.complete"
    rm -rf "$dir"
    mv "$tmp" "$dir"
}

ensure_rpi_firmware() (
    set -euo pipefail
    rpi_need_tools
    mkdir -p "$SEPTUM_RPI_CACHE"
    # One fetch at a time per cache (released when this subshell ends).
    exec 7>"$SEPTUM_RPI_CACHE/.lock"
    flock 7

    local lock="$SEPTUM_RPI_LOCK" line fwpkg fwver fwsha pins dir
    line="$(rpi_lock_line "$lock" firmware)"
    read -r fwpkg fwver fwsha <<<"$line"
    pins="firmware $fwpkg $fwver $fwsha"
    dir="$SEPTUM_RPI_CACHE/${fwver//:/%3a}"
    if rpi_dir_ok "$dir" "$pins"; then
        log_rpi "cached: $dir"
        printf '%s\n' "$dir"
        exit 0
    fi

    local rc=0
    (rpi_fetch_deb "$fwpkg" "$fwver" "$fwsha") || rc=$?
    # A hash mismatch or a local problem stops here; only a version that
    # cannot be downloaded any more leads to the fallback.
    [ "$rc" = 0 ] || [ "$rc" = 2 ] || exit "$rc"
    if [ "$rc" = 2 ]; then
        # Debian keeps only the current version in a suite. As linux.sh
        # does: take the current version, checked against the signed
        # index, for this run only, and say so.
        if [ "${SEPTUM_RPI_STRICT:-0}" = 1 ]; then
            die_rpi "the version pinned in $lock cannot be fetched (SEPTUM_RPI_STRICT=1)"
        fi
        log_rpi "WARNING: the version pinned in $lock is no longer on the mirror."
        log_rpi "WARNING: using the current one (checked against Debian's signed index);"
        log_rpi "WARNING: run scripts/update-rpi-firmware-lock.sh and commit the lock to pin them again."
        lock="$SEPTUM_RPI_CACHE/rpi-firmware.lock.fallback"
        SEPTUM_RPI_LOCK="$lock" SEPTUM_RPI_LOCKED=1 rpi_update_lock
        line="$(rpi_lock_line "$lock" firmware)"
        read -r fwpkg fwver fwsha <<<"$line"
        pins="firmware $fwpkg $fwver $fwsha"
        dir="$SEPTUM_RPI_CACHE/${fwver//:/%3a}"
        rpi_fetch_deb "$fwpkg" "$fwver" "$fwsha"
    fi
    rpi_dir_ok "$dir" "$pins" || rpi_build_dir "$dir" "$pins" "$fwpkg" "$fwver"
    log_rpi "Raspberry Pi 4 firmware: $dir"
    printf '%s\n' "$dir"
)

# Pins the current (or the given) version: refreshes the private lists,
# downloads the .deb, checks it against the signed index, writes the lock.
# Usage: rpi_update_lock [--firmware VERSION]
rpi_update_lock() (
    set -euo pipefail
    rpi_need_tools
    local fw_ver=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --firmware) fw_ver="${2:?--firmware needs a version}"; shift 2 ;;
            *) die_rpi "unknown argument '$1'" ;;
        esac
    done
    mkdir -p "$SEPTUM_RPI_CACHE"
    # ensure_rpi_firmware's fallback already holds the cache lock.
    if [ "${SEPTUM_RPI_LOCKED:-0}" != 1 ]; then
        exec 7>"$SEPTUM_RPI_CACHE/.lock"
        flock 7
    fi
    rpi_apt_prepare
    rpi_apt_update
    rpi_lists_fresh=1

    [ -n "$fw_ver" ] || fw_ver="$(linux_candidate "$SEPTUM_RPI_FW_PKG")"
    [ -n "$fw_ver" ] || die_rpi "no $SEPTUM_RPI_FW_PKG in the lists (non-free-firmware missing?)"
    local sha tmp="$SEPTUM_RPI_LOCK.tmp"
    sha="$(linux_apt_field "$SEPTUM_RPI_FW_PKG" "$fw_ver" SHA256)"
    [ -n "$sha" ] || die_rpi "$SEPTUM_RPI_FW_PKG=$fw_ver is not in the lists"
    rpi_fetch_deb "$SEPTUM_RPI_FW_PKG" "$fw_ver" "$sha"
    {
        echo "# Raspberry Pi 4 firmware for scripts/mk-sdcard.sh: a Debian package, pinned."
        echo "# Written by scripts/update-rpi-firmware-lock.sh from the signed $SEPTUM_LINUX_SUITE package"
        echo "# indices; scripts/lib/rpi-firmware.sh refuses a .deb whose SHA-256 differs."
        echo "# firmware: start4.elf, fixup4.dat (usr/lib/raspi-firmware/, non-free-firmware)."
        echo "# The board's device tree comes with the generic kernel pinned in"
        echo "# guests/linux/packages.lock (kernel-generic)."
        echo "# role package version sha256"
        echo "firmware $SEPTUM_RPI_FW_PKG $fw_ver $sha"
    } >"$tmp"
    log_rpi "pinned $SEPTUM_RPI_FW_PKG $fw_ver"
    mv "$tmp" "$SEPTUM_RPI_LOCK"
    log_rpi "wrote $SEPTUM_RPI_LOCK"
)
