//! Thin (API v2) events: what the sandbox does that Stripe reports as a `v2.core.event`, kept for
//! `GET /v2/core/events` and `GET /v2/core/events/{id}`, and its notification delivered to the
//! v2 event destinations with a thin payload (`event_destinations::publish_thin`) and to
//! `stripe listen --all-thin` or `--events <thin types>` (`cli::Listeners::publish_thin`).
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
    publish(shared, thin_event(shared, event_type, related), Some(data))
}

fn thin_event(shared: &Shared, event_type: &str, related: Option<Value>) -> Value {
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
    event
}

/// The thin twin of a snapshot event the sandbox made: Stripe sends a v1 event in the thin
/// format as `v1.<its type>` to the destinations that ask for it (stripe-node's
/// `V2.Core.EventNotification` union declares which: `v1.billing.meter.created`,
/// `v1.customer.created`, …), naming the snapshot event (`snapshot_event`), the object it is
/// about (`related_object`, as the catalogue's thin template addresses it) and the request
/// that caused it (`reason`, when the request sent an `Idempotency-Key`: stripe-node types
/// `reason.request.idempotency_key` as a string). A connected account's events have none here
/// yet (their thin form names the account in `context`).
pub fn twin(shared: &Arc<Shared>, snapshot: &Value) {
    if snapshot.get("account").is_some_and(|a| !a.is_null()) {
        return;
    }
    let Some(template) = twin_template(snapshot["type"].as_str().unwrap_or_default()) else {
        return;
    };
    let related = match template.get("related_object") {
        None => None,
        Some(r) => match related_of(r, &snapshot["data"]["object"]) {
            Some(related) => Some(related),
            None => return,
        },
    };
    let mut event = thin_event(
        shared,
        template["type"].as_str().unwrap_or_default(),
        related,
    );
    event["snapshot_event"] = snapshot["id"].clone();
    let request = &snapshot["request"];
    if let (Some(id), Some(key)) = (request["id"].as_str(), request["idempotency_key"].as_str()) {
        event["reason"] = json!({"type": "request", "request": {"id": id, "idempotency_key": key}});
    }
    publish(shared, event, None);
}

/// The catalogue's thin template of `v1.<event_type>`, when Stripe has that thin event.
fn twin_template(event_type: &str) -> Option<&'static Value> {
    static CATALOG: std::sync::OnceLock<crate::webhook::fixtures::Catalog> =
        std::sync::OnceLock::new();
    let catalog = CATALOG.get_or_init(|| {
        crate::webhook::fixtures::Catalog::load(None).expect("the embedded catalogue loads")
    });
    catalog
        .template(&format!("v1.{event_type}"))
        .ok()
        .filter(|t| t["object"] == "v2.core.event")
}

/// `related_object` for `object`, from the template's: its URL with the template's id replaced
/// by the object's. A URL that names another object too (a nested resource's parent) is not
/// guessed: `None`.
fn related_of(template: &Value, object: &Value) -> Option<Value> {
    let url = template["url"].as_str()?;
    let Some(template_id) = template["id"].as_str() else {
        // A singleton (the balance): no id, the URL as it is.
        return Some(template.clone());
    };
    let id = object["id"].as_str()?;
    let ids_in_url = url
        .split('/')
        .filter(|s| s.contains('_') && s.bytes().any(|b| b.is_ascii_digit()))
        .count();
    if ids_in_url != 1 || !url.ends_with(template_id) {
        return None;
    }
    Some(related(
        id,
        template["type"].as_str()?,
        &url.replace(template_id, id),
    ))
}

/// Records `event` (with `data` when its type declares one) and delivers its notification.
/// The notification's bytes are made only when a destination or a listener takes them.
fn publish(shared: &Arc<Shared>, mut event: Value, data: Option<Value>) -> Value {
    let event_type = event["type"].as_str().unwrap_or_default();
    let wanted =
        shared.stripe.destinations.take_thin(event_type) || shared.stripe.listeners.any_thin();
    let notification = wanted.then(|| crate::webhook::to_wire(&event));
    if let Some(data) = data {
        event["data"] = data;
    }
    shared.stripe.thin.record(event.clone());
    if let Some(notification) = notification {
        event_destinations::publish_thin(shared, &event, &notification);
        shared.stripe.listeners.publish_thin(
            &shared.stripe,
            &shared.out,
            &shared.stripe.cli_secret(),
            event["id"].as_str().unwrap_or_default(),
            &notification,
        );
    }
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
        assert!(new_event_id(true).starts_with("evt_") && !new_event_id(true).contains("test"));
        assert_eq!(new_event_id(false).len(), "evt_test_".len() + 46);
    }

    #[test]
    fn a_twin_names_its_object_where_the_template_addresses_one_object_only() {
        let meter = json!({"id": "mtr_1", "object": "billing.meter"});
        assert_eq!(
            related_of(
                &twin_template("billing.meter.created").unwrap()["related_object"],
                &meter
            ),
            Some(
                json!({"id": "mtr_1", "type": "billing.meter", "url": "/v1/billing/meters/mtr_1"})
            )
        );
        let nested = json!({"id": "ccsbtxn_X1", "type": "customer_cash_balance_transaction",
                            "url": "/v1/customers/cus_A1/cash_balance_transactions/ccsbtxn_X1"});
        assert_eq!(related_of(&nested, &json!({"id": "ccsbtxn_2"})), None);
        assert!(twin_template("no.such.event").is_none());
        assert!(twin_template("customer.created").is_some());
    }
}
