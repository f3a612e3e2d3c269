//! Billing meters, v1 and v2, through stripe-node (tests/receivers/meters.mjs): meters, meter
//! events and their summaries, adjustments, the v2 meter event session and stream, Stripe's
//! errors as stripe-node's typed errors; every answer compiled as its stripe-node type and read
//! by stripe-python. And the thin events bad meter events make, through the real `stripe listen
//! --all-thin` (and `--events v1.billing.meter.no_meter_found`) to receivers on stripe-node's
//! `parseEventNotification` that fetch the event and its related object (tests/receivers/thin.js),
//! while `--all-snapshot` gets none; the CLI's two meter triggers through the sandbox's
//! meter-events.stripe.com tunnel.

use super::stripe_cli::{Cli, seen};
use super::*;
use crate::receivers::{node, receivers_dir};

const WAIT: Duration = Duration::from_secs(30);

fn run_meters(sb: &Sandbox) -> Value {
    let o = node()
        .arg(receivers_dir().join("meters.mjs"))
        .arg(&sb.stripe_api)
        .arg(stripe_key(sb))
        .current_dir(receivers_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", stdout(&o)))
}

/// (class, status, code, param, message) of a call that failed.
fn error(r: &Value, name: &str) -> (String, i64, String, String, String) {
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
}

fn value<'a>(r: &'a Value, name: &str) -> &'a Value {
    assert_eq!(r[name]["ok"], true, "{name}: {}", r[name]);
    &r[name]["value"]
}

fn aggregated(r: &Value, name: &str) -> Vec<i64> {
    value(r, name)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["aggregated_value"].as_i64().unwrap())
        .collect()
}

