//! `fanout --from-sqs QUEUE_URL`: Stripe events from SQS queues (fed by Stripe's Amazon
//! EventBridge event destination through EventBridge rules, or by anything that puts raw Stripe
//! events there), delivered to the targets exactly as the relay does (Stripe's wire format,
//! re-signed with each target's secret, its headers and route). SQS is the durable store, so
//! many relays on many machines may consume the same queues:
//!
//! - a message is deleted (in batches) only after every target its route sends it to answered
//!   2xx; a failure makes it visible again later (ChangeMessageVisibility, backing off with the
//!   receive count), and after the queue's redrive `maxReceiveCount` SQS moves it to the
//!   dead-letter queue: the relay logs it and counts it;
//! - a poison message (not JSON, not a Stripe event) goes to the dead-letter queue at once
//!   (sent there, then deleted), so it never blocks the queue;
//! - a stop request stops receiving, lets the deliveries in flight finish (each bounded by the
//!   target's timeout), and makes every message it could not deliver visible again at once.
//!   Nothing is deleted that was not delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::Log;
use super::attempt::attempt;
use super::route::Parsed;
use super::spool::Event;
use super::targets::TargetSpec;
use crate::aws::sqs::{LONG_POLL_SECS, MAX_VISIBILITY_SECS, Message, QueueInfo, Sqs};
use crate::retry::Backoff;

mod deletes;
mod envelope;
mod status;
pub use envelope::{Envelope, open};
pub use status::{StatusServer, serve_status};

/// Which targets each queue feeds: a `--from-sqs` queue every target without a queue of its own;
/// a target's own queue (`--target-queue`, `queue = "…"`) that target only. Every target needs
/// its own secret (SQS messages carry no Stripe signature), and every URL must be a queue URL.
pub fn assign(
    shared: &[String],
    targets: &[TargetSpec],
) -> Result<Vec<(String, Vec<TargetSpec>)>, String> {
    if let Some(t) = targets.iter().find(|t| t.signer.is_none()) {
        return Err(format!(
            "target {} has no --target-secret-file: events from SQS carry no Stripe signature to \
             forward, so every target signs with its own secret",
            t.name
        ));
    }
    let mut queues: Vec<(String, Vec<TargetSpec>)> = Vec::new();
    let mut add = |url: &str, target: &TargetSpec| match queues.iter_mut().find(|(u, _)| u == url) {
        Some((_, ts)) => ts.push(target.clone()),
        None => queues.push((url.to_owned(), vec![target.clone()])),
    };
    for target in targets {
        match &target.queue {
            Some(own) => add(own, target),
            None => shared.iter().for_each(|url| add(url, target)),
        }
    }
    for url in shared
        .iter()
        .chain(targets.iter().filter_map(|t| t.queue.as_ref()))
    {
        let parsed = url::Url::parse(url).ok();
        if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.path().len() > 1) {
            return Err(format!(
                "{url:?} is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
            ));
        }
        if !queues.iter().any(|(u, _)| u == url) {
            return Err(format!(
                "--from-sqs {url}: every target has a queue of its own, so none reads this one"
            ));
        }
    }
    Ok(queues)
}

/// GetQueueAttributes calls for the redrive policy before it counts as unknown for now.
const DEAD_LETTER_TRIES: u32 = 3;
/// How soon a poison message is visible again when its dead-letter queue is unknown.
const UNKNOWN_DLQ_RETRY_SECS: u64 = 60;

/// The client the consumer reads with: each queue URL names its endpoint and region; `region`
/// (`AWS_REGION`, else us-east-1) signs for a URL that names none (an emulator's).
pub async fn connect(region: String) -> Sqs {
    Sqs::connect(&crate::aws::AwsTarget {
        region,
        endpoint_url: None,
        profile: None,
    })
    .await
}

/// What `fanout --from-sqs` needs.
pub struct SqsOptions {
    /// Each queue and the targets it feeds (`assign`).
    pub queues: Vec<(String, Vec<TargetSpec>)>,
    pub client: super::attempt::Client,
    /// Deliveries in flight at once per target, and messages per queue.
    pub in_flight: usize,
    /// How long a failed message stays invisible: doubling with each receive.
    pub backoff: Backoff,
    pub log: Log,
}

#[derive(Default)]
struct Counts {
    received: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    poison: AtomicU64,
    filtered: AtomicU64,
    in_flight: AtomicU64,
}

impl Counts {
    fn json(&self) -> Value {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "received": n(&self.received), "delivered": n(&self.delivered),
            "retried": n(&self.retried), "dead_lettered": n(&self.dead_lettered),
            "poison": n(&self.poison), "filtered": n(&self.filtered), "in_flight": n(&self.in_flight),
        })
    }
}

