//! Delivery: one worker per target takes the target's events strictly in order of arrival,
//! retries the head with exponential backoff and jitter until it is delivered or older than
//! `max_age`, and moves the target's cursor on; an event every target is done with leaves the
//! spool. The hub hands events to the workers in sequence order (even when a later event
//! finished spooling first), so a cursor never passes an event its target has not seen.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::backoff::Backoff;
use super::log;
use super::spool::{Event, Recovered, Spool};
use super::targets::TargetSpec;
use crate::error::{Error, Result};
use crate::signature;

/// The result of one delivery attempt, or `queued` when the target is still retrying older events.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub status: Option<u16>,
    pub ok: bool,
    pub ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
}

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
    pub client: reqwest::Client,
}

#[derive(Debug, Default)]
struct Stats {
    delivered: u64,
    gave_up: u64,
    failed_attempts: u64,
    failing_since: Option<SystemTime>,
    last_error: Option<String>,
    last_delivered: Option<SystemTime>,
}

struct Job {
    event: Arc<Event>,
    report: Option<Reporter>,
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
                })
                .collect();
            hub.spawn(&mut hub.inner.state(), spec, cursor, backlog);
        }
        hub.collect_garbage();
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
            queue: backlog,
            cursor,
            retry: 0,
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

    /// Hands a spooled event (or `None` for a sequence number whose spooling failed) to every
    /// target, after all earlier sequence numbers.
    pub fn dispatch(&self, seq: u64, event: Option<(Arc<Event>, Option<Reporter>)>) {
        let mut state = self.inner.state();
        let job = event.map(|(event, report)| Job { event, report });
        state.waiting.insert(seq, job);
        loop {
            let next = state.next_dispatch;
            let Some(job) = state.waiting.remove(&next) else {
                break;
            };
            state.next_dispatch += 1;
            let Some(job) = job else { continue };
            state.live.insert(job.event.seq);
            if let Some(r) = &job.report {
                let _ = r.send(Report::Targets(state.workers.keys().cloned().collect()));
            }
            for w in state.workers.values() {
                w.pending.fetch_add(1, Ordering::Relaxed);
                let _ = w.jobs.send(Job {
                    event: job.event.clone(),
                    report: job.report.clone(),
                });
            }
        }
    }

    /// Applies a new set of targets: new ones start with events from now on, removed ones stop
    /// after their current attempt, changed ones use the new URL, secret and headers from their
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
        collect_garbage(&self.inner);
    }

    /// Stops every worker once its current attempt is over, and waits for them.
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
                "last_seq": self.inner.spool.last_seq(),
            },
            "targets": targets,
        })
    }

    pub fn target_names(&self) -> Vec<String> {
        self.inner.state().workers.keys().cloned().collect()
    }
}

/// Removes from the spool every event all current targets are done with.
fn collect_garbage(inner: &Inner) {
    let done: Vec<u64> = {
        let mut state = inner.state();
        let Some(min) = state.cursors.values().min().copied() else {
            return;
        };
        let keep = state.live.split_off(&(min + 1));
        std::mem::replace(&mut state.live, keep)
            .into_iter()
            .collect()
    };
    for seq in done {
        if let Err(e) = inner.spool.remove(seq) {
            log(format!("spool: cannot remove event #{seq}: {e}"));
        }
    }
}

fn spool_error(e: std::io::Error) -> Error {
    Error::external(format!("spool: {e}"))
}

struct Worker {
    name: String,
    spec: watch::Receiver<Arc<TargetSpec>>,
    jobs: mpsc::UnboundedReceiver<Job>,
    stop: watch::Receiver<bool>,
    queue: VecDeque<Job>,
    cursor: u64,
    /// Failed attempts on the current head (0 while the target is healthy).
    retry: u32,
    stats: Arc<Mutex<Stats>>,
    pending: Arc<AtomicUsize>,
    hub: Arc<Inner>,
}

