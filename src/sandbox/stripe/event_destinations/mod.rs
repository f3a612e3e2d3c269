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
//!
//! Its parts: here the destinations and their store; `delivery` (events put to EventBridge);
//! the handlers, `create` and `manage` (the others), which take JSON bodies (`params`) and
//! answer v2 lists (`data`, `next_page_url`, `previous_page_url`); errors keep Stripe's
//! `{"error": {type, code, message}}`.

use std::collections::HashMap;

use tokio::sync::Mutex as AsyncMutex;

use super::*;
use crate::aws::AwsTarget;
use crate::aws::eventbridge::{EventBridge, PartnerEntry};

mod create;
mod delivery;
mod manage;
mod params;

pub(super) use create::create;
pub use delivery::{publish, publish_thin};
pub(super) use manage::{delete, disable, enable, list, ping, retrieve, update};

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
