//! `stripe-ops demo`: the main job end to end, against a sandbox started in-process on free
//! ports. Each part runs through the same code as its command: the deterministic smoke, the
//! real-checkout smoke (create-only, pay, verify-only) and the conformance check.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::check;
use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::sandbox::{self, PayOutcome, SandboxOptions};
use crate::secret::{self, SecretString};
use crate::smoke::{automate, deterministic, real};
use crate::{http, output};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Pay by a plain HTTP form post even when chromedriver is available
    #[arg(long)]
    pub no_browser: bool,
    /// Keep the demo's receipt in DIR (default: a temporary folder, removed at the end)
    #[arg(long, value_name = "DIR")]
    pub receipts_dir: Option<PathBuf>,
}

/// One part of the demo, for the summary.
#[derive(Debug, Serialize)]
struct Part {
    name: &'static str,
    ok: bool,
    ms: f64,
    detail: String,
}

pub async fn run(_ctx: &Ctx, args: DemoArgs) -> Result<()> {
    let started = Instant::now();
    let webhook_secret = secret::generate_webhook_secret();
    let stripe_key = SecretString::from(format!("sk_test_{}", secret::random_alnum(24)));
    let sandbox = sandbox::start(SandboxOptions {
        webhook_secrets: vec![webhook_secret.clone()],
        stripe_key: Some(stripe_key),
        ..SandboxOptions::default()
    })
    .await?;
    output::status(format!(
        "sandbox: app {} , Stripe API {}",
        sandbox.app_url(),
        sandbox.stripe_api_url()
    ));
    let receipts = match &args.receipts_dir {
        Some(dir) => Receipts::Kept(dir.clone()),
        None => Receipts::Temporary(
            tempfile::tempdir()
                .map_err(|e| Error::usage(format!("cannot create a temporary folder: {e}")))?,
        ),
    };
    let mut parts = Vec::new();
    let outcome = run_parts(&sandbox, &webhook_secret, &receipts, &args, &mut parts).await;
    sandbox.shutdown().await;
    let ok = outcome.is_ok() && parts.iter().all(|p| p.ok);
    print_summary(&parts, ok, started.elapsed());
    outcome?;
    if ok {
        Ok(())
    } else {
        let failed: Vec<&str> = parts.iter().filter(|p| !p.ok).map(|p| p.name).collect();
        Err(Error::failed(format!("demo failed: {}", failed.join(", "))))
    }
}

enum Receipts {
    Kept(PathBuf),
    Temporary(tempfile::TempDir),
}

impl Receipts {
    fn dir(&self) -> PathBuf {
        match self {
            Receipts::Kept(d) => d.clone(),
            Receipts::Temporary(t) => t.path().to_path_buf(),
        }
    }
}

