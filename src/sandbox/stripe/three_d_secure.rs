//! The 3-D Secure challenge of a payment or setup intent confirmed outside Checkout
//! (`/3ds/{intent}`, standing in for Stripe's `hooks.stripe.com` page; docs.stripe.com/testing
//! #regulatory-cards: in test mode the page lets you complete or fail the authentication). An
//! intent `requires_action` names it in `next_action`: `redirect_to_url.url` when its confirm
//! sent `return_url`, else `use_stripe_sdk.stripe_js`. Answered, the intent goes on as
//! `payments::authenticated` / `setup_intents::authenticated` say, and the browser returns to
//! `return_url` with `payment_intent` (or `setup_intent`), its client secret and
//! `redirect_status` (`succeeded`, `failed`) in the query, as Stripe appends them
//! (docs.stripe.com/payments/accept-a-payment, "redirect_status").

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Map, Value};

use super::behaviour::{payments, setup_intents};
use super::checkout_page::{find_in_accounts, notice, page_ctx};
use crate::sandbox::Shared;
use crate::sandbox::checkout::{escape, layout};

type S = State<Arc<Shared>>;

/// The challenge page: `overview` (what is paid) beside Complete and Fail, posting `outcome`
/// to `action` (the ids of Stripe's test page's buttons).
pub fn challenge(overview: &str, action: &str) -> Response {
    let body = format!(
        r#"<div class="App">{overview}
<div class="App-Payment"><h1 style="font-size:20px" id="three-ds-title">3D Secure 2 Test Page</h1>
<p>This is a test authentication of the stripe-ops sandbox, standing in for the card issuer's page. Complete it or fail it.</p>
<form id="three-ds-form" method="post" action="{action}">
<button class="SubmitButton" id="test-source-authorize-3ds" name="outcome" value="complete" type="submit">Complete</button>
<button class="SubmitButton" id="test-source-fail-3ds" name="outcome" value="fail" type="submit" style="background:#6b7280">Fail</button>
</form></div></div>"#,
        action = escape(action),
    );
    Html(layout("3D Secure 2 Test Page", &body)).into_response()
}

/// Whether the posted form answers "Complete".
pub fn completed(body: &[u8]) -> bool {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    pairs.iter().any(|(k, v)| k == "outcome" && v == "complete")
}

fn kind(id: &str) -> &'static str {
    if id.starts_with("seti_") {
        "setup_intent"
    } else {
        "payment_intent"
    }
}

/// `GET /3ds/{intent}`.
pub async fn page(State(shared): S, UrlPath(id): UrlPath<String>) -> Response {
    match find_in_accounts(&shared, kind(&id), &id) {
        Some((_, intent)) if intent["status"] == "requires_action" => {
            challenge("", &format!("/3ds/{id}"))
        }
        Some(_) => notice(
            StatusCode::OK,
            "Nothing to authenticate",
            "This payment is not waiting for authentication.",
        ),
        None => notice(
            StatusCode::NOT_FOUND,
            "Authentication not found",
            "This link is not valid.",
        ),
    }
}

/// `POST /3ds/{intent}` (`outcome=complete|fail`).
pub async fn answer(State(shared): S, UrlPath(id): UrlPath<String>, body: Bytes) -> Response {
    let kind = kind(&id);
    let Some((scope, _)) = find_in_accounts(&shared, kind, &id) else {
        return notice(
            StatusCode::NOT_FOUND,
            "Authentication not found",
            "This link is not valid.",
        );
    };
    let complete = completed(&body);
    let path = format!("/3ds/{id}");
    let answered = page_ctx(&shared, &scope, kind, &path, &id, Map::new(), |ctx| {
        let intent = if kind == "setup_intent" {
            setup_intents::authenticated(ctx, &id, complete)?
        } else {
            payments::authenticated(ctx, &id, complete)?
        };
        Ok::<_, crate::sandbox::stripe::engine::ApiError>((
            intent,
            ctx.store().private(&id, payments::RETURN_URL),
        ))
    });
    match answered {
        Ok((intent, Some(Value::String(url)))) => {
            Redirect::to(&returning(&url, kind, &intent)).into_response()
        }
        Ok((intent, _)) => notice(
            StatusCode::OK,
            "Authentication answered",
            &format!(
                "The {kind} is now {}.",
                intent["status"].as_str().unwrap_or("")
            ),
        ),
        Err(e) => notice(e.status, "Authentication refused", &e.message()),
    }
}

/// `return_url` with what Stripe appends: the intent, its client secret, `redirect_status`.
fn returning(url: &str, kind: &str, intent: &Value) -> String {
    let status = if matches!(intent["status"].as_str(), Some("succeeded" | "processing")) {
        "succeeded"
    } else {
        "failed"
    };
    let query = serde_urlencoded::to_string([
        (kind, intent["id"].as_str().unwrap_or_default()),
        (
            &format!("{kind}_client_secret"),
            intent["client_secret"].as_str().unwrap_or_default(),
        ),
        ("redirect_status", status),
    ])
    .unwrap_or_default();
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}{query}")
}
