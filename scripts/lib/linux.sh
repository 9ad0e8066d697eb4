# shellcheck shell=bash
# The connectivity partition's Linux guest: Debian's arm64 cloud kernel and
# busybox-static, at the versions pinned in guests/linux/packages.lock, and a
# reproducible initramfs. Sourced by scripts/build.sh after scripts/lib/deps.sh
# (which defines SEPTUM_ROOT and SEPTUM_CACHE). See docs/linux-guest.md.
#
#   ensure_linux_guest [cloud]  -> target/septum/linux/{Image,initramfs.cpio.gz,VERSION}
#   ensure_linux_guest generic  -> target/septum/linux-generic/... (Debian's generic
#                                  arm64 flavour: BCM2711 support, for the Raspberry Pi 4),
#                                  plus the Pi's bcm2711-rpi-4-b.dtb from the same package
#                                  and KERNEL-PACKAGE ("<package> <version>")
#   linux_update_lock    -> rewrites guests/linux/packages.lock (scripts/update-linux-lock.sh)
#
# The arm64 packages come through apt with a private configuration (own
# sources list, package lists and cache under $SEPTUM_CACHE/linux/apt), so
# the host's dpkg architectures and apt state are never touched. The network
# is used only when a pinned .deb is not in the cache yet; every .deb is
# checked against the SHA-256 in the lock file before it is used.

SEPTUM_LINUX_SRC="$SEPTUM_ROOT/guests/linux"
SEPTUM_LINUX_LOCK="${SEPTUM_LINUX_LOCK:-$SEPTUM_LINUX_SRC/packages.lock}"
SEPTUM_LINUX_CACHE="$SEPTUM_CACHE/linux"
SEPTUM_LINUX_OUT="$SEPTUM_ROOT/target/septum/linux"
# The lock pins bookworm versions; the mirrors may be overridden for a local one.
SEPTUM_LINUX_SUITE=bookworm
SEPTUM_DEBIAN_MIRROR="${SEPTUM_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SEPTUM_DEBIAN_SECURITY_MIRROR="${SEPTUM_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# The metapackages that name the current kernels (used by the lock update):
# the cloud flavour for QEMU virt (small, virtio), the generic one for the
# Raspberry Pi 4 (it carries the BCM2711 drivers: the mini-UART, ...).
SEPTUM_LINUX_KERNEL_META=linux-image-cloud-arm64
SEPTUM_LINUX_GENERIC_META=linux-image-arm64
# The board device tree the generic flavour also provides (the Pi firmware
# passes it to the hypervisor; scripts/mk-sdcard.sh puts it on the card):
# one pin, one package, for the kernel and its board's tree.
SEPTUM_LINUX_PI_DTB=bcm2711-rpi-4-b.dtb

log_linux() { printf '[linux] %s\n' "$*" >&2; }
die_linux() {
    log_linux "error: $*"
    exit 1
}

linux_need_tools() {
    local t
    for t in apt-get apt-cache dpkg-deb python3 sha256sum flock cmp; do
        command -v "$t" >/dev/null 2>&1 ||
            die_linux "'$t' is required (a Debian-based host with apt and dpkg)"
    done
}

# Options that point apt at our own state and make it resolve arm64 packages.
linux_apt_opts=()
linux_apt_prepare() {
    local a="$SEPTUM_LINUX_CACHE/apt"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -r "$keyring" ] || die_linux "$keyring is missing (apt-get install debian-archive-keyring)"
    mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$a/etc/sources.list.d" \
        "$a/etc/preferences.d" "$SEPTUM_LINUX_CACHE/debs"
    : >"$a/status"
    cat >"$a/etc/sources.list.tmp" <<EOF
deb [arch=arm64 signed-by=$keyring] $SEPTUM_DEBIAN_MIRROR $SEPTUM_LINUX_SUITE main
deb [arch=arm64 signed-by=$keyring] $SEPTUM_DEBIAN_MIRROR $SEPTUM_LINUX_SUITE-updates main
deb [arch=arm64 signed-by=$keyring] $SEPTUM_DEBIAN_SECURITY_MIRROR $SEPTUM_LINUX_SUITE-security main
EOF
    mv "$a/etc/sources.list.tmp" "$a/etc/sources.list"
    linux_apt_opts=(
        -o APT::Architecture=arm64
        -o APT::Architectures=arm64
        -o Dir::State::Lists="$a/lists"
        -o Dir::State::status="$a/status"
        -o Dir::Cache="$a/cache"
        -o Dir::Etc::SourceList="$a/etc/sources.list"
        -o Dir::Etc::SourceParts="$a/etc/sources.list.d"
        -o Dir::Etc::Preferences="$a/etc/preferences"
        -o Dir::Etc::PreferencesParts="$a/etc/preferences.d"
        -o Acquire::Languages=none
        # Only the Packages indices are needed, not AppStream or Contents.
        -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false
    )
    # As root, apt would drop to the _apt user, which cannot write to a
    # private cache inside root's home.
    if [ "$(id -u)" = 0 ]; then
        linux_apt_opts+=(-o APT::Sandbox::User=root)
    fi
}

