//! Amazon SQS through its JSON protocol (`X-Amz-Target: AmazonSQS.<Action>`, `Content-Type:
//! application/x-amz-json-1.0`; the SQS API reference, "Making query API requests … JSON"), each
//! call one signed POST (`aws::signed`): the five calls the relay makes do not justify the
//! generated `aws-sdk-sqs` crate in every clean build. The service endpoint is the queue URL's
//! origin (`https://sqs.us-east-1.amazonaws.com`, or an emulator's), its region the one in that
//! host name, else the configured one.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use aws_config::SdkConfig;

use super::signed::{CallError, JsonService, Signed};
use super::{AwsTarget, PerUrl};

/// A long poll waits up to 20 s (SQS's maximum `WaitTimeSeconds`); a call may take that long.
pub const LONG_POLL_SECS: u64 = 20;
const CALL_TIMEOUT: Duration = Duration::from_secs(LONG_POLL_SECS + 10);
/// SQS's longest visibility timeout: 12 hours.
pub const MAX_VISIBILITY_SECS: u64 = 43_200;

/// One message as `ReceiveMessage` returns it.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub receipt_handle: String,
    pub body: String,
    /// `ApproximateReceiveCount`: 1 on the first receive.
    pub receive_count: u32,
}

/// An entry DeleteMessageBatch did not delete (its `BatchResultErrorEntry`).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedDelete {
    pub handle: String,
    /// `Code`, e.g. `ReceiptHandleIsInvalid`.
    pub code: String,
    pub message: String,
}

/// A queue's backlog and redrive policy (`GetQueueAttributes`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueInfo {
    pub visible: u64,
    pub not_visible: u64,
    /// The dead-letter queue's ARN and after how many receives a message goes there.
    pub dead_letter: Option<(String, u32)>,
}

#[derive(Clone)]
pub struct Sqs {
    signed: Signed,
    region: String,
    /// Each queue URL's endpoint (its origin).
    endpoints: PerUrl,
}

impl Sqs {
    pub async fn connect(target: &AwsTarget) -> Sqs {
        Self::new(&super::sdk_config(target).await, target)
    }

    pub fn new(config: &SdkConfig, target: &AwsTarget) -> Sqs {
        Sqs {
            // The queue URL names the endpoint; an override (an emulator) wins.
            signed: Signed::with_timeout(config, target.endpoint_url.clone(), CALL_TIMEOUT).lean(),
            region: target.region.clone(),
            endpoints: PerUrl::default(),
        }
    }

    /// The endpoint of the queue at `queue_url` (its origin).
    fn endpoint(&self, queue_url: &str) -> Result<Arc<str>, String> {
        self.endpoints.get(queue_url, |url| {
            origin(url).ok_or_else(|| format!("{url:?} is not a queue URL"))
        })
    }

    async fn call(&self, queue_url: &str, action: &str, body: Value) -> Result<Value, String> {
        let endpoint = self.endpoint(queue_url)?;
        let region = region_of(queue_url).unwrap_or(&self.region).to_owned();
        self.call_at(&endpoint, &region, action, body)
            .await
            .map_err(String::from)
    }

    /// A call to SQS at `endpoint` (a queue URL's origin, or the region's service endpoint).
    async fn call_at(
        &self,
        endpoint: &str,
        region: &str,
        action: &str,
        body: Value,
    ) -> Result<Value, CallError> {
        self.signed
            .json(&service(endpoint, region), action, &body)
            .await
    }

    /// The relay's hot calls (receive, delete): the request serialised from borrowed fields and
    /// the answer's text returned as it came, for `serde` to read into borrowed types.
    async fn call_text(
        &self,
        queue_url: &str,
        action: &str,
        body: &impl serde::Serialize,
    ) -> Result<String, String> {
        let endpoint = self.endpoint(queue_url)?;
        let region = region_of(queue_url).unwrap_or(&self.region);
        let body = serde_json::to_string(body).expect("plain structs always serialize");
        self.signed
            .json_text(&service(&endpoint, region), action, body)
            .await
            .map_err(String::from)
    }

