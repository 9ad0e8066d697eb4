#!/usr/bin/env bash
# Runs every test: formatting and lints, host unit tests, then the QEMU
# integration tests that boot real images. Exits non-zero if anything fails.
#
#   scripts/test.sh [--quick]     (--quick: host tests and lints only)
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"

quick=0
[ "${1:-}" = "--quick" ] && quick=1

ensure_all
cd "$SEPTUM_ROOT"
step() { printf '\n==> %s\n' "$*"; }

# Every QEMU line started from here on (the harness, bench.py, run-qemu.sh)
# goes through the guard, which refuses one that would let QEMU add default
# devices (its default NIC needs a ROM the scripts never install, so such a
# line fails on a fresh machine even where this one happens to have it).
export PATH="$SEPTUM_ROOT/scripts/lib/qemu-guard:$PATH"
step "QEMU lines name their devices (the guard refuses one without -nodefaults)"
rc=0
timeout 20 qemu-system-aarch64 -M virt -cpu cortex-a72 -kernel /dev/null -display none 2>/dev/null || rc=$?
[ "$rc" = 97 ] || { echo "the QEMU guard let a line without -nodefaults through (status $rc)" >&2; exit 1; }
qemu-system-aarch64 --version | head -n1

step "rustfmt"
cargo fmt --all -- --check
# The fuzz crate is a workspace of its own (nightly only to build).
(cd fuzz && cargo fmt -- --check)

step "host unit tests (septum-abi, septum-fdt, septum-core, septum-config, septum-telemetry, rtos logic, harness)"
cargo test -p septum-abi -p septum-fdt -p septum-core -p septum-config -p septum-telemetry
cargo test -p septum-rtos --lib
cargo test -p septum-qemu-tests --lib

step "Linux guest tooling tests (initramfs builder, module resolver)"
python3 -m unittest discover -s guests/linux -q

step "build the default image (also validates configs/qemu-virt.toml)"
scripts/build.sh --quiet --config configs/qemu-virt.toml >/dev/null

step "clippy (host crates and bare-metal crates)"
cargo clippy -q -p septum-abi -p septum-fdt -p septum-core -p septum-config -p septum-qemu-tests -p septum-telemetry --all-targets -- -D warnings
cargo clippy -q -p septum-rtos -p septum-intruder -p septum-pairbench -p septum-guest-rt -p septum-telemetry --target aarch64-unknown-none -- -D warnings
cargo clippy -q -p septum-rtos --features bench,fault-test-stop-heartbeat,fault-test-system-off,fault-test-doorbell-storm,fault-test-reset-after-accept \
    --target aarch64-unknown-none -- -D warnings
cargo clippy -q -p septum-intruder --features flood --target aarch64-unknown-none \
    --target-dir target/flood -- -D warnings
cargo clippy -q -p septum-intruder --features flood-irq --target aarch64-unknown-none \
    --target-dir target/flood-irq -- -D warnings
SEPTUM_GEN_DIR="$SEPTUM_ROOT/target/septum/qemu-virt/gen" \
    cargo clippy -q -p septum-hypervisor --target aarch64-unknown-none-softfloat -- -D warnings
SEPTUM_GEN_DIR="$SEPTUM_ROOT/target/septum/qemu-virt/gen" \
    cargo clippy -q -p septum-hypervisor --target aarch64-unknown-none-softfloat \
    --features fault-inject --target-dir target/features/fault-inject -- -D warnings
SEPTUM_GEN_DIR="$SEPTUM_ROOT/target/septum/qemu-virt/gen" \
    cargo clippy -q -p septum-hypervisor --target aarch64-unknown-none-softfloat \
    --features paced-console --target-dir target/features/paced-console -- -D warnings

if [ "$quick" = 1 ]; then
    echo "quick run: QEMU integration tests skipped"
    exit 0
fi

step "QEMU integration tests"
# Two test threads: each QEMU is single-threaded under -icount.
cargo test -p septum-qemu-tests --tests -- --test-threads=2

step "Raspberry Pi 4 SD card folder and image (scripts/mk-sdcard.sh)"
sd=target/septum/sdcard
scripts/mk-sdcard.sh --out "$sd" --image target/septum/sdcard.img >/dev/null
for f in config.txt septum.img start4.elf fixup4.dat bcm2711-rpi-4-b.dtb LICENCE.raspi-firmware.txt; do
    [ -s "$sd/$f" ] || { echo "mk-sdcard.sh did not write $f" >&2; exit 1; }
done
grep -qx 'kernel=septum.img' "$sd/config.txt"
cmp -s "$sd/septum.img" target/septum/rpi4/septum.img
# The card image: an MBR whose one partition is FAT32-LBA (0x0c) from
# sector 8192, a FAT32 boot sector there, and every file of the folder in
# its root directory, byte for byte.
python3 - target/septum/sdcard.img <<'EOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
assert b[510:512] == b"\x55\xaa", "no MBR signature"
ptype = b[446 + 4]
start, count = struct.unpack_from("<II", b, 446 + 8)
assert ptype == 0x0C and start == 8192, (hex(ptype), start)
assert (start + count) * 512 <= len(b), "partition runs past the image"
assert b[start * 512 + 0x52:start * 512 + 0x5A] == b"FAT32   ", "partition 1 is not FAT32"
assert b[start * 512 + 510:start * 512 + 512] == b"\x55\xaa", "no boot sector signature"
EOF
for f in config.txt septum.img start4.elf fixup4.dat bcm2711-rpi-4-b.dtb LICENCE.raspi-firmware.txt README.txt; do
    MTOOLS_SKIP_CHECK=1 mcopy -n -i target/septum/sdcard.img@@4M "::/$f" target/septum/sdcard-check.tmp
    cmp -s target/septum/sdcard-check.tmp "$sd/$f" || { echo "sdcard.img: $f differs" >&2; exit 1; }
done
rm -f target/septum/sdcard-check.tmp

step "benchmark smoke (scripts/bench.sh --smoke: figures reported, no time asserted)"
scripts/bench.sh --smoke

step "fuzz smoke (every target, 10 s each; scripts/fuzz.sh for longer runs)"
scripts/fuzz.sh --smoke
