//! What `eventbridge setup` makes, worked out from the environment and the targets, before any
//! call: the names, each target's EventBridge event pattern (its `fanout` route, so routing
//! happens in EventBridge), the queue attributes and policies, the destination's enabled
//! events. Pure.
//!
//! Event patterns follow the EventBridge user guide ("Event patterns", "Content filtering"):
//! `detail-type` is the Stripe event type (Stripe's EventBridge guide), matched exactly, by
//! `prefix` for a glob ending in its only `*`, by `wildcard` otherwise (`*` only: EventBridge
//! has no one-character wildcard); a match on a dotted path is a nested object under `detail`
//! whose leaf lists the values. EventBridge compares JSON types (the string "500" does not
//! match the number 500) where `fanout` compares text, so a value that reads as a number or a
//! boolean is listed both ways. Array items cannot be addressed by index in a pattern (a
//! pattern on an array matches when any item matches), so such paths are refused.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::config::FanoutTarget;

/// Stripe's partner event sources are `aws.partner/stripe.com/{destination id}`.
pub const PARTNER_PREFIX: &str = "aws.partner/stripe.com/";
/// The tag (SQS) and metadata key (Stripe) that mark what setup made, with the env's name.
pub const MARK: &str = "stripe-ops-env";

/// The names of everything setup makes for an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// `{prefix}-stripe-`: every queue and rule starts with it.
    pub base: String,
    pub destination: String,
}

impl Names {
    pub fn new(prefix: &str) -> Names {
        let clean: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        Names {
            base: format!("{clean}-stripe-"),
            destination: format!("{clean} (stripe-ops eventbridge)"),
        }
    }

    /// SQS queue names are 1-80 of `A-Z a-z 0-9 - _`; rule names 1-64 of those and `.`.
    pub fn target(&self, name: &str) -> Result<TargetNames, String> {
        let clean: String = name
            .chars()
            .map(|c| if c == '.' { '_' } else { c })
            .collect();
        let queue = format!("{}{clean}", self.base);
        let names = TargetNames {
            dlq: format!("{queue}-dlq"),
            rule: queue.clone(),
            queue,
        };
        if names.dlq.len() > 80 || names.rule.len() > 64 {
            return Err(format!(
                "target {name}: the rule name {} is longer than EventBridge's 64 characters; \
                 use a shorter target name or prefix",
                names.rule
            ));
        }
        Ok(names)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetNames {
    pub queue: String,
    pub dlq: String,
    pub rule: String,
}

/// One target's part of the design.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetDesign {
    pub name: String,
    pub url: String,
    pub names: TargetNames,
    /// Without the `source`, which is known once the destination exists.
    pub pattern: Value,
}

impl TargetDesign {
    /// The pattern for the rule on the bus of `source`.
    pub fn pattern_for(&self, source: &str) -> Value {
        let mut p = self.pattern.clone();
        p["source"] = json!([source]);
        p
    }
}

/// The whole design: targets, and the event types the destination must enable.
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    pub names: Names,
    pub targets: Vec<TargetDesign>,
    pub enabled_events: Vec<String>,
}

/// The design for these targets; `types` is every event type Stripe sends (the catalogue), to
/// expand globs into the destination's `enabled_events`, which takes exact types or `*`.
pub fn design(prefix: &str, targets: &[FanoutTarget], types: &[&str]) -> Result<Design, String> {
    let names = Names::new(prefix);
    let mut designed = Vec::new();
    let mut enabled: BTreeSet<String> = BTreeSet::new();
    for t in targets {
        let matches: BTreeMap<String, Vec<String>> = t
            .matches
            .iter()
            .map(|(k, v)| (k.clone(), v.values()))
            .collect();
        let pattern =
            pattern(&t.events, &matches).map_err(|e| format!("target {}: {e}", t.name))?;
        if t.events.is_empty() || t.events.iter().any(|g| g == "*") {
            enabled.insert("*".into());
        }
        for glob in &t.events {
            let expanded = expand(glob, types);
            if expanded.is_empty() {
                return Err(format!(
                    "target {}: {glob:?} names no Stripe event type (see stripe-ops events list)",
                    t.name
                ));
            }
            enabled.extend(expanded);
        }
        designed.push(TargetDesign {
            name: t.name.clone(),
            url: t.url.clone(),
            names: names.target(&t.name)?,
            pattern,
        });
    }
    let enabled_events = if enabled.contains("*") {
        vec!["*".to_owned()]
    } else {
        enabled.into_iter().collect()
    };
    Ok(Design {
        names,
        targets: designed,
        enabled_events,
    })
}

