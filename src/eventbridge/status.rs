//! `eventbridge status`: every piece of the path judged (pure, on what `observe` read), with
//! what is missing said the way a person fixes it.

use serde::Serialize;
use serde_json::{Value, json};

use super::BridgeOptions;
use super::design::{self, Design, MARK, TargetDesign};
use super::observe::{
    Clients, Observed, SeenTarget, aws, design_of, destination_events, observe, observe_target,
    redrive_of, strip_source,
};
use crate::error::{Error, Result};
use crate::printer::{Printer, Report};

/// Every piece judged: the given targets' against their routes; without targets, those setup
/// made (found by their rules), each against its own rule's pattern.
pub async fn status(c: &Clients, opts: &BridgeOptions) -> Result<StatusReport> {
    let mut design = design_of(opts)?;
    let mut seen = observe(c, opts, &design).await?;
    if opts.targets.is_empty() {
        let source = seen.source_name();
        let bus = source.as_deref().map(|s| opts.rules_on(s));
        for name in discover(c, opts, &design, &seen).await? {
            let mut t = TargetDesign {
                names: design.names.target(&name).map_err(Error::usage)?,
                name,
                url: String::new(),
                pattern: Value::Null,
            };
            let s = observe_target(c, &t, bus).await?;
            t.pattern = s
                .rule
                .as_ref()
                .and_then(|r| r.pattern.as_ref())
                .map(strip_source)
                .unwrap_or_default();
            design.targets.push(t);
            seen.targets.push(s);
        }
    }
    Ok(status_report(opts, &design, &seen))
}

/// One piece and whether it is right.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Piece {
    pub what: String,
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub env: String,
    pub pieces: Vec<Piece>,
}

impl StatusReport {
    fn missing(&self) -> Vec<&Piece> {
        self.pieces.iter().filter(|p| !p.ok).collect()
    }
}

impl Report for StatusReport {
    fn json(&self) -> Value {
        json!({"ok": self.missing().is_empty(), "env": self.env, "pieces": self.pieces})
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        let mut lines = vec![format!("eventbridge for {}:", self.env)];
        for p in &self.pieces {
            let mark = if p.ok { "ok     " } else { "MISSING" };
            lines.push(format!("  {mark} {} {}: {}", p.what, p.name, p.detail));
        }
        lines
    }

    fn verdict(&self) -> Result<()> {
        let missing = self.missing();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::failed(format!(
            "{} piece(s) of {}'s EventBridge path missing or wrong: {}",
            missing.len(),
            self.env,
            missing
                .iter()
                .map(|p| format!("{} {} ({})", p.what, p.name, p.detail))
                .collect::<Vec<_>>()
                .join("; ")
        )))
    }
}

