//! Checkout Sessions through the API (`/v1/checkout/sessions`: create, retrieve, expire) and
//! the payment-page calls the Stripe CLI's checkout fixtures make to pay one without a browser
//! (`GET /v1/payment_pages/{cs}`, `POST /v1/payment_pages/{cs}/confirm` with `payment_method` and
//! `expected_amount`). Paying emits the payment's events (payments.rs), then
//! `checkout.session.completed`; a SEPA debit completes `unpaid`, then
//! `checkout.session.async_payment_succeeded` or `_failed`. The top-up app's sessions and their
//! hosted page are `sandbox::checkout`; a session made here has `url: null` (no hosted page).

use super::objects::{self, CardOutcome, emit, fresh, integer, required};
use super::payments::{self, NewIntent};
use super::*;

const MODES: [&str; 3] = ["payment", "subscription", "setup"];

pub(super) async fn create(State(shared): S, headers: HeaderMap, body: Bytes) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    let mode = match required(&p, "mode") {
        Ok(m) if MODES.contains(&m) => m,
        Ok(m) => {
            return invalid(
                "parameter_invalid_string",
                Some("mode"),
                &format!("Invalid mode: must be one of payment, setup, or subscription (got {m})"),
            );
        }
        Err(r) => return r,
    };
    if mode != "payment" {
        return invalid(
            "parameter_invalid_string",
            Some("mode"),
            "The sandbox makes Checkout Sessions in payment mode only",
        );
    }
    let mut total = 0i64;
    let mut currency = Value::Null;
    let items = p["line_items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return invalid(
            "parameter_missing",
            Some("line_items"),
            "You must specify either `line_items` or `setup_intent_data`.",
        );
    }
    for (i, item) in items.iter().enumerate() {
        let Some(id) = item["price"].as_str() else {
            return invalid(
                "parameter_missing",
                Some(&format!("line_items[{i}][price]")),
                "The sandbox takes line items by price.",
            );
        };
        let Some(price) = shared.stripe.objects.get_of("price", id) else {
            return missing_param("price", &format!("line_items[{i}][price]"), id);
        };
        let quantity = match integer(item, "quantity") {
            Ok(q) => q.unwrap_or(1),
            Err(r) => return r,
        };
        total += price["unit_amount"].as_i64().unwrap_or(0) * quantity;
        currency = price["currency"].clone();
    }
    let mut cs = fresh(&shared, "checkout.session.completed", "cs_test");
    for key in [
        "success_url",
        "cancel_url",
        "client_reference_id",
        "customer_email",
    ] {
        cs[key] = p[key].clone();
    }
    cs["id"] = json!(format!("cs_test_{}", secret::random_alnum(58)));
    cs["mode"] = json!(mode);
    cs["amount_subtotal"] = json!(total);
    cs["amount_total"] = json!(total);
    cs["currency"] = currency;
    cs["customer"] = p["customer"].clone();
    cs["customer_details"] = Value::Null;
    cs["expires_at"] = json!(crate::webhook::signature::unix_now() + 86_400);
    cs["payment_intent"] = Value::Null;
    cs["payment_status"] = json!("unpaid");
    cs["status"] = json!("open");
    cs["url"] = Value::Null;
    cs["invoice"] = Value::Null;
    cs["subscription"] = Value::Null;
    cs["shipping_cost"] = Value::Null;
    cs["shipping_address_collection"] = Value::Null;
    cs["currency_conversion"] = Value::Null;
    cs["total_details"] = json!({"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0});
    let types = p["payment_method_types"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![json!("card")]);
    cs["payment_method_types"] = json!(types);
    cs["allowed_payment_method_types"] = json!(types);
    objects::merge_metadata(&mut cs, &p);
    // What the session's payment intent is made with, kept out of the object Stripe returns.
    shared.stripe.objects.put(&json!({
        "id": intent_data_key(cs["id"].as_str().unwrap_or_default()),
        "object": "sandbox.checkout_intent_data",
        "shipping": payments::shipping(&p["payment_intent_data"]["shipping"]),
        "description": p["payment_intent_data"]["description"],
    }));
    shared.stripe.objects.put(&cs);
    axum::Json(cs).into_response()
}

fn intent_data_key(cs: &str) -> String {
    format!("{cs}#payment_intent_data")
}

pub(super) async fn retrieve(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    authorized!(shared, headers);
    retrieve_as(&shared, "checkout.session", &id)
}

fn open_session(shared: &Shared, id: &str) -> std::result::Result<Value, Response> {
    let cs = shared
        .stripe
        .objects
        .get_of("checkout.session", id)
        .ok_or_else(|| missing("checkout.session", id))?;
    if cs["status"] != "open" {
        return Err(invalid(
            "checkout_session_not_open",
            None,
            &format!(
                "This Checkout Session is no longer active (status: {}).",
                cs["status"].as_str().unwrap_or("")
            ),
        ));
    }
    Ok(cs)
}

/// `POST /v1/checkout/sessions/{id}/expire`: `checkout.session.expired`.
pub(super) async fn expire(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    authorized!(shared, headers);
    let mut cs = match open_session(&shared, &id) {
        Ok(cs) => cs,
        Err(r) => return r,
    };
    cs["status"] = json!("expired");
    cs["expires_at"] = json!(crate::webhook::signature::unix_now());
    shared.stripe.objects.put(&cs);
    emit(&shared, "checkout.session.expired", &cs, None);
    axum::Json(cs).into_response()
}

/// What the CLI reads before confirming: the session's page, as the session itself.
pub(super) async fn payment_page(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    authorized!(shared, headers);
    match open_session(&shared, &id) {
        Ok(cs) => axum::Json(cs).into_response(),
        Err(r) => r,
    }
}

pub(super) async fn confirm(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    let mut cs = match open_session(&shared, &id) {
        Ok(cs) => cs,
        Err(r) => return r,
    };
    let pm = match required(&p, "payment_method")
        .and_then(|id| payments::resolve(&shared, id, "payment_method"))
    {
        Ok(pm) => pm,
        Err(r) => return r,
    };
    match integer(&p, "expected_amount") {
        Ok(Some(expected)) if Some(expected) != cs["amount_total"].as_i64() => {
            return invalid(
                "checkout_amount_mismatch",
                Some("expected_amount"),
                &format!(
                    "The expected amount ({expected}) does not match the session's amount ({}).",
                    cs["amount_total"]
                ),
            );
        }
        Err(r) => return r,
        _ => {}
    }
    let data = shared
        .stripe
        .objects
        .get(&intent_data_key(&id))
        .unwrap_or(Value::Null);
    let currency = cs["currency"].as_str().unwrap_or("usd").to_owned();
    let new = NewIntent {
        amount: cs["amount_total"].as_i64().unwrap_or(0),
        currency: &currency,
        customer: cs["customer"].as_str(),
        payment_method: Some(pm.clone()),
        description: data["description"].as_str(),
        metadata: json!({}),
        payment_method_types: vec![pm["type"].as_str().unwrap_or("card").to_owned()],
        shipping: data["shipping"].clone(),
    };
    let asynchronous = pm["type"] != "card";
    let outcome = shared
        .stripe
        .objects
        .outcome(pm["id"].as_str().unwrap_or_default());
    if !asynchronous && outcome == CardOutcome::Declined {
        // A declined card leaves the session open: the buyer may try another.
        return objects::card_declined(None, None);
    }
    let (mut pi, _) = payments::create_intent(&shared, new, !asynchronous);
    let billing = &pm["billing_details"];
    cs["payment_intent"] = pi["id"].clone();
    cs["status"] = json!("complete");
    cs["customer_details"] = json!({
        "address": billing["address"], "business_name": null, "email": billing["email"],
        "individual_name": null, "name": billing["name"], "phone": billing["phone"],
        "tax_exempt": "none", "tax_ids": [],
    });
    if cs["customer_email"].is_null() {
        cs["customer_email"] = billing["email"].clone();
    }
    if asynchronous {
        // Completed at once and paid when the debit settles (Stripe's asynchronous methods).
        payments::start_processing(&shared, &mut pi, &pm);
        cs["payment_status"] = json!("unpaid");
        shared.stripe.objects.put(&cs);
        emit(&shared, "checkout.session.completed", &cs, None);
        let paid = payments::settle(&shared, &mut pi, &pm).is_none();
        cs["payment_status"] = json!(if paid { "paid" } else { "unpaid" });
        shared.stripe.objects.put(&cs);
        let event = if paid {
            "checkout.session.async_payment_succeeded"
        } else {
            "checkout.session.async_payment_failed"
        };
        emit(&shared, event, &cs, None);
    } else {
        cs["payment_status"] = json!("paid");
        shared.stripe.objects.put(&cs);
        emit(&shared, "checkout.session.completed", &cs, None);
    }
    axum::Json(cs).into_response()
}
