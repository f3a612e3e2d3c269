//! The results of a check run: the table for people, the JSON document, and JUnit XML for CI.

use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use super::cases::{Case, Severity, Suite};
use crate::error::{Error, Result};
use crate::printer::{Printer, Report};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
    /// An advisory case failed: shown as a warning, fails the run only with `--strict`.
    Warned,
    Skipped,
}

/// One case's result: what it expected, what happened.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub suite: Suite,
    pub expect: &'static str,
    pub severity: Severity,
    pub what: String,
    pub outcome: Outcome,
    /// The HTTP status of the (last) delivery, when there was an answer.
    pub status: Option<u16>,
    /// Latency of the (last) delivery in milliseconds.
    pub ms: Option<f64>,
    pub detail: String,
    /// The start of the receiver's answer (scrubbed, escaped, at most ~200 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// An advisory finding on a passed case (a slow answer): a warning, a failure with `--strict`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
    /// The receiver (or app) could not be reached at all for this case.
    #[serde(skip)]
    pub unreachable: bool,
    /// The case could not run (no buyer, an app error): a failure, whatever its severity.
    #[serde(skip)]
    pub could_not_run: bool,
}

impl CaseResult {
    /// The detail, then the advice, then (for a case that did not pass) what the receiver
    /// answered: one line for the table, JUnit and CI annotations.
    pub fn explained(&self) -> String {
        let mut text = self.detail.clone();
        if let Some(a) = &self.advice {
            text = format!("{text}; {a}");
        }
        if let Some(answer) = &self.answer
            && matches!(self.outcome, Outcome::Failed | Outcome::Warned)
            && !text.contains(answer.as_str())
        {
            text = format!("{text} (answer: {answer})");
        }
        text
    }

    pub fn new(case: &Case, outcome: Outcome, detail: impl Into<String>) -> Self {
        Self {
            name: case.name.clone(),
            suite: case.suite,
            expect: case.expect.describe(),
            severity: case.severity,
            what: case.what.clone(),
            outcome,
            status: None,
            ms: None,
            detail: crate::secret::scrub(&detail.into()).into_owned(),
            answer: None,
            advice: None,
            unreachable: false,
            could_not_run: false,
        }
    }

    pub fn judged(case: &Case, verdict: std::result::Result<String, String>) -> Self {
        match verdict {
            Ok(d) => Self::new(case, Outcome::Passed, d),
            Err(d) => Self::new(case, Outcome::Failed, d),
        }
    }

    pub fn with_answer(mut self, status: Option<u16>, ms: Option<f64>) -> Self {
        self.status = status;
        self.ms = ms;
        self
    }

    /// Records what the receiver answered: status, time and the body's excerpt.
    pub fn answered(mut self, answer: &super::judge::Answer) -> Self {
        self.status = answer.code();
        self.ms = answer.ms();
        self.answer = answer.excerpt();
        self.unreachable = matches!(answer, super::judge::Answer::Failed { .. });
        self
    }

    /// Adds an advisory finding (kept scrubbed).
    pub fn advised(mut self, advice: Option<String>) -> Self {
        if let Some(a) = advice {
            let a = crate::secret::scrub(&a).into_owned();
            self.advice = Some(match self.advice.take() {
                Some(earlier) => format!("{earlier}; {a}"),
                None => a,
            });
        }
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub ok: bool,
    pub webhook_url: String,
    pub base_url: Option<String>,
    pub passed: usize,
    pub failed: usize,
    pub warned: usize,
    pub skipped: usize,
    /// Advisory failures fail the run too.
    pub strict: bool,
    pub elapsed_s: f64,
    pub cases: Vec<CaseResult>,
}

impl CheckReport {
    /// The report of `cases`; a failed advisory case becomes a warning unless `strict`.
    pub fn new(
        webhook_url: &str,
        base_url: Option<&str>,
        mut cases: Vec<CaseResult>,
        elapsed: Duration,
        strict: bool,
    ) -> Self {
        for c in &mut cases {
            let advisory = c.severity == Severity::Advisory && !c.could_not_run && !c.unreachable;
            if c.outcome == Outcome::Failed && advisory && !strict {
                c.outcome = Outcome::Warned;
            }
            // An advisory finding on a pass (a slow answer) warns, and fails with --strict.
            if c.outcome == Outcome::Passed && c.advice.is_some() {
                c.outcome = if strict {
                    Outcome::Failed
                } else {
                    Outcome::Warned
                };
            }
        }
        let count = |o| cases.iter().filter(|c| c.outcome == o).count();
        let (passed, failed, warned, skipped) = (
            count(Outcome::Passed),
            count(Outcome::Failed),
            count(Outcome::Warned),
            count(Outcome::Skipped),
        );
        Self {
            ok: failed == 0,
            webhook_url: webhook_url.to_owned(),
            base_url: base_url.map(str::to_owned),
            passed,
            failed,
            warned,
            skipped,
            strict,
            elapsed_s: elapsed.as_secs_f64(),
            cases,
        }
    }

