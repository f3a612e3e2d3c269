//! The product catalogue: products, prices and their plans, coupons, promotion codes, tax
//! rates, payment links. Stripe keeps a plan of the same id beside every recurring price and a
//! price beside every plan ("Plans and prices are interchangeable", docs.stripe.com/products-
//! prices/pricing-models#migrate-from-plans): each emits its twin's event right after its own.

use serde_json::{Value, json};

use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

pub struct Products;

impl Behaviour for Products {
    fn object(&self) -> &'static str {
        "product"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &["default_price_data"]
    }
    /// `default_price_data` makes the product's first price, its `default_price`.
    fn created(&self, ctx: &Ctx, product: &mut Value) -> ApiResult<()> {
        let Some(data) = ctx.param("default_price_data") else {
            return Ok(());
        };
        let mut params = data.clone();
        params["product"] = product["id"].clone();
        let price = ctx.create("price", params)?;
        let before = product.clone();
        product["default_price"] = price["id"].clone();
        ctx.save_update(&before, product);
        Ok(())
    }
    /// "You can only delete products that have no prices" (API reference, Delete a product).
    fn delete(&self, ctx: &Ctx, product: &Value) -> ApiResult<()> {
        let id = product["id"].as_str().unwrap_or_default();
        if !ctx.store().all("price", &|p| p["product"] == id).is_empty() {
            return Err(ApiError::request(
                "This product cannot be deleted because it has one or more user-created prices.",
            ));
        }
        Ok(())
    }
}

pub struct Prices;

impl Behaviour for Prices {
    fn object(&self) -> &'static str {
        "price"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &["recurring", "product", "product_data"]
    }
    fn create(&self, ctx: &Ctx, price: &mut Value) -> ApiResult<()> {
        price["product"] = json!(product_of(ctx)?);
        match (
            price["unit_amount"].as_i64(),
            ctx.str_param("unit_amount_decimal"),
        ) {
            (Some(a), _) => price["unit_amount_decimal"] = json!(a.to_string()),
            (None, Some(d)) => {
                price["unit_amount"] = d.parse::<i64>().map_or(Value::Null, |a| json!(a))
            }
            (None, None)
                if ctx.param("custom_unit_amount").is_none() && ctx.param("tiers").is_none() =>
            {
                return Err(ApiError::missing_param("unit_amount"));
            }
            _ => {}
        }
        if let Some(given) = ctx.param("recurring") {
            let mut recurring = json!({"interval": null, "interval_count": 1, "meter": null, "trial_period_days": null, "usage_type": "licensed"});
            for (k, v) in given.as_object().into_iter().flatten() {
                recurring[k.as_str()] = v.clone();
            }
            price["recurring"] = recurring;
            price["type"] = json!("recurring");
        }
        Ok(())
    }
    fn created(&self, ctx: &Ctx, price: &mut Value) -> ApiResult<()> {
        if price["type"] == "recurring" {
            let plan = plan_of(ctx, price);
            ctx.put(&plan);
            ctx.emit("plan.created", &plan, None);
        }
        Ok(())
    }
    fn updated(&self, ctx: &Ctx, _before: &Value, price: &mut Value) -> ApiResult<()> {
        twin_follows(ctx, "plan", price, &["active", "metadata", "nickname"])
    }
}

/// The price's product: `product`, or a new one from `product_data`.
fn product_of(ctx: &Ctx) -> ApiResult<String> {
    if let Some(id) = ctx.str_param("product") {
        return ctx
            .find("product", id, "product")
            .map(|p| p["id"].as_str().unwrap_or_default().to_owned());
    }
    match ctx.param("product_data") {
        Some(data) => Ok(ctx.create("product", data.clone())?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()),
        None => Err(ApiError::request(
            "You must specify either `product` or `product_data` when creating a price.",
        )),
    }
}

/// A twin changed with `object`: the same `fields`, saved with its own `.updated` event.
fn twin_follows(ctx: &Ctx, kind: &str, object: &Value, fields: &[&str]) -> ApiResult<()> {
    let id = object["id"].as_str().unwrap_or_default();
    if let Some(before) = ctx.store().get_of(kind, id) {
        let mut twin = before.clone();
        for f in fields {
            twin[*f] = object[*f].clone();
        }
        ctx.save_update(&before, &twin);
    }
    Ok(())
}

/// What a price and its plan share, field for field.
const TWIN_FIELDS: [&str; 9] = [
    "id",
    "created",
    "active",
    "currency",
    "metadata",
    "nickname",
    "product",
    "tiers_mode",
    "billing_scheme",
];
/// The plan's fields that a price keeps under `recurring`.
const RECURRING_FIELDS: [&str; 5] = [
    "interval",
    "interval_count",
    "usage_type",
    "trial_period_days",
    "meter",
];

/// A new object of `kind` with the shared fields of its twin `from`.
fn twin(ctx: &Ctx, kind: &str, from: &Value) -> Value {
    let mut twin = ctx.fresh(kind);
    for key in TWIN_FIELDS {
        twin[key] = from[key].clone();
    }
    twin
}

