//! The relay's HTTP side: `POST <path>` (verify, hand to the targets and spool at once, answer
//! with a summary of the first attempts once durable or once every target has it), `GET
//! /health` and `GET /status`.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::attempt::Outcome;
use super::deliver::{Hub, Judged, Lag, Target, queued_outcome};
use super::feed::Answer;
use super::log::Line;
use super::route::Parsed;
use super::spool::{Event, Spool};
use crate::server::Direct;
use crate::webhook::signature::{self, Signer};

pub struct RelayState {
    pub hub: Hub,
    pub spool: Arc<Spool>,
    /// Secrets the incoming signature must match; empty means no check. Replaced whole when
    /// SIGHUP re-reads the secret files (`Relay::reload_verify`).
    pub verify: std::sync::RwLock<Arc<[Signer]>>,
    pub tolerance: i64,
    /// How long an answer waits for the targets' first attempts before reporting them pending.
    pub summary_wait: Duration,
    pub started: SystemTime,
    pub received: AtomicU64,
    pub rejected: AtomicU64,
    /// Events no target's route let through: answered, not spooled.
    pub filtered: AtomicU64,
    /// What recovery set aside when the spool opened: records and bytes (kept in quarantine
    /// files, not delivered).
    pub quarantined: (usize, usize),
    /// The API version the targets expect, when given.
    pub api_version: Option<String>,
    /// Snapshot events that named another version.
    pub other_version: AtomicU64,
}

pub fn router(path: &str, state: Arc<RelayState>) -> Router {
    let routed = |State(state): State<Arc<RelayState>>, headers: HeaderMap, body: Bytes| {
        receive(state, headers, body)
    };
    Router::new()
        .route(path, post(routed))
        .route("/health", get(health))
        .route("/status", get(status))
        .with_state(state)
}

async fn health() -> Json<Value> {
    Json(json!({"ok": true}))
}

async fn status(State(state): State<Arc<RelayState>>) -> Json<Value> {
    let mut v = state.hub.status();
    v["started_at"] = json!(crate::timestamp::rfc3339(state.started));
    v["received"] = json!(state.received.load(Ordering::Relaxed));
    v["rejected"] = json!(state.rejected.load(Ordering::Relaxed));
    v["filtered"] = json!(state.filtered.load(Ordering::Relaxed));
    v["spool_quarantined"] = json!({"runs": state.quarantined.0, "bytes": state.quarantined.1});
    if let Some(expected) = &state.api_version {
        v["api_version"] = json!({
            "expected": expected,
            "other": state.other_version.load(Ordering::Relaxed),
        });
    }
    Json(v)
}

fn reject(status: StatusCode, error: String) -> Response {
    (status, Json(json!({"received": false, "error": error}))).into_response()
}

/// `POST <path>` answered without the router (it still answers the path's other methods).
pub fn direct(path: &str, state: Arc<RelayState>) -> Direct {
    Direct {
        method: Method::POST,
        path: path.to_owned(),
        handler: Arc::new(move |parts: Parts, body| {
            Box::pin(receive(state.clone(), parts.headers, body))
        }),
    }
}

