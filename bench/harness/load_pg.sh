#!/usr/bin/env bash
# Load benchmark tables into the local PostgreSQL (run start_pg.sh first).
#   public.flights           <- $BENCH_DATA/flights.csv (336,776 rows; gen_data.py --only flights)
#   public.pgbench_accounts  <- pgbench -i -s 10 (1,000,000 rows; also branches/tellers/history)
set -euo pipefail
D=${BENCH_DATA:-${BENCH_HOME:-$HOME/.cache/sluice-bench}/data}
export PGPASSWORD=bench
PSQL="psql -h 127.0.0.1 -U bench -d bench -v ON_ERROR_STOP=1 -q"
$PSQL <<'SQL'
DROP TABLE IF EXISTS flights;
CREATE TABLE flights (
  year int, month int, day int, dep_time int, sched_dep_time int, dep_delay int,
  arr_time int, sched_arr_time int, arr_delay int, carrier text, flight int, tailnum text,
  origin text, dest text, air_time int, distance int, hour int, minute int,
  time_hour timestamptz);
SQL
$PSQL -c "\copy flights FROM '$D/flights.csv' WITH (FORMAT csv, HEADER true)"
pgbench -h 127.0.0.1 -U bench -i -s 10 -q bench
$PSQL -c "VACUUM ANALYZE"
$PSQL -At -c "SELECT 'flights', count(*) FROM flights UNION ALL SELECT 'pgbench_accounts', count(*) FROM pgbench_accounts"
