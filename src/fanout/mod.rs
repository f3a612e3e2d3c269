//! `stripe-ops fanout`: one Stripe listener, many receivers, nothing lost.
//!
//! An event is verified (optionally) and judged by the targets' routes; the intake appends it
//! to the spool and hands it at once to every target's worker (`deliver`) through the shared
//! feed (`feed`), each target reading at its own pace; the answer to the sender waits for the
//! fsync that covers the event, or only until every target has it (`Hub::acknowledged`), and
//! carries the first attempt of each target that keeps up.
//! SIGHUP reloads the targets; SIGTERM and Ctrl-C stop taking events, let in-flight deliveries
//! finish, and exit.

pub mod attempt;
mod cursors;
pub mod deliver;
pub mod feed;
mod log;
pub mod recover;
pub mod relay;
pub mod route;
pub mod spool;
pub mod sqs;
pub mod targets;

pub use log::Log;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::error::{Error, Result, ResultExt};
use crate::printer::{Printer, Report};
use crate::webhook::signature::Signer;
use deliver::{Changes, DeliveryOptions, Hub};
use targets::TargetSpec;

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
    /// Where the relay logs (one line per event and per target outcome).
    pub out: Printer,
    /// How long a client may take to send headers or stay idle (`server::IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
    /// The API version the targets expect (`--api-version`): a snapshot event naming another
    /// is forwarded unchanged, and logged and counted.
    pub api_version: Option<String>,
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
    /// What the HTTP side shares: the verify secrets a reload replaces.
    state: Arc<relay::RelayState>,
    /// Each target's name, URL and whether it is re-signed, as started.
    targets: Vec<Value>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

