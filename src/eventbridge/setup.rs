//! `eventbridge setup`: the plan (pure, on what `observe` read), then each step in order, each
//! idempotent: the destination at Stripe, the wait for its partner event source, the partner
//! event bus, and per target the dead-letter queue, the queue with its redrive policy, the
//! rule, the queue policy that lets the rule send, and the rule's target.

use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::BridgeOptions;
use super::design::{self, Design, MARK, PARTNER_PREFIX, TargetDesign};
use super::observe::{
    Clients, Observed, SeenTarget, aws, design_of, destination_events, observe, redrive_of,
    strip_source,
};
use crate::aws::eventbridge::EventSource;
use crate::aws::plan::Plan;
use crate::error::{Error, Result};
use crate::printer::{Printer, Report};

const MESSAGE_RETENTION_14_DAYS: &str = "1209600";

/// Observes and plans setup.
pub async fn setup_plan(c: &Clients, opts: &BridgeOptions) -> Result<(Design, Observed, Plan)> {
    let design = design_of(opts)?;
    let seen = observe(c, opts, &design).await?;
    let plan = plan(opts, &design, &seen);
    Ok((design, seen, plan))
}

/// What setup would do, step by step; a step already true is shown as skipped. Pure.
pub fn plan(opts: &BridgeOptions, design: &Design, seen: &Observed) -> Plan {
    let mut p = Plan::new(&opts.env.name);
    let region = &opts.env.region;
    match &seen.destination {
        None => p.step(format!(
            "create the Stripe event destination {:?} (amazon_eventbridge, {} payload, {} in {region}; events: {})",
            design.names.destination,
            opts.payload,
            opts.account.as_deref().unwrap_or("the credentials' account"),
            design.enabled_events.join(", ")
        )),
        Some(d) => {
            let id = d["id"].as_str().unwrap_or("?");
            if destination_events(d) != design.enabled_events {
                p.step(format!(
                    "update {id}'s enabled events to {}",
                    design.enabled_events.join(", ")
                ));
            } else {
                p.skip(format!("event destination {id} enables the right events"));
            }
            if d["status"] == "disabled" {
                p.step(format!("enable event destination {id}"));
            }
        }
    }
    let source = seen
        .source_name()
        .unwrap_or_else(|| format!("{PARTNER_PREFIX}<the new destination's id>"));
    match &seen.source {
        Some(_) => p.skip(format!("partner event source {source} exists")),
        None => p.step(format!("wait for Stripe's partner event source {source}")),
    }
    match &seen.bus {
        Some(_) => p.skip(format!("partner event bus {source} associates it")),
        None => p.step(format!(
            "create the partner event bus {source} (associates the source)"
        )),
    }
    for (t, s) in design.targets.iter().zip(&seen.targets) {
        plan_target(&mut p, opts, t, s);
    }
    p
}

fn plan_target(p: &mut Plan, opts: &BridgeOptions, t: &TargetDesign, s: &SeenTarget) {
    let n = &t.names;
    let mark = |exists: bool, what: String, p: &mut Plan| {
        if exists {
            p.skip(format!("{what} exists"));
        } else {
            p.step(format!("create {what}"));
        }
    };
    mark(
        s.dlq_url.is_some(),
        format!("dead-letter queue {}", n.dlq),
        p,
    );
    mark(s.queue_url.is_some(), format!("queue {}", n.queue), p);
    let redrive_ok = redrive_of(&s.queue).is_some_and(|(arn, max)| {
        Some(&arn) == s.dlq_arn.as_ref() && max == u64::from(opts.max_receives)
    });
    if s.queue_url.is_some() && !redrive_ok {
        p.step(format!(
            "set {}'s redrive policy: {} after {} receives",
            n.queue, n.dlq, opts.max_receives
        ));
    }
    match &s.rule {
        Some(r) if r.pattern.as_ref().map(strip_source) == Some(t.pattern.clone()) => {
            p.skip(format!("rule {} routes {}", n.rule, t.pattern))
        }
        Some(_) => p.step(format!("update rule {}'s pattern to {}", n.rule, t.pattern)),
        None => p.step(format!("create rule {} with pattern {}", n.rule, t.pattern)),
    }
    let policy_ok = s.rule.as_ref().is_some_and(|r| {
        design::policy_allows(s.queue.get("Policy").and_then(Value::as_str), &r.arn)
    });
    if policy_ok {
        p.skip(format!("{}'s policy lets the rule send", n.queue));
    } else {
        p.step(format!(
            "let rule {} send to {} (queue policy)",
            n.rule, n.queue
        ));
    }
    let arn = s.queue.get("QueueArn").and_then(Value::as_str);
    if arn.is_some_and(|a| s.rule_targets.iter().any(|(_, t)| t == a)) {
        p.skip(format!("rule {} targets {}", n.rule, n.queue));
    } else {
        p.step(format!("make {} the target of rule {}", n.queue, n.rule));
    }
}

