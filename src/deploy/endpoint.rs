//! What a rotation's new webhook endpoint is created with: like for like with the enabled
//! endpoints it replaces (same URL), each field settled by a flag first, then inherited, then
//! from the config. Pure.
//!
//! Stripe's endpoint object returns `enabled_events`, `api_version`, `description` and
//! `metadata`, but not `connect` (it is a create parameter only; see the API reference of
//! `POST /v1/webhook_endpoints` and stripe-node's `WebhookEndpoint` type). So that a rotation
//! can still inherit it, stripe-ops records it on the endpoints it creates in the metadata key
//! [`CONNECT_MARK`]; endpoints without the mark are judged by the config's `connect`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::stripe_api::{EndpointSpec, WebhookEndpoint};

/// The metadata key that records `connect` on the endpoints stripe-ops creates.
pub const CONNECT_MARK: &str = "stripe_ops_connect";

/// Stripe's metadata limits: keys, key length, value length.
const MAX_METADATA_KEYS: usize = 50;
const MAX_METADATA_KEY: usize = 40;
const MAX_METADATA_VALUE: usize = 500;

/// What the flags settle; `None` or empty: inherit.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub events: Vec<String>,
    pub api_version: Option<String>,
    pub connect: Option<bool>,
    pub description: Option<String>,
    /// Merged over the inherited metadata (a flag's key wins).
    pub metadata: BTreeMap<String, String>,
}

/// What applies when there is no endpoint to inherit from: the config.
#[derive(Debug, Clone)]
pub struct Fallback {
    pub enabled_events: Vec<String>,
    pub api_version: Option<String>,
    pub connect: bool,
    pub description: String,
}

/// Where a field's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Flag,
    Inherited,
    Config,
}

/// The new endpoint, where each field came from, and the endpoints it replaces.
#[derive(Debug, Clone, Serialize)]
pub struct Replacement {
    pub new: EndpointSpec,
    pub origins: BTreeMap<&'static str, Origin>,
    pub old: Vec<WebhookEndpoint>,
}

