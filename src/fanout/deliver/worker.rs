//! A target's worker: takes its events from the shared feed (or reads them back from the spool
//! when it is behind the feed's memory), runs its window of attempts, switches to recovery on
//! the first failure, keeps its cursor, and says whether it keeps up (`Lag`).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};

use super::*;
use crate::fanout::log::Line;

struct Job {
    event: Arc<Event>,
    /// The request waiting for its first attempt.
    answer: Option<Arc<Answer>>,
    /// Failed attempts so far.
    failures: u32,
}

struct Flight {
    job: Job,
    was_retry: bool,
    started: Instant,
}

type ReadBack = io::Result<(Vec<Event>, Option<ReadAt>)>;

type Attempt = Pin<Box<dyn Future<Output = (u64, Outcome)> + Send>>;

pub(super) struct Worker {
    target: Arc<Target>,
    hub: Arc<Inner>,
    stop: watch::Receiver<bool>,
    /// The next number to take from the feed.
    next: u64,
    /// Entries taken from the feed, not started yet.
    taken: VecDeque<Arc<Entry>>,
    /// Failed events waiting for their retry, in sequence order.
    retries: VecDeque<Job>,
    /// Events read back from the spool, not started yet.
    from_disk: VecDeque<Arc<Event>>,
    read_at: Option<ReadAt>,
    reading: Option<JoinHandle<ReadBack>>,
    /// The number the read under way goes up to (excluded).
    reading_until: u64,
    /// The attempts in flight, driven by this worker's own task (no task per attempt: a
    /// spawn, its scheduling and the wake-up of the worker when it ends cost more than the
    /// attempt's own work at thousands of events a second), each ending with its number.
    attempts: FuturesUnordered<Attempt>,
    /// By attempt number: the first is the oldest.
    in_flight: BTreeMap<u64, Flight>,
    /// The number of the next attempt.
    attempt_no: u64,
    /// Numbers taken and not finished yet (queued, in flight or waiting for a retry).
    unfinished: BTreeSet<u64>,
    highest_finished: u64,
    cursor: u64,
    saved_cursor: u64,
    /// The hub's `given_up_through` as this worker last carried it out.
    given_up_through: u64,
    /// Present while the target is failing or catching up: then its events go one at a time,
    /// strictly in order, each after the previous one was delivered.
    recovery: Option<Recovery>,
    lag: Lag,
    usual: Usual,
}

struct Recovery {
    /// Failed retries of the oldest event (the exponent of the backoff).
    failures: u32,
    next_attempt: Instant,
}

impl Worker {
    /// The worker of `target`, starting after `cursor` (the last number it is done with).
    pub(super) fn new(
        target: Arc<Target>,
        hub: Arc<Inner>,
        stop: watch::Receiver<bool>,
        cursor: u64,
    ) -> Worker {
        Worker {
            target,
            hub,
            stop,
            next: cursor + 1,
            taken: VecDeque::new(),
            retries: VecDeque::new(),
            from_disk: VecDeque::new(),
            read_at: None,
            reading: None,
            reading_until: 0,
            attempts: FuturesUnordered::new(),
            in_flight: BTreeMap::new(),
            attempt_no: 0,
            unfinished: BTreeSet::new(),
            highest_finished: cursor,
            cursor,
            saved_cursor: cursor,
            given_up_through: 0,
            recovery: None,
            lag: Lag::KeepingUp,
            usual: Usual::default(),
        }
    }

    pub(super) async fn run(mut self) {
        let mut stopping = false;
        // One timer for the next retry or the moment an attempt makes the target slow, moved
        // only when that moment changes (not a new timer per loop).
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        loop {
            self.give_up_for_space();
            if !stopping {
                self.start_attempts();
            }
            self.save_cursor();
            self.update_lag();
            if stopping && self.attempts.is_empty() {
                return;
            }
            let retry_at = self.retry_due().filter(|_| !stopping);
            let due = retry_at.into_iter().chain(self.slow_due()).min();
            if due != armed {
                if let Some(at) = due {
                    timer.as_mut().reset(at);
                }
                armed = due;
            }
            let target = self.target.clone();
            tokio::select! {
                Some((no, outcome)) = self.attempts.next(), if !self.attempts.is_empty() => {
                    self.settle(no, outcome);
                }
                read = wait_for(&mut self.reading), if self.reading.is_some() => {
                    self.reading = None;
                    self.read_back(read);
                }
                _ = target.wake.notified(), if !stopping => {}
                _ = &mut timer, if armed.is_some() => armed = None,
                _ = self.stop.changed(), if !stopping => stopping = true,
            }
        }
    }

