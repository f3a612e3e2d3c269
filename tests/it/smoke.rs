//! `stripe-ops smoke`: the deterministic smoke and the real-checkout smoke with receipts, against
//! the sandbox on loopback, moto_server for Secrets Manager, and headless Chromium for paying.
//!
//! This file is the harness its submodules share: the command, private files and their modes,
//! the sandbox target, `--create-only` and the receipt it writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

mod chromium;
mod deterministic;
mod inputs;
mod real_checkout;
mod receipts;

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
