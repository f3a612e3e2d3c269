//! A new subscription's one-time items (`add_invoice_items`): "A list of prices and quantities
//! that will generate invoice items appended to the next invoice for this subscription", the
//! first one only (API reference, Create a subscription); Checkout's `subscription` mode makes
//! them from its one-time line items ("Line items with one-time Prices will be on the initial
//! invoice only", API reference, Create a Checkout Session, `line_items`). Each is an invoice
//! item of the customer on the first invoice (`invoiceitem.created`, after
//! `customer.subscription.created` and before the invoice's `invoice.created`: the sandbox's
//! order, the items existing before the invoice that takes them), and a line of it whose
//! `parent` is the item (`invoice_item_details`).

use serde_json::{Value, json};

use super::invoices;
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Ctx};

/// The one-time prices and quantities `add_invoice_items` names, checked before anything is
/// made: Stripe's 400s for a missing or recurring price.
pub fn requested(ctx: &Ctx) -> ApiResult<Vec<(Value, i64)>> {
    let items = ctx
        .param("add_invoice_items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut prices = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let param = format!("add_invoice_items[{i}][price]");
        let Some(id) = item["price"].as_str() else {
            return Err(ApiError::invalid(
                "parameter_missing",
                Some(&param),
                "The sandbox takes add_invoice_items by price (price_data is not built).",
            ));
        };
        let price = ctx.find("price", id, &param)?;
        if price["type"] == "recurring" {
            return Err(ApiError::invalid(
                "parameter_invalid",
                Some(&param),
                "The price specified is set to `type=recurring` but this field only accepts prices with `type=one_time`.",
            ));
        }
        prices.push((price, item["quantity"].as_i64().unwrap_or(1)));
    }
    Ok(prices)
}

/// Makes the items on the subscription's first `invoice` (a draft not yet stored) and adds
/// their lines and amounts to it.
pub fn add(ctx: &Ctx, sub: &Value, invoice: &mut Value, prices: &[(Value, i64)]) {
    let sub_id = &sub["id"];
    let invoice_id = invoice["id"].as_str().unwrap_or_default().to_owned();
    let mut added = 0;
    for (price, quantity) in prices {
        let unit = price["unit_amount"].as_i64().unwrap_or(0);
        let amount = unit * quantity;
        let product = ctx
            .store()
            .get_of("product", price["product"].as_str().unwrap_or_default());
        let name = product.as_ref().and_then(|p| p["name"].as_str());
        let pricing = json!({"type": "price_details", "unit_amount_decimal": unit.to_string(),
            "price_details": {"price": price["id"], "product": price["product"]}});
        let mut item = ctx.fresh("invoiceitem");
        item["customer"] = sub["customer"].clone();
        item["currency"] = price["currency"].clone();
        item["amount"] = json!(amount);
        item["net_amount"] = json!(amount);
        item["quantity"] = json!(quantity);
        item["quantity_decimal"] = json!(quantity.to_string());
        item["description"] = json!(name);
        item["date"] = json!(ctx.now());
        item["period"] = json!({"end": ctx.now(), "start": ctx.now()});
        item["discounts"] = json!([]);
        item["invoice"] = json!(invoice_id);
        item["pricing"] = pricing.clone();
        // stripe-node: `subscription_item?: string` (absent, not null, for an item of no
        // subscription item).
        item["parent"] = json!({"type": "subscription_details",
            "subscription_details": {"subscription": sub_id}});
        ctx.put(&item);
        ctx.emit("invoiceitem.created", &item, None);

        let parent = json!({"type": "invoice_item_details", "subscription_item_details": null,
            "invoice_item_details": {"invoice_item": item["id"], "proration": false,
                "proration_details": {"credited_items": null}, "subscription": sub_id}});
        let mut line = invoices::line(
            ctx,
            &invoice_id,
            amount,
            &price["currency"],
            json!(name),
            parent,
            Some(price),
        );
        line["subscription"] = sub_id.clone();
        line["quantity"] = json!(quantity);
        line["quantity_decimal"] = json!(quantity.to_string());
        line["pricing"] = pricing;
        if let Some(lines) = invoice["lines"]["data"].as_array_mut() {
            lines.push(line);
        }
        added += amount;
    }
    for key in [
        "amount_due",
        "amount_remaining",
        "subtotal",
        "total",
        "subtotal_excluding_tax",
        "total_excluding_tax",
    ] {
        invoice[key] = json!(invoice[key].as_i64().unwrap_or(0) + added);
    }
}
