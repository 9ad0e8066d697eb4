#!/usr/bin/env bash
# Writes the files of a Raspberry Pi 4 boot partition for Septum.
#
#   scripts/mk-sdcard.sh [--config FILE] [--out DIR] [--image FILE]
#
# Builds the hypervisor image for FILE (default configs/rpi4.toml, which must
# say board = "rpi4") with scripts/build.sh, fetches the Pi 4 firmware (the
# Debian package pinned in scripts/rpi-firmware.lock, cached in
# ~/.cache/septum/rpi-firmware/), takes the board's device tree from the
# generic kernel package the Linux guest pins (guests/linux/packages.lock,
# kernel-generic) and writes DIR (default target/septum/sdcard/):
# config.txt, septum.img, start4.elf, fixup4.dat, bcm2711-rpi-4-b.dtb,
# LICENCE.raspi-firmware.txt and README.txt. Copy them to the root of the
# card's FAT32 partition (DIR may also be that partition, mounted). Files
# whose content did not change are left untouched; other files in DIR are
# kept. With --image, it also writes FILE: a whole SD card image (an MBR with
# one FAT32 partition holding the same files) to write with dd; no root is
# needed to make it. See docs/raspberry-pi-4.md.
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"
. "$(dirname "$0")/lib/linux.sh"
. "$(dirname "$0")/lib/rpi-firmware.sh"

log_sd() { printf '[sdcard] %s\n' "$*" >&2; }
die_sd() {
    log_sd "error: $*"
    exit 1
}

config="$SEPTUM_ROOT/configs/rpi4.toml"
out="$SEPTUM_ROOT/target/septum/sdcard"
image=""
while [ $# -gt 0 ]; do
    case "$1" in
        --config | --out | --image)
            [ $# -ge 2 ] || { echo "mk-sdcard.sh: $1 needs an argument" >&2; exit 2; }
            case "$1" in
                --config) config="$2" ;;
                --out) out="$2" ;;
                *) image="$2" ;;
            esac
            shift 2
            ;;
        -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "mk-sdcard.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if [ ! -f "$config" ]; then
    die_sd "configuration '$config' not found. The Raspberry Pi 4 one is configs/rpi4.toml;" \
        "pass another with --config FILE."
fi
config="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"

ensure_host_tools
[ -z "$image" ] || ensure_sdcard_tools

# What config.txt depends on, read from the TOML: board, load address and
# the hypervisor console's UART.
board="" load_addr="" console_kind=""
platform="$(python3 - "$config" <<'EOF'
import sys
try:
    import tomllib
except ImportError:
    sys.exit("python3 >= 3.11 (tomllib) is needed to read the configuration")
try:
    with open(sys.argv[1], "rb") as f:
        p = tomllib.load(f).get("platform", {})
except (OSError, tomllib.TOMLDecodeError) as e:
    sys.exit(f"{sys.argv[1]}: {e}")
la = p.get("load-addr")
print(p.get("board", ""), hex(la) if isinstance(la, int) else "", p.get("console", {}).get("kind", ""))
EOF
)" || die_sd "cannot read [platform] from $config (see above)"
read -r board load_addr console_kind <<<"$platform"
[ "$board" = rpi4 ] ||
    die_sd "$config is for board '${board:-?}'; the SD card needs a Raspberry Pi 4 configuration (board = \"rpi4\")"
[ -n "$load_addr" ] || die_sd "$config has no [platform] load-addr"
if [ $((load_addr % 0x200000)) != 0 ]; then
    log_sd "warning: load-addr $load_addr is not 2 MiB aligned; the arm64 boot protocol (which the"
    log_sd "warning: firmware follows for an image with an Image header) expects a 2 MiB aligned base"
fi
# GPIO14/15 (header pins 8/10) go to the UART that carries the hypervisor
# console. The firmware's own choice follows the device tree's serial
# aliases, and Septum applies no pinctrl, so config.txt says it explicitly.
case "$console_kind" in
    pl011)
        uart_lines="# GPIO14/15 to function ALT0: the PL011 (UART0) carries the hypervisor console.
# Debian's mainline device tree wires the PL011 to Bluetooth on GPIO32/33
# and Debian ships no disable-bt overlay: make those pins plain inputs, so
# that the PL011 receives only from pin 10 whatever the firmware muxed.
gpio=14,15=a0
gpio=32,33=ip"
        console_desc="PL011 (UART0)"
        ;;
    mini-uart)
        uart_lines="# GPIO14/15 to function ALT5: the mini-UART (UART1) carries the hypervisor console.