    /// Up to `max` messages (1..=10), waiting up to `wait_secs` for the first.
    pub async fn receive(
        &self,
        queue_url: &str,
        max: u32,
        wait_secs: u64,
    ) -> Result<Vec<Message>, String> {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Receive<'a> {
            queue_url: &'a str,
            max_number_of_messages: u32,
            wait_time_seconds: u64,
            attribute_names: [&'a str; 1],
            message_system_attribute_names: [&'a str; 1],
        }
        let answer = self
            .call_text(
                queue_url,
                "ReceiveMessage",
                &Receive {
                    queue_url,
                    max_number_of_messages: max.clamp(1, 10),
                    wait_time_seconds: wait_secs.min(LONG_POLL_SECS),
                    attribute_names: ["ApproximateReceiveCount"],
                    message_system_attribute_names: ["ApproximateReceiveCount"],
                },
            )
            .await?;
        parse_messages(&answer)
    }

    /// Deletes up to 10 messages by receipt handle; returns the entries SQS did not delete
    /// (DeleteMessageBatch answers 200 with a `Failed` list for the entries it could not
    /// delete: the SQS API reference, DeleteMessageBatch).
    pub async fn delete_batch(
        &self,
        queue_url: &str,
        handles: &[String],
    ) -> Result<Vec<FailedDelete>, String> {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry<'a> {
            /// Each entry's index: SQS's batch entry ids are strings.
            id: String,
            receipt_handle: &'a str,
        }
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Delete<'a> {
            queue_url: &'a str,
            entries: Vec<Entry<'a>>,
        }
        let entries = handles
            .iter()
            .enumerate()
            .map(|(i, h)| Entry {
                id: i.to_string(),
                receipt_handle: h,
            })
            .collect();
        let answer = self
            .call_text(
                queue_url,
                "DeleteMessageBatch",
                &Delete { queue_url, entries },
            )
            .await?;
        failed_deletes(&answer, handles)
    }

    /// Makes a message visible again after `secs` (0: now).
    pub async fn change_visibility(
        &self,
        queue_url: &str,
        handle: &str,
        secs: u64,
    ) -> Result<(), String> {
        self.call(
            queue_url,
            "ChangeMessageVisibility",
            json!({"QueueUrl": queue_url, "ReceiptHandle": handle, "VisibilityTimeout": secs.min(MAX_VISIBILITY_SECS)}),
        )
        .await
        .map(|_| ())
    }

    pub async fn send(&self, queue_url: &str, body: &str) -> Result<(), String> {
        self.call(
            queue_url,
            "SendMessage",
            json!({"QueueUrl": queue_url, "MessageBody": body}),
        )
        .await
        .map(|_| ())
    }

    pub async fn info(&self, queue_url: &str) -> Result<QueueInfo, String> {
        let answer = self
            .call(
                queue_url,
                "GetQueueAttributes",
                json!({
                    "QueueUrl": queue_url,
                    "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "RedrivePolicy"],
                }),
            )
            .await?;
        Ok(parse_info(&answer["Attributes"]))
    }

    /// The URL of the queue an ARN names (`arn:aws:sqs:REGION:ACCOUNT:NAME`), asked of SQS.
    pub async fn url_of(&self, near: &str, arn: &str) -> Result<String, String> {
        let mut parts = arn.splitn(6, ':');
        let (account, name) = (parts.nth(4), parts.next());
        let (Some(account), Some(name)) = (account, name) else {
            return Err(format!("{arn:?} is not a queue ARN"));
        };
        let answer = self
            .call(
                near,
                "GetQueueUrl",
                json!({"QueueName": name, "QueueOwnerAWSAccountId": account}),
            )
            .await?;
        answer["QueueUrl"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "GetQueueUrl named no URL".to_owned())
    }
}