async fn run_parts(
    sandbox: &sandbox::Sandbox,
    webhook_secret: &SecretString,
    receipts: &Receipts,
    args: &DemoArgs,
    parts: &mut Vec<Part>,
) -> Result<()> {
    let app = sandbox.app_url().to_owned();

    heading("1. deterministic smoke");
    let t = Instant::now();
    let report = deterministic::run(&deterministic::DeterministicOptions::new(
        &app,
        webhook_secret.clone(),
    ))
    .await?;
    let detail = match &report.error {
        Some(e) => e.clone(),
        None => format!("{} steps passed", report.steps.len()),
    };
    parts.push(part("deterministic smoke", report.ok, t, detail));

    heading("2. real-checkout smoke: create-only");
    let t = Instant::now();
    let created = real::create(&real::CreateOptions {
        receipt_path: Some(receipts.dir().join("demo-receipt.json")),
        ..real::CreateOptions::new(&app)
    })
    .await?;
    parts.push(part(
        "real smoke: create-only",
        true,
        t,
        format!("receipt {}", created.receipt_path.display()),
    ));

    heading("3. pay the checkout");
    let t = Instant::now();
    let (paid, how) = pay(&created, args.no_browser).await?;
    output::line(format!("  {:<4} {how}", output::ok_mark(paid.is_ok())));
    parts.push(part(
        "pay",
        paid.is_ok(),
        t,
        match &paid {
            Ok(()) => how,
            Err(e) => format!("{how}: {e}"),
        },
    ));
    if paid.is_err() {
        return Ok(());
    }

    heading("4. real-checkout smoke: verify-only");
    let t = Instant::now();
    let verified = real::verify(
        &created.receipt_path,
        &real::VerifyOptions::new(Duration::from_secs(60)),
    )
    .await;
    parts.push(part(
        "real smoke: verify-only",
        verified.is_ok(),
        t,
        match &verified {
            Ok(v) => format!(
                "balance {} -> {}, event {}",
                v.balance_before,
                v.balance_after,
                v.stripe_event_id.as_deref().unwrap_or("?")
            ),
            Err(e) => e.to_string(),
        },
    ));

    heading("5. conformance check of the sandbox's webhook");
    let t = Instant::now();
    let report = check::run_cases(check::Options {
        webhook_url: sandbox.webhook_url(),
        secrets: vec![webhook_secret.clone()],
        app: Some(check::AppTarget {
            base_url: app.clone(),
            contract: Default::default(),
            buyer: None,
        }),
        budget: Duration::from_secs(10),
        tolerance: crate::signature::DEFAULT_TOLERANCE,
        amount_cents: 500,
        cases: check::cases_for(None, &[], &[], &[])?,
        fixtures_dir: None,
    })
    .await?;
    for line in check::report::table(&report) {
        output::line(line);
    }
    parts.push(part(
        "conformance check",
        report.ok,
        t,
        format!(
            "{} passed, {} failed, {} skipped",
            report.passed, report.failed, report.skipped
        ),
    ));
    Ok(())
}

/// Pays through headless Chromium when a WebDriver is available, else by a form post.
async fn pay(created: &real::Created, no_browser: bool) -> Result<(Result<()>, String)> {
    if !no_browser && automate::webdriver_available() {
        let opts = automate::PayOptions::for_receipt(&created.receipt, &created.receipt_path);
        return Ok((
            automate::pay(&opts).await,
            "paid in headless Chromium through WebDriver".to_owned(),
        ));
    }
    let client = http::client(Duration::from_secs(30))?;
    let how = "paid by a plain HTTP form post (no chromedriver on PATH)".to_owned();
    let paid = match sandbox::pay_with_form_post(
        &client,
        &created.receipt.checkout_url,
        sandbox::TEST_CARD,
    )
    .await?
    {
        PayOutcome::Paid { .. } => Ok(()),
        PayOutcome::Declined { message } => Err(Error::failed(format!("declined: {message}"))),
        PayOutcome::AlreadyPaid => Err(Error::failed("the session was already paid")),
    };
    Ok((paid, how))
}

fn heading(text: &str) {
    output::line(format!("\n{}", output::paint(text, "1")));
}

fn part(name: &'static str, ok: bool, started: Instant, detail: String) -> Part {
    Part {
        name,
        ok,
        ms: started.elapsed().as_secs_f64() * 1000.0,
        detail,
    }
}

fn print_summary(parts: &[Part], ok: bool, elapsed: Duration) {
    if output::mode().json {
        output::json(
            &json!({ "ok": ok, "elapsed_ms": elapsed.as_secs_f64() * 1000.0, "parts": parts }),
        );
        return;
    }
    output::line(format!("\n{}", output::paint("summary", "1")));
    for p in parts {
        output::line(format!(
            "  {:<4} {:<26} {:>9.1} ms  {}",
            output::ok_mark(p.ok),
            p.name,
            p.ms,
            p.detail
        ));
    }
    output::line(format!(
        "{} in {:.1} s",
        if ok {
            output::paint("demo passed", "32")
        } else {
            output::paint("demo FAILED", "31")
        },
        elapsed.as_secs_f64()
    ));
}
