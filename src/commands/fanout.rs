//! `stripe-ops fanout`: one Stripe listener relayed durably to many receivers (core: `fanout`).
//! SIGHUP reloads the targets; SIGTERM ends the relay (exit 0), Ctrl-C too (exit 130).

use std::path::PathBuf;

use super::Ctx;
use crate::config::{self, FanoutConfig};
use crate::duration::{self, Span};
use crate::error::{Error, Result, ResultExt};
use crate::fanout::deliver::DeliveryOptions;
use crate::fanout::route;
use crate::fanout::targets::{self, TargetFlags, TargetSpec};
use crate::fanout::{self, RelayOptions, Stopped};
use crate::printer::{Printer, Report};
use crate::retry::Backoff;
use crate::runtime;
use crate::secret::{self, ExposeSecret};
use crate::shutdown::{self, Shutdown, Signal};
use crate::webhook::signature::Signer;

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
    /// Send target NAME only these event types (globs, comma-separated; repeatable)
    #[arg(long = "target-events", value_name = "NAME=GLOB,...", value_parser = route::parse_events_flag)]
    pub target_events: Vec<(String, Vec<String>)>,
    /// Send target NAME only events whose value at PATH is VALUE (repeat for more values or
    /// paths: any value of a path, every path)
    #[arg(long = "target-match", value_name = "NAME=PATH=VALUE", value_parser = route::parse_match_flag)]
    pub target_matches: Vec<(String, String, String)>,
    /// Verify incoming signatures with the secret in FILE (repeatable: any may match); 401 otherwise
    #[arg(long = "verify-secret-file", value_name = "FILE")]
    pub verify_secret_files: Vec<PathBuf>,
    /// Signature timestamp tolerance for --verify-secret-file (300, 5m)
    #[arg(long, default_value = "300", value_name = "DURATION")]
    pub tolerance: Span,
    /// The API version the targets' Stripe libraries expect: events naming another are
    /// forwarded unchanged (a relay cannot re-render them), and logged and counted in /status.
    /// Pin the Stripe endpoint that feeds the relay to this version to avoid them
    #[arg(long, value_name = "VERSION", value_parser = super::api_version_arg)]
    pub api_version: Option<String>,
    /// Spool folder. Default: [fanout] spool, else ./fanout-spool
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Do not fsync the spool: events survive a crash of the relay, not of the machine
    #[arg(long)]
    pub no_fsync: bool,
    /// Most disk the spool's segment files may take (512MiB, 2GiB; at least 16MiB): beyond it
    /// the targets furthest behind give up their oldest events, a 4 MiB segment at a time
    /// (logged as GAVE UP, counted in /status), so that one stalled target cannot fill the disk
    /// and stop the others. Default: [fanout] max_spool, else no limit
    #[arg(long, value_name = "SIZE", value_parser = fanout::spool::parse_max_spool)]
    pub max_spool: Option<u64>,
    /// Give up on an event for a target after this long (3d, 12h, 30m, 45s, 250ms)
    #[arg(long, default_value = "3d", value_parser = duration::positive, value_name = "AGE")]
    pub max_age: Span,
    /// First retry delay; it doubles on each failure, with jitter
    #[arg(long, default_value = "1s", value_parser = duration::positive, value_name = "DELAY")]
    pub retry_base: Span,
    /// Longest retry delay
    #[arg(long, default_value = "5m", value_parser = duration::positive, value_name = "DELAY")]
    pub retry_max: Span,
    /// Timeout of one delivery attempt
    #[arg(long, default_value = "10s", value_parser = duration::positive, value_name = "TIMEOUT")]
    pub timeout: Span,
    /// Deliveries in flight at once per healthy target (a failing one gets one at a time, in order)
    #[arg(long, default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub in_flight: u16,
    /// How long the answer to the sender waits for the targets' first attempts (0 answers at once)
    #[arg(long, default_value = "5s", value_name = "WAIT")]
    pub summary_wait: Span,
    #[command(flatten)]
    pub server: super::ServerFlags,
    /// Path that receives events. Default: [fanout] path, else /webhook
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Accept self-signed or otherwise invalid TLS certificates of targets (local testing only;
    /// --skip-verify is the Stripe CLI's name for it)
    #[arg(long, visible_alias = "skip-verify")]
    pub insecure: bool,
    /// Consume Stripe events from this SQS queue instead of listening for them (repeatable):
    /// EventBridge events of Stripe's event destination, or raw Stripe events. SQS keeps them,
    /// so many relays may consume one queue; every target needs --target-secret-file
    #[arg(long = "from-sqs", value_name = "QUEUE_URL")]
    pub from_sqs: Vec<String>,
    /// Target NAME's own SQS queue (repeatable; `queue = "…"` in [[fanout.target]]): it gets
    /// events from that queue only. Implies the --from-sqs mode
    #[arg(long = "target-queue", value_name = "NAME=QUEUE_URL", value_parser = targets::parse_pair)]
    pub target_queues: Vec<(String, String)>,
}

