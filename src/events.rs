//! `stripe-ops events list|sign|send|verify`: synthetic, signed Stripe webhook events.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::json;

use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::fixtures::{Catalog, Prepared, RenderOptions, SetOp, new_event_id};
use crate::secret::{self, ExposeSecret, SecretString};
use crate::signature::{self, Rejection, Signer};
use crate::{http, output, runtime};

/// Where webhook secrets come from when no `--secret-file` is given.
pub const SECRET_ENV: &str = "STRIPE_WEBHOOK_SECRET";

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List the event types that have a template
    List(ListArgs),
    /// Render and sign an event; print {id, type, header, body}
    Sign(SignArgs),
    /// Render, sign and POST an event (or many: load mode)
    Send(SendArgs),
    /// Verify a Stripe-Signature header against a body
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Extra templates (`<type>.json`), adding to or overriding the embedded ones
    #[arg(long, value_name = "DIR")]
    pub fixtures_dir: Option<PathBuf>,
}

/// Webhook signing secrets: files (repeatable, one `v1=` each) or STRIPE_WEBHOOK_SECRET.
#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// File holding a webhook signing secret (whsec_…); repeat to sign with several
    #[arg(long = "secret-file", value_name = "FILE")]
    pub secret_files: Vec<PathBuf>,
}

impl SecretArgs {
    pub fn load(&self) -> Result<Vec<SecretString>> {
        secret::webhook_secrets(&self.secret_files, SECRET_ENV)
    }

    pub fn signers(&self) -> Result<Vec<Signer>> {
        Ok(signers(&self.load()?))
    }
}

pub fn signers(secrets: &[SecretString]) -> Vec<Signer> {
    secrets
        .iter()
        .map(|s| Signer::new(s.expose_secret().as_bytes()))
        .collect()
}

#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// Event type, for example checkout.session.completed
    pub event_type: String,
    /// Override a field by dotted path; the value parses as JSON, else it is a string (repeatable)
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<SetOp>,
    /// Allow --set to create paths the template does not have
    #[arg(long)]
    pub create_path: bool,
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
    pub fn prepare(&self) -> Result<Prepared> {
        let catalog = Catalog::load(self.fixtures_dir.as_deref())?;
        let opts = RenderOptions {
            sets: self.sets.clone(),
            create_path: self.create_path,
            account: self.account.clone(),
        };
        catalog.prepare(&self.event_type, &opts)
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
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Per-request timeout in seconds
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    #[command(flatten)]
    pub load: crate::load::LoadArgs,
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
    /// Accepted clock difference in seconds
    #[arg(long, default_value_t = signature::DEFAULT_TOLERANCE)]
    pub tolerance: i64,
    /// Verify as if it were this unix time (default: now)
    #[arg(long, value_name = "UNIX")]
    pub now: Option<i64>,
}

pub fn run(ctx: &Ctx, cmd: EventsCommand) -> Result<()> {
    match cmd {
        EventsCommand::List(args) => list(&args),
        EventsCommand::Sign(args) => sign(&args),
        EventsCommand::Send(args) => {
            if args.load.is_load() {
                runtime::block_on(crate::load::run(ctx, args))
            } else {
                runtime::block_on(send_one(args))
            }
        }
        EventsCommand::Verify(args) => verify(&args),
    }
}

fn list(args: &ListArgs) -> Result<()> {
    let catalog = Catalog::load(args.fixtures_dir.as_deref())?;
    if output::mode().json {
        output::json(&json!({ "types": catalog.types().collect::<Vec<_>>() }));
    } else {
        for t in catalog.types() {
            output::line(t);
        }
    }
    Ok(())
}

/// One rendered and signed event.
#[derive(Debug, Clone)]
pub struct SignedEvent {
    pub id: String,
    pub event_type: String,
    pub timestamp: i64,
    pub body: String,
    pub header: String,
}

/// Renders an event (fresh id and `created` unless pinned) and signs it with every signer.
pub fn sign_event(
    prepared: &Prepared,
    signers: &[Signer],
    id: Option<&str>,
    timestamp: Option<i64>,
) -> SignedEvent {
    let id = id.map_or_else(new_event_id, str::to_owned);
    let timestamp = timestamp.unwrap_or_else(signature::unix_now);
    let body = prepared.body(&id, timestamp);
    let header = signature::header(timestamp, body.as_bytes(), signers);
    SignedEvent {
        id,
        event_type: prepared.event_type.clone(),
        timestamp,
        body,
        header,
    }
}

