#!/usr/bin/env bash
# Runs a fuzz target for a while: run.sh <normalize|json_parse> <seconds>
# Needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz).
set -euo pipefail
cd "$(dirname "$0")"
target="${1:-normalize}"
secs="${2:-600}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-fuzz-target}"
mkdir -p "corpus/$target"
cargo +nightly fuzz run -O "$target" "corpus/$target" seeds -- -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048
