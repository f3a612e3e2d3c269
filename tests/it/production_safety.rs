//! `enable`, `webhook rotate` and `status` that cannot silently break production: rotate
//! replaces like with like, status reports drift, the pre-flight's emulator path, why a rollout
//! failed, the task-definition diff, `--no-wait`, and the secret switch proven without a race.
//! Against moto_server and the sandbox; endpoints are made and read with stripe-python.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::aws::{STAGING, World};
use crate::common::*;

/// stripe-python against the sandbox's Stripe API. ACTION=old: deletes every endpoint for URL,
/// then creates the endpoints in OLD (a JSON list of create parameters) and prints their ids.
/// ACTION=get: prints the endpoint ID as JSON. ACTION=prune: deletes the disabled endpoints.
const STRIPE_LIB: &str = r#"
import json, os, stripe
stripe.api_base = os.environ["API"]
stripe.api_key = os.environ["KEY"]
action = os.environ["ACTION"]
if action == "old":
    for e in stripe.WebhookEndpoint.list(limit=100).auto_paging_iter():
        if e.url == os.environ["URL"]:
            stripe.WebhookEndpoint.delete(e.id)
    ids = []
    for params in json.loads(os.environ["OLD"]):
        ids.append(stripe.WebhookEndpoint.create(url=os.environ["URL"], **params).id)
    print(json.dumps(ids))
elif action == "get":
    e = stripe.WebhookEndpoint.retrieve(os.environ["ID"])
    print(json.dumps({k: e[k] for k in ("id", "enabled_events", "api_version", "description", "metadata", "status")}, default=lambda o: o.to_dict()))
elif action == "prune":
    for e in stripe.WebhookEndpoint.list(limit=100).auto_paging_iter():
        if e.status == "disabled":
            stripe.WebhookEndpoint.delete(e.id)
"#;

const FIVE: [&str; 5] = [
    "checkout.session.completed",
    "invoice.paid",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "charge.refunded",
];

fn stripe_lib(w: &World, action: &str, extra: &[(&str, &str)]) -> String {
    let url = w.webhook_url();
    let mut envs = vec![
        ("API", w.sandbox.stripe_api.as_str()),
        ("KEY", CANARY_SK),
        ("ACTION", action),
        ("URL", url.as_str()),
    ];
    envs.extend_from_slice(extra);
    w.aws.py(STRIPE_LIB, &envs)
}

/// Replaces the app's endpoints with `old` (create parameters), returning their ids.
fn old_endpoints(w: &World, old: Value) -> Vec<String> {
    serde_json::from_str(&stripe_lib(w, "old", &[("OLD", &old.to_string())])).unwrap()
}

fn endpoint(w: &World, id: &str) -> Value {
    serde_json::from_str(&stripe_lib(w, "get", &[("ID", id)])).unwrap()
}

/// The environment as rotate leaves it when it changes nothing.
fn untouched(w: &World) -> (Value, Vec<String>) {
    let snap = w.aws.snapshot(STAGING);
    let mut enabled = w.enabled();
    enabled.sort();
    (
        snap["secrets"]["STRIPE_WEBHOOK_SECRET"]["current"].clone(),
        enabled,
    )
}

