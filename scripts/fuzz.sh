#!/usr/bin/env bash
# Runs the libFuzzer targets in fuzz/ (see docs/fuzzing.md), one after the
# other, each for a fixed time. Exits non-zero if any target finds a crash,
# and prints the reproducer's path and the command that replays it.
#
#   scripts/fuzz.sh [--seconds N | --smoke] [TARGET...]
#
#   --seconds N   fuzz each target N seconds (default 60)
#   --smoke       10 seconds each (what scripts/test.sh runs)
#   TARGET...     only these targets (default: all; `--list` shows them)
#
# Environment: SEPTUM_FUZZ_SANITIZER (cargo-fuzz --sanitizer: none, the
# default, since the fuzzed crates forbid unsafe code and overflow checks
# stay on; or address), SEPTUM_FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"

seconds=60
targets=()
list=0
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds)
            seconds="${2:?--seconds needs a number}"
            shift 2
            ;;
        --seconds=*)
            seconds="${1#--seconds=}"
            shift
            ;;
        --smoke)
            seconds=10
            shift
            ;;
        --list)
            list=1
            shift
            ;;
        -h | --help)
            sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "fuzz.sh: unknown option $1" >&2
            exit 2
            ;;
        *)
            targets+=("$1")
            shift
            ;;
    esac
done
case "$seconds" in
    '' | *[!0-9]*)
        echo "fuzz.sh: --seconds wants a whole number, not '$seconds'" >&2
        exit 2
        ;;
esac

ensure_fuzz
FUZZ_DIR="$SEPTUM_ROOT/fuzz"
cd "$FUZZ_DIR"
sanitizer="${SEPTUM_FUZZ_SANITIZER:-none}"
cargo_fuzz=(cargo +nightly fuzz)

mapfile -t all < <("${cargo_fuzz[@]}" list)
if [ "$list" = 1 ]; then
    printf '%s\n' "${all[@]}"
    exit 0
fi
if [ "${#targets[@]}" = 0 ]; then
    targets=("${all[@]}")
fi
for t in "${targets[@]}"; do
    if ! printf '%s\n' "${all[@]}" | grep -qx -- "$t"; then
        echo "fuzz.sh: no target '$t' (targets: ${all[*]})" >&2
        exit 2
    fi
done

echo "==> building the fuzz targets (nightly, sanitizer: $sanitizer)"
# One build for all (`cargo fuzz build` takes at most one target), so that
# `cargo fuzz run` below finds everything up to date.
if [ "${#targets[@]}" = 1 ]; then
    "${cargo_fuzz[@]}" build --sanitizer "$sanitizer" "${targets[0]}"
else
    "${cargo_fuzz[@]}" build --sanitizer "$sanitizer"
fi

# Seeds: the committed ones, and for config_toml every TOML file the
# repository ships (so the corpus follows the configuration format).
seed_corpus() {
    local t="$1" corpus="$FUZZ_DIR/corpus/$1"
    mkdir -p "$corpus"
    if [ -d "$FUZZ_DIR/seeds/$t" ]; then
        cp -f "$FUZZ_DIR/seeds/$t"/* "$corpus"/ 2>/dev/null || true
    fi
    if [ "$t" = config_toml ]; then
        local f
        while IFS= read -r f; do
            cp -f "$SEPTUM_ROOT/$f" "$corpus/repo-${f//\//_}"
        done < <(cd "$SEPTUM_ROOT" && find configs qemu/configs hypervisor/config/tests/fixtures \
            -name '*.toml' -type f 2>/dev/null | sort)
    fi
}

failed=()
declare -A result
start_all=$SECONDS
for t in "${targets[@]}"; do
    seed_corpus "$t"
    artifacts="$FUZZ_DIR/artifacts/$t"
    mkdir -p "$artifacts"
    marker="$(mktemp)"
    extra=()
    [ -f "$FUZZ_DIR/dict/$t.dict" ] && extra+=("-dict=$FUZZ_DIR/dict/$t.dict")
    # shellcheck disable=SC2206 # word splitting of the extra flags is wanted
    [ -n "${SEPTUM_FUZZ_ARGS:-}" ] && extra+=(${SEPTUM_FUZZ_ARGS})
    echo "==> $t: ${seconds}s"
    log="$artifacts/last-run.log"
    t0=$SECONDS
    status=0
    "${cargo_fuzz[@]}" run --sanitizer "$sanitizer" "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "${extra[@]}" >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
    mapfile -t found < <(find "$artifacts" -maxdepth 1 -type f \
        \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) \
        -newer "$marker" | sort)
    rm -f "$marker"
    if [ "$status" != 0 ] || [ "${#found[@]}" -gt 0 ]; then
        failed+=("$t")
        result[$t]="FAILED after $((SECONDS - t0))s"
        echo "    FAILED (exit $status); log: $log"
        grep -m1 -A4 -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | sed 's/^/    | /' || true
        for f in "${found[@]}"; do
            echo "    reproducer: $f"
            echo "    replay:     cd fuzz && cargo +nightly fuzz run --sanitizer $sanitizer $t ${f#"$FUZZ_DIR"/}"
            echo "    show input: cd fuzz && cargo +nightly fuzz fmt $t ${f#"$FUZZ_DIR"/}"
        done
    else
        result[$t]="ok, ${runs:-?} runs in $((SECONDS - t0))s"
    fi
done

echo
echo "==> summary ($((SECONDS - start_all))s)"
for t in "${targets[@]}"; do
    printf '    %-12s %s\n' "$t" "${result[$t]}"
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
