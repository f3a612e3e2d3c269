//! `stripe-ops sandbox`: the app contract, webhook verification and crediting, faults, state,
//! hosted checkout (form post and real Chromium), the Stripe API (through Stripe's own Python
//! library) and secrets from AWS (moto). Everything over real sockets on 127.0.0.1.

use std::time::Duration;

use serde_json::{Value, json};
use stripe_ops::timestamp::unix_now;
use stripe_ops::webhook::signature::{Signer, header};

use crate::common::*;

mod app;
mod aws;
mod balance_calls;
mod checkout;
mod checkout_calls;
mod connect;
mod connect_scope;
mod eventbridge;
mod faults;
mod limits;
mod meters;
mod portal;
mod process;
mod prorations;
mod replay;
mod sdk_calls;
mod stripe_api;
mod stripe_cli;
mod triggers;

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
    checkout_url: String,
    amount: i64,
}

/// Where the sandbox says what it tried to deliver of an event (its own bookkeeping, not part of
/// Stripe's event object).
fn attempts_path(event_id: &str) -> String {
    format!("/sandbox/v1/events/{event_id}/delivery_attempts")
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
        let success = format!(
            "{}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
            self.base
        );
        let cancel = format!("{}/billing/cancel", self.base);
        let (status, c) = self
            .post(
                "/api/billing/topups/checkout",
                Some(&token),
                json!({"amountCents": amount, "successUrl": success, "cancelUrl": cancel}),
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

fn readable_by_others(path: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o077 != 0
}

/// Starts a sandbox with `args`, makes a top-up and returns (sandbox, app, topup, secret).
async fn faulty(args: &[&str], amount: i64) -> (Sandbox, App, Topup, String) {
    let sb = Sandbox::start(args);
    let app = App::new(&sb.app);
    let secret = secret_from_start_line(&sb);
    let t = app.topup(amount).await;
    (sb, app, t, secret)
}

/// Polls an async check every 25 ms until it yields `Some` or the deadline passes.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn stripe_key(sb: &Sandbox) -> String {
    let path = sb.info["stripe_key_file"]
        .as_str()
        .expect("stripe_key_file");
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

/// Runs the stripe-node script `script` (tests/receivers) against the sandbox's Stripe API with
/// its key: what it printed, as JSON.
fn stripe_node_script(sb: &Sandbox, script: &str) -> Value {
    let o = crate::receivers::node()
        .arg(crate::receivers::receivers_dir().join(script))
        .arg(&sb.stripe_api)
        .arg(stripe_key(sb))
        .current_dir(crate::receivers::receivers_dir())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", stdout(&o)))
}

/// GET on the sandbox's Stripe API with its key.
async fn stripe_get(sb: &Sandbox, path: &str) -> (u16, Value) {
    let app = App::new(&sb.stripe_api);
    let req = app
        .http
        .get(format!("{}{path}", sb.stripe_api))
        .bearer_auth(stripe_key(sb));
    app.send(req).await
}

/// `POST /v1/webhook_endpoints` on the Stripe API at `api` with `key`: the created endpoint.
async fn create_endpoint(api: &str, key: &str, form: &[(&str, &str)]) -> Value {
    reqwest::Client::new()
        .post(format!("{api}/v1/webhook_endpoints"))
        .bearer_auth(key)
        .form(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits for the top-up to be credited by the delivered webhook; returns the Stripe event id.
async fn credited_event_id(app: &App, t: &Topup) -> String {
    eventually(
        "the delivered webhook to credit",
        Duration::from_secs(20),
        || async {
            let (_, v) = app.get("/api/billing/events", Some(&t.token)).await;
            v["events"][0]["metadata"]["stripeEventId"]
                .as_str()
                .map(str::to_owned)
        },
    )
    .await
}

/// Pays a fresh top-up by form post and returns it with its delivered event id.
async fn paid_topup(app: &App, amount: i64) -> (Topup, String) {
    let t = app.topup(amount).await;
    let outcome = stripe_ops::sandbox::pay_with_form_post(
        &app.http,
        &t.checkout_url,
        stripe_ops::sandbox::TEST_CARD,
    )
    .await
    .unwrap();
    assert!(matches!(
        outcome,
        stripe_ops::sandbox::PayOutcome::Paid { .. }
    ));
    let id = credited_event_id(app, &t).await;
    (t, id)
}

/// Whether the app accepts a webhook signed with `secret` (an event it ignores).
async fn accepts_secret(app: &App, secret: &str) -> bool {
    let body = json!({"id": "evt_probe", "object": "event", "type": "ping"}).to_string();
    let (status, _) = app
        .webhook(&body, Some(&sign(secret, &body, unix_now())))
        .await;
    status == 200
}

async fn accepts_key(sb: &Sandbox, key: &str) -> bool {
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/account", sb.stripe_api))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    resp.status() == 200
}
