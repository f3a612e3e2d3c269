//! `stripe-ops events list|sign|send|verify`: synthetic, signed Stripe webhook events, and load
//! mode of `send` (`--count`, `--duration`).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{Ctx, SecretArgs};
use crate::duration::{self, Span};
use crate::error::{Error, Result};
use crate::load::{self, LoadPlan};
use crate::printer::{Printer, Report};
use crate::runtime;
use crate::webhook::fixtures::{Catalog, Prepared, RenderOptions, SetOp};
use crate::webhook::signature::{self, Rejection};
use crate::webhook::{self, SignedEvent, versions};

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
        let catalog = Catalog::load(self.fixtures_dir.as_deref())?;
        let opts = RenderOptions {
            sets: self.sets.clone(),
            removes: self.removes.clone(),
            create_path: self.create_path,
            account: self.account.clone(),
            api_version: self.api_version.clone(),
        };
        let prepared = catalog.prepare(&self.event_type, &opts)?;
        if let Some(version) = &self.api_version {
            if catalog.is_thin(&self.event_type) {
                out.tell(format!(
                    "note: --api-version {version} does not apply to {}: a thin event names no API version (its receiver fetches the event at its own)",
                    self.event_type
                ));
            }
            for note in
                versions::shape_notes(version, catalog.object_of(&self.event_type).unwrap_or(""))
            {
                out.tell(format!("note: {note}"));
            }
        }
        Ok(prepared)
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

/// One template as `events list` shows it.
struct Listed {
    name: String,
    event_type: String,
    /// The resource it is about (`data.object.object`, a thin event's `related_object.type`).
    object: String,
    thin: bool,
}

/// The templates, grouped by the resource they are about.
struct Types(Vec<Listed>);

impl Types {
    fn by_object(&self, thin: bool) -> std::collections::BTreeMap<&str, Vec<&Listed>> {
        let mut groups = std::collections::BTreeMap::<&str, Vec<&Listed>>::new();
        for t in self.0.iter().filter(|t| t.thin == thin) {
            groups.entry(t.object.as_str()).or_default().push(t);
        }
        groups
    }
}

impl Report for Types {
    fn json(&self) -> Value {
        let names = |thin: Option<bool>| -> Vec<&str> {
            self.0
                .iter()
                .filter(|t| thin.is_none_or(|k| t.thin == k))
                .map(|t| t.name.as_str())
                .collect()
        };
        let templates: Vec<Value> = self
            .0
            .iter()
            .map(|t| json!({"name": t.name, "type": t.event_type, "object": t.object, "thin": t.thin}))
            .collect();
        json!({ "types": names(None), "thin": names(Some(true)), "templates": templates })
    }

    fn human(&self, p: &Printer) -> Vec<String> {
        let mut lines = Vec::new();
        for thin in [false, true] {
            let groups = self.by_object(thin);
            if groups.is_empty() {
                continue;
            }
            if thin {
                lines.push(p.paint(
                    "thin events (event destinations with the thin payload), by related object:",
                    "1",
                ));
            }
            for (object, types) in groups {
                lines.push(format!("{object} ({})", types.len()));
                for t in types {
                    lines.push(if t.name == t.event_type {
                        format!("  {}", t.name)
                    } else {
                        format!("  {}  (sends {})", t.name, t.event_type)
                    });
                }
            }
        }
        lines.push(format!("{} template(s)", self.0.len()));
        lines
    }
}

fn list(args: &ListArgs) -> Result<Box<dyn Report>> {
    let catalog = Catalog::load(args.fixtures_dir.as_deref())?;
    let globs: Vec<wildmatch::WildMatch> = args
        .globs
        .iter()
        .map(|g| wildmatch::WildMatch::new(g))
        .collect();
    let listed: Vec<Listed> = catalog
        .types()
        .filter(|t| globs.is_empty() || globs.iter().any(|g| g.matches(t)))
        .map(|name| Listed {
            name: name.to_owned(),
            event_type: catalog.event_type(name).to_owned(),
            object: catalog
                .object_of(name)
                .unwrap_or("(no related object)")
                .to_owned(),
            thin: catalog.is_thin(name),
        })
        .collect();
    if listed.is_empty() && !globs.is_empty() {
        return Err(Error::usage(format!(
            "{} matches no event type; `stripe-ops events list` shows them all",
            args.globs.join(" ")
        )));
    }
    Ok(Box::new(Types(listed)))
}

/// A signed event, printed whole, or with its body and header in files.
struct Signed {
    event: SignedEvent,
    body_file: Option<PathBuf>,
    header_file: Option<PathBuf>,
}

impl Signed {
    fn whole(&self) -> Value {
        let e = &self.event;
        json!({ "id": e.id, "type": e.event_type, "header": e.header, "body": e.body })
    }
}