#[test]
fn rotate_inherits_events_api_version_connect_description_and_metadata() {
    let w = World::start(true, true, &[]);
    w.enable();
    let old = old_endpoints(
        &w,
        serde_json::json!([
            {"enabled_events": FIVE[..3], "api_version": "2024-06-20", "description": "older",
             "metadata": {"team": "payments", "tier": "1"}},
            {"enabled_events": FIVE[2..], "api_version": "2024-06-20", "connect": true,
             "description": "orders webhook", "metadata": {"tier": "2", "stripe_ops_connect": "true"}},
        ]),
    );
    let dry = w.rotate(&["--json", "--dry-run"]);
    assert_code(&dry, 0);
    let plan = &json_of(&dry)["plan"];
    let new = &plan["endpoint"]["new"];
    assert_eq!(new["enabled_events"], serde_json::json!(FIVE), "{plan}");
    assert_eq!(new["connect"], true, "{plan}");
    assert_eq!(plan["endpoint"]["origins"]["connect"], "inherited");
    assert_eq!(plan["endpoint"]["old"].as_array().unwrap().len(), 2);
    // The emulator cannot simulate IAM policies: a note, not a failure.
    let notes = plan["preflight"]["notes"].to_string();
    assert!(notes.contains("could not simulate"), "{notes}");

    let o = w.rotate(&["--json", "--skip-smoke"]);
    assert_code(&o, 0);
    let id = json_of(&o)["endpoint"]["id"].as_str().unwrap().to_owned();
    let created = endpoint(&w, &id);
    assert_eq!(
        created["enabled_events"],
        serde_json::json!(FIVE),
        "{created}"
    );
    assert_eq!(created["api_version"], "2024-06-20");
    assert_eq!(created["description"], "orders webhook");
    assert_eq!(
        created["metadata"],
        serde_json::json!({"team": "payments", "tier": "2", "stripe_ops_connect": "true"})
    );
    assert_eq!(w.enabled(), vec![id]);
    for o in old {
        assert_eq!(endpoint(&w, &o)["status"], "disabled");
    }
}

#[test]
fn disagreeing_old_endpoints_stop_rotate_with_exit_2_unless_a_flag_settles_it() {
    let w = World::start(true, true, &[]);
    w.enable();
    let old = old_endpoints(
        &w,
        serde_json::json!([
            {"enabled_events": ["checkout.session.completed"], "api_version": "2024-06-20"},
            {"enabled_events": ["checkout.session.completed"]},
        ]),
    );
    let before = untouched(&w);
    let o = w.rotate(&["--skip-smoke"]);
    assert_code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("disagree on api_version"), "{err}");
    assert!(err.contains(&format!("{} 2024-06-20", old[0])), "{err}");
    assert!(
        err.contains(&format!("{} (the account's default)", old[1])),
        "{err}"
    );
    assert!(err.contains("--api-version"), "{err}");
    assert_eq!(untouched(&w), before, "nothing changed");

    let o = w.rotate(&[
        "--skip-smoke",
        "--json",
        "--api-version",
        "2025-03-31.basil",
        "--metadata",
        "owner=payments",
        "--description",
        "rotated",
    ]);
    assert_code(&o, 0);
    let created = endpoint(&w, json_of(&o)["endpoint"]["id"].as_str().unwrap());
    assert_eq!(created["api_version"], "2025-03-31.basil");
    assert_eq!(created["description"], "rotated");
    assert_eq!(created["metadata"]["owner"], "payments");
}

#[test]
fn bad_endpoint_flags_are_exit_2_before_any_call() {
    for (flag, value, says) in [
        ("--api-version", "latest", "not a Stripe API version"),
        ("--metadata", "novalue", "expected KEY=VALUE"),
        ("--metadata", "a[b]=c", "no square brackets"),
    ] {
        let o = run(&["webhook", "rotate", "--env", "staging", flag, value]);
        assert_code(&o, 2);
        assert!(stderr(&o).contains(says), "{flag} {value}: {}", stderr(&o));
    }
}

#[test]
fn the_dry_run_shows_every_changed_field_beside_the_old_endpoint() {
    let w = World::start(true, true, &[]);
    w.enable();
    let old = old_endpoints(
        &w,
        serde_json::json!([{"enabled_events": ["checkout.session.completed"],
                            "api_version": "2024-06-20", "description": "shop"}]),
    );
    let o = w.rotate(&[
        "--dry-run",
        "--events",
        "checkout.session.completed,invoice.paid",
        "--description",
        "new shop",
    ]);
    assert_code(&o, 0);
    let out = stdout(&o);
    for line in [
        "enabled_events: checkout.session.completed, invoice.paid [from the flag] (changed)",
        "api_version: 2024-06-20 [inherited]\n",
        "description: new shop [from the flag] (changed)",
        &format!("was on {}: shop\n", old[0]),
        "connect: false [from the config]\n",
        &format!(
            "was on {}: not recorded (Stripe does not return it)",
            old[0]
        ),
    ] {
        assert!(out.contains(line), "{line:?} not in:\n{out}");
    }
    assert!(out.contains("dry run: nothing was changed"), "{out}");
}

