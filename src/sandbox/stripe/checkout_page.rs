//! The hosted page of the Checkout Sessions the API makes (their `url`, as Stripe's
//! `checkout.stripe.com/c/pay/{id}`): the same card form as the top-up app's page
//! (`sandbox::checkout::card_form`, its card fields in a same-origin iframe), paid with
//! Stripe's test cards (docs.stripe.com/testing: 4242 4242 4242 4242 succeeds,
//! 4000 0000 0000 0077 makes the funds available at once, 4000 0000 0000 0002 is declined).
//! Paying it is the payment-page confirm (`behaviour::checkout::pay_page`): the payment's events,
//! `checkout.session.completed`, in the account the session belongs to, then the browser goes to
//! the session's `success_url` (`{CHECKOUT_SESSION_ID}` replaced). A card that asks for 3-D
//! Secure (4000 0027 6000 3184, 4000 0000 0000 3220) goes first to the authentication step
//! (`/c/pay/{id}/authenticate`, Stripe's test page's "Complete" and "Fail"). Events it causes
//! carry no `request.id`: no API request made them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Map, Value, json};

use super::behaviour::{cards, checkout};
use super::engine::{ApiResult, Call, Ctx, Engine, Scope};
use super::three_d_secure;
use crate::sandbox::Shared;
use crate::sandbox::checkout::{
    CARD_FRAME, CardVerdict, PaymentForm, card_form, dollars, escape, judge, layout, year_month_now,
};

type S = State<Arc<Shared>>;

/// The test card numbers whose payment differs from a plain success, by their test payment
/// method (cards.rs knows what each does).
const CARDS: &[(&str, &str)] = &[
    ("4000000000000077", "pm_card_bypassPending"),
    ("4000000000000259", "pm_card_createDispute"),
    // docs.stripe.com/testing#regulatory-cards: "requires authentication for one-time
    // payments" (3184: always authenticate; 3220: 3D Secure 2 authentication must be completed).
    ("4000002760003184", "pm_card_authenticationRequired"),
    ("4000000000003220", "pm_card_threeDSecure2Required"),
];

/// What Checkout shows when the customer fails 3-D Secure (Stripe.js's message for
/// `payment_intent_authentication_failure`).
const AUTHENTICATION_FAILED: &str = "We are unable to authenticate your payment method. Please choose a different payment method and try again.";

/// The session `id` and the account it belongs to.
fn find(shared: &Shared, id: &str) -> Option<(Scope, Value)> {
    find_in_accounts(shared, "checkout.session", id)
}

/// The `kind` object `id` of a hosted page, in whichever account it is, and that account.
pub(super) fn find_in_accounts(shared: &Shared, kind: &str, id: &str) -> Option<(Scope, Value)> {
    let objects = &shared.stripe.objects;
    if let Some(found) = objects.platform().get_of(kind, id) {
        return Some((Scope::Platform, found));
    }
    objects
        .connected()
        .into_iter()
        .find_map(|(account, store)| {
            store
                .get_of(kind, id)
                .map(|found| (Scope::Connected(account), found))
        })
}

fn overview(cs: &Value) -> String {
    let amount = cs["amount_total"].as_i64().unwrap_or(0);
    let currency = cs["currency"].as_str().unwrap_or("usd").to_uppercase();
    format!(
        "<div class=\"App-Overview\"><div class=\"Merchant\">stripe-ops sandbox <span class=\"Badge\">TEST MODE</span></div>\
         <div class=\"ProductSummary-Name\">Checkout</div>\
         <div class=\"ProductSummary-Amount\" id=\"ProductSummary-totalAmount\">{} {currency}</div></div>",
        dollars(amount)
    )
}

pub(super) fn notice(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<div class=\"App-Payment\"><div class=\"Notice\" id=\"checkout-notice\"><h1 style=\"font-size:20px\">{}</h1><p>{}</p></div></div>",
        escape(title),
        escape(text)
    );
    (status, Html(layout(title, &body))).into_response()
}

/// A session that cannot be paid: unknown, paid already, or expired.
fn closed(cs: Option<&Value>) -> Response {
    match cs.and_then(|c| c["status"].as_str()) {
        None => notice(
            StatusCode::NOT_FOUND,
            "Checkout session not found",
            "This link is not valid.",
        ),
        Some("complete") => notice(
            StatusCode::OK,
            "This checkout session is already paid",
            "There is nothing more to pay.",
        ),
        Some(_) => notice(
            StatusCode::GONE,
            "This checkout session has expired",
            "Return to the site to start again.",
        ),
    }
}

fn form_page(cs: &Value, form: &PaymentForm, error: Option<&str>) -> String {
    let id = cs["id"].as_str().unwrap_or_default();
    card_form(
        &overview(cs),
        &format!("/c/pay/{id}"),
        &format!("/c/pay/{id}/card"),
        form,
        error,
    )
}

/// `GET /c/pay/{id}`.
pub async fn page(State(shared): S, UrlPath(id): UrlPath<String>) -> Response {
    match find(&shared, &id) {
        Some((_, cs)) if cs["status"] == "open" => {
            Html(form_page(&cs, &PaymentForm::default(), None)).into_response()
        }
        found => closed(found.as_ref().map(|f| &f.1)),
    }
}

/// `GET /c/pay/{id}/card`: the card fields' frame.
pub async fn card_frame(State(shared): S, UrlPath(id): UrlPath<String>) -> Response {
    match find(&shared, &id) {
        Some(_) => Html(CARD_FRAME).into_response(),
        None => closed(None),
    }
}