linux_apt_update() {
    log_linux "updating the private arm64 package lists ($SEPTUM_LINUX_SUITE)"
    apt-get -q "${linux_apt_opts[@]}" update >/dev/null ||
        die_linux "apt-get update for arm64 failed (network or mirror problem?)"
}

# Lock file lines: "<role> <package> <version> <sha256>".
linux_lock_line() {
    local role="$1" line
    [ -r "$SEPTUM_LINUX_LOCK" ] || die_linux "missing $SEPTUM_LINUX_LOCK (run scripts/update-linux-lock.sh)"
    line="$(awk -v r="$role" '$1 == r && NF == 4 { print $2, $3, $4 }' "$SEPTUM_LINUX_LOCK")"
    [ "$(printf '%s\n' "$line" | grep -c .)" = 1 ] ||
        die_linux "$SEPTUM_LINUX_LOCK must have exactly one '$role <package> <version> <sha256>' line"
    printf '%s\n' "$line"
}

# The file name apt-get download gives a package (':' of an epoch -> %3a).
linux_deb_file() {
    printf '%s/debs/%s_%s_arm64.deb\n' "$SEPTUM_LINUX_CACHE" "$1" "${2//:/%3a}"
}

linux_sha256() { sha256sum "$1" | cut -d' ' -f1; }

# Makes sure the pinned .deb is in the cache with the pinned hash. A cached
# file with the wrong hash is never used (nor silently replaced).
linux_fetch_deb() {
    local pkg="$1" ver="$2" want="$3" deb have
    deb="$(linux_deb_file "$pkg" "$ver")"
    if [ ! -f "$deb" ]; then
        if [ "${linux_lists_fresh:-0}" = 0 ]; then
            linux_apt_prepare
            linux_apt_update
            linux_lists_fresh=1
        fi
        log_linux "downloading $pkg=$ver (arm64)"
        (cd "$SEPTUM_LINUX_CACHE/debs" && apt-get -q "${linux_apt_opts[@]}" download "$pkg=$ver" >/dev/null) ||
            die_linux "cannot download $pkg=$ver: the mirror may have dropped this version;" \
                "run scripts/update-linux-lock.sh to pin the current one"
        [ -f "$deb" ] || die_linux "apt-get download did not produce $deb"
    fi
    have="$(linux_sha256 "$deb")"
    if [ "$have" != "$want" ]; then
        die_linux "SHA-256 mismatch for $deb: lock file says $want, file has $have." \
            "Refusing to continue; delete the file to fetch it again, or refresh the lock deliberately" \
            "with scripts/update-linux-lock.sh"
    fi
}

# Unpacks a verified .deb once; prints the directory.
linux_unpack() {
    local pkg="$1" ver="$2" dir
    dir="$SEPTUM_LINUX_CACHE/unpacked/${pkg}_${ver//:/%3a}"
    if [ ! -f "$dir/.complete" ]; then
        rm -rf "$dir" "$dir.tmp"
        mkdir -p "$dir.tmp"
        dpkg-deb -x "$(linux_deb_file "$pkg" "$ver")" "$dir.tmp" || die_linux "cannot unpack $pkg"
        touch "$dir.tmp/.complete"
        mv "$dir.tmp" "$dir"
    fi
    printf '%s\n' "$dir"
}

# Replaces $2 by $1 only when the content changed, so unchanged outputs keep
# their timestamps.
linux_install_if_changed() {
    if cmp -s "$1" "$2"; then
        rm -f "$1"
    else
        mv "$1" "$2"
    fi
}

# Verifies the arm64 Image header: magic "ARM\x64" at offset 56.
linux_check_image() {
    python3 - "$1" <<'EOF' || die_linux "$1 is not an arm64 Image (no ARM\\x64 magic at offset 56)"
import sys
with open(sys.argv[1], "rb") as f:
    head = f.read(64)
sys.exit(0 if len(head) == 64 and head[56:60] == b"ARM\x64" else 1)
EOF
}

