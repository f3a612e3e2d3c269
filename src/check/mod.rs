//! `check`: a conformance and abuse suite for a Stripe webhook receiver.
//!
//! This file: which cases run (`cases_for`), and the run itself: the delivery cases
//! (security, robustness, types) are independent and run a few at a time; then the cases that
//! read the receiver's state, after every delivery case has been answered: the top-up
//! contract's on the buyer's balance (`topup`), or any receiver's through an observer
//! (`observed`), and the "no effect" of the `--expect-ignored` types.
//!
//! Pure: `cases` (the catalogue: what each case expects and why), `deliveries` (each case's
//! exact request), `judge` (answers in plain words, timed), `observe`'s state comparison.
//! I/O: `runner` (the toolkit: one delivery, one delivery case, the probes), `topup`,
//! `observed`, `subscribed` (the receiver's endpoint at Stripe). `report` renders the table,
//! JSON and JUnit XML.

pub mod cases;
pub mod deliveries;
pub mod judge;
pub mod observe;
mod observed;
pub mod report;
pub mod runner;
pub mod subscribed;
mod topup;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::app_client::Buyer;
use crate::config::Contract;
use crate::error::{Error, Result};
use crate::http;
use crate::printer::{Printer, Report};
use crate::secret::SecretString;
use crate::webhook::fixtures::Catalog;
use cases::{Case, Kind};
use observe::Observer;
use runner::{PARALLEL_DELIVERIES, Runner};

pub use cases::{Plan, Suite};
pub use observe::ObserverSpec;
pub use report::{CaseResult, CheckReport, Outcome};

/// A request unanswered after this many answer-time budgets counts as a hang.
const HANG_FACTOR: u32 = 3;

/// Where the app contract is, for the top-up idempotency cases (and the types' "no effect").
#[derive(Debug, Clone)]
pub struct AppTarget {
    pub base_url: String,
    pub contract: Contract,
    /// `None`: register a fresh buyer.
    pub buyer: Option<Buyer>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub webhook_url: String,
    /// The receiver's webhook secrets; valid deliveries are signed with each (`v1=` per secret).
    pub secrets: Vec<SecretString>,
    pub app: Option<AppTarget>,
    /// How the receiver's state is seen (`--observe`, `--observe-url`); replaces the balance.
    pub observer: Option<ObserverSpec>,
    /// `--account`: every event as Stripe delivers it to a Connect endpoint.
    pub account: Option<String>,
    /// Answer-time budget per request (`--timeout`).
    pub budget: Duration,
    /// Answers slower than this pass with advice (`--slow-answer`).
    pub slow: Duration,
    pub tolerance: i64,
    pub amount_cents: i64,
    pub cases: Vec<Case>,
    pub fixtures_dir: Option<PathBuf>,
    /// How long to wait for an effect (`--settle-timeout`); "nothing (more) happened" verdicts
    /// watch the state for `retry::quiet_window` of the slowest effect seen.
    pub settle: Duration,
    /// Advisory failures fail the run too.
    pub strict: bool,
    /// Sent with every delivery (`-H`), replacing a default of the same name.
    pub headers: Vec<crate::http::ExtraHeader>,
    /// Snapshot or thin events: used to say so when the receiver expects the other kind.
    pub payload: EventPayload,
    /// The `api_version` every snapshot event names (the catalogue's when None).
    pub api_version: Option<String>,
}

impl Options {
    pub(crate) fn hang_limit(&self) -> Duration {
        self.budget * HANG_FACTOR
    }
}

pub const NEEDS_STATE: &str = "needs the receiver's state: --observe CMD or --observe-url URL (any receiver), or --base-url (the top-up contract)";