/// A customer-managed key named by alias (the Secrets Manager console's way) and one KMS does not
/// know: the pre-flight asks KMS (moto's, through the signed `DescribeKey`) which key the alias
/// names, checks `kms:Decrypt` on that key's ARN, and says why the unknown one is not checked.
/// The key policy and the webhook secret's resource policy grant the role (the simulator cannot
/// weigh those for a role, so the pre-flight reads them: `GetKeyPolicy`, `GetResourcePolicy`).
const KEYS: &str = r#"
import boto3, json, os
p = os.environ["PREFIX"]
kms = boto3.client("kms"); sm = boto3.client("secretsmanager")
key = kms.create_key(Description="payments")["KeyMetadata"]
kms.create_alias(AliasName="alias/payments", TargetKeyId=key["KeyId"])
sm.update_secret(SecretId=f"{p}/STRIPE_WEBHOOK_SECRET", KmsKeyId="alias/payments")
sm.update_secret(SecretId=f"{p}/STRIPE_SECRET_KEY", KmsKeyId="alias/nope")
role = "arn:aws:iam::123456789012:role/exec"
grant = lambda action: json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"},
    {"Effect": "Allow", "Principal": {"AWS": role}, "Action": action, "Resource": "*"}]})
kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=grant("kms:Decrypt"))
sm.put_resource_policy(SecretId=f"{p}/STRIPE_WEBHOOK_SECRET",
                       ResourcePolicy=grant("secretsmanager:GetSecretValue"))
print(key["Arn"])
"#;

#[test]
fn the_preflight_checks_the_key_an_alias_names() {
    let w = World::start(true, true, &[]);
    w.enable();
    let arn = w.aws.py(KEYS, &[("PREFIX", STAGING)]).trim().to_owned();
    let o = w.rotate(&["--dry-run", "--json"]);
    assert_code(&o, 0);
    let preflight = &json_of(&o)["plan"]["preflight"];
    assert_eq!(
        preflight["keys"],
        serde_json::json!([{"key": "alias/payments", "arn": arn, "aws_managed": false}]),
        "{preflight}"
    );
    let notes = preflight["notes"].to_string();
    assert!(
        notes.contains("kms:Decrypt on alias/nope") && notes.contains("NotFoundException"),
        "{notes}"
    );
    assert!(notes.contains("could not simulate"), "{notes}");
    let verdicts: Vec<(String, String)> = preflight["resource_policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let what = format!("{} {}", p["action"].as_str().unwrap(), p["resource"]);
            (what, p["verdict"].as_str().unwrap().to_owned())
        })
        .collect();
    let verdict = |action: &str, resource: &str| {
        verdicts
            .iter()
            .find(|(what, _)| what.starts_with(action) && what.contains(resource))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{action} on {resource} not in {verdicts:?}"))
    };
    assert_eq!(verdict("kms:Decrypt", &arn), "grants");
    assert_eq!(
        verdict("secretsmanager:GetSecretValue", "STRIPE_WEBHOOK_SECRET"),
        "grants"
    );
    assert_eq!(
        verdict("secretsmanager:GetSecretValue", "STRIPE_SECRET_KEY"),
        "does not grant"
    );

    let o = w.rotate(&["--dry-run"]);
    assert_code(&o, 0);
    let line = format!("pre-flight: key alias/payments is {arn}");
    assert!(
        stdout(&o).contains(&line),
        "{line:?} not in:\n{}",
        stdout(&o)
    );
}

