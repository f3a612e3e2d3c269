//! The app contract: register, log in, account, events, checkout, the verified webhook
//! crediting once, bad bodies, and `--state` across restarts.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_account_events_and_checkout_follow_the_contract() {
    let sb = Sandbox::start(&[]);
    let app = App::new(&sb.app);
    let (status, _) = app.get("/health", None).await;
    assert_eq!(status, 200);

    let (token, org_id) = app.register("Owner@example.com", "pw-one").await;
    let (status, v) = app
        .post(
            "/api/org/register",
            None,
            json!({"orgName": "x", "email": "owner@example.com", "password": "other", "apiKeyName": "k"}),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("email_already_registered")
    );

    let (status, v) = app
        .post(
            "/api/org/api-keys",
            None,
            json!({"email": "owner@example.com", "password": "pw-one", "name": "smoke"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let second = v["token"].as_str().unwrap();
    assert_ne!(second, token);
    let (status, v) = app
        .post(
            "/api/org/api-keys",
            None,
            json!({"email": "owner@example.com", "password": "wrong", "name": "smoke"}),
        )
        .await;
    assert_eq!(status, 401);
    assert!(v["error"]["message"].is_string());

    let (status, v) = app.get("/api/billing/account", Some(second)).await;
    assert_eq!(status, 200);
    assert_eq!(v["account"]["org_id"], org_id.as_str());
    assert_eq!(v["account"]["balance_cents"], 0);
    assert_eq!(v["account"]["currency"], "usd");
    assert!(v["account"]["id"].is_string());
    let (status, _) = app.get("/api/billing/account", None).await;
    assert_eq!(status, 401);
    let (status, _) = app.get("/api/billing/account", Some("sbx_forged")).await;
    assert_eq!(status, 401);

    let (status, v) = app
        .post(
            "/api/billing/topups/checkout",
            Some(&token),
            json!({"amountCents": 500, "successUrl": "https://example.com/s?session_id={CHECKOUT_SESSION_ID}", "cancelUrl": "https://example.com/c"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let session = v["stripeSessionId"].as_str().unwrap();
    assert!(session.starts_with("cs_test_"));
    assert!(v["paymentIntentId"].as_str().unwrap().starts_with("pi_"));
    let url = v["checkoutUrl"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/checkout/{session}#", sb.app)),
        "{url}"
    );

    for bad in [
        json!(0),
        json!(49),
        json!(-100),
        json!(12.5),
        json!("500"),
        json!(100_000_000),
    ] {
        let (status, v) = app
            .post(
                "/api/billing/topups/checkout",
                Some(&token),
                json!({"amountCents": bad, "successUrl": "https://e.com/s", "cancelUrl": "https://e.com/c"}),
            )
            .await;
        assert_eq!(status, 400, "amount {bad}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("amountCents")
        );
    }
    let (status, v) = app.get("/api/billing/events", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(v["events"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_400_with_a_json_error() {
    let sb = Sandbox::start(&[]);
    let app = App::new(&sb.app);
    let secret = secret_from_start_line(&sb);
    let (token, _) = app.register("b@example.com", "pw").await;
    for path in ["/api/org/register", "/api/org/api-keys"] {
        for body in ["", "{not json", "[]", r#"{"email": 5}"#] {
            let (status, v) = app.post_raw(path, body).await;
            assert_eq!(status, 400, "{path} {body:?}: {v}");
            assert!(v["error"]["message"].is_string(), "{v}");
        }
    }
    let resp = app
        .http
        .post(format!("{}/api/billing/topups/checkout", sb.app))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"].is_string());
    // A correctly signed body that is not an event.
    let body = "not json at all";
    let (status, v) = app
        .webhook(body, Some(&sign(&secret, body, unix_now())))
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("JSON"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_verifies_signatures_and_credits_once_per_event_and_session() {
    let sb = Sandbox::start(&[]);
    let app = App::new(&sb.app);
    let secret = secret_from_start_line(&sb);
    let t = app.topup(1500).await;
    let body = completed_event("evt_first", &t);
    let now = unix_now();

    for (sig, why) in [
        (None, "no Stripe-Signature"),
        (Some(sign(SECRET_B, &body, now)), "no signature matched"),
        (Some(sign(&secret, &body, now - 301)), "out of tolerance"),
        (Some(sign(&secret, &body, now + 400)), "out of tolerance"),
        (Some("t=abc,v1=00".to_owned()), "malformed"),
        (Some(format!("t={now},v0=00")), "no v1"),
    ] {
        let (status, v) = app.webhook(&body, sig.as_deref()).await;
        assert_eq!(status, 400, "{why}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{message:?} should say {why:?}");
    }
    assert_eq!(app.balance(&t.token).await, 0);
    let tampered = body.replace("1500", "9999");
    let (status, _) = app
        .webhook(&tampered, Some(&sign(&secret, &body, now)))
        .await;
    assert_eq!(status, 400);

    let (status, v) = app.webhook(&body, Some(&sign(&secret, &body, now))).await;
    assert_eq!((status, v["result"].as_str()), (200, Some("credited")));
    let (status, v) = app.webhook(&body, Some(&sign(&secret, &body, now))).await;
    assert_eq!(
        (status, v["result"].as_str()),
        (200, Some("duplicate_event"))
    );
    let other = completed_event("evt_second", &t);
    let (status, v) = app.webhook(&other, Some(&sign(&secret, &other, now))).await;
    assert_eq!(
        (status, v["result"].as_str()),
        (200, Some("session_already_credited"))
    );
    assert_eq!(app.balance(&t.token).await, 1500);

    let (_, v) = app.get("/api/billing/events", Some(&t.token)).await;
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["eventType"], "stripe_topup");
    assert_eq!(e["amountCents"], 1500);
    assert_eq!(e["metadata"]["stripeSessionId"], t.session_id.as_str());
    assert_eq!(e["metadata"]["stripeEventId"], "evt_first");
    assert_eq!(e["metadata"]["orgId"], t.org_id.as_str());
    assert!(e["createdAt"].is_string() && e["id"].is_string());

    // A signed event for a session the app never created: 2xx, nothing credited.
    let mut stranger = app.topup(700).await;
    stranger.session_id = "cs_test_unknown".into();
    let body = completed_event("evt_stranger", &stranger);
    let (status, v) = app.webhook(&body, Some(&sign(&secret, &body, now))).await;
    assert_eq!(
        (status, v["result"].as_str()),
        (200, Some("unknown_session"))
    );
    assert_eq!(app.balance(&stranger.token).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_secrets_are_accepted_and_tolerance_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_file(dir.path(), "a", SECRET_A);
    let b = write_file(dir.path(), "b", &format!("{SECRET_B}\n"));
    let sb = Sandbox::start(&[
        "--webhook-secret-file",
        a.to_str().unwrap(),
        "--webhook-secret-file",
        b.to_str().unwrap(),
        "--tolerance",
        "30",
    ]);
    assert!(sb.info["webhook_secret_file"].is_null());
    let app = App::new(&sb.app);
    let t = app.topup(500).await;
    let t2 = app.topup(600).await;
    let now = unix_now();
    let body = completed_event("evt_a", &t);
    let (status, v) = app.webhook(&body, Some(&sign(SECRET_B, &body, now))).await;
    assert_eq!(
        (status, v["result"].as_str()),
        (200, Some("credited")),
        "{v}"
    );
    let body2 = completed_event("evt_b", &t2);
    let (status, v) = app
        .webhook(&body2, Some(&sign(SECRET_A, &body2, now - 60)))
        .await;
    assert_eq!(status, 400, "60 s old is outside --tolerance 30: {v}");
    let (status, _) = app
        .webhook(&body2, Some(&sign(SECRET_A, &body2, now - 20)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.balance(&t2.token).await, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_duplicates_credit_once() {
    let sb = Sandbox::start(&[]);
    let app = App::new(&sb.app);
    let secret = secret_from_start_line(&sb);
    let t = app.topup(1000).await;
    let body = completed_event("evt_concurrent", &t);
    let statuses = app
        .concurrent_duplicates(&body, &sign(&secret, &body, unix_now()), 50)
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.balance(&t.token).await, 1000);
    let (_, v) = app.get("/api/billing/events", Some(&t.token)).await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_file_keeps_balances_across_restarts_without_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state_arg = state.to_str().unwrap();
    let a = write_file(dir.path(), "a", SECRET_A);
    let args = [
        "--state",
        state_arg,
        "--webhook-secret-file",
        a.to_str().unwrap(),
    ];
    let (token, session) = {
        let sb = Sandbox::start(&args);
        let app = App::new(&sb.app);
        let t = app.topup(1200).await;
        let body = completed_event("evt_persist", &t);
        let (status, _) = app
            .webhook(&body, Some(&sign(SECRET_A, &body, unix_now())))
            .await;
        assert_eq!(status, 200);
        (t.token, t.session_id)
        // Dropped here: SIGKILL, no chance to flush on the way out.
    };
    assert!(!readable_by_others(state_arg), "state file must be 0600");
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(!text.contains("pw-secret-1"), "password stored in clear");
    assert!(!text.contains(&token), "token stored in clear");

    let sb = Sandbox::start(&args);
    let app = App::new(&sb.app);
    assert_eq!(app.balance(&token).await, 1200);
    let (_, v) = app.get("/api/billing/events", Some(&token)).await;
    assert_eq!(
        v["events"][0]["metadata"]["stripeSessionId"],
        session.as_str()
    );
    drop(sb);

    std::fs::write(&state, "{ not a state").unwrap();
    let o = run(&["sandbox", "--state", state_arg]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("not a sandbox state"), "{}", stderr(&o));
}
