//! `check` on receivers that are not top-up apps, written as real integrations are with Stripe's
//! official libraries (`tests/receivers/`): an Express subscription service, a SQLite one in
//! Python, a Web-standard `Request` route (Next.js style) and a Connect platform, each with its
//! classic bugs. Their state is seen through an observer (`--observe-url`, `--observe`). Every
//! correct receiver passes with exit 0; every bug fails at the case meant for it, cause named.

use std::collections::BTreeSet;
use std::process::Output;

use serde_json::Value;

use crate::common::*;
use crate::receivers::{Lang, Receiver, set, start_receiver, with_outcome};

/// The advisory case every receiver written as Stripe's docs show warns about: Stripe's
/// libraries accept future timestamps.
fn docs_warning() -> BTreeSet<String> {
    set(&["security.timestamp_in_future"])
}

/// `check --json` against `path` of the receiver, with `extra`.
fn check(r: &Receiver, path: &str, extra: &[&str]) -> (Output, Value) {
    let url = format!("{}{path}", r.base);
    let args = [
        &[
            "--json",
            "check",
            "--webhook-url",
            &url,
            "--secret-file",
            r.secret_file.to_str().unwrap(),
            "--settle-timeout",
            "2s",
        ],
        extra,
    ]
    .concat();
    let o = run(&args);
    assert_no_leak(&o, &[CANARY_WHSEC]);
    let v = json_of(&o);
    (o, v)
}

fn case<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name} in {v}"))
}

fn detail(v: &Value, name: &str) -> String {
    case(v, name)["detail"].as_str().unwrap().to_owned()
}

/// The subscription service's types: it provisions on `customer.subscription.created`, counts
/// `invoice.paid`, and ignores the rest.
const SUBSCRIPTION_TYPES: &str = "customer.subscription.created,customer.subscription.deleted,customer.subscription.updated,invoice.paid";

fn subscriptions(bug: &str, extra_env: &[(&str, &str)]) -> Receiver {
    start_receiver(Lang::Node, "subscriptions.js", bug, extra_env)
}

fn check_subscriptions(r: &Receiver, extra: &[&str]) -> (Output, Value) {
    let observe = format!("{}/state", r.base);
    check(
        r,
        "/webhooks",
        &[
            &["--observe-url", &observe, "--types", SUBSCRIPTION_TYPES],
            extra,
        ]
        .concat(),
    )
}

/// The idempotency cases of `types`.
fn idempotency(types: &[&str]) -> BTreeSet<String> {
    types
        .iter()
        .flat_map(|t| {
            [
                "sequential_duplicate",
                "concurrent_duplicates",
                "same_id_other_body",
            ]
            .map(|c| format!("idempotency.{c}.{t}"))
        })
        .collect()
}

/// The cases that deliver a valid event and need it taken (2xx): what a handler that fails or
/// is slow after the signature check fails.
fn taken_cases(types: &[&str]) -> BTreeSet<String> {
    let mut s = set(&[
        "security.valid_signature",
        "security.raw_body",
        "security.secret_roll",
        "robustness.unknown_type",
        "robustness.unicode_body",
    ]);
    s.extend(types.iter().map(|t| format!("types.{t}")));
    s
}

const SUB_TYPES: [&str; 4] = [
    "customer.subscription.created",
    "customer.subscription.deleted",
    "customer.subscription.updated",
    "invoice.paid",
];

