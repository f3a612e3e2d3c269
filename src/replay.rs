//! `events replay`: the events of an account (`GET /v1/events`, the last 30 days Stripe keeps),
//! delivered again to a receiver in Stripe's wire format with a fresh signature, oldest first.
//! A state file remembers what was delivered, so a second run after a failure sends only the
//! rest. Filtering is pushed to Stripe where its API can (`created`, `type` with `*`, `types[]`,
//! `delivery_success`) and finished here (several globs).
//!
//! Stripe delivers an event at the API version of the endpoint, but lists it at the version it
//! was created with ("not according to your current Stripe API version or Stripe-Version
//! header", List events), and replay cannot translate an object between versions. So replay
//! finds the version the receiver's endpoint is pinned to (`--api-version`, else the enabled
//! endpoints at Stripe with the same URL) and warns about the events that name another one:
//! Stripe's Go (v73+) and .NET libraries refuse those unless told to ignore the version.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use wildmatch::WildMatch;

use crate::error::{Error, Result};
use crate::printer::{Printer, Report};
use crate::shutdown::{self, Shutdown};
use crate::stripe_api::{StripeClient, WebhookEndpoint};
use crate::webhook::signature::{self, Signer};

/// Which events to replay.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Type globs (`invoice.*`); empty: every type.
    pub types: Vec<String>,
    /// Only events Stripe has not delivered to every endpoint (`delivery_success=false`).
    pub failed_only: bool,
    /// Exactly these events (then the other filters do not apply).
    pub ids: Vec<String>,
}

/// Stripe's `type` and `types[]` take at most this many names.
const MAX_TYPES: usize = 20;

impl Filter {
    /// What Stripe's `GET /v1/events` can filter by itself.
    pub fn query(&self) -> Vec<(String, String)> {
        let mut q = Vec::new();
        let mut push = |k: &str, v: String| q.push((k.to_owned(), v));
        if let Some(s) = self.since {
            push("created[gte]", s.to_string());
        }
        if let Some(u) = self.until {
            push("created[lte]", u.to_string());
        }
        // Stripe's `type` takes one name with `*` as a wildcard; `types[]` exact names only.
        match self.types.as_slice() {
            [one] if !one.contains('?') => push("type", one.clone()),
            many if !many.is_empty()
                && many.len() <= MAX_TYPES
                && many.iter().all(|t| !t.contains(['*', '?'])) =>
            {
                for t in many {
                    push("types[]", t.clone());
                }
            }
            _ => {}
        }
        if self.failed_only {
            push("delivery_success", "false".into());
        }
        q
    }

    /// Whether an event listed by Stripe is one to replay (the part Stripe cannot filter).
    pub fn keeps(&self, event: &Value) -> bool {
        let t = event["type"].as_str().unwrap_or_default();
        self.types.is_empty() || self.types.iter().any(|g| WildMatch::new(g).matches(t))
    }
}

/// Pure: `listed` (Stripe's order, newest first) as the events to send, oldest first; ties
/// in `created` keep Stripe's order reversed.
pub fn oldest_first(listed: Vec<Value>) -> Vec<Value> {
    let mut events: Vec<Value> = listed.into_iter().rev().collect();
    events.sort_by_key(|e| e["created"].as_i64().unwrap_or_default());
    events
}

/// The record of a replay to one URL: the ids already delivered.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub to: String,
    pub delivered: BTreeSet<String>,
}

impl State {
    /// The state in `path` for deliveries to `to`; a missing file is an empty state, one kept
    /// for another URL is exit 2.
    pub fn load(path: &Path, to: &str) -> Result<State> {
        if !path.exists() {
            return Ok(State {
                to: to.to_owned(),
                ..Default::default()
            });
        }
        let text = crate::files::read_text(path, "replay state")?;
        let state: State = serde_json::from_str(&text).map_err(|e| {
            Error::usage(format!(
                "replay state {} is not a replay state: {e}",
                path.display()
            ))
        })?;
        if state.to != to {
            return Err(Error::usage(format!(
                "replay state {} records deliveries to {}, not {to}; use another --state file",
                path.display(),
                state.to
            )));
        }
        Ok(state)
    }

