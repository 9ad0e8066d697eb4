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

step "rustfmt"
cargo fmt --all -- --check
# The fuzz crate is a workspace of its own (nightly only to build).
(cd fuzz && cargo fmt -- --check)

step "host unit tests (septum-fdt, septum-core, septum-config, rtos logic, harness)"
cargo test -p septum-fdt -p septum-core -p septum-config
cargo test -p septum-rtos --lib
cargo test -p septum-qemu-tests --lib

step "Linux guest tooling tests (initramfs builder, module resolver)"
python3 -m unittest discover -s guests/linux -q

step "build the default image (also validates configs/qemu-virt.toml)"
scripts/build.sh --quiet --config configs/qemu-virt.toml >/dev/null

step "clippy (host crates and bare-metal crates)"
cargo clippy -q -p septum-fdt -p septum-core -p septum-config -p septum-qemu-tests --all-targets -- -D warnings
cargo clippy -q -p septum-rtos -p septum-intruder -p septum-pairbench -p septum-guest-rt --target aarch64-unknown-none -- -D warnings
cargo clippy -q -p septum-rtos --features bench,fault-test-stop-heartbeat \
    --target aarch64-unknown-none -- -D warnings
SEPTUM_GEN_DIR="$SEPTUM_ROOT/target/septum/qemu-virt/gen" \
    cargo clippy -q -p septum-hypervisor --target aarch64-unknown-none-softfloat -- -D warnings

if [ "$quick" = 1 ]; then
    echo "quick run: QEMU integration tests skipped"
    exit 0
fi

step "QEMU integration tests"
# Two test threads: each QEMU is single-threaded under -icount.
cargo test -p septum-qemu-tests --tests -- --test-threads=2

step "Raspberry Pi 4 SD card folder (scripts/mk-sdcard.sh)"
scripts/mk-sdcard.sh --out target/septum/sdcard >/dev/null
for f in config.txt septum.img start4.elf fixup4.dat bcm2711-rpi-4-b.dtb LICENCE.raspi-firmware.txt; do
    [ -s "target/septum/sdcard/$f" ] || { echo "mk-sdcard.sh did not write $f" >&2; exit 1; }
done
grep -qx 'kernel=septum.img' target/septum/sdcard/config.txt
cmp -s target/septum/sdcard/septum.img target/septum/rpi4/septum.img

step "benchmark smoke (scripts/bench.sh --smoke: figures reported, no time asserted)"
scripts/bench.sh --smoke

step "fuzz smoke (every target, 10 s each; scripts/fuzz.sh for longer runs)"
scripts/fuzz.sh --smoke
