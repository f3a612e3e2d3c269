//! `stripe-ops smoke`: the deterministic smoke and the real-checkout smoke with receipts, against
//! the sandbox on loopback, moto_server for Secrets Manager, and headless Chromium for paying.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

const BUYER_PASSWORD: &str = "buyer-pw-CANARY-0123456789";

fn smoke_cmd(args: &[&str]) -> Command {
    let mut cmd = bin();
    cmd.env_remove("SMOKE_STRIPE_WEBHOOK_SECRET")
        .env_remove("SMOKE_BUYER_EMAIL")
        .env_remove("SMOKE_BUYER_PASSWORD")
        .env_remove("STRIPE_SECRET_KEY")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("BROWSER")
        .arg("smoke")
        .args(args);
    cmd
}

fn smoke(args: &[&str]) -> Output {
    smoke_cmd(args).output().expect("the binary runs")
}

fn json_of(o: &Output) -> Value {
    serde_json::from_str(&stdout(o))
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", stdout(o)))
}

/// A base URL where nothing listens.
fn closed_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

fn private_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = write_file(dir, name, content);
    set_mode(&p, 0o600);
    p
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------- usage and input errors

#[test]
fn topup_outside_the_range_is_refused_with_exit_2() {
    for cents in ["99", "50001"] {
        let o = smoke(&["--base-url", "http://127.0.0.1:1", "--topup-cents", cents]);
        assert_code(&o, 2);
        assert!(
            stderr(&o).contains("between 100 and 50000"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn missing_base_url_and_secret_are_usage_errors() {
    let o = smoke(&[]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("no base URL"), "{}", stderr(&o));

    let o = smoke(&["--env", "staging"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("--base-url"), "{}", stderr(&o));

    let o = smoke(&["--base-url", "http://127.0.0.1:1"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("no webhook secret"), "{}", stderr(&o));

    let o = smoke(&[
        "--base-url",
        "http://127.0.0.1:1",
        "--buyer-email",
        "a@example.com",
    ]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("needs a password"), "{}", stderr(&o));

    let o = smoke(&["--base-url", "http://127.0.0.1:1", "--open"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("--open belongs to the real-checkout smoke"));

    let o = smoke(&["--verify-only"]);
    assert_code(&o, 2);
}

#[test]
fn an_unreachable_app_exits_3_naming_the_health_step() {
    let dir = tempfile::tempdir().unwrap();
    let secret = private_file(dir.path(), "whsec", CANARY_WHSEC);
    let url = closed_url();
    let o = smoke(&[
        "--base-url",
        &url,
        "--webhook-secret-file",
        secret.to_str().unwrap(),
    ]);
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("smoke failed at step `health`"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("could not connect"), "{}", stderr(&o));
    assert_no_leak(&o, &[CANARY_WHSEC]);

    let o = bin()
        .args(["--json", "smoke", "--base-url", &url])
        .env("SMOKE_STRIPE_WEBHOOK_SECRET", CANARY_WHSEC)
        .output()
        .unwrap();
    assert_code(&o, 3);
    let report = json_of(&o);
    assert_eq!(report["ok"], false);
    assert_eq!(report["failed_step"], "health");
    assert_eq!(report["steps"][0]["name"], "health");
    assert_eq!(report["steps"][0]["ok"], false);
    assert_no_leak(&o, &[CANARY_WHSEC]);
}

#[test]
fn create_only_against_an_unreachable_app_exits_3_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receipt = dir.path().join("r.json");
    let o = smoke(&[
        "--create-only",
        "--base-url",
        &closed_url(),
        "--receipt",
        receipt.to_str().unwrap(),
    ]);
    assert_code(&o, 3);
    assert!(!receipt.exists());
}

// ---------------------------------------------------------------- receipts

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
fn a_shared_receipt_warns_and_a_verify_timeout_says_what_it_saw() {
    let text = receipt_json(&closed_url()).to_string();
    let o = verify_receipt_text(&text, 0o644, &["--wait", "0.3"]);
    assert_code(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("readable by other users"), "{err}");
    assert!(err.contains("timed out after 0.3 s"), "{err}");
    assert!(err.contains("last seen"), "{err}");
    assert!(err.contains("could not connect"), "{err}");
    assert_no_leak(&o, &[BUYER_PASSWORD, "tok-CANARY-secret"]);
}

// ---------------------------------------------------------------- Secrets Manager

fn put_secret(moto: &Moto, id: &str, value: &str) {
    let envs: Vec<(&str, String)> = moto.env();
    let mut envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    envs.push(("SECRET_ID", id));
    envs.push(("SECRET_VALUE", value));
    let (code, out, err) = run_python(
        "import boto3, os\n\
         boto3.client('secretsmanager', endpoint_url=os.environ['AWS_ENDPOINT_URL'])\
         .create_secret(Name=os.environ['SECRET_ID'], SecretString=os.environ['SECRET_VALUE'])",
        &envs,
    );
    assert_eq!(code, 0, "create_secret failed: {out}{err}");
}

fn smoke_with_moto(moto: &Moto, args: &[&str]) -> Output {
    smoke_cmd(args)
        .envs(moto.env())
        .output()
        .expect("the binary runs")
}

#[test]
fn the_webhook_secret_comes_from_secrets_manager_with_env() {
    let moto = Moto::start();
    let url = closed_url();
    // Not there yet: exit 3 naming the secret.
    let o = smoke_with_moto(&moto, &["--env", "staging", "--base-url", &url]);
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("proofwork-staging/STRIPE_WEBHOOK_SECRET"),
        "{}",
        stderr(&o)
    );
    // There: the smoke gets past the secret and on to the app (which is down here).
    put_secret(
        &moto,
        "proofwork-staging/STRIPE_WEBHOOK_SECRET",
        CANARY_WHSEC,
    );
    let o = smoke_with_moto(&moto, &["--env", "staging", "--base-url", &url]);
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("smoke failed at step `health`"),
        "{}",
        stderr(&o)
    );
    assert_no_leak(&o, &[CANARY_WHSEC]);
}
