//! `stripe-ops smoke`: the deterministic smoke (signed synthetic webhook, credit, replay, forged
//! and stale deliveries) and the real-checkout smoke with receipts (`--real`, `--create-only`,
//! `--verify-only`), optionally paying through WebDriver (`--automate`).
//!
//! The flows are callable from code: `deterministic::run`, `real::create`, `real::verify`,
//! `automate::pay`. This module only turns flags into their options and prints results.

pub mod automate;
pub mod deterministic;
pub mod real;
pub mod receipt;
pub mod session;
pub mod steps;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::json;

use crate::app_client::Buyer;
use crate::aws::{self, AwsTarget};
use crate::cli::{Ctx, EnvFlags};
use crate::config::{Contract, EnvSettings};
use crate::error::{Error, Result};
use crate::output;
use crate::secret::{self, SecretString};

pub use deterministic::{DeterministicOptions, SmokeReport};
pub use steps::Step;

pub const DEFAULT_TOPUP_CENTS: i64 = 500;
pub const MIN_TOPUP_CENTS: i64 = 100;
pub const MAX_TOPUP_CENTS: i64 = 50_000;
pub const WEBHOOK_SECRET_ENV: &str = "SMOKE_STRIPE_WEBHOOK_SECRET";
pub const BUYER_PASSWORD_ENV: &str = "SMOKE_BUYER_PASSWORD";
pub const STRIPE_KEY_ENV: &str = "STRIPE_SECRET_KEY";

/// Top-ups outside 100..=50000 cents are refused, never clamped.
pub fn check_amount(cents: i64) -> std::result::Result<i64, String> {
    if (MIN_TOPUP_CENTS..=MAX_TOPUP_CENTS).contains(&cents) {
        Ok(cents)
    } else {
        Err(format!(
            "top-up must be between {MIN_TOPUP_CENTS} and {MAX_TOPUP_CENTS} cents, got {cents}"
        ))
    }
}

fn parse_amount(s: &str) -> std::result::Result<i64, String> {
    let cents: i64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of cents"))?;
    check_amount(cents)
}

fn parse_secs(s: &str) -> std::result::Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?} is not a number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn default_success_url(base_url: &str) -> String {
    format!(
        "{}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
        base_url.trim_end_matches('/')
    )
}

