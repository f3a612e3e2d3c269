//! CloudWatch Logs, for the one call stripe-ops makes: `GetLogEvents` (JSON 1.1,
//! `X-Amz-Target: Logs_20140328.GetLogEvents`; the CloudWatch Logs API reference), one POST
//! signed by `signed.rs`: the last lines a stopped container wrote through the awslogs driver.

use serde_json::{Value, json};

use super::signed::{JsonService, Signed};

/// A CloudWatch Logs client; each call names its region (the task definition's
/// `awslogs-region`).
#[derive(Clone)]
pub struct Logs {
    pub signed: Signed,
}

impl Logs {
    /// The last `limit` events of a stream, oldest first (`startFromHead` false reads from the
    /// end). `Err` says why they could not be read.
    pub async fn last_lines(
        &self,
        region: &str,
        group: &str,
        stream: &str,
        limit: usize,
    ) -> Result<Vec<String>, String> {
        let endpoint = super::regional_endpoint("logs", region);
        let service = JsonService {
            service: "logs",
            label: "CloudWatch Logs",
            region,
            endpoint: &endpoint,
            target_prefix: "Logs_20140328",
            content_type: "application/x-amz-json-1.1",
        };
        let body = json!({
            "logGroupName": group,
            "logStreamName": stream,
            "limit": limit,
            "startFromHead": false,
        });
        let answer = self
            .signed
            .json(&service, "GetLogEvents", &body)
            .await
            .map_err(String::from)?;
        Ok(messages(&answer))
    }
}

/// Pure: the messages of a `GetLogEvents` answer, in its order.
pub fn messages(answer: &Value) -> Vec<String> {
    answer["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_events_messages_come_in_order() {
        // The API reference's GetLogEvents answer, trimmed.
        let answer = json!({
            "events": [
                {"timestamp": 1767225600000u64, "message": "listening on :3000", "ingestionTime": 1767225600100u64},
                {"timestamp": 1767225601000u64, "message": "Error: STRIPE_SECRET_KEY is not set", "ingestionTime": 1767225601100u64}
            ],
            "nextForwardToken": "f/1", "nextBackwardToken": "b/0"
        });
        assert_eq!(
            messages(&answer),
            vec!["listening on :3000", "Error: STRIPE_SECRET_KEY is not set"]
        );
        assert!(messages(&json!({})).is_empty());
    }
}
