//! Invoice items and invoices, and an invoice's lifecycle (docs.stripe.com/invoicing/overview,
//! "Invoice lifecycle"): a draft takes the customer's pending items
//! (`pending_invoice_items_behavior=include`); finalize makes it `open` (`invoice.finalized`;
//! a $0 invoice is paid at once); pay finalizes a draft and charges the payment method
//! (`invoice.paid`, `invoice.payment_succeeded`; a decline `invoice.payment_failed`, a card that
//! needs authentication `invoice.payment_action_required`, each a 402); send finalizes a
//! `send_invoice` draft (`invoice.sent`); void and mark uncollectible act on open invoices
//! (`invoice.voided`, `invoice.marked_uncollectible`); only a draft can be deleted
//! (`invoice.deleted`). Credit notes change the invoice they credit.
//!
//! On a test clock, a `charge_automatically` draft with `auto_advance` is finalized an hour after
//! it was made and charged with the customer's default payment method (without one the attempt
//! fails: `invoice.payment_failed`) (docs.stripe.com/billing/subscriptions/webhooks: Stripe "waits one hour after receiving a
//! successful response to the invoice.created event before attempting payment";
//! docs.stripe.com/invoicing/integration/automatic-advancement-collection): `MOVER`.

use serde_json::{Value, json};

use super::test_clocks::{Due, Mover};
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

/// How long a draft waits before it auto-advances.
const AUTO_ADVANCE_AFTER: i64 = 3_600;

/// How an invoice moves on a test clock (test_clocks.rs).
pub const MOVER: Mover = Mover {
    object: "invoice",
    due: |_, invoice| next_due(invoice),
    run: |ctx, invoice, _| auto_advance(ctx, invoice),
};

/// A draft that auto-advances is due an hour after it was made.
pub fn next_due(invoice: &Value) -> Option<Due> {
    let auto = invoice["status"] == "draft"
        && invoice["auto_advance"] == true
        && invoice["collection_method"] == "charge_automatically";
    auto.then(|| Due {
        at: invoice["created"].as_i64().unwrap_or(0) + AUTO_ADVANCE_AFTER,
        rank: 0,
        what: "finalize",
    })
}

/// Finalizes the draft and charges the customer's default payment method (without one, the
/// attempt fails); a subscription's invoice paid or not moves its subscription
/// (subscriptions.rs: `past_due` or `active` again).
fn auto_advance(ctx: &Ctx, invoice: &mut Value) -> ApiResult<()> {
    finalize(ctx, invoice)?;
    if invoice["status"] != "open" {
        return Ok(());
    }
    let customer = ctx.get("customer", invoice["customer"].as_str().unwrap_or_default())?;
    let Some(named) = payment_method_of(invoice, &customer) else {
        // invoice.payment_failed "Occurs whenever an invoice payment attempt fails, due either to
        // a declined payment or to the lack of a stored payment method"
        // (https://docs.stripe.com/api/events/types).
        invoice["attempt_count"] = json!(invoice["attempt_count"].as_i64().unwrap_or(0) + 1);
        invoice["attempted"] = json!(true);
        ctx.put(invoice);
        ctx.emit("invoice.payment_failed", invoice, None);
        return super::subscriptions::invoice_charged(ctx, invoice, false);
    };
    let pm = stored_payment_method(ctx, &named)?;
    // A decline is the invoice's `invoice.payment_failed`, not the advance's error.
    let paid = pay(ctx, invoice, &pm).is_ok() && invoice["status"] == "paid";
    super::subscriptions::invoice_charged(ctx, invoice, paid)
}

pub struct InvoiceItems;

