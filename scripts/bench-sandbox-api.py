#!/usr/bin/env python3
"""Requests/s of the sandbox's Stripe API beside localstripe's, in the same run, and the memory
of a sandbox holding many objects.

    scripts/bench-sandbox-api.py                    # BIN=target/release/stripe-ops, create customer
    CALLS=customer,payment,checkout scripts/bench-sandbox-api.py    # each call in turn
    LOCALSTRIPE=/venv/bin/localstripe scripts/bench-sandbox-api.py   # localstripe beside it
    OBJECTS=100000 scripts/bench-sandbox-api.py --memory             # RSS after that many customers

Throughput: `wrk` (Debian's) POSTs each call of CALLS (default `customer`; a form body, as
Stripe's libraries send it) for DURATION seconds (default 10) with CONCURRENCY connections
(default 16), ROUNDS times (default 3), the servers taking turns so that a shared machine's noise
weighs on both alike. Prints each round's requests/s and the count of answers that were not 2xx
(a server that does not take a call answers non-2xx: its requests/s then mean nothing).
  customer   POST /v1/customers
  payment    POST /v1/payment_intents, confirmed at once with pm_card_visa (the intent, its
             charge, their events)
  checkout   POST /v1/checkout/sessions, payment mode, one line item with price_data

Memory: creates OBJECTS customers (default 100,000; each also makes its `customer.created`
event) over keep-alive connections, then reads the sandbox's VmRSS from /proc, beside its
VmRSS after its first call (the engine's data loaded).
"""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

BIN = os.environ.get("BIN", "target/release/stripe-ops")
LOCALSTRIPE = os.environ.get("LOCALSTRIPE", "")
DURATION = int(os.environ.get("DURATION", "10"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "16"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
OBJECTS = int(os.environ.get("OBJECTS", "100000"))
BODY = "email=bench%40example.com&name=Bench&metadata[order]=42"
CALLS = {
    "customer": ("create customer", "/v1/customers", BODY),
    "payment": ("create and confirm a payment intent", "/v1/payment_intents",
                "amount=2000&currency=usd&payment_method=pm_card_visa&confirm=true"
                "&automatic_payment_methods[enabled]=true"
                "&automatic_payment_methods[allow_redirects]=never"),
    "checkout": ("create a Checkout Session", "/v1/checkout/sessions",
                 "mode=payment&success_url=https%3A%2F%2Fexample.com%2Fdone"
                 "&line_items[0][quantity]=1&line_items[0][price_data][currency]=usd"
                 "&line_items[0][price_data][unit_amount]=2000"
                 "&line_items[0][price_data][product_data][name]=Bench"),
}


def start_sandbox():
    p = subprocess.Popen([BIN, "--json", "sandbox", "--listen", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    info = json.loads(p.stdout.readline())
    key = open(info["stripe_key_file"]).read().strip()
    return p, info["stripe_api"], key


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_localstripe(log):
    """localstripe on a free port, empty (`--from-scratch`: it otherwise loads the store it pickles
    to /tmp/localstripe.pickle after every write, as it also does here)."""
    port = free_port()
    p = subprocess.Popen([LOCALSTRIPE, "--port", str(port), "--from-scratch"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and p.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p, f"http://127.0.0.1:{port}", "sk_test_bench"
        except OSError:
            time.sleep(0.05)
    p.kill()
    log.seek(0)
    sys.exit(f"localstripe did not accept connections on port {port} within 30 s:\n{log.read()[-2000:]}")


def wrk(base, key, lua_dir, path, body):
    lua = os.path.join(lua_dir, "post.lua")
    with open(lua, "w") as f:
        f.write(f'wrk.method = "POST"\nwrk.body = "{body}"\n'
                'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                f'wrk.headers["Authorization"] = "Bearer {key}"\n')
    out = subprocess.run(["wrk", "-t", "2", "-c", str(CONCURRENCY), "-d", f"{DURATION}s", "-s", lua,
                          base + path], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, int(bad.group(1)) if bad else 0


def throughput():
    log = tempfile.TemporaryFile("w+")
    servers = [("sandbox", start_sandbox())]
    if LOCALSTRIPE:
        servers.append(("localstripe", start_localstripe(log)))
    try:
        with tempfile.TemporaryDirectory() as d:
            for call in os.environ.get("CALLS", "customer").split(","):
                what, path, body = CALLS[call]
                print(f"{what}: wrk {DURATION} s x {ROUNDS} rounds, {CONCURRENCY} connections, "
                      f"{os.cpu_count()} cores")
                results = {name: [] for name, _ in servers}
                for r in range(ROUNDS):
                    for name, (_, base, key) in servers:
                        rps, bad = wrk(base, key, d, path, body)
                        results[name].append(rps)
                        print(f"  round {r + 1} {name:<12} {rps:>9.0f} req/s  non-2xx {bad}")
                for name, rs in results.items():
                    print(f"{name:<12} {min(rs):.0f}-{max(rs):.0f} req/s")
    finally:
        for _, (p, _, _) in servers:
            p.terminate()
            p.wait()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def memory():
    p, base, key = start_sandbox()
    try:
        url = urllib.parse.urlsplit(base)
        first = http.client.HTTPConnection(url.hostname, url.port)
        first.request("GET", "/v1/customers?limit=1", headers={"Authorization": f"Bearer {key}"})
        first.getresponse().read()  # the engine's data is loaded by the first call at the latest
        before = rss_kib(p.pid)
        per_thread, threads = OBJECTS // 8, []

        def create(n):
            conn = http.client.HTTPConnection(url.hostname, url.port)
            headers = {"Authorization": f"Bearer {key}",
                       "Content-Type": "application/x-www-form-urlencoded"}
            for _ in range(n):
                conn.request("POST", "/v1/customers", BODY, headers)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    raise SystemExit(f"create customer answered {r.status}")

        started = time.monotonic()
        for i in range(8):
            n = per_thread + (OBJECTS % 8 if i == 0 else 0)
            threads.append(threading.Thread(target=create, args=(n,)))
            threads[-1].start()
        for t in threads:
            t.join()
        took = time.monotonic() - started
        after = rss_kib(p.pid)
        print(f"{OBJECTS} customers (and their customer.created events) in {took:.1f} s; "
              f"VmRSS {before / 1024:.1f} MiB at start, {after / 1024:.1f} MiB after "
              f"({(after - before) * 1024 / OBJECTS:.0f} bytes per customer)")
    finally:
        p.terminate()
        p.wait()


if __name__ == "__main__":
    memory() if "--memory" in sys.argv[1:] else throughput()
