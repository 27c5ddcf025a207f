#!/usr/bin/env bash
# Benchmark driver. usage: bench.sh [-n RUNS] [-N] [-f ID_REGEX] [-o OUT_DIR] [-c CASES_FILE]... [-k]
#   -n  runs per case (default 3; a case's own `runs` field wins unless -N is given)
#   -N  force -n for every case
#   -f  only cases whose id matches this extended regex (e.g. '^(sling|ours)\.')
#   -o  results dir (default $BENCH_HOME/results); appends one JSON line per run to OUT/raw.jsonl
#   -c  cases file (default peers_cases.txt beside this script); may be given more than once
#   -k  keep each run's DuckDB file (default: delete after verification)
# Every run: fresh dir OUT/runs/<id>/<n>/ with a fresh $DB, optional untimed setup, timed command
# under /usr/bin/time -v (measure.py), then verify.py lists tables/rows/cols of $DB.
# Afterwards: summarize.py OUT  -> OUT/summary.md (median wall, rows/s, MB/s, peak RSS).
# Scripts live beside this file ($B); everything generated (venvs, data, results, tools, sling_home,
# ingestr_home, tmp) lives in $BENCH_HOME (default $HOME/.cache/sluice-bench). bench/run.sh in the
# sluice repository sets all of this up and calls this script.
set -uo pipefail
B=$(cd "$(dirname "$0")" && pwd); export B
export BENCH_HOME=${BENCH_HOME:-$HOME/.cache/sluice-bench}
export PY=${PY:-$BENCH_HOME/venv/bin/python}
export PY15=${PY15:-$BENCH_HOME/venv_duck15/bin/python}   # same dlt, duckdb 1.5.6
export BENCH_DATA=${BENCH_DATA:-$BENCH_HOME/data}
RUNS=3; FORCE=0; FILTER='.'; OUT=$BENCH_HOME/results; CASES=(); KEEP=0
while getopts "n:Nf:o:c:k" o; do case $o in
  n) RUNS=$OPTARG;; N) FORCE=1;; f) FILTER=$OPTARG;; o) OUT=$OPTARG;; c) CASES+=("$OPTARG");; k) KEEP=1;;
  *) sed -n 2,14p "$0"; exit 2;; esac; done
[ ${#CASES[@]} -gt 0 ] || CASES=("$B/peers_cases.txt")
mkdir -p "$OUT"
# in a subshell: sling_env.sh changes HOME, which must not leak into the timed runs
( echo "date: $(date -Is)"; echo "host: $(uname -srm), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$PY" -c "
import importlib
def v(m):
    try: return importlib.import_module(m).__version__
    except Exception: return '-'
print('dlt', v('dlt'), '| duckdb(py)', v('duckdb'), '| pyarrow', v('pyarrow'))"
  if [ -x "$BENCH_HOME/tools/duckdb144/bin/duckdb" ]; then
    source "$B/sling_env.sh" >/dev/null 2>&1; echo "sling $("$SLING_BIN" --version 2>/dev/null | tail -1) | duckdb CLI for sling $("$DUCKDB_PATH" -version)"
  fi
  [ -x "$BENCH_HOME/venv_ingestr/bin/ingestr" ] && echo "ingestr $(HOME=$BENCH_HOME/ingestr_home "$BENCH_HOME/venv_ingestr/bin/ingestr" --version 2>/dev/null)"
  [ -n "${SLUICE_TARGET:-}" ] && echo "sluice: $SLUICE_TARGET/release${SLUICE_REPO:+ (checkout $SLUICE_REPO, $(git -C "$SLUICE_REPO" rev-parse --short HEAD 2>/dev/null))}"
  psql --version ) >> "$OUT/env.txt" 2>&1

while IFS='|' read -r id tool task src rows runs check setup cmd; do
  [[ -z "$id" || "$id" == \#* ]] && continue
  [[ "$id" =~ $FILTER ]] || continue
  n=$RUNS; [[ $FORCE == 0 && "$runs" != "-" ]] && n=$runs
  [[ "$src" != pg:* ]] && cat "$BENCH_DATA/$src" > /dev/null   # warm the page cache the same way for everyone
  for i in $(seq 1 "$n"); do
    W=$OUT/runs/$id/$i; rm -rf "$W"; mkdir -p "$W"; export W DB=$W/db.duckdb
    if [[ "$setup" != "-" ]]; then
      bash -c "$setup" < /dev/null > "$W/setup.log" 2>&1 || echo "  setup failed: see $W/setup.log"
    fi
    sync; sleep 1
    m=$("$PY" "$B/measure.py" --out "$W" -- bash -c "$cmd" < /dev/null)
    "$PY" "$B/verify.py" "$DB" --json "$W/verify.json" < /dev/null > "$W/verify.txt" 2>&1 || echo '[]' > "$W/verify.json"
    "$PY" - "$W" "$id" "$tool" "$task" "$src" "$rows" "$check" "$i" >> "$OUT/raw.jsonl" <<'PYEOF'
import json, sys
W, id_, tool, task, src, rows, check, i = sys.argv[1:]
m = json.load(open(f"{W}/measure.json")); v = json.load(open(f"{W}/verify.json"))
ok = m["rc"] == 0
for c in filter(None, check.split(",")):
    t, n = c.split("=")
    hit = [x for x in v if x["table"].split(".")[-1] == t]
    ok = ok and bool(hit) and hit[0]["rows"] == int(n)
print(json.dumps({"id": id_, "tool": tool, "task": task, "src": src, "rows": int(rows), "run": int(i),
                  "ok": ok, **{k: m.get(k) for k in ("rc", "wall_s", "user_s", "sys_s", "max_rss_kb", "tree_peak_rss_kb", "killed_for_rss")},
                  "tables": v, "dir": W}))
PYEOF
    echo "$id run $i: $m $(tail -1 "$OUT/raw.jsonl" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print("ok" if d["ok"] else "CHECK FAILED", len(d["tables"]), "tables")')"
    [[ $KEEP == 1 ]] || rm -f "$DB" "$DB.wal"
  done
done < <(awk 1 "${CASES[@]}")   # awk 1: a file without a final newline still ends its last line
"$PY" "$B/summarize.py" "$OUT"
