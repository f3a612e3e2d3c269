//! `stripe-ops events list|sign|send|verify`: synthetic, signed Stripe webhook events, and load
//! mode of `send` (`--count`, `--duration`) (core: `webhook::synthetic`, `load`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Ctx, SecretArgs};
use crate::duration::{self, Span};
use crate::error::{Error, Result};
use crate::load::{self, LoadPlan};
use crate::printer::{Printer, Report};
use crate::runtime;
use crate::webhook::fixtures::{Prepared, RenderOptions, SetOp};
use crate::webhook::{self, synthetic};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List the event types that have a template
    List(ListArgs),
    /// Render and sign an event; print {id, type, header, body}
    Sign(SignArgs),
    /// Render, sign and POST an event (or many: load mode)
    Send(Box<SendArgs>),
    /// Verify a Stripe-Signature header against a body
    Verify(VerifyArgs),
    /// Deliver the account's events (GET /v1/events) to a receiver again, signed now, oldest
    /// first: dead letters back into the app after an outage or a wrong secret
    Replay(Box<super::replay::ReplayArgs>),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the types matching these globs, for example 'invoice.*' 'v1.*'
    #[arg(value_name = "GLOB")]
    pub globs: Vec<String>,
    /// Extra templates (`<type>.json`), adding to or overriding the embedded ones
    #[arg(long, value_name = "DIR")]
    pub fixtures_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// Event type, for example checkout.session.completed
    pub event_type: String,
    /// Override a field by dotted path; the value parses as JSON, else it is a string (repeatable)
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<SetOp>,
    /// Remove a field by dotted path before the sets apply, as the Stripe CLI's --remove
    /// (repeatable)
    #[arg(long = "remove", value_name = "PATH")]
    pub removes: Vec<String>,
    /// Allow --set to create paths the template does not have
    #[arg(long)]
    pub create_path: bool,
    /// The API version the event names (`api_version`; default: the catalogue's, the newest
    /// Stripe's libraries pin). The object keeps the catalogue's shape: known differences are
    /// noted, nothing is translated. Thin events name no version
    #[arg(long, value_name = "VERSION", value_parser = super::api_version_arg)]
    pub api_version: Option<String>,
    /// Make it a Connect event for this account (top-level `account`)
    #[arg(long, value_name = "ACCT")]
    pub account: Option<String>,
    /// Pin the event id (default: a fresh evt_…)
    #[arg(long)]
    pub id: Option<String>,
    /// Pin `created` and the signature timestamp (unix seconds; default: now)
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Extra templates (`<type>.json`), adding to or overriding the embedded ones
    #[arg(long, value_name = "DIR")]
    pub fixtures_dir: Option<PathBuf>,
}

impl RenderArgs {
    fn prepare(&self, out: &Printer) -> Result<Prepared> {
        let opts = RenderOptions {
            sets: self.sets.clone(),
            removes: self.removes.clone(),
            create_path: self.create_path,
            account: self.account.clone(),
            api_version: self.api_version.clone(),
        };
        synthetic::prepare(self.fixtures_dir.as_deref(), &self.event_type, &opts, out)
    }
}

#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// Write the exact signed body to FILE instead of printing JSON
    #[arg(long, value_name = "FILE")]
    pub out_body: Option<PathBuf>,
    /// Write the Stripe-Signature value to FILE instead of printing JSON
    #[arg(long, value_name = "FILE")]
    pub out_header: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// Receiver URL
    #[arg(long, value_name = "URL", value_parser = crate::http::url_arg)]
    pub to: String,
    /// Per-request timeout (10s, 1.5, 500ms; a bare number is seconds)
    #[arg(long, default_value = "10s", value_parser = duration::positive)]
    pub timeout: Span,
    /// Extra header, "Name: value" (repeatable; replaces a default of the same name)
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = crate::http::header_arg)]
    pub headers: Vec<crate::http::ExtraHeader>,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Load mode of `events send`.
#[derive(Debug, Clone, Default, Args)]
pub struct LoadArgs {
    /// Load mode: send N distinct, freshly signed events (hey's -n)
    #[arg(short = 'n', long, value_name = "N")]
    pub count: Option<u64>,
    /// Load mode: requests in flight at once, default 1 (hey's -c)
    #[arg(short = 'c', long, value_name = "C")]
    pub concurrency: Option<usize>,
    /// Load mode: at most R requests per second in total (for example 500 or 500/s)
    #[arg(long, value_name = "R/s", value_parser = load::parse_rate, conflicts_with = "rate_per_worker")]
    pub rate: Option<f64>,
    /// Load mode: at most Q requests per second per worker, as hey's -q (the total is Q times
    /// the concurrency)
    #[arg(short = 'q', value_name = "Q", value_parser = load::parse_rate)]
    pub rate_per_worker: Option<f64>,
    /// Load mode: send for this long, for example 30s, 2m, 500ms; a bare number is seconds
    /// (hey's -z)
    #[arg(short = 'z', long, value_name = "D", value_parser = duration::positive)]
    pub duration: Option<Span>,
}

