#!/usr/bin/env bash
# The native reproducer of QEMU's icount collapse under a spinning vCPU
# (docs/fault-containment.md, "QEMU and spinning guests"): no hypervisor,
# core 0 sleeps on its timer and counts guest time, core 1 spins in one of
# six loops; prints guest time per wall second for each.
#
#   scripts/repro-spin.sh [SECONDS per loop, default 10]
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"
ensure_all
secs="${1:-10}"
out="$SEPTUM_ROOT/target/septum/repro"
mkdir -p "$out"
(cd "$SEPTUM_ROOT" && rustc --edition 2021 --target aarch64-unknown-none-softfloat \
    -C panic=abort -C opt-level=1 -C "link-arg=-T$SEPTUM_ROOT/qemu/repro/spin.ld" \
    -o "$out/spin.elf" qemu/repro/spin.rs)
names=("wfi (idle)" "wfe" "yield" "counter polling" "Linux __delay (wfe + counter)" "nop (busy)")
printf '| core 1 runs | guest ms per wall s (-icount shift=0,sleep=off) |\n|---|---|\n'
for mode in 0 1 2 3 4 5; do
    n="$(timeout "$secs" qemu-system-aarch64 -nodefaults -M virt,gic-version=3 -cpu cortex-a72 \
        -smp 4 -m 1G -display none -monitor none -icount shift=0,sleep=off \
        -kernel "$out/spin.elf" -device "loader,addr=0x40500000,data=$mode,data-len=4" \
        -serial stdio 2>/dev/null | grep -c t || true)"
    printf '| %s | %s |\n' "${names[$mode]}" "$((n * 10 / secs))"
done
