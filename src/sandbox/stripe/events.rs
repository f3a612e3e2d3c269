//! `/v1/events`: list (Stripe's filters, newest first), retrieve and retry, each event as
//! Stripe's Event object (`pending_webhooks` up to date). What the sandbox tried to deliver is
//! its own bookkeeping, not part of Stripe's object: `GET /sandbox/v1/events/{id}/delivery_attempts`.

use super::*;

fn event_json(record: &EventRecord) -> Value {
    let mut v: Value = serde_json::from_str(&record.body).unwrap_or(Value::Null);
    v["pending_webhooks"] = json!(record.pending.len());
    v
}

/// The sandbox's record of an event's deliveries (to endpoints, `stripe listen` sessions, event
/// destinations), oldest first, for tests and debugging; not a Stripe API.
pub(super) async fn attempts(
    State(shared): S,
    UrlPath(id): UrlPath<String>,
    __call: Call,
) -> Response {
    let events = shared.stripe.events();
    let Some(record) = events.iter().find(|e| e.id == id) else {
        return missing("event", &id);
    };
    axum::Json(json!({
        "event": record.id,
        "pending_webhooks": record.pending.len(),
        "delivery_attempts": record.attempts,
    }))
    .into_response()
}

/// The parameters of `GET /v1/events`, as Stripe's API reference lists them.
const EVENT_LIST_PARAMS: [&str; 8] = [
    "limit",
    "starting_after",
    "ending_before",
    "type",
    "types",
    "created",
    "delivery_success",
    "expand",
];

/// Stripe's filters of `GET /v1/events`: `type` (one name, `*` as a wildcard), `types[]` (up
/// to 20 exact names; not with `type`), `created` (exact, or `created[gt|gte|lt|lte]`), and
/// `delivery_success` (false: events still pending at some endpoint).
struct EventFilter {
    type_glob: Option<wildmatch::WildMatch>,
    types: Option<Vec<String>>,
    created: Vec<(String, i64)>,
    delivery_success: Option<bool>,
}

impl EventFilter {
    fn from_form(form: &Form) -> std::result::Result<EventFilter, Response> {
        let types = form.list("types");
        if form.get("type").is_some() && types.is_some() {
            return Err(invalid(
                "parameter_invalid",
                Some("types"),
                "You may pass either type or types, but not both.",
            ));
        }
        if types.as_ref().is_some_and(|t| t.len() > 20) {
            return Err(invalid(
                "parameter_invalid",
                Some("types"),
                "types may contain at most 20 event types.",
            ));
        }
        let mut created = Vec::new();
        if let Some(exact) = form.get("created") {
            created.push(("eq".to_owned(), parse_timestamp("created", exact)?));
        }
        for (op, v) in form.map("created") {
            if !matches!(op.as_str(), "gt" | "gte" | "lt" | "lte") {
                return Err(invalid(
                    "parameter_unknown",
                    Some(&format!("created[{op}]")),
                    &format!("Received unknown parameter: created[{op}]"),
                ));
            }
            let v = v.as_str().unwrap_or_default();
            created.push((op.clone(), parse_timestamp(&format!("created[{op}]"), v)?));
        }
        Ok(EventFilter {
            type_glob: form.get("type").map(wildmatch::WildMatch::new),
            types,
            created,
            delivery_success: parse_bool(form, "delivery_success")?,
        })
    }

    fn keeps(&self, record: &EventRecord) -> bool {
        let Ok(v) = serde_json::from_str::<Value>(&record.body) else {
            return false;
        };
        let t = v["type"].as_str().unwrap_or_default();
        let at = v["created"].as_i64().unwrap_or_default();
        self.type_glob.as_ref().is_none_or(|g| g.matches(t))
            && self
                .types
                .as_ref()
                .is_none_or(|ts| ts.iter().any(|x| x == t))
            && self.created.iter().all(|(op, bound)| match op.as_str() {
                "gt" => at > *bound,
                "gte" => at >= *bound,
                "lt" => at < *bound,
                "lte" => at <= *bound,
                _ => at == *bound,
            })
            && self
                .delivery_success
                .is_none_or(|ok| ok == record.pending.is_empty())
    }
}

