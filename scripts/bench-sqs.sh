#!/usr/bin/env bash
# `fanout --from-sqs` against moto's SQS: events/s and end-to-end latency (sent to the queue →
# received by the target) for one relay and for three relays on one queue, in one run, then
# today's single-box relay (`cargo bench --bench fanout`) for comparison. Each relay process
# runs with its default --in-flight; the receiver answers 200 at once (stripe-python verifies
# each signature, so a wrong one would show as a failure count).
#   scripts/bench-sqs.sh                 # EVENTS=300 per run, RELAYS="1 3", BENCH=1
#   PREFILL=1 scripts/bench-sqs.sh       # the queue filled before the relays start: full batches
#                                        # of 10 (its latencies then count the wait in the queue)
# Also the relays' CPU per message (user + system, to the microsecond: receive, parse the envelope,
# re-sign, deliver, batch delete), to set beside a spool delivery's, and the SQS calls they made
# per message (moto's request log: every POST after the queue was made, less the sender's).
#   PERF=/tmp/sqs.data scripts/bench-sqs.sh   # perf record -g on the (first) relay meanwhile
#   SPOOL=0 scripts/bench-sqs.sh         # without the spool relay at the same pace (after the runs)
#   KEEPALIVE=1 scripts/bench-sqs.sh     # moto served by waitress (installed into the venv when
#                                        # missing), which keeps connections alive as SQS does
# Needs tests/run.sh's installs (the .venv, or $STRIPE_OPS_VENV, with moto and stripe) and a release build (built here
# when missing). moto is one Python process: its figures say what limits the relay against
# moto, nothing about AWS's SQS.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${BIN:-target/release/stripe-ops}"
EVENTS="${EVENTS:-300}"
RELAYS="${RELAYS:-1 3}"
BENCH="${BENCH:-1}"
VENV="${STRIPE_OPS_VENV:-.venv}"
WAITRESS_VERSION="3.0.2"
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "no $VENV: run tests/run.sh once" >&2; exit 2; }
[ -x "$BIN" ] || cargo build --release --locked

dir="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
if [ "${KEEPALIVE:-0}" = 1 ]; then
  # moto's app under waitress, which keeps connections alive as SQS's endpoints do: werkzeug,
  # under moto_server, answers every request with `Connection: close`, so that each call of the
  # relay then pays a connect and a close.
  "$PY" -c 'import waitress' 2>/dev/null ||
    "$VENV/bin/pip" install -q --disable-pip-version-check "waitress==$WAITRESS_VERSION"
  cat >"$dir/kept_alive.py" <<'EOF'
import sys, waitress
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
moto = DomainDispatcherApplication(create_backend_app)
def app(environ, start_response):  # a line per request, as moto_server logs them (calls counted)
    print(f'"{environ["REQUEST_METHOD"]} {environ["PATH_INFO"]} ', file=sys.stderr, flush=True)
    return moto(environ, start_response)
waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=4, _quiet=True)
EOF
  "$PY" "$dir/kept_alive.py" "$port" >"$dir/moto.log" 2>&1 &
else
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
fi
pids+=($!)
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
  AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
for _ in $(seq 100); do curl -fs "$AWS_ENDPOINT_URL/moto-api/" >/dev/null 2>&1 && break; sleep 0.1; done

secret="whsec_bench$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$secret" >"$dir/whsec"

# The receiver: verifies with stripe-python, appends "id arrival_time" per delivery.
cat >"$dir/receiver.py" <<'EOF'
import http.server, os, sys, time, stripe
secret, out = os.environ["SECRET"], open(os.environ["OUT"], "a")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept-alive, as a real app server keeps the relay's connections
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        now = time.time()
        try:
            e = stripe.Webhook.construct_event(body.decode(), self.headers.get("Stripe-Signature"), secret)
            out.write(f"{e['id']} {now}\n"); out.flush(); status = 200
        except Exception:
            out.write(f"BAD {now}\n"); out.flush(); status = 400
        self.send_response(status); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOF

