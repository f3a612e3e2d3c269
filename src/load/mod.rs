//! Load mode of `events send` (`--count`, `--duration`): many distinct, freshly signed events
//! over keep-alive connections, as a Stripe retry storm would deliver them.
//!
//! The hot path is cheap on purpose: the template is prepared once, the signer is keyed once, ids
//! come from a per-run random prefix and a counter (no syscall per id), each of the C workers
//! owns one keep-alive connection (`conn`, the lean HTTP/1.1 client: one write per request, the
//! answer read in the worker's own task) and one request buffer (`request`: built by the slow
//! path once per signing second, in between the id's digits and the signature spliced in
//! place), takes request numbers from an atomic counter a block at a time and records latencies
//! into its thread's HDR histogram; the histograms are merged at the end. The workers run on
//! single-threaded runtimes, one per core.

mod conn;
mod request;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::printer::{Printer, Report};
use crate::shutdown::Shutdown;
use crate::webhook::fixtures::Prepared;
use crate::webhook::signature::Signer;
use conn::{Endpoint, Failure};
use request::{Request, Template};

pub use conn::{Connection, Endpoint as Target};

/// The slowest and fastest rates accepted: below one request per 1000 s a run is not a load
/// test, and above a billion per second the rate is a typo.
const MIN_RATE: f64 = 0.001;
const MAX_RATE: f64 = 1e9;

/// `500`, `500/s` or `500/sec` requests per second; must be positive.
pub fn parse_rate(text: &str) -> std::result::Result<f64, String> {
    let number = text
        .trim()
        .trim_end_matches("/sec")
        .trim_end_matches("/s")
        .trim();
    match number.parse::<f64>() {
        Ok(r) if (MIN_RATE..=MAX_RATE).contains(&r) => Ok(r),
        _ => Err(format!(
            "expected a rate from {MIN_RATE} to {MAX_RATE:e} per second, such as 500 or 500/s, got {text:?}"
        )),
    }
}

/// What to send and how hard; validated.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    pub concurrency: usize,
    pub rate: Option<f64>,
}

/// Workers beyond this would only wait for each other (and each holds a connection).
pub const MAX_CONCURRENCY: usize = 10_000;

impl LoadPlan {
    pub fn new(
        count: Option<u64>,
        duration: Option<Duration>,
        concurrency: Option<usize>,
        rate: Option<f64>,
    ) -> Result<Self> {
        if count.is_none() && duration.is_none() {
            return Err(Error::usage(
                "load mode needs --count N or --duration D (--concurrency and --rate only shape it)",
            ));
        }
        if count == Some(0) {
            return Err(Error::usage("--count must be at least 1"));
        }
        let concurrency = concurrency.unwrap_or(1);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(Error::usage(format!(
                "--concurrency must be from 1 to {MAX_CONCURRENCY}"
            )));
        }
        if let Some(r) = rate {
            parse_rate(&r.to_string()).map_err(Error::usage)?;
        }
        let concurrency = match count {
            Some(n) => concurrency.min(usize::try_from(n).unwrap_or(usize::MAX)),
            None => concurrency,
        };
        Ok(Self {
            count,
            duration,
            concurrency,
            rate,
        })
    }

    /// When request number `i` may start, relative to the start of the run (with `--rate`).
    pub fn slot(&self, i: u64) -> Option<Duration> {
        self.rate
            .map(|r| Duration::try_from_secs_f64(i as f64 / r).unwrap_or(crate::duration::MAX))
    }
}

/// Unique event ids without a syscall each: `evt_` + a random 12-character run prefix + the
/// request number in base 36, 12 digits (24 characters after `evt_`, like Stripe's).
pub struct IdSource {
    prefix: String,
}

impl IdSource {
    pub fn new() -> Self {
        Self {
            prefix: format!("evt_{}", crate::secret::random_alnum(12)),
        }
    }

    pub fn id(&self, n: u64) -> String {
        let mut out = String::with_capacity(self.prefix.len() + 12);
        self.write_id(n, &mut out);
        out
    }

    /// `id`, written over `out`.
    pub fn write_id(&self, n: u64, out: &mut String) {
        out.clear();
        out.push_str(&self.prefix);
        out.push_str(std::str::from_utf8(&Self::digits(n)).expect("ASCII digits"));
    }

    /// The id's last 12 characters: `n` in base 36.
    fn digits(n: u64) -> [u8; 12] {
        let mut digits = [b'0'; 12];
        let mut rest = n;
        for slot in digits.iter_mut().rev() {
            *slot = b"0123456789abcdefghijklmnopqrstuvwxyz"[(rest % 36) as usize];
            rest /= 36;
        }
        digits
    }
}