#[test]
fn a_subscription_service_written_as_stripes_docs_show_passes_with_idempotency_judged() {
    let r = subscriptions("none", &[]);
    let (o, v) = check_subscriptions(&r, &[]);
    assert_code(&o, 0);
    assert_eq!(with_outcome(&v, "failed"), BTreeSet::new(), "{v}");
    assert_eq!(with_outcome(&v, "warned"), docs_warning());
    // Provisioning and payments were seen, judged, and passed; the types it ignores are skipped
    // with the reason, never passed.
    let handled = idempotency(&["customer.subscription.created", "invoice.paid"]);
    assert!(handled.is_subset(&with_outcome(&v, "passed")), "{v}");
    assert_eq!(
        with_outcome(&v, "skipped"),
        idempotency(&[
            "customer.subscription.deleted",
            "customer.subscription.updated"
        ])
    );
    assert!(
        detail(
            &v,
            "idempotency.sequential_duplicate.customer.subscription.deleted"
        )
        .contains("changed nothing observable")
    );
    let concurrent = detail(
        &v,
        "idempotency.concurrent_duplicates.customer.subscription.created",
    );
    assert!(
        concurrent.contains("one effect (numbers moved by +1)"),
        "{concurrent}"
    );
    assert!(concurrent.contains("200 ×20"), "{concurrent}");
}

#[test]
fn a_slow_handler_fails_every_case_it_answers_late_on() {
    // It provisions inside the request: 1.5 s against a 1 s budget.
    let r = subscriptions("slow", &[("SLOW_MS", "1500")]);
    let (o, v) = check_subscriptions(&r, &["--timeout", "1s"]);
    assert_code(&o, 1);
    assert_eq!(with_outcome(&v, "failed"), taken_cases(&SUB_TYPES), "{v}");
    let d = detail(&v, "types.customer.subscription.created");
    assert!(
        d.contains("after 1.5s, over the 1s timeout (--timeout)"),
        "{d}"
    );
    assert!(d.contains("sends the event again"), "{d}");
    // Its duplicates cannot be judged, and say where the failure is.
    assert_eq!(with_outcome(&v, "skipped"), idempotency(&SUB_TYPES));
    assert!(
        detail(&v, "idempotency.sequential_duplicate.invoice.paid")
            .contains("(types.invoice.paid)")
    );
}

#[test]
fn a_json_parser_before_the_webhook_route_is_named_as_the_cause() {
    let r = subscriptions("json-first", &[]);
    let (o, v) = check_subscriptions(&r, &[]);
    assert_code(&o, 1);
    // Every valid event is refused (a 4xx, so the unicode case, which only forbids a crash,
    // passes).
    let mut refused = taken_cases(&SUB_TYPES);
    refused.remove("robustness.unicode_body");
    assert_eq!(with_outcome(&v, "failed"), refused, "{v}");
    for name in [
        "security.valid_signature",
        "security.raw_body",
        "types.invoice.paid",
    ] {
        let d = detail(&v, name);
        assert!(
            d.contains("Payload was provided as a parsed JavaScript"),
            "{d}"
        );
        assert!(
            d.contains("a JSON body parser (express.json(), bodyParser.json()) runs before it"),
            "{d}"
        );
        assert!(!d.contains("refuses correctly signed events"), "{d}");
        assert!(
            case(&v, name)["answer"]
                .as_str()
                .unwrap()
                .starts_with("Webhook Error")
        );
    }
}