impl Worker {
    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow() || self.stop.has_changed().is_err()
    }

    async fn run(mut self) {
        loop {
            if self.stopping() {
                return;
            }
            if self.queue.is_empty() {
                tokio::select! {
                    job = self.jobs.recv() => match job {
                        Some(job) => self.accept(job),
                        None => return,
                    },
                    _ = self.stop.changed() => return,
                }
            }
            while let Ok(job) = self.jobs.try_recv() {
                self.accept(job);
            }
            let Some(head) = self.queue.front() else {
                continue;
            };
            let event = head.event.clone();
            if event.seq <= self.cursor {
                self.finish_head();
                continue;
            }
            if self.too_old(&event) {
                self.give_up(&event);
                continue;
            }
            let spec = self.spec.borrow().clone();
            let outcome = attempt(&self.hub.opts.client, &spec, &event).await;
            if let Some(r) = self.queue.front_mut().and_then(|j| j.report.take()) {
                let _ = r.send(Report::Outcome(outcome.clone()));
            }
            if outcome.ok {
                self.delivered(&event, &outcome);
            } else {
                self.failed(&event, &outcome).await;
            }
        }
    }

    /// Takes a new job; while the target is failing, its sender learns at once that it waits.
    fn accept(&mut self, mut job: Job) {
        if self.retry > 0
            && let Some(r) = job.report.take()
        {
            let _ = r.send(Report::Outcome(self.queued_outcome()));
        }
        self.queue.push_back(job);
    }

    fn queued_outcome(&self) -> Outcome {
        Outcome {
            name: self.name.clone(),
            status: None,
            ok: false,
            ms: 0.0,
            error: Some("queued behind earlier events that are being retried".into()),
            queued: true,
        }
    }

    fn too_old(&self, event: &Event) -> bool {
        let age_ms = super::unix_ms().saturating_sub(event.received_ms);
        age_ms > 0 && age_ms as u128 > self.hub.opts.max_age.as_millis()
    }

    fn delivered(&mut self, event: &Event, outcome: &Outcome) {
        log(format!(
            "target {} {} #{}: delivered, {} in {:.1} ms{}",
            self.name,
            event_label(event),
            event.seq,
            outcome.status.unwrap_or_default(),
            outcome.ms,
            if self.retry > 0 {
                format!(" (attempt {})", self.retry + 1)
            } else {
                String::new()
            }
        ));
        {
            let mut s = self.stats();
            s.delivered += 1;
            s.failing_since = None;
            s.last_delivered = Some(SystemTime::now());
        }
        self.retry = 0;
        self.finish_head();
    }

    async fn failed(&mut self, event: &Event, outcome: &Outcome) {
        let error = outcome.error.clone().unwrap_or_default();
        {
            let mut s = self.stats();
            s.failed_attempts += 1;
            s.failing_since.get_or_insert_with(SystemTime::now);
            s.last_error = Some(error.clone());
        }
        let queued = self.queued_outcome();
        for job in self.queue.iter_mut().skip(1) {
            if let Some(r) = job.report.take() {
                let _ = r.send(Report::Outcome(queued.clone()));
            }
        }
        let delay = self.hub.opts.backoff.delay(self.retry, rand::random());
        self.retry = self.retry.saturating_add(1);
        log(format!(
            "target {} {} #{}: attempt {} failed: {error}; retrying in {:.1} s",
            self.name,
            event_label(event),
            event.seq,
            self.retry,
            delay.as_secs_f64()
        ));
        self.wait(delay).await;
    }

    /// Waits out a backoff delay, taking new jobs meanwhile; returns early when stopped.
    async fn wait(&mut self, delay: Duration) {
        let until = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return,
                _ = self.stop.changed() => return,
                job = self.jobs.recv() => match job {
                    Some(job) => self.accept(job),
                    None => return,
                },
            }
        }
    }

    fn give_up(&mut self, event: &Event) {
        let last = self
            .stats()
            .last_error
            .clone()
            .unwrap_or_else(|| "none".into());
        log(format!(
            "target {} {} #{}: GAVE UP, older than max-age {} s (last error: {last})",
            self.name,
            event_label(event),
            event.seq,
            self.hub.opts.max_age.as_secs()
        ));
        self.stats().gave_up += 1;
        self.retry = 0;
        if let Some(r) = self.queue.front_mut().and_then(|j| j.report.take()) {
            let _ = r.send(Report::Outcome(Outcome {
                error: Some("older than max-age; not delivered".into()),
                ..self.queued_outcome()
            }));
        }
        self.finish_head();
    }

    /// The head is done (delivered, given up, or already behind the cursor): move the cursor.
    fn finish_head(&mut self) {
        let Some(job) = self.queue.pop_front() else {
            return;
        };
        self.pending.fetch_sub(1, Ordering::Relaxed);
        let seq = job.event.seq;
        if seq <= self.cursor {
            return;
        }
        self.cursor = seq;
        if let Err(e) = self.hub.spool.write_cursor(&self.name, seq) {
            log(format!("target {}: cannot save the cursor: {e}", self.name));
        }
        let removed = {
            let mut state = self.hub.state();
            match state.cursors.get_mut(&self.name) {
                Some(c) => {
                    *c = seq;
                    false
                }
                None => true,
            }
        };
        if !removed {
            collect_garbage(&self.hub);
        }
    }
}

fn event_label(event: &Event) -> &str {
    event.id.as_deref().unwrap_or("(no id)")
}

/// One POST of an event to a target: exact body bytes, the original Content-Type, and either
/// the original Stripe-Signature or a fresh one made with the target's own secret.
pub async fn attempt(client: &reqwest::Client, spec: &TargetSpec, event: &Event) -> Outcome {
    let started = Instant::now();
    let mut req = client
        .post(&spec.url)
        .headers(spec.headers.clone())
        .header(
            CONTENT_TYPE,
            event.content_type.as_deref().unwrap_or("application/json"),
        )
        .body(event.body.clone());
    match &spec.signer {
        Some(signer) => {
            let header = signature::header(
                signature::unix_now(),
                &event.body,
                std::slice::from_ref(signer),
            );
            req = req.header("Stripe-Signature", header);
        }
        None => {
            if let Some(sig) = &event.signature {
                req = req.header("Stripe-Signature", sig);
            }
        }
    }
    let result = match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            let error = (!status.is_success())
                .then(|| format!("answered {status}: {}", crate::http::excerpt(&body, 160)));
            (Some(status.as_u16()), error)
        }
        Err(e) => {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "failed"
            };
            (None, Some(format!("{kind}: {}", crate::error::chain(&e))))
        }
    };
    Outcome {
        name: spec.name.clone(),
        status: result.0,
        ok: result.1.is_none(),
        ms: started.elapsed().as_secs_f64() * 1000.0,
        error: result.1,
        queued: false,
    }
}
