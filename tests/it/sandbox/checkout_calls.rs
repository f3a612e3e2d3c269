//! stripe-node against Checkout's `subscription` mode with one-time prices beside the recurring
//! ones (tests/receivers/checkout-calls.mjs): the one-time items are invoice items on the first
//! invoice only, its lines and amounts add up, the events come in order, and every answer
//! compiles as its stripe-node type (tsc --strict) and is read by stripe-python.

use super::*;

#[test]
fn line_items_by_price_or_price_data_and_one_time_prices_on_a_subscriptions_first_invoice_only() {
    let sb = Sandbox::start(&[]);
    let out = stripe_node_script(&sb, "checkout-calls.mjs");
    let r = &out["results"];

    let got = &r["one_time_beside_subscription"];
    assert_eq!(got["ok"], true, "{got}");
    let v = &got["value"];
    // $9.00 a month and 2 × $25.00 once: $59.00 today.
    assert_eq!(
        (v["amount_subtotal"].as_i64(), v["amount_total"].as_i64()),
        (Some(5900), Some(5900))
    );
    assert_eq!(v["payment_status"], "paid");
    assert_eq!(v["sub"], "active");
    assert_eq!(
        v["sub_prices"],
        json!([true]),
        "only the recurring price is a subscription item"
    );
    let invoice = &v["invoice"];
    assert_eq!(
        (
            invoice["status"].as_str(),
            invoice["billing_reason"].as_str(),
            invoice["amount_due"].as_i64(),
            invoice["amount_paid"].as_i64(),
            invoice["total"].as_i64()
        ),
        (
            Some("paid"),
            Some("subscription_create"),
            Some(5900),
            Some(5900),
            Some(5900)
        )
    );
    let lines = invoice["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{invoice}");
    assert_eq!(
        (
            lines[0]["amount"].as_i64(),
            lines[0]["parent"].as_str(),
            lines[0]["price"].as_str()
        ),
        (
            Some(900),
            Some("subscription_item_details"),
            v["plan"].as_str()
        )
    );
    assert_eq!(
        (
            lines[1]["amount"].as_i64(),
            lines[1]["parent"].as_str(),
            lines[1]["price"].as_str(),
            lines[1]["quantity"].as_i64(),
            lines[1]["description"].as_str()
        ),
        (
            Some(5000),
            Some("invoice_item_details"),
            v["fee"].as_str(),
            Some(2),
            Some("Pro setup")
        )
    );
    assert_eq!(lines[1]["subscription"], v["subscription"]);
    assert_eq!(
        v["items"],
        json!([{"amount": 5000, "quantity": 2, "on_first": true, "subscription": true}])
    );
    assert_eq!(v["line_items_match"], true);
    let events: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .filter(|t| !t.starts_with("payment_method.") && !t.starts_with("customer.created"))
        .collect();
    assert_eq!(
        events,
        [
            "customer.subscription.created",
            "invoiceitem.created",
            "invoice.created",
            "invoice.finalized",
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
            "invoice.paid",
            "invoice.payment_succeeded",
            "customer.subscription.updated",
            "checkout.session.completed"
        ]
    );

    // A trial: the recurring price is free today, the one-time price is charged on the trial's
    // first invoice.
    let trial = &r["one_time_beside_trial"];
    assert_eq!(trial["ok"], true, "{trial}");
    let t = &trial["value"];
    assert_eq!(t["amount_total"], 2500);
    assert_eq!(
        (t["payment_status"].as_str(), t["sub"].as_str()),
        (Some("paid"), Some("trialing"))
    );
    assert_eq!(
        (
            t["invoice"]["amount_paid"].as_i64(),
            t["invoice"]["status"].as_str()
        ),
        (Some(2500), Some("paid"))
    );
    let amounts: Vec<i64> = t["invoice"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [0, 2500]);

    for (name, param, message) in [
        (
            "only_one_time_in_subscription_mode",
            "line_items",
            "You must specify at least one recurring price in `subscription` mode when using prices.",
        ),
        (
            "recurring_in_add_invoice_items",
            "add_invoice_items[0][price]",
            "The price specified is set to `type=recurring` but this field only accepts prices with `type=one_time`.",
        ),
    ] {
        let e = &r[name];
        assert_eq!(
            (
                e["class"].as_str(),
                e["status"].as_i64(),
                e["code"].as_str(),
                e["param"].as_str(),
                e["message"].as_str()
            ),
            (
                Some("StripeInvalidRequestError"),
                Some(400),
                Some("parameter_invalid"),
                Some(param),
                Some(message)
            ),
            "{name}: {e}"
        );
    }

    assert_eq!(
        r["price_data_in_payment_mode"]["value"],
        json!({"amount_total": 2900, "currency": "eur", "status": "complete", "payment_status": "paid", "paid": 2900}),
        "{}",
        r["price_data_in_payment_mode"]
    );
    let e = &r["neither_price_nor_price_data"];
    assert_eq!(
        (
            e["status"].as_i64(),
            e["code"].as_str(),
            e["param"].as_str()
        ),
        (
            Some(400),
            Some("parameter_missing"),
            Some("line_items[0][price]")
        ),
        "{e}"
    );
    crate::catalogue::assert_typed_by_stripes_libraries(out["typed"].as_array().unwrap());
}
