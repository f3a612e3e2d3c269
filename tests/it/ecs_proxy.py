"""ECS as it behaves for a service without the deployment circuit breaker, in front of moto_server.

moto implements ECS's API but starts no task: its deployments never have tasks that stop. This
proxy forwards every AWS call to moto (UPSTREAM) and plays the part moto lacks for the one
service of the test: deployments with tasks, as DescribeServices, ListTasks and DescribeTasks
show them (field names and shapes of the ECS API reference).

- The first FAILING_DEPLOYMENTS deployments that UpdateService starts play SCENARIO; the others
  (a rollback) are healthy: one task per desired count, PENDING for PENDING_SECONDS, then
  RUNNING, the deployment COMPLETED and the older ones drained.
- A failing deployment starts a task every TASK_INTERVAL seconds, for ever, each stopping
  TASK_LIFETIME seconds after it started, with the scenario's stoppedReason, stopCode and
  containers; its failedTasks climbs, its rolloutState stays IN_PROGRESS, and the deployment
  before it keeps running (ECS without the circuit breaker). SCENARIO `healthy` with a long
  PENDING_SECONDS is a slow deployment that completes.
- `exit1` and `oom` tasks reach RUNNING and write log lines to moto's CloudWatch Logs, in the
  stream the awslogs driver would use (LOG_GROUP, LOG_PREFIX/api/<task id>).
- GET /__proxy/state answers {"first_stop": <unix seconds of the first stop of a failing task>}.

Prints its port, then serves until killed.
"""
import json
import os
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

UPSTREAM = os.environ["UPSTREAM"].rstrip("/")
SCENARIO = os.environ.get("SCENARIO", "secrets_denied")
FAILING = int(os.environ.get("FAILING_DEPLOYMENTS", "1"))
INTERVAL = float(os.environ.get("TASK_INTERVAL", "3"))
LIFETIME = float(os.environ.get("TASK_LIFETIME", "1"))
PENDING = float(os.environ.get("PENDING_SECONDS", "1"))
DENIED = os.environ.get("DENIED_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf")
LOG_GROUP = os.environ.get("LOG_GROUP", "")
LOG_PREFIX = os.environ.get("LOG_PREFIX", "ecs")
ECS = "AmazonEC2ContainerServiceV20141113."
ACCOUNT = "123456789012"

REASONS = {
    "secrets_denied": {
        "stopCode": "TaskFailedToStart",
        "stoppedReason": "ResourceInitializationError: unable to pull secrets or registry auth: "
        "execution resource retrieval failed: unable to retrieve secret from asm: service call has "
        "been retried 1 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/"
        "exec/0f9c2b1e8d7a4c3b is not authorized to perform: secretsmanager:GetSecretValue on "
        f"resource: {DENIED} because no identity-based policy allows the "
        "secretsmanager:GetSecretValue action status code: 400, request id: "
        "5d0bd7e7-0d8c-4c4b-9c3c-0d6d1c0e8a11",
        "container": {},
        "runs": False,
    },
    "image_pull": {
        "stopCode": "TaskFailedToStart",
        "stoppedReason": "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
        "failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:2: "
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:2: not found",
        "container": {},
        "runs": False,
    },
    "oom": {
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "container": {"exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"},
        "runs": True,
        "logs": ["starting api", "loading the catalogue into memory"],
    },
    "exit1": {
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "container": {"exitCode": 1},
        "runs": True,
        "logs": ["starting api", "Error: STRIPE_WEBHOOK_SECRET does not look like whsec_...", "exiting with code 1"],
    },
}

lock = threading.Lock()
state = {"deployments": [], "forced": 0, "first_stop": None, "streams": set(), "events": []}
logs = boto3.client("logs", endpoint_url=UPSTREAM)


def arn(kind, rest):
    return f"arn:aws:ecs:us-east-1:{ACCOUNT}:{kind}/{rest}"


def deployment(dep_id, td, desired, scenario, created):
    return {"id": dep_id, "td": td, "desired": desired, "scenario": scenario,
            "created": created, "status": "PRIMARY", "completed": None}


def failing(d):
    return d["scenario"] in REASONS