fn expand(glob: &str, types: &[&str]) -> Vec<String> {
    if !glob.contains(['*', '?']) {
        return vec![glob.to_owned()];
    }
    let m = wildmatch::WildMatch::new(glob);
    types
        .iter()
        .filter(|t| m.matches(t))
        .map(|t| (*t).to_owned())
        .collect()
}

/// A route as an EventBridge event pattern (without `source`).
pub fn pattern(
    events: &[String],
    matches: &BTreeMap<String, Vec<String>>,
) -> Result<Value, String> {
    let mut p = Map::new();
    if !events.is_empty() && !events.iter().any(|g| g == "*") {
        let types = events
            .iter()
            .map(|g| type_filter(g))
            .collect::<Result<Vec<_>, _>>()?;
        p.insert("detail-type".into(), Value::Array(types));
    }
    let mut detail = Map::new();
    for (path, values) in matches {
        let keys: Vec<&str> = path.split('.').collect();
        if keys.iter().any(|k| k.bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!(
                "match path {path}: EventBridge patterns cannot pick an array item by index"
            ));
        }
        insert_path(&mut detail, &keys, leaf(values));
    }
    if !detail.is_empty() {
        p.insert("detail".into(), Value::Object(detail));
    }
    Ok(Value::Object(p))
}

fn type_filter(glob: &str) -> Result<Value, String> {
    if glob.contains('?') {
        return Err(format!(
            "{glob:?}: EventBridge has no one-character wildcard; use * or list the types"
        ));
    }
    let stars = glob.matches('*').count();
    Ok(match stars {
        0 => Value::String(glob.to_owned()),
        1 if glob.ends_with('*') => json!({"prefix": glob.trim_end_matches('*')}),
        _ => json!({"wildcard": glob}),
    })
}

/// The values a leaf may have: each as a string, and as a number or boolean when it reads as
/// one (`fanout` compares text; EventBridge compares JSON values).
fn leaf(values: &[String]) -> Value {
    let mut out = Vec::new();
    for v in values {
        out.push(Value::String(v.clone()));
        if let Ok(n) = serde_json::from_str::<serde_json::Number>(v) {
            out.push(Value::Number(n));
        } else if let Ok(b) = v.parse::<bool>() {
            out.push(Value::Bool(b));
        }
    }
    Value::Array(out)
}

fn insert_path(into: &mut Map<String, Value>, keys: &[&str], leaf: Value) {
    match keys {
        [] => {}
        [last] => {
            into.insert((*last).to_owned(), leaf);
        }
        [first, rest @ ..] => {
            let child = into
                .entry((*first).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = child {
                insert_path(m, rest, leaf);
            }
        }
    }
}

/// The queue policy that lets EventBridge send to the queue, from this rule only (the
/// EventBridge user guide, "Using resource-based policies for Amazon EventBridge": Amazon SQS
/// permissions, `aws:SourceArn` the rule).
pub fn queue_policy(queue_arn: &str, rule_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "stripe-ops-eventbridge",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
        }],
    })
}

/// Whether a queue's policy (its `Policy` attribute) lets `rule_arn` send to it.
pub fn policy_allows(policy: Option<&str>, rule_arn: &str) -> bool {
    let Some(doc) = policy.and_then(|p| serde_json::from_str::<Value>(p).ok()) else {
        return false;
    };
    let statements = match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => return false,
    };
    statements.iter().any(|s| {
        let service = &s["Principal"]["Service"];
        let from_events = service == "events.amazonaws.com"
            || service
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "events.amazonaws.com"));
        let action = &s["Action"];
        let sends = action == "sqs:SendMessage"
            || action == "sqs:*"
            || action
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "sqs:SendMessage" || v == "sqs:*"));
        let source = &s["Condition"]["ArnEquals"]["aws:SourceArn"];
        let scoped = source.is_null() || source == rule_arn;
        s["Effect"] == "Allow" && from_events && sends && scoped
    })
}

