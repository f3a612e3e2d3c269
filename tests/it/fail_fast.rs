//! `enable` ends its wait when the new tasks cannot start, names why, and rolls back to the
//! exact task definition the service ran before; a slow but healthy deployment completes.
//!
//! moto implements ECS's API but starts no task, so none of its tasks ever stops. These tests put
//! `ecs_proxy.py` in front of moto_server: a small proxy that forwards every call and plays ECS
//! as it behaves for a service without the deployment circuit breaker (the default for services
//! created before it existed, and for most Terraform modules): the new deployment starts a task
//! every few seconds, each stops at once with the scenario's reason, `failedTasks` climbs, the
//! rollout stays IN_PROGRESS and the previous deployment keeps serving. DescribeServices,
//! ListTasks and DescribeTasks answer in the ECS API reference's shapes; the rest (Secrets
//! Manager, task definitions, CloudWatch Logs) is moto's. The classification of every reason is
//! also unit-tested on recorded DescribeTasks shapes in `src/deploy/stops.rs`.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::aws::{Aws, STAGING, World};
use crate::common::*;

/// A service on revision 1 of its family, whose container logs to CloudWatch with the awslogs
/// driver, a revision 2 it never ran (the family's latest, so "latest minus one" would not be
/// the revision it ran), and both Stripe secrets.
const SEED: &str = r#"
import boto3, os
p = os.environ["PREFIX"]
ecs = boto3.client("ecs"); sm = boto3.client("secretsmanager"); logs = boto3.client("logs")
ecs.create_cluster(clusterName=f"{p}-cluster")
logs.create_log_group(logGroupName=f"/ecs/{p}-api")
def register(image):
    ecs.register_task_definition(
        family=f"{p}-api",
        containerDefinitions=[{
            "name": "api", "image": image, "memory": 512, "essential": True,
            "environment": [{"name": "PUBLIC_BASE_URL", "value": "http://127.0.0.1:9"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": f"/ecs/{p}-api", "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "ecs"}}}],
        cpu="256", memory="1024", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        executionRoleArn="arn:aws:iam::123456789012:role/exec")
register("app:1")
ecs.create_service(cluster=f"{p}-cluster", serviceName=f"{p}-api",
                   taskDefinition=f"{p}-api:1", desiredCount=1)
register("app:2-never-deployed")
sm.create_secret(Name=f"{p}/STRIPE_SECRET_KEY", SecretString=os.environ["KEY"])
sm.create_secret(Name=f"{p}/STRIPE_WEBHOOK_SECRET", SecretString=os.environ["WHSEC"])
"#;

/// moto behind the ECS proxy, seeded.
struct Proxied {
    aws: Aws,
    url: String,
    _proxy: Proc,
}

impl Proxied {
    /// `scenario` and the proxy's other settings (see `ecs_proxy.py`).
    fn start(scenario: &str, settings: &[(&str, &str)]) -> Proxied {
        let aws = Aws::start(true);
        aws.py(
            SEED,
            &[
                ("PREFIX", STAGING),
                ("KEY", CANARY_SK),
                ("WHSEC", CANARY_WHSEC),
            ],
        );
        let (proxy, url) = ecs_proxy(&aws, scenario, settings);
        Proxied {
            aws,
            url,
            _proxy: proxy,
        }
    }

    /// The binary talking to AWS through the proxy.
    fn bin(&self) -> Command {
        let mut c = bin();
        c.envs(self.aws.moto.env())
            .env("AWS_ENDPOINT_URL", &self.url)
            .env_remove("CI");
        c
    }

    /// `--json enable --env staging` with a fresh webhook secret and no smoke, polling ECS every
    /// `poll` (the default when `None`), run to its end (within five minutes).
    fn enable(&self, poll: Option<&str>) -> (Output, f64) {
        let mut cmd = self.bin();
        if let Some(poll) = poll {
            cmd.env("STRIPE_OPS_ECS_POLL", poll);
        }
        cmd.args([
            "--json",
            "enable",
            "--env",
            "staging",
            "--generate-webhook-secret",
            "--skip-smoke",
        ]);
        output_within(cmd, Duration::from_secs(300))
    }

    /// The proxy's record: when the first task of a failing deployment stopped.
    fn first_stop(&self) -> f64 {
        let (code, out, err) = run_python(
            "import os, urllib.request\nprint(urllib.request.urlopen(os.environ['URL']).read().decode())",
            &[("URL", &format!("{}/__proxy/state", self.url))],
        );
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()["first_stop"]
            .as_f64()
            .expect("a task stopped")
    }
}

