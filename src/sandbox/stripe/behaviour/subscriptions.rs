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
//! On a test clock (test_clocks.rs) a subscription moves with time (`MOVER`): three days before
//! its trial ends, `customer.subscription.trial_will_end`; at the trial's end it turns `active`
//! (`customer.subscription.updated`) and makes the first paid period's invoice
//! (docs.stripe.com/billing/subscriptions/trials: "When the trial ends, a new billing cycle
//! starts"; without a payment method, `trial_settings.end_behavior.missing_payment_method`
//! pauses or cancels it); at each period's end it renews: the items' `current_period_start`
//! and `current_period_end` move one interval on (`customer.subscription.updated`), and the new
//! period's invoice is made (`invoice.created`; `billing_reason` `subscription_cycle`), which
//! invoices/auto_advance.rs finalizes and charges an hour later; at `cancel_at` (or the period's end with
//! `cancel_at_period_end`) it is canceled (`customer.subscription.deleted`); left `incomplete`
//! for 23 hours, it expires (`incomplete_expired`, its open invoice voided); its invoices take
//! the subscription's pending invoice items (prorations.rs: changing its items mid-period).
//! Dunning (retries) is not modelled.

use serde_json::{Value, json};

use super::invoices;
use super::prorations;
use super::schedules::after;
use super::test_clocks::{Due, Mover, earliest, notice_sent, send_notice};
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx, apply};

const DAY: i64 = 86_400;

/// "Occurs three days before a subscription's trial period is scheduled to end"
/// (https://docs.stripe.com/api/events/types, customer.subscription.trial_will_end).
const TRIAL_NOTICE: i64 = 3 * DAY;

/// How long an incomplete subscription's first invoice may go unpaid ("If the first invoice is
/// not paid within 23 hours, the subscription transitions to incomplete_expired", stripe-node's
/// Subscription.status; docs.stripe.com/changelog/2019-03-14/subscriptions-successfully-created-first-payment-fails).
const INCOMPLETE_WINDOW: i64 = 23 * 3_600;

/// The private note that `customer.subscription.trial_will_end` was sent for the trial.
const TRIAL_NOTICE_SENT: &str = "trial_will_end_sent";