async fn receive(state: Arc<RelayState>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let _receiving = state.hub.receiving();
    let text_header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let signature_header = text_header("stripe-signature");
    let verify = state
        .verify
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if !verify.is_empty() {
        let verdict = signature::verify(
            signature_header.as_deref().unwrap_or(""),
            &body,
            &verify,
            state.tolerance,
            crate::timestamp::unix_now(),
            // As Stripe's libraries: a relay must not refuse what the receivers would accept.
            signature::Window::PastOnly,
        );
        if let Err(why) = verdict {
            state.rejected.fetch_add(1, Ordering::Relaxed);
            state.hub.log().line(format!(
                "event {} REJECTED: {why}; nothing forwarded",
                super::shown_id(event_id(&body).as_deref())
            ));
            return reject(
                StatusCode::UNAUTHORIZED,
                format!("signature rejected: {why}"),
            );
        }
    }
    let parsed = Parsed::default();
    let judged = state.hub.judge(&body, &parsed);
    if !judged.wanted {
        return filtered_out(&state, &body);
    }
    note_other_version(&state, &body);
    let id = event_id(&body);
    let bytes = body.len();
    let event = Event {
        seq: 0,
        id: id.clone(),
        received_ms: crate::timestamp::unix_ms(),
        content_type: text_header(header::CONTENT_TYPE.as_str()),
        signature: signature_header,
        body,
        parsed,
    };
    // The sender is woken once the targets that keep up now reported (one that falls behind
    // meanwhile wakes it through `lag_changed`), not by each report.
    let awaited = judged
        .roster
        .iter()
        .filter(|t| judged.verdicts.wants(t.slot) == Some(true) && t.lag() == Lag::KeepingUp)
        .count();
    let answer = Arc::new(Answer::expecting(awaited));
    // Delivery starts as soon as the event is written: the 200 waits for the fsync, or for
    // every target to have the event, not the targets' first attempts for the disk.
    let spooled = state
        .hub
        .submit(event, judged.verdicts.clone(), answer.clone());
    let acknowledged = state.hub.acknowledged(spooled, &judged, &answer).await;
    let label = super::shown_id(id.as_deref());
    let (seq, durable) = match acknowledged {
        Ok(acked) => acked,
        Err(e) => {
            state.hub.refused();
            state.hub.log().line(format!(
                "event {label} NOT SPOOLED: {e}; answered 503 and dropped (the sender retries it; no target got it)"
            ));
            return reject(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot spool the event: {e}"),
            );
        }
    };
    state.received.fetch_add(1, Ordering::Relaxed);
    if state.hub.log().enabled() {
        let acked_ms = started.elapsed().as_secs_f64() * 1000.0;
        let line = Line::new("event ")
            .text(&label)
            .text(" #")
            .num(seq)
            .text(": received ")
            .num(bytes)
            .text(" bytes, ");
        state.hub.log().line(match durable {
            true => line.text("spooled in ").ms(acked_ms).text(" ms"),
            false => line
                .text("delivered to every target in ")
                .ms(acked_ms)
                .text(" ms (before its fsync)"),
        });
    }
    let targets = collect(&state.hub, &judged, &answer, state.summary_wait).await;
    Json(Receipt {
        received: true,
        event_id: id.as_deref(),
        seq,
        spooled: true,
        targets,
    })
    .into_response()
}

/// The answer to the sender, serialised straight from these (no JSON tree per event).
#[derive(serde::Serialize)]
struct Receipt<'a> {
    received: bool,
    event_id: Option<&'a str>,
    seq: u64,
    spooled: bool,
    targets: Vec<Reported<'a>>,
}

/// A target's part of the answer: its first attempt's outcome, or still in flight.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Reported<'a> {
    Outcome(Outcome),
    Pending {
        name: &'a str,
        status: Option<u16>,
        ok: bool,
        ms: Option<f64>,
        pending: bool,
    },
}

/// A snapshot event naming another API version than the targets expect: Stripe's Go (v73+)
/// and .NET libraries refuse it by default. The relay forwards bytes; it cannot re-render.
fn note_other_version(state: &RelayState, body: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        api_version: Option<std::borrow::Cow<'a, str>>,
    }
    let Some(expected) = &state.api_version else {
        return;
    };
    let Ok(Named {
        api_version: Some(named),
    }) = serde_json::from_slice::<Named>(body)
    else {
        return;
    };
    if named != expected.as_str() {
        state.other_version.fetch_add(1, Ordering::Relaxed);
        state.hub.log().line(format!(
            "event {} names API version {}, not {expected} (--api-version): forwarded unchanged; receivers on Stripe's Go or .NET library refuse it unless told to ignore the version",
            super::shown_id(event_id(body).as_deref()),
            crate::printer::escape_controls(&named),
        ));
    }
}