/// `POST /c/pay/{id}`: the buyer pays.
pub async fn pay(State(shared): S, UrlPath(id): UrlPath<String>, body: Bytes) -> Response {
    let Some((scope, cs)) = find(&shared, &id).filter(|(_, cs)| cs["status"] == "open") else {
        return closed(find(&shared, &id).as_ref().map(|f| &f.1));
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let form = PaymentForm::from_pairs(&pairs);
    let refuse = |status: StatusCode, message: &str| {
        (status, Html(form_page(&cs, &form, Some(message)))).into_response()
    };
    match judge(&form, year_month_now()) {
        CardVerdict::Approved => {}
        CardVerdict::Declined(message) => return refuse(StatusCode::PAYMENT_REQUIRED, message),
        CardVerdict::Invalid(message) => return refuse(StatusCode::BAD_REQUEST, message),
    }
    let digits: String = form
        .card_number
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let test_pm = CARDS
        .iter()
        .find(|(number, _)| *number == digits)
        .map_or("pm_card_visa", |(_, pm)| pm);
    let pm = with_ctx(
        &shared,
        &scope,
        &id,
        Map::new(),
        |setup| -> ApiResult<Value> {
            let mut pm = cards::resolve(setup, test_pm, "payment_method")?;
            pm["billing_details"]["email"] = json!(form.email);
            pm["billing_details"]["name"] = json!(form.name);
            if pm["billing_details"]["address"].is_object() {
                pm["billing_details"]["address"]["postal_code"] = json!(form.postal_code);
            }
            setup.put(&pm);
            Ok(pm)
        },
    );
    let pm = match pm {
        Ok(pm) => pm,
        Err(e) => return refuse(e.status, &e.message()),
    };
    let mut params = Map::new();
    params.insert("payment_method".into(), pm["id"].clone());
    match with_ctx(&shared, &scope, &id, params, checkout::pay_page) {
        // 3-D Secure: the authentication step.
        Ok(open) if open["status"] == "open" => {
            Redirect::to(&format!("/c/pay/{id}/authenticate")).into_response()
        }
        Ok(paid) => succeeded(&paid),
        Err(e) => refuse(e.status, &e.message()),
    }
}

/// Runs `act` with a `Ctx` for the session `id` in its account (events it causes carry no
/// `request.id`: no API request made them).
fn with_ctx<T>(
    shared: &Arc<Shared>,
    scope: &Scope,
    id: &str,
    params: Map<String, Value>,
    act: impl FnOnce(&Ctx) -> T,
) -> T {
    let path = format!("/c/pay/{id}");
    page_ctx(shared, scope, "checkout.session", &path, id, params, act)
}

/// Runs `act` with a `Ctx` of a hosted page (`path`) acting on the `kind` object `id` in its
/// account.
pub(super) fn page_ctx<T>(
    shared: &Arc<Shared>,
    scope: &Scope,
    kind: &str,
    path: &str,
    id: &str,
    params: Map<String, Value>,
    act: impl FnOnce(&Ctx) -> T,
) -> T {
    let call = Call::internal(path, scope.clone());
    let resource = Engine::get()
        .resource(kind)
        .unwrap_or_else(|| panic!("{kind} is in the table"));
    let ctx = Ctx::new(
        shared,
        &call,
        resource,
        "confirm",
        params,
        vec![id.to_owned()],
    );
    act(&ctx)
}

/// The browser goes to the paid session's `success_url`.
fn succeeded(paid: &Value) -> Response {
    let id = paid["id"].as_str().unwrap_or_default();
    match paid["success_url"].as_str() {
        Some(url) => Redirect::to(&url.replace("{CHECKOUT_SESSION_ID}", id)).into_response(),
        None => notice(
            StatusCode::OK,
            "Thanks for your payment",
            "Your payment was received.",
        ),
    }
}

/// `GET /c/pay/{id}/authenticate`: the 3-D Secure challenge of a session whose intent is
/// `requires_action`, as Stripe's test authentication page offers it (docs.stripe.com/testing
/// #regulatory-cards: in test mode a page lets you complete or fail the authentication).
pub async fn authentication_page(State(shared): S, UrlPath(id): UrlPath<String>) -> Response {
    let Some((scope, cs)) = find(&shared, &id) else {
        return closed(None);
    };
    let waiting = with_ctx(&shared, &scope, &id, Map::new(), |ctx| {
        checkout::awaiting_authentication(ctx, &cs)
    });
    if waiting.is_none() {
        return Redirect::to(&format!("/c/pay/{id}")).into_response();
    }
    three_d_secure::challenge(&overview(&cs), &format!("/c/pay/{id}/authenticate"))
}

/// `POST /c/pay/{id}/authenticate` (`outcome=complete|fail`): completed, the session is paid
/// and the browser goes to `success_url`; failed, the payment page again with Checkout's message.
pub async fn authenticate(State(shared): S, UrlPath(id): UrlPath<String>, body: Bytes) -> Response {
    let Some((scope, cs)) = find(&shared, &id).filter(|(_, cs)| cs["status"] == "open") else {
        return closed(find(&shared, &id).as_ref().map(|f| &f.1));
    };
    let complete = three_d_secure::completed(&body);
    match with_ctx(&shared, &scope, &id, Map::new(), |ctx| {
        checkout::authenticate(ctx, complete)
    }) {
        Ok(paid) if paid["status"] == "complete" => succeeded(&paid),
        Ok(open) => (
            StatusCode::PAYMENT_REQUIRED,
            Html(form_page(
                &open,
                &PaymentForm::default(),
                Some(AUTHENTICATION_FAILED),
            )),
        )
            .into_response(),
        Err(e) => (
            e.status,
            Html(form_page(&cs, &PaymentForm::default(), Some(&e.message()))),
        )
            .into_response(),
    }
}
