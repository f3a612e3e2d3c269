//! stripe-node against the sandbox's Stripe API (tests/receivers/sdk-calls.mjs): each 4xx is
//! the error stripe-node turns into its typed error, with Stripe's code, param and message; and
//! what apps do beside the CLI (expand, idempotent retries, auto-pagination) works as at Stripe.

use super::*;
use crate::receivers::{node, receivers_dir};

#[test]
fn stripe_node_gets_stripes_errors_as_its_typed_errors_and_its_calls_work() {
    let sb = Sandbox::start(&[]);
    let r = stripe_node_script(&sb, "sdk-calls.mjs");
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

    assert_eq!(
        r["schedule_from_subscription"]["value"],
        json!({"status": "active", "customer": true, "subscription": true, "phases": 1, "span": true,
            "items": [[true, 3]], "end_behavior": "release", "managed": true}),
        "{}",
        r["schedule_from_subscription"]
    );
    let (class, status, code, param, _) = error("schedule_from_subscription_with_phases");
    assert_eq!(
        (class.as_str(), status, code.as_str(), param.as_str()),
        (
            "StripeInvalidRequestError",
            400,
            "parameter_invalid",
            "phases"
        )
    );
    let (class, status, _, param, message) = error("schedule_from_scheduled_subscription");
    assert_eq!(
        (class.as_str(), status, param.as_str()),
        ("StripeInvalidRequestError", 400, "from_subscription")
    );
    assert!(message.contains("already managed"), "{message}");

    assert_eq!(
        r["delete_customer_with_subscription"]["value"],
        json!({"deleted": true, "status": "canceled", "ended": true}),
        "{}",
        r["delete_customer_with_subscription"]
    );
}