    /// While healthy, up to `in_flight` attempts run at once, started in sequence order; while
    /// recovering, one at a time, once the backoff delay is over.
    fn start_attempts(&mut self) {
        loop {
            let limit = match &self.recovery {
                None => self.hub.opts.in_flight.max(1),
                Some(r) if Instant::now() >= r.next_attempt => 1,
                Some(_) => 0,
            };
            if self.attempts.len() >= limit {
                return;
            }
            let Some(job) = self.next_job() else {
                return;
            };
            self.launch(job);
        }
    }

    /// The oldest event to attempt: a retry, else the next one its route lets through.
    fn next_job(&mut self) -> Option<Job> {
        if let Some(job) = self.retries.pop_front() {
            return Some(job);
        }
        loop {
            if let Some(event) = self.from_disk.pop_front() {
                if let Some(job) = self.unless_filtered(event, None, None) {
                    return Some(job);
                }
                continue;
            }
            if let Some(entry) = self.taken.pop_front() {
                let verdict = entry
                    .verdicts
                    .as_ref()
                    .and_then(|v| v.wants(self.target.slot));
                if let Some(job) =
                    self.unless_filtered(entry.event.clone(), entry.answer.clone(), verdict)
                {
                    return Some(job);
                }
                continue;
            }
            if self.reading.is_some() || !self.take() {
                return None;
            }
        }
    }

    /// Takes the next entries from the feed, or starts reading them back from the spool;
    /// whether it took some.
    fn take(&mut self) -> bool {
        let mut out = Vec::new();
        match self.hub.feed.take(self.next, TAKE, &mut out) {
            Taken::Some => {
                for entry in out {
                    self.unfinished.insert(entry.event.seq);
                    self.next = entry.event.seq + 1;
                    self.taken.push_back(entry);
                }
                self.target.next.store(self.next, Ordering::Release);
                true
            }
            Taken::Nothing => false,
            Taken::OnDisk { until } => {
                let (spool, from, at) = (self.hub.spool.clone(), self.next, self.read_at.take());
                self.reading_until = until;
                self.reading = Some(tokio::task::spawn_blocking(move || {
                    spool.read_from(from, until, READ_BACK, at)
                }));
                false
            }
        }
    }

    fn read_back(&mut self, read: std::result::Result<ReadBack, JoinError>) {
        let until = self.reading_until;
        match read.map_err(io::Error::other).and_then(|r| r) {
            Ok((events, at)) => {
                self.read_at = at;
                if events.is_empty() {
                    // Nothing readable there: the records were damaged (and logged).
                    self.hub.log.line(format!(
                        "target {}: events #{} to #{} could not be read back from the spool; skipped",
                        self.target.name,
                        self.next,
                        until.saturating_sub(1)
                    ));
                    self.next = until.max(self.next);
                }
                for event in events {
                    if event.seq <= self.given_up_through {
                        continue;
                    }
                    self.unfinished.insert(event.seq);
                    self.next = event.seq + 1;
                    self.from_disk.push_back(Arc::new(event));
                }
                self.target.next.store(self.next, Ordering::Release);
            }
            Err(e) => {
                self.hub.log.line(format!(
                    "target {}: cannot read the spool back: {e}; trying again",
                    self.target.name
                ));
            }
        }
    }

    /// When the next retry is due: recovering, nothing in flight, and something waiting.
    fn retry_due(&self) -> Option<Instant> {
        let r = self.recovery.as_ref()?;
        (self.attempts.is_empty() && !self.caught_up()).then_some(r.next_attempt)
    }

    /// Everything taken was finished and nothing more is there to take.
    fn caught_up(&self) -> bool {
        self.retries.is_empty()
            && self.taken.is_empty()
            && self.from_disk.is_empty()
            && self.reading.is_none()
            && self.next > self.hub.feed.head()
    }

