//! `enable` and `webhook rotate` against moto_server where ECS and the team's wiring are not
//! stripe-ops' own: a rollback during the wait (judged on the deployment stripe-ops started),
//! Stripe variables injected from keys of one JSON secret (the task definition left as it is,
//! the other keys byte for byte), version-pinned references and a CODE_DEPLOY service refused
//! before any write. SSM parameters are in `ssm.rs`.
//!
//! moto keeps no `deploymentConfiguration` (no circuit breaker, no alarms) and creates a new
//! deployment id only with `forceNewDeployment`, so a rollback is played here as another
//! UpdateService onto the previous task definition with forceNewDeployment, which is what ECS's
//! own rollback amounts to: a new PRIMARY deployment of the previous task definition. The
//! decision logic for the circuit breaker's and the alarms' shapes is tested on recorded
//! DescribeServices shapes in `src/deploy/rollout.rs`.

use std::process::Stdio;

use serde_json::Value;

use crate::aws::{Aws, STAGING, World};
use crate::common::*;

const ACCOUNT: &str = "123456789012";

/// The five keys of the team's JSON secret; two are Stripe's.
const TEAM_DOCUMENT: &str = "{\n  \"DATABASE_URL\": \"postgres://app:pw@db:5432/app\",\n  \"STRIPE_SECRET_KEY\": \"sk_test_OLDoldOLDold0123456789abcdef\",\n  \"REDIS_URL\": \"redis://cache:6379/0\",\n  \"STRIPE_WEBHOOK_SECRET\": \"whsec_OLDoldOLDold0123456789abcdef\",\n  \"RATE\": 1.10\n}";

/// Creates the JSON secret `app/staging`, registers a revision of the service's task definition
/// whose `api` container reads the two Stripe variables from its keys with `refs` (the suffix
/// after the secret ARN for each), and points the service at it. Prints the secret's ARN.
const WIRE_TO_TEAM_SECRET: &str = r#"
import boto3, json, os
p = os.environ["PREFIX"]
ecs = boto3.client("ecs"); sm = boto3.client("secretsmanager")
arn = sm.create_secret(Name="app/staging", SecretString=os.environ["DOC"])["ARN"]
td = ecs.describe_task_definition(taskDefinition=f"{p}-api:1", include=["TAGS"])["taskDefinition"]
api = td["containerDefinitions"][0]
refs = json.loads(os.environ["REFS"])
api["secrets"] = api.get("secrets", []) + [
    {"name": name, "valueFrom": arn + suffix} if not suffix.startswith("arn:") else {"name": name, "valueFrom": suffix}
    for name, suffix in refs.items()
]
keep = {k: td[k] for k in ("family", "containerDefinitions", "cpu", "memory", "networkMode",
                           "requiresCompatibilities", "executionRoleArn", "taskRoleArn")}
new = ecs.register_task_definition(**keep)["taskDefinition"]["taskDefinitionArn"]
ecs.update_service(cluster=f"{p}-cluster", service=f"{p}-api", taskDefinition=new)
print(arn)
"#;

const TEAM_SECRET: &str = r#"
import boto3, json
sm = boto3.client("secretsmanager")
d = sm.describe_secret(SecretId="app/staging")
v = sm.get_secret_value(SecretId="app/staging", VersionStage="AWSCURRENT")
print(json.dumps({"value": v["SecretString"], "current": v["VersionId"],
                  "versions": len(d["VersionIdsToStages"])}))
"#;

fn team_secret(aws: &Aws) -> Value {
    serde_json::from_str(&aws.py(TEAM_SECRET, &[])).unwrap()
}

fn wire(aws: &Aws, refs: &[(&str, &str)]) -> String {
    let refs: serde_json::Map<String, Value> = refs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    aws.py(
        WIRE_TO_TEAM_SECRET,
        &[
            ("PREFIX", STAGING),
            ("DOC", TEAM_DOCUMENT),
            ("REFS", &Value::Object(refs).to_string()),
        ],
    )
    .trim()
    .to_owned()
}

/// The (key, raw value text) pairs of a JSON object as Python's parser sees them, minus `skip`.
fn others(document: &str, skip: &[&str]) -> Vec<(String, String)> {
    let v: serde_json::Map<String, Value> = serde_json::from_str(document).unwrap();
    v.keys()
        .filter(|k| !skip.contains(&k.as_str()))
        .map(|k| {
            // The value's text exactly as it stands in the document.
            let at = document.find(&format!("\"{k}\":")).unwrap();
            let line = document[at..].lines().next().unwrap().trim_end_matches(',');
            (k.clone(), line.to_owned())
        })
        .collect()
}

