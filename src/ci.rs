//! CI-native reports. On GitHub Actions (`GITHUB_ACTIONS=true`), `smoke`, `check`, `enable` and
//! `webhook rotate` append a Markdown summary (their steps or cases, outcome and time) to the
//! file `$GITHUB_STEP_SUMMARY` names, and print `::error::`/`::warning::` workflow commands for
//! failures and advisory findings. The commands go to stderr: the runner parses both streams
//! for them (actions/runner `ScriptHandler.cs` hands stdout and stderr to `OutputManager`), and
//! stdout stays the one `--json` document. Everything passes through the secret scrubber.
//!
//! GitHub's limits (its docs on workflow commands and job summaries): a step summary of at most
//! 1 MiB, and at most 10 error and 10 warning annotations shown per step, so the rest are
//! folded into one line that counts them. `junit` renders the same rows as JUnit XML for the
//! reports that have no JUnit of their own (`smoke --junit`).

use std::io::Write;
use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use crate::config::vars;
use crate::error::{Error, Result};
use crate::secret::scrub;

/// Annotations of one kind GitHub shows per step.
const MAX_ANNOTATIONS: usize = 10;
/// What a step summary may hold; ours stays well under it.
const MAX_SUMMARY_BYTES: usize = 900 * 1024;
/// Characters of a detail in a summary row.
const MAX_DETAIL_CHARS: usize = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Warned,
    Skipped,
}

impl Outcome {
    fn mark(self) -> &'static str {
        match self {
            Outcome::Passed => "✅ pass",
            Outcome::Failed => "❌ FAIL",
            Outcome::Warned => "⚠️ warn",
            Outcome::Skipped => "⏭️ skip",
        }
    }
}

/// One step or case.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub outcome: Outcome,
    pub ms: Option<f64>,
    pub detail: String,
}

/// What a command reports to CI.
#[derive(Debug, Clone)]
pub struct Summary {
    /// "stripe-ops check http://…/hook".
    pub title: String,
    pub ok: bool,
    pub rows: Vec<Row>,
    /// The totals line.
    pub footer: String,
}

impl Summary {
    /// The summary of a command that failed before it had steps to show; a failed rollout's
    /// stopped tasks (its `--json` details) are its rows.
    pub fn failed(title: impl Into<String>, e: &Error) -> Self {
        Summary {
            title: title.into(),
            ok: false,
            rows: e.details().map(stopped_task_rows).unwrap_or_default(),
            footer: format!("failed (exit {}): {}", e.exit.code(), e.message()),
        }
    }
}

/// A row per stopped task of `details.rollout.stopped_tasks` (a failed rollout's, as `--json`
/// gives it): its classification in words, with its last log lines; a stop a new task may not
/// repeat is a warning, the others failures.
fn stopped_task_rows(details: &serde_json::Value) -> Vec<Row> {
    let Some(tasks) = details["rollout"]["stopped_tasks"].as_array() else {
        return Vec::new();
    };
    tasks
        .iter()
        .map(|t| {
            let task = t["task"].as_str().unwrap_or("?");
            let c = &t["classification"];
            let mut detail = c["explanation"]
                .as_str()
                .or(t["stopped_reason"].as_str())
                .unwrap_or("no reason given")
                .to_owned();
            if let Some(lines) = t["last_log_lines"].as_array() {
                let lines: Vec<&str> = lines.iter().filter_map(|l| l.as_str()).collect();
                detail.push_str(&format!("; its last log lines: {}", lines.join(" / ")));
            }
            Row {
                name: format!("stopped task {}", task.rsplit('/').next().unwrap_or(task)),
                outcome: if c["heals"] == true {
                    Outcome::Warned
                } else {
                    Outcome::Failed
                },
                ms: None,
                detail,
            }
        })
        .collect()
}

/// Set once a summary was published: a report whose verdict then fails adds no second one.
static PUBLISHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a summary was published in this process.
pub fn published() -> bool {
    PUBLISHED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether this process runs as a GitHub Actions step.
pub fn on_github() -> bool {
    vars::GITHUB_ACTIONS.os().is_some_and(|v| v == "true")
}

/// On GitHub Actions: appends the summary to `$GITHUB_STEP_SUMMARY` and prints the annotations.
/// A summary file that cannot be written is a warning, never a failure of the command.
pub fn publish(summary: &Summary) {
    if !on_github() {
        return;
    }
    PUBLISHED.store(true, std::sync::atomic::Ordering::Relaxed);
    for line in annotations(summary) {
        eprintln!("{line}");
    }
    let Some(path) = vars::GITHUB_STEP_SUMMARY.os().filter(|p| !p.is_empty()) else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut f| f.write_all(markdown(summary).as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "{}",
            scrub(&format!(
                "::warning title=stripe-ops::{}",
                escape_data(&format!(
                    "cannot append the job summary to $GITHUB_STEP_SUMMARY: {e}"
                ))
            ))
        );
    }
}