/// Parses `KEY=VALUE` into a metadata entry within Stripe's limits.
pub fn metadata_entry(s: &str) -> Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| Error::usage(format!("--metadata {s:?}: expected KEY=VALUE")))?;
    if k.is_empty() || k.chars().count() > MAX_METADATA_KEY || k.contains(['[', ']']) {
        return Err(Error::usage(format!(
            "--metadata key {k:?}: 1 to {MAX_METADATA_KEY} characters, no square brackets (Stripe's limits)"
        )));
    }
    if v.chars().count() > MAX_METADATA_VALUE {
        return Err(Error::usage(format!(
            "--metadata {k}: the value is longer than Stripe's {MAX_METADATA_VALUE} characters"
        )));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// Decides the new endpoint for `url` from `old` (the enabled endpoints it replaces, in
/// Stripe's list order: newest first). Stops
/// with exit 2 when the old endpoints disagree on `api_version` or `connect` and no flag
/// settles it.
pub fn replacement(
    url: &str,
    old: &[&WebhookEndpoint],
    flags: &Overrides,
    config: &Fallback,
) -> Result<Replacement> {
    let mut origins = BTreeMap::new();
    // The flag, else what the old endpoints say (when they say it), else the config.
    let mut pick = |field, flag: bool, inheritable: bool| {
        let origin = match (flag, inheritable) {
            (true, _) => Origin::Flag,
            (false, true) => Origin::Inherited,
            (false, false) => Origin::Config,
        };
        origins.insert(field, origin);
        origin
    };
    let inherit = !old.is_empty();
    // Oldest first: Stripe lists newest first, and `created` has one-second resolution.
    let mut by_age: Vec<&WebhookEndpoint> = old.iter().rev().copied().collect();
    by_age.sort_by_key(|e| e.created);
    let marked: Vec<&WebhookEndpoint> = old
        .iter()
        .copied()
        .filter(|e| connect_mark(e).is_some())
        .collect();

    let enabled_events = match pick("enabled_events", !flags.events.is_empty(), inherit) {
        Origin::Flag => union(std::iter::once(&flags.events)),
        Origin::Inherited => union(by_age.iter().map(|e| &e.enabled_events)),
        Origin::Config => union(std::iter::once(&config.enabled_events)),
    };
    let api_version = match pick("api_version", flags.api_version.is_some(), inherit) {
        Origin::Flag => flags.api_version.clone(),
        Origin::Inherited => agreed(
            "api_version",
            old,
            |e| e.api_version.clone(),
            |v| {
                v.clone()
                    .unwrap_or_else(|| "(the account's default)".into())
            },
        )?,
        Origin::Config => config.api_version.clone(),
    };
    let connect = match pick("connect", flags.connect.is_some(), !marked.is_empty()) {
        Origin::Flag => flags.connect == Some(true),
        Origin::Inherited => agreed("connect", &marked, connect_mark, |v| format!("{v:?}"))?
            .expect("marked endpoints carry the mark"),
        Origin::Config => config.connect,
    };
    let newest = by_age.last();
    let description = match pick("description", flags.description.is_some(), inherit) {
        Origin::Flag => flags.description.clone(),
        _ => newest
            .and_then(|e| e.description.clone())
            .filter(|d| !d.is_empty())
            .or_else(|| Some(config.description.clone())),
    };
    let mut metadata: BTreeMap<String, String> = by_age
        .iter()
        .flat_map(|e| e.metadata.clone())
        .chain(flags.metadata.clone())
        .collect();
    pick("metadata", !flags.metadata.is_empty(), inherit);
    metadata.insert(CONNECT_MARK.to_owned(), connect.to_string());
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(Error::usage(format!(
            "the new endpoint would carry {} metadata keys; Stripe allows {MAX_METADATA_KEYS}",
            metadata.len()
        )));
    }
    Ok(Replacement {
        new: EndpointSpec {
            url: url.to_owned(),
            enabled_events,
            api_version,
            connect,
            description,
            metadata,
        },
        origins,
        old: old.iter().map(|e| (*e).clone()).collect(),
    })
}

/// The `connect` recorded on an endpoint stripe-ops created.
pub fn connect_mark(e: &WebhookEndpoint) -> Option<bool> {
    e.metadata.get(CONNECT_MARK).and_then(|v| v.parse().ok())
}