#[test]
fn stripe_keys_in_a_team_json_secret_are_written_there_and_the_wiring_kept() {
    let w = World::start(true, false, &[]);
    let arn = wire(
        &w.aws,
        &[
            ("STRIPE_SECRET_KEY", ":STRIPE_SECRET_KEY::"),
            ("STRIPE_WEBHOOK_SECRET", ":STRIPE_WEBHOOK_SECRET::"),
        ],
    );
    let before = w.aws.snapshot(STAGING);
    let key = w.aws.file("sk", CANARY_SK);
    let whsec = "whsec_NEWnewNEWnew0123456789abcdefGHIJ";
    let wh = w.aws.file("wh", whsec);
    // The plan says where each variable comes from and where its value goes.
    let o = w.cmd(&[
        "--json",
        "enable",
        "--env",
        "staging",
        "--stripe-secret-key-file",
        &key,
        "--stripe-webhook-secret-file",
        &wh,
        "--skip-smoke",
        "--dry-run",
    ]);
    assert_code(&o, 0);
    let plan = &json_of(&o)["plan"];
    assert_eq!(
        plan["wiring"][0]["now"],
        format!("key STRIPE_SECRET_KEY of secret {arn}")
    );
    assert!(
        plan["wiring"][1]["new_value"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "key STRIPE_WEBHOOK_SECRET of {arn} (a new version"
            )),
        "{plan}"
    );
    assert!(
        plan["service"]
            .as_str()
            .unwrap()
            .starts_with("deployment controller ECS, no deployment circuit breaker"),
        "{plan}"
    );
    let o = w.cmd(&[
        "--json",
        "enable",
        "--env",
        "staging",
        "--stripe-secret-key-file",
        &key,
        "--stripe-webhook-secret-file",
        &wh,
        "--skip-smoke",
    ]);
    assert_code(&o, 0);
    assert_no_leak(&o, &[CANARY_SK, whsec, "postgres://app:pw"]);
    let after = w.aws.snapshot(STAGING);
    // No new revision: the task definition already reads the keys where they were written.
    assert_eq!(after["task_definitions"], before["task_definitions"]);
    assert_eq!(
        after["service"]["taskDefinition"],
        before["service"]["taskDefinition"]
    );
    // stripe-ops' own secrets were not created.
    assert!(after["secrets"]["STRIPE_SECRET_KEY"].is_null());
    let team = team_secret(&w.aws);
    let doc = team["value"].as_str().unwrap();
    let v: Value = serde_json::from_str(doc).unwrap();
    assert_eq!(v["STRIPE_SECRET_KEY"], CANARY_SK);
    assert_eq!(v["STRIPE_WEBHOOK_SECRET"], whsec);
    let skip = ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"];
    assert_eq!(others(doc, &skip), others(TEAM_DOCUMENT, &skip));
    assert!(doc.contains("\"RATE\": 1.10"), "{doc}");
    // Both keys in one new version.
    assert_eq!(team["versions"], 2);

    // Rotation writes the new endpoint's secret into the same key, and only there.
    let o = w.rotate(&["--json", "--skip-smoke"]);
    assert_code(&o, 0);
    let rotated = team_secret(&w.aws);
    let doc = rotated["value"].as_str().unwrap();
    let v: Value = serde_json::from_str(doc).unwrap();
    let new_whsec = v["STRIPE_WEBHOOK_SECRET"].as_str().unwrap().to_owned();
    assert!(new_whsec.starts_with("whsec_") && new_whsec != whsec);
    assert_eq!(v["STRIPE_SECRET_KEY"], CANARY_SK);
    assert_eq!(
        others(doc, &["STRIPE_WEBHOOK_SECRET"]),
        others(team["value"].as_str().unwrap(), &["STRIPE_WEBHOOK_SECRET"])
    );
    assert_no_leak(&o, &[CANARY_SK, &new_whsec, "postgres://app:pw"]);
    let again = w.aws.snapshot(STAGING);
    assert_eq!(again["task_definitions"], before["task_definitions"]);
    assert_eq!(json_of(&o)["secret"]["id"], arn);

    // Enable again with the values it holds: nothing is written, no revision.
    let wh = w.aws.file("wh2", &new_whsec);
    let o = w.cmd(&[
        "--json",
        "enable",
        "--env",
        "staging",
        "--stripe-webhook-secret-file",
        &wh,
        "--skip-smoke",
    ]);
    assert_code(&o, 0);
    assert_eq!(json_of(&o)["secrets"], serde_json::json!([]));
    assert_eq!(team_secret(&w.aws)["versions"], rotated["versions"]);
}

