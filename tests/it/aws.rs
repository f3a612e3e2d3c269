//! `enable`, `webhook rotate` and `status` against a real moto_server (seeded with boto3) and,
//! where Stripe is involved, the sandbox.
//!
//! This file is the harness: moto seeded with a service and its secrets, snapshots of what the
//! commands may touch, and the `World` of moto plus a sandbox, shared by its submodules (one
//! command or concern each) and by the `ssm`, `wiring`, `fail_fast`, `interrupt` and
//! `production_safety` tests.

use std::process::Output;

use serde_json::{Value, json};

use crate::common::*;

mod enable;
mod production;
mod rollback;
mod rotate;
mod status;

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
