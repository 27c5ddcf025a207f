#!/usr/bin/env bash
# Prepares the machine's PostgreSQL (127.0.0.1:5432, trust auth) for the postgres destination's
# tests: a role `sluice_pw` that must log in with its password (scram-sha-256) over TCP, so a
# wrong password is really refused. Idempotent; needs root (it edits pg_hba.conf).
set -euo pipefail
pg="psql -h 127.0.0.1 -p 5432 -U postgres -d test -v ON_ERROR_STOP=1 -qAt"
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "pg-setup: PostgreSQL is not running on 127.0.0.1:5432" >&2
  exit 1
fi
hba=$($pg -c "SHOW hba_file")
line="host all sluice_pw 127.0.0.1/32 scram-sha-256"
if ! grep -qxF "$line" "$hba"; then
  # the first matching line wins: put it before the trust lines
  sed -i "1i $line" "$hba"
  $pg -c "SELECT pg_reload_conf()" >/dev/null
fi
$pg <<'SQL'
SET password_encryption = 'scram-sha-256';
DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sluice_pw') THEN
    CREATE ROLE sluice_pw LOGIN PASSWORD 'sluice-pw-test';
  END IF;
END$$;
ALTER ROLE sluice_pw PASSWORD 'sluice-pw-test';
GRANT CREATE ON DATABASE test TO sluice_pw;
SQL
# the rule is in force: the right password logs in, a wrong one is refused
PGPASSWORD=sluice-pw-test psql -h 127.0.0.1 -U sluice_pw -d test -qAtc "SELECT 1" >/dev/null
if PGPASSWORD=wrong psql -h 127.0.0.1 -U sluice_pw -d test -qAtc "SELECT 1" >/dev/null 2>&1; then
  echo "pg-setup: a wrong password was accepted; check $hba" >&2
  exit 1
fi