/// The summary as GitHub-flavoured Markdown: a heading with the verdict, a table, the totals.
pub fn markdown(summary: &Summary) -> String {
    let verdict = if summary.ok { "✅" } else { "❌" };
    let mut md = format!("### {verdict} {}\n\n", cell(&summary.title));
    if !summary.rows.is_empty() {
        md.push_str("| step | result | ms | detail |\n| --- | --- | ---: | --- |\n");
        for (i, r) in summary.rows.iter().enumerate() {
            let row = format!(
                "| `{}` | {} | {} | {} |\n",
                r.name.replace('`', "'"),
                r.outcome.mark(),
                r.ms.map_or("-".to_owned(), |m| format!("{m:.1}")),
                cell(&clip(&r.detail, MAX_DETAIL_CHARS))
            );
            if md.len() + row.len() > MAX_SUMMARY_BYTES {
                md.push_str(&format!(
                    "| … | | | {} more rows not shown |\n",
                    summary.rows.len() - i
                ));
                break;
            }
            md.push_str(&row);
        }
        md.push('\n');
    }
    md.push_str(&cell(&summary.footer));
    md.push_str("\n\n");
    scrub(&md).into_owned()
}

/// `::error title=…::message` for each failure, `::warning …` for each advisory finding, at most
/// ten of each and a last one counting the rest.
pub fn annotations(summary: &Summary) -> Vec<String> {
    let mut lines = Vec::new();
    for (kind, outcome) in [("error", Outcome::Failed), ("warning", Outcome::Warned)] {
        let rows: Vec<&Row> = summary
            .rows
            .iter()
            .filter(|r| r.outcome == outcome)
            .collect();
        // Ten are shown: all of them when they fit, else nine and a tenth that counts the rest.
        let shown = if rows.len() <= MAX_ANNOTATIONS {
            rows.len()
        } else {
            MAX_ANNOTATIONS - 1
        };
        for r in &rows[..shown] {
            lines.push(format!(
                "::{kind} title={}::{}",
                escape_property(&format!("{}: {}", summary.title, r.name)),
                escape_data(&r.detail)
            ));
        }
        if rows.len() > shown {
            lines.push(format!(
                "::{kind} title={}::{} more; see the job summary",
                escape_property(&summary.title),
                rows.len() - shown
            ));
        }
    }
    if !summary.ok && summary.rows.iter().all(|r| r.outcome != Outcome::Failed) {
        lines.push(format!(
            "::error title={}::{}",
            escape_property(&summary.title),
            escape_data(&summary.footer)
        ));
    }
    lines.into_iter().map(|l| scrub(&l).into_owned()).collect()
}

/// JUnit XML of the rows, one test suite named `suite`.
pub fn junit(summary: &Summary, suite: &str, elapsed: Duration) -> Result<String> {
    let mut report = quick_junit::Report::new(format!("stripe-ops {suite}"));
    report.set_time(elapsed);
    let mut ts = TestSuite::new(suite);
    for r in &summary.rows {
        let detail = scrub(&r.detail).into_owned();
        let status = match r.outcome {
            Outcome::Passed | Outcome::Warned => TestCaseStatus::success(),
            Outcome::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(detail.as_str());
                s
            }
            Outcome::Failed => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(detail.as_str());
                s
            }
        };
        let mut tc = TestCase::new(r.name.as_str(), status);
        tc.set_classname(format!("stripe-ops.{suite}"));
        if let Some(ms) = r.ms {
            tc.set_time(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
        }
        tc.set_system_out(detail.as_str());
        ts.add_test_case(tc);
    }
    report.add_test_suite(ts);
    report
        .to_string()
        .map_err(|e| Error::external(format!("cannot render JUnit XML: {e}")))
}

/// Writes `xml` to `path` (a usage error when it cannot be written).
pub fn write_junit(xml: &str, path: &std::path::Path) -> Result<()> {
    std::fs::write(path, xml)
        .map_err(|e| Error::usage(format!("cannot write JUnit file {}: {e}", path.display())))
}

