"""Stripe's own Python library as the oracle of stripe-ops' event catalogue.

    python oracle.py EVENTS.json SECRET

EVENTS.json is a list of {name, body, header}. A snapshot event must pass
stripe.Webhook.construct_event, a thin one StripeClient.parse_event_notification, into the typed
notification class of its type. A thin type this stripe-python release declares no class for
parses, as the library does it, into UnknownEventNotification, which must still carry the type
and the related object; such types are listed in `unknown` (the test names the ones it expects),
not failed. An item without a header is an answer of the sandbox's API or an event it recorded:
read as stripe-python reads an answer, into the class it has for each object (stripe.Coupon for a
coupon). Prints {failures, unknown, checked}.
"""
import json
import sys

import stripe
from stripe._object_classes import OBJECT_CLASSES
from stripe._util import convert_to_stripe_object
from stripe.events import UnknownEventNotification
from stripe.events._event_classes import get_v2_event_notification_class


def read_answer(body):
    """An API answer as stripe-python's client reads it; each object into its own class."""
    obj = convert_to_stripe_object(body, "sk_test_oracle")
    items = obj.data if body.get("object") == "list" else [obj]
    for item in items:
        item = item.data.object if item.object == "event" else item
        expected = OBJECT_CLASSES.get(getattr(item, "object", None))
        if expected and type(item).__name__ != expected[1]:
            raise ValueError(f"read as {type(item).__name__}, not {expected[1]}")


events = json.load(open(sys.argv[1]))
secret = sys.argv[2]
client = stripe.StripeClient("sk_test_oracle")
failures = []
unknown = []
for e in events:
    parsed = json.loads(e["body"])
    try:
        if not e.get("header"):
            read_answer(parsed)
        elif parsed["object"] == "v2.core.event":
            n = client.parse_event_notification(e["body"], e["header"], secret)
            if isinstance(n, UnknownEventNotification):
                # The library's own lookup: a type it declares must not come back unknown.
                if get_v2_event_notification_class(parsed["type"]) is not UnknownEventNotification:
                    raise ValueError(f"{parsed['type']} parsed as UnknownEventNotification")
                unknown.append(parsed["type"])
            if n.type != parsed["type"]:
                raise ValueError(f"parsed as {n.type}")
            related = getattr(n, "related_object", None)
            if parsed.get("related_object") and (related is None or related.url != parsed["related_object"]["url"]):
                raise ValueError("the related object was not read")
        else:
            event = stripe.Webhook.construct_event(e["body"], e["header"], secret)
            if event.type != parsed["type"] or not isinstance(event.data.object.object, str):
                raise ValueError("not read as the event it is")
    except Exception as err:  # every failure is the oracle's answer
        failures.append({"name": e["name"], "check": "parse", "message": f"{type(err).__name__}: {err}"})
print(json.dumps({"failures": failures, "unknown": sorted(set(unknown)), "checked": len(events)}))
