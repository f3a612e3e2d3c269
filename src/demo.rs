//! The demo: the main job end to end, against a sandbox started in-process on free ports. Each
//! part runs through the same code as its command: the deterministic smoke, the real-checkout
//! smoke (create-only, pay, verify-only) and the conformance check.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::check;
use crate::error::{Error, Result};
use crate::http;
use crate::printer::{Printer, Report};
use crate::sandbox::{self, PayOutcome, SandboxOptions};
use crate::secret::{self, SecretString};
use crate::shutdown::Shutdown;
use crate::smoke::{automate, deterministic, real};

#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Pay by a plain HTTP form post even when chromedriver is available.
    pub no_browser: bool,
    /// Keep the demo's receipt here (default: a temporary folder, removed at the end).
    pub receipts_dir: Option<PathBuf>,
}

/// One part of the demo, for the summary.
#[derive(Debug, Serialize)]
pub struct Part {
    pub name: &'static str,
    pub ok: bool,
    pub ms: f64,
    pub detail: String,
}

/// What the demo did, part by part.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    pub ok: bool,
    pub elapsed_ms: f64,
    pub parts: Vec<Part>,
    /// What stopped the demo before its parts were done (exit class and message).
    #[serde(skip)]
    pub error: Option<(crate::error::Exit, String)>,
}

impl Report for DemoReport {
    fn json(&self) -> Value {
        serde_json::to_value(self).expect("reports serialize")
    }

    fn human(&self, out: &Printer) -> Vec<String> {
        let mut lines = vec![format!("\n{}", out.paint("summary", "1"))];
        for p in &self.parts {
            lines.push(format!(
                "  {:<4} {:<26} {:>9.1} ms  {}",
                out.ok_mark(p.ok),
                p.name,
                p.ms,
                p.detail
            ));
        }
        lines.push(format!(
            "{} in {:.1} s",
            if self.ok {
                out.paint("demo passed", "32")
            } else {
                out.paint("demo FAILED", "31")
            },
            self.elapsed_ms / 1000.0
        ));
        lines
    }

    fn verdict(&self) -> Result<()> {
        if let Some((exit, message)) = &self.error {
            return Err(Error::new(*exit, message.clone()));
        }
        if self.ok {
            return Ok(());
        }
        let failed: Vec<&str> = self
            .parts
            .iter()
            .filter(|p| !p.ok)
            .map(|p| p.name)
            .collect();
        Err(Error::failed(format!("demo failed: {}", failed.join(", "))))
    }
}

/// Starts a sandbox, runs every part against it, stops it. An error that stops a part from
/// running at all (not a failed check) ends the demo with that error.
pub async fn run(args: DemoOptions, out: &Printer, stop: &Shutdown) -> Result<DemoReport> {
    let started = Instant::now();
    let webhook_secret = secret::generate_webhook_secret();
    let stripe_key = SecretString::from(format!("sk_test_{}", secret::random_alnum(24)));
    let sandbox = sandbox::start(SandboxOptions {
        webhook_secrets: vec![webhook_secret.clone()],
        stripe_key: Some(stripe_key),
        ..SandboxOptions::default()
    })
    .await?;
    out.status(format!(
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
    let outcome = stop
        .guard(run_parts(
            &sandbox,
            &webhook_secret,
            &receipts,
            &args,
            &mut parts,
            out,
            stop,
        ))
        .await;
    sandbox.shutdown().await;
    let error = outcome.err().map(|e| (e.exit, e.message().to_owned()));
    Ok(DemoReport {
        ok: error.is_none() && parts.iter().all(|p| p.ok),
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        parts,
        error,
    })
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
    args: &DemoOptions,
    parts: &mut Vec<Part>,
    out: &Printer,
    stop: &Shutdown,
) -> Result<()> {
    let app = sandbox.app_url().to_owned();

    heading(out, "1. deterministic smoke");
    let t = Instant::now();
    let report = deterministic::run(
        &deterministic::DeterministicOptions::new(&app, webhook_secret.clone()),
        out,
    )
    .await?;
    let detail = match &report.error {
        Some(e) => e.clone(),
        None => format!("{} steps passed", report.steps.len()),
    };
    parts.push(part("deterministic smoke", report.ok, t, detail));

    heading(out, "2. real-checkout smoke: create-only");
    let t = Instant::now();
    let created = real::create(
        &real::CreateOptions {
            receipt_path: Some(receipts.dir().join("demo-receipt.json")),
            ..real::CreateOptions::new(&app)
        },
        out,
    )
    .await?;
    parts.push(part(
        "real smoke: create-only",
        true,
        t,
        format!("receipt {}", created.receipt_path.display()),
    ));

    heading(out, "3. pay the checkout");
    let t = Instant::now();
    let (paid, how) = pay(&created, args.no_browser).await?;
    out.line(format!("  {:<4} {how}", out.ok_mark(paid.is_ok())));
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

    heading(out, "4. real-checkout smoke: verify-only");
    let t = Instant::now();
    let verified = real::verify(
        &created.receipt_path,
        &real::VerifyOptions::new(Duration::from_secs(60)),
        out,
        stop,
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

    heading(out, "5. conformance check of the sandbox's webhook");
    let t = Instant::now();
    let report = check::run(
        check::Options {
            webhook_url: sandbox.webhook_url(),
            secrets: vec![webhook_secret.clone()],
            app: Some(check::AppTarget {
                base_url: app.clone(),
                contract: Default::default(),
                buyer: None,
            }),
            observer: None,
            account: None,
            budget: Duration::from_secs(10),
            slow: check::judge::SLOW_ANSWER,
            tolerance: crate::webhook::signature::DEFAULT_TOLERANCE,
            amount_cents: 500,
            cases: check::cases_for(&check::Selection::default())?,
            fixtures_dir: None,
            settle: Duration::from_secs(10),
            strict: false,
            headers: Vec::new(),
            payload: check::EventPayload::Snapshot,
            api_version: None,
        },
        out,
    )
    .await?;
    for line in check::report::table(&report, out) {
        out.line(line);
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

fn heading(out: &Printer, text: &str) {
    out.line(format!("\n{}", out.paint(text, "1")));
}

fn part(name: &'static str, ok: bool, started: Instant, detail: String) -> Part {
    Part {
        name,
        ok,
        ms: started.elapsed().as_secs_f64() * 1000.0,
        detail,
    }
}