/// A workflow command's message: `%`, CR and LF escaped (actions/toolkit `escapeData`).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property: also `:` and `,` (actions/toolkit `escapeProperty`).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Text for one table cell: one line, `|` escaped, HTML's `<` kept literal.
fn cell(s: &str) -> String {
    crate::printer::escape_controls(s)
        .replace('|', "\\|")
        .replace('<', "&lt;")
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, outcome: Outcome, detail: &str) -> Row {
        Row {
            name: name.into(),
            outcome,
            ms: Some(1.25),
            detail: detail.into(),
        }
    }

    #[test]
    fn markdown_is_one_table_escaped_and_scrubbed() {
        let s = Summary {
            title: "stripe-ops check http://x/hook".into(),
            ok: false,
            rows: vec![
                row("security.no_header", Outcome::Passed, "refused with 400"),
                row(
                    "types.a|b",
                    Outcome::Failed,
                    "bad | pipe\nnewline <b> sk_live_abcdefghijklmnop",
                ),
            ],
            footer: "1 passed, 1 failed".into(),
        };
        let md = markdown(&s);
        assert!(
            md.starts_with("### ❌ stripe-ops check http://x/hook\n\n| step |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| `types.a|b` | ❌ FAIL | 1.2 | bad \\| pipe\\nnewline &lt;b> [REDACTED] |"
            ),
            "{md}"
        );
        assert!(md.ends_with("1 passed, 1 failed\n\n"));
    }

    #[test]
    fn annotations_are_escaped_and_capped_at_ten_of_each() {
        let mut rows: Vec<Row> = (0..12)
            .map(|i| row(&format!("case{i}"), Outcome::Failed, "a,b: 50%\nnext"))
            .collect();
        rows.push(row("slow", Outcome::Warned, "slow: answered after 3s"));
        let s = Summary {
            title: "stripe-ops check".into(),
            ok: false,
            rows,
            footer: String::new(),
        };
        let lines = annotations(&s);
        let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("::error")).collect();
        assert_eq!(errors.len(), 10);
        assert_eq!(
            errors[0],
            "::error title=stripe-ops check%3A case0::a,b: 50%25%0Anext"
        );
        assert!(
            errors[9].contains("3 more; see the job summary"),
            "{}",
            errors[9]
        );
        assert_eq!(
            lines.last().unwrap(),
            "::warning title=stripe-ops check%3A slow::slow: answered after 3s"
        );
        // A failure without rows (an error before any step) is still one annotation.
        let failed = Summary::failed(
            "stripe-ops enable --env staging",
            &Error::external("ECS rolled back"),
        );
        assert_eq!(
            annotations(&failed),
            ["::error title=stripe-ops enable --env staging::failed (exit 3): ECS rolled back"]
        );
    }

    #[test]
    fn junit_has_one_case_per_row() {
        let s = Summary {
            title: "t".into(),
            ok: false,
            rows: vec![
                row("health", Outcome::Passed, "200"),
                row("webhook", Outcome::Failed, "answered 500"),
            ],
            footer: String::new(),
        };
        let xml = junit(&s, "smoke", Duration::from_millis(5)).unwrap();
        assert!(
            xml.contains(r#"<testsuite name="smoke" tests="2""#),
            "{xml}"
        );
        assert!(xml.contains(r#"failures="1""#), "{xml}");
    }

    #[test]
    fn a_failed_rollout_has_a_row_per_stopped_task() {
        let e = Error::external("deploying api: the new tasks cannot start").with_details(
            serde_json::json!({"rollout": {"stopped_tasks": [
                {"task": "arn:aws:ecs:us-east-1:1:task/c/t1", "stopped_reason": "Essential container in task exited",
                 "classification": {"kind": "exited", "heals": false, "explanation": "container api exits with code 1"},
                 "last_log_lines": ["boot", "Error: no key"]},
                {"task": "arn:aws:ecs:us-east-1:1:task/c/t2",
                 "classification": {"kind": "scheduler", "heals": true, "explanation": "stopped by the ECS scheduler"}}
            ]}}),
        );
        let s = Summary::failed("stripe-ops enable --env staging", &e);
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[0].name, "stopped task t1");
        assert_eq!(s.rows[0].outcome, Outcome::Failed);
        assert_eq!(
            s.rows[0].detail,
            "container api exits with code 1; its last log lines: boot / Error: no key"
        );
        assert_eq!(s.rows[1].outcome, Outcome::Warned);
        let md = markdown(&s);
        assert!(md.contains("| `stopped task t1` | ❌ FAIL |"), "{md}");
        assert!(annotations(&s)[0].contains("container api exits with code 1"));
        assert!(Summary::failed("t", &Error::external("x")).rows.is_empty());
    }
}
