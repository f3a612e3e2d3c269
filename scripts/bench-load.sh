#!/usr/bin/env bash
# Load-mode benchmark: a sandbox on loopback, then `stripe-ops events send --count` (every request
# a distinct, freshly signed event in Stripe's wire format) and a plain HTTP load generator (no
# signing: `oha` when installed, else Debian's `wrk`) against the same webhook URL, in the same
# run. Prints both throughputs and latency percentiles.
#   scripts/bench-load.sh                  # COUNT=200000 CONCURRENCY=64 TYPE=customer.created
#   SIGNED=1 scripts/bench-load.sh         # the generator sends one signed event, again and again:
#                                          # the sandbox then verifies every request of both
#                                          # (unsigned, it refuses the generator's before any HMAC)
# Needs a release build (built here when missing) and `oha` (`cargo install oha --locked`) or
# `wrk` (`apt-get install wrk`); GEN=wrk picks wrk even when oha is there.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${BIN:-target/release/stripe-ops}"
COUNT="${COUNT:-200000}"
CONCURRENCY="${CONCURRENCY:-64}"
TYPE="${TYPE:-customer.created}"
OHA="${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}"
GEN="${GEN:-$([ -x "$OHA" ] && echo oha || echo wrk)}"

[ -x "$BIN" ] || cargo build --release --locked
case "$GEN" in
  oha) [ -x "$OHA" ] || { echo "oha not found: cargo install oha --locked" >&2; exit 2; } ;;
  wrk) command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 2; } ;;
  *) echo "GEN must be oha or wrk" >&2; exit 2 ;;
esac

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

# The same body the generator sends, unsigned: the sandbox refuses it (400) after reading it.
# With SIGNED=1 it carries a valid signature (good for the tolerance's 300 s): the sandbox
# verifies it and answers 200 to each copy, as it does for stripe-ops' distinct events.
"$BIN" events sign "$TYPE" --secret-file "$dir/whsec" --out-body "$dir/body.json" \
  --out-header "$dir/header.txt" >/dev/null
signature=""
kind="unsigned"
if [ "${SIGNED:-0}" = 1 ]; then
  signature="$(cat "$dir/header.txt")"
  kind="one signed event"
fi

# CPU (user + system) of each client and of the sandbox during each phase, from /proc: on a
# machine where client and server share the cores, the client's CPU per request is what it takes
# from the server.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz="$(getconf CLK_TCK)"
s0="$(ticks "$sandbox_pid")"
/usr/bin/time -f '%U %S' -o "$dir/load.cpu" "$BIN" --json --no-progress events send "$TYPE" \
  --to "$url" --secret-file "$dir/whsec" --count "$COUNT" --concurrency "$CONCURRENCY" \
  >"$dir/load.json" || true
s1="$(ticks "$sandbox_pid")"
if [ "$GEN" = oha ]; then
  /usr/bin/time -f '%U %S' -o "$dir/gen.cpu" "$OHA" --no-tui --output-format json -n "$COUNT" -c "$CONCURRENCY" -m POST \
    -H 'Content-Type: application/json; charset=utf-8' ${signature:+-H "Stripe-Signature: $signature"} \
    -D "$dir/body.json" "$url" \
    | python3 -c 'import json, sys; o = json.load(sys.stdin); s, p = o["summary"], o["latencyPercentiles"]
print(json.dumps({"rps": s["requestsPerSec"], "secs": s["total"], "p50": p["p50"] * 1e3, "p90": p["p90"] * 1e3,
  "p99": p["p99"] * 1e3, "max": s["slowest"] * 1e3, "statuses": o["statusCodeDistribution"]}))' >"$dir/gen.json"
else
  # wrk runs for a time, not a count: as long as stripe-ops took, at least 5 s.
  secs="$(python3 -c 'import json, sys; print(max(5, round(json.load(open(sys.argv[1]))["elapsed_s"])))' "$dir/load.json")"
  cat >"$dir/post.lua" <<LUA
wrk.method = "POST"
local f = io.open("$dir/body.json", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json; charset=utf-8"
if "$signature" ~= "" then wrk.headers["Stripe-Signature"] = "$signature" end
done = function(s, l)
  io.write(string.format('{"rps": %f, "secs": %f, "p50": %f, "p90": %f, "p99": %f, "max": %f, "statuses": {"non-2xx or 3xx": %d}}\\n',
    s.requests / (s.duration / 1e6), s.duration / 1e6, l:percentile(50) / 1e3, l:percentile(90) / 1e3,
    l:percentile(99) / 1e3, l.max / 1e3, s.errors.status))
end
LUA
  /usr/bin/time -f '%U %S' -o "$dir/gen.cpu" wrk -t "$(nproc)" -c "$CONCURRENCY" -d "${secs}s" -s "$dir/post.lua" "$url" | tail -n1 >"$dir/gen.json"
fi

s2="$(ticks "$sandbox_pid")"

python3 - "$dir/load.json" "$dir/gen.json" "$GEN" "$kind" "$dir/load.cpu" "$dir/gen.cpu" \
  "$((s1 - s0))" "$((s2 - s1))" "$hz" <<'PY'
import json, sys
load, gen = (json.load(open(p)) for p in sys.argv[1:3])
name, kind = sys.argv[3], sys.argv[4]
cpu = [sum(map(float, open(p).read().split()[-2:])) for p in sys.argv[5:7]]
server = [int(t) / int(sys.argv[9]) for t in sys.argv[7:9]]
lat = load["latency_ms"]
print(f"stripe-ops (signed):   {load['requests_per_s']:>9.0f} req/s  statuses {load['statuses']}  errors {load['errors']}"
      f"  p50 {lat['p50']:.2f} ms  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  max {lat['max']:.2f}")
print(f"{name + ' (' + kind + '):':<22} {gen['rps']:>9.0f} req/s  statuses {gen['statuses']}"
      f"  p50 {gen['p50']:.2f} ms  p90 {gen['p90']:.2f}  p99 {gen['p99']:.2f}  max {gen['max']:.2f}")
gen_requests = gen["rps"] * gen["secs"]
us = lambda secs, n: secs / max(n, 1) * 1e6
print(f"CPU per request (user + system), client / sandbox: stripe-ops {us(cpu[0], load['sent']):.1f} / "
      f"{us(server[0], load['sent']):.1f} us, {name} {us(cpu[1], gen_requests):.1f} / {us(server[1], gen_requests):.1f} us")
print(f"ratio {name} / stripe-ops: {gen['rps'] / load['requests_per_s']:.2f}")
PY
