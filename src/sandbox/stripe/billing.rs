//! Subscriptions, invoice items and invoices: `/v1/subscriptions`, `/v1/invoiceitems`, `/v1/invoices` (create, retrieve, pay). A paid
//! invoice emits `invoice.finalized`, the payment's events (payments.rs), then `invoice.paid`
//! and `invoice.payment_succeeded`; a declined one `invoice.payment_failed`.

use super::objects::{self, card_declined, emit, fresh, integer, required};
use super::payments::{self, NewIntent};
use super::*;

const MONTH: i64 = 30 * 86_400;

fn now() -> i64 {
    crate::webhook::signature::unix_now()
}

fn plan_of(shared: &Shared, price: &Value, recurring: &Value) -> Value {
    let mut plan = fresh(shared, "plan.created", "plan");
    plan["id"] = price["id"].clone();
    plan["created"] = price["created"].clone();
    for key in ["active", "currency", "metadata", "nickname", "product"] {
        plan[key] = price[key].clone();
    }
    plan["amount"] = price["unit_amount"].clone();
    plan["amount_decimal"] = price["unit_amount_decimal"].clone();
    plan["billing_scheme"] = json!("per_unit");
    plan["interval"] = recurring["interval"].clone();
    plan["interval_count"] = recurring["interval_count"].clone();
    plan["usage_type"] = json!("licensed");
    plan["tiers_mode"] = Value::Null;
    plan["transform_usage"] = Value::Null;
    plan["trial_period_days"] = Value::Null;
    plan["meter"] = Value::Null;
    plan
}

/// One line of an invoice, for a subscription's price or a pending invoice item.
fn line(
    invoice: &str,
    amount: i64,
    currency: &Value,
    description: Value,
    parent: Value,
    price: Option<&Value>,
) -> Value {
    json!({
        "id": format!("il_{}", secret::random_alnum(24)),
        "object": "line_item",
        "amount": amount,
        "currency": currency,
        "description": description,
        "discount_amounts": [],
        "discountable": true,
        "discounts": [],
        "invoice": invoice,
        "livemode": false,
        "metadata": {},
        "parent": parent,
        "period": {"end": now() + MONTH, "start": now()},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": price.map(|p| json!({"price": p["id"], "product": p["product"]})),
            "type": "price_details",
            "unit_amount_decimal": amount.to_string(),
        },
        "quantity": 1,
        "quantity_decimal": "1",
        "subtotal": amount,
        "taxes": [],
    })
}

