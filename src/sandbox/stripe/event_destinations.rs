//! `/v2/core/event_destinations` (create, list, retrieve, update, enable, disable, delete,
//! ping), shaped as stripe-node 23's `V2.Core.EventDestination` declares them, and the
//! delivery of an `amazon_eventbridge` destination's events to EventBridge as Stripe does it
//! (Stripe's "Send events to Amazon EventBridge" guide):
//!
//! - on create, Stripe makes a partner event source named `aws.partner/stripe.com/{ed_id}` in
//!   the AWS account and region the destination names (`CreatePartnerEventSource`); the account
//!   associates it with an event bus of the same name within 7 days;
//! - each event is one `PutPartnerEvents` entry: `Source` the partner event source,
//!   `DetailType` the event type, `Detail` the event as a webhook would carry it (snapshot, at
//!   the destination's `snapshot_api_version`) or the thin notification;
//! - delete removes the partner event source (`DeletePartnerEventSource`).
//!
//! The sandbox plays the partner against the AWS endpoint it is given (`--aws-endpoint-url`, an
//! emulator): the real AWS accepts partner calls from Stripe's own account only. Without one,
//! no source can be made and the destination is `disabled` with reason
//! `no_aws_event_source_exists`, as Stripe reports a destination whose source is gone. Thin
//! destinations get the thin events the sandbox makes (`thin.rs`: the meter error reports) and
//! their pings. `webhook_endpoint`
//! destinations are refused (the sandbox's webhooks are `/v1/webhook_endpoints`).

use std::collections::HashMap;

use tokio::sync::Mutex as AsyncMutex;

use super::*;
use crate::aws::AwsTarget;
use crate::aws::eventbridge::{EventBridge, PartnerEntry};

const OBJECT: &str = "v2.core.event_destination";
/// Destinations an account may have. Stripe publishes no number for event destinations; a
/// webhook endpoint is one of them in Workbench, and "you can register up to 16 webhook
/// endpoints on each Stripe account" (docs.stripe.com/development/dashboard/webhooks), so the
/// sandbox holds its destinations to the same 16.
pub const MAX_DESTINATIONS: usize = 16;
/// `events_from` scopes, as stripe-node 23 documents `V2.Core.EventDestination.events_from`.
const EVENTS_FROM: [&str; 4] = [
    "@self",
    "@accounts",
    "@organization_members",
    "@organization_members/@accounts",
];
/// The AWS Regions (commercial partition) as AWS lists them ("Regions and Availability Zones",
/// docs.aws.amazon.com/global-infrastructure/latest/regions); EventBridge is in each. A
/// destination in another region is refused, so no client is made for an invented one.
pub const AWS_REGIONS: [&str; 37] = [
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "eusc-de-east-1",
];
/// Stripe's partner name in EventBridge: sources are `aws.partner/stripe.com/…`.
pub const PARTNER_PREFIX: &str = "aws.partner/stripe.com/";

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Destination {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled_events: Vec<String>,
    pub event_payload: String,
    pub events_from: Vec<String>,
    pub metadata: serde_json::Map<String, Value>,
    pub snapshot_api_version: Option<String>,
    pub enabled: bool,
    /// Why it is disabled (`user`, `no_aws_event_source_exists`).
    pub disabled_reason: Option<String>,
    pub aws_account_id: String,
    pub aws_region: String,
    /// Empty when no partner event source could be made.
    pub aws_event_source_arn: String,
    pub created: String,
    pub updated: String,
}

impl Destination {
    pub fn source_name(&self) -> String {
        format!("{PARTNER_PREFIX}{}", self.id)
    }

    /// Whether an event of `event_type` (of a connected account when `connected`) goes here:
    /// `@self` takes the account's own events, `@accounts` those of connected accounts.
    fn wants(&self, event_type: &str, connected: bool) -> bool {
        self.takes("snapshot", event_type, connected)
    }

    /// Whether an event of `event_type` with this payload style goes here.
    fn takes(&self, payload: &str, event_type: &str, connected: bool) -> bool {
        let scope = if connected { "@accounts" } else { "@self" };
        self.enabled
            && self.event_payload == payload
            && self.events_from.iter().any(|s| s == scope)
            && self
                .enabled_events
                .iter()
                .any(|e| e == "*" || e == event_type)
    }

