#!/usr/bin/env bash
# ingestr (Go rewrite, v1.1.19 = last PyPI wheel that ships its binary; 1.1.25+ download it from GitHub
# at first run, which fails offline). Installed in $BENCH_HOME/venv_ingestr:  pip install ingestr==1.1.19
# usage: run_ingestr.sh CASE DB_PATH     CASE: flights_csv | flights_parquet | flat | nested | pg_accounts | merge_flat
set -euo pipefail
BENCH_HOME=${BENCH_HOME:-$HOME/.cache/sluice-bench}   # venv_ingestr, tools/adbc, ingestr_home (install.sh)
D=${BENCH_DATA:-$BENCH_HOME/data}
CASE=$1; DB=$2
export HOME=$BENCH_HOME/ingestr_home; mkdir -p "$HOME"
export INGESTR_DISABLE_TELEMETRY=true DISABLE_TELEMETRY=true
# ingestr's DuckDB destination is an ADBC driver it would fetch from a driver registry (offline: fails).
# We register libduckdb.so 1.5.6 (npm @duckdb/node-bindings-linux-x64@1.5.6-r.1, exports duckdb_adbc_init)
# through an ADBC driver manifest tools/adbc/duckdb.toml (also copied to $HOME/.config/adbc/drivers).
export ADBC_DRIVER_PATH=$BENCH_HOME/tools/adbc
mkdir -p "$HOME/.config/adbc/drivers"; cp -f "$BENCH_HOME/tools/adbc/duckdb.toml" "$HOME/.config/adbc/drivers/"
I="$BENCH_HOME/venv_ingestr/bin/ingestr"
common=(--dest-uri "duckdb:///$DB" --yes --progress log --pipelines-dir "$(dirname "$DB")/ingestr_pipelines")
case $CASE in
  flights_csv)     exec "$I" ingest --source-uri "csv://$D/flights.csv" --source-table flights --dest-table main.flights "${common[@]}" ;;
  flights_parquet) exec "$I" ingest --source-uri "parquet://$D/flights.parquet" --source-table flights --dest-table main.flights "${common[@]}" ;;
  flat)            exec "$I" ingest --source-uri "jsonl://$D/flat.jsonl" --source-table flat --dest-table main.flat "${common[@]}" ;;
  nested)          exec "$I" ingest --source-uri "jsonl://$D/nested.jsonl" --source-table issues --dest-table main.issues "${common[@]}" ;;
  merge_flat)      exec "$I" ingest --source-uri "jsonl://$D/flat.jsonl" --source-table flat --dest-table main.flat --incremental-strategy merge --primary-key id "${common[@]}" ;;
  pg_accounts)     exec "$I" ingest --source-uri "postgresql://bench:bench@127.0.0.1:5432/bench?sslmode=disable" --source-table public.pgbench_accounts --dest-table main.pgbench_accounts "${common[@]}" ;;
  *) echo "unknown case $CASE" >&2; exit 2 ;;
esac
