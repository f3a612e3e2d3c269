//! The intake: each request appends its event to the spool itself (numbered as it is written),
//! with those of the requests that came while another one was appending, and hands them to the
//! targets at once (`Intake::submit`); a thread makes them durable with one fsync for
//! everything appended before it starts, then answers each of those requests (group commit:
//! every request waits for the fsync that covers it): when some target is behind at once, or
//! once the other requests in flight joined it when there are many, else once a request has
//! waited half a `SYNC_PACE` for it, or twice what its targets usually take to answer, and asks
//! for it (`Spooled`; at most once per `SYNC_PACE`, `SyncPace`). Delivery thus never waits for
//! the disk; the sender gets its 2xx once its event is durable, or before that once every
//! target has it (`Hub::acknowledged`), and an fsync nobody waits for any more is not run.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Answer, Entry, Verdicts};
use crate::fanout::spool::{Event, Spool};

/// An event handed to the intake; the answer is its number once it is durable.
pub struct Submission {
    pub event: Event,
    pub verdicts: Option<Arc<Verdicts>>,
    pub answer: Option<Arc<Answer>>,
    pub done: Done,
}

/// Called by the intake with the events it appended, before it syncs them.
pub type Publish = Box<dyn Fn(Vec<Arc<Entry>>) + Send + Sync>;

/// Told when an event is durable (its number), or why it could not be spooled.
type Done = oneshot::Sender<Result<u64, String>>;

struct Queue<T> {
    items: Vec<T>,
    closing: bool,
    waiter: Waiter,
    /// How many items the draining thread holds while it waits out its pace.
    held: usize,
    /// Somebody waiting for an item asked for it now (`nudge`).
    nudged: bool,
}

/// What the thread draining a queue is doing: a push wakes it only when it waits for that
/// push. Waking it for every event (a futex call by the relay's async thread, and the syncing
/// thread scheduled on the other core only to go back to sleep while it keeps its pace) cost
/// 2.9 futex calls per event at concurrency 1; 0.5 since (`perf trace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiter {
    /// Busy, or already woken: it looks at the queue before it waits again.
    Busy,
    /// Waiting until it is needed: an urgent push, `QUEUED_MAX` items, a nudge.
    Idle,
    /// Waiting out its pace: only an urgent push ends that early.
    Pacing,
}

/// Items an idle thread lets pile up before a push wakes it anyway: the written events of
/// senders answered without the disk are dropped a batch at a time, so memory stays bounded.
const QUEUED_MAX: usize = 64;

/// A queue one thread drains in batches.
struct Batches<T> {
    queue: Mutex<Queue<T>>,
    wake: Condvar,
}

impl<T> Default for Batches<T> {
    fn default() -> Self {
        Batches {
            queue: Mutex::new(Queue {
                items: Vec::new(),
                closing: false,
                waiter: Waiter::Busy,
                held: 0,
                nudged: false,
            }),
            wake: Condvar::new(),
        }
    }
}