/// `ecs_proxy.py` in front of `aws`'s moto_server, playing `scenario` (the execution role may
/// not read the webhook secret stripe-ops writes); returns it and its URL.
fn ecs_proxy(aws: &Aws, scenario: &str, settings: &[(&str, &str)]) -> (Proc, String) {
    let denied = aws.snapshot(STAGING)["secrets"]["STRIPE_WEBHOOK_SECRET"]["arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut cmd = python();
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/ecs_proxy.py"
    ))
    .envs(aws.moto.env())
    .env("UPSTREAM", &aws.moto.url)
    .env("SCENARIO", scenario)
    .env("DENIED_SECRET_ARN", &denied)
    .env("LOG_GROUP", format!("/ecs/{STAGING}-api"))
    .envs(settings.iter().copied());
    let (proxy, port) = spawn_announcing(cmd);
    (proxy, format!("http://127.0.0.1:{port}"))
}

/// Runs `cmd` to its end, within `limit` (a wait that never ends fails the test instead of
/// hanging it); returns the output and the wall-clock time it exited.
fn output_within(mut cmd: Command, limit: Duration) -> (Output, f64) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let out = child.wait_with_output();
        let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let _ = tx.send((out, at.as_secs_f64()));
    });
    match rx.recv_timeout(limit) {
        Ok((out, at)) => (out.unwrap(), at),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("still waiting after {}s", limit.as_secs());
        }
    }
}

fn revision(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap()
}

#[test]
fn tasks_that_cannot_start_end_the_wait_name_why_and_roll_back_to_the_revision_it_ran() {
    let p = Proxied::start(
        "secrets_denied",
        &[("TASK_INTERVAL", "3"), ("TASK_LIFETIME", "1")],
    );
    let before = p.aws.snapshot(STAGING);
    let wh = p.aws.file("wh", "whsec_NEWnewNEWnew0123456789abcdefGHIJ");
    let summary = p.aws.dir.path().join("summary.md");
    let mut cmd = p.bin();
    // The default wait (15 minutes) and polling: only failing fast ends it in time.
    cmd.args([
        "--json",
        "enable",
        "--env",
        "staging",
        "--stripe-webhook-secret-file",
        &wh,
        "--skip-smoke",
    ])
    .env("GITHUB_ACTIONS", "true")
    .env("GITHUB_STEP_SUMMARY", &summary);
    let (o, exited_at) = output_within(cmd, Duration::from_secs(300));
    assert_code(&o, 3);
    println!(
        "fail fast against moto behind the ECS proxy (a task every 3 s, default polling): exit 3 {:.1}s after the first task stopped",
        exited_at - p.first_stop()
    );
    let doc = json_of(&o);
    let error = doc["error"].as_str().unwrap();
    let wh_arn = before["secrets"]["STRIPE_WEBHOOK_SECRET"]["arn"]
        .as_str()
        .unwrap();
    assert!(
        error.contains("the new tasks cannot start: 3 tasks of deployment"),
        "{error}"
    );
    assert!(
        error.contains(&format!(
            "the execution role exec cannot read secret {wh_arn}: grant secretsmanager:GetSecretValue on its ARN"
        )),
        "{error}"
    );
    let stopped = &doc["details"]["rollout"]["stopped_tasks"];
    assert!(stopped.as_array().unwrap().len() >= 3, "{stopped}");
    assert_eq!(stopped[0]["classification"]["kind"], "secret_access_denied");
    assert_eq!(stopped[0]["classification"]["heals"], false);
    assert_eq!(stopped[0]["stop_code"], "TaskFailedToStart");

    // The revision the service ran, not the family's latest but one; nothing deregistered.
    let after = p.aws.snapshot(STAGING);
    let service_td = after["service"]["taskDefinition"].as_str().unwrap();
    assert_eq!(revision(service_td), "1", "{error}");
    assert!(
        error.contains(&format!("rolled the service back to {service_td}")),
        "{error}"
    );
    let tds = after["task_definitions"].as_array().unwrap();
    assert_eq!(tds.len(), 3, "{tds:?}");
    for td in tds {
        let name = td.as_str().unwrap().rsplit('/').next().unwrap();
        assert_eq!(after["tds"][name]["td"]["status"], "ACTIVE", "{name}");
    }
    // The secret is its previous version again.
    assert_eq!(
        after["secrets"]["STRIPE_WEBHOOK_SECRET"]["current"],
        before["secrets"]["STRIPE_WEBHOOK_SECRET"]["current"]
    );
    assert!(
        error.contains("AWSCURRENT of proofwork-staging/STRIPE_WEBHOOK_SECRET is version"),
        "{error}"
    );
    // The job summary has a row per stopped task, with its reason in words.
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("`stopped task "), "{md}");
    assert!(
        md.contains("grant secretsmanager:GetSecretValue on its ARN"),
        "{md}"
    );
    assert!(
        stderr(&o).contains("::error title=stripe-ops enable --env staging%3A stopped task"),
        "{}",
        stderr(&o)
    );
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC, "whsec_NEWnewNEWnew"]);
}

