//! CI-native reports in a real GitHub-style environment (`GITHUB_ACTIONS=true`,
//! `GITHUB_STEP_SUMMARY` a file): the Markdown summary appended per run, the `::error::` and
//! `::warning::` annotations on stderr, `smoke --junit`, all scrubbed.

use crate::check::{sandbox, secret_file, webhook};
use crate::common::*;

fn on_github(summary: &std::path::Path, args: &[&str]) -> std::process::Output {
    let o = bin()
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", summary)
        .args(args)
        .output()
        .unwrap();
    assert_no_leak(&o, &[CANARY_WHSEC]);
    o
}

#[test]
fn check_and_smoke_write_the_job_summary_and_annotations_on_github() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let sb = sandbox(dir.path(), &["no-signature-check"]);
    let secret = secret_file(dir.path());
    let url = webhook(&sb);
    let o = on_github(
        &summary,
        &[
            "--json",
            "check",
            "--webhook-url",
            &url,
            "--secret-file",
            &secret,
            "--suite",
            "security",
        ],
    );
    assert_code(&o, 1);
    // stdout stays the one JSON document; the workflow commands are on stderr.
    json_of(&o);
    let err = stderr(&o);
    let host = url.replace(':', "%3A");
    assert!(
        err.contains(&format!(
            "::error title=stripe-ops check {host}%3A security.no_header::accepted with 200, expected a 4xx refusal"
        )),
        "{err}"
    );
    assert!(
        err.contains("::warning title=stripe-ops check")
            && err.contains("security.timestamp_in_future"),
        "{err}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with(&format!(
            "### ❌ stripe-ops check {url}\n\n| step | result | ms | detail |"
        )),
        "{md}"
    );
    assert!(md.contains("| `security.no_header` | ❌ FAIL |"), "{md}");
    assert!(
        md.contains("| `security.valid_signature` | ✅ pass |"),
        "{md}"
    );
    assert!(
        md.contains("3 passed, 8 failed, 1 warnings (advisory), 0 skipped"),
        "{md}"
    );

    // A second command appends its own summary; a healthy smoke passes with its steps, and
    // writes JUnit when asked.
    let healthy = sandbox(dir.path(), &[]);
    let junit = dir.path().join("smoke.xml");
    let o = on_github(
        &summary,
        &[
            "smoke",
            "--base-url",
            &healthy.app,
            "--webhook-secret-file",
            &secret,
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_code(&o, 0);
    assert!(!stderr(&o).contains("::error"), "{}", stderr(&o));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(md.matches("### ").count(), 2, "{md}");
    assert!(
        md.contains(&format!("### ✅ stripe-ops smoke {}", healthy.app)),
        "{md}"
    );
    for step in [
        "health",
        "webhook",
        "credit",
        "replay",
        "concurrent",
        "wrong-secret",
        "old-timestamp",
        "events",
    ] {
        assert!(
            md.contains(&format!("| `{step}` | ✅ pass |")),
            "{step}: {md}"
        );
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuite name="smoke" tests="11" skipped="0" errors="0" failures="0">"#),
        "{xml}"
    );

    // A smoke that cannot start is one failed case, an error annotation and a summary.
    let o = on_github(
        &summary,
        &[
            "smoke",
            "--base-url",
            &closed_url(),
            "--webhook-secret-file",
            &secret,
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("::error title=stripe-ops smoke"),
        "{}",
        stderr(&o)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"failures="1""#), "{xml}");
    // Off GitHub, nothing of it.
    let o = run(&[
        "check",
        "--webhook-url",
        &url,
        "--secret-file",
        &secret,
        "--case",
        "security.no_header",
    ]);
    assert!(!stderr(&o).contains("::error"));
}
