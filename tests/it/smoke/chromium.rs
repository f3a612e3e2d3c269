//! Paying in headless Chromium through WebDriver: a checkout created, paid in the browser, then
//! verified; `--automate` paying and verifying in one process; a declined card falling back to
//! waiting and timing out clearly; `--automate=require` failing at once with a screenshot; and
//! without a WebDriver, `--automate` falling back and `--automate=require` failing.

use super::*;

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