/// An event no target's route lets through: counted and answered, never spooled.
fn filtered_out(state: &RelayState, body: &[u8]) -> Response {
    state.filtered.fetch_add(1, Ordering::Relaxed);
    let id = event_id(body);
    state.hub.log().line(format!(
        "event {}: no target's route lets it through; not spooled",
        super::shown_id(id.as_deref())
    ));
    let targets: Vec<Value> = state
        .hub
        .target_names()
        .iter()
        .map(|name| serde_json::to_value(Outcome::filtered(name)).unwrap_or(Value::Null))
        .collect();
    Json(json!({
        "received": true,
        "event_id": id,
        "spooled": false,
        "targets": targets,
    }))
    .into_response()
}

/// The event's `id`, when the body is a JSON object with one. Stripe's wire format starts with
/// it (`{\n  "id": "evt_…",`): then it is read without parsing the rest of the event.
fn event_id(body: &[u8]) -> Option<String> {
    if let Some(id) = leading_id(body) {
        return Some(id.to_owned());
    }
    #[derive(Deserialize)]
    struct IdOnly<'a> {
        #[serde(borrow)]
        id: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<IdOnly>(body)
        .ok()?
        .id
        .map(Cow::into_owned)
}

/// The `id` when it is the object's first member and a string without escapes.
fn leading_id(body: &[u8]) -> Option<&str> {
    fn token<'a>(bytes: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
        bytes.trim_ascii_start().strip_prefix(token)
    }
    let rest = token(body, b"{")?;
    let rest = token(rest, b"\"id\"")?;
    let rest = token(rest, b":")?;
    let rest = token(rest, b"\"")?;
    let end = rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    let after = rest[end + 1..].trim_ascii_start();
    let ends_member = rest[end] == b'"' && matches!(after.first(), Some(b',' | b'}'));
    ends_member.then(|| std::str::from_utf8(&rest[..end]).ok())?
}

/// Gathers the first-attempt outcomes until every target answered, or stopped keeping up, or
/// `wait` is over; targets not heard from are reported as pending (or queued behind the events
/// they retry): their delivery goes on from the spool.
async fn collect<'a>(
    hub: &Hub,
    judged: &'a Judged,
    answer: &Answer,
    wait: Duration,
) -> Vec<Reported<'a>> {
    let heard = |target: &Target| {
        judged.verdicts.wants(target.slot) == Some(false)
            || target.lag() != Lag::KeepingUp
            || answer.has(&target.name)
    };
    let all_heard = || judged.roster.iter().all(|t| heard(t));
    let _ = tokio::time::timeout(wait, hub.wait_until(answer, all_heard)).await;
    judged
        .roster
        .iter()
        .map(|target| {
            let outcome = if judged.verdicts.wants(target.slot) == Some(false) {
                Some(Outcome::filtered(&target.name))
            } else {
                answer.take(&target.name)
            };
            match outcome {
                Some(o) => Reported::Outcome(o),
                None if target.lag() == Lag::Retrying => {
                    Reported::Outcome(queued_outcome(&target.name))
                }
                None => Reported::Pending {
                    name: &target.name,
                    status: None,
                    ok: false,
                    ms: None,
                    pending: true,
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_reads_only_a_top_level_id() {
        assert_eq!(
            event_id(br#"{"object":"event","id":"evt_1","data":{"id":"cs_1"}}"#),
            Some("evt_1".into())
        );
        assert_eq!(
            event_id(br#"{"id":"evt_\u00e9"}"#),
            Some("evt_\u{e9}".into())
        );
        assert_eq!(event_id(b"not json"), None);
        assert_eq!(
            event_id(b"{\n  \"id\": \"evt_1\",\n  \"object\": \"event\"}"),
            Some("evt_1".into())
        );
        assert_eq!(event_id(br#"{"id":"evt_2"}"#), Some("evt_2".into()));
        assert_eq!(event_id(br#"{"id":"a\"b"}"#), Some("a\"b".into()));
        assert_eq!(event_id(br#"{"id":"x" "#), None, "not an object's member");
        assert_eq!(event_id(br#"{"id":7}"#), None);
        assert_eq!(event_id(br#"{"data":{}}"#), None);
    }
}
