//! `stripe-ops check` against the sandbox, healthy and with each fault, and the load mode of
//! `events send` against the sandbox and a receiver written with Stripe's own library.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::*;

/// The webhook secret the sandbox and the check share; a canary, so any leak is caught.
fn secret_file(dir: &Path) -> String {
    write_file(dir, "whsec", CANARY_WHSEC).display().to_string()
}

fn sandbox(dir: &Path, faults: &[&str]) -> Sandbox {
    let secret = secret_file(dir);
    let mut args = vec!["--webhook-secret-file", secret.as_str()];
    for f in faults {
        args.extend(["--fault", f]);
    }
    Sandbox::start(&args)
}

fn webhook(sb: &Sandbox) -> String {
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

/// Runs every suite against a sandbox with `fault` and asserts exactly `expected` failed.
#[track_caller]
fn assert_fault_caught_only_by(fault: &str, extra: &[&str], expected: &BTreeSet<String>) {
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
    assert!(with_outcome(&v, "skipped").is_empty());
    assert_eq!(v["ok"], false);
    assert!(stderr(&o).contains("check cases failed"), "{}", stderr(&o));
}

const REJECTION_CASES: [&str; 9] = [
    "security.no_header",
    "security.malformed_header",
    "security.no_timestamp",
    "security.only_v0",
    "security.wrong_secret",
    "security.body_changed",
    "security.timestamp_too_old",
    "security.timestamp_in_future",
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

fn fixture_types() -> Vec<String> {
    let o = run(&["--json", "events", "list"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
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
    let total = 11 + 6 + 4 + fixture_types().len();
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
        "2xx, no credit",
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
    assert!(out.contains("11 passed, 0 failed, 0 skipped"), "{out}");
    assert_no_leak(&o, &[CANARY_WHSEC]);
}

#[test]
fn no_signature_check_fails_exactly_the_rejection_cases() {
    assert_fault_caught_only_by("no-signature-check", &[], &names(&REJECTION_CASES));
}

#[test]
fn ignore_tolerance_fails_exactly_the_timestamp_cases() {
    assert_fault_caught_only_by(
        "ignore-tolerance",
        &[],
        &names(&["security.timestamp_too_old", "security.timestamp_in_future"]),
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
fn slow_webhook_trips_the_answer_time_budget_of_the_robustness_cases() {
    // Answers take 800 ms against a 400 ms budget: the robustness cases (which judge time) fail;
    // the others still get their answers within the hang limit (3 × budget) and pass.
    assert_fault_caught_only_by(
        "slow-webhook=800ms",
        &["--timeout", "0.4"],
        &names(&ROBUSTNESS_CASES),
    );
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
    assert_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["skipped"], 4);
    assert_eq!(v["passed"], 11);
    let skipped = with_outcome(&v, "skipped");
    assert!(skipped.iter().all(|n| n.starts_with("idempotency.")));
    assert!(
        v["cases"][11]["detail"]
            .as_str()
            .unwrap()
            .contains("--base-url")
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
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
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

/// A keep-alive receiver written with Stripe's library: 200 for a valid signature, 400 otherwise;
/// `GET /` answers {"valid": n, "distinct": n, "rejected": n}.
const PY_COUNTING_RECEIVER: &str = r#"
import http.server, json, os, stripe, threading
seen, valid, rejected, lock = set(), [0], [0], threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status); self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
        try:
            e = stripe.Webhook.construct_event(body, self.headers.get("Stripe-Signature"), os.environ["SECRET"])
        except Exception as err:
            with lock: rejected[0] += 1
            return self.answer(400, {"error": str(err)})
        with lock:
            valid[0] += 1; seen.add(e.id)
        self.answer(200, {"received": e.id})
    def do_GET(self):
        with lock: self.answer(200, {"valid": valid[0], "distinct": len(seen), "rejected": rejected[0]})
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
if os.environ.get("TLS_CERT"):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.environ["TLS_CERT"], os.environ["TLS_KEY"])
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

fn counting_receiver() -> (Proc, String) {
    python_receiver(PY_COUNTING_RECEIVER, CANARY_WHSEC)
}

/// `stripe-ops --json events send payment_intent.succeeded` in load mode (`extra`).
fn load_command(url: &str, secret: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = bin();
    cmd.args(["--json", "events", "send", "payment_intent.succeeded"])
        .args(["--secret-file", secret, "--to", url])
        .args(extra);
    cmd
}

fn load(url: &str, secret: &str, extra: &[&str]) -> (Output, Value) {
    load_output(load_command(url, secret, extra))
}

fn load_output(mut cmd: std::process::Command) -> (Output, Value) {
    let o = cmd.output().expect("the binary runs");
    assert_no_leak(&o, &[CANARY_WHSEC]);
    let v: Value = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(&o), stderr(&o)));
    (o, v)
}

#[test]
fn load_mode_speaks_tls_and_checks_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret = secret_file(d);
    let (cert, key) = self_signed_certificate(d);
    let mut cmd = python();
    cmd.arg("-c")
        .arg(PY_COUNTING_RECEIVER)
        .env("SECRET", CANARY_WHSEC)
        .env("TLS_CERT", &cert)
        .env("TLS_KEY", &key);
    let (_receiver, port) = spawn_announcing(cmd);
    let url = format!("https://127.0.0.1:{port}/hook");
    let send = || load_command(&url, &secret, &["--count", "20", "--concurrency", "2"]);

    // Not trusted: every request fails its TLS handshake, exit 3.
    let mut untrusted = send();
    untrusted.env_remove("SSL_CERT_FILE");
    let (o, v) = load_output(untrusted);
    assert_code(&o, 3);
    assert_eq!(v["error_kinds"]["tls"], 20, "{v}");
    let why = v["error_examples"]["tls"].as_str().unwrap();
    assert!(why.contains("certificate"), "{why}");

    // Trusted through SSL_CERT_FILE (as by the platform's verifier): all accepted.
    let mut trusted = send();
    trusted.env("SSL_CERT_FILE", &cert);
    let (o, v) = load_output(trusted);
    assert_code(&o, 0);
    assert_eq!(v["statuses"]["200"], 20, "{v}");
}

#[test]
fn load_mode_sends_distinct_events_that_stripes_library_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let (_receiver, base) = counting_receiver();
    let url = format!("{base}/hook");
    let (o, v) = load(&url, &secret, &["--count", "150", "--concurrency", "6"]);
    assert_code(&o, 0);
    for field in [
        "ok",
        "sent",
        "answered",
        "succeeded",
        "non_2xx",
        "errors",
        "statuses",
        "elapsed_s",
        "requests_per_s",
        "latency_ms",
        "concurrency",
    ] {
        assert!(!v[field].is_null(), "{field} missing: {v}");
    }
    for p in ["p50", "p90", "p99", "max"] {
        assert!(v["latency_ms"][p].as_f64().unwrap() > 0.0, "{v}");
    }
    assert_eq!(v["sent"], 150);
    assert_eq!(v["statuses"]["200"], 150);
    assert_eq!(v["errors"], 0);
    let (status, out, err) = run_python(
        "import os, urllib.request; print(urllib.request.urlopen(os.environ['URL']).read().decode())",
        &[("URL", &base)],
    );
    assert_eq!(status, 0, "{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["valid"], 150);
    assert_eq!(stats["distinct"], 150, "every request is a distinct event");
    assert_eq!(stats["rejected"], 0);
}

#[test]
fn load_mode_counts_refusals_and_connection_errors_without_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path(), &[]);
    let wrong = write_file(dir.path(), "wrong", "whsec_wrongwrongwrongwrong")
        .display()
        .to_string();
    let secret = secret_file(dir.path());

    // The sandbox accepts every event signed with its secret...
    let (o, v) = load(
        &webhook(&sb),
        &secret,
        &["--count", "40", "--concurrency", "4", "--rate", "2000/s"],
    );
    assert_code(&o, 0);
    assert_eq!(v["statuses"]["200"], 40);
    assert_eq!(v["rate"], 2000.0);

    // ...and refuses every one signed with another: counted, exit 1.
    let (o, v) = load(
        &webhook(&sb),
        &wrong,
        &["--count", "30", "--concurrency", "3"],
    );
    assert_code(&o, 1);
    assert_eq!(v["statuses"]["400"], 30);
    assert_eq!(v["non_2xx"], 30);
    assert_eq!(v["ok"], false);
    assert!(
        stderr(&o).contains("30 of 30 requests were not accepted"),
        "{}",
        stderr(&o)
    );

    // Nobody listening: every request is a counted connection error, exit 3.
    let dead = format!("{}/hook", closed_url());
    let (o, v) = load(&dead, &secret, &["--count", "12", "--concurrency", "4"]);
    assert_code(&o, 3);
    assert_eq!(v["sent"], 12);
    assert_eq!(v["errors"], 12);
    assert_eq!(v["error_kinds"]["connect"], 12);
    assert!(
        v["error_examples"]["connect"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{v}"
    );
    assert!(stderr(&o).contains("no request"), "{}", stderr(&o));

    // A duration bounds the run instead of a count.
    let (o, v) = load(
        &webhook(&sb),
        &secret,
        &["--duration", "300ms", "--concurrency", "2", "--rate", "100"],
    );
    assert_code(&o, 0);
    let sent = v["sent"].as_u64().unwrap();
    assert!((1..=31).contains(&sent), "{v}");

    let o = run(&[
        "events",
        "send",
        "customer.created",
        "--secret-file",
        &secret,
        "--to",
        &dead,
        "--concurrency",
        "2",
    ]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("--count N or --duration D"),
        "{}",
        stderr(&o)
    );
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
