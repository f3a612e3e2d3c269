//! Delivery: one worker per target. While the target is healthy, its events start in order of
//! arrival with up to `in_flight` attempts at once. The first failure switches it to recovery:
//! events go one at a time, strictly in order, the oldest retried with exponential backoff and
//! jitter until it is delivered or older than `max_age`, until the target has caught up. The
//! target's cursor moves up to just below its oldest unfinished event; an event every target is
//! done with leaves the spool. The hub hands events to the workers in sequence order (even when
//! a later request got there first), so a cursor never passes an event its target has not seen.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinHandle, JoinSet};

use super::Log;
use super::attempt::{Outcome, attempt};
use super::route::Parsed;
use super::spool::{Event, Recovered, Spool};
use super::targets::TargetSpec;
use crate::error::{Error, Result};
use crate::retry::Backoff;

/// What the workers tell the request that brought an event: first the names of the targets it
/// went to, then one outcome per target (its first attempt).
#[derive(Debug)]
pub enum Report {
    Targets(Vec<String>),
    Outcome(Outcome),
}

pub type Reporter = mpsc::UnboundedSender<Report>;

#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    pub backoff: Backoff,
    pub max_age: Duration,
    /// Attempts in flight at once per healthy target.
    pub in_flight: usize,
    pub client: super::attempt::Client,
}

#[derive(Debug, Default)]
struct Stats {
    delivered: u64,
    /// Events its route kept away.
    filtered: u64,
    gave_up: u64,
    failed_attempts: u64,
    failing_since: Option<SystemTime>,
    last_error: Option<String>,
    last_delivered: Option<SystemTime>,
}

struct Job {
    event: Arc<Event>,
    report: Option<Reporter>,
    /// Failed attempts so far.
    failures: u32,
}

struct WorkerHandle {
    spec: watch::Sender<Arc<TargetSpec>>,
    jobs: mpsc::UnboundedSender<Job>,
    stop: watch::Sender<bool>,
    stats: Arc<Mutex<Stats>>,
    pending: Arc<AtomicUsize>,
    join: JoinHandle<()>,
}

struct State {
    workers: BTreeMap<String, WorkerHandle>,
    cursors: BTreeMap<String, u64>,
    /// Sequence numbers still in the spool.
    live: BTreeSet<u64>,
    next_dispatch: u64,
    /// Spooled (or failed) events waiting for an earlier one before they can be handed out.
    waiting: BTreeMap<u64, Option<Job>>,
    retired: Vec<JoinHandle<()>>,
}