/// What `eventbridge setup` asks of SQS: queues by name, their attributes and tags.
impl Sqs {
    /// A call to the region's SQS endpoint (`https://sqs.REGION.amazonaws.com`, or the
    /// override).
    async fn regional(&self, action: &str, body: Value) -> Result<Value, CallError> {
        let endpoint = format!("https://sqs.{}.amazonaws.com", self.region);
        self.call_at(&endpoint, &self.region, action, body).await
    }

    /// The URL of the queue named `name` in this account, `None` when there is none.
    pub async fn queue_url(&self, name: &str) -> Result<Option<String>, String> {
        match self
            .regional("GetQueueUrl", json!({"QueueName": name}))
            .await
        {
            Ok(answer) => Ok(answer["QueueUrl"].as_str().map(str::to_owned)),
            Err(e)
                if e.is("QueueDoesNotExist") || e.is("AWS.SimpleQueueService.NonExistentQueue") =>
            {
                Ok(None)
            }
            Err(e) => Err(e.message),
        }
    }

    /// Creates the queue (`attributes` as SQS names them, all strings) with `tags`; returns its
    /// URL. SQS answers with the existing queue's URL when one of that name has the same
    /// attributes.
    pub async fn create_queue(
        &self,
        name: &str,
        attributes: &serde_json::Map<String, Value>,
        tags: &serde_json::Map<String, Value>,
    ) -> Result<String, String> {
        let answer = self
            .regional(
                "CreateQueue",
                json!({"QueueName": name, "Attributes": attributes, "tags": tags}),
            )
            .await?;
        answer["QueueUrl"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "SQS CreateQueue named no URL".to_owned())
    }

    /// The queue's attributes (`names`: SQS's attribute names, or `All`), as strings.
    pub async fn attributes(
        &self,
        queue_url: &str,
        names: &[&str],
    ) -> Result<serde_json::Map<String, Value>, String> {
        let answer = self
            .call(
                queue_url,
                "GetQueueAttributes",
                json!({"QueueUrl": queue_url, "AttributeNames": names}),
            )
            .await?;
        Ok(answer["Attributes"]
            .as_object()
            .cloned()
            .unwrap_or_default())
    }

    pub async fn set_attributes(
        &self,
        queue_url: &str,
        attributes: &serde_json::Map<String, Value>,
    ) -> Result<(), String> {
        self.call(
            queue_url,
            "SetQueueAttributes",
            json!({"QueueUrl": queue_url, "Attributes": attributes}),
        )
        .await
        .map(|_| ())
    }

    pub async fn tags(&self, queue_url: &str) -> Result<serde_json::Map<String, Value>, String> {
        let answer = self
            .call(queue_url, "ListQueueTags", json!({"QueueUrl": queue_url}))
            .await?;
        Ok(answer["Tags"].as_object().cloned().unwrap_or_default())
    }

    /// The URLs of the account's queues whose names start with `prefix` (up to 1,000).
    pub async fn list_queues(&self, prefix: &str) -> Result<Vec<String>, String> {
        let answer = self
            .regional(
                "ListQueues",
                json!({"QueueNamePrefix": prefix, "MaxResults": 1000}),
            )
            .await?;
        Ok(answer["QueueUrls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().map(str::to_owned))
            .collect())
    }

    pub async fn delete_queue(&self, queue_url: &str) -> Result<(), String> {
        self.call(queue_url, "DeleteQueue", json!({"QueueUrl": queue_url}))
            .await
            .map(|_| ())
    }
}

/// SQS's JSON protocol at `endpoint`, signed for `region`.
fn service<'a>(endpoint: &'a str, region: &'a str) -> JsonService<'a> {
    JsonService {
        service: "sqs",
        label: "SQS",
        region,
        endpoint,
        target_prefix: "AmazonSQS",
        content_type: "application/x-amz-json-1.0",
    }
}

/// `https://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    Some(match parsed.port() {
        Some(p) => format!("{}://{host}:{p}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    })
}

/// The region of `https://sqs.REGION.amazonaws.com/…`.
fn region_of(url: &str) -> Option<&str> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let rest = host.strip_prefix("sqs.")?;
    let (region, domain) = rest.split_once('.')?;
    domain.starts_with("amazonaws.").then_some(region)
}

