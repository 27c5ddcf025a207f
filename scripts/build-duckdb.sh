#!/usr/bin/env bash
# Provides the static DuckDB library the DuckDB destination links:
#   $CARGO_TARGET_DIR/duckdb-lib/<version>/libduckdb_static.a (+ the extension autoregister lib)
# Built once per machine from tools/duckdb-lib (30-50 minutes on 2 cores), then reused.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
version="1.20000.1"
dest="$target/duckdb-lib/$version"
link() { ln -sfn "$dest" "$here/.duckdb-lib"; }
if [ -f "$dest/libduckdb_static.a" ] && [ -f "$dest/libduckdb_static_extension_autoregister.a" ]; then
  link
  exit 0
fi
echo "building the bundled DuckDB $version (once per machine; 30-50 minutes on 2 cores)..." >&2
cargo build --release \
  --manifest-path "$here/tools/duckdb-lib/Cargo.toml" \
  --target-dir "$target/duckdb-lib/build"
out=$(ls -td "$target"/duckdb-lib/build/release/build/libduckdb-sys-*/out 2>/dev/null | while read -r d; do
  [ -f "$d/libduckdb.a" ] && echo "$d" && break; done)
if [ -z "$out" ]; then
  echo "error: libduckdb.a not found under $target/duckdb-lib/build" >&2
  exit 1
fi
mkdir -p "$dest"
cp "$out/libduckdb.a" "$dest/libduckdb_static.a.tmp" && mv "$dest/libduckdb_static.a.tmp" "$dest/libduckdb_static.a"
cp "$out/libduckdb_static_extension_autoregister.a" "$dest/"
link
echo "DuckDB library ready in $dest (linked as .duckdb-lib)" >&2
