//! Checkout Sessions through the API (create, expire) and the payment-page calls the Stripe
//! CLI's checkout fixtures make to pay one without a browser (`GET /v1/payment_pages/{cs}`,
//! `POST /v1/payment_pages/{cs}/confirm` with `payment_method` and `expected_amount`, the calls
//! Stripe.js makes; not part of stripe-node). The top-up app's sessions and their hosted page
//! are `sandbox::checkout`; a session made here has its own hosted page
//! (`stripe::checkout_page`, its `url`).
//!
//! The three modes (docs.stripe.com/api/checkout/sessions/create, `mode`):
//! - `payment`: paying makes the payment intent and emits its events (payments.rs), then
//!   `checkout.session.completed`; a SEPA debit completes `unpaid`, then
//!   `checkout.session.async_payment_succeeded` or `_failed` (docs.stripe.com/checkout/
//!   fulfillment). `payment_intent_data`'s Connect parameters (`application_fee_amount`,
//!   `transfer_data`, `on_behalf_of`, `transfer_group`) go to the payment intent (connect.rs).
//! - `subscription` (docs.stripe.com/billing/subscriptions/build-subscriptions?ui=checkout):
//!   recurring prices, and one-time ones beside them, which go on the first invoice only
//!   (`add_invoice_items`, first_invoice_items.rs); paying makes the customer if the session
//!   has none (`customer.created`),
//!   attaches the payment method (`payment_method.attached`) and makes the subscription with it
//!   as default (subscriptions.rs: its invoice's events), then `checkout.session.completed`
//!   with `subscription` and `invoice`; `payment_status` is `no_payment_required` when nothing
//!   is due today (a trial).
//! - `setup` (docs.stripe.com/payments/save-and-reuse?platform=checkout): `currency` (or
//!   `payment_method_types`) instead of line items; confirming makes and confirms a setup
//!   intent for the payment method (setup_intents.rs), then `checkout.session.completed` with
//!   `setup_intent` and `payment_status: no_payment_required`.
//!
//! A declined card leaves the session open (the buyer may try another). A card that asks for
//! 3-D Secure (docs.stripe.com/testing#regulatory-cards) leaves the intent `requires_action`
//! (`payment_intent.requires_action`, `setup_intent.requires_action`) and the session open
//! until the customer answers the hosted page's challenge (`authenticate`): completed, the
//! payment or setup goes on as above; failed, the intent is back to `requires_payment_method`
//! (`payment_intent.payment_failed`, `setup_intent.setup_failed`) and the session stays open.
//! In `subscription` mode the challenge is the first invoice's payment's
//! (`invoice.payment_action_required`; the subscription `incomplete` meanwhile): completed, the
//! invoice is paid and the subscription `active`, then `checkout.session.completed`; failed,
//! `invoice.payment_failed`, and another card pays the same invoice.

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
            "mode",
            "subscription_data",
            "setup_intent_data",
        ]
    }
    fn actions(&self) -> &'static [&'static str] {
        &["expire"]
    }
    fn create(&self, ctx: &Ctx, cs: &mut Value) -> ApiResult<()> {
        let mode = ctx
            .str_param("mode")
            .ok_or_else(|| ApiError::missing_param("mode"))?
            .to_owned();
        let (total, due, currency, items) = match mode.as_str() {
            "setup" => setup_currency(ctx)?,
            _ => line_items(ctx, &mode)?,
        };
        if let Some(customer) = ctx.str_param("customer") {
            cs["customer"] = ctx.find("customer", customer, "customer")?["id"].clone();
        }
        cs["id"] = json!(format!("cs_test_{}", crate::secret::random_alnum(58)));
        cs["mode"] = json!(mode);
        cs["amount_subtotal"] = json!(total);
        cs["amount_total"] = json!(due);
        cs["currency"] = currency;
        cs["expires_at"] = json!(ctx.now() + 86_400);
        cs["payment_status"] = json!("unpaid");
        cs["status"] = json!("open");
        // The hosted page (stripe::checkout_page), as Stripe's `checkout.stripe.com/c/pay/…`.
        cs["url"] = json!(format!(
            "{}/c/pay/{}",
            ctx.shared.stripe_api_url,
            cs["id"].as_str().unwrap_or_default()
        ));
        cs["total_details"] = json!({"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0});
        if mode == "setup" {
            cs["amount_subtotal"] = Value::Null;
            cs["amount_total"] = Value::Null;
            cs["total_details"] = Value::Null;
        }
        let types = ctx
            .param("payment_method_types")
            .cloned()
            .unwrap_or_else(|| json!(["card"]));
        cs["payment_method_types"] = types;
        // A payment mode session's Connect parameters are checked as its payment intent's.
        let intent_data = ctx
            .param("payment_intent_data")
            .cloned()
            .unwrap_or(Value::Null);
        if intent_data.is_object() {
            let mut checked = intent_data;
            checked["amount"] = json!(total);
            super::connect::check_intent_data(ctx, &checked, "payment_intent_data")?;
        }
        // What the session's payment intent, subscription or setup intent is made with, and its
        // line items: the sandbox's notes, not the object.
        let id = cs["id"].as_str().unwrap_or_default();
        for note in [
            "payment_intent_data",
            "subscription_data",
            "setup_intent_data",
        ] {
            let data = ctx.param(note).cloned().unwrap_or(Value::Null);
            ctx.store().set_private(id, note, data);
        }
        ctx.store().set_private(id, "line_items", items);
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

/// The session's line items, by price: (subtotal, due today, currency, the items each naming
/// its price). `payment` mode takes one-time prices; `subscription` mode recurring ones and,
/// beside them, one-time ones, which are on the first invoice only (API reference, Create a
/// Checkout Session, `line_items`; a trial makes only those due today).
fn line_items(ctx: &Ctx, mode: &str) -> ApiResult<(i64, i64, Value, Value)> {
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
    let (mut total, mut one_time, mut currency) = (0, 0, Value::Null);
    let mut any_recurring = false;
    let mut priced = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let param = format!("line_items[{i}][price]");
        let price = match (item["price"].as_str(), item.get("price_data")) {
            (Some(id), _) => ctx.find("price", id, &param)?,
            (None, Some(data)) => inline_price(ctx, data)?,
            (None, None) => {
                return Err(ApiError::invalid(
                    "parameter_missing",
                    Some(&param),
                    &format!("You must specify either `price` or `price_data` in line_items[{i}]."),
                ));
            }
        };
        let mut item = item.clone();
        if let Some(fields) = item.as_object_mut() {
            fields.remove("price_data");
        }
        item["price"] = price["id"].clone();
        priced.push(item.clone());
        let recurring = price["type"] == "recurring";
        if mode == "payment" && recurring {
            return Err(ApiError::invalid(
                "parameter_invalid",
                Some(&param),
                "You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.",
            ));
        }
        let amount =
            price["unit_amount"].as_i64().unwrap_or(0) * item["quantity"].as_i64().unwrap_or(1);
        total += amount;
        if recurring {
            any_recurring = true;
        } else {
            one_time += amount;
        }
        currency = price["currency"].clone();
    }
    if mode == "subscription" && !any_recurring {
        return Err(ApiError::invalid(
            "parameter_invalid",
            Some("line_items"),
            "You must specify at least one recurring price in `subscription` mode when using prices.",
        ));
    }
    // A trial makes the recurring items free today; the one-time items are on the first invoice
    // all the same.
    let trial = ctx
        .param("subscription_data")
        .is_some_and(|d| !d["trial_period_days"].is_null() || !d["trial_end"].is_null());
    Ok((
        total,
        if trial { one_time } else { total },
        currency,
        Value::Array(priced),
    ))
}

/// `line_items[][price_data]`: "Data used to generate a new Price object inline" (API reference,
/// Create a Checkout Session), its `product_data` a new product — the one-off products that
/// price_data sessions leave in a Stripe account. The sandbox makes them through the engine, so
/// they carry their own `product.created` / `price.created` events (whether Stripe sends those
/// for inline prices is not documented; said in docs/SANDBOX.md).
fn inline_price(ctx: &Ctx, data: &Value) -> ApiResult<Value> {
    ctx.create("price", data.clone())
}

/// `setup` mode's currency: dynamic payment methods need `currency` unless the session names
/// its `payment_method_types`.
fn setup_currency(ctx: &Ctx) -> ApiResult<(i64, i64, Value, Value)> {
    if ctx.param("line_items").is_some() {
        return Err(ApiError::invalid(
            "parameter_invalid",
            Some("line_items"),
            "You cannot pass `line_items` in `setup` mode.",
        ));
    }
    let currency = ctx.param("currency").cloned().unwrap_or(Value::Null);
    if currency.is_null() && ctx.param("payment_method_types").is_none() {
        return Err(ApiError::invalid(
            "parameter_missing",
            Some("currency"),
            "You must pass `currency` in `setup` mode when using dynamic payment methods (or name `payment_method_types`).",
        ));
    }
    Ok((0, 0, currency, Value::Null))
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
    let ctx = Ctx::new(shared, call, resource, "confirm", params, vec![id]);
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

/// Pays the session with `payment_method` (the payment-page confirm, and the hosted page).
pub fn pay_page(ctx: &Ctx) -> ApiResult<Value> {
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
    match cards::outcome(ctx, pm["id"].as_str().unwrap_or_default()) {
        // A declined card leaves the session open: the buyer may try another.
        Outcome::Declined(code, decline) if !asynchronous && cs["mode"] != "setup" => {
            return Err(payments::card_error(code, decline));
        }
        _ => {}
    }
    customer_details(&mut cs, &pm);
    match cs["mode"].as_str() {
        Some("subscription") => return subscribe(ctx, cs, &pm),
        Some("setup") => return set_up(ctx, cs, &pm),
        _ => {}
    }
    // One payment intent per session: a new attempt after a decline or a failed
    // authentication confirms the same intent again (docs.stripe.com/payments/checkout/
    // how-checkout-works: the session's `payment_intent`).
    let again = cs["payment_intent"]
        .as_str()
        .and_then(|id| ctx.store().get_of("payment_intent", id))
        .filter(|pi| {
            matches!(
                pi["status"].as_str(),
                Some("requires_payment_method" | "requires_action")
            )
        });
    let pi = match again {
        Some(pi) => pi,
        None => ctx.create("payment_intent", intent_params(ctx, &cs, &pm))?,
    };
    cs["payment_intent"] = pi["id"].clone();
    ctx.put(&cs);
    let pi = payments::pay_deferred(ctx, pi, &pm)?;
    if pi["status"] == "requires_action" {
        // 3-D Secure: the session stays open until the customer answers the challenge
        // (`authenticate`).
        return Ok(cs);
    }
    complete_payment(ctx, cs, &pi, asynchronous)
}

/// The payment intent a `payment` mode session makes, with its `payment_intent_data`.
fn intent_params(ctx: &Ctx, cs: &Value, pm: &Value) -> Value {
    let data = note(ctx, cs, "payment_intent_data");
    let mut params = json!({"amount": cs["amount_total"], "currency": cs["currency"], "payment_method_types": [pm["type"]]});
    for key in [
        "description",
        "shipping",
        "setup_future_usage",
        "metadata",
        "application_fee_amount",
        "transfer_data",
        "on_behalf_of",
        "transfer_group",
    ] {
        if !data[key].is_null() {
            params[key] = data[key].clone();
        }
    }
    if !cs["customer"].is_null() {
        params["customer"] = cs["customer"].clone();
    }
    params
}

/// A paid (or, for a debit, processing) payment completes the session:
/// `checkout.session.completed`, then a debit's outcome.
fn complete_payment(ctx: &Ctx, mut cs: Value, pi: &Value, asynchronous: bool) -> ApiResult<Value> {
    cs["status"] = json!("complete");
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

/// One of the session's notes (see `create`).
fn note(ctx: &Ctx, cs: &Value, name: &str) -> Value {
    ctx.store()
        .private(cs["id"].as_str().unwrap_or_default(), name)
        .unwrap_or(Value::Null)
}

/// Who paid, from the payment method's billing details.
fn customer_details(cs: &mut Value, pm: &Value) {
    let billing = &pm["billing_details"];
    let email = match &cs["customer_email"] {
        Value::Null => billing["email"].clone(),
        given => given.clone(),
    };
    cs["customer_details"] = json!({
        "address": billing["address"], "business_name": null, "email": email, "individual_name": null,
        "name": billing["name"], "phone": billing["phone"], "tax_exempt": "none", "tax_ids": [],
    });
    cs["customer_email"] = email;
}

/// `subscription` mode: the customer (made if the session has none), the payment method
/// attached, the subscription made with it as default, then `checkout.session.completed`.
fn subscribe(ctx: &Ctx, cs: Value, pm: &Value) -> ApiResult<Value> {
    if let Some(sub) = pending_subscription(ctx, &cs) {
        return pay_first_invoice_again(ctx, cs, &sub, pm);
    }
    let customer = match cs["customer"].as_str() {
        Some(id) => ctx.get("customer", id)?,
        None => {
            let details = &cs["customer_details"];
            let mut params = json!({"email": details["email"], "name": details["name"]});
            params
                .as_object_mut()
                .into_iter()
                .for_each(|m| m.retain(|_, v| !v.is_null()));
            ctx.create("customer", params)?
        }
    };
    let customer_id = customer["id"].as_str().unwrap_or_default().to_owned();
    let mut pm = pm.clone();
    if pm["object"] == "payment_method" {
        cards::attach(ctx, &mut pm, &customer_id)?;
    }
    let data = note(ctx, &cs, "subscription_data");
    // Recurring prices are the subscription's items; one-time ones its first invoice's
    // (`add_invoice_items`).
    let (items, one_time): (Vec<Value>, Vec<Value>) = note(ctx, &cs, "line_items")
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| json!({"price": i["price"], "quantity": i["quantity"].as_i64().unwrap_or(1)}))
        .partition(|i| {
            i["price"]
                .as_str()
                .and_then(|id| ctx.store().get_of("price", id))
                .is_some_and(|p| p["type"] == "recurring")
        });
    let mut params =
        json!({"customer": customer_id, "items": items, "default_payment_method": pm["id"]});
    if !one_time.is_empty() {
        params["add_invoice_items"] = json!(one_time);
    }
    for key in ["trial_period_days", "trial_end", "metadata", "description"] {
        if !data[key].is_null() {
            params[key] = data[key].clone();
        }
    }
    let sub = ctx.create("subscription", params)?;
    if let Some(pi) = first_payment_awaiting_action(ctx, &sub) {
        // 3-D Secure for the first invoice's payment: the session stays open, its subscription
        // `incomplete`, until the customer answers the challenge (`authenticate`).
        let id = cs["id"].as_str().unwrap_or_default();
        ctx.store()
            .set_private(id, PENDING_SUBSCRIPTION, sub["id"].clone());
        ctx.store().set_private(id, INVOICE_PAYMENT, pi);
        ctx.put(&cs);
        return Ok(cs);
    }
    complete_subscription(ctx, cs, &sub)
}

/// The sandbox's notes on a `subscription` mode session whose first invoice's payment waits
/// for 3-D Secure: the subscription made, and the payment intent.
const PENDING_SUBSCRIPTION: &str = "pending_subscription";
const INVOICE_PAYMENT: &str = "invoice_payment_intent";

/// The subscription a session made whose first invoice is not paid yet.
fn pending_subscription(ctx: &Ctx, cs: &Value) -> Option<Value> {
    let id = ctx
        .store()
        .private(cs["id"].as_str().unwrap_or_default(), PENDING_SUBSCRIPTION)?;
    ctx.store().get_of("subscription", id.as_str()?)
}

/// The id of the payment intent of `sub`'s first invoice when it waits for 3-D Secure (the
/// invoice's charge, invoices/mod.rs, names the invoice's number in its description).
fn first_payment_awaiting_action(ctx: &Ctx, sub: &Value) -> Option<Value> {
    if sub["status"] != "incomplete" {
        return None;
    }
    let invoice = ctx
        .store()
        .get_of("invoice", sub["latest_invoice"].as_str()?)?;
    let description = format!("Invoice {}", invoice["number"].as_str()?);
    ctx.store()
        .all("payment_intent", &|pi| {
            pi["status"] == "requires_action"
                && pi["customer"] == sub["customer"]
                && pi["description"] == description.as_str()
        })
        .into_iter()
        .next()
        .map(|pi| pi["id"].clone())
}

/// Another card for a session whose first invoice's payment failed authentication: it pays
/// the same subscription's open invoice.
fn pay_first_invoice_again(ctx: &Ctx, cs: Value, sub: &Value, pm: &Value) -> ApiResult<Value> {
    let mut pm = pm.clone();
    if pm["object"] == "payment_method" {
        cards::attach(ctx, &mut pm, sub["customer"].as_str().unwrap_or_default())?;
    }
    let mut invoice = ctx.get(
        "invoice",
        sub["latest_invoice"].as_str().unwrap_or_default(),
    )?;
    if let Err(e) = super::invoices::pay(ctx, &mut invoice, &pm) {
        let error = e.body()["error"].clone();
        if error["code"] != "invoice_payment_intent_requires_action" {
            return Err(e);
        }
        let id = cs["id"].as_str().unwrap_or_default();
        ctx.store()
            .set_private(id, INVOICE_PAYMENT, error["payment_intent"]["id"].clone());
        return Ok(cs);
    }
    first_invoice_paid(ctx, cs, &invoice)
}

/// The first invoice paid: the subscription turns `active` (`customer.subscription.updated`),
/// then the session completes.
fn first_invoice_paid(ctx: &Ctx, cs: Value, invoice: &Value) -> ApiResult<Value> {
    super::subscriptions::invoice_charged(ctx, invoice, true)?;
    let id = cs["id"].as_str().unwrap_or_default();
    ctx.store()
        .set_private(id, PENDING_SUBSCRIPTION, Value::Null);
    ctx.store().set_private(id, INVOICE_PAYMENT, Value::Null);
    let sub = ctx.get(
        "subscription",
        invoice["parent"]["subscription_details"]["subscription"]
            .as_str()
            .unwrap_or_default(),
    )?;
    complete_subscription(ctx, cs, &sub)
}

/// `checkout.session.completed` with the subscription, its customer and its first invoice.
fn complete_subscription(ctx: &Ctx, mut cs: Value, sub: &Value) -> ApiResult<Value> {
    cs["customer"] = sub["customer"].clone();
    cs["subscription"] = sub["id"].clone();
    cs["invoice"] = sub["latest_invoice"].clone();
    cs["status"] = json!("complete");
    cs["payment_status"] = json!(if cs["amount_total"] == 0 {
        "no_payment_required"
    } else if matches!(sub["status"].as_str(), Some("active" | "trialing")) {
        "paid"
    } else {
        "unpaid"
    });
    ctx.put(&cs);
    ctx.emit("checkout.session.completed", &cs, None);
    Ok(cs)
}

/// `setup` mode: a setup intent for the payment method (for the session's customer, if any),
/// confirmed at once, then `checkout.session.completed`. A declined card fails the setup
/// intent (`setup_intent.setup_failed`) and leaves the session open.
fn set_up(ctx: &Ctx, mut cs: Value, pm: &Value) -> ApiResult<Value> {
    let data = note(ctx, &cs, "setup_intent_data");
    let mut params =
        json!({"payment_method": pm["id"], "confirm": true, "payment_method_types": [pm["type"]]});
    for key in ["description", "metadata"] {
        if !data[key].is_null() {
            params[key] = data[key].clone();
        }
    }
    if !cs["customer"].is_null() {
        params["customer"] = cs["customer"].clone();
    }
    let si = ctx.create("setup_intent", params)?;
    cs["setup_intent"] = si["id"].clone();
    if si["status"] == "requires_action" {
        // 3-D Secure: open until the customer answers the challenge (`authenticate`).
        ctx.put(&cs);
        return Ok(cs);
    }
    complete_setup(ctx, cs)
}

fn complete_setup(ctx: &Ctx, mut cs: Value) -> ApiResult<Value> {
    cs["status"] = json!("complete");
    cs["payment_status"] = json!("no_payment_required");
    ctx.put(&cs);
    ctx.emit("checkout.session.completed", &cs, None);
    Ok(cs)
}

/// The intent of an open session that waits for the customer's 3-D Secure answer, if any:
/// (`payment_intent`, `setup_intent`, or `invoice` for a subscription's first invoice; the
/// intent's id).
pub fn awaiting_authentication(ctx: &Ctx, cs: &Value) -> Option<(&'static str, String)> {
    let invoice_payment = ctx
        .store()
        .private(cs["id"].as_str().unwrap_or_default(), INVOICE_PAYMENT)
        .and_then(|v| v.as_str().map(str::to_owned));
    [
        (
            "payment_intent",
            cs["payment_intent"].as_str().map(str::to_owned),
        ),
        (
            "setup_intent",
            cs["setup_intent"].as_str().map(str::to_owned),
        ),
        ("invoice", invoice_payment),
    ]
    .into_iter()
    .find_map(|(kind, id)| {
        let id = id?;
        let stored = if kind == "setup_intent" {
            kind
        } else {
            "payment_intent"
        };
        let intent = ctx.store().get_of(stored, &id)?;
        (cs["status"] == "open" && intent["status"] == "requires_action").then_some((kind, id))
    })
}

/// The customer's answer to the 3-D Secure challenge of the session's intent (the hosted
/// page's authentication step, `stripe::checkout_page`). Completed: the payment succeeds
/// (`charge.succeeded`, `payment_intent.succeeded`) or the card is set up
/// (`setup_intent.succeeded`), then `checkout.session.completed`. Failed:
/// `payment_intent.payment_failed` (or `setup_intent.setup_failed`) and the session stays open
/// for another attempt, as Stripe's Checkout does.
pub fn authenticate(ctx: &Ctx, complete: bool) -> ApiResult<Value> {
    let cs = open_session(ctx)?;
    let Some((kind, id)) = awaiting_authentication(ctx, &cs) else {
        return Err(ApiError::state(
            "checkout_session_not_awaiting_authentication",
            "This Checkout Session has no payment waiting for authentication.",
        ));
    };
    if kind == "setup_intent" {
        let si = super::setup_intents::authenticated(ctx, &id, complete)?;
        return if si["status"] == "succeeded" {
            complete_setup(ctx, cs)
        } else {
            Ok(cs)
        };
    }
    let pi = payments::authenticated(ctx, &id, complete)?;
    if kind == "invoice" {
        let Some(sub) = pending_subscription(ctx, &cs) else {
            return Ok(cs);
        };
        let mut invoice = ctx.get(
            "invoice",
            sub["latest_invoice"].as_str().unwrap_or_default(),
        )?;
        if pi["status"] != "succeeded" {
            // The invoice stays open, its payment failed (docs.stripe.com/billing/subscriptions/
            // overview#requires-action).
            ctx.emit("invoice.payment_failed", &invoice, None);
            return Ok(cs);
        }
        let amount = invoice["amount_remaining"].as_i64().unwrap_or(0);
        super::invoices::mark_paid(ctx, &mut invoice, amount);
        return first_invoice_paid(ctx, cs, &invoice);
    }
    if pi["status"] == "succeeded" {
        return complete_payment(ctx, cs, &pi, false);
    }
    Ok(cs)
}