/// ReceiveMessage's answer read into borrowed fields (no `Value` tree): only a body with escapes
/// (every EventBridge envelope has quotes) is unescaped into a string of its own. A message
/// without an id or receipt handle is skipped.
fn parse_messages(answer: &str) -> Result<Vec<Message>, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer<'a> {
        #[serde(borrow, default)]
        messages: Vec<Received<'a>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Received<'a> {
        #[serde(borrow)]
        message_id: Option<Cow<'a, str>>,
        #[serde(borrow)]
        receipt_handle: Option<Cow<'a, str>>,
        #[serde(borrow)]
        body: Option<Cow<'a, str>>,
        #[serde(borrow)]
        attributes: Option<Attributes<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Attributes<'a> {
        #[serde(borrow, rename = "ApproximateReceiveCount")]
        receive_count: Option<Cow<'a, str>>,
    }
    if answer.trim().is_empty() {
        return Ok(Vec::new());
    }
    let answer: Answer =
        serde_json::from_str(answer).map_err(|e| format!("SQS ReceiveMessage answer: {e}"))?;
    Ok(answer
        .messages
        .into_iter()
        .filter_map(|m| {
            let receive_count = m
                .attributes
                .and_then(|a| a.receive_count)
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            Some(Message {
                id: m.message_id?.into_owned(),
                receipt_handle: m.receipt_handle?.into_owned(),
                body: m.body.map(Cow::into_owned).unwrap_or_default(),
                receive_count,
            })
        })
        .collect())
}

/// The entries of a DeleteMessageBatch that SQS did not delete: its `Failed` entries (their
/// `Id` is the handle's index), and any entry the answer lists in neither `Successful` nor
/// `Failed` (each entry gets one or the other: the SQS API reference, DeleteMessageBatch), so
/// that nothing counts as deleted that SQS did not say it deleted. An answer that cannot be read
/// is an error, not a success.
fn failed_deletes(answer: &str, handles: &[String]) -> Result<Vec<FailedDelete>, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer<'a> {
        #[serde(borrow, default)]
        successful: Vec<Entry<'a>>,
        #[serde(borrow, default)]
        failed: Vec<Entry<'a>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry<'a> {
        #[serde(borrow)]
        id: Cow<'a, str>,
        #[serde(borrow, default)]
        code: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        message: Option<Cow<'a, str>>,
    }
    let answer: Answer = serde_json::from_str(answer)
        .map_err(|e| format!("SQS DeleteMessageBatch answer unreadable ({e})"))?;
    let index = |e: &Entry| e.id.parse::<usize>().ok().filter(|&i| i < handles.len());
    let mut failed: Vec<FailedDelete> = answer
        .failed
        .iter()
        .filter_map(|e| {
            Some(FailedDelete {
                handle: handles[index(e)?].clone(),
                code: e.code.as_deref().unwrap_or("(no code)").to_owned(),
                message: e.message.as_deref().unwrap_or_default().to_owned(),
            })
        })
        .collect();
    let answered: Vec<usize> = answer
        .successful
        .iter()
        .chain(&answer.failed)
        .filter_map(index)
        .collect();
    failed.extend(
        (0..handles.len())
            .filter(|i| !answered.contains(i))
            .map(|i| FailedDelete {
                handle: handles[i].clone(),
                code: "(not in the answer)".to_owned(),
                message: String::new(),
            }),
    );
    Ok(failed)
}

