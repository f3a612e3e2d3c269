//! The hosted customer portal of a billing portal session (its `url`, as Stripe's
//! `billing.stripe.com/p/session/{id}`; docs.stripe.com/customer-management): the customer's
//! subscriptions, each with a Cancel action when the session's configuration enables
//! `features.subscription_cancel` (its `mode`: `at_period_end` or `immediately`,
//! `behaviour::portal::cancel`), their payment methods, and a link back to `return_url`.
//! Not served: updating subscriptions, payment methods or customer details, invoice history,
//! cancellation reasons, the session's expiry.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Map, Value};

use super::behaviour::portal;
use super::checkout_page::{find_in_accounts, notice, page_ctx};
use super::engine::Scope;
use crate::sandbox::Shared;
use crate::sandbox::checkout::{dollars, escape, layout};

type S = State<Arc<Shared>>;

const SESSION: &str = "billing_portal.session";

fn missing() -> Response {
    notice(
        StatusCode::NOT_FOUND,
        "Portal session not found",
        "This link is not valid.",
    )
}

/// A subscription as the portal lists it: what it is, its state, and Cancel if allowed.
fn subscription_row(session: &str, sub: &Value, cancel_mode: Option<&str>) -> String {
    let id = sub["id"].as_str().unwrap_or_default();
    let items: Vec<String> = sub["items"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let price = &item["price"];
            format!(
                "{} {}/{}",
                dollars(price["unit_amount"].as_i64().unwrap_or(0)),
                price["currency"].as_str().unwrap_or("usd").to_uppercase(),
                price["recurring"]["interval"].as_str().unwrap_or("month")
            )
        })
        .collect();
    let state = if sub["cancel_at_period_end"] == true {
        "Cancels at the end of the period".to_owned()
    } else {
        sub["status"].as_str().unwrap_or_default().to_owned()
    };
    let action = match cancel_mode {
        Some(_) if sub["cancel_at_period_end"] != true => format!(
            "<form method=\"post\" action=\"/p/session/{session}/subscriptions/{id}/cancel\">\
             <button class=\"SubmitButton\" data-test=\"cancel-subscription\" type=\"submit\">Cancel subscription</button></form>",
            session = escape(session),
            id = escape(id),
        ),
        _ => String::new(),
    };
    format!(
        "<div class=\"Subscription\" data-subscription=\"{id}\"><p>{items}</p>\
         <p class=\"SubscriptionStatus\">{state}</p>{action}</div>",
        id = escape(id),
        items = escape(&items.join(", ")),
        state = escape(&state),
    )
}

/// `GET /p/session/{id}`.
pub async fn page(State(shared): S, UrlPath(id): UrlPath<String>) -> Response {
    let Some((scope, session)) = find_in_accounts(&shared, SESSION, &id) else {
        return missing();
    };
    let view = match with_session(&shared, &scope, &id, |ctx| portal::view(ctx, &session)) {
        Ok(v) => v,
        Err(e) => return notice(e.status, "Portal unavailable", &e.message()),
    };
    let subscriptions: String = view
        .subscriptions
        .iter()
        .map(|s| subscription_row(&id, s, view.cancel_mode.as_deref()))
        .collect();
    let methods: String = view
        .payment_methods
        .iter()
        .map(|pm| {
            format!(
                "<li class=\"PaymentMethod\">{} &bull;&bull;&bull;&bull; {}</li>",
                escape(pm["card"]["brand"].as_str().unwrap_or("card")),
                escape(pm["card"]["last4"].as_str().unwrap_or(""))
            )
        })
        .collect();
    let back = session["return_url"]
        .as_str()
        .map(|url| {
            format!(
                "<p><a id=\"return-link\" href=\"{}\">&larr; Return to the site</a></p>",
                escape(url)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<div class=\"App-Payment\"><div class=\"Merchant\">stripe-ops sandbox <span class=\"Badge\">TEST MODE</span></div>\
         {back}<h2>Current subscriptions</h2><div id=\"subscriptions\">{subscriptions}</div>\
         <h2>Payment methods</h2><ul id=\"payment-methods\">{methods}</ul></div>"
    );
    Html(layout("Billing portal", &body)).into_response()
}

/// `POST /p/session/{id}/subscriptions/{sub}/cancel`: canceled as the configuration says, then
/// the portal again.
pub async fn cancel(State(shared): S, UrlPath((id, sub)): UrlPath<(String, String)>) -> Response {
    let Some((scope, session)) = find_in_accounts(&shared, SESSION, &id) else {
        return missing();
    };
    match with_session(&shared, &scope, &id, |ctx| {
        portal::cancel(ctx, &session, &sub)
    }) {
        Ok(_) => Redirect::to(&format!("/p/session/{id}")).into_response(),
        Err(e) => notice(
            e.status,
            "This subscription cannot be canceled here",
            &e.message(),
        ),
    }
}

fn with_session<T>(
    shared: &Arc<Shared>,
    scope: &Scope,
    id: &str,
    act: impl FnOnce(&super::engine::Ctx) -> T,
) -> T {
    let path = format!("/p/session/{id}");
    page_ctx(shared, scope, SESSION, &path, id, Map::new(), act)
}