# The sender and the judge: EventBridge envelopes of a 4 KB checkout.session.completed.
cat >"$dir/sqs.py" <<'EOF'
import boto3, json, sys, time
sqs = boto3.client("sqs")
op = sys.argv[1]
if op == "queue":
    name = sys.argv[2]
    dlq = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    print(sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": arn, "maxReceiveCount": "10"})})["QueueUrl"])
elif op == "send":
    queue, n, out, prefix = sys.argv[2], int(sys.argv[3]), open(sys.argv[4], "w"), sys.argv[5]
    pad = "x" * 3000
    began = time.time()
    for i in range(0, n, 10):
        entries = []
        for j in range(i, min(n, i + 10)):
            detail = {"id": f"evt_{prefix}{j:06d}", "object": "event", "type": "checkout.session.completed",
                      "api_version": "2026-11-18.endive", "created": int(time.time()), "livemode": False,
                      "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
                      "data": {"object": {"id": f"cs_test_{j}", "object": "checkout.session", "metadata": {"pad": pad}}}}
            entries.append({"Id": str(j - i), "MessageBody": json.dumps({"version": "0", "id": str(j),
                "detail-type": detail["type"], "source": "aws.partner/stripe.com/ed_test_bench",
                "account": "123456789012", "time": "2026-12-02T00:00:00Z", "region": "us-east-1",
                "resources": [], "detail": detail})})
        now = time.time()
        sqs.send_message_batch(QueueUrl=queue, Entries=entries)
        for e in entries:
            out.write(f"evt_{prefix}{int(e['Id']) + i:06d} {now}\n")
    out.close()
    print(f"sent {n} in {time.time() - began:.2f} s ({n / (time.time() - began):.0f}/s)", end="; ")
elif op == "judge":
    sent = dict(l.split() for l in open(sys.argv[2]))
    got, bad, dup = {}, 0, 0
    for l in open(sys.argv[3]):
        k, t = l.split()
        if k == "BAD":
            bad += 1
        elif k in got:
            dup += 1
        elif k in sent:
            got[k] = float(t)
    lat = sorted(got[k] - float(sent[k]) for k in got)
    first, last = min(float(v) for v in sent.values()), max(got.values())
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    print(f"{len(got)}/{len(sent)} delivered ({dup} duplicates), {bad} bad signatures, {len(got) / (last - first):.1f} events/s, "
          f"latency p50 {pct(0.5):.0f} ms p99 {pct(0.99):.0f} ms max {lat[-1] * 1000:.0f} ms")
EOF

# The user + system CPU, in microseconds, of the children this shell had reaped when it wrote
# the file $1 with `times` (its second line, to the millisecond). `times` runs in the script's
# own shell: a subshell's (a pipe's, a $(...)'s) has reaped none.
reaped_us() {
  awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%d\n", ((u[1] + s[1]) * 60 + u[2] + s[2]) * 1000000 }' "$1"
}

# Sets `us` to the CPU the relays PID... used after they had used TICKS0 clock ticks in all
# (/proc's ticks are 10 ms, a tenth of a 1,000-message run): what they used until now, as this
# shell sees once it has reaped them (`reaped_us`). Killed outright: their stop is not a
# message's cost. Call it in the script's own shell, not in a $(...).
kill_and_measure() {
  local ticks0="$1"
  shift
  times >"$dir/times0"
  for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  times >"$dir/times1"
  us=$(($(reaped_us "$dir/times1") - $(reaped_us "$dir/times0") - ticks0 * 1000000 / $(getconf CLK_TCK)))
}

SECRET="$secret" OUT="$dir/received" "$PY" "$dir/receiver.py" >"$dir/receiver.port" &
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/receiver.port" ] && break; sleep 0.1; done
target="http://127.0.0.1:$(head -1 "$dir/receiver.port")/hook"

for relays in $RELAYS; do
  queue="$("$PY" "$dir/sqs.py" queue "bench-$relays")"
  : >"$dir/received"
  [ "${PREFILL:-0}" = 1 ] && "$PY" "$dir/sqs.py" send "$queue" "$EVENTS" "$dir/sent-$relays" "r${relays}_"
  posts0="$(grep -c '"POST / ' "$dir/moto.log" || true)"
  relay_pids=()
  for r in $(seq "$relays"); do
    "$BIN" --quiet fanout --listen 127.0.0.1:0 --from-sqs "$queue" --target "r=$target" \
      --target-secret-file "r=$dir/whsec" >/dev/null 2>"$dir/relay-$relays-$r.log" &
    relay_pids+=($!); pids+=($!)
  done
  perf_pid=
  if [ -n "${PERF:-}" ]; then
    # Once the runtime's worker threads exist: `-p` samples the threads there are when it attaches.
    sleep 0.3
    perf record -g -o "$PERF" -p "${relay_pids[0]}" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  # CPU from here on: the relays' start-up (reading the queue's attributes, the SDK's set-up)
  # is not a message's cost; a second to settle, then their counters (with PREFILL the
  # start-up is counted: the relays work from their first moment).
  ticks0=0
  if [ "${PREFILL:-0}" != 1 ]; then
    sleep 1
    for p in "${relay_pids[@]}"; do ticks0=$((ticks0 + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  fi
  printf '%s relay(s): ' "$relays"
  [ "${PREFILL:-0}" = 1 ] || "$PY" "$dir/sqs.py" send "$queue" "$EVENTS" "$dir/sent-$relays" "r${relays}_"
  for _ in $(seq 1200); do
    # Distinct ids: SQS delivers at least once, so a duplicate must not end the wait early.
    [ "$(grep "^evt_r${relays}_" "$dir/received" | cut -d' ' -f1 | sort -u | wc -l)" -ge "$EVENTS" ] && break
    sleep 0.5
  done
  "$PY" "$dir/sqs.py" judge "$dir/sent-$relays" "$dir/received" | tee "$dir/judged-$relays"
  posts=$(($(grep -c '"POST / ' "$dir/moto.log" || true) - posts0))
  [ "${PREFILL:-0}" = 1 ] || posts=$((posts - (EVENTS + 9) / 10))
  [ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; }
  kill_and_measure "$ticks0" "${relay_pids[@]}"
  echo "  relay CPU (user + system, all $relays): $((us / EVENTS)) us per message (idle long polls included)"
  echo "  SQS calls by the relays (receive, delete, other): $posts, $((posts * 100 / EVENTS)) per 100 messages"
done

# The spool relay beside it: `fanout --listen` with its fsync'd spool and the same target,
# `events send` (a 200 needs a signature it verifies) at the pace the first SQS run delivered,
# so that each relay wakes for about one event at a time, as against moto: its CPU per event
# is what a message is set beside. EVENTS checkout.session.completed events (about 3 KB, the
# messages' details about 4 KB).
if [ "${SPOOL:-1}" = 1 ]; then
  pace="$(grep -o '[0-9.]* events/s' "$dir/judged-${RELAYS%% *}" | cut -d' ' -f1)"
  printf 'whsec_in%s\n' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >"$dir/incoming"
  : >"$dir/received"
  "$BIN" --json fanout --listen 127.0.0.1:0 --spool "$dir/spool" --verify-secret-file "$dir/incoming" \
    --target "r=$target" --target-secret-file "r=$dir/whsec" >"$dir/spool.out" 2>"$dir/spool.log" &
  spool_pid=$!
  pids+=("$spool_pid")
  for _ in $(seq 100); do [ -s "$dir/spool.out" ] && break; sleep 0.1; done
  hook="$(head -n1 "$dir/spool.out" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["webhook"])')"
  sleep 1
  ticks0="$(awk '{print $14 + $15}' "/proc/$spool_pid/stat")"
  "$BIN" --json --no-progress events send checkout.session.completed --to "$hook" \
    --secret-file "$dir/incoming" --count "$EVENTS" --rate "$pace" >/dev/null
  kill_and_measure "$ticks0" "$spool_pid"
  echo "spool relay at the same pace ($pace events/s, $(grep -c . "$dir/received") delivered): $((us / EVENTS)) us per event"
fi

if [ "$BENCH" = 1 ]; then
  echo "single-box relay (cargo bench --bench fanout):"
  cargo bench --locked --bench fanout 2>&1 | grep -E "^==|relay|loop" || true
fi
