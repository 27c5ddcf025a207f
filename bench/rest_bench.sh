#!/usr/bin/env bash
# The rest_api benchmark: 4 resources x 1000 pages x 100 nested records from a local server
# (tests' rest_bench_server), sluice (bench/rest_pipeline.toml) against dlt 1.31's rest_api source
# (bench/rest_dlt.py, parallelized, parquet loader) on the same server; whole process, /usr/bin/time.
#   DLT_PY=/path/to/venv/bin/python bash bench/rest_bench.sh     (dlt[duckdb]==1.31.* and pyarrow)
# The benchmark's peers venv has them once `bash bench/run.sh --peers ...` (or bench/harness/install.sh)
# has run: DLT_PY=$HOME/.cache/sluice-bench/venv/bin/python. Without DLT_PY only sluice is timed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
tmp=$(mktemp -d)
"$target/release/rest_bench_server" 8077 1000 2>/dev/null &
server=$!
trap 'kill $server; rm -rf "$tmp"' EXIT
sleep 3
for i in 1 2 3; do
  rm -rf "$tmp/w" "$tmp"/s.duckdb*
  /usr/bin/time -f "sluice run $i: %e s %M KB" env DESTINATION__DUCKDB__CREDENTIALS="$tmp/s.duckdb" \
    "$target/release/sluice" run "$here/bench/rest_pipeline.toml" --pipelines-dir "$tmp/w" --progress none >/dev/null
done
if [ -n "${DLT_PY:-}" ]; then
  for i in 1 2; do
    rm -rf "$tmp/dw" "$tmp"/d.duckdb*
    /usr/bin/time -f "dlt run $i: %e s %M KB" "$DLT_PY" "$here/bench/rest_dlt.py" "$tmp/d.duckdb" "$tmp/dw" >/dev/null
  done
fi