struct Target {
    /// Replaced whole by a reload (SIGHUP): its URL, secret and route.
    spec: std::sync::RwLock<Arc<TargetSpec>>,
    gate: Semaphore,
    delivered: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
}

struct Queue {
    url: String,
    counts: Counts,
    /// Where poison goes, from the redrive policy (resolved once SQS answers; an error is not
    /// an answer and is asked again next time).
    dead_letter: tokio::sync::OnceCell<Option<(String, u32)>>,
    /// The dead-letter queue's URL, for the ARN it was asked for.
    dead_letter_url: std::sync::Mutex<Option<(String, String)>>,
    deletes: mpsc::UnboundedSender<String>,
}

impl Queue {
    /// The URL of the dead-letter queue `arn` names, asked of SQS (GetQueueUrl) once per ARN:
    /// poison and `/status` both need it.
    async fn dead_letter_url(&self, sqs: &Sqs, arn: &str) -> Result<String, String> {
        let known = self.dead_letter_url.lock().expect("never poisoned").clone();
        if let Some((known_arn, url)) = known
            && known_arn == arn
        {
            return Ok(url);
        }
        let url = sqs.url_of(&self.url, arn).await?;
        *self.dead_letter_url.lock().expect("never poisoned") = Some((arn.to_owned(), url.clone()));
        Ok(url)
    }
}

