//! Billing meters and their usage, v1 and v2 (stripe-node 23's `Billing.Meter`,
//! `Billing.MeterEvent`, `Billing.MeterEventAdjustment`, `Billing.MeterEventSummary`,
//! `V2.Billing.MeterEventSession`, `V2.Billing.MeterEvent`, `V2.Billing.MeterEventAdjustment`):
//!
//! - a meter's `event_name` is unique on the account ("meter event names must be unique",
//!   stripe/stripe-cli#1470, whose fixtures expect the second create of one to fail);
//!   deactivate / reactivate move `status` and `status_transitions.deactivated_at`;
//! - a meter event, from `/v1/billing/meter_events`, `/v2/billing/meter_events` or the stream
//!   (`/v2/billing/meter_event_stream`, authenticated by a meter event session's token, valid 15
//!   minutes), is answered at once and processed after ("Stripe processes meter events
//!   asynchronously", docs.stripe.com/billing/subscriptions/usage-based/recording-usage-api): one
//!   whose `event_name` no meter has is reported as the thin event
//!   `v1.billing.meter.no_meter_found`, one a meter refuses (inactive, no customer in the
//!   payload key its `customer_mapping` names, an unknown customer, a value that is not a whole
//!   number, a timestamp more than 35 days old or 5 minutes ahead) as
//!   `v1.billing.meter.error_report_triggered` about that meter, each with the `data` stripe-node
//!   declares (`reason.error_types[].code` from its `ErrorType.Code`). Stripe gathers errors over
//!   a window; the sandbox reports each event at once, `validation_start` = `validation_end`.
//! - the event's `identifier` makes it idempotent: a second event with one already counted is
//!   not counted again; an adjustment of `type: cancel` takes the event it names out;
//! - `GET /v1/billing/meters/{id}/event_summaries` aggregates a customer's events in
//!   `[start_time, end_time)` by the meter's formula (`sum`, `count`, `last`), whole or by
//!   `value_grouping_window` (`hour`, `day`); the times must fall on minute boundaries (the API
//!   reference's `start_time` and `end_time`).

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use crate::sandbox::Shared;
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};
use crate::sandbox::stripe::thin;

/// The stream's path: its calls carry a session's token, not the key (`Call` asks `authorize`).
pub const STREAM_PATH: &str = "/v2/billing/meter_event_stream";
/// "Authentication tokens are only valid for 15 minutes" (stripe-node's
/// `MeterEventSessionResource.create`).
const SESSION_SECS: i64 = 15 * 60;
/// "Make sure the timestamp is within the past 35 calendar days and isn't more than 5 minutes in
/// the future" (recording-usage-api, Event timestamps).
const PAST_LIMIT_SECS: i64 = 35 * 24 * 3600;
const FUTURE_LIMIT_SECS: i64 = 5 * 60;
/// Where the sandbox keeps a session's expiry (the token is the note's id) and a meter's usage.
const SESSION_NOTE: &str = "meter_event_session_expires";
const USAGE_NOTE: &str = "meter_usage";

pub struct Meters;

impl Behaviour for Meters {
    fn object(&self) -> &'static str {
        "billing.meter"
    }
    fn actions(&self) -> &'static [&'static str] {
        &["deactivate", "reactivate"]
    }
    fn create(&self, ctx: &Ctx, meter: &mut Value) -> ApiResult<()> {
        let name = meter["event_name"].as_str().unwrap_or_default();
        if !ctx
            .store()
            .all("billing.meter", &|m| m["event_name"] == name)
            .is_empty()
        {
            return Err(ApiError::invalid(
                "parameter_invalid",
                Some("event_name"),
                &format!("A meter with event_name `{name}` already exists."),
            ));
        }
        meter["updated"] = meter["created"].clone();
        Ok(())
    }
    fn update(&self, ctx: &Ctx, before: &Value, meter: &mut Value) -> ApiResult<()> {
        if meter != before {
            meter["updated"] = json!(ctx.now());
        }
        Ok(())
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        let (status, deactivated, event) = match ctx.op {
            "deactivate" => ("inactive", json!(ctx.now()), "billing.meter.deactivated"),
            "reactivate" => ("active", Value::Null, "billing.meter.reactivated"),
            _ => return None,
        };
        Some(ctx.target().map(|before| {
            let mut meter = before.clone();
            if meter["status"] != status {
                meter["status"] = json!(status);
                meter["status_transitions"]["deactivated_at"] = deactivated;
                meter["updated"] = json!(ctx.now());
                ctx.put(&meter);
                ctx.emit(event, &meter, None);
            }
            meter
        }))
    }
}

