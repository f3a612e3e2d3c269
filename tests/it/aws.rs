//! `enable`, `webhook rotate` and `status` against a real moto_server (seeded with boto3) and,
//! where Stripe is involved, the sandbox.

use std::process::Output;

use serde_json::{Value, json};

use crate::common::*;

pub(crate) const STAGING: &str = "proofwork-staging";
const PROD: &str = "proofwork-prod";

/// Seeds a cluster, a service on revision 1 of a task definition whose `api` container has a
/// PUBLIC_BASE_URL and an unrelated secret, a sidecar, tags; and the secrets given in KEY/WHSEC.
pub(crate) const SEED: &str = r#"
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
        v = sm.get_secret_value(SecretId=sid, VersionStage="AWSCURRENT")
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
            .env("STRIPE_OPS_ECS_POLL", "20ms")
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

/// Runs the command in argv on a new pseudo-terminal (its controlling terminal), answers
/// `ANSWER` to the production prompt, and prints {"code", "output", "asked"} as JSON.
const PY_ON_A_TERMINAL: &str = r#"
import json, os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out, asked, deadline = b"", False, time.monotonic() + 60
while time.monotonic() < deadline:
    if not select.select([fd], [], [], 0.5)[0]:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break  # the child closed the terminal
    if not chunk:
        break
    out += chunk
    if not asked and b"Apply this plan to production?" in out:
        os.write(fd, os.environ["ANSWER"].encode()); asked = True
_, status = os.waitpid(pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "asked": asked,
                  "output": out.decode("utf-8", "replace")}))
"#;

#[test]
fn production_asks_on_a_terminal_and_only_yes_applies() {
    let aws = Aws::start(true);
    aws.seed(
        PROD,
        NO_STRIPE,
        Some("sk_live_CANARYcanary0123456789"),
        Some(CANARY_WHSEC),
    );
    let on_a_terminal = |answer: &str| -> Value {
        let o = python()
            .arg("-c")
            .arg(PY_ON_A_TERMINAL)
            .arg(env!("CARGO_BIN_EXE_stripe-ops"))
            .args(["enable", "--env", "prod", "--generate-webhook-secret"])
            .args(["--skip-smoke", "--skip-restart"])
            .envs(aws.moto.env())
            .env_remove("CI")
            .env("NO_COLOR", "1")
            .env("ANSWER", answer)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        json_of(&o)
    };
    let before = aws.snapshot(PROD);

    let no = on_a_terminal("n");
    let output = no["output"].as_str().unwrap();
    assert_eq!(no["asked"], true, "{output}");
    assert!(
        output.contains("STRIPE_WEBHOOK_SECRET"),
        "the plan is shown first: {output}"
    );
    assert!(
        output.contains("not confirmed; nothing was changed"),
        "{output}"
    );
    assert_eq!(no["code"], 2, "{output}");
    assert_eq!(aws.snapshot(PROD), before);

    let yes = on_a_terminal("y");
    let output = yes["output"].as_str().unwrap();
    assert_eq!(
        (yes["asked"].clone(), yes["code"].clone()),
        (json!(true), json!(0)),
        "{output}"
    );
    let after = aws.snapshot(PROD);
    assert_ne!(after, before, "confirmed: the plan was applied");
    for leak in ["sk_live_CANARYcanary0123456789", CANARY_WHSEC, "whsec_"] {
        assert!(!output.contains(leak), "{leak} on the terminal: {output}");
    }
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

/// Webhook endpoints at the sandbox's Stripe API, through plain HTTP from Python:
/// ACTION=create (URL) prints the new id; ACTION=list prints `[{id, url, status}]`.
const STRIPE_PY: &str = r#"
import json, os, urllib.error, urllib.request, urllib.parse
base = os.environ["API"]; key = os.environ["KEY"]
def call(method, path, form=None):
    data = urllib.parse.urlencode(form, doseq=True).encode() if form else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + key})
    return json.load(urllib.request.urlopen(req))
def create(url):
    return call("POST", "/v1/webhook_endpoints",
                {"url": url, "enabled_events[]": ["checkout.session.completed"]})["id"]
if os.environ["ACTION"] == "create":
    print(create(os.environ["URL"]))
elif os.environ["ACTION"] == "fill":
    # other teams' endpoints, until the account holds as many as Stripe allows
    n = 0
    while True:
        try:
            create(os.environ["URL"] + "/" + str(n)); n += 1
        except urllib.error.HTTPError as e:
            print(json.load(e)["error"]["message"]); break
else:
    out, after = [], None
    while True:
        q = "?limit=100" + ("&starting_after=" + after if after else "")
        page = call("GET", "/v1/webhook_endpoints" + q)
        out += [{"id": e["id"], "url": e["url"], "status": e["status"]} for e in page["data"]]
        if not page["has_more"] or not page["data"]:
            break
        after = page["data"][-1]["id"]
    print(json.dumps(out))
"#;

