//! An invoice's automatic advance on a test clock (`MOVER`).
//!
//! On a test clock, a `charge_automatically` draft with `auto_advance` is finalized an hour after
//! it was made and charged with the customer's default payment method (without one the attempt
//! fails: `invoice.payment_failed`) (docs.stripe.com/billing/subscriptions/webhooks: Stripe "waits one hour after receiving a
//! successful response to the invoice.created event before attempting payment";
//! docs.stripe.com/invoicing/integration/automatic-advancement-collection): `MOVER`.

use serde_json::{Value, json};

use super::{finalize, pay, payment_method_of, stored_payment_method};
use crate::sandbox::stripe::behaviour::subscriptions;
use crate::sandbox::stripe::behaviour::test_clocks::{Due, Mover};
use crate::sandbox::stripe::engine::{ApiResult, Ctx};

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
        return subscriptions::invoice_charged(ctx, invoice, false);
    };
    let pm = stored_payment_method(ctx, &named)?;
    // A decline is the invoice's `invoice.payment_failed`, not the advance's error.
    let paid = pay(ctx, invoice, &pm).is_ok() && invoice["status"] == "paid";
    subscriptions::invoice_charged(ctx, invoice, paid)
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