    fn launch(&mut self, job: Job) {
        let event = job.event.clone();
        if event.seq <= self.cursor {
            self.finish(event.seq);
            return;
        }
        if self.too_old(&event) {
            self.give_up(job);
            return;
        }
        let spec = self.target.spec();
        let client = self.hub.opts.client.clone();
        let no = self.attempt_no;
        self.attempt_no += 1;
        self.attempts.push(Box::pin(async move {
            let outcome = AssertUnwindSafe(attempt(&client, &spec, &event))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Outcome {
                    name: spec.name.clone(),
                    status: None,
                    ok: false,
                    ms: 0.0,
                    error: Some(
                        "the delivery failed unexpectedly (a bug: please report it)".into(),
                    ),
                    queued: false,
                    filtered: false,
                });
            (no, outcome)
        }));
        self.in_flight.insert(
            no,
            Flight {
                job,
                was_retry: self.recovery.is_some(),
                started: Instant::now(),
            },
        );
    }

    fn settle(&mut self, no: u64, outcome: Outcome) {
        let Some(Flight {
            mut job,
            was_retry,
            started,
        }) = self.in_flight.remove(&no)
        else {
            return;
        };
        self.usual.record(started.elapsed());
        self.target
            .usual_us
            .store(self.usual.micros(), Ordering::Relaxed);
        let answer = job.answer.take();
        if outcome.ok {
            self.delivered(job, &outcome, was_retry);
        } else {
            self.failed(job, &outcome, was_retry);
        }
        if let Some(answer) = answer {
            answer.report(outcome);
        }
    }

    /// A job for the event, unless the target's route keeps it away (judged when it arrived,
    /// else now): then it is done at once.
    fn unless_filtered(
        &mut self,
        event: Arc<Event>,
        answer: Option<Arc<Answer>>,
        verdict: Option<bool>,
    ) -> Option<Job> {
        let wants = verdict.unwrap_or_else(|| {
            let wants = self.target.wants(&event.body, &event.parsed);
            if !wants {
                self.target.filtered.fetch_add(1, Ordering::Relaxed);
            }
            wants
        });
        if wants {
            return Some(Job {
                event,
                answer,
                failures: 0,
            });
        }
        self.finish(event.seq);
        None
    }

    fn too_old(&self, event: &Event) -> bool {
        let age_ms = crate::timestamp::unix_ms().saturating_sub(event.received_ms);
        age_ms > 0 && age_ms as u128 > self.hub.opts.max_age.as_millis()
    }

    fn delivered(&mut self, job: Job, outcome: &Outcome, was_retry: bool) {
        let event = &job.event;
        if self.hub.log.enabled() {
            let line = Line::new("target ")
                .text(&self.target.name)
                .text(" ")
                .text(&event_label(event))
                .text(" #")
                .num(event.seq)
                .text(": delivered, ")
                .num(outcome.status.unwrap_or_default())
                .text(" in ")
                .ms(outcome.ms)
                .text(" ms");
            self.hub.log.line(match job.failures {
                0 => line,
                n => line.text(" (attempt ").num(n + 1).text(")"),
            });
        }
        {
            let mut s = self.target.stats();
            s.delivered += 1;
            s.last_delivered = Some(SystemTime::now());
            if was_retry || self.recovery.is_none() {
                s.failing_since = None;
            }
        }
        if was_retry && let Some(r) = &mut self.recovery {
            r.failures = 0;
            r.next_attempt = Instant::now();
        }
        self.finish(event.seq);
        if self.attempts.is_empty() && self.caught_up() {
            self.recovery = None;
        }
    }

    /// A failed attempt puts its event back among the retries, in order; the first failure
    /// makes the target recover (one at a time, in order), and each failed retry doubles the
    /// delay.
    fn failed(&mut self, mut job: Job, outcome: &Outcome, was_retry: bool) {
        let error = outcome.error.clone().unwrap_or_default();
        {
            let mut s = self.target.stats();
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
        self.queue_retry(job);
        let failures = match &self.recovery {
            None => 0,
            Some(r) if was_retry => r.failures + 1,
            Some(_) => {
                self.hub.log.line(format!(
                    "target {} {label} #{seq}: attempt {attempt} failed: {error}; queued for retry",
                    self.target.name
                ));
                return;
            }
        };
        let delay = self.hub.opts.backoff.delay(failures, rand::random());
        self.recovery = Some(Recovery {
            failures,
            next_attempt: Instant::now() + delay,
        });
        self.hub.log.line(format!(
            "target {} {label} #{seq}: attempt {attempt} failed: {error}; retrying in {:.1} s",
            self.target.name,
            delay.as_secs_f64()
        ));
    }

    /// Tells a sender still waiting for the job's first attempt that it was given up.
    fn not_delivered(&self, job: &mut Job, why: &str) {
        if let Some(answer) = job.answer.take() {
            answer.report(Outcome {
                error: Some(why.into()),
                ..queued_outcome(&self.target.name)
            });
        }
    }

    /// Puts a job among the retries, in sequence order.
    fn queue_retry(&mut self, job: Job) {
        let at = self
            .retries
            .partition_point(|j| j.event.seq < job.event.seq);
        self.retries.insert(at, job);
    }

    fn give_up(&mut self, mut job: Job) {
        let event = job.event.clone();
        let last = self
            .target
            .stats()
            .last_error
            .clone()
            .unwrap_or_else(|| "none".into());
        self.hub.log.line(format!(
            "target {} {} #{}: GAVE UP, older than max-age {} s (last error: {last})",
            self.target.name,
            event_label(&event),
            event.seq,
            self.hub.opts.max_age.as_secs()
        ));
        self.target.stats().gave_up += 1;
        if let Some(r) = &mut self.recovery {
            r.failures = 0;
        }
        self.not_delivered(&mut job, "older than max-age; not delivered");
        self.finish(event.seq);
    }

    /// An event is done (delivered, given up or kept away by the route): the cursor moves up to
    /// just below the oldest event still unfinished, so it never passes one the target has not
    /// had.
    fn finish(&mut self, seq: u64) {
        self.unfinished.remove(&seq);
        self.finished_through(seq);
    }

    fn finished_through(&mut self, seq: u64) {
        self.highest_finished = self.highest_finished.max(seq);
        let cursor = match self.unfinished.first() {
            Some(oldest) => oldest - 1,
            None => self.highest_finished,
        };
        self.cursor = self.cursor.max(cursor);
    }

    /// Gives up every event at or below the hub's `given_up_through` that it still needs (the
    /// spool reached `--max-spool`). Events it has not read yet count as given up whatever its
    /// route. Attempts under way at or below the mark would hold the cursor, and the segments,
    /// for up to `--timeout` (beside a silent target with a 2 s timeout the spool reached twice
    /// the limit): so the target's attempts are all dropped, and those above the mark are made
    /// again.
    fn give_up_for_space(&mut self) {
        let mark = self.hub.given_up_through.load(Ordering::Acquire);
        if mark <= self.given_up_through {
            return;
        }
        self.given_up_through = mark;
        if mark <= self.cursor {
            return;
        }
        let first = self.cursor + 1;
        if self.in_flight.values().any(|f| f.job.event.seq <= mark) {
            self.attempts = FuturesUnordered::new();
            for (_, flight) in std::mem::take(&mut self.in_flight) {
                self.queue_retry(flight.job);
            }
        }
        // Each queue is in sequence order: what goes is a run at its front.
        let mut jobs: Vec<Job> = front_through(&mut self.retries, mark, |j| j.event.seq);
        for entry in front_through(&mut self.taken, mark, |e| e.event.seq) {
            let verdict = entry
                .verdicts
                .as_ref()
                .and_then(|v| v.wants(self.target.slot));
            jobs.extend(self.unless_filtered(entry.event.clone(), entry.answer.clone(), verdict));
        }
        for event in front_through(&mut self.from_disk, mark, |e| e.seq) {
            jobs.extend(self.unless_filtered(event, None, None));
        }
        let mut count = jobs.len() as u64;
        if self.next <= mark {
            count += mark + 1 - self.next;
            self.next = mark + 1;
            self.read_at = None;
            self.target.next.store(self.next, Ordering::Release);
        }
        for mut job in jobs {
            self.unfinished.remove(&job.event.seq);
            self.not_delivered(&mut job, "the spool reached --max-spool; not delivered");
        }
        self.finished_through(mark);
        let last = {
            let mut stats = self.target.stats();
            stats.gave_up += count;
            stats.last_error.clone().unwrap_or_else(|| "none".into())
        };
        self.hub.log.line(format!(
            "target {}: GAVE UP on {count} events from #{first} to #{mark}, the spool reached --max-spool (last error: {last})",
            self.target.name
        ));
        // The files go now, not at the next sweep.
        self.save_cursor();
        collect_garbage(&self.hub, SEGMENT_IDLE);
    }

    /// Hands a moved cursor to the spool (a target removed by a reload keeps none).
    fn save_cursor(&mut self) {
        self.target
            .unfinished
            .store(self.unfinished.len(), Ordering::Release);
        if self.cursor == self.saved_cursor {
            return;
        }
        let mut state = self.hub.state();
        let Some(c) = state.cursors.get_mut(&self.target.name) else {
            return;
        };
        *c = self.cursor;
        // Under the lock, so that a reload cannot remove the cursor in between.
        self.hub.spool.write_cursor(&self.target.name, self.cursor);
        self.saved_cursor = self.cursor;
    }

    /// Says whether the target keeps up (see the module comment); when it stops, the answers
    /// waiting for its first attempts stop waiting.
    fn update_lag(&mut self) {
        let lag = if self.recovery.is_some() {
            Lag::Retrying
        } else if self.behind() {
            Lag::Slow
        } else {
            Lag::KeepingUp
        };
        if lag == self.lag {
            return;
        }
        self.lag = lag;
        self.target.lag.store(lag as u8, Ordering::Release);
        if lag != Lag::KeepingUp {
            self.hub.lag_changed.notify_waiters();
        }
    }

    fn behind(&self) -> bool {
        if !self.from_disk.is_empty() || self.reading.is_some() {
            return true;
        }
        if self
            .in_flight
            .first_key_value()
            .is_some_and(|(_, oldest)| oldest.started.elapsed() >= self.usual.slow_after())
        {
            return true;
        }
        let full = self.attempts.len() >= self.hub.opts.in_flight.max(1);
        let waiting = self.taken.len() as u64
            + self
                .hub
                .feed
                .head()
                .saturating_add(1)
                .saturating_sub(self.next);
        full && waiting > 0 && (self.lag == Lag::Slow || waiting > self.hub.opts.slow_backlog())
    }

    /// When the oldest attempt in flight of a target that keeps up makes it slow.
    fn slow_due(&self) -> Option<Instant> {
        if self.lag != Lag::KeepingUp {
            return None;
        }
        self.in_flight
            .first_key_value()
            .map(|(_, oldest)| oldest.started + self.usual.slow_after())
    }
}

