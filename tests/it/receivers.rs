//! Verdicts against receivers written with Stripe's official libraries the way Stripe's docs show
//! (`tests/receivers/app.js` with stripe-node, `tests/receivers/app.py` with stripe-python):
//! the correct ones pass `smoke` and `check`, each classic bug fails at the step or case meant for
//! it, and a receiver that verifies a re-serialised body gets the raw-body diagnosis.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

use crate::check::REJECTION_CASES;
use crate::common::*;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Lang {
    Node,
    Python,
}

/// A receiver app on a free port, stopped when dropped.
pub(crate) struct Receiver {
    pub(crate) base: String,
    _proc: Proc,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) secret_file: PathBuf,
}

pub(crate) fn receivers_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("STRIPE_OPS_TEST_RECEIVERS").unwrap_or_else(|_| {
            panic!("STRIPE_OPS_TEST_RECEIVERS is not set: run the suite with tests/run.sh")
        }),
    )
}

pub(crate) fn node() -> Command {
    Command::new(std::env::var("STRIPE_OPS_TEST_NODE").unwrap_or_else(|_| {
        panic!("STRIPE_OPS_TEST_NODE is not set: run the suite with tests/run.sh")
    }))
}

/// The top-up app of `lang` (`app.js` or `app.py`) with `bug`.
fn receiver(lang: Lang, bug: &str) -> Receiver {
    let script = match lang {
        Lang::Node => "app.js",
        Lang::Python => "app.py",
    };
    start_receiver(lang, script, bug, &[])
}

/// Starts `tests/receivers/<script>` with `bug`, the canary secret and `envs` (a value
/// `{dir}` is the receiver's own temporary folder), and waits for its port.
pub(crate) fn start_receiver(
    lang: Lang,
    script: &str,
    bug: &str,
    envs: &[(&str, &str)],
) -> Receiver {
    let dir = receivers_dir();
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = match lang {
        Lang::Node => node(),
        Lang::Python => python(),
    };
    cmd.arg(dir.join(script))
        .current_dir(&dir)
        .env("SECRET", CANARY_WHSEC)
        .env("BUG", bug)
        // Express logs the errors of refused junk bodies outside "test".
        .env("NODE_ENV", "test");
    for (k, v) in envs {
        cmd.env(k, v.replace("{dir}", tmp.path().to_str().unwrap()));
    }
    let (proc, port) = spawn_announcing(cmd);
    assert!(
        port.parse::<u16>().is_ok(),
        "{script} {bug}: no port: {port:?}"
    );
    let secret_file = write_file(tmp.path(), "whsec", CANARY_WHSEC);
    Receiver {
        base: format!("http://127.0.0.1:{port}"),
        _proc: proc,
        dir: tmp,
        secret_file,
    }
}

impl Receiver {
    fn smoke(&self) -> (Output, Value) {
        let o = run(&[
            "--json",
            "smoke",
            "--base-url",
            &self.base,
            "--webhook-secret-file",
            self.secret_file.to_str().unwrap(),
        ]);
        assert_no_leak(&o, &[CANARY_WHSEC]);
        let v = json_of(&o);
        (o, v)
    }

    fn check(&self) -> (Output, Value) {
        let o = run(&[
            "--json",
            "check",
            "--base-url",
            &self.base,
            "--secret-file",
            self.secret_file.to_str().unwrap(),
        ]);
        assert_no_leak(&o, &[CANARY_WHSEC]);
        let v = json_of(&o);
        (o, v)
    }
}

pub(crate) fn with_outcome(report: &Value, outcome: &str) -> BTreeSet<String> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == outcome)
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// The two advisory cases a receiver written as Stripe's docs show does not meet: it accepts
/// future timestamps (as Stripe's libraries do) and credits a session it never created.
fn docs_receiver_warnings() -> BTreeSet<String> {
    set(&[
        "security.timestamp_in_future",
        "idempotency.unknown_session",
    ])
}

