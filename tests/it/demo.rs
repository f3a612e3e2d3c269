//! `stripe-ops demo`: the README's first command, end to end against its embedded sandbox.

use serde_json::Value;

use crate::common::*;

fn parts(o: &std::process::Output) -> Vec<Value> {
    let v: Value =
        serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)));
    assert_eq!(v["ok"], true, "{v}");
    v["parts"].as_array().unwrap().clone()
}

#[test]
fn demo_pays_in_headless_chromium_and_every_part_passes() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin()
        .args([
            "--json",
            "demo",
            "--receipts-dir",
            dir.path().to_str().unwrap(),
        ])
        .env(
            "STRIPE_OPS_CHROMEDRIVER",
            std::env::var("STRIPE_OPS_CHROMEDRIVER").expect("run through tests/run.sh"),
        )
        .output()
        .unwrap();
    assert_code(&o, 0);
    let parts = parts(&o);
    let names: Vec<&str> = parts.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "deterministic smoke",
            "real smoke: create-only",
            "pay",
            "real smoke: verify-only",
            "conformance check"
        ]
    );
    assert!(parts.iter().all(|p| p["ok"] == true));
    assert!(
        parts[2]["detail"]
            .as_str()
            .unwrap()
            .contains("headless Chromium")
    );
    let receipt: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("demo-receipt.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(receipt["kind"], "stripe-ops.receipt");
    assert!(
        receipt["outcome"].is_object(),
        "verify wrote its outcome back: {receipt}"
    );
    let password = receipt["buyer_password"].as_str().unwrap();
    let token = receipt["buyer_token"].as_str().unwrap();
    assert_no_leak(&o, &[password, token]);
}

#[test]
fn demo_without_a_webdriver_pays_by_form_post_and_says_so() {
    let o = bin().args(["demo", "--no-browser"]).output().unwrap();
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("paid by a plain HTTP form post"), "{out}");
    assert!(out.contains("demo passed"), "{out}");
    assert!(
        !out.contains("whsec_") && !out.contains("sk_test_"),
        "{out}"
    );
}