    /// Written atomically, mode 0600.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("the state serializes");
        crate::secret::write_private(path, &bytes).map_err(|e| {
            Error::external(format!("cannot write replay state {}: {e}", path.display()))
        })
    }
}

/// What `events replay` is asked to do.
pub struct ReplayOptions {
    pub to: String,
    /// The API version the receiver's endpoint is pinned to; `None`: look it up at Stripe.
    pub api_version: Option<String>,
    pub signers: Vec<Signer>,
    pub filter: Filter,
    pub concurrency: usize,
    pub state: Option<PathBuf>,
    pub dry_run: bool,
    pub client: reqwest::Client,
}

/// One event and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Line {
    fn of(event: &Value) -> Line {
        Line {
            id: event["id"].as_str().unwrap_or_default().to_owned(),
            event_type: event["type"].as_str().unwrap_or_default().to_owned(),
            created: event["created"].as_i64().unwrap_or_default(),
            status: None,
            ok: true,
            ms: None,
            error: None,
        }
    }

    /// One line for people.
    pub fn render(&self) -> String {
        let answer = match (self.status, &self.error) {
            (Some(s), None) => s.to_string(),
            (Some(s), Some(e)) => format!("{s}: {e}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "would be sent".into(),
        };
        let ms = self
            .ms
            .map(|m| format!(" in {m:.1} ms"))
            .unwrap_or_default();
        format!("{} {} -> {answer}{ms}", self.id, self.event_type)
    }
}

/// The API versions of the events to send, against the one the receiver expects.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ApiVersions {
    /// The version the receiver's endpoint is pinned to, when known.
    pub expected: Option<String>,
    /// Where `expected` came from: `--api-version`, or the endpoint's id.
    pub from: Option<String>,
    /// Events to send, by the `api_version` they name (`"none"` for old events without one).
    pub rendered: BTreeMap<String, usize>,
    /// How many of them name another version than `expected`.
    pub other: usize,
}

impl ApiVersions {
    /// Pure: counts `events` against `expected`.
    pub fn of(events: &[Value], expected: Option<String>, from: Option<String>) -> ApiVersions {
        let mut v = ApiVersions {
            expected,
            from,
            ..Default::default()
        };
        for e in events {
            let named = e["api_version"].as_str();
            *v.rendered
                .entry(named.unwrap_or("none").to_owned())
                .or_default() += 1;
            if v.expected.is_some() && named != v.expected.as_deref() {
                v.other += 1;
            }
        }
        v
    }

    /// The warning, when some events name another version than the receiver expects.
    pub fn warning(&self, total: usize) -> Option<String> {
        let expected = self.expected.as_ref().filter(|_| self.other > 0)?;
        let others: Vec<&str> = self
            .rendered
            .keys()
            .map(String::as_str)
            .filter(|v| *v != expected)
            .collect();
        Some(format!(
            "{} of {total} event(s) name API version {}, not {expected} ({}): Stripe would deliver them at {expected}, but lists each event at the version it was created with, and replay sends them as listed. Receivers on Stripe's Go (v73+) or .NET library refuse a mismatched api_version unless told to ignore it",
            self.other,
            others.join(", "),
            self.from.as_deref().unwrap_or("expected")
        ))
    }
}

/// Pure: the version the enabled endpoints at `to` are pinned to, with the endpoint ids, when
/// they all name the same one.
pub fn pinned_version(endpoints: &[WebhookEndpoint], to: &str) -> Option<(String, String)> {
    let same_url = |u: &str| u.trim_end_matches('/') == to.trim_end_matches('/');
    let at_to: Vec<&WebhookEndpoint> = endpoints
        .iter()
        .filter(|e| e.enabled() && same_url(&e.url))
        .collect();
    let first = at_to.first()?.api_version.clone()?;
    at_to
        .iter()
        .all(|e| e.api_version.as_deref() == Some(first.as_str()))
        .then(|| {
            let ids: Vec<&str> = at_to.iter().map(|e| e.id.as_str()).collect();
            (first, format!("pinned on {}", ids.join(", ")))
        })
}

