//! `events replay` against the sandbox: events created by paid checkouts while the app was
//! down, listed by Stripe's filters (`GET /v1/events`), delivered again so that the balances are
//! where they should be; the state file makes a second run send nothing.

use super::*;

const AMOUNTS: [i64; 3] = [500, 700, 900];

/// Runs `stripe-ops --json events replay ARGS` with the key in STRIPE_API_KEY (the Stripe
/// CLI's name for it).
fn replay(key: &str, args: &[&str]) -> std::process::Output {
    bin()
        .env("STRIPE_API_KEY", key)
        .env_remove("STRIPE_SECRET_KEY")
        .args(["--json", "events", "replay"])
        .args(args)
        .output()
        .unwrap()
}

/// Pays a top-up without waiting for its webhook.
async fn pay(app: &App, amount: i64) -> Topup {
    let t = app.topup(amount).await;
    let paid = stripe_ops::sandbox::pay_with_form_post(
        &app.http,
        &t.checkout_url,
        stripe_ops::sandbox::TEST_CARD,
    )
    .await
    .unwrap();
    assert!(matches!(paid, stripe_ops::sandbox::PayOutcome::Paid { .. }));
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_brings_an_app_that_was_down_back_to_its_balances_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let whsec = write_file(d, "whsec", SECRET_A);
    let key_file = write_file(d, "sk", CANARY_SK);
    let state = d.join("sandbox-state.json");
    let base = [
        "--webhook-secret-file",
        whsec.to_str().unwrap(),
        "--stripe-key-file",
        key_file.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--delivery-attempts",
        "1",
    ];
    // The app is down: it answers 500 to every webhook, and Stripe tries once.
    let down = Sandbox::start(&[&base[..], &["--fault", "webhook-500"]].concat());
    let app = App::new(&down.app);
    let mut topups = Vec::new();
    for amount in AMOUNTS {
        topups.push(pay(&app, amount).await);
    }
    eventually("the failed deliveries", Duration::from_secs(20), || async {
        let req = app
            .http
            .get(format!(
                "{}/v1/events?delivery_success=false",
                down.stripe_api
            ))
            .bearer_auth(CANARY_SK);
        let (_, v) = app.send(req).await;
        let data = v["data"].as_array().cloned().unwrap_or_default();
        if data.len() != 3 {
            return None;
        }
        for e in &data {
            let id = e["id"].as_str()?;
            let req = app
                .http
                .get(format!("{}{}", down.stripe_api, attempts_path(id)))
                .bearer_auth(CANARY_SK);
            let (_, a) = app.send(req).await;
            a["delivery_attempts"]
                .as_array()
                .filter(|a| !a.is_empty())?;
        }
        Some(())
    })
    .await;
    for t in &topups {
        assert_eq!(app.balance(&t.token).await, 0);
    }
    drop(down);

    // Back up, same state: the events are still listed as not delivered.
    let up = Sandbox::start(&base);
    let app = App::new(&up.app);
    let to = format!("{}/api/webhooks/stripe", up.app);
    let replay_state = d.join("replay-state.json");
    let common = [
        "--stripe-api-base",
        up.stripe_api.as_str(),
        "--to",
        to.as_str(),
        "--secret-file",
        whsec.to_str().unwrap(),
        "--state",
        replay_state.to_str().unwrap(),
        "--failed-only",
        "--since",
        "1h",
    ];
    let o = replay(CANARY_SK, &[&common[..], &["--dry-run"]].concat());
    assert_code(&o, 0);
    let dry = json_of(&o);
    assert_eq!(dry["events"].as_array().unwrap().len(), 3, "{dry}");
    assert!(!replay_state.exists(), "a dry run writes nothing");
    for t in &topups {
        assert_eq!(app.balance(&t.token).await, 0);
    }

    let o = replay(CANARY_SK, &common);
    assert_code(&o, 0);
    let r = json_of(&o);
    assert_eq!(r["sent"], 3, "{r}");
    assert_eq!(r["by_status"]["200"], 3, "{r}");
    let created: Vec<i64> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["created"].as_i64().unwrap())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {created:?}"
    );
    for (t, amount) in topups.iter().zip(AMOUNTS) {
        assert_eq!(app.balance(&t.token).await, amount);
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&replay_state)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A second run: Stripe still lists them (the replay went to the app, not through Stripe);
    // the state file says they were delivered.
    let o = replay(CANARY_SK, &common);
    assert_code(&o, 0);
    let r = json_of(&o);
    assert_eq!(
        (r["sent"].as_u64(), r["already_delivered"].as_u64()),
        (Some(0), Some(3)),
        "{r}"
    );
    for (t, amount) in topups.iter().zip(AMOUNTS) {
        assert_eq!(app.balance(&t.token).await, amount, "credited once");
    }

    // Type filters: Stripe's `type` wildcard, and several globs filtered here.
    let list = |types: &[&str]| {
        let mut args = vec![
            "--stripe-api-base",
            up.stripe_api.as_str(),
            "--to",
            to.as_str(),
            "--secret-file",
            whsec.to_str().unwrap(),
            "--dry-run",
        ];
        for t in types {
            args.extend(["--type", t]);
        }
        let o = replay(CANARY_SK, &args);
        assert_code(&o, 0);
        json_of(&o)["events"].as_array().unwrap().len()
    };
    assert_eq!(list(&["checkout.session.*"]), 3);
    assert_eq!(list(&["invoice.*"]), 0);
    assert_eq!(list(&["invoice.*", "checkout.*.completed"]), 3);

    // The app's endpoint is not pinned: nothing to compare, no warning.
    let dry_run = [
        "--stripe-api-base",
        up.stripe_api.as_str(),
        "--to",
        to.as_str(),
        "--secret-file",
        whsec.to_str().unwrap(),
        "--failed-only",
        "--dry-run",
    ];
    let o = replay(CANARY_SK, &dry_run);
    let versions = &json_of(&o)["api_versions"];
    assert!(versions["expected"].is_null(), "{versions}");
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    // Pinned to another version than the events were created with (the flag, then the
    // endpoint at Stripe): each event is counted and the warning says what receivers do.
    let check_pinned = |o: &std::process::Output, from: &str| {
        assert_code(o, 0);
        let versions = &json_of(o)["api_versions"];
        assert_eq!(versions["expected"], "2024-06-20", "{versions}");
        assert_eq!(versions["other"], 3, "{versions}");
        assert!(
            versions["from"].as_str().unwrap().starts_with(from),
            "{versions}"
        );
        let err = stderr(o);
        assert!(
            err.contains("warning: 3 of 3 event(s) name API version")
                && err.contains("not 2024-06-20")
                && err.contains("Go (v73+) or .NET"),
            "{err}"
        );
    };
    let flagged = [&dry_run[..], &["--api-version", "2024-06-20"]].concat();
    check_pinned(&replay(CANARY_SK, &flagged), "--api-version");
    let stripe = |path: String, form: Vec<(&str, &str)>| {
        let req = app
            .http
            .post(format!("{}{path}", up.stripe_api))
            .bearer_auth(CANARY_SK)
            .form(&form);
        app.send(req)
    };
    let (_, endpoints) = app
        .send(
            app.http
                .get(format!("{}/v1/webhook_endpoints", up.stripe_api))
                .bearer_auth(CANARY_SK),
        )
        .await;
    for e in endpoints["data"].as_array().unwrap() {
        let id = e["id"].as_str().unwrap();
        stripe(
            format!("/v1/webhook_endpoints/{id}"),
            vec![("disabled", "true")],
        )
        .await;
    }
    let (status, pinned) = stripe(
        "/v1/webhook_endpoints".into(),
        vec![
            ("url", to.as_str()),
            ("enabled_events[0]", "*"),
            ("api_version", "2024-06-20"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{pinned}");
    check_pinned(&replay(CANARY_SK, &dry_run), "pinned on we_");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_failures_are_exit_1_stripe_unreachable_exit_3_and_bad_input_exit_2() {
    let (sb, app, _t, secret) = faulty(&[], 500).await;
    paid_topup(&app, 500).await;
    let dir = tempfile::tempdir().unwrap();
    let whsec = write_file(dir.path(), "whsec", &secret);
    let state = dir.path().join("state.json");
    let key = stripe_key(&sb);
    // A receiver that refuses everything (a wrong secret, say).
    let wrong = write_file(dir.path(), "wrong", SECRET_B);
    let to = format!("{}/api/webhooks/stripe", sb.app);
    let o = replay(
        &key,
        &[
            "--stripe-api-base",
            &sb.stripe_api,
            "--to",
            &to,
            "--secret-file",
            wrong.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
    );
    assert_code(&o, 1);
    let r = json_of(&o);
    assert_eq!(r["failed"], r["sent"], "{r}");
    assert_eq!(r["by_status"]["400"], r["sent"], "{r}");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["delivered"], json!([]), "nothing refused is recorded");

    // The same state file for another receiver is refused before anything is sent.
    let o = replay(
        &key,
        &[
            "--stripe-api-base",
            &sb.stripe_api,
            "--to",
            "http://127.0.0.1:9/other",
            "--secret-file",
            whsec.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
    );
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("records deliveries to"),
        "{}",
        stderr(&o)
    );

    let o = replay(
        &key,
        &[
            "--stripe-api-base",
            &closed_url(),
            "--to",
            &to,
            "--secret-file",
            whsec.to_str().unwrap(),
        ],
    );
    assert_code(&o, 3);
    let o = replay(
        "sk_test_wrongwrongwrongwrong1234",
        &[
            "--stripe-api-base",
            &sb.stripe_api,
            "--to",
            &to,
            "--secret-file",
            whsec.to_str().unwrap(),
        ],
    );
    assert_code(&o, 3);
    assert_no_leak(&o, &["sk_test_wrongwrongwrongwrong1234", &key, &secret]);
    for bad in [
        vec!["--since", "yesterday"],
        vec!["--since", "1h", "--until", "2h"],
        vec!["--id", "evt_1", "--failed-only"],
    ] {
        let mut args = vec![
            "--to",
            to.as_str(),
            "--secret-file",
            whsec.to_str().unwrap(),
        ];
        args.extend(bad.iter().copied());
        assert_code(&replay(&key, &args), 2);
    }
    let _ = app;
}
