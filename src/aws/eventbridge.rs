//! Amazon EventBridge through its JSON protocol (`X-Amz-Target: AWSEvents.<Action>`,
//! `Content-Type: application/x-amz-json-1.1`; the EventBridge API reference), each call one
//! signed POST (`aws::signed`), like SQS in `aws::sqs`. Two sides:
//!
//! - the account's (`eventbridge setup|status|teardown`): the partner event source Stripe made,
//!   the partner event bus that associates it, rules and their targets;
//! - the partner's (the sandbox playing Stripe): `CreatePartnerEventSource` in the account a
//!   destination names, `PutPartnerEvents`, `DeletePartnerEventSource`.

use std::time::Duration;

use serde_json::{Value, json};

use aws_config::SdkConfig;

use super::AwsTarget;
use super::signed::{CallError, JsonService, Signed};

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// At most 20 entries per `PutPartnerEvents` call (the API reference's `Entries` limit).
pub const MAX_PARTNER_ENTRIES: usize = 20;

/// A partner event source as the account sees it (`DescribeEventSource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSource {
    pub arn: String,
    /// `PENDING` until an event bus associates it, then `ACTIVE`; `DELETED` when the partner
    /// deleted it or it expired unassociated.
    pub state: String,
}

/// A rule as `DescribeRule` answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub arn: String,
    pub pattern: Option<Value>,
    pub description: String,
    pub state: String,
}

/// One event a partner puts (`PutPartnerEventsRequestEntry`).
#[derive(Debug, Clone)]
pub struct PartnerEntry {
    pub source: String,
    pub detail_type: String,
    /// The event, as JSON text.
    pub detail: String,
    /// Seconds since the epoch.
    pub time: i64,
}

#[derive(Clone)]
pub struct EventBridge {
    signed: Signed,
    region: String,
}

impl EventBridge {
    pub async fn connect(target: &AwsTarget) -> EventBridge {
        Self::new(&super::sdk_config(target).await, target)
    }

