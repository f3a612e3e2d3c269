"""Stripe's own Python library as the oracle of stripe-ops' event catalogue.

    python oracle.py EVENTS.json SECRET

EVENTS.json is a list of {name, body, header}. A snapshot event must pass
stripe.Webhook.construct_event, a thin one StripeClient.parse_event_notification, into the typed
notification class of its type (not UnknownEventNotification). Prints {failures, checked}.
"""
import json
import sys

import stripe
from stripe.events import UnknownEventNotification

events = json.load(open(sys.argv[1]))
secret = sys.argv[2]
client = stripe.StripeClient("sk_test_oracle")
failures = []
for e in events:
    parsed = json.loads(e["body"])
    try:
        if parsed["object"] == "v2.core.event":
            n = client.parse_event_notification(e["body"], e["header"], secret)
            if isinstance(n, UnknownEventNotification):
                raise ValueError(f"{parsed['type']} parsed as UnknownEventNotification")
            if n.type != parsed["type"]:
                raise ValueError(f"parsed as {n.type}")
            related = getattr(n, "related_object", None)
            if parsed.get("related_object") and related is None:
                raise ValueError("the related object was not read")
        else:
            event = stripe.Webhook.construct_event(e["body"], e["header"], secret)
            if event.type != parsed["type"] or not isinstance(event.data.object.object, str):
                raise ValueError("not read as the event it is")
    except Exception as err:  # every failure is the oracle's answer
        failures.append({"name": e["name"], "check": "parse", "message": f"{type(err).__name__}: {err}"})
print(json.dumps({"failures": failures, "checked": len(events)}))
