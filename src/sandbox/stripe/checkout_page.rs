//! The hosted page of the Checkout Sessions the API makes (their `url`, as Stripe's
//! `checkout.stripe.com/c/pay/{id}`): the same card form as the top-up app's page
//! (`sandbox::checkout::card_form`, its card fields in a same-origin iframe), paid with
//! Stripe's test cards (docs.stripe.com/testing: 4242 4242 4242 4242 succeeds,
//! 4000 0000 0000 0077 makes the funds available at once, 4000 0000 0000 0002 is declined).
//! Paying it is the payment-page confirm (`behaviour::checkout::pay_page`): the payment's events,
//! `checkout.session.completed`, in the account the session belongs to, then the browser goes to
//! the session's `success_url` (`{CHECKOUT_SESSION_ID}` replaced). Events it causes carry no
//! `request.id`: no API request made them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Map, Value, json};

use super::behaviour::{cards, checkout};
use super::engine::{Call, Ctx, Engine, Scope};
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
];

/// The session `id` and the account it belongs to.
fn find(shared: &Shared, id: &str) -> Option<(Scope, Value)> {
    let objects = &shared.stripe.objects;
    if let Some(cs) = objects.platform().get_of("checkout.session", id) {
        return Some((Scope::Platform, cs));
    }
    objects
        .connected()
        .into_iter()
        .find_map(|(account, store)| {
            store
                .get_of("checkout.session", id)
                .map(|cs| (Scope::Connected(account), cs))
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

fn notice(status: StatusCode, title: &str, text: &str) -> Response {
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
    let call = Call::internal(&format!("/c/pay/{id}"), scope);
    let resource = Engine::get()
        .resource("checkout.session")
        .expect("checkout.session is in the table");
    let setup = Ctx::new(
        &shared,
        &call,
        resource,
        "confirm",
        Map::new(),
        vec![id.clone()],
    );
    let mut pm = match cards::resolve(&setup, test_pm, "payment_method") {
        Ok(pm) => pm,
        Err(e) => return refuse(e.status, &e.message()),
    };
    pm["billing_details"]["email"] = json!(form.email);
    pm["billing_details"]["name"] = json!(form.name);
    if pm["billing_details"]["address"].is_object() {
        pm["billing_details"]["address"]["postal_code"] = json!(form.postal_code);
    }
    setup.put(&pm);
    let mut params = Map::new();
    params.insert("payment_method".into(), pm["id"].clone());
    let ctx = Ctx::new(
        &shared,
        &call,
        resource,
        "confirm",
        params,
        vec![id.clone()],
    );
    match checkout::pay_page(&ctx) {
        Ok(paid) => match paid["success_url"].as_str() {
            Some(url) => Redirect::to(&url.replace("{CHECKOUT_SESSION_ID}", &id)).into_response(),
            None => notice(
                StatusCode::OK,
                "Thanks for your payment",
                "Your payment was received.",
            ),
        },
        Err(e) => refuse(e.status, &e.message()),
    }
}
