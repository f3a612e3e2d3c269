#!/usr/bin/env bash
# Load-mode benchmark: a sandbox on loopback, then `stripe-ops events send --count` (every request
# a distinct, freshly signed event) and `oha` (a plain HTTP load generator, no signing) against
# the same webhook URL, in the same run. Prints both throughputs and latency percentiles.
#   scripts/bench-load.sh                  # COUNT=200000 CONCURRENCY=64 TYPE=customer.created
# Needs a release build (built here when missing) and `oha` (`cargo install oha --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${BIN:-target/release/stripe-ops}"
COUNT="${COUNT:-200000}"
CONCURRENCY="${CONCURRENCY:-64}"
TYPE="${TYPE:-customer.created}"
OHA="${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}"

[ -x "$BIN" ] || cargo build --release --locked
[ -x "$OHA" ] || { echo "oha not found: cargo install oha --locked" >&2; exit 2; }

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
url="$app/api/webhooks/stripe"
echo "sandbox $app (pid $sandbox_pid); $COUNT requests, concurrency $CONCURRENCY, $(nproc) cores"

send() {
  "$BIN" --json --no-progress events send "$TYPE" --to "$url" --secret-file "$dir/whsec" \
    --count "$1" --concurrency "$CONCURRENCY"
}
send 20000 >/dev/null # warm-up: connections, allocator, the sandbox's first requests

# The same body oha sends, unsigned: the sandbox refuses it (400) after reading it.
"$BIN" events sign "$TYPE" --secret-file "$dir/whsec" --out-body "$dir/body.json" >/dev/null

send "$COUNT" >"$dir/load.json" || true
"$OHA" --no-tui --output-format json -n "$COUNT" -c "$CONCURRENCY" -m POST \
  -H 'Content-Type: application/json' -D "$dir/body.json" "$url" >"$dir/oha.json"

python3 - "$dir/load.json" "$dir/oha.json" <<'PY'
import json, sys
load, oha = (json.load(open(p)) for p in sys.argv[1:3])
lat = load["latency_ms"]
print(f"stripe-ops (signed):   {load['requests_per_s']:>9.0f} req/s  statuses {load['statuses']}  errors {load['errors']}"
      f"  p50 {lat['p50']:.2f} ms  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  max {lat['max']:.2f}")
s, p = oha["summary"], oha["latencyPercentiles"]
ms = lambda v: (v or 0) * 1000
print(f"oha (unsigned):        {s['requestsPerSec']:>9.0f} req/s  statuses {oha['statusCodeDistribution']}"
      f"  p50 {ms(p['p50']):.2f} ms  p90 {ms(p['p90']):.2f}  p99 {ms(p['p99']):.2f}  max {ms(s['slowest']):.2f}")
print(f"ratio oha / stripe-ops: {s['requestsPerSec'] / load['requests_per_s']:.2f}")
PY
