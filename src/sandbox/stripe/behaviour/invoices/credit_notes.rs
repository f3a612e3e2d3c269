//! Credit notes, and the invoice each one changes.

use serde_json::{Value, json};

use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

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
