#!/usr/bin/env python3
"""How fast `stripe-ops sandbox` starts, and what its first Stripe API call costs (the resource
engine loads its embedded data on first use, not at start).

    scripts/bench-sandbox-start.py                      # BIN=target/release/stripe-ops, RUNS=20
    BIN_BEFORE=/tmp/old-stripe-ops scripts/bench-sandbox-start.py   # the same runs with another build

For each run: the time from spawning the process to its start line (both listeners accept
connections then), and the time of the first `GET /v1/customers`, then of a second one (an
answer either way: a build without the engine answers 405). Prints
the median and the range of each, per build, in the same run so that a shared machine's noise
weighs on both alike.
"""
import json
import os
import signal
import statistics
import subprocess
import time
import urllib.error
import urllib.request

RUNS = int(os.environ.get("RUNS", "20"))


def once(binary):
    started = time.perf_counter()
    p = subprocess.Popen([binary, "--json", "sandbox", "--listen", "127.0.0.1:0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        info = json.loads(p.stdout.readline())
        ready = time.perf_counter() - started
        key = open(info["stripe_key_file"]).read().strip()
        calls = []
        for _ in range(2):
            t = time.perf_counter()
            req = urllib.request.Request(info["stripe_api"] + "/v1/customers", headers={"Authorization": "Bearer " + key})
            try:
                urllib.request.urlopen(req).read()
            except urllib.error.HTTPError as e:  # an older build may not list customers (405)
                e.read()
            calls.append(time.perf_counter() - t)
        return ready, calls[0], calls[1]
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait()


def summary(label, values):
    ms = sorted(v * 1000 for v in values)
    return f"{label} median {statistics.median(ms):.1f} ms (range {ms[0]:.1f}-{ms[-1]:.1f})"


def main():
    builds = [("after", os.environ.get("BIN", "target/release/stripe-ops"))]
    if os.environ.get("BIN_BEFORE"):
        builds.insert(0, ("before", os.environ["BIN_BEFORE"]))
    results = {name: [] for name, _ in builds}
    for _ in range(RUNS):  # interleaved, so that both builds see the same machine
        for name, binary in builds:
            results[name].append(once(binary))
    for name, binary in builds:
        r = results[name]
        print(f"{name} ({binary}, {RUNS} runs): " + "; ".join([
            summary("start line", [x[0] for x in r]),
            summary("first API call", [x[1] for x in r]),
            summary("second API call", [x[2] for x in r]),
        ]))


if __name__ == "__main__":
    main()
