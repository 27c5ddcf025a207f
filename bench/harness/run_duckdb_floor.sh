#!/usr/bin/env bash
# Physical-floor reference: DuckDB loading the same sources itself (no pipeline tool).
# usage: run_duckdb_floor.sh CASE DB_PATH
#   files (Python duckdb from $PY: the same duckdb package dlt uses once install.sh has run): flat | nested | flights_csv | flights_parquet
#   pg_accounts: duckdb CLI 1.4.4 + postgres_scanner extension (from PyPI duckdb-ext-postgres), as
#                the Python duckdb 2.0 build has no postgres extension available offline.
set -euo pipefail
BENCH_HOME=${BENCH_HOME:-$HOME/.cache/sluice-bench}   # venvs, data, tools (see install.sh)
D=${BENCH_DATA:-$BENCH_HOME/data}
PY=${PY:-$BENCH_HOME/venv/bin/python}
CASE=$1; DB=$2
py() { exec "$PY" -c "import duckdb,sys; c=duckdb.connect(sys.argv[1]); c.execute(sys.argv[2]); c.close()" "$DB" "$1"; }
case $CASE in
  flat)            py "CREATE TABLE flat AS SELECT * FROM read_json('$D/flat.jsonl', format='newline_delimited')" ;;
  nested)          py "CREATE TABLE issues AS SELECT * FROM read_json('$D/nested.jsonl', format='newline_delimited')" ;;
  flights_csv)     py "CREATE TABLE flights AS SELECT * FROM read_csv('$D/flights.csv')" ;;
  flights_parquet) py "CREATE TABLE flights AS SELECT * FROM read_parquet('$D/flights.parquet')" ;;
  pg_accounts)
    export HOME=$BENCH_HOME/sling_home/duckhome   # holds extensions/v1.4.4/linux_amd64/postgres_scanner.duckdb_extension
    exec "$BENCH_HOME/tools/duckdb144/bin/duckdb" "$DB" -c "LOAD postgres_scanner; ATTACH 'host=127.0.0.1 port=5432 dbname=bench user=bench password=bench' AS pg (TYPE postgres, READ_ONLY); CREATE TABLE pgbench_accounts AS SELECT * FROM pg.public.pgbench_accounts;" ;;
  *) echo "unknown case $CASE" >&2; exit 2 ;;
esac
