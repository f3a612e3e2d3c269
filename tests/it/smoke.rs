//! `stripe-ops smoke`: the deterministic smoke and the real-checkout smoke with receipts, against
//! the sandbox on loopback, moto_server for Secrets Manager, and headless Chromium for paying.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

const BUYER_PASSWORD: &str = "buyer-pw-CANARY-0123456789";

fn smoke_cmd(args: &[&str]) -> Command {
    let mut cmd = bin();
    cmd.env_remove("SMOKE_STRIPE_WEBHOOK_SECRET")
        .env_remove("SMOKE_BUYER_EMAIL")
        .env_remove("SMOKE_BUYER_PASSWORD")
        .env_remove("STRIPE_SECRET_KEY")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("BROWSER")
        .arg("smoke")
        .args(args);
    cmd
}

fn smoke(args: &[&str]) -> Output {
    smoke_cmd(args).output().expect("the binary runs")
}

fn private_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = write_file(dir, name, content);
    set_mode(&p, 0o600);
    p
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------- usage and input errors

#[test]
fn topup_outside_the_range_is_refused_with_exit_2() {
    for cents in ["99", "50001"] {
        let o = smoke(&["--base-url", "http://127.0.0.1:1", "--topup-cents", cents]);
        assert_code(&o, 2);
        assert!(
            stderr(&o).contains("between 100 and 50000"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn missing_base_url_and_secret_are_usage_errors() {
    let o = smoke(&[]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("no base URL"), "{}", stderr(&o));

    let o = smoke(&["--env", "staging"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("--base-url"), "{}", stderr(&o));

    let o = smoke(&["--base-url", "http://127.0.0.1:1"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("no webhook secret"), "{}", stderr(&o));

    let o = smoke(&[
        "--base-url",
        "http://127.0.0.1:1",
        "--buyer-email",
        "a@example.com",
    ]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("needs a password"), "{}", stderr(&o));

    let o = smoke(&["--base-url", "http://127.0.0.1:1", "--open"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("--open belongs to the real-checkout smoke"));

    let o = smoke(&["--verify-only"]);
    assert_code(&o, 2);
}

#[test]
fn an_unreachable_app_exits_3_naming_the_health_step() {
    let dir = tempfile::tempdir().unwrap();
    let secret = private_file(dir.path(), "whsec", CANARY_WHSEC);
    let url = closed_url();
    let o = smoke(&[
        "--base-url",
        &url,
        "--webhook-secret-file",
        secret.to_str().unwrap(),
    ]);
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("smoke failed at step `health`"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("could not connect"), "{}", stderr(&o));
    assert_no_leak(&o, &[CANARY_WHSEC]);

    let o = bin()
        .args(["--json", "smoke", "--base-url", &url])
        .env("SMOKE_STRIPE_WEBHOOK_SECRET", CANARY_WHSEC)
        .output()
        .unwrap();
    assert_code(&o, 3);
    let report = json_of(&o);
    assert_eq!(report["ok"], false);
    assert_eq!(report["failed_step"], "health");
    assert_eq!(report["steps"][0]["name"], "health");
    assert_eq!(report["steps"][0]["ok"], false);
    assert_no_leak(&o, &[CANARY_WHSEC]);
}

#[test]
fn create_only_against_an_unreachable_app_exits_3_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receipt = dir.path().join("r.json");
    let o = smoke(&[
        "--create-only",
        "--base-url",
        &closed_url(),
        "--receipt",
        receipt.to_str().unwrap(),
    ]);
    assert_code(&o, 3);
    assert!(!receipt.exists());
}

// ---------------------------------------------------------------- receipts

/// A valid receipt for an app at `base_url`, as create-only writes it.
fn receipt_json(base_url: &str) -> Value {
    json!({
        "kind": "stripe-ops.receipt",
        "version": 1,
        "created_at": "2026-01-02T03:04:05Z",
        "base_url": base_url,
        "buyer_email": "smoke+1@example.com",
        "buyer_password": BUYER_PASSWORD,
        "buyer_token": "tok-CANARY-secret",
        "stripe_session_id": "cs_test_missing",
        "payment_intent_id": "pi_1",
        "checkout_url": format!("{base_url}/checkout/cs_test_missing#frag"),
        "amount_cents": 500,
        "balance_before_cents": 0,
    })
}

fn verify_receipt_text(text: &str, mode: u32, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let p = write_file(dir.path(), "receipt.json", text);
    set_mode(&p, mode);
    let mut args = vec!["--verify-only", "--receipt", p.to_str().unwrap()];
    args.extend_from_slice(extra);
    smoke(&args)
}

#[test]
fn unusable_receipts_exit_2_with_the_reason() {
    let base = closed_url();
    let edit = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = receipt_json(&base);
        f(v.as_object_mut().unwrap());
        v.to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "is not valid JSON"),
        (
            edit(&|m| {
                m.remove("stripe_session_id");
            }),
            "missing field `stripe_session_id`",
        ),
        (
            edit(&|m| {
                m.insert("kind".into(), json!("stripe-ops.other"));
            }),
            "wrong kind",
        ),
        (
            edit(&|m| {
                m.insert("version".into(), json!(7));
            }),
            "version 7 is newer",
        ),
    ];
    for (text, reason) in cases {
        let o = verify_receipt_text(&text, 0o600, &[]);
        assert_code(&o, 2);
        assert!(
            stderr(&o).contains(reason),
            "want {reason:?}:\n{}",
            stderr(&o)
        );
        assert_no_leak(&o, &[BUYER_PASSWORD, "tok-CANARY-secret"]);
    }
    let o = smoke(&["--verify-only", "--receipt", "/nonexistent/receipt.json"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("cannot read receipt"), "{}", stderr(&o));

    let dir = tempfile::tempdir().unwrap();
    let unreadable = private_file(dir.path(), "r.json", &receipt_json(&base).to_string());
    set_mode(&unreadable, 0o000);
    if std::fs::read(&unreadable).is_err() {
        // Not root: the mode really makes it unreadable.
        let o = smoke(&["--verify-only", "--receipt", unreadable.to_str().unwrap()]);
        assert_code(&o, 2);
        assert!(stderr(&o).contains("cannot read receipt"));
    }
}

#[test]
fn a_shared_receipt_warns_and_an_app_never_reached_is_exit_3() {
    let text = receipt_json(&closed_url()).to_string();
    let o = verify_receipt_text(&text, 0o644, &["--wait", "0.3"]);
    // Nothing answered: an outside failure, not a payment that did not happen.
    assert_code(&o, 3);
    let err = stderr(&o);
    assert!(err.contains("readable by other users"), "{err}");
    assert!(err.contains("could not be reached for 0.3 s"), "{err}");
    assert!(err.contains("could not connect"), "{err}");
    assert!(!err.contains("Was the payment completed"), "{err}");
    assert_no_leak(&o, &[BUYER_PASSWORD, "tok-CANARY-secret"]);
}

// ---------------------------------------------------------------- Secrets Manager

fn put_secret(moto: &Moto, id: &str, value: &str) {
    let envs: Vec<(&str, String)> = moto.env();
    let mut envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    envs.push(("SECRET_ID", id));
    envs.push(("SECRET_VALUE", value));
    let (code, out, err) = run_python(
        "import boto3, os\n\
         boto3.client('secretsmanager', endpoint_url=os.environ['AWS_ENDPOINT_URL'])\
         .create_secret(Name=os.environ['SECRET_ID'], SecretString=os.environ['SECRET_VALUE'])",
        &envs,
    );
    assert_eq!(code, 0, "create_secret failed: {out}{err}");
}

fn smoke_with_moto(moto: &Moto, args: &[&str]) -> Output {
    smoke_cmd(args)
        .envs(moto.env())
        .output()
        .expect("the binary runs")
}

#[test]
fn the_webhook_secret_comes_from_secrets_manager_with_env() {
    let moto = Moto::start();
    let url = closed_url();
    // Not there yet: exit 3 naming the secret.
    let o = smoke_with_moto(&moto, &["--env", "staging", "--base-url", &url]);
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("proofwork-staging/STRIPE_WEBHOOK_SECRET"),
        "{}",
        stderr(&o)
    );
    // There: the app accepts what the smoke signs with it.
    put_secret(
        &moto,
        "proofwork-staging/STRIPE_WEBHOOK_SECRET",
        CANARY_WHSEC,
    );
    let t = Target::start(&[]);
    let o = smoke_with_moto(
        &moto,
        &[
            "--env",
            "staging",
            "--base-url",
            t.app(),
            "--only-happy-path",
        ],
    );
    assert_code(&o, 0);
    assert!(stdout(&o).contains("smoke passed"), "{}", stdout(&o));
    assert_no_leak(&o, &[CANARY_WHSEC]);
}

// ---------------------------------------------------------------- deterministic, against the sandbox

/// A sandbox accepting the canary webhook secret, with `faults`.
struct Target {
    sandbox: Sandbox,
    dir: tempfile::TempDir,
    secret: PathBuf,
}

impl Target {
    fn start(faults: &[&str]) -> Target {
        let dir = tempfile::tempdir().unwrap();
        let secret = private_file(dir.path(), "whsec", CANARY_WHSEC);
        let mut args = vec!["--webhook-secret-file", secret.to_str().unwrap()];
        for f in faults {
            args.extend(["--fault", f]);
        }
        let sandbox = Sandbox::start(&args);
        Target {
            sandbox,
            dir,
            secret,
        }
    }

    fn app(&self) -> &str {
        &self.sandbox.app
    }

    /// `stripe-ops --json smoke --base-url APP --webhook-secret-file F EXTRA`.
    fn smoke_json(&self, extra: &[&str]) -> Output {
        let mut cmd = smoke_cmd(&[]);
        cmd.args([
            "--base-url",
            self.app(),
            "--webhook-secret-file",
            self.secret.to_str().unwrap(),
        ])
        .args(extra);
        json_cmd(cmd)
    }
}

/// Inserts `--json` before the subcommand.
fn json_cmd(cmd: Command) -> Output {
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut with_json = bin();
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => with_json.env(k, v),
            None => with_json.env_remove(k),
        };
    }
    with_json.arg("--json").args(args).output().unwrap()
}

const ALL_STEPS: [&str; 11] = [
    "health",
    "login",
    "balance",
    "checkout",
    "webhook",
    "credit",
    "replay",
    "concurrent",
    "wrong-secret",
    "old-timestamp",
    "events",
];

#[test]
fn the_deterministic_smoke_passes_against_a_healthy_sandbox() {
    let t = Target::start(&[]);
    let o = t.smoke_json(&[]);
    assert_code(&o, 0);
    let r = json_of(&o);
    assert_eq!(r["ok"], true);
    let names: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ALL_STEPS);
    for s in r["steps"].as_array().unwrap() {
        assert_eq!(s["ok"], true, "{s}");
        assert!(s["ms"].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(r["base_url"], t.app());
    assert_eq!(r["amount_cents"], 500);
    assert!(r["session_id"].as_str().unwrap().starts_with("cs_"));
    // The session's credit, and the second session's of the concurrent step.
    assert_eq!(
        r["balance_after"].as_i64().unwrap() - r["balance_before"].as_i64().unwrap(),
        1000
    );
    assert_no_leak(&o, &[CANARY_WHSEC]);

    // People get one line per step and a verdict; only the happy path when asked.
    let o = smoke_cmd(&[
        "--base-url",
        t.app(),
        "--webhook-secret-file",
        t.secret.to_str().unwrap(),
        "--only-happy-path",
        "--topup-cents",
        "100",
    ])
    .output()
    .unwrap();
    assert_code(&o, 0);
    let out = stdout(&o);
    for step in &ALL_STEPS[..6] {
        assert!(out.contains(step), "{step} missing:\n{out}");
    }
    assert!(!out.contains("replay"), "{out}");
    assert!(out.contains("smoke passed: 6 steps"), "{out}");
}

#[test]
fn a_given_buyer_logs_in_again_and_the_password_never_shows() {
    let t = Target::start(&[]);
    let pw = private_file(t.dir.path(), "pw", BUYER_PASSWORD);
    let args = [
        "--buyer-email",
        "ci-buyer@example.com",
        "--buyer-password-file",
        pw.to_str().unwrap(),
        "--only-happy-path",
    ];
    let first = t.smoke_json(&args);
    assert_code(&first, 0);
    let second = t.smoke_json(&args);
    assert_code(&second, 0);
    let r = json_of(&second);
    assert!(
        r["steps"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("logged in as ci-buyer@example.com")
    );
    assert_eq!(
        r["balance_before"], 500,
        "the second run starts from the first credit"
    );
    // From the environment too, and a wrong password is a clear failure.
    let o = smoke_cmd(&["--base-url", t.app(), "--only-happy-path"])
        .env("SMOKE_STRIPE_WEBHOOK_SECRET", CANARY_WHSEC)
        .env("SMOKE_BUYER_EMAIL", "ci-buyer@example.com")
        .env("SMOKE_BUYER_PASSWORD", "wrong-CANARY-pw")
        .output()
        .unwrap();
    assert_code(&o, 1);
    assert!(stderr(&o).contains("step `login`"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("wrong buyer password"),
        "{}",
        stderr(&o)
    );
    for o in [&first, &second, &o] {
        assert_no_leak(o, &[BUYER_PASSWORD, "wrong-CANARY-pw", CANARY_WHSEC]);
    }
}

/// The smoke against a sandbox with `fault` fails with exit 1 at `step`, saying `why`.
fn assert_fault_fails_at(fault: &str, step: &str, why: &str) {
    let t = Target::start(&[fault]);
    let o = t.smoke_json(&[]);
    assert_code(&o, 1);
    let r = json_of(&o);
    assert_eq!(r["ok"], false);
    assert_eq!(r["failed_step"], step, "{fault}: {r:#}");
    // The negative steps are judged together: every one of them is reported, and the first
    // that failed is the smoke's failure; no step after it passes unjudged.
    let steps = r["steps"].as_array().unwrap();
    let failed: Vec<&str> = steps
        .iter()
        .filter(|s| s["ok"] == false)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed.first(), Some(&step), "{fault}: {r:#}");
    assert!(steps.iter().all(|s| s["name"] != "events") || step == "events");
    let err = stderr(&o);
    assert!(
        err.contains(&format!("smoke failed at step `{step}`")),
        "{err}"
    );
    assert!(err.contains(why), "{fault}: want {why:?} in {err}");
    assert_no_leak(&o, &[CANARY_WHSEC]);
}

#[test]
fn double_credit_fails_the_replay_step() {
    assert_fault_fails_at("double-credit", "replay", "credited twice");
}

#[test]
fn racy_credit_fails_the_concurrent_step() {
    assert_fault_fails_at("racy-credit", "concurrent", "credited more than once");
}

#[test]
fn no_signature_check_fails_the_wrong_secret_step() {
    assert_fault_fails_at(
        "no-signature-check",
        "wrong-secret",
        "does not check signatures",
    );
}

#[test]
fn ignore_tolerance_fails_the_old_timestamp_step() {
    assert_fault_fails_at("ignore-tolerance", "old-timestamp", "answered 200 OK");
}

#[test]
fn webhook_500_fails_the_webhook_step_with_status_and_excerpt() {
    assert_fault_fails_at(
        "webhook-500",
        "webhook",
        "answered 500 Internal Server Error",
    );
}

#[test]
fn drop_metadata_fails_the_events_step() {
    assert_fault_fails_at("drop-metadata", "events", "no stripe_topup for the session");
}

// ---------------------------------------------------------------- the real-checkout smoke

/// `--create-only` into `dir/receipt.json` with a given buyer; returns the JSON document.
fn create_only(t: &Target, receipt: &Path, extra: &[&str]) -> (Output, Value) {
    let pw = private_file(t.dir.path(), "pw", BUYER_PASSWORD);
    let mut cmd = smoke_cmd(&[
        "--create-only",
        "--base-url",
        t.app(),
        "--receipt",
        receipt.to_str().unwrap(),
        "--buyer-email",
        &format!("real+{}@example.com", free_port()),
        "--buyer-password-file",
        pw.to_str().unwrap(),
    ]);
    cmd.args(extra);
    let o = json_cmd(cmd);
    assert_code(&o, 0);
    let doc = json_of(&o);
    (o, doc)
}

fn read_receipt(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Secrets a receipt holds, which must never be printed.
fn receipt_secrets(p: &Path) -> Vec<String> {
    let r = read_receipt(p);
    vec![
        r["buyer_password"].as_str().unwrap().to_owned(),
        r["buyer_token"].as_str().unwrap().to_owned(),
    ]
}

#[test]
fn create_only_writes_a_private_receipt_and_url_file_and_prints_how_to_verify() {
    let t = Target::start(&[]);
    let receipt = t.dir.path().join("receipts/r1.json");
    let (o, doc) = create_only(&t, &receipt, &[]);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["mode"], "create-only");
    assert_eq!(doc["receipt"], receipt.to_str().unwrap());
    let url_file = t.dir.path().join("receipts/r1.url");
    assert_eq!(doc["url_file"], url_file.to_str().unwrap());
    assert_eq!(mode_of(&receipt), 0o600);
    assert_eq!(mode_of(&url_file), 0o600);
    let url = doc["checkout_url"].as_str().unwrap();
    assert!(url.contains('#'), "the whole URL, fragment included: {url}");
    assert_eq!(std::fs::read_to_string(&url_file).unwrap().trim(), url);
    assert_eq!(
        doc["verify_command"],
        format!(
            "stripe-ops smoke --verify-only --receipt {}",
            receipt.display()
        )
    );
    let names: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["health", "login", "balance", "checkout"]);

    let r = read_receipt(&receipt);
    assert_eq!(r["kind"], "stripe-ops.receipt");
    assert_eq!(r["version"], 1);
    assert_eq!(r["buyer_password"], BUYER_PASSWORD);
    assert_eq!(r["stripe_session_id"], doc["session_id"]);
    assert_eq!(r["checkout_url"], url);
    assert_eq!(r["amount_cents"], 500);
    assert_eq!(r["balance_before_cents"], 0);
    for key in ["base_url", "buyer_email", "buyer_token", "created_at"] {
        assert!(r[key].is_string(), "{key}");
    }
    let secrets = receipt_secrets(&receipt);
    assert_no_leak(&o, &secrets.iter().map(String::as_str).collect::<Vec<_>>());

    // People get the URL with a note about the fragment, and the command to verify.
    let o = smoke(&[
        "--create-only",
        "--base-url",
        t.app(),
        "--receipt",
        t.dir.path().join("r2.json").to_str().unwrap(),
    ]);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("the part after # is needed"), "{out}");
    assert!(out.contains("--verify-only --receipt"), "{out}");
    let secrets = receipt_secrets(&t.dir.path().join("r2.json"));
    assert_no_leak(&o, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn create_only_defaults_to_a_timestamped_receipt_in_receipts() {
    let t = Target::start(&[]);
    let o = smoke_cmd(&["--create-only", "--base-url", t.app()])
        .current_dir(t.dir.path())
        .output()
        .unwrap();
    assert_code(&o, 0);
    let files: Vec<String> = std::fs::read_dir(t.dir.path().join("receipts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let json = files
        .iter()
        .find(|f| f.ends_with(".json"))
        .expect("a receipt");
    // <YYYYMMDDTHHMMSSZ>-<session id>.json
    assert_eq!(&json[8..9], "T");
    assert_eq!(&json[15..17], "Z-");
    assert!(json[17..].starts_with("cs_"), "{json}");
    assert!(files.contains(&json.replace(".json", ".url")), "{files:?}");
}

#[test]
fn verify_logs_in_again_when_the_receipts_token_was_revoked() {
    let t = Target::start(&[]);
    let receipt = t.dir.path().join("r.json");
    create_only(&t, &receipt, &[]);
    let revoke = |password: Option<&str>| {
        let mut r = read_receipt(&receipt);
        r["buyer_token"] = "sbx_REVOKEDrevoked0123456789".into();
        if let Some(p) = password {
            r["buyer_password"] = p.into();
        }
        private_file(t.dir.path(), "r.json", &r.to_string());
    };
    let verify = || {
        smoke(&[
            "--verify-only",
            "--receipt",
            receipt.to_str().unwrap(),
            "--wait",
            "0.5",
        ])
    };

    revoke(None);
    let o = verify();
    let err = stderr(&o);
    assert!(
        err.contains("token was refused (401); logging in again as real+"),
        "{err}"
    );
    // Logged in again, it polls for real: the unpaid session times out on its own terms.
    assert_code(&o, 1);
    assert!(err.contains("balance delta 0 cents"), "{err}");
    assert!(!err.contains("401 Unauthorized"), "{err}");
    let renewed = read_receipt(&receipt)["buyer_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        renewed.starts_with("sbx_") && !renewed.contains("REVOKED"),
        "{renewed}"
    );
    assert_eq!(mode_of(&receipt), 0o600);
    let secrets = receipt_secrets(&receipt);
    assert_no_leak(&o, &secrets.iter().map(String::as_str).collect::<Vec<_>>());

    revoke(Some("pw-WRONGwrong0123456789"));
    let o = verify();
    assert_code(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains(
            "the receipt's token was refused and logging in again with its password failed"
        ),
        "{err}"
    );
    assert_no_leak(
        &o,
        &["pw-WRONGwrong0123456789", "sbx_REVOKEDrevoked0123456789"],
    );
}

#[test]
fn an_unpaid_session_times_out_saying_what_it_saw() {
    let t = Target::start(&[]);
    let receipt = t.dir.path().join("r.json");
    create_only(&t, &receipt, &[]);
    let o = smoke(&[
        "--verify-only",
        "--receipt",
        receipt.to_str().unwrap(),
        "--wait",
        "0.5",
    ]);
    assert_code(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("timed out after 0.5 s"), "{err}");
    assert!(
        err.contains("balance delta 0 cents, 0 stripe_topup events for the session"),
        "{err}"
    );
    assert!(err.contains("Was the payment completed?"), "{err}");
    assert!(read_receipt(&receipt).get("outcome").is_none());
    let secrets = receipt_secrets(&receipt);
    assert_no_leak(&o, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn ctrl_c_while_waiting_keeps_the_receipt_and_prints_the_resume_command() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let t = Target::start(&[]);
    let receipt = t.dir.path().join("r.json");
    let mut child = smoke_cmd(&[
        "--real",
        "--base-url",
        t.app(),
        "--receipt",
        receipt.to_str().unwrap(),
        "--wait",
        "600",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // The receipt is written, then announced: wait for both.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let announced = lines
        .by_ref()
        .map_while(|l| l.ok())
        .any(|l| l.starts_with("receipt:"));
    assert!(announced, "no receipt line");
    poll("the receipt file", Duration::from_secs(10), || {
        receipt.exists().then_some(())
    });
    let before = std::fs::read(&receipt).unwrap();
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    assert_code(&o, 130);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "resume with: stripe-ops smoke --verify-only --receipt {}",
            receipt.display()
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(&receipt).unwrap(), before, "receipt intact");
    assert!(serde_json::from_slice::<Value>(&before).unwrap()["kind"] == "stripe-ops.receipt");
}

// ---------------------------------------------------------------- paying in headless Chromium

fn stripe_key_file(t: &Target) -> String {
    t.sandbox.info["stripe_key_file"]
        .as_str()
        .expect("the sandbox names its key file")
        .to_owned()
}

#[test]
fn create_only_then_paid_in_chromium_then_verify_only_records_the_outcome() {
    let t = Target::start(&[]);
    let receipt = t.dir.path().join("r.json");
    let (_, doc) = create_only(&t, &receipt, &[]);

    // A person (here: fantoccini in headless Chromium) pays between the two CI jobs.
    let driver = ChromeDriver::start();
    let mut pay = stripe_ops::smoke::automate::PayOptions::new(
        doc["checkout_url"].as_str().unwrap(),
        &format!("{}/billing/success", t.app()),
        "buyer@example.com",
    );
    pay.webdriver_url = Some(driver.url.clone());
    pay.screenshot_dir = t.dir.path().to_path_buf();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(stripe_ops::smoke::automate::pay(&pay))
        .expect("paid in Chromium");

    let key_file = stripe_key_file(&t);
    let mut cmd = smoke_cmd(&[
        "--verify-only",
        "--receipt",
        receipt.to_str().unwrap(),
        "--wait",
        "30",
        "--verify-stripe-event",
        "--stripe-secret-key-file",
        &key_file,
        "--stripe-api-base",
        &t.sandbox.stripe_api,
    ]);
    cmd.env("STRIPE_API_BASE", "http://127.0.0.1:1");
    let o = json_cmd(cmd);
    assert_code(&o, 0);
    let v = json_of(&o);
    assert_eq!(v["ok"], true);
    assert_eq!(v["mode"], "verify-only");
    assert_eq!(v["session_id"], doc["session_id"]);
    assert_eq!(v["balance_before"], 0);
    assert_eq!(v["balance_after"], 500);
    assert_eq!(v["stripe_event_type"], "checkout.session.completed");
    let event_id = v["stripe_event_id"].as_str().unwrap();
    assert!(event_id.starts_with("evt_"), "{event_id}");

    let r = read_receipt(&receipt);
    assert_eq!(r["outcome"]["balance_after_cents"], 500);
    assert_eq!(r["outcome"]["stripe_event_id"], event_id);
    assert!(r["outcome"]["verified_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        mode_of(&receipt),
        0o600,
        "still private after the write-back"
    );
    let key = std::fs::read_to_string(&key_file).unwrap();
    let mut secrets = receipt_secrets(&receipt);
    secrets.push(key.trim().to_owned());
    assert_no_leak(&o, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn automate_pays_in_one_process_and_verifies() {
    let t = Target::start(&[]);
    let receipt = t.dir.path().join("r.json");
    let mut cmd = smoke_cmd(&[
        "--real",
        "--automate",
        "--base-url",
        t.app(),
        "--receipt",
        receipt.to_str().unwrap(),
        "--wait",
        "30",
    ]);
    cmd.env(
        "STRIPE_OPS_CHROMEDRIVER",
        std::env::var("STRIPE_OPS_CHROMEDRIVER").expect("run through tests/run.sh"),
    );
    let o = json_cmd(cmd);
    assert_code(&o, 0);
    let v = json_of(&o);
    assert_eq!(v["mode"], "real");
    assert_eq!(v["automated"], true);
    assert_eq!(v["balance_after"], 500);
    assert!(read_receipt(&receipt)["outcome"]["verified_at"].is_string());
    let secrets = receipt_secrets(&receipt);
    assert_no_leak(&o, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn a_declined_card_falls_back_to_waiting_and_times_out_clearly() {
    let t = Target::start(&[]);
    let receipt = t.dir.path().join("r.json");
    let o = smoke(&[
        "--real",
        "--automate",
        "--card",
        "4000000000000002",
        "--base-url",
        t.app(),
        "--receipt",
        receipt.to_str().unwrap(),
        "--wait",
        "1",
    ]);
    assert_code(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains(
            "paying through WebDriver failed (the checkout page says: Your card was declined."
        ),
        "{err}"
    );
    assert!(err.contains("timed out after 1 s"), "{err}");
    assert!(err.contains("balance delta 0 cents"), "{err}");
    assert!(t.dir.path().join("r-automate-failure.png").exists());
    assert!(read_receipt(&receipt).get("outcome").is_none());
}

#[test]
fn automate_require_fails_at_once_with_a_screenshot() {
    let t = Target::start(&[]);
    let receipt = t.dir.path().join("shots/r.json");
    let o = smoke(&[
        "--real",
        "--automate=require",
        "--card",
        "4000000000000002",
        "--base-url",
        t.app(),
        "--receipt",
        receipt.to_str().unwrap(),
    ]);
    assert_code(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("--automate=require"), "{err}");
    assert!(err.contains("declined"), "{err}");
    assert!(
        !err.contains("waiting up to"),
        "no wait after a required automation failed: {err}"
    );
    let shot = t.dir.path().join("shots/r-automate-failure.png");
    assert_eq!(&std::fs::read(&shot).unwrap()[1..4], b"PNG");
}

// ---------------------------------------------------------------- --open and Stripe checks

#[test]
fn open_uses_the_desktop_browser_or_says_there_is_none() {
    let t = Target::start(&[]);
    let opened = t.dir.path().join("opened.txt");
    let browser = write_file(
        t.dir.path(),
        "browser.sh",
        &format!("#!/bin/sh\nprintf '%s' \"$1\" > {}\n", opened.display()),
    );
    set_mode(&browser, 0o700);
    let mut cmd = smoke_cmd(&[
        "--create-only",
        "--open",
        "--base-url",
        t.app(),
        "--receipt",
        t.dir.path().join("a.json").to_str().unwrap(),
    ]);
    cmd.env("BROWSER", &browser);
    let o = json_cmd(cmd);
    assert_code(&o, 0);
    let v = json_of(&o);
    assert_eq!(v["opened"], true);
    let url = poll(
        "the browser to be handed the URL",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&opened)
                .ok()
                .filter(|s| !s.is_empty())
        },
    );
    assert_eq!(url, v["checkout_url"].as_str().unwrap());

    let o = smoke(&[
        "--create-only",
        "--open",
        "--base-url",
        t.app(),
        "--receipt",
        t.dir.path().join("b.json").to_str().unwrap(),
    ]);
    assert_code(&o, 0);
    assert!(stderr(&o).contains("no desktop browser"), "{}", stderr(&o));
}

#[test]
fn verify_stripe_event_needs_a_key() {
    let text = receipt_json(&closed_url()).to_string();
    let o = verify_receipt_text(&text, 0o600, &["--verify-stripe-event"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("needs a Stripe key"), "{}", stderr(&o));
}

#[test]
fn the_base_url_comes_from_base_url_or_the_environments_config() {
    let t = Target::start(&[]);
    let o = smoke_cmd(&["--only-happy-path"])
        .env("BASE_URL", t.app())
        .env("SMOKE_STRIPE_WEBHOOK_SECRET", CANARY_WHSEC)
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains(&format!("smoke {}", t.app())),
        "{}",
        stdout(&o)
    );

    let config = write_file(
        t.dir.path(),
        "stripe-ops.toml",
        &format!("[env.staging]\nbase_url = \"{}/\"\n", t.app()),
    );
    let o = smoke_cmd(&["--env", "staging", "--only-happy-path"])
        .env("SMOKE_STRIPE_WEBHOOK_SECRET", CANARY_WHSEC)
        .env("STRIPE_OPS_CONFIG", &config)
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains(&format!("smoke {} ", t.app())),
        "{}",
        stdout(&o)
    );

    // Routes come from the config too: a moved health check is looked for where it is said to be.
    let moved = write_file(
        t.dir.path(),
        "moved.toml",
        "[paths]\nhealth = \"/healthz\"\n",
    );
    let o = smoke_cmd(&["--base-url", t.app(), "--config", moved.to_str().unwrap()])
        .env("SMOKE_STRIPE_WEBHOOK_SECRET", CANARY_WHSEC)
        .output()
        .unwrap();
    assert_code(&o, 1);
    assert!(
        stderr(&o).contains("GET /healthz answered 404"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn without_a_webdriver_automation_falls_back_or_fails_when_required() {
    let t = Target::start(&[]);
    let run = |mode: &str, name: &str| {
        smoke_cmd(&[
            "--create-only",
            mode,
            "--base-url",
            t.app(),
            "--receipt",
            t.dir.path().join(name).to_str().unwrap(),
        ])
        .env_remove("STRIPE_OPS_CHROMEDRIVER")
        .env("PATH", t.dir.path().join("empty"))
        .output()
        .unwrap()
    };
    let o = run("--automate=require", "a.json");
    assert_code(&o, 1);
    assert!(stderr(&o).contains("no WebDriver"), "{}", stderr(&o));
    let o = run("--automate", "b.json");
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("warning: paying through WebDriver failed (no WebDriver"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("--verify-only --receipt"),
        "{}",
        stdout(&o)
    );
}
