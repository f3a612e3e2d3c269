//! Checkout Sessions through the API (create, expire) and the payment-page calls the Stripe
//! CLI's checkout fixtures make to pay one without a browser (`GET /v1/payment_pages/{cs}`,
//! `POST /v1/payment_pages/{cs}/confirm` with `payment_method` and `expected_amount`, the calls
//! Stripe.js makes; not part of stripe-node). Paying emits the payment's events (payments.rs),
//! then `checkout.session.completed`; a SEPA debit completes `unpaid`, then
//! `checkout.session.async_payment_succeeded` or `_failed` (docs.stripe.com/checkout/
//! fulfillment). The top-up app's sessions and their hosted page are `sandbox::checkout`; a
//! session made here has `url: null` (no hosted page). `subscription` and `setup` modes are not
//! built yet and are refused plainly.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::cards::{self, Outcome};
use super::payments;
use crate::sandbox::Shared;
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Call, Ctx, Engine};

pub struct Sessions;

impl Behaviour for Sessions {
    fn object(&self) -> &'static str {
        "checkout.session"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &[
            "line_items",
            "payment_intent_data",
            "payment_method_types",
            "customer",
        ]
    }
    fn actions(&self) -> &'static [&'static str] {
        &["expire"]
    }
    fn create(&self, ctx: &Ctx, cs: &mut Value) -> ApiResult<()> {
        let mode = ctx
            .str_param("mode")
            .ok_or_else(|| ApiError::missing_param("mode"))?;
        if mode != "payment" {
            return Err(ApiError::invalid(
                "parameter_invalid",
                Some("mode"),
                "The sandbox makes Checkout Sessions in payment mode only (subscription and setup modes are not built yet).",
            ));
        }
        let items = ctx
            .param("line_items")
            .and_then(Value::as_array)
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(
                    "parameter_missing",
                    Some("line_items"),
                    "You must specify either `line_items` or `setup_intent_data`.",
                )
            })?;
        let (mut total, mut currency) = (0, Value::Null);
        for (i, item) in items.iter().enumerate() {
            let param = format!("line_items[{i}][price]");
            let id = item["price"].as_str().ok_or_else(|| {
                ApiError::invalid(
                    "parameter_missing",
                    Some(&param),
                    "The sandbox takes line items by price.",
                )
            })?;
            let price = ctx.find("price", id, &param)?;
            total +=
                price["unit_amount"].as_i64().unwrap_or(0) * item["quantity"].as_i64().unwrap_or(1);
            currency = price["currency"].clone();
        }
        if let Some(customer) = ctx.str_param("customer") {
            cs["customer"] = ctx.find("customer", customer, "customer")?["id"].clone();
        }
        cs["id"] = json!(format!("cs_test_{}", crate::secret::random_alnum(58)));
        cs["amount_subtotal"] = json!(total);
        cs["amount_total"] = json!(total);
        cs["currency"] = currency;
        cs["expires_at"] = json!(ctx.now() + 86_400);
        cs["payment_status"] = json!("unpaid");
        cs["status"] = json!("open");
        cs["url"] = Value::Null;
        cs["total_details"] = json!({"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0});
        let types = ctx
            .param("payment_method_types")
            .cloned()
            .unwrap_or_else(|| json!(["card"]));
        cs["payment_method_types"] = types;
        // What the session's payment intent is made with: the sandbox's note, not the object.
        let data = ctx
            .param("payment_intent_data")
            .cloned()
            .unwrap_or(Value::Null);
        ctx.store().set_private(
            cs["id"].as_str().unwrap_or_default(),
            "payment_intent_data",
            data,
        );
        Ok(())
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        (ctx.op == "expire").then(|| {
            let mut cs = open_session(ctx)?;
            cs["status"] = json!("expired");
            cs["expires_at"] = json!(ctx.now());
            ctx.put(&cs);
            ctx.emit("checkout.session.expired", &cs, None);
            Ok(cs)
        })
    }
}

fn open_session(ctx: &Ctx) -> ApiResult<Value> {
    let cs = ctx.target()?;
    if cs["status"] != "open" {
        return Err(ApiError::state(
            "checkout_session_not_open",
            &format!(
                "This Checkout Session is no longer active (status: {}).",
                cs["status"].as_str().unwrap_or("")
            ),
        ));
    }
    Ok(cs)
}