#[test]
fn stripe_node_meters_usage_and_streams_it_with_stripes_answers_and_errors() {
    let sb = Sandbox::start(&[]);
    let r = run_meters(&sb);
    let invalid = "StripeInvalidRequestError".to_owned();

    let meter = value(&r, "meter");
    assert_eq!(
        (
            &meter["status"],
            &meter["customer_mapping"],
            &meter["value_settings"]
        ),
        (
            &json!("active"),
            &json!({"event_payload_key": "stripe_customer_id", "type": "by_id"}),
            &json!({"event_payload_key": "value"})
        ),
        "Stripe's defaults: {meter}"
    );
    assert!(meter["id"].as_str().unwrap().starts_with("mtr_"));
    let (class, status, code, param, _) = error(&r, "duplicate_event_name");
    assert_eq!(
        (class, status, code, param),
        (
            invalid.clone(),
            400,
            "parameter_invalid".into(),
            "event_name".into()
        )
    );
    assert_eq!(
        error(&r, "missing_formula"),
        (
            invalid.clone(),
            400,
            "parameter_missing".into(),
            "default_aggregation".into(),
            "Missing required param: default_aggregation.".into()
        )
    );
    assert_eq!(error(&r, "unknown_parameter").3, "bogus");
    assert_eq!(value(&r, "updated")["display_name"], "API requests");
    assert_eq!(value(&r, "listed")["data"].as_array().unwrap().len(), 2);

    // 5 and 7 counted, the repeated identifier once; the refused events not at all.
    assert_eq!(value(&r, "event_1")["identifier"], "evt-one");
    assert_eq!(
        value(&r, "event_2")["identifier"].as_str().unwrap().len(),
        36,
        "a UUID when none is given"
    );
    assert_eq!(
        error(&r, "event_missing_payload"),
        (
            invalid.clone(),
            400,
            "parameter_missing".into(),
            "payload".into(),
            "Missing required param: payload.".into()
        )
    );
    for accepted in ["event_no_customer", "event_bad_value", "event_no_meter"] {
        value(&r, accepted);
    }
    assert_eq!(aggregated(&r, "summary"), [12]);
    assert_eq!(aggregated(&r, "summary_count"), [3], "count: three logins");
    let hourly = aggregated(&r, "summary_hourly");
    assert_eq!(hourly.iter().sum::<i64>(), 12, "{hourly:?}");
    assert_eq!(hourly.len(), 2, "one hour and two minutes, by the hour");
    assert_eq!(error(&r, "summary_unaligned").3, "start_time");
    assert_eq!(error(&r, "summary_missing_customer").3, "customer");
    assert_eq!(error(&r, "summary_no_meter").1, 404);
    assert_eq!(value(&r, "adjustment")["status"], "pending");
    assert_eq!(aggregated(&r, "summary_adjusted"), [7], "evt-one canceled");

    // v2: the session's token streams; a v2 event and its cancellation leave 7 + 100.
    let session = value(&r, "session");
    assert!(session["expires_at"].as_str().unwrap() > session["created"].as_str().unwrap());
    assert_eq!(value(&r, "stream"), &json!({}));
    assert_eq!(
        error(&r, "stream_with_key").0,
        "StripeAuthenticationError",
        "the stream takes a session's token, not the key"
    );
    let (class, status, code, param, _) = error(&r, "stream_bad_timestamp");
    assert_eq!(
        (class, status, code, param),
        (
            invalid.clone(),
            400,
            "parameter_invalid".into(),
            String::new()
        ),
        "API v2 errors name no param"
    );
    assert_eq!(value(&r, "v2_event")["object"], "v2.billing.meter_event");
    assert_eq!(value(&r, "v2_adjustment")["type"], "cancel");
    assert_eq!(error(&r, "v2_missing").2, "parameter_missing");
    assert_eq!(aggregated(&r, "summary_after_stream"), [107]);
    assert_eq!(value(&r, "deactivated")["status"], "inactive");
    assert!(value(&r, "deactivated")["status_transitions"]["deactivated_at"].is_i64());
    assert_eq!(value(&r, "reactivated")["status"], "active");
    let (class, status, code, _, _) = error(&r, "stream_expired");
    assert_eq!(
        (class.as_str(), status, code.as_str()),
        (
            "TemporarySessionExpiredError",
            401,
            "billing_meter_event_session_expired"
        ),
        "15 minutes later on the sandbox's clock"
    );

    // The thin events: no customer, a bad value, the inactive meter (about the meter), and no
    // meter (twice: v1 and the stream).
    let fetched = value(&r, "thin_fetched").as_array().unwrap();
    let mut kinds: Vec<(String, String)> = fetched
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["data"]["reason"]["error_types"][0]["code"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    kinds.sort();
    let report = "v1.billing.meter.error_report_triggered".to_owned();
    let none = "v1.billing.meter.no_meter_found".to_owned();
    assert_eq!(
        kinds,
        [
            (report.clone(), "archived_meter".to_owned()),
            (report.clone(), "meter_event_invalid_value".to_owned()),
            (report.clone(), "meter_event_no_customer_defined".to_owned()),
            (none.clone(), "no_meter".to_owned()),
            (none.clone(), "no_meter".to_owned()),
        ]
    );
    for e in fetched {
        assert!(e["id"].as_str().unwrap().starts_with("evt_test_"), "{e}");
        assert_eq!(e["object"], "v2.core.event");
        if e["type"] == report.as_str() {
            assert_eq!(e["related_object"]["id"], meter["id"], "{e}");
        } else {
            assert!(e.get("related_object").is_none(), "{e}");
        }
    }
    assert_eq!(
        value(&r, "thin_of_meter")["data"].as_array().unwrap().len(),
        3,
        "object_id filters by the related object"
    );
    assert_eq!(error(&r, "thin_missing").1, 404);
    // The meter's snapshot events have thin twins naming them, listed page by page.
    let twins = value(&r, "thin_twins").as_array().unwrap();
    let types: Vec<&str> = twins.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "v1.billing.meter.reactivated",
            "v1.billing.meter.deactivated",
            "v1.billing.meter.updated",
            "v1.billing.meter.created"
        ]
    );
    let snapshots = value(&r, "snapshot_events")["data"].as_array().unwrap();
    for twin in twins {
        let snapshot = snapshots
            .iter()
            .find(|e| e["id"] == twin["snapshot_event"])
            .unwrap_or_else(|| panic!("{twin}"));
        assert_eq!(
            format!("v1.{}", snapshot["type"].as_str().unwrap()),
            twin["type"].as_str().unwrap()
        );
        assert_eq!(twin["related_object"]["id"], meter["id"]);
        assert_eq!(twin["reason"]["request"]["id"], snapshot["request"]["id"]);
    }

    // Every answer is its stripe-node type, and stripe-python reads it.
    let mut items = Vec::new();
    let mut typed = |name: &str, body: &Value, ts: &str| {
        items.push(json!({"name": format!("{name} ({ts})"), "body": body.to_string(), "ts": ts}));
    };
    for name in [
        "meter",
        "meter_count",
        "updated",
        "deactivated",
        "reactivated",
    ] {
        typed(name, value(&r, name), "Billing.Meter");
    }
    typed(
        "listed",
        value(&r, "listed"),
        "ApiList<Stripe.Billing.Meter>",
    );
    for name in ["event_1", "event_2", "event_no_meter"] {
        typed(name, value(&r, name), "Billing.MeterEvent");
    }
    typed(
        "adjustment",
        value(&r, "adjustment"),
        "Billing.MeterEventAdjustment",
    );
    for name in ["summary", "summary_hourly", "summary_count"] {
        typed(
            name,
            value(&r, name),
            "ApiList<Stripe.Billing.MeterEventSummary>",
        );
    }
    typed(
        "session",
        value(&r, "session"),
        "V2.Billing.MeterEventSession",
    );
    typed("v2_event", value(&r, "v2_event"), "V2.Billing.MeterEvent");
    typed(
        "v2_adjustment",
        value(&r, "v2_adjustment"),
        "V2.Billing.MeterEventAdjustment",
    );
    // stripe-python reads the fetched events whole; tsc compiles the error report's `data` (its
    // type's `fetchRelatedObject()` is a method of the SDK's object, not of the body).
    let mut whole_events = Vec::new();
    for e in twins {
        whole_events.push(json!({"name": "thin twin", "body": e.to_string(), "ts": "-"}));
    }
    for e in fetched {
        whole_events.push(json!({"name": "fetched thin event", "body": e.to_string(), "ts": "-"}));
        if e["type"] == none.as_str() {
            typed("fetched", e, "Events.V1BillingMeterNoMeterFoundEvent");
        } else {
            typed(
                "fetched data",
                &e["data"],
                "Events.V1BillingMeterErrorReportTriggeredEvent.Data",
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let report = crate::catalogue::node_oracle(&items, dir.path());
    let failed = crate::catalogue::failures(&report);
    assert!(failed.is_empty(), "stripe-node:\n{}", failed.join("\n"));
    let python_items: Vec<Value> = items
        .iter()
        .filter(|i| !i["ts"].as_str().unwrap().ends_with(".Data"))
        .cloned()
        .chain(whole_events)
        .collect();
    let report = crate::catalogue::python_oracle(&python_items, dir.path());
    let failed = crate::catalogue::failures(&report);
    assert!(failed.is_empty(), "stripe-python:\n{}", failed.join("\n"));
}

/// The thin receiver (tests/receivers/thin.js) with `secret`, fetching from the sandbox.
fn thin_receiver(secret: &str, sb: &Sandbox) -> (Proc, String) {
    let mut cmd = node();
    cmd.arg(receivers_dir().join("thin.js"))
        .current_dir(receivers_dir())
        .env("SECRET", secret)
        .env("API_BASE", &sb.stripe_api)
        .env("KEY", stripe_key(sb))
        .env("NODE_ENV", "test");
    let (proc, port) = spawn_announcing(cmd);
    (proc, format!("http://127.0.0.1:{port}"))
}

/// What a thin receiver took, by type.
fn of_type<'a>(v: &'a Value, event_type: &str) -> Vec<&'a Value> {
    v["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["notification"]["type"] == event_type)
        .collect()
}

const REPORT: &str = "v1.billing.meter.error_report_triggered";
const NO_METER: &str = "v1.billing.meter.no_meter_found";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_listen_forwards_thin_meter_errors_that_stripe_node_verifies_and_fetches() {
    let cli = Cli::start(&[]);
    let secret = cli.print_secret();
    // As the CLI 1.52.0 spells it: `--all-thin`, or `--events` naming thin types, with
    // `--forward-to`; and a snapshot listener beside them.
    let (_all_thin, all_thin) = thin_receiver(&secret, &cli.sandbox);
    let _l1 = cli.listen(&["--all-thin", "--forward-to", &format!("{all_thin}/thin")]);
    let (_named, named) = thin_receiver(&secret, &cli.sandbox);
    let _l2 = cli.listen(&[
        "--events",
        NO_METER,
        "--forward-to",
        &format!("{named}/thin"),
    ]);
    let (_snapshot, snapshot) = super::stripe_cli::node_recorder(&secret, false);
    let _l3 = cli.listen(&[
        "--all-snapshot",
        "--forward-to",
        &format!("{snapshot}/webhook"),
    ]);
    let http = reqwest::Client::new();
    let post = |path: &str, form: Vec<(&str, String)>| {
        let req = http
            .post(format!("{}{path}", cli.sandbox.stripe_api))
            .bearer_auth(&cli.key)
            .form(&form);
        let path = path.to_owned();
        async move {
            let resp = req.send().await.unwrap();
            assert!(resp.status().is_success(), "{path}: {}", resp.status());
            resp.json::<Value>().await.unwrap()
        }
    };
    let meter = post(
        "/v1/billing/meters",
        vec![
            ("display_name", "Tokens".into()),
            ("event_name", "tokens".into()),
            ("default_aggregation[formula]", "sum".into()),
        ],
    )
    .await;
    post(
        "/v1/billing/meter_events",
        vec![
            ("event_name", "tokens".into()),
            ("payload[value]", "3".into()),
            ("identifier", "without-customer".into()),
        ],
    )
    .await;
    post(
        "/v1/billing/meter_events",
        vec![
            ("event_name", "nobody".into()),
            ("payload[value]", "3".into()),
            ("identifier", "without-meter".into()),
        ],
    )
    .await;
    // The CLI's own meter triggers: their stream call goes to meter-events.stripe.com, which
    // reaches the sandbox through its tunnel (HTTPS_PROXY, SSL_CERT_FILE: `Cli::command_at`).
    for trigger in [REPORT, NO_METER] {
        let o = cli.run(&["trigger", trigger]);
        assert_eq!(code(&o), 0, "{trigger}: {}{}", stdout(&o), stderr(&o));
    }

    let v = eventually(
        "the thin events at the --all-thin receiver",
        WAIT,
        || async {
            let v = seen(&http, &all_thin).await;
            (of_type(&v, REPORT).len() >= 2
                && of_type(&v, NO_METER).len() >= 2
                && !of_type(&v, "v1.billing.meter.created").is_empty())
            .then_some(v)
        },
    )
    .await;
    assert_eq!(
        (&v["refused"], &v["errors"]),
        (&json!(0), &json!([])),
        "every delivery verified by parseEventNotification (a snapshot one would be refused), \
         every event fetched: {v}"
    );
    let mine = of_type(&v, REPORT)
        .into_iter()
        .find(|a| a["related"]["id"] == meter["id"])
        .unwrap_or_else(|| panic!("{v}"));
    assert!(
        mine["notification"].get("data").is_none(),
        "a thin notification carries no data"
    );
    assert_eq!(
        mine["event"]["id"], mine["notification"]["id"],
        "fetchEvent() got the event"
    );
    assert_eq!(
        mine["event"]["data"]["reason"]["error_types"][0]["sample_errors"][0]["request"]["identifier"],
        "without-customer"
    );
    let fixture = of_type(&v, REPORT)
        .into_iter()
        .find(|a| a["related"]["event_name"] == "stripe_cli_billing_meter_for_fixture")
        .unwrap_or_else(|| panic!("the trigger's report, about its meter: {v}"));
    assert_eq!(
        fixture["event"]["data"]["reason"]["error_types"][0]["code"],
        "meter_event_no_customer_defined"
    );
    for missing in of_type(&v, NO_METER) {
        assert_eq!(
            missing["event"]["data"]["reason"]["error_types"][0]["code"],
            "no_meter"
        );
        assert!(missing["related"].is_null());
    }

    let v = eventually("the named thin type", WAIT, || async {
        let v = seen(&http, &named).await;
        (of_type(&v, NO_METER).len() >= 2).then_some(v)
    })
    .await;
    let took: Vec<&Value> = v["accepted"].as_array().unwrap().iter().collect();
    assert!(
        took.iter().all(|a| a["notification"]["type"] == NO_METER),
        "--events {NO_METER} forwards that type only: {v}"
    );
    assert_eq!(v["refused"], 0, "{v}");

    let v = eventually("the snapshot listener's meters", WAIT, || async {
        let v = seen(&http, &snapshot).await;
        let created = v["accepted"]
            .as_array()?
            .iter()
            .filter(|a| a["type"] == "billing.meter.created")
            .count();
        (created == 2).then_some(v)
    })
    .await;
    assert_eq!(
        v["refused"], 0,
        "no thin notification reached constructEvent: {v}"
    );
    assert!(
        v["accepted"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| !a["type"].as_str().unwrap().starts_with("v1.")),
        "{v}"
    );
}

/// The tunnel answers `CONNECT` to `meter-events.stripe.com:443` only: any other host is
/// refused, so nothing the CLI sends through it leaves the machine.
#[tokio::test]
async fn the_tunnel_refuses_every_host_but_meter_events() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sb = Sandbox::start(&[]);
    let ca = sb.info["stripe_cli"]["ssl_cert_file"].as_str().unwrap();
    assert!(!readable_by_others(ca), "the CA file is 0600");
    assert!(
        std::fs::read_to_string(ca)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(sb.info["stripe_cli"]["https_proxy"], sb.stripe_api.as_str());
    let addr = sb.stripe_api.trim_start_matches("http://");
    for (target, status) in [
        ("api.stripe.com:443", "403"),
        ("meter-events.stripe.com:80", "403"),
        ("meter-events.stripe.com:443", "200"),
    ] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.unwrap();
        assert_eq!(
            &String::from_utf8_lossy(&head)[9..12],
            status,
            "CONNECT {target}"
        );
    }
}