struct Inner {
    spool: Arc<Spool>,
    opts: DeliveryOptions,
    state: Mutex<State>,
    log: Log,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The set of target workers.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl Hub {
    /// Starts one worker per target, each with the spooled events it has not finished yet.
    pub fn start(
        spool: Arc<Spool>,
        recovered: Recovered,
        specs: Vec<TargetSpec>,
        opts: DeliveryOptions,
        log: Log,
    ) -> Result<Hub> {
        let live = recovered.events.iter().map(|e| e.seq).collect();
        let hub = Hub {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    workers: BTreeMap::new(),
                    cursors: BTreeMap::new(),
                    live,
                    next_dispatch: spool.last_seq() + 1,
                    waiting: BTreeMap::new(),
                    retired: Vec::new(),
                }),
                spool,
                opts,
                log,
            }),
        };
        for stale in recovered.cursors.keys() {
            if !specs.iter().any(|s| &s.name == stale) {
                hub.inner.spool.remove_cursor(stale).map_err(spool_error)?;
            }
        }
        for spec in specs {
            let cursor = match recovered.cursors.get(&spec.name) {
                Some(c) => *c,
                None => hub
                    .inner
                    .spool
                    .create_cursor(&spec.name)
                    .map_err(spool_error)?,
            };
            let backlog = recovered
                .events
                .iter()
                .filter(|e| e.seq > cursor)
                .map(|e| Job {
                    event: e.clone(),
                    report: None,
                    failures: 0,
                })
                .collect();
            hub.spawn(&mut hub.inner.state(), spec, cursor, backlog);
        }
        hub.collect_garbage();
        hub.sweep_periodically();
        Ok(hub)
    }

    fn spawn(&self, state: &mut State, spec: TargetSpec, cursor: u64, backlog: VecDeque<Job>) {
        let name = spec.name.clone();
        let (spec_tx, spec_rx) = watch::channel(Arc::new(spec));
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let stats = Arc::new(Mutex::new(Stats::default()));
        let pending = Arc::new(AtomicUsize::new(backlog.len()));
        let worker = Worker {
            name: name.clone(),
            spec: spec_rx,
            jobs: jobs_rx,
            stop: stop_rx,
            unfinished: backlog.iter().map(|j| j.event.seq).collect(),
            queue: backlog,
            attempts: JoinSet::new(),
            in_flight: HashMap::new(),
            highest_finished: cursor,
            cursor,
            recovery: None,
            stats: stats.clone(),
            pending: pending.clone(),
            hub: self.inner.clone(),
        };
        let join = tokio::spawn(worker.run());
        state.cursors.insert(name.clone(), cursor);
        state.workers.insert(
            name,
            WorkerHandle {
                spec: spec_tx,
                jobs: jobs_tx,
                stop: stop_tx,
                stats,
                pending,
                join,
            },
        );
    }

    /// Hands an event (or `None` for a sequence number that will not come) to every target,
    /// after all earlier sequence numbers. Delivery may start before the event is spooled: the
    /// sender gets its 200 only once it is, so at worst an event is delivered and sent again.
    pub fn dispatch(&self, seq: u64, event: Option<(Arc<Event>, Option<Reporter>)>) {
        let mut state = self.inner.state();
        let job = event.map(|(event, report)| Job {
            event,
            report,
            failures: 0,
        });
        state.waiting.insert(seq, job);
        loop {
            let next = state.next_dispatch;
            let Some(job) = state.waiting.remove(&next) else {
                break;
            };
            state.next_dispatch += 1;
            let Some(job) = job else { continue };
            if let Some(r) = &job.report {
                let _ = r.send(Report::Targets(state.workers.keys().cloned().collect()));
            }
            for w in state.workers.values() {
                w.pending.fetch_add(1, Ordering::Relaxed);
                let _ = w.jobs.send(Job {
                    event: job.event.clone(),
                    report: job.report.clone(),
                    failures: 0,
                });
            }
        }
    }

    /// Records that an event is in the spool (counted by `/status` until every target is done).
    pub fn spooled(&self, seq: u64) {
        let mut state = self.inner.state();
        let done = state.cursors.values().min().is_some_and(|min| seq <= *min);
        if !done {
            state.live.insert(seq);
        }
    }

    /// Applies a new set of targets: new ones start with events from now on, removed ones stop
    /// after their attempts in flight, changed ones use the new URL, secret and headers from their
    /// next attempt.
    pub fn apply(&self, specs: Vec<TargetSpec>) -> Result<Changes> {
        let mut changes = Changes::default();
        {
            let mut state = self.inner.state();
            let names: BTreeSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            let gone: Vec<String> = state
                .workers
                .keys()
                .filter(|n| !names.contains(n.as_str()))
                .cloned()
                .collect();
            for name in gone {
                if let Some(w) = state.workers.remove(&name) {
                    let _ = w.stop.send(true);
                    state.retired.push(w.join);
                }
                state.cursors.remove(&name);
                self.inner.spool.remove_cursor(&name).map_err(spool_error)?;
                changes.removed.push(name);
            }
            for spec in specs {
                match state.workers.get(&spec.name) {
                    Some(w) if w.spec.borrow().fingerprint == spec.fingerprint => {}
                    Some(w) => {
                        changes.changed.push(spec.name.clone());
                        let _ = w.spec.send(Arc::new(spec));
                    }
                    None => {
                        let cursor = self
                            .inner
                            .spool
                            .create_cursor(&spec.name)
                            .map_err(spool_error)?;
                        changes.added.push(spec.name.clone());
                        self.spawn(&mut state, spec, cursor, VecDeque::new());
                    }
                }
            }
        }
        self.collect_garbage();
        Ok(changes)
    }

    fn collect_garbage(&self) {
        collect_garbage(&self.inner, SEGMENT_IDLE);
    }

    /// Deletes delivered segments every so often, also when no event moves a cursor.
    fn sweep_periodically(&self) {
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SEGMENT_IDLE);
            loop {
                tick.tick().await;
                match inner.upgrade() {
                    Some(inner) => collect_garbage(&inner, SEGMENT_IDLE),
                    None => return,
                }
            }
        });
    }

    /// Stops every worker once its attempts in flight are over, and waits for them.
    pub async fn shutdown(&self) {
        let joins: Vec<JoinHandle<()>> = {
            let mut state = self.inner.state();
            let mut joins: Vec<_> = state.retired.drain(..).collect();
            for (_, w) in std::mem::take(&mut state.workers) {
                let _ = w.stop.send(true);
                joins.push(w.join);
            }
            joins
        };
        for j in joins {
            let _ = j.await;
        }
        if let Err(e) = self.inner.spool.flush_cursors() {
            self.inner
                .log
                .line(format!("spool: cannot save the cursors: {e}"));
        }
        let spool = self.inner.spool.clone();
        let min = self.inner.state().cursors.values().min().copied();
        if let Some(done_through) = min {
            let _ = tokio::task::spawn_blocking(move || spool.retire(done_through, Duration::ZERO))
                .await;
        }
    }

    /// Per-target counters for `GET /status`.
    pub fn status(&self) -> Value {
        let state = self.inner.state();
        let targets: Vec<Value> = state
            .workers
            .iter()
            .map(|(name, w)| {
                let spec = w.spec.borrow().clone();
                let s = w.stats.lock().unwrap_or_else(|e| e.into_inner());
                json!({
                    "name": name,
                    "url": spec.url,
                    "resigned": spec.signer.is_some(),
                    "delivered": s.delivered,
                    "filtered": s.filtered,
                    "route": spec.route.describe(),
                    "pending": w.pending.load(Ordering::Relaxed),
                    "failing_since": s.failing_since.map(super::rfc3339),
                    "last_error": s.last_error,
                    "failed_attempts": s.failed_attempts,
                    "gave_up": s.gave_up,
                    "last_delivered_at": s.last_delivered.map(super::rfc3339),
                    "cursor": state.cursors.get(name),
                })
            })
            .collect();
        json!({
            "spool": {
                "dir": self.inner.spool.dir().display().to_string(),
                "events": state.live.len(),
                "segments": self.inner.spool.segments(),
                "last_seq": self.inner.spool.last_seq(),
            },
            "targets": targets,
        })
    }

    /// Whether any target's route lets an event with this body through (an event no target
    /// wants is not spooled).
    pub fn wanted(&self, body: &[u8], parsed: &Parsed) -> bool {
        self.inner
            .state()
            .workers
            .values()
            .any(|w| w.spec.borrow().route.lets_through(body, parsed))
    }

    pub fn target_names(&self) -> Vec<String> {
        self.inner.state().workers.keys().cloned().collect()
    }

    /// Where the relay logs.
    pub fn log(&self) -> Log {
        self.inner.log.clone()
    }
}

