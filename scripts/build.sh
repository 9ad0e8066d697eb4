#!/usr/bin/env bash
# Builds a bootable Septum image for one partition configuration.
#
#   scripts/build.sh [--config FILE] [--key PRIVATE] [--trust PUBLIC] [--quiet | --steps]
#
# --quiet: no cargo output; --steps: no cargo output, one line per step.
#
# Measured boot (docs/measured-boot.md): the boot manifest is signed with
# --key (or $SEPTUM_SIGNING_KEY) and the hypervisor trusts --trust (or
# $SEPTUM_TRUSTED_KEY). Both default to the published development key pair
# in configs/keys/, which the boot log flags as unfit for a product.
#
# Steps: install prerequisites; build the guests; validate the TOML and
# generate the hypervisor's configuration (a broken TOML stops here with a
# message naming file, line and rule); build the hypervisor; write the raw
# image to target/septum/<config>/septum.img. Prints the image path last.
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"
. "$(dirname "$0")/lib/linux.sh"

config="$SEPTUM_ROOT/configs/qemu-virt.toml"
signing_key="${SEPTUM_SIGNING_KEY:-$SEPTUM_ROOT/configs/keys/septum-dev.key}"
trusted_key="${SEPTUM_TRUSTED_KEY:-$SEPTUM_ROOT/configs/keys/septum-dev.pub}"
quiet=0
steps=0
while [ $# -gt 0 ]; do
    case "$1" in
        --config) config="$2"; shift 2 ;;
        --key) signing_key="$2"; shift 2 ;;
        --trust) trusted_key="$2"; shift 2 ;;
        --quiet) quiet=1; shift ;;
        --steps) quiet=1; steps=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
config="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"
name="$(basename "$config" .toml)"

ensure_rust
cd "$SEPTUM_ROOT"
# One build at a time: every configuration links the same hypervisor binary.
mkdir -p target/septum
exec 9>target/septum/.build.lock
flock 9
cargo_q=()
[ "$quiet" = 1 ] && cargo_q=(-q)
step() { if [ "$steps" = 1 ]; then printf '[build] %s\n' "$*" >&2; fi; }

out="$SEPTUM_ROOT/target/septum"
mkdir -p "$out/guests" "$out/$name/gen"
objcopy="$(llvm_objcopy)"

# Guests (the same images boot natively; see docs/rtos.md).
step "guests: the RTOS and the test guests"
cargo build "${cargo_q[@]}" --release --target aarch64-unknown-none \
    -p septum-rtos -p septum-intruder -p septum-pairbench
for g in septum-rtos septum-intruder septum-pairbench; do
    "$objcopy" -O binary "target/aarch64-unknown-none/release/$g" "$out/guests/$g.bin.tmp"
    mv "$out/guests/$g.bin.tmp" "$out/guests/$g.bin"
done

# The test guests' variant builds (the RTOS's fault-test builds for the
# watchdog and safe-state tests, the intruder's flood), each when the
# configuration uses it, in its own target directory so that the features of
# the normal build stay untouched: FILE:PACKAGE:FEATURE.
for variant in septum-rtos-fault-test.bin:septum-rtos:fault-test-stop-heartbeat \
    septum-rtos-system-off.bin:septum-rtos:fault-test-system-off \
    septum-rtos-doorbell-storm.bin:septum-rtos:fault-test-doorbell-storm \
    septum-rtos-reset-after-accept.bin:septum-rtos:fault-test-reset-after-accept \
    septum-intruder-flood.bin:septum-intruder:flood \
    septum-intruder-flood-irq.bin:septum-intruder:flood-irq; do
    IFS=: read -r file package feature <<<"$variant"
    grep -qF "$file" "$config" || continue
    cargo build "${cargo_q[@]}" --release --target aarch64-unknown-none \
        --target-dir "target/$feature" -p "$package" --features "$feature"
    "$objcopy" -O binary "target/$feature/aarch64-unknown-none/release/$package" \
        "$out/guests/$file.tmp"
    mv "$out/guests/$file.tmp" "$out/guests/$file"
done

# The Linux guest (Debian's kernel and busybox, cached), when the
# configuration boots it.
grep -q 'target/septum/linux' "$config" && step "the Linux guest: kernel and initramfs (cached in $SEPTUM_CACHE)"
if grep -q 'target/septum/linux/' "$config"; then
    ensure_linux_guest cloud
fi
if grep -q 'target/septum/linux-generic/' "$config"; then
    ensure_linux_guest generic
fi

# Validate and generate (host tool).
step "validate $(basename "$config") and generate the hypervisor's configuration"
cargo run "${cargo_q[@]}" --release -p septum-config -- \
    generate "$config" --out "$out/$name/gen"

# Measure every image and sign the boot manifest; name the trusted key.
"target/release/septum-config" sign "$config" --key "$signing_key" \
    --out "$out/$name/gen/manifest.bin" >&2
"target/release/septum-config" trust "$trusted_key" --out "$out/$name/gen"

# The hypervisor: soft-float, so that it never touches guest FP/SIMD state.
step "the hypervisor"
SEPTUM_GEN_DIR="$out/$name/gen" cargo build "${cargo_q[@]}" --release \
    --target aarch64-unknown-none-softfloat -p septum-hypervisor
cp "target/aarch64-unknown-none-softfloat/release/septum" "$out/$name/septum.elf"
"$objcopy" -O binary "$out/$name/septum.elf" "$out/$name/septum.img"
echo "$out/$name/septum.img"
