//! Delivery: one worker per target, each reading the shared feed (`feed`) at its own pace, with
//! its own window of attempts and its own cursor: a slow or silent target never holds another
//! back. While the target is healthy, its events start in sequence order with up to
//! `in_flight` attempts at once. The first failure switches it to recovery: events go one at a
//! time, strictly in order, the oldest retried with exponential backoff and jitter until it is
//! delivered or older than `max_age`, until the target has caught up. The target's cursor
//! moves up to just below its oldest unfinished event; an event every target is done with
//! leaves the spool.
//!
//! Each target also says whether it keeps up (`Lag`): the answer to a sender waits for the
//! first attempts of the targets that keep up only. A target is slow while an attempt of it has
//! run for 8 times as long as its attempts usually take (at least `SLOW_FLOOR`, at most
//! `SLOW_AFTER`), or while its window is full with more than `slow_backlog` events waiting
//! behind it, until it has caught up again; and while it retries.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;

use super::Log;
use super::attempt::{Outcome, attempt};
use super::feed::{
    Answer, Entry, Feed, Intake, SYNC_PACE, Spooled, Submission, SyncPace, Taken, Verdicts,
};
use super::route::Parsed;
use super::spool::{Event, ReadAt, Recovered, Spool};
use super::targets::TargetSpec;
use crate::error::{Error, Result};
use crate::retry::Backoff;

mod worker;
use worker::Worker;
pub use worker::queued_outcome;

/// An attempt running this long always makes its target slow: answers to senders stop waiting
/// for it.
pub const SLOW_AFTER: Duration = Duration::from_secs(1);
/// The shortest an attempt runs before it makes its target slow, and how long the first one
/// may run. Above this machine's scheduling pauses (10-24 ms seen); a new target that answers
/// in 2 s, or never, holds the answers to its sender this long, not a whole `SLOW_AFTER`.
pub const SLOW_FLOOR: Duration = Duration::from_millis(100);
/// Bytes of events a target behind the feed's memory reads back from the spool at a time.
const READ_BACK: usize = 1 << 20;
/// Entries a worker takes from the feed at a time.
const TAKE: usize = 64;

#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    pub backoff: Backoff,
    pub max_age: Duration,
    /// Attempts in flight at once per healthy target.
    pub in_flight: usize,
    pub client: super::attempt::Client,
    /// Bytes of segment files the spool may hold (`--max-spool`; none: no limit).
    pub max_spool: Option<u64>,
}

impl DeliveryOptions {
    /// Events waiting behind a full window that make a target slow.
    fn slow_backlog(&self) -> u64 {
        (4 * self.in_flight as u64).max(64)
    }
}

/// Whether a target keeps up with the events it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Lag {
    KeepingUp = 0,
    Slow = 1,
    /// Failing: it retries its oldest event; the others wait.
    Retrying = 2,
    /// Removed by a reload.
    Gone = 3,
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

/// A target as the relay and its worker share it.
pub struct Target {
    pub name: String,
    /// Its place in `Verdicts`, never reused within a run.
    pub slot: usize,
    spec: RwLock<Arc<TargetSpec>>,
    stats: Mutex<Stats>,
    /// Events its route kept away.
    filtered: AtomicU64,
    /// The next number it takes from the feed: it took every event below.
    next: AtomicU64,
    /// Events it took and has not finished (in flight, or waiting for a retry).
    unfinished: AtomicUsize,
    lag: AtomicU8,
    /// How long its attempts usually take, in microseconds (0 before the first one ended).
    usual_us: AtomicU64,
    wake: Notify,
}

