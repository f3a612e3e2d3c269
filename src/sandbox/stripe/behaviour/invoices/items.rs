//! Invoice items (pending until an invoice takes them) and the lines an invoice is made of.

use serde_json::{Value, json};

use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

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