/// Runs `act` with a `Ctx` for the Checkout Session the path names (the payment-page calls are
/// not stripe-node methods, so they have no generated schema: their parameters stay strings).
fn page_call(
    shared: &Arc<Shared>,
    call: &Call,
    id: String,
    act: fn(&Ctx) -> ApiResult<Value>,
) -> Response {
    let resource = Engine::get()
        .resource("checkout.session")
        .expect("checkout.session is in the table");
    let params: Map<String, Value> = call.raw.as_object().cloned().unwrap_or_default();
    let ctx = Ctx {
        shared,
        call,
        resource,
        op: "confirm",
        params,
        ids: vec![id],
    };
    match act(&ctx) {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/payment_pages/{cs}`: what the CLI reads before confirming (the open session).
pub async fn payment_page(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    call: Call,
) -> Response {
    page_call(&shared, &call, id, open_session)
}

/// `POST /v1/payment_pages/{cs}/confirm`: pays the session with `payment_method`.
pub async fn confirm(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    call: Call,
) -> Response {
    page_call(&shared, &call, id, pay_page)
}

fn pay_page(ctx: &Ctx) -> ApiResult<Value> {
    let mut cs = open_session(ctx)?;
    let named = ctx
        .str_param("payment_method")
        .ok_or_else(|| ApiError::missing_param("payment_method"))?;
    let pm = cards::resolve(ctx, named, "payment_method")?;
    if let Some(expected) = ctx.str_param("expected_amount") {
        let expected: i64 = expected.parse().map_err(|_| {
            ApiError::invalid(
                "parameter_invalid_integer",
                Some("expected_amount"),
                &format!("Invalid integer: {expected}"),
            )
        })?;
        if Some(expected) != cs["amount_total"].as_i64() {
            return Err(ApiError::invalid(
                "checkout_amount_mismatch",
                Some("expected_amount"),
                &format!(
                    "The expected amount ({expected}) does not match the session's amount ({}).",
                    cs["amount_total"]
                ),
            ));
        }
    }
    let asynchronous = pm["type"] != "card";
    let outcome = cards::outcome(ctx, pm["id"].as_str().unwrap_or_default());
    if let (false, Outcome::Declined(code, decline)) = (asynchronous, outcome) {
        // A declined card leaves the session open: the buyer may try another.
        return Err(payments::card_error(code, decline));
    }
    let data = ctx
        .store()
        .private(cs["id"].as_str().unwrap_or_default(), "payment_intent_data")
        .unwrap_or(Value::Null);
    let mut params = json!({"amount": cs["amount_total"], "currency": cs["currency"], "payment_method_types": [pm["type"]]});
    for key in ["description", "shipping", "setup_future_usage", "metadata"] {
        if !data[key].is_null() {
            params[key] = data[key].clone();
        }
    }
    if !cs["customer"].is_null() {
        params["customer"] = cs["customer"].clone();
    }
    let pi = ctx.create("payment_intent", params)?;
    let pi = payments::pay_deferred(ctx, pi, &pm)?;
    let billing = &pm["billing_details"];
    cs["payment_intent"] = pi["id"].clone();
    cs["status"] = json!("complete");
    cs["customer_details"] = json!({
        "address": billing["address"], "business_name": null, "email": billing["email"], "individual_name": null,
        "name": billing["name"], "phone": billing["phone"], "tax_exempt": "none", "tax_ids": [],
    });
    if cs["customer_email"].is_null() {
        cs["customer_email"] = billing["email"].clone();
    }
    if !asynchronous {
        cs["payment_status"] = json!("paid");
        ctx.put(&cs);
        ctx.emit("checkout.session.completed", &cs, None);
        return Ok(cs);
    }
    // Completed at once, paid when the debit settles (at once here, minutes later at Stripe).
    cs["payment_status"] = json!("unpaid");
    ctx.put(&cs);
    ctx.emit("checkout.session.completed", &cs, None);
    let _ = payments::settle_pending(ctx, pi["id"].as_str().unwrap_or_default());
    let settled = ctx.get("payment_intent", pi["id"].as_str().unwrap_or_default())?;
    let paid = settled["status"] == "succeeded";
    cs["payment_status"] = json!(if paid { "paid" } else { "unpaid" });
    ctx.put(&cs);
    let event = if paid {
        "checkout.session.async_payment_succeeded"
    } else {
        "checkout.session.async_payment_failed"
    };
    ctx.emit(event, &cs, None);
    Ok(cs)
}