    /// True when no case that ran got an answer: nothing to judge, the receiver (or the app) is
    /// unreachable.
    fn nothing_answered(&self) -> bool {
        let ran: Vec<&CaseResult> = self
            .cases
            .iter()
            .filter(|c| c.outcome != Outcome::Skipped)
            .collect();
        !ran.is_empty() && ran.iter().all(|c| c.unreachable)
    }

    fn failed_names(&self) -> Vec<&str> {
        self.cases
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .map(|c| c.name.as_str())
            .collect()
    }
}

impl Report for CheckReport {
    fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("reports serialize")
    }

    fn human(&self, out: &Printer) -> Vec<String> {
        table(self, out)
    }

    fn ci_summary(&self) -> Option<crate::ci::Summary> {
        use crate::ci::{Outcome as O, Row};
        let rows = self
            .cases
            .iter()
            .map(|c| Row {
                name: c.name.clone(),
                outcome: match c.outcome {
                    Outcome::Passed => O::Passed,
                    Outcome::Failed => O::Failed,
                    Outcome::Warned => O::Warned,
                    Outcome::Skipped => O::Skipped,
                },
                ms: c.ms,
                detail: c.explained(),
            })
            .collect();
        Some(crate::ci::Summary {
            title: format!("stripe-ops check {}", self.webhook_url),
            ok: self.ok,
            rows,
            footer: totals(self),
        })
    }

    fn verdict(&self) -> Result<()> {
        if self.ok {
            Ok(())
        } else if self.nothing_answered() {
            Err(Error::external(format!(
                "no case got an answer from {}: {}",
                self.webhook_url,
                self.cases.first().map_or("", |c| c.detail.as_str())
            )))
        } else {
            Err(Error::failed(format!(
                "{} of {} check cases failed: {}",
                self.failed,
                self.cases.len(),
                self.failed_names().join(", ")
            )))
        }
    }
}

/// The table for people: one line per case, then the totals.
pub fn table(report: &CheckReport, out: &Printer) -> Vec<String> {
    let width = report
        .cases
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let expect_width = report
        .cases
        .iter()
        .map(|c| c.expect.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut lines = vec![format!(
        "{:width$}  {:expect_width$}  {:6}  {:>6}  {:>9}  DETAIL",
        "CASE", "EXPECT", "RESULT", "STATUS", "MS"
    )];
    for c in &report.cases {
        let result = match c.outcome {
            Outcome::Passed => out.paint("pass  ", "32"),
            Outcome::Failed => out.paint("FAIL  ", "31"),
            Outcome::Warned => out.paint("warn  ", "33"),
            Outcome::Skipped => out.paint("skip  ", "33"),
        };
        let status = c
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into());
        let ms =
            c.ms.map(|m| format!("{m:.1}"))
                .unwrap_or_else(|| "-".into());
        lines.push(format!(
            "{:width$}  {:expect_width$}  {result}  {status:>6}  {ms:>9}  {}",
            c.name,
            c.expect,
            c.explained()
        ));
    }
    lines.push(totals(report));
    lines
}

fn totals(report: &CheckReport) -> String {
    format!(
        "{} passed, {} failed, {} warnings (advisory{}), {} skipped in {:.1} s",
        report.passed,
        report.failed,
        report.warned,
        if report.strict { ", --strict" } else { "" },
        report.skipped,
        report.elapsed_s
    )
}

