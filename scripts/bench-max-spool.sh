#!/usr/bin/env bash
# `fanout --max-spool` where it matters: the spool on a small filesystem (a 24 MiB tmpfs), one
# target that answers at once and one that takes connections and never answers, and
# `stripe-ops events send` sending EVENTS checkout.session.completed events carrying Stripe's
# most metadata (50 keys of 500 characters: about 31 KB each). Without a limit the silent
# target's events fill the filesystem and every later event is refused (503), to every target;
# with one, the silent target gives up its oldest events and every event is taken. Prints, per
# case, what the sender was answered, what the fast target got, and the relay's /status.
#   scripts/bench-max-spool.sh                  # CASES="none 16MiB" EVENTS=1500 SIZE=24m
# Mounts a tmpfs: runs as root, else inside `unshare --user --map-root-user --mount`. Needs a
# release build (built here when missing) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ] && [ -z "${IN_NAMESPACE:-}" ]; then
  exec env IN_NAMESPACE=1 unshare --user --map-root-user --mount "$0" "$@"
fi

BIN="${BIN:-target/release/stripe-ops}"
EVENTS="${EVENTS:-1500}"
SIZE="${SIZE:-24m}"
read -r -a cases <<<"${CASES:-none 16MiB}"
[ -x "$BIN" ] || cargo build --release --locked

dir="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  umount "$dir/disk" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/fast.py" <<'PY'
import http.server, sys
count = 0
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers["Content-Length"]))
        count += 1
        open(sys.argv[1], "w").write(str(count))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
cat >"$dir/silent.py" <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(128)
print(s.getsockname()[1], flush=True)
held = []
while True:
    held.append(s.accept()[0])
PY

# Waits until the first line of file $1 is a JSON document; prints field $2 of it.
field() {
  for _ in $(seq 200); do
    head -n1 "$1" 2>/dev/null | python3 -c "import json, sys; print(json.load(sys.stdin)['$2'])" 2>/dev/null && return
    sleep 0.05
  done
  echo "no JSON line in $1" >&2
  exit 3
}
port() {
  for _ in $(seq 200); do [ -s "$1" ] && { head -n1 "$1"; return; }; sleep 0.05; done
  echo "no port in $1" >&2
  exit 3
}

metadata="$(python3 -c 'import json; print(json.dumps({f"k{k}": "m" * 500 for k in range(50)}))')"
printf 'whsec_bench%s' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >"$dir/whsec"
echo "$EVENTS events of about 31 KB, a $SIZE filesystem, $(nproc) cores"
for case in "${cases[@]}"; do
  mkdir -p "$dir/disk"
  mount -t tmpfs -o "size=$SIZE" tmpfs "$dir/disk"
  rm -f "$dir"/*.port "$dir/fast.count" "$dir/relay.out"
  python3 -u "$dir/fast.py" "$dir/fast.count" >"$dir/fast.port" &
  pids+=($!)
  python3 -u "$dir/silent.py" >"$dir/silent.port" &
  pids+=($!)
  limit=()
  [ "$case" = none ] || limit=(--max-spool "$case")
  "$BIN" --json fanout --listen 127.0.0.1:0 --spool "$dir/disk/spool" --timeout 1h \
    --target "fast=http://127.0.0.1:$(port "$dir/fast.port")/hook" \
    --target "silent=http://127.0.0.1:$(port "$dir/silent.port")/hook" \
    "${limit[@]}" >"$dir/relay.out" 2>"$dir/relay.err" &
  pids+=($!)
  webhook="$(field "$dir/relay.out" webhook)"
  status="$(field "$dir/relay.out" status)"
  "$BIN" --json --no-progress events send checkout.session.completed --to "$webhook" \
    --secret-file "$dir/whsec" --set "data.object.metadata=$metadata" --count "$EVENTS" \
    --concurrency 4 >"$dir/send.json" || true
  echo "== --max-spool $case"
  python3 - "$dir/send.json" "$dir/fast.count" "$status" <<'PY'
import json, sys, time, urllib.request
sent = json.load(open(sys.argv[1]))
print(f"sender: {sent['sent']} sent at {sent['requests_per_s']:.0f}/s, answered {sent['statuses']}")
deadline = time.monotonic() + 30
while True:
    status = json.load(urllib.request.urlopen(sys.argv[3]))
    targets = {t["name"]: t for t in status["targets"]}
    if targets["fast"]["pending"] == 0 or time.monotonic() > deadline:
        break
    time.sleep(0.1)
got = open(sys.argv[2]).read() if __import__("os").path.exists(sys.argv[2]) else "0"
print(f"fast target: received {got}, delivered {targets['fast']['delivered']}; "
      f"silent target: gave up {targets['silent']['gave_up']}, pending {targets['silent']['pending']}; "
      f"relay: refused_not_spooled {status['refused_not_spooled']}, spool segments {status['spool']['segments']}")
PY
  echo "filesystem: $(df -h "$dir/disk" | awk 'NR == 2 {print $3 " used of " $2}'), $(find "$dir/disk/spool/events" -name '*.log' | wc -l) segment files"
  grep -m1 "NOT SPOOLED" "$dir/relay.err" | cut -c1-160 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  umount "$dir/disk"
done
