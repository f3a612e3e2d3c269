#!/usr/bin/env bash
# Wall time of `smoke` and `check` against a sandbox on loopback, as repeated runs (hyperfine).
#   scripts/bench-smoke-check.sh              # RUNS=10; BIN=target/release/stripe-ops
#   BIN_BEFORE=/tmp/old-stripe-ops scripts/bench-smoke-check.sh   # also the same runs with another build
# Needs a release build (built here when missing) and hyperfine (`apt-get install hyperfine`).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${BIN:-target/release/stripe-ops}"
RUNS="${RUNS:-10}"
[ -x "$BIN" ] || cargo build --release --locked
command -v hyperfine >/dev/null || { echo "hyperfine not found: apt-get install hyperfine" >&2; exit 2; }

dir="$(mktemp -d)"
sandbox_pid=""
cleanup() {
  [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

printf 'whsec_bench%s' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >"$dir/whsec"
"$BIN" --json sandbox --listen 127.0.0.1:0 --webhook-secret-file "$dir/whsec" \
  >"$dir/sandbox.out" 2>"$dir/sandbox.err" &
sandbox_pid=$!
for _ in $(seq 200); do [ -s "$dir/sandbox.out" ] && break; sleep 0.05; done
app="$(head -n1 "$dir/sandbox.out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["app"])')"
echo "sandbox $app; $RUNS runs each, $(nproc) cores"

cmds=()
for bin in ${BIN_BEFORE:+"$BIN_BEFORE"} "$BIN"; do
  cmds+=("$bin --quiet smoke --base-url $app --webhook-secret-file $dir/whsec")
  cmds+=("$bin --quiet check --base-url $app --secret-file $dir/whsec")
done
hyperfine --warmup 1 --runs "$RUNS" --export-json "$dir/hf.json" "${cmds[@]}" >&2
python3 - "$dir/hf.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(f'{r["median"]*1000:8.0f} ms median  {r["min"]*1000:8.0f} ms min  {r["command"].split(" --base-url")[0]}')
PY
