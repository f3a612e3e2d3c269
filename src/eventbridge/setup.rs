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
use crate::deploy::plan::Plan;
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
            None => c.sts.caller_account().await.map_err(aws)?,
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
        return match unusable(&made, opts) {
            Some(why) => Err(why),
            None => Ok(made),
        };
    };
    let id = d["id"].as_str().unwrap_or_default();
    if let Some(why) = unusable(d, opts) {
        return Err(why);
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
        d = c.stripe.enable_event_destination(id).await?;
        out.status(format!("enabled event destination {id}"));
    }
    Ok(d)
}

/// Why a destination cannot serve this environment and is not patched over: Stripe fixes its
/// payload style and its account and region at creation, and a destination Stripe disabled
/// because its partner event source is gone stays useless (Stripe's EventBridge guide: create
/// a new one). Pure.
pub fn unusable(d: &Value, opts: &BridgeOptions) -> Option<Error> {
    let id = d["id"].as_str().unwrap_or("?");
    let env = &opts.env.name;
    let again = format!("run `stripe-ops eventbridge teardown --env {env}` and set it up again");
    if d["event_payload"].as_str() != Some(opts.payload.as_str()) {
        return Some(Error::usage(format!(
            "event destination {id} delivers {} events and Stripe cannot change that: {again}",
            d["event_payload"].as_str().unwrap_or("?")
        )));
    }
    let aws = &d["amazon_eventbridge"];
    let region = aws["aws_event_source_arn"]
        .as_str()
        .and_then(|a| a.split(':').nth(3));
    if let Some(r) = region.filter(|r| !r.is_empty() && *r != opts.env.region) {
        return Some(Error::usage(format!(
            "event destination {id} puts events in {r}, not {}: {again}",
            opts.env.region
        )));
    }
    if let (Some(want), Some(has)) = (&opts.account, aws["aws_account_id"].as_str())
        && want != has
    {
        return Some(Error::usage(format!(
            "event destination {id} puts events in account {has}, not {want}: {again}"
        )));
    }
    let reason = d["status_details"]["disabled"]["reason"]
        .as_str()
        .unwrap_or("");
    if d["status"] == "disabled" && !reason.is_empty() && reason != "user" {
        return Some(Error::external(format!(
            "event destination {id} was disabled by Stripe ({reason}): its partner event source \
             is gone (never associated within 7 days, or deleted), or was never made; {again}"
        )));
    }
    None
}

/// Waits for the partner event source Stripe makes, within `wait` (each call bounded by what
/// is left of it). A failed call is tried again until then (AWS's `InternalException` is
/// retryable; moto answers a source it does not have with a 500) and named if the wait ends.
async fn wait_for_source(c: &Clients, name: &str, opts: &BridgeOptions) -> Result<EventSource> {
    let deadline = Instant::now() + opts.wait;
    let mut last_error = None;
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
            Ok(Ok(None)) | Err(_) => {}
            Ok(Err(e)) => last_error = Some(e),
        }
        if Instant::now() + opts.poll >= deadline {
            let last = last_error
                .map(|e| format!(" (last answer: {e})"))
                .unwrap_or_default();
            return Err(Error::external(format!(
                "Stripe's partner event source {name} did not appear in the account within {} \
                 (is the destination's AWS account this one?){last}",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> BridgeOptions {
        crate::eventbridge::status::tests_support::opts()
    }

    #[test]
    fn a_destination_in_another_region_account_or_payload_or_disabled_by_stripe_is_refused() {
        let o = opts();
        let d = |payload: &str, arn: &str, account: &str, status: Value| {
            let mut d = json!({"id": "ed_1", "event_payload": payload, "status": "enabled",
                "amazon_eventbridge": {"aws_event_source_arn": arn, "aws_account_id": account}});
            if !status.is_null() {
                d["status"] = json!("disabled");
                d["status_details"] = status;
            }
            d
        };
        let here = "arn:aws:events:us-east-1::event-source/aws.partner/stripe.com/ed_1";
        let fine = d("snapshot", here, "123456789012", Value::Null);
        assert!(unusable(&fine, &o).is_none());
        let by_user = d(
            "snapshot",
            here,
            "123456789012",
            json!({"disabled": {"reason": "user"}}),
        );
        assert!(
            unusable(&by_user, &o).is_none(),
            "setup enables what a person disabled"
        );
        let cases = [
            (d("thin", here, "123456789012", Value::Null), 2, "thin"),
            (
                d(
                    "snapshot",
                    &here.replace("us-east-1", "eu-west-1"),
                    "123456789012",
                    Value::Null,
                ),
                2,
                "eu-west-1",
            ),
            (
                d("snapshot", here, "210987654321", Value::Null),
                2,
                "210987654321",
            ),
            (
                d(
                    "snapshot",
                    "",
                    "123456789012",
                    json!({"disabled": {"reason": "no_aws_event_source_exists"}}),
                ),
                3,
                "no_aws_event_source_exists",
            ),
        ];
        for (dest, code, says) in cases {
            let e = unusable(&dest, &o).expect("refused");
            assert_eq!(e.exit.code(), code, "{}", e.message());
            assert!(
                e.message().contains(says) && e.message().contains("teardown"),
                "{}",
                e.message()
            );
        }
    }
}
