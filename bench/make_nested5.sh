#!/usr/bin/env bash
# nested5.jsonl: the harness's nested.jsonl five times over (for the flat-memory check).
# Skips the work when nested5.jsonl is already there (bench/run.sh calls it for sluice.nested5).
set -euo pipefail
D=${BENCH_DATA:-${BENCH_HOME:-$HOME/.cache/sluice-bench}/data}
[ -f "$D/nested.jsonl" ] || { echo "no $D/nested.jsonl: run gen_data.py --only nested first" >&2; exit 1; }
[ -f "$D/nested5.jsonl" ] && exit 0
for i in 1 2 3 4 5; do cat "$D/nested.jsonl"; done > "$D/nested5.jsonl.tmp"
mv "$D/nested5.jsonl.tmp" "$D/nested5.jsonl"
