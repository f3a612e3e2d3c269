//! `stripe-ops check` against the sandbox, healthy and with each fault.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::*;

/// The webhook secret the sandbox and the check share; a canary, so any leak is caught.
pub(crate) fn secret_file(dir: &Path) -> String {
    write_file(dir, "whsec", CANARY_WHSEC).display().to_string()
}

pub(crate) fn sandbox(dir: &Path, faults: &[&str]) -> Sandbox {
    let secret = secret_file(dir);
    let mut args = vec!["--webhook-secret-file", secret.as_str()];
    for f in faults {
        args.extend(["--fault", f]);
    }
    Sandbox::start(&args)
}

pub(crate) fn webhook(sb: &Sandbox) -> String {
    format!("{}/api/webhooks/stripe", sb.app)
}

/// Runs `check --json` against the sandbox (with `--base-url`) plus `extra`.
fn check(sb: &Sandbox, dir: &Path, extra: &[&str]) -> (Output, Value) {
    let secret = secret_file(dir);
    let url = webhook(sb);
    let args = [
        &[
            "--json",
            "check",
            "--webhook-url",
            &url,
            "--secret-file",
            &secret,
            "--base-url",
            &sb.app,
        ],
        extra,
    ]
    .concat();
    let o = run(&args);
    assert_no_leak(&o, &[CANARY_WHSEC]);
    let v: Value = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(&o), stderr(&o)));
    (o, v)
}

fn with_outcome(report: &Value, outcome: &str) -> BTreeSet<String> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == outcome)
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Runs every suite against a sandbox with `fault` and asserts exactly `expected` failed (and
/// no advisory case warned).
#[track_caller]
fn assert_fault_caught_only_by(fault: &str, extra: &[&str], expected: &BTreeSet<String>) {
    assert_fault_caught_and_warned(fault, extra, expected, &BTreeSet::new());
}

/// Like `assert_fault_caught_only_by`, with the advisory cases expected to warn.
#[track_caller]
fn assert_fault_caught_and_warned(
    fault: &str,
    extra: &[&str],
    expected: &BTreeSet<String>,
    warned: &BTreeSet<String>,
) {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path(), &[fault]);
    let (o, v) = check(&sb, dir.path(), extra);
    assert_code(&o, 1);
    let failed = with_outcome(&v, "failed");
    assert_eq!(
        &failed,
        expected,
        "fault {fault}: failed cases differ\n{}",
        serde_json::to_string_pretty(&v["cases"]).unwrap()
    );
    assert_eq!(
        &with_outcome(&v, "warned"),
        warned,
        "fault {fault}: warnings differ"
    );
    assert!(with_outcome(&v, "skipped").is_empty());
    assert_eq!(v["ok"], false);
    assert!(stderr(&o).contains("check cases failed"), "{}", stderr(&o));
}

/// The rejection cases Stripe's libraries require (the future timestamp is advisory).
pub(crate) const REJECTION_CASES: [&str; 8] = [
    "security.no_header",
    "security.malformed_header",
    "security.no_timestamp",
    "security.only_v0",
    "security.wrong_secret",
    "security.body_changed",
    "security.timestamp_too_old",
    "security.signature_for_other_timestamp",
];

const ROBUSTNESS_CASES: [&str; 6] = [
    "robustness.unknown_type",
    "robustness.empty_body",
    "robustness.non_json_body",
    "robustness.large_body",
    "robustness.unicode_body",
    "robustness.bad_signature",
];

/// The snapshot types (a webhook endpoint never gets the thin ones).
fn fixture_types() -> Vec<String> {
    // The types suite's default: the classic types (no Stripe key, so no endpoint to ask).
    let o = run(&["--json", "check", "--list", "--suite", "types"]);
    let v: Value = json_of(&o);
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["name"]
                .as_str()
                .unwrap()
                .strip_prefix("types.")
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn healthy_sandbox_passes_every_case_and_writes_junit() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path(), &[]);
    let junit = dir.path().join("check.xml");
    let (o, v) = check(
        &sb,
        dir.path(),
        &[
            "--junit",
            junit.to_str().unwrap(),
            "--expect-ignored",
            "invoice.paid,customer.created",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(v["ok"], true);
    let cases = v["cases"].as_array().unwrap();
    let total = 12 + 6 + 4 + fixture_types().len();
    assert_eq!(cases.len(), total);
    assert_eq!(v["passed"], total);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["skipped"], 0);
    for c in cases {
        assert!(c["expect"].is_string() && c["detail"].is_string(), "{c}");
        if c["suite"] != "idempotency" || c["name"] == "idempotency.unknown_session" {
            assert!(c["status"].is_u64() && c["ms"].is_f64(), "{c}");
        }
    }
    let by_name = |n: &str| cases.iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(by_name("security.no_header")["status"], 400);
    assert_eq!(by_name("security.valid_signature")["status"], 200);
    assert_eq!(
        by_name("types.invoice.paid")["expect"],
        "2xx, no effect",
        "ignored types are judged on their effect"
    );
    let seq = by_name("idempotency.concurrent_duplicates");
    assert!(seq["detail"].as_str().unwrap().contains("200 ×20"), "{seq}");

    // The JUnit file parses as XML (Python's parser) with the same counts.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let code = r#"
import os, xml.etree.ElementTree as ET
root = ET.fromstring(os.environ["XML"])
cases = root.findall(".//testcase")
print(len(cases), sum(len(c.findall("failure")) for c in cases), sum(len(c.findall("skipped")) for c in cases), root.get("tests"))
"#;
    let (status, out, err) = run_python(code, &[("XML", &xml)]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(out.trim(), format!("{total} 0 0 {total}"));

    // People get a table.
    let secret = secret_file(dir.path());
    let o = run(&[
        "check",
        "--webhook-url",
        &webhook(&sb),
        "--secret-file",
        &secret,
        "--suite",
        "security",
    ]);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.lines().next().unwrap().starts_with("CASE"), "{out}");
    assert!(out.contains("security.wrong_secret") && out.contains("refused with 400"));
    assert!(
        out.contains("12 passed, 0 failed, 0 warnings (advisory), 0 skipped"),
        "{out}"
    );
    assert_no_leak(&o, &[CANARY_WHSEC]);
}

