//! The app under test (CONTRACT.md section 1) over HTTP: register, log in, billing account and
//! events, top-up checkout, and the Stripe webhook, with the faults wired in.
// Handlers return early with a ready `Response`; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Shared;
use super::state::{Idempotency, Org, Outcome, StoreError, WebhookEvent};
use crate::webhook::signature::{self, Rejection};

pub const WEBHOOK_PATH: &str = "/api/webhooks/stripe";
/// How long `racy-credit` waits between its unlocked check and its insert: wide enough that
/// concurrent duplicates all pass the check, irrelevant to sequential ones.
const RACE_WINDOW: Duration = Duration::from_millis(50);

type S = State<Arc<Shared>>;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/org/register", post(register))
        .route("/api/org/api-keys", post(login))
        .route("/api/billing/account", get(account))
        .route("/api/billing/events", get(billing_events))
        .route("/api/billing/topups/checkout", post(create_checkout))
        .route(WEBHOOK_PATH, post(webhook))
        .merge(super::checkout::routes())
        .fallback(not_found)
        .with_state(shared)
}

/// The app's error shape: `{"error": {"code", "message"}}`.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": code, "message": message.into()}});
    (status, axum::Json(body)).into_response()
}

/// A change that could not be put on disk (`--state`): not acknowledged, so the client (or
/// Stripe, for a webhook) tries again.
pub fn unwritten(why: String) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "state_not_written", why)
}

fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// Parses a JSON body into `T`; anything else is a 400 with a JSON error naming the problem.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    if body.is_empty() {
        return Err(bad_request("the request body is empty; expected JSON"));
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid JSON body: {e}")))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn authenticated(shared: &Shared, headers: &HeaderMap) -> Result<Org, Response> {
    let unauthorized = || {
        error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid bearer token",
        )
    };
    let token = bearer(headers).ok_or_else(unauthorized)?;
    shared
        .store()
        .org_for_token(token)
        .cloned()
        .ok_or_else(unauthorized)
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::EmailTaken => error(
            StatusCode::CONFLICT,
            "email_already_registered",
            "email_already_registered: this email already has an org; log in instead",
        ),
        StoreError::BadCredentials => error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong email or password",
        ),
        StoreError::Invalid(why) => bad_request(why),
    }
}