#[test]
fn a_slow_deployment_with_pending_tasks_and_no_failure_completes() {
    let p = Proxied::start("healthy", &[("PENDING_SECONDS", "90")]);
    let (o, _) = p.enable(Some("500ms"));
    assert_code(&o, 0);
    let report = json_of(&o);
    // The fixture really was slow: its one task was pending for 90 s.
    assert!(
        report["deployment"]["seconds"].as_f64().unwrap() > 89.0,
        "{report}"
    );
    assert_eq!(
        revision(report["task_definition"]["after"].as_str().unwrap()),
        "3"
    );
}

#[test]
fn a_container_that_exits_is_named_with_its_last_log_lines() {
    let p = Proxied::start("exit1", &[("TASK_INTERVAL", "1"), ("TASK_LIFETIME", "0.5")]);
    let (o, _) = p.enable(Some("200ms"));
    assert_code(&o, 3);
    let doc = json_of(&o);
    let error = doc["error"].as_str().unwrap();
    assert!(
        error.contains("container api exits with code 1: its last log lines are \u{ab}starting api\u{bb} \u{ab}Error: STRIPE_WEBHOOK_SECRET does not look like whsec_...\u{bb} \u{ab}exiting with code 1\u{bb}"),
        "{error}"
    );
    let first = &doc["details"]["rollout"]["stopped_tasks"][0];
    assert_eq!(first["classification"]["kind"], "exited");
    assert_eq!(first["containers"][0]["exit_code"], 1);
    assert_eq!(first["last_log_lines"][2], "exiting with code 1");
    assert!(
        stderr(&o).contains("last log lines of container api:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_image_that_cannot_be_pulled_and_an_out_of_memory_kill_are_classified() {
    for (scenario, kind, says) in [
        (
            "image_pull",
            "image_pull",
            "the image cannot be pulled: it does not exist (the repository or the tag is wrong)",
        ),
        (
            "oom",
            "out_of_memory",
            "container api ran out of memory (OutOfMemoryError: Container killed due to memory usage, exit code 137)",
        ),
    ] {
        let p = Proxied::start(
            scenario,
            &[("TASK_INTERVAL", "1"), ("TASK_LIFETIME", "0.5")],
        );
        let (o, _) = p.enable(Some("200ms"));
        assert_code(&o, 3);
        let doc = json_of(&o);
        let error = doc["error"].as_str().unwrap();
        assert!(error.contains(says), "{scenario}: {error}");
        assert_eq!(
            doc["details"]["rollout"]["stopped_tasks"][0]["classification"]["kind"],
            kind
        );
        assert_eq!(
            revision(
                p.aws.snapshot(STAGING)["service"]["taskDefinition"]
                    .as_str()
                    .unwrap()
            ),
            "1"
        );
    }
}

#[test]
fn rotate_ends_its_wait_too_and_puts_the_previous_secret_back() {
    let w = World::start(true, true, &[]);
    w.enable();
    w.stripe("create", &w.webhook_url());
    let before = w.aws.snapshot(STAGING);
    let (_proxy, url) = ecs_proxy(
        &w.aws,
        "secrets_denied",
        &[("TASK_INTERVAL", "1"), ("TASK_LIFETIME", "0.5")],
    );
    let mut cmd = w.rotate_command("staging");
    cmd.env("AWS_ENDPOINT_URL", &url)
        .env("STRIPE_OPS_ECS_POLL", "200ms")
        .args(["--skip-smoke"]);
    let (o, _) = output_within(cmd, Duration::from_secs(300));
    assert_code(&o, 3);
    let err = stderr(&o);
    assert!(err.contains("rotation failed at step 3"), "{err}");
    assert!(err.contains("the new tasks cannot start"), "{err}");
    assert!(
        err.contains("grant secretsmanager:GetSecretValue on its ARN"),
        "{err}"
    );
    assert!(err.contains("rollback completed"), "{err}");
    let after = w.aws.snapshot(STAGING);
    assert_eq!(
        after["secrets"]["STRIPE_WEBHOOK_SECRET"]["current"],
        before["secrets"]["STRIPE_WEBHOOK_SECRET"]["current"]
    );
    assert_eq!(
        after["service"]["taskDefinition"],
        before["service"]["taskDefinition"]
    );
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC]);
}
