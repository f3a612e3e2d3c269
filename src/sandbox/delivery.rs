//! Webhook delivery like Stripe's: one event to every enabled endpoint that takes its type (the
//! body the event was recorded with, or with the endpoint's pinned `api_version`), each signed
//! with that endpoint's own secret, in the background, retried with exponential backoff on
//! non-2xx answers and connection errors, every attempt recorded on the event
//! (`GET /v1/events/{id}`); and to every `stripe listen` session (`stripe::cli`). `resend` is
//! `POST /v1/events/{id}/retry`, the Stripe CLI's `events resend`: one attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use serde_json::Value;

use super::stripe::{Attempt, Endpoint, EventRecord};
use super::{DeliveryPolicy, Shared};
use crate::secret::ExposeSecret;
use crate::webhook::signature::{self, Signer};

const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries under way to one endpoint at once (each holds a socket for up to
/// `ATTEMPT_TIMEOUT`). Stripe publishes no such number; a retry beyond it is refused with
/// Stripe's 429 and a first delivery waits its turn, so an endpoint that never answers costs at
/// most this many open files.
pub const PER_ENDPOINT: usize = 16;

/// The deliveries under way, per endpoint id.
#[derive(Default)]
pub struct InFlight {
    per_endpoint: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl InFlight {
    fn semaphore(&self, endpoint: &str) -> Arc<Semaphore> {
        let mut all = self.per_endpoint.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() > 4 * super::stripe::MAX_ENDPOINTS {
            // Deleted endpoints' idle entries.
            all.retain(|_, s| s.available_permits() < PER_ENDPOINT);
        }
        all.entry(endpoint.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(PER_ENDPOINT)))
            .clone()
    }

    /// A slot for one more delivery to `endpoint` now, if one is free.
    pub fn try_slot(&self, endpoint: &str) -> Option<OwnedSemaphorePermit> {
        self.semaphore(endpoint).try_acquire_owned().ok()
    }

    /// Waits for a slot to deliver to `endpoint`.
    async fn slot(&self, endpoint: &str) -> OwnedSemaphorePermit {
        self.semaphore(endpoint)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}

/// Records `event` (its `id` and `type` already set) and delivers it in the background to every
/// enabled endpoint that takes its type. Returns how many endpoints it goes to.
pub fn publish(shared: &Arc<Shared>, mut event: Value) -> usize {
    let event_type = event["type"].as_str().unwrap_or_default().to_owned();
    let id = event["id"].as_str().unwrap_or_default().to_owned();
    // An event of a connected account (top-level `account`) goes to Connect endpoints only.
    let connected = event.get("account").is_some_and(|a| !a.is_null());
    let targets = shared.stripe.targets(&event_type, connected);
    event["pending_webhooks"] = Value::from(targets.len());
    let body: Arc<str> = crate::webhook::to_wire(&event).into();
    shared.stripe.record_event(EventRecord {
        id: id.clone(),
        account: event["account"].as_str().map(str::to_owned),
        body: body.clone(),
        pending: targets.iter().map(|t| t.id.clone()).collect(),
        attempts: Default::default(),
    });
    shared.stripe_touched();
    for target in &targets {
        tokio::spawn(deliver(
            shared.clone(),
            id.clone(),
            body_for(target, &event, &body),
            target.clone(),
            shared.delivery.attempts,
            None,
        ));
    }
    super::stripe::event_destinations::publish(shared, &event, &body);
    super::stripe::thin::twin(shared, &event);
    let listeners = shared.stripe.listeners.publish(
        &shared.stripe,
        &shared.out,
        &shared.stripe.cli_secret(),
        &event,
        &body,
    );
    targets.len() + listeners
}

/// Where `POST /v1/events/{id}/retry` sends an event again.
pub enum Resend {
    /// `webhook_endpoint=we_…`: that endpoint, enabled or not, whatever types it takes, with
    /// the delivery slot the handler took for it (`InFlight::try_slot`).
    Endpoint(Box<Endpoint>, OwnedSemaphorePermit),
    /// `for_stripecli=true` (what `stripe events resend` sends without `--webhook-endpoint`):
    /// every `stripe listen` session.
    Listeners,
}

/// One more delivery of a recorded event (its recorded body); how many receivers it goes to.
pub fn resend(shared: &Arc<Shared>, event_id: &str, body: Arc<str>, to: Resend) -> usize {
    let Ok(event) = serde_json::from_str::<Value>(&body) else {
        return 0;
    };
    match to {
        Resend::Endpoint(endpoint, slot) => {
            let body = body_for(&endpoint, &event, &body);
            tokio::spawn(deliver(
                shared.clone(),
                event_id.to_owned(),
                body,
                *endpoint,
                1,
                Some(slot),
            ));
            1
        }
        Resend::Listeners => shared.stripe.listeners.publish(
            &shared.stripe,
            &shared.out,
            &shared.stripe.cli_secret(),
            &event,
            &body,
        ),
    }
}

/// The body `endpoint` gets. "Events sent to this endpoint will be generated with this Stripe
/// Version instead of your account's default" (the API reference, `api_version` of a webhook
/// endpoint), while `GET /v1/events` keeps the version the event was created with. The sandbox
/// cannot translate an object between versions, but it names the endpoint's version in
/// `api_version`, the field Stripe's Go and .NET libraries compare with their own.
fn body_for(endpoint: &Endpoint, event: &Value, recorded: &Arc<str>) -> Arc<str> {
    match &endpoint.api_version {
        Some(v) if event["api_version"].as_str() != Some(v.as_str()) => {
            let mut rendered = event.clone();
            rendered["api_version"] = Value::String(v.clone());
            crate::webhook::to_wire(&rendered).into()
        }
        _ => recorded.clone(),
    }
}

async fn deliver(
    shared: Arc<Shared>,
    event_id: String,
    body: Arc<str>,
    endpoint: Endpoint,
    attempts: u32,
    slot: Option<OwnedSemaphorePermit>,
) {
    let mut slot = slot;
    let signer = Signer::new(endpoint.secret.expose_secret().as_bytes());
    let policy = DeliveryPolicy {
        attempts,
        ..shared.delivery
    };
    let first = shared.stripe.attempts_to(&event_id, &endpoint.id);
    for attempt in 1..=policy.attempts.max(1) {
        let held = match slot.take() {
            Some(s) => s,
            None => shared.stripe.in_flight.slot(&endpoint.id).await,
        };
        let now = crate::timestamp::unix_now();
        let header = signature::header(now, body.as_bytes(), std::slice::from_ref(&signer));
        let result =
            crate::webhook::request(&shared.http, &endpoint.url, &body, Some(&header), &[])
                .timeout(ATTEMPT_TIMEOUT)
                .send()
                .await;
        let (status, error) = match result {
            Ok(resp) => (Some(resp.status().as_u16()), None),
            Err(e) => (None, Some(crate::error::chain(&e))),
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        tracing::debug!(event = %event_id, url = %endpoint.url, attempt, ?status, "webhook delivery");
        shared.stripe.record_attempt(
            &event_id,
            Attempt {
                endpoint: endpoint.id.clone(),
                url: endpoint.url.clone(),
                attempt: first + attempt,
                status,
                error,
                at: now,
            },
            delivered,
        );
        shared.stripe_touched();
        drop(held);
        if delivered {
            return;
        }
        if let Some(delay) = retry_delay(&policy, attempt) {
            tokio::time::sleep(delay).await;
        }
    }
}

/// How long to wait after failed attempt `attempt` (1-based): the backoff, doubling each time;
/// `None` after the last attempt.
fn retry_delay(policy: &DeliveryPolicy, attempt: u32) -> Option<Duration> {
    if attempt >= policy.attempts {
        return None;
    }
    let backoff = crate::retry::Backoff {
        base: policy.backoff,
        max: crate::duration::MAX,
        jitter: false,
    };
    Some(backoff.delay(attempt.saturating_sub(1), 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_and_stop() {
        let policy = DeliveryPolicy {
            attempts: 4,
            backoff: Duration::from_millis(100),
        };
        let delays: Vec<_> = (1..=4).map(|a| retry_delay(&policy, a)).collect();
        assert_eq!(
            delays,
            [
                Some(Duration::from_millis(100)),
                Some(Duration::from_millis(200)),
                Some(Duration::from_millis(400)),
                None
            ]
        );
        let long = DeliveryPolicy {
            attempts: 100,
            backoff: Duration::from_secs(1),
        };
        assert!(retry_delay(&long, 90).is_some(), "no overflow panic");
    }
}
