//! Subscriptions (docs.stripe.com/billing/subscriptions/webhooks): a new subscription makes its
//! first invoice (`customer.subscription.created`, `invoice.created`), which is finalized and
//! paid at once with the subscription's or the customer's default payment method (or default
//! source); paid, the subscription turns `active` (`customer.subscription.updated`); declined, it
//! stays `incomplete` (`payment_behavior=allow_incomplete`, the API's default). A trial needs
//! no payment method: the first invoice is for $0, finalized and paid at once, and with less
//! than three days of trial left `customer.subscription.trial_will_end` comes at once ("Occurs
//! three days before a subscription's trial period is scheduled to end, or when a trial is
//! ended immediately (using trial_end=now)"). `trial_end=now` without a payment method and with
//! `trial_settings.end_behavior.missing_payment_method=pause` pauses it
//! (`customer.subscription.paused`). Cancel: `customer.subscription.deleted`.
//!
//! Test clocks, schedules, proration and item changes are not modelled yet: the hook for time is
//! `test_clocks::MOVERS`.

use serde_json::{Value, json};

use super::invoices;
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx, apply};

const DAY: i64 = 86_400;

pub struct Subscriptions;

impl Behaviour for Subscriptions {
    fn object(&self) -> &'static str {
        "subscription"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &[
            "items",
            "customer",
            "trial_period_days",
            "trial_end",
            "payment_behavior",
            "default_payment_method",
            "proration_behavior",
            "expand",
            "off_session",
            "trial_from_plan",
            "add_invoice_items",
            "billing_cycle_anchor",
        ]
    }
    fn actions(&self) -> &'static [&'static str] {
        &["cancel"]
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        match ctx.op {
            "create" => Some(create(ctx)),
            "cancel" => Some(cancel(ctx)),
            _ => None,
        }
    }
    fn update(&self, ctx: &Ctx, before: &Value, sub: &mut Value) -> ApiResult<()> {
        if before["status"] == "canceled" {
            return Err(ApiError::state(
                "resource_missing",
                &format!(
                    "A canceled subscription can only update its cancellation_details and metadata: {}",
                    before["id"].as_str().unwrap_or("")
                ),
            ));
        }
        if let Some(pm) = ctx.str_param("default_payment_method") {
            sub["default_payment_method"] =
                ctx.find("payment_method", pm, "default_payment_method")?["id"].clone();
        }
        Ok(())
    }
    fn updated(&self, ctx: &Ctx, _before: &Value, sub: &mut Value) -> ApiResult<()> {
        match ctx.param("trial_end") {
            Some(Value::String(now)) if now == "now" => end_trial(ctx, sub),
            Some(Value::Number(_)) => Ok(()),
            _ => Ok(()),
        }
    }
}

fn create(ctx: &Ctx) -> ApiResult<Value> {
    let customer_id = ctx
        .str_param("customer")
        .ok_or_else(|| ApiError::missing_param("customer"))?;
    let customer = ctx.find("customer", customer_id, "customer")?;
    let items = ctx
        .param("items")
        .and_then(Value::as_array)
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ApiError::missing_param("items"))?;
    let mut prices = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let param = format!("items[{i}][price]");
        let id = item["price"]
            .as_str()
            .ok_or_else(|| ApiError::missing_param(&param))?;
        let price = ctx.find("price", id, &param)?;
        if price["type"] != "recurring" {
            return Err(ApiError::invalid(
                "parameter_invalid",
                Some(&param),
                &format!(
                    "The price specified ({id}) is a one-time price. Subscriptions take recurring prices."
                ),
            ));
        }
        prices.push((price, item["quantity"].as_i64().unwrap_or(1)));
    }
    let default_pm = match ctx.str_param("default_payment_method") {
        Some(id) => Some(super::cards::resolve(ctx, id, "default_payment_method")?),
        None => None,
    };
    let mut sub = ctx.fresh("subscription");
    apply::apply(
        &mut sub,
        &ctx.params,
        Behaviour::consumes(&Subscriptions),
        &ctx.resource.shapes,
    )?;
    let sub_id = sub["id"].as_str().unwrap_or_default().to_owned();
    let now = ctx.now();
    let trial_end = match (ctx.int_param("trial_period_days"), ctx.param("trial_end")) {
        (Some(days), _) => Some(now + days * DAY),
        (None, Some(Value::Number(t))) => t.as_i64(),
        _ => None,
    };
    let period_end = trial_end.unwrap_or(now + 30 * DAY);
    let item_objects: Vec<Value> = prices
        .iter()
        .map(|(price, quantity)| {
            let mut si = ctx.fresh("subscription_item");
            si["created"] = json!(now);
            si["current_period_start"] = json!(now);
            si["current_period_end"] = json!(period_end);
            si["current_trial"] = Value::Null;
            si["price"] = price.clone();
            si["plan"] = ctx
                .store()
                .get_of("plan", price["id"].as_str().unwrap_or_default())
                .unwrap_or(Value::Null);
            si["quantity"] = json!(quantity);
            si["subscription"] = json!(sub_id);
            si["tax_rates"] = json!([]);
            si
        })
        .collect();
    sub["customer"] = customer["id"].clone();
    sub["currency"] = prices[0].0["currency"].clone();
    sub["items"]["data"] = json!(item_objects);
    for key in ["start_date", "billing_cycle_anchor", "created"] {
        sub[key] = json!(now);
    }
    sub["cancel_at_period_end"] = json!(false);
    sub["default_payment_method"] = default_pm
        .as_ref()
        .map_or(Value::Null, |pm| pm["id"].clone());
    sub["trial_start"] = json!(trial_end.map(|_| now));
    sub["trial_end"] = json!(trial_end);
    sub["status"] = json!(if trial_end.is_some() {
        "trialing"
    } else {
        "incomplete"
    });

    let invoice_id = ctx.fresh("invoice")["id"].clone();
    sub["latest_invoice"] = invoice_id.clone();
    let mut invoice = first_invoice(
        ctx,
        &sub,
        &customer,
        &prices,
        invoice_id.as_str().unwrap_or_default(),
        trial_end.is_some(),
    );
    ctx.put(&sub);
    ctx.emit("customer.subscription.created", &sub, None);
    ctx.put(&invoice);
    ctx.emit("invoice.created", &invoice, None);
    if trial_end.is_some() {
        invoices::finalize(ctx, &mut invoice)?;
        if trial_end.is_some_and(|end| end - now <= 3 * DAY) {
            ctx.emit("customer.subscription.trial_will_end", &sub, None);
        }
        return Ok(sub);
    }
    let pm = default_pm
        .map(|pm| pm["id"].as_str().unwrap_or_default().to_owned())
        .or_else(|| invoices::payment_method_of(&invoice, &customer));
    let Some(pm) = pm else {
        return Ok(sub);
    };
    let pm = match ctx.store().get_of("card", &pm) {
        Some(card) => card,
        None => ctx.get("payment_method", &pm)?,
    };
    // A declined first payment leaves the subscription incomplete; the call still succeeds.
    if invoices::pay(ctx, &mut invoice, &pm).is_ok() && invoice["status"] == "paid" {
        let before = sub.clone();
        sub["status"] = json!("active");
        ctx.save_update(&before, &sub);
    }
    Ok(sub)
}

