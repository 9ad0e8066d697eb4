#!/usr/bin/env bash
# Runs septum-config, the configuration tool, as a release build: the same
# binary scripts/build.sh uses, so after any build it answers at once (the
# first time it is built, about a minute; a debug build by `cargo run` takes
# several).
#
#   scripts/septum-config.sh check FILE     validate FILE (file:line:column and rule on error)
#   scripts/septum-config.sh table FILE     the partition table, resources and memory map
#   scripts/septum-config.sh rules          every rule with its ID
#   scripts/septum-config.sh --help         every command
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"
ensure_rust
args=()
for a in "$@"; do
    # Relative paths are the caller's, not the repository root's.
    case "$a" in -*|/*) args+=("$a") ;; *) if [ -e "$a" ]; then args+=("$(cd "$(dirname "$a")" && pwd)/$(basename "$a")"); else args+=("$a"); fi ;; esac
done
cd "$SEPTUM_ROOT"
[ -x target/release/septum-config ] || echo "[septum] building septum-config (release, once: about a minute)" >&2
# A no-op when it is up to date (well under a second).
cargo build -q --release -p septum-config
exec target/release/septum-config "${args[@]}"
