//! The other event destination handlers: list, retrieve, update, enable, disable, delete (with
//! its partner event source) and ping.

use super::delivery::deliver;
use super::params::{json_body, metadata, payload_kind, strings, text};
use super::*;

pub(in crate::sandbox::stripe) async fn list(State(shared): S, call: Call) -> Response {
    let (form, limit) = try_answer!(list_query(&call.form));
    let start: usize = form.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let all = shared.stripe.destinations.saved();
    let mut data = Vec::new();
    for d in all.iter().rev().skip(start).take(limit) {
        data.push(
            shared
                .stripe
                .destinations
                .render(d, shared.livemode())
                .await,
        );
    }
    let next = (all.len() > start + data.len()).then(|| {
        format!(
            "/v2/core/event_destinations?limit={limit}&page={}",
            start + data.len()
        )
    });
    axum::Json(json!({"data": data, "next_page_url": next, "previous_page_url": null}))
        .into_response()
}

fn not_found(id: &str) -> Response {
    missing("event destination", id)
}

pub(in crate::sandbox::stripe) async fn retrieve(
    State(shared): S,
    UrlPath(id): UrlPath<String>,
    _call: Call,
) -> Response {
    rendered(&shared, &id, shared.stripe.destinations.get(&id)).await
}

const UPDATE_PARAMS: [&str; 5] = [
    "description",
    "enabled_events",
    "include",
    "metadata",
    "name",
];

pub(in crate::sandbox::stripe) async fn update(
    State(shared): S,
    UrlPath(id): UrlPath<String>,
    call: Call,
) -> Response {
    let m = try_answer!(json_body(&call.raw));
    if let Some(unknown) = m.keys().find(|k| !UPDATE_PARAMS.contains(&k.as_str())) {
        return invalid(
            "parameter_unknown",
            Some(unknown),
            &format!("Received unknown parameter: {unknown}"),
        );
    }
    let Some(current) = shared.stripe.destinations.get(&id) else {
        return not_found(&id);
    };
    let events = match m.get("enabled_events").filter(|v| !v.is_null()) {
        Some(v) => {
            let events = try_answer!(strings(v, "enabled_events"));
            try_answer!(validate::enabled_events(
                &events,
                payload_kind(&current.event_payload)
            ));
            Some(events)
        }
        None => None,
    };
    let name = match m.get("name").filter(|v| !v.is_null()) {
        Some(v) => Some(try_answer!(text(v, "name"))),
        None => None,
    };
    if let Some(n) = &name {
        try_answer!(validate::max_chars("name", n, validate::MAX_STRING));
    }
    if let Some(d) = m.get("description").and_then(Value::as_str) {
        try_answer!(validate::max_chars("description", d, validate::MAX_STRING));
    }
    try_answer!(validate::metadata(
        m.get("metadata").unwrap_or(&Value::Null)
    ));
    let mut merged = current.metadata.clone();
    for (k, v) in metadata(m.get("metadata")) {
        if v.is_null() {
            merged.remove(&k);
        } else {
            merged.insert(k, v);
        }
    }
    try_answer!(validate::metadata(&Value::Object(merged)));
    let changed = shared.stripe.destinations.change(&id, |d| {
        if let Some(e) = events {
            d.enabled_events = e;
        }
        if let Some(n) = name {
            d.name = n;
        }
        if let Some(text) = m.get("description").and_then(Value::as_str) {
            d.description = text.to_owned();
        }
        // A key set to null is removed (v2's metadata update).
        for (k, v) in metadata(m.get("metadata")) {
            if v.is_null() {
                d.metadata.remove(&k);
            } else {
                d.metadata.insert(k, v);
            }
        }
    });
    answer_with(&shared, &id, changed).await
}

async fn answer_with(shared: &Arc<Shared>, id: &str, d: Option<Destination>) -> Response {
    shared.stripe_touched();
    rendered(shared, id, d).await
}

/// The destination as Stripe renders it, or Stripe's 404 for `id`.
async fn rendered(shared: &Arc<Shared>, id: &str, d: Option<Destination>) -> Response {
    match d {
        Some(d) => axum::Json(
            shared
                .stripe
                .destinations
                .render(&d, shared.livemode())
                .await,
        )
        .into_response(),
        None => not_found(id),
    }
}

pub(in crate::sandbox::stripe) async fn enable(
    State(shared): S,
    UrlPath(id): UrlPath<String>,
    _call: Call,
) -> Response {
    if shared
        .stripe
        .destinations
        .get(&id)
        .is_some_and(|d| d.aws_event_source_arn.is_empty())
    {
        return invalid(
            "event_destination_invalid",
            None,
            "This destination's partner event source no longer exists: create a new destination.",
        );
    }
    let d = shared.stripe.destinations.change(&id, |d| {
        d.enabled = true;
        d.disabled_reason = None;
    });
    answer_with(&shared, &id, d).await
}

pub(in crate::sandbox::stripe) async fn disable(
    State(shared): S,
    UrlPath(id): UrlPath<String>,
    _call: Call,
) -> Response {
    let d = shared.stripe.destinations.change(&id, |d| {
        d.enabled = false;
        d.disabled_reason = Some("user".into());
    });
    answer_with(&shared, &id, d).await
}

pub(in crate::sandbox::stripe) async fn delete(
    State(shared): S,
    UrlPath(id): UrlPath<String>,
    _call: Call,
) -> Response {
    let destinations = &shared.stripe.destinations;
    let Some(d) = destinations.get(&id) else {
        return not_found(&id);
    };
    if !d.aws_event_source_arn.is_empty()
        && let Some(client) = destinations.client(&d.aws_region).await
        && let Err(e) = client
            .delete_partner_event_source(&d.source_name(), &d.aws_account_id)
            .await
    {
        shared.out.warn(format!(
            "event destination {id}: partner event source not deleted: {e}"
        ));
    }
    destinations.lock().retain(|d| d.id != id);
    shared.stripe_touched();
    axum::Json(json!({"id": id, "object": OBJECT})).into_response()
}

/// `POST …/ping`: a `v2.core.event_destination.ping` thin event, put on the destination
/// whatever its payload style; the answer is the event.
pub(in crate::sandbox::stripe) async fn ping(
    State(shared): S,
    UrlPath(id): UrlPath<String>,
    _call: Call,
) -> Response {
    let Some(d) = shared.stripe.destinations.get(&id) else {
        return not_found(&id);
    };
    let event = json!({
        "id": crate::sandbox::stripe::thin::new_event_id(shared.livemode()),
        "object": "v2.core.event",
        "type": "v2.core.event_destination.ping",
        "livemode": shared.livemode(),
        "created": now(),
        "related_object": {"id": d.id, "type": OBJECT, "url": format!("/v2/core/event_destinations/{}", d.id)},
    });
    if d.enabled {
        let entry = PartnerEntry {
            source: d.source_name(),
            detail_type: "v2.core.event_destination.ping".into(),
            detail: crate::webhook::to_wire(&event),
            time: crate::timestamp::unix_now(),
        };
        tokio::spawn(deliver(
            shared.clone(),
            event["id"].as_str().unwrap_or_default().to_owned(),
            d,
            entry,
        ));
    }
    axum::Json(event).into_response()
}