/// The subscription's first invoice: a line per item (for $0 during a trial).
fn first_invoice(
    ctx: &Ctx,
    sub: &Value,
    customer: &Value,
    prices: &[(Value, i64)],
    id: &str,
    trial: bool,
) -> Value {
    let sub_id = sub["id"].as_str().unwrap_or_default();
    let lines = prices
        .iter()
        .zip(sub["items"]["data"].as_array().into_iter().flatten())
        .map(|((price, quantity), item)| {
            let amount = if trial { 0 } else { price["unit_amount"].as_i64().unwrap_or(0) * quantity };
            let parent = json!({"invoice_item_details": null, "subscription_item_details": {"invoice_item": null, "proration": false,
                "proration_details": {"credited_items": null}, "subscription": sub_id, "subscription_item": item["id"]},
                "type": "subscription_item_details"});
            let what = if trial { "Trial period for" } else { "1 ×" };
            let product = ctx.store().get_of("product", price["product"].as_str().unwrap_or_default());
            let name = product.as_ref().and_then(|p| p["name"].as_str()).unwrap_or("product");
            invoices::line(ctx, id, amount, &price["currency"], json!(format!("{what} {name}")), parent, Some(price))
        })
        .collect();
    let mut invoice = ctx.fresh("invoice");
    invoice["id"] = json!(id);
    invoice["lines"]["url"] = json!(format!("/v1/invoices/{id}/lines"));
    invoice["currency"] = sub["currency"].clone();
    invoices::draft(ctx, &mut invoice, customer, lines, "subscription_create");
    invoice["parent"] = json!({"quote_details": null, "subscription_details": {"metadata": sub["metadata"], "subscription": sub_id}, "type": "subscription_details"});
    invoice
}

/// `trial_end=now`: the trial ends (`customer.subscription.trial_will_end`); without a
/// payment method and with the pause end behaviour, the subscription pauses.
fn end_trial(ctx: &Ctx, sub: &mut Value) -> ApiResult<()> {
    let before = sub.clone();
    sub["trial_end"] = json!(ctx.now());
    ctx.emit("customer.subscription.trial_will_end", sub, None);
    let customer = ctx.get("customer", sub["customer"].as_str().unwrap_or_default())?;
    let has_pm = !sub["default_payment_method"].is_null()
        || invoices::payment_method_of(&Value::Null, &customer).is_some();
    let pause = sub["trial_settings"]["end_behavior"]["missing_payment_method"] == "pause";
    if !has_pm && pause {
        sub["status"] = json!("paused");
        sub["pause_collection"] = Value::Null;
        ctx.put(sub);
        let previous = apply::previous_attributes(&before, sub);
        ctx.emit("customer.subscription.paused", sub, Some(previous));
        return Ok(());
    }
    sub["status"] = json!("active");
    ctx.save_update(&before, sub);
    Ok(())
}

/// `DELETE /v1/subscriptions/{id}`: canceled now, `customer.subscription.deleted`.
fn cancel(ctx: &Ctx) -> ApiResult<Value> {
    let mut sub = ctx.target()?;
    if sub["status"] == "canceled" {
        return Err(ApiError::not_found("subscription", ctx.id()));
    }
    sub["status"] = json!("canceled");
    sub["canceled_at"] = json!(ctx.now());
    sub["ended_at"] = json!(ctx.now());
    sub["cancellation_details"] = ctx.shaped(
        "subscription",
        "cancellation_details",
        &json!({"reason": "cancellation_requested"}),
    );
    ctx.put(&sub);
    ctx.emit("customer.subscription.deleted", &sub, None);
    Ok(sub)
}
