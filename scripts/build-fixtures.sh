#!/usr/bin/env bash
# Builds the out-of-tree fixture plugins (tests/fixtures/plugins) the way a third party builds a
# plugin: outside the sluice workspace, with their own lockfile, into $CARGO_TARGET_DIR/fixtures.
# One cargo invocation per plugin: bad_layout enables a layout-breaking test feature of
# sluice-abi, and cargo unifies features across the packages of one invocation.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
for p in oot-plugin wrong-abi-plugin bad-layout-plugin; do
  cargo build --release --quiet \
    --manifest-path "$here/tests/fixtures/plugins/Cargo.toml" \
    --target-dir "$target/fixtures" -p "$p"
done