impl Target {
    fn spec(&self) -> Arc<TargetSpec> {
        self.spec.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What `/status` reads while the consumer runs.
pub struct Status {
    sqs: Sqs,
    queues: Vec<Arc<Queue>>,
    targets: Arc<Vec<Arc<Target>>>,
}

/// The running consumer: per queue, its pollers and one batch deleter.
pub struct Consumer {
    pub status: Arc<Status>,
    receivers: JoinSet<()>,
    deleters: JoinSet<()>,
    stop: watch::Sender<bool>,
    received_all: watch::Sender<bool>,
}

impl Consumer {
    pub fn start(sqs: Sqs, opts: SqsOptions) -> Consumer {
        let (stop, stopped) = watch::channel(false);
        let (received_all, finished) = watch::channel(false);
        // One gate per target, shared by every queue that feeds it.
        let mut all: Vec<Arc<Target>> = Vec::new();
        for (_, specs) in &opts.queues {
            for spec in specs {
                if !all.iter().any(|t| t.spec().name == spec.name) {
                    all.push(Arc::new(Target {
                        spec: std::sync::RwLock::new(Arc::new(spec.clone())),
                        gate: Semaphore::new(opts.in_flight),
                        delivered: AtomicU64::new(0),
                        failed: AtomicU64::new(0),
                        in_flight: AtomicU64::new(0),
                    }));
                }
            }
        }
        let targets = Arc::new(all);
        let (mut receivers, mut deleters) = (JoinSet::new(), JoinSet::new());
        let mut queues = Vec::new();
        for (url, specs) in opts.queues {
            let fed: Vec<Arc<Target>> = targets
                .iter()
                .filter(|t| specs.iter().any(|s| s.name == t.spec().name))
                .cloned()
                .collect();
            let (deletes, pending) = mpsc::unbounded_channel();
            let queue = Arc::new(Queue {
                url,
                counts: Counts::default(),
                dead_letter: tokio::sync::OnceCell::new(),
                dead_letter_url: std::sync::Mutex::new(None),
                deletes,
            });
            deleters.spawn(deletes::delete_in_batches(
                sqs.clone(),
                queue.url.clone(),
                pending,
                finished.clone(),
                opts.log.clone(),
            ));
            let worker = Arc::new(Worker {
                sqs: sqs.clone(),
                queue: queue.clone(),
                targets: fed,
                client: opts.client.clone(),
                backoff: opts.backoff,
                log: opts.log.clone(),
                stopped: stopped.clone(),
            });
            // One ReceiveMessage hands out at most 10 messages and takes a round trip: a single
            // poller caps a relay at 10 per round trip however many deliveries may be in
            // flight, so a queue gets one poller per 10 slots (AWS's advice for throughput is
            // several concurrent receivers), all drawing on the same slots.
            let slots = Arc::new(Semaphore::new(opts.in_flight.max(1)));
            for _ in 0..pollers(opts.in_flight) {
                receivers.spawn(worker.clone().receive(slots.clone()));
            }
            queues.push(queue);
        }
        Consumer {
            status: Arc::new(Status {
                sqs,
                queues,
                targets,
            }),
            receivers,
            deleters,
            stop,
            received_all,
        }
    }

    /// Stops receiving, finishes the deliveries in flight (failed ones visible again at once),
    /// then flushes the deletes.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.receivers.join_next().await.is_some() {}
        let _ = self.received_all.send(true);
        while self.deleters.join_next().await.is_some() {}
    }
}

struct Worker {
    sqs: Sqs,
    queue: Arc<Queue>,
    /// The targets this queue feeds.
    targets: Vec<Arc<Target>>,
    client: super::attempt::Client,
    backoff: Backoff,
    log: Log,
    stopped: watch::Receiver<bool>,
}

impl Worker {
    /// One poller: once a delivery slot is free, receives up to 10 messages (SQS's most per
    /// call: asking for only as many as there are free slots made receives of one or two
    /// messages once the slots were busy, a signed round trip each) and hands each to a task
    /// that keeps its slot until the message is settled. The messages beyond the free slots
    /// wait here for theirs (at most 10 per poller, their visibility timeout running, as in any
    /// consumer that receives in batches); a stop hands those back at once.
    async fn receive(self: Arc<Self>, slots: Arc<Semaphore>) {
        let mut handling = JoinSet::new();
        let mut stopped = self.stopped.clone();
        let mut failures = 0u32;
        loop {
            if *stopped.borrow() {
                break;
            }
            let Ok(first) = slots.clone().acquire_owned().await else {
                break;
            };
            let mut permits = vec![first];
            while permits.len() < 10
                && let Ok(p) = slots.clone().try_acquire_owned()
            {
                permits.push(p);
            }
            let receive = self.sqs.receive(&self.queue.url, 10, LONG_POLL_SECS);
            tokio::pin!(receive);
            let received = tokio::select! {
                r = &mut receive => r,
                // (The watch's guard is dropped inside: it must not live across the awaits.)
                _ = async { let _ = stopped.wait_for(|s| *s).await; } => {
                    // A long poll dropped now may already have been answered on SQS's side:
                    // its messages would stay hidden for the visibility timeout, with nobody
                    // to hand them back. It is let finish (SQS ends it within the long poll),
                    // and what it got is made visible again at once.
                    let limit = Duration::from_secs(LONG_POLL_SECS + 5);
                    if let Ok(Ok(messages)) = tokio::time::timeout(limit, receive).await {
                        self.hand_back(messages).await;
                    }
                    break;
                }
            };
            let messages = match received {
                Ok(m) => {
                    failures = 0;
                    m
                }
                Err(e) => {
                    failures += 1;
                    self.log.line(format!("sqs {}: {e}", self.queue.url));
                    drop(permits);
                    let pause = Duration::from_millis(500 * u64::from(failures.min(20)));
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stopped.wait_for(|s| *s) => break,
                    }
                    continue;
                }
            };
            let unstarted = start_each(messages, permits, &slots, &mut stopped, |message, slot| {
                self.queue.counts.received.fetch_add(1, Ordering::Relaxed);
                let worker = self.clone();
                handling.spawn(async move {
                    worker.handle(message).await;
                    drop(slot);
                });
            })
            .await;
            self.hand_back(unstarted).await;
            while handling.try_join_next().is_some() {}
        }
        while handling.join_next().await.is_some() {}
    }

    /// Messages received as the relay stops: visible again at once, for another relay.
    async fn hand_back(&self, messages: Vec<Message>) {
        for message in messages {
            let result = self
                .sqs
                .change_visibility(&self.queue.url, &message.receipt_handle, 0)
                .await;
            self.log.line(match result {
                Ok(()) => format!(
                    "message {}: received as the relay stopped: visible again in 0 s",
                    message.id
                ),
                Err(e) => format!("message {}: received as the relay stopped: {e}", message.id),
            });
        }
    }