    pub fn new(config: &SdkConfig, target: &AwsTarget) -> EventBridge {
        EventBridge {
            signed: Signed::with_timeout(config, target.endpoint_url.clone(), CALL_TIMEOUT),
            region: target.region.clone(),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    async fn call(&self, action: &str, body: Value) -> Result<Value, CallError> {
        let endpoint = format!("https://events.{}.amazonaws.com", self.region);
        let service = JsonService {
            service: "events",
            label: "EventBridge",
            region: &self.region,
            endpoint: &endpoint,
            target_prefix: "AWSEvents",
            content_type: "application/x-amz-json-1.1",
        };
        self.signed.json(&service, action, &body).await
    }

    /// `None` when the call answered that the resource does not exist.
    async fn maybe(&self, action: &str, body: Value) -> Result<Option<Value>, String> {
        match self.call(action, body).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(e.message),
        }
    }

    pub async fn describe_event_source(&self, name: &str) -> Result<Option<EventSource>, String> {
        let answer = self
            .maybe("DescribeEventSource", json!({"Name": name}))
            .await?;
        Ok(answer.map(|a| EventSource {
            arn: a["Arn"].as_str().unwrap_or_default().to_owned(),
            state: a["State"].as_str().unwrap_or("UNKNOWN").to_owned(),
        }))
    }

    /// The bus's ARN, `None` when there is no bus of that name.
    pub async fn event_bus_arn(&self, name: &str) -> Result<Option<String>, String> {
        let answer = self
            .maybe("DescribeEventBus", json!({"Name": name}))
            .await?;
        Ok(answer.and_then(|a| a["Arn"].as_str().map(str::to_owned)))
    }

    /// A partner event bus: named after the partner event source it associates.
    pub async fn create_partner_bus(
        &self,
        source: &str,
        tags: &[(&str, &str)],
    ) -> Result<String, String> {
        let answer = self
            .call(
                "CreateEventBus",
                json!({"Name": source, "EventSourceName": source, "Tags": aws_tags(tags)}),
            )
            .await?;
        Ok(answer["EventBusArn"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    pub async fn delete_event_bus(&self, name: &str) -> Result<(), String> {
        self.maybe("DeleteEventBus", json!({"Name": name}))
            .await
            .map(|_| ())
    }

    pub async fn describe_rule(&self, name: &str, bus: &str) -> Result<Option<Rule>, String> {
        let answer = self
            .maybe("DescribeRule", json!({"Name": name, "EventBusName": bus}))
            .await?;
        Ok(answer.map(|a| Rule {
            arn: a["Arn"].as_str().unwrap_or_default().to_owned(),
            pattern: a["EventPattern"]
                .as_str()
                .and_then(|p| serde_json::from_str(p).ok()),
            description: a["Description"].as_str().unwrap_or_default().to_owned(),
            state: a["State"].as_str().unwrap_or_default().to_owned(),
        }))
    }

    /// The names of the bus's rules that start with `prefix`.
    pub async fn rule_names(&self, bus: &str, prefix: &str) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({"EventBusName": bus, "NamePrefix": prefix, "Limit": 100});
            if let Some(t) = &token {
                body["NextToken"] = Value::String(t.clone());
            }
            let Some(answer) = self.maybe("ListRules", body).await? else {
                return Ok(names);
            };
            names.extend(
                answer["Rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["Name"].as_str().map(str::to_owned)),
            );
            token = answer["NextToken"].as_str().map(str::to_owned);
            if token.is_none() {
                return Ok(names);
            }
        }
    }

    /// Creates or replaces the rule (enabled); returns its ARN.
    pub async fn put_rule(
        &self,
        name: &str,
        bus: &str,
        pattern: &Value,
        description: &str,
        tags: &[(&str, &str)],
    ) -> Result<String, String> {
        let answer = self
            .call(
                "PutRule",
                json!({"Name": name, "EventBusName": bus, "EventPattern": pattern.to_string(),
                       "State": "ENABLED", "Description": description, "Tags": aws_tags(tags)}),
            )
            .await?;
        Ok(answer["RuleArn"].as_str().unwrap_or_default().to_owned())
    }

    /// The rule's targets: `(Id, Arn)`.
    pub async fn targets(&self, rule: &str, bus: &str) -> Result<Vec<(String, String)>, String> {
        let answer = self
            .maybe(
                "ListTargetsByRule",
                json!({"Rule": rule, "EventBusName": bus}),
            )
            .await?;
        Ok(answer
            .iter()
            .flat_map(|a| a["Targets"].as_array().cloned().unwrap_or_default())
            .filter_map(|t| Some((t["Id"].as_str()?.to_owned(), t["Arn"].as_str()?.to_owned())))
            .collect())
    }

    pub async fn put_target(
        &self,
        rule: &str,
        bus: &str,
        id: &str,
        arn: &str,
    ) -> Result<(), String> {
        let answer = self
            .call(
                "PutTargets",
                json!({"Rule": rule, "EventBusName": bus, "Targets": [{"Id": id, "Arn": arn}]}),
            )
            .await?;
        match answer["FailedEntryCount"].as_u64() {
            Some(n) if n > 0 => Err(format!(
                "EventBridge PutTargets refused the target: {}",
                answer["FailedEntries"]
            )),
            _ => Ok(()),
        }
    }

    /// Removes the rule's targets, then the rule (a rule with targets cannot be deleted).
    pub async fn delete_rule(&self, rule: &str, bus: &str) -> Result<(), String> {
        let ids: Vec<String> = self
            .targets(rule, bus)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        if !ids.is_empty() {
            self.call(
                "RemoveTargets",
                json!({"Rule": rule, "EventBusName": bus, "Ids": ids}),
            )
            .await?;
        }
        self.maybe("DeleteRule", json!({"Name": rule, "EventBusName": bus}))
            .await
            .map(|_| ())
    }

    // The partner's side.

    /// Creates the partner event source `name` in `account`; returns its ARN.
    pub async fn create_partner_event_source(
        &self,
        name: &str,
        account: &str,
    ) -> Result<String, String> {
        let answer = self
            .call(
                "CreatePartnerEventSource",
                json!({"Name": name, "Account": account}),
            )
            .await?;
        Ok(answer["EventSourceArn"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    pub async fn delete_partner_event_source(
        &self,
        name: &str,
        account: &str,
    ) -> Result<(), String> {
        self.maybe(
            "DeletePartnerEventSource",
            json!({"Name": name, "Account": account}),
        )
        .await
        .map(|_| ())
    }

    /// Puts up to 20 events; returns how many EventBridge refused, with the first reason.
    pub async fn put_partner_events(
        &self,
        entries: &[PartnerEntry],
    ) -> Result<(u64, Option<String>), String> {
        let entries: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({"Source": e.source, "DetailType": e.detail_type, "Detail": e.detail,
                       "Time": e.time, "Resources": []})
            })
            .collect();
        let answer = self
            .call("PutPartnerEvents", json!({"Entries": entries}))
            .await?;
        let failed = answer["FailedEntryCount"].as_u64().unwrap_or(0);
        let reason = answer["Entries"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|e| e["ErrorMessage"].as_str().map(str::to_owned));
        Ok((failed, reason))
    }
}

fn aws_tags(tags: &[(&str, &str)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}
