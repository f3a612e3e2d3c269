//! `status`: its findings with exit 1, none once `enable` ran; duplicate enabled endpoints.

use super::*;

#[test]
fn status_lists_findings_with_exit_1_then_none_after_enable() {
    let aws = Aws::start(true);
    aws.seed(STAGING, NO_STRIPE, Some(CANARY_SK), None);
    let o = aws.cmd(&[
        "--json",
        "status",
        "--env",
        "staging",
        "--stripe-api-base",
        NO_STRIPE,
    ]);
    assert_code(&o, 1);
    assert_no_leak(&o, &[CANARY_SK]);
    let r = json_of(&o);
    assert_eq!(r["ok"], false);
    let findings = r["report"]["findings"].to_string();
    assert!(
        findings.contains("STRIPE_WEBHOOK_SECRET (STRIPE_WEBHOOK_SECRET) does not exist"),
        "{findings}"
    );
    assert!(
        findings.contains("does not inject STRIPE_SECRET_KEY by ARN"),
        "{findings}"
    );
    assert_eq!(r["report"]["key_mode"], "test");
    assert_eq!(r["report"]["injects_both"], false);
    assert_eq!(
        r["report"]["service"]["deployments"][0]["rollout_state"],
        "COMPLETED"
    );

    let o = aws.cmd(&[
        "enable",
        "--env",
        "staging",
        "--generate-webhook-secret",
        "--create-secrets",
        "--skip-smoke",
    ]);
    assert_code(&o, 0);
    let o = aws.cmd(&["status", "--env", "staging", "--stripe-api-base", NO_STRIPE]);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("injects both secrets: yes"), "{out}");
    assert!(out.contains("[AWSCURRENT]"), "{out}");
    assert!(out.contains("could not ask Stripe"), "{out}");
    let whsec = aws.snapshot(STAGING)["secrets"]["STRIPE_WEBHOOK_SECRET"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_no_leak(&o, &[CANARY_SK, &whsec]);
}

#[test]
fn status_finds_duplicate_enabled_endpoints() {
    let w = World::start(true, true, &[]);
    w.enable();
    let url = w.webhook_url();
    let a = w.stripe("create", &url).trim().to_owned();
    let b = w.stripe("create", &url).trim().to_owned();
    let o = w.cmd(&["--json", "status", "--env", "staging"]);
    assert_code(&o, 1);
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC]);
    let r = json_of(&o);
    let findings = r["report"]["findings"].to_string();
    // The sandbox registers one endpoint for its app itself: three are enabled.
    assert!(
        findings.contains("3 enabled Stripe webhook endpoints"),
        "{findings}"
    );
    assert!(findings.contains(&a) && findings.contains(&b), "{findings}");
    assert_eq!(r["report"]["injects_both"], true);
    assert_eq!(r["report"]["key_mode"], "test");
}