impl LoadArgs {
    fn is_load(&self) -> bool {
        self.count.is_some()
            || self.duration.is_some()
            || self.concurrency.is_some()
            || self.total_rate().is_some()
    }

    /// The total rate: `--rate`, or hey's per-worker `-q` times the concurrency.
    fn total_rate(&self) -> Option<f64> {
        self.rate.or_else(|| {
            self.rate_per_worker
                .map(|q| q * self.concurrency.unwrap_or(1) as f64)
        })
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// The Stripe-Signature value
    #[arg(
        long,
        value_name = "VALUE",
        conflicts_with = "header_file",
        required_unless_present = "header_file"
    )]
    pub header: Option<String>,
    /// File holding the Stripe-Signature value
    #[arg(long, value_name = "FILE")]
    pub header_file: Option<PathBuf>,
    /// File holding the exact raw body
    #[arg(long, value_name = "FILE")]
    pub body_file: PathBuf,
    /// Accepted clock difference (300, 5m; a bare number is seconds)
    #[arg(long, default_value = "300")]
    pub tolerance: Span,
    /// Verify as if it were this unix time (default: now)
    #[arg(long, value_name = "UNIX")]
    pub now: Option<i64>,
}

pub fn run(ctx: &Ctx, cmd: EventsCommand) -> Result<Box<dyn Report>> {
    match cmd {
        EventsCommand::List(args) => list(&args),
        EventsCommand::Sign(args) => sign(ctx, &args),
        EventsCommand::Send(args) if args.load.is_load() => send_load(ctx, *args),
        EventsCommand::Send(args) => send_one(ctx, *args),
        EventsCommand::Verify(args) => verify(ctx, &args),
        EventsCommand::Replay(args) => super::replay::run(ctx, *args),
    }
}

fn send_one(ctx: &Ctx, args: SendArgs) -> Result<Box<dyn Report>> {
    let signers = webhook::signers(&args.secrets.load(&ctx.out)?);
    let prepared = args.render.prepare(&ctx.out)?;
    let client = crate::http::client(args.timeout.get())?;
    let event = webhook::sign_event(
        &prepared,
        &signers,
        args.render.id.as_deref(),
        args.render.timestamp,
    );
    runtime::run(|stop| async move {
        let sent = stop
            .guard(synthetic::send(&client, args.to, event, &args.headers))
            .await?;
        Ok(Box::new(sent) as Box<dyn Report>)
    })
}

fn send_load(ctx: &Ctx, args: SendArgs) -> Result<Box<dyn Report>> {
    if args.render.id.is_some() {
        return Err(Error::usage(
            "--id pins one event id; load mode sends distinct ids (drop --id)",
        ));
    }
    if args.render.timestamp.is_some() {
        return Err(Error::usage(
            "--timestamp pins one signature time; load mode signs each request when it sends it (drop --timestamp)",
        ));
    }
    let l = &args.load;
    let plan = LoadPlan::new(
        l.count,
        l.duration.map(Span::get),
        l.concurrency,
        l.total_rate(),
    )?;
    let signers = webhook::signers(&args.secrets.load(&ctx.out)?);
    let prepared = args.render.prepare(&ctx.out)?;
    let target = load::Target::new(&args.to, args.timeout.get(), args.headers.clone())?;
    let out = ctx.out.clone();
    runtime::run(|stop| async move {
        let summary = load::run(plan, target, prepared, signers, &out, &stop).await?;
        Ok(Box::new(summary) as Box<dyn Report>)
    })
}

fn list(args: &ListArgs) -> Result<Box<dyn Report>> {
    let types = synthetic::list(args.fixtures_dir.as_deref(), &args.globs)?;
    Ok(Box::new(types))
}

fn sign(ctx: &Ctx, args: &SignArgs) -> Result<Box<dyn Report>> {
    let signers = webhook::signers(&args.secrets.load(&ctx.out)?);
    let prepared = args.render.prepare(&ctx.out)?;
    let signed = synthetic::sign(
        &prepared,
        &signers,
        args.render.id.as_deref(),
        args.render.timestamp,
        args.out_body.clone(),
        args.out_header.clone(),
    )?;
    Ok(Box::new(signed))
}

fn verify(ctx: &Ctx, args: &VerifyArgs) -> Result<Box<dyn Report>> {
    let signers = webhook::signers(&args.secrets.load(&ctx.out)?);
    let header = match (&args.header, &args.header_file) {
        (Some(h), _) => h.clone(),
        (None, Some(f)) => crate::files::read_text(f, "header file")?,
        (None, None) => unreachable!("clap requires one"),
    };
    let body = crate::files::read(&args.body_file, "body file")?;
    let now = args.now.unwrap_or_else(crate::timestamp::unix_now);
    let verdict = synthetic::verify(&header, &body, &signers, args.tolerance.whole_secs(), now)?;
    Ok(Box::new(verdict))
}