impl Default for IdSource {
    fn default() -> Self {
        Self::new()
    }
}

/// The tally of one worker, and of the whole run once merged.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latency of answered requests, in microseconds.
    pub latency_us: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<&'static str, u64>,
    /// What the transport said the first time each kind of error happened.
    pub first_errors: BTreeMap<&'static str, String>,
}

impl Tally {
    pub fn new() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds"),
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            first_errors: BTreeMap::new(),
        }
    }

    pub fn answered(&mut self, status: u16, elapsed: Duration) {
        *self.statuses.entry(status).or_default() += 1;
        self.latency_us
            .saturating_record((elapsed.as_micros() as u64).max(1));
    }

    pub fn failed(&mut self, kind: &'static str, detail: impl FnOnce() -> String) {
        *self.errors.entry(kind).or_default() += 1;
        self.first_errors.entry(kind).or_insert_with(detail);
    }

    pub fn merge(&mut self, other: &Tally) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms share bounds");
        for (s, n) in &other.statuses {
            *self.statuses.entry(*s).or_default() += n;
        }
        for (k, n) in &other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        for (k, detail) in &other.first_errors {
            self.first_errors.entry(k).or_insert_with(|| detail.clone());
        }
    }

    fn answered_count(&self) -> u64 {
        self.statuses.values().sum()
    }

    fn success_count(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome of a load run, as printed (`--json` prints exactly this).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub ok: bool,
    pub event_type: String,
    pub to: String,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub requested: Option<u64>,
    pub sent: u64,
    pub answered: u64,
    pub succeeded: u64,
    pub non_2xx: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<&'static str, u64>,
    /// The first error of each kind, as the transport described it.
    pub error_examples: BTreeMap<&'static str, String>,
    pub statuses: BTreeMap<String, u64>,
    pub elapsed_s: f64,
    pub requests_per_s: f64,
    pub latency_ms: Latency,
    /// The signal that stopped the run early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

fn summarize(
    tally: &Tally,
    plan: &LoadPlan,
    event_type: &str,
    to: &str,
    elapsed: Duration,
) -> Summary {
    let h = &tally.latency_us;
    let ms = |us: u64| us as f64 / 1000.0;
    let answered = tally.answered_count();
    let succeeded = tally.success_count();
    let errors = tally.error_count();
    let sent = answered + errors;
    let secs = elapsed.as_secs_f64().max(f64::EPSILON);
    Summary {
        ok: errors == 0 && succeeded == answered && sent > 0,
        event_type: event_type.to_owned(),
        to: to.to_owned(),
        concurrency: plan.concurrency,
        rate: plan.rate,
        requested: plan.count,
        sent,
        answered,
        succeeded,
        non_2xx: answered - succeeded,
        errors,
        error_kinds: tally.errors.clone(),
        error_examples: tally.first_errors.clone(),
        statuses: tally
            .statuses
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect(),
        elapsed_s: elapsed.as_secs_f64(),
        requests_per_s: sent as f64 / secs,
        interrupted: None,
        latency_ms: if answered == 0 {
            Latency {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
                mean: 0.0,
            }
        } else {
            Latency {
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
                mean: h.mean() / 1000.0,
            }
        },
    }
}

/// Exit class of a run: 0 when every request got a 2xx; 3 when none got any answer (the receiver
/// is unreachable); 1 otherwise (some non-2xx answers or transport errors).
pub fn verdict(summary: &Summary) -> Result<()> {
    if let Some(signal) = summary.interrupted {
        return Err(Error::interrupted(format!(
            "interrupted ({signal}) after {} requests",
            summary.sent
        )));
    }
    if summary.ok {
        return Ok(());
    }
    if summary.answered == 0 {
        return Err(Error::external(format!(
            "no request to {} got an answer ({} errors: {})",
            summary.to,
            summary.errors,
            kinds(&summary.error_kinds)
        )));
    }
    Err(Error::failed(format!(
        "{} of {} requests were not accepted ({} non-2xx, {} errors)",
        summary.non_2xx + summary.errors,
        summary.sent,
        summary.non_2xx,
        summary.errors
    )))
}

fn kinds(map: &BTreeMap<&'static str, u64>) -> String {
    map.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything a worker shares with the others.
struct Shared {
    template: Template,
    plan: LoadPlan,
    next: AtomicU64,
    /// Request numbers claimed at once (`block_size`).
    block: u64,
    done: AtomicU64,
    /// Set by a stop request: no new request starts.
    stopped: AtomicBool,
    started: tokio::time::Instant,
}

impl Shared {
    /// The next request number, or `None` when the run is over (count reached, time up or
    /// stopped). Numbers are taken from the shared counter `block` at a time.
    fn claim(&self, claims: &mut Claims) -> Option<u64> {
        if self.stopped.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(d) = self.plan.duration
            && self.started.elapsed() >= d
        {
            return None;
        }
        if claims.next == claims.end {
            claims.report(self);
            let i = self.next.fetch_add(self.block, Ordering::Relaxed);
            claims.end = match self.plan.count {
                Some(n) if i >= n => return None,
                Some(n) => i.saturating_add(self.block).min(n),
                None => i.saturating_add(self.block),
            };
            claims.next = i;
        }
        claims.next += 1;
        Some(claims.next - 1)
    }
}

/// A worker's claimed request numbers (`next..end`) and how many it finished since it last
/// told the progress counter.
#[derive(Default)]
struct Claims {
    next: u64,
    end: u64,
    finished: u64,
}

impl Claims {
    fn report(&mut self, shared: &Shared) {
        shared.done.fetch_add(self.finished, Ordering::Relaxed);
        self.finished = 0;
    }
}

/// How many request numbers a worker claims at once: the counters every thread writes are
/// touched once per block instead of once per request (a cache line moving between cores each
/// time), but a short run still spreads over all workers (at least 8 blocks each), and `--rate`
/// hands out one at a time (each number has its own start time).
fn block_size(plan: &LoadPlan) -> u64 {
    match (plan.rate, plan.count) {
        (Some(_), _) => 1,
        (None, Some(n)) => (n / (plan.concurrency as u64 * 8)).clamp(1, 16),
        (None, None) => 16,
    }
}

/// One of the C workers; it records into its thread's tally (`drive`).
async fn worker(shared: Arc<Shared>, tally: Arc<Mutex<Tally>>) {
    let tally = || tally.lock().unwrap_or_else(|e| e.into_inner());
    let mut connection: Option<Connection> = None;
    let mut request = Request::default();
    let mut claims = Claims::default();
    while let Some(i) = shared.claim(&mut claims) {
        if let Some(at) = shared.plan.slot(i) {
            if let Some(d) = shared.plan.duration
                && at >= d
            {
                break;
            }
            tokio::time::sleep_until(shared.started + at).await;
        }
        let bytes = request.render(&shared.template, i, crate::timestamp::unix_now());
        let sent_at = Instant::now();
        match send(&shared.template.endpoint, &mut connection, bytes, sent_at).await {
            Ok(status) => tally().answered(status, sent_at.elapsed()),
            Err(failure) => {
                // The connection's state is unknown after a failure: the next request opens another.
                connection = None;
                tally().failed(failure.kind, || failure.detail);
            }
        }
        claims.finished += 1;
    }
    claims.report(&shared);
}

/// Sends one request on the worker's connection, first (re)connecting when there is none or
/// the receiver closed it between requests (an idle keep-alive timeout is not an error). The
/// answer's deadline runs from `sent_at`, or from the new connection.
async fn send(
    endpoint: &Endpoint,
    connection: &mut Option<Connection>,
    request: &[u8],
    sent_at: Instant,
) -> std::result::Result<u16, Failure> {
    if connection.as_ref().is_some_and(Connection::is_stale) {
        *connection = None;
    }
    let (conn, from) = match connection {
        Some(c) => (c, sent_at),
        None => (connection.insert(endpoint.connect().await?), Instant::now()),
    };
    endpoint.post_request(conn, request, from).await
}

/// Runs `workers` workers on the current (single-threaded) runtime, recording into one tally:
/// a histogram each (188 KB of counts for 1 µs to an hour at 3 digits) made every record a
/// cache miss in one of 64 tables, 2.8 % of the client's CPU (perf); one per thread stays in
/// cache, and its lock is never contended.
async fn drive(shared: Arc<Shared>, workers: usize) -> Result<Tally> {
    let tally = Arc::new(Mutex::new(Tally::new()));
    let workers: Vec<_> = (0..workers)
        .map(|_| tokio::spawn(worker(shared.clone(), tally.clone())))
        .collect();
    for w in workers {
        w.await
            .map_err(|e| Error::external(format!("load worker failed: {e}")))?;
    }
    Ok(std::mem::take(
        &mut *tally.lock().unwrap_or_else(|e| e.into_inner()),
    ))
}

/// The workers spread over single-threaded runtimes, one per core (as wrk runs one event loop
/// per thread): a connection's task is woken on the thread that polls its socket, with no
/// hand-off between threads and no work stealing. Even with the receiver on the same 2 cores,
/// a second thread is worth it: against the sandbox it took 6.8 µs of CPU per request instead
/// of 5.3-5.6 (0.5 context switches instead of 0.04-0.08), yet the pair answered 1-3 % more
/// requests per second and the p99 fell from 1.2-4.4 ms (bimodal) to 1.9-2.0 ms.
async fn drive_per_core(shared: &Arc<Shared>, workers: usize) -> Result<Tally> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, workers);
    let mut results = Vec::with_capacity(threads);
    for t in 0..threads {
        let share = workers / threads + usize::from(t < workers % threads);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::external(format!("cannot start a load runtime: {e}")))
                    .and_then(|rt| rt.block_on(drive(shared, share)));
                let _ = tx.send(result);
            })
            .map_err(|e| Error::external(format!("cannot start a load thread: {e}")))?;
        results.push(rx);
    }
    let mut total = Tally::new();
    for rx in results {
        let tally = rx
            .await
            .map_err(|_| Error::external("a load thread failed"))??;
        total.merge(&tally);
    }
    Ok(total)
}