#[test]
fn a_json_secret_without_the_key_is_refused_unless_asked_to_add_it() {
    let w = World::start(true, false, &[]);
    let arn = wire(&w.aws, &[("STRIPE_SECRET_KEY", ":STRIPE_LIVE_KEY::")]);
    let key = w.aws.file("sk", CANARY_SK);
    let args = [
        "enable",
        "--env",
        "staging",
        "--stripe-secret-key-file",
        key.as_str(),
        "--generate-webhook-secret",
        "--create-secrets",
        "--skip-smoke",
    ];
    let before = w.aws.snapshot(STAGING);
    let o = w.cmd(&args);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains(&format!("secret {arn} has no key STRIPE_LIVE_KEY")),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--add-json-key"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("postgres://"), "{}", stderr(&o));
    let after = w.aws.snapshot(STAGING);
    assert_eq!(after["secrets"], before["secrets"], "nothing written");
    assert_eq!(team_secret(&w.aws)["versions"], 1);
    let o = w.cmd(&[&args[..], &["--add-json-key"]].concat());
    assert_code(&o, 0);
    let v: Value = serde_json::from_str(team_secret(&w.aws)["value"].as_str().unwrap()).unwrap();
    assert_eq!(v["STRIPE_LIVE_KEY"], CANARY_SK);
    assert_eq!(v["REDIS_URL"], "redis://cache:6379/0");
}

#[test]
fn pinned_versions_and_code_deploy_are_refused_before_any_write() {
    for (reference, says) in [
        (
            ":STRIPE_SECRET_KEY:AWSPREVIOUS:",
            "pinned to version stage AWSPREVIOUS",
        ),
        (
            ":STRIPE_SECRET_KEY::a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
            "pinned to version id a1b2c3d4",
        ),
    ] {
        let aws = Aws::start(true);
        aws.seed(STAGING, "http://127.0.0.1:9", Some(CANARY_SK), None);
        wire(&aws, &[("STRIPE_SECRET_KEY", reference)]);
        let before = aws.snapshot(STAGING);
        let args = [
            "enable",
            "--env",
            "staging",
            "--generate-webhook-secret",
            "--create-secrets",
            "--skip-smoke",
        ];
        let o = aws.cmd(&args);
        assert_code(&o, 2);
        let err = stderr(&o);
        assert!(err.contains(says), "{reference}: {err}");
        assert!(err.contains("--rewire"), "{err}");
        let after = aws.snapshot(STAGING);
        assert_eq!(after["secrets"], before["secrets"], "{reference}");
        assert_eq!(after["task_definitions"], before["task_definitions"]);
        assert_eq!(team_secret(&aws)["versions"], 1);
        // --rewire injects stripe-ops' own secret instead, saying what the team's code will do.
        let o = aws.cmd(&[&args[..], &["--rewire", "--dry-run", "--json"]].concat());
        assert_code(&o, 0);
        assert!(
            stderr(&o).contains("--rewire: STRIPE_SECRET_KEY comes from"),
            "{}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("will put its reference back"),
            "{}",
            stderr(&o)
        );
        let own = before["secrets"]["STRIPE_SECRET_KEY"]["arn"]
            .as_str()
            .unwrap();
        let diff = json_of(&o)["plan"]["secrets_diff"].to_string();
        assert!(
            diff.contains(&format!("+ STRIPE_SECRET_KEY = {own}")),
            "{diff}"
        );
    }

    // A service that CodeDeploy deploys is refused before anything is written.
    let aws = Aws::start(true);
    aws.seed(STAGING, "http://127.0.0.1:9", Some(CANARY_SK), None);
    aws.py(
        "import boto3, os\necs = boto3.client('ecs')\np = os.environ['PREFIX']\n\
         ecs.delete_service(cluster=f'{p}-cluster', service=f'{p}-api', force=True)\n\
         ecs.create_service(cluster=f'{p}-cluster', serviceName=f'{p}-api', taskDefinition=f'{p}-api:1', desiredCount=1, deploymentController={'type': 'CODE_DEPLOY'})\n",
        &[("PREFIX", STAGING)],
    );
    let before = aws.snapshot(STAGING);
    let o = aws.cmd(&[
        "enable",
        "--env",
        "staging",
        "--generate-webhook-secret",
        "--create-secrets",
        "--skip-smoke",
    ]);
    assert_code(&o, 2);
    let err = stderr(&o);
    assert!(
        err.contains("uses the CODE_DEPLOY deployment controller"),
        "{err}"
    );
    assert!(err.contains("--skip-restart"), "{err}");
    assert_eq!(aws.snapshot(STAGING)["secrets"], before["secrets"]);
}

