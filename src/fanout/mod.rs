//! `stripe-ops fanout`: one Stripe listener, many receivers, nothing lost.
//!
//! An event is verified (optionally) and handed at once to one worker per target (`deliver`)
//! while it is written durably to the spool; the answer to the sender waits for the spool and
//! carries the first attempt of each target. SIGHUP reloads the targets; SIGTERM and Ctrl-C stop taking
//! events, let in-flight deliveries finish, and exit.

pub mod backoff;
pub mod deliver;
pub mod relay;
pub mod spool;
pub mod targets;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use axum::serve::ListenerExt;
use serde_json::json;
use tokio::sync::watch;

use crate::cli::Ctx;
use crate::config::{self, FanoutConfig};
use crate::error::{Error, Result, ResultExt};
use crate::output;
use crate::secret::{self, ExposeSecret};
use crate::signature::{self, Signer};
use backoff::{Backoff, parse_duration};
use deliver::{DeliveryOptions, Hub};
use targets::TargetSpec;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 stopped by SIGTERM, 2 bad flags or config, 3 cannot listen \
    or open the spool, 130 stopped by Ctrl-C."
)]
pub struct FanoutArgs {
    /// Address to listen on (port 0 picks a free one; see --json). Default: [fanout] listen, else 127.0.0.1:8787
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// A receiver: NAME=URL (repeatable); more come from [[fanout.target]] in stripe-ops.toml
    #[arg(long = "target", value_name = "NAME=URL", value_parser = targets::parse_pair)]
    pub targets: Vec<(String, String)>,
    /// Re-sign events for target NAME with the webhook secret in FILE (repeatable)
    #[arg(long = "target-secret-file", value_name = "NAME=FILE", value_parser = targets::parse_pair)]
    pub target_secrets: Vec<(String, String)>,
    /// Verify incoming signatures with the secret in FILE (repeatable: any may match); 401 otherwise
    #[arg(long = "verify-secret-file", value_name = "FILE")]
    pub verify_secret_files: Vec<PathBuf>,
    /// Signature timestamp tolerance for --verify-secret-file, in seconds
    #[arg(long, default_value_t = signature::DEFAULT_TOLERANCE, value_name = "SECS")]
    pub tolerance: i64,
    /// Spool folder. Default: [fanout] spool, else ./fanout-spool
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Do not fsync the spool: events survive a crash of the relay, not of the machine
    #[arg(long)]
    pub no_fsync: bool,
    /// Give up on an event for a target after this long (3d, 12h, 30m, 45s, 250ms)
    #[arg(long, default_value = "3d", value_parser = parse_duration, value_name = "AGE")]
    pub max_age: Duration,
    /// First retry delay; it doubles on each failure, with jitter
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DELAY")]
    pub retry_base: Duration,
    /// Longest retry delay
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DELAY")]
    pub retry_max: Duration,
    /// Timeout of one delivery attempt
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "TIMEOUT")]
    pub timeout: Duration,
    /// Deliveries in flight at once per healthy target (a failing one gets one at a time, in order)
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub in_flight: u16,
    /// How long the answer to the sender waits for the targets' first attempts
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "WAIT")]
    pub summary_wait: Duration,
    /// Path that receives events. Default: [fanout] path, else /webhook
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Accept self-signed or otherwise invalid TLS certificates of targets (local testing only)
    #[arg(long)]
    pub insecure: bool,
}

/// Everything the relay needs, resolved.
pub struct RelayOptions {
    pub listen: String,
    pub path: String,
    pub spool: PathBuf,
    pub fsync: bool,
    pub targets: Vec<TargetSpec>,
    pub verify: Vec<Signer>,
    pub tolerance: i64,
    pub summary_wait: Duration,
    pub delivery: DeliveryOptions,
}

