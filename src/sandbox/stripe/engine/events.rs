//! The event an operation emits, as Stripe's Event object (stripe-node's `Stripe.Event`): `id`,
//! `object`, `account` (an event of a connected account), `api_version` (the account's),
//! `created`, `data.object` as it is now and `data.previous_attributes` for an update,
//! `livemode`, `pending_webhooks`, `request` (the call that caused it: `id` and the
//! `idempotency_key` it sent, or null), and `type`. Recorded and delivered by
//! `sandbox::delivery::publish`.

use serde_json::{Map, Value, json};

use super::Engine;
use super::ops::Ctx;

/// Emits `event_type` about `object`, caused by `ctx`'s call. An object whose resource has
/// `connect_events` (an account) makes an event of that connected account.
pub fn emit(ctx: &Ctx, event_type: &str, object: &Value, previous: Option<Value>) {
    let kind = object["object"].as_str().unwrap_or_default();
    let account = Engine::get()
        .resource(kind)
        .filter(|r| r.conf.connect_events)
        .and_then(|_| object["id"].as_str());
    emit_for(ctx, event_type, object, previous, account);
}

/// Emits an event; with `account`, as an event of that connected account (Connect endpoints
/// and `stripe listen --forward-connect-to` get it).
pub fn emit_for(
    ctx: &Ctx,
    event_type: &str,
    object: &Value,
    previous: Option<Value>,
    account: Option<&str>,
) {
    let mut event = Map::new();
    event.insert("id".into(), json!(crate::webhook::fixtures::new_event_id()));
    event.insert("object".into(), json!("event"));
    if let Some(a) = account {
        event.insert("account".into(), json!(a));
    }
    event.insert("api_version".into(), json!(ctx.shared.api_version));
    event.insert("created".into(), json!(ctx.now()));
    let mut data = Map::new();
    data.insert("object".into(), object.clone());
    if let Some(p) = previous {
        data.insert("previous_attributes".into(), p);
    }
    event.insert("data".into(), Value::Object(data));
    event.insert("livemode".into(), json!(ctx.shared.livemode()));
    event.insert("pending_webhooks".into(), json!(0));
    event.insert(
        "request".into(),
        json!({"id": ctx.call.request_id, "idempotency_key": ctx.call.idempotency_key}),
    );
    event.insert("type".into(), json!(event_type));
    crate::sandbox::delivery::publish(ctx.shared, Value::Object(event));
}
