#!/usr/bin/env bash
# Issue 34's scenario, timed: `enable --env staging` against moto_server behind the tests' ECS
# proxy (tests/it/ecs_proxy.py: ECS without the deployment circuit breaker; the new
# deployment's tasks stop with ResourceInitializationError, the execution role unable to read
# the webhook secret, a new task every 3 s, for ever), with the default wait (15 minutes) and
# polling. Prints, per binary and run, the seconds from the first task's stop to the exit, or
# that it was still waiting after LIMIT seconds (then it is killed).
#   scripts/bench-fail-fast.sh                              # RUNS=3, LIMIT=150, BIN=target/release/stripe-ops
#   BIN_BEFORE=/tmp/old-stripe-ops scripts/bench-fail-fast.sh   # the same runs with another build first
# Needs the Python venv tests/run.sh makes (moto[server], boto3): $STRIPE_OPS_VENV, else .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

export BIN="${BIN:-target/release/stripe-ops}" RUNS="${RUNS:-3}" LIMIT="${LIMIT:-150}"
export VENV="${STRIPE_OPS_VENV:-.venv}"
[ -x "$BIN" ] || cargo build --release --locked
[ -x "$VENV/bin/moto_server" ] || { echo "no moto_server in $VENV: run tests/run.sh once" >&2; exit 2; }

exec "$VENV/bin/python" - <<'PY'
import json, os, subprocess, tempfile, threading, time, urllib.request

venv, limit, runs = os.environ["VENV"], float(os.environ["LIMIT"]), int(os.environ["RUNS"])
bins = [b for b in (os.environ.get("BIN_BEFORE"), os.environ["BIN"]) if b]
aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
os.environ.update(aws)


def announced(cmd, env, marker=None):
    """Starts cmd; returns it and the word it announces (stdout's first line, or after marker on stderr)."""
    if marker is None:
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        return p, p.stdout.readline().strip()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while True:
        line = p.stderr.readline()
        if not line:
            raise SystemExit(f"{cmd[0]} exited before it announced itself")
        if marker in line:
            threading.Thread(target=p.stderr.read, daemon=True).start()
            return p, line.split(marker, 1)[1].split()[0]


def one(binary, wh):
    moto, url = announced([f"{venv}/bin/moto_server", "-H", "127.0.0.1", "-p", "0"],
                          dict(os.environ), "Running on ")
    procs = [moto]
    try:
        env = dict(os.environ, AWS_ENDPOINT_URL=url)
        import boto3
        s = lambda svc: boto3.client(svc, endpoint_url=url, region_name="us-east-1")
        p = "proofwork-staging"
        s("ecs").create_cluster(clusterName=f"{p}-cluster")
        s("ecs").register_task_definition(
            family=f"{p}-api", cpu="256", memory="1024", networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"], executionRoleArn="arn:aws:iam::123456789012:role/exec",
            containerDefinitions=[{"name": "api", "image": "app:1", "memory": 512, "essential": True,
                                   "environment": [{"name": "PUBLIC_BASE_URL", "value": "http://127.0.0.1:9"}]}])
        s("ecs").create_service(cluster=f"{p}-cluster", serviceName=f"{p}-api",
                                taskDefinition=f"{p}-api:1", desiredCount=1)
        s("secretsmanager").create_secret(Name=f"{p}/STRIPE_SECRET_KEY", SecretString="sk_test_" + "b" * 24)
        denied = s("secretsmanager").create_secret(Name=f"{p}/STRIPE_WEBHOOK_SECRET",
                                                   SecretString="whsec_" + "a" * 32)["ARN"]
        proxy, port = announced([f"{venv}/bin/python", "tests/it/ecs_proxy.py"],
                                dict(env, UPSTREAM=url, SCENARIO="secrets_denied", DENIED_SECRET_ARN=denied,
                                     TASK_INTERVAL="3", TASK_LIFETIME="1"))
        procs.append(proxy)
        run_env = dict(env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", NO_COLOR="1")
        run_env.pop("CI", None)
        run_env.pop("STRIPE_OPS_ECS_POLL", None)
        cmd = [binary, "enable", "--env", "staging", "--stripe-webhook-secret-file", wh, "--skip-smoke"]
        started = time.time()
        run = subprocess.Popen(cmd, env=run_env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            code, ended = run.wait(timeout=limit), time.time()
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
            code, ended = None, None
        state = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/__proxy/state"))
        first = state["first_stop"]
        if code is None:
            return f"still waiting after {limit:.0f} s (first stop {first - started:.1f} s after the start): killed"
        return f"exit {code} {ended - first:.1f} s after the first stop ({ended - started:.1f} s in all)"
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait()


with tempfile.TemporaryDirectory() as d:
    wh = os.path.join(d, "wh")
    with open(wh, "w") as f:
        f.write("whsec_" + "n" * 32)
    print(f"{runs} runs per binary, {os.cpu_count()} cores, wait limit {limit:.0f} s", flush=True)
    for binary in bins:
        for i in range(runs):
            print(f"{binary}: run {i + 1}: {one(binary, wh)}", flush=True)
PY