impl Target {
    fn spec(&self) -> Arc<TargetSpec> {
        self.spec.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn lag(&self) -> Lag {
        match self.lag.load(Ordering::Acquire) {
            0 => Lag::KeepingUp,
            1 => Lag::Slow,
            2 => Lag::Retrying,
            _ => Lag::Gone,
        }
    }

    /// Whether its route lets an event with this body through.
    pub fn wants(&self, body: &[u8], parsed: &Parsed) -> bool {
        self.spec
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .route
            .lets_through(body, parsed)
    }
}

/// The targets of the moment, sorted by name.
pub type Roster = Arc<[Arc<Target>]>;

struct WorkerHandle {
    target: Arc<Target>,
    stop: watch::Sender<bool>,
    join: JoinHandle<()>,
}

struct State {
    workers: BTreeMap<String, WorkerHandle>,
    cursors: BTreeMap<String, u64>,
    retired: Vec<JoinHandle<()>>,
    next_slot: usize,
}

/// A request being received (`Hub::receiving`).
pub struct Receiving(Arc<AtomicUsize>);

impl Drop for Receiving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Inner {
    spool: Arc<Spool>,
    feed: Feed,
    /// Set once the hub exists (the intake hands events to it).
    intake: OnceLock<Intake>,
    opts: DeliveryOptions,
    state: Mutex<State>,
    roster: RwLock<Roster>,
    /// Told whenever a target stops keeping up.
    lag_changed: Notify,
    /// The numbers of the events found at start, in order (for `/status`).
    recovered: Vec<u64>,
    /// Events the spool could not take: answered 503, never handed out (`/status`).
    refused: AtomicU64,
    /// Requests being received now (`Hub::receiving`): an urgent fsync may wait for them.
    receiving: Arc<AtomicUsize>,
    /// Every target still needing an event at or below this number gives it up: the spool
    /// reached `max_spool` (`keep_within_max_spool`).
    given_up_through: AtomicU64,
    /// `Spool::sealed_so_far` when the spool was last looked at after a segment was sealed.
    sealed_seen: AtomicU64,
    log: Log,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn roster(&self) -> Roster {
        self.roster
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The lowest number some target has not taken yet.
    fn needed(&self) -> u64 {
        self.roster()
            .iter()
            .map(|t| t.next.load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// With `max_spool`, when the segment files some target still needs outgrow it: the
    /// targets furthest behind give up the events of the oldest segments, a whole segment at a
    /// time, so that one stalled target cannot fill the disk (a full disk refuses every event,
    /// and every target stops getting new ones). Checked at each sweep and whenever a segment
    /// is sealed; not while an earlier give-up is still under way (some cursor below the
    /// mark: raising it meanwhile would take more than needed). The files kept (the limit's
    /// worth, with the segment written to and the one made ahead) hold the newest events, which
    /// a target that keeps up is among.
    fn keep_within_max_spool(&self) {
        let Some(max_spool) = self.opts.max_spool else {
            return;
        };
        let Some(done_through) = self.state().cursors.values().min().copied() else {
            return;
        };
        let marked = self.given_up_through.load(Ordering::Acquire);
        if done_through < marked {
            return;
        }
        let Some((files, through)) = self
            .spool
            .over(super::spool::files_within(max_spool), done_through)
        else {
            return;
        };
        self.given_up_through.fetch_max(through, Ordering::AcqRel);
        self.log.line(format!(
            "spool: {files} segment files, more than --max-spool {} holds: the targets still needing events up to #{through} give them up",
            bytesize::ByteSize(max_spool).display().iec(),
        ));
        for target in self.roster().iter() {
            target.wake.notify_one();
        }
    }

    /// Whether some target does not keep up: the senders of its events wait for the fsync.
    fn some_target_behind(&self) -> bool {
        self.roster().iter().any(|t| t.lag() != Lag::KeepingUp)
    }

    /// How long the slowest target that keeps up usually takes to answer.
    fn answers_in(&self) -> Duration {
        let slowest = self
            .roster()
            .iter()
            .filter(|t| t.lag() == Lag::KeepingUp)
            .map(|t| t.usual_us.load(Ordering::Relaxed))
            .max();
        Duration::from_micros(slowest.unwrap_or(0))
    }

    /// Hands appended events to the targets (called by the intake): counts the events each
    /// route kept away, and wakes the targets that want them.
    fn publish(&self, entries: Vec<Arc<Entry>>) {
        let roster = self.roster();
        let mut wake = vec![false; roster.len()];
        for entry in &entries {
            for (i, target) in roster.iter().enumerate() {
                match entry.verdicts.as_ref().and_then(|v| v.wants(target.slot)) {
                    Some(false) => {
                        target.filtered.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => wake[i] = true,
                }
            }
        }
        self.feed.publish(entries, self.needed());
        for (target, wake) in roster.iter().zip(wake) {
            if wake {
                target.wake.notify_one();
            }
        }
        // A segment was sealed: the spool grew by one, checked now rather than at the next
        // sweep (a fast sender fills megabytes in its 200 ms), and the segments every target
        // is done with go now, one of them kept as the spare the new segment will soon ask for
        // (`Spool::take_retired`): at the sweep, a busy relay had made its spares already.
        let sealed = self.spool.sealed_so_far();
        if self.sealed_seen.load(Ordering::Acquire) != sealed
            && self.sealed_seen.swap(sealed, Ordering::AcqRel) != sealed
        {
            if self.opts.max_spool.is_some() {
                self.keep_within_max_spool();
            }
            collect_garbage(self, SEGMENT_IDLE);
        }
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

/// Which targets an event goes to, judged by their routes when it arrives.
pub struct Judged {
    pub roster: Roster,
    pub verdicts: Arc<Verdicts>,
    /// Some target wants it.
    pub wanted: bool,
}

impl Hub {
    /// Starts one worker per target, each from the spooled events it has not finished yet, and
    /// the intake.
    pub fn start(
        spool: Arc<Spool>,
        recovered: Recovered,
        specs: Vec<TargetSpec>,
        opts: DeliveryOptions,
        log: Log,
    ) -> Result<Hub> {
        let memory = (super::feed::MEMORY_BUDGET, super::feed::MEMORY_EVENTS);
        Self::start_with(spool, recovered, specs, opts, log, memory)
    }

    /// `start` with the feed's memory budget: bytes of bodies, and events.
    fn start_with(
        spool: Arc<Spool>,
        recovered: Recovered,
        specs: Vec<TargetSpec>,
        opts: DeliveryOptions,
        log: Log,
        memory: (usize, usize),
    ) -> Result<Hub> {
        let first_live = spool.last_seq() + 1;
        let inner = Arc::new(Inner {
            feed: Feed::new(&recovered.events, first_live, memory.0, memory.1),
            intake: OnceLock::new(),
            recovered: recovered.events.iter().map(|e| e.seq).collect(),
            refused: AtomicU64::new(0),
            receiving: Arc::default(),
            given_up_through: AtomicU64::new(0),
            sealed_seen: AtomicU64::new(0),
            state: Mutex::new(State {
                workers: BTreeMap::new(),
                cursors: BTreeMap::new(),
                retired: Vec::new(),
                next_slot: 0,
            }),
            roster: RwLock::new(Arc::from(Vec::new())),
            lag_changed: Notify::new(),
            spool: spool.clone(),
            opts,
            log,
        });
        let weak = Arc::downgrade(&inner);
        let publish = Box::new(move |entries| {
            if let Some(inner) = weak.upgrade() {
                inner.publish(entries);
            }
        });
        let weak = Arc::downgrade(&inner);
        let receiving = inner.receiving.clone();
        let pace = SyncPace {
            every: SYNC_PACE,
            urgent: Box::new(move || {
                weak.upgrade()
                    .is_some_and(|inner| inner.some_target_behind())
            }),
            in_flight: Box::new(move || receiving.load(Ordering::Acquire)),
            answers_in: Box::new({
                let weak = Arc::downgrade(&inner);
                move || {
                    weak.upgrade()
                        .map_or(Duration::ZERO, |inner| inner.answers_in())
                }
            }),
        };
        let intake = Intake::start(spool, publish, pace).map_err(spool_error)?;
        let _ = inner.intake.set(intake);
        let hub = Hub { inner };
        for stale in recovered.cursors.keys() {
            if !specs.iter().any(|s| &s.name == stale) {
                hub.inner.spool.remove_cursor(stale).map_err(spool_error)?;
            }
        }
        {
            let mut state = hub.inner.state();
            for spec in specs {
                let cursor = match recovered.cursors.get(&spec.name) {
                    Some(c) => *c,
                    None => hub
                        .inner
                        .spool
                        .create_cursor(&spec.name)
                        .map_err(spool_error)?,
                };
                hub.spawn(&mut state, spec, cursor);
            }
            hub.update_roster(&state);
        }
        hub.collect_garbage();
        hub.sweep_periodically();
        Ok(hub)
    }

    fn spawn(&self, state: &mut State, spec: TargetSpec, cursor: u64) {
        let name = spec.name.clone();
        let target = Arc::new(Target {
            name: name.clone(),
            slot: state.next_slot,
            spec: RwLock::new(Arc::new(spec)),
            stats: Mutex::new(Stats::default()),
            filtered: AtomicU64::new(0),
            next: AtomicU64::new(cursor + 1),
            unfinished: AtomicUsize::new(0),
            lag: AtomicU8::new(Lag::KeepingUp as u8),
            usual_us: AtomicU64::new(0),
            wake: Notify::new(),
        });
        state.next_slot += 1;
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = Worker::new(target.clone(), self.inner.clone(), stop_rx, cursor);
        let join = tokio::spawn(worker.run());
        state.cursors.insert(name.clone(), cursor);
        state.workers.insert(
            name,
            WorkerHandle {
                target,
                stop: stop_tx,
                join,
            },
        );
    }

    fn update_roster(&self, state: &State) {
        let roster: Vec<Arc<Target>> = state.workers.values().map(|w| w.target.clone()).collect();
        *self.inner.roster.write().unwrap_or_else(|e| e.into_inner()) = Arc::from(roster);
    }

    /// Which targets' routes let an event through.
    pub fn judge(&self, body: &[u8], parsed: &Parsed) -> Judged {
        let roster = self.inner.roster();
        let mut verdicts = Verdicts::default();
        let mut wanted = false;
        for target in roster.iter() {
            let wants = target.wants(body, parsed);
            verdicts.set(target.slot, wants);
            wanted |= wants;
        }
        Judged {
            roster,
            verdicts: Arc::new(verdicts),
            wanted,
        }
    }

    /// Spools an event and hands it to the targets; returns what its sender waits for: its
    /// number once it is durable, or why it could not be spooled (`Intake::submit`, `Spooled`).
    pub fn submit(&self, event: Event, verdicts: Arc<Verdicts>, answer: Arc<Answer>) -> Spooled {
        let (done, spooled) = oneshot::channel();
        let intake = self.inner.intake.get().expect("set when the hub started");
        let submission = Submission {
            event,
            verdicts: Some(verdicts),
            answer: Some(answer),
            done,
        };
        intake.submit(submission);
        intake.spooled(spooled)
    }

    /// When the sender of an event `submit` took may be answered: once the event is durable
    /// (its number, `Ok((seq, true))`), or earlier once every target has it (`Ok((seq,
    /// false))`: each delivered its first attempt with a 2xx, or its route keeps the event
    /// away). An event every target has needs the disk for nobody: a crash before its fsync
    /// loses only what was delivered, and the numbers go on from the highest cursor
    /// (`Spool::open`). Any doubt (a target failed, lags, was not judged, or the targets
    /// changed since) waits for the fsync. `Err`: the spool could not take it.
    pub async fn acknowledged(
        &self,
        mut spooled: Spooled,
        judged: &Judged,
        answer: &Answer,
    ) -> std::result::Result<(u64, bool), String> {
        tokio::select! {
            biased;
            durable = spooled.durable() => durable.map(|seq| (seq, true)),
            () = self.wait_until(answer, || self.every_target_has(judged, answer)) => {
                Ok((answer.seq(), false))
            }
        }
    }

    /// Returns once `ready` holds, checking it again whenever a target reports on `answer` or
    /// stops keeping up.
    pub async fn wait_until(&self, answer: &Answer, ready: impl Fn() -> bool) {
        loop {
            let lagging = self.lag_changed().notified();
            let reported = answer.reported().notified();
            tokio::pin!(lagging, reported);
            lagging.as_mut().enable();
            reported.as_mut().enable();
            if ready() {
                return;
            }
            tokio::select! {
                _ = lagging => {}
                _ = reported => {}
            }
        }
    }

    fn every_target_has(&self, judged: &Judged, answer: &Answer) -> bool {
        Arc::ptr_eq(&judged.roster, &self.inner.roster())
            && judged
                .roster
                .iter()
                .all(|target| match judged.verdicts.wants(target.slot) {
                    Some(false) => true,
                    Some(true) => answer.delivered(&target.name),
                    None => false,
                })
    }

    /// Counts an event the spool could not take (its sender was answered 503 and sends it
    /// again; no target got it: it was never handed out).
    pub fn refused(&self) {
        self.inner.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request as being received until the guard goes.
    pub fn receiving(&self) -> Receiving {
        self.inner.receiving.fetch_add(1, Ordering::AcqRel);
        Receiving(self.inner.receiving.clone())
    }

    /// Told whenever a target stops keeping up.
    pub fn lag_changed(&self) -> &Notify {
        &self.inner.lag_changed
    }

    /// Applies a new set of targets: new ones start with events from now on, removed ones stop
    /// after their attempts in flight, changed ones use the new URL, secret, headers and route
    /// from their next event.
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
                    w.target.lag.store(Lag::Gone as u8, Ordering::Release);
                    state.retired.push(w.join);
                }
                state.cursors.remove(&name);
                self.inner.spool.remove_cursor(&name).map_err(spool_error)?;
                changes.removed.push(name);
            }
            for spec in specs {
                match state.workers.get(&spec.name) {
                    Some(w) if w.target.spec().fingerprint == spec.fingerprint => {}
                    Some(w) => {
                        changes.changed.push(spec.name.clone());
                        *w.target.spec.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(spec);
                    }
                    None => {
                        let cursor = self
                            .inner
                            .spool
                            .create_cursor(&spec.name)
                            .map_err(spool_error)?;
                        changes.added.push(spec.name.clone());
                        self.spawn(&mut state, spec, cursor);
                    }
                }
            }
            self.update_roster(&state);
        }
        self.inner.lag_changed.notify_waiters();
        self.collect_garbage();
        Ok(changes)
    }

    fn collect_garbage(&self) {
        collect_garbage(&self.inner, SEGMENT_IDLE);
    }

    /// Every so often: every target catches up with the events its route keeps away (it is
    /// woken only for those it wants), memory and segments every target is done with go.
    fn sweep_periodically(&self) {
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SEGMENT_IDLE);
            loop {
                tick.tick().await;
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                for target in inner.roster().iter() {
                    if target.next.load(Ordering::Acquire) <= inner.feed.head() {
                        target.wake.notify_one();
                    }
                }
                inner.feed.trim(inner.needed());
                inner.keep_within_max_spool();
                collect_garbage(&inner, SEGMENT_IDLE);
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
                let t = &w.target;
                let spec = t.spec();
                let next = t.next.load(Ordering::Acquire);
                let pending =
                    t.unfinished.load(Ordering::Acquire) as u64 + self.inner.feed.count_from(next);
                let s = t.stats();
                json!({
                    "name": name,
                    "url": spec.url,
                    "resigned": spec.signer.is_some(),
                    "delivered": s.delivered,
                    "filtered": t.filtered.load(Ordering::Relaxed),
                    "route": spec.route.describe(),
                    "pending": pending,
                    "failing_since": s.failing_since.map(crate::timestamp::rfc3339),
                    "last_error": s.last_error,
                    "failed_attempts": s.failed_attempts,
                    "gave_up": s.gave_up,
                    "last_delivered_at": s.last_delivered.map(crate::timestamp::rfc3339),
                    "cursor": state.cursors.get(name),
                })
            })
            .collect();
        let spool = &self.inner.spool;
        json!({
            "refused_not_spooled": self.inner.refused.load(Ordering::Relaxed),
            "spool": {
                "dir": spool.dir().display().to_string(),
                "events": self.spooled_events(&state),
                "segments": spool.segments(),
                "last_seq": spool.last_seq(),
                "max_bytes": self.inner.opts.max_spool,
            },
            "targets": targets,
        })
    }

    /// Events in the spool that some target is not done with.
    fn spooled_events(&self, state: &State) -> u64 {
        let done = state.cursors.values().min().copied().unwrap_or(0);
        let recovered = &self.inner.recovered;
        let old = recovered.len() - recovered.partition_point(|&s| s <= done);
        let first_live = self.inner.feed.first_live();
        let new = self
            .inner
            .spool
            .last_seq()
            .saturating_sub(done.max(first_live - 1));
        old as u64 + new
    }

    pub fn target_names(&self) -> Vec<String> {
        self.inner.state().workers.keys().cloned().collect()
    }

    /// Where the relay logs.
    pub fn log(&self) -> Log {
        self.inner.log.clone()
    }
}

/// Deletes the spool's segments that hold only events every target is done with (the one
/// being written to once it has been idle for `idle`).
fn collect_garbage(inner: &Inner, idle: Duration) {
    let Some(done_through) = inner.state().cursors.values().min().copied() else {
        return;
    };
    let gone = inner.spool.take_retired(done_through, idle);
    if gone.is_empty() {
        // The usual case at each sweep: a blocking task for nothing cost a thread's wake-up
        // and the async thread's, five times a second even while the relay is idle.
        return;
    }
    let spool = inner.spool.clone();
    let remove = move || spool.remove_retired(gone);
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn_blocking(remove)),
        Err(_) => remove(),
    }
}

/// How long the segment being written to must be idle before it is deleted once delivered.
const SEGMENT_IDLE: Duration = Duration::from_millis(200);

fn spool_error(e: io::Error) -> Error {
    Error::external(format!("spool: {e}"))
}

#[cfg(test)]
mod tests;