pub struct MeterEvents;

impl Behaviour for MeterEvents {
    fn object(&self) -> &'static str {
        "billing.meter_event"
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        (ctx.op == "create").then(|| {
            let usage = Usage::of(ctx, ctx.int_param("timestamp"))?;
            let answer = json!({
                "object": "billing.meter_event",
                "created": ctx.now(),
                "event_name": usage.event_name,
                "identifier": usage.identifier,
                "livemode": ctx.shared.livemode(),
                "payload": usage.payload,
                "timestamp": usage.timestamp,
            });
            ingest(ctx, usage);
            Ok(answer)
        })
    }
}

pub struct MeterEventAdjustments;

impl Behaviour for MeterEventAdjustments {
    fn object(&self) -> &'static str {
        "billing.meter_event_adjustment"
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        (ctx.op == "create").then(|| adjustment(ctx, None))
    }
}

pub struct EventSummaries;

impl Behaviour for EventSummaries {
    fn object(&self) -> &'static str {
        "billing.meter_event_summary"
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        (ctx.op == "list").then(|| summaries(ctx))
    }
}

pub struct Sessions;

impl Behaviour for Sessions {
    fn object(&self) -> &'static str {
        "v2.billing.meter_event_session"
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        (ctx.op == "create").then(|| {
            let now = ctx.now();
            // Stripe's docs show the token as `token_12345678` and the id as a placeholder.
            let token = format!("token_{}", crate::secret::random_alnum(40));
            ctx.shared.stripe.objects.platform().set_private(
                &token,
                SESSION_NOTE,
                json!(now + SESSION_SECS),
            );
            Ok(json!({
                "id": format!("mtrses_{}", crate::secret::random_alnum(24)),
                "object": "v2.billing.meter_event_session",
                "authentication_token": token,
                "created": rfc3339(now),
                "expires_at": rfc3339(now + SESSION_SECS),
                "livemode": ctx.shared.livemode(),
            }))
        })
    }
}

pub struct V2MeterEvents;

impl Behaviour for V2MeterEvents {
    fn object(&self) -> &'static str {
        "v2.billing.meter_event"
    }
    fn actions(&self) -> &'static [&'static str] {
        &["stream"]
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        match ctx.op {
            "create" => Some(
                v2_event(ctx, &Value::Object(ctx.params.clone()), "").map(|u| {
                    let answer = json!({
                        "object": "v2.billing.meter_event",
                        "created": rfc3339(ctx.now()),
                        "event_name": u.event_name,
                        "identifier": u.identifier,
                        "livemode": ctx.shared.livemode(),
                        "payload": u.payload,
                        "timestamp": rfc3339(u.timestamp),
                    });
                    ingest(ctx, u);
                    answer
                }),
            ),
            // The stream answers `{}` once the events are taken (the OpenAPI spec's 200 response
            // of `POST /v2/billing/meter_event_stream`); each is processed as any meter event.
            "stream" => Some((|| {
                let events = ctx.param("events").and_then(Value::as_array);
                let mut taken = Vec::new();
                for (i, e) in events.into_iter().flatten().enumerate() {
                    taken.push(v2_event(ctx, e, &format!("events[{i}].")).map_err(v2_error)?);
                }
                taken.into_iter().for_each(|u| ingest(ctx, u));
                Ok(json!({}))
            })()),
            _ => None,
        }
    }
}

