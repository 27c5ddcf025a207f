#!/usr/bin/env bash
# Runs every command README.md shows, exactly as written, in a fresh clone of this repository
# (committed HEAD) in a temporary folder with nothing beside it: the quick start (`bash
# scripts/run.sh ...`), the benchmark command, and `sluice init` of the next step. A command that
# fails fails the check. `scripts/test.sh` runs it last (it is README's test command itself, so
# that one line is not run again).
#
# Commands of the next step that need the user's own values (`sluice run` before the
# "<configure me>" values are filled in) must stop with exit code 2 and name what is missing.
#
#   bash scripts/readme-check.sh [README.md]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readme="${1:-$here/README.md}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"

work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-readme.XXXXXX")"
trap 'rm -rf "$work"' EXIT
git clone --quiet "$here" "$work/sluice"
clone="$work/sluice"
project="$work/project"   # where the next step's `sluice` commands run
mkdir -p "$project"
# pipelines' working folders of this check only
export SLUICE_DATA_DIR="$work/data"

# the fenced ```sh blocks of README.md, one command per line (comments and blank lines skipped)
mapfile -t commands < <(awk '
  /^```sh[[:space:]]*$/ { inblock = 1; next }
  /^```/ { inblock = 0; next }
  inblock && $0 !~ /^[[:space:]]*(#|$)/ { print }
' "$readme")
if [ "${#commands[@]}" -eq 0 ]; then
  echo "readme-check: no commands found in $readme" >&2
  exit 1
fi

failed=0
for cmd in "${commands[@]}"; do
  case "$cmd" in
    "bash scripts/test.sh"*) echo "== skip (README's test command, running now): $cmd"; continue ;;
  esac
  echo "== $cmd"
  log="$work/out.log"
  rc=0
  case "$cmd" in
    sluice\ *)
      # the next step: `sluice` as installed on PATH, in a folder of the user's own
      (cd "$project" && PATH="$CARGO_TARGET_DIR/release:$PATH" bash -c "$cmd") >"$log" 2>&1 || rc=$?
      ;;
    *)
      (cd "$clone" && bash -c "$cmd") >"$log" 2>&1 || rc=$?
      ;;
  esac
  tail -n 40 "$log"
  expect=0
  case "$cmd" in
    # nothing filled in yet: must say which value is missing
    "sluice run"*) expect=2 ;;
  esac
  if [ "$rc" -ne "$expect" ]; then
    echo "readme-check: \`$cmd\` exited with $rc (expected $expect)" >&2
    failed=1
  elif [ "$expect" -eq 2 ] && ! grep -q "configure me\|missing\|not set\|no value" "$log"; then
    echo "readme-check: \`$cmd\` failed without naming what is missing" >&2
    failed=1
  elif grep -q "^error" "$log" && [ "$expect" -eq 0 ]; then
    echo "readme-check: \`$cmd\` printed an error" >&2
    failed=1
  fi
done
if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "readme-check: every README command ran as written (${#commands[@]} commands)"
