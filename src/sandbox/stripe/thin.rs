//! Thin (API v2) events: what the sandbox does that Stripe reports as a `v2.core.event`, kept for
//! `GET /v2/core/events` and `GET /v2/core/events/{id}`, and its notification delivered to the
//! v2 event destinations with a thin payload (`event_destinations::publish_thin`) and to
//! `stripe listen --forward-thin-to` (`cli::Listeners::publish_thin`).
//!
//! Shapes are stripe-node 23's (`resources/V2/Core/Events.d.ts`): an event is `id`, `object`
//! (`v2.core.event`), `type`, `livemode`, `created` (RFC 3339, to the millisecond), the
//! optional `related_object` (`{id, type, url}`), `reason` and `context`, and, when fetched,
//! `data` as the event type declares it. The notification is the event without `data`
//! ("Thin events … don't include the data; fetch the event", docs.stripe.com/event-destinations
//! #events-overview), signed as a webhook is (`Stripe-Signature`, which stripe-node's
//! `parseEventNotification` verifies with `webhooks.signature.verifyHeader`).

use super::*;

/// Thin events kept for `GET /v2/core/events`; beyond, the oldest go first. Stripe keeps 30
/// days; the sandbox bounds memory instead.
const KEPT: usize = 10_000;
/// `GET /v2/core/events` parameters (stripe-node's `V2.Core.EventListParams`, and `page`, the
/// token of a `next_page_url`).
const LIST_PARAMS: [&str; 5] = ["created", "limit", "object_id", "types", "page"];

#[derive(Default)]
pub struct ThinEvents {
    events: Mutex<VecDeque<Value>>,
}

impl ThinEvents {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Value>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, event: Value) {
        let mut events = self.lock();
        if events.len() == KEPT {
            events.pop_front();
        }
        events.push_back(event);
    }

    pub fn get(&self, id: &str) -> Option<Value> {
        self.lock().iter().rev().find(|e| e["id"] == id).cloned()
    }

    fn newest_first(&self) -> Vec<Value> {
        self.lock().iter().rev().cloned().collect()
    }
}

/// A v2 event's id: `evt_test_` and 46 characters in test mode (as Stripe's thin examples
/// show them: `evt_test_65R9Ijk8dLXH0B6qBu516Dt61Sef5xGTGFiHbdzCySK4i0`).
pub fn new_event_id(livemode: bool) -> String {
    let mode = if livemode { "" } else { "test_" };
    format!("evt_{mode}{}", secret::random_alnum(46))
}

/// Now on the sandbox's clock, as API v2 writes a time.
pub fn now(shared: &Shared) -> String {
    let ms = shared.stripe.now() * 1000 + crate::timestamp::unix_ms().rem_euclid(1000);
    crate::timestamp::rfc3339_millis(ms)
}

/// Records a thin event of `event_type` (about `related`, when it has a related object, with
/// the fetched event's `data`) and delivers its notification. Returns the event.
pub fn emit(shared: &Arc<Shared>, event_type: &str, related: Option<Value>, data: Value) -> Value {
    let mut event = json!({
        "id": new_event_id(shared.livemode()),
        "object": "v2.core.event",
        "type": event_type,
        "livemode": shared.livemode(),
        "created": now(shared),
    });
    if let Some(r) = related {
        event["related_object"] = r;
    }
    let notification = crate::webhook::to_wire(&event);
    event["data"] = data;
    shared.stripe.thin.record(event.clone());
    shared.stripe_touched();
    event_destinations::publish_thin(shared, &event, &notification);
    shared.stripe.listeners.publish_thin(
        &shared.stripe,
        &shared.out,
        &shared.stripe.cli_secret(),
        event["id"].as_str().unwrap_or_default(),
        &notification,
    );
    event
}

/// `related_object` of an object the v1 API serves at `url`.
pub fn related(id: &str, kind: &str, url: &str) -> Value {
    json!({"id": id, "type": kind, "url": url})
}

