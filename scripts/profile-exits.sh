#!/usr/bin/env bash
# Where an exit path's instructions go: runs one pairbench figure alone in
# qemu/configs/virt-pairbench.toml under QEMU's instruction trace and prints
# the hypervisor's instructions per round by symbol (docs/performance.md,
# "Profiling an exit path").
#
#   scripts/profile-exits.sh FIGURE [SYMBOL]
#
# FIGURE: hvc_round_trip, gicd_read, timer_irq, sgi_round_trip, device_irq.
# SEPTUM_PROFILE_GIC=2 profiles the GICv2 backend instead
# (qemu/configs/virt-pairbench-v2.toml on gic-version=2).
# SYMBOL: also list the translated blocks of the symbols whose name
# contains it, with their source lines (inlined call chains).
# The trace (a few hundred MB) goes to target/profile/trace.log.
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"
case "${1:-}" in
    hvc_round_trip | gicd_read | timer_irq | sgi_round_trip | device_irq) fig=$1 ;;
    *) sed -n '2,15p' "$0"; exit 2 ;;
esac
ensure_all
cd "$SEPTUM_ROOT"
case "${SEPTUM_PROFILE_GIC:-3}" in
    3) config=qemu/configs/virt-pairbench.toml ;;
    2) config=qemu/configs/virt-pairbench-v2.toml ;;
    *) echo "profile-exits.sh: SEPTUM_PROFILE_GIC is 2 or 3" >&2; exit 2 ;;
esac
export SEPTUM_PROFILE_GIC="${SEPTUM_PROFILE_GIC:-3}"
objcopy="$(llvm_objcopy)"
bin="$(dirname "$objcopy")"
mkdir -p target/profile target/septum/guests
SEPTUM_PAIRBENCH_ONLY=$fig cargo build -q --release --target aarch64-unknown-none -p septum-pairbench \
    --target-dir target/profile/pairbench
guest=target/profile/pairbench/aarch64-unknown-none/release/septum-pairbench
"$objcopy" -O binary "$guest" target/septum/guests/septum-pairbench-profile.bin
sed -e "s#\"../../target/septum/guests/septum-pairbench.bin\"#\"$SEPTUM_ROOT/target/septum/guests/septum-pairbench-profile.bin\"#" \
    "$config" >target/profile/virt-profile.toml
grep -q pairbench-profile.bin target/profile/virt-profile.toml || { echo "profile-exits.sh: could not derive the configuration" >&2; exit 1; }
scripts/build.sh --quiet --config target/profile/virt-profile.toml >/dev/null
# Source lines need llvm-addr2line (Debian package llvm; not in rustup's
# llvm-tools), only for SYMBOL.
a2l="$(command -v llvm-addr2line || true)"
if [ -n "${2:-}" ] && [ -z "$a2l" ]; then
    echo "profile-exits.sh: SYMBOL needs llvm-addr2line (apt-get install llvm)" >&2
    exit 1
fi
exec python3 scripts/lib/profile.py target/septum/virt-profile/septum.img target/septum/virt-profile/septum.elf \
    "$guest" "$bin/llvm-nm" "${a2l:-none}" target/profile/trace.log "${2:-}"
