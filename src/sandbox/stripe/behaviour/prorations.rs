//! Prorations: what changing a running subscription's items (price or quantity, an item added
//! or removed) costs for the rest of the current period (docs.stripe.com/billing/subscriptions/
//! prorations, /billing/subscriptions/change-price). Used by `subscriptions.update` and
//! `.cancel` (`prorate`, `invoice_now`), the subscription items API, a schedule's phases and
//! `invoices.createPreview`.
//!
//! - The amount is computed to the second: an item's price × quantity × the share of its period
//!   left after the proration date (`proration_date`, default now; a test clock's time on a
//!   clock), "-5 USD for unused time on the initial price, and 10 USD for the remaining time on
//!   the new price" halfway through a month (docs: How prorations work); rounded to the smallest
//!   currency unit (amounts are integers of it, API reference: invoiceitem.amount).
//! - `proration_behavior` (API reference, Update a subscription): `create_prorations` (the
//!   default) makes pending invoice items (`proration: true`, not discountable: "All invoice
//!   items that are prorations are set to discountable=false") that the next invoice takes;
//!   `always_invoice` makes them and invoices them at once (`billing_reason`
//!   `subscription_update`); `none` makes none.
//! - `billing_cycle_anchor[type]=now` starts a new period now and invoices it at once, with the
//!   credit for the old period's unused time.
//! - No prorations during a trial: the trial's invoice was for $0.
//! - Events: `invoiceitem.created` for each proration, an immediate invoice's events, then
//!   `customer.subscription.updated` (the sandbox's order; Stripe does not guarantee one:
//!   docs.stripe.com/webhooks, "Event ordering").
//!
//! Not modelled: discounts and taxes on prorations, `payment_behavior` beyond its default
//! `allow_incomplete`, the customer's invoice balance (a negative total's credit), metered
//! prices.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use super::invoices;
use super::subscriptions::{recurring_price, start_periods};
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Ctx};

/// The share of `amount` for the time left in `period` after `from`, to the second, rounded
/// half away from zero to the smallest currency unit.
pub fn prorated(amount: i64, period: (i64, i64), from: i64) -> i64 {
    let (start, end) = period;
    let total = i128::from(end - start);
    if total <= 0 {
        return 0;
    }
    let left = i128::from(end - from).clamp(0, total);
    let share = i128::from(amount) * left;
    let rounded = (share.abs() * 2 + total) / (total * 2);
    (share.signum() * rounded) as i64
}