#[test]
fn the_enable_dry_run_diffs_the_whole_task_definition() {
    let w = World::start(true, true, &[]);
    let before = w.aws.snapshot(STAGING);
    let o = w.cmd(&[
        "enable",
        "--env",
        "staging",
        "--dry-run",
        "--skip-put-secrets",
    ]);
    assert_code(&o, 0);
    let out = stdout(&o);
    let diff = &out[out.find("task definition (unified diff):").expect(&out)..];
    assert!(diff.contains("--- arn:aws:ecs:"), "{diff}");
    assert!(
        diff.contains("+++ proofwork-staging-api (next revision, to register)"),
        "{diff}"
    );
    let arn = before["secrets"]["STRIPE_WEBHOOK_SECRET"]["arn"]
        .as_str()
        .unwrap();
    assert!(
        diff.lines().any(|l| l.starts_with('+') && l.contains(arn)),
        "the webhook secret's ARN is added: {diff}"
    );
    // Only the secrets change: every other field is context, never a -/+ line.
    let changed: Vec<&str> = diff
        .lines()
        .skip(3)
        .filter(|l| l.starts_with(['+', '-']))
        .collect();
    let inside_a_secret = |l: &&str| {
        let l = l[1..].trim();
        l.starts_with("Secret {")
            || l.starts_with("name: ")
            || l.starts_with("value_from: ")
            || l == "},"
    };
    assert!(changed.iter().all(inside_a_secret), "{changed:#?}");
    assert_eq!(w.aws.snapshot(STAGING), before, "a dry run changes nothing");
}

#[test]
fn status_reports_drift_from_the_config_with_exit_1() {
    let w = World::start(true, true, &[]);
    w.enable();
    old_endpoints(
        &w,
        serde_json::json!([{"enabled_events": ["checkout.session.completed"], "api_version": "2024-06-20"}]),
    );
    let config = write_file(
        w.aws.dir.path(),
        "stripe-ops.toml",
        "[env.staging]\nenabled_events = [\"checkout.session.completed\", \"invoice.paid\"]\napi_version = \"2025-03-31.basil\"\n",
    );
    let o = w.cmd(&[
        "--config",
        config.to_str().unwrap(),
        "status",
        "--env",
        "staging",
    ]);
    assert_code(&o, 1);
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(out.contains("does not receive invoice.paid"), "{out}");
    assert!(
        out.contains(
            "renders events as API version 2024-06-20, the config's api_version is 2025-03-31.basil"
        ),
        "{out}"
    );
    assert!(
        out.contains("API version 2024-06-20: checkout.session.completed"),
        "{out}"
    );

    // Rotating with the config settles both: no drift left.
    let o = w.rotate(&[
        "--config",
        config.to_str().unwrap(),
        "--skip-smoke",
        "--events",
        "checkout.session.completed,invoice.paid",
        "--api-version",
        "2025-03-31.basil",
    ]);
    assert_code(&o, 0);
    let o = w.cmd(&[
        "--config",
        config.to_str().unwrap(),
        "status",
        "--env",
        "staging",
    ]);
    assert_code(&o, 0);
}

/// moto: a task started by the service's deployment DEPLOYMENT, stopped with the reason ECS
/// gives when the execution role cannot read a secret. (Its task definition uses bridge
/// networking: moto cannot run awsvpc tasks, and only `startedBy` ties a task to a deployment.)
const STOP_TASK: &str = r#"
import boto3, os
p = os.environ["PREFIX"]
ecs = boto3.client("ecs")
ecs.register_task_definition(family=f"{p}-stopped", networkMode="bridge",
    containerDefinitions=[{"name": "api", "image": "app:1", "memory": 512}])
t = ecs.run_task(cluster=f"{p}-cluster", taskDefinition=f"{p}-stopped", launchType="FARGATE",
                 startedBy=os.environ["DEPLOYMENT"])["tasks"][0]
ecs.stop_task(cluster=f"{p}-cluster", task=t["taskArn"], reason=os.environ["REASON"])
"#;

const PULL_FAILED: &str = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: AccessDeniedException";

