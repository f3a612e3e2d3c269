//! `webhook rotate`: a new endpoint, its secret stored, the old ones disabled; plain HTTP and an
//! environment not enabled yet refused; its dry run and production without `--yes` change
//! nothing; the smoke against an app that reads its secrets from AWS.

use super::*;

#[test]
fn rotate_refuses_plain_http_and_an_environment_not_enabled_yet() {
    let aws = Aws::start(true);
    aws.seed(STAGING, "http://127.0.0.1:9", Some(CANARY_SK), None);
    let o = aws.cmd(&["webhook", "rotate", "--env", "staging"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("must be https://"), "{}", stderr(&o));
    let o = aws.cmd(&[
        "webhook",
        "rotate",
        "--env",
        "staging",
        "--allow-http",
        "--skip-smoke",
    ]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("run `stripe-ops enable --env staging` first"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn rotate_creates_a_new_endpoint_stores_its_secret_and_disables_the_old_ones() {
    let w = World::start(true, true, &[]);
    w.enable();
    let url = w.webhook_url();
    w.stripe("create", &url);
    w.stripe("create", &url);
    // With the one the sandbox registers for its app: three old endpoints.
    let mut old = w.enabled();
    assert_eq!(old.len(), 3);
    let other = w
        .stripe("create", "https://elsewhere.example/hook")
        .trim()
        .to_owned();
    // As a GitHub Actions step: the job summary gets the rotation's steps.
    let summary = tempfile::NamedTempFile::new().unwrap();
    let o = w
        .rotate_command("staging")
        .args(["--json", "--skip-smoke"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", summary.path())
        .output()
        .unwrap();
    assert_code(&o, 0);
    let md = std::fs::read_to_string(summary.path()).unwrap();
    assert!(
        md.starts_with("### ✅ stripe-ops webhook rotate --env staging"),
        "{md}"
    );
    for row in [
        "| `endpoint` | ✅ pass |",
        "| `secret proofwork-staging/STRIPE_WEBHOOK_SECRET` | ✅ pass |",
        "| `redeploy` | ✅ pass |",
        "| `smoke` | ⏭️ skip |",
        "| `disable` | ✅ pass |",
    ] {
        assert!(md.contains(row), "{row}: {md}");
    }
    let r = json_of(&o);
    let new_id = r["endpoint"]["id"].as_str().unwrap().to_owned();
    assert_eq!(w.enabled(), vec![new_id.clone()]);
    let mut disabled: Vec<String> = r["disabled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    disabled.sort();
    old.sort();
    assert_eq!(disabled, old);
    let all = w.stripe("list", "");
    assert!(
        all.contains(&format!(
            r#""id": "{other}", "url": "https://elsewhere.example/hook", "status": "enabled""#
        )),
        "{all}"
    );
    let snap = w.aws.snapshot(STAGING);
    let new_secret = snap["secrets"]["STRIPE_WEBHOOK_SECRET"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != CANARY_WHSEC);
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC, &new_secret]);
    assert!(!md.contains(&new_secret) && !md.contains(CANARY_SK));
    // Rotation changes the value, not the task definition.
    assert_eq!(
        revision(snap["service"]["taskDefinition"].as_str().unwrap()),
        "2"
    );
}

#[test]
fn rotate_dry_run_and_production_without_yes_change_nothing() {
    let w = World::start(true, true, &[]);
    w.enable();
    let before = w.aws.snapshot(STAGING);
    let enabled = w.enabled();
    let o = w.rotate(&["--dry-run"]);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("create a Stripe webhook endpoint for http://"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "disable the other enabled endpoints for this URL: {}",
            enabled[0]
        )),
        "{out}"
    );
    assert!(out.contains("dry run: nothing was changed"), "{out}");
    assert_eq!(w.aws.snapshot(STAGING), before);
    assert_eq!(w.enabled(), enabled);

    w.aws
        .seed(PROD, &w.sandbox.app, Some(CANARY_SK), Some(CANARY_WHSEC));
    let o = w.cmd(&[
        "enable",
        "--env",
        "prod",
        "--skip-put-secrets",
        "--skip-smoke",
        "--yes",
    ]);
    assert_code(&o, 0);
    let before = w.aws.snapshot(PROD);
    let mut c = w.rotate_command("prod");
    c.env("CI", "1").args(["--skip-smoke"]);
    let o = c.output().unwrap();
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("refusing to change production"),
        "{}",
        stderr(&o)
    );
    assert_eq!(w.aws.snapshot(PROD), before);
    assert_eq!(w.enabled(), enabled);
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC]);
}

#[test]
fn rotate_with_the_smoke_against_an_app_that_reads_its_secrets_from_aws() {
    let w = World::with_an_app_reading_secrets_from_aws("10ms");
    w.enable();
    let old = w.enabled();
    let started = std::time::Instant::now();
    let o = w.rotate(&["--json"]);
    eprintln!(
        "rotate (with smoke) against moto + sandbox: {:?}",
        started.elapsed()
    );
    assert_code(&o, 0);
    let r = json_of(&o);
    assert_eq!(r["smoke"]["ok"], true, "{r}");
    let new_id = r["endpoint"]["id"].as_str().unwrap().to_owned();
    assert_eq!(w.enabled(), vec![new_id]);
    assert_eq!(r["disabled"].as_array().unwrap().len(), old.len());
    let new_secret = w.aws.snapshot(STAGING)["secrets"]["STRIPE_WEBHOOK_SECRET"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_secret, CANARY_WHSEC);
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC, &new_secret]);
}
