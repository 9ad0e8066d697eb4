# shellcheck shell=bash
# The Raspberry Pi 4 boot files for the SD card (scripts/mk-sdcard.sh):
# start4.elf and fixup4.dat from Debian's raspi-firmware package
# (non-free-firmware, Architecture: all) and bcm2711-rpi-4-b.dtb from
# Debian's generic arm64 kernel package (raspi-firmware ships no device
# trees, and the cloud kernel of the Linux guest has no broadcom/ ones).
# Both are pinned, with their SHA-256, in scripts/rpi-firmware.lock.
# Sourced after scripts/lib/deps.sh and scripts/lib/linux.sh, whose private
# apt set-up and helpers it reuses with its own cache and sources list.
#
#   ensure_rpi_firmware -> prints ~/.cache/septum/rpi-firmware/<version>/
#                          (start4.elf fixup4.dat bcm2711-rpi-4-b.dtb
#                          LICENCE.raspi-firmware.txt PINS SHA256SUMS)
#   rpi_update_lock     -> rewrites the lock (scripts/update-rpi-firmware-lock.sh)
#
# A complete cached folder whose PINS match the lock and whose files match
# its SHA256SUMS is used as it is, without apt or the network.

SEPTUM_RPI_LOCK="${SEPTUM_RPI_LOCK:-$SEPTUM_ROOT/scripts/rpi-firmware.lock}"
SEPTUM_RPI_CACHE="$SEPTUM_CACHE/rpi-firmware"
SEPTUM_RPI_FW_PKG=raspi-firmware
# The metapackage that names the current generic arm64 kernel (lock update).
SEPTUM_RPI_KERNEL_META=linux-image-arm64
SEPTUM_RPI_DTB=bcm2711-rpi-4-b.dtb

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

# Lock lines: "<role> <package> <version> <sha256>", roles firmware and dtb.
rpi_lock_line() {
    local lock="$1" role="$2" line
    [ -r "$lock" ] || die_rpi "missing $lock (run scripts/update-rpi-firmware-lock.sh)"
    line="$(awk -v r="$role" '$1 == r && NF == 4 { print $2, $3, $4 }' "$lock")"
    [ "$(printf '%s\n' "$line" | grep -c .)" = 1 ] ||
        die_rpi "$lock must have exactly one '$role <package> <version> <sha256>' line"
    printf '%s\n' "$line"
}

# The cached .deb of PKG=VER (apt-get download names it PKG_VER_ARCH.deb,
# ':' of an epoch as %3a; raspi-firmware is _all, the kernel _arm64).
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

# Unpacks the three boot files and the firmware licence from the verified
# .debs into DIR (made anew, then renamed into place).
rpi_build_dir() {
    local dir="$1" pins="$2" fwpkg="$3" fwver="$4" kpkg="$5" kver="$6"
    local tmp="$dir.tmp" x fwdeb kdeb
    rm -rf "$tmp"
    mkdir -p "$tmp/x"
    x="$tmp/x"
    fwdeb="$(rpi_deb_file "$fwpkg" "$fwver")"
    kdeb="$(rpi_deb_file "$kpkg" "$kver")"
    log_rpi "unpacking start4.elf, fixup4.dat from $fwpkg $fwver"
    dpkg-deb --fsys-tarfile "$fwdeb" | tar -xf - -C "$x" \
        ./usr/lib/raspi-firmware/start4.elf ./usr/lib/raspi-firmware/fixup4.dat \
        "./usr/share/doc/$fwpkg/copyright" ||
        die_rpi "$fwpkg $fwver lacks usr/lib/raspi-firmware/{start4.elf,fixup4.dat}"
    log_rpi "unpacking $SEPTUM_RPI_DTB from $kpkg $kver"
    dpkg-deb --fsys-tarfile "$kdeb" | tar -xf - -C "$x" --wildcards \
        "./usr/lib/linux-image-*/broadcom/$SEPTUM_RPI_DTB" ||
        die_rpi "$kpkg $kver has no usr/lib/linux-image-*/broadcom/$SEPTUM_RPI_DTB"
    local dtbs=("$x"/usr/lib/linux-image-*/broadcom/"$SEPTUM_RPI_DTB")
    if [ "${#dtbs[@]}" != 1 ] || [ ! -f "${dtbs[0]}" ]; then
        die_rpi "expected one $SEPTUM_RPI_DTB in $kpkg"
    fi
    mv "$x/usr/lib/raspi-firmware/start4.elf" "$x/usr/lib/raspi-firmware/fixup4.dat" "$tmp/"
    mv "${dtbs[0]}" "$tmp/$SEPTUM_RPI_DTB"
    mv "$x/usr/share/doc/$fwpkg/copyright" "$tmp/LICENCE.raspi-firmware.txt"
    rm -rf "$x"
    # Cheap sanity checks: an ELF for the VideoCore, a flattened device tree.
    [ "$(rpi_magic "$tmp/start4.elf" 4)" = 7f454c46 ] || die_rpi "start4.elf is not an ELF file"
    [ "$(rpi_magic "$tmp/$SEPTUM_RPI_DTB" 4)" = d00dfeed ] || die_rpi "$SEPTUM_RPI_DTB is not a device tree blob"
    printf '%s\n' "$pins" >"$tmp/PINS"
    (cd "$tmp" && sha256sum start4.elf fixup4.dat "$SEPTUM_RPI_DTB" LICENCE.raspi-firmware.txt PINS >SHA256SUMS)
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

    local lock="$SEPTUM_RPI_LOCK" line fwpkg fwver fwsha kpkg kver ksha pins dir
    line="$(rpi_lock_line "$lock" firmware)"
    read -r fwpkg fwver fwsha <<<"$line"
    line="$(rpi_lock_line "$lock" dtb)"
    read -r kpkg kver ksha <<<"$line"
    pins="$(printf 'firmware %s %s %s\ndtb %s %s %s' "$fwpkg" "$fwver" "$fwsha" "$kpkg" "$kver" "$ksha")"
    dir="$SEPTUM_RPI_CACHE/${fwver//:/%3a}_dtb-${kver//:/%3a}"
    if rpi_dir_ok "$dir" "$pins"; then
        log_rpi "cached: $dir"
        printf '%s\n' "$dir"
        exit 0
    fi

    local rc=0
    (rpi_fetch_deb "$fwpkg" "$fwver" "$fwsha" && rpi_fetch_deb "$kpkg" "$kver" "$ksha") || rc=$?
    # A hash mismatch or a local problem stops here; only a version that
    # cannot be downloaded any more leads to the fallback.
    [ "$rc" = 0 ] || [ "$rc" = 2 ] || exit "$rc"
    if [ "$rc" = 2 ]; then
        # Debian keeps only the current version in a suite (the kernel of
        # bookworm-security moves every few weeks). As linux.sh does: take
        # the current versions, checked against the signed index, for this
        # run only, and say so.
        if [ "${SEPTUM_RPI_STRICT:-0}" = 1 ]; then
            die_rpi "the versions pinned in $lock cannot be fetched (SEPTUM_RPI_STRICT=1)"
        fi
        log_rpi "WARNING: the versions pinned in $lock are no longer on the mirror."
        log_rpi "WARNING: using the current ones (checked against Debian's signed index);"
        log_rpi "WARNING: run scripts/update-rpi-firmware-lock.sh and commit the lock to pin them again."
        lock="$SEPTUM_RPI_CACHE/rpi-firmware.lock.fallback"
        SEPTUM_RPI_LOCK="$lock" SEPTUM_RPI_LOCKED=1 rpi_update_lock
        line="$(rpi_lock_line "$lock" firmware)"
        read -r fwpkg fwver fwsha <<<"$line"
        line="$(rpi_lock_line "$lock" dtb)"
        read -r kpkg kver ksha <<<"$line"
        pins="$(printf 'firmware %s %s %s\ndtb %s %s %s' "$fwpkg" "$fwver" "$fwsha" "$kpkg" "$kver" "$ksha")"
        dir="$SEPTUM_RPI_CACHE/${fwver//:/%3a}_dtb-${kver//:/%3a}"
        rpi_fetch_deb "$fwpkg" "$fwver" "$fwsha"
        rpi_fetch_deb "$kpkg" "$kver" "$ksha"
    fi
    rpi_dir_ok "$dir" "$pins" || rpi_build_dir "$dir" "$pins" "$fwpkg" "$fwver" "$kpkg" "$kver"
    log_rpi "Raspberry Pi 4 boot files: $dir"
    printf '%s\n' "$dir"
)