pub fn run(ctx: &Ctx, args: FanoutArgs) -> Result<Box<dyn Report>> {
    let file = ctx.config()?.fanout().cloned().unwrap_or_default();
    if from_sqs(&args, &file) {
        return run_from_sqs(ctx, &args, &file);
    }
    let opts = options(&args, &file, &ctx.out)?;
    let (path, spool_dir) = (opts.path.clone(), opts.spool.clone());
    let stopped = Box::new(Stopped) as Box<dyn Report>;
    let workers = Some(fanout::async_workers());
    runtime::serve_on(
        workers,
        false,
        &[Signal::Terminate],
        stopped,
        |stop| async move {
            let relay = fanout::start(opts).await?;
            let hangups = Hangups::install()?;
            relay.started(&path, &spool_dir).print(&ctx.out);
            // SIGHUP reloads the targets from the config file and the secret files.
            let signal = hangups
                .serve(&stop, || {
                    relay.reload(reloaded_targets(ctx, &args));
                    if !args.verify_secret_files.is_empty() {
                        relay.reload_verify(verify_signers(&args, None));
                    }
                })
                .await;
            let log = relay.hub.log();
            log.line("stopping: finishing deliveries in flight");
            relay.shutdown().await;
            log.line("stopped");
            match signal {
                Signal::Terminate => Ok(Box::new(Stopped) as Box<dyn Report>),
                Signal::Interrupt | Signal::Hangup => Err(shutdown::interrupted(signal, None)),
            }
        },
    )
}

/// SIGHUP, listened for from before the start line is printed: one that came earlier would
/// meet the default action and end the process.
struct Hangups(#[cfg(unix)] tokio::signal::unix::Signal);

impl Hangups {
    fn install() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self(
                signal(SignalKind::hangup()).or_external("cannot handle SIGHUP")?,
            ))
        }
        #[cfg(not(unix))]
        Ok(Self())
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        self.0.recv().await;
        #[cfg(not(unix))]
        std::future::pending::<()>().await;
    }

    /// Calls `reload` on each SIGHUP until a stop request, and returns its signal.
    async fn serve(mut self, stop: &Shutdown, mut reload: impl FnMut()) -> Signal {
        loop {
            tokio::select! {
                _ = self.recv() => reload(),
                s = stop.wait() => return s,
            }
        }
    }
}

/// The secrets of `--verify-secret-file`. At start (`out` given) a secret outside Stripe's
/// `whsec_` form is a warning; on a reload it is refused, since the current secrets keep working.
fn verify_signers(args: &FanoutArgs, out: Option<&Printer>) -> Result<Vec<Signer>> {
    args.verify_secret_files
        .iter()
        .map(|f| {
            let s = secret::read_file(f, "verify webhook secret")?;
            match out {
                Some(out) => super::warn_unless_webhook_secrets(out, std::slice::from_ref(&s)),
                None if !secret::is_webhook_secret(&s) => {
                    return Err(Error::usage(format!(
                        "verify webhook secret file {} does not hold a whsec_ secret",
                        f.display()
                    )));
                }
                None => {}
            }
            Ok(Signer::new(s.expose_secret().as_bytes()))
        })
        .collect()
}

/// The targets as the config file and the secret files say now; a bad config is an error
/// that keeps the current targets.
fn reloaded_targets(ctx: &Ctx, args: &FanoutArgs) -> Result<Vec<TargetSpec>> {
    let config = config::load(ctx.global.config.as_deref())?;
    let file = config.fanout().cloned().unwrap_or_default();
    resolve_targets(args, &file, &ctx.out)
}

fn resolve_targets(
    args: &FanoutArgs,
    file: &FanoutConfig,
    out: &Printer,
) -> Result<Vec<TargetSpec>> {
    let flags = TargetFlags {
        targets: args.targets.clone(),
        secrets: args.target_secrets.clone(),
        queues: args.target_queues.clone(),
        events: args.target_events.clone(),
        matches: args.target_matches.clone(),
    };
    // Re-signing needs events whose origin was checked: by --verify-secret-file, or by AWS
    // for events that come from SQS.
    let verified = !args.verify_secret_files.is_empty() || from_sqs(args, file);
    targets::resolve_all(&flags, &file.targets, verified, out)
}

