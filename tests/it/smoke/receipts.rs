//! Receipts handed to `--verify-only`: an unusable one is exit 2 with the reason, a shared one
//! (readable by others) warns, an app never reached is exit 3, and `--verify-stripe-event` needs a
//! Stripe key.

use super::*;

/// A valid receipt for an app at `base_url`, as create-only writes it.
fn receipt_json(base_url: &str) -> Value {
    json!({
        "kind": "stripe-ops.receipt",
        "version": 1,
        "created_at": "2026-01-02T03:04:05Z",
        "base_url": base_url,
        "buyer_email": "smoke+1@example.com",
        "buyer_password": BUYER_PASSWORD,
        "buyer_token": "tok-CANARY-secret",
        "stripe_session_id": "cs_test_missing",
        "payment_intent_id": "pi_1",
        "checkout_url": format!("{base_url}/checkout/cs_test_missing#frag"),
        "amount_cents": 500,
        "balance_before_cents": 0,
    })
}

fn verify_receipt_text(text: &str, mode: u32, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let p = write_file(dir.path(), "receipt.json", text);
    set_mode(&p, mode);
    let mut args = vec!["--verify-only", "--receipt", p.to_str().unwrap()];
    args.extend_from_slice(extra);
    smoke(&args)
}

#[test]
fn unusable_receipts_exit_2_with_the_reason() {
    let base = closed_url();
    let edit = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = receipt_json(&base);
        f(v.as_object_mut().unwrap());
        v.to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "is not valid JSON"),
        (
            edit(&|m| {
                m.remove("stripe_session_id");
            }),
            "missing field `stripe_session_id`",
        ),
        (
            edit(&|m| {
                m.insert("kind".into(), json!("stripe-ops.other"));
            }),
            "wrong kind",
        ),
        (
            edit(&|m| {
                m.insert("version".into(), json!(7));
            }),
            "version 7 is newer",
        ),
    ];
    for (text, reason) in cases {
        let o = verify_receipt_text(&text, 0o600, &[]);
        assert_code(&o, 2);
        assert!(
            stderr(&o).contains(reason),
            "want {reason:?}:\n{}",
            stderr(&o)
        );
        assert_no_leak(&o, &[BUYER_PASSWORD, "tok-CANARY-secret"]);
    }
    let o = smoke(&["--verify-only", "--receipt", "/nonexistent/receipt.json"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("cannot read receipt"), "{}", stderr(&o));

    let dir = tempfile::tempdir().unwrap();
    let unreadable = private_file(dir.path(), "r.json", &receipt_json(&base).to_string());
    set_mode(&unreadable, 0o000);
    if std::fs::read(&unreadable).is_err() {
        // Not root: the mode really makes it unreadable.
        let o = smoke(&["--verify-only", "--receipt", unreadable.to_str().unwrap()]);
        assert_code(&o, 2);
        assert!(stderr(&o).contains("cannot read receipt"));
    }
}

#[test]
fn a_shared_receipt_warns_and_an_app_never_reached_is_exit_3() {
    let text = receipt_json(&closed_url()).to_string();
    let o = verify_receipt_text(&text, 0o644, &["--wait", "0.3"]);
    // Nothing answered: an outside failure, not a payment that did not happen.
    assert_code(&o, 3);
    let err = stderr(&o);
    assert!(err.contains("readable by other users"), "{err}");
    assert!(err.contains("could not be reached for 0.3 s"), "{err}");
    assert!(err.contains("could not connect"), "{err}");
    assert!(!err.contains("Was the payment completed"), "{err}");
    assert_no_leak(&o, &[BUYER_PASSWORD, "tok-CANARY-secret"]);
}

#[test]
fn verify_stripe_event_needs_a_key() {
    let text = receipt_json(&closed_url()).to_string();
    let o = verify_receipt_text(&text, 0o600, &["--verify-stripe-event"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("needs a Stripe key"), "{}", stderr(&o));
}