    fn to_json(&self, livemode: bool, source_status: &str) -> Value {
        let mut v = json!({
            "id": self.id,
            "object": OBJECT,
            "amazon_eventbridge": {
                "aws_account_id": self.aws_account_id,
                "aws_event_source_arn": self.aws_event_source_arn,
                "aws_event_source_status": source_status,
            },
            "created": self.created,
            "description": self.description,
            "enabled_events": self.enabled_events,
            "event_payload": self.event_payload,
            "events_from": self.events_from,
            "livemode": livemode,
            "metadata": self.metadata,
            "name": self.name,
            "status": if self.enabled { "enabled" } else { "disabled" },
            "type": "amazon_eventbridge",
            "updated": self.updated,
        });
        if let Some(version) = &self.snapshot_api_version {
            v["snapshot_api_version"] = Value::String(version.clone());
        }
        if let Some(reason) = &self.disabled_reason {
            v["status_details"] = json!({"disabled": {"reason": reason}});
        }
        v
    }
}

/// The account's event destinations and the EventBridge clients that deliver them.
#[derive(Default)]
pub struct Destinations {
    all: Mutex<Vec<Destination>>,
    /// Where partner calls go (an emulator); `None`: nowhere.
    endpoint: RwLock<Option<String>>,
    clients: AsyncMutex<HashMap<String, EventBridge>>,
}

impl Destinations {
    pub fn restore(saved: Vec<Destination>) -> Self {
        Self {
            all: Mutex::new(saved),
            ..Default::default()
        }
    }

    pub fn set_endpoint(&self, endpoint: Option<String>) {
        *self.endpoint.write().unwrap_or_else(|e| e.into_inner()) = endpoint;
    }