impl Behaviour for InvoiceItems {
    fn object(&self) -> &'static str {
        "invoiceitem"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &[
            "price",
            "pricing",
            "unit_amount_decimal",
            "quantity",
            "invoice",
            "subscription",
            "period",
            "price_data",
        ]
    }
    fn create(&self, ctx: &Ctx, item: &mut Value) -> ApiResult<()> {
        let quantity = ctx.int_param("quantity").unwrap_or(1);
        let (amount, price) = match (
            ctx.int_param("amount"),
            ctx.param("pricing").and_then(|p| p["price"].as_str()),
        ) {
            (Some(a), _) => (a, None),
            (None, Some(id)) => {
                let price = ctx.find("price", id, "pricing[price]")?;
                (
                    price["unit_amount"].as_i64().unwrap_or(0) * quantity,
                    Some(price),
                )
            }
            (None, None) => return Err(ApiError::missing_param("amount")),
        };
        if let Some(p) = &price {
            item["currency"] = p["currency"].clone();
        } else if ctx.param("currency").is_none() {
            return Err(ApiError::missing_param("currency"));
        }
        item["amount"] = json!(amount);
        item["net_amount"] = json!(amount);
        item["quantity"] = json!(quantity);
        item["quantity_decimal"] = json!(quantity.to_string());
        item["invoice"] = Value::Null;
        item["date"] = json!(ctx.now());
        item["period"] = json!({"end": ctx.now(), "start": ctx.now()});
        // An item of a subscription waits for that subscription's next invoice ("The ID of a
        // subscription to add this invoice item to", stripe-node's InvoiceItemCreateParams).
        item["parent"] = match ctx.str_param("subscription") {
            Some(id) => {
                let sub = ctx.find("subscription", id, "subscription")?;
                json!({"subscription_details": {"subscription": sub["id"]}, "type": "subscription_details"})
            }
            None => Value::Null,
        };
        item["discounts"] = json!([]);
        let unit = if quantity == 0 { 0 } else { amount / quantity };
        item["pricing"] = pricing(price.as_ref(), unit);
        Ok(())
    }
    /// An item on an invoice that is no longer a draft cannot be deleted.
    fn delete(&self, ctx: &Ctx, item: &Value) -> ApiResult<()> {
        if let Some(invoice) = item["invoice"]
            .as_str()
            .and_then(|id| ctx.store().get_of("invoice", id))
            && invoice["status"] != "draft"
        {
            return Err(ApiError::state(
                "invoice_not_editable",
                "You can only delete invoice items that are on a draft invoice.",
            ));
        }
        Ok(())
    }
}

/// How an item or line is priced: by its price when it has one (`price_details` is absent
/// otherwise: stripe-node declares it optional, not nullable).
fn pricing(price: Option<&Value>, unit: i64) -> Value {
    let mut p = json!({"type": "price_details", "unit_amount_decimal": unit.to_string()});
    if let Some(price) = price {
        p["price_details"] = json!({"price": price["id"], "product": price["product"]});
    }
    p
}

/// One line of an invoice.
pub fn line(
    ctx: &Ctx,
    invoice: &str,
    amount: i64,
    currency: &Value,
    description: Value,
    parent: Value,
    price: Option<&Value>,
) -> Value {
    let mut l = ctx.fresh("line_item");
    l["amount"] = json!(amount);
    l["subtotal"] = json!(amount);
    l["currency"] = currency.clone();
    l["description"] = description;
    l["invoice"] = json!(invoice);
    l["parent"] = parent.clone();
    l["subscription"] = parent["subscription_item_details"]["subscription"].clone();
    l["period"] = json!({"end": ctx.now(), "start": ctx.now()});
    l["pricing"] = pricing(price, amount);
    l["quantity"] = json!(1);
    l["quantity_decimal"] = json!("1");
    l["discount_amounts"] = json!([]);
    l["pretax_credit_amounts"] = json!([]);
    l["taxes"] = json!([]);
    l
}

/// The line an invoice item makes on invoice `invoice`. A subscription item's (a proration)
/// is a `subscription_item_details` line naming the item it came from, with its credited
/// lines; any other an `invoice_item_details` line, naming its subscription if it has one
/// (stripe-node's InvoiceLineItem.Parent).
pub fn item_line(ctx: &Ctx, invoice: &str, item: &Value) -> Value {
    let credited = match &item["proration_details"]["credited_items"]["invoice_line_item_details"] {
        Value::Null => Value::Null,
        lines => lines.clone(),
    };
    let sub = &item["parent"]["subscription_details"];
    let parent = if sub["subscription_item"].is_string() {
        json!({"invoice_item_details": null, "subscription_item_details": {"invoice_item": item["id"],
            "proration": item["proration"], "proration_details": {"credited_items": credited},
            "subscription": sub["subscription"], "subscription_item": sub["subscription_item"]},
            "type": "subscription_item_details"})
    } else {
        json!({"invoice_item_details": {"invoice_item": item["id"], "proration": item["proration"] == true,
            "proration_details": {"credited_items": credited}, "subscription": sub["subscription"]},
            "subscription_item_details": null, "type": "invoice_item_details"})
    };
    let amount = item["amount"].as_i64().unwrap_or(0);
    let mut l = line(
        ctx,
        invoice,
        amount,
        &item["currency"],
        item["description"].clone(),
        parent,
        None,
    );
    l["period"] = item["period"].clone();
    if !item["pricing"].is_null() {
        l["pricing"] = item["pricing"].clone();
    }
    l["quantity"] = item["quantity"].clone();
    l["quantity_decimal"] = item["quantity_decimal"].clone();
    l
}