gpio=14,15=a5"
        console_desc="mini-UART (UART1)"
        ;;
    *) die_sd "$config: console kind '${console_kind:-?}' is neither \"pl011\" nor \"mini-uart\"" ;;
esac

# The hypervisor image. build.sh prints the image path last; pass the rest on.
log_sd "building the image: scripts/build.sh --config $config"
if ! build_out="$("$SEPTUM_ROOT/scripts/build.sh" --config "$config")"; then
    die_sd "scripts/build.sh --config $config failed (its messages are above); no SD card files written"
fi
img="$(printf '%s\n' "$build_out" | tail -n 1)"
printf '%s\n' "$build_out" | sed '$d' >&2
[ -f "$img" ] || die_sd "scripts/build.sh did not print an image path (last line: '$img')"

fw="$(ensure_rpi_firmware)"
# The Pi's device tree: from the same generic kernel package as the Linux
# guest's kernel (one pin for both). The package is cached; this re-runs
# only the unpack checks and the initramfs build (seconds).
ensure_linux_guest generic
kout="$SEPTUM_LINUX_OUT-generic"
if [ ! -f "$kout/$SEPTUM_LINUX_PI_DTB" ] || [ ! -f "$kout/KERNEL-PACKAGE" ]; then
    die_sd "ensure_linux_guest generic did not write $kout/$SEPTUM_LINUX_PI_DTB"
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$img" "$stage/septum.img"
chmod 0644 "$stage/septum.img"
cp "$fw/start4.elf" "$fw/fixup4.dat" "$fw/LICENCE.raspi-firmware.txt" "$kout/$SEPTUM_LINUX_PI_DTB" "$stage/"
rel_config="${config#"$SEPTUM_ROOT"/}"
fw_pin="$(awk '$1 == "firmware" { print $2 " " $3 }' "$fw/PINS")"
dtb_pin="$(cat "$kout/KERNEL-PACKAGE")"

cat >"$stage/config.txt" <<EOF
# Raspberry Pi 4 firmware settings for Septum, written by scripts/mk-sdcard.sh
# from $rel_config; regenerate rather than edit. start4.elf reads this file
# at power-on (docs/raspberry-pi-4.md).

# Start the Cortex-A72 cores in AArch64 state: Septum is a 64-bit image.
arm_64bit=1
# Load septum.img instead of the default kernel8.img.
kernel=septum.img
# ... at the address it is linked for (load-addr in the TOML). The firmware's
# own stub then enters it at EL2 with x0 = the device tree's address, and
# parks cores 1-3 in the spin table (release addresses 0xe0, 0xe8, 0xf0).
kernel_address=$load_addr
# The device tree passed in x0: mainline Linux's (from Debian's kernel), not
# the Raspberry Pi fork's; upstream_kernel=1 tells the firmware so, as
# Debian's own Pi boot files do.
device_tree=$SEPTUM_LINUX_PI_DTB
upstream_kernel=1
# Where the firmware puts that tree: RAM that no part of the hypervisor's
# image, heap or stacks uses (inside configs/rpi4.toml's Linux region, which
# is only loaded after the boot-time device-tree check has read the tree).
device_tree_address=0x3a000000
# Deliver interrupts through the GIC-400 (GICv2), which Septum drives and
# virtualises, not the legacy ARM-local controller. (The Pi 4 default.)
enable_gic=1
# Enable the serial console on GPIO14 (TXD, pin 8) and GPIO15 (RXD, pin 10);
# it also asks the firmware to hold the VPU core clock for the mini-UART.
enable_uart=1
# The firmware sets up the console UART at this rate (115200 8N1).
init_uart_baud=115200
$uart_lines
# The mini-UART's baud rate is divided down from the VPU core clock, which
# the firmware otherwise scales between core_freq_min (200 MHz by default on
# the Pi 4) and core_freq (500). Minimum = maximum = 500 MHz keeps any
# divisor programmed for 115200 baud right: 500 MHz / (8 * 542) = 115313.
# (The PL011 runs from its own 48 MHz clock and does not care.)
core_freq=500
core_freq_min=500
# The boot EEPROM's second stage and start4.elf print what they load (file
# names, sizes, memory split) on the UART: the first thing to check when
# the board shows nothing else.
uart_2ndstage=1
EOF