/// The redrive policy: after `max_receives` receives SQS moves a message to the DLQ.
pub fn redrive(dlq_arn: &str, max_receives: u32) -> String {
    json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OneOrMany;

    fn target(name: &str, events: &[&str], matches: &[(&str, &[&str])]) -> FanoutTarget {
        FanoutTarget {
            name: name.into(),
            url: format!("http://127.0.0.1:1/{name}"),
            events: events.iter().map(|s| s.to_string()).collect(),
            matches: matches
                .iter()
                .map(|(p, v)| {
                    (
                        p.to_string(),
                        OneOrMany::Many(v.iter().map(|s| s.to_string()).collect()),
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    const TYPES: [&str; 5] = [
        "checkout.session.completed",
        "checkout.session.expired",
        "invoice.paid",
        "invoice.payment_failed",
        "customer.created",
    ];

    #[test]
    fn a_route_becomes_an_event_pattern_on_detail_type_and_detail_paths() {
        let m = BTreeMap::from([
            (
                "data.object.metadata.siteOrigin".to_owned(),
                vec!["https://a.example".to_owned()],
            ),
            (
                "data.object.amount_total".to_owned(),
                vec!["500".to_owned()],
            ),
        ]);
        let p = pattern(
            &[
                "checkout.session.*".into(),
                "invoice.paid".into(),
                "*.payment_*".into(),
            ],
            &m,
        )
        .unwrap();
        assert_eq!(
            p,
            json!({
                "detail-type": [{"prefix": "checkout.session."}, "invoice.paid",
                                {"wildcard": "*.payment_*"}],
                "detail": {"data": {"object": {
                    "metadata": {"siteOrigin": ["https://a.example"]},
                    "amount_total": ["500", 500],
                }}},
            })
        );
        assert_eq!(pattern(&["*".into()], &BTreeMap::new()).unwrap(), json!({}));
        assert!(pattern(&["invoice.pai?".into()], &BTreeMap::new()).is_err());
        let by_index =
            BTreeMap::from([("data.object.items.0.price".to_owned(), vec!["p".to_owned()])]);
        assert!(pattern(&[], &by_index).unwrap_err().contains("index"));
    }

    #[test]
    fn the_destination_enables_the_expanded_types_or_everything() {
        let d = design(
            "shop-staging",
            &[
                target("billing", &["invoice.*"], &[]),
                target("orders", &["checkout.session.completed"], &[]),
            ],
            &TYPES,
        )
        .unwrap();
        assert_eq!(
            d.enabled_events,
            vec![
                "checkout.session.completed",
                "invoice.paid",
                "invoice.payment_failed"
            ]
        );
        assert_eq!(d.targets[0].names.queue, "shop-staging-stripe-billing");
        assert_eq!(d.targets[0].names.dlq, "shop-staging-stripe-billing-dlq");
        let open = design(
            "x",
            &[target("all", &[], &[]), target("b", &["invoice.paid"], &[])],
            &TYPES,
        )
        .unwrap();
        assert_eq!(open.enabled_events, vec!["*"]);
        let none = design("x", &[target("typo", &["invoce.*"], &[])], &TYPES).unwrap_err();
        assert!(none.contains("names no Stripe event type"), "{none}");
        let long = design("x", &[target(&"n".repeat(60), &[], &[])], &TYPES).unwrap_err();
        assert!(long.contains("64"), "{long}");
    }

    #[test]
    fn the_queue_policy_lets_the_rule_send_and_is_recognised() {
        let rule = "arn:aws:events:us-east-1:123456789012:rule/aws.partner/stripe.com/ed_1/x";
        let p = queue_policy("arn:aws:sqs:us-east-1:123456789012:q", rule).to_string();
        assert!(policy_allows(Some(&p), rule));
        assert!(!policy_allows(
            Some(&p),
            "arn:aws:events:us-east-1:1:rule/other"
        ));
        assert!(!policy_allows(None, rule));
        let broad = json!({"Statement": {"Effect": "Allow", "Action": ["sqs:*"],
            "Principal": {"Service": ["events.amazonaws.com"]}}})
        .to_string();
        assert!(policy_allows(Some(&broad), rule));
    }
}
