//! `enable`: both secrets injected by ARN and a second run registers nothing; from scratch it
//! checks the key, creates the secrets and passes the smoke; a missing secret without
//! `--create-secrets`, a malformed one (exit 2) or a key Stripe refuses (exit 3) changes and
//! writes nothing; a deployment that never completes times out and rolls back (exit 3); trace
//! logging never shows the secrets.

use super::*;

#[test]
fn enable_injects_both_secrets_by_arn_and_a_second_run_registers_nothing() {
    let aws = Aws::start(true);
    aws.seed(STAGING, "http://127.0.0.1:9", Some(CANARY_SK), None);
    let o = aws.cmd(&[
        "--json",
        "enable",
        "--env",
        "staging",
        "--generate-webhook-secret",
        "--create-secrets",
        "--skip-smoke",
    ]);
    assert_code(&o, 0);
    let snap = aws.snapshot(STAGING);
    let whsec = snap["secrets"]["STRIPE_WEBHOOK_SECRET"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(whsec.starts_with("whsec_") && whsec.len() > 30);
    assert_no_leak(&o, &[CANARY_SK, &whsec]);
    let report = json_of(&o);
    assert_eq!(report["ok"], true);
    assert_eq!(
        report["secrets"][0]["id"],
        format!("{STAGING}/STRIPE_WEBHOOK_SECRET")
    );
    assert_eq!(report["secrets"][0]["value_length"], whsec.len());
    assert_eq!(report["task_definition"]["registered"], true);

    assert_eq!(snap["task_definitions"].as_array().unwrap().len(), 2);
    assert_eq!(
        revision(snap["service"]["taskDefinition"].as_str().unwrap()),
        "2"
    );
    let key_arn = snap["secrets"]["STRIPE_SECRET_KEY"]["arn"]
        .as_str()
        .unwrap();
    let wh_arn = snap["secrets"]["STRIPE_WEBHOOK_SECRET"]["arn"]
        .as_str()
        .unwrap();
    assert_eq!(
        secrets_of(&snap, "proofwork-staging-api:2"),
        vec![
            (
                "DATABASE_URL".to_owned(),
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf".to_owned()
            ),
            ("STRIPE_SECRET_KEY".to_owned(), key_arn.to_owned()),
            ("STRIPE_WEBHOOK_SECRET".to_owned(), wh_arn.to_owned()),
        ]
    );
    // Everything but the api container's secrets, the revision and the ARN is kept.
    let (one, two) = (
        &snap["tds"]["proofwork-staging-api:1"],
        &snap["tds"]["proofwork-staging-api:2"],
    );
    assert_eq!(one["tags"], two["tags"]);
    for (k, v) in one["td"].as_object().unwrap() {
        if !["containerDefinitions", "revision", "taskDefinitionArn"].contains(&k.as_str()) {
            assert_eq!(&two["td"][k], v, "field {k} changed");
        }
    }
    let strip = |td: &Value| {
        let mut defs = td["td"]["containerDefinitions"].clone();
        defs[0]["secrets"] = Value::Null;
        defs
    };
    assert_eq!(strip(one), strip(two));

    // Twice: a new value, but no new revision.
    let o = aws.cmd(&[
        "enable",
        "--env",
        "staging",
        "--generate-webhook-secret",
        "--skip-smoke",
    ]);
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("already injects both secrets"),
        "{}",
        stderr(&o)
    );
    let again = aws.snapshot(STAGING);
    assert_eq!(again["task_definitions"], snap["task_definitions"]);
    assert_ne!(
        again["secrets"]["STRIPE_WEBHOOK_SECRET"]["current"],
        snap["secrets"]["STRIPE_WEBHOOK_SECRET"]["current"]
    );
    let new_whsec = again["secrets"]["STRIPE_WEBHOOK_SECRET"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_no_leak(&o, &[CANARY_SK, &new_whsec]);

    // Three times, with the values it already holds: nothing is written at all.
    let key = aws.file("sk", CANARY_SK);
    let wh = aws.file("wh", &new_whsec);
    let versions = |snap: &Value, name: &str| snap["secrets"][name]["versions"].clone();
    let o = aws.cmd(&[
        "--json",
        "enable",
        "--env",
        "staging",
        "--stripe-secret-key-file",
        &key,
        "--stripe-webhook-secret-file",
        &wh,
        "--skip-smoke",
        "--stripe-api-base",
        NO_STRIPE,
    ]);
    // The key is checked at Stripe first: there is none here, so it stops before writing.
    assert_code(&o, 3);
    let o = aws.cmd(&[
        "--json",
        "enable",
        "--env",
        "staging",
        "--stripe-webhook-secret-file",
        &wh,
        "--skip-smoke",
    ]);
    assert_code(&o, 0);
    let report = json_of(&o);
    assert_eq!(report["secrets"], json!([]), "{report}");
    let steps = report["plan"]["steps"].to_string();
    assert!(steps.contains("already holds the given value"), "{steps}");
    let third = aws.snapshot(STAGING);
    for name in ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"] {
        assert_eq!(versions(&third, name), versions(&again, name), "{name}");
    }
}

