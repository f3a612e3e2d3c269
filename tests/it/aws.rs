//! `enable`, `webhook rotate` and `status` against a real moto_server (seeded with boto3) and,
//! where Stripe is involved, the sandbox.

use std::process::Output;

use serde_json::Value;

use crate::common::*;

const STAGING: &str = "proofwork-staging";
const PROD: &str = "proofwork-prod";

/// Seeds a cluster, a service on revision 1 of a task definition whose `api` container has a
/// PUBLIC_BASE_URL and an unrelated secret, a sidecar, tags; and the secrets given in KEY/WHSEC.
const SEED: &str = r#"
import boto3, os
p = os.environ["PREFIX"]
ecs = boto3.client("ecs"); sm = boto3.client("secretsmanager")
ecs.create_cluster(clusterName=f"{p}-cluster")
ecs.register_task_definition(
    family=f"{p}-api",
    containerDefinitions=[
        {"name": "api", "image": "app:1", "memory": 512, "essential": True,
         "environment": [{"name": "PUBLIC_BASE_URL", "value": os.environ["BASE"]}],
         "secrets": [{"name": "DATABASE_URL", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"}]},
        {"name": "sidecar", "image": "envoy:1", "memory": 128, "essential": False},
    ],
    cpu="256", memory="1024", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
    executionRoleArn="arn:aws:iam::123456789012:role/exec",
    taskRoleArn="arn:aws:iam::123456789012:role/task",
    tags=[{"key": "team", "value": "payments"}],
)
ecs.create_service(cluster=f"{p}-cluster", serviceName=f"{p}-api",
                   taskDefinition=f"{p}-api:1", desiredCount=1)
if os.environ.get("KEY"):
    sm.create_secret(Name=f"{p}/STRIPE_SECRET_KEY", SecretString=os.environ["KEY"])
if os.environ.get("WHSEC"):
    sm.create_secret(Name=f"{p}/STRIPE_WEBHOOK_SECRET", SecretString=os.environ["WHSEC"])
"#;

/// Every resource the commands may touch, as JSON (secret values included: test only).
const SNAPSHOT: &str = r#"
import boto3, json, os
p = os.environ["PREFIX"]
ecs = boto3.client("ecs"); sm = boto3.client("secretsmanager")
out = {"secrets": {}}
for n in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
    sid = f"{p}/{n}"
    try:
        d = sm.describe_secret(SecretId=sid)
        v = sm.get_secret_value(SecretId=sid)
        out["secrets"][n] = {"arn": d["ARN"], "value": v["SecretString"],
                             "current": v["VersionId"], "versions": d.get("VersionIdsToStages")}
    except sm.exceptions.ResourceNotFoundException:
        out["secrets"][n] = None
out["task_definitions"] = ecs.list_task_definitions()["taskDefinitionArns"]
s = ecs.describe_services(cluster=f"{p}-cluster", services=[f"{p}-api"])["services"][0]
out["service"] = {"taskDefinition": s["taskDefinition"],
                  "deployments": [d["id"] for d in s["deployments"]]}
tds = {}
for arn in out["task_definitions"]:
    r = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    td = r["taskDefinition"]
    for k in ("registeredAt", "deregisteredAt"):
        td.pop(k, None)
    tds[arn.rsplit("/", 1)[1]] = {"td": td, "tags": r.get("tags", [])}
out["tds"] = tds
print(json.dumps(out, default=str))
"#;

pub struct Aws {
    pub moto: Moto,
    pub dir: tempfile::TempDir,
}

impl Aws {
    /// moto_server where deployments complete (`running`) or never do.
    pub fn start(running: bool) -> Aws {
        let moto = if running {
            Moto::start_with_env(&[("MOTO_ECS_SERVICE_RUNNING", "1")])
        } else {
            Moto::start()
        };
        Aws {
            moto,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn py(&self, code: &str, extra: &[(&str, &str)]) -> String {
        let env = self.moto.env();
        let mut envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        envs.extend_from_slice(extra);
        let (c, out, err) = run_python(code, &envs);
        assert_eq!(c, 0, "python failed:\n{err}");
        out
    }

    pub fn seed(&self, prefix: &str, base: &str, key: Option<&str>, whsec: Option<&str>) {
        self.py(
            SEED,
            &[
                ("PREFIX", prefix),
                ("BASE", base),
                ("KEY", key.unwrap_or("")),
                ("WHSEC", whsec.unwrap_or("")),
            ],
        );
    }

    pub fn snapshot(&self, prefix: &str) -> Value {
        serde_json::from_str(&self.py(SNAPSHOT, &[("PREFIX", prefix)])).unwrap()
    }

    /// The binary with moto's environment, fast polling, and no CI.
    pub fn cmd(&self, args: &[&str]) -> Output {
        let mut c = bin();
        c.envs(self.moto.env())
            .env("STRIPE_OPS_ECS_POLL_MS", "20")
            .env_remove("CI")
            .args(args);
        c.output().unwrap()
    }

    pub fn file(&self, name: &str, content: &str) -> String {
        write_file(self.dir.path(), name, content)
            .to_string_lossy()
            .into_owned()
    }
}

fn revision(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap()
}

fn secrets_of(snap: &Value, rev: &str) -> Vec<(String, String)> {
    let defs = snap["tds"][rev]["td"]["containerDefinitions"]
        .as_array()
        .unwrap();
    let api = defs.iter().find(|d| d["name"] == "api").unwrap();
    api["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["valueFrom"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_str(&stdout(o))
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", stdout(o)))
}

const NO_STRIPE: &str = "http://127.0.0.1:9";

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
        .unwrap();
    assert_no_leak(&o, &[CANARY_SK, new_whsec]);
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
fn dry_run_reads_everything_prints_the_plan_and_the_diff_and_changes_nothing() {
    let aws = Aws::start(true);
    aws.seed(STAGING, NO_STRIPE, Some(CANARY_SK), Some(CANARY_WHSEC));
    let before = aws.snapshot(STAGING);
    let whsec = aws.file("whsec", "whsec_OTHERother0123456789");
    let o = aws.cmd(&[
        "enable",
        "--env",
        "staging",
        "--stripe-webhook-secret-file",
        &whsec,
        "--dry-run",
    ]);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("put a new value into secret proofwork-staging/STRIPE_WEBHOOK_SECRET"),
        "{out}"
    );
    assert!(
        out.contains("register a new revision of proofwork-staging-api"),
        "{out}"
    );
    assert!(
        out.contains("  DATABASE_URL = arn:aws:secretsmanager"),
        "{out}"
    );
    assert!(
        out.contains("+ STRIPE_SECRET_KEY = arn:aws:secretsmanager"),
        "{out}"
    );
    assert!(
        out.contains("+ STRIPE_WEBHOOK_SECRET = arn:aws:secretsmanager"),
        "{out}"
    );
    assert!(out.contains("dry run: nothing was changed"), "{out}");
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC, "whsec_OTHERother0123456789"]);
    assert_eq!(aws.snapshot(STAGING), before);
}

#[test]
fn production_without_yes_in_ci_is_exit_2_and_changes_nothing() {
    let aws = Aws::start(true);
    aws.seed(
        PROD,
        NO_STRIPE,
        Some("sk_live_CANARYcanary0123456789"),
        Some(CANARY_WHSEC),
    );
    let before = aws.snapshot(PROD);
    let mut c = bin();
    c.envs(aws.moto.env()).env("CI", "true").args([
        "enable",
        "--env",
        "prod",
        "--generate-webhook-secret",
        "--skip-smoke",
    ]);
    let o = c.output().unwrap();
    assert_code(&o, 2);
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("refusing to change production"),
        "{}",
        stderr(&o)
    );
    assert_eq!(aws.snapshot(PROD), before);
}

#[test]
fn bad_secret_formats_are_exit_2_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    // AWS and Stripe point at a closed port: nothing may be contacted.
    let dead = format!("http://127.0.0.1:{}", free_port());
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
            Some(file("wh", "not-a-whsec")),
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