/// Runs every case of `opts` and returns the report (failures are in it, not errors).
pub async fn run(opts: Options, out: &Printer) -> Result<CheckReport> {
    let started = Instant::now();
    let runner = Runner::new(opts)?;
    let bar = out.bar(runner.opts.cases.len() as u64, "checking");
    let (parallel, serial): (Vec<Case>, Vec<Case>) = runner
        .opts
        .cases
        .iter()
        .cloned()
        .partition(|c| runs_in_parallel(&runner.opts, c));
    let mut results: Vec<CaseResult> = futures_util::stream::iter(parallel.iter())
        .map(|c| {
            let bar = bar.clone();
            let runner = &runner;
            async move {
                let r = runner.delivery_case(c).await;
                bar.inc(1);
                r
            }
        })
        .buffered(PARALLEL_DELIVERIES)
        .collect()
        .await;
    results.extend(state_cases(&runner, &serial).await?);
    bar.inc(serial.len() as u64);
    bar.finish_and_clear();
    runner.explain_payload_mismatch(&mut results).await;
    let order = |r: &CaseResult| {
        runner
            .opts
            .cases
            .iter()
            .position(|c| c.name == r.name)
            .unwrap_or(usize::MAX)
    };
    results.sort_by_key(order);
    let base = runner.opts.app.as_ref().map(|a| a.base_url.as_str());
    Ok(CheckReport::new(
        &http::display_url(&runner.opts.webhook_url),
        base.map(http::display_url).as_deref(),
        results,
        started.elapsed(),
        runner.opts.strict,
    ))
}

/// Whether the receiver's state can be seen: an observer, or the top-up contract's balance.
fn sees_state(opts: &Options) -> bool {
    opts.observer.is_some() || opts.app.is_some()
}

fn runs_in_parallel(opts: &Options, case: &Case) -> bool {
    match &case.kind {
        Kind::Idempotency(_) | Kind::Observed { .. } | Kind::Connect { .. } => false,
        Kind::Type { ignored, .. } => !(*ignored && sees_state(opts)),
        _ => true,
    }
}

/// The cases that read the receiver's state, with the observer or the app; skipped (with the
/// reason) when neither is there.
async fn state_cases(runner: &Runner, cases: &[Case]) -> Result<Vec<CaseResult>> {
    if cases.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(spec) = &runner.opts.observer {
        let observer = Observer::new(spec.clone(), runner.opts.budget)?;
        return observed::run(runner, &observer, cases).await;
    }
    if let Some(app) = &runner.opts.app {
        return Ok(topup::run(runner, app, cases).await);
    }
    Ok(cases
        .iter()
        .map(|c| CaseResult::new(c, Outcome::Skipped, NEEDS_STATE))
        .collect())
}

/// The types suite's events when neither `--types` nor the receiver's endpoint at Stripe says
/// which: the types stripe-ops shipped before the catalogue had every type (the top-up flow,
/// subscriptions, disputes, Connect), and the two thin events of Stripe's docs.
pub const CLASSIC_TYPES: &[&str] = &[
    "account.updated",
    "charge.dispute.created",
    "charge.refunded",
    "charge.succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.completed",
    "checkout.session.expired",
    "customer.created",
    "customer.subscription.created",
    "customer.subscription.deleted",
    "customer.subscription.updated",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "payment_intent.payment_failed",
    "payment_intent.succeeded",
    "v1.billing.meter.error_report_triggered",
    "v2.core.event_destination.ping",
];

/// Which cases to run, as the command line chose them.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    pub fixtures_dir: Option<&'a std::path::Path>,
    /// The suites (all when empty).
    pub suites: &'a [Suite],
    /// Only these cases (all of the suites when empty).
    pub names: &'a [String],
    pub expect_ignored: &'a [String],
    /// Event type globs for the types (and observed idempotency) cases; [`CLASSIC_TYPES`] (and
    /// the `--fixtures-dir` ones) when empty.
    pub types: &'a [String],
    pub payload: EventPayload,
    pub plan: Plan,
}