/// One item's change: what it was (`None`: added) and what it is (`None`: removed).
pub struct Change {
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// How a change is billed (the call's `proration_behavior`, `proration_date`,
/// `billing_cycle_anchor`).
pub struct Billing {
    pub behavior: String,
    pub at: i64,
    pub reset_anchor: bool,
}

impl Billing {
    /// From `scope` (a preview's `subscription_details`), else from the call's parameters.
    pub fn of(ctx: &Ctx, scope: Option<&Value>) -> Billing {
        let params = match scope {
            Some(v) => v.clone(),
            None => Value::Object(ctx.params.clone()),
        };
        let anchor = &params["billing_cycle_anchor"];
        Billing {
            behavior: params["proration_behavior"]
                .as_str()
                .unwrap_or("create_prorations")
                .to_owned(),
            at: params["proration_date"]
                .as_i64()
                .unwrap_or_else(|| ctx.now()),
            // stripe-node 23.2 declares `billing_cycle_anchor: {type}`; older API versions sent "now".
            reset_anchor: anchor["type"] == "now" || *anchor == "now",
        }
    }
}

/// Applies the `items` entries (`param`: their parameter's name) to `sub`'s items: an entry
/// with `id` changes that item (`price`, `quantity`, `metadata`) or removes it (`deleted`),
/// one without adds an item over the current period. Returns what changed.
pub fn apply_items(
    ctx: &Ctx,
    sub: &mut Value,
    entries: &[Value],
    param: &str,
) -> ApiResult<Vec<Change>> {
    let mut items: Vec<Value> = sub["items"]["data"].as_array().cloned().unwrap_or_default();
    let period = items.first().map(|i| {
        (
            i["current_period_start"].clone(),
            i["current_period_end"].clone(),
        )
    });
    let mut changes = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = |field: &str| match param {
            "" => field.to_owned(),
            _ => format!("{param}[{i}][{field}]"),
        };
        let Some(id) = entry["id"].as_str() else {
            let price = recurring_price(ctx, entry, &at("price"))?;
            let mut si = ctx.fresh("subscription_item");
            si["current_trial"] = Value::Null;
            if let Some((start, end)) = &period {
                si["current_period_start"] = start.clone();
                si["current_period_end"] = end.clone();
            }
            set_price(ctx, &mut si, price);
            si["quantity"] = json!(entry["quantity"].as_i64().unwrap_or(1));
            si["subscription"] = sub["id"].clone();
            si["tax_rates"] = json!([]);
            if entry["metadata"].is_object() {
                si["metadata"] = entry["metadata"].clone();
            }
            items.push(si.clone());
            changes.push(Change {
                old: None,
                new: Some(si),
            });
            continue;
        };
        let pos = items
            .iter()
            .position(|si| si["id"] == id)
            .ok_or_else(|| ApiError::no_such("subscription_item", id, &at("id")))?;
        let old = items[pos].clone();
        if entry["deleted"] == true {
            items.remove(pos);
            changes.push(Change {
                old: Some(old),
                new: None,
            });
            continue;
        }
        let mut new = old.clone();
        if entry["price"].is_string() {
            set_price(ctx, &mut new, recurring_price(ctx, entry, &at("price"))?);
        }
        if let Some(q) = entry["quantity"].as_i64() {
            new["quantity"] = json!(q);
        }
        if entry["metadata"].is_object() {
            new["metadata"] = entry["metadata"].clone();
        }
        items[pos] = new.clone();
        if old["price"]["id"] != new["price"]["id"] || old["quantity"] != new["quantity"] {
            changes.push(Change {
                old: Some(old),
                new: Some(new),
            });
        }
    }
    if items.is_empty() {
        return Err(ApiError::invalid(
            "parameter_invalid",
            (!param.is_empty()).then_some(param),
            "A subscription must have at least one active plan. To cancel a subscription, please use the cancel API endpoint.",
        ));
    }
    sub["items"]["data"] = json!(items);
    Ok(changes)
}

fn set_price(ctx: &Ctx, item: &mut Value, price: Value) {
    item["plan"] = ctx
        .store()
        .get_of("plan", price["id"].as_str().unwrap_or_default())
        .unwrap_or(Value::Null);
    item["price"] = price;
}

/// Whether a change of items moves the billing cycle: a price of another interval starts a new
/// period now ("Changing to a price with a different billing interval … resets the billing
/// cycle", docs.stripe.com/billing/subscriptions/billing-cycle#changing).
pub fn interval_changed(changes: &[Change]) -> bool {
    changes.iter().any(|c| match (&c.old, &c.new) {
        (Some(o), Some(n)) => {
            let every = |p: &Value| {
                let r = &p["recurring"];
                (r["interval"].clone(), r["interval_count"].clone())
            };
            every(&o["price"]) != every(&n["price"])
        }
        _ => false,
    })
}

/// The proration invoice items of `changes` on `sub` at `billing.at`, not stored: a credit for
/// each old item's unused time, a debit for each new item's remaining time (none for the new
/// items when the period restarts: the new period is invoiced whole).
pub fn proration_items(
    ctx: &Ctx,
    sub: &Value,
    changes: &[Change],
    billing: &Billing,
    restart: bool,
) -> Vec<Value> {
    if billing.behavior == "none" || sub["status"] == "trialing" {
        return Vec::new();
    }
    let mut made = Vec::new();
    for c in changes {
        if let Some(old) = &c.old {
            let credited = credited_items(ctx, sub, old);
            made.extend(proration_item(ctx, sub, old, billing.at, -1, credited));
        }
        if let (Some(new), false) = (&c.new, restart) {
            made.extend(proration_item(ctx, sub, new, billing.at, 1, Value::Null));
        }
    }
    made
}