/// Opens the spool, starts the workers and the HTTP listener.
pub async fn start(opts: RelayOptions) -> Result<Relay> {
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .or_external(format!("cannot listen on {}", opts.listen))?;
    let addr = listener.local_addr().or_external("listener address")?;
    let logger = Log::new(&opts.out);
    let (spool, recovered) = spool::Spool::open_with(
        &opts.spool,
        opts.fsync,
        spool::SEGMENT_BYTES,
        logger.clone(),
    )
    .map_err(|e| Error::external(format!("cannot open spool {}: {e}", opts.spool.display())))?;
    for q in &recovered.quarantined {
        opts.out.warn(format!(
            "spool: events/{}: {} bytes at offset {} are not a readable event ({}); kept in events/{}, not delivered",
            q.segment, q.bytes, q.offset, q.why, q.kept_in
        ));
    }
    for w in &recovered.warnings {
        opts.out.warn(w);
    }
    let quarantined = (
        recovered.quarantined.len(),
        recovered.quarantined.iter().map(|q| q.bytes).sum::<usize>(),
    );
    let spool = Arc::new(spool);
    let recovered_count = recovered.events.len();
    let targets = opts
        .targets
        .iter()
        .map(|t| json!({"name": t.name, "url": t.url, "resigned": t.signer.is_some()}))
        .collect();
    let hub = Hub::start(
        spool.clone(),
        recovered,
        opts.targets,
        opts.delivery,
        logger,
    )?;
    let url = format!("http://{addr}");
    let state = Arc::new(relay::RelayState {
        hub: hub.clone(),
        spool,
        verify: std::sync::RwLock::new(opts.verify.into()),
        tolerance: opts.tolerance,
        summary_wait: opts.summary_wait,
        started: SystemTime::now(),
        received: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        filtered: AtomicU64::new(0),
        quarantined,
        api_version: opts.api_version,
        other_version: AtomicU64::new(0),
    });
    let app = relay::router(&opts.path, state.clone());
    let direct = relay::direct(&opts.path, state.clone());
    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(crate::server::serve_direct(
        listener,
        app,
        Some(direct),
        stopped,
        opts.idle_timeout,
    ));
    Ok(Relay {
        webhook_url: crate::http::join(&url, &opts.path),
        url,
        recovered: recovered_count,
        hub,
        state,
        targets,
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

impl Relay {
    /// Applies the verify secrets as the files say now (SIGHUP): logged; a file that is
    /// missing, empty or not a secret keeps every current secret, and says why on stderr.
    pub fn reload_verify(&self, signers: Result<Vec<Signer>>) {
        let log = self.hub.log();
        match signers {
            Ok(s) => {
                let n = s.len();
                *self.state.verify.write().unwrap_or_else(|e| e.into_inner()) = s.into();
                log.line(format!("reloaded: {n} verify secret(s) re-read"));
            }
            Err(e) => log.line(format!(
                "reload FAILED, keeping the current verify secrets: {}",
                e.message()
            )),
        }
    }

    /// Applies a new set of targets (SIGHUP): logged, and on error the current ones stay.
    pub fn reload(&self, specs: Result<Vec<TargetSpec>>) {
        let log = self.hub.log();
        match specs.and_then(|s| self.hub.apply(s)) {
            Ok(c) => log.line(describe_changes(&c, &self.hub.target_names())),
            Err(e) => log.line(format!(
                "reload FAILED, keeping the current targets: {}",
                e.message()
            )),
        }
    }

    /// The start line: where to send events, the spool, the targets.
    pub fn started(&self, path: &str, spool: &std::path::Path) -> Started {
        Started {
            doc: json!({
                "listen": self.url,
                "webhook": self.webhook_url,
                "path": path,
                "health": format!("{}/health", self.url),
                "status": format!("{}/status", self.url),
                "spool": spool.display().to_string(),
                "recovered": self.recovered,
                "targets": self.targets,
            }),
        }
    }
}

fn describe_changes(c: &Changes, now: &[String]) -> String {
    format!(
        "reloaded: added [{}], removed [{}], changed [{}]; targets now {}",
        c.added.join(", "),
        c.removed.join(", "),
        c.changed.join(", "),
        now.join(", ")
    )
}

/// The relay's start line: one JSON line with `--json` (scripts read the port from it), else
/// one line for people.
pub struct Started {
    pub doc: Value,
}

impl Started {
    pub fn print(&self, out: &Printer) {
        if out.json_mode() {
            out.json_line(&self.doc);
            return;
        }
        let names: Vec<String> = self.doc["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let name = t["name"].as_str().unwrap_or_default();
                if t["resigned"] == true {
                    format!("{name} (re-signed)")
                } else {
                    name.to_owned()
                }
            })
            .collect();
        if let Some(queues) = self.doc["from_sqs"].as_array() {
            let queues: Vec<&str> = queues.iter().filter_map(Value::as_str).collect();
            out.line(format!(
                "fanout consuming {} -> {}; status {}",
                queues.join(", "),
                names.join(", "),
                self.doc["status"].as_str().unwrap_or_default()
            ));
            return;
        }
        out.line(format!(
            "fanout listening on {} -> {}; spool {} ({} events recovered)",
            self.doc["webhook"].as_str().unwrap_or_default(),
            names.join(", "),
            self.doc["spool"].as_str().unwrap_or_default(),
            self.doc["recovered"]
        ));
    }
}

/// A relay that stopped: nothing more to print (its start line was the document).
pub struct Stopped;

impl Report for Stopped {
    fn json(&self) -> Value {
        Value::Null
    }
    fn human(&self, _: &Printer) -> Vec<String> {
        Vec::new()
    }
}

/// An event id as a log line shows it: Stripe's are about 30 characters; one from outside may
/// be anything, so a long one is cut (with its length said) and control characters escaped.
pub fn shown_id(id: Option<&str>) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 64;
    match id {
        None => "(no id)".into(),
        Some(id) if id.chars().count() > MAX => format!(
            "{}… ({} characters)",
            crate::printer::escape_controls(&id.chars().take(MAX).collect::<String>()),
            id.chars().count()
        )
        .into(),
        Some(id) => crate::printer::escape_controls(id),
    }
}

/// The relay's async worker threads: half the cores, at least one. Its spool has a thread of
/// its own (the fsync the answers wait for), and an event whose answer waits for it passes
/// there and back; on 2 cores, a second async worker cost more in waking and work-stealing
/// (futex calls, context switches) than it brought: `cargo bench --bench fanout`, same build,
/// 1 vs 2 workers: CPU per event 131 vs 164–174 µs at concurrency 1, 59–60 vs 65–66 µs at 16.
/// `--from-sqs` (no spool threads) runs on as many: on 2 cores, one worker took 122-132 µs of
/// CPU per message instead of 141-152 with a full queue, 101 instead of 126 with messages sent
/// while it ran (`scripts/bench-sqs.sh`, interleaved pairs; moto's pace, about 30 messages/s
/// drained, the same in both).
pub fn async_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}
