//! Stopping `webhook rotate` and `enable` with SIGTERM (how CI cancels a job) in each of their
//! steps: exit 130 at a safe point, the state consistent, and the exact commands that undo what
//! was done printed. And a wait timeout that holds while AWS does not answer at all.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::aws::{STAGING, World};
use crate::common::*;

/// Spawns `cmd`, waits until `ready` says the command is where the test wants it (given the
/// stderr so far), sends SIGTERM, and returns the exit code and the whole stderr.
fn sigterm_when(mut cmd: Command, mut ready: impl FnMut(&str) -> bool) -> (i32, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let reader = {
        let log = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        })
    };
    let mut proc = Proc(child);
    poll(
        "the command to reach the step",
        Duration::from_secs(60),
        || {
            let so_far = log.lock().unwrap().clone();
            assert!(
                matches!(proc.0.try_wait(), Ok(None)),
                "the command ended before the step:\n{so_far}"
            );
            ready(&so_far).then_some(())
        },
    );
    signal(proc.0.id(), "TERM");
    let status = poll("the command to stop", Duration::from_secs(30), || {
        proc.0.try_wait().unwrap()
    });
    reader.join().unwrap();
    let log = log.lock().unwrap().clone();
    (status.code().unwrap_or(-1), log)
}

fn signal(pid: u32, sig: &str) {
    assert!(
        Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

fn secret<'a>(snapshot: &'a Value, name: &str) -> &'a Value {
    &snapshot["secrets"][name]
}

/// What the stopped command must have printed for the state to be undoable by hand.
#[track_caller]
fn assert_undo_printed(w: &World, before: &Value, old_endpoints: &[String], err: &str) {
    assert!(err.contains("interrupted (SIGTERM)"), "{err}");
    let after = w.aws.snapshot(STAGING);
    for name in ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"] {
        let (b, a) = (secret(before, name), secret(&after, name));
        let id = format!("{STAGING}/{name}");
        if b.is_null() && !a.is_null() {
            assert!(
                err.contains(&format!("delete-secret --secret-id {id}")),
                "{name} was created and the undo does not delete it:\n{err}"
            );
        } else if !b.is_null() && a["current"] != b["current"] {
            let restore = format!(
                "update-secret-version-stage --secret-id {id} --version-stage AWSCURRENT --move-to-version-id {} --remove-from-version-id {}",
                b["current"].as_str().unwrap(),
                a["current"].as_str().unwrap()
            );
            assert!(err.contains(&restore), "missing {restore}:\n{err}");
        }
    }
    if after["service"] != before["service"] {
        assert!(err.contains("aws ecs update-service"), "{err}");
    }
    let enabled = w.enabled();
    for old in old_endpoints {
        assert!(
            enabled.contains(old),
            "old endpoint {old} was disabled by a stopped rotation"
        );
    }
    for new in enabled.iter().filter(|e| !old_endpoints.contains(e)) {
        let delete = format!(
            "curl -X DELETE {}/v1/webhook_endpoints/{new}",
            w.sandbox.stripe_api
        );
        assert!(err.contains(&delete), "missing {delete}:\n{err}");
        // Consistent: the new endpoint exists for as long as AWSCURRENT may hold its secret.
    }
    let switched = secret(&after, "STRIPE_WEBHOOK_SECRET")["current"]
        != secret(before, "STRIPE_WEBHOOK_SECRET")["current"];
    if switched && !before["secrets"]["STRIPE_WEBHOOK_SECRET"].is_null() {
        assert!(
            enabled.len() > old_endpoints.len(),
            "AWSCURRENT holds a new secret but no new endpoint exists"
        );
    }
}

/// A world where staging is enabled and one old endpoint is registered; `running`: rollouts
/// complete.
fn enabled_world(running: bool, sandbox_args: &[&str]) -> (World, Value, Vec<String>) {
    let w = World::start(running, true, sandbox_args);
    w.enable_without_redeploy();
    w.stripe("create", &w.webhook_url());
    let before = w.aws.snapshot(STAGING);
    let old = w.enabled();
    (w, before, old)
}

fn deployments_changed(w: &World, before: &Value) -> bool {
    w.aws.snapshot(STAGING)["service"]["deployments"] != before["service"]["deployments"]
}

#[test]
fn rotate_stopped_after_creating_the_endpoint() {
    let (w, before, old) = enabled_world(false, &[]);
    let mut cmd = w.rotate_command("staging");
    cmd.env("STRIPE_OPS_ECS_POLL", "20ms").arg("--skip-smoke");
    let (code, err) = sigterm_when(cmd, |log| log.contains("created webhook endpoint"));
    assert_eq!(code, 130, "{err}");
    assert_undo_printed(&w, &before, &old, &err);
}

#[test]
fn rotate_stopped_after_switching_the_secret() {
    let (w, before, old) = enabled_world(false, &[]);
    let mut cmd = w.rotate_command("staging");
    cmd.env("STRIPE_OPS_ECS_POLL", "20ms").arg("--skip-smoke");
    let (code, err) = sigterm_when(cmd, |log| {
        log.contains("STRIPE_WEBHOOK_SECRET: new version")
    });
    assert_eq!(code, 130, "{err}");
    assert_undo_printed(&w, &before, &old, &err);
}

