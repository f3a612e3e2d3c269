//! `stripe-ops check`: a conformance and abuse suite for a Stripe webhook receiver.
//!
//! `cases` is the pure catalogue (what each case sends and expects), `runner` sends the requests
//! and judges the answers, `report` renders the table, the JSON document and JUnit XML.

pub mod cases;
pub mod report;
pub mod runner;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::app_client::Buyer;
use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::events::SecretArgs;
use crate::fixtures::Catalog;
use crate::{http, output, secret, signature};

pub use cases::Suite;
pub use report::{CaseResult, Outcome, Report};
pub use runner::{AppTarget, Options, run as run_cases};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The receiver to check (default: <base URL> + the contract's webhook path)
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// The app's base URL: enables the idempotency suite and the no-effect check of ignored types
    #[arg(long, value_name = "URL", env = "BASE_URL")]
    pub base_url: Option<String>,
    /// Buyer to log in as for the idempotency suite (default: register a fresh buyer)
    #[arg(long, value_name = "EMAIL", requires = "buyer_password_file")]
    pub buyer_email: Option<String>,
    /// File holding the buyer's password
    #[arg(long, value_name = "FILE", requires = "buyer_email")]
    pub buyer_password_file: Option<PathBuf>,
    /// Answer-time budget per request in seconds; robustness cases fail beyond it, and any
    /// request unanswered after 3 times this counts as a hang
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,
    /// Event types that may be accepted without effect (comma-separated or repeated)
    #[arg(long, value_name = "TYPE,...", value_delimiter = ',')]
    pub expect_ignored: Vec<String>,
    /// The receiver's timestamp tolerance in seconds; stale and future cases go 60 s beyond it
    #[arg(long, value_name = "SECS", default_value_t = signature::DEFAULT_TOLERANCE)]
    pub tolerance: i64,
    /// Suites to run (comma-separated; default all)
    #[arg(long, value_enum, value_delimiter = ',')]
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
    /// Top-up amount of the idempotency cases, in cents
    #[arg(long, value_name = "CENTS", default_value_t = 500)]
    pub amount: i64,
    /// Extra templates (`<type>.json`) for the types suite
    #[arg(long, value_name = "DIR")]
    pub fixtures_dir: Option<PathBuf>,
}

pub async fn run(ctx: &Ctx, args: CheckArgs) -> Result<()> {
    let selected = select_cases(&args)?;
    if args.list {
        print_list(&selected);
        return Ok(());
    }
    let opts = options(ctx, &args, selected)?;
    let report = runner::run(opts).await?;
    if let Some(path) = &args.junit {
        report::write_junit(&report, path)?;
    }
    print_report(&report);
    if report.ok {
        Ok(())
    } else if report.nothing_answered() {
        Err(Error::external(format!(
            "no case got an answer from {}: {}",
            report.webhook_url,
            report.cases.first().map_or("", |c| c.detail.as_str())
        )))
    } else {
        Err(Error::failed(format!(
            "{} of {} check cases failed: {}",
            report.failed,
            report.cases.len(),
            report.failed_names().join(", ")
        )))
    }
}

fn select_cases(args: &CheckArgs) -> Result<Vec<cases::Case>> {
    cases_for(
        args.fixtures_dir.as_deref(),
        &args.suite,
        &args.cases,
        &args.expect_ignored,
    )
}

/// The cases of `suites` (all when empty), narrowed to `names` when given; for callers that run
/// the check in-process (`demo`) with `runner::run`.
pub fn cases_for(
    fixtures_dir: Option<&std::path::Path>,
    suites: &[Suite],
    names: &[String],
    expect_ignored: &[String],
) -> Result<Vec<cases::Case>> {
    let catalog = Catalog::load(fixtures_dir)?;
    let types: Vec<String> = catalog.types().map(str::to_owned).collect();
    for t in expect_ignored {
        catalog
            .template(t)
            .map_err(|e| e.context("--expect-ignored"))?;
    }
    cases::select(cases::catalogue(&types, expect_ignored), suites, names).map_err(Error::usage)
}

fn options(ctx: &Ctx, args: &CheckArgs, selected: Vec<cases::Case>) -> Result<Options> {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(Error::usage(
            "--timeout must be a positive number of seconds",
        ));
    }
    if args.tolerance <= 0 {
        return Err(Error::usage(
            "--tolerance must be a positive number of seconds",
        ));
    }
    if args.amount <= 0 {
        return Err(Error::usage("--amount must be a positive number of cents"));
    }
    let base_url = args.base_url.clone().filter(|b| !b.trim().is_empty());
    let contract = ctx.config()?.contract(None);
    let webhook_url = match (&args.webhook_url, &base_url) {
        (Some(url), _) => url.clone(),
        (None, Some(base)) => http::join(base, &contract.paths.webhook),
        (None, None) => {
            return Err(Error::usage(
                "check needs --webhook-url URL (or --base-url, whose webhook path it then uses)",
            ));
        }
    };
    let buyer = match (&args.buyer_email, &args.buyer_password_file) {
        (Some(email), Some(file)) => Some(Buyer {
            email: email.clone(),
            password: secret::read_file(file, "buyer password")?,
        }),
        _ => None,
    };
    Ok(Options {
        webhook_url,
        secrets: args.secrets.load()?,
        app: base_url.map(|base_url| AppTarget {
            base_url,
            contract,
            buyer,
        }),
        budget: Duration::from_secs_f64(args.timeout),
        tolerance: args.tolerance,
        amount_cents: args.amount,
        cases: selected,
        fixtures_dir: args.fixtures_dir.clone(),
    })
}

fn print_list(cases: &[cases::Case]) {
    if output::mode().json {
        let list: Vec<_> = cases
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "suite": c.suite, "expect": c.expect.describe(), "what": c.what}))
            .collect();
        output::json(&serde_json::json!({ "cases": list }));
        return;
    }
    let width = cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in cases {
        output::line(format!(
            "{:width$}  {:15}  {}",
            c.name,
            c.expect.describe(),
            c.what
        ));
    }
}

fn print_report(report: &Report) {
    if output::mode().json {
        output::json(&serde_json::to_value(report).expect("reports serialize"));
        return;
    }
    for line in report::table(report) {
        output::line(line);
    }
}