/// One proration item for `item` (`sign` -1: its unused time, 1: its remaining time), or none
/// when nothing of its period is left.
fn proration_item(
    ctx: &Ctx,
    sub: &Value,
    item: &Value,
    at: i64,
    sign: i64,
    credited: Value,
) -> Option<Value> {
    let price = &item["price"];
    let quantity = item["quantity"].as_i64().unwrap_or(1);
    let period = (
        item["current_period_start"].as_i64().unwrap_or(at),
        item["current_period_end"].as_i64().unwrap_or(at),
    );
    let full = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
    let amount = sign * prorated(full, period, at);
    if amount == 0 {
        return None;
    }
    let product = ctx
        .store()
        .get_of("product", price["product"].as_str().unwrap_or_default());
    let name = product
        .as_ref()
        .and_then(|p| p["name"].as_str())
        .unwrap_or("product");
    let what = if quantity == 1 {
        name.to_owned()
    } else {
        format!("{quantity} × {name}")
    };
    let when = if sign < 0 { "Unused" } else { "Remaining" };
    let mut ii = ctx.fresh("invoiceitem");
    ii["amount"] = json!(amount);
    ii["net_amount"] = json!(amount);
    ii["currency"] = price["currency"].clone();
    ii["customer"] = sub["customer"].clone();
    ii["date"] = json!(ctx.now());
    ii["description"] = json!(format!("{when} time on {what} after {}", day(at)));
    ii["discountable"] = json!(false);
    ii["discounts"] = json!([]);
    ii["invoice"] = Value::Null;
    ii["parent"] = json!({"subscription_details": {"subscription": sub["id"], "subscription_item": item["id"]},
        "type": "subscription_details"});
    ii["period"] = json!({"end": period.1, "start": at.max(period.0)});
    // The prorated amount of one unit: "This `unit_amount_decimal` will be multiplied by the
    // quantity to get the full amount" (stripe-node's InvoiceItemCreateParams).
    ii["pricing"] = json!({"price_details": {"price": price["id"], "product": price["product"]}, "type": "price_details",
        "unit_amount_decimal": unit_decimal(amount, quantity)});
    ii["proration"] = json!(true);
    ii["proration_details"] = json!({"credited_items": credited, "discount_amounts": []});
    ii["quantity"] = json!(quantity);
    ii["quantity_decimal"] = json!(quantity.to_string());
    ii["tax_rates"] = json!([]);
    Some(ii)
}

