//! The subscription items API (`/v1/subscription_items`, API reference: Subscription Items):
//! a subscription's items live in the subscription (`items.data`); creating, updating or
//! deleting one changes its subscription as `subscriptions.update` with one `items` entry
//! would, with the same prorations (`proration_behavior`, `proration_date`, prorations.rs) and
//! the subscription's `customer.subscription.updated` (Stripe has no subscription item events).
//! Listing needs `subscription` and answers its items in one page.

use serde_json::{Value, json};

use super::prorations::{self, Billing};
use super::subscriptions::ended;
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

pub struct SubscriptionItems;

impl Behaviour for SubscriptionItems {
    fn object(&self) -> &'static str {
        "subscription_item"
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        Some(match ctx.op {
            "create" => create(ctx),
            "retrieve" => holder(ctx, ctx.id()).map(|(_, item)| item),
            "update" => update(ctx),
            "delete" => delete(ctx),
            "list" => list(ctx),
            _ => return None,
        })
    }
}

/// The subscription holding item `id`, and the item; Stripe's 404 otherwise.
fn holder(ctx: &Ctx, id: &str) -> ApiResult<(Value, Value)> {
    let subs = ctx.store().all("subscription", &|s| {
        s["items"]["data"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["id"] == id))
    });
    let sub = subs
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("subscription_item", id))?;
    let item = sub["items"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["id"] == id)
        .cloned()
        .unwrap_or(Value::Null);
    Ok((sub, item))
}

/// `sub` changed by the one `entry`, billed per the call's proration parameters and stored
/// (`customer.subscription.updated`); the item it changed or made.
fn change(ctx: &Ctx, sub: Value, entry: Value) -> ApiResult<Option<Value>> {
    if ended(&sub) {
        return Err(ApiError::state(
            "resource_missing",
            &format!(
                "A canceled subscription's items cannot change: {}",
                sub["id"].as_str().unwrap_or_default()
            ),
        ));
    }
    let clocked = prorations::on_its_clock(ctx, &sub);
    let ctx = clocked.as_ref().unwrap_or(ctx);
    let before = sub.clone();
    let mut sub = sub;
    let changes = prorations::apply_items(ctx, &mut sub, &[entry], "")?;
    prorations::bill_change(ctx, &mut sub, &changes, &Billing::of(ctx, None))?;
    ctx.save_update(&before, &sub);
    Ok(changes.into_iter().next().and_then(|c| c.new))
}

fn create(ctx: &Ctx) -> ApiResult<Value> {
    let sub_id = ctx
        .str_param("subscription")
        .ok_or_else(|| ApiError::missing_param("subscription"))?;
    let sub = ctx.find("subscription", sub_id, "subscription")?;
    let entry = json!({"price": ctx.param("price"), "quantity": ctx.param("quantity"),
        "metadata": ctx.param("metadata")});
    change(ctx, sub, entry)?.ok_or_else(|| ApiError::missing_param("price"))
}

fn update(ctx: &Ctx) -> ApiResult<Value> {
    let (sub, item) = holder(ctx, ctx.id())?;
    let entry = json!({"id": item["id"], "price": ctx.param("price"), "quantity": ctx.param("quantity"),
        "metadata": ctx.param("metadata")});
    let id = item["id"].clone();
    change(ctx, sub, entry)?;
    let (_, item) = holder(ctx, id.as_str().unwrap_or_default())?;
    Ok(item)
}

fn delete(ctx: &Ctx) -> ApiResult<Value> {
    let (sub, item) = holder(ctx, ctx.id())?;
    change(ctx, sub, json!({"id": item["id"], "deleted": true}))?;
    Ok(json!({"id": item["id"], "object": "subscription_item", "deleted": true}))
}

/// One page of the subscription's items (a subscription has at most 20: Stripe's limit).
fn list(ctx: &Ctx) -> ApiResult<Value> {
    let sub_id = ctx
        .str_param("subscription")
        .ok_or_else(|| ApiError::missing_param("subscription"))?;
    let sub = ctx.find("subscription", sub_id, "subscription")?;
    Ok(
        json!({"object": "list", "data": sub["items"]["data"], "has_more": false,
        "url": "/v1/subscription_items"}),
    )
}
