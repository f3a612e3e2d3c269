//! No secret reaches stdout or stderr: every command, run with canary secrets in its files and
//! environment, in human and `--json` mode, on its error paths and with `-vvv` tracing.

use std::process::Output;

use crate::common::*;

/// A buyer password and an app token: secrets too, though not shaped like Stripe's.
const CANARY_PASSWORD: &str = "pw-CANARYcanary-password-0123456789";

/// Fails when any canary, or anything shaped like a Stripe secret, appears in either stream.
#[track_caller]
fn assert_nothing_secret(what: &str, o: &Output) {
    for stream in [stdout(o), stderr(o)] {
        for canary in [CANARY_WHSEC, CANARY_SK, CANARY_PASSWORD] {
            assert!(
                !stream.contains(canary),
                "{what}: {canary} leaked:\n{stream}"
            );
        }
        for prefix in ["whsec_", "sk_test_", "sk_live_", "rk_test_", "rk_live_"] {
            for (at, _) in stream.match_indices(prefix) {
                let next = stream[at + prefix.len()..].chars().next();
                assert!(
                    !next.is_some_and(|c| c.is_ascii_alphanumeric()),
                    "{what}: a secret-shaped {prefix}… was printed:\n{stream}"
                );
            }
        }
    }
}

#[test]
fn no_command_prints_a_secret_on_any_path() {
    let dir = tempfile::tempdir().unwrap();
    let whsec = write_file(dir.path(), "whsec", CANARY_WHSEC);
    let sk = write_file(dir.path(), "sk", CANARY_SK);
    let password = write_file(dir.path(), "password", CANARY_PASSWORD);
    let body = write_file(dir.path(), "body.json", "{}");
    let (whsec, sk, password, body) = (
        whsec.to_str().unwrap(),
        sk.to_str().unwrap(),
        password.to_str().unwrap(),
        body.to_str().unwrap(),
    );
    let dead = closed_url();
    let dead_hook = format!("{dead}/hook");
    let runs: Vec<Vec<&str>> = vec![
        vec!["events", "sign", "invoice.paid", "--secret-file", whsec],
        vec![
            "events",
            "send",
            "invoice.paid",
            "--secret-file",
            whsec,
            "--to",
            &dead_hook,
        ],
        vec![
            "events",
            "send",
            "invoice.paid",
            "--secret-file",
            whsec,
            "--to",
            &dead_hook,
            "--count",
            "3",
        ],
        // The wrong file as the header: described, never quoted.
        vec![
            "events",
            "verify",
            "--secret-file",
            whsec,
            "--header-file",
            password,
            "--body-file",
            body,
        ],
        vec![
            "events",
            "verify",
            "--secret-file",
            whsec,
            "--header-file",
            whsec,
            "--body-file",
            body,
        ],
        vec![
            "smoke",
            "--base-url",
            &dead,
            "--webhook-secret-file",
            whsec,
            "--buyer-email",
            "a@example.com",
            "--buyer-password-file",
            password,
        ],
        vec![
            "smoke",
            "--real",
            "--create-only",
            "--base-url",
            &dead,
            "--buyer-email",
            "a@example.com",
            "--buyer-password-file",
            password,
        ],
        vec!["check", "--webhook-url", &dead_hook, "--secret-file", whsec],
        vec![
            "enable",
            "--env",
            "staging",
            "--stripe-secret-key-file",
            sk,
            "--stripe-webhook-secret-file",
            whsec,
            "--stripe-api-base",
            &dead,
            "--aws-endpoint-url",
            &dead,
        ],
        vec!["status", "--env", "staging", "--aws-endpoint-url", &dead],
        vec![
            "webhook",
            "rotate",
            "--env",
            "staging",
            "--aws-endpoint-url",
            &dead,
        ],
        vec![
            "fanout",
            "--target",
            "a=ftp://x",
            "--verify-secret-file",
            whsec,
        ],
        vec!["sandbox", "--stripe-key-file", whsec],
        vec![
            "sandbox",
            "--webhook-secret-file",
            sk,
            "--listen",
            "256.0.0.1:0",
        ],
        vec!["config", "show"],
        // Usage errors echo values: a secret given where a number goes is scrubbed.
        vec!["smoke", "--topup-cents", CANARY_SK],
        vec![
            "events",
            "send",
            "x",
            "--to",
            CANARY_WHSEC,
            "--timeout",
            CANARY_WHSEC,
        ],
    ];
    for args in &runs {
        for json in [false, true] {
            let mut cmd = bin();
            if json {
                cmd.arg("--json");
            }
            let o = cmd
                .arg("-vvv")
                .args(args)
                .env("STRIPE_WEBHOOK_SECRET", CANARY_WHSEC)
                .env("SMOKE_STRIPE_WEBHOOK_SECRET", CANARY_WHSEC)
                .env("STRIPE_SECRET_KEY", CANARY_SK)
                .env("SMOKE_BUYER_PASSWORD", CANARY_PASSWORD)
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("AWS_MAX_ATTEMPTS", "1")
                .output()
                .unwrap();
            let what = format!("{}{}", if json { "--json " } else { "" }, args.join(" "));
            assert_nothing_secret(&what, &o);
            if json && code(&o) != 0 {
                let v: serde_json::Value = serde_json::from_str(&stdout(&o))
                    .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {}", stdout(&o)));
                assert_eq!(v["ok"], false, "{what}");
            }
        }
    }
}