#[test]
fn a_failed_rollout_says_why_its_tasks_stopped_before_rolling_back() {
    let w = World::start(false, true, &[]);
    w.enable_without_redeploy();
    let before = w.aws.snapshot(STAGING)["service"]["deployments"].clone();
    let mut child = w
        .rotate_command("staging")
        .args(["--json", "--skip-smoke", "--wait-timeout", "8s"])
        .env("STRIPE_OPS_ECS_POLL", "50ms")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout_pipe = child.stdout.take().unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let mut proc = Proc(child);
    let deployment = poll("the rotation's redeploy", Duration::from_secs(30), || {
        let now = w.aws.snapshot(STAGING)["service"]["deployments"].clone();
        (now != before).then(|| now[0].as_str().unwrap().to_owned())
    });
    w.aws.py(
        STOP_TASK,
        &[
            ("PREFIX", STAGING),
            ("DEPLOYMENT", &deployment),
            ("REASON", PULL_FAILED),
        ],
    );
    let status = poll("rotate to give up", Duration::from_secs(60), || {
        proc.0.try_wait().unwrap()
    });
    let read = |r: Box<dyn std::io::Read>| -> String {
        BufReader::new(r)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (out, err) = (read(Box::new(stdout_pipe)), read(Box::new(stderr_pipe)));
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(
        err.contains("stopped task") && err.contains(PULL_FAILED),
        "{err}"
    );
    let doc: Value = serde_json::from_str(&out).expect(&out);
    assert!(
        doc["error"].as_str().unwrap().contains(PULL_FAILED),
        "{doc}"
    );
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("rollback completed"),
        "{doc}"
    );
    let stopped = &doc["details"]["rollout"]["stopped_tasks"][0];
    assert_eq!(stopped["stopped_reason"], PULL_FAILED, "{doc}");
    assert_eq!(doc["details"]["rollout"]["deployment"], deployment.as_str());
}

#[test]
fn no_wait_redeploys_and_returns_leaving_the_old_endpoints_enabled() {
    let w = World::start(false, true, &[]);
    w.enable_without_redeploy();
    let old = w.enabled();
    let o = w.rotate(&["--no-wait"]);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("not waited for, no smoke: --no-wait"), "{out}");
    assert!(out.contains("-d disabled=true"), "{out}");
    let mut now = w.enabled();
    now.retain(|id| !old.contains(id));
    assert_eq!(
        now.len(),
        1,
        "the new endpoint is enabled beside the old ones"
    );
    assert!(old.iter().all(|id| w.enabled().contains(id)));
    let o = w.cmd(&[
        "enable",
        "--env",
        "staging",
        "--skip-put-secrets",
        "--no-wait",
        "--json",
    ]);
    assert_code(&o, 0);
    assert_eq!(json_of(&o)["waited"], false);
}

/// The race the switch window closes: the sandbox re-reads its secret from AWS only when it
/// sees the redeploy (every 500 ms), while the rotation's smoke starts the moment ECS says the
/// rollout completed. Twenty rotations in a row must all pass, and the retries must have been
/// needed (else this test proves nothing).
#[test]
fn twenty_rotations_in_a_row_prove_the_switch_despite_the_race() {
    let w = World::with_an_app_reading_secrets_from_aws("500ms");
    w.enable();
    let (mut refusals, mut raced) = (0, 0);
    let mut switch_ms = Vec::new();
    for run in 1..=20 {
        let o = w.rotate(&["--json"]);
        assert_eq!(code(&o), 0, "run {run}: {}", stderr(&o));
        let smoke = &json_of(&o)["smoke"];
        assert_eq!(smoke["ok"], true, "run {run}: {smoke}");
        let n = smoke["switch"]["refusals"].as_u64().unwrap();
        refusals += n;
        raced += usize::from(n > 0);
        switch_ms.push(smoke["switch"]["ms"].as_f64().unwrap());
        stripe_lib(&w, "prune", &[]);
    }
    switch_ms.sort_by(f64::total_cmp);
    eprintln!(
        "20/20 rotations; {raced} met tasks with the old secret ({refusals} refusals); switch took {:.0} ms median, {:.0} ms max",
        switch_ms[10], switch_ms[19]
    );
    assert!(
        refusals > 0,
        "the race never happened: the retries were not exercised"
    );
}
