//! `events list|sign|send|verify`, proven against Stripe's own Python library.

use serde_json::Value;

use crate::common::*;

const SECRET_A: &str = "whsec_testAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const SECRET_B: &str = "whsec_testBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

fn secrets() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let a = write_file(dir.path(), "a", &format!("{SECRET_A}\n"));
    let b = write_file(dir.path(), "b", &format!("  {SECRET_B}  "));
    (dir, a.display().to_string(), b.display().to_string())
}

fn sign(args: &[&str]) -> Value {
    let o = run(&[&["events", "sign"], args].concat());
    assert_code(&o, 0);
    json_of(&o)
}

/// Stripe's official library verifies `body` and `header` with `secret`; returns the event id.
fn stripe_python_accepts(body: &str, header: &str, secret: &str) -> Result<String, String> {
    let code = r#"
import os, stripe
try:
    e = stripe.Webhook.construct_event(os.environ["BODY"], os.environ["HEADER"], os.environ["SECRET"])
    print(e.id)
except stripe.SignatureVerificationError as err:
    print("REJECTED:", err)
"#;
    let (status, out, err) = run_python(
        code,
        &[("BODY", body), ("HEADER", header), ("SECRET", secret)],
    );
    assert_eq!(status, 0, "python failed: {err}");
    let out = out.trim().to_owned();
    if out.starts_with("REJECTED") {
        Err(out)
    } else {
        Ok(out)
    }
}

