#!/usr/bin/env bash
# Runs Septum's benchmarks in QEMU with -icount shift=0,sleep=off (figures
# repeat exactly and do not depend on the host) and writes
# target/bench/report.md, report.json and SVG histograms of the RTOS's
# interrupt latency and release jitter (docs/performance.md).
#
#   scripts/bench.sh           every figure (about 20 minutes)
#   scripts/bench.sh --smoke   the quick runs only; checks that each figure
#                              is reported (scripts/test.sh runs this)
#
# Conditions: the benchmark build of the RTOS natively (no hypervisor), and
# under Septum with configs/qemu-virt.toml's Linux idle, loaded (busy
# loops on its CPUs, console output and network traffic) and crash-looping,
# and beside a guest flooding the hypervisor with faults or with SGIs and
# GIC MMIO (the interference table); the two-vCPU
# guest guests/pairbench natively, in qemu/configs/virt-pairbench.toml,
# with direct interrupt delivery in qemu/configs/virt-pairbench-direct.toml
# and on a GICv2 (natively and in qemu/configs/virt-pairbench-v2.toml);
# and configs/rpi4.toml with the benchmark RTOS on QEMU raspi4b (GICv2).
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"

smoke=0
case "${1:-}" in
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    --smoke) smoke=1 ;;
    "") ;;
    *) echo "bench.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac
ensure_all
cd "$SEPTUM_ROOT"
out=target/bench
mkdir -p "$out" target/septum/guests
objcopy="$(llvm_objcopy)"

# The RTOS's benchmark build, in its own target directory, and the
# two-vCPU benchmark guest.
cargo build -q --release --target aarch64-unknown-none -p septum-rtos --features bench \
    --target-dir target/bench/rtos
"$objcopy" -O binary target/bench/rtos/aarch64-unknown-none/release/septum-rtos \
    target/septum/guests/septum-rtos-bench.bin
cargo build -q --release --target aarch64-unknown-none -p septum-pairbench
"$objcopy" -O binary target/aarch64-unknown-none/release/septum-pairbench \
    target/septum/guests/septum-pairbench.bin
scripts/build.sh --quiet --config qemu/configs/virt-pairbench.toml >/dev/null
scripts/build.sh --quiet --config qemu/configs/virt-pairbench-direct.toml >/dev/null
scripts/build.sh --quiet --config qemu/configs/virt-pairbench-v2.toml >/dev/null

if [ "$smoke" = 1 ]; then
    exec python3 scripts/lib/bench.py --smoke
fi

# The default configuration with the benchmark RTOS, once with Linux idle
# and once with septum.load=1 on its command line (its init then starts the
# load). Paths become absolute because the files live in target/bench.
root="$SEPTUM_ROOT"
# CONFIG with the benchmark RTOS and absolute paths, written to OUT.
# (Relative paths start with ../ from configs/, ../../ from qemu/configs/.)
bench_config() {
    sed -e "s#\"\(\.\./\)\{1,2\}target/septum/guests/septum-rtos.bin\"#\"$root/target/septum/guests/septum-rtos-bench.bin\"#" \
        -e "s#\"\(\.\./\)\{1,2\}target/#\"$root/target/#g" "$1" >"$2"
    grep -q septum-rtos-bench.bin "$2" || { echo "bench.sh: could not derive a bench configuration from $1" >&2; exit 1; }
}
bench_config configs/qemu-virt.toml "$out/bench-idle.toml"
sed -e 's#panic=-1"#panic=-1 septum.load=1"#' "$out/bench-idle.toml" >"$out/bench-load.toml"
grep -q septum.load=1 "$out/bench-load.toml" || { echo "bench.sh: could not derive the loaded configuration" >&2; exit 1; }
# Interference (docs/performance.md): Linux crash-looping (septum.crash=1:
# its init crashes the kernel as soon as it is up, every boot), and a
# hostile bare-metal guest on Linux's three cores flooding the hypervisor
# with faults (qemu/configs/virt-console-flood.toml) or with SGIs and GIC
# MMIO (its flood-irq build).
# (Its restart budget raised to the most the hypervisor tracks, 16 a minute,
# so that the loop lasts the whole run: a cycle takes about 1.5 s.)
sed -e 's#panic=-1"#panic=-1 septum.crash=1"#' \
    -e 's#max-restarts = 10, restart-window-ms = 60000#max-restarts = 16, restart-window-ms = 60000#' \
    "$out/bench-idle.toml" >"$out/bench-crash.toml"
grep -q septum.crash=1 "$out/bench-crash.toml" && grep -q "max-restarts = 16," "$out/bench-crash.toml" || { echo "bench.sh: could not derive the crash-loop configuration" >&2; exit 1; }
bench_config qemu/configs/virt-console-flood.toml "$out/bench-flood.toml"
sed -e 's#septum-intruder-flood.bin#septum-intruder-flood-irq.bin#' "$out/bench-flood.toml" >"$out/bench-flood-irq.toml"
grep -q flood-irq "$out/bench-flood-irq.toml" || { echo "bench.sh: could not derive the SGI/MMIO flood configuration" >&2; exit 1; }
# The Raspberry Pi 4 configuration with the benchmark RTOS (QEMU raspi4b:
# the GICv2 backend's costs).
bench_config configs/rpi4.toml "$out/bench-rpi4.toml"
scripts/build.sh --quiet --config configs/qemu-virt.toml >/dev/null
scripts/build.sh --quiet --config "$out/bench-idle.toml" >/dev/null
scripts/build.sh --quiet --config "$out/bench-load.toml" >/dev/null
scripts/build.sh --quiet --config "$out/bench-rpi4.toml" >/dev/null
for c in crash flood flood-irq; do
    scripts/build.sh --quiet --config "$out/bench-$c.toml" >/dev/null
done

python3 scripts/lib/bench.py
