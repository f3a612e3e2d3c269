//! Looking before changing, and production's guard: `--dry-run` reads everything, prints the plan
//! and the diff and changes nothing; production asks on a terminal (only `yes` applies) and, in
//! CI without `--yes`, is exit 2 and changes nothing; a test key for production warns.

use super::*;

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
