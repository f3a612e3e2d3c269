//! `/v1/webhook_endpoints`: list, create (with its secret, once), retrieve, update, delete, with
//! Stripe's parameter checks and limits.

use super::*;

/// The parameters Stripe takes to create an endpoint, and to update one (no `api_version` or
/// `connect` there: they are fixed at creation).
pub(super) const CREATE_PARAMS: [&str; 7] = [
    "url",
    "enabled_events",
    "description",
    "metadata",
    "api_version",
    "connect",
    "expand",
];
const UPDATE_PARAMS: [&str; 6] = [
    "url",
    "enabled_events",
    "description",
    "disabled",
    "metadata",
    "expand",
];

pub(super) async fn list(State(shared): S, call: Call) -> Response {
    let (form, limit) = match list_query(&call.form) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let livemode = shared.livemode();
    let endpoints = shared.stripe.endpoints();
    let newest_first: Vec<&Endpoint> = endpoints.iter().rev().collect();
    list_page(
        &newest_first,
        &form,
        limit,
        ("webhook endpoint", "/v1/webhook_endpoints"),
        |e| &e.id,
        |e| e.to_json(livemode, false),
    )
}

fn check_endpoint_url(url: &str) -> std::result::Result<(), Response> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err(invalid(
            "url_invalid",
            Some("url"),
            "Invalid URL: URL must be an absolute http(s) URL",
        ))
    }
}

/// The form of a create or update of an endpoint; an unknown parameter, or a value beyond
/// Stripe's limits, is Stripe's 400.
fn endpoint_form(call: &Call, known: &[&str]) -> std::result::Result<Form, Response> {
    let form = call.form.clone();
    if let Some(p) = form.unknown(known) {
        return Err(invalid(
            "parameter_unknown",
            Some(p),
            &format!("Received unknown parameter: {p}"),
        ));
    }
    for (name, max) in [("url", MAX_URL), ("description", MAX_DESCRIPTION)] {
        if form.get(name).is_some_and(|v| v.chars().count() > max) {
            return Err(invalid(
                "parameter_invalid_string_too_long",
                Some(name),
                &format!("Invalid string: {name} must be at most {max} characters"),
            ));
        }
    }
    validate::metadata(&call.raw["metadata"])?;
    if let Some(events) = form.list("enabled_events") {
        validate::enabled_events(&events, validate::Payload::Snapshot)?;
    }
    Ok(form)
}

/// An API version Stripe has (see `validate::api_version`).
fn check_api_version(v: &str) -> std::result::Result<String, Response> {
    validate::api_version("api_version", v)
        .map(|()| v.to_owned())
        .map_err(Into::into)
}

/// The longest endpoint URL and description accepted.
const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 5000;

pub(super) async fn create(State(shared): S, call: Call) -> Response {
    let form = try_answer!(endpoint_form(&call, &CREATE_PARAMS));
    let Some(url) = form.get("url") else {
        return invalid(
            "parameter_missing",
            Some("url"),
            "Missing required param: url.",
        );
    };
    if let Err(r) = check_endpoint_url(url) {
        return r;
    }
    let Some(events) = form.list("enabled_events") else {
        return invalid(
            "parameter_missing",
            Some("enabled_events"),
            "Missing required param: enabled_events.",
        );
    };
    let connect = match parse_bool(&form, "connect") {
        Ok(c) => c.unwrap_or(false),
        Err(r) => return r,
    };
    let api_version = try_answer!(form.get("api_version").map(check_api_version).transpose());
    let new = NewEndpoint {
        url: url.to_owned(),
        enabled_events: events,
        description: form
            .get("description")
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        metadata: form
            .map("metadata")
            .into_iter()
            .filter(|(_, v)| v.as_str() != Some(""))
            .collect(),
        api_version,
        connect,
    };
    let Some(endpoint) = shared
        .stripe
        .create_endpoint(new, secret::generate_webhook_secret())
    else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            None,
            &format!(
                "You have reached the maximum of {MAX_ENDPOINTS} webhook endpoints on this \
                 account. Delete an endpoint you no longer need to add another."
            ),
        );
    };
    try_answer!(shared.stripe_changed().await.map_err(unwritten));
    axum::Json(endpoint.to_json(shared.livemode(), true)).into_response()
}

pub(super) async fn retrieve(
    State(shared): S,
    UrlPath(id): UrlPath<String>,
    _call: Call,
) -> Response {
    let livemode = shared.livemode();
    match shared.stripe.endpoints().iter().find(|e| e.id == id) {
        Some(e) => axum::Json(e.to_json(livemode, false)).into_response(),
        None => missing("webhook endpoint", &id),
    }
}

pub(super) async fn update(State(shared): S, UrlPath(id): UrlPath<String>, call: Call) -> Response {
    let form = try_answer!(endpoint_form(&call, &UPDATE_PARAMS));
    let disabled = try_answer!(parse_bool(&form, "disabled"));
    if let Some(url) = form.get("url")
        && let Err(r) = check_endpoint_url(url)
    {
        return r;
    }
    let livemode = shared.livemode();
    let updated = {
        let mut endpoints = shared.stripe.endpoints();
        let Some(e) = endpoints.iter_mut().find(|e| e.id == id) else {
            return missing("webhook endpoint", &id);
        };
        if let Some(d) = disabled {
            e.disabled = d;
        }
        if let Some(url) = form.get("url") {
            e.url = url.to_owned();
        }
        if let Some(events) = form.list("enabled_events") {
            e.enabled_events = events;
        }
        if let Some(d) = form.get("description") {
            // Stripe's "emptyable" fields: an empty value unsets.
            e.description = (!d.is_empty()).then(|| d.to_owned());
        }
        if form.get("metadata") == Some("") {
            e.metadata.clear();
        }
        for (k, v) in form.map("metadata") {
            if v.as_str() == Some("") {
                e.metadata.remove(&k);
            } else {
                e.metadata.insert(k, v);
            }
        }
        e.to_json(livemode, false)
    };
    try_answer!(shared.stripe_changed().await.map_err(unwritten));
    axum::Json(updated).into_response()
}

pub(super) async fn delete(
    State(shared): S,
    UrlPath(id): UrlPath<String>,
    _call: Call,
) -> Response {
    {
        let mut endpoints = shared.stripe.endpoints();
        let Some(at) = endpoints.iter().position(|e| e.id == id) else {
            return missing("webhook endpoint", &id);
        };
        endpoints.remove(at);
    }
    try_answer!(shared.stripe_changed().await.map_err(unwritten));
    axum::Json(json!({"id": id, "object": "webhook_endpoint", "deleted": true})).into_response()
}