fn mark_tags(env: &str) -> Map<String, Value> {
    Map::from_iter([(MARK.to_owned(), Value::String(env.to_owned()))])
}

pub(super) fn rule_description(env: &str) -> String {
    format!("made by stripe-ops eventbridge setup for {MARK}={env}")
}

/// What setup made, for the report and a deploy script.
#[derive(Debug, Clone, Serialize)]
pub struct TargetOutcome {
    pub name: String,
    pub url: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub rule: String,
    pub pattern: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct SetupReport {
    pub env: String,
    pub destination: String,
    pub event_source: String,
    pub event_bus: String,
    pub targets: Vec<TargetOutcome>,
    pub plan: Plan,
}

impl Report for SetupReport {
    fn json(&self) -> Value {
        json!({"ok": true, "env": self.env, "destination": self.destination,
               "event_source": self.event_source, "event_bus": self.event_bus,
               "targets": self.targets, "plan": self.plan})
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        let mut lines = vec![
            format!(
                "eventbridge for {}: destination {}",
                self.env, self.destination
            ),
            format!("  partner event bus {}", self.event_bus),
        ];
        for t in &self.targets {
            lines.push(format!(
                "  {}: queue {} (dead letters {})",
                t.name, t.queue_url, t.dlq_url
            ));
            lines.push(format!(
                "    stripe-ops fanout --from-sqs {} --target {}={} --target-secret-file {}=FILE",
                t.queue_url, t.name, t.url, t.name
            ));
        }
        lines
    }
}

/// The destination setup wants: created, or brought to the design.
async fn ensure_destination(
    c: &Clients,
    opts: &BridgeOptions,
    design: &Design,
    seen: &Observed,
    out: &Printer,
) -> Result<Value> {
    let Some(d) = &seen.destination else {
        let account = match &opts.account {
            Some(a) => a.clone(),
            None => c.events.caller_account().await.map_err(aws)?,
        };
        let mut params = json!({
            "name": design.names.destination,
            "description": format!("stripe-ops eventbridge setup for {}", opts.env.name),
            "type": "amazon_eventbridge",
            "event_payload": opts.payload,
            "enabled_events": design.enabled_events,
            "amazon_eventbridge": {"aws_account_id": account, "aws_region": opts.env.region},
            "metadata": {MARK: opts.env.name},
        });
        if let (Some(v), "snapshot") = (&opts.api_version, opts.payload.as_str()) {
            params["snapshot_api_version"] = Value::String(v.clone());
        }
        let made = c.stripe.create_event_destination(&params).await?;
        out.status(format!(
            "created event destination {}",
            made["id"].as_str().unwrap_or("?")
        ));
        return Ok(made);
    };
    let id = d["id"].as_str().unwrap_or_default();
    if d["event_payload"].as_str() != Some(opts.payload.as_str()) {
        return Err(Error::usage(format!(
            "event destination {id} delivers {} events and Stripe cannot change that: run \
             `stripe-ops eventbridge teardown --env {}` first",
            d["event_payload"].as_str().unwrap_or("?"),
            opts.env.name
        )));
    }
    let mut d = d.clone();
    if destination_events(&d) != design.enabled_events {
        d = c
            .stripe
            .update_event_destination(id, &json!({"enabled_events": design.enabled_events}))
            .await?;
        out.status(format!("updated {id}'s enabled events"));
    }
    if d["status"] == "disabled" {
        let reason = d["status_details"]["disabled"]["reason"]
            .as_str()
            .unwrap_or("");
        if reason != "user" && !reason.is_empty() {
            return Err(Error::external(format!(
                "event destination {id} was disabled by Stripe ({reason}): its partner event \
                 source is gone (never associated within 7 days, or deleted). Run `stripe-ops \
                 eventbridge teardown --env {}` and set it up again",
                opts.env.name
            )));
        }
        d = c.stripe.enable_event_destination(id).await?;
        out.status(format!("enabled event destination {id}"));
    }
    Ok(d)
}

/// Waits for the partner event source Stripe makes, within `wait` (each call bounded by what
/// is left of it).
async fn wait_for_source(c: &Clients, name: &str, opts: &BridgeOptions) -> Result<EventSource> {
    let deadline = Instant::now() + opts.wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let seen = tokio::time::timeout(left, c.events.describe_event_source(name)).await;
        match seen {
            Ok(Ok(Some(s))) if s.state == "DELETED" => {
                return Err(Error::external(format!(
                    "partner event source {name} is DELETED (not associated within 7 days, or \
                     the destination was deleted): tear down and set up again"
                )));
            }
            Ok(Ok(Some(s))) => return Ok(s),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => return Err(aws(e)),
            Err(_) => {}
        }
        if Instant::now() + opts.poll >= deadline {
            return Err(Error::external(format!(
                "Stripe's partner event source {name} did not appear in the account within {}",
                crate::duration::human(opts.wait)
            )));
        }
        tokio::time::sleep(opts.poll).await;
    }
}

