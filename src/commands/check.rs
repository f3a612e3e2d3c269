//! `stripe-ops check`: the conformance and abuse suite for a webhook receiver (core: `check`).

use std::path::PathBuf;

use clap::Args;

use super::{Ctx, SecretArgs};
use crate::app_client::Buyer;
use crate::check::{self, AppTarget, CaseList, Options, Suite, report};
use crate::config::{self, vars};
use crate::duration::{self, Span};
use crate::error::{Error, Result};
use crate::printer::Report;
use crate::{http, runtime, secret};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The receiver to check (default: <base URL> + the contract's webhook path)
    #[arg(long, value_name = "URL", value_parser = crate::http::url_arg)]
    pub webhook_url: Option<String>,
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// The app's base URL: enables the idempotency suite and the no-effect check of ignored types
    #[arg(long, value_name = "URL", env = vars::BASE_URL.name, value_parser = crate::http::url_arg)]
    pub base_url: Option<String>,
    /// Buyer to log in as for the idempotency suite (default: register a fresh buyer)
    #[arg(long, value_name = "EMAIL", requires = "buyer_password_file")]
    pub buyer_email: Option<String>,
    /// File holding the buyer's password
    #[arg(long, value_name = "FILE", requires = "buyer_email")]
    pub buyer_password_file: Option<PathBuf>,
    /// Answer-time budget of every delivery (10s, 0.5; a bare number is seconds): a slower
    /// answer fails its case, as Stripe counts it a failed delivery; a request unanswered after
    /// 3 times this is a hang. Also bounds each run of the observer
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::positive)]
    pub timeout: Span,
    /// Answers slower than this (but within --timeout) pass with a warning: answer first,
    /// process later
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration::positive)]
    pub slow_answer: Span,
    /// A shell command whose output is the receiver's state (for example
    /// `psql -Atc "select count(*) from subscriptions"`): runs the idempotency suite on any
    /// receiver, per event type. Its output is compared, never printed
    #[arg(long, value_name = "CMD", conflicts_with = "observe_url")]
    pub observe: Option<String>,
    /// Like --observe, with the body of a GET of URL as the state
    #[arg(long, value_name = "URL", value_parser = crate::http::url_arg)]
    pub observe_url: Option<String>,
    /// Send every case as Stripe delivers to a Connect endpoint: `account` set to this connected
    /// account; with an observer, the connect suite checks the platform's state is not acted on
    #[arg(long, value_name = "ACCOUNT_ID", value_parser = parse_account)]
    pub account: Option<String>,
    /// Event types the types suite sends (and, with an observer, the idempotency suite
    /// judges), as globs: `customer.subscription.*,invoice.paid`; `*` is every type. Default:
    /// what the receiver's webhook endpoint at Stripe subscribes to (with a Stripe key), else
    /// the classic set (`check --list` shows it)
    #[arg(long, value_name = "GLOB,...", value_delimiter = ',')]
    pub types: Vec<String>,
    /// The API version every event names. Default: the version the receiver's endpoint at
    /// Stripe is pinned to (with a Stripe key), else the catalogue's (the newest Stripe's
    /// libraries pin). Objects keep the catalogue's shape: known differences are noted
    #[arg(long, value_name = "VERSION", value_parser = super::api_version_arg)]
    pub api_version: Option<String>,
    /// File holding a Stripe secret key (else STRIPE_SECRET_KEY, else STRIPE_API_KEY): with
    /// one, check reads the receiver's endpoint at Stripe for the default types and version
    #[arg(long, value_name = "FILE")]
    pub stripe_secret_key_file: Option<PathBuf>,
    /// Stripe API base URL (else STRIPE_API_BASE, else https://api.stripe.com)
    #[arg(long, value_name = "URL", value_parser = crate::http::url_arg)]
    pub stripe_api_base: Option<String>,
    /// Event types that may be accepted without effect (comma-separated or repeated)
    #[arg(long, value_name = "TYPE,...", value_delimiter = ',')]
    pub expect_ignored: Vec<String>,
    /// The receiver's timestamp tolerance (300, 5m); stale and future cases go 60 s beyond it
    #[arg(long, value_name = "DURATION", default_value = "300", value_parser = duration::positive)]
    pub tolerance: Span,
    /// Suites to run (comma-separated; default all): security, robustness, idempotency, connect,
    /// types
    #[arg(long, value_delimiter = ',', value_name = "SUITE")]
    pub suite: Vec<Suite>,
    /// Run only this case (repeatable); `--list` shows the names
    #[arg(long = "case", value_name = "NAME")]
    pub cases: Vec<String>,
    /// List the cases and what each expects, without sending anything
    #[arg(long)]
    pub list: bool,
    /// Also write the results as JUnit XML to FILE
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// How long to wait for a credit (10s); "no second credit" verdicts watch the balance for
    /// three times the slowest credit seen (at least 0.3 s, at most this)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::positive)]
    pub settle_timeout: Span,
    /// Fail on advisory cases too (hardening beyond what Stripe requires)
    #[arg(long)]
    pub strict: bool,
    /// Top-up amount of the idempotency cases, in cents (100..=50000, as the top-up contract)
    #[arg(long, value_name = "CENTS", default_value = "500", value_parser = crate::smoke::parse_amount)]
    pub amount: i64,
    /// Extra templates (`<type>.json`) for the types suite
    #[arg(long, value_name = "DIR")]
    pub fixtures_dir: Option<PathBuf>,
    /// Extra header on every delivery, "Name: value" (repeatable; replaces a default of the
    /// same name)
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = http::header_arg)]
    pub headers: Vec<http::ExtraHeader>,
    /// What the receiver is subscribed to: snapshot events (a webhook endpoint), or thin
    /// events (an event destination with the thin payload: the types suite only)
    #[arg(long, value_enum, default_value = "snapshot")]
    pub event_payload: PayloadArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PayloadArg {
    Snapshot,
    Thin,
}