#[test]
fn rotate_stopped_while_waiting_for_the_rollout() {
    let (w, before, old) = enabled_world(false, &[]);
    let mut cmd = w.rotate_command("staging");
    cmd.env("STRIPE_OPS_ECS_POLL", "20ms")
        .args(["--skip-smoke", "--wait-timeout", "5m"]);
    let (code, err) = sigterm_when(cmd, |log| {
        log.contains("new version") && deployments_changed(&w, &before)
    });
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("nothing was rolled back"), "{err}");
    assert_undo_printed(&w, &before, &old, &err);
}

#[test]
fn rotate_stopped_during_the_smoke() {
    // The app answers webhooks slowly: the smoke is at its webhook step when the signal comes.
    let (w, before, old) = enabled_world(true, &["--fault", "slow-webhook=20s"]);
    let mut cmd = w.rotate_command("staging");
    cmd.env("STRIPE_OPS_ECS_POLL", "20ms");
    let (code, err) = sigterm_when(cmd, |log| log.contains("smoke http"));
    assert_eq!(code, 130, "{err}");
    assert_undo_printed(&w, &before, &old, &err);
}

/// `enable` from scratch: both secrets created, the task definition patched, a redeploy.
fn enable_command(w: &World, extra: &[&str]) -> Command {
    let key = w.aws.file("sk", CANARY_SK);
    let mut c = bin();
    c.envs(w.aws.moto.env())
        .env("STRIPE_OPS_ECS_POLL", "20ms")
        .args([
            "enable",
            "--env",
            "staging",
            "--stripe-secret-key-file",
            &key,
        ])
        .args(["--generate-webhook-secret", "--create-secrets"])
        .args(["--stripe-api-base", &w.sandbox.stripe_api])
        .args(extra);
    c
}

fn fresh_world(running: bool, sandbox_args: &[&str]) -> (World, Value, Vec<String>) {
    let w = World::start(running, false, sandbox_args);
    let before = w.aws.snapshot(STAGING);
    let endpoints = w.enabled();
    (w, before, endpoints)
}

#[test]
fn enable_stopped_after_creating_a_secret() {
    let (w, before, old) = fresh_world(false, &[]);
    let (code, err) = sigterm_when(enable_command(&w, &["--skip-smoke"]), |log| {
        log.contains("STRIPE_SECRET_KEY: created")
    });
    assert_eq!(code, 130, "{err}");
    assert_undo_printed(&w, &before, &old, &err);
}

#[test]
fn enable_stopped_after_registering_the_task_definition() {
    let (w, before, old) = fresh_world(false, &[]);
    let (code, err) = sigterm_when(enable_command(&w, &["--skip-smoke"]), |log| {
        log.contains("task definition: registered")
    });
    assert_eq!(code, 130, "{err}");
    assert_undo_printed(&w, &before, &old, &err);
}

#[test]
fn enable_stopped_while_waiting_for_the_rollout() {
    let (w, before, old) = fresh_world(false, &[]);
    let cmd = enable_command(&w, &["--skip-smoke", "--wait-timeout", "5m"]);
    let (code, err) = sigterm_when(cmd, |log| {
        log.contains("registered") && deployments_changed(&w, &before)
    });
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("enable stopped half-way"), "{err}");
    assert_undo_printed(&w, &before, &old, &err);
}

#[test]
fn enable_stopped_during_the_smoke() {
    let (w, before, old) = fresh_world(true, &["--fault", "slow-webhook=20s"]);
    let (code, err) = sigterm_when(enable_command(&w, &[]), |log| log.contains("smoke http"));
    assert_eq!(code, 130, "{err}");
    assert_undo_printed(&w, &before, &old, &err);
}

#[test]
fn the_wait_timeout_holds_while_aws_does_not_answer_at_all() {
    let (w, before, _) = fresh_world(false, &[]);
    let cmd = enable_command(
        &w,
        &["--skip-smoke", "--wait-timeout", "3s", "--no-rollback"],
    );
    let mut child = {
        let mut c = cmd;
        c.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let stderr = child.stderr.take().unwrap();
    let mut proc = Proc(child);
    poll("the redeploy", Duration::from_secs(60), || {
        deployments_changed(&w, &before).then_some(())
    });
    // AWS freezes: every call in flight and to come hangs.
    let moto = w.aws.moto.proc.0.id();
    signal(moto, "STOP");
    let frozen_at = Instant::now();
    let status = poll("enable to give up", Duration::from_secs(30), || {
        proc.0.try_wait().unwrap()
    });
    let waited = frozen_at.elapsed();
    signal(moto, "CONT");
    let mut err = String::new();
    BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .for_each(|l| {
            err.push_str(&l);
            err.push('\n');
        });
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("did not complete within 3s"), "{err}");
    // Not a speed assertion: the SDK's own attempt timeout is 30 s, so without the deadline
    // cutting the call in flight this takes at least that long.
    assert!(
        waited < Duration::from_secs(15),
        "gave up {waited:?} after AWS froze, with a 3 s wait timeout"
    );
}