    /// Where partner calls go, if anywhere.
    pub fn endpoint(&self) -> Option<String> {
        self.endpoint
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether a destination takes thin events of `event_type`.
    pub fn take_thin(&self, event_type: &str) -> bool {
        self.lock()
            .iter()
            .any(|d| d.takes("thin", event_type, false))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Destination>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn saved(&self) -> Vec<Destination> {
        self.lock().clone()
    }

    fn get(&self, id: &str) -> Option<Destination> {
        self.lock().iter().find(|d| d.id == id).cloned()
    }

    fn change(&self, id: &str, f: impl FnOnce(&mut Destination)) -> Option<Destination> {
        let mut all = self.lock();
        let d = all.iter_mut().find(|d| d.id == id)?;
        f(d);
        d.updated = now();
        Some(d.clone())
    }

    async fn client(&self, region: &str) -> Option<EventBridge> {
        let endpoint = self.endpoint()?;
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(region) {
            return Some(c.clone());
        }
        let target = AwsTarget {
            region: region.to_owned(),
            endpoint_url: Some(endpoint),
            profile: None,
        };
        let client = EventBridge::connect(&target).await;
        clients.insert(region.to_owned(), client.clone());
        Some(client)
    }

    /// The source's state as `aws_event_source_status` names it: `active` once an event bus
    /// associates it. The sandbox reads that from the account (in an emulator the partner and
    /// the account are one); `unknown` when AWS does not answer.
    async fn source_status(&self, d: &Destination) -> &'static str {
        if d.aws_event_source_arn.is_empty() {
            return "deleted";
        }
        let Some(client) = self.client(&d.aws_region).await else {
            return "unknown";
        };
        match client.event_bus_arn(&d.source_name()).await {
            Ok(Some(_)) => "active",
            Ok(None) => "pending",
            Err(_) => "unknown",
        }
    }

    async fn render(&self, d: &Destination, livemode: bool) -> Value {
        let status = self.source_status(d).await;
        d.to_json(livemode, status)
    }
}

fn now() -> String {
    crate::timestamp::rfc3339_now()
}

/// Every destination that takes this event, as `PutPartnerEvents` entries (the event's bytes as
/// `body` carries them, at each destination's pinned version), delivered in the background.
pub fn publish(shared: &Arc<Shared>, event: &Value, body: &Arc<str>) {
    let event_type = event["type"].as_str().unwrap_or_default();
    let connected = event.get("account").is_some_and(|a| !a.is_null());
    let wanted: Vec<Destination> = shared
        .stripe
        .destinations
        .lock()
        .iter()
        .filter(|d| d.wants(event_type, connected))
        .cloned()
        .collect();
    for d in wanted {
        let detail = match &d.snapshot_api_version {
            Some(v) if event["api_version"].as_str() != Some(v.as_str()) => {
                let mut rendered = event.clone();
                rendered["api_version"] = Value::String(v.clone());
                crate::webhook::to_wire(&rendered)
            }
            _ => body.to_string(),
        };
        let entry = PartnerEntry {
            source: d.source_name(),
            detail_type: event_type.to_owned(),
            detail,
            time: event["created"]
                .as_i64()
                .unwrap_or_else(crate::timestamp::unix_now),
        };
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        tokio::spawn(deliver(shared.clone(), id, d, entry));
    }
}

/// Every thin destination that takes this thin event (the account's own: the sandbox makes no
/// v2 events of connected accounts), as `PutPartnerEvents` entries whose `Detail` is the
/// notification, delivered in the background.
pub fn publish_thin(shared: &Arc<Shared>, event: &Value, notification: &str) {
    let event_type = event["type"].as_str().unwrap_or_default();
    let wanted: Vec<Destination> = shared
        .stripe
        .destinations
        .lock()
        .iter()
        .filter(|d| d.takes("thin", event_type, false))
        .cloned()
        .collect();
    for d in wanted {
        let entry = PartnerEntry {
            source: d.source_name(),
            detail_type: event_type.to_owned(),
            detail: notification.to_owned(),
            time: crate::timestamp::unix_now(),
        };
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        tokio::spawn(deliver(shared.clone(), id, d, entry));
    }
}

/// Puts one event, retried with the sandbox's delivery policy; each attempt is recorded on the
/// event (`GET /v1/events/{id}`) under the destination's id.
async fn deliver(shared: Arc<Shared>, event_id: String, d: Destination, entry: PartnerEntry) {
    let Some(client) = shared.stripe.destinations.client(&d.aws_region).await else {
        return;
    };
    let policy = shared.delivery;
    for attempt in 1..=policy.attempts.max(1) {
        let (status, error) = match client
            .put_partner_events(std::slice::from_ref(&entry))
            .await
        {
            Ok((0, _)) => (Some(200), None),
            Ok((_, reason)) => (None, Some(reason.unwrap_or_else(|| "refused".into()))),
            Err(e) => (None, Some(e)),
        };
        let delivered = status.is_some();
        tracing::debug!(event = %event_id, destination = %d.id, attempt, ?error, "EventBridge delivery");
        shared.stripe.record_attempt(
            &event_id,
            Attempt {
                endpoint: d.id.clone(),
                url: d.aws_event_source_arn.clone(),
                attempt,
                status,
                error,
                at: crate::timestamp::unix_now(),
            },
            delivered,
        );
        shared.stripe_touched();
        if delivered {
            return;
        }
        if attempt < policy.attempts {
            tokio::time::sleep(policy.backoff.saturating_mul(1 << (attempt - 1).min(16))).await;
        }
    }
}

// The handlers. v2 takes JSON bodies and answers v2 lists (`data`, `next_page_url`,
// `previous_page_url`); errors keep Stripe's `{"error": {type, code, message}}`.

fn json_body(raw: &Value) -> std::result::Result<serde_json::Map<String, Value>, Response> {
    match raw {
        Value::Object(m) => Ok(m.clone()),
        _ => Err(invalid(
            "invalid_json",
            None,
            "The request body must be a JSON object.",
        )),
    }
}

fn strings(value: &Value, param: &str) -> std::result::Result<Vec<String>, Response> {
    let items = value.as_array().map(|a| {
        a.iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
    });
    match items {
        Some(Some(list)) if !list.is_empty() => Ok(list),
        _ => Err(invalid(
            "parameter_invalid",
            Some(param),
            &format!("{param} must be a non-empty array of strings"),
        )),
    }
}

fn required<'a>(
    m: &'a serde_json::Map<String, Value>,
    param: &str,
) -> std::result::Result<&'a Value, Response> {
    m.get(param).filter(|v| !v.is_null()).ok_or_else(|| {
        invalid(
            "parameter_missing",
            Some(param),
            &format!("Missing required param: {param}."),
        )
    })
}

