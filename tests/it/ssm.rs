//! `enable`, `webhook rotate` and `status` against moto_server where the task definition takes a
//! Stripe variable from an SSM Parameter Store parameter (Terraform's `aws_ssm_parameter`):
//! the new value goes into the parameter as a new version of the SecureString, with the
//! parameter's own KMS key, the task definition untouched; a failed rollout puts the previous
//! version's value back; a parameter of another account, or one in plain text, is refused before
//! anything is written.

use serde_json::Value;

use crate::aws::{Aws, STAGING, World};
use crate::common::*;

const PARAMETER: &str = "/proofwork/staging/stripe_webhook_secret";

/// A customer-managed KMS key with an alias; the parameter NAME of TYPE holding VALUE (none when
/// TYPE is empty); a revision 2 whose `api` container reads STRIPE_SECRET_KEY from stripe-ops'
/// own secret and STRIPE_WEBHOOK_SECRET from VALUE_FROM, the service pointed at it.
const WIRE_TO_PARAMETER: &str = r#"
import boto3, os
p = os.environ["PREFIX"]
ecs = boto3.client("ecs"); ssm = boto3.client("ssm"); kms = boto3.client("kms")
sm = boto3.client("secretsmanager")
key = kms.create_key(Description="stripe parameters")["KeyMetadata"]["Arn"]
kms.create_alias(AliasName="alias/stripe-ssm", TargetKeyId=key)
kind = os.environ["TYPE"]
if kind:
    extra = {"KeyId": "alias/stripe-ssm"} if kind == "SecureString" else {}
    ssm.put_parameter(Name=os.environ["NAME"], Value=os.environ["VALUE"], Type=kind, **extra)
td = ecs.describe_task_definition(taskDefinition=f"{p}-api:1")["taskDefinition"]
api = td["containerDefinitions"][0]
own = sm.describe_secret(SecretId=f"{p}/STRIPE_SECRET_KEY")["ARN"]
api["secrets"] = api.get("secrets", []) + [
    {"name": "STRIPE_SECRET_KEY", "valueFrom": own},
    {"name": "STRIPE_WEBHOOK_SECRET", "valueFrom": os.environ["VALUE_FROM"]},
]
keep = {k: td[k] for k in ("family", "containerDefinitions", "cpu", "memory", "networkMode",
                           "requiresCompatibilities", "executionRoleArn", "taskRoleArn")}
new = ecs.register_task_definition(**keep)["taskDefinition"]["taskDefinitionArn"]
ecs.update_service(cluster=f"{p}-cluster", service=f"{p}-api", taskDefinition=new)
"#;

/// The parameter as SSM describes it, with its decrypted value (test only).
const PARAMETER_NOW: &str = r#"
import boto3, json, os
ssm = boto3.client("ssm")
name = os.environ["NAME"]
d = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])
d = d["Parameters"][0]
v = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
print(json.dumps({"type": d["Type"], "key": d.get("KeyId"), "version": d["Version"],
                  "value": v["Value"]}))
"#;

fn wire(aws: &Aws, kind: &str, value_from: &str) {
    aws.py(
        WIRE_TO_PARAMETER,
        &[
            ("PREFIX", STAGING),
            ("NAME", PARAMETER),
            ("TYPE", kind),
            ("VALUE", CANARY_WHSEC),
            ("VALUE_FROM", value_from),
        ],
    );
}

fn parameter(aws: &Aws) -> Value {
    serde_json::from_str(&aws.py(PARAMETER_NOW, &[("NAME", PARAMETER)])).unwrap()
}

fn arn() -> String {
    format!("arn:aws:ssm:us-east-1:123456789012:parameter{PARAMETER}")
}

/// moto seeded for staging (stripe-ops' own key secret, no webhook secret), the webhook secret
/// wired to the parameter.
fn wired(running: bool, kind: &str, value_from: &str) -> Aws {
    let aws = Aws::start(running);
    aws.seed(STAGING, "http://127.0.0.1:9", Some(CANARY_SK), None);
    wire(&aws, kind, value_from);
    aws
}