/// A connected account id, as Stripe writes them (`acct_` and letters or digits).
fn parse_account(s: &str) -> std::result::Result<String, String> {
    let rest = s
        .strip_prefix("acct_")
        .ok_or_else(|| format!("{s:?} is not a Stripe account id (acct_…)"))?;
    if rest.is_empty() || !rest.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "{s:?} is not a Stripe account id (acct_ then letters and digits)"
        ));
    }
    Ok(s.to_owned())
}

impl CheckArgs {
    fn observer(&self) -> Option<check::ObserverSpec> {
        match (&self.observe, &self.observe_url) {
            (Some(cmd), _) => Some(check::ObserverSpec::Command(cmd.clone())),
            (None, Some(url)) => Some(check::ObserverSpec::Url(url.clone())),
            (None, None) => None,
        }
    }

    fn payload(&self) -> check::EventPayload {
        match self.event_payload {
            PayloadArg::Snapshot => check::EventPayload::Snapshot,
            PayloadArg::Thin => check::EventPayload::Thin,
        }
    }
}

pub fn run(ctx: &Ctx, args: CheckArgs) -> Result<Box<dyn Report>> {
    let plan = check::Plan {
        observer: args.observer().is_some(),
        account: args.account.is_some(),
    };
    if args.suite.contains(&Suite::Idempotency)
        && !plan.observer
        && args.base_url.as_deref().is_none_or(|b| b.trim().is_empty())
    {
        return Err(Error::usage(format!(
            "--suite idempotency {}",
            check::NEEDS_STATE
        )));
    }
    // `--list` needs no receiver; with one, it lists what its endpoint subscribes to.
    let webhook_url = match webhook_url(ctx, &args) {
        Err(_) if args.list => None,
        url => Some(url?),
    };
    let subscribed = match &webhook_url {
        Some(url) => subscribed(ctx, &args, url)?,
        None => None,
    };
    let types = match &subscribed {
        Some(s) if args.types.is_empty() => s.events.clone(),
        _ => args.types.clone(),
    };
    let api_version = args
        .api_version
        .clone()
        .or_else(|| subscribed.as_ref().and_then(|s| s.api_version.clone()));
    let selected = check::cases_for(&check::Selection {
        fixtures_dir: args.fixtures_dir.as_deref(),
        suites: &args.suite,
        names: &args.cases,
        expect_ignored: &args.expect_ignored,
        types: &types,
        payload: args.payload(),
        plan,
    })?;
    if args.list {
        return Ok(Box::new(CaseList(selected)));
    }
    if let Some(version) = &api_version {
        check::note_shapes(version, &selected, args.fixtures_dir.as_deref(), &ctx.out)?;
    }
    let webhook_url = webhook_url.expect("only --list goes without a receiver");
    let mut opts = options(ctx, &args, webhook_url, selected)?;
    opts.api_version = api_version;
    let out = ctx.out.clone();
    runtime::run(|stop| async move {
        let report = stop.guard(check::run(opts, &out)).await?;
        if let Some(path) = &args.junit {
            report::write_junit(&report, path)?;
        }
        Ok(Box::new(report) as Box<dyn Report>)
    })
}