# Fails unless every applet in $2 (a file) is built into the busybox binary $1.
linux_check_applets() {
    python3 - "$1" "$2" <<'EOF' || die_linux "busybox lacks applets listed in guests/linux/applets.txt"
import sys
binary = open(sys.argv[1], "rb").read()
# busybox keeps its applet names as one sorted, NUL-separated table that
# starts with "[" and "[[" and ends at an empty name. Matching a name
# anywhere in the binary is not enough: "nice" is there as a word of other
# applets' messages although the applet is not built in.
start = binary.find(b"\0[\0[[\0")
if start < 0:
    print("no applet table in", sys.argv[1], file=sys.stderr)
    sys.exit(1)
end = binary.find(b"\0\0", start + 1)
if end < 0:
    print("unterminated applet table in", sys.argv[1], file=sys.stderr)
    sys.exit(1)
table = set(binary[start + 1:end].split(b"\0"))
missing = [a for a in (l.split("#")[0].strip() for l in open(sys.argv[2]))
           if a and a.encode() not in table]
if missing:
    print("missing applets:", " ".join(missing), file=sys.stderr)
sys.exit(1 if missing else 0)
EOF
}

# Lists the non-comment words of a file (applets.txt, modules.txt).
linux_words() { sed 's/#.*//' "$1" | tr -s ' \t' '\n' | grep -v '^$'; }

# Builds the initramfs's own binary, septum-telemetry (guests/telemetry: the
# reader of the RTOS's telemetry channel, static and freestanding, so it
# needs no C library), stripped, and prints its path.
linux_build_tool() (
    set -euo pipefail
    ensure_rust
    cd "$SEPTUM_ROOT"
    cargo build -q --release --target aarch64-unknown-none -p septum-telemetry >&2
    local out="$SEPTUM_ROOT/target/septum/guests/septum-telemetry"
    mkdir -p "${out%/*}"
    "$(llvm_objcopy)" --strip-all target/aarch64-unknown-none/release/septum-telemetry "$out.tmp"
    mv "$out.tmp" "$out"
    echo "$out"
)

