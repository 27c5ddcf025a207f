#!/usr/bin/env bash
# nested5.jsonl: the harness's nested.jsonl five times over (for the flat-memory check)
set -euo pipefail
D=${BENCH_DATA:-$HOME/bench/data}
for i in 1 2 3 4 5; do cat "$D/nested.jsonl"; done > "$D/nested5.jsonl"