pub async fn apply(
    c: &Clients,
    opts: &BridgeOptions,
    design: &Design,
    seen: Observed,
    plan: Plan,
    out: &Printer,
) -> Result<SetupReport> {
    let d = ensure_destination(c, opts, design, &seen, out).await?;
    let id = d["id"].as_str().unwrap_or_default().to_owned();
    let source = format!("{PARTNER_PREFIX}{id}");
    wait_for_source(c, &source, opts).await?;
    let bus = match c.events.event_bus_arn(&source).await.map_err(aws)? {
        Some(arn) => arn,
        None => {
            let arn = c
                .events
                .create_partner_bus(&source, &[(MARK, &opts.env.name)])
                .await
                .map_err(aws)?;
            out.status(format!("associated {source} with its partner event bus"));
            arn
        }
    };
    let mut targets = Vec::new();
    for t in &design.targets {
        targets.push(apply_target(c, opts, t, &source, out).await?);
    }
    Ok(SetupReport {
        env: opts.env.name.clone(),
        destination: id,
        event_source: source,
        event_bus: bus,
        targets,
        plan,
    })
}

async fn apply_target(
    c: &Clients,
    opts: &BridgeOptions,
    t: &TargetDesign,
    source: &str,
    out: &Printer,
) -> Result<TargetOutcome> {
    let n = &t.names;
    let tags = mark_tags(&opts.env.name);
    let dlq_url = match c.sqs.queue_url(&n.dlq).await.map_err(aws)? {
        Some(u) => u,
        None => {
            let attrs = Map::from_iter([(
                "MessageRetentionPeriod".to_owned(),
                Value::from(MESSAGE_RETENTION_14_DAYS),
            )]);
            c.sqs
                .create_queue(&n.dlq, &attrs, &tags)
                .await
                .map_err(aws)?
        }
    };
    let dlq_arn = queue_arn(c, &dlq_url).await?;
    let redrive = design::redrive(&dlq_arn, opts.max_receives);
    let queue_url = match c.sqs.queue_url(&n.queue).await.map_err(aws)? {
        Some(u) => {
            let attrs = c
                .sqs
                .attributes(&u, &["RedrivePolicy"])
                .await
                .map_err(aws)?;
            if redrive_of(&attrs) != Some((dlq_arn.clone(), u64::from(opts.max_receives))) {
                let set = Map::from_iter([("RedrivePolicy".to_owned(), Value::from(redrive))]);
                c.sqs.set_attributes(&u, &set).await.map_err(aws)?;
            }
            u
        }
        None => {
            let attrs = Map::from_iter([
                ("RedrivePolicy".to_owned(), Value::from(redrive)),
                (
                    "VisibilityTimeout".to_owned(),
                    Value::from(opts.visibility.as_secs().to_string()),
                ),
            ]);
            c.sqs
                .create_queue(&n.queue, &attrs, &tags)
                .await
                .map_err(aws)?
        }
    };
    let arn = queue_arn(c, &queue_url).await?;
    let pattern = t.pattern_for(source);
    let bus = opts.rules_on(source);
    let rule_arn = c
        .events
        .put_rule(
            &n.rule,
            bus,
            &pattern,
            &rule_description(&opts.env.name),
            &[(MARK, &opts.env.name)],
        )
        .await
        .map_err(aws)?;
    let policy = c
        .sqs
        .attributes(&queue_url, &["Policy"])
        .await
        .map_err(aws)?;
    if !design::policy_allows(policy.get("Policy").and_then(Value::as_str), &rule_arn) {
        let doc = design::queue_policy(&arn, &rule_arn).to_string();
        let set = Map::from_iter([("Policy".to_owned(), Value::from(doc))]);
        c.sqs.set_attributes(&queue_url, &set).await.map_err(aws)?;
    }
    let targets = c.events.targets(&n.rule, bus).await.map_err(aws)?;
    if !targets.iter().any(|(_, a)| *a == arn) {
        c.events
            .put_target(&n.rule, bus, "sqs", &arn)
            .await
            .map_err(aws)?;
    }
    out.status(format!("{}: rule {} -> {}", t.name, n.rule, queue_url));
    Ok(TargetOutcome {
        name: t.name.clone(),
        url: t.url.clone(),
        queue_url,
        dlq_url,
        rule: n.rule.clone(),
        pattern,
    })
}

async fn queue_arn(c: &Clients, url: &str) -> Result<String> {
    let a = c.sqs.attributes(url, &["QueueArn"]).await.map_err(aws)?;
    a.get("QueueArn")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Error::external(format!("SQS named no QueueArn for {url}")))
}