impl Report for Signed {
    fn json(&self) -> Value {
        if self.body_file.is_none() && self.header_file.is_none() {
            return self.whole();
        }
        let e = &self.event;
        json!({
            "id": e.id,
            "type": e.event_type,
            "body_file": self.body_file,
            "header_file": self.header_file,
            "header": if self.header_file.is_none() { Some(&e.header) } else { None },
        })
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        let e = &self.event;
        if self.body_file.is_none() && self.header_file.is_none() {
            // One line, as-is: `body` must round-trip byte for byte.
            return vec![self.whole().to_string()];
        }
        let mut lines = vec![format!("signed {} {}", e.event_type, e.id)];
        if let Some(p) = &self.body_file {
            lines.push(format!("body   -> {}", p.display()));
        }
        lines.push(match &self.header_file {
            Some(p) => format!("header -> {}", p.display()),
            None => format!("header: {}", e.header),
        });
        lines
    }
}

fn sign(ctx: &Ctx, args: &SignArgs) -> Result<Box<dyn Report>> {
    let signers = webhook::signers(&args.secrets.load(&ctx.out)?);
    let prepared = args.render.prepare(&ctx.out)?;
    let event = webhook::sign_event(
        &prepared,
        &signers,
        args.render.id.as_deref(),
        args.render.timestamp,
    );
    if let Some(path) = &args.out_body {
        write_plain(path, event.body.as_bytes())?;
    }
    if let Some(path) = &args.out_header {
        write_plain(path, event.header.as_bytes())?;
    }
    Ok(Box::new(Signed {
        event,
        body_file: args.out_body.clone(),
        header_file: args.out_header.clone(),
    }))
}

fn write_plain(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes)
        .map_err(|e| Error::usage(format!("cannot write {}: {e}", path.display())))
}

/// One delivery and its answer.
struct Sent {
    event: SignedEvent,
    to: String,
    reply: crate::http::Reply,
}

impl Report for Sent {
    fn json(&self) -> Value {
        let (e, r) = (&self.event, &self.reply);
        json!({
            "id": e.id, "type": e.event_type, "to": self.to,
            "status": r.status.as_u16(), "ok": r.status.is_success(), "ms": r.ms,
            "answer": crate::http::excerpt(&r.body, 300),
        })
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        let (e, r) = (&self.event, &self.reply);
        let mut lines = vec![format!(
            "{} {} -> {} in {:.1} ms",
            e.event_type, e.id, r.status, r.ms
        )];
        let answer = crate::http::excerpt(&r.body, 300);
        if !answer.is_empty() {
            lines.push(format!("answer: {answer}"));
        }
        lines
    }

    fn verdict(&self) -> Result<()> {
        if self.reply.status.is_success() {
            Ok(())
        } else {
            Err(Error::failed(format!(
                "receiver answered {}",
                self.reply.status
            )))
        }
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
        let reply = stop
            .guard(webhook::post(
                &client,
                &args.to,
                &event.body,
                Some(&event.header),
                &args.headers,
            ))
            .await?;
        Ok(Box::new(Sent {
            event,
            to: args.to,
            reply,
        }) as Box<dyn Report>)
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

/// A verdict on a signature, and when it was judged.
struct Verdict {
    verdict: std::result::Result<i64, Rejection>,
    now: i64,
}

impl Verdict {
    /// Seconds the signed timestamp is ahead of now: valid, as Stripe's libraries judge it.
    fn ahead(&self) -> Option<i64> {
        let t = *self.verdict.as_ref().ok()?;
        (t > self.now).then(|| t.saturating_sub(self.now))
    }
}

impl Report for Verdict {
    fn json(&self) -> Value {
        match &self.verdict {
            Ok(t) => json!({
                "ok": true, "valid": true, "timestamp": t, "seconds_in_future": self.ahead(),
            }),
            Err(r) => json!({ "ok": false, "valid": false, "reason": r.to_string() }),
        }
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        match (&self.verdict, self.ahead()) {
            (Ok(t), Some(ahead)) => vec![format!(
                "valid (signed at {t}, {ahead} s in the future: Stripe's libraries accept that)"
            )],
            (Ok(t), None) => vec![format!("valid (signed at {t})")],
            (Err(_), _) => Vec::new(),
        }
    }

    fn verdict(&self) -> Result<()> {
        match &self.verdict {
            Ok(_) => Ok(()),
            Err(reason) => Err(Error::failed(format!("invalid: {reason}"))),
        }
    }
}

fn verify(ctx: &Ctx, args: &VerifyArgs) -> Result<Box<dyn Report>> {
    let signers = webhook::signers(&args.secrets.load(&ctx.out)?);
    let header = match (&args.header, &args.header_file) {
        (Some(h), _) => h.clone(),
        (None, Some(f)) => crate::files::read_text(f, "header file")?,
        (None, None) => unreachable!("clap requires one"),
    };
    let body = crate::files::read(&args.body_file, "body file")?;
    let now = args.now.unwrap_or_else(signature::unix_now);
    // As Stripe's libraries judge it: only a timestamp older than the tolerance is refused.
    let verdict = signature::verify(
        &header,
        &body,
        &signers,
        args.tolerance.whole_secs(),
        now,
        signature::Window::PastOnly,
    );
    if let Err(Rejection::Malformed(why)) = &verdict {
        return Err(Error::usage(format!(
            "malformed Stripe-Signature header: {why}"
        )));
    }
    Ok(Box::new(Verdict { verdict, now }))
}