#[test]
fn a_missing_secret_without_create_secrets_is_exit_2_and_changes_nothing() {
    let aws = Aws::start(true);
    aws.seed(STAGING, NO_STRIPE, Some(CANARY_SK), None);
    let before = aws.snapshot(STAGING);
    let whsec = aws.file("whsec", CANARY_WHSEC);
    let o = aws.cmd(&[
        "enable",
        "--env",
        "staging",
        "--stripe-webhook-secret-file",
        &whsec,
        "--skip-smoke",
    ]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains(
            "proofwork-staging/STRIPE_WEBHOOK_SECRET does not exist; pass --create-secrets"
        ),
        "{}",
        stderr(&o)
    );
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC]);
    assert_eq!(aws.snapshot(STAGING), before);
}

#[test]
fn bad_secret_formats_are_exit_2_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    // AWS and Stripe point at a closed port: nothing may be contacted.
    let dead = closed_url();
    let file = |name: &str, v: &str| {
        write_file(dir.path(), name, v)
            .to_string_lossy()
            .into_owned()
    };
    let cases = [
        (file("pk", "pk_test_abc"), None, "must start with sk_test_"),
        (
            file("live", "sk_live_CANARYcanary0123456789"),
            None,
            "--allow-live-key",
        ),
        (
            file("ok", CANARY_SK),
            Some(file("wh", "not_a_whsec")),
            "must start with whsec_",
        ),
    ];
    for (key, whsec, expected) in &cases {
        let mut args = vec![
            "enable",
            "--env",
            "staging",
            "--stripe-secret-key-file",
            key,
            "--skip-smoke",
            "--aws-endpoint-url",
            &dead,
            "--stripe-api-base",
            &dead,
        ];
        if let Some(w) = whsec {
            args.extend(["--stripe-webhook-secret-file", w.as_str()]);
        }
        let o = bin()
            .env("AWS_ACCESS_KEY_ID", "x")
            .env("AWS_SECRET_ACCESS_KEY", "x")
            .args(&args)
            .output()
            .unwrap();
        assert_code(&o, 2);
        assert!(stderr(&o).contains(expected), "{expected}: {}", stderr(&o));
        assert_no_leak(&o, &[CANARY_SK, "sk_live_CANARYcanary0123456789"]);
    }
}

#[test]
fn a_deployment_that_never_completes_times_out_rolls_back_and_exits_3() {
    let aws = Aws::start(false);
    aws.seed(STAGING, NO_STRIPE, Some(CANARY_SK), Some(CANARY_WHSEC));
    let o = aws.cmd(&[
        "enable",
        "--env",
        "staging",
        "--skip-smoke",
        "--wait-timeout",
        "1s",
    ]);
    assert_code(&o, 3);
    let err = stderr(&o);
    assert!(err.contains("did not complete within 1s"), "{err}");
    assert!(err.contains("rolled the service back to arn:aws:ecs:us-east-1:123456789012:task-definition/proofwork-staging-api:1"), "{err}");
    let snap = aws.snapshot(STAGING);
    assert_eq!(
        revision(snap["service"]["taskDefinition"].as_str().unwrap()),
        "1"
    );
    assert_eq!(snap["task_definitions"].as_array().unwrap().len(), 2);

    // --no-rollback leaves the new revision in place and says how to roll back.
    let o = aws.cmd(&[
        "enable",
        "--env",
        "staging",
        "--skip-smoke",
        "--wait-timeout",
        "1s",
        "--no-rollback",
    ]);
    assert_code(&o, 3);
    assert!(stderr(&o).contains("--no-rollback"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("aws ecs update-service"),
        "{}",
        stderr(&o)
    );
    let snap = aws.snapshot(STAGING);
    assert_eq!(
        revision(snap["service"]["taskDefinition"].as_str().unwrap()),
        "3"
    );
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC]);
}