/// Forgets every event all current targets are done with, and deletes the spool's segments
/// that hold only such events (the one being written to once it has been idle for `idle`).
fn collect_garbage(inner: &Inner, idle: Duration) {
    let Some(done_through) = forget_done(inner) else {
        return;
    };
    let spool = inner.spool.clone();
    let retire = move || spool.retire(done_through, idle);
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn_blocking(retire)),
        Err(_) => retire(),
    }
}

/// Forgets the events every target is done with; returns the sequence number they are done
/// through.
fn forget_done(inner: &Inner) -> Option<u64> {
    let mut state = inner.state();
    let min = state.cursors.values().min().copied()?;
    state.live = state.live.split_off(&(min + 1));
    Some(min)
}

/// How long the segment being written to must be idle before it is deleted once delivered.
const SEGMENT_IDLE: Duration = Duration::from_millis(200);

fn spool_error(e: std::io::Error) -> Error {
    Error::external(format!("spool: {e}"))
}

struct Worker {
    name: String,
    spec: watch::Receiver<Arc<TargetSpec>>,
    jobs: mpsc::UnboundedReceiver<Job>,
    stop: watch::Receiver<bool>,
    /// Events not being attempted right now, in sequence order.
    queue: VecDeque<Job>,
    attempts: JoinSet<Outcome>,
    /// The job of each attempt in flight, and whether it was a retry.
    in_flight: HashMap<tokio::task::Id, (Job, bool)>,
    /// Sequence numbers taken and not finished yet (queued or in flight).
    unfinished: BTreeSet<u64>,
    highest_finished: u64,
    cursor: u64,
    /// Present while the target is failing or catching up: then its events go one at a time,
    /// strictly in order, each after the previous one was delivered.
    recovery: Option<Recovery>,
    stats: Arc<Mutex<Stats>>,
    pending: Arc<AtomicUsize>,
    hub: Arc<Inner>,
}

struct Recovery {
    /// Failed retries of the oldest event (the exponent of the backoff).
    failures: u32,
    next_attempt: tokio::time::Instant,
}