/// Sends the plan's events to `target` and returns the summary. A stop request ends the run
/// early: requests in flight finish, and the summary says it was interrupted.
pub async fn run(
    plan: LoadPlan,
    target: Endpoint,
    prepared: Prepared,
    signers: Vec<Signer>,
    out: &Printer,
    stop: &Shutdown,
) -> Result<Summary> {
    let to = target.url().to_owned();
    let shared = Arc::new(Shared {
        template: Template {
            endpoint: target,
            prepared,
            signers,
            ids: IdSource::new(),
        },
        plan: plan.clone(),
        next: AtomicU64::new(0),
        block: block_size(&plan),
        done: AtomicU64::new(0),
        stopped: AtomicBool::new(false),
        started: tokio::time::Instant::now(),
    });
    let event_type = shared.template.prepared.event_type.clone();
    let bar = progress_bar(out, &plan, &event_type);
    let ticker = tokio::spawn(tick(bar.clone(), shared.clone()));
    let stopper = {
        let (shared, stop) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            stop.wait().await;
            shared.stopped.store(true, Ordering::Relaxed);
        })
    };
    let total = drive_per_core(&shared, plan.concurrency).await?;
    let elapsed = shared.started.elapsed();
    ticker.abort();
    stopper.abort();
    bar.finish_and_clear();
    let mut summary = summarize(&total, &plan, &event_type, &to, elapsed);
    summary.interrupted = stop.requested().map(|s| s.name());
    Ok(summary)
}