#[test]
fn a_500_on_unknown_types_is_a_handler_failure_not_a_refusal() {
    let r = subscriptions("500-unknown", &[]);
    let (o, v) = check_subscriptions(&r, &[]);
    assert_code(&o, 1);
    // It handles customer.subscription.created/deleted and invoice.paid, and crashes on the
    // others: the benign customer.created of the security cases included.
    assert_eq!(
        with_outcome(&v, "failed"),
        taken_cases(&["customer.subscription.updated"]),
        "{v}"
    );
    let unknown = detail(&v, "robustness.unknown_type");
    assert!(
        unknown.contains("Unhandled event type stripe_ops.test.unknown_event"),
        "{unknown}"
    );
    let raw = detail(&v, "security.raw_body");
    assert!(
        raw.contains("a server error") && raw.contains("not a refusal"),
        "{raw}"
    );
    assert!(!raw.contains("refuses correctly signed events"), "{raw}");
    assert!(raw.contains("see robustness.unknown_type"), "{raw}");
    // The table shows the answer too.
    let url = format!("{}/webhooks", r.base);
    let o = run(&[
        "check",
        "--webhook-url",
        &url,
        "--secret-file",
        r.secret_file.to_str().unwrap(),
        "--case",
        "robustness.unknown_type",
    ]);
    assert_code(&o, 1);
    assert!(
        stdout(&o).contains("Unhandled event type"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn provisioning_twice_for_a_duplicate_fails_the_idempotency_cases_of_the_handled_types() {
    let r = subscriptions("no-idempotency", &[]);
    let (o, v) = check_subscriptions(&r, &[]);
    assert_code(&o, 1);
    assert_eq!(
        with_outcome(&v, "failed"),
        idempotency(&["customer.subscription.created", "invoice.paid"]),
        "{v}"
    );
    let d = detail(&v, "idempotency.concurrent_duplicates.invoice.paid");
    assert!(
        d.contains("numbers moved by +20") && d.contains("processed more than once"),
        "{d}"
    );
    assert!(
        detail(&v, "idempotency.sequential_duplicate.invoice.paid").contains("processed twice")
    );
}

/// The Python service on SQLite, observed by a shell command reading its database.
fn check_sqlite(bug: &str) -> (Output, Value) {
    let r = start_receiver(
        Lang::Python,
        "subscriptions.py",
        bug,
        &[("DB", "{dir}/subscriptions.db")],
    );
    let db = r.dir.path().join("subscriptions.db");
    let observe = format!(
        "'{}' -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from tenants\").fetchone()[0])' '{}'",
        std::env::var("STRIPE_OPS_TEST_PYTHON").unwrap(),
        db.display()
    );
    check(
        &r,
        "/stripe/webhook",
        &[
            "--observe",
            &observe,
            "--types",
            "customer.subscription.created",
        ],
    )
}

#[test]
fn a_sqlite_service_in_python_is_judged_through_a_shell_observer() {
    let (o, v) = check_sqlite("none");
    assert_code(&o, 0);
    assert_eq!(with_outcome(&v, "failed"), BTreeSet::new(), "{v}");
    let judged = idempotency(&["customer.subscription.created"]);
    assert!(judged.is_subset(&with_outcome(&v, "passed")), "{v}");

    let (o, v) = check_sqlite("race");
    assert_code(&o, 1);
    assert_eq!(
        with_outcome(&v, "failed"),
        set(&["idempotency.concurrent_duplicates.customer.subscription.created"]),
        "{v}"
    );

    let (o, v) = check_sqlite("no-idempotency");
    assert_code(&o, 1);
    assert_eq!(with_outcome(&v, "failed"), judged, "{v}");
}

#[test]
fn a_web_standard_route_passes_and_its_reserialising_twin_is_diagnosed() {
    let observe = |r: &Receiver| format!("{}/state", r.base);
    let r = start_receiver(Lang::Node, "next-route.mjs", "none", &[]);
    let (o, v) = check(
        &r,
        "/api/webhooks",
        &[
            "--observe-url",
            &observe(&r),
            "--types",
            "checkout.session.completed",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(with_outcome(&v, "warned"), docs_warning(), "{v}");
    assert!(
        idempotency(&["checkout.session.completed"]).is_subset(&with_outcome(&v, "passed")),
        "{v}"
    );

    let r = start_receiver(Lang::Node, "next-route.mjs", "json", &[]);
    let (o, v) = check(
        &r,
        "/api/webhooks",
        &[
            "--observe-url",
            &observe(&r),
            "--types",
            "checkout.session.completed",
        ],
    );
    assert_code(&o, 1);
    let raw = detail(&v, "security.raw_body");
    assert!(
        raw.contains("the receiver verifies a re-serialised body"),
        "{raw}"
    );
    // `await req.json()` throws on junk: a 500, which Stripe retries.
    assert!(with_outcome(&v, "failed").contains("robustness.non_json_body"));
}

fn check_connect(bug: &str) -> (Output, Value) {
    let r = start_receiver(Lang::Node, "connect.js", bug, &[]);
    let observe = format!("{}/platform", r.base);
    check(
        &r,
        "/connect/webhook",
        &[
            "--observe-url",
            &observe,
            "--account",
            "acct_1StripeOpsConnected",
            "--types",
            "payment_intent.succeeded",
        ],
    )
}

#[test]
fn a_connect_platform_that_books_its_accounts_events_as_its_own_fails_the_connect_case() {
    let (o, v) = check_connect("none");
    assert_code(&o, 0);
    assert_eq!(with_outcome(&v, "failed"), BTreeSet::new(), "{v}");
    let c = case(&v, "connect.payment_intent.succeeded");
    assert_eq!(c["outcome"], "passed", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("the connected account's: nothing changed")
    );
    // The platform's observer does not see the account's own payments: those are skipped, said so.
    assert_eq!(
        with_outcome(&v, "skipped"),
        idempotency(&["payment_intent.succeeded"])
    );

    let (o, v) = check_connect("platform-credited");
    assert_code(&o, 1);
    assert_eq!(
        with_outcome(&v, "failed"),
        set(&["connect.payment_intent.succeeded"]),
        "{v}"
    );
    let d = detail(&v, "connect.payment_intent.succeeded");
    assert!(
        d.contains("just as the platform's own does (numbers moved by +500)"),
        "{d}"
    );
    assert!(d.contains("ignores `event.account`"), "{d}");
}

#[test]
fn observer_failures_are_input_errors_and_its_output_is_never_printed() {
    let r = subscriptions("none", &[]);
    let url = format!("{}/webhooks", r.base);
    let secret = r.secret_file.to_str().unwrap();
    let run_with = |observer: &[&str]| {
        let o = run(&[
            &[
                "--json",
                "check",
                "--webhook-url",
                &url,
                "--secret-file",
                secret,
                "--suite",
                "idempotency",
                "--types",
                "invoice.paid",
                "--timeout",
                "1s",
                "--settle-timeout",
                "1s",
            ],
            observer,
        ]
        .concat());
        assert_no_leak(&o, &[CANARY_WHSEC, CANARY_SK]);
        o
    };
    for (observer, says) in [
        (
            &[
                "--observe",
                "echo sk_test_CANARYcanary0123456789abcdefABCDEF; exit 3",
            ][..],
            "exited with status 3",
        ),
        (
            &["--observe", "sleep 30"][..],
            "did not finish within 1s (--timeout)",
        ),
        (
            &["--observe", "date +%s%N"][..],
            "keeps changing with no delivery",
        ),
        (
            &["--observe-url", &format!("{}/nothing-here", r.base)][..],
            "answered 404",
        ),
    ] {
        let o = run_with(observer);
        assert_code(&o, 2);
        let error = json_of(&o)["error"].as_str().unwrap().to_owned();
        assert!(error.contains(says), "{observer:?}: {error}");
    }
    // A secret in the observed state is compared, never shown.
    let o = run_with(&["--observe", &format!("echo tenants 1; echo {CANARY_SK}")]);
    assert_code(&o, 0);
}

#[test]
fn the_wrong_payload_kind_is_named_with_the_option_that_fits() {
    let r = start_receiver(Lang::Node, "app.js", "none", &[]);
    // Thin events at a webhook endpoint (constructEvent): refused, and check says why.
    let (o, v) = check(&r, "/api/webhooks/stripe", &["--event-payload", "thin"]);
    assert_code(&o, 1);
    for c in v["cases"].as_array().unwrap() {
        let d = c["detail"].as_str().unwrap();
        assert!(
            d.contains("refuses thin events, as stripe-node's constructEvent"),
            "{d}"
        );
        assert!(d.contains("--event-payload snapshot"), "{d}");
    }
    // Snapshot events at an event destination with the thin payload: the other way round.
    let (o, v) = check(&r, "/api/webhooks/stripe-thin", &["--suite", "types"]);
    assert_code(&o, 1);
    let d = v["cases"][0]["detail"].as_str().unwrap();
    assert!(d.contains("--event-payload thin"), "{d}");
}
