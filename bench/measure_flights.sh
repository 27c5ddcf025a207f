#!/usr/bin/env bash
# A quick side-by-side without the full harness: DuckDB's own reader (the floor, Python duckdb) and
# `sluice run` on the nycflights13 files, 3 runs each, whole process (wall seconds, peak RSS MiB)
# with /usr/bin/time. Files and Python: the benchmark's ($BENCH_HOME, made by
# `bash bench/run.sh -f 'flights'`) when there, else those of scripts/peers.sh; SLUICE_FLIGHTS_DIR
# and PY override them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
bench_home="${BENCH_HOME:-$HOME/.cache/sluice-bench}"
peers="${SLUICE_PEERS:-$HOME/.cache/sluice-peers}"
if [ -f "${BENCH_DATA:-$bench_home/data}/flights.parquet" ] && [ -x "$bench_home/venv/bin/python" ]; then
  data="${SLUICE_FLIGHTS_DIR:-${BENCH_DATA:-$bench_home/data}}"; py="${PY:-$bench_home/venv/bin/python}"
else
  data="${SLUICE_FLIGHTS_DIR:-$peers/flights}"; py="${PY:-$peers/venv/bin/python}"
fi
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