const TRIAL_WILL_END: &str = "customer.subscription.trial_will_end";

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
            "proration_date",
            "expand",
            "off_session",
            "trial_from_plan",
            "add_invoice_items",
            "billing_cycle_anchor",
        ]
    }
    fn list_filters(&self) -> &'static [&'static str] {
        &["status", "price"]
    }
    /// A list's `status` and `price` (stripe-node's SubscriptionListParams): "If no value is
    /// supplied, all subscriptions that have not been canceled are returned"; `all` every
    /// status; `ended` the canceled and the incomplete_expired; a price, the subscriptions with
    /// an item of it.
    fn keeps(&self, ctx: &Ctx, sub: &Value) -> bool {
        let status = match ctx.str_param("status") {
            None => sub["status"] != "canceled",
            Some("all") => true,
            Some("ended") => ended(sub),
            Some(wanted) => sub["status"] == wanted,
        };
        let price = ctx.str_param("price").is_none_or(|p| {
            sub["items"]["data"]
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i["price"]["id"] == p))
        });
        status && price
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
        if ended(before) {
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
        let entries = ctx.param("items").and_then(Value::as_array).cloned();
        let billing = prorations::Billing::of(ctx, None);
        if entries.is_some() || billing.reset_anchor {
            let changes = prorations::apply_items(ctx, sub, &entries.unwrap_or_default(), "items")?;
            prorations::bill_change(ctx, sub, &changes, &billing)?;
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
        let price = recurring_price(ctx, item, &format!("items[{i}][price]"))?;
        prices.push((price, item["quantity"].as_i64().unwrap_or(1)));
    }
    let one_time = super::first_invoice_items::requested(ctx)?;
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
    let period_end = trial_end.unwrap_or_else(|| next_period_end(&prices[0].0, now));
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
    let mut invoice = period_invoice(
        ctx,
        &sub,
        &customer,
        invoice_id.as_str().unwrap_or_default(),
        (trial_end.is_some(), true),
        "subscription_create",
        &[],
    );
    ctx.put(&sub);
    ctx.emit("customer.subscription.created", &sub, None);
    super::first_invoice_items::add(ctx, &sub, &mut invoice, &one_time);
    ctx.put(&invoice);
    ctx.emit("invoice.created", &invoice, None);
    // The first invoice is finalized at once, paid or not: an unpaid one leaves the subscription
    // `incomplete` with its invoice open to be paid (docs.stripe.com/changelog/2019-03-14/
    // subscriptions-successfully-created-first-payment-fails).
    invoices::finalize(ctx, &mut invoice)?;
    if trial_end.is_some() {
        if trial_end.is_some_and(|end| end - now <= TRIAL_NOTICE) {
            send_notice(ctx, &sub, TRIAL_NOTICE_SENT, TRIAL_WILL_END);
        }
        // One-time items make the trial's first invoice due at once.
        if invoice["status"] == "paid" {
            return Ok(sub);
        }
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
    if invoices::pay(ctx, &mut invoice, &pm).is_ok()
        && invoice["status"] == "paid"
        && sub["status"] == "incomplete"
    {
        let before = sub.clone();
        sub["status"] = json!("active");
        ctx.save_update(&before, &sub);
    }
    Ok(sub)
}

/// The recurring price an item names (`param`: its price parameter), or Stripe's 400.
pub fn recurring_price(ctx: &Ctx, item: &Value, param: &str) -> ApiResult<Value> {
    let id = item["price"]
        .as_str()
        .ok_or_else(|| ApiError::missing_param(param))?;
    let price = ctx.find("price", id, param)?;
    if price["type"] != "recurring" {
        return Err(ApiError::invalid(
            "parameter_invalid",
            Some(param),
            &format!(
                "The price specified ({id}) is a one-time price. Subscriptions take recurring prices."
            ),
        ));
    }
    Ok(price)
}

/// An invoice of the subscription (`reason`: its `billing_reason`), not stored: first its
/// pending invoice items (prorations, prorations.rs) and the unstored `extra` ones (a
/// preview's), then with `period` a line per item over the item's current period (for $0
/// during a trial). invoices::claim_items takes the pending items once it is stored.
pub fn period_invoice(
    ctx: &Ctx,
    sub: &Value,
    customer: &Value,
    id: &str,
    (trial, period): (bool, bool),
    reason: &str,
    extra: &[Value],
) -> Value {
    let sub_id = sub["id"].as_str().unwrap_or_default();
    let pending = ctx.store().all("invoiceitem", &|ii| {
        ii["invoice"].is_null()
            && ii["customer"] == sub["customer"]
            && ii["parent"]["subscription_details"]["subscription"] == sub_id
    });
    let items_lines = pending
        .iter()
        .chain(extra)
        .map(|ii| invoices::item_line(ctx, id, ii));
    let period_items = if period {
        sub["items"]["data"].as_array().cloned().unwrap_or_default()
    } else {
        Vec::new()
    };
    let period_lines = period_items
        .iter()
        .map(|item| {
            let price = &item["price"];
            let quantity = item["quantity"].as_i64().unwrap_or(1);
            let amount = if trial { 0 } else { price["unit_amount"].as_i64().unwrap_or(0) * quantity };
            let parent = json!({"invoice_item_details": null, "subscription_item_details": {"invoice_item": null, "proration": false,
                "proration_details": {"credited_items": null}, "subscription": sub_id, "subscription_item": item["id"]},
                "type": "subscription_item_details"});
            let what = if trial { "Trial period for".to_owned() } else { format!("{quantity} ×") };
            let product = ctx.store().get_of("product", price["product"].as_str().unwrap_or_default());
            let name = product.as_ref().and_then(|p| p["name"].as_str()).unwrap_or("product");
            let mut line = invoices::line(ctx, id, amount, &price["currency"], json!(format!("{what} {name}")), parent, Some(price));
            line["period"] = json!({"end": item["current_period_end"], "start": item["current_period_start"]});
            line
        });
    let lines = items_lines.chain(period_lines).collect();
    let mut invoice = ctx.fresh("invoice");
    invoice["id"] = json!(id);
    invoice["lines"]["url"] = json!(format!("/v1/invoices/{id}/lines"));
    invoice["currency"] = sub["currency"].clone();
    invoices::draft(ctx, &mut invoice, customer, lines, reason);
    invoice["parent"] = json!({"quote_details": null, "subscription_details": {"metadata": sub["metadata"], "subscription": sub_id}, "type": "subscription_details"});
    invoice
}

/// `trial_end=now`: the trial ends (`customer.subscription.trial_will_end`); without a
/// payment method and with the pause end behaviour, the subscription pauses.
fn end_trial(ctx: &Ctx, sub: &mut Value) -> ApiResult<()> {
    let before = sub.clone();
    sub["trial_end"] = json!(ctx.now());
    send_notice(ctx, sub, TRIAL_NOTICE_SENT, TRIAL_WILL_END);
    if without_payment_method(ctx, sub)? == Some("pause") {
        pause(ctx, &before, sub);
        return Ok(());
    }
    sub["status"] = json!("active");
    ctx.save_update(&before, sub);
    Ok(())
}

/// What a trial's end does when neither the subscription nor its customer has a payment
/// method: `trial_settings.end_behavior.missing_payment_method` (`pause`, `cancel`, or
/// `create_invoice`, Stripe's default); `None` with a payment method.
fn without_payment_method(ctx: &Ctx, sub: &Value) -> ApiResult<Option<&'static str>> {
    let customer = ctx.get("customer", sub["customer"].as_str().unwrap_or_default())?;
    let has_pm = !sub["default_payment_method"].is_null()
        || invoices::payment_method_of(&Value::Null, &customer).is_some();
    if has_pm {
        return Ok(None);
    }
    Ok(Some(
        match sub["trial_settings"]["end_behavior"]["missing_payment_method"].as_str() {
            Some("pause") => "pause",
            Some("cancel") => "cancel",
            _ => "create_invoice",
        },
    ))
}