/// Takes the items of an ordered queue numbered at or below `mark`.
fn front_through<T>(queue: &mut VecDeque<T>, mark: u64, seq: impl Fn(&T) -> u64) -> Vec<T> {
    let n = queue.partition_point(|item| seq(item) <= mark);
    queue.drain(..n).collect()
}

/// How long a target's attempts usually take: a moving average of the attempts that ended,
/// each weighing 1/8 (the weight of TCP's smoothed round-trip time, RFC 6298).
#[derive(Debug, Default)]
struct Usual(Option<Duration>);

impl Usual {
    fn record(&mut self, took: Duration) {
        self.0 = Some(match self.0 {
            None => took,
            Some(usual) => (usual * 7 + took) / 8,
        });
    }

    fn micros(&self) -> u64 {
        self.0.map_or(0, |usual| usual.as_micros() as u64)
    }

    /// How long an attempt may run before its target counts as slow. Calling a target slow
    /// too soon costs little (its outcome shows as pending in an answer, and the answer waits
    /// for the fsync); too late holds every sender's answers, so a target with no attempt
    /// ended yet gets the floor.
    fn slow_after(&self) -> Duration {
        self.0.map_or(SLOW_FLOOR, |usual| {
            (usual * 8).clamp(SLOW_FLOOR, SLOW_AFTER)
        })
    }
}

