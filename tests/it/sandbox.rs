//! `stripe-ops sandbox`: the app contract, webhook verification and crediting, faults, state,
//! hosted checkout (form post and real Chromium), the Stripe API (through Stripe's own Python
//! library) and secrets from AWS (moto). Everything over real sockets on 127.0.0.1.

use std::time::Duration;

use serde_json::{Value, json};
use stripe_ops::signature::{Signer, header, unix_now};

use crate::common::*;

const SECRET_A: &str = "whsec_sandboxAAAAAAAAAAAAAAAAAAAAAAAAAA";
const SECRET_B: &str = "whsec_sandboxBBBBBBBBBBBBBBBBBBBBBBBBBB";

/// A client of the sandbox app.
struct App {
    base: String,
    http: reqwest::Client,
}

/// A registered buyer with a checkout session.
struct Topup {
    token: String,
    org_id: String,
    account_id: String,
    session_id: String,
    payment_intent_id: String,
    #[allow(dead_code)]
    checkout_url: String,
    amount: i64,
}

fn sign(secret: &str, body: &str, t: i64) -> String {
    header(t, body.as_bytes(), &[Signer::new(secret.as_bytes())])
}

fn secret_from_start_line(sb: &Sandbox) -> String {
    let path = sb.info["webhook_secret_file"]
        .as_str()
        .expect("generated webhook secret file in the start line");
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

/// The body of a `checkout.session.completed` for a top-up, as Stripe would send it.
fn completed_event(event_id: &str, t: &Topup) -> String {
    json!({
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "created": unix_now(),
        "data": {"object": {
            "id": t.session_id,
            "object": "checkout.session",
            "payment_status": "paid",
            "status": "complete",
            "amount_total": t.amount,
            "currency": "usd",
            "metadata": {
                "orgId": t.org_id,
                "accountId": t.account_id,
                "paymentIntentId": t.payment_intent_id,
            }
        }}
    })
    .to_string()
}

impl App {
    fn new(base: &str) -> App {
        App {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.expect("the sandbox answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("answer {status} is not JSON: {text}"));
        (status, value)
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        self.send(req).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    async fn register(&self, email: &str, password: &str) -> (String, String) {
        let (status, v) = self
            .post(
                "/api/org/register",
                None,
                json!({"orgName": "Acme", "email": email, "password": password, "apiKeyName": "t"}),
            )
            .await;
        assert!((200..300).contains(&status), "register: {status} {v}");
        (
            v["token"].as_str().unwrap().to_owned(),
            v["orgId"].as_str().unwrap().to_owned(),
        )
    }

    async fn balance(&self, token: &str) -> i64 {
        let (status, v) = self.get("/api/billing/account", Some(token)).await;
        assert_eq!(status, 200, "{v}");
        v["account"]["balance_cents"].as_i64().unwrap()
    }

    async fn topup(&self, amount: i64) -> Topup {
        let email = format!("buyer-{}@example.com", stripe_ops::secret::random_alnum(10));
        let (token, org_id) = self.register(&email, "pw-secret-1").await;
        let (_, account) = self.get("/api/billing/account", Some(&token)).await;
        let (status, c) = self
            .post(
                "/api/billing/topups/checkout",
                Some(&token),
                json!({"amountCents": amount, "successUrl": "https://example.com/ok", "cancelUrl": "https://example.com/no"}),
            )
            .await;
        assert_eq!(status, 200, "{c}");
        Topup {
            token,
            org_id,
            account_id: account["account"]["id"].as_str().unwrap().to_owned(),
            session_id: c["stripeSessionId"].as_str().unwrap().to_owned(),
            payment_intent_id: c["paymentIntentId"].as_str().unwrap().to_owned(),
            checkout_url: c["checkoutUrl"].as_str().unwrap().to_owned(),
            amount,
        }
    }

    async fn webhook(&self, body: &str, signature: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/api/webhooks/stripe", self.base))
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        if let Some(s) = signature {
            req = req.header("Stripe-Signature", s);
        }
        self.send(req).await
    }

    /// Sends the same signed event `n` times at once; returns the statuses.
    async fn concurrent_duplicates(&self, body: &str, sig: &str, n: usize) -> Vec<u16> {
        let sends = (0..n).map(|_| self.webhook(body, Some(sig)));
        futures_util::future::join_all(sends)
            .await
            .into_iter()
            .map(|(s, _)| s)
            .collect()
    }
}

#[test]
fn start_line_names_urls_and_a_private_generated_secret_file() {
    let sb = Sandbox::start(&[]);
    assert!(sb.app.starts_with("http://127.0.0.1:"));
    assert!(sb.stripe_api.starts_with("http://127.0.0.1:"));
    assert_ne!(sb.app, sb.stripe_api);
    for key in ["webhook_secret_file", "stripe_key_file"] {
        let path = sb.info[key].as_str().unwrap();
        assert!(!readable_by_others(path), "{key} must be 0600");
    }
    assert!(secret_from_start_line(&sb).starts_with("whsec_"));
    let key_file = sb.info["stripe_key_file"].as_str().unwrap();
    assert!(
        std::fs::read_to_string(key_file)
            .unwrap()
            .starts_with("sk_test_")
    );
    let line = sb.info.to_string();
    assert!(
        !line.contains("whsec_") && !line.contains("sk_test_"),
        "{line}"
    );
}

fn readable_by_others(path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o077 != 0
}

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

#[test]
fn bad_flags_and_files_exit_2_without_leaking() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["sandbox", "--fault", "double-credits"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("double-credit"), "{}", stderr(&o));
    let o = run(&["sandbox", "--webhook-secret-file", "/nonexistent/secret"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("/nonexistent/secret"));
    let bad_key = write_file(dir.path(), "key", CANARY_WHSEC);
    let o = run(&["sandbox", "--stripe-key-file", bad_key.to_str().unwrap()]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("sk_test_/sk_live_"), "{}", stderr(&o));
    assert_no_leak(&o, &[CANARY_WHSEC]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = run(&["--json", "sandbox", "--listen", &addr]);
    assert_code(&o, 2);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["error"].as_str().unwrap().contains("cannot listen"));
}

/// Starts a sandbox with `args`, makes a top-up and returns (sandbox, app, topup, secret).
async fn faulty(args: &[&str], amount: i64) -> (Sandbox, App, Topup, String) {
    let sb = Sandbox::start(args);
    let app = App::new(&sb.app);
    let secret = secret_from_start_line(&sb);
    let t = app.topup(amount).await;
    (sb, app, t, secret)
}

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
    let (_sb, app, t, secret) = faulty(&["--fault", "slow-webhook=5000"], 500).await;
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