fn progress_bar(out: &Printer, plan: &LoadPlan, event_type: &str) -> indicatif::ProgressBar {
    let message = format!("sending {event_type}");
    match (plan.count, plan.duration) {
        (Some(n), _) => out.bar(n, message),
        (None, Some(d)) => {
            let bar = out.bar(d.as_secs().max(1), format!("{message} (seconds)"));
            bar.set_position(0);
            bar
        }
        (None, None) => out.spinner(message),
    }
}

async fn tick(bar: indicatif::ProgressBar, shared: Arc<Shared>) {
    let by_time = shared.plan.count.is_none();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if by_time {
            bar.set_position(shared.started.elapsed().as_secs());
        } else {
            bar.set_position(shared.done.load(Ordering::Relaxed));
        }
    }
}

impl Report for Summary {
    fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({ "ok": self.ok }))
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        let s = self;
        let mut lines = vec![format!(
            "sent {} {} events to {} in {:.2} s: {:.0} requests/s (concurrency {}{})",
            s.sent,
            s.event_type,
            s.to,
            s.elapsed_s,
            s.requests_per_s,
            s.concurrency,
            s.rate
                .map(|r| format!(", rate limit {r}/s"))
                .unwrap_or_default()
        )];
        let statuses = s
            .statuses
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        lines.push(format!(
            "status   {}",
            if statuses.is_empty() {
                "no answers".into()
            } else {
                statuses
            }
        ));
        if s.errors > 0 {
            lines.push(format!("errors   {} ({})", s.errors, kinds(&s.error_kinds)));
            for (kind, detail) in &s.error_examples {
                lines.push(format!("         first {kind} error: {detail}"));
            }
        }
        let l = &s.latency_ms;
        lines.push(format!(
            "latency  p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            l.p50, l.p90, l.p99, l.max
        ));
        lines
    }

    fn verdict(&self) -> Result<()> {
        verdict(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_within_bounds() {
        assert_eq!(parse_rate("500").unwrap(), 500.0);
        assert_eq!(parse_rate("250/s").unwrap(), 250.0);
        for bad in ["0", "fast", "-1", "nan", "inf", "1e-300", "1e300", ""] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plan_needs_count_or_duration_and_caps_concurrency() {
        let e = LoadPlan::new(None, None, Some(8), None).unwrap_err();
        assert_eq!(e.exit.code(), 2);
        assert!(LoadPlan::new(Some(0), None, None, None).is_err());
        assert!(LoadPlan::new(Some(1), None, Some(0), None).is_err());
        assert!(LoadPlan::new(Some(1), None, Some(MAX_CONCURRENCY + 1), None).is_err());
        assert!(LoadPlan::new(Some(1), None, None, Some(1e-300)).is_err());
        let plan = LoadPlan::new(Some(3), None, Some(8), Some(10.0)).unwrap();
        assert_eq!(plan.concurrency, 3);
        assert_eq!(plan.slot(5), Some(Duration::from_millis(500)));
        let slow = LoadPlan::new(None, Some(Duration::from_secs(1)), None, Some(0.001)).unwrap();
        assert!(slow.slot(u64::MAX).is_some(), "no overflow panic");
    }

    #[test]
    fn blocks_of_numbers_cover_the_count_once_and_spread_short_runs() {
        let plan = |count, concurrency, rate| LoadPlan::new(count, None, Some(concurrency), rate);
        assert_eq!(block_size(&plan(Some(100_000), 64, None).unwrap()), 16);
        assert_eq!(block_size(&plan(Some(100), 64, None).unwrap()), 1);
        assert_eq!(block_size(&plan(Some(100_000), 64, Some(5.0)).unwrap()), 1);
        let forever = LoadPlan::new(None, Some(Duration::from_secs(1)), Some(2), None).unwrap();
        assert_eq!(block_size(&forever), 16);

        let plan = plan(Some(1_000), 3, None).unwrap();
        let t = Template::for_tests();
        let shared = Shared {
            template: t,
            block: block_size(&plan),
            plan,
            next: AtomicU64::new(0),
            done: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            started: tokio::time::Instant::now(),
        };
        let mut workers = [Claims::default(), Claims::default(), Claims::default()];
        let mut seen = Vec::new();
        'run: loop {
            for claims in &mut workers {
                match shared.claim(claims) {
                    Some(i) => {
                        seen.push(i);
                        claims.finished += 1;
                    }
                    None => break 'run,
                }
            }
        }
        for claims in &mut workers {
            while let Some(i) = shared.claim(claims) {
                seen.push(i);
                claims.finished += 1;
            }
            claims.report(&shared);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..1_000).collect::<Vec<_>>());
        assert_eq!(shared.done.load(Ordering::Relaxed), 1_000);
        shared.stopped.store(true, Ordering::Relaxed);
        assert_eq!(shared.claim(&mut Claims::default()), None);
    }

    #[test]
    fn ids_are_distinct_and_stripe_shaped() {
        let ids = IdSource::new();
        let a = ids.id(0);
        assert!(a.starts_with("evt_") && a.len() == 28, "{a}");
        let all: std::collections::HashSet<_> = (0..10_000).map(|i| ids.id(i)).collect();
        assert_eq!(all.len(), 10_000);
        assert_ne!(ids.id(1), IdSource::new().id(1));
    }

    #[test]
    fn summary_counts_and_verdicts() {
        let plan = LoadPlan::new(Some(4), None, None, None).unwrap();
        let mut a = Tally::new();
        a.answered(200, Duration::from_millis(1));
        a.answered(200, Duration::from_millis(3));
        let mut b = Tally::new();
        b.answered(500, Duration::from_millis(2));
        b.failed("timeout", || "no answer within 1.0 s".into());
        a.merge(&b);
        let s = summarize(&a, &plan, "t", "u", Duration::from_secs(2));
        assert_eq!((s.sent, s.answered, s.succeeded), (4, 3, 2));
        assert_eq!((s.non_2xx, s.errors), (1, 1));
        assert_eq!(s.statuses["200"], 2);
        assert_eq!(s.requests_per_s, 2.0);
        assert!((s.latency_ms.max - 3.0).abs() < 0.01);
        assert_eq!(verdict(&s).unwrap_err().exit.code(), 1);

        let mut dead = Tally::new();
        dead.failed("connect", || "connection refused".into());
        let s = summarize(&dead, &plan, "t", "u", Duration::from_secs(1));
        assert_eq!(verdict(&s).unwrap_err().exit.code(), 3);

        let mut fine = Tally::new();
        fine.answered(204, Duration::from_micros(10));
        assert!(verdict(&summarize(&fine, &plan, "t", "u", Duration::from_secs(1))).is_ok());
    }
}