impl Worker {
    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(mut self) {
        let mut stopping = false;
        loop {
            if !stopping {
                self.start_attempts();
            }
            if stopping && self.attempts.is_empty() {
                return;
            }
            let retry_at = self.retry_due().filter(|_| !stopping);
            tokio::select! {
                Some(done) = self.attempts.join_next_with_id(), if !self.attempts.is_empty() => {
                    self.settle(done);
                }
                job = self.jobs.recv(), if !stopping => match job {
                    Some(job) => self.accept(job),
                    None => stopping = true,
                },
                _ = sleep_until_some(retry_at), if retry_at.is_some() => {}
                _ = self.stop.changed(), if !stopping => stopping = true,
            }
        }
    }

    /// While healthy, up to `in_flight` attempts run at once, started in order of arrival;
    /// while recovering, one at a time, once the backoff delay is over.
    fn start_attempts(&mut self) {
        let limit = match &self.recovery {
            None => self.hub.opts.in_flight.max(1),
            Some(r) if tokio::time::Instant::now() >= r.next_attempt => 1,
            Some(_) => 0,
        };
        while self.attempts.len() < limit {
            let Some(job) = self.queue.pop_front() else {
                return;
            };
            self.launch(job);
        }
    }

    /// When the next retry is due: recovering, nothing in flight, and something waiting.
    fn retry_due(&self) -> Option<tokio::time::Instant> {
        let r = self.recovery.as_ref()?;
        (self.attempts.is_empty() && !self.queue.is_empty()).then_some(r.next_attempt)
    }

    fn launch(&mut self, job: Job) {
        let event = job.event.clone();
        if event.seq <= self.cursor {
            self.finish(event.seq);
            return;
        }
        // Events recovered from the spool meet the route here (a reload may have changed it).
        let Some(job) = self.unless_filtered(job) else {
            return;
        };
        if self.too_old(&event) {
            self.give_up(job);
            return;
        }
        let spec = self.spec.borrow().clone();
        let client = self.hub.opts.client.clone();
        let handle = self
            .attempts
            .spawn(async move { attempt(&client, &spec, &event).await });
        self.in_flight
            .insert(handle.id(), (job, self.recovery.is_some()));
    }

    fn settle(&mut self, done: std::result::Result<(tokio::task::Id, Outcome), JoinError>) {
        let (id, outcome) = match done {
            Ok(done) => done,
            Err(e) => {
                let outcome = Outcome {
                    name: self.name.clone(),
                    status: None,
                    ok: false,
                    ms: 0.0,
                    error: Some(format!("the delivery task failed: {e}")),
                    queued: false,
                    filtered: false,
                };
                (e.id(), outcome)
            }
        };
        let Some((mut job, was_retry)) = self.in_flight.remove(&id) else {
            return;
        };
        if let Some(r) = job.report.take() {
            let _ = r.send(Report::Outcome(outcome.clone()));
        }
        if outcome.ok {
            self.delivered(job, &outcome, was_retry);
        } else {
            self.failed(job, &outcome, was_retry);
        }
    }

    /// Takes a new job; while the target is recovering, its sender learns at once that it waits.
    fn accept(&mut self, job: Job) {
        self.unfinished.insert(job.event.seq);
        let Some(mut job) = self.unless_filtered(job) else {
            return;
        };
        if self.recovery.is_some()
            && let Some(r) = job.report.take()
        {
            let _ = r.send(Report::Outcome(self.queued_outcome()));
        }
        self.queue.push_back(job);
    }

    /// The job, unless the target's route keeps its event away: then it is done at once,
    /// counted, and its sender told so.
    fn unless_filtered(&mut self, mut job: Job) -> Option<Job> {
        if self
            .spec
            .borrow()
            .route
            .lets_through(&job.event.body, &job.event.parsed)
        {
            return Some(job);
        }
        self.stats().filtered += 1;
        if let Some(r) = job.report.take() {
            let _ = r.send(Report::Outcome(Outcome::filtered(&self.name)));
        }
        self.finish(job.event.seq);
        None
    }

    fn queued_outcome(&self) -> Outcome {
        Outcome {
            name: self.name.clone(),
            status: None,
            ok: false,
            ms: 0.0,
            error: Some("queued behind earlier events that are being retried".into()),
            queued: true,
            filtered: false,
        }
    }

    fn too_old(&self, event: &Event) -> bool {
        let age_ms = super::unix_ms().saturating_sub(event.received_ms);
        age_ms > 0 && age_ms as u128 > self.hub.opts.max_age.as_millis()
    }