#[track_caller]
fn assert_passes(lang: Lang, bug: &str) {
    let r = receiver(lang, bug);
    let (o, v) = r.smoke();
    assert_code(&o, 0);
    assert_eq!(v["ok"], true, "{lang:?} {bug}: {v}");
    let (o, v) = r.check();
    assert_code(&o, 0);
    assert_eq!(
        with_outcome(&v, "failed"),
        BTreeSet::new(),
        "{lang:?} {bug}"
    );
    assert_eq!(
        with_outcome(&v, "warned"),
        docs_receiver_warnings(),
        "{lang:?} {bug}"
    );
    assert_eq!(v["warned"], 2);
}

#[track_caller]
fn assert_smoke_fails_at(r: &Receiver, step: &str) -> String {
    let (o, v) = r.smoke();
    assert_code(&o, 1);
    assert_eq!(v["failed_step"], step, "{v}");
    v["error"].as_str().unwrap().to_owned()
}

#[track_caller]
fn assert_check_fails(r: &Receiver, failed: &BTreeSet<String>) -> Value {
    let (o, v) = r.check();
    assert_code(&o, 1);
    assert_eq!(&with_outcome(&v, "failed"), failed, "{}", v["cases"]);
    v
}

#[test]
fn the_docs_receiver_in_node_passes_smoke_and_check() {
    assert_passes(Lang::Node, "none");
}

#[test]
fn the_docs_receiver_in_python_passes_smoke_and_check() {
    assert_passes(Lang::Python, "none");
}

#[test]
fn a_receiver_that_answers_first_and_credits_later_passes() {
    assert_passes(Lang::Node, "async");
}

#[test]
fn verifying_a_reserialised_body_is_diagnosed_in_plain_words() {
    let r = receiver(Lang::Node, "reserialize");
    let error = assert_smoke_fails_at(&r, "webhook");
    assert!(
        error.contains("verifies a re-serialised body, not the raw bytes"),
        "{error}"
    );
    let (o, v) = r.check();
    assert_code(&o, 1);
    let raw = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "security.raw_body")
        .unwrap()
        .clone();
    assert_eq!(raw["outcome"], "failed");
    let detail = raw["detail"].as_str().unwrap();
    assert!(
        detail.contains("the same event compact was accepted"),
        "{detail}"
    );
    assert!(
        detail.contains("every real Stripe delivery fails"),
        "{detail}"
    );
}

#[test]
fn no_signature_check_fails_the_wrong_secret_step_and_the_rejection_cases() {
    let r = receiver(Lang::Python, "no-signature-check");
    assert_smoke_fails_at(&r, "wrong-secret");
    assert_check_fails(&r, &set(&REJECTION_CASES));
}

#[test]
fn a_tolerance_of_zero_fails_the_old_timestamp_step_and_case() {
    let r = receiver(Lang::Python, "ignore-tolerance");
    assert_smoke_fails_at(&r, "old-timestamp");
    assert_check_fails(&r, &set(&["security.timestamp_too_old"]));
}

#[test]
fn no_idempotency_fails_the_replay_step_and_the_duplicate_cases() {
    let r = receiver(Lang::Python, "no-idempotency");
    assert_smoke_fails_at(&r, "replay");
    assert_check_fails(
        &r,
        &set(&[
            "idempotency.sequential_duplicate",
            "idempotency.concurrent_duplicates",
            "idempotency.same_id_other_body",
        ]),
    );
}

#[test]
fn check_then_insert_fails_only_the_concurrent_step_and_case() {
    let r = receiver(Lang::Python, "race");
    assert_smoke_fails_at(&r, "concurrent");
    assert_check_fails(&r, &set(&["idempotency.concurrent_duplicates"]));
}

