//! `check`: a conformance and abuse suite for a Stripe webhook receiver.
//!
//! `cases` is the pure catalogue (what each case sends and expects), `runner` sends the requests
//! and judges the answers, `report` renders the table, the JSON document and JUnit XML.

pub mod cases;
pub mod report;
pub mod runner;

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::printer::{Printer, Report};
use crate::webhook::fixtures::Catalog;

pub use cases::Suite;
pub use report::{CaseResult, CheckReport, Outcome};
pub use runner::{AppTarget, Options, run};

/// The cases of `suites` (all when empty), narrowed to `names` when given.
pub fn cases_for(
    fixtures_dir: Option<&std::path::Path>,
    suites: &[Suite],
    names: &[String],
    expect_ignored: &[String],
    payload: EventPayload,
) -> Result<Vec<cases::Case>> {
    let catalog = Catalog::load(fixtures_dir)?;
    let thin = payload == EventPayload::Thin;
    // A webhook endpoint gets snapshot events only, an event destination with the thin payload
    // thin ones only: sending the other kind would fail receivers that work.
    let types: Vec<String> = catalog
        .types()
        .filter(|t| catalog.is_thin(t) == thin)
        .map(str::to_owned)
        .collect();
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
    for t in expect_ignored {
        catalog
            .template(t)
            .map_err(|e| e.context("--expect-ignored"))?;
    }
    cases::select(cases::catalogue(&types, expect_ignored), suites, names).map_err(Error::usage)
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