pub fn default_cancel_url(base_url: &str) -> String {
    format!("{}/billing/cancel", base_url.trim_end_matches('/'))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AutomateMode {
    /// Try; when it fails, wait for a person to pay
    Fallback,
    /// Failing to pay automatically fails the smoke (exit 1)
    Require,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 passed, 1 a step or the verify failed (the step is named), \
2 usage, config or an unusable receipt, 3 the app (or AWS, Stripe, the WebDriver) unreachable, \
130 interrupted (a receipt stays intact; the --verify-only command to resume is printed)."
)]
pub struct SmokeArgs {
    /// The app's base URL
    #[arg(long, value_name = "URL", env = "BASE_URL")]
    pub base_url: Option<String>,
    /// Environment: its base_url and contract from stripe-ops.toml, its webhook secret from
    /// Secrets Manager
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    #[command(flatten)]
    pub env_flags: EnvFlags,
    /// File holding the app's webhook signing secret (else SMOKE_STRIPE_WEBHOOK_SECRET, else
    /// Secrets Manager with --env)
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Buyer to log in as (else a fresh buyer per run)
    #[arg(long, value_name = "EMAIL", env = "SMOKE_BUYER_EMAIL")]
    pub buyer_email: Option<String>,
    /// File holding the buyer's password (else SMOKE_BUYER_PASSWORD)
    #[arg(long, value_name = "FILE")]
    pub buyer_password_file: Option<PathBuf>,
    /// Top-up amount in cents, 100..=50000
    #[arg(long, value_name = "CENTS", default_value = "500", value_parser = parse_amount)]
    pub topup_cents: i64,
    /// Checkout success URL (default <base>/billing/success?session_id={CHECKOUT_SESSION_ID})
    #[arg(long, value_name = "URL")]
    pub success_url: Option<String>,
    /// Checkout cancel URL (default <base>/billing/cancel)
    #[arg(long, value_name = "URL")]
    pub cancel_url: Option<String>,
    /// Seconds to wait for the credit to show in the balance
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs)]
    pub settle_timeout: Duration,
    /// Stop after the credit: skip the replay, concurrent, forged, stale and events-list steps
    #[arg(long)]
    pub only_happy_path: bool,
    /// Seconds before one HTTP request times out
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub request_timeout: Duration,

    /// Real-checkout smoke: create a Checkout session, write a receipt, wait for the payment
    #[arg(long)]
    pub real: bool,
    /// Stop after writing the receipt (implies --real)
    #[arg(long, conflicts_with = "verify_only")]
    pub create_only: bool,
    /// Verify the receipt given with --receipt (implies --real)
    #[arg(long, requires = "receipt")]
    pub verify_only: bool,
    /// Receipt file (default receipts/<UTC timestamp>-<session id>.json)
    #[arg(long, value_name = "FILE")]
    pub receipt: Option<PathBuf>,
    /// Seconds to wait for the paid top-up
    #[arg(long, value_name = "SECS", default_value = "600", value_parser = parse_secs)]
    pub wait: Duration,
    /// Also fetch the Stripe event at Stripe and check its type (needs a Stripe key)
    #[arg(long)]
    pub verify_stripe_event: bool,
    /// File holding a Stripe secret key (else STRIPE_SECRET_KEY)
    #[arg(long, value_name = "FILE")]
    pub stripe_secret_key_file: Option<PathBuf>,
    /// Open the checkout page in the desktop browser
    #[arg(long)]
    pub open: bool,
    /// Pay through WebDriver; `--automate=require` fails the smoke when that fails
    #[arg(long, value_name = "MODE", num_args = 0..=1, require_equals = true,
          default_missing_value = "fallback", value_enum)]
    pub automate: Option<AutomateMode>,
    /// WebDriver to use (default: start chromedriver or geckodriver on a free port)
    #[arg(long, value_name = "URL")]
    pub webdriver_url: Option<String>,
    /// Show the browser window
    #[arg(long)]
    pub headed: bool,
    /// Card number for --automate (4000000000000002 is declined)
    #[arg(long, value_name = "NUMBER", default_value = automate::TEST_CARD)]
    pub card: String,
}

impl SmokeArgs {
    fn is_real(&self) -> bool {
        self.real || self.create_only || self.verify_only
    }
}

pub async fn run(ctx: &Ctx, args: SmokeArgs) -> Result<()> {
    reject_misplaced_flags(&args)?;
    if args.verify_only {
        return real_flow(ctx, &args, None).await;
    }
    let base_url = resolve_base_url(ctx, &args)?;
    if args.is_real() {
        real_flow(ctx, &args, Some(base_url)).await
    } else {
        deterministic_flow(ctx, &args, base_url).await
    }
}

fn reject_misplaced_flags(args: &SmokeArgs) -> Result<()> {
    if !args.is_real() {
        let real_only = [
            (args.receipt.is_some(), "--receipt"),
            (args.open, "--open"),
            (args.automate.is_some(), "--automate"),
            (args.verify_stripe_event, "--verify-stripe-event"),
        ];
        if let Some((_, flag)) = real_only.iter().find(|(given, _)| *given) {
            return Err(Error::usage(format!(
                "{flag} belongs to the real-checkout smoke: add --real, --create-only or --verify-only"
            )));
        }
    }
    Ok(())
}

fn env_settings(ctx: &Ctx, args: &SmokeArgs) -> Result<Option<EnvSettings>> {
    match &args.env {
        Some(name) => Ok(Some(
            ctx.config()?
                .env(name, &args.env_flags.overrides(args.base_url.clone()))?,
        )),
        None => Ok(None),
    }
}

fn resolve_base_url(ctx: &Ctx, args: &SmokeArgs) -> Result<String> {
    if let Some(url) = args.base_url.as_deref().filter(|u| !u.trim().is_empty()) {
        return Ok(url.trim().trim_end_matches('/').to_owned());
    }
    match env_settings(ctx, args)? {
        Some(EnvSettings {
            base_url: Some(url),
            ..
        }) => Ok(url),
        Some(s) => Err(Error::usage(format!(
            "no base URL for environment {}: give --base-url URL (or base_url in [env.{}] of stripe-ops.toml)",
            s.name, s.name
        ))),
        None => Err(Error::usage(
            "no base URL: give --base-url URL, set BASE_URL, or use --env NAME with base_url in stripe-ops.toml",
        )),
    }
}

