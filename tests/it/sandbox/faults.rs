//! Each `--fault` doing what it says.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_no_signature_check_credits_unsigned_events() {
    let (sb, app, t, _) = faulty(&["--fault", "no-signature-check"], 500).await;
    assert_eq!(sb.info["faults"], json!(["no-signature-check"]));
    let body = completed_event("evt_unsigned", &t);
    let (status, _) = app.webhook(&body, None).await;
    assert_eq!(status, 200);
    let (status, _) = app
        .webhook(&body, Some(&sign(SECRET_B, &body, unix_now())))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.balance(&t.token).await, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_ignore_tolerance_accepts_stale_but_not_forged_signatures() {
    let (_sb, app, t, secret) = faulty(&["--fault", "ignore-tolerance"], 500).await;
    let body = completed_event("evt_stale", &t);
    let (status, _) = app
        .webhook(&body, Some(&sign(SECRET_B, &body, unix_now())))
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .webhook(&body, Some(&sign(&secret, &body, unix_now() - 86_400)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.balance(&t.token).await, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_double_credit_credits_every_duplicate() {
    let (_sb, app, t, secret) = faulty(&["--fault", "double-credit"], 500).await;
    let body = completed_event("evt_dup", &t);
    let sig = sign(&secret, &body, unix_now());
    for _ in 0..3 {
        let (status, v) = app.webhook(&body, Some(&sig)).await;
        assert_eq!((status, v["result"].as_str()), (200, Some("credited")));
    }
    assert_eq!(app.balance(&t.token).await, 1500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_racy_credit_double_credits_only_concurrent_duplicates() {
    let (_sb, app, sequential, secret) = faulty(&["--fault", "racy-credit"], 500).await;
    let body = completed_event("evt_seq", &sequential);
    let sig = sign(&secret, &body, unix_now());
    for _ in 0..50 {
        let (status, _) = app.webhook(&body, Some(&sig)).await;
        assert_eq!(status, 200);
    }
    assert_eq!(app.balance(&sequential.token).await, 500);

    let concurrent = app.topup(500).await;
    let body = completed_event("evt_conc", &concurrent);
    let sig = sign(&secret, &body, unix_now());
    let statuses = app.concurrent_duplicates(&body, &sig, 50).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let balance = app.balance(&concurrent.token).await;
    assert!(
        balance > 500,
        "50 concurrent duplicates should slip through the unlocked check; balance {balance}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_webhook_500_fails_every_delivery() {
    let (_sb, app, t, secret) = faulty(&["--fault", "webhook-500"], 500).await;
    let body = completed_event("evt_500", &t);
    let (status, v) = app
        .webhook(&body, Some(&sign(&secret, &body, unix_now())))
        .await;
    assert_eq!(status, 500, "{v}");
    assert_eq!(app.balance(&t.token).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_slow_webhook_delays_the_answer() {
    let (_sb, app, t, secret) = faulty(&["--fault", "slow-webhook=5s"], 500).await;
    let body = completed_event("evt_slow", &t);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = impatient
        .post(format!("{}/api/webhooks/stripe", app.base))
        .header("Stripe-Signature", sign(&secret, &body, unix_now()))
        .body(body.clone())
        .send()
        .await
        .expect_err("a 5 s webhook outlasts a 300 ms client timeout");
    assert!(err.is_timeout(), "{err}");
    let (status, _) = app.get("/health", None).await;
    assert_eq!(status, 200, "only the webhook is slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_drop_metadata_records_an_unmatchable_topup() {
    let (_sb, app, t, secret) = faulty(&["--fault", "drop-metadata"], 800).await;
    let body = completed_event("evt_meta", &t);
    let (status, _) = app
        .webhook(&body, Some(&sign(&secret, &body, unix_now())))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.balance(&t.token).await, 800);
    let (_, v) = app.get("/api/billing/events", Some(&t.token)).await;
    let e = &v["events"][0];
    assert_eq!(e["eventType"], "stripe_topup");
    assert!(e["metadata"].get("stripeSessionId").is_none(), "{e}");
}
