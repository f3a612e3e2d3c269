//! `Idempotency-Key` as Stripe keeps it ("Idempotent requests", API reference): a POST with a
//! key it has seen answers the saved result again (`Idempotent-Replayed: true`), whatever
//! happened since; the same key with other parameters is refused
//! (`idempotency_error`); a key whose first request is still running is a 409. Keys are kept
//! 24 hours. stripe-node and stripe-python send a key with every retried POST, so a retry after
//! a lost answer does not create a second object.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::sandbox::Shared;

/// How long a key is kept ("keys are eligible to be removed from the system automatically
/// after they're at least 24 hours old").
const KEPT: Duration = Duration::from_secs(24 * 3600);
/// Saved answers beyond this are dropped oldest first (memory stays bounded under load).
const MAX_KEYS: usize = 10_000;
const MAX_KEY_LEN: usize = 255;
const BODY_LIMIT: usize = 2 * 1024 * 1024;

enum Saved {
    Running,
    Done {
        fingerprint: [u8; 32],
        status: StatusCode,
        body: Bytes,
    },
}

/// The saved answers by key, and the keys oldest first.
type Table = (HashMap<String, (Instant, Saved)>, VecDeque<String>);

#[derive(Default)]
pub struct Keys {
    inner: Mutex<Table>,
}

impl Keys {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The layer around the Stripe API: POSTs with an `Idempotency-Key`.
pub async fn layer(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(key) = key.filter(|_| req.method() == Method::POST) else {
        return next.run(req).await;
    };
    if key.chars().count() > MAX_KEY_LEN {
        return ApiError::request(&format!(
            "Idempotency keys can be no longer than {MAX_KEY_LEN} characters."
        ))
        .into_response();
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return ApiError::request("The request body could not be read (at most 2 MiB).")
            .into_response();
    };
    let fingerprint: [u8; 32] = Sha256::new()
        .chain_update(parts.uri.path().as_bytes())
        .chain_update([0])
        .chain_update(&bytes)
        .finalize()
        .into();
    {
        let mut guard = shared.stripe.idempotency.lock();
        let (map, order) = &mut *guard;
        while order
            .front()
            .is_some_and(|k| map.get(k).is_none_or(|(at, _)| at.elapsed() > KEPT))
        {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
        match map.get(&key) {
            Some((
                _,
                Saved::Done {
                    fingerprint: f,
                    status,
                    body,
                },
            )) if *f == fingerprint => {
                let mut resp = (*status, body.clone()).into_response();
                resp.headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/json"));
                resp.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                return resp;
            }
            Some((_, Saved::Running)) => {
                return ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_error",
                    Some("idempotency_key_in_use"),
                    None,
                    &format!("There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): {key}. Please try again later."),
                )
                .into_response();
            }
            Some(_) => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    None,
                    None,
                    &format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."),
                )
                .into_response();
            }
            None => {
                map.insert(key.clone(), (Instant::now(), Saved::Running));
                order.push_back(key.clone());
                while order.len() > MAX_KEYS {
                    if let Some(old) = order.pop_front() {
                        map.remove(&old);
                    }
                }
            }
        }
    }
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = resp.status();
    let (resp_parts, resp_body) = resp.into_parts();
    let body = axum::body::to_bytes(resp_body, usize::MAX)
        .await
        .unwrap_or_default();
    // Stripe saves a result once the endpoint began to run; not an authentication failure, a
    // conflict or a server error, which a retry may get past.
    let keep = !matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS
    ) && !status.is_server_error();
    {
        let mut guard = shared.stripe.idempotency.lock();
        if keep {
            guard.0.insert(
                key,
                (
                    Instant::now(),
                    Saved::Done {
                        fingerprint,
                        status,
                        body: body.clone(),
                    },
                ),
            );
        } else {
            guard.0.remove(&key);
        }
    }
    Response::from_parts(resp_parts, Body::from(body))
}
