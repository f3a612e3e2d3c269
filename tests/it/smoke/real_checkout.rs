//! The real-checkout smoke's two halves without a browser: `--create-only` writes a private
//! receipt and URL file (by default a timestamped one in `receipts/`) and says how to verify;
//! `--open` hands the URL to the desktop browser or says there is none; verifying logs in again
//! when the receipt's token was revoked, times out on an unpaid session saying what it saw, and
//! Ctrl-C while waiting keeps the receipt and prints the command that resumes.

use super::*;

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
