#!/usr/bin/env bash
# Builds sluice and every plugin (release), then runs the `sluice` binary with the given
# arguments. The plugins are found next to the binary.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
bash scripts/build-duckdb.sh
cargo build --release --workspace --quiet
exec "$CARGO_TARGET_DIR/release/sluice" "$@"
