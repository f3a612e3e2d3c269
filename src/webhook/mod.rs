//! Stripe webhooks as stripe-ops makes them: event templates (`fixtures`), the signature scheme
//! (`signature`), Stripe's wire format, a rendered and signed event, and the one way a delivery
//! is POSTed.
//!
//! The wire format is Stripe's, byte for byte where it matters (docs/CONTRACT.md section 2): the
//! body is the event pretty-printed with two-space indentation, `"key": value`, one member per
//! line, `{}` and `[]` for empty ones, non-ASCII as UTF-8 and only `"`, `\` and control
//! characters escaped (what a real delivery shows, and what `JSON.stringify(event, null, 2)`
//! produces); the headers are those a real delivery carries (seen in stripe-java #919 and the
//! Stripe CLI's forwarding). Compact JSON would hide the most common webhook bug: a receiver
//! that verifies a re-serialised body (stripe-node #341) passes compact bodies and fails every
//! real delivery.

pub mod fixtures;
pub mod signature;
pub mod synthetic;
pub mod versions;

use std::time::Instant;

use crate::error::Result;
use crate::http::{self, Reply};
use crate::secret::{ExposeSecret, SecretString};
use fixtures::{Prepared, new_event_id};
use signature::Signer;

/// The headers of a Stripe delivery, besides `Stripe-Signature`.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";
pub const USER_AGENT: &str = "Stripe/1.0 (+https://stripe.com/docs/webhooks)";
pub const ACCEPT: &str = "*/*; q=0.5, application/xml";
pub const CACHE_CONTROL: &str = "no-cache";

/// An event (or any JSON value) serialised as Stripe serialises webhook payloads.
pub fn to_wire(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON values always serialize")
}

/// The same value compact: what a receiver that parses and re-serialises the body (for example
/// `JSON.stringify(req.body)`) would verify instead of the bytes it got.
pub fn to_compact(value: &serde_json::Value) -> String {
    serde_json::to_string(value).expect("JSON values always serialize")
}

/// One rendered and signed event.
#[derive(Debug, Clone)]
pub struct SignedEvent {
    pub id: String,
    pub event_type: String,
    pub timestamp: i64,
    pub body: String,
    pub header: String,
}

/// Renders an event (fresh id and `created` unless pinned) and signs it with every signer.
pub fn sign_event(
    prepared: &Prepared,
    signers: &[Signer],
    id: Option<&str>,
    timestamp: Option<i64>,
) -> SignedEvent {
    let id = id.map_or_else(new_event_id, str::to_owned);
    let timestamp = timestamp.unwrap_or_else(crate::timestamp::unix_now);
    let body = prepared.body(&id, timestamp);
    let header = signature::header(timestamp, body.as_bytes(), signers);
    SignedEvent {
        id,
        event_type: prepared.event_type.clone(),
        timestamp,
        body,
        header,
    }
}

/// One signer per secret, keyed once.
pub fn signers(secrets: &[SecretString]) -> Vec<Signer> {
    secrets
        .iter()
        .map(|s| Signer::new(s.expose_secret().as_bytes()))
        .collect()
}

/// The plain-words diagnosis of the raw-body bug: Stripe's bytes refused (`why`), the same event
/// compact accepted (`compact_status`).
pub fn raw_body_bug(why: &str, compact_status: u16) -> String {
    format!(
        "{why}; the same event compact was accepted ({compact_status}): the receiver verifies a re-serialised body, not the raw bytes, so every real Stripe delivery fails. Verify the raw request body (for example express.raw({{type: 'application/json'}}) with stripe.webhooks.constructEvent)"
    )
}

/// A delivery as Stripe makes it: POST, Stripe's headers, the exact body.
pub fn request(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    signature: Option<&str>,
    extra: &[http::ExtraHeader],
) -> reqwest::RequestBuilder {
    let mut req = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
        .header(reqwest::header::USER_AGENT, USER_AGENT)
        .header(reqwest::header::ACCEPT, ACCEPT)
        .header(reqwest::header::CACHE_CONTROL, CACHE_CONTROL)
        .body(body.to_owned());
    if let Some(sig) = signature {
        req = req.header("Stripe-Signature", sig);
    }
    // `headers` replaces what has the same name: `-H` overrides a default.
    req.headers(http::header_map(extra))
}

/// POSTs a raw webhook body to `url`, with a `Stripe-Signature` header when given; any answer
/// is returned, only transport failures are errors (exit 3).
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    signature: Option<&str>,
    extra: &[http::ExtraHeader],
) -> Result<Reply> {
    let started = Instant::now();
    let resp = request(client, url, body, signature, extra)
        .send()
        .await
        .map_err(|e| http::send_error("POST", url, &e))?;
    http::reply(resp, "POST", url, started, http::ANSWER).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_wire_format_is_stripes_pretty_json() {
        let v = json!({
            "id": "evt_1",
            "object": "event",
            "data": {"object": {"metadata": {}, "discounts": [], "name": "Grüße \"東京\"\n",
                                "lines": [1, {"a": null}]}},
        });
        assert_eq!(
            to_wire(&v),
            "{\n  \"id\": \"evt_1\",\n  \"object\": \"event\",\n  \"data\": {\n    \"object\": {\n      \"metadata\": {},\n      \"discounts\": [],\n      \"name\": \"Grüße \\\"東京\\\"\\n\",\n      \"lines\": [\n        1,\n        {\n          \"a\": null\n        }\n      ]\n    }\n  }\n}"
        );
        assert_eq!(to_compact(&json!({"a": [1]})), r#"{"a":[1]}"#);
    }
}
