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
//! Its parts: `items` (invoice items and the lines they make), `credit_notes`, `auto_advance` (a
//! draft's finalization and payment on a test clock).

use serde_json::{Value, json};

use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

mod auto_advance;
mod credit_notes;
mod items;

pub use auto_advance::MOVER;
pub use credit_notes::CreditNotes;
pub use items::{InvoiceItems, claim_items, item_line, line};

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