#[test]
fn no_signature_check_fails_exactly_the_rejection_cases() {
    assert_fault_caught_and_warned(
        "no-signature-check",
        &[],
        &names(&REJECTION_CASES),
        &names(&["security.timestamp_in_future"]),
    );
}

#[test]
fn ignore_tolerance_fails_exactly_the_timestamp_cases() {
    assert_fault_caught_and_warned(
        "ignore-tolerance",
        &[],
        &names(&["security.timestamp_too_old"]),
        &names(&["security.timestamp_in_future"]),
    );
}

#[test]
fn double_credit_fails_the_duplicate_delivery_cases() {
    // No idempotency at all: every duplicate credits, in sequence, concurrently or with another
    // body. The unknown-session case still passes: there is nothing to credit.
    assert_fault_caught_only_by(
        "double-credit",
        &[],
        &names(&[
            "idempotency.sequential_duplicate",
            "idempotency.concurrent_duplicates",
            "idempotency.same_id_other_body",
        ]),
    );
}

#[test]
fn racy_credit_passes_sequential_but_fails_concurrent_duplicates() {
    assert_fault_caught_only_by(
        "racy-credit",
        &[],
        &names(&["idempotency.concurrent_duplicates"]),
    );
}

#[test]
fn webhook_500_fails_acceptance_and_no_server_error_cases_only() {
    // Every case that needs the event accepted (or credited) fails, and every robustness case,
    // which forbids 5xx. The rejection cases still see the forged events refused, and nothing is
    // credited for the unknown session.
    let mut expected = names(&[
        "security.valid_signature",
        "security.raw_body",
        "security.secret_roll",
        "idempotency.sequential_duplicate",
        "idempotency.concurrent_duplicates",
        "idempotency.same_id_other_body",
    ]);
    expected.extend(names(&ROBUSTNESS_CASES));
    expected.extend(fixture_types().iter().map(|t| format!("types.{t}")));
    // A 1 s budget: the credit cases wait that long for a credit that never comes.
    assert_fault_caught_only_by("webhook-500", &["--timeout", "1"], &expected);
}

#[test]
fn a_slow_webhook_fails_every_delivery_on_time_and_says_why() {
    // Answers take 800 ms against a 400 ms budget: every case is timed (Stripe counts a late
    // answer as a failed delivery), so every required case fails on time, and the two advisory
    // cases warn.
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path(), &["slow-webhook=800ms"]);
    let (o, v) = check(&sb, dir.path(), &["--timeout", "0.4"]);
    assert_code(&o, 1);
    let all: BTreeSet<String> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    let warned = names(&[
        "security.timestamp_in_future",
        "idempotency.unknown_session",
    ]);
    assert_eq!(with_outcome(&v, "warned"), warned);
    assert_eq!(
        with_outcome(&v, "failed"),
        all.difference(&warned).cloned().collect::<BTreeSet<_>>()
    );
    for c in v["cases"].as_array().unwrap() {
        let detail = c["detail"].as_str().unwrap();
        assert!(
            detail.contains("over the 400ms timeout (--timeout)")
                && detail.contains("sends the event again"),
            "{c}"
        );
    }
    // A slow answer within the budget passes, with the advice to answer first.
    let (o, v) = check(
        &sb,
        dir.path(),
        &["--case", "types.invoice.paid", "--slow-answer", "0.5"],
    );
    assert_code(&o, 0);
    let c = &v["cases"][0];
    assert_eq!(c["outcome"], "warned", "{c}");
    assert!(
        c["advice"].as_str().unwrap().contains("answer 2xx first"),
        "{c}"
    );
    let (o, _) = check(
        &sb,
        dir.path(),
        &[
            "--case",
            "types.invoice.paid",
            "--slow-answer",
            "0.5",
            "--strict",
        ],
    );
    assert_code(&o, 1);
}