#[test]
fn list_shows_every_template_by_object_and_filters_by_glob() {
    let o = run(&["--json", "events", "list"]);
    assert_code(&o, 0);
    let v: Value = json_of(&o);
    let types = v["types"].as_array().unwrap();
    let thin = v["thin"].as_array().unwrap();
    // stripe-node 23.2.0's 275 snapshot types, the 8 `stripe trigger` variants, 331 thin ones.
    assert_eq!(types.len(), 275 + 8 + 331, "{}", types.len());
    assert_eq!(thin.len(), 331);
    for t in [
        "v1.billing.meter.error_report_triggered",
        "v2.core.event_destination.ping",
    ] {
        assert!(thin.contains(&Value::from(t)), "{t}");
    }
    let eu = v["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "issuing_card.created.eu")
        .unwrap();
    assert_eq!(eu["type"], "issuing_card.created");
    assert_eq!(eu["object"], "issuing.card");

    let o = run(&["events", "list", "invoice.*"]);
    assert_code(&o, 0);
    let text = stdout(&o);
    assert!(text.starts_with("invoice ("), "{text}");
    for line in [
        "  invoice.finalized",
        "  invoice.payment_failed",
        "  invoice.upcoming",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}: {text}");
    }
    // invoiceitem.* and invoice_payment.* are other objects, and thin types are v1.invoice.*.
    assert!(
        !text.contains("invoiceitem.created") && !text.contains("v1."),
        "{text}"
    );
    let o = run(&["events", "list", "issuing_card.*"]);
    assert!(
        stdout(&o).contains("  issuing_card.created.gb  (sends issuing_card.created)"),
        "{}",
        stdout(&o)
    );
    let o = run(&["events", "list", "v1.invoice.p*"]);
    assert!(stdout(&o).starts_with("thin events"), "{}", stdout(&o));

    let o = run(&["events", "list", "nothing.like.this"]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("matches no event type"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn official_stripe_library_accepts_single_and_multi_secret_signatures() {
    let (_dir, a, b) = secrets();
    let single = sign(&["checkout.session.completed", "--secret-file", &a]);
    let body = single["body"].as_str().unwrap();
    let header = single["header"].as_str().unwrap();
    assert_eq!(
        stripe_python_accepts(body, header, SECRET_A).unwrap(),
        single["id"].as_str().unwrap()
    );
    assert!(stripe_python_accepts(body, header, SECRET_B).is_err());

    let multi = sign(&["invoice.paid", "--secret-file", &a, "--secret-file", &b]);
    let (body, header) = (
        multi["body"].as_str().unwrap(),
        multi["header"].as_str().unwrap(),
    );
    assert_eq!(header.matches("v1=").count(), 2);
    assert!(stripe_python_accepts(body, header, SECRET_A).is_ok());
    assert!(stripe_python_accepts(body, header, SECRET_B).is_ok());
}

#[test]
fn the_body_is_stripes_wire_format_byte_for_byte() {
    let (_dir, a, _) = secrets();
    let v = sign(&[
        "checkout.session.completed",
        "--secret-file",
        &a,
        "--create-path",
        "--set",
        "data.object.metadata.note=Grüße aus 東京 \"quoted\" back\\slash",
        "--set",
        "data.object.metadata.nested={\"empty\":{},\"list\":[]}",
    ]);
    let body = v["body"].as_str().unwrap();
    // Parsed and printed again with two-space indentation (UTF-8 kept, as Stripe sends it),
    // the body is the same bytes: no other pretty-printer, no compact JSON.
    let code = r#"
import json, os, sys
body = os.environ["BODY"]
again = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
sys.exit(0 if again == body else 1)
"#;
    let (status, _, err) = run_python(code, &[("BODY", body)]);
    assert_eq!(
        status, 0,
        "the body differs from its pretty print: {err}\n{body}"
    );
    assert!(body.starts_with("{\n  \"id\": \"evt_"), "{body}");
    assert!(
        body.contains("\"empty\": {}") && body.contains("東京"),
        "{body}"
    );
    let header = v["header"].as_str().unwrap();
    assert!(stripe_python_accepts(body, header, SECRET_A).is_ok());
}

#[test]
fn secret_from_environment_and_pinned_output_is_reproducible() {
    let run_env = || {
        let o = bin()
            .args([
                "events",
                "sign",
                "charge.succeeded",
                "--id",
                "evt_fixed",
                "--timestamp",
                "1700000000",
            ])
            .env("STRIPE_WEBHOOK_SECRET", SECRET_A)
            .output()
            .unwrap();
        assert_code(&o, 0);
        stdout(&o)
    };
    let first = run_env();
    assert_eq!(first, run_env());
    let v: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["id"], "evt_fixed");
    assert!(
        v["header"]
            .as_str()
            .unwrap()
            .starts_with("t=1700000000,v1=")
    );
    let event: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(event["created"], 1700000000);
    assert_eq!(event["type"], "charge.succeeded");
}

#[test]
fn sets_account_and_out_files() {
    let (dir, a, _) = secrets();
    let body_file = dir.path().join("body.json");
    let header_file = dir.path().join("header.txt");
    let o = run(&[
        "events",
        "sign",
        "checkout.session.completed",
        "--secret-file",
        &a,
        "--set",
        "data.object.amount_total=777",
        "--set",
        "data.object.metadata.orgId=org_9",
        "--account",
        "acct_123",
        "--out-body",
        body_file.to_str().unwrap(),
        "--out-header",
        header_file.to_str().unwrap(),
    ]);
    assert_code(&o, 0);
    let body = std::fs::read_to_string(&body_file).unwrap();
    let header = std::fs::read_to_string(&header_file).unwrap();
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["data"]["object"]["amount_total"], 777);
    assert_eq!(event["data"]["object"]["metadata"]["orgId"], "org_9");
    assert_eq!(event["account"], "acct_123");
    assert!(stripe_python_accepts(&body, &header, SECRET_A).is_ok());
    // verify accepts what sign wrote, from files
    let o = run(&[
        "events",
        "verify",
        "--secret-file",
        &a,
        "--header-file",
        header_file.to_str().unwrap(),
        "--body-file",
        body_file.to_str().unwrap(),
    ]);
    assert_code(&o, 0);
    assert!(stdout(&o).starts_with("valid"));
}

#[test]
fn fixtures_dir_adds_and_overrides_templates() {
    let (dir, a, _) = secrets();
    let fx = dir.path().join("fx");
    std::fs::create_dir(&fx).unwrap();
    write_file(
        &fx,
        "custom.thing.json",
        r#"{"id":"x","object":"event","created":1,"type":"custom.thing","data":{"object":{"k":1}}}"#,
    );
    let v = sign(&[
        "custom.thing",
        "--secret-file",
        &a,
        "--fixtures-dir",
        fx.to_str().unwrap(),
    ]);
    let event: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(event["data"]["object"]["k"], 1);
    assert!(event["id"].as_str().unwrap().starts_with("evt_"));
}

#[test]
fn verify_accepts_the_official_librarys_header_and_rejects_a_changed_byte() {
    let (dir, a, _) = secrets();
    let body =
        r#"{"id":"evt_py","object":"event","type":"charge.succeeded","note":"ünïcode \"quoted\""}"#;
    let code = r#"
import os, stripe
print(stripe.WebhookSignature.generate_signature_header(os.environ["BODY"], os.environ["SECRET"]))
"#;
    let (status, header, err) = run_python(code, &[("BODY", body), ("SECRET", SECRET_A)]);
    assert_eq!(status, 0, "{err}");
    let header = header.trim();
    let body_file = write_file(dir.path(), "body", body);
    let o = run(&[
        "events",
        "verify",
        "--secret-file",
        &a,
        "--header",
        header,
        "--body-file",
        body_file.to_str().unwrap(),
    ]);
    assert_code(&o, 0);

    let changed = body.replacen("evt_py", "evt_pz", 1);
    let changed_file = write_file(dir.path(), "changed", &changed);
    let o = run(&[
        "events",
        "verify",
        "--secret-file",
        &a,
        "--header",
        header,
        "--body-file",
        changed_file.to_str().unwrap(),
    ]);
    assert_code(&o, 1);
    assert!(
        stderr(&o).contains("no signature matched"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn verify_names_the_precise_reason() {
    let (dir, a, _) = secrets();
    let body = write_file(dir.path(), "body", "{}");
    let body = body.to_str().unwrap();
    let signed = sign(&[
        "customer.created",
        "--secret-file",
        &a,
        "--timestamp",
        "1000",
    ]);
    let body_file = write_file(dir.path(), "signed", signed["body"].as_str().unwrap());
    let header = signed["header"].as_str().unwrap();
    let cases: [(&[&str], i32, &str); 5] = [
        (
            &["--header", "", "--body-file", body],
            1,
            "no Stripe-Signature header",
        ),
        (
            &["--header", "v1=abcd", "--body-file", body],
            1,
            "no timestamp",
        ),
        (
            &["--header", "t=1000,v0=abcd", "--body-file", body],
            1,
            "no v1 signature",
        ),
        (
            &[
                "--header",
                header,
                "--body-file",
                body_file.to_str().unwrap(),
                "--now",
                "1400",
            ],
            1,
            "out of tolerance by 100 s",
        ),
        (
            &["--header", "t=soon,v1=ab", "--body-file", body],
            2,
            "malformed",
        ),
    ];
    for (args, expected, reason) in cases {
        let o = run(&[&["events", "verify", "--secret-file", &a], args].concat());
        assert_code(&o, expected);
        assert!(stderr(&o).contains(reason), "{args:?}: {}", stderr(&o));
    }
    let o = run(&[
        "--json",
        "events",
        "verify",
        "--secret-file",
        &a,
        "--header",
        header,
        "--body-file",
        body_file.to_str().unwrap(),
        "--now",
        "1100",
    ]);
    assert_code(&o, 0);
    let v: Value = json_of(&o);
    assert_eq!(v["valid"], true);
}

/// A receiver written with Stripe's library: prints its port, answers 200 with the event id when
/// `construct_event` accepts, 400 otherwise.
const PY_RECEIVER: &str = r#"
import http.server, json, os, stripe, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
        try:
            e = stripe.Webhook.construct_event(body, self.headers.get("Stripe-Signature"), os.environ["SECRET"])
            status, answer = 200, {"received": e.id, "content_type": self.headers.get("Content-Type"),
                                   "user_agent": self.headers.get("User-Agent")}
        except Exception as err:
            status, answer = 400, {"error": str(err)}
        data = json.dumps(answer).encode()
        self.send_response(status); self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

#[test]
fn send_posts_a_signed_event_that_stripes_library_accepts() {
    let (_dir, a, b) = secrets();
    let (_receiver, base) = python_receiver(PY_RECEIVER, SECRET_A);
    let url = format!("{base}/webhook");

    let o = run(&[
        "--json",
        "events",
        "send",
        "payment_intent.succeeded",
        "--secret-file",
        &a,
        "--to",
        &url,
    ]);
    assert_code(&o, 0);
    let v: Value = json_of(&o);
    assert_eq!(v["status"], 200);
    assert!(
        v["answer"]
            .as_str()
            .unwrap()
            .contains(v["id"].as_str().unwrap())
    );
    // Stripe's delivery headers.
    let answer = v["answer"].as_str().unwrap();
    assert!(
        answer.contains("application/json; charset=utf-8"),
        "{answer}"
    );
    assert!(
        answer.contains("Stripe/1.0 (+https://stripe.com/docs/webhooks)"),
        "{answer}"
    );

    let o = run(&[
        "events",
        "send",
        "payment_intent.succeeded",
        "--secret-file",
        &b,
        "--to",
        &url,
    ]);
    assert_code(&o, 1);
    assert!(stdout(&o).contains("400"), "{}", stdout(&o));
    assert!(stderr(&o).contains("receiver answered 400"));

    let dead = format!("{}/webhook", closed_url());
    let o = run(&[
        "events",
        "send",
        "payment_intent.succeeded",
        "--secret-file",
        &a,
        "--to",
        &dead,
    ]);
    assert_code(&o, 3);
    assert!(stderr(&o).contains("could not connect"), "{}", stderr(&o));
}

#[test]
fn bad_input_is_a_one_line_error_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write_file(dir.path(), "empty", "\n");
    let odd = write_file(dir.path(), "odd", "not_a_whsec_secret\n");
    let good = write_file(dir.path(), "good", SECRET_A);
    let missing = dir.path().join("missing");
    let p = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--secret-file".into(), p(&missing)],
            "cannot read webhook secret file",
        ),
        (vec!["--secret-file".into(), p(&empty)], "is empty"),
        (vec![], "no webhook secret"),
    ];
    for (extra, message) in cases {
        let mut args = vec![
            "events".to_owned(),
            "sign".into(),
            "charge.succeeded".into(),
        ];
        args.extend(extra);
        let o = bin().args(&args).output().unwrap();
        assert_code(&o, 2);
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    }
    let o = run(&[
        "events",
        "sign",
        "charge.succeded",
        "--secret-file",
        &p(&good),
    ]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("did you mean charge.succeeded"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "events",
        "sign",
        "charge.succeeded",
        "--secret-file",
        &p(&good),
        "--set",
        "data.object.nope=1",
    ]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("data.object.nope"));
    let o = run(&[
        "events",
        "sign",
        "charge.succeeded",
        "--secret-file",
        &p(&good),
        "--set",
        "data.object.nope=1",
        "--create-path",
    ]);
    assert_code(&o, 0);
    let o = run(&[
        "events",
        "sign",
        "charge.succeeded",
        "--secret-file",
        &p(&odd),
    ]);
    assert_code(&o, 0);
    assert!(stderr(&o).contains("warning: webhook secret does not start with whsec_"));
    // a secret is never a plain argument
    let o = run(&["events", "sign", "charge.succeeded", "--secret", SECRET_A]);
    assert_code(&o, 2);
}

#[test]
fn canary_secret_never_appears_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let canary = write_file(dir.path(), "canary", CANARY_WHSEC);
    let c = canary.to_str().unwrap();
    let body = write_file(dir.path(), "body", "{}");
    let b = body.to_str().unwrap();
    let dead = format!("{}/", closed_url());
    let commands: Vec<Vec<&str>> = vec![
        vec!["events", "sign", "charge.succeeded", "--secret-file", c],
        vec![
            "--json",
            "events",
            "sign",
            "charge.succeeded",
            "--secret-file",
            c,
        ],
        vec![
            "-vvv",
            "events",
            "sign",
            "charge.refunded",
            "--secret-file",
            c,
            "--set",
            "x.y=1",
        ],
        vec!["events", "sign", "nope", "--secret-file", c],
        vec![
            "events",
            "send",
            "charge.succeeded",
            "--secret-file",
            c,
            "--to",
            &dead,
        ],
        vec![
            "--json",
            "events",
            "send",
            "charge.succeeded",
            "--secret-file",
            c,
            "--to",
            &dead,
        ],
        vec![
            "events",
            "verify",
            "--secret-file",
            c,
            "--header",
            "t=1,v1=00",
            "--body-file",
            b,
        ],
        vec![
            "events",
            "verify",
            "--secret-file",
            c,
            "--header",
            "garbage",
            "--body-file",
            b,
        ],
        vec![
            "--json",
            "events",
            "verify",
            "--secret-file",
            c,
            "--header",
            "t=1,v1=00",
            "--body-file",
            b,
        ],
    ];
    for args in commands {
        let o = run(&args);
        assert_no_leak(&o, &[CANARY_WHSEC]);
        let o = bin()
            .args(&args)
            .env("STRIPE_WEBHOOK_SECRET", CANARY_WHSEC)
            .output()
            .unwrap();
        assert_no_leak(&o, &[CANARY_WHSEC]);
    }
}