/// The plan Stripe keeps for a recurring price.
fn plan_of(ctx: &Ctx, price: &Value) -> Value {
    let mut plan = twin(ctx, "plan", price);
    plan["amount"] = price["unit_amount"].clone();
    plan["amount_decimal"] = price["unit_amount_decimal"].clone();
    for key in RECURRING_FIELDS {
        plan[key] = price["recurring"][key].clone();
    }
    plan["transform_usage"] = Value::Null;
    plan
}

/// The price Stripe keeps for a plan.
fn price_of(ctx: &Ctx, plan: &Value) -> Value {
    let mut price = twin(ctx, "price", plan);
    price["unit_amount"] = plan["amount"].clone();
    price["unit_amount_decimal"] = plan["amount_decimal"].clone();
    price["type"] = json!("recurring");
    price["recurring"] = RECURRING_FIELDS
        .iter()
        .map(|k| ((*k).to_owned(), plan[*k].clone()))
        .collect();
    price
}

pub struct Plans;

impl Behaviour for Plans {
    fn object(&self) -> &'static str {
        "plan"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &["product"]
    }
    /// `product` is a product's id or a new product's fields (`product[name]`), made first.
    fn create(&self, ctx: &Ctx, plan: &mut Value) -> ApiResult<()> {
        let product = match ctx.param("product") {
            Some(Value::String(id)) => ctx.find("product", id, "product")?["id"].clone(),
            Some(fields @ Value::Object(_)) => ctx.create("product", fields.clone())?["id"].clone(),
            _ => return Err(ApiError::missing_param("product")),
        };
        plan["product"] = product;
        match (plan["amount"].as_i64(), ctx.str_param("amount_decimal")) {
            (Some(a), _) => plan["amount_decimal"] = json!(a.to_string()),
            (None, Some(d)) => plan["amount"] = d.parse::<i64>().map_or(Value::Null, |a| json!(a)),
            (None, None) if ctx.param("tiers").is_none() => {
                return Err(ApiError::missing_param("amount"));
            }
            _ => {}
        }
        Ok(())
    }
    fn created(&self, ctx: &Ctx, plan: &mut Value) -> ApiResult<()> {
        let price = price_of(ctx, plan);
        ctx.put(&price);
        ctx.emit("price.created", &price, None);
        Ok(())
    }
    fn updated(&self, ctx: &Ctx, _before: &Value, plan: &mut Value) -> ApiResult<()> {
        twin_follows(ctx, "price", plan, &["active", "metadata", "nickname"])
    }
    /// The plan's price goes with it.
    fn deleted(&self, ctx: &Ctx, plan: &Value) -> ApiResult<()> {
        let id = plan["id"].as_str().unwrap_or_default();
        if let Some(price) = ctx.store().remove("price", id) {
            ctx.emit("price.deleted", &price, None);
        }
        Ok(())
    }
}

pub struct Coupons;

impl Behaviour for Coupons {
    fn object(&self) -> &'static str {
        "coupon"
    }
    /// A coupon takes off a percentage or an amount in a currency; `repeating` lasts
    /// `duration_in_months` (API reference, Create a coupon).
    fn create(&self, ctx: &Ctx, coupon: &mut Value) -> ApiResult<()> {
        match (ctx.param("percent_off"), ctx.param("amount_off")) {
            (None, None) => {
                return Err(ApiError::request(
                    "Coupons require either `amount_off` or `percent_off`.",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::request(
                    "Coupons can have either `amount_off` or `percent_off`, not both.",
                ));
            }
            (None, Some(_)) if ctx.param("currency").is_none() => {
                return Err(ApiError::missing_param("currency"));
            }
            _ => {}
        }
        if coupon["duration"] == "repeating" && coupon["duration_in_months"].is_null() {
            return Err(ApiError::missing_param("duration_in_months"));
        }
        Ok(())
    }
}

pub struct PromotionCodes;

impl Behaviour for PromotionCodes {
    fn object(&self) -> &'static str {
        "promotion_code"
    }
    /// The promotion's coupon must exist; without `code`, Stripe makes one.
    fn create(&self, ctx: &Ctx, code: &mut Value) -> ApiResult<()> {
        if let Some(coupon) = ctx.param("promotion").and_then(|p| p["coupon"].as_str()) {
            ctx.find("coupon", coupon, "promotion[coupon]")?;
        }
        if ctx.param("code").is_none() {
            code["code"] = json!(crate::secret::random_alnum(8).to_ascii_uppercase());
        }
        Ok(())
    }
}

pub struct TaxRates;

impl Behaviour for TaxRates {
    fn object(&self) -> &'static str {
        "tax_rate"
    }
    fn create(&self, _ctx: &Ctx, rate: &mut Value) -> ApiResult<()> {
        rate["effective_percentage"] = rate["percentage"].clone();
        Ok(())
    }
}

pub struct PaymentLinks;

impl Behaviour for PaymentLinks {
    fn object(&self) -> &'static str {
        "payment_link"
    }
    /// Each line item's price must exist; the link takes its currency.
    fn create(&self, ctx: &Ctx, link: &mut Value) -> ApiResult<()> {
        for item in ctx.priced_line_items()? {
            link["currency"] = item.price["currency"].clone();
        }
        let id = link["id"].as_str().unwrap_or_default().to_owned();
        link["url"] = json!(format!("{}/b/{id}", ctx.shared.app_url));
        Ok(())
    }
}
