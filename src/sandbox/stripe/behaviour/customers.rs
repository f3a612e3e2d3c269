//! Customers: a `payment_method` given on create is attached after `customer.created`
//! (`payment_method.attached`), and a test shorthand named again in
//! `invoice_settings[default_payment_method]` is that same payment method; a `source` token
//! becomes the customer's card and default source (`customer.source.created`); the default
//! payment method must be attached to the customer. A deleted customer answers its stub, and
//! deleting one cancels its subscriptions first.
//! `cash_balance[settings][reconciliation_mode]` sets how its cash balance is reconciled
//! (cash_balance.rs).

use serde_json::{Value, json};

use super::{cards, cash_balance, subscriptions};
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

pub struct Customers;

impl Behaviour for Customers {
    fn object(&self) -> &'static str {
        "customer"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &[
            "payment_method",
            "source",
            "tax_id_data",
            "validate",
            "cash_balance",
            "tax",
            "default_source",
            "coupon",
        ]
    }
    fn create(&self, ctx: &Ctx, customer: &mut Value) -> ApiResult<()> {
        customer["invoice_prefix"] = json!(crate::secret::random_alnum(8).to_ascii_uppercase());
        let id = customer["id"].as_str().unwrap_or_default().to_owned();
        if let Some(cash) = ctx.param("cash_balance") {
            cash_balance::set_reconciliation(ctx, &id, &cash["settings"]);
        }
        if let Some(named) = ctx.str_param("payment_method") {
            let pm = cards::resolve(ctx, named, "payment_method")?;
            if customer["invoice_settings"]["default_payment_method"].as_str() == Some(named) {
                customer["invoice_settings"]["default_payment_method"] = pm["id"].clone();
            }
            ctx.store().set_private(&id, "attach", pm["id"].clone());
        }
        default_payment_method(ctx, customer)?;
        if let Some(tok) = ctx.str_param("source") {
            let card = cards::card_source(ctx, &id, tok, "source")?;
            customer["default_source"] = card["id"].clone();
            ctx.store().set_private(&id, "source", card);
        }
        Ok(())
    }
    fn created(&self, ctx: &Ctx, customer: &mut Value) -> ApiResult<()> {
        let id = customer["id"].as_str().unwrap_or_default().to_owned();
        if let Some(pm) = ctx
            .store()
            .private(&id, "attach")
            .and_then(|v| v.as_str().map(str::to_owned))
        {
            let mut pm = ctx.get("payment_method", &pm)?;
            cards::attach(ctx, &mut pm, &id)?;
        }
        if let Some(card) = ctx.store().private(&id, "source") {
            ctx.put(&card);
            ctx.emit("customer.source.created", &card, None);
        }
        discount(ctx, customer)
    }
    fn update(&self, ctx: &Ctx, _before: &Value, customer: &mut Value) -> ApiResult<()> {
        default_payment_method(ctx, customer)?;
        let id = customer["id"].as_str().unwrap_or_default().to_owned();
        if let Some(cash) = ctx.param("cash_balance") {
            cash_balance::set_reconciliation(ctx, &id, &cash["settings"]);
        }
        if let Some(source) = ctx.str_param("default_source") {
            let card = ctx.find("card", source, "default_source")?;
            if card["customer"] != id.as_str() {
                return Err(ApiError::no_such("source", source, "default_source"));
            }
            customer["default_source"] = json!(source);
        }
        if let Some(tok) = ctx.str_param("source") {
            // "Passing source will create a new source object, make it the new customer default
            // source" (API reference, Update a customer).
            let card = cards::card_source(ctx, &id, tok, "source")?;
            ctx.put(&card);
            ctx.emit("customer.source.created", &card, None);
            customer["default_source"] = card["id"].clone();
        }
        Ok(())
    }
    fn updated(&self, ctx: &Ctx, _before: &Value, customer: &mut Value) -> ApiResult<()> {
        discount(ctx, customer)
    }
    /// "Permanently deletes a customer. ... Also immediately cancels any active subscriptions on
    /// the customer" (API reference, Delete a customer): each one's
    /// `customer.subscription.deleted` before `customer.deleted`.
    fn delete(&self, ctx: &Ctx, customer: &Value) -> ApiResult<()> {
        let id = &customer["id"];
        let running = ctx.store().all("subscription", &|sub| {
            &sub["customer"] == id && !subscriptions::ended(sub)
        });
        for mut sub in running {
            subscriptions::cancel_now(ctx, &mut sub);
        }
        Ok(())
    }
    /// `expand[]=cash_balance`: "To view a customer's balance using the API, first retrieve the
    /// customer and then expand the cash_balance field" (docs.stripe.com/payments/customer-balance).
    fn include(&self, ctx: &Ctx, customer: &Value, field: &str) -> Option<Value> {
        (field == "cash_balance" && customer["deleted"] != true)
            .then(|| cash_balance::cash_balance(ctx, customer["id"].as_str().unwrap_or_default()))
    }
}