/// Every event type once, in order of first appearance; `*` (all events) absorbs the rest.
fn union<'a>(lists: impl Iterator<Item = &'a Vec<String>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in lists.flatten() {
        if t == "*" {
            return vec!["*".to_owned()];
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// The one value of `field` the endpoints share; when they differ, exit 2 naming each.
fn agreed<T: PartialEq + Clone>(
    field: &str,
    old: &[&WebhookEndpoint],
    value: impl Fn(&WebhookEndpoint) -> T,
    show: impl Fn(&T) -> String,
) -> Result<T> {
    let first = value(old[0]);
    if old.iter().all(|e| value(e) == first) {
        return Ok(first);
    }
    let each: Vec<String> = old
        .iter()
        .map(|e| format!("{} {}", e.id, show(&value(e))))
        .collect();
    Err(Error::usage(format!(
        "the endpoints this rotation replaces disagree on {field} ({}); pass --{} to settle it. Nothing was changed",
        each.join(", "),
        field.replace('_', "-")
    )))
}

impl Replacement {
    /// The new endpoint side by side with the old ones, one line per field, for the plan.
    pub fn render(&self) -> Vec<String> {
        let mut lines = vec![if self.old.is_empty() {
            format!(
                "new endpoint for {} (no enabled endpoint to replace):",
                self.new.url
            )
        } else {
            format!(
                "new endpoint for {} beside the {} it replaces:",
                self.new.url,
                self.old.len()
            )
        }];
        let old: Vec<(&str, [Option<String>; 5])> = self
            .old
            .iter()
            .map(|e| (e.id.as_str(), old_fields(e)))
            .collect();
        for (i, (field, new)) in FIELDS.iter().zip(new_fields(&self.new)).enumerate() {
            let origin = match self.origins.get(field) {
                Some(Origin::Flag) => "from the flag",
                Some(Origin::Inherited) => "inherited",
                _ => "from the config",
            };
            let changed = old
                .iter()
                .any(|(_, f)| f[i].as_ref().is_some_and(|v| *v != new));
            let mark = if changed { " (changed)" } else { "" };
            lines.push(format!("  {field}: {new} [{origin}]{mark}"));
            for (id, f) in &old {
                let was = f[i]
                    .as_deref()
                    .unwrap_or("not recorded (Stripe does not return it)");
                lines.push(format!("      was on {id}: {was}"));
            }
        }
        lines
    }
}

/// The fields the plan compares, in order.
const FIELDS: [&str; 5] = [
    "enabled_events",
    "api_version",
    "connect",
    "description",
    "metadata",
];

fn new_fields(e: &EndpointSpec) -> [String; 5] {
    [
        e.enabled_events.join(", "),
        version(&e.api_version),
        e.connect.to_string(),
        e.description.clone().unwrap_or_default(),
        pairs(&e.metadata),
    ]
}

/// `None`: not known (`connect` when stripe-ops did not record it).
fn old_fields(e: &WebhookEndpoint) -> [Option<String>; 5] {
    [
        Some(e.enabled_events.join(", ")),
        Some(version(&e.api_version)),
        connect_mark(e).map(|c| c.to_string()),
        Some(e.description.clone().unwrap_or_default()),
        Some(pairs(&e.metadata)),
    ]
}

fn version(v: &Option<String>) -> String {
    v.clone()
        .unwrap_or_else(|| "the account's default".to_owned())
}

fn pairs(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ep(id: &str, created: i64, extra: serde_json::Value) -> WebhookEndpoint {
        let mut v = json!({"id": id, "url": "https://a.example/h", "status": "enabled", "created": created});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    fn config() -> Fallback {
        Fallback {
            enabled_events: vec!["checkout.session.completed".into()],
            api_version: Some("2025-03-31.basil".into()),
            connect: false,
            description: "shop webhook".into(),
        }
    }

    #[test]
    fn the_new_endpoint_inherits_every_field() {
        let a = ep(
            "we_a",
            1,
            json!({"enabled_events": ["checkout.session.completed", "invoice.paid", "charge.refunded"],
                   "api_version": "2024-06-20", "description": "old", "metadata": {"team": "pay", "tier": "1"}}),
        );
        let b = ep(
            "we_b",
            2,
            json!({"enabled_events": ["customer.subscription.updated", "customer.subscription.deleted", "invoice.paid"],
                   "api_version": "2024-06-20", "description": "newest", "metadata": {"tier": "2", CONNECT_MARK: "true"}}),
        );
        let r = replacement(
            "https://a.example/h",
            &[&a, &b],
            &Overrides::default(),
            &config(),
        )
        .unwrap();
        assert_eq!(
            r.new.enabled_events,
            [
                "checkout.session.completed",
                "invoice.paid",
                "charge.refunded",
                "customer.subscription.updated",
                "customer.subscription.deleted"
            ]
        );
        assert_eq!(r.new.api_version.as_deref(), Some("2024-06-20"));
        assert!(r.new.connect);
        assert_eq!(r.new.description.as_deref(), Some("newest"));
        assert_eq!(r.new.metadata["team"], "pay");
        assert_eq!(
            r.new.metadata["tier"], "2",
            "the newer endpoint's value wins"
        );
        assert!(
            r.origins.values().all(|o| *o == Origin::Inherited),
            "{:?}",
            r.origins
        );
    }

    #[test]
    fn endpoints_created_in_the_same_second_age_by_stripes_list_order() {
        let older = ep(
            "we_1",
            5,
            json!({"enabled_events": ["a.b"], "description": "older"}),
        );
        let newer = ep(
            "we_2",
            5,
            json!({"enabled_events": ["c.d"], "description": "newer"}),
        );
        let r = replacement("u", &[&newer, &older], &Overrides::default(), &config()).unwrap();
        assert_eq!(r.new.enabled_events, ["a.b", "c.d"]);
        assert_eq!(r.new.description.as_deref(), Some("newer"));
    }

    #[test]
    fn all_events_absorbs_the_rest() {
        let a = ep("we_a", 1, json!({"enabled_events": ["a.b"]}));
        let b = ep("we_b", 2, json!({"enabled_events": ["*"]}));
        let r = replacement("u", &[&b, &a], &Overrides::default(), &config()).unwrap();
        assert_eq!(r.new.enabled_events, ["*"]);
    }

    #[test]
    fn disagreement_stops_unless_a_flag_settles_it() {
        let a = ep("we_a", 1, json!({"api_version": "2024-06-20"}));
        let b = ep("we_b", 2, json!({}));
        let e = replacement("u", &[&a, &b], &Overrides::default(), &config()).unwrap_err();
        assert_eq!(e.exit, crate::error::Exit::Usage);
        let m = e.message();
        assert!(
            m.contains("we_a 2024-06-20") && m.contains("we_b (the account's default)"),
            "{m}"
        );
        assert!(m.contains("--api-version"), "{m}");
        let flags = Overrides {
            api_version: Some("2024-06-20".into()),
            ..Default::default()
        };
        let r = replacement("u", &[&a, &b], &flags, &config()).unwrap();
        assert_eq!(r.new.api_version.as_deref(), Some("2024-06-20"));
        assert_eq!(r.origins["api_version"], Origin::Flag);

        let c = ep("we_c", 1, json!({"metadata": {CONNECT_MARK: "true"}}));
        let d = ep("we_d", 2, json!({"metadata": {CONNECT_MARK: "false"}}));
        let e = replacement("u", &[&c, &d], &Overrides::default(), &config()).unwrap_err();
        assert!(e.message().contains("--connect"), "{}", e.message());
    }

    #[test]
    fn without_old_endpoints_the_config_applies() {
        let r = replacement("u", &[], &Overrides::default(), &config()).unwrap();
        assert_eq!(r.new.enabled_events, ["checkout.session.completed"]);
        assert_eq!(r.new.api_version.as_deref(), Some("2025-03-31.basil"));
        assert_eq!(r.new.description.as_deref(), Some("shop webhook"));
        assert_eq!(r.new.metadata[CONNECT_MARK], "false");
        assert!(r.origins.values().all(|o| *o == Origin::Config));
    }

    #[test]
    fn an_unmarked_endpoint_takes_connect_from_the_config() {
        let a = ep("we_a", 1, json!({}));
        let mut cfg = config();
        cfg.connect = true;
        let r = replacement("u", &[&a], &Overrides::default(), &cfg).unwrap();
        assert!(r.new.connect);
        assert_eq!(r.origins["connect"], Origin::Config);
    }

    #[test]
    fn metadata_entries_follow_stripes_limits() {
        assert_eq!(
            metadata_entry("team=pay=ops").unwrap(),
            ("team".into(), "pay=ops".into())
        );
        for bad in ["novalue", "=v", "a[b]=v", &format!("{}=v", "k".repeat(41))] {
            assert!(metadata_entry(bad).is_err(), "{bad}");
        }
        assert!(metadata_entry(&format!("k={}", "v".repeat(501))).is_err());
    }

    #[test]
    fn the_plan_shows_new_beside_old_and_marks_changes() {
        let a = ep(
            "we_a",
            1,
            json!({"enabled_events": ["a.b"], "api_version": "2024-06-20"}),
        );
        let flags = Overrides {
            events: vec!["a.b".into(), "c.d".into()],
            ..Default::default()
        };
        let lines = replacement("u", &[&a], &flags, &config()).unwrap().render();
        let text = lines.join("\n");
        assert!(
            text.contains("enabled_events: a.b, c.d [from the flag] (changed)"),
            "{text}"
        );
        assert!(text.contains("was on we_a: a.b\n"), "{text}");
        assert!(
            text.contains("api_version: 2024-06-20 [inherited]\n"),
            "{text}"
        );
    }
}