const NEW: &str = "whsec_NEWnewNEWnew0123456789abcdefGHIJ";
const NO_STRIPE: &str = "http://127.0.0.1:9";

/// `enable --env staging` with the webhook secret NEW, no smoke, and `extra`.
fn enable(aws: &Aws, extra: &[&str]) -> std::process::Output {
    let wh = aws.file("wh", NEW);
    let args = [
        "enable",
        "--env",
        "staging",
        "--stripe-webhook-secret-file",
        &wh,
        "--skip-smoke",
    ];
    aws.cmd(&[&args[..], extra].concat())
}

/// `--json status --env staging` with Stripe unreachable.
fn status(aws: &Aws) -> std::process::Output {
    aws.cmd(&[
        "--json",
        "status",
        "--env",
        "staging",
        "--stripe-api-base",
        NO_STRIPE,
    ])
}

#[test]
fn enable_writes_the_securestring_with_its_own_key_and_status_reads_it() {
    let aws = wired(true, "SecureString", &arn());
    let before = aws.snapshot(STAGING);
    // The plan names the parameter, its version and its key.
    let o = enable(&aws, &["--json", "--dry-run"]);
    assert_code(&o, 0);
    let plan = json_of(&o)["plan"].clone();
    assert!(
        plan["steps"].to_string().contains(&format!(
            "put a new version into SSM parameter {PARAMETER} (now version 1): a SecureString encrypted with its own key alias/stripe-ssm"
        )),
        "{plan}"
    );
    let wiring = plan["wiring"].to_string();
    assert!(
        wiring.contains(&format!(
            "SSM parameter {PARAMETER} (a new version of the SecureString"
        )),
        "{wiring}"
    );
    assert!(
        plan["preflight"].to_string().contains("ssm:GetParameters")
            || plan["preflight"]["notes"]
                .to_string()
                .contains("could not simulate"),
        "{plan}"
    );

    let o = enable(&aws, &["--json"]);
    assert_code(&o, 0);
    let report = json_of(&o);
    assert_eq!(report["secrets"][0]["id"], PARAMETER, "{report}");
    assert_eq!(report["secrets"][0]["version_id"], "2");
    assert_eq!(report["task_definition"]["registered"], false);
    let now = parameter(&aws);
    assert_eq!(now["type"], "SecureString");
    assert_eq!(
        now["key"], "alias/stripe-ssm",
        "the parameter's own key, kept"
    );
    assert_eq!(now["version"], 2);
    assert_eq!(now["value"], NEW);
    let after = aws.snapshot(STAGING);
    assert_eq!(after["task_definitions"], before["task_definitions"]);
    assert_eq!(after["secrets"], before["secrets"]);
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC, NEW]);

    // status reads the parameter where the container does.
    let o = aws.cmd(&[
        "--json",
        "status",
        "--env",
        "staging",
        "--stripe-api-base",
        NO_STRIPE,
    ]);
    let r = json_of(&o);
    let webhook = &r["report"]["secrets"][1];
    assert_eq!(webhook["variable"], "STRIPE_WEBHOOK_SECRET");
    assert_eq!(webhook["id"], PARAMETER);
    assert_eq!(webhook["parameter"]["type"], "SecureString");
    assert_eq!(webhook["parameter"]["version"], 2);
    assert_eq!(webhook["parameter"]["arn"], arn());
    assert_eq!(r["report"]["injects_both"], true, "{r}");
    assert!(
        r["report"]["wiring"]
            .to_string()
            .contains(&format!("SSM parameter {PARAMETER}")),
        "{r}"
    );
    let o = aws.cmd(&["status", "--env", "staging", "--stripe-api-base", NO_STRIPE]);
    assert!(
        stdout(&o).contains(&format!(
            "SSM parameter {PARAMETER}: {} SecureString version 2 key alias/stripe-ssm",
            arn()
        )),
        "{}",
        stdout(&o)
    );
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC, NEW]);
}