/// The outcome of a target that waits behind older events it retries.
pub fn queued_outcome(name: &str) -> Outcome {
    Outcome {
        name: name.to_owned(),
        status: None,
        ok: false,
        ms: 0.0,
        error: Some("queued behind earlier events that are being retried".into()),
        queued: true,
        filtered: false,
    }
}

async fn wait_for<T>(handle: &mut Option<JoinHandle<T>>) -> std::result::Result<T, JoinError> {
    match handle {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

fn event_label(event: &Event) -> std::borrow::Cow<'_, str> {
    crate::fanout::shown_id(event.id.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_target_is_slow_after_eight_times_its_usual_attempt_within_the_floor_and_the_ceiling() {
        let mut usual = Usual::default();
        assert_eq!(usual.slow_after(), SLOW_FLOOR, "no attempt ended yet");
        usual.record(MS / 2);
        assert_eq!(usual.slow_after(), SLOW_FLOOR, "a fast target");
        for _ in 0..200 {
            usual.record(50 * MS);
        }
        let after = usual.slow_after();
        assert!((395 * MS..=400 * MS).contains(&after), "{after:?}");
        usual.record(5_000 * MS);
        assert_eq!(
            usual.slow_after(),
            SLOW_AFTER,
            "never more than the ceiling"
        );
    }

    #[test]
    fn one_long_attempt_moves_the_usual_by_an_eighth() {
        let mut usual = Usual::default();
        usual.record(80 * MS);
        usual.record(160 * MS);
        assert_eq!(usual.0, Some(90 * MS));
    }
}