/// The version the receiver expects: the flag's, else the one its endpoints at Stripe are
/// pinned to. An endpoint list Stripe refuses (a restricted key) leaves it unknown, with a note.
async fn expected_version(
    stripe: &StripeClient,
    opts: &ReplayOptions,
    out: &Printer,
) -> (Option<String>, Option<String>) {
    if let Some(v) = &opts.api_version {
        return (Some(v.clone()), Some("--api-version".into()));
    }
    match stripe.list_webhook_endpoints().await {
        Ok(endpoints) => pinned_version(&endpoints, &opts.to)
            .map_or((None, None), |(v, from)| (Some(v), Some(from))),
        Err(e) => {
            out.tell(format!(
                "note: cannot list webhook endpoints to learn the API version {} expects ({}); give --api-version to check the events' versions",
                opts.to,
                e.message()
            ));
            (None, None)
        }
    }
}

/// What a replay did.
#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub to: String,
    pub dry_run: bool,
    /// Listed by Stripe (after the filters).
    pub listed: usize,
    /// Already delivered according to the state file.
    pub already_delivered: usize,
    pub sent: usize,
    pub failed: usize,
    /// Answers by status (`"200"`, `"500"`, `"error"`).
    pub by_status: BTreeMap<String, usize>,
    pub api_versions: ApiVersions,
    pub events: Vec<Line>,
    pub seconds: f64,
}

impl Report for ReplayReport {
    fn json(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("reports serialize");
        v["ok"] = json!(self.failed == 0);
        v
    }

    fn human(&self, out: &Printer) -> Vec<String> {
        let mut lines = Vec::new();
        if self.dry_run {
            lines.extend(self.events.iter().map(Line::render));
            lines.push(format!(
                "dry run: {} event(s) would be sent to {} ({} listed, {} already delivered)",
                self.events.len(),
                self.to,
                self.listed,
                self.already_delivered
            ));
            return lines;
        }
        let statuses: Vec<String> = self
            .by_status
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        lines.push(format!(
            "{} replayed {} of {} event(s) to {} in {:.1}s ({}; {} already delivered)",
            out.ok_mark(self.failed == 0),
            self.sent - self.failed,
            self.sent,
            self.to,
            self.seconds,
            if statuses.is_empty() {
                "nothing to send".to_owned()
            } else {
                statuses.join(", ")
            },
            self.already_delivered
        ));
        lines
    }

    fn verdict(&self) -> Result<()> {
        if self.failed == 0 {
            return Ok(());
        }
        Err(Error::failed(format!(
            "{} of {} replayed event(s) were not accepted; run the same command again to send only those",
            self.failed, self.sent
        )))
    }
}