#[test]
fn crediting_later_without_idempotency_is_caught_after_the_answer() {
    // Both answers are 200 before anything is credited: only watching the balance afterwards
    // (the quiet window) sees the second credit.
    let r = receiver(Lang::Node, "async-no-idempotency");
    let error = assert_smoke_fails_at(&r, "replay");
    assert!(error.contains("credited twice"), "{error}");
    assert_check_fails(
        &r,
        &set(&[
            "idempotency.sequential_duplicate",
            "idempotency.concurrent_duplicates",
            "idempotency.same_id_other_body",
        ]),
    );
}

#[test]
fn stripe_node_accepts_every_signature_of_events_sign() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_file(dir.path(), "a", CANARY_WHSEC);
    let b = write_file(dir.path(), "b", "whsec_SECONDsecond0123456789abcdef");
    let o = run(&[
        "events",
        "sign",
        "checkout.session.completed",
        "--secret-file",
        a.to_str().unwrap(),
        "--secret-file",
        b.to_str().unwrap(),
        "--create-path",
        "--set",
        "data.object.metadata.note=Grüße \"東京\"",
    ]);
    assert_code(&o, 0);
    let v = json_of(&o);
    let script = r#"
const stripe = require('stripe')('sk_test_unused');
for (const secret of [process.env.A, process.env.B]) {
  const e = stripe.webhooks.constructEvent(Buffer.from(process.env.BODY), process.env.HEADER, secret);
  if (e.id !== process.env.ID) throw new Error('wrong id');
}
console.log('accepted');
"#;
    let out = node()
        .current_dir(receivers_dir())
        .args(["-e", script])
        .env("A", CANARY_WHSEC)
        .env("B", "whsec_SECONDsecond0123456789abcdef")
        .env("BODY", v["body"].as_str().unwrap())
        .env("HEADER", v["header"].as_str().unwrap())
        .env("ID", v["id"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "accepted");
}

/// Thin events (event destinations): the templates parse with Stripe's own thin-event parsers,
/// `parseEventNotification` in stripe-node and `parse_event_notification` in stripe-python, and
/// `check --event-payload thin` passes such a receiver. A snapshot receiver (`constructEvent`)
/// refuses them, which is why `check` sends them only when asked.
#[test]
fn thin_events_parse_with_stripes_event_notification_parsers() {
    const THIN: [&str; 2] = [
        "v2.core.event_destination.ping",
        "v1.billing.meter.error_report_triggered",
    ];
    for lang in [Lang::Node, Lang::Python] {
        let r = receiver(lang, "none");
        let thin_url = format!("{}/api/webhooks/stripe-thin", r.base);
        let secret = r.secret_file.to_str().unwrap();
        for t in THIN {
            let o = run(&[
                "--json",
                "events",
                "send",
                t,
                "--to",
                &thin_url,
                "--secret-file",
                secret,
            ]);
            assert_code(&o, 0);
            let answer: Value =
                serde_json::from_str(json_of(&o)["answer"].as_str().unwrap()).unwrap();
            assert_eq!(answer["type"], t, "{lang:?}: {answer}");
            let o = run(&[
                "--json",
                "events",
                "send",
                t,
                "--to",
                &format!("{}/api/webhooks/stripe", r.base),
                "--secret-file",
                secret,
            ]);
            assert_code(&o, 1);
        }
        let o = run(&[
            "--json",
            "check",
            "--webhook-url",
            &thin_url,
            "--secret-file",
            secret,
            "--event-payload",
            "thin",
        ]);
        assert_code(&o, 0);
        let passed = with_outcome(&json_of(&o), "passed");
        assert_eq!(
            passed,
            THIN.iter().map(|t| format!("types.{t}")).collect(),
            "{lang:?}"
        );
        // The snapshot suites and types stay away from thin receivers' expectations, and thin
        // types away from snapshot receivers.
        let (o, v) = r.check();
        assert_code(&o, 0);
        assert!(
            with_outcome(&v, "passed")
                .iter()
                .all(|c| !c.contains("v2.core") && !c.starts_with("types.v1.")),
            "{v}"
        );
    }
}