#[test]
fn a_failed_rollout_puts_the_previous_value_back_into_the_parameter() {
    // Deployments never complete here.
    let aws = wired(false, "SecureString", &arn());
    let o = enable(&aws, &["--json", "--wait-timeout", "1s"]);
    assert_code(&o, 3);
    let error = json_of(&o)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("did not complete within 1s"), "{error}");
    assert!(
        error.contains(&format!(
            "SSM parameter {PARAMETER} holds version 1's value again (version 3)"
        )),
        "{error}"
    );
    let now = parameter(&aws);
    assert_eq!(now["value"], CANARY_WHSEC);
    assert_eq!(now["version"], 3);
    assert_eq!(now["key"], "alias/stripe-ssm");
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC, NEW]);
}

#[test]
fn a_parameter_of_another_account_or_in_plain_text_is_refused_before_any_write() {
    for (kind, value_from, says) in [
        (
            "String",
            arn(),
            format!("comes from SSM parameter {PARAMETER}, a String parameter: its value is stored in plain text"),
        ),
        (
            "",
            "arn:aws:ssm:us-east-1:210987654321:parameter/shared/stripe_webhook_secret".to_owned(),
            "of account 210987654321, and the service runs in account 123456789012: a parameter shared from another account is read-only here".to_owned(),
        ),
    ] {
        let aws = wired(true, kind, &value_from);
        let before = aws.snapshot(STAGING);
        let o = enable(&aws, &[]);
        assert_code(&o, 2);
        let err = stderr(&o);
        assert!(err.contains(&says), "{kind}: {err}");
        assert!(err.contains("--rewire"), "{err}");
        assert_eq!(aws.snapshot(STAGING), before, "{kind}: nothing written");
        if kind == "String" {
            let now = parameter(&aws);
            assert_eq!((now["version"].clone(), now["value"].clone()), (1.into(), CANARY_WHSEC.into()));
        }
        // status names it as a finding.
        let o = status(&aws);
        assert_code(&o, 1);
        assert!(
            json_of(&o)["report"]["findings"].to_string().contains(&says),
            "{}",
            stdout(&o)
        );
        assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC, NEW]);
    }
}

/// A world whose task definition reads the webhook secret from the parameter.
fn rotating_world(running: bool) -> World {
    let w = World::start(running, true, &[]);
    w.aws.py(
        WIRE_TO_PARAMETER,
        &[
            ("PREFIX", STAGING),
            ("NAME", PARAMETER),
            ("TYPE", "SecureString"),
            ("VALUE", CANARY_WHSEC),
            ("VALUE_FROM", &arn()),
        ],
    );
    w
}

#[test]
fn rotate_writes_the_new_secret_into_the_parameter_and_a_failure_puts_the_old_one_back() {
    let w = rotating_world(true);
    let before = w.aws.snapshot(STAGING);
    let o = w.rotate(&["--json", "--skip-smoke"]);
    assert_code(&o, 0);
    let r = json_of(&o);
    assert_eq!(r["secret"]["id"], PARAMETER, "{r}");
    let now = parameter(&w.aws);
    let new_secret = now["value"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != CANARY_WHSEC);
    assert_eq!(
        (now["version"].clone(), now["key"].clone()),
        (2.into(), "alias/stripe-ssm".into())
    );
    assert_eq!(
        w.aws.snapshot(STAGING)["task_definitions"],
        before["task_definitions"]
    );
    assert_no_leak(&o, &[CANARY_SK, CANARY_WHSEC, &new_secret]);

    // A rollout that does not complete: the parameter gets its previous value back.
    let w = rotating_world(false);
    let o = w.rotate(&["--skip-smoke", "--wait-timeout", "1s"]);
    assert_code(&o, 3);
    let err = stderr(&o);
    assert!(err.contains("rotation failed at step 3"), "{err}");
    assert!(
        err.contains(&format!(
            "SSM parameter {PARAMETER} holds version 1's value again (version 3)"
        )),
        "{err}"
    );
    assert!(err.contains("rollback completed"), "{err}");
    assert_eq!(parameter(&w.aws)["value"], CANARY_WHSEC);
}