# Pins the current (or the given) versions: refreshes the private lists,
# downloads both .debs, checks them against the signed index, writes the
# lock. Usage: rpi_update_lock [--firmware VERSION] [--kernel META_VERSION]
rpi_update_lock() (
    set -euo pipefail
    rpi_need_tools
    local fw_ver="" meta_ver=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --firmware) fw_ver="${2:?--firmware needs a version}"; shift 2 ;;
            --kernel) meta_ver="${2:?--kernel needs a version}"; shift 2 ;;
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
    [ -n "$meta_ver" ] || meta_ver="$(linux_candidate "$SEPTUM_RPI_KERNEL_META")"
    [ -n "$meta_ver" ] || die_rpi "no $SEPTUM_RPI_KERNEL_META in the arm64 lists"
    # The metapackage depends on exactly one versioned image package.
    local kpkg kver
    read -r kpkg kver < <(linux_apt_field "$SEPTUM_RPI_KERNEL_META" "$meta_ver" Depends |
        tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ ]*\) *(= *\([^)]*\)).*/\1 \2/p' | head -n 1)
    [ -n "${kpkg:-}" ] || die_rpi "cannot find the image package that $SEPTUM_RPI_KERNEL_META=$meta_ver depends on"

    local tmp="$SEPTUM_RPI_LOCK.tmp" role pkg ver sha
    {
        echo "# Raspberry Pi 4 boot files for scripts/mk-sdcard.sh: Debian packages, pinned."
        echo "# Written by scripts/update-rpi-firmware-lock.sh from the signed $SEPTUM_LINUX_SUITE package"
        echo "# indices; scripts/lib/rpi-firmware.sh refuses any .deb whose SHA-256 differs."
        echo "# firmware: start4.elf, fixup4.dat (usr/lib/raspi-firmware/, non-free-firmware)"
        echo "# dtb: $SEPTUM_RPI_DTB (usr/lib/linux-image-*/broadcom/), dependency of $SEPTUM_RPI_KERNEL_META $meta_ver"
        echo "# role package version sha256"
    } >"$tmp"
    for role in firmware dtb; do
        if [ "$role" = firmware ]; then pkg="$SEPTUM_RPI_FW_PKG" ver="$fw_ver"; else pkg="$kpkg" ver="$kver"; fi
        sha="$(linux_apt_field "$pkg" "$ver" SHA256)"
        [ -n "$sha" ] || die_rpi "$pkg=$ver is not in the lists"
        rpi_fetch_deb "$pkg" "$ver" "$sha"
        echo "$role $pkg $ver $sha" >>"$tmp"
        log_rpi "pinned $pkg $ver"
    done
    mv "$tmp" "$SEPTUM_RPI_LOCK"
    log_rpi "wrote $SEPTUM_RPI_LOCK"
)