ensure_linux_guest() (
    set -euo pipefail
    local krole=kernel
    case "${1:-cloud}" in
        cloud) ;;
        generic) krole=kernel-generic SEPTUM_LINUX_OUT="$SEPTUM_LINUX_OUT-generic" ;;
        *) die_linux "unknown kernel flavour '$1' (cloud or generic)" ;;
    esac
    linux_need_tools
    mkdir -p "$SEPTUM_LINUX_CACHE" "$SEPTUM_LINUX_OUT"
    # One build at a time per cache (the lock is released when this subshell ends).
    exec 8>"$SEPTUM_LINUX_CACHE/.lock"
    flock 8

    local line kpkg kver ksha bpkg bver bsha
    line="$(linux_lock_line "$krole")"
    read -r kpkg kver ksha <<<"$line"
    line="$(linux_lock_line busybox)"
    read -r bpkg bver bsha <<<"$line"
    if ! (linux_fetch_deb "$kpkg" "$kver" "$ksha" && linux_fetch_deb "$bpkg" "$bver" "$bsha"); then
        # Debian keeps only the current version of a package in its
        # suites; once the pinned one is superseded it cannot be fetched.
        # A checkout must still build: take the current versions, verified
        # against the signed index, for this build only, and say so.
        if [ "${SEPTUM_LINUX_STRICT:-0}" = 1 ]; then
            die_linux "the versions pinned in $SEPTUM_LINUX_LOCK cannot be fetched (SEPTUM_LINUX_STRICT=1)"
        fi
        log_linux "WARNING: the versions pinned in $SEPTUM_LINUX_LOCK are no longer on the mirror."
        log_linux "WARNING: building with the current ones (checked against Debian's signed index);"
        log_linux "WARNING: run scripts/update-linux-lock.sh and commit the lock to pin them again."
        SEPTUM_LINUX_LOCK="$SEPTUM_LINUX_CACHE/packages.lock.fallback"
        SEPTUM_LINUX_LOCKED=1 linux_update_lock
        line="$(linux_lock_line "$krole")"
        read -r kpkg kver ksha <<<"$line"
        line="$(linux_lock_line busybox)"
        read -r bpkg bver bsha <<<"$line"
        linux_fetch_deb "$kpkg" "$kver" "$ksha"
        linux_fetch_deb "$bpkg" "$bver" "$bsha"
    fi
    local kdir bdir
    kdir="$(linux_unpack "$kpkg" "$kver")"
    bdir="$(linux_unpack "$bpkg" "$bver")"

    # Kernel: the package's /boot/vmlinuz-<ver> is an uncompressed Image.
    local images uname
    images=("$kdir"/boot/vmlinuz-*)
    if [ "${#images[@]}" != 1 ] || [ ! -f "${images[0]}" ]; then
        die_linux "expected exactly one /boot/vmlinuz-* in $kpkg"
    fi
    uname="${images[0]##*/vmlinuz-}"
    linux_check_image "${images[0]}"
    local moddir="$kdir/lib/modules/$uname"
    [ -d "$moddir" ] || die_linux "$kpkg has no /lib/modules/$uname"

    local busybox="$bdir/bin/busybox"
    [ -x "$busybox" ] || die_linux "$bpkg has no /bin/busybox"
    linux_check_applets "$busybox" "$SEPTUM_LINUX_SRC/applets.txt"

    # Module load order, dependencies first, from the modules' own .modinfo.
    local work="$SEPTUM_LINUX_OUT/.work"
    rm -rf "$work"
    mkdir -p "$work/modules"
    local -a wanted
    mapfile -t wanted < <(linux_words "$SEPTUM_LINUX_SRC/modules.txt")
    python3 "$SEPTUM_LINUX_SRC/moddeps.py" "$moddir" "${wanted[@]}" >"$work/modules.order" ||
        die_linux "cannot work out the module load order"

    local tool
    tool="$(linux_build_tool)" || die_linux "cannot build septum-telemetry (guests/telemetry)"

    # The generated half of the initramfs manifest.
    local gen="$work/generated.list" rel plain n=0
    {
        echo "# generated by scripts/lib/linux.sh"
        echo "file /usr/bin/septum-telemetry $tool 0755"
        echo "file /bin/busybox $busybox 0755"
        linux_words "$SEPTUM_LINUX_SRC/applets.txt" | while read -r a; do
            [ "$a" = busybox ] || echo "slink /bin/$a busybox 0777"
        done
    } >"$gen"
    : >"$work/modules.list"
    while read -r rel; do
        # busybox insmod cannot read compressed modules: decompress here.
        plain="${rel%.xz}"
        plain="${plain%.gz}"
        n=$((n + 1))
        case "$rel" in
            *.xz) xz -dc "$moddir/$rel" >"$work/modules/$n.ko" ;;
            *.gz) gzip -dc "$moddir/$rel" >"$work/modules/$n.ko" ;;
            *) cp "$moddir/$rel" "$work/modules/$n.ko" ;;
        esac
        echo "file /lib/modules/$uname/$plain $work/modules/$n.ko 0644" >>"$gen"
        echo "$plain" >>"$work/modules.list"
    done <"$work/modules.order"
    {
        echo "kernel $uname"
        sed -n 's/^\([a-z]*\) \([^ ]*\) \([^ ]*\) .*/\1-package \2 \3/p' "$SEPTUM_LINUX_LOCK"
    } >"$work/build-info"
    {
        echo "file /usr/share/septum/modules.list $work/modules.list 0644"
        echo "file /usr/share/septum/build-info $work/build-info 0644"
    } >>"$gen"

    python3 "$SEPTUM_LINUX_SRC/mkcpio.py" "$SEPTUM_LINUX_SRC/initramfs.list" "$gen" \
        -o "$work/initramfs.cpio.gz" || die_linux "cannot build the initramfs"

    cp "${images[0]}" "$work/Image"
    echo "$uname" >"$work/VERSION"
    echo "$kpkg $kver" >"$work/KERNEL-PACKAGE"
    linux_install_if_changed "$work/Image" "$SEPTUM_LINUX_OUT/Image"
    linux_install_if_changed "$work/initramfs.cpio.gz" "$SEPTUM_LINUX_OUT/initramfs.cpio.gz"
    linux_install_if_changed "$work/VERSION" "$SEPTUM_LINUX_OUT/VERSION"
    linux_install_if_changed "$work/KERNEL-PACKAGE" "$SEPTUM_LINUX_OUT/KERNEL-PACKAGE"
    if [ "$krole" = kernel-generic ]; then
        local dtb="$kdir/usr/lib/linux-image-$uname/broadcom/$SEPTUM_LINUX_PI_DTB"
        [ -f "$dtb" ] || die_linux "$kpkg has no usr/lib/linux-image-$uname/broadcom/$SEPTUM_LINUX_PI_DTB"
        [ "$(head -c 4 "$dtb" | od -An -tx1 | tr -d ' \n')" = d00dfeed ] ||
            die_linux "$dtb is not a device tree blob"
        cp "$dtb" "$work/$SEPTUM_LINUX_PI_DTB"
        linux_install_if_changed "$work/$SEPTUM_LINUX_PI_DTB" "$SEPTUM_LINUX_OUT/$SEPTUM_LINUX_PI_DTB"
    fi
    rm -rf "$work"
    log_linux "Linux $uname: $SEPTUM_LINUX_OUT/{Image,initramfs.cpio.gz}"
)