/// The subscription pauses: `customer.subscription.paused`.
fn pause(ctx: &Ctx, before: &Value, sub: &mut Value) {
    sub["status"] = json!("paused");
    sub["pause_collection"] = Value::Null;
    ctx.put(sub);
    let previous = apply::previous_attributes(before, sub);
    ctx.emit("customer.subscription.paused", sub, Some(previous));
}

/// How a subscription moves on a test clock (test_clocks.rs).
pub const MOVER: Mover = Mover {
    object: "subscription",
    due,
    run: step,
};

fn due(ctx: &Ctx, sub: &Value) -> Option<Due> {
    next_due(sub, notice_sent(ctx, sub, TRIAL_NOTICE_SENT))
}

/// What `sub` next has due, from its state alone (`notice_sent`: trial_will_end was sent):
/// incomplete, its expiry 23 hours after it was made; during a trial the notice three days
/// before its end, then its end; once active, the
/// period's end (a renewal); and its cancellation (`cancel_at`, or the period's end with
/// `cancel_at_period_end`), before a renewal or a trial's end at the same moment.
pub fn next_due(sub: &Value, notice_sent: bool) -> Option<Due> {
    let period_end = sub["items"]["data"][0]["current_period_end"].as_i64();
    let mut steps = Vec::new();
    match sub["status"].as_str()? {
        "trialing" => {
            let end = sub["trial_end"].as_i64()?;
            if !notice_sent {
                steps.push(Due {
                    at: end - TRIAL_NOTICE,
                    rank: 0,
                    what: "trial_will_end",
                });
            }
            steps.push(Due {
                at: end,
                rank: 2,
                what: "trial_end",
            });
        }
        "incomplete" => {
            let created = sub["created"].as_i64()?;
            steps.push(Due {
                at: created + INCOMPLETE_WINDOW,
                rank: 0,
                what: "expire",
            });
        }
        "active" | "past_due" => {
            steps.extend(period_end.map(|at| Due {
                at,
                rank: 3,
                what: "renew",
            }));
        }
        _ => return None,
    }
    let cancel_at = match sub["cancel_at"].as_i64() {
        Some(at) => Some(at),
        None if sub["cancel_at_period_end"] == true => period_end,
        None => None,
    };
    steps.extend(cancel_at.map(|at| Due {
        at,
        rank: 1,
        what: "cancel",
    }));
    earliest(steps)
}

