//! Quotes (docs.stripe.com/quotes/overview): a draft priced from its line items (recurring
//! prices make its `computed.recurring`), finalized (`quote.finalized`), canceled
//! (`quote.canceled`), or accepted: accepting makes what the quote sells (a subscription for
//! recurring prices, paid from the customer's default payment method or source, with its
//! events), then `quote.accepted` names it.

use serde_json::{Value, json};

use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

pub struct Quotes;

impl Behaviour for Quotes {
    fn object(&self) -> &'static str {
        "quote"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &["line_items"]
    }
    fn actions(&self) -> &'static [&'static str] {
        &["finalizeQuote", "accept", "cancel"]
    }
    fn create(&self, ctx: &Ctx, quote: &mut Value) -> ApiResult<()> {
        let mut items = Vec::new();
        let (mut total, mut recurring) = (0, None::<Value>);
        for item in ctx.priced_line_items()? {
            let (price, quantity) = (&item.price, item.quantity);
            let amount = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
            total += amount;
            quote["currency"] = price["currency"].clone();
            if price["type"] == "recurring" {
                let sum = recurring
                    .as_ref()
                    .map_or(0, |r| r["amount_total"].as_i64().unwrap_or(0))
                    + amount;
                recurring = Some(ctx.shaped("quote", "computed.recurring", &json!({
                    "amount_subtotal": sum, "amount_total": sum,
                    "interval": price["recurring"]["interval"], "interval_count": price["recurring"]["interval_count"],
                })));
            }
            items.push(json!({"price": price["id"], "quantity": quantity}));
        }
        quote["amount_subtotal"] = json!(total);
        quote["amount_total"] = json!(total);
        quote["computed"]["recurring"] = recurring.unwrap_or(Value::Null);
        quote["computed"]["upfront"]["amount_subtotal"] = json!(total);
        quote["computed"]["upfront"]["amount_total"] = json!(total);
        quote["expires_at"] = json!(ctx.now() + 30 * 86_400);
        quote["status"] = json!("draft");
        ctx.store().set_private(
            quote["id"].as_str().unwrap_or_default(),
            "line_items",
            json!(items),
        );
        Ok(())
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        match ctx.op {
            "finalizeQuote" => Some(transition(
                ctx,
                &["draft"],
                "open",
                "finalized_at",
                "quote.finalized",
            )),
            "cancel" => Some(transition(
                ctx,
                &["draft", "open"],
                "canceled",
                "canceled_at",
                "quote.canceled",
            )),
            "accept" => Some(accept(ctx)),
            _ => None,
        }
    }
}

fn transition(ctx: &Ctx, from: &[&str], to: &str, stamp: &str, event: &str) -> ApiResult<Value> {
    let mut quote = ctx.target()?;
    if !from.contains(&quote["status"].as_str().unwrap_or("")) {
        return Err(ApiError::state(
            "quote_unexpected_state",
            &format!(
                "This quote is {}; only a quote that is {} can be {to}.",
                quote["status"].as_str().unwrap_or(""),
                from.join(" or ")
            ),
        ));
    }
    quote["status"] = json!(to);
    quote["status_transitions"][stamp] = json!(ctx.now());
    if to == "open" {
        quote["number"] = json!(format!(
            "QT-{}-0001",
            crate::secret::random_alnum(8).to_ascii_uppercase()
        ));
    }
    ctx.put(&quote);
    ctx.emit(event, &quote, None);
    Ok(quote)
}

fn accept(ctx: &Ctx) -> ApiResult<Value> {
    let mut quote = ctx.target()?;
    if quote["status"] != "open" {
        return Err(ApiError::state(
            "quote_unexpected_state",
            "Only an open (finalized) quote can be accepted.",
        ));
    }
    let customer = quote["customer"]
        .as_str()
        .ok_or_else(|| ApiError::request("The quote has no customer to accept it."))?
        .to_owned();
    let items = ctx
        .store()
        .private(quote["id"].as_str().unwrap_or_default(), "line_items")
        .unwrap_or(json!([]));
    if !quote["computed"]["recurring"].is_null() {
        let sub = ctx.create(
            "subscription",
            json!({"customer": customer, "items": items}),
        )?;
        quote["subscription"] = sub["id"].clone();
        quote["invoice"] = sub["latest_invoice"].clone();
    }
    quote["status"] = json!("accepted");
    quote["status_transitions"]["accepted_at"] = json!(ctx.now());
    ctx.put(&quote);
    ctx.emit("quote.accepted", &quote, None);
    Ok(quote)
}
