//! `stripe-ops smoke`: the deterministic smoke of a deployed app, or the real-checkout smoke
//! (`--real`, `--create-only`, `--verify-only`), optionally paying through WebDriver.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{Ctx, EnvFlags};
use crate::app_client::Buyer;
use crate::config::{self, Contract, EnvSettings, vars};
use crate::deploy;
use crate::duration::{self, Span};
use crate::error::{Error, Result};
use crate::printer::Report;
use crate::runtime;
use crate::secret::{self, SecretString};
use crate::smoke::real::{self, Automate, AutomateMode, RealOptions, Resume, Start};
use crate::smoke::{self, DeterministicOptions, automate, deterministic};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AutomateFlag {
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
    #[arg(long, value_name = "URL", env = vars::BASE_URL.name, value_parser = crate::http::url_arg)]
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
    #[arg(long, value_name = "EMAIL", env = vars::SMOKE_BUYER_EMAIL.name)]
    pub buyer_email: Option<String>,
    /// File holding the buyer's password (else SMOKE_BUYER_PASSWORD)
    #[arg(long, value_name = "FILE")]
    pub buyer_password_file: Option<PathBuf>,
    /// Top-up amount in cents, 100..=50000
    #[arg(long, value_name = "CENTS", default_value = "500", value_parser = smoke::parse_amount)]
    pub topup_cents: i64,
    /// Checkout success URL (default <base>/billing/success?session_id={CHECKOUT_SESSION_ID})
    #[arg(long, value_name = "URL")]
    pub success_url: Option<String>,
    /// Checkout cancel URL (default <base>/billing/cancel)
    #[arg(long, value_name = "URL")]
    pub cancel_url: Option<String>,
    /// How long to wait for the credit to show in the balance (10s, 1m; a bare number is seconds)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::positive)]
    pub settle_timeout: Span,
    /// Stop after the credit: skip the replay, concurrent, forged, stale and events-list steps
    #[arg(long)]
    pub only_happy_path: bool,
    /// How long one HTTP request may take (30s; a bare number is seconds)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::positive)]
    pub request_timeout: Span,
    /// The API version the signed checkout.session.completed names (default: the catalogue's,
    /// the newest Stripe's libraries pin): for apps whose Stripe library checks it
    #[arg(long, value_name = "VERSION", value_parser = super::api_version_arg, conflicts_with = "real")]
    pub api_version: Option<String>,

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
    /// How long to wait for the paid top-up (10m, 900; a bare number is seconds)
    #[arg(long, value_name = "DURATION", default_value = "600", value_parser = duration::positive)]
    pub wait: Span,
    /// Also fetch the Stripe event at Stripe and check its type (needs a Stripe key)
    #[arg(long)]
    pub verify_stripe_event: bool,
    /// File holding a Stripe secret key (else STRIPE_SECRET_KEY, else STRIPE_API_KEY)
    #[arg(long, value_name = "FILE")]
    pub stripe_secret_key_file: Option<PathBuf>,
    /// Open the checkout page in the desktop browser
    #[arg(long)]
    pub open: bool,
    /// Pay through WebDriver; `--automate=require` fails the smoke when that fails
    #[arg(long, value_name = "MODE", num_args = 0..=1, require_equals = true,
          default_missing_value = "fallback", value_enum)]
    pub automate: Option<AutomateFlag>,
    /// WebDriver to use (default: start chromedriver or geckodriver on a free port)
    #[arg(long, value_name = "URL", value_parser = crate::http::url_arg)]
    pub webdriver_url: Option<String>,
    /// Show the browser window
    #[arg(long)]
    pub headed: bool,
    /// Card number for --automate (4000000000000002 is declined)
    #[arg(long, value_name = "NUMBER", default_value = automate::TEST_CARD)]
    pub card: String,
    /// Also write the steps as JUnit XML to FILE (one test case per step; a smoke that stops
    /// with an error is one failed case)
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

impl SmokeArgs {
    fn is_real(&self) -> bool {
        self.real || self.create_only || self.verify_only
    }
}

pub fn run(ctx: &Ctx, args: SmokeArgs) -> Result<Box<dyn Report>> {
    let junit = args.junit.clone();
    let started = std::time::Instant::now();
    let result = smoke(ctx, args);
    if let Some(path) = junit {
        let summary = match &result {
            Ok(report) => report.ci_summary(),
            Err(e) => Some(crate::ci::Summary {
                rows: vec![crate::ci::Row {
                    name: "smoke".into(),
                    outcome: crate::ci::Outcome::Failed,
                    ms: None,
                    detail: e.message().to_owned(),
                }],
                ..crate::ci::Summary::failed("stripe-ops smoke", e)
            }),
        };
        if let Some(summary) = summary {
            crate::ci::write_junit(
                &crate::ci::junit(&summary, "smoke", started.elapsed())?,
                &path,
            )?;
        }
    }
    result
}