fn step(ctx: &Ctx, sub: &mut Value, what: &'static str) -> ApiResult<()> {
    match what {
        "trial_will_end" => {
            send_notice(ctx, sub, TRIAL_NOTICE_SENT, TRIAL_WILL_END);
            Ok(())
        }
        "trial_end" => match without_payment_method(ctx, sub)? {
            Some("pause") => {
                let before = sub.clone();
                pause(ctx, &before, sub);
                Ok(())
            }
            Some("cancel") => {
                cancel_now(ctx, sub);
                Ok(())
            }
            _ => next_period(ctx, sub),
        },
        "cancel" => {
            cancel_now(ctx, sub);
            Ok(())
        }
        "expire" => expire(ctx, sub),
        _ => next_period(ctx, sub),
    }
}

/// An incomplete subscription whose first invoice went unpaid for 23 hours: `incomplete_expired`,
/// "a terminal status, the open invoice will be voided and no further invoices will be
/// generated" (stripe-node's Subscription.status); its end comes as
/// `customer.subscription.updated` (canceled_at and ended_at set), then `invoice.voided`.
fn expire(ctx: &Ctx, sub: &mut Value) -> ApiResult<()> {
    let before = sub.clone();
    sub["status"] = json!("incomplete_expired");
    sub["canceled_at"] = json!(ctx.now());
    sub["ended_at"] = json!(ctx.now());
    ctx.save_update(&before, sub);
    let open = sub["latest_invoice"]
        .as_str()
        .and_then(|id| ctx.store().get_of("invoice", id))
        .filter(|i| i["status"] == "open");
    if let Some(mut invoice) = open {
        invoices::void(ctx, &mut invoice)?;
    }
    Ok(())
}

/// The subscription's next period starts now (a trial's end or a renewal): it is `active`,
/// its items' periods move on (`customer.subscription.updated`), and the period's invoice is
/// made (`invoice.created`, a `subscription_cycle` draft that auto-advances, invoices/auto_advance.rs).
fn next_period(ctx: &Ctx, sub: &mut Value) -> ApiResult<()> {
    let before = sub.clone();
    renew(ctx, &before, sub)
}

/// `sub`, changed from `before` (a schedule's next phase starting at the period's end), starts
/// its next period now: one `customer.subscription.updated` for both, then the invoice.
pub fn renew(ctx: &Ctx, before: &Value, sub: &mut Value) -> ApiResult<()> {
    sub["status"] = json!("active");
    start_periods(sub, ctx.now());
    let customer = ctx.get("customer", sub["customer"].as_str().unwrap_or_default())?;
    let id = ctx.fresh("invoice")["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let invoice = period_invoice(
        ctx,
        sub,
        &customer,
        &id,
        (false, true),
        "subscription_cycle",
        &[],
    );
    sub["latest_invoice"] = json!(id);
    ctx.save_update(before, sub);
    ctx.put(&invoice);
    invoices::claim_items(ctx, &invoice);
    ctx.emit("invoice.created", &invoice, None);
    Ok(())
}

/// Each of `sub`'s items starts a period at `start`.
pub fn start_periods(sub: &mut Value, start: i64) {
    for item in sub["items"]["data"].as_array_mut().into_iter().flatten() {
        item["current_period_start"] = json!(start);
        item["current_period_end"] = json!(next_period_end(&item["price"], start));
    }
}

/// The end of a period of `price` that starts at `start`: one `recurring.interval_count` of
/// its `recurring.interval`, by the calendar (schedules::after).
pub fn next_period_end(price: &Value, start: i64) -> i64 {
    let recurring = &price["recurring"];
    after(
        start,
        recurring["interval"].as_str().unwrap_or("month"),
        recurring["interval_count"].as_i64().unwrap_or(1),
    )
}

/// The subscription's state after an invoice of it was charged (invoices/): paid, a
/// `past_due` subscription is `active` again; declined, an active one is `past_due`
/// (docs.stripe.com/billing/subscriptions/overview#subscription-statuses).
pub fn invoice_charged(ctx: &Ctx, invoice: &Value, paid: bool) -> ApiResult<()> {
    let Some(id) = invoice["parent"]["subscription_details"]["subscription"].as_str() else {
        return Ok(());
    };
    let mut sub = ctx.get("subscription", id)?;
    let before = sub.clone();
    match (sub["status"].as_str(), paid) {
        (Some("past_due" | "incomplete"), true) => sub["status"] = json!("active"),
        (Some("active"), false) => sub["status"] = json!("past_due"),
        _ => return Ok(()),
    }
    ctx.save_update(&before, &sub);
    Ok(())
}