fn piece(what: &str, name: &str, ok: bool, detail: impl Into<String>) -> Piece {
    Piece {
        what: what.into(),
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// Every piece, judged. Pure, on what `observe` read.
pub fn judge(opts: &BridgeOptions, design: &Design, seen: &Observed) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let Some(d) = &seen.destination else {
        pieces.push(piece(
            "event destination",
            &design.names.destination,
            false,
            format!(
                "none at Stripe is marked {MARK}={}: run eventbridge setup",
                opts.env.name
            ),
        ));
        return pieces;
    };
    let id = d["id"].as_str().unwrap_or("?");
    let source_status = d["amazon_eventbridge"]["aws_event_source_status"]
        .as_str()
        .unwrap_or("unknown");
    let enabled = d["status"] == "enabled";
    let reason = d["status_details"]["disabled"]["reason"]
        .as_str()
        .unwrap_or("");
    pieces.push(piece(
        "event destination",
        id,
        enabled,
        if enabled {
            format!("enabled, events: {}", summary(&destination_events(d)))
        } else {
            format!("disabled ({reason})")
        },
    ));
    for dup in &seen.duplicates {
        pieces.push(piece(
            "event destination",
            dup,
            false,
            "another destination marked for this environment: each event goes through both",
        ));
    }
    if !opts.targets.is_empty() && destination_events(d) != design.enabled_events {
        pieces.push(piece(
            "enabled events",
            id,
            false,
            format!(
                "the targets' routes need {}",
                design.enabled_events.join(", ")
            ),
        ));
    }
    let source = seen.source_name().unwrap_or_default();
    let (source_ok, detail) = match (&seen.source, &seen.bus) {
        (None, _) => (
            false,
            "not in this account and region: Stripe has not made it, or it expired".to_owned(),
        ),
        (Some(s), _) if s.state == "DELETED" => {
            (false, "DELETED: set up a new destination".to_owned())
        }
        (Some(_), None) => (
            false,
            format!(
                "never associated: create its event bus within 7 days of {} (Stripe's guide), \
                 or AWS deletes it; Stripe says {source_status}",
                d["created"]
                    .as_str()
                    .unwrap_or("the destination's creation")
            ),
        ),
        (Some(s), Some(_)) => (true, format!("{} and associated", s.state)),
    };
    pieces.push(piece("partner event source", &source, source_ok, detail));
    pieces.push(piece(
        "partner event bus",
        &source,
        seen.bus.is_some(),
        seen.bus.clone().unwrap_or_else(|| "missing".into()),
    ));
    for (t, s) in design.targets.iter().zip(&seen.targets) {
        judge_target(&mut pieces, t, s);
    }
    pieces
}

/// A list of event types short enough for one line: the first five and how many more.
fn summary(types: &[String]) -> String {
    match types.len() {
        0..=5 => types.join(", "),
        n => format!("{} and {} more", types[..5].join(", "), n - 5),
    }
}

fn judge_target(pieces: &mut Vec<Piece>, t: &TargetDesign, s: &SeenTarget) {
    let n = &t.names;
    let Some(url) = &s.queue_url else {
        pieces.push(piece("queue", &n.queue, false, "missing"));
        return;
    };
    pieces.push(piece("queue", &n.queue, true, url.clone()));
    match redrive_of(&s.queue) {
        Some((arn, max)) => {
            let ok = s.dlq_arn.as_ref() == Some(&arn);
            pieces.push(piece(
                "dead-letter queue",
                &n.dlq,
                ok,
                if ok {
                    format!("after {max} receives")
                } else {
                    format!("the redrive policy names {arn}, which is not {}", n.dlq)
                },
            ));
        }
        None => pieces.push(piece(
            "dead-letter queue",
            &n.dlq,
            false,
            "the queue has no redrive policy: a message that always fails is retried for its whole retention",
        )),
    }
    let Some(rule) = &s.rule else {
        pieces.push(piece(
            "rule",
            &n.rule,
            false,
            "missing: nothing routes events to the queue",
        ));
        return;
    };
    let pattern_ok = rule.pattern.as_ref().map(strip_source) == Some(t.pattern.clone());
    pieces.push(piece(
        "rule",
        &n.rule,
        pattern_ok && rule.state == "ENABLED",
        if pattern_ok {
            format!("{} {}", rule.state, t.pattern)
        } else {
            format!(
                "pattern {} is not the route {}",
                rule.pattern.clone().unwrap_or_default(),
                t.pattern
            )
        },
    ));
    let arn = s
        .queue
        .get("QueueArn")
        .and_then(Value::as_str)
        .unwrap_or("");
    pieces.push(piece(
        "rule target",
        &n.rule,
        s.rule_targets.iter().any(|(_, a)| a == arn),
        format!("-> {arn}"),
    ));
    pieces.push(piece(
        "queue policy",
        &n.queue,
        design::policy_allows(s.queue.get("Policy").and_then(Value::as_str), &rule.arn),
        "lets the rule send (events.amazonaws.com, aws:SourceArn)",
    ));
}

/// The targets setup made, found by their rules on the bus when none are given.
pub async fn discover(
    c: &Clients,
    opts: &BridgeOptions,
    design: &Design,
    seen: &Observed,
) -> Result<Vec<String>> {
    let Some(source) = seen.source_name().filter(|_| seen.bus.is_some()) else {
        return Ok(Vec::new());
    };
    let rules = c
        .events
        .rule_names(opts.rules_on(&source), &design.names.base)
        .await
        .map_err(aws)?;
    Ok(rules
        .iter()
        .filter_map(|r| r.strip_prefix(&design.names.base).map(str::to_owned))
        .collect())
}

pub fn status_report(opts: &BridgeOptions, design: &Design, seen: &Observed) -> StatusReport {
    StatusReport {
        env: opts.env.name.clone(),
        pieces: judge(opts, design, seen),
    }
}

#[cfg(test)]
mod tests {
    //! Plan and judge on recorded shapes of Stripe's and AWS's answers.
    use serde_json::Map;

    use super::*;
    use crate::aws::eventbridge::{EventSource, Rule};
    use crate::eventbridge::setup::plan;

    fn opts() -> BridgeOptions {
        tests_support::opts()
    }

    fn one_target() -> Design {
        let t = crate::config::FanoutTarget {
            name: "billing".into(),
            url: "http://b".into(),
            events: vec!["invoice.paid".into()],
            ..Default::default()
        };
        design::design("shop", &[t], &["invoice.paid"]).unwrap()
    }

    #[test]
    fn nothing_yet_plans_every_step_and_judges_the_destination_missing() {
        let (o, d) = (opts(), one_target());
        let seen = Observed {
            targets: vec![SeenTarget::default()],
            ..Default::default()
        };
        let p = plan(&o, &d, &seen);
        assert!(p.steps.iter().all(|s| !s.skipped), "{:?}", p.steps);
        assert_eq!(p.steps.len(), 8, "{:?}", p.steps);
        let pieces = judge(&o, &d, &seen);
        assert_eq!(pieces.len(), 1);
        assert!(!pieces[0].ok && pieces[0].detail.contains("run eventbridge setup"));
    }

    /// Shapes as Stripe and AWS answer them (DescribeEventSource, GetQueueAttributes,
    /// DescribeRule, ListTargetsByRule).
    fn complete(d: &Design) -> Observed {
        let rule_arn = "arn:aws:events:us-east-1:123456789012:rule/aws.partner/stripe.com/ed_1/shop-stripe-billing";
        let queue_arn = "arn:aws:sqs:us-east-1:123456789012:shop-stripe-billing";
        let dlq_arn = "arn:aws:sqs:us-east-1:123456789012:shop-stripe-billing-dlq";
        Observed {
            destination: Some(
                json!({"id": "ed_1", "status": "enabled", "created": "2026-12-01T00:00:00.000Z",
                "enabled_events": ["invoice.paid"], "event_payload": "snapshot",
                "amazon_eventbridge": {"aws_event_source_status": "active"}}),
            ),
            source: Some(EventSource {
                arn: "arn".into(),
                state: "ACTIVE".into(),
            }),
            bus: Some(
                "arn:aws:events:us-east-1:123456789012:event-bus/aws.partner/stripe.com/ed_1"
                    .into(),
            ),
            targets: vec![SeenTarget {
                queue_url: Some("http://q".into()),
                queue: Map::from_iter([
                    ("QueueArn".to_owned(), Value::from(queue_arn)),
                    (
                        "RedrivePolicy".to_owned(),
                        Value::from(design::redrive(dlq_arn, 5)),
                    ),
                    (
                        "Policy".to_owned(),
                        Value::from(design::queue_policy(queue_arn, rule_arn).to_string()),
                    ),
                ]),
                dlq_url: Some("http://dlq".into()),
                dlq_arn: Some(dlq_arn.into()),
                rule: Some(Rule {
                    arn: rule_arn.into(),
                    pattern: Some(d.targets[0].pattern_for("aws.partner/stripe.com/ed_1")),
                    description: String::new(),
                    state: "ENABLED".into(),
                }),
                rule_targets: vec![("sqs".into(), queue_arn.into())],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_setup_plans_nothing_and_every_piece_is_ok() {
        let (o, d) = (opts(), one_target());
        let seen = complete(&d);
        assert!(plan(&o, &d, &seen).steps.iter().all(|s| s.skipped));
        let pieces = judge(&o, &d, &seen);
        assert!(pieces.iter().all(|p| p.ok), "{pieces:#?}");
    }

    #[test]
    fn a_source_never_associated_and_a_queue_without_dlq_are_named() {
        let (o, d) = (opts(), one_target());
        let mut seen = complete(&d);
        seen.bus = None;
        seen.targets[0].queue.remove("RedrivePolicy");
        seen.targets[0].rule.as_mut().unwrap().pattern = Some(json!({"detail-type": ["x"]}));
        let bad: Vec<Piece> = judge(&o, &d, &seen).into_iter().filter(|p| !p.ok).collect();
        let what: Vec<&str> = bad.iter().map(|p| p.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "partner event source",
                "partner event bus",
                "dead-letter queue",
                "rule"
            ],
            "{bad:#?}"
        );
        assert!(bad[0].detail.contains("never associated") && bad[0].detail.contains("7 days"));
        let report = status_report(&o, &d, &seen);
        assert_eq!(report.verdict().unwrap_err().exit.code(), 1);
        let p = plan(&o, &d, &seen);
        let todo: Vec<&str> = p
            .steps
            .iter()
            .filter(|s| !s.skipped)
            .map(|s| s.action.as_str())
            .collect();
        assert!(todo.iter().any(|s| s.contains("redrive")), "{todo:?}");
        assert!(
            todo.iter()
                .any(|s| s.contains("create the partner event bus")),
            "{todo:?}"
        );
    }
}

/// Options for the unit tests of `status` and `setup`.
#[cfg(test)]
pub(crate) mod tests_support {
    use std::time::Duration;

    use super::BridgeOptions;

    pub(crate) fn opts() -> BridgeOptions {
        BridgeOptions {
            env: crate::config::Config::default()
                .env("staging", &Default::default())
                .unwrap(),
            profile: None,
            stripe_key: "sk_test_x".to_owned().into(),
            targets: vec![],
            types: vec![],
            account: Some("123456789012".into()),
            payload: "snapshot".into(),
            api_version: None,
            max_receives: 5,
            visibility: Duration::from_secs(60),
            wait: Duration::from_secs(1),
            poll: Duration::from_millis(10),
            rule_bus: None,
        }
    }
}