/// `GET /v2/core/events/{id}`: the event with its `data`.
pub(super) async fn retrieve(
    State(shared): S,
    UrlPath(id): UrlPath<String>,
    _call: Call,
) -> Response {
    match shared.stripe.thin.get(&id) {
        Some(e) => axum::Json(e).into_response(),
        None => {
            // API v2's error object names no `param` (the OpenAPI spec's `v2.error`).
            let mut e = ApiError::not_found("event", &id);
            e.error.shift_remove("param");
            e.into_response()
        }
    }
}

/// `GET /v2/core/events`: newest first, filtered by `object_id` (the related object's id),
/// `types` and `created` (`gt`, `gte`, `lt`, `lte`), in v2 pages (`data`, `next_page_url`,
/// `previous_page_url`).
pub(super) async fn list(State(shared): S, call: Call) -> Response {
    if let Some(p) = call.form.unknown(&LIST_PARAMS) {
        return invalid(
            "parameter_unknown",
            Some(p),
            &format!("Received unknown parameter: {p}"),
        );
    }
    let (form, limit) = try_answer!(list_query(&call.form));
    let start: usize = form.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let object_id = form.get("object_id");
    let types: Vec<&str> = form
        .pairs()
        .filter(|(k, _)| *k == "types" || form::list_base(k) == Some("types"))
        .map(|(_, v)| v)
        .collect();
    let created = try_answer!(created_range(&form));
    let kept: Vec<Value> = shared
        .stripe
        .thin
        .newest_first()
        .into_iter()
        .filter(|e| object_id.is_none_or(|id| e["related_object"]["id"] == id))
        .filter(|e| types.is_empty() || types.iter().any(|t| e["type"] == *t))
        .filter(|e| {
            let at = e["created"]
                .as_str()
                .and_then(|c| crate::timestamp::parse_rfc3339(c).ok())
                .unwrap_or(0);
            created.iter().all(|(op, bound)| match *op {
                "gt" => at > *bound,
                "gte" => at >= *bound,
                "lt" => at < *bound,
                _ => at <= *bound,
            })
        })
        .collect();
    let data: Vec<&Value> = kept.iter().skip(start).take(limit).collect();
    let next = (kept.len() > start + data.len()).then(|| {
        let mut query: Vec<(&str, String)> = form
            .pairs()
            .filter(|(k, _)| *k != "page" && *k != "limit")
            .map(|(k, v)| (k, v.to_owned()))
            .collect();
        query.push(("limit", limit.to_string()));
        query.push(("page", (start + data.len()).to_string()));
        let query = serde_urlencoded::to_string(&query).unwrap_or_default();
        format!("/v2/core/events?{query}")
    });
    axum::Json(json!({"data": data, "next_page_url": next, "previous_page_url": null}))
        .into_response()
}

/// `created[gt]=…` and its kin, each an RFC 3339 time or unix seconds (stripe-node types them
/// `string | number`).
fn created_range(form: &Form) -> std::result::Result<Vec<(&'static str, i64)>, Response> {
    let mut out = Vec::new();
    for op in ["gt", "gte", "lt", "lte"] {
        let param = format!("created[{op}]");
        let Some(v) = form.get(&param) else { continue };
        let at = v
            .parse::<i64>()
            .ok()
            .or_else(|| crate::timestamp::parse_rfc3339(v).ok())
            .ok_or_else(|| {
                invalid(
                    "parameter_invalid",
                    Some(&param),
                    &format!("Invalid timestamp: {v}"),
                )
            })?;
        out.push((op, at));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thin_events_are_kept_newest_last_and_bounded() {
        let kept = ThinEvents::default();
        for i in 0..KEPT + 2 {
            kept.record(json!({"id": format!("evt_{i}")}));
        }
        assert!(kept.get("evt_0").is_none(), "the oldest went first");
        assert!(kept.get("evt_2").is_some());
        assert_eq!(
            kept.newest_first()[0]["id"],
            format!("evt_{}", KEPT + 1),
            "newest first"
        );
        assert!(new_event_id(false).starts_with("evt_test_"));
        assert_eq!(new_event_id(false).len(), "evt_test_".len() + 46);
    }
}