fn sign(args: &SignArgs) -> Result<()> {
    let signers = args.secrets.signers()?;
    let prepared = args.render.prepare()?;
    let event = sign_event(
        &prepared,
        &signers,
        args.render.id.as_deref(),
        args.render.timestamp,
    );
    if args.out_body.is_none() && args.out_header.is_none() {
        // Printed as-is: `body` must round-trip byte for byte, so no pretty-printing here.
        let doc = json!({ "id": event.id, "type": event.event_type, "header": event.header, "body": event.body });
        println!("{doc}");
        return Ok(());
    }
    if let Some(path) = &args.out_body {
        write_plain(path, event.body.as_bytes())?;
    }
    if let Some(path) = &args.out_header {
        write_plain(path, event.header.as_bytes())?;
    }
    let doc = json!({
        "id": event.id,
        "type": event.event_type,
        "body_file": args.out_body,
        "header_file": args.out_header,
        "header": if args.out_header.is_none() { Some(&event.header) } else { None },
    });
    if output::mode().json {
        output::json(&doc);
    } else {
        output::line(format!("signed {} {}", event.event_type, event.id));
        if let Some(p) = &args.out_body {
            output::line(format!("body   -> {}", p.display()));
        }
        match &args.out_header {
            Some(p) => output::line(format!("header -> {}", p.display())),
            None => output::line(format!("header: {}", event.header)),
        }
    }
    Ok(())
}

fn write_plain(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes)
        .map_err(|e| Error::usage(format!("cannot write {}: {e}", path.display())))
}

async fn send_one(args: SendArgs) -> Result<()> {
    let signers = args.secrets.signers()?;
    let prepared = args.render.prepare()?;
    let client = http::client(Duration::from_secs_f64(args.timeout))?;
    let event = sign_event(
        &prepared,
        &signers,
        args.render.id.as_deref(),
        args.render.timestamp,
    );
    let started = Instant::now();
    let response = client
        .post(&args.to)
        .header("Content-Type", "application/json")
        .header("Stripe-Signature", &event.header)
        .body(event.body.clone())
        .send()
        .await
        .map_err(|e| http::send_error("POST", &args.to, &e))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let answer = http::excerpt(&text, 300);
    if output::mode().json {
        output::json(&json!({
            "id": event.id, "type": event.event_type, "to": args.to,
            "status": status.as_u16(), "ok": status.is_success(), "ms": ms, "answer": answer,
        }));
    } else {
        output::line(format!(
            "{} {} -> {} in {ms:.1} ms",
            event.event_type, event.id, status
        ));
        if !answer.is_empty() {
            output::line(format!("answer: {answer}"));
        }
    }
    if status.is_success() {
        Ok(())
    } else {
        Err(Error::failed(format!("receiver answered {status}")))
    }
}

fn verify(args: &VerifyArgs) -> Result<()> {
    let signers = args.secrets.signers()?;
    let header = match (&args.header, &args.header_file) {
        (Some(h), _) => h.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| Error::usage(format!("cannot read header file {}: {e}", f.display())))?,
        (None, None) => unreachable!("clap requires one"),
    };
    let body = std::fs::read(&args.body_file).map_err(|e| {
        Error::usage(format!(
            "cannot read body file {}: {e}",
            args.body_file.display()
        ))
    })?;
    let now = args.now.unwrap_or_else(signature::unix_now);
    let verdict = signature::verify(&header, &body, &signers, args.tolerance, now);
    if let Err(Rejection::Malformed(why)) = &verdict {
        return Err(Error::usage(format!(
            "malformed Stripe-Signature header: {why}"
        )));
    }
    if output::mode().json {
        output::json(&match &verdict {
            Ok(t) => json!({ "valid": true, "timestamp": t }),
            Err(r) => json!({ "valid": false, "reason": r.to_string() }),
        });
    }
    match verdict {
        Ok(t) => {
            output::line(format!("valid (signed at {t})"));
            Ok(())
        }
        Err(reason) => Err(Error::failed(format!("invalid: {reason}"))),
    }
}