/// The cases of the selection's suites, narrowed to its names when given.
pub fn cases_for(sel: &Selection) -> Result<Vec<cases::Case>> {
    let Selection {
        fixtures_dir,
        suites,
        names,
        expect_ignored,
        payload,
        plan,
        ..
    } = *sel;
    let catalog = Catalog::load(fixtures_dir)?;
    let thin = payload == EventPayload::Thin;
    let globs: Vec<wildmatch::WildMatch> = sel
        .types
        .iter()
        .map(|g| wildmatch::WildMatch::new(g))
        .collect();
    // A webhook endpoint gets snapshot events only, an event destination with the thin payload
    // thin ones only: sending the other kind would fail receivers that work.
    let types: Vec<String> = catalog
        .types()
        .filter(|t| catalog.is_thin(t) == thin)
        .filter(|t| {
            if globs.is_empty() {
                CLASSIC_TYPES.contains(t) || catalog.is_extra(t)
            } else {
                globs.iter().any(|g| g.matches(t))
            }
        })
        .map(str::to_owned)
        .collect();
    if types.is_empty() && !globs.is_empty() {
        return Err(Error::usage(format!(
            "--types {} matches no {} event type; `stripe-ops events list` shows them",
            sel.types.join(","),
            if thin { "thin" } else { "snapshot" }
        )));
    }
    let suites = match (thin, suites) {
        (false, _) => suites,
        (true, []) => &[Suite::Types][..],
        (true, s) if s.iter().all(|s| *s == Suite::Types) => s,
        (true, _) => {
            return Err(Error::usage(
                "--event-payload thin runs the types suite only: the other suites send snapshot events, which an event destination with the thin payload never receives",
            ));
        }
    };
    if suites.contains(&Suite::Connect) && !(plan.observer && plan.account) {
        return Err(Error::usage(
            "the connect suite needs --account acct_… and an observer (--observe CMD or --observe-url URL): it compares a connected account's event with the platform's own on the platform's state",
        ));
    }
    for t in expect_ignored {
        catalog
            .template(t)
            .map_err(|e| e.context("--expect-ignored"))?;
    }
    cases::select(
        cases::catalogue(&types, expect_ignored, plan),
        suites,
        names,
    )
    .map_err(Error::usage)
}

/// Notes what the events' objects would look like at `version` instead of the catalogue's,
/// once per object.
pub fn note_shapes(
    version: &str,
    selected: &[cases::Case],
    fixtures_dir: Option<&std::path::Path>,
    out: &Printer,
) -> Result<()> {
    let catalog = Catalog::load(fixtures_dir)?;
    let mut objects: Vec<&str> = selected
        .iter()
        .filter_map(|c| match &c.kind {
            cases::Kind::Type { event_type, .. } => Some(event_type.as_str()),
            kind => kind.observed_type(),
        })
        .filter_map(|t| catalog.object_of(t))
        .collect();
    objects.sort_unstable();
    objects.dedup();
    let mut notes: Vec<String> = objects
        .iter()
        .flat_map(|o| crate::webhook::versions::shape_notes(version, o))
        .collect();
    notes.dedup();
    for note in notes {
        out.tell(format!("note: {note}"));
    }
    Ok(())
}

/// Which kind of event the receiver gets: Stripe's `event_payload` of an event destination
/// (a classic webhook endpoint gets snapshot events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventPayload {
    #[default]
    Snapshot,
    Thin,
}

/// The cases and what each expects, without sending anything (`--list`).
pub struct CaseList(pub Vec<cases::Case>);

impl Report for CaseList {
    fn json(&self) -> Value {
        let list: Vec<_> = self
            .0
            .iter()
            .map(|c| {
                json!({
                    "name": c.name, "suite": c.suite, "expect": c.expect.describe(),
                    "severity": c.severity, "what": c.what, "why": c.why,
                })
            })
            .collect();
        json!({ "cases": list })
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        let width = self.0.iter().map(|c| c.name.len()).max().unwrap_or(0);
        self.0
            .iter()
            .flat_map(|c| {
                [
                    format!(
                        "{:width$}  {:15}  {:8}  {}",
                        c.name,
                        c.expect.describe(),
                        c.severity.name(),
                        c.what
                    ),
                    format!("{:width$}  why: {}", "", c.why),
                ]
            })
            .collect()
    }
}
