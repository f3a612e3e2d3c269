//! `eventbridge teardown`: removes what setup made and nothing else: the destinations marked
//! with the environment (Stripe then deletes their partner event sources), their partner
//! buses, the rules there whose description says setup made them, and the queues tagged with
//! the environment. Anything else with setup's names is kept and listed.

use serde::Serialize;
use serde_json::{Value, json};

use super::BridgeOptions;
use super::design::{Design, MARK, PARTNER_PREFIX};
use super::observe::{Clients, aws, marked_destinations};
use super::setup::rule_description;
use crate::deploy::plan::Plan;
use crate::error::Result;
use crate::printer::{Printer, Report};

/// What teardown removes, found by marks and names.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Removal {
    pub destinations: Vec<String>,
    pub buses: Vec<String>,
    /// `(bus, rule)`.
    pub rules: Vec<(String, String)>,
    pub queues: Vec<String>,
    /// Things with setup's names that it did not make (no mark): kept.
    pub kept: Vec<String>,
}

impl Removal {
    pub fn plan(&self, env: &str) -> Plan {
        let mut p = Plan::new(env);
        for (bus, rule) in &self.rules {
            p.step(format!("delete rule {rule} (and its targets) on {bus}"));
        }
        for q in &self.queues {
            p.step(format!("delete queue {q}"));
        }
        for b in &self.buses {
            p.step(format!("delete partner event bus {b}"));
        }
        for d in &self.destinations {
            p.step(format!(
                "delete event destination {d} (Stripe deletes its partner event source)"
            ));
        }
        for k in &self.kept {
            p.skip(format!("keep {k}: not marked {MARK}={env}"));
        }
        p
    }
}

pub async fn find_removal(c: &Clients, opts: &BridgeOptions, design: &Design) -> Result<Removal> {
    let env = &opts.env.name;
    let mut r = Removal::default();
    for d in marked_destinations(c, env).await? {
        let id = d["id"].as_str().unwrap_or_default().to_owned();
        let bus = format!("{PARTNER_PREFIX}{id}");
        if c.events.event_bus_arn(&bus).await.map_err(aws)?.is_some() {
            let on = opts.rules_on(&bus);
            for rule in c
                .events
                .rule_names(on, &design.names.base)
                .await
                .map_err(aws)?
            {
                let described = c.events.describe_rule(&rule, on).await.map_err(aws)?;
                if described.is_some_and(|d| d.description == rule_description(env)) {
                    r.rules.push((on.to_owned(), rule));
                } else {
                    r.kept.push(format!("rule {rule} on {on}"));
                }
            }
            r.buses.push(bus);
        }
        r.destinations.push(id);
    }
    for url in c.sqs.list_queues(&design.names.base).await.map_err(aws)? {
        let tags = c.sqs.tags(&url).await.map_err(aws)?;
        if tags.get(MARK).and_then(Value::as_str) == Some(env.as_str()) {
            r.queues.push(url);
        } else {
            r.kept.push(format!("queue {url}"));
        }
    }
    Ok(r)
}

#[derive(Debug, Clone, Serialize)]
pub struct TeardownReport {
    pub env: String,
    pub removed: Removal,
}

impl Report for TeardownReport {
    fn json(&self) -> Value {
        json!({"ok": true, "env": self.env, "removed": self.removed})
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        let r = &self.removed;
        vec![format!(
            "eventbridge for {}: removed {} rule(s), {} queue(s), {} bus(es), {} destination(s); kept {}",
            self.env,
            r.rules.len(),
            r.queues.len(),
            r.buses.len(),
            r.destinations.len(),
            r.kept.len()
        )]
    }
}

pub async fn remove(
    c: &Clients,
    opts: &BridgeOptions,
    r: Removal,
    out: &Printer,
) -> Result<TeardownReport> {
    for (bus, rule) in &r.rules {
        c.events.delete_rule(rule, bus).await.map_err(aws)?;
        out.status(format!("deleted rule {rule}"));
    }
    for q in &r.queues {
        c.sqs.delete_queue(q).await.map_err(aws)?;
        out.status(format!("deleted queue {q}"));
    }
    for b in &r.buses {
        c.events.delete_event_bus(b).await.map_err(aws)?;
        out.status(format!("deleted partner event bus {b}"));
    }
    for d in &r.destinations {
        c.stripe.delete_event_destination(d).await?;
        out.status(format!("deleted event destination {d}"));
    }
    Ok(TeardownReport {
        env: opts.env.name.clone(),
        removed: r,
    })
}