/// A running relay (also used in-process by the benchmark).
pub struct Relay {
    /// `http://ADDR` of the listener.
    pub url: String,
    /// Where to POST events.
    pub webhook_url: String,
    /// Events found in the spool at start (delivered from now on).
    pub recovered: usize,
    pub hub: Hub,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Opens the spool, starts the workers and the HTTP listener.
pub async fn start(opts: RelayOptions) -> Result<Relay> {
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .or_external(format!("cannot listen on {}", opts.listen))?;
    let addr = listener.local_addr().or_external("listener address")?;
    let (spool, recovered) = spool::Spool::open(&opts.spool, opts.fsync)
        .map_err(|e| Error::external(format!("cannot open spool {}: {e}", opts.spool.display())))?;
    for bad in &recovered.unreadable {
        output::warn(format!(
            "spool: {bad} holds an unreadable record; what follows it was copied to {bad}.bad"
        ));
    }
    if !recovered.discarded.is_empty() {
        output::warn(format!(
            "spool: skipped a record cut short by a crash (never acknowledged) at the end of {}",
            recovered.discarded.join(", ")
        ));
    }
    let spool = Arc::new(spool);
    let recovered_count = recovered.events.len();
    let hub = Hub::start(spool.clone(), recovered, opts.targets, opts.delivery)?;
    let url = format!("http://{addr}");
    let state = Arc::new(relay::RelayState {
        hub: hub.clone(),
        spool,
        verify: opts.verify,
        tolerance: opts.tolerance,
        summary_wait: opts.summary_wait,
        started: SystemTime::now(),
        received: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
    });
    let app = relay::router(&opts.path, state);
    let (stop, mut stopped) = watch::channel(false);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    Ok(Relay {
        webhook_url: crate::http::join(&url, &opts.path),
        url,
        recovered: recovered_count,
        hub,
        stop,
        server,
    })
}

impl Relay {
    /// Stops taking events, answers the requests in flight, lets every target finish its
    /// attempts in flight, saves the cursors, deletes delivered segments, and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        self.hub.shutdown().await;
    }
}

pub async fn run(ctx: &Ctx, args: FanoutArgs) -> Result<()> {
    let config = ctx.config()?;
    let file = config.fanout().cloned().unwrap_or_default();
    let opts = options(&args, &file)?;
    let (path, spool_dir) = (opts.path.clone(), opts.spool.clone());
    let resigned: Vec<serde_json::Value> = opts
        .targets
        .iter()
        .map(|t| json!({"name": t.name, "url": t.url, "resigned": t.signer.is_some()}))
        .collect();
    let signals = Signals::install()?;
    let relay = start(opts).await?;
    announce(&relay, &path, &spool_dir, resigned);
    let result = signals.serve(ctx, &args, &relay).await;
    log("stopping: finishing deliveries in flight".to_owned());
    relay.shutdown().await;
    log("stopped".to_owned());
    result
}

fn announce(relay: &Relay, path: &str, spool: &std::path::Path, targets: Vec<serde_json::Value>) {
    if output::mode().json {
        let line = json!({
            "listen": relay.url,
            "webhook": relay.webhook_url,
            "path": path,
            "health": format!("{}/health", relay.url),
            "status": format!("{}/status", relay.url),
            "spool": spool.display().to_string(),
            "recovered": relay.recovered,
            "targets": targets,
        });
        println!("{}", secret::scrub(&line.to_string()));
    } else {
        let names: Vec<String> = targets
            .iter()
            .map(|t| {
                let name = t["name"].as_str().unwrap_or_default();
                if t["resigned"] == true {
                    format!("{name} (re-signed)")
                } else {
                    name.to_owned()
                }
            })
            .collect();
        output::line(format!(
            "fanout listening on {} -> {}; spool {} ({} events recovered)",
            relay.webhook_url,
            names.join(", "),
            spool.display(),
            relay.recovered
        ));
    }
}

