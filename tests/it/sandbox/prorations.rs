//! stripe-node against the sandbox's Stripe API (tests/receivers/proration-calls.mjs): plan
//! changes on running subscriptions, each on its own test clock, prorated to the second as
//! Stripe prorates (docs.stripe.com/billing/subscriptions/prorations): an upgrade halfway
//! through a month previewed with `invoices.createPreview`, made with the default
//! create_prorations and billed by the renewal; always_invoice; none; billing_cycle_anchor=now;
//! the subscription items API; each step's events in order, and every answer and event compiled
//! as stripe-node's type (`tsc --strict`) and read by stripe-python.

use super::*;

#[test]
fn plan_changes_on_running_subscriptions_are_prorated_as_stripe_prorates_them() {
    let sb = Sandbox::start(&[]);
    let out = stripe_node_script(&sb, "proration-calls.mjs");
    let r = &out["results"];
    let value = |name: &str| {
        assert_eq!(r[name]["ok"], true, "{name}: {}", r[name]);
        r[name]["value"].clone()
    };
    let (jan1, feb1, mid) = (1_767_225_600_i64, 1_769_904_000_i64, 1_768_564_800_i64);
    let mar1 = 1_772_323_200_i64;
    // Halfway through January, Basic (10 USD) to Pro (30 USD): -5 USD for Basic's unused time,
    // 15 USD for Pro's remaining time (docs: How prorations work), then February's 30 USD.
    let line = |amount: i64,
                description: &str,
                period: (i64, i64),
                proration: bool,
                credited: Value| {
        json!({"amount": amount, "description": description, "period": [period.0, period.1], "proration": proration,
            "invoice_item": proration, "credited": credited})
    };
    let unused = line(
        -500,
        "Unused time on Basic after 16 Jan 2026",
        (mid, feb1),
        true,
        json!(1),
    );
    let remaining = line(
        1500,
        "Remaining time on Pro after 16 Jan 2026",
        (mid, feb1),
        true,
        Value::Null,
    );
    let february = line(3000, "1 × Pro", (feb1, mar1), false, Value::Null);
    let upgrade = value("upgrade");
    assert_eq!(
        upgrade["preview"],
        json!({"id": true, "reason": "upcoming", "created": feb1, "proration_date": mid, "amount_due": 4000,
            "lines": [unused, remaining, february], "events": 0, "listed": false}),
        "the preview is the renewal's invoice with the change, neither stored nor announced"
    );
    assert_eq!(
        upgrade["preview_now"],
        json!({"reason": "subscription_update", "created": mid, "amount_due": 1000, "lines": [-500, 1500], "customer": true}),
        "previewed with always_invoice: the invoice the change would make now"
    );
    assert_eq!(
        upgrade["update"],
        json!({"events": ["invoiceitem.created", "invoiceitem.created", "customer.subscription.updated"],
            "item": [true, true], "period": [jan1, feb1], "previous_price": true})
    );
    let pending = upgrade["pending"].as_array().unwrap();
    let summary: Vec<Value> = pending
        .iter()
        .map(|p| {
            json!([
                p["amount"],
                p["unit"],
                p["proration"],
                p["discountable"],
                p["period"],
                p["parent"][0],
                p["invoiced"],
                p["credited"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            json!([
                -500,
                "-500",
                true,
                false,
                [mid, feb1],
                "subscription_details",
                false,
                "invoice_line_items"
            ]),
            json!([
                1500,
                "1500",
                true,
                false,
                [mid, feb1],
                "subscription_details",
                false,
                null
            ]),
        ],
        "pending proration items, the credit naming the January line it credits"
    );
    assert_eq!(
        upgrade["renewal"],
        json!({"reason": "subscription_cycle", "status": "paid", "amount_due": 4000, "amount_paid": 4000,
            "lines": [unused, remaining, february],
            "events": ["test_helpers.test_clock.advancing", "customer.subscription.updated", "invoice.created",
                "invoice.finalized", "payment_intent.created", "charge.succeeded", "payment_intent.succeeded",
                "invoice.paid", "invoice.payment_succeeded", "test_helpers.test_clock.ready"]}),
        "February's invoice takes the prorations"
    );
    assert_eq!(upgrade["invoiced"], json!([true, true]));

    let charged = [
        "invoice.created",
        "invoice.finalized",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ];
    let mut events = vec![json!("invoiceitem.created"), json!("invoiceitem.created")];
    events.extend(charged.iter().map(|e| json!(e)));
    assert_eq!(
        value("always_invoice"),
        json!({"events": events, "latest": true, "reason": "subscription_update", "status": "paid", "amount_paid": 500,
            "lines": [unused, line(1000, "Remaining time on 2 × Basic after 16 Jan 2026", (mid, feb1), true, Value::Null)],
            "pending": 0}),
        "always_invoice: 1 to 2 seats halfway, -5 + 10 USD invoiced and paid at once"
    );
    assert_eq!(
        value("always_invoice_declined"),
        json!({"status": "past_due", "invoice": ["open", 500, 1],
            "events": ["invoiceitem.created", "invoiceitem.created", "invoice.created", "invoice.finalized",
                "invoice.payment_failed", "customer.subscription.updated"]}),
        "a declined always_invoice charge: the update stands, the subscription is past_due"
    );
    assert_eq!(
        value("downgrade"),
        json!({"events": ["invoiceitem.created", "invoiceitem.created", "invoice.created", "invoice.finalized", "invoice.paid",
                "invoice.payment_succeeded", "customer.subscription.updated"],
            "invoice": ["paid", -1000, 0, 0],
            "lines": [[-1500, "Unused time on Pro after 16 Jan 2026"], [500, "Remaining time on Basic after 16 Jan 2026"]]}),
        "a downgrade invoiced at once: a credit of 10 USD, nothing due"
    );
    assert_eq!(
        value("cancel_prorated"),
        json!({"status": "canceled", "events": ["invoiceitem.created", "invoice.created", "invoice.finalized", "invoice.paid",
                "invoice.payment_succeeded", "customer.subscription.deleted"],
            "invoice": ["subscription_update", "paid", -500, 0], "lines": [-500]}),
        "canceled halfway with prorate and invoice_now: the unused half credited on a final invoice"
    );
    assert_eq!(
        value("none"),
        json!({"events": ["customer.subscription.updated"], "items": 0, "renewal": [3000, 1]})
    );
    let mut events = vec![json!("invoiceitem.created")];
    events.extend(charged.iter().map(|e| json!(e)));
    let feb16 = mid + 31 * 86_400;
    assert_eq!(
        value("anchor_now"),
        json!({"events": events, "anchor": mid, "period": [mid, feb16], "invoice": ["subscription_update", "paid", 2500],
            "lines": [unused, line(3000, "1 × Pro", (mid, feb16), false, Value::Null)]}),
        "billing_cycle_anchor=now: a new period from now, invoiced whole with Basic's credit"
    );
    assert_eq!(
        value("interval_change"),
        json!({"period": [mid, mid + 365 * 86_400], "invoice": ["subscription_update", "paid", 9500], "lines": [-500, 10000]}),
        "monthly to yearly: a new yearly period from now, invoiced at once with the month's credit"
    );
    // The add-on (4 USD) added halfway: 2 USD; three of them removed a day later: 12 USD ×
    // 1,252,800 / 2,678,400 s = 5.613 → -5.61 USD, crediting the pending debit.
    assert_eq!(
        value("items_api"),
        json!({"added": {"price": true, "period": [jan1, feb1], "events": ["invoiceitem.created", "customer.subscription.updated"]},
            "listed": 2, "changed": {"quantity": 3, "retrieved": 3, "events": ["customer.subscription.updated"]},
            "removed": {"deleted": true, "events": ["invoiceitem.created", "customer.subscription.updated"]},
            "pending": [[200, null], [-561, "invoice_item"], [700, null]], "setup": ["subscription_details", true],
            "preview": {"amount_due": 1339, "lines": [200, -561, 700, 1000], "setup": [[true, true]]}}),
        "the renewal previewed: the add-on's prorations, a one-off item of the subscription, the period"
    );
    assert_eq!(
        value("schedule_phase"),
        json!({"quantity": 2, "events": ["test_helpers.test_clock.advancing", "invoiceitem.created", "invoiceitem.created",
                "customer.subscription.updated", "subscription_schedule.updated", "test_helpers.test_clock.ready"],
            "pending": [[-500, "Unused time on Basic after 16 Jan 2026", [mid, feb1]],
                [1000, "Remaining time on 2 × Basic after 16 Jan 2026", [mid, feb1]]]}),
        "a schedule's phase starting mid-period is prorated per its proration_behavior"
    );
    assert_eq!(
        value("list_status"),
        json!({"default": ["active"], "all": ["active", "canceled"], "canceled": ["canceled"], "ended": ["canceled"],
            "active": ["active"], "pro": ["active"], "basic_all": ["canceled"], "invoices": 2, "prices": [true], "yearly": 0}),
        "subscriptions.list leaves the canceled out unless status asks for them"
    );
    let error = |name: &str| {
        let e = &r[name];
        assert_eq!(e["ok"], false, "{name}: {e}");
        json!([e["class"], e["status"], e["code"], e["param"]])
    };
    let invalid = "StripeInvalidRequestError";
    assert_eq!(
        error("unknown_item"),
        json!([invalid, 400, "resource_missing", "items[0][id]"])
    );
    assert_eq!(
        error("no_upcoming"),
        json!([invalid, 404, "invoice_upcoming_none", null])
    );
    assert_eq!(
        error("items_list_without_subscription"),
        json!([invalid, 400, "parameter_missing", "subscription"])
    );

    let items = out["typed"].as_array().unwrap().clone();
    assert!(items.len() >= 40, "{} bodies", items.len());
    crate::catalogue::assert_typed_by_stripes_libraries(&items);
}
