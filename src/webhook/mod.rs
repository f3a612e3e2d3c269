//! Stripe webhooks as stripe-ops makes them: event templates (`fixtures`), the signature scheme
//! (`signature`), a rendered and signed event, and the one way a delivery is POSTed.

pub mod fixtures;
pub mod signature;

use std::time::Instant;

use crate::error::Result;
use crate::http::{self, Reply};
use crate::secret::{ExposeSecret, SecretString};
use fixtures::{Prepared, new_event_id};
use signature::Signer;

/// Where webhook secrets come from when no secret file is given.
pub const SECRET_ENV: &str = "STRIPE_WEBHOOK_SECRET";

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
    let timestamp = timestamp.unwrap_or_else(signature::unix_now);
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

/// The headers every delivery carries, as Stripe's do.
pub fn request(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    signature: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut req = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    if let Some(sig) = signature {
        req = req.header("Stripe-Signature", sig);
    }
    req
}

/// POSTs a raw webhook body to `url`, with a `Stripe-Signature` header when given; any answer
/// is returned, only transport failures are errors (exit 3).
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    signature: Option<&str>,
) -> Result<Reply> {
    let started = Instant::now();
    let resp = request(client, url, body, signature)
        .send()
        .await
        .map_err(|e| http::send_error("POST", url, &e))?;
    http::reply(resp, "POST", url, started).await
}
