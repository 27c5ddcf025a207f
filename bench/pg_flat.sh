#!/usr/bin/env bash
# 1,000,000 flat JSON lines into PostgreSQL, for bench/cases.txt (the harness in bench/harness):
#   pg_flat.sh prepare          untimed: flat.csv next to flat.jsonl (once), no schema `flat_pg`
#   pg_flat.sh psql             the floor: psql \copy of the same rows as CSV into a typed table
#   pg_flat.sh dlt [FORMAT]     dlt 1.31's postgres destination (insert_values by default, or csv)
#   pg_flat.sh sluice           sluice (load_jsonl: extract, normalize, load through the plugin)
# Every tool writes schema `flat_pg` (not `bench`: a schema named like the role would come first
# in the role's search_path, and the harness's pgbench tables would land in it; `pg_` names are
# reserved). Every timed command ends by counting the rows (the harness verifies DuckDB files
# only), so each tool pays the same ~0.1 s for it. Server: $BENCH_PG_URL (start_pg.sh's role).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PGURL=${BENCH_PG_URL:-postgresql://bench:bench@127.0.0.1:5432/bench}
DATA=${BENCH_DATA:-${BENCH_HOME:-$HOME/.cache/sluice-bench}/data}
check() {
  n=$(psql "$PGURL" -tAc "SELECT count(*) FROM flat_pg.flat")
  [ "$n" = 1000000 ] || { echo "expected 1000000 rows in flat_pg.flat, found $n" >&2; exit 1; }
}
case "${1:?usage: pg_flat.sh prepare|psql|dlt|sluice}" in
  prepare)
    if [ ! -f "$DATA/flat.csv" ]; then
      "${PY:-${BENCH_HOME:-$HOME/.cache/sluice-bench}/venv/bin/python}" - "$DATA" <<'PY'
import csv, sys, orjson
d = sys.argv[1]
cols = ["id", "name", "amount", "created_at", "active", "category"]
with open(f"{d}/flat.jsonl", "rb") as src, open(f"{d}/flat.csv.tmp", "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(cols)
    for line in src:
        r = orjson.loads(line)
        w.writerow(["" if r.get(c) is None else r[c] for c in cols])
PY
      mv "$DATA/flat.csv.tmp" "$DATA/flat.csv"
    fi
    psql "$PGURL" -q -c "DROP SCHEMA IF EXISTS flat_pg CASCADE; DROP SCHEMA IF EXISTS flat_pg_staging CASCADE"
    ;;
  psql)
    psql "$PGURL" -q -v ON_ERROR_STOP=1 \
      -c "CREATE SCHEMA flat_pg; CREATE TABLE flat_pg.flat (id bigint, name varchar, amount double precision, created_at timestamp with time zone, active boolean, category varchar)" \
      -c "\\copy flat_pg.flat FROM '$DATA/flat.csv' WITH (FORMAT csv, HEADER true)"
    check
    ;;
  dlt)
    "${PY:-${BENCH_HOME:-$HOME/.cache/sluice-bench}/venv/bin/python}" "$here/pg_dlt_flat.py" --url "$PGURL" --work "${W:-/tmp}" ${2:+--file-format "$2"}
    check
    ;;
  sluice)
    "${SLUICE_TARGET:?set SLUICE_TARGET to the cargo target dir}/release/examples/load_jsonl" \
      "$DATA/flat.jsonl" flat "$PGURL" --pipelines-dir "${W:-/tmp}/pipelines" --dataset flat_pg
    check
    ;;
  *) echo "unknown step $1" >&2; exit 2 ;;
esac