fn options(args: &FanoutArgs, file: &FanoutConfig, out: &Printer) -> Result<RelayOptions> {
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
    if args.retry_max < args.retry_base {
        return Err(Error::usage("--retry-base must be at most --retry-max"));
    }
    let verify = verify_signers(args, Some(out))?;
    let targets = resolve_targets(args, file, out)?;
    if args.insecure {
        out.warn("--insecure (--skip-verify): TLS certificates of targets are not checked");
    }
    let client = crate::fanout::attempt::Client::new(args.timeout.get(), args.insecure)?;
    let listen = args
        .listen
        .clone()
        .or_else(|| file.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8787".into());
    // An address that cannot be one is an input error (exit 2), as for `sandbox --listen`, not
    // a failure to listen (exit 3).
    std::net::ToSocketAddrs::to_socket_addrs(listen.as_str()).map_err(|e| {
        Error::usage(format!(
            "--listen {listen:?} is not an address to listen on ({e}); give host:port, for example 127.0.0.1:8787"
        ))
    })?;
    Ok(RelayOptions {
        listen,
        path,
        spool: args
            .spool
            .clone()
            .or_else(|| file.spool.clone())
            .unwrap_or_else(|| PathBuf::from("fanout-spool")),
        fsync: !args.no_fsync,
        targets,
        verify,
        tolerance: args.tolerance.whole_secs(),
        summary_wait: args.summary_wait.get(),
        delivery: DeliveryOptions {
            backoff: Backoff {
                base: args.retry_base.get(),
                max: args.retry_max.get(),
                jitter: true,
            },
            max_age: args.max_age.get(),
            in_flight: args.in_flight.into(),
            client,
            max_spool: max_spool(args, file)?,
        },
        out: out.clone(),
        idle_timeout: args.server.idle_timeout.get(),
        api_version: args.api_version.clone(),
    })
}

/// `--max-spool`, else `[fanout] max_spool`, else no limit.
fn max_spool(args: &FanoutArgs, file: &FanoutConfig) -> Result<Option<u64>> {
    if args.max_spool.is_some() {
        return Ok(args.max_spool);
    }
    file.max_spool
        .as_deref()
        .map(|text| {
            fanout::spool::parse_max_spool(text).map_err(|e| {
                Error::usage(format!(
                    "[fanout] max_spool {text:?} in the config file: {e}"
                ))
            })
        })
        .transpose()
}

/// Whether the relay consumes SQS queues (`--from-sqs`, or a target with its own queue).
fn from_sqs(args: &FanoutArgs, file: &FanoutConfig) -> bool {
    !args.from_sqs.is_empty()
        || !args.target_queues.is_empty()
        || file.targets.iter().any(|t| t.queue.is_some())
}

/// `--from-sqs`: the consumer (`fanout::sqs`) and a listener for `/health` and `/status`.
fn run_from_sqs(ctx: &Ctx, args: &FanoutArgs, file: &FanoutConfig) -> Result<Box<dyn Report>> {
    if args.max_spool.is_some() {
        return Err(Error::usage(
            "--max-spool does not go with --from-sqs: the relay keeps no spool, SQS keeps the events",
        ));
    }
    if !args.verify_secret_files.is_empty() {
        return Err(Error::usage(
            "--verify-secret-file does not go with --from-sqs: events from EventBridge carry no \
             Stripe signature (AWS authenticated them); each target's own secret signs them",
        ));
    }
    let relay = options(args, file, &ctx.out)?;
    let queues = fanout::sqs::assign(&args.from_sqs, &relay.targets).map_err(Error::usage)?;
    if let Some(t) = relay.targets.iter().find(|t| t.signer.is_none()) {
        return Err(Error::usage(format!(
            "target {} has no --target-secret-file: events from SQS carry no Stripe signature to \
             forward, so every target signs with its own secret",
            t.name
        )));
    }
    let stopped = Box::new(Stopped) as Box<dyn Report>;
    let workers = Some(fanout::async_workers());
    let signals = &[Signal::Terminate];
    runtime::serve_on(workers, false, signals, stopped, |stop| async move {
        let sqs = fanout::sqs::connect(crate::config::aws_region(None, None).value).await;
        let log = fanout::Log::new(&ctx.out);
        let consumer = fanout::sqs::Consumer::start(
            sqs,
            fanout::sqs::SqsOptions {
                queues,
                client: relay.delivery.client,
                in_flight: relay.delivery.in_flight,
                backoff: relay.delivery.backoff,
                log: log.clone(),
            },
        );
        let server =
            fanout::sqs::serve_status(&relay.listen, consumer.status.clone(), relay.idle_timeout)
                .await?;
        let hangups = Hangups::install()?;
        server.started().print(&ctx.out);
        // SIGHUP re-reads the targets and their secrets.
        let signal = hangups
            .serve(&stop, || {
                consumer.status.reload(reloaded_targets(ctx, args), &log)
            })
            .await;
        log.line("stopping: no more receives; finishing deliveries in flight");
        server.stop().await;
        consumer.shutdown().await;
        log.line("stopped");
        match signal {
            Signal::Terminate => Ok(Box::new(Stopped) as Box<dyn Report>),
            Signal::Interrupt | Signal::Hangup => Err(shutdown::interrupted(signal, None)),
        }
    })
}