fn parse_timestamp(param: &str, v: &str) -> std::result::Result<i64, Response> {
    v.parse().map_err(|_| {
        invalid(
            "parameter_invalid_integer",
            Some(param),
            &format!("Invalid integer: {v}"),
        )
    })
}

pub(super) async fn list(State(shared): S, call: Call) -> Response {
    let (form, limit) = match list_query(&call.form) {
        Ok(q) => q,
        Err(r) => return r,
    };
    if let Some(p) = form.unknown(&EVENT_LIST_PARAMS) {
        return invalid(
            "parameter_unknown",
            Some(p),
            &format!("Received unknown parameter: {p}"),
        );
    }
    let filter = try_answer!(EventFilter::from_form(&form));
    let events = shared.stripe.events();
    let newest_first: Vec<&EventRecord> = events.iter().rev().filter(|e| filter.keeps(e)).collect();
    list_page(
        &newest_first,
        &form,
        limit,
        ("event", "/v1/events"),
        |e| &e.id,
        event_json,
    )
}

pub(super) async fn retrieve(
    State(shared): S,
    UrlPath(id): UrlPath<String>,
    _call: Call,
) -> Response {
    let events = shared.stripe.events();
    let Some(record) = events.iter().find(|e| e.id == id) else {
        return missing("event", &id);
    };
    axum::Json(event_json(record)).into_response()
}

/// Stripe's answer to more requests than it takes at once (docs.stripe.com/rate-limits: 429,
/// code `rate_limit`): here, more retries to one endpoint than `delivery::PER_ENDPOINT` under way.
fn rate_limited() -> Response {
    stripe_error(
        StatusCode::TOO_MANY_REQUESTS,
        "invalid_request_error",
        Some("rate_limit"),
        None,
        "Too many requests hit the API too quickly. We recommend an exponential backoff of your \
         requests.",
    )
}

const RETRY_PARAMS: [&str; 4] = ["webhook_endpoint", "for_stripecli", "account", "expand"];

/// `POST /v1/events/{id}/retry`: what the Stripe CLI's `events resend` calls (its
/// `pkg/cmd/resource/events_resend.go`): with `webhook_endpoint`, one more attempt to that
/// endpoint; without it the CLI sends `for_stripecli=true`, and the event goes to its `listen`
/// sessions. Answers the event.
pub(super) async fn retry(State(shared): S, UrlPath(id): UrlPath<String>, call: Call) -> Response {
    let form = call.form.clone();
    if let Some(p) = form.unknown(&RETRY_PARAMS) {
        return invalid(
            "parameter_unknown",
            Some(p),
            &format!("Received unknown parameter: {p}"),
        );
    }
    let for_cli = match parse_bool(&form, "for_stripecli") {
        Ok(b) => b.unwrap_or(false),
        Err(r) => return r,
    };
    let Some((body, answer)) = shared
        .stripe
        .events()
        .iter()
        .find(|e| e.id == id)
        .map(|r| (r.body.clone(), event_json(r)))
    else {
        return missing("event", &id);
    };
    let to = match form.get("webhook_endpoint") {
        Some(we) => match shared.stripe.endpoint(we) {
            Some(endpoint) => {
                let Some(slot) = shared.stripe.in_flight.try_slot(&endpoint.id) else {
                    return rate_limited();
                };
                crate::sandbox::delivery::Resend::Endpoint(Box::new(endpoint), slot)
            }
            None => return missing_param("webhook endpoint", "webhook_endpoint", we),
        },
        None if for_cli => crate::sandbox::delivery::Resend::Listeners,
        None => {
            return invalid(
                "parameter_missing",
                Some("webhook_endpoint"),
                "Missing required param: webhook_endpoint.",
            );
        }
    };
    crate::sandbox::delivery::resend(&shared, &id, body, to);
    axum::Json(answer).into_response()
}