#[test]
fn enable_from_scratch_checks_the_key_creates_the_secrets_and_passes_the_smoke() {
    let whsec_dir = tempfile::tempdir().unwrap();
    let whsec = write_file(whsec_dir.path(), "whsec", CANARY_WHSEC);
    let w = World::start(
        true,
        false,
        &["--webhook-secret-file", whsec.to_str().unwrap()],
    );
    let key = w.aws.file("key", CANARY_SK);
    let started = std::time::Instant::now();
    let o = w.cmd(&[
        "--json",
        "enable",
        "--env",
        "staging",
        "--stripe-secret-key-file",
        &key,
        "--stripe-webhook-secret-file",
        whsec.to_str().unwrap(),
        "--create-secrets",
    ]);
    eprintln!(
        "enable from scratch against moto + sandbox: {:?}",
        started.elapsed()
    );
    assert_code(&o, 0);
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC]);
    let r = json_of(&o);
    assert_eq!(r["smoke"]["ok"], true, "{r}");
    let created: Vec<bool> = r["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["created"] == true)
        .collect();
    assert_eq!(created, vec![true, true]);
    let snap = w.aws.snapshot(STAGING);
    assert_eq!(snap["secrets"]["STRIPE_SECRET_KEY"]["value"], CANARY_SK);
    assert_eq!(
        snap["secrets"]["STRIPE_WEBHOOK_SECRET"]["value"],
        CANARY_WHSEC
    );
    assert_eq!(
        revision(snap["service"]["taskDefinition"].as_str().unwrap()),
        "2"
    );
}

#[test]
fn a_key_stripe_refuses_is_exit_3_and_nothing_is_written() {
    let w = World::start(true, false, &[]);
    let before = w.aws.snapshot(STAGING);
    let wrong = w.aws.file("key", "sk_test_WRONGwrong0123456789abcdef");
    let o = w.cmd(&[
        "enable",
        "--env",
        "staging",
        "--stripe-secret-key-file",
        &wrong,
        "--generate-webhook-secret",
        "--create-secrets",
        "--skip-smoke",
    ]);
    assert_code(&o, 3);
    let err = stderr(&o);
    assert!(
        err.contains("GET /v1/account") && err.contains("nothing was written"),
        "{err}"
    );
    assert_no_leak(&o, &["sk_test_WRONGwrong0123456789abcdef", CANARY_SK]);
    assert_eq!(w.aws.snapshot(STAGING), before);
}

#[test]
fn trace_logging_never_shows_the_secrets() {
    let aws = Aws::start(true);
    aws.seed(STAGING, NO_STRIPE, Some(CANARY_SK), None);
    let whsec = aws.file("whsec", CANARY_WHSEC);
    let traced = |args: &[&str]| {
        let mut c = bin();
        c.envs(aws.moto.env())
            .env("RUST_LOG", "trace")
            .env("STRIPE_OPS_ECS_POLL", "20ms")
            .args(["-vvv"])
            .args(args);
        c.output().unwrap()
    };
    let o = traced(&[
        "enable",
        "--env",
        "staging",
        "--stripe-webhook-secret-file",
        &whsec,
        "--create-secrets",
        "--skip-smoke",
    ]);
    assert_code(&o, 0);
    assert!(stderr(&o).lines().count() > 50, "trace logging is on");
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC]);
    let o = traced(&[
        "--json",
        "status",
        "--env",
        "staging",
        "--stripe-api-base",
        NO_STRIPE,
    ]);
    assert_code(&o, 0);
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC]);
}