# Field of the first stanza of `apt-cache show PKG=VER`.
linux_apt_field() {
    apt-cache "${linux_apt_opts[@]}" show "$1=$2" 2>/dev/null |
        awk -v f="$3:" '$1 == f { sub(/^[^:]*: */, ""); print; exit }'
}

linux_candidate() {
    apt-cache "${linux_apt_opts[@]}" policy "$1" 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }'
}

# Pins the current (or the given) versions: refreshes the private package
# lists, downloads the .debs, checks them against the signed index and writes
# the lock file. Usage: linux_update_lock [--kernel META_VERSION] [--busybox VERSION]
linux_update_lock() (
    set -euo pipefail
    linux_need_tools
    local meta_ver="" bb_ver=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --kernel) meta_ver="$2"; shift 2 ;;
            --busybox) bb_ver="$2"; shift 2 ;;
            *) die_linux "unknown argument '$1'" ;;
        esac
    done
    mkdir -p "$SEPTUM_LINUX_CACHE"
    # The caller may already hold the cache lock (ensure_linux_guest's
    # fallback); flock on a second descriptor would wait for ourselves.
    if [ "${SEPTUM_LINUX_LOCKED:-0}" != 1 ]; then
        exec 8>"$SEPTUM_LINUX_CACHE/.lock"
        flock 8
    fi
    linux_apt_prepare
    linux_apt_update
    linux_lists_fresh=1

    [ -n "$meta_ver" ] || meta_ver="$(linux_candidate "$SEPTUM_LINUX_KERNEL_META")"
    [ -n "$meta_ver" ] || die_linux "no $SEPTUM_LINUX_KERNEL_META in the arm64 lists"
    # The metapackage depends on exactly one versioned image package.
    local kpkg kver
    read -r kpkg kver < <(linux_apt_field "$SEPTUM_LINUX_KERNEL_META" "$meta_ver" Depends |
        tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ ]*\) *(= *\([^)]*\)).*/\1 \2/p' | head -n 1)
    [ -n "${kpkg:-}" ] || die_linux "cannot find the image package that $SEPTUM_LINUX_KERNEL_META=$meta_ver depends on"
    # The generic flavour at the same version (the Raspberry Pi 4's kernel).
    local gmeta gpkg gver
    gmeta="$(linux_candidate "$SEPTUM_LINUX_GENERIC_META")"
    read -r gpkg gver < <(linux_apt_field "$SEPTUM_LINUX_GENERIC_META" "$gmeta" Depends |
        tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ ]*\) *(= *\([^)]*\)).*/\1 \2/p' | head -n 1)
    [ -n "${gpkg:-}" ] || die_linux "cannot find the image package that $SEPTUM_LINUX_GENERIC_META=$gmeta depends on"
    [ -n "$bb_ver" ] || bb_ver="$(linux_candidate busybox-static)"
    [ -n "$bb_ver" ] || die_linux "no busybox-static in the arm64 lists"

    local tmp="$SEPTUM_LINUX_LOCK.tmp" role pkg ver sha
    {
        echo "# Debian arm64 packages of the Linux guest (connectivity partition), pinned."
        echo "# Written by scripts/update-linux-lock.sh from the signed $SEPTUM_LINUX_SUITE package"
        echo "# indices; scripts/lib/linux.sh refuses any .deb whose SHA-256 differs."
        echo "# kernel: dependency of $SEPTUM_LINUX_KERNEL_META $meta_ver"
        echo "# kernel-generic: dependency of $SEPTUM_LINUX_GENERIC_META $gmeta (Raspberry Pi 4)"
        echo "# role package version sha256"
    } >"$tmp"
    for role in kernel kernel-generic busybox; do
        case "$role" in
            kernel) pkg="$kpkg" ver="$kver" ;;
            kernel-generic) pkg="$gpkg" ver="$gver" ;;
            *) pkg=busybox-static ver="$bb_ver" ;;
        esac
        sha="$(linux_apt_field "$pkg" "$ver" SHA256)"
        [ -n "$sha" ] || die_linux "$pkg=$ver is not in the arm64 lists"
        linux_fetch_deb "$pkg" "$ver" "$sha"
        echo "$role $pkg $ver $sha" >>"$tmp"
        log_linux "pinned $pkg $ver"
    done
    mv "$tmp" "$SEPTUM_LINUX_LOCK"
    log_linux "wrote $SEPTUM_LINUX_LOCK"
)