/// moto seeded for staging + a sandbox whose app is the PUBLIC_BASE_URL and whose Stripe API
/// takes CANARY_SK.
pub(crate) struct World {
    pub(crate) aws: Aws,
    pub(crate) sandbox: Sandbox,
}

impl World {
    /// `sandbox_args` beyond the key file; `seed_secrets`: put CANARY_SK / CANARY_WHSEC in moto.
    pub(crate) fn start(running: bool, seed_secrets: bool, sandbox_args: &[&str]) -> World {
        let aws = Aws::start(running);
        let key = aws.file("sk", CANARY_SK);
        let mut args = vec!["--stripe-key-file", key.as_str()];
        args.extend_from_slice(sandbox_args);
        let sandbox = Sandbox::start(&args);
        if seed_secrets {
            aws.seed(STAGING, &sandbox.app, Some(CANARY_SK), Some(CANARY_WHSEC));
        } else {
            aws.seed(STAGING, &sandbox.app, None, None);
        }
        World { aws, sandbox }
    }

    pub(crate) fn stripe(&self, action: &str, url: &str) -> String {
        self.aws.py(
            STRIPE_PY,
            &[
                ("API", &self.sandbox.stripe_api),
                ("KEY", CANARY_SK),
                ("ACTION", action),
                ("URL", url),
            ],
        )
    }

    pub(crate) fn webhook_url(&self) -> String {
        format!("{}/api/webhooks/stripe", self.sandbox.app)
    }

    /// The enabled endpoint ids for the app's webhook URL.
    pub(crate) fn enabled(&self) -> Vec<String> {
        let all: Value = serde_json::from_str(&self.stripe("list", "")).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["url"] == self.webhook_url().as_str() && e["status"] == "enabled")
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--stripe-api-base", self.sandbox.stripe_api.as_str()]);
        self.aws.cmd(&all)
    }

    /// `webhook rotate --env ENV --allow-http` against this world, as a command to add to.
    pub(crate) fn rotate_command(&self, env: &str) -> std::process::Command {
        let mut c = bin();
        c.envs(self.aws.moto.env())
            .args(["webhook", "rotate", "--env", env, "--allow-http"])
            .args(["--stripe-api-base", &self.sandbox.stripe_api]);
        c
    }

    /// `webhook rotate --env staging --allow-http EXTRA`.
    pub(crate) fn rotate(&self, extra: &[&str]) -> Output {
        self.rotate_command("staging").args(extra).output().unwrap()
    }

    /// A sandbox whose app reads its secrets from moto (seeded with the canaries) and follows
    /// the service's redeploys every `aws_poll`.
    pub(crate) fn with_an_app_reading_secrets_from_aws(aws_poll: &str) -> World {
        let aws = Aws::start(true);
        // Secrets first, so the app starts with them; then ECS, which needs the app's URL.
        aws.py(
            "import boto3, os\nsm = boto3.client('secretsmanager')\n\
             sm.create_secret(Name='proofwork-staging/STRIPE_SECRET_KEY', SecretString=os.environ['KEY'])\n\
             sm.create_secret(Name='proofwork-staging/STRIPE_WEBHOOK_SECRET', SecretString=os.environ['WHSEC'])\n",
            &[("KEY", CANARY_SK), ("WHSEC", CANARY_WHSEC)],
        );
        let key = aws.file("sk", CANARY_SK);
        let mut cmd = bin();
        cmd.envs(aws.moto.env());
        let sandbox = Sandbox::start_with(
            cmd,
            &[
                "--stripe-key-file",
                &key,
                "--secrets-from-aws",
                "--env",
                "staging",
                "--aws-poll",
                aws_poll,
            ],
        );
        aws.seed(STAGING, &sandbox.app, None, None);
        World { aws, sandbox }
    }

    /// Injects the seeded secrets without a redeploy (which never completes when not running).
    pub(crate) fn enable_without_redeploy(&self) {
        let o = self.cmd(&[
            "enable",
            "--env",
            "staging",
            "--skip-put-secrets",
            "--skip-smoke",
            "--skip-restart",
        ]);
        assert_code(&o, 0);
    }

    /// Injects the seeded secrets into the task definition (revision 2), without a smoke.
    pub(crate) fn enable(&self) {
        let o = self.cmd(&[
            "enable",
            "--env",
            "staging",
            "--skip-put-secrets",
            "--skip-smoke",
        ]);
        assert_code(&o, 0);
    }
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
fn a_test_key_for_production_warns() {
    let aws = Aws::start(true);
    let key = aws.file("sk", CANARY_SK);
    let sandbox = Sandbox::start(&["--stripe-key-file", &key]);
    aws.seed(PROD, &sandbox.app, None, None);
    let o = aws.cmd(&[
        "enable",
        "--env",
        "production",
        "--stripe-secret-key-file",
        &key,
        "--generate-webhook-secret",
        "--create-secrets",
        "--dry-run",
        "--stripe-api-base",
        &sandbox.stripe_api,
    ]);
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("warning: a test-mode Stripe key for production"),
        "{}",
        stderr(&o)
    );
    assert_no_leak(&o, &[CANARY_SK]);
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