/// The invoice items `invoice`'s lines came from are on it now (no longer pending).
pub fn claim_items(ctx: &Ctx, invoice: &Value) {
    let id = invoice["id"].as_str().unwrap_or_default();
    for line in invoice["lines"]["data"].as_array().into_iter().flatten() {
        let parent = &line["parent"];
        let named = parent["subscription_item_details"]["invoice_item"]
            .as_str()
            .or_else(|| parent["invoice_item_details"]["invoice_item"].as_str());
        if let Some(mut item) = named.and_then(|ii| ctx.store().get_of("invoiceitem", ii)) {
            item["invoice"] = json!(id);
            ctx.put(&item);
        }
    }
}

/// A draft invoice of `customer` with `lines`, not stored.
pub fn draft(ctx: &Ctx, invoice: &mut Value, customer: &Value, lines: Vec<Value>, reason: &str) {
    let total: i64 = lines.iter().filter_map(|l| l["amount"].as_i64()).sum();
    invoice["customer"] = customer["id"].clone();
    for key in [
        "email",
        "name",
        "phone",
        "address",
        "shipping",
        "tax_exempt",
    ] {
        let field = if key == "shipping" {
            "customer_shipping".to_owned()
        } else {
            format!("customer_{key}")
        };
        invoice[field.as_str()] = customer[key].clone();
    }
    invoice["customer_tax_ids"] = json!([]);
    invoice["billing_reason"] = json!(reason);
    invoice["status"] = json!("draft");
    for key in [
        "subtotal",
        "total",
        "subtotal_excluding_tax",
        "total_excluding_tax",
    ] {
        invoice[key] = json!(total);
    }
    // A negative total (a downgrade's credit) is not due: nothing is charged (Stripe credits the
    // customer's invoice balance, docs.stripe.com/billing/customer/balance, which the sandbox
    // does not keep).
    invoice["amount_due"] = json!(total.max(0));
    invoice["amount_remaining"] = json!(total.max(0));
    invoice["amount_paid"] = json!(0);
    invoice["amount_overpaid"] = json!(0);
    invoice["starting_balance"] = customer["balance"].clone();
    invoice["attempt_count"] = json!(0);
    invoice["attempted"] = json!(false);
    invoice["auto_advance"] = json!(true);
    invoice["period_start"] = json!(ctx.now());
    invoice["period_end"] = json!(ctx.now());
    invoice["total_discount_amounts"] = json!([]);
    invoice["total_pretax_credit_amounts"] = json!([]);
    invoice["total_taxes"] = json!([]);
    invoice["account_country"] = json!("US");
    invoice["account_name"] = json!("stripe-ops sandbox");
    invoice["lines"]["data"] = json!(lines);
}

pub struct Invoices;