fn webhook_url(ctx: &Ctx, args: &CheckArgs) -> Result<String> {
    let base_url = args.base_url.as_deref().filter(|b| !b.trim().is_empty());
    match (&args.webhook_url, base_url) {
        (Some(url), _) => Ok(url.clone()),
        (None, Some(base)) => Ok(http::join(
            base,
            &ctx.config()?.contract(None).paths.webhook,
        )),
        (None, None) => Err(Error::usage(
            "check needs --webhook-url URL (or --base-url, whose webhook path it then uses)",
        )),
    }
}

/// With a Stripe key, the receiver's endpoint at Stripe: what it subscribes to and its pinned
/// version. Without a key, or when Stripe cannot say, None.
fn subscribed(
    ctx: &Ctx,
    args: &CheckArgs,
    url: &str,
) -> Result<Option<check::subscribed::Subscribed>> {
    if !args.types.is_empty() && args.api_version.is_some() {
        return Ok(None);
    }
    let Some(key) = super::stripe_key(args.stripe_secret_key_file.as_deref(), &ctx.out)? else {
        return Ok(None);
    };
    let base = config::stripe_api_base(args.stripe_api_base.as_deref(), None)?;
    let timeout = args.timeout.get();
    runtime::run(|stop| async move {
        check::subscribed::read(&base, key, url, timeout, &ctx.out, &stop).await
    })
}

fn options(
    ctx: &Ctx,
    args: &CheckArgs,
    webhook_url: String,
    selected: Vec<check::cases::Case>,
) -> Result<Options> {
    let base_url = args.base_url.clone().filter(|b| !b.trim().is_empty());
    let contract = ctx.config()?.contract(None);
    let buyer = match (&args.buyer_email, &args.buyer_password_file) {
        (Some(email), Some(file)) => Some(Buyer {
            email: email.clone(),
            password: secret::read_password_file(file, "buyer password")?,
        }),
        _ => None,
    };
    Ok(Options {
        webhook_url,
        secrets: args.secrets.load(&ctx.out)?,
        app: base_url.map(|base_url| AppTarget {
            base_url,
            contract,
            buyer,
        }),
        observer: args.observer(),
        account: args.account.clone(),
        budget: args.timeout.get(),
        slow: args.slow_answer.get(),
        tolerance: args.tolerance.whole_secs(),
        amount_cents: args.amount,
        cases: selected,
        fixtures_dir: args.fixtures_dir.clone(),
        settle: args.settle_timeout.get(),
        strict: args.strict,
        headers: args.headers.clone(),
        payload: args.payload(),
        api_version: None,
    })
}
