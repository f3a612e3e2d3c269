//! One delivery attempt of a stored event to a target, as Stripe makes it: the exact body
//! bytes, Stripe's delivery headers, the target's own headers, and the original or a fresh
//! `Stripe-Signature`. The spool's workers and the SQS consumer both deliver through it.

use std::time::Instant;

use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, USER_AGENT};
use serde::Serialize;

use super::spool::Event;
use super::targets::TargetSpec;
use crate::webhook::signature;

/// The result of one delivery attempt, or `queued` when the target is still retrying older events.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub status: Option<u16>,
    pub ok: bool,
    pub ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
    /// The target's route does not let the event through: nothing to deliver.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub filtered: bool,
}

impl Outcome {
    /// The outcome for a target whose route keeps the event away.
    pub fn filtered(name: &str) -> Outcome {
        Outcome {
            name: name.to_owned(),
            status: None,
            ok: true,
            ms: 0.0,
            error: None,
            queued: false,
            filtered: true,
        }
    }
}
/// One POST of an event to a target: exact body bytes, Stripe's delivery headers with the
/// original Content-Type, and either the original Stripe-Signature or a fresh one made with the
/// target's own secret (over the same bytes).
pub async fn attempt(client: &reqwest::Client, spec: &TargetSpec, event: &Event) -> Outcome {
    let started = Instant::now();
    // The target's own headers last: they replace Stripe's where both set one.
    let mut req = client
        .post(&spec.url)
        .header(
            CONTENT_TYPE,
            event
                .content_type
                .as_deref()
                .unwrap_or(crate::webhook::CONTENT_TYPE),
        )
        .header(USER_AGENT, crate::webhook::USER_AGENT)
        .header(ACCEPT, crate::webhook::ACCEPT)
        .header(CACHE_CONTROL, crate::webhook::CACHE_CONTROL)
        .headers(spec.headers.clone())
        .body(event.body.clone());
    match &spec.signer {
        Some(signer) => {
            let header = signature::header(
                signature::unix_now(),
                &event.body,
                std::slice::from_ref(signer),
            );
            req = req.header("Stripe-Signature", header);
        }
        None => {
            if let Some(sig) = &event.signature {
                req = req.header("Stripe-Signature", sig);
            }
        }
    }
    let result = match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let body = crate::http::read_body(resp, crate::http::ANSWER)
                .await
                .map(|b| b.text())
                .unwrap_or_default();
            let error = (!status.is_success())
                .then(|| format!("answered {status}: {}", crate::http::excerpt(&body, 160)));
            (Some(status.as_u16()), error)
        }
        Err(e) => (None, Some(crate::http::describe_failure(&e))),
    };
    Outcome {
        name: spec.name.clone(),
        status: result.0,
        ok: result.1.is_none(),
        ms: started.elapsed().as_secs_f64() * 1000.0,
        error: result.1,
        queued: false,
        filtered: false,
    }
}