/// A customer on a test clock and its subscription with a 14-day trial, through stripe-node
/// (sdk-calls.mjs `clock`), with `stripe listen` forwarding to a stripe-node receiver: each
/// advance moves the subscription through what the time crossed, in order, dated on the clock
/// (trial_will_end three days before the trial's end; the trial's end and a calendar month
/// later a renewal, each invoice finalized and paid an hour after it was made; canceled at the
/// period's end), and the listener gets every one of those events; then a two-phase schedule on
/// another clock (`assert_schedule_moved_with_its_clock`); every event is compiled as
/// stripe-node's type (`tsc --strict`) and read through stripe-python.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_and_a_schedule_on_test_clocks_move_with_them_in_time_order() {
    use super::stripe_cli::{Cli, node_recorder, seen};
    let cli = Cli::start(&[]);
    let secret = cli.print_secret();
    let (_recorder, recorder) = node_recorder(&secret, false);
    let _listen = cli.listen(&[
        "--all-snapshot",
        "--forward-to",
        &format!("{recorder}/webhook"),
    ]);
    let o = node()
        .arg(receivers_dir().join("sdk-calls.mjs"))
        .args([&cli.sandbox.stripe_api, &cli.key, "clock"])
        .current_dir(receivers_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", stdout(&o)));
    let mut v = r["clock"]["value"].clone();
    assert_eq!(r["clock"]["ok"], true, "{}", r["clock"]);
    let events = v.as_object_mut().unwrap().remove("events").unwrap();
    let (t0, trial_end, feb15, mar15) =
        (1_767_225_600, 1_768_435_200, 1_771_113_600, 1_773_532_800);
    assert_eq!(
        v,
        json!({
            "customer": {"created": t0, "test_clock": true},
            "created": {"status": "trialing", "created": t0, "trial_end": trial_end, "test_clock": true, "period": [t0, trial_end]},
            "noticed": "trialing",
            "trial_ended": {"status": "active", "period": [trial_end, feb15],
                "invoice": ["paid", "subscription_cycle", 1000, trial_end, true]},
            "renewed": {"status": "active", "period": [feb15, mar15],
                "invoice": ["paid", "subscription_cycle", 1000, feb15, {"end": mar15, "start": feb15}]},
            "ended": {"status": "canceled", "ended_at": mar15},
            "clock": mar15 + 60,
        })
    );
    let events = events.as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let paid_an_hour_later = [
        "invoice.finalized",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
    ];
    let advance = |steps: &[&'static str]| {
        [
            &["test_helpers.test_clock.advancing"][..],
            steps,
            &["test_helpers.test_clock.ready"],
        ]
        .concat()
    };
    let renewal = [
        &["customer.subscription.updated", "invoice.created"][..],
        &paid_an_hour_later,
    ]
    .concat();
    let want = [
        &[
            "test_helpers.test_clock.created",
            "customer.created",
            "payment_method.attached",
            "product.created",
            "price.created",
            "plan.created",
            "customer.subscription.created",
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
        ][..],
        &advance(&["customer.subscription.trial_will_end"]),
        &advance(&renewal),
        &advance(&renewal),
        &["customer.subscription.updated"],
        &advance(&["customer.subscription.deleted"]),
    ]
    .concat();
    assert_eq!(types, want);
    // What the clock moved is dated on the clock: the notice three days before the trial's end,
    // the first paid invoice's payment an hour after the trial's end.
    let created = |t: &str, nth: usize| {
        events.iter().filter(|e| e["type"] == t).nth(nth).unwrap()["created"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(
        created("customer.subscription.trial_will_end", 0),
        trial_end - 3 * 86_400
    );
    assert_eq!(created("invoice.paid", 1), trial_end + 3_600);
    assert_eq!(created("customer.subscription.deleted", 0), mar15);
    assert_schedule_moved_with_its_clock(&r["clock_schedule"]);
    // A trial without a payment method: the first paid invoice's attempt fails an hour after
    // the trial's end (invoice.payment_failed), the subscription is past_due.
    assert_eq!(
        r["clock_unpaid"]["value"],
        json!({"status": "past_due", "invoice": ["open", 1, 800], "events": [
            "test_helpers.test_clock.created", "customer.created", "product.created", "price.created", "plan.created",
            "customer.subscription.created", "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded",
            "test_helpers.test_clock.advancing", "customer.subscription.trial_will_end", "customer.subscription.updated",
            "invoice.created", "invoice.finalized", "invoice.payment_failed", "customer.subscription.updated",
            "test_helpers.test_clock.ready"]}),
        "{}",
        r["clock_unpaid"]
    );
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let http = reqwest::Client::new();
    // Every event the clocks caused is what stripe-node and stripe-python declare.
    let listed: Value = http
        .get(format!("{}/v1/events?limit=100", cli.sandbox.stripe_api))
        .bearer_auth(&cli.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items: Vec<Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!({"name": format!("{} event", e["type"].as_str().unwrap()), "body": e.to_string()}))
        .collect();
    assert!(items.len() > 80, "{}", items.len());
    let dir = tempfile::tempdir().unwrap();
    for report in [
        crate::catalogue::node_oracle(&items, dir.path()),
        crate::catalogue::python_oracle(&items, dir.path()),
    ] {
        let failed = crate::catalogue::failures(&report);
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }
    eventually(
        "the listener to get every event",
        Duration::from_secs(30),
        || async {
            let got = seen(&http, &recorder).await;
            let accepted: Vec<&str> = got["accepted"]
                .as_array()?
                .iter()
                .filter_map(|a| a["id"].as_str())
                .collect();
            ids.iter().all(|id| accepted.contains(id)).then_some(())
        },
    )
    .await;
}

/// A two-phase schedule with end_behavior=cancel on a clock (sdk-calls.mjs `clock_schedule`):
/// at the first phase's end, its period's end, its subscription renews with the second phase's
/// quantity (one `customer.subscription.updated`, the invoice for 2), then
/// `subscription_schedule.updated`; seven days
/// before the end `subscription_schedule.expiring`; at the end the subscription is canceled and
/// the schedule completed.
fn assert_schedule_moved_with_its_clock(got: &Value) {
    assert_eq!(got["ok"], true, "{got}");
    let mut v = got["value"].clone();
    let events = v.as_object_mut().unwrap().remove("events").unwrap();
    let (jan1, feb1, mar1) = (1_767_225_600, 1_769_904_000, 1_772_323_200);
    assert_eq!(
        v,
        json!({
            "created": {"status": "active", "created": jan1, "test_clock": true, "current": [jan1, feb1]},
            "second": {"status": "active", "current": [feb1, mar1], "quantity": 2, "period": [feb1, mar1], "invoice": ["paid", 1000]},
            "done": {"status": "completed", "completed_at": mar1, "current_phase": null, "sub": "canceled", "ended_at": mar1},
        })
    );
    let at = |t: &str| -> Vec<i64> {
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == t)
            .map(|e| e["created"].as_i64().unwrap())
            .collect()
    };
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    let paid = [
        "invoice.finalized",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
    ];
    let want = [
        &[
            "test_helpers.test_clock.created",
            "customer.created",
            "payment_method.attached",
            "product.created",
            "price.created",
            "plan.created",
            "subscription_schedule.created",
            "customer.subscription.created",
            "invoice.created",
        ][..],
        &paid,
        &[
            "customer.subscription.updated",
            "test_helpers.test_clock.advancing",
            "customer.subscription.updated",
            "invoice.created",
            "subscription_schedule.updated",
        ],
        &paid,
        &[
            "test_helpers.test_clock.ready",
            "test_helpers.test_clock.advancing",
            "subscription_schedule.expiring",
            "customer.subscription.deleted",
            "subscription_schedule.completed",
            "test_helpers.test_clock.ready",
        ],
    ]
    .concat();
    assert_eq!(types, want);
    assert_eq!(at("subscription_schedule.updated"), [feb1]);
    assert_eq!(at("subscription_schedule.expiring"), [mar1 - 7 * 86_400]);
    assert_eq!(at("subscription_schedule.completed"), [mar1]);
}