cat >"$stage/README.txt" <<EOF
Septum for the Raspberry Pi 4 Model B: files for the SD card's boot partition
(written by scripts/mk-sdcard.sh from $rel_config; docs/raspberry-pi-4.md).

1. Make one FAT32 partition (MBR type 0x0c) on the card, e.g. parted + mkfs.vfat -F 32.
2. Copy every file of this folder to the root of that partition; unmount it.
3. Wire a 3.3 V USB-serial cable: its RX to pin 8 (GPIO14), its TX to pin 10 (GPIO15), GND to pin 6.
4. Open the serial port at 115200 8N1, e.g. picocom -b 115200 /dev/ttyUSB0.
5. Insert the card and power the Pi: firmware, then hypervisor messages appear.

Hypervisor console: $console_desc on GPIO14/15.
septum.img: SHA-256 $(linux_sha256 "$stage/septum.img")
start4.elf, fixup4.dat: Debian package $fw_pin (non-free-firmware).
  Broadcom's licence, in LICENCE.raspi-firmware.txt, allows unmodified
  redistribution for use with Raspberry Pi devices only.
$SEPTUM_LINUX_PI_DTB: from Debian package $dtb_pin (Linux, GPL-2.0).
EOF

mkdir -p "$out"
for f in config.txt septum.img start4.elf fixup4.dat "$SEPTUM_LINUX_PI_DTB" LICENCE.raspi-firmware.txt README.txt; do
    if cmp -s "$stage/$f" "$out/$f"; then
        continue
    fi
    cp "$stage/$f" "$out/$f.tmp"
    mv "$out/$f.tmp" "$out/$f"
done
log_sd "console $console_desc; firmware $fw_pin; device tree from $dtb_pin"
log_sd "boot partition files: $out (copy them to the card's FAT32 partition; see README.txt)"

# The whole-card image: partition 1 (FAT32 with LBA, type 0x0c, as the Pi's
# boot ROM wants) from 4 MiB, built as a file of its own with mkfs.vfat and
# filled with mcopy, then put behind an MBR. --invariant keeps mkfs's part
# free of random or time-based values (volume id 1234-ABCD).
if [ -n "$image" ]; then
    part_start_mib=4
    part_mib=128
    used_kib="$(du -sk "$out" | cut -f1)"
    [ "$used_kib" -lt $((part_mib * 1024 * 9 / 10)) ] ||
        die_sd "the boot files ($used_kib KiB) do not fit the ${part_mib} MiB partition"
    mkfs_vfat="$(command -v mkfs.vfat || echo /usr/sbin/mkfs.vfat)"
    fat="$stage/fat.img"
    "$mkfs_vfat" -C -F 32 -S 512 -n SEPTUM --invariant "$fat" $((part_mib * 1024)) >/dev/null ||
        die_sd "mkfs.vfat failed"
    for f in config.txt septum.img start4.elf fixup4.dat "$SEPTUM_LINUX_PI_DTB" LICENCE.raspi-firmware.txt README.txt; do
        MTOOLS_SKIP_CHECK=1 mcopy -m -i "$fat" "$out/$f" "::/$f" || die_sd "mcopy of $f into the image failed"
    done
    python3 - "$stage/disk.img" "$fat" "$part_start_mib" <<'EOF' || die_sd "cannot write the disk image"
import struct, sys
disk, fat, start_mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = start_mib * 2048                      # in 512-byte sectors
with open(fat, "rb") as f:
    part = f.read()
assert len(part) % 512 == 0
mbr = bytearray(512)
mbr[440:444] = struct.pack("<I", 0x5E970001)  # disk identifier
# One entry: not active, CHS fields saturated (LBA only), type 0x0c.
mbr[446:462] = bytes([0x00, 0xFE, 0xFF, 0xFF, 0x0C, 0xFE, 0xFF, 0xFF]) + struct.pack(
    "<II", start, len(part) // 512)
mbr[510:512] = b"\x55\xaa"
with open(disk, "wb") as f:
    f.write(mbr)
    f.write(bytes(start * 512 - 512))
    f.write(part)
EOF
    mkdir -p "$(dirname "$image")"
    mv "$stage/disk.img" "$image.tmp"
    mv "$image.tmp" "$image"
    log_sd "SD card image: $image ($((part_start_mib + part_mib)) MiB; write it with dd, see docs/raspberry-pi-4.md)"
fi
echo "$out"