pub struct V2MeterEventAdjustments;

impl Behaviour for V2MeterEventAdjustments {
    fn object(&self) -> &'static str {
        "v2.billing.meter_event_adjustment"
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        // Stripe's docs show the id as a placeholder; the prefix is the sandbox's own.
        let id = format!("mtradj_{}", crate::secret::random_alnum(24));
        (ctx.op == "create").then(|| adjustment(ctx, Some(id)))
    }
}

/// A stream call's credential: the token of a meter event session that has not expired (on
/// the sandbox's clock). An expired one is Stripe's 401 `temporary_session_expired`, which
/// stripe-node turns into its `TemporarySessionExpiredError`.
pub fn authorize_stream(shared: &Shared, headers: &HeaderMap) -> ApiResult<()> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let expires = shared
        .stripe
        .objects
        .platform()
        .private(token, SESSION_NOTE)
        .and_then(|v| v.as_i64());
    match expires {
        Some(at) if shared.stripe.now() < at => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "temporary_session_expired",
            Some("billing_meter_event_session_expired"),
            None,
            "The meter event session has expired. Create a new meter event session.",
        )),
        None => Err(ApiError::unauthorized(
            "Invalid authentication token: use the authentication_token of a meter event \
             session (POST /v2/billing/meter_event_session).",
        )),
    }
}

/// One meter event as given, before a meter looks at it.
struct Usage {
    event_name: String,
    identifier: String,
    payload: Map<String, Value>,
    timestamp: i64,
}

impl Usage {
    fn of(ctx: &Ctx, timestamp: Option<i64>) -> ApiResult<Usage> {
        Ok(Usage {
            event_name: ctx.str_param("event_name").unwrap_or_default().to_owned(),
            identifier: ctx
                .str_param("identifier")
                .map_or_else(new_identifier, str::to_owned),
            payload: ctx
                .param("payload")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            timestamp: timestamp.unwrap_or_else(|| ctx.now()),
        })
    }
}

/// A v2 meter event (`timestamp` in RFC 3339), from the body or one of the stream's `events`.
fn v2_event(ctx: &Ctx, e: &Value, at: &str) -> ApiResult<Usage> {
    let timestamp = match e["timestamp"].as_str() {
        None => ctx.now(),
        Some(t) => crate::timestamp::parse_rfc3339(t).map_err(|_| {
            ApiError::invalid(
                "parameter_invalid",
                Some(&format!("{at}timestamp")),
                &format!("Invalid timestamp: {t}. It must be an RFC 3339 date-time."),
            )
        })?,
    };
    Ok(Usage {
        event_name: e["event_name"].as_str().unwrap_or_default().to_owned(),
        identifier: e["identifier"]
            .as_str()
            .map_or_else(new_identifier, str::to_owned),
        payload: e["payload"].as_object().cloned().unwrap_or_default(),
        timestamp,
    })
}

/// API v2's error object has `type`, `code`, `message` and `doc_url` (the OpenAPI spec's
/// `v2.error`), no `param`.
fn v2_error(mut e: ApiError) -> ApiError {
    e.error.shift_remove("param");
    e
}