def tasks_of(d, now, cluster):
    """The tasks of deployment d at `now`, newest first."""
    out = []
    if failing(d):
        k = 0
        while True:
            created = d["created"] + 0.3 + k * INTERVAL
            if created > now:
                break
            task_id = f"{d['id'].rsplit('/', 1)[1][:12]}{k:04d}"
            stopped_at = created + LIFETIME
            out.append({"id": task_id, "created": created, "stopped": stopped_at if stopped_at <= now else None,
                        "running": REASONS[d["scenario"]]["runs"]})
            if stopped_at <= now and state["first_stop"] is None:
                state["first_stop"] = stopped_at
            k += 1
    else:
        for k in range(d["desired"]):
            created = d["created"] + 0.2
            if created > now:
                continue
            out.append({"id": f"{d['id'].rsplit('/', 1)[1][:12]}h{k:03d}", "created": created, "stopped": None,
                        "running": now >= created + PENDING})
    for t in out:
        t["arn"] = arn("task", f"{cluster}/{t['id']}")
    return list(reversed(out))


def write_logs(d, t):
    lines = REASONS.get(d["scenario"], {}).get("logs")
    stream = f"{LOG_PREFIX}/api/{t['id']}"
    if not lines or not LOG_GROUP or stream in state["streams"]:
        return
    state["streams"].add(stream)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    at = int(t["created"] * 1000)
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream,
                        logEvents=[{"timestamp": at + i, "message": m} for i, m in enumerate(lines)])


def counts(d, now, cluster):
    tasks = tasks_of(d, now, cluster)
    alive = [t for t in tasks if t["stopped"] is None]
    running = sum(1 for t in alive if t["running"])
    return {"tasks": tasks, "running": running, "pending": len(alive) - running,
            "failed": sum(1 for t in tasks if t["stopped"] is not None)}


def advance(now, cluster):
    """Completes the healthy PRIMARY deployment whose tasks all run, draining the older ones."""
    deps = state["deployments"]
    primary = next((d for d in deps if d["status"] == "PRIMARY"), None)
    if primary and not failing(primary) and primary["completed"] is None:
        if counts(primary, now, cluster)["running"] >= primary["desired"]:
            primary["completed"] = now
            state["deployments"] = [primary]


def render_service(svc, now):
    cluster = svc["clusterArn"].rsplit("/", 1)[1]
    if not state["deployments"]:
        old = svc["deployments"][0] if svc.get("deployments") else {"id": "ecs-svc/0000000000000000000"}
        d = deployment(old["id"], svc["taskDefinition"], svc["desiredCount"], "healthy", now - 3600)
        d["completed"] = now - 3500
        state["deployments"].append(d)
    advance(now, cluster)
    rendered, total_running, total_pending = [], 0, 0
    for d in state["deployments"]:
        c = counts(d, now, cluster)
        for t in c["tasks"]:
            write_logs(d, t)
        running = d["desired"] if d["completed"] is not None else c["running"]
        total_running += running
        total_pending += c["pending"] if d["completed"] is None else 0
        done = d["completed"] is not None
        rendered.append({
            "id": d["id"], "status": d["status"], "taskDefinition": d["td"],
            "desiredCount": d["desired"], "pendingCount": 0 if done else c["pending"],
            "runningCount": running, "failedTasks": 0 if done else c["failed"],
            "createdAt": d["created"], "updatedAt": now, "launchType": "FARGATE",
            "rolloutState": "COMPLETED" if done else "IN_PROGRESS",
            "rolloutStateReason": f"ECS deployment {d['id']} {'completed' if done else 'in progress'}.",
        })
    svc["deployments"] = rendered
    svc["runningCount"] = total_running
    svc["pendingCount"] = total_pending
    svc["deploymentConfiguration"] = {"maximumPercent": 200, "minimumHealthyPercent": 100}
    events = []
    for d in state["deployments"]:
        for t in counts(d, now, cluster)["tasks"]:
            events.append({"id": t["id"], "createdAt": t["created"],
                           "message": f"(service {svc['serviceName']}) has started 1 tasks: (task {t['id']})."})
    events.sort(key=lambda e: -e["createdAt"])
    svc["events"] = events[:20]
    return svc