/// `coupon` (API versions before 2025-03-31.basil, `versions.toml`): the customer's discount,
/// a sub-resource with its own events (`customer.discount.created|updated|deleted`; "Events that
/// occur on subresources ... don't trigger a corresponding event for the parent resource").
fn discount(ctx: &Ctx, customer: &mut Value) -> ApiResult<()> {
    let Some(coupon) = ctx.str_param("coupon") else {
        return Ok(());
    };
    let before = customer["discount"].clone();
    if coupon.is_empty() {
        if !before.is_null() {
            customer["discount"] = Value::Null;
            ctx.put(customer);
            ctx.emit("customer.discount.deleted", &before, None);
        }
        return Ok(());
    }
    let coupon = ctx.find("coupon", coupon, "coupon")?;
    let mut d = if before.is_null() {
        ctx.fresh("discount")
    } else {
        before.clone()
    };
    d["customer"] = customer["id"].clone();
    d["source"] = json!({"coupon": coupon["id"], "type": "coupon"});
    d["start"] = json!(ctx.now());
    d["end"] = match (
        coupon["duration"].as_str(),
        coupon["duration_in_months"].as_i64(),
    ) {
        (Some("repeating"), Some(months)) => json!(ctx.now() + months * 30 * 86_400),
        (Some("once"), _) => json!(ctx.now() + 30 * 86_400),
        _ => Value::Null,
    };
    customer["discount"] = d.clone();
    ctx.put(customer);
    if before.is_null() {
        ctx.emit("customer.discount.created", &d, None);
    } else {
        let previous = crate::sandbox::stripe::engine::apply::previous_attributes(&before, &d);
        ctx.emit("customer.discount.updated", &d, Some(previous));
    }
    Ok(())
}

/// `invoice_settings[default_payment_method]` names a payment method of this customer.
fn default_payment_method(ctx: &Ctx, customer: &Value) -> ApiResult<()> {
    let Some(named) = ctx
        .param("invoice_settings")
        .and_then(|s| s["default_payment_method"].as_str())
    else {
        return Ok(());
    };
    let param = "invoice_settings[default_payment_method]";
    let id = customer["invoice_settings"]["default_payment_method"]
        .as_str()
        .unwrap_or(named);
    let pm = ctx
        .find("payment_method", id, param)
        .map_err(|_| ApiError::no_such("PaymentMethod", named, param))?;
    let attaching = ctx
        .store()
        .private(customer["id"].as_str().unwrap_or_default(), "attach");
    if pm["customer"] != customer["id"] && attaching.as_ref() != Some(&pm["id"]) {
        return Err(ApiError::invalid(
            "resource_missing",
            Some(param),
            &format!(
                "The customer does not have a payment method with the ID {id}. The payment method must be attached to the customer."
            ),
        ));
    }
    Ok(())
}