    async fn handle(&self, message: Message) {
        let counts = &self.queue.counts;
        counts.in_flight.fetch_add(1, Ordering::Relaxed);
        let (body, id, event_type, kind) = match open(&message.body) {
            Envelope::Event {
                body,
                id,
                event_type,
                kind,
            } => (body, id, event_type, kind),
            Envelope::Poison(why) => {
                self.poison(&message, &why).await;
                counts.in_flight.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        };
        let event = Event {
            seq: 0,
            id: Some(id.clone()),
            received_ms: crate::timestamp::unix_ms(),
            content_type: None,
            signature: None,
            body: body.into(),
            parsed: Parsed::default(),
        };
        let wanted: Vec<&Arc<Target>> = self
            .targets
            .iter()
            .filter(|t| t.spec().route.lets_through(&event.body, &event.parsed))
            .collect();
        if wanted.is_empty() {
            counts.filtered.fetch_add(1, Ordering::Relaxed);
            let _ = self.queue.deletes.send(message.receipt_handle.clone());
            counts.in_flight.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let attempts = wanted.iter().map(|t| self.deliver(t, &event));
        let all_ok = futures_util::future::join_all(attempts)
            .await
            .into_iter()
            .all(|ok| ok);
        let label = super::shown_id(Some(&id));
        if all_ok {
            counts.delivered.fetch_add(1, Ordering::Relaxed);
            let _ = self.queue.deletes.send(message.receipt_handle.clone());
            self.log.line(format!(
                "{event_type} {label} ({kind}, receive {}): delivered",
                message.receive_count
            ));
        } else {
            self.retry_later(&message, &label).await;
        }
        counts.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    async fn deliver(&self, target: &Target, event: &Event) -> bool {
        let _turn = target.gate.acquire().await.expect("never closed");
        target.in_flight.fetch_add(1, Ordering::Relaxed);
        let spec = target.spec();
        let outcome = attempt(&self.client, &spec, event).await;
        target.in_flight.fetch_sub(1, Ordering::Relaxed);
        let label = super::shown_id(event.id.as_deref());
        if outcome.ok {
            target.delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            target.failed.fetch_add(1, Ordering::Relaxed);
            self.log.line(format!(
                "{label} -> {}: {}",
                spec.name,
                outcome.error.as_deref().unwrap_or("failed")
            ));
        }
        outcome.ok
    }

    /// A failed delivery: visible again after the backoff for its receive count (at once when
    /// stopping); the one that used up the queue's receives goes to its dead-letter queue.
    async fn retry_later(&self, message: &Message, label: &str) {
        let counts = &self.queue.counts;
        let stopping = *self.stopped.borrow();
        let delay = if stopping {
            0
        } else {
            self.backoff
                .delay(
                    message.receive_count.saturating_sub(1),
                    rand::random::<f64>(),
                )
                .as_secs_f64()
                .ceil()
                .clamp(1.0, MAX_VISIBILITY_SECS as f64) as u64
        };
        // Unknown (SQS failed to say) is treated as not yet dead-lettered: SQS's own redrive
        // still applies on its side.
        let dead_letter = self.dead_letter().await.ok().flatten();
        if let Some((dlq, max)) = dead_letter
            .as_ref()
            .filter(|(_, max)| message.receive_count >= *max)
        {
            counts.dead_lettered.fetch_add(1, Ordering::Relaxed);
            self.log.line(format!(
                "{label}: not delivered after {max} receives: the queue's redrive policy moves it to {dlq}"
            ));
        } else {
            counts.retried.fetch_add(1, Ordering::Relaxed);
            self.log.line(format!(
                "{label}: visible again in {delay} s (receive {})",
                message.receive_count
            ));
        }
        if let Err(e) = self
            .sqs
            .change_visibility(&self.queue.url, &message.receipt_handle, delay)
            .await
        {
            // The message becomes visible anyway when its visibility timeout ends.
            self.log.line(format!("{label}: {e}"));
        }
    }

    /// The queue's redrive policy: asked of SQS (GetQueueAttributes) with a few retries, kept
    /// once SQS answers. A failure is not cached as "no dead-letter queue": it is an error
    /// here, and the next message asks again.
    async fn dead_letter(&self) -> Result<Option<(String, u32)>, String> {
        self.queue
            .dead_letter
            .get_or_try_init(|| async {
                let mut last = String::new();
                for attempt in 0..DEAD_LETTER_TRIES {
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    }
                    match self.sqs.info(&self.queue.url).await {
                        Ok(info) => return Ok(info.dead_letter),
                        Err(e) => last = e,
                    }
                }
                self.log.line(format!(
                    "sqs {}: the redrive policy is unknown (GetQueueAttributes failed \
                     {DEAD_LETTER_TRIES} times: {last}); asked again with the next message",
                    self.queue.url
                ));
                Err(last)
            })
            .await
            .cloned()
    }

    /// Poison goes to the dead-letter queue at once: sent there, then deleted here. Without a
    /// dead-letter queue it is hidden for SQS's longest visibility timeout, never deleted.
    async fn poison(&self, message: &Message, why: &str) {
        let counts = &self.queue.counts;
        counts.poison.fetch_add(1, Ordering::Relaxed);
        let dead_letter = match self.dead_letter().await {
            Ok(d) => d,
            Err(e) => {
                // Not known to have no dead-letter queue: visible again soon, to try again,
                // rather than hidden for 12 hours as if it had none.
                self.log.line(format!(
                    "message {}: {why}: the dead-letter queue is unknown ({e}); visible again \
                     in {UNKNOWN_DLQ_RETRY_SECS} s",
                    message.id
                ));
                let _ = self
                    .sqs
                    .change_visibility(
                        &self.queue.url,
                        &message.receipt_handle,
                        UNKNOWN_DLQ_RETRY_SECS,
                    )
                    .await;
                return;
            }
        };
        let moved = match &dead_letter {
            Some((arn, _)) => match self.queue.dead_letter_url(&self.sqs, arn).await {
                Ok(dlq) => self.sqs.send(&dlq, &message.body).await.map(|_| dlq),
                Err(e) => Err(e),
            },
            None => Err("the queue has no redrive policy (no dead-letter queue)".into()),
        };
        match moved {
            Ok(dlq) => {
                counts.dead_lettered.fetch_add(1, Ordering::Relaxed);
                let _ = self.queue.deletes.send(message.receipt_handle.clone());
                self.log.line(format!(
                    "message {}: {why}: moved to the dead-letter queue {dlq}",
                    message.id
                ));
            }
            Err(e) => {
                self.log.line(format!(
                    "message {}: {why}: {e}; hidden for {MAX_VISIBILITY_SECS} s, not deleted",
                    message.id
                ));
                let _ = self
                    .sqs
                    .change_visibility(
                        &self.queue.url,
                        &message.receipt_handle,
                        MAX_VISIBILITY_SECS,
                    )
                    .await;
            }
        }
    }
}

/// Starts each received message once it has a delivery slot: the free `permits` first, then
/// each slot as it frees up. A stop while waiting for one returns the messages not started, to
/// hand back; the slots not used go back.
async fn start_each(
    messages: Vec<Message>,
    mut permits: Vec<OwnedSemaphorePermit>,
    slots: &Arc<Semaphore>,
    stopped: &mut watch::Receiver<bool>,
    mut start: impl FnMut(Message, OwnedSemaphorePermit),
) -> Vec<Message> {
    let mut messages = messages.into_iter();
    while let Some(message) = messages.next() {
        let slot = match permits.pop() {
            Some(p) => p,
            None => tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("never closed"),
                _ = async { let _ = stopped.wait_for(|s| *s).await; } => {
                    return std::iter::once(message).chain(messages).collect();
                }
            },
        };
        start(message, slot);
    }
    Vec::new()
}

/// How many concurrent pollers a queue gets for `in_flight` delivery slots: one per 10.
fn pollers(in_flight: usize) -> usize {
    in_flight.div_ceil(10).clamp(1, 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(n: usize) -> Vec<Message> {
        (0..n)
            .map(|i| Message {
                id: format!("m{i}"),
                receipt_handle: format!("h{i}"),
                body: String::new(),
                receive_count: 1,
            })
            .collect()
    }

    fn ids(messages: &[Message]) -> Vec<&str> {
        messages.iter().map(|m| m.id.as_str()).collect()
    }

    #[tokio::test]
    async fn a_stop_hands_back_exactly_the_messages_not_started() {
        // Two delivery slots, both this poller's, kept by the deliveries they start.
        let slots = Arc::new(Semaphore::new(2));
        let permits = vec![
            slots.clone().try_acquire_owned().unwrap(),
            slots.clone().try_acquire_owned().unwrap(),
        ];
        let (stop, mut stopped) = watch::channel(false);
        stop.send(true).unwrap();
        let mut started = Vec::new();
        let unstarted = start_each(received(6), permits, &slots, &mut stopped, |m, slot| {
            started.push((m, slot))
        })
        .await;
        let started: Vec<Message> = started.into_iter().map(|(m, _)| m).collect();
        assert_eq!(ids(&started), ["m0", "m1"]);
        assert_eq!(ids(&unstarted), ["m2", "m3", "m4", "m5"]);
    }

    #[tokio::test]
    async fn without_a_stop_every_message_starts_as_slots_free_up() {
        let slots = Arc::new(Semaphore::new(1));
        let permits = vec![slots.clone().try_acquire_owned().unwrap()];
        let (_stop, mut stopped) = watch::channel(false);
        let mut started = Vec::new();
        // Each delivery done at once: its slot back for the next message.
        let unstarted = start_each(received(4), permits, &slots, &mut stopped, |m, slot| {
            started.push(m);
            drop(slot);
        })
        .await;
        assert_eq!(ids(&started), ["m0", "m1", "m2", "m3"]);
        assert!(unstarted.is_empty());
        assert_eq!(slots.available_permits(), 1, "every slot back");
    }
}