/// Whether `sub` has ended (`canceled`, `incomplete_expired`: terminal statuses).
pub fn ended(sub: &Value) -> bool {
    matches!(
        sub["status"].as_str(),
        Some("canceled" | "incomplete_expired")
    )
}

/// `DELETE /v1/subscriptions/{id}`: canceled now, `customer.subscription.deleted`. With
/// `prorate`, first a credit for the items' unused time ("Will generate a proration invoice
/// item that credits remaining unused time until the subscription period end"); with
/// `invoice_now`, a final invoice of the pending items ("Will generate a final invoice that
/// invoices for … new/pending proration invoice items", API reference, Cancel a subscription).
fn cancel(ctx: &Ctx) -> ApiResult<Value> {
    let mut sub = ctx.target()?;
    if ended(&sub) {
        return Err(ApiError::not_found("subscription", ctx.id()));
    }
    if ctx.bool_param("prorate") {
        let changes: Vec<prorations::Change> = sub["items"]["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| prorations::Change {
                old: Some(item.clone()),
                new: None,
            })
            .collect();
        let billing = prorations::Billing {
            behavior: "create_prorations".into(),
            at: ctx.now(),
            reset_anchor: false,
        };
        prorations::bill_change(ctx, &mut sub, &changes, &billing)?;
    }
    if ctx.bool_param("invoice_now") && sub["status"] != "trialing" {
        prorations::invoice_now(ctx, &mut sub, false)?;
    }
    cancel_now(ctx, &mut sub);
    Ok(sub)
}

/// Cancels `sub` now: `customer.subscription.deleted` (also a schedule's cancel).
pub fn cancel_now(ctx: &Ctx, sub: &mut Value) {
    sub["status"] = json!("canceled");
    sub["canceled_at"] = json!(ctx.now());
    sub["ended_at"] = json!(ctx.now());
    sub["cancellation_details"] = ctx.shaped(
        "subscription",
        "cancellation_details",
        &json!({"reason": "cancellation_requested"}),
    );
    ctx.put(sub);
    ctx.emit("customer.subscription.deleted", sub, None);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{DAY, next_due, next_period_end};

    fn sub(status: &str, trial_end: Option<i64>, period: (i64, i64)) -> serde_json::Value {
        json!({"status": status, "trial_end": trial_end, "cancel_at": null, "cancel_at_period_end": false,
            "items": {"data": [{"current_period_start": period.0, "current_period_end": period.1,
                "price": {"recurring": {"interval": "month", "interval_count": 1}}}]}})
    }

    /// What a trialing subscription crosses, in order, when its steps are done one by one.
    #[test]
    fn a_trial_sends_its_notice_three_days_before_then_ends_then_the_periods_renew() {
        let t0 = 1_767_225_600; // 2026-01-01
        let end = t0 + 14 * DAY;
        let mut s = sub("trialing", Some(end), (t0, end));
        let notice = next_due(&s, false).unwrap();
        assert_eq!((notice.at, notice.what), (end - 3 * DAY, "trial_will_end"));
        let ends = next_due(&s, true).unwrap();
        assert_eq!((ends.at, ends.what), (end, "trial_end"));
        s["status"] = json!("active");
        let feb15 = next_period_end(&s["items"]["data"][0]["price"], end);
        assert_eq!(feb15, 1_771_113_600);
        s["items"]["data"][0]["current_period_end"] = json!(feb15);
        let renew = next_due(&s, true).unwrap();
        assert_eq!((renew.at, renew.what), (feb15, "renew"));
        // Canceling at the period's end comes before the renewal of that moment.
        s["cancel_at_period_end"] = json!(true);
        assert_eq!(next_due(&s, true).unwrap().what, "cancel");
        s["cancel_at_period_end"] = json!(false);
        s["cancel_at"] = json!(feb15 - DAY);
        assert_eq!(next_due(&s, true).unwrap().at, feb15 - DAY);
        s["status"] = json!("canceled");
        assert_eq!(next_due(&s, true), None);
        let mut unpaid = sub("incomplete", None, (t0, feb15));
        unpaid["created"] = json!(t0);
        let expiry = next_due(&unpaid, false).unwrap();
        assert_eq!((expiry.at, expiry.what), (t0 + 23 * 3_600, "expire"));
        unpaid["status"] = json!("incomplete_expired");
        assert_eq!(next_due(&unpaid, false), None);
    }
}
