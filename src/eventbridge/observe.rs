//! What exists for an environment's EventBridge path, read from Stripe (the destination marked
//! with the environment) and from AWS (the partner event source and bus, each target's queue,
//! dead-letter queue, rule and its targets), and the clients that read it.

use std::time::Duration;

use serde_json::{Map, Value};

use super::BridgeOptions;
use super::design::{self, Design, MARK, PARTNER_PREFIX, TargetDesign};
use crate::aws::eventbridge::{EventBridge, EventSource, Rule};
use crate::aws::sqs::Sqs;
use crate::aws::sts::Sts;
use crate::aws::{AwsTarget, sdk_config};
use crate::error::{Error, Result};
use crate::stripe_api::StripeClient;

pub struct Clients {
    pub(super) stripe: StripeClient,
    pub(super) events: EventBridge,
    pub(super) sqs: Sqs,
    pub(super) sts: Sts,
}

impl Clients {
    pub async fn connect(opts: &BridgeOptions) -> Result<Clients> {
        let target = AwsTarget {
            region: opts.env.region.clone(),
            endpoint_url: opts.env.aws_endpoint_url.clone(),
            profile: opts.profile.clone(),
        };
        let config = sdk_config(&target).await;
        Ok(Clients {
            stripe: StripeClient::new(
                &opts.env.stripe_api_base,
                opts.stripe_key.clone(),
                Duration::from_secs(30),
            )?,
            events: EventBridge::new(&config, &target),
            sqs: Sqs::new(&config, &target),
            sts: Sts::new(&config, &target),
        })
    }
}

pub(super) fn aws(e: String) -> Error {
    Error::external(e)
}

/// What exists for one target.
#[derive(Debug, Clone, Default)]
pub struct SeenTarget {
    pub queue_url: Option<String>,
    pub queue: Map<String, Value>,
    pub dlq_url: Option<String>,
    pub dlq_arn: Option<String>,
    pub rule: Option<Rule>,
    pub rule_targets: Vec<(String, String)>,
}

/// What exists, at Stripe and in AWS.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub destination: Option<Value>,
    /// More than one destination carries this environment's mark.
    pub duplicates: Vec<String>,
    pub source: Option<EventSource>,
    pub bus: Option<String>,
    pub targets: Vec<SeenTarget>,
}

impl Observed {
    pub fn source_name(&self) -> Option<String> {
        self.destination
            .as_ref()
            .and_then(|d| d["id"].as_str())
            .map(|id| format!("{PARTNER_PREFIX}{id}"))
    }
}

/// The destinations this environment's setup made (by `metadata.stripe-ops-env`), newest
/// first.
pub(super) async fn marked_destinations(c: &Clients, env: &str) -> Result<Vec<Value>> {
    let mut all: Vec<Value> = c
        .stripe
        .list_event_destinations()
        .await?
        .into_iter()
        .filter(|d| d["type"] == "amazon_eventbridge" && d["metadata"][MARK] == env)
        .collect();
    all.sort_by(|a, b| b["created"].as_str().cmp(&a["created"].as_str()));
    Ok(all)
}

pub async fn observe(c: &Clients, opts: &BridgeOptions, design: &Design) -> Result<Observed> {
    let mut marked = marked_destinations(c, &opts.env.name).await?;
    let mut seen = Observed {
        duplicates: marked
            .iter()
            .skip(1)
            .filter_map(|d| d["id"].as_str().map(str::to_owned))
            .collect(),
        destination: (!marked.is_empty()).then(|| marked.remove(0)),
        ..Default::default()
    };
    if let Some(source) = seen.source_name() {
        seen.source = c.events.describe_event_source(&source).await.map_err(aws)?;
        seen.bus = c.events.event_bus_arn(&source).await.map_err(aws)?;
    }
    for t in &design.targets {
        let bus = seen.bus.as_ref().and(seen.source_name());
        let rules = bus.as_deref().map(|b| opts.rules_on(b));
        seen.targets.push(observe_target(c, t, rules).await?);
    }
    Ok(seen)
}

pub(super) async fn observe_target(
    c: &Clients,
    t: &TargetDesign,
    bus: Option<&str>,
) -> Result<SeenTarget> {
    let mut seen = SeenTarget {
        queue_url: c.sqs.queue_url(&t.names.queue).await.map_err(aws)?,
        dlq_url: c.sqs.queue_url(&t.names.dlq).await.map_err(aws)?,
        ..Default::default()
    };
    if let Some(url) = &seen.queue_url {
        seen.queue = c
            .sqs
            .attributes(url, &["QueueArn", "RedrivePolicy", "Policy"])
            .await
            .map_err(aws)?;
    }
    if let Some(url) = &seen.dlq_url {
        let a = c.sqs.attributes(url, &["QueueArn"]).await.map_err(aws)?;
        seen.dlq_arn = a["QueueArn"].as_str().map(str::to_owned);
    }
    if let Some(bus) = bus {
        seen.rule = c
            .events
            .describe_rule(&t.names.rule, bus)
            .await
            .map_err(aws)?;
        if seen.rule.is_some() {
            seen.rule_targets = c.events.targets(&t.names.rule, bus).await.map_err(aws)?;
        }
    }
    Ok(seen)
}

pub(super) fn redrive_of(attrs: &Map<String, Value>) -> Option<(String, u64)> {
    let doc: Value = serde_json::from_str(attrs.get("RedrivePolicy")?.as_str()?).ok()?;
    let max = doc["maxReceiveCount"]
        .as_u64()
        .or_else(|| doc["maxReceiveCount"].as_str()?.parse().ok())?;
    Some((doc["deadLetterTargetArn"].as_str()?.to_owned(), max))
}

pub(super) fn destination_events(d: &Value) -> Vec<String> {
    let mut v: Vec<String> = d["enabled_events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect();
    v.sort();
    v
}

pub(super) fn strip_source(pattern: &Value) -> Value {
    let mut p = pattern.clone();
    if let Some(m) = p.as_object_mut() {
        m.remove("source");
    }
    p
}

/// The design for the options' targets.
pub fn design_of(opts: &BridgeOptions) -> Result<Design> {
    let types: Vec<&str> = opts.types.iter().map(String::as_str).collect();
    design::design(&opts.env.prefix, &opts.targets, &types).map_err(Error::usage)
}