fn text(v: &Value, param: &str) -> std::result::Result<String, Response> {
    v.as_str().map(str::to_owned).ok_or_else(|| {
        invalid(
            "parameter_invalid",
            Some(param),
            &format!("{param} must be a string"),
        )
    })
}

/// Which catalogue an `event_payload` checks `enabled_events` against.
fn payload_kind(payload: &str) -> validate::Payload {
    if payload == "thin" {
        validate::Payload::Thin
    } else {
        validate::Payload::Snapshot
    }
}

fn metadata(v: Option<&Value>) -> serde_json::Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

const CREATE_PARAMS: [&str; 11] = [
    "enabled_events",
    "event_payload",
    "name",
    "type",
    "amazon_eventbridge",
    "description",
    "events_from",
    "include",
    "metadata",
    "snapshot_api_version",
    "webhook_endpoint",
];

pub(super) async fn create(State(shared): S, call: Call) -> Response {
    let m = try_answer!(json_body(&call.raw));
    if let Some(unknown) = m.keys().find(|k| !CREATE_PARAMS.contains(&k.as_str())) {
        return invalid(
            "parameter_unknown",
            Some(unknown),
            &format!("Received unknown parameter: {unknown}"),
        );
    }
    let kind = try_answer!(text(try_answer!(required(&m, "type")), "type"));
    if kind != "amazon_eventbridge" {
        return invalid(
            "parameter_invalid",
            Some("type"),
            &format!(
                "the sandbox makes event destinations of type amazon_eventbridge only, not {kind:?} \
                 (its webhook endpoints are /v1/webhook_endpoints)"
            ),
        );
    }
    let name = try_answer!(text(try_answer!(required(&m, "name")), "name"));
    let payload = try_answer!(text(
        try_answer!(required(&m, "event_payload")),
        "event_payload"
    ));
    if !matches!(payload.as_str(), "snapshot" | "thin") {
        return invalid(
            "parameter_invalid",
            Some("event_payload"),
            "event_payload must be snapshot or thin",
        );
    }
    try_answer!(validate::max_chars("name", &name, validate::MAX_STRING));
    if let Some(d) = m.get("description").and_then(Value::as_str) {
        try_answer!(validate::max_chars("description", d, validate::MAX_STRING));
    }
    try_answer!(validate::metadata(
        m.get("metadata").unwrap_or(&Value::Null)
    ));
    let enabled_events = try_answer!(strings(
        try_answer!(required(&m, "enabled_events")),
        "enabled_events"
    ));
    try_answer!(validate::enabled_events(
        &enabled_events,
        payload_kind(&payload)
    ));
    let version = match m.get("snapshot_api_version").filter(|v| !v.is_null()) {
        Some(_) if payload == "thin" => {
            return invalid(
                "parameter_invalid",
                Some("snapshot_api_version"),
                "snapshot_api_version is for snapshot events only",
            );
        }
        Some(v) => {
            let v = try_answer!(text(v, "snapshot_api_version"));
            try_answer!(validate::api_version("snapshot_api_version", &v));
            Some(v)
        }
        None if payload == "snapshot" => Some(shared.api_version.clone()),
        None => None,
    };
    let aws = try_answer!(required(&m, "amazon_eventbridge"));
    let account = aws["aws_account_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return invalid(
            "parameter_invalid",
            Some("amazon_eventbridge[aws_account_id]"),
            "aws_account_id must be the 12 digits of an AWS account",
        );
    }
    let Some(region) = aws["aws_region"].as_str().filter(|r| !r.is_empty()) else {
        return invalid(
            "parameter_missing",
            Some("amazon_eventbridge[aws_region]"),
            "Missing required param: amazon_eventbridge[aws_region].",
        );
    };
    if !AWS_REGIONS.contains(&region) {
        return invalid(
            "parameter_invalid",
            Some("amazon_eventbridge[aws_region]"),
            "aws_region must be an AWS Region (us-east-1, eu-west-1, …)",
        );
    }
    let events_from = match m.get("events_from").filter(|v| !v.is_null()) {
        Some(v) => try_answer!(strings(v, "events_from")),
        None => vec!["@self".to_owned()],
    };
    if let Some((i, _)) = events_from
        .iter()
        .enumerate()
        .find(|(_, e)| !EVENTS_FROM.contains(&e.as_str()))
    {
        return invalid(
            "parameter_invalid",
            Some(&format!("events_from[{i}]")),
            &format!(
                "events_from must name scopes among {}",
                EVENTS_FROM.join(", ")
            ),
        );
    }
    if shared.stripe.destinations.lock().len() >= MAX_DESTINATIONS {
        return invalid(
            "event_destination_limit_reached",
            None,
            &format!(
                "You have reached the maximum of {MAX_DESTINATIONS} event destinations on this \
                 account. Delete a destination you no longer need to add another."
            ),
        );
    }
    let created = now();
    let mut d = Destination {
        id: format!("ed_test_{}", secret::random_alnum(40)),
        name,
        description: m
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        enabled_events,
        event_payload: payload,
        events_from,
        metadata: metadata(m.get("metadata")),
        snapshot_api_version: version,
        enabled: true,
        disabled_reason: None,
        aws_account_id: account,
        aws_region: region.to_owned(),
        aws_event_source_arn: String::new(),
        created: created.clone(),
        updated: created,
    };
    let destinations = &shared.stripe.destinations;
    let made = match destinations.client(region).await {
        Some(client) => client
            .create_partner_event_source(&d.source_name(), &d.aws_account_id)
            .await
            .map_err(|e| e.to_string()),
        None => Err(
            "the sandbox was given no --aws-endpoint-url to play Stripe's partner \
                     account against"
                .to_owned(),
        ),
    };
    match made {
        Ok(arn) => d.aws_event_source_arn = arn,
        Err(why) => {
            shared.out.warn(format!(
                "event destination {}: no partner event source made ({why}); it is disabled",
                d.id
            ));
            d.enabled = false;
            d.disabled_reason = Some("no_aws_event_source_exists".into());
        }
    }
    {
        // Checked again under the lock: concurrent creates must not pass the cap together.
        let mut all = destinations.lock();
        if all.len() >= MAX_DESTINATIONS {
            drop(all);
            return invalid(
                "event_destination_limit_reached",
                None,
                &format!("You have reached the maximum of {MAX_DESTINATIONS} event destinations."),
            );
        }
        all.push(d.clone());
    }
    shared.stripe_touched();
    axum::Json(destinations.render(&d, shared.livemode()).await).into_response()
}

pub(super) async fn list(State(shared): S, call: Call) -> Response {
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

pub(super) async fn retrieve(
    State(shared): S,
    UrlPath(id): UrlPath<String>,
    _call: Call,
) -> Response {
    match shared.stripe.destinations.get(&id) {
        Some(d) => axum::Json(
            shared
                .stripe
                .destinations
                .render(&d, shared.livemode())
                .await,
        )
        .into_response(),
        None => not_found(&id),
    }
}

const UPDATE_PARAMS: [&str; 5] = [
    "description",
    "enabled_events",
    "include",
    "metadata",
    "name",
];

pub(super) async fn update(State(shared): S, UrlPath(id): UrlPath<String>, call: Call) -> Response {
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

pub(super) async fn enable(
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

pub(super) async fn disable(
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

pub(super) async fn delete(
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
pub(super) async fn ping(State(shared): S, UrlPath(id): UrlPath<String>, _call: Call) -> Response {
    let Some(d) = shared.stripe.destinations.get(&id) else {
        return not_found(&id);
    };
    let event = json!({
        "id": super::thin::new_event_id(shared.livemode()),
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