fn invoice_object(
    shared: &Shared,
    customer: &Value,
    currency: &Value,
    lines: Vec<Value>,
    reason: &str,
    id: String,
) -> Value {
    let mut invoice = fresh(shared, "invoice.created", "in");
    let total: i64 = lines.iter().filter_map(|l| l["amount"].as_i64()).sum();
    invoice["id"] = json!(id);
    invoice["customer"] = customer["id"].clone();
    invoice["customer_email"] = customer["email"].clone();
    invoice["customer_name"] = customer["name"].clone();
    invoice["currency"] = currency.clone();
    invoice["billing_reason"] = json!(reason);
    invoice["collection_method"] = json!("charge_automatically");
    invoice["status"] = json!("draft");
    for key in [
        "amount_due",
        "amount_remaining",
        "subtotal",
        "total",
        "subtotal_excluding_tax",
        "total_excluding_tax",
    ] {
        invoice[key] = json!(total);
    }
    invoice["amount_paid"] = json!(0);
    invoice["attempt_count"] = json!(0);
    invoice["attempted"] = json!(false);
    invoice["auto_advance"] = json!(true);
    invoice["period_start"] = json!(now());
    invoice["period_end"] = json!(now());
    invoice["number"] = Value::Null;
    invoice["status_transitions"] = json!({"finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null});
    invoice["parent"] = Value::Null;
    let url = format!(
        "/v1/invoices/{}/lines",
        invoice["id"].as_str().unwrap_or_default()
    );
    invoice["lines"] = json!({"object": "list", "data": lines, "has_more": false, "total_count": lines.len(), "url": url});
    invoice
}

/// Finalizes and pays an invoice with `pm` (events as the module says). Returns the failed
/// charge's id on a decline.
fn pay_invoice(shared: &Arc<Shared>, invoice: &mut Value, pm: &Value) -> Option<String> {
    if invoice["status"] == "draft" {
        invoice["status"] = json!("open");
        invoice["number"] = json!(format!(
            "SBX-{}",
            secret::random_alnum(6).to_ascii_uppercase()
        ));
        invoice["status_transitions"]["finalized_at"] = json!(now());
        shared.stripe.objects.put(invoice);
        emit(shared, "invoice.finalized", invoice, None);
    }
    let amount = invoice["amount_remaining"].as_i64().unwrap_or(0);
    invoice["attempt_count"] = json!(invoice["attempt_count"].as_i64().unwrap_or(0) + 1);
    invoice["attempted"] = json!(true);
    let currency = invoice["currency"].as_str().unwrap_or("usd").to_owned();
    let new = NewIntent {
        amount,
        currency: &currency,
        customer: invoice["customer"].as_str(),
        payment_method: Some(pm.clone()),
        description: Some("Invoice payment"),
        metadata: json!({}),
        payment_method_types: vec![pm["type"].as_str().unwrap_or("card").to_owned()],
        shipping: Value::Null,
    };
    let (_, declined) = payments::create_intent(shared, new, true);
    if declined.is_some() {
        shared.stripe.objects.put(invoice);
        emit(shared, "invoice.payment_failed", invoice, None);
        return declined;
    }
    invoice["status"] = json!("paid");
    invoice["amount_paid"] = json!(amount);
    invoice["amount_remaining"] = json!(0);
    invoice["status_transitions"]["paid_at"] = json!(now());
    shared.stripe.objects.put(invoice);
    emit(shared, "invoice.paid", invoice, None);
    emit(shared, "invoice.payment_succeeded", invoice, None);
    None
}

fn customer_param(shared: &Shared, p: &Value) -> std::result::Result<Value, Response> {
    let id = required(p, "customer")?;
    shared
        .stripe
        .objects
        .get_of("customer", id)
        .ok_or_else(|| missing_param("customer", "customer", id))
}

/// The payment method an invoice of `customer` is charged with: the given one, else the
/// customer's default.
fn payment_method_for(
    shared: &Shared,
    customer: &Value,
    given: Option<&str>,
) -> std::result::Result<Option<Value>, Response> {
    let named = given.or(customer["invoice_settings"]["default_payment_method"].as_str());
    named
        .map(|id| payments::resolve(shared, id, "payment_method"))
        .transpose()
}

/// `POST /v1/subscriptions` (`customer`, `items[N][price]`, `default_payment_method`,
/// `metadata`): `customer.subscription.created`, the first invoice (`invoice.created`), and, with
/// a payment method, its payment. A declined first payment leaves it `incomplete`, as Stripe's
/// default `payment_behavior` does.
pub(super) async fn create_subscription(
    State(shared): S,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    let customer = try_answer!(customer_param(&shared, &p));
    let Some(items) = p["items"].as_array().filter(|i| !i.is_empty()) else {
        return invalid(
            "parameter_missing",
            Some("items"),
            "Missing required param: items.",
        );
    };
    let mut prices = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(id) = item["price"].as_str() else {
            return invalid(
                "parameter_missing",
                Some(&format!("items[{i}][price]")),
                &format!("Missing required param: items[{i}][price]."),
            );
        };
        match shared.stripe.objects.get_of("price", id) {
            Some(price) if price["type"] == "recurring" => prices.push(price),
            Some(_) => {
                return invalid(
                    "parameter_invalid_string",
                    Some(&format!("items[{i}][price]")),
                    &format!(
                        "The price specified ({id}) is a one-time price. Subscriptions take recurring prices."
                    ),
                );
            }
            None => return missing_param("price", &format!("items[{i}][price]"), id),
        }
    }
    let pm = try_answer!(payment_method_for(
        &shared,
        &customer,
        p["default_payment_method"].as_str()
    ));
    let mut sub = fresh(&shared, "customer.subscription.created", "sub");
    let sub_id = sub["id"].as_str().unwrap_or_default().to_owned();
    let invoice_id = format!("in_{}", secret::random_alnum(24));
    let start = now();
    let item_objects: Vec<Value> = prices
        .iter()
        .map(|price| {
            json!({
                "id": format!("si_{}", secret::random_alnum(14)),
                "object": "subscription_item",
                "billing_thresholds": null,
                "created": start,
                "current_period_end": start + MONTH,
                "current_period_start": start,
                "discounts": [],
                "metadata": {},
                "plan": plan_of(&shared, price, &price["recurring"]),
                "price": price,
                "quantity": 1,
                "subscription": sub_id,
                "tax_rates": [],
            })
        })
        .collect();
    sub["customer"] = customer["id"].clone();
    sub["currency"] = prices[0]["currency"].clone();
    sub["items"] = json!({"object": "list", "data": item_objects, "has_more": false, "total_count": prices.len(), "url": format!("/v1/subscription_items?subscription={sub_id}")});
    for key in ["start_date", "billing_cycle_anchor", "created"] {
        sub[key] = json!(start);
    }
    for key in [
        "canceled_at",
        "ended_at",
        "cancel_at",
        "trial_start",
        "trial_end",
        "pending_update",
        "schedule",
        "test_clock",
    ] {
        sub[key] = Value::Null;
    }
    sub["cancel_at_period_end"] = json!(false);
    sub["collection_method"] = json!("charge_automatically");
    sub["default_payment_method"] = p["default_payment_method"]
        .as_str()
        .and(pm.as_ref().map(|pm| pm["id"].clone()))
        .unwrap_or(Value::Null);
    sub["latest_invoice"] = json!(invoice_id);
    sub["status"] = json!("incomplete");
    objects::merge_metadata(&mut sub, &p);
    let lines = prices
        .iter()
        .zip(sub["items"]["data"].as_array().cloned().unwrap_or_default())
        .map(|(price, item)| {
            let parent = json!({"invoice_item_details": null, "subscription_item_details": {"invoice_item": null, "proration": false, "proration_details": {"credited_items": null}, "subscription": sub_id, "subscription_item": item["id"]}, "type": "subscription_item_details"});
            line(&invoice_id, price["unit_amount"].as_i64().unwrap_or(0), &price["currency"], json!(format!("1 × {}", price["product"].as_str().unwrap_or(""))), parent, Some(price))
        })
        .collect();
    let mut invoice = invoice_object(
        &shared,
        &customer,
        &sub["currency"],
        lines,
        "subscription_create",
        invoice_id,
    );
    invoice["parent"] = json!({"quote_details": null, "subscription_details": {"metadata": sub["metadata"], "subscription": sub_id}, "type": "subscription_details"});
    let paid = pm.as_ref().map(|pm| {
        shared.stripe.objects.put(&sub);
        emit(&shared, "customer.subscription.created", &sub, None);
        shared.stripe.objects.put(&invoice);
        emit(&shared, "invoice.created", &invoice, None);
        pay_invoice(&shared, &mut invoice, pm).is_none()
    });
    match paid {
        Some(true) => {
            let previous = json!({"status": "incomplete"});
            sub["status"] = json!("active");
            shared.stripe.objects.put(&sub);
            emit(
                &shared,
                "customer.subscription.updated",
                &sub,
                Some(previous),
            );
        }
        Some(false) => {}
        None => {
            shared.stripe.objects.put(&sub);
            emit(&shared, "customer.subscription.created", &sub, None);
            shared.stripe.objects.put(&invoice);
            emit(&shared, "invoice.created", &invoice, None);
        }
    }
    axum::Json(sub).into_response()
}

pub(super) async fn retrieve_subscription(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    authorized!(shared, headers);
    retrieve_as(&shared, "subscription", &id)
}

/// `POST /v1/subscriptions/{id}`: `metadata`, `description`, `cancel_at_period_end`;
/// `customer.subscription.updated` with `previous_attributes`.
pub(super) async fn update_subscription(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    let Some(before) = shared.stripe.objects.get_of("subscription", &id) else {
        return missing("subscription", &id);
    };
    if before["status"] == "canceled" {
        return invalid(
            "resource_missing",
            None,
            &format!(
                "A canceled subscription can only update its cancellation_details and metadata: {id}"
            ),
        );
    }
    let mut sub = before.clone();
    objects::merge_metadata(&mut sub, &p);
    if let Some(d) = p["description"].as_str() {
        sub["description"] = json!(d);
    }
    match p["cancel_at_period_end"].as_str() {
        Some("true") => sub["cancel_at_period_end"] = json!(true),
        Some("false") => sub["cancel_at_period_end"] = json!(false),
        _ => {}
    }
    let previous = super::customers::previous_attributes(&before, &sub);
    shared.stripe.objects.put(&sub);
    if previous.as_object().is_some_and(|m| !m.is_empty()) {
        emit(
            &shared,
            "customer.subscription.updated",
            &sub,
            Some(previous),
        );
    }
    axum::Json(sub).into_response()
}

/// `DELETE /v1/subscriptions/{id}`: canceled now, `customer.subscription.deleted`.
pub(super) async fn cancel_subscription(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    authorized!(shared, headers);
    let Some(mut sub) = shared.stripe.objects.get_of("subscription", &id) else {
        return missing("subscription", &id);
    };
    if sub["status"] == "canceled" {
        return invalid(
            "resource_missing",
            None,
            &format!("No such subscription: '{id}'"),
        );
    }
    sub["status"] = json!("canceled");
    sub["canceled_at"] = json!(now());
    sub["ended_at"] = json!(now());
    sub["cancellation_details"] =
        json!({"comment": null, "feedback": null, "reason": "cancellation_requested"});
    shared.stripe.objects.put(&sub);
    emit(&shared, "customer.subscription.deleted", &sub, None);
    axum::Json(sub).into_response()
}

pub(super) async fn create_invoice_item(
    State(shared): S,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    let customer = try_answer!(customer_param(&shared, &p));
    let amount = match integer(&p, "amount") {
        Ok(Some(a)) => a,
        Ok(None) => {
            return invalid(
                "parameter_missing",
                Some("amount"),
                "Missing required param: amount.",
            );
        }
        Err(r) => return r,
    };
    let currency = match required(&p, "currency") {
        Ok(c) => c.to_ascii_lowercase(),
        Err(r) => return r,
    };
    let mut item = fresh(&shared, "invoiceitem.created", "ii");
    item["customer"] = customer["id"].clone();
    item["amount"] = json!(amount);
    item["net_amount"] = json!(amount);
    item["currency"] = json!(currency);
    item["description"] = p["description"].clone();
    item["invoice"] = Value::Null;
    item["date"] = json!(now());
    item["period"] = json!({"end": now(), "start": now()});
    item["parent"] = Value::Null;
    item["quantity"] = json!(1);
    item["quantity_decimal"] = json!("1");
    item["pricing"] = json!({"price_details": null, "type": "price_details", "unit_amount_decimal": amount.to_string()});
    objects::merge_metadata(&mut item, &p);
    shared.stripe.objects.put(&item);
    emit(&shared, "invoiceitem.created", &item, None);
    axum::Json(item).into_response()
}

/// `POST /v1/invoices`: a draft with the customer's pending invoice items
/// (`pending_invoice_items_behavior=include`), `invoice.created`.
pub(super) async fn create_invoice(State(shared): S, headers: HeaderMap, body: Bytes) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    let customer = try_answer!(customer_param(&shared, &p));
    let include = p["pending_invoice_items_behavior"].as_str() == Some("include");
    let id = format!("in_{}", secret::random_alnum(24));
    let pending: Vec<Value> = if include {
        shared
            .stripe
            .objects
            .pending_items(customer["id"].as_str().unwrap_or_default())
    } else {
        Vec::new()
    };
    let currency = pending
        .first()
        .map_or(json!("usd"), |i| i["currency"].clone());
    let lines = pending
        .iter()
        .map(|item| {
            let parent = json!({"invoice_item_details": {"invoice_item": item["id"], "proration": false, "proration_details": {"credited_items": null}, "subscription": null}, "subscription_item_details": null, "type": "invoice_item_details"});
            line(&id, item["amount"].as_i64().unwrap_or(0), &item["currency"], item["description"].clone(), parent, None)
        })
        .collect();
    for mut item in pending {
        item["invoice"] = json!(id);
        shared.stripe.objects.put(&item);
    }
    let mut invoice = invoice_object(&shared, &customer, &currency, lines, "manual", id);
    invoice["description"] = p["description"].clone();
    objects::merge_metadata(&mut invoice, &p);
    shared.stripe.objects.put(&invoice);
    emit(&shared, "invoice.created", &invoice, None);
    axum::Json(invoice).into_response()
}

pub(super) async fn retrieve_invoice(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    authorized!(shared, headers);
    retrieve_as(&shared, "invoice", &id)
}

/// `POST /v1/invoices/{id}/pay` (`payment_method`, else the customer's default).
pub(super) async fn pay(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    let Some(mut invoice) = shared.stripe.objects.get_of("invoice", &id) else {
        return missing("invoice", &id);
    };
    if invoice["status"] == "paid" {
        return invalid("invoice_already_paid", None, "Invoice is already paid");
    }
    let customer = shared
        .stripe
        .objects
        .get(invoice["customer"].as_str().unwrap_or_default())
        .unwrap_or(Value::Null);
    let pm = match payment_method_for(&shared, &customer, p["payment_method"].as_str()) {
        Ok(Some(pm)) => pm,
        Ok(None) => {
            return invalid(
                "invoice_no_payment_method_types",
                None,
                "The customer has no payment method to pay this invoice with; pass payment_method.",
            );
        }
        Err(r) => return r,
    };
    match pay_invoice(&shared, &mut invoice, &pm) {
        Some(charge) => card_declined(Some(&charge), None),
        None => axum::Json(invoice).into_response(),
    }
}