/// JUnit XML: one test suite per check suite, one test case per case.
pub fn junit(report: &CheckReport) -> Result<String> {
    let mut junit = quick_junit::Report::new("stripe-ops check");
    junit.set_time(Duration::from_secs_f64(report.elapsed_s));
    for suite in Suite::ALL {
        let cases: Vec<&CaseResult> = report.cases.iter().filter(|c| c.suite == suite).collect();
        if cases.is_empty() {
            continue;
        }
        let mut ts = TestSuite::new(suite.name());
        for c in cases {
            let status = match c.outcome {
                // A warning is not a failure: CI stays green, the warning is in system-out and
                // in the `warning` property.
                Outcome::Passed | Outcome::Warned => TestCaseStatus::success(),
                Outcome::Skipped => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(c.detail.as_str());
                    s
                }
                Outcome::Failed => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(c.explained());
                    s.set_type(format!("expected {}", c.expect));
                    s
                }
            };
            let mut tc = TestCase::new(c.name.as_str(), status);
            tc.set_classname(format!("stripe-ops.check.{}", suite.name()));
            tc.add_property(quick_junit::Property::new("severity", c.severity.name()));
            if c.outcome == Outcome::Warned {
                tc.add_property(quick_junit::Property::new("warning", c.explained()));
            }
            if let Some(ms) = c.ms {
                tc.set_time(Duration::from_secs_f64(ms / 1000.0));
            }
            let warning = if c.outcome == Outcome::Warned {
                "WARNING (advisory): "
            } else {
                ""
            };
            tc.set_system_out(format!(
                "{warning}{}; expected {}; {}",
                c.what,
                c.expect,
                c.explained()
            ));
            ts.add_test_case(tc);
        }
        junit.add_test_suite(ts);
    }
    junit
        .to_string()
        .map_err(|e| Error::external(format!("cannot render JUnit XML: {e}")))
}

pub fn write_junit(report: &CheckReport, path: &Path) -> Result<()> {
    let xml = junit(report)?;
    std::fs::write(path, xml)
        .map_err(|e| Error::usage(format!("cannot write JUnit file {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::cases::catalogue;

    fn results() -> Vec<CaseResult> {
        let all = catalogue(&[], &[], crate::check::cases::Plan::default());
        let case = |name: &str| all.iter().find(|c| c.name == name).unwrap().clone();
        vec![
            CaseResult::new(
                &case("security.valid_signature"),
                Outcome::Passed,
                "answered 200",
            )
            .with_answer(Some(200), Some(1.5)),
            CaseResult::new(
                &case("security.no_header"),
                Outcome::Failed,
                "accepted with 200 <&>",
            ),
            CaseResult::new(
                &case("security.timestamp_in_future"),
                Outcome::Failed,
                "accepted with 200",
            ),
            CaseResult::new(
                &case("idempotency.sequential_duplicate"),
                Outcome::Skipped,
                "needs --base-url",
            ),
        ]
    }

    fn sample() -> CheckReport {
        CheckReport::new(
            "http://x/hook",
            None,
            results(),
            Duration::from_millis(20),
            false,
        )
    }

    #[test]
    fn counts_and_table() {
        let r = sample();
        assert_eq!(
            (r.passed, r.failed, r.warned, r.skipped, r.ok),
            (1, 1, 1, 1, false)
        );
        assert_eq!(r.failed_names(), ["security.no_header"]);
        assert!(!r.nothing_answered());
        let t = table(&r, &Printer::silent());
        assert_eq!(t.len(), 6);
        assert!(t[1].contains("security.valid_signature") && t[1].contains("200"));
        assert!(t[3].contains("timestamp_in_future") && t[3].contains("warn"));
        assert!(t[5].starts_with("1 passed, 1 failed, 1 warnings (advisory), 1 skipped"));
    }

    #[test]
    fn advisory_failures_warn_unless_strict() {
        let mut only_advisory = results();
        only_advisory.remove(1);
        let lenient = CheckReport::new("u", None, only_advisory.clone(), Duration::ZERO, false);
        assert!(lenient.ok && lenient.verdict().is_ok());
        assert_eq!(lenient.warned, 1);
        let strict = CheckReport::new("u", None, only_advisory, Duration::ZERO, true);
        assert!(!strict.ok);
        assert_eq!(strict.verdict().unwrap_err().exit.code(), 1);
        let xml = junit(&lenient).unwrap();
        assert!(xml.contains("WARNING (advisory)"), "{xml}");
        assert!(xml.contains(r#"name="severity" value="advisory""#), "{xml}");
        assert!(!xml.contains("<failure"), "{xml}");
    }

    #[test]
    fn junit_has_suites_failures_and_skips() {
        let xml = junit(&sample()).unwrap();
        assert!(
            xml.contains(r#"<testsuite name="security" tests="3""#),
            "{xml}"
        );
        assert!(xml.contains(r#"failures="1""#));
        assert!(xml.contains(r#"<testsuite name="idempotency" tests="1""#));
        assert!(xml.contains("<skipped"));
        assert!(xml.contains("&lt;&amp;&gt;"));
    }
}