impl Behaviour for Invoices {
    fn object(&self) -> &'static str {
        "invoice"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &[
            "pending_invoice_items_behavior",
            "subscription",
            "customer",
            "days_until_due",
        ]
    }
    fn actions(&self) -> &'static [&'static str] {
        &[
            "finalizeInvoice",
            "pay",
            "sendInvoice",
            "voidInvoice",
            "markUncollectible",
            "createPreview",
        ]
    }
    fn create(&self, ctx: &Ctx, invoice: &mut Value) -> ApiResult<()> {
        let customer_id = ctx
            .str_param("customer")
            .ok_or_else(|| ApiError::missing_param("customer"))?;
        let customer = ctx.find("customer", customer_id, "customer")?;
        let id = invoice["id"].as_str().unwrap_or_default().to_owned();
        let pending = if ctx.str_param("pending_invoice_items_behavior") == Some("include") {
            ctx.store().all("invoiceitem", &|i| {
                i["customer"] == customer_id && i["invoice"].is_null()
            })
        } else {
            Vec::new()
        };
        let currency = pending
            .first()
            .map_or_else(|| json!("usd"), |i| i["currency"].clone());
        let lines = pending
            .iter()
            .map(|item| item_line(ctx, &id, item))
            .collect();
        for mut item in pending {
            item["invoice"] = json!(id);
            ctx.put(&item);
        }
        invoice["currency"] = currency;
        draft(ctx, invoice, &customer, lines, "manual");
        if invoice["collection_method"] == "send_invoice" {
            // The invoice declares no `days_until_due`: kept as a note until finalize sets `due_date`.
            match (ctx.int_param("days_until_due"), ctx.param("due_date")) {
                (Some(days), _) => ctx.store().set_private(&id, "days_until_due", json!(days)),
                (None, Some(_)) => {}
                (None, None) => {
                    return Err(ApiError::invalid(
                        "parameter_missing",
                        Some("days_until_due"),
                        "Invoices with `collection_method=send_invoice` need `days_until_due` or `due_date`.",
                    ));
                }
            }
        }
        Ok(())
    }
    /// A finalized invoice keeps its amounts and lines; only a draft is edited.
    fn update(&self, _ctx: &Ctx, before: &Value, invoice: &mut Value) -> ApiResult<()> {
        if before["status"] != "draft" {
            for key in [
                "collection_method",
                "days_until_due",
                "due_date",
                "currency",
                "customer",
            ] {
                if invoice[key] != before[key] {
                    return Err(ApiError::state(
                        "invoice_not_editable",
                        &format!(
                            "You can only update {key} on a draft invoice; this invoice is {}.",
                            before["status"].as_str().unwrap_or("")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
    fn delete(&self, _ctx: &Ctx, invoice: &Value) -> ApiResult<()> {
        if invoice["status"] != "draft" {
            return Err(ApiError::state(
                "invoice_not_editable",
                &format!(
                    "You can only delete draft invoices; this invoice is {}. Void it instead.",
                    invoice["status"].as_str().unwrap_or("")
                ),
            ));
        }
        Ok(())
    }
    fn deleted(&self, ctx: &Ctx, invoice: &Value) -> ApiResult<()> {
        // Its items are pending again, for the customer's next invoice.
        let id = invoice["id"].as_str().unwrap_or_default().to_owned();
        for mut item in ctx
            .store()
            .all("invoiceitem", &|i| i["invoice"] == id.as_str())
        {
            item["invoice"] = Value::Null;
            ctx.put(&item);
        }
        Ok(())
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        let run = |act: fn(&Ctx, &mut Value) -> ApiResult<()>| {
            let mut invoice = ctx.target()?;
            act(ctx, &mut invoice)?;
            Ok(invoice)
        };
        match ctx.op {
            "finalizeInvoice" => Some(run(|ctx, inv| {
                if inv["status"] != "draft" {
                    return Err(not_draft(inv, "finalized"));
                }
                finalize(ctx, inv)
            })),
            "pay" => Some(run(pay_call)),
            "createPreview" => Some(super::prorations::preview(ctx)),
            "sendInvoice" => Some(run(send)),
            "voidInvoice" => Some(run(void)),
            "markUncollectible" => Some(run(|ctx, inv| {
                close(
                    ctx,
                    inv,
                    "uncollectible",
                    "marked_uncollectible_at",
                    "invoice.marked_uncollectible",
                )
            })),
            _ => None,
        }
    }
}

fn not_draft(invoice: &Value, what: &str) -> ApiError {
    ApiError::state(
        "invoice_not_editable",
        &format!(
            "This invoice is already {}; only a draft invoice can be {what}.",
            invoice["status"].as_str().unwrap_or("")
        ),
    )
}

/// A draft becomes `open` (`invoice.finalized`); with nothing to pay, it is paid at once.
pub fn finalize(ctx: &Ctx, invoice: &mut Value) -> ApiResult<()> {
    invoice["status"] = json!("open");
    invoice["number"] = json!(format!(
        "{}-{:04}",
        crate::secret::random_alnum(8).to_ascii_uppercase(),
        1
    ));
    invoice["status_transitions"]["finalized_at"] = json!(ctx.now());
    invoice["effective_at"] = json!(ctx.now());
    if invoice["collection_method"] == "send_invoice" && invoice["due_date"].is_null() {
        let id = invoice["id"].as_str().unwrap_or_default();
        let days = ctx
            .store()
            .private(id, "days_until_due")
            .and_then(|d| d.as_i64())
            .unwrap_or(30);
        invoice["due_date"] = json!(ctx.now() + days * 86_400);
    }
    ctx.put(invoice);
    ctx.emit("invoice.finalized", invoice, None);
    if invoice["amount_remaining"].as_i64() == Some(0) {
        mark_paid(ctx, invoice, 0);
    }
    Ok(())
}

/// `invoice.paid` and `invoice.payment_succeeded`.
pub fn mark_paid(ctx: &Ctx, invoice: &mut Value, amount: i64) {
    invoice["status"] = json!("paid");
    invoice["amount_paid"] = json!(amount);
    invoice["amount_remaining"] = json!(0);
    invoice["attempted"] = json!(true);
    invoice["status_transitions"]["paid_at"] = json!(ctx.now());
    ctx.put(invoice);
    ctx.emit("invoice.paid", invoice, None);
    ctx.emit("invoice.payment_succeeded", invoice, None);
}

fn pay_call(ctx: &Ctx, invoice: &mut Value) -> ApiResult<()> {
    match invoice["status"].as_str() {
        Some("paid") => {
            return Err(ApiError::state(
                "invoice_already_paid",
                "Invoice is already paid.",
            ));
        }
        Some("void") => {
            return Err(ApiError::state(
                "invoice_not_editable",
                "This invoice is void; a void invoice cannot be paid.",
            ));
        }
        _ => {}
    }
    let customer = ctx.get("customer", invoice["customer"].as_str().unwrap_or_default())?;
    let named = ctx
        .str_param("payment_method")
        .map(str::to_owned)
        .or_else(|| payment_method_of(invoice, &customer));
    let Some(named) = named else {
        return Err(ApiError::invalid(
            "invoice_no_payment_method_types",
            None,
            "The customer has no default payment method to pay this invoice with: pass payment_method.",
        ));
    };
    let pm = match ctx.store().get_of("card", &named) {
        Some(card) => card,
        None => super::cards::resolve(ctx, &named, "payment_method")?,
    };
    pay(ctx, invoice, &pm)
}

/// What an invoice of `customer` is charged with: its own default, else the customer's
/// default payment method, else the customer's default source.
pub fn payment_method_of(invoice: &Value, customer: &Value) -> Option<String> {
    [
        &invoice["default_payment_method"],
        &customer["invoice_settings"]["default_payment_method"],
        &customer["default_source"],
    ]
    .iter()
    .find_map(|v| v.as_str().map(str::to_owned))
}

/// The payment method `id` names: a customer's card source or a payment method.
pub fn stored_payment_method(ctx: &Ctx, id: &str) -> ApiResult<Value> {
    match ctx.store().get_of("card", id) {
        Some(card) => Ok(card),
        None => ctx.get("payment_method", id),
    }
}

/// Finalizes a draft and charges `pm` for what remains (see the module).
pub fn pay(ctx: &Ctx, invoice: &mut Value, pm: &Value) -> ApiResult<()> {
    if invoice["status"] == "draft" {
        finalize(ctx, invoice)?;
        if invoice["status"] == "paid" {
            return Ok(());
        }
    }
    let amount = invoice["amount_remaining"].as_i64().unwrap_or(0);
    invoice["attempt_count"] = json!(invoice["attempt_count"].as_i64().unwrap_or(0) + 1);
    invoice["attempted"] = json!(true);
    let params = json!({"amount": amount, "currency": invoice["currency"], "customer": invoice["customer"],
        "payment_method": pm["id"], "confirm": true, "description": format!("Invoice {}", invoice["number"].as_str().unwrap_or_default()),
        "payment_method_types": [if pm["object"] == "card" { "card" } else { pm["type"].as_str().unwrap_or("card") }]});
    match ctx.create("payment_intent", params) {
        Ok(pi) if pi["status"] == "requires_action" => {
            ctx.put(invoice);
            ctx.emit("invoice.payment_action_required", invoice, None);
            Err(ApiError::card(
                "invoice_payment_intent_requires_action",
                None,
                "Payment for this invoice requires a user action (3-D Secure). See the payment intent's next_action.",
            )
            .with("payment_intent", pi))
        }
        Ok(pi) if pi["status"] == "succeeded" || pi["status"] == "processing" => {
            if pi["status"] == "succeeded" {
                mark_paid(ctx, invoice, amount);
            }
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(declined) => {
            ctx.put(invoice);
            ctx.emit("invoice.payment_failed", invoice, None);
            Err(declined)
        }
    }
}

/// Sends a `send_invoice` invoice, finalizing a draft first: `invoice.sent`.
fn send(ctx: &Ctx, invoice: &mut Value) -> ApiResult<()> {
    if invoice["collection_method"] != "send_invoice" {
        return Err(ApiError::state(
            "invoice_not_editable",
            "You can only manually send an invoice if its collection method is 'send_invoice'.",
        ));
    }
    if invoice["status"] == "draft" {
        finalize(ctx, invoice)?;
    }
    if invoice["status"] != "open" {
        return Err(ApiError::state(
            "invoice_not_editable",
            "Only an open invoice can be sent.",
        ));
    }
    ctx.emit("invoice.sent", invoice, None);
    Ok(())
}

/// An open invoice (or an uncollectible one, for void) closes as `status`.
/// Voids an open (or uncollectible) invoice: `invoice.voided`.
pub fn void(ctx: &Ctx, invoice: &mut Value) -> ApiResult<()> {
    close(ctx, invoice, "void", "voided_at", "invoice.voided")
}

fn close(ctx: &Ctx, invoice: &mut Value, status: &str, stamp: &str, event: &str) -> ApiResult<()> {
    let allowed = if status == "void" {
        ["open", "uncollectible"].as_slice()
    } else {
        ["open"].as_slice()
    };
    if !allowed.contains(&invoice["status"].as_str().unwrap_or("")) {
        return Err(ApiError::state(
            "invoice_not_editable",
            &format!(
                "This invoice is {}; only {} invoices can be marked {status}.",
                invoice["status"].as_str().unwrap_or(""),
                allowed.join(" or ")
            ),
        ));
    }
    invoice["status"] = json!(status);
    invoice["status_transitions"][stamp] = json!(ctx.now());
    ctx.put(invoice);
    ctx.emit(event, invoice, None);
    Ok(())
}

/// Credit notes (docs.stripe.com/invoicing/dashboard/credit-notes): on an open invoice a credit
/// note lowers what is due (`type: pre_payment`), on a paid one it credits after payment
/// (`post_payment`); either way the invoice changes with it (`invoice.updated`), and voiding
/// the note (`credit_note.voided`) gives the invoice back its amount.
pub struct CreditNotes;

impl Behaviour for CreditNotes {
    fn object(&self) -> &'static str {
        "credit_note"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &[
            "invoice",
            "lines",
            "amount",
            "credit_amount",
            "refund_amount",
            "refunds",
        ]
    }
    fn actions(&self) -> &'static [&'static str] {
        &["voidCreditNote"]
    }
    fn create(&self, ctx: &Ctx, note: &mut Value) -> ApiResult<()> {
        let id = ctx
            .str_param("invoice")
            .ok_or_else(|| ApiError::missing_param("invoice"))?;
        let invoice = ctx.find("invoice", id, "invoice")?;
        let kind = match invoice["status"].as_str() {
            Some("open") => "pre_payment",
            Some("paid") => "post_payment",
            other => {
                return Err(ApiError::state(
                    "invoice_not_editable",
                    &format!(
                        "Credit notes can only be issued on open or paid invoices; this invoice is {}.",
                        other.unwrap_or("")
                    ),
                ));
            }
        };
        let note_id = note["id"].as_str().unwrap_or_default().to_owned();
        let lines: Vec<Value> = ctx
            .param("lines")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|l| {
                let quantity = l["quantity"].as_i64().unwrap_or(1);
                let amount = l["amount"]
                    .as_i64()
                    .unwrap_or_else(|| l["unit_amount"].as_i64().unwrap_or(0) * quantity);
                let mut line = ctx.fresh("credit_note_line_item");
                line["type"] = l["type"].clone();
                line["amount"] = json!(amount);
                line["quantity"] = json!(quantity);
                line["unit_amount"] = l["unit_amount"].clone();
                line["unit_amount_decimal"] = l["unit_amount"]
                    .as_i64()
                    .map_or(Value::Null, |u| json!(u.to_string()));
                line["description"] = l["description"].clone();
                // Only a line that credits an invoice line names one (optional, not nullable).
                match l["invoice_line_item"].as_str() {
                    Some(id) => line["invoice_line_item"] = json!(id),
                    None => {
                        line.as_object_mut()
                            .map(|m| m.shift_remove("invoice_line_item"));
                    }
                }
                line
            })
            .collect();
        let from_lines: i64 = lines.iter().filter_map(|l| l["amount"].as_i64()).sum();
        let amount = ctx.int_param("amount").unwrap_or(from_lines);
        let limit = invoice[if kind == "pre_payment" {
            "amount_remaining"
        } else {
            "amount_paid"
        }]
        .as_i64()
        .unwrap_or(0);
        if amount < 1 || amount > limit {
            return Err(ApiError::invalid(
                "parameter_invalid_integer",
                Some("amount"),
                &format!(
                    "The credit note's amount ({amount}) must be positive and at most what the invoice allows ({limit})."
                ),
            ));
        }
        note["invoice"] = invoice["id"].clone();
        note["customer"] = invoice["customer"].clone();
        note["currency"] = invoice["currency"].clone();
        note["type"] = json!(kind);
        note["status"] = json!("issued");
        for key in [
            "amount",
            "subtotal",
            "total",
            "subtotal_excluding_tax",
            "total_excluding_tax",
        ] {
            note[key] = json!(amount);
        }
        note["pre_payment_amount"] = json!(if kind == "pre_payment" { amount } else { 0 });
        note["post_payment_amount"] = json!(if kind == "post_payment" { amount } else { 0 });
        note["effective_at"] = json!(ctx.now());
        note["number"] = json!(format!(
            "{}-CN-01",
            invoice["number"].as_str().unwrap_or("SBX")
        ));
        note["pdf"] = json!(format!("{}/credit_notes/{note_id}/pdf", ctx.shared.app_url));
        note["total_taxes"] = json!([]);
        note["lines"]["data"] = json!(lines);
        Ok(())
    }
    fn created(&self, ctx: &Ctx, note: &mut Value) -> ApiResult<()> {
        credit_invoice(ctx, note, 1)
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        (ctx.op == "voidCreditNote").then(|| {
            let mut note = ctx.target()?;
            if note["status"] != "issued" {
                return Err(ApiError::state(
                    "credit_note_not_issued",
                    "Only an issued credit note can be voided.",
                ));
            }
            note["status"] = json!("void");
            note["voided_at"] = json!(ctx.now());
            ctx.put(&note);
            ctx.emit("credit_note.voided", &note, None);
            credit_invoice(ctx, &note, -1)?;
            Ok(note)
        })
    }
}

/// The note's amount taken off (`sign` 1) or given back (-1) to its invoice: `invoice.updated`.
fn credit_invoice(ctx: &Ctx, note: &Value, sign: i64) -> ApiResult<()> {
    let before = ctx.get("invoice", note["invoice"].as_str().unwrap_or_default())?;
    let mut invoice = before.clone();
    let amount = sign * note["amount"].as_i64().unwrap_or(0);
    let add = |v: &Value, d: i64| json!(v.as_i64().unwrap_or(0) + d);
    if note["type"] == "pre_payment" {
        invoice["pre_payment_credit_notes_amount"] =
            add(&before["pre_payment_credit_notes_amount"], amount);
        invoice["amount_due"] = add(&before["amount_due"], -amount);
        invoice["amount_remaining"] = add(&before["amount_remaining"], -amount);
    } else {
        invoice["post_payment_credit_notes_amount"] =
            add(&before["post_payment_credit_notes_amount"], amount);
    }
    ctx.save_update(&before, &invoice);
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::next_due;

    #[test]
    fn a_draft_that_auto_advances_is_due_an_hour_after_it_was_made() {
        let draft = json!({"status": "draft", "auto_advance": true, "collection_method": "charge_automatically", "created": 100});
        assert_eq!(next_due(&draft).map(|d| d.at), Some(3_700));
        for (key, value) in [
            ("status", json!("open")),
            ("auto_advance", json!(false)),
            ("collection_method", json!("send_invoice")),
        ] {
            let mut other = draft.clone();
            other[key] = value;
            assert_eq!(next_due(&other), None, "{other}");
        }
    }
}