#[test]
fn a_service_scaled_to_zero_is_refused_unless_no_restart_is_asked() {
    let aws = Aws::start(true);
    aws.seed(STAGING, "http://127.0.0.1:9", Some(CANARY_SK), None);
    aws.py(
        "import boto3, os\np = os.environ['PREFIX']\n\
         boto3.client('ecs').update_service(cluster=f'{p}-cluster', service=f'{p}-api', desiredCount=0)\n",
        &[("PREFIX", STAGING)],
    );
    let args = [
        "enable",
        "--env",
        "staging",
        "--generate-webhook-secret",
        "--create-secrets",
        "--skip-smoke",
    ];
    let o = aws.cmd(&args);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("desired count of 0"), "{}", stderr(&o));
    let o = aws.cmd(&[&args[..], &["--skip-restart"]].concat());
    assert_code(&o, 0);
}

/// Plays a rollback while `enable` waits: once the service runs the new revision, another
/// UpdateService puts the previous one back with a new deployment.
const ROLL_BACK_WHEN_DEPLOYED: &str = r#"
import boto3, os, time
p = os.environ["PREFIX"]
ecs = boto3.client("ecs")
deadline = time.time() + 60
while time.time() < deadline:
    s = ecs.describe_services(cluster=f"{p}-cluster", services=[f"{p}-api"])["services"][0]
    if s["taskDefinition"].endswith(":2"):
        break
    time.sleep(0.02)
else:
    raise SystemExit("enable never redeployed")
first = ecs.describe_task_definition(taskDefinition=f"{p}-api:1")["taskDefinition"]["taskDefinitionArn"]
ecs.update_service(cluster=f"{p}-cluster", service=f"{p}-api", taskDefinition=first, forceNewDeployment=True)
s = ecs.describe_services(cluster=f"{p}-cluster", services=[f"{p}-api"])["services"][0]
print(s["deployments"][0]["id"])
"#;

#[test]
fn a_rollback_during_the_wait_fails_enable_with_exit_3_and_is_not_fought() {
    // Deployments never complete here: only the rollback ends the wait.
    let aws = Aws::start(false);
    aws.seed(
        STAGING,
        "http://127.0.0.1:9",
        Some(CANARY_SK),
        Some(CANARY_WHSEC),
    );
    let original = aws.snapshot(STAGING)["secrets"]["STRIPE_WEBHOOK_SECRET"]["current"].clone();
    let wh = aws.file("wh", "whsec_NEWnewNEWnew0123456789abcdefGHIJ");
    let mut enable = bin();
    enable
        .envs(aws.moto.env())
        .env("STRIPE_OPS_ECS_POLL", "20ms")
        .args([
            "--json",
            "enable",
            "--env",
            "staging",
            "--stripe-webhook-secret-file",
            &wh,
            "--skip-smoke",
            "--wait-timeout",
            "60s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = enable.spawn().unwrap();
    let rollback_deployment = aws
        .py(ROLL_BACK_WHEN_DEPLOYED, &[("PREFIX", STAGING)])
        .trim()
        .to_owned();
    let o = child.wait_with_output().unwrap();
    assert_code(&o, 3);
    let err = json_of(&o)["error"].as_str().unwrap().to_owned();
    assert!(err.contains("rolled back by ECS"), "{err}");
    assert!(
        err.contains(&format!(
            "the service runs deployment {rollback_deployment}"
        )),
        "{err}"
    );
    assert!(
        err.contains("the service was left where ECS put it"),
        "{err}"
    );
    assert!(
        err.contains("AWSCURRENT of proofwork-staging/STRIPE_WEBHOOK_SECRET is version"),
        "{err}"
    );
    let snap = aws.snapshot(STAGING);
    // The task definition ECS (here: the test) put back stays; the secret is the original again.
    assert!(
        snap["service"]["taskDefinition"]
            .as_str()
            .unwrap()
            .ends_with(&format!(
                "{ACCOUNT}:task-definition/proofwork-staging-api:1"
            )),
        "{snap}"
    );
    assert_eq!(
        snap["secrets"]["STRIPE_WEBHOOK_SECRET"]["current"],
        original
    );
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC]);
}