/// `amount / quantity` as a decimal string of at most 12 decimal places (a Stripe Decimal):
/// "-500", "166.666666666667".
pub fn unit_decimal(amount: i64, quantity: i64) -> String {
    if quantity == 0 {
        return "0".into();
    }
    const SCALE: i128 = 1_000_000_000_000;
    let scaled = i128::from(amount) * SCALE;
    let q = i128::from(quantity);
    let rounded = (scaled.abs() * 2 + q.abs()) / (q.abs() * 2);
    let negative = (scaled < 0) != (q < 0) && rounded != 0;
    let (whole, frac) = (rounded / SCALE, rounded % SCALE);
    let mut text = format!("{}{whole}", if negative { "-" } else { "" });
    if frac != 0 {
        let digits = format!("{frac:012}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    text
}

/// What a credit proration for `item` credits (stripe-node's InvoiceItem.ProrationDetails.
/// CreditedItems): the pending debit proration of the item, else the item's line on the
/// subscription's latest invoice; null when neither is found.
fn credited_items(ctx: &Ctx, sub: &Value, item: &Value) -> Value {
    let pending = ctx.store().all("invoiceitem", &|ii| {
        ii["invoice"].is_null()
            && ii["proration"] == true
            && ii["amount"].as_i64().is_some_and(|a| a > 0)
            && ii["parent"]["subscription_details"]["subscription_item"] == item["id"]
    });
    if let Some(debit) = pending.last() {
        return json!({"invoice_item": debit["id"], "type": "invoice_item"});
    }
    let invoice = sub["latest_invoice"]
        .as_str()
        .and_then(|id| ctx.store().get_of("invoice", id));
    let lines: Vec<Value> = invoice
        .iter()
        .flat_map(|i| i["lines"]["data"].as_array().cloned().unwrap_or_default())
        .filter(|l| l["parent"]["subscription_item_details"]["subscription_item"] == item["id"])
        .filter(|l| l["amount"].as_i64().is_some_and(|a| a > 0))
        .map(|l| l["id"].clone())
        .collect();
    match (invoice, lines.is_empty()) {
        (Some(inv), false) => {
            json!({"invoice_line_item_details": {"invoice": inv["id"], "invoice_line_items": lines},
            "type": "invoice_line_items"})
        }
        _ => Value::Null,
    }
}

/// "15 Jan 2026", as Stripe's proration descriptions date them.
fn day(at: i64) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[day padding:none] [month repr:short] [year]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// What a change of `sub`'s items does, applied to `sub` (not stored: the caller's update
/// stores it and emits `customer.subscription.updated`): the period restarts when asked or
/// when an interval changed; the proration items are stored (`invoiceitem.created` each); with
/// `always_invoice` or a restarted period an invoice is made and charged at once and is the
/// subscription's `latest_invoice`.
pub fn bill_change(
    ctx: &Ctx,
    sub: &mut Value,
    changes: &[Change],
    billing: &Billing,
) -> ApiResult<()> {
    let restart = billing.reset_anchor || interval_changed(changes);
    let prorations = proration_items(ctx, sub, changes, billing, restart);
    if restart {
        let now = ctx.now();
        sub["billing_cycle_anchor"] = json!(now);
        start_periods(sub, now);
    }
    for ii in &prorations {
        ctx.put(ii);
        ctx.emit("invoiceitem.created", ii, None);
    }
    if !(restart || billing.behavior == "always_invoice") || sub["status"] == "trialing" {
        return Ok(());
    }
    invoice_now(ctx, sub, restart)
}

/// Invoices `sub`'s pending items now (with `period`, also its current period's lines), when
/// there are any: `billing_reason` `subscription_update`, the subscription's `latest_invoice`,
/// finalized and charged at once.
pub fn invoice_now(ctx: &Ctx, sub: &mut Value, period: bool) -> ApiResult<()> {
    let customer = ctx.get("customer", sub["customer"].as_str().unwrap_or_default())?;
    let id = ctx.fresh("invoice")["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut invoice = super::subscriptions::period_invoice(
        ctx,
        sub,
        &customer,
        &id,
        (false, period),
        "subscription_update",
        &[],
    );
    if invoice["lines"]["data"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        return Ok(());
    }
    sub["latest_invoice"] = json!(id);
    ctx.put(&invoice);
    invoices::claim_items(ctx, &invoice);
    ctx.emit("invoice.created", &invoice, None);
    invoices::finalize(ctx, &mut invoice)?;
    if invoice["status"] != "open" {
        return Ok(());
    }
    let named = sub["default_payment_method"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| invoices::payment_method_of(&invoice, &customer));
    let Some(named) = named else {
        return Ok(());
    };
    let pm = invoices::stored_payment_method(ctx, &named)?;
    // A decline leaves the invoice open (invoice.payment_failed) and the update still succeeds,
    // the subscription `past_due` (payment_behavior's default, allow_incomplete: "If the
    // payment fails, the subscription transitions to past_due", API reference).
    let paid = invoices::pay(ctx, &mut invoice, &pm).is_ok() && invoice["status"] == "paid";
    if !paid && sub["status"] == "active" {
        sub["status"] = json!("past_due");
    }
    Ok(())
}

/// `ctx` on the test clock `sub` lives on, at the clock's time: a change to a subscription is
/// dated by its clock also when the call names only the subscription or its item.
pub fn on_its_clock<'a>(ctx: &Ctx<'a>, sub: &Value) -> Option<Ctx<'a>> {
    let clock = sub["test_clock"].as_str()?;
    let time = ctx.store().get_of("test_helpers.test_clock", clock)?["frozen_time"].as_i64()?;
    Some(ctx.on_clock(clock, time))
}