/// How often the state is saved during a run (and always at its end).
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Lists the events, skips those the state says were delivered, and delivers the rest oldest
/// first with at most `concurrency` in flight. A stop request ends the run after the
/// deliveries in flight, with the state saved.
pub async fn run(
    stripe: &StripeClient,
    opts: ReplayOptions,
    out: &Printer,
    stop: &Shutdown,
) -> Result<ReplayReport> {
    let started = Instant::now();
    let events = fetch(stripe, &opts.filter, out).await?;
    let listed = events.len();
    let mut state = match &opts.state {
        Some(path) => State::load(path, &opts.to)?,
        None => State {
            to: opts.to.clone(),
            ..Default::default()
        },
    };
    let todo: Vec<Value> = events
        .into_iter()
        .filter(|e| {
            !state
                .delivered
                .contains(e["id"].as_str().unwrap_or_default())
        })
        .collect();
    let already_delivered = listed - todo.len();
    let (expected, from) = expected_version(stripe, &opts, out).await;
    let api_versions = ApiVersions::of(&todo, expected, from);
    if let Some(w) = api_versions.warning(todo.len()) {
        out.warn(w);
    }
    let mut report = ReplayReport {
        to: opts.to.clone(),
        dry_run: opts.dry_run,
        listed,
        already_delivered,
        sent: 0,
        failed: 0,
        by_status: BTreeMap::new(),
        api_versions,
        events: Vec::new(),
        seconds: 0.0,
    };
    if opts.dry_run {
        report.events = todo.iter().map(Line::of).collect();
        return Ok(report);
    }
    let bar = out.bar(todo.len() as u64, format!("replaying to {}", opts.to));
    let opts = &opts;
    // Sent concurrently, reported in the order listed (oldest first, as REFERENCE promises).
    let mut deliveries = futures_util::stream::iter(todo)
        .map(|event| deliver(opts, event))
        .buffered(opts.concurrency.max(1));
    let mut saved_at = Instant::now();
    loop {
        let next = tokio::select! {
            next = deliveries.next() => next,
            signal = stop.wait() => {
                save(&state, opts)?;
                bar.finish_and_clear();
                return Err(shutdown::interrupted(signal, Some(&format!(
                    "{} of the events were delivered (recorded in the state file when one was given); run the same command again to send the rest",
                    report.sent - report.failed
                ))));
            }
        };
        let Some(line) = next else { break };
        report.sent += 1;
        let key = line.status.map_or("error".to_owned(), |s| s.to_string());
        *report.by_status.entry(key).or_default() += 1;
        if line.ok {
            state.delivered.insert(line.id.clone());
        } else {
            report.failed += 1;
        }
        bar.inc(1);
        bar.suspend(|| out.line(line.render()));
        report.events.push(line);
        if saved_at.elapsed() >= SAVE_EVERY {
            save(&state, opts)?;
            saved_at = Instant::now();
        }
    }
    bar.finish_and_clear();
    save(&state, opts)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn save(state: &State, opts: &ReplayOptions) -> Result<()> {
    match &opts.state {
        Some(path) => state.save(path),
        None => Ok(()),
    }
}

/// The events to replay, oldest first: those given by id, or those the filter selects.
async fn fetch(stripe: &StripeClient, filter: &Filter, out: &Printer) -> Result<Vec<Value>> {
    let context = |e: Error| e.context("listing events at Stripe");
    if !filter.ids.is_empty() {
        let mut events = Vec::new();
        for id in &filter.ids {
            events.push(stripe.retrieve_event(id).await.map_err(context)?);
        }
        events.sort_by_key(|e| e["created"].as_i64().unwrap_or_default());
        return Ok(events);
    }
    let spinner = out.spinner("listing events at Stripe");
    let listed = stripe
        .list_events(&filter.query(), |n| {
            crate::printer::set_message(&spinner, format!("listing events at Stripe: {n}"))
        })
        .await
        .map_err(context);
    spinner.finish_and_clear();
    Ok(oldest_first(
        listed?.into_iter().filter(|e| filter.keeps(e)).collect(),
    ))
}

/// One delivery: the event in Stripe's wire format, signed now.
async fn deliver(opts: &ReplayOptions, event: Value) -> Line {
    let mut line = Line::of(&event);
    let body = crate::webhook::to_wire(&event);
    let header = signature::header(crate::timestamp::unix_now(), body.as_bytes(), &opts.signers);
    match crate::webhook::post(&opts.client, &opts.to, &body, Some(&header), &[]).await {
        Ok(reply) => {
            line.status = Some(reply.status.as_u16());
            line.ms = Some(reply.ms);
            line.ok = reply.status.is_success();
            if !line.ok {
                line.error = Some(reply.excerpt());
            }
        }
        Err(e) => {
            line.ok = false;
            line.error = Some(e.message().to_owned());
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_filters_what_it_can() {
        let f = Filter {
            since: Some(100),
            until: Some(200),
            types: vec!["invoice.*".into()],
            failed_only: true,
            ids: vec![],
        };
        let q = f.query();
        let has = |k: &str, v: &str| q.iter().any(|(a, b)| a == k && b == v);
        assert!(has("created[gte]", "100") && has("created[lte]", "200"));
        assert!(has("type", "invoice.*") && has("delivery_success", "false"));
        let exact = Filter {
            types: vec!["a.b".into(), "c.d".into()],
            ..Default::default()
        };
        assert_eq!(
            exact.query().iter().filter(|(k, _)| k == "types[]").count(),
            2
        );
        let globs = Filter {
            types: vec!["a.*".into(), "c.d".into()],
            ..Default::default()
        };
        assert!(globs.query().is_empty(), "several globs are filtered here");
        assert!(globs.keeps(&json!({"type": "a.x"})) && globs.keeps(&json!({"type": "c.d"})));
        assert!(!globs.keeps(&json!({"type": "c.e"})));
    }

    #[test]
    fn events_go_oldest_first_with_ties_in_stripes_order_reversed() {
        let listed = vec![
            json!({"id": "e3", "created": 3}),
            json!({"id": "e2b", "created": 2}),
            json!({"id": "e2a", "created": 2}),
            json!({"id": "e1", "created": 1}),
        ];
        let ids: Vec<String> = oldest_first(listed)
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, ["e1", "e2a", "e2b", "e3"]);
    }

    fn endpoint(id: &str, url: &str, status: &str, version: Option<&str>) -> WebhookEndpoint {
        serde_json::from_value(json!({"id": id, "url": url, "status": status,
                                      "api_version": version}))
        .unwrap()
    }

    #[test]
    fn the_receivers_version_is_its_enabled_endpoints_when_they_agree() {
        let to = "https://shop.example/hook";
        let one = [
            endpoint(
                "we_1",
                "https://shop.example/hook/",
                "enabled",
                Some("2024-06-20"),
            ),
            endpoint("we_2", to, "disabled", Some("2020-08-27")),
            endpoint("we_3", "https://other.example/hook", "enabled", None),
        ];
        assert_eq!(
            pinned_version(&one, to),
            Some(("2024-06-20".into(), "pinned on we_1".into()))
        );
        let unpinned = [endpoint("we_1", to, "enabled", None)];
        assert_eq!(pinned_version(&unpinned, to), None);
        let disagree = [
            endpoint("we_1", to, "enabled", Some("2024-06-20")),
            endpoint("we_2", to, "enabled", Some("2025-03-31.basil")),
        ];
        assert_eq!(pinned_version(&disagree, to), None);
        assert_eq!(pinned_version(&[], to), None);
    }

    #[test]
    fn events_naming_another_version_are_counted_and_warned_about() {
        let events = [
            json!({"api_version": "2024-06-20"}),
            json!({"api_version": "2025-08-27.basil"}),
            json!({"api_version": "2025-08-27.basil"}),
            json!({}),
        ];
        let v = ApiVersions::of(
            &events,
            Some("2024-06-20".into()),
            Some("pinned on we_1".into()),
        );
        assert_eq!(v.other, 3);
        assert_eq!(v.rendered["2025-08-27.basil"], 2);
        assert_eq!(v.rendered["none"], 1);
        let w = v.warning(4).unwrap();
        assert!(
            w.starts_with("3 of 4 event(s) name API version 2025-08-27.basil, none, not 2024-06-20 (pinned on we_1)"),
            "{w}"
        );
        assert!(w.contains("Go (v73+) or .NET"), "{w}");
        let unknown = ApiVersions::of(&events, None, None);
        assert_eq!((unknown.other, unknown.warning(4)), (0, None));
        let all_match = ApiVersions::of(&events[..1], Some("2024-06-20".into()), None);
        assert_eq!(all_match.warning(1), None);
    }

    #[test]
    fn the_state_belongs_to_one_url_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut s = State::load(&path, "http://a/h").unwrap();
        s.delivered.insert("evt_1".into());
        s.save(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            State::load(&path, "http://a/h")
                .unwrap()
                .delivered
                .contains("evt_1")
        );
        let e = State::load(&path, "http://b/h").unwrap_err();
        assert_eq!(e.exit, crate::error::Exit::Usage);
        assert!(
            e.message().contains("records deliveries to http://a/h"),
            "{}",
            e.message()
        );
    }
}
