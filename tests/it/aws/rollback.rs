//! A rotation that fails: at step 2 it has changed nothing, at steps 3 and 4 it rolls back to the
//! starting state, and a rollback that cannot finish says what remains and how to finish it.

use super::*;

/// The starting state a failed rotation must end in.
fn rotation_state(w: &World) -> (Value, Value, Vec<String>) {
    let snap = w.aws.snapshot(STAGING);
    let mut enabled = w.enabled();
    enabled.sort();
    (
        snap["secrets"]["STRIPE_WEBHOOK_SECRET"]["value"].clone(),
        snap["service"]["taskDefinition"].clone(),
        enabled,
    )
}

#[test]
fn rotate_failing_at_step_2_changes_nothing() {
    let w = World::start(true, true, &[]);
    w.enable();
    w.stripe("create", &w.webhook_url());
    // Stripe refuses a 17th endpoint: the account is full of other teams' endpoints.
    let refusal = w.stripe("fill", "https://other-team.example.com/hooks");
    assert!(
        refusal.contains("maximum of 16 webhook endpoints"),
        "{refusal}"
    );
    let before = rotation_state(&w);
    let mut c = w.rotate_command("staging");
    c.args(["--skip-smoke"]);
    let o = c.output().unwrap();
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("rotation failed at step 2"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("nothing was changed"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("maximum of 16 webhook endpoints"),
        "Stripe's reason is shown: {}",
        stderr(&o)
    );
    assert_eq!(rotation_state(&w), before);
}

#[test]
fn rotate_failing_at_step_3_rolls_back_to_the_starting_state() {
    let w = World::start(false, true, &[]);
    // Revision 2 injects the secrets; moto never completes a deployment, so skip the restart.
    w.enable_without_redeploy();
    w.stripe("create", &w.webhook_url());
    let before = rotation_state(&w);
    let o = w.rotate(&["--skip-smoke", "--wait-timeout", "1s"]);
    assert_code(&o, 3);
    let err = stderr(&o);
    assert!(err.contains("rotation failed at step 3"), "{err}");
    assert!(err.contains("did not complete within 1s"), "{err}");
    assert!(err.contains("rollback completed"), "{err}");
    assert_eq!(rotation_state(&w), before);
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC]);
}

#[test]
fn rotate_failing_at_step_4_because_the_app_rejects_the_new_secret_rolls_back() {
    // The app only knows the seeded secret: the smoke signed with the new one must fail.
    let whsec_dir = tempfile::tempdir().unwrap();
    let whsec = write_file(whsec_dir.path(), "whsec", CANARY_WHSEC);
    let w = World::start(
        true,
        true,
        &["--webhook-secret-file", whsec.to_str().unwrap()],
    );
    w.enable();
    w.stripe("create", &w.webhook_url());
    let before = rotation_state(&w);
    // Refusals are retried while tasks with the old secret may answer: a short window here.
    let o = w.rotate(&["--settle-timeout", "1s"]);
    assert_code(&o, 3);
    let err = stderr(&o);
    assert!(err.contains("rotation failed at step 4"), "{err}");
    assert!(err.contains("smoke"), "{err}");
    assert!(err.contains("while the secret switched"), "{err}");
    assert!(err.contains("rollback completed"), "{err}");
    assert_eq!(rotation_state(&w), before);
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC]);
}

#[test]
fn a_rollback_that_cannot_finish_says_what_remains_and_how_to_finish_it() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    // Deployments never complete; Stripe goes away while rotate waits, so the rollback can
    // restore the secret and redeploy but cannot delete the new endpoint.
    let mut w = World::start(false, true, &[]);
    w.enable_without_redeploy();
    let before = w.aws.snapshot(STAGING);
    let mut c = w.rotate_command("staging");
    c.env("STRIPE_OPS_ECS_POLL", "20ms")
        .args(["--skip-smoke", "--wait-timeout", "5s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut err = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        err.push_str(&line);
        err.push('\n');
        if line.contains("STRIPE_WEBHOOK_SECRET: new version") {
            break;
        }
    }
    let _ = w.sandbox.proc.0.kill();
    let _ = w.sandbox.proc.0.wait();
    for line in lines {
        err.push_str(&line.unwrap());
        err.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("rotation failed at step 3"), "{err}");
    assert!(err.contains("rollback INCOMPLETE"), "{err}");
    assert!(
        err.contains("AWSCURRENT of proofwork-staging/STRIPE_WEBHOOK_SECRET is version"),
        "{err}"
    );
    // The undo command names the Stripe API this environment uses, not a hard-coded host.
    assert!(
        err.contains(&format!(
            "curl -X DELETE {}/v1/webhook_endpoints/we_",
            w.sandbox.stripe_api
        )),
        "{err}"
    );
    assert!(
        !err.contains(CANARY_SK) && !err.contains(CANARY_WHSEC),
        "{err}"
    );
    let after = w.aws.snapshot(STAGING);
    assert_eq!(
        after["secrets"]["STRIPE_WEBHOOK_SECRET"]["value"],
        before["secrets"]["STRIPE_WEBHOOK_SECRET"]["value"]
    );
}
