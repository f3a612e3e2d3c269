//! stripe-node against the sandbox's Stripe API (tests/receivers/balance-calls.mjs): a
//! PaymentIntent paid from the customer's cash balance, funded partly and then fully by the test
//! helper, and Issuing's legacy test authorization endpoint the Stripe CLI's fixtures call; each
//! step's events in Stripe's order, each failure the error stripe-node turns into its typed
//! error, and every answer and event compiled as stripe-node's type (`tsc --strict`) and read by
//! stripe-python.

use super::*;

#[test]
fn cash_balance_payments_and_the_legacy_issuing_endpoint_work_through_stripe_node() {
    let sb = Sandbox::start(&[]);
    let out = stripe_node_script(&sb, "balance-calls.mjs");
    let r = &out["results"];
    let value = |name: &str| {
        assert_eq!(r[name]["ok"], true, "{name}: {}", r[name]);
        r[name]["value"].clone()
    };
    let error = |name: &str| {
        let e = &r[name];
        assert_eq!(e["ok"], false, "{name}: {e}");
        let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
        (
            text("class"),
            e["status"].as_i64().unwrap_or(0),
            text("code"),
            text("param"),
            text("message"),
        )
    };

    let cash = value("cash_balance_payment");
    assert_eq!(
        cash["created"],
        json!({"status": "requires_action", "next_action": "display_bank_transfer_instructions", "remaining": 20000,
            "type": "jp_bank_transfer", "reference": "string",
            "events": ["payment_intent.created", "payment_intent.requires_action"]})
    );
    assert_eq!(
        cash["partly"],
        json!({"net": 8000, "type": "funded", "status": "requires_action", "remaining": 12000, "available": {"jpy": 0},
            "events": ["customer_cash_balance_transaction.created", "customer_cash_balance_transaction.created",
                       "payment_intent.partially_funded"]}),
        "all 8,000 applied, nothing left over: no cash_balance.funds_available"
    );
    assert_eq!(
        cash["fully"],
        json!({"status": "succeeded", "received": 20000, "next_action": null, "charge": "succeeded", "charge_amount": 20000,
            "charge_method": "customer_balance", "available": {"jpy": 3000}, "expanded": {"jpy": 3000},
            "events": ["customer_cash_balance_transaction.created", "customer_cash_balance_transaction.created",
                       "charge.succeeded", "payment_intent.succeeded", "cash_balance.funds_available"]})
    );
    assert_eq!(
        cash["transactions"],
        json!([
            ["funded", 8000, 8000, false],
            ["applied_to_payment", -8000, 0, true],
            ["funded", 15000, 15000, false],
            ["applied_to_payment", -12000, 3000, true]
        ])
    );
    assert_eq!(
        value("cash_balance_reconciliation"),
        json!({"exact": [5000, "paid", 4000], "quoted": [5000, "paid", 3000], "oldest": [4000, "paid", 3000]}),
        "the intent waiting for exactly 3,000, then the one whose reference is quoted, then the oldest"
    );
    assert_eq!(
        value("cash_balance_manual"),
        json!({"funded": ["customer_cash_balance_transaction.created", "cash_balance.funds_available"], "untouched": 5000,
            "part": [3000, ["customer_cash_balance_transaction.created", "payment_intent.partially_funded"]],
            "short": ["StripeInvalidRequestError", "balance_insufficient", "amount"],
            "rest": ["succeeded", ["customer_cash_balance_transaction.created", "charge.succeeded", "payment_intent.succeeded"]],
            "again": ["StripeInvalidRequestError", "payment_intent_unexpected_state"],
            "settings": {"reconciliation_mode": "automatic", "using_merchant_default": true}, "available": {"jpy": 0}}),
        "manual reconciliation: funds wait until applied with applyCustomerBalance"
    );
    assert_eq!(
        value("cash_balance_cancel"),
        json!({"status": "canceled", "events": ["payment_intent.canceled", "customer_cash_balance_transaction.created",
            "cash_balance.funds_available"], "back": ["unapplied_from_payment", 2000, 2000, true], "available": {"jpy": 2000}}),
        "the 2,000 applied to the canceled intent are the customer's again"
    );
    assert_eq!(
        value("cash_balance_legacy_type"),
        json!(["jp_bank_transfer", "jp_bank_transfer"]),
        "the CLI fixture's jp_bank_account is read as jp_bank_transfer"
    );
    assert_eq!(
        value("fund_each_scheme"),
        json!({"types": ["eu_bank_transfer", "gb_bank_transfer", "jp_bank_transfer", "mx_bank_transfer", "us_bank_transfer"],
            "available": {"eur": 100, "gbp": 100, "jpy": 100, "mxn": 100, "usd": 100}})
    );
    let invalid = "StripeInvalidRequestError";
    let (class, status, code, param, _) = error("cash_balance_without_customer");
    assert_eq!(
        (class.as_str(), status, code.as_str(), param.as_str()),
        (invalid, 400, "parameter_missing", "customer")
    );
    assert_eq!(
        error("fund_unknown_customer"),
        (
            invalid.into(),
            404,
            "resource_missing".into(),
            "id".into(),
            "No such customer: 'cus_doesnotexist'".into()
        )
    );
    let (class, status, _, param, message) = error("fund_wrong_currency");
    assert_eq!(
        (class.as_str(), status, param.as_str()),
        (invalid, 400, "currency")
    );
    assert!(message.starts_with("Invalid currency: xyz."), "{message}");
    assert_eq!(
        error("fund_missing_amount"),
        (
            invalid.into(),
            400,
            "parameter_missing".into(),
            "amount".into(),
            "Missing required param: amount.".into()
        )
    );

    assert_eq!(
        value("legacy_authorization"),
        json!({"object": "issuing.authorization", "approved": true, "status": "pending", "amount": 100, "currency": "usd",
            "method": "online", "card": true, "retrieved": true,
            "events": ["issuing_authorization.request", "issuing_authorization.created"]})
    );
    assert_eq!(
        value("legacy_authorization_eu"),
        json!({"approved": true, "amount": 100, "currency": "eur",
            "events": ["issuing_authorization.request", "issuing_authorization.created"]})
    );
    assert_eq!(
        error("legacy_unknown_card"),
        (
            invalid.into(),
            404,
            "resource_missing".into(),
            "id".into(),
            "No such issuing.card: 'ic_doesnotexist'".into()
        )
    );
    assert_eq!(
        error("legacy_missing_amount"),
        (
            invalid.into(),
            400,
            "parameter_missing".into(),
            "held_amount".into(),
            "Missing required param: held_amount.".into()
        )
    );
    let (class, status, _, param, message) = error("legacy_wrong_currency");
    assert_eq!(
        (class.as_str(), status, param.as_str()),
        (invalid, 400, "held_currency")
    );
    assert!(message.contains("usd"), "{message}");
    let (class, status, code, param, _) = error("legacy_helper_name");
    assert_eq!(
        (class.as_str(), status, code.as_str(), param.as_str()),
        (invalid, 400, "parameter_unknown", "amount")
    );

    let items = out["typed"].as_array().unwrap().clone();
    assert!(items.len() >= 20, "{} bodies", items.len());
    crate::catalogue::assert_typed_by_stripes_libraries(&items);
}