def describe_task(d, t, svc_cluster, now):
    scenario = REASONS.get(d["scenario"])
    container = {
        "containerArn": arn("container", f"{svc_cluster}/{t['id']}/api"),
        "taskArn": t["arn"], "name": "api", "image": "app:2", "runtimeId": f"{t['id']}-api",
        "lastStatus": "STOPPED" if t["stopped"] else ("RUNNING" if t["running"] else "PENDING"),
        "healthStatus": "UNKNOWN",
    }
    task = {
        "taskArn": t["arn"], "clusterArn": arn("cluster", svc_cluster), "taskDefinitionArn": d["td"],
        "group": "service:api", "startedBy": d["id"], "launchType": "FARGATE", "createdAt": t["created"],
        "lastStatus": "STOPPED" if t["stopped"] else ("RUNNING" if t["running"] else "PENDING"),
        "desiredStatus": "STOPPED" if t["stopped"] else "RUNNING", "healthStatus": "UNKNOWN",
        "containers": [container],
    }
    if t["running"]:
        task["startedAt"] = t["created"] + 0.2
    if t["stopped"] and scenario:
        task.update({"stoppingAt": t["stopped"], "stoppedAt": t["stopped"], "executionStoppedAt": t["stopped"],
                     "stopCode": scenario["stopCode"], "stoppedReason": scenario["stoppedReason"]})
        container.update(scenario["container"])
    return task


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/x-amz-json-1.1"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def forward(self, body):
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "content-length", "connection", "accept-encoding")}
        req = urllib.request.Request(UPSTREAM + self.path, data=body if self.command != "GET" else None,
                                     method=self.command, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read(), r.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers.get("Content-Type", "application/json")

    def do_GET(self):
        if self.path.startswith("/__proxy/state"):
            with lock:
                body = json.dumps({"first_stop": state["first_stop"], "forced": state["forced"]}).encode()
            return self.answer(200, body, "application/json")
        status, body, ctype = self.forward(None)
        self.answer(status, body, ctype)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = self.headers.get("X-Amz-Target", "")
        action = target[len(ECS):] if target.startswith(ECS) else None
        if action in ("ListTasks", "DescribeTasks"):
            with lock:
                answer = self.tasks_call(action, json.loads(body or b"{}"))
            if answer is not None:
                return self.answer(200, json.dumps(answer).encode())
        status, upstream, ctype = self.forward(body)
        if action in ("DescribeServices", "UpdateService") and status == 200:
            doc = json.loads(upstream)
            now = time.time()
            with lock:
                if action == "UpdateService":
                    self.updated(json.loads(body), doc["service"], now)
                    render_service(doc["service"], now)
                else:
                    doc["services"] = [render_service(s, now) for s in doc["services"]]
            upstream = json.dumps(doc).encode()
        self.answer(status, upstream, ctype)

    def updated(self, request, svc, now):
        if not state["deployments"]:
            render_service(dict(svc, deployments=[{"id": "ecs-svc/0000000000000000000"}]), now - 0.01)
        new_td = svc["taskDefinition"]
        primary = next(d for d in state["deployments"] if d["status"] == "PRIMARY")
        if not request.get("forceNewDeployment") and new_td == primary["td"]:
            return
        dep_id = svc["deployments"][0]["id"]
        if any(d["id"] == dep_id for d in state["deployments"]):
            dep_id = f"ecs-svc/{int(now * 1000)}"
        scenario = SCENARIO if state["forced"] < FAILING else "healthy"
        state["forced"] += 1
        for d in state["deployments"]:
            d["status"] = "ACTIVE"
        state["deployments"].insert(0, deployment(dep_id, new_td, svc["desiredCount"], scenario, now))

    def tasks_call(self, action, request):
        now = time.time()
        cluster = request.get("cluster", "default").rsplit("/", 1)[-1]
        if action == "ListTasks":
            dep = next((d for d in state["deployments"] if d["id"] == request.get("startedBy")), None)
            if dep is None:
                return None
            wanted = request.get("desiredStatus", "RUNNING")
            tasks = counts(dep, now, cluster)["tasks"]
            arns = [t["arn"] for t in tasks if (t["stopped"] is not None) == (wanted == "STOPPED")]
            return {"taskArns": arns}
        found, failures = [], []
        for task_arn in request.get("tasks", []):
            hit = None
            for d in state["deployments"]:
                for t in counts(d, now, cluster)["tasks"]:
                    if t["arn"] == task_arn:
                        hit = describe_task(d, t, cluster, now)
            if hit:
                found.append(hit)
            else:
                failures.append({"arn": task_arn, "reason": "MISSING"})
        return {"tasks": found, "failures": failures}


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