    fn delivered(&mut self, job: Job, outcome: &Outcome, was_retry: bool) {
        let event = &job.event;
        let attempt = match job.failures {
            0 => String::new(),
            n => format!(" (attempt {})", n + 1),
        };
        self.hub.log.line(format!(
            "target {} {} #{}: delivered, {} in {:.1} ms{attempt}",
            self.name,
            event_label(event),
            event.seq,
            outcome.status.unwrap_or_default(),
            outcome.ms,
        ));
        {
            let mut s = self.stats();
            s.delivered += 1;
            s.last_delivered = Some(SystemTime::now());
            if was_retry || self.recovery.is_none() {
                s.failing_since = None;
            }
        }
        if was_retry && let Some(r) = &mut self.recovery {
            r.failures = 0;
            r.next_attempt = tokio::time::Instant::now();
        }
        self.finish(event.seq);
        if self.queue.is_empty() && self.attempts.is_empty() {
            self.recovery = None;
        }
    }

    /// A failed attempt puts its event back in the queue, in order; the first failure makes the
    /// target recover (one at a time, in order), and each failed retry doubles the delay.
    fn failed(&mut self, mut job: Job, outcome: &Outcome, was_retry: bool) {
        let error = outcome.error.clone().unwrap_or_default();
        {
            let mut s = self.stats();
            s.failed_attempts += 1;
            s.failing_since.get_or_insert_with(SystemTime::now);
            s.last_error = Some(error.clone());
        }
        job.failures += 1;
        let (label, seq, attempt) = (
            event_label(&job.event).into_owned(),
            job.event.seq,
            job.failures,
        );
        let at = self.queue.partition_point(|j| j.event.seq < seq);
        self.queue.insert(at, job);
        let failures = match &self.recovery {
            None => {
                let queued = self.queued_outcome();
                for job in &mut self.queue {
                    if let Some(r) = job.report.take() {
                        let _ = r.send(Report::Outcome(queued.clone()));
                    }
                }
                0
            }
            Some(r) if was_retry => r.failures + 1,
            Some(_) => {
                self.hub.log.line(format!(
                    "target {} {label} #{seq}: attempt {attempt} failed: {error}; queued for retry",
                    self.name
                ));
                return;
            }
        };
        let delay = self.hub.opts.backoff.delay(failures, rand::random());
        self.recovery = Some(Recovery {
            failures,
            next_attempt: tokio::time::Instant::now() + delay,
        });
        self.hub.log.line(format!(
            "target {} {label} #{seq}: attempt {attempt} failed: {error}; retrying in {:.1} s",
            self.name,
            delay.as_secs_f64()
        ));
    }

    fn give_up(&mut self, mut job: Job) {
        let event = job.event.clone();
        let last = self
            .stats()
            .last_error
            .clone()
            .unwrap_or_else(|| "none".into());
        self.hub.log.line(format!(
            "target {} {} #{}: GAVE UP, older than max-age {} s (last error: {last})",
            self.name,
            event_label(&event),
            event.seq,
            self.hub.opts.max_age.as_secs()
        ));
        self.stats().gave_up += 1;
        if let Some(r) = &mut self.recovery {
            r.failures = 0;
        }
        if let Some(r) = job.report.take() {
            let _ = r.send(Report::Outcome(Outcome {
                error: Some("older than max-age; not delivered".into()),
                ..self.queued_outcome()
            }));
        }
        self.finish(event.seq);
    }

    /// An event is done (delivered or given up): the cursor moves up to just below the oldest
    /// event still unfinished, so it never passes one the target has not had.
    fn finish(&mut self, seq: u64) {
        if self.unfinished.remove(&seq) {
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
        self.highest_finished = self.highest_finished.max(seq);
        let cursor = match self.unfinished.first() {
            Some(oldest) => oldest - 1,
            None => self.highest_finished,
        };
        if cursor <= self.cursor {
            return;
        }
        self.cursor = cursor;
        {
            let mut state = self.hub.state();
            // A target removed by a reload keeps no cursor.
            let Some(c) = state.cursors.get_mut(&self.name) else {
                return;
            };
            *c = cursor;
            // Under the lock, so that a reload cannot remove the cursor in between.
            self.hub.spool.write_cursor(&self.name, cursor);
        }
        forget_done(&self.hub);
    }
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

fn event_label(event: &Event) -> std::borrow::Cow<'_, str> {
    super::shown_id(event.id.as_deref())
}
