"""A subscription service on SQLite whose webhook is written with Stripe's official Python library
the way Stripe's docs show: stripe.Webhook.construct_event on the raw body, then a branch on
event["type"], 200 for every other type. Not a top-up app: its state is its database, which
`check --observe "python -c '...count(*) from tenants...'"` reads. Test fixture of stripe-ops.

Environment: SECRET (the webhook signing secret), DB (the SQLite file), BUG:
  none            correct: one transaction records the event id (primary key) and provisions
  race            check-then-insert without a transaction: concurrent copies provision twice
  no-idempotency  provisions for every delivery
  slow            provisions inside the request and answers after SLOW_MS (1500)
Prints its port on the first line of stdout.
"""
import json
import os
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import stripe

SECRET = os.environ["SECRET"]
DB = os.environ["DB"]
BUG = os.environ.get("BUG", "none")
SLOW_MS = int(os.environ.get("SLOW_MS", "1500"))
RACE_WINDOW = 0.05

schema = sqlite3.connect(DB)
schema.executescript("""
    create table if not exists processed (event_id text primary key);
    create table if not exists tenants (id integer primary key, subscription_id text, customer text);
""")
schema.close()
local = threading.local()


def db():
    if not hasattr(local, "conn"):
        local.conn = sqlite3.connect(DB, timeout=10, isolation_level=None)
    return local.conn


def provision(conn, event):
    sub = event["data"]["object"]
    conn.execute("insert into tenants (subscription_id, customer) values (?, ?)",
                 (sub["id"], sub["customer"]))


def handle(event):
    if event["type"] != "customer.subscription.created":
        return
    conn = db()
    if BUG == "no-idempotency":
        provision(conn, event)
    elif BUG == "race":
        seen = conn.execute("select 1 from processed where event_id = ?", (event["id"],)).fetchone()
        if seen:
            return
        time.sleep(RACE_WINDOW)
        conn.execute("insert or ignore into processed values (?)", (event["id"],))
        provision(conn, event)
    else:
        conn.execute("begin immediate")
        try:
            fresh = conn.execute("insert or ignore into processed values (?)", (event["id"],)).rowcount
            if fresh:
                provision(conn, event)
            conn.execute("commit")
        except Exception:
            conn.execute("rollback")
            raise


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/stripe/webhook":
            return self.answer(404, {"error": "no such route"})
        try:
            event = stripe.Webhook.construct_event(payload, self.headers.get("Stripe-Signature"), SECRET)
        except ValueError as e:
            return self.answer(400, {"error": f"Invalid payload: {e}"})
        except stripe.SignatureVerificationError as e:
            return self.answer(400, {"error": f"Invalid signature: {e}"})
        if BUG == "slow":
            time.sleep(SLOW_MS / 1000)
        try:
            handle(event)
        except Exception as e:  # as a web framework would: a 500
            return self.answer(500, {"error": f"{type(e).__name__}: {e}"})
        self.answer(200, {"received": True})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