/// An identifier Stripe would make for an event sent without one (a UUID, as the CLI's
/// fixtures make theirs).
fn new_identifier() -> String {
    use rand::TryRngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random number generator works");
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn rfc3339(unix: i64) -> String {
    crate::timestamp::rfc3339_millis(unix * 1000)
}

/// What a meter refuses in an event: the code of stripe-node's `ErrorType.Code` and why.
fn refusal(ctx: &Ctx, meter: &Value, u: &Usage) -> Option<(&'static str, String)> {
    let now = ctx.now();
    if meter["status"] != "active" {
        return Some(("archived_meter", "The meter is inactive.".into()));
    }
    if u.timestamp > now + FUTURE_LIMIT_SECS {
        return Some((
            "timestamp_in_future",
            "The timestamp is more than 5 minutes in the future.".into(),
        ));
    }
    if u.timestamp < now - PAST_LIMIT_SECS {
        return Some((
            "timestamp_too_far_in_past",
            "The timestamp is more than 35 days in the past.".into(),
        ));
    }
    let key = meter["customer_mapping"]["event_payload_key"]
        .as_str()
        .unwrap_or_default();
    let Some(customer) = u.payload.get(key).and_then(Value::as_str) else {
        return Some((
            "meter_event_no_customer_defined",
            format!("The payload has no `{key}`, the meter's customer mapping."),
        ));
    };
    let known = ctx
        .store()
        .get_of("customer", customer)
        .is_some_and(|c| c["deleted"] != true);
    if !known {
        return Some((
            "meter_event_customer_not_found",
            format!("No such customer: '{customer}'"),
        ));
    }
    if meter["default_aggregation"]["formula"] != "count" && value(meter, u).is_none() {
        let key = meter["value_settings"]["event_payload_key"]
            .as_str()
            .unwrap_or_default();
        return Some((
            "meter_event_invalid_value",
            format!("The payload's `{key}` must be a whole number."),
        ));
    }
    None
}

/// The event's value under the meter's `value_settings` key: a whole number ("The numerical
/// usage value in the payload only accepts whole number values").
fn value(meter: &Value, u: &Usage) -> Option<i64> {
    let key = meter["value_settings"]["event_payload_key"].as_str()?;
    u.payload.get(key)?.as_str()?.trim().parse().ok()
}

/// Processes an accepted meter event: counted on its meter, or reported as a thin event.
fn ingest(ctx: &Ctx, u: Usage) {
    let meter = ctx
        .store()
        .all("billing.meter", &|m| {
            m["event_name"] == u.event_name.as_str()
        })
        .into_iter()
        .next();
    let Some(meter) = meter else {
        let message = format!("No meter has event_name `{}`.", u.event_name);
        thin::emit(
            ctx.shared,
            "v1.billing.meter.no_meter_found",
            None,
            error_report(ctx, "no_meter", &message, &u.identifier),
        );
        return;
    };
    let id = meter["id"].as_str().unwrap_or_default();
    if let Some((code, message)) = refusal(ctx, &meter, &u) {
        thin::emit(
            ctx.shared,
            "v1.billing.meter.error_report_triggered",
            Some(thin::related(
                id,
                "billing.meter",
                &format!("/v1/billing/meters/{id}"),
            )),
            error_report(ctx, code, &message, &u.identifier),
        );
        return;
    }
    let key = meter["customer_mapping"]["event_payload_key"]
        .as_str()
        .unwrap_or_default();
    let record = json!({
        "identifier": u.identifier,
        "customer": u.payload.get(key),
        "value": value(&meter, &u).unwrap_or(0),
        "timestamp": u.timestamp,
    });
    ctx.store().update_private(id, USAGE_NOTE, |usage| {
        if let Some(list) = usage.as_array_mut()
            && !list.iter().any(|e| e["identifier"] == record["identifier"])
        {
            list.push(record);
        }
    });
}

/// The `data` of `v1.billing.meter.error_report_triggered` and `.no_meter_found` for one event.
fn error_report(ctx: &Ctx, code: &str, message: &str, identifier: &str) -> Value {
    let at = thin::now(ctx.shared);
    json!({
        "developer_message_summary": format!("There is 1 invalid event: {message}"),
        "reason": {
            "error_count": 1,
            "error_types": [{
                "code": code,
                "error_count": 1,
                "sample_errors": [{"error_message": message, "request": {"identifier": identifier}}],
            }],
        },
        "validation_end": at,
        "validation_start": at,
    })
}

/// An adjustment (`type: cancel`): the event its `cancel[identifier]` names leaves its meter's
/// usage. Answered `pending`, as Stripe answers the create (it applies adjustments
/// asynchronously); a v2 one (`id` given) has its id and `created`.
fn adjustment(ctx: &Ctx, v2_id: Option<String>) -> ApiResult<Value> {
    let event_name = ctx.str_param("event_name").unwrap_or_default().to_owned();
    let identifier = ctx
        .param("cancel")
        .and_then(|c| c["identifier"].as_str())
        .ok_or_else(|| ApiError::missing_param("cancel[identifier]"))?
        .to_owned();
    for meter in ctx
        .store()
        .all("billing.meter", &|m| m["event_name"] == event_name.as_str())
    {
        let id = meter["id"].as_str().unwrap_or_default();
        ctx.store().update_private(id, USAGE_NOTE, |usage| {
            if let Some(list) = usage.as_array_mut() {
                list.retain(|e| e["identifier"] != identifier.as_str());
            }
        });
    }
    let mut answer = serde_json::Map::new();
    let object = match &v2_id {
        Some(id) => {
            answer.insert("id".into(), json!(id));
            "v2.billing.meter_event_adjustment"
        }
        None => "billing.meter_event_adjustment",
    };
    answer.insert("object".into(), json!(object));
    answer.insert("cancel".into(), json!({"identifier": identifier}));
    if v2_id.is_some() {
        answer.insert("created".into(), json!(rfc3339(ctx.now())));
    }
    answer.insert("event_name".into(), json!(event_name));
    answer.insert("livemode".into(), json!(ctx.shared.livemode()));
    answer.insert("status".into(), json!("pending"));
    answer.insert("type".into(), json!("cancel"));
    Ok(Value::Object(answer))
}

/// `GET /v1/billing/meters/{id}/event_summaries`.
fn summaries(ctx: &Ctx) -> ApiResult<Value> {
    let meter = ctx.get("billing.meter", &ctx.ids[0])?;
    let id = meter["id"].as_str().unwrap_or_default();
    let customer = ctx.str_param("customer").unwrap_or_default();
    let (start, end) = (
        ctx.int_param("start_time").unwrap_or(0),
        ctx.int_param("end_time").unwrap_or(0),
    );
    for (name, t) in [("start_time", start), ("end_time", end)] {
        if t % 60 != 0 {
            return Err(ApiError::invalid(
                "parameter_invalid",
                Some(name),
                &format!("{name} must be aligned with minute boundaries."),
            ));
        }
    }
    if start >= end {
        return Err(ApiError::invalid(
            "parameter_invalid",
            Some("end_time"),
            "end_time must be after start_time.",
        ));
    }
    let step = match ctx.str_param("value_grouping_window") {
        Some("hour") => 3600,
        Some("day") => 86_400,
        _ => end - start,
    };
    let usage = ctx
        .store()
        .private(id, USAGE_NOTE)
        .and_then(|u| u.as_array().cloned())
        .unwrap_or_default();
    let mine: Vec<&Value> = usage.iter().filter(|e| e["customer"] == customer).collect();
    let mut data = Vec::new();
    let mut from = start;
    while from < end {
        let to = (from + step).min(end);
        let window: Vec<&&Value> = mine
            .iter()
            .filter(|e| (from..to).contains(&e["timestamp"].as_i64().unwrap_or(0)))
            .collect();
        let value = |e: &&&Value| e["value"].as_i64().unwrap_or(0);
        let aggregated = match meter["default_aggregation"]["formula"].as_str() {
            Some("count") => window.len() as i64,
            Some("last") => window
                .iter()
                .max_by_key(|e| e["timestamp"].as_i64())
                .map_or(0, value),
            _ => window.iter().map(value).sum(),
        };
        data.push(json!({
            "id": format!("mtrusg_{}", crate::secret::random_alnum(24)),
            "object": "billing.meter_event_summary",
            "aggregated_value": aggregated,
            "end_time": to,
            "livemode": ctx.shared.livemode(),
            "meter": id,
            "start_time": from,
        }));
        from = to;
    }
    let limit = ctx.int_param("limit").unwrap_or(10).clamp(1, 100) as usize;
    let has_more = data.len() > limit;
    data.truncate(limit);
    Ok(json!({"object": "list", "data": data, "has_more": has_more, "url": ctx.call.path}))
}
