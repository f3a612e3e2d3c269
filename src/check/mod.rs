//! `check`: a conformance and abuse suite for a Stripe webhook receiver.
//!
//! Pure: `cases` (the catalogue: what each case expects and why), `deliveries` (each case's
//! exact request), `judge` (answers in plain words, timed), `observe`'s state comparison.
//! I/O: `runner` (the delivery cases), `topup` (the top-up contract's balance), `observed` (any
//! receiver's state through an observer). `report` renders the table, JSON and JUnit XML.

pub mod cases;
pub mod deliveries;
pub mod judge;
pub mod observe;
mod observed;
pub mod report;
pub mod runner;
pub mod subscribed;
mod topup;

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::printer::{Printer, Report};
use crate::webhook::fixtures::Catalog;

pub use cases::{Plan, Suite};
pub use observe::ObserverSpec;
pub use report::{CaseResult, CheckReport, Outcome};
pub use runner::{AppTarget, Options, run};

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