#[test]
fn a_receiver_that_never_answers_in_time_is_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path(), &["slow-webhook=2s"]);
    let (o, v) = check(
        &sb,
        dir.path(),
        &["--case", "security.no_header", "--timeout", "0.2"],
    );
    assert_code(&o, 1);
    let c = &v["cases"][0];
    assert_eq!(c["outcome"], "failed");
    assert!(c["detail"].as_str().unwrap().contains("hang"), "{c}");
    assert!(c["status"].is_null());
}

#[test]
fn idempotency_without_base_url_is_skipped_not_passed() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path(), &[]);
    let secret = secret_file(dir.path());
    let junit = dir.path().join("j.xml");
    let o = run(&[
        "--json",
        "check",
        "--webhook-url",
        &webhook(&sb),
        "--secret-file",
        &secret,
        "--suite",
        "idempotency,security",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    // Asked for by name, idempotency without a way to see the receiver's state is a usage
    // error, not a silent pass.
    assert_code(&o, 2);
    assert!(stderr(&o).contains("--observe CMD"), "{}", stderr(&o));
    let o = run(&[
        "--json",
        "check",
        "--webhook-url",
        &webhook(&sb),
        "--secret-file",
        &secret,
        "--junit",
        junit.to_str().unwrap(),
        "--expect-ignored",
        "invoice.paid",
    ]);
    // With every suite, it is skipped (shown, in JUnit too), never passed.
    assert_code(&o, 0);
    let v: Value = json_of(&o);
    assert_eq!(v["skipped"], 4);
    let skipped = with_outcome(&v, "skipped");
    assert!(skipped.iter().all(|n| n.starts_with("idempotency.")));
    assert!(
        v["cases"][12 + 6]["detail"]
            .as_str()
            .unwrap()
            .contains("--observe CMD or --observe-url URL (any receiver), or --base-url"),
        "{}",
        v["cases"][18]
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<skipped").count(), 4);
}

#[test]
fn case_selection_listing_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path(), &[]);
    let secret = secret_file(dir.path());
    let (o, v) = check(&sb, dir.path(), &["--case", "security.body_changed"]);
    assert_code(&o, 0);
    assert_eq!(v["cases"].as_array().unwrap().len(), 1);
    assert_eq!(v["cases"][0]["name"], "security.body_changed");

    let o = run(&["--json", "check", "--list", "--suite", "robustness"]);
    assert_code(&o, 0);
    let v: Value = json_of(&o);
    assert_eq!(v["cases"].as_array().unwrap().len(), 6);

    let url = webhook(&sb);
    let usage: [(&[&str], &str); 5] = [
        (
            &[
                "--webhook-url",
                &url,
                "--secret-file",
                &secret,
                "--case",
                "security.no_headr",
            ],
            "did you mean security.no_header",
        ),
        (&["--secret-file", &secret], "needs --webhook-url"),
        (&["--webhook-url", &url], "no webhook secret"),
        (
            &[
                "--webhook-url",
                &url,
                "--secret-file",
                &secret,
                "--expect-ignored",
                "invoice.payd",
            ],
            "invoice.paid",
        ),
        (
            &[
                "--webhook-url",
                &url,
                "--secret-file",
                &secret,
                "--timeout",
                "0",
            ],
            "--timeout",
        ),
    ];
    let dead = format!("{}/hook", closed_url());
    let o = run(&[
        "check",
        "--webhook-url",
        &dead,
        "--secret-file",
        &secret,
        "--suite",
        "security",
    ]);
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("no case got an answer"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("FAIL"), "{}", stdout(&o));
    for (args, message) in usage {
        let o = run(&[&["check"], args].concat());
        assert_code(&o, 2);
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn a_given_buyer_is_registered_then_logged_in_and_its_password_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path(), &[]);
    let password = "pw-CANARYbuyerPassword0123456789";
    let pw_file = write_file(dir.path(), "pw", password);
    let email = format!("check+{}@example.com", free_port());
    let args = [
        "--case",
        "idempotency.sequential_duplicate",
        "--buyer-email",
        &email,
        "--buyer-password-file",
        pw_file.to_str().unwrap(),
    ];
    for _ in 0..2 {
        let (o, v) = check(&sb, dir.path(), &args);
        assert_code(&o, 0);
        assert_no_leak(&o, &[password]);
        assert_eq!(v["passed"], 1);
    }
    let wrong = write_file(dir.path(), "wrong", "not-the-password");
    let (o, v) = check(
        &sb,
        dir.path(),
        &[
            "--case",
            "idempotency.unknown_session",
            "--buyer-email",
            &email,
            "--buyer-password-file",
            wrong.to_str().unwrap(),
        ],
    );
    assert_code(&o, 1);
    let detail = v["cases"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("could not set up a buyer"), "{detail}");
}
