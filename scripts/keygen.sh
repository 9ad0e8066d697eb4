#!/usr/bin/env bash
# Generates an ed25519 key pair for signing Septum boot manifests:
# PREFIX.key (secret, mode 0600) and PREFIX.pub. Refuses to overwrite.
#
#   scripts/keygen.sh PREFIX
#
# Run it on the offline signing machine and keep PREFIX.key off the build
# hosts and out of the repository (docs/measured-boot.md, "Keys").
set -euo pipefail
. "$(dirname "$0")/lib/deps.sh"

if [ $# != 1 ] || [ "${1#-}" != "$1" ]; then
    sed -n '2,9p' "$0"
    exit 2
fi
ensure_rust
cd "$SEPTUM_ROOT"
prefix="$1"
case "$prefix" in /*) ;; *) prefix="$OLDPWD/$prefix" ;; esac
cargo run -q --release -p septum-config -- keygen "$prefix"