impl<T> Batches<T> {
    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues items; wakes the draining thread if `ready` holds (given how many it holds and how
    /// many are queued), or it is idle and `QUEUED_MAX` are queued.
    fn push(&self, items: impl IntoIterator<Item = T>, ready: impl Fn(usize, usize) -> bool) {
        let mut queue = self.lock();
        queue.items.extend(items);
        let came = queue.items.len();
        let wake = match queue.waiter {
            Waiter::Busy => false,
            Waiter::Idle => came > 0 && (came >= QUEUED_MAX || ready(0, came)),
            Waiter::Pacing => came > 0 && ready(queue.held, came),
        };
        if wake {
            queue.waiter = Waiter::Busy;
            self.wake.notify_one();
        }
    }

    fn close(&self) {
        self.lock().closing = true;
        self.wake.notify_one();
    }

    /// Asks an idle draining thread to look at what it has now.
    fn nudge(&self) {
        let mut queue = self.lock();
        queue.nudged = true;
        if queue.waiter == Waiter::Idle {
            queue.waiter = Waiter::Busy;
            self.wake.notify_one();
        }
    }

    /// Adds to `batch` what came by `due`, or until closed, or until something came and `ready`
    /// holds (given the batch's length and how many came).
    fn take_more_at(
        &self,
        due: Instant,
        ready: impl Fn(usize, usize) -> bool,
        batch: &mut Vec<T>,
    ) -> Taking {
        let mut queue = self.lock();
        loop {
            let left = due.saturating_duration_since(Instant::now());
            let came = queue.items.len();
            if queue.closing || left.is_zero() || (came > 0 && ready(batch.len(), came)) {
                break;
            }
            queue.held = batch.len();
            queue.waiter = Waiter::Pacing;
            queue = match self.wake.wait_timeout(queue, left) {
                Ok((queue, _)) => queue,
                Err(e) => e.into_inner().0,
            };
        }
        Self::hand_over(&mut queue, batch)
    }

    /// Waits until there is a reason to look (something came and `ready` holds for it,
    /// `QUEUED_MAX` came, a nudge, closing), then adds what came to `batch`.
    fn take(&self, ready: impl Fn(usize, usize) -> bool, batch: &mut Vec<T>) -> Taking {
        let mut queue = self.lock();
        let came = queue.items.len();
        let look = queue.nudged || came >= QUEUED_MAX || (came > 0 && ready(0, came));
        if !look {
            queue.waiter = Waiter::Idle;
            while queue.waiter == Waiter::Idle && !queue.closing {
                queue = self.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
        }
        Self::hand_over(&mut queue, batch)
    }

    fn hand_over(queue: &mut Queue<T>, batch: &mut Vec<T>) -> Taking {
        queue.waiter = Waiter::Busy;
        batch.append(&mut queue.items);
        Taking {
            open: !queue.closing,
            nudged: std::mem::take(&mut queue.nudged),
        }
    }
}

/// What the draining thread learnt when it took items.
struct Taking {
    /// False once the queue is closed.
    open: bool,
    /// Somebody waiting asked for the items now.
    nudged: bool,
}

/// How often the syncing thread makes appended events durable when nobody is likely to wait
/// for it (`SyncPace`): every target keeps up, so each sender is answered once every target
/// has its event, before the fsync. Syncing each batch at once made it one fsync per event at
/// concurrency 1 (about 8,000 a second), and on the test machine's virtual disk that much
/// flushing got the whole machine paused for 10-20 ms in each 100 ms once its cores were busy
/// (`docs/SPOOL.md`). Paced to one per millisecond, in one run of `cargo bench --bench
/// fanout`: concurrency 1 went from 7,825-8,361 to 10,371-10,480 events/s and the relay's CPU
/// per event from 78-83 to 69-71 µs; the p99 answer at concurrency 16 from 3.04-5.09 to
/// 1.61-2.87 ms. A disk with an IOPS budget (3,000 for an EBS gp3 volume) is spared the same
/// way.
///
/// Each event now gets half of this to be answered without the disk: an fsync runs only for a
/// sender still waiting after it (every target answered by then at concurrency 1, so none
/// runs), covering everything written before it, and still at most one per pace. At
/// concurrency 1 (`perf stat`): fdatasync calls from 0.2 to 0.002 per event, context switches
/// from 3.4 to 2.5; in one run of `cargo bench --bench fanout`, the relay's CPU per event from
/// 115-120 to 98-119 µs (with `--no-fsync`: 99-106), at scale (1,000 events/s to 100 targets)
/// from 326 to 267 µs.
pub const SYNC_PACE: Duration = Duration::from_millis(1);

/// The longest an event waits for targets that keep up before an fsync covers it. Events 38
/// ms apart (26 a second) to a receiver answering in 1-3 ms each had an fsync started half a
/// pace after them, the answer came first, and the fsync was for nobody; waiting twice the
/// usual answer, the fsync thread's CPU fell from 14.8-20.8 to 5.4-6.5 ms in 7 s, the relay's
/// from 113-124 to 97-108 ms (`perf stat --per-thread`, four runs each, with the log and cursor
/// writers' longer gathering). `cargo bench --bench fanout`, parts compare and isolation, three
/// rounds beside the build before: no change at c=1, c=16 or beside a slow target.
pub const SYNC_UNHURRIED: Duration = Duration::from_millis(20);

/// How many requests must be in flight for an urgent fsync to wait for the others
/// (`SyncPace`), as PostgreSQL's `commit_siblings` does for its `commit_delay`.
pub const SYNC_SIBLINGS: usize = 8;

/// How long an urgent fsync waits at most for the other requests in flight to join it.
pub const SYNC_GATHER: Duration = Duration::from_micros(250);

/// When the syncing thread runs an fsync: while `urgent` says a sender is likely to wait for
/// it (some target is behind: its events' senders wait for the disk), at once, or, with at
/// least `SYNC_SIBLINGS` requests in flight, once each of them waits for it or the first has
/// waited `SYNC_GATHER`; else once a sender has waited half of `every` or twice the targets'
/// usual answer (`unhurried`) and asks for it (`Spooled::durable`), at most one per `every`.
/// Each fsync covers everything appended before it, and none runs for senders already
/// answered.
///
/// Urgent fsyncs started at once ran back to back beside a slow target at concurrency 16, 3.75
/// events each; gathered, 5.9, and the two fast targets got 15,640-16,814 events/s instead of
/// 14,133-14,966 (`cargo bench --bench fanout`, part `isolation`, one run). Gathering at
/// concurrency 4 cost more than it saved (`docs/SPOOL.md`).
pub struct SyncPace {
    pub every: Duration,
    pub urgent: Box<dyn Fn() -> bool + Send + Sync>,
    /// The requests in flight now (0 when unknown: nobody is waited for).
    pub in_flight: Box<dyn Fn() -> usize + Send + Sync>,
    /// How long the targets that keep up usually take to answer (the slowest of them; zero
    /// when unknown).
    pub answers_in: Box<dyn Fn() -> Duration + Send + Sync>,
}

impl SyncPace {
    fn urgent(&self) -> bool {
        (self.urgent)()
    }

    /// How many events an urgent fsync waits for: none unless enough requests are in flight.
    fn gathering(&self) -> usize {
        let in_flight = (self.in_flight)();
        if in_flight >= SYNC_SIBLINGS {
            in_flight
        } else {
            0
        }
    }

    /// Whether events that came while the syncing thread held `held` others wake it: while
    /// urgent, the first ones (the thread sets their deadline), and the last ones awaited.
    fn wakes(&self, held: usize, came: usize) -> bool {
        self.urgent() && (held == 0 || held + came >= self.gathering())
    }

    /// When an urgent fsync for `waiting` events, the first written at `first`, is to start.
    fn due(&self, waiting: usize, first: Instant) -> Instant {
        if waiting >= self.gathering() {
            Instant::now()
        } else {
            first + SYNC_GATHER
        }
    }

    /// How long an event may wait for its targets before it is made durable while every target
    /// keeps up: half a pace, or twice what the slowest of them usually takes to answer, so
    /// that a target answering in a few milliseconds (an app on the same host) does not cost
    /// an fsync per event at low rates; at most `SYNC_UNHURRIED`.
    fn unhurried(&self) -> Duration {
        ((self.answers_in)() * 2).clamp(self.every / 2, SYNC_UNHURRIED.max(self.every / 2))
    }
}

/// The intake (see the module comment): the submitters append, and a thread syncs and answers,
/// so that appending (and delivering) goes on while an fsync runs. The thread ends when this
/// handle is dropped, after syncing what was appended.
pub struct Intake {
    stage: Arc<Stage>,
    syncer: Option<std::thread::JoinHandle<()>>,
}

/// Appends events and hands them out, one batch at a time, so that the targets take them in
/// the order of their numbers.
struct Stage {
    spool: Arc<Spool>,
    publish: Publish,
    written: Batches<Written>,
    pace: SyncPace,
    /// Submitted while another submitter was appending: that one appends them too.
    queued: Mutex<Vec<Submission>>,
    appending: Mutex<()>,
}

impl Stage {
    fn queued(&self) -> MutexGuard<'_, Vec<Submission>> {
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends what is queued, unless another submitter is appending (it takes what is queued
    /// before it lets go): a group commit without a thread of its own to wake.
    fn append_queued(&self) {
        loop {
            let _appending = match self.appending.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(e)) => e.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            loop {
                let mut batch = std::mem::take(&mut *self.queued());
                if batch.is_empty() {
                    break;
                }
                self.append(&mut batch);
            }
            drop(_appending);
            // Queued after the last look but before the lock was let go: nobody else saw it.
            if self.queued().is_empty() {
                return;
            }
        }
    }

    /// Appends one batch, with the appending lock held.
    fn append(&self, batch: &mut Vec<Submission>) {
        let (durable, entries) = append(&self.spool, batch);
        // The fsync is started before the targets are woken: at concurrency 1 the syncing
        // thread otherwise waited ~40 µs for a core behind the first deliveries (perf trace).
        // Without fsync there is nothing to wait for and no thread to wake.
        if self.spool.fsyncs() {
            let at = Instant::now();
            let durable = durable
                .into_iter()
                .map(|(seq, done)| Written { seq, done, at });
            self.written
                .push(durable, |held, came| self.pace.wakes(held, came));
        } else {
            answer(durable, &Ok(()));
        }
        if !entries.is_empty() {
            (self.publish)(entries);
        }
    }

    /// The syncing thread: one fsync for everything written before it starts, then the answers.
    /// While some target is behind, at once or gathered (`SyncPace::due`), by its own clock.
    /// Otherwise it sleeps until a sender still waiting at its deadline asks for it
    /// (`Spooled::durable`): the senders answered before (every target had their events) or
    /// gone need no fsync, and while every target keeps up it is woken once per `QUEUED_MAX`
    /// events, not once or twice per event as when it kept every event's deadline itself: at
    /// concurrency 16, fdatasync calls 1,407 → 413 and the relay's context switches 28,281 →
    /// 13,643 for the same 60,000 events, 16,027 → 18,358 events/s (`docs/SPOOL.md`).
    fn sync_all(&self) {
        let wakes = |held: usize, came: usize| self.pace.wakes(held, came);
        // In the order they were written, so the first is due first.
        let mut waiting: Vec<Written> = Vec::new();
        // No fsync starts sooner than a pace after the last one, unless urgent.
        let mut next_allowed = Instant::now();
        loop {
            let taking = match waiting.first() {
                Some(first) if self.pace.urgent() => {
                    let due = self.pace.due(waiting.len(), first.at);
                    self.written.take_more_at(due, wakes, &mut waiting)
                }
                _ => self.written.take(wakes, &mut waiting),
            };
            waiting.retain(|w| !w.done.is_closed());
            let Some(first) = waiting.first() else {
                if taking.open {
                    continue;
                }
                return;
            };
            let urgent = self.pace.urgent();
            let sync = match urgent {
                true => self.pace.due(waiting.len(), first.at) <= Instant::now(),
                false => taking.nudged,
            };
            if taking.open && !sync {
                continue;
            }
            if taking.open && !urgent && next_allowed > Instant::now() {
                self.written.take_more_at(next_allowed, wakes, &mut waiting);
            }
            next_allowed = Instant::now() + self.pace.every;
            answer(
                waiting.drain(..).map(|w| (w.seq, w.done)),
                &self.spool.sync().map_err(|e| e.to_string()),
            );
        }
    }
}

/// A written event (at `at`) whose sender may wait for its fsync.
struct Written {
    seq: u64,
    done: Done,
    at: Instant,
}

impl Intake {
    pub fn start(spool: Arc<Spool>, publish: Publish, pace: SyncPace) -> std::io::Result<Intake> {
        let stage = Arc::new(Stage {
            spool,
            publish,
            written: Batches::default(),
            pace,
            queued: Mutex::new(Vec::new()),
            appending: Mutex::new(()),
        });
        let syncer = {
            let stage = stage.clone();
            std::thread::Builder::new()
                .name("fanout-sync".into())
                .spawn(move || stage.sync_all())?
        };
        Ok(Intake {
            stage,
            syncer: Some(syncer),
        })
    }

    /// Appends the event and hands it out, blocking for a write to the page cache, with those
    /// submitted meanwhile by others while they wait for this one's write (one write, one wake
    /// per target); or, when another submitter is appending, leaves it to that one. A thread
    /// that appended everything submitted while it was busy cost a wake-up each way: at
    /// concurrency 16 it took 11 µs per event (0.6 context switches, 0.8 futex calls, 0.3
    /// writes to wake the async thread; `perf stat`), and without it the relay delivered
    /// 16,082-19,019 events/s to all 3 targets at 55-62 µs of CPU each instead of 13,820-15,763
    /// at 64-68 (`cargo bench --bench fanout`, same runs). A request alone already appended its
    /// own: without the thread's wake-up a sender at concurrency 1 had waited 136-143 µs per
    /// event instead of 154-166.
    pub fn submit(&self, submission: Submission) {
        self.stage.queued().push(submission);
        self.stage.append_queued();
    }

    /// What the sender of a submission just made waits for, given the receiving end of its
    /// `done`.
    pub fn spooled(&self, answer: oneshot::Receiver<Result<u64, String>>) -> Spooled {
        Spooled {
            answer,
            due: Instant::now() + self.stage.pace.unhurried(),
            stage: self.stage.clone(),
        }
    }
}

/// What the sender of a submitted event waits for: its number once it is durable, or why it
/// could not be spooled. While every target keeps up, the syncing thread is not told about the
/// event: its sender is usually answered before that (`Hub::acknowledged`), and only one still
/// waiting after `SyncPace::unhurried` asks for the fsync.
pub struct Spooled {
    answer: oneshot::Receiver<Result<u64, String>>,
    due: Instant,
    stage: Arc<Stage>,
}

impl Spooled {
    pub async fn durable(&mut self) -> Result<u64, String> {
        let asked = tokio::select! {
            biased;
            answer = &mut self.answer => Some(answer),
            () = tokio::time::sleep_until(self.due.into()) => None,
        };
        let answer = match asked {
            Some(answer) => answer,
            None => {
                self.stage.written.nudge();
                (&mut self.answer).await
            }
        };
        answer.unwrap_or_else(|_| Err("the spool's writer stopped".into()))
    }
}

impl Drop for Intake {
    /// Waits for what was appended to be synced and answered, and for the thread to end (no
    /// submitter is left: each `submit` has appended its event, or left it to one that did).
    fn drop(&mut self) {
        self.stage.written.close();
        if let Some(syncer) = self.syncer.take() {
            let _ = syncer.join();
        }
    }
}

/// Tells each written event's sender whether it is durable.
fn answer(written: impl IntoIterator<Item = (u64, Done)>, synced: &Result<(), String>) {
    for (seq, done) in written {
        let _ = done.send(synced.clone().map(|()| seq));
    }
}

/// Why events were not spooled (logged, and said in the 503): a full disk says what usually
/// fills it.
fn refusal(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::StorageFull => format!(
            "{e}: the disk is full (a target that does not answer keeps its events: `pending` in /status; --max-spool bounds the spool)"
        ),
        _ => e.to_string(),
    }
}

/// Appends one batch; returns what waits for the fsync and what the targets are to take (the
/// refused are answered at once).
fn append(spool: &Spool, batch: &mut Vec<Submission>) -> (Vec<(u64, Done)>, Vec<Arc<Entry>>) {
    let mut events: Vec<Event> = batch
        .iter_mut()
        .map(|s| std::mem::replace(&mut s.event, placeholder()))
        .collect();
    let appended = spool.append(&mut events);
    let refused = appended.error.as_ref().map(refusal);
    let mut entries = Vec::with_capacity(appended.written);
    let mut written = Vec::with_capacity(appended.written);
    for (event, submission) in events.into_iter().zip(batch.drain(..)) {
        if event.seq == 0 {
            let why = refused.clone().unwrap_or_else(|| "not written".into());
            let _ = submission.done.send(Err(why));
            continue;
        }
        if let Some(answer) = &submission.answer {
            answer.seq.store(event.seq, Ordering::Release);
        }
        written.push((event.seq, submission.done));
        entries.push(Arc::new(Entry {
            event: Arc::new(event),
            answer: submission.answer,
            verdicts: submission.verdicts,
        }));
    }
    (written, entries)
}

pub(super) fn placeholder() -> Event {
    Event {
        seq: 0,
        id: None,
        received_ms: 0,
        content_type: None,
        signature: None,
        body: Default::default(),
        parsed: Default::default(),
    }
}

#[cfg(test)]
#[path = "intake_tests.rs"]
mod tests;
