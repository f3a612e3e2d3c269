//! Delivering events to an `amazon_eventbridge` destination as Stripe does: one
//! `PutPartnerEvents` entry per event on the destination's partner event source, retried with the
//! sandbox's delivery policy and recorded on the event.

use super::*;

/// Every destination that takes this event, as `PutPartnerEvents` entries (the event's bytes as
/// `body` carries them, at each destination's pinned version), delivered in the background.
pub fn publish(shared: &Arc<Shared>, event: &Value, body: &Arc<str>) {
    let event_type = event["type"].as_str().unwrap_or_default();
    let connected = event.get("account").is_some_and(|a| !a.is_null());
    let wanted: Vec<Destination> = shared
        .stripe
        .destinations
        .lock()
        .iter()
        .filter(|d| d.wants(event_type, connected))
        .cloned()
        .collect();
    for d in wanted {
        let detail = match &d.snapshot_api_version {
            Some(v) if event["api_version"].as_str() != Some(v.as_str()) => {
                let mut rendered = event.clone();
                rendered["api_version"] = Value::String(v.clone());
                crate::webhook::to_wire(&rendered)
            }
            _ => body.to_string(),
        };
        let entry = PartnerEntry {
            source: d.source_name(),
            detail_type: event_type.to_owned(),
            detail,
            time: event["created"]
                .as_i64()
                .unwrap_or_else(crate::timestamp::unix_now),
        };
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        tokio::spawn(deliver(shared.clone(), id, d, entry));
    }
}

/// Every thin destination that takes this thin event (the account's own: the sandbox makes no
/// v2 events of connected accounts), as `PutPartnerEvents` entries whose `Detail` is the
/// notification, delivered in the background.
pub fn publish_thin(shared: &Arc<Shared>, event: &Value, notification: &str) {
    let event_type = event["type"].as_str().unwrap_or_default();
    let wanted: Vec<Destination> = shared
        .stripe
        .destinations
        .lock()
        .iter()
        .filter(|d| d.takes("thin", event_type, false))
        .cloned()
        .collect();
    for d in wanted {
        let entry = PartnerEntry {
            source: d.source_name(),
            detail_type: event_type.to_owned(),
            detail: notification.to_owned(),
            time: crate::timestamp::unix_now(),
        };
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        tokio::spawn(deliver(shared.clone(), id, d, entry));
    }
}

/// Puts one event, retried with the sandbox's delivery policy; each attempt is recorded on the
/// event (`GET /v1/events/{id}`) under the destination's id.
pub(super) async fn deliver(
    shared: Arc<Shared>,
    event_id: String,
    d: Destination,
    entry: PartnerEntry,
) {
    let Some(client) = shared.stripe.destinations.client(&d.aws_region).await else {
        return;
    };
    let policy = shared.delivery;
    for attempt in 1..=policy.attempts.max(1) {
        let (status, error) = match client
            .put_partner_events(std::slice::from_ref(&entry))
            .await
        {
            Ok((0, _)) => (Some(200), None),
            Ok((_, reason)) => (None, Some(reason.unwrap_or_else(|| "refused".into()))),
            Err(e) => (None, Some(e)),
        };
        let delivered = status.is_some();
        tracing::debug!(event = %event_id, destination = %d.id, attempt, ?error, "EventBridge delivery");
        shared.stripe.record_attempt(
            &event_id,
            Attempt {
                endpoint: d.id.clone(),
                url: d.aws_event_source_arn.clone(),
                attempt,
                status,
                error,
                at: crate::timestamp::unix_now(),
            },
            delivered,
        );
        shared.stripe_touched();
        if delivered {
            return;
        }
        if attempt < policy.attempts {
            tokio::time::sleep(policy.backoff.saturating_mul(1 << (attempt - 1).min(16))).await;
        }
    }
}