async fn health(State(shared): S) -> Response {
    let checks = shared
        .deployment_checks
        .load(std::sync::atomic::Ordering::Relaxed);
    axum::Json(json!({"status": "ok", "deployment_checks": checks})).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterBody {
    #[serde(default)]
    org_name: Option<String>,
    email: String,
    password: String,
    #[serde(default)]
    #[allow(dead_code)]
    api_key_name: Option<String>,
}

async fn register(State(shared): S, body: Bytes) -> Response {
    let req: RegisterBody = match parse_body(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let org_name = req.org_name.unwrap_or_else(|| req.email.clone());
    let result = {
        let mut store = shared.store();
        store
            .register(&org_name, &req.email, &req.password)
            .map(|r| (r, store.version))
    };
    match result {
        Ok(((token, org_id), version)) => {
            if let Err(why) = shared.persisted(version).await {
                return unwritten(why);
            }
            (
                StatusCode::CREATED,
                axum::Json(json!({"token": token, "orgId": org_id})),
            )
                .into_response()
        }
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
}

async fn login(State(shared): S, body: Bytes) -> Response {
    let req: LoginBody = match parse_body(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let result = {
        let mut store = shared.store();
        store
            .login(&req.email, &req.password)
            .map(|t| (t, store.version))
    };
    match result {
        Ok((token, version)) => {
            if let Err(why) = shared.persisted(version).await {
                return unwritten(why);
            }
            axum::Json(json!({"token": token})).into_response()
        }
        Err(e) => store_error(e),
    }
}

async fn account(State(shared): S, headers: HeaderMap) -> Response {
    match authenticated(&shared, &headers) {
        Ok(org) => axum::Json(json!({"account": {
            "id": org.account_id,
            "org_id": org.id,
            "balance_cents": org.balance_cents,
            "currency": org.currency,
        }}))
        .into_response(),
        Err(resp) => resp,
    }
}

async fn billing_events(State(shared): S, headers: HeaderMap) -> Response {
    let org = match authenticated(&shared, &headers) {
        Ok(org) => org,
        Err(resp) => return resp,
    };
    let events = shared.store().billing_events(&org.id);
    axum::Json(json!({ "events": events })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckoutBody {
    amount_cents: Value,
    #[serde(default)]
    success_url: Option<String>,
    #[serde(default)]
    cancel_url: Option<String>,
}

fn check_url(field: &str, url: Option<String>, default: String) -> Result<String, Response> {
    match url {
        None => Ok(default),
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(u),
        Some(_) => Err(bad_request(format!("{field} must be an http(s) URL"))),
    }
}

async fn create_checkout(State(shared): S, headers: HeaderMap, body: Bytes) -> Response {
    let org = match authenticated(&shared, &headers) {
        Ok(org) => org,
        Err(resp) => return resp,
    };
    let req: CheckoutBody = match parse_body(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let Some(amount) = req.amount_cents.as_i64() else {
        return bad_request("amountCents must be an integer number of cents");
    };
    let success = check_url(
        "successUrl",
        req.success_url,
        format!(
            "{}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
            shared.app_url
        ),
    );
    let cancel = check_url(
        "cancelUrl",
        req.cancel_url,
        format!("{}/billing/cancel", shared.app_url),
    );
    let (success, cancel) = match (success, cancel) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let livemode = shared.livemode();
    let result = {
        let mut store = shared.store();
        store
            .create_session(&org.id, amount, &success, &cancel, livemode)
            .map(|s| (s, store.version))
    };
    match result {
        Ok((session, version)) => {
            if let Err(why) = shared.persisted(version).await {
                return unwritten(why);
            }
            axum::Json(json!({
                "checkoutUrl": super::checkout::checkout_url(&shared.app_url, &session.id),
                "stripeSessionId": session.id,
                "paymentIntentId": session.payment_intent_id,
            }))
            .into_response()
        }
        Err(e) => store_error(e),
    }
}

fn verify_signature(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
    if shared.faults.no_signature_check {
        return Ok(());
    }
    let header = headers
        .get("stripe-signature")
        .map(|v| v.to_str().unwrap_or("\u{0}invalid"))
        .unwrap_or("");
    let signers = shared.signers();
    match signature::verify(
        header,
        body,
        &signers,
        shared.tolerance,
        crate::timestamp::unix_now(),
        // Hardened beyond Stripe's libraries: check's advisory future-timestamp case passes.
        signature::Window::BothWays,
    ) {
        Ok(_) => Ok(()),
        Err(Rejection::OutOfTolerance { .. }) if shared.faults.ignore_tolerance => Ok(()),
        Err(r) => Err(error(
            StatusCode::BAD_REQUEST,
            "signature_verification_failed",
            format!("webhook signature rejected: {r}"),
        )),
    }
}

/// Larger than any Stripe event; a body beyond it is refused before it is read whole.
const WEBHOOK_BODY_LIMIT: usize = 1 << 20;

/// The answer for each outcome, preformatted: the webhook is the hot path of load tests.
fn static_reply(outcome: &Outcome) -> Option<&'static str> {
    Some(match outcome {
        Outcome::Credited { .. } => r#"{"received":true,"result":"credited"}"#,
        Outcome::DuplicateEvent => r#"{"received":true,"result":"duplicate_event"}"#,
        Outcome::SessionAlreadyCredited => {
            r#"{"received":true,"result":"session_already_credited"}"#
        }
        Outcome::UnknownSession => r#"{"received":true,"result":"unknown_session"}"#,
        Outcome::Ignored => r#"{"received":true,"result":"ignored"}"#,
        Outcome::Mismatch(_) => return None,
    })
}

// Takes the whole request rather than a `HeaderMap`, which the extractor would clone.
async fn webhook(State(shared): S, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, WEBHOOK_BODY_LIMIT).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than any Stripe event (1 MiB)",
        );
    };
    let headers = &parts.headers;
    if let Some(delay) = shared.faults.slow_webhook {
        tokio::time::sleep(delay).await;
    }
    if shared.faults.webhook_500 {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error (fault webhook-500)",
        );
    }
    if let Err(resp) = verify_signature(&shared, headers, &body) {
        return resp;
    }
    let event: WebhookEvent = match parse_body(&body) {
        Ok(e) => e,
        Err(resp) => return resp,
    };
    let (outcome, version) = apply(&shared, &event).await;
    // A duplicate is acknowledged only once the credit it repeats is on disk: after a failed
    // write, Stripe's retry must not be the 200 that loses the credit.
    let version = match outcome {
        Outcome::Credited { .. } => version,
        Outcome::DuplicateEvent | Outcome::SessionAlreadyCredited => shared.store().version,
        _ => 0,
    };
    if let Err(why) = shared.persisted(version).await {
        return unwritten(why);
    }
    if let Some(text) = static_reply(&outcome) {
        return ([(header::CONTENT_TYPE, "application/json")], text).into_response();
    }
    let mut reply = json!({"received": true, "result": outcome.label()});
    if let Outcome::Mismatch(why) = &outcome {
        reply["reason"] = Value::String(why.clone());
    }
    axum::Json(reply).into_response()
}

/// Credits (or not) a verified event; returns the outcome and the state version after it.
async fn apply(shared: &Shared, event: &WebhookEvent) -> (Outcome, u64) {
    let keep_metadata = !shared.faults.drop_metadata;
    if shared.faults.racy_credit {
        // The bug on purpose: check, release the lock, await, then insert without re-checking.
        if shared.store().already_applied(event) {
            return (Outcome::DuplicateEvent, 0);
        }
        tokio::time::sleep(RACE_WINDOW).await;
        let mut store = shared.store();
        let outcome = store.apply(event, Idempotency::None, keep_metadata);
        return (outcome, store.version);
    }
    let idempotency = if shared.faults.double_credit {
        Idempotency::None
    } else {
        Idempotency::Enforced
    };
    let mut store = shared.store();
    let outcome = store.apply(event, idempotency, keep_metadata);
    (outcome, store.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_replies_name_their_outcome() {
        for outcome in [
            Outcome::Credited {
                org_id: "o".into(),
                amount_cents: 1,
            },
            Outcome::DuplicateEvent,
            Outcome::SessionAlreadyCredited,
            Outcome::UnknownSession,
            Outcome::Ignored,
        ] {
            let v: Value = serde_json::from_str(static_reply(&outcome).unwrap()).unwrap();
            assert_eq!(v["result"], outcome.label());
            assert_eq!(v["received"], true);
        }
        assert!(static_reply(&Outcome::Mismatch("x".into())).is_none());
    }
}
