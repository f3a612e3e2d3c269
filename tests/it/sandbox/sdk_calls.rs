//! stripe-node against the sandbox's Stripe API (tests/receivers/sdk-calls.mjs): each 4xx is
//! the error stripe-node turns into its typed error, with Stripe's code, param and message; and
//! what apps do beside the CLI (expand, idempotent retries, auto-pagination) works as at Stripe.

use super::*;
use crate::receivers::{node, receivers_dir};

#[test]
fn stripe_node_gets_stripes_errors_as_its_typed_errors_and_its_calls_work() {
    let sb = Sandbox::start(&[]);
    let key = std::fs::read_to_string(sb.info["stripe_key_file"].as_str().unwrap()).unwrap();
    let o = node()
        .arg(receivers_dir().join("sdk-calls.mjs"))
        .arg(&sb.stripe_api)
        .arg(key.trim())
        .current_dir(receivers_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", stdout(&o)));
    let error = |name: &str| {
        let e = &r[name];
        assert_eq!(e["ok"], false, "{name}: {e}");
        (
            e["class"].as_str().unwrap_or_default().to_owned(),
            e["status"].as_i64().unwrap_or(0),
            e["code"].as_str().unwrap_or_default().to_owned(),
            e["param"].as_str().unwrap_or_default().to_owned(),
            e["message"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let invalid = "StripeInvalidRequestError".to_owned();
    assert_eq!(
        error("unknown_parameter"),
        (
            invalid.clone(),
            400,
            "parameter_unknown".into(),
            "bogus".into(),
            "Received unknown parameter: bogus".into()
        )
    );
    assert_eq!(
        error("missing_required"),
        (
            invalid.clone(),
            400,
            "parameter_missing".into(),
            "currency".into(),
            "Missing required param: currency.".into()
        )
    );
    assert_eq!(
        error("resource_missing"),
        (
            invalid.clone(),
            404,
            "resource_missing".into(),
            "id".into(),
            "No such customer: 'cus_doesnotexist'".into()
        )
    );
    assert_eq!(
        error("resource_missing_param"),
        (
            invalid.clone(),
            400,
            "resource_missing".into(),
            "customer".into(),
            "No such customer: 'cus_nope'".into()
        )
    );
    // stripe-node names API version 2026-11-18.endive, where Stripe no longer takes it
    // (docs.stripe.com/changelog/endive/2026-09-30/…): Stripe's own code.
    let (class, status, code, param, _) = error("removed_at_this_version");
    assert_eq!(
        (class, status, code.as_str(), param.as_str()),
        (
            invalid.clone(),
            400,
            "payment_method_types_no_longer_supported",
            "payment_method_types"
        )
    );
    let declined = &r["declined"];
    assert_eq!(
        (
            declined["class"].as_str(),
            declined["status"].as_i64(),
            declined["code"].as_str(),
            declined["decline_code"].as_str()
        ),
        (
            Some("StripeCardError"),
            Some(402),
            Some("card_declined"),
            Some("insufficient_funds")
        ),
        "{declined}"
    );
    let (class, status, code, _, message) = error("capture_succeeded");
    assert_eq!(
        (class, status, code.as_str()),
        (invalid.clone(), 400, "payment_intent_unexpected_state")
    );
    assert!(message.contains("status of succeeded"), "{message}");
    let (class, status, code, _, message) = error("pay_void_invoice");
    assert_eq!(
        (class, status, code.as_str()),
        (invalid.clone(), 400, "invoice_not_editable")
    );
    assert!(message.contains("void"), "{message}");
    let (class, status, _, param, _) = error("clock_backwards");
    assert_eq!(
        (class, status, param.as_str()),
        (invalid.clone(), 400, "frozen_time")
    );
    let (class, status, ..) = error("idempotency_mismatch");
    assert_eq!((class.as_str(), status), ("StripeIdempotencyError", 400));

    assert_eq!(r["expanded"]["value"], "a@example.com", "{}", r["expanded"]);
    assert_eq!(
        r["three_d_secure"]["value"],
        json!(["requires_action", "use_stripe_sdk"])
    );
    assert_eq!(
        r["idempotent_replay"]["value"], true,
        "the retry got the first answer: {}",
        r["idempotent_replay"]
    );
    let pages = &r["list_pages"]["value"];
    assert_eq!(
        pages["keys"],
        json!(["data", "has_more", "object", "url"]),
        "no total_count: {pages}"
    );
    assert_eq!(
        pages["count"], pages["distinct"],
        "auto-pagination sees each customer once: {pages}"
    );
    assert!(pages["count"].as_i64().unwrap() >= 3, "{pages}");
    assert_eq!(
        r["search"]["value"],
        json!({"object": "search_result", "emails": ["searched@example.com"], "none": 0, "next_page": null})
    );
    let (class, status, _, param, message) = error("search_unsupported_field");
    assert_eq!(
        (class.as_str(), status, param.as_str()),
        ("StripeInvalidRequestError", 400, "query")
    );
    assert!(message.contains("unsupported search field"), "{message}");

    assert_eq!(
        r["checkout_subscription"]["value"],
        json!({"status": "complete", "payment_status": "paid", "sub": "active", "metadata": {"plan": "pro"},
            "email": "sub@example.com", "invoice": "paid"}),
        "{}",
        r["checkout_subscription"]
    );
    assert_eq!(
        r["checkout_subscription_trial"]["value"],
        json!({"amount_total": 0, "payment_status": "no_payment_required", "sub": "trialing", "customer": true}),
        "{}",
        r["checkout_subscription_trial"]
    );
    assert_eq!(
        r["checkout_setup"]["value"],
        json!({"status": "complete", "payment_status": "no_payment_required", "si": "succeeded", "attached": true}),
        "{}",
        r["checkout_setup"]
    );
    assert_eq!(
        r["checkout_setup_declined"]["value"],
        json!({"type": "StripeCardError", "code": "card_declined", "open": "open"}),
        "{}",
        r["checkout_setup_declined"]
    );
    let (class, status, _, param, message) = error("checkout_recurring_in_payment_mode");
    assert_eq!(
        (class.as_str(), status, param.as_str()),
        ("StripeInvalidRequestError", 400, "line_items[0][price]")
    );
    assert!(message.contains("recurring price"), "{message}");

    assert_eq!(
        r["schedule"]["value"],
        json!({"status": "active", "phases": 2, "chained": true, "current": true, "sub": "active", "schedule": true,
            "released": "released", "released_subscription": true, "kept": "active", "unscheduled": null}),
        "{}",
        r["schedule"]
    );
    let (class, status, code, param, _) = error("schedule_iterations_removed");
    assert_eq!(
        (class.as_str(), status, code.as_str(), param.as_str()),
        (
            "StripeInvalidRequestError",
            400,
            "parameter_unknown",
            "phases[0][iterations]"
        )
    );
    let (class, status, _, _, message) = error("schedule_cancel_twice");
    assert_eq!((class.as_str(), status), ("StripeInvalidRequestError", 400));
    assert!(message.contains("`canceled` status"), "{message}");
}
