//! The deterministic smoke against the sandbox: every step passes against a healthy app, a given
//! buyer logs in again without the password ever showing, and each of the sandbox's faults fails
//! the step meant to catch it (exit 1) saying why.

use super::*;

const ALL_STEPS: [&str; 11] = [
    "health",
    "login",
    "balance",
    "checkout",
    "webhook",
    "credit",
    "replay",
    "concurrent",
    "wrong-secret",
    "old-timestamp",
    "events",
];

#[test]
fn the_deterministic_smoke_passes_against_a_healthy_sandbox() {
    let t = Target::start(&[]);
    let o = t.smoke_json(&[]);
    assert_code(&o, 0);
    let r = json_of(&o);
    assert_eq!(r["ok"], true);
    let names: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ALL_STEPS);
    for s in r["steps"].as_array().unwrap() {
        assert_eq!(s["ok"], true, "{s}");
        assert!(s["ms"].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(r["base_url"], t.app());
    assert_eq!(r["amount_cents"], 500);
    assert!(r["session_id"].as_str().unwrap().starts_with("cs_"));
    // The session's credit, and the second session's of the concurrent step.
    assert_eq!(
        r["balance_after"].as_i64().unwrap() - r["balance_before"].as_i64().unwrap(),
        1000
    );
    assert_no_leak(&o, &[CANARY_WHSEC]);

    // People get one line per step and a verdict; only the happy path when asked.
    let o = smoke_cmd(&[
        "--base-url",
        t.app(),
        "--webhook-secret-file",
        t.secret.to_str().unwrap(),
        "--only-happy-path",
        "--topup-cents",
        "100",
    ])
    .output()
    .unwrap();
    assert_code(&o, 0);
    let out = stdout(&o);
    for step in &ALL_STEPS[..6] {
        assert!(out.contains(step), "{step} missing:\n{out}");
    }
    assert!(!out.contains("replay"), "{out}");
    assert!(out.contains("smoke passed: 6 steps"), "{out}");
}

#[test]
fn a_given_buyer_logs_in_again_and_the_password_never_shows() {
    let t = Target::start(&[]);
    let pw = private_file(t.dir.path(), "pw", BUYER_PASSWORD);
    let args = [
        "--buyer-email",
        "ci-buyer@example.com",
        "--buyer-password-file",
        pw.to_str().unwrap(),
        "--only-happy-path",
    ];
    let first = t.smoke_json(&args);
    assert_code(&first, 0);
    let second = t.smoke_json(&args);
    assert_code(&second, 0);
    let r = json_of(&second);
    assert!(
        r["steps"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("logged in as ci-buyer@example.com")
    );
    assert_eq!(
        r["balance_before"], 500,
        "the second run starts from the first credit"
    );
    // From the environment too, and a wrong password is a clear failure.
    let o = smoke_cmd(&["--base-url", t.app(), "--only-happy-path"])
        .env("SMOKE_STRIPE_WEBHOOK_SECRET", CANARY_WHSEC)
        .env("SMOKE_BUYER_EMAIL", "ci-buyer@example.com")
        .env("SMOKE_BUYER_PASSWORD", "wrong-CANARY-pw")
        .output()
        .unwrap();
    assert_code(&o, 1);
    assert!(stderr(&o).contains("step `login`"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("wrong buyer password"),
        "{}",
        stderr(&o)
    );
    for o in [&first, &second, &o] {
        assert_no_leak(o, &[BUYER_PASSWORD, "wrong-CANARY-pw", CANARY_WHSEC]);
    }
}

/// The smoke against a sandbox with `fault` fails with exit 1 at `step`, saying `why`.
fn assert_fault_fails_at(fault: &str, step: &str, why: &str) {
    let t = Target::start(&[fault]);
    let o = t.smoke_json(&[]);
    assert_code(&o, 1);
    let r = json_of(&o);
    assert_eq!(r["ok"], false);
    assert_eq!(r["failed_step"], step, "{fault}: {r:#}");
    // The negative steps are judged together: every one of them is reported, and the first
    // that failed is the smoke's failure; no step after it passes unjudged.
    let steps = r["steps"].as_array().unwrap();
    let failed: Vec<&str> = steps
        .iter()
        .filter(|s| s["ok"] == false)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed.first(), Some(&step), "{fault}: {r:#}");
    assert!(steps.iter().all(|s| s["name"] != "events") || step == "events");
    let err = stderr(&o);
    assert!(
        err.contains(&format!("smoke failed at step `{step}`")),
        "{err}"
    );
    assert!(err.contains(why), "{fault}: want {why:?} in {err}");
    assert_no_leak(&o, &[CANARY_WHSEC]);
}

#[test]
fn double_credit_fails_the_replay_step() {
    assert_fault_fails_at("double-credit", "replay", "credited twice");
}

#[test]
fn racy_credit_fails_the_concurrent_step() {
    assert_fault_fails_at("racy-credit", "concurrent", "credited more than once");
}

#[test]
fn no_signature_check_fails_the_wrong_secret_step() {
    assert_fault_fails_at(
        "no-signature-check",
        "wrong-secret",
        "does not check signatures",
    );
}

#[test]
fn ignore_tolerance_fails_the_old_timestamp_step() {
    assert_fault_fails_at("ignore-tolerance", "old-timestamp", "answered 200 OK");
}

#[test]
fn webhook_500_fails_the_webhook_step_with_status_and_excerpt() {
    assert_fault_fails_at(
        "webhook-500",
        "webhook",
        "answered 500 Internal Server Error",
    );
}

#[test]
fn drop_metadata_fails_the_events_step() {
    assert_fault_fails_at("drop-metadata", "events", "no stripe_topup for the session");
}