/// The signals the relay handles, installed before the start line so that none is missed.
#[cfg(unix)]
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind, name| signal(kind).or_external(format!("cannot handle {name}"));
        Ok(Self {
            hup: install(SignalKind::hangup(), "SIGHUP")?,
            term: install(SignalKind::terminate(), "SIGTERM")?,
            int: install(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    /// Serves until SIGTERM (Ok) or Ctrl-C (interrupted); SIGHUP reloads the targets.
    async fn serve(mut self, ctx: &Ctx, args: &FanoutArgs, relay: &Relay) -> Result<()> {
        loop {
            tokio::select! {
                _ = self.hup.recv() => reload(ctx, args, &relay.hub),
                _ = self.term.recv() => return Ok(()),
                _ = self.int.recv() => return Err(Error::interrupted("interrupted")),
            }
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Result<Self> {
        Ok(Self)
    }

    async fn serve(self, _ctx: &Ctx, _args: &FanoutArgs, _relay: &Relay) -> Result<()> {
        let _ = tokio::signal::ctrl_c().await;
        Err(Error::interrupted("interrupted"))
    }
}

/// Re-reads the config file and the secret files; a bad config keeps the current targets.
fn reload(ctx: &Ctx, args: &FanoutArgs, hub: &Hub) {
    let specs = config::load(ctx.global.config.as_deref()).and_then(|c| {
        let file = c.fanout().cloned().unwrap_or_default();
        resolve_targets(args, &file)
    });
    match specs.and_then(|s| hub.apply(s)) {
        Ok(c) => log(format!(
            "reloaded: added [{}], removed [{}], changed [{}]; targets now {}",
            c.added.join(", "),
            c.removed.join(", "),
            c.changed.join(", "),
            hub.target_names().join(", ")
        )),
        Err(e) => log(format!(
            "reload FAILED, keeping the current targets: {}",
            e.message()
        )),
    }
}

fn resolve_targets(args: &FanoutArgs, file: &FanoutConfig) -> Result<Vec<TargetSpec>> {
    let specs = targets::merge(&args.targets, &args.target_secrets, &file.targets)?
        .iter()
        .map(targets::resolve)
        .collect::<Result<Vec<_>>>()?;
    let resigned: Vec<&str> = specs
        .iter()
        .filter(|s| s.signer.is_some())
        .map(|s| s.name.as_str())
        .collect();
    if !resigned.is_empty() && args.verify_secret_files.is_empty() {
        // Re-signing unverified input would turn anyone's POST into an event the target trusts.
        return Err(Error::usage(format!(
            "target(s) {} re-sign events with their own secret, so incoming events must be \
             verified: give --verify-secret-file",
            resigned.join(", ")
        )));
    }
    Ok(specs)
}

fn options(args: &FanoutArgs, file: &FanoutConfig) -> Result<RelayOptions> {
    let path = args
        .path
        .clone()
        .or_else(|| file.path.clone())
        .unwrap_or_else(|| "/webhook".into());
    if !path.starts_with('/') || path == "/health" || path == "/status" {
        return Err(Error::usage(format!(
            "--path {path:?} must start with / and not be /health or /status"
        )));
    }
    if args.retry_base.is_zero() || args.retry_max < args.retry_base {
        return Err(Error::usage(
            "--retry-base must be above zero and at most --retry-max",
        ));
    }
    let verify = args
        .verify_secret_files
        .iter()
        .map(|f| {
            let s = secret::read_file(f, "verify webhook secret")?;
            secret::warn_unless_webhook_secret(&s);
            Ok(Signer::new(s.expose_secret().as_bytes()))
        })
        .collect::<Result<Vec<_>>>()?;
    let targets = resolve_targets(args, file)?;
    if args.insecure {
        output::warn("--insecure: TLS certificates of targets are not checked");
    }
    let client = crate::http::builder(args.timeout)
        .danger_accept_invalid_certs(args.insecure)
        .build()
        .or_external("cannot build HTTP client")?;
    Ok(RelayOptions {
        listen: args
            .listen
            .clone()
            .or_else(|| file.listen.clone())
            .unwrap_or_else(|| "127.0.0.1:8787".into()),
        path,
        spool: args
            .spool
            .clone()
            .or_else(|| file.spool.clone())
            .unwrap_or_else(|| PathBuf::from("fanout-spool")),
        fsync: !args.no_fsync,
        targets,
        verify,
        tolerance: args.tolerance,
        summary_wait: args.summary_wait,
        delivery: DeliveryOptions {
            backoff: Backoff {
                base: args.retry_base,
                max: args.retry_max,
            },
            max_age: args.max_age,
            in_flight: args.in_flight.into(),
            client,
        },
    })
}

/// One log line on stderr, with a UTC timestamp (silent with --quiet).
pub(crate) fn log(line: String) {
    output::status(format!("{} {line}", rfc3339(SystemTime::now())));
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