fn resolve_buyer(args: &SmokeArgs) -> Result<Option<Buyer>> {
    let password = match &args.buyer_password_file {
        Some(f) => Some(secret::read_file(f, "buyer password")?),
        None => secret::from_env(BUYER_PASSWORD_ENV, "buyer password")?,
    };
    match (&args.buyer_email, password) {
        (Some(email), Some(password)) => Ok(Some(Buyer {
            email: email.trim().to_owned(),
            password,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::usage(format!(
            "--buyer-email needs a password: --buyer-password-file FILE or {BUYER_PASSWORD_ENV}"
        ))),
        (None, Some(_)) => Err(Error::usage(
            "a buyer password was given without --buyer-email (or SMOKE_BUYER_EMAIL)",
        )),
    }
}

async fn resolve_webhook_secret(ctx: &Ctx, args: &SmokeArgs) -> Result<SecretString> {
    let secret = if let Some(f) = &args.webhook_secret_file {
        secret::read_file(f, "webhook secret")?
    } else if let Some(s) = secret::from_env(WEBHOOK_SECRET_ENV, "webhook secret")? {
        s
    } else if let Some(settings) = env_settings(ctx, args)? {
        webhook_secret_from_aws(&settings).await?
    } else {
        return Err(Error::usage(format!(
            "no webhook secret: give --webhook-secret-file FILE, set {WEBHOOK_SECRET_ENV}, or use --env NAME to read it from Secrets Manager"
        )));
    };
    secret::warn_unless_webhook_secret(&secret);
    Ok(secret)
}

/// `GetSecretValue` of the environment's `webhook_secret_id`.
pub async fn webhook_secret_from_aws(settings: &EnvSettings) -> Result<SecretString> {
    let target = AwsTarget {
        region: settings.region.clone(),
        endpoint_url: settings.aws_endpoint_url.clone(),
        profile: None,
    };
    let (sm, _) = aws::clients(&target).await;
    aws::secrets::value(&sm, &settings.webhook_secret_id).await
}

fn contract(ctx: &Ctx, args: &SmokeArgs) -> Result<Contract> {
    Ok(ctx.config()?.contract(args.env.as_deref()))
}

/// `--success-url` and `--cancel-url`, else the defaults on the app's own base URL.
fn return_urls(args: &SmokeArgs, base_url: &str) -> (String, String) {
    let success = args
        .success_url
        .clone()
        .unwrap_or_else(|| default_success_url(base_url));
    let cancel = args
        .cancel_url
        .clone()
        .unwrap_or_else(|| default_cancel_url(base_url));
    (success, cancel)
}

async fn deterministic_flow(ctx: &Ctx, args: &SmokeArgs, base_url: String) -> Result<()> {
    let (success_url, cancel_url) = return_urls(args, &base_url);
    let opts = DeterministicOptions {
        contract: contract(ctx, args)?,
        buyer: resolve_buyer(args)?,
        webhook_secret: resolve_webhook_secret(ctx, args).await?,
        amount_cents: args.topup_cents,
        success_url,
        cancel_url,
        settle_timeout: args.settle_timeout,
        only_happy_path: args.only_happy_path,
        request_timeout: args.request_timeout,
        base_url,
    };
    output::line(format!(
        "smoke {} ({} cents{})",
        opts.base_url,
        opts.amount_cents,
        if opts.only_happy_path {
            ", happy path only"
        } else {
            ""
        }
    ));
    let report = deterministic::run(&opts).await?;
    if output::mode().json {
        output::json(&serde_json::to_value(&report).expect("reports serialize"));
    }
    match report.error() {
        Some(e) => Err(e),
        None => {
            let total: f64 = report.steps.iter().map(|s| s.ms).sum();
            output::line(format!(
                "smoke passed: {} steps in {total:.0} ms",
                report.steps.len()
            ));
            Ok(())
        }
    }
}

/// The exact command that verifies a receipt later.
pub fn verify_command(ctx: &Ctx, args: &SmokeArgs, receipt: &Path) -> String {
    let mut cmd = String::from("stripe-ops");
    if let Some(c) = &ctx.global.config {
        cmd.push_str(&format!(
            " --config {}",
            shell_quote(&c.display().to_string())
        ));
    }
    cmd.push_str(" smoke --verify-only --receipt ");
    cmd.push_str(&shell_quote(&receipt.display().to_string()));
    if let Some(env) = &args.env {
        cmd.push_str(&format!(" --env {}", shell_quote(env)));
    }
    cmd
}

fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=+@%".contains(c));
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn stripe_check(ctx: &Ctx, args: &SmokeArgs) -> Result<Option<real::StripeCheck>> {
    if !args.verify_stripe_event {
        return Ok(None);
    }
    let key = match &args.stripe_secret_key_file {
        Some(f) => secret::read_file(f, "Stripe secret key")?,
        None => secret::from_env(STRIPE_KEY_ENV, "Stripe secret key")?.ok_or_else(|| {
            Error::usage(format!(
                "--verify-stripe-event needs a Stripe key: --stripe-secret-key-file FILE or {STRIPE_KEY_ENV}"
            ))
        })?,
    };
    let from_env_var = std::env::var("STRIPE_API_BASE")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let api_base = match (&args.env_flags.stripe_api_base, from_env_var) {
        (Some(flag), _) => flag.clone(),
        (None, Some(var)) => var,
        (None, None) => match env_settings(ctx, args)? {
            Some(s) => s.stripe_api_base,
            None => crate::config::DEFAULT_STRIPE_API_BASE.to_owned(),
        },
    };
    Ok(Some(real::StripeCheck {
        api_base,
        secret_key: key,
    }))
}

/// `--real`, `--create-only` and `--verify-only`: obtain a receipt (create it, or load it), let
/// someone pay (`--open`, `--automate`), then verify unless `--create-only`.
async fn real_flow(ctx: &Ctx, args: &SmokeArgs, base_url: Option<String>) -> Result<()> {
    let stripe = stripe_check(ctx, args)?;
    let contract = contract(ctx, args)?;
    let mut doc = json!({ "ok": true, "mode": mode_name(args) });
    let (path, receipt) = match base_url {
        Some(base_url) => {
            let created = create(args, contract.clone(), base_url).await?;
            // From here on the receipt exists: Ctrl-C says how to resume.
            if !args.create_only {
                runtime_hint(
                    &created.receipt_path,
                    &verify_command(ctx, args, &created.receipt_path),
                );
            }
            announce_created(ctx, args, &created, &mut doc);
            (created.receipt_path, created.receipt)
        }
        None => {
            let path = args.receipt.clone().expect("clap requires --receipt");
            let (receipt, warning) = receipt::load(&path)?;
            if let Some(w) = warning {
                output::warn(w);
            }
            output::line(format!(
                "verifying receipt {} (session {}, {} cents)",
                path.display(),
                receipt.stripe_session_id,
                receipt.amount_cents
            ));
            (path, receipt)
        }
    };
    let resume = verify_command(ctx, args, &path);
    if args.open {
        doc["opened"] = json!(automate::open_in_browser(&receipt.checkout_url));
    }
    if let Some(mode) = args.automate {
        runtime_hint(&path, &resume);
        doc["automated"] = json!(automate_payment(args, mode, &path, &receipt).await?);
    }
    if args.create_only {
        output::line(format!("verify it with:\n  {resume}"));
        print_json(&doc);
        return Ok(());
    }
    let opts = real::VerifyOptions {
        contract,
        wait: args.wait,
        poll_interval: Duration::from_millis(500),
        request_timeout: args.request_timeout,
        stripe,
        resume_command: Some(resume),
    };
    let verified = real::verify_receipt(&path, receipt, &opts).await?;
    output::line(format!(
        "real-checkout smoke passed: {} cents credited, balance {} → {} cents; outcome written to {}",
        verified.amount_cents,
        verified.balance_before,
        verified.balance_after,
        path.display()
    ));
    if let serde_json::Value::Object(m) =
        serde_json::to_value(&verified).expect("outcomes serialize")
    {
        for (k, v) in m {
            doc[k] = v;
        }
    }
    print_json(&doc);
    Ok(())
}

fn print_json(doc: &serde_json::Value) {
    if output::mode().json {
        output::json(doc);
    }
}

fn mode_name(args: &SmokeArgs) -> &'static str {
    if args.create_only {
        "create-only"
    } else if args.verify_only {
        "verify-only"
    } else {
        "real"
    }
}

fn runtime_hint(path: &Path, resume: &str) {
    crate::runtime::on_interrupt(Some(format!(
        "the receipt {} is intact; resume with: {resume}",
        path.display()
    )));
}

async fn create(args: &SmokeArgs, contract: Contract, base_url: String) -> Result<real::Created> {
    let (success_url, cancel_url) = return_urls(args, &base_url);
    let opts = real::CreateOptions {
        contract,
        buyer: resolve_buyer(args)?,
        amount_cents: args.topup_cents,
        success_url,
        cancel_url,
        receipt_path: args.receipt.clone(),
        request_timeout: args.request_timeout,
        base_url,
    };
    output::line(format!(
        "real-checkout smoke {} ({} cents)",
        opts.base_url, opts.amount_cents
    ));
    real::create(&opts).await
}

fn announce_created(
    ctx: &Ctx,
    args: &SmokeArgs,
    created: &real::Created,
    doc: &mut serde_json::Value,
) {
    let r = &created.receipt;
    output::line(format!(
        "checkout URL (use all of it: the part after # is needed by Stripe Checkout):\n  {}",
        r.checkout_url
    ));
    output::line(format!("URL file: {}", created.url_path.display()));
    output::line(format!(
        "receipt:  {} (holds the buyer's password and token; mode 0600)",
        created.receipt_path.display()
    ));
    let fields = json!({
        "steps": created.steps,
        "base_url": r.base_url,
        "session_id": r.stripe_session_id,
        "amount_cents": r.amount_cents,
        "balance_before": r.balance_before_cents,
        "checkout_url": r.checkout_url,
        "url_file": created.url_path,
        "receipt": created.receipt_path,
        "verify_command": verify_command(ctx, args, &created.receipt_path),
    });
    if let serde_json::Value::Object(m) = fields {
        for (k, v) in m {
            doc[k] = v;
        }
    }
}

/// Pays through WebDriver. With `fallback`, a failure becomes a warning and the smoke goes on
/// waiting for a person; with `require` it fails the smoke (exit 1).
async fn automate_payment(
    args: &SmokeArgs,
    mode: AutomateMode,
    receipt_path: &Path,
    r: &receipt::Receipt,
) -> Result<bool> {
    let mut opts = automate::PayOptions::for_receipt(r, receipt_path);
    opts.webdriver_url = args.webdriver_url.clone();
    opts.headed = args.headed;
    opts.card_number = args.card.clone();
    let spinner = output::spinner("paying through WebDriver");
    let result = automate::pay(&opts).await;
    spinner.finish_and_clear();
    match (result, mode) {
        (Ok(()), _) => {
            output::line(format!(
                "  {:<4} paid the checkout page through WebDriver",
                output::ok_mark(true)
            ));
            Ok(true)
        }
        (Err(e), AutomateMode::Require) => Err(Error::failed(format!(
            "--automate=require: paying through WebDriver failed: {e}"
        ))),
        (Err(e), AutomateMode::Fallback) => {
            output::warn(format!(
                "paying through WebDriver failed ({e}); Stripe often shows bot checks, so pay at the URL above yourself"
            ));
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_outside_the_range_are_refused_not_clamped() {
        assert_eq!(parse_amount("500"), Ok(500));
        assert_eq!(parse_amount("100"), Ok(100));
        assert_eq!(parse_amount("50000"), Ok(50000));
        assert!(
            parse_amount("99")
                .unwrap_err()
                .contains("between 100 and 50000")
        );
        assert!(parse_amount("50001").is_err());
        assert!(parse_amount("5.5").unwrap_err().contains("whole number"));
    }

    #[test]
    fn seconds_parse_as_fractions() {
        assert_eq!(parse_secs("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("soon").is_err());
    }

    #[test]
    fn default_return_urls_hang_off_the_base() {
        assert_eq!(
            default_success_url("http://a/"),
            "http://a/billing/success?session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(default_cancel_url("http://a"), "http://a/billing/cancel");
    }

    #[test]
    fn quoting_for_the_resume_command() {
        assert_eq!(shell_quote("receipts/a-b_c.json"), "receipts/a-b_c.json");
        assert_eq!(shell_quote("my receipts/x.json"), "'my receipts/x.json'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
