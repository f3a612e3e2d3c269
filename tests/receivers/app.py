"""A small top-up app (docs/CONTRACT.md section 1) whose webhook is written with Stripe's official
Python library the way Stripe's docs show: stripe.Webhook.construct_event(payload, sig_header,
endpoint_secret) on the raw request body. Test fixture of stripe-ops.

Environment: SECRET (the webhook signing secret), BUG (which classic bug to have):
  none                correct: verifies the raw body, credits each event id and session once
  no-signature-check  parses the body and never verifies it
  ignore-tolerance    verifies with tolerance=0, which Stripe's library reads as "no check"
  no-idempotency      credits every delivery
  race                check-then-insert without a lock: overlapping duplicates credit twice
POST /api/webhooks/stripe-thin is an event destination with the thin payload, read with
StripeClient.parse_event_notification as Stripe's docs show.
Prints its port on the first line of stdout.
"""
import json
import os
import secrets
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import stripe

SECRET = os.environ["SECRET"]
client = stripe.StripeClient("sk_test_unused_by_webhooks")
BUG = os.environ.get("BUG", "none")
RACE_WINDOW = 0.05

orgs = {}  # org id -> {email, password, balance, events}
tokens = {}  # token -> org id
seen_events, seen_sessions = set(), set()
lock = threading.Lock()


def new_id(prefix):
    return f"{prefix}_{secrets.token_hex(12)}"


def verified_event(payload, signature):
    """The event as a plain dict, once Stripe's library has verified it (unless the bug skips it)."""
    if BUG != "no-signature-check":
        tolerance = 0 if BUG == "ignore-tolerance" else stripe.Webhook.DEFAULT_TOLERANCE
        stripe.Webhook.construct_event(payload, signature, SECRET, tolerance=tolerance)
    return json.loads(payload)


def credit(event):
    session = event["data"]["object"]
    org = orgs.get((session.get("metadata") or {}).get("orgId"))
    if org is None or session.get("payment_status") != "paid":
        return
    if BUG == "race":
        if event["id"] in seen_events:
            return
        time.sleep(RACE_WINDOW)
        seen_events.add(event["id"])
    elif BUG != "no-idempotency":
        with lock:
            if event["id"] in seen_events or session["id"] in seen_sessions:
                return
            seen_events.add(event["id"])
            seen_sessions.add(session["id"])
    with lock:
        org["balance"] += session["amount_total"]
        org["events"].insert(0, {
            "id": new_id("be"),
            "eventType": "stripe_topup",
            "amountCents": session["amount_total"],
            "metadata": {"stripeSessionId": session["id"], "stripeEventId": event["id"],
                         "orgId": session["metadata"]["orgId"]},
            "createdAt": datetime.now(timezone.utc).isoformat(),
        })


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

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def org(self):
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        org_id = tokens.get(token)
        if org_id is None:
            self.answer(401, {"error": {"code": "unauthorized", "message": "bad token"}})
        return org_id

    def do_GET(self):
        if self.path == "/health":
            return self.answer(200, {"status": "ok"})
        org_id = self.org()
        if org_id is None:
            return
        org = orgs[org_id]
        if self.path == "/api/billing/account":
            return self.answer(200, {"account": {"id": "acc_" + org_id, "org_id": org_id,
                                                 "balance_cents": org["balance"], "currency": "usd"}})
        if self.path == "/api/billing/events":
            return self.answer(200, {"events": org["events"]})
        self.answer(404, {"error": {"code": "not_found", "message": "no such route"}})

    def do_POST(self):
        payload = self.body()
        if self.path == "/api/webhooks/stripe":
            try:
                event = verified_event(payload, self.headers.get("Stripe-Signature"))
            except (ValueError, stripe.SignatureVerificationError) as e:
                return self.answer(400, {"error": str(e)})
            if event["type"] == "checkout.session.completed":
                credit(event)
            return self.answer(200, {"received": True})
        if self.path == "/api/webhooks/stripe-thin":
            # An event destination with the thin payload, as Stripe's docs show it.
            try:
                notification = client.parse_event_notification(
                    payload, self.headers.get("Stripe-Signature"), SECRET)
            except (ValueError, stripe.SignatureVerificationError) as e:
                return self.answer(400, {"error": str(e)})
            return self.answer(200, {"received": True, "type": notification.type,
                                     "class": type(notification).__name__})
        request = json.loads(payload or b"{}")
        if self.path == "/api/org/register":
            with lock:
                if any(o["email"] == request["email"] for o in orgs.values()):
                    return self.answer(409, {"error": {"code": "conflict",
                                                       "message": "email_already_registered"}})
                org_id = new_id("org")
                orgs[org_id] = {"email": request["email"], "password": request["password"],
                                "balance": 0, "events": []}
            token = new_id("tok")
            tokens[token] = org_id
            return self.answer(200, {"token": token, "orgId": org_id})
        if self.path == "/api/org/api-keys":
            for org_id, org in orgs.items():
                if org["email"] == request.get("email") and org["password"] == request.get("password"):
                    token = new_id("tok")
                    tokens[token] = org_id
                    return self.answer(200, {"token": token})
            return self.answer(401, {"error": {"code": "invalid_credentials", "message": "wrong"}})
        if self.path == "/api/billing/topups/checkout":
            if self.org() is None:
                return
            session = new_id("cs_test")
            return self.answer(200, {"checkoutUrl": "http://127.0.0.1/checkout/" + session,
                                     "stripeSessionId": session, "paymentIntentId": new_id("pi")})
        self.answer(404, {"error": {"code": "not_found", "message": "no such route"}})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hangs up early (a poll cut at its deadline) is not news


server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