/// `POST /v1/invoices/create_preview` (stripe-node `invoices.createPreview`): the invoice a
/// subscription would make with `subscription_details` applied (`items`, `proration_date`,
/// `proration_behavior`, `billing_cycle_anchor`), neither stored nor announced ("This call
/// doesn't modify the subscription", docs: Preview a proration). With `create_prorations` it is
/// the next renewal's invoice (the prorations, then the next period's lines); with
/// `always_invoice` or a restarted period, the invoice the change would make now. Its id starts
/// `upcoming_in` (stripe-node's Invoice.id). Without a subscription, the customer's pending
/// invoice items, or Stripe's 404 `invoice_upcoming_none`.
pub fn preview(ctx: &Ctx) -> ApiResult<Value> {
    let sub = match ctx.str_param("subscription") {
        Some(id) => Some(ctx.find("subscription", id, "subscription")?),
        None => None,
    };
    let customer_id = match (ctx.str_param("customer"), &sub) {
        (Some(c), _) => c.to_owned(),
        (None, Some(s)) => s["customer"].as_str().unwrap_or_default().to_owned(),
        (None, None) => return Err(ApiError::missing_param("customer")),
    };
    let customer = ctx.find("customer", &customer_id, "customer")?;
    let id = format!("upcoming_in_{}", crate::secret::random_alnum(24));
    let Some(sub) = sub else {
        return pending_preview(ctx, &customer, &id);
    };
    let clocked = on_its_clock(ctx, &sub);
    let ctx = clocked.as_ref().unwrap_or(ctx);
    let details = ctx
        .param("subscription_details")
        .cloned()
        .unwrap_or(Value::Null);
    let billing = Billing::of(ctx, Some(&details));
    let entries = details["items"].as_array().cloned().unwrap_or_default();
    let mut changed = sub.clone();
    let changes = apply_items(ctx, &mut changed, &entries, "subscription_details[items]")?;
    let restart = billing.reset_anchor || interval_changed(&changes);
    let prorations = proration_items(ctx, &sub, &changes, &billing, restart);
    let trial = sub["status"] == "trialing";
    let now_invoice = (restart || billing.behavior == "always_invoice") && !trial;
    let current = (
        sub["items"]["data"][0]["current_period_start"].clone(),
        sub["items"]["data"][0]["current_period_end"].clone(),
    );
    let (mut invoice, created) = if now_invoice {
        if restart {
            start_periods(&mut changed, ctx.now());
        }
        let reason = "subscription_update";
        let invoice = super::subscriptions::period_invoice(
            ctx,
            &changed,
            &customer,
            &id,
            (false, restart),
            reason,
            &prorations,
        );
        (invoice, ctx.now())
    } else {
        let start = current.1.as_i64().unwrap_or(ctx.now());
        start_periods(&mut changed, start);
        let reason = "upcoming";
        let invoice = super::subscriptions::period_invoice(
            ctx,
            &changed,
            &customer,
            &id,
            (false, true),
            reason,
            &prorations,
        );
        (invoice, start)
    };
    invoice["created"] = json!(created);
    if !prorations.is_empty() {
        // "Only set for upcoming invoices that preview prorations" (stripe-node's
        // Invoice.Parent.SubscriptionDetails.subscription_proration_date).
        invoice["parent"]["subscription_details"]["subscription_proration_date"] =
            json!(billing.at);
    }
    if !now_invoice {
        invoice["period_start"] = current.0;
        invoice["period_end"] = current.1;
    }
    invoice["auto_advance"] = json!(false);
    Ok(invoice)
}