fn smoke(ctx: &Ctx, args: SmokeArgs) -> Result<Box<dyn Report>> {
    reject_misplaced_flags(&args)?;
    if args.is_real() {
        let opts = real_options(ctx, &args)?;
        let out = ctx.out.clone();
        return runtime::run(|stop| async move {
            let report = real::run(opts, &out, &stop).await?;
            Ok(Box::new(report) as Box<dyn Report>)
        });
    }
    let base_url = resolve_base_url(ctx, &args)?;
    let (success_url, cancel_url) = return_urls(&args, &base_url);
    let out = ctx.out.clone();
    runtime::run(|stop| async move {
        let opts = DeterministicOptions {
            contract: contract(ctx, &args)?,
            buyer: resolve_buyer(&args)?,
            webhook_secret: resolve_webhook_secret(ctx, &args).await?,
            amount_cents: args.topup_cents,
            success_url,
            cancel_url,
            settle_timeout: args.settle_timeout.get(),
            switch_window: None,
            only_happy_path: args.only_happy_path,
            request_timeout: args.request_timeout.get(),
            api_version: args.api_version.clone(),
            base_url,
        };
        out.line(format!(
            "smoke {} ({} cents{})",
            opts.base_url,
            opts.amount_cents,
            if opts.only_happy_path {
                ", happy path only"
            } else {
                ""
            }
        ));
        let report = stop.guard(deterministic::run(&opts, &out)).await?;
        Ok(Box::new(report) as Box<dyn Report>)
    })
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
    args.env
        .as_ref()
        .map(|name| ctx.env(name, &args.env_flags, args.base_url.clone()))
        .transpose()
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
        Some(f) => Some(secret::read_password_file(f, "buyer password")?),
        None => secret::password_from_env(&vars::SMOKE_BUYER_PASSWORD, "buyer password")?,
    };
    match (&args.buyer_email, password) {
        (Some(email), Some(password)) => Ok(Some(Buyer {
            email: email.trim().to_owned(),
            password,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::usage(format!(
            "--buyer-email needs a password: --buyer-password-file FILE or {}",
            vars::SMOKE_BUYER_PASSWORD.name
        ))),
        (None, Some(_)) => Err(Error::usage(
            "a buyer password was given without --buyer-email (or SMOKE_BUYER_EMAIL)",
        )),
    }
}

async fn resolve_webhook_secret(ctx: &Ctx, args: &SmokeArgs) -> Result<SecretString> {
    let secret = if let Some(f) = &args.webhook_secret_file {
        secret::read_file(f, "webhook secret")?
    } else if let Some(s) = secret::from_env(&vars::SMOKE_STRIPE_WEBHOOK_SECRET, "webhook secret")?
    {
        s
    } else if let Some(settings) = env_settings(ctx, args)? {
        deploy::Env::connect(settings, None)
            .await
            .webhook_secret()
            .await?
    } else {
        return Err(Error::usage(format!(
            "no webhook secret: give --webhook-secret-file FILE, set {}, or use --env NAME to read it from Secrets Manager",
            vars::SMOKE_STRIPE_WEBHOOK_SECRET.name
        )));
    };
    super::warn_unless_webhook_secrets(&ctx.out, std::slice::from_ref(&secret));
    Ok(secret)
}

fn contract(ctx: &Ctx, args: &SmokeArgs) -> Result<Contract> {
    Ok(ctx.config()?.contract(args.env.as_deref()))
}

/// `--success-url` and `--cancel-url`, else the defaults on the app's own base URL.
fn return_urls(args: &SmokeArgs, base_url: &str) -> (String, String) {
    let success = args
        .success_url
        .clone()
        .unwrap_or_else(|| smoke::default_success_url(base_url));
    let cancel = args
        .cancel_url
        .clone()
        .unwrap_or_else(|| smoke::default_cancel_url(base_url));
    (success, cancel)
}

fn stripe_check(ctx: &Ctx, args: &SmokeArgs) -> Result<Option<real::StripeCheck>> {
    if !args.verify_stripe_event {
        return Ok(None);
    }
    let key = super::stripe_key(args.stripe_secret_key_file.as_deref(), &ctx.out)?
        .ok_or_else(|| {
            Error::usage(
                "--verify-stripe-event needs a Stripe key: --stripe-secret-key-file FILE, STRIPE_SECRET_KEY or STRIPE_API_KEY",
            )
        })?;
    let api_base = config::stripe_api_base(
        args.env_flags.stripe_api_base.as_deref(),
        env_settings(ctx, args)?.as_ref(),
    )?;
    Ok(Some(real::StripeCheck {
        api_base,
        secret_key: key,
    }))
}

/// `--real`, `--create-only` and `--verify-only` as the core's options.
fn real_options(ctx: &Ctx, args: &SmokeArgs) -> Result<RealOptions> {
    let stripe = stripe_check(ctx, args)?;
    let contract = contract(ctx, args)?;
    let mut verify_base = args.base_url.clone().filter(|u| !u.trim().is_empty());
    let start = if args.verify_only {
        Start::Receipt(args.receipt.clone().expect("clap requires --receipt"))
    } else {
        let base_url = resolve_base_url(ctx, args)?;
        verify_base = Some(base_url.clone());
        let (success_url, cancel_url) = return_urls(args, &base_url);
        Start::Create(Box::new(real::CreateOptions {
            contract: contract.clone(),
            buyer: resolve_buyer(args)?,
            amount_cents: args.topup_cents,
            success_url,
            cancel_url,
            receipt_path: args.receipt.clone(),
            request_timeout: args.request_timeout.get(),
            base_url,
        }))
    };
    Ok(RealOptions {
        start,
        create_only: args.create_only,
        open: args.open,
        automate: args.automate.map(|mode| Automate {
            mode: match mode {
                AutomateFlag::Fallback => AutomateMode::Fallback,
                AutomateFlag::Require => AutomateMode::Require,
            },
            webdriver_url: args.webdriver_url.clone(),
            headed: args.headed,
            card: args.card.clone(),
        }),
        verify: real::VerifyOptions {
            contract,
            wait: args.wait.get(),
            poll_interval: Duration::from_millis(500),
            request_timeout: args.request_timeout.get(),
            stripe,
            resume_command: None,
            base_url: verify_base,
        },
        resume: Resume {
            config: ctx.global.config.clone(),
            env: args.env.clone(),
        },
    })
}