fn parse_info(attributes: &Value) -> QueueInfo {
    let number = |k: &str| {
        attributes[k]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // RedrivePolicy is a JSON document in a string; maxReceiveCount is a number or a string.
    let redrive: Value = attributes["RedrivePolicy"]
        .as_str()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(Value::Null);
    let max = redrive["maxReceiveCount"].as_u64().or_else(|| {
        redrive["maxReceiveCount"]
            .as_str()
            .and_then(|s| s.parse().ok())
    });
    QueueInfo {
        visible: number("ApproximateNumberOfMessages"),
        not_visible: number("ApproximateNumberOfMessagesNotVisible"),
        dead_letter: redrive["deadLetterTargetArn"]
            .as_str()
            .zip(max)
            .map(|(arn, max)| (arn.to_owned(), max as u32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_and_region_come_from_the_queue_url() {
        let aws = "https://sqs.eu-west-1.amazonaws.com/123456789012/stripe-events";
        assert_eq!(
            origin(aws).as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com")
        );
        assert_eq!(region_of(aws), Some("eu-west-1"));
        let moto = "http://127.0.0.1:5000/123456789012/stripe-events";
        assert_eq!(origin(moto).as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(region_of(moto), None);
    }

    #[test]
    fn a_batch_delete_reports_its_failed_and_unanswered_entries_and_an_unreadable_answer_is_an_error()
     {
        // DeleteMessageBatch's answer shape (the SQS API reference): 200 with both lists.
        let handles: Vec<String> = ["h0", "h1", "h2"].map(String::from).to_vec();
        let answer = json!({"Successful": [{"Id": "0"}, {"Id": "2"}],
            "Failed": [{"Id": "1", "Code": "ReceiptHandleIsInvalid", "SenderFault": true, "Message": "x"}]});
        assert_eq!(
            failed_deletes(&answer.to_string(), &handles).unwrap(),
            [FailedDelete {
                handle: "h1".into(),
                code: "ReceiptHandleIsInvalid".into(),
                message: "x".into()
            }]
        );
        let all = json!({"Successful": [{"Id": "0"}, {"Id": "1"}, {"Id": "2"}], "Failed": []});
        assert!(
            failed_deletes(&all.to_string(), &handles)
                .unwrap()
                .is_empty()
        );
        let unanswered = failed_deletes(r#"{"Successful": [{"Id": "0"}]}"#, &handles).unwrap();
        assert_eq!(
            unanswered
                .iter()
                .map(|f| f.handle.as_str())
                .collect::<Vec<_>>(),
            ["h1", "h2"],
            "entries in neither list are not taken as deleted"
        );
        for unreadable in ["", "<html>", r#"{"Failed": {}}"#] {
            assert!(
                failed_deletes(unreadable, &handles).is_err(),
                "{unreadable:?}"
            );
        }
    }

    #[test]
    fn messages_and_queue_attributes_are_read_as_sqs_answers_them() {
        let answer = json!({"Messages": [{"MessageId": "m1", "ReceiptHandle": "h1", "Body": "{\"a\": \"\\u00e9\"}",
            "Attributes": {"ApproximateReceiveCount": "3"}}, {"ReceiptHandle": "no id"}]});
        let messages = parse_messages(&answer.to_string()).unwrap();
        let m = &messages[0];
        assert_eq!(
            (m.id.as_str(), m.receipt_handle.as_str(), m.receive_count),
            ("m1", "h1", 3)
        );
        assert_eq!(
            m.body, r#"{"a": "\u00e9"}"#,
            "the body unescaped once, as SQS sent it"
        );
        assert_eq!(messages.len(), 1, "a message without an id is skipped");
        for empty in ["{}", ""] {
            assert!(
                parse_messages(empty).unwrap().is_empty(),
                "an empty receive has no Messages"
            );
        }
        assert!(parse_messages("<html>").is_err());
        let info = parse_info(&json!({
            "ApproximateNumberOfMessages": "7", "ApproximateNumberOfMessagesNotVisible": "2",
            "RedrivePolicy": "{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:123456789012:dlq\",\"maxReceiveCount\":\"5\"}"
        }));
        assert_eq!(
            info,
            QueueInfo {
                visible: 7,
                not_visible: 2,
                dead_letter: Some(("arn:aws:sqs:us-east-1:123456789012:dlq".into(), 5))
            }
        );
    }
}