/// The preview of a customer without a subscription: an invoice of its pending items.
fn pending_preview(ctx: &Ctx, customer: &Value, id: &str) -> ApiResult<Value> {
    let pending = ctx.store().all("invoiceitem", &|ii| {
        ii["invoice"].is_null() && ii["customer"] == customer["id"]
    });
    if pending.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("invoice_upcoming_none"),
            None,
            &format!(
                "No upcoming invoices for customer: {}",
                customer["id"].as_str().unwrap_or_default()
            ),
        ));
    }
    let lines = pending
        .iter()
        .map(|ii| invoices::item_line(ctx, id, ii))
        .collect();
    let mut invoice = ctx.fresh("invoice");
    invoice["id"] = json!(id);
    invoice["currency"] = pending[0]["currency"].clone();
    invoices::draft(ctx, &mut invoice, customer, lines, "upcoming");
    invoice["auto_advance"] = json!(false);
    Ok(invoice)
}

#[cfg(test)]
mod tests {
    use super::{prorated, unit_decimal};

    const JAN1: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    const FEB1: i64 = 1_769_904_000; // 31 days later

    #[test]
    fn halfway_through_a_period_half_of_each_price_is_prorated() {
        let mid = JAN1 + (FEB1 - JAN1) / 2;
        // Stripe's example: 10 USD to 20 USD halfway, -5 + 10 = 5 USD more.
        assert_eq!(-prorated(1000, (JAN1, FEB1), mid), -500);
        assert_eq!(prorated(2000, (JAN1, FEB1), mid), 1000);
    }

    #[test]
    fn the_share_is_counted_to_the_second_and_rounded_to_the_smallest_unit() {
        let period = (JAN1, FEB1); // 2,678,400 s
        // 15 days and one second left: 1000 × 1,296,001 / 2,678,400 = 483.87… → 484.
        assert_eq!(prorated(1000, period, FEB1 - 15 * 86_400 - 1), 484);
        // One second left of 999: 0.000373 → 0; of a million: 0.373 → 0; the whole period left.
        assert_eq!(prorated(999, period, FEB1 - 1), 0);
        assert_eq!(prorated(10_000_000, period, FEB1 - 1), 4);
        assert_eq!(prorated(1000, period, JAN1), 1000);
        // Half a unit rounds away from zero: 1 × 1,339,200 / 2,678,400 = 0.5 → 1, and -0.5 → -1.
        assert_eq!(prorated(1, period, JAN1 + 1_339_200), 1);
        assert_eq!(prorated(-1, period, JAN1 + 1_339_200), -1);
    }

    #[test]
    fn a_proration_s_unit_amount_is_its_amount_per_unit_to_twelve_places() {
        assert_eq!(unit_decimal(-500, 1), "-500");
        assert_eq!(unit_decimal(1000, 2), "500");
        assert_eq!(unit_decimal(500, 3), "166.666666666667");
        assert_eq!(unit_decimal(-561, 3), "-187");
        assert_eq!(unit_decimal(-1, 8), "-0.125");
    }

    #[test]
    fn a_date_outside_the_period_prorates_nothing_or_everything() {
        assert_eq!(prorated(1000, (JAN1, FEB1), FEB1 + 10), 0);
        assert_eq!(prorated(1000, (JAN1, FEB1), JAN1 - 10), 1000);
        assert_eq!(prorated(1000, (JAN1, JAN1), JAN1), 0);
    }
}
