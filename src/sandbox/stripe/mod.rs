//! The part of Stripe's API that stripe-ops and the Stripe CLI call (CONTRACT.md section 3), on
//! its own listener: the account's state (key, endpoints, events), auth (Bearer or basic, one
//! key), Stripe's error objects, and the router; `form` reads form bodies and makes list pages.
//! One file per resource:
//! `endpoints`, `events`, `cli` (the Stripe CLI's `listen` sessions and websocket),
//! `event_destinations` (v2, Amazon EventBridge), and one per payment or billing resource.
// Handlers return early with a ready `Response`; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};

/// The value of a `Result<T, E>`, or returns its error (Stripe's answer) from the handler.
macro_rules! try_answer {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(answer) => return answer.into_response(),
        }
    };
}

pub mod behaviour;
mod checkout_page;
pub mod cli;
mod clock;
mod endpoints;
pub mod engine;
pub mod event_destinations;
mod events;
mod form;
pub mod onboarding;
mod portal_page;
pub mod thin;
mod three_d_secure;
pub mod tunnel;
use engine::{ApiError, Call};
use form::{Form, list_page, list_query, parse_bool};
pub mod validate;

use super::Shared;
use crate::error::{Error, Result};
use crate::secret::{self, ExposeSecret, SecretString};

type S = State<Arc<Shared>>;

/// A webhook endpoint as the sandbox's Stripe holds it.
#[derive(Clone)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub enabled_events: Vec<String>,
    pub description: Option<String>,
    pub disabled: bool,
    pub created: i64,
    pub secret: SecretString,
    pub metadata: serde_json::Map<String, Value>,
    /// The API version events are rendered as for this endpoint (`None`: the account's).
    pub api_version: Option<String>,
    /// A Connect endpoint: it gets the events of connected accounts, not the account's own.
    /// Stripe takes it on create and never returns it, so neither does the sandbox.
    pub connect: bool,
}

impl Endpoint {
    /// Whether an event of `event_type` (from a connected account when `connected`) goes here.
    pub fn wants(&self, event_type: &str, connected: bool) -> bool {
        !self.disabled
            && self.connect == connected
            && self
                .enabled_events
                .iter()
                .any(|e| e == "*" || e == event_type)
    }

    fn to_json(&self, livemode: bool, with_secret: bool) -> Value {
        let mut v = json!({
            "id": self.id,
            "object": "webhook_endpoint",
            "api_version": self.api_version,
            "application": null,
            "created": self.created,
            "description": self.description,
            "enabled_events": self.enabled_events,
            "livemode": livemode,
            "metadata": self.metadata,
            "status": if self.disabled { "disabled" } else { "enabled" },
            "url": self.url,
        });
        if with_secret {
            v["secret"] = Value::String(self.secret.expose_secret().to_owned());
        }
        v
    }
}

/// One delivery attempt of one event to one endpoint.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Attempt {
    pub endpoint: String,
    pub url: String,
    pub attempt: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub at: i64,
}

pub struct EventRecord {
    pub id: String,
    /// The connected account whose event it is (its `account`); `None`: the platform's own.
    pub account: Option<String>,
    pub body: Arc<str>,
    pub pending: HashSet<String>,
    /// The latest `ATTEMPTS_KEPT`, oldest first.
    pub attempts: VecDeque<Attempt>,
}

/// Delivery attempts kept per event: the latest ones, as Stripe's Dashboard lists an event's
/// recent deliveries (Stripe publishes no count; live mode retries for up to three days, some
/// 16 attempts per endpoint, so 100 holds several endpoints' whole history).
pub const ATTEMPTS_KEPT: usize = 100;
/// The longest URL and error an attempt records (the CLI's `forward_url` is the caller's word):
/// an endpoint's URL is at most 2048 characters here (`endpoints::MAX_URL`).
const ATTEMPT_URL_CHARS: usize = 2048;
const ATTEMPT_ERROR_CHARS: usize = 500;

impl Attempt {
    /// The attempt with its fields cut to the recorded sizes.
    fn bounded(mut self) -> Self {
        truncate_chars(&mut self.url, ATTEMPT_URL_CHARS);
        if let Some(e) = self.error.as_mut() {
            truncate_chars(e, ATTEMPT_ERROR_CHARS);
        }
        self
    }
}

/// Cuts `s` to `max` characters and gives the rest of its allocation back.
fn truncate_chars(s: &mut String, max: usize) {
    if let Some((at, _)) = s.char_indices().nth(max) {
        s.truncate(at);
        s.shrink_to_fit();
    }
}

/// What `--state` keeps of the Stripe side: the account id and the webhook endpoints (with
/// their secrets: the state file is private).
#[derive(Debug, Default, Serialize, serde::Deserialize)]
pub struct SavedStripe {
    pub account_id: String,
    pub endpoints: Vec<SavedEndpoint>,
    /// The events and their deliveries, so that `GET /v1/events` (and a replay) still lists
    /// them after a restart. Absent from files written before events were kept.
    #[serde(default)]
    pub events: Vec<SavedEvent>,
    /// The v2 event destinations (absent from older files).
    #[serde(default)]
    pub destinations: Vec<event_destinations::Destination>,
}

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct SavedEvent {
    id: String,
    body: String,
    pending: Vec<String>,
    attempts: VecDeque<Attempt>,
}

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct SavedEndpoint {
    id: String,
    url: String,
    enabled_events: Vec<String>,
    description: Option<String>,
    disabled: bool,
    created: i64,
    secret: String,
    metadata: serde_json::Map<String, Value>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    connect: bool,
}

/// What a new endpoint is created with (Stripe's create parameters).
pub struct NewEndpoint {
    pub url: String,
    pub enabled_events: Vec<String>,
    pub description: Option<String>,
    pub metadata: serde_json::Map<String, Value>,
    pub api_version: Option<String>,
    pub connect: bool,
}

pub struct StripeSide {
    key: RwLock<SecretString>,
    endpoints: Mutex<Vec<Endpoint>>,
    events: Mutex<Vec<EventRecord>>,
    account_id: String,
    /// The Stripe CLI's `listen` sessions.
    pub listeners: cli::Listeners,
    /// What `stripe trigger` creates: customers, payments, prices, subscriptions, …, the
    /// platform's and each connected account's apart (not kept by `--state`).
    pub objects: engine::store::Stores,
    /// How far `POST /sandbox/v1/clock/advance` moved the sandbox's clock ahead of the
    /// machine's, in seconds (see `now`).
    clock_offset: std::sync::atomic::AtomicI64,
    /// The `Idempotency-Key`s of recent POSTs and their answers.
    pub idempotency: engine::idempotency::Keys,
    /// The v2 event destinations (Amazon EventBridge).
    pub destinations: event_destinations::Destinations,
    /// The webhook deliveries under way, bounded per endpoint.
    pub in_flight: crate::sandbox::delivery::InFlight,
    /// The thin (v2) events, for `GET /v2/core/events` (not kept by `--state`).
    pub thin: thin::ThinEvents,
    /// The `meter-events.stripe.com` tunnel's TLS, made at start (`tunnel.rs`).
    pub tunnel: std::sync::OnceLock<Arc<tunnel::Tunnel>>,
}

/// Reads a Stripe API key file: `sk_test_…`/`sk_live_…` (or restricted `rk_…`).
pub fn read_key_file(path: &Path) -> Result<SecretString> {
    let key = secret::read_file(path, "Stripe key")?;
    if crate::stripe_api::key_mode(&key).is_none() {
        return Err(Error::usage(format!(
            "Stripe key file {} does not hold an sk_test_/sk_live_ key",
            path.display()
        )));
    }
    Ok(key)
}

/// Stripe's way of naming a key in an error: `sk_test_****abcd`.
pub(crate) fn mask_key(key: &str) -> String {
    let prefix_len = key
        .match_indices('_')
        .nth(1)
        .map(|(i, _)| i + 1)
        .unwrap_or(0);
    let tail: String = if prefix_len > 0 && key.len() >= prefix_len + 8 && key.is_ascii() {
        key[key.len() - 4..].to_owned()
    } else {
        String::new()
    };
    format!("{}****{tail}", &key[..prefix_len.min(key.len())])
}

impl StripeSide {
    /// A Stripe side with the account and endpoints a `--state` file saved, if any.
    pub fn new(key: SecretString, saved: Option<SavedStripe>) -> Self {
        let saved = saved.unwrap_or_default();
        let endpoints = saved
            .endpoints
            .into_iter()
            .map(|e| Endpoint {
                id: e.id,
                url: e.url,
                enabled_events: e.enabled_events,
                description: e.description,
                disabled: e.disabled,
                created: e.created,
                secret: SecretString::from(e.secret),
                metadata: e.metadata,
                api_version: e.api_version,
                connect: e.connect,
            })
            .collect();
        let events = saved
            .events
            .into_iter()
            .map(|e| EventRecord {
                id: e.id,
                account: account_of(&e.body),
                body: e.body.into(),
                pending: e.pending.into_iter().collect(),
                attempts: e
                    .attempts
                    .into_iter()
                    .rev()
                    .take(ATTEMPTS_KEPT)
                    .rev()
                    .map(Attempt::bounded)
                    .collect(),
            })
            .collect();
        Self {
            key: RwLock::new(key),
            endpoints: Mutex::new(endpoints),
            events: Mutex::new(events),
            listeners: cli::Listeners::default(),
            objects: Default::default(),
            clock_offset: Default::default(),
            idempotency: Default::default(),
            destinations: event_destinations::Destinations::restore(saved.destinations),
            in_flight: Default::default(),
            thin: Default::default(),
            tunnel: Default::default(),
            account_id: if saved.account_id.is_empty() {
                format!("acct_{}", secret::random_alnum(16))
            } else {
                saved.account_id
            },
        }
    }

    pub fn save(&self) -> SavedStripe {
        SavedStripe {
            account_id: self.account_id.clone(),
            endpoints: self
                .endpoints()
                .iter()
                .map(|e| SavedEndpoint {
                    id: e.id.clone(),
                    url: e.url.clone(),
                    enabled_events: e.enabled_events.clone(),
                    description: e.description.clone(),
                    disabled: e.disabled,
                    created: e.created,
                    secret: e.secret.expose_secret().to_owned(),
                    metadata: e.metadata.clone(),
                    api_version: e.api_version.clone(),
                    connect: e.connect,
                })
                .collect(),
            events: self
                .events()
                .iter()
                .map(|e| SavedEvent {
                    id: e.id.clone(),
                    body: e.body.to_string(),
                    pending: e.pending.iter().cloned().collect(),
                    attempts: e.attempts.clone(),
                })
                .collect(),
            destinations: self.destinations.saved(),
        }
    }

    pub fn key(&self) -> SecretString {
        self.key.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_key(&self, key: SecretString) {
        *self.key.write().unwrap_or_else(|e| e.into_inner()) = key;
    }

    pub fn livemode(&self) -> bool {
        self.key
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .expose_secret()
            .contains("_live_")
    }

    fn endpoints(&self) -> std::sync::MutexGuard<'_, Vec<Endpoint>> {
        self.endpoints.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn events(&self) -> std::sync::MutexGuard<'_, Vec<EventRecord>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers an endpoint; `None` when the account already has `MAX_ENDPOINTS` (enabled or
    /// disabled), as Stripe refuses then.
    fn create_endpoint(&self, new: NewEndpoint, secret: SecretString) -> Option<Endpoint> {
        let mut all = self.endpoints();
        if all.len() >= MAX_ENDPOINTS {
            return None;
        }
        let endpoint = Endpoint {
            id: format!("we_{}", secret::random_alnum(24)),
            url: new.url,
            enabled_events: new.enabled_events,
            description: new.description,
            disabled: false,
            created: crate::timestamp::unix_now(),
            secret,
            metadata: new.metadata,
            api_version: new.api_version,
            connect: new.connect,
        };
        all.push(endpoint.clone());
        Some(endpoint)
    }

    /// The app's own webhook, registered first, with the app's (first) secret; one saved by
    /// `--state` is replaced (the app's URL and secret may have changed since).
    pub fn register_app_endpoint(&self, url: &str, secret: SecretString) {
        self.endpoints()
            .retain(|e| e.description.as_deref() != Some(APP_ENDPOINT));
        let app = NewEndpoint {
            url: url.to_owned(),
            enabled_events: vec!["checkout.session.completed".into()],
            description: Some(APP_ENDPOINT.into()),
            metadata: Default::default(),
            api_version: None,
            connect: false,
        };
        let _ = self.create_endpoint(app, secret);
    }

    pub fn app_endpoint_secret(&self) -> Option<SecretString> {
        self.endpoints().first().map(|e| e.secret.clone())
    }

    /// The enabled endpoints that take `event_type` (from a connected account when
    /// `connected`), oldest first.
    pub fn targets(&self, event_type: &str, connected: bool) -> Vec<Endpoint> {
        self.endpoints()
            .iter()
            .filter(|e| e.wants(event_type, connected))
            .cloned()
            .collect()
    }

    pub fn record_event(&self, record: EventRecord) {
        self.events().push(record);
    }

    pub fn record_attempt(&self, event_id: &str, attempt: Attempt, delivered: bool) {
        let mut events = self.events();
        if let Some(e) = events.iter_mut().find(|e| e.id == event_id) {
            if delivered {
                e.pending.remove(&attempt.endpoint);
            }
            if e.attempts.len() >= ATTEMPTS_KEPT {
                e.attempts.pop_front();
            }
            e.attempts.push_back(attempt.bounded());
        }
    }

    /// How many attempts of `event_id` went to `endpoint` (an endpoint's or a listener's id): the
    /// number of its latest attempt still kept, found among at most `ATTEMPTS_KEPT`.
    pub fn attempts_to(&self, event_id: &str, endpoint: &str) -> u32 {
        self.events()
            .iter()
            .find(|e| e.id == event_id)
            .and_then(|e| e.attempts.iter().rev().find(|a| a.endpoint == endpoint))
            .map_or(0, |a| a.attempt)
    }

    /// The endpoint with this id.
    pub fn endpoint(&self, id: &str) -> Option<Endpoint> {
        self.endpoints().iter().find(|e| e.id == id).cloned()
    }

    /// The signing secret of `stripe listen` sessions (see `cli`).
    pub fn cli_secret(&self) -> SecretString {
        cli::cli_secret(&self.key())
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// The sandbox's clock: the machine's time, plus how far `POST /sandbox/v1/clock/advance`
    /// moved it (what objects and events are dated with, and when funds become available).
    pub fn now(&self) -> i64 {
        crate::timestamp::unix_now() + self.clock_offset.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Moves the sandbox's clock `seconds` forward.
    pub fn advance_clock(&self, seconds: i64) {
        self.clock_offset
            .fetch_add(seconds, std::sync::atomic::Ordering::AcqRel);
    }

    /// Stripe's 401s unless `headers` carry the account's key.
    pub fn authorize(&self, headers: &HeaderMap) -> engine::ApiResult<()> {
        let Some(given) = given_key(headers) else {
            return Err(engine::ApiError::unauthorized(
                "You did not provide an API key. You need to provide your API key in the \
                 Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
                 YOUR_SECRET_KEY').",
            ));
        };
        let key = self.key();
        if secret::constant_time_eq(given.as_bytes(), key.expose_secret().as_bytes()) {
            return Ok(());
        }
        Err(engine::ApiError::unauthorized(&format!(
            "Invalid API Key provided: {}",
            mask_key(&given)
        )))
    }
}

/// The `account` of an event's body (a connected account's event), if any.
pub fn account_of(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Owner {
        account: Option<String>,
    }
    serde_json::from_str::<Owner>(body).ok()?.account
}

/// The key from `Authorization: Bearer KEY` or `Basic base64(KEY:)`.
fn given_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if let Some(k) = value.strip_prefix("Bearer ") {
        return Some(k.trim().to_owned());
    }
    let encoded = value.strip_prefix("Basic ")?;
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split(':').next().unwrap_or("").to_owned())
}

/// Stripe's error object: `{"error": {"type", "message", "code"?, "param"?}}`.
const APP_ENDPOINT: &str = "stripe-ops sandbox app";

/// Stripe lets an account register up to 16 webhook endpoints.
pub const MAX_ENDPOINTS: usize = 16;

fn stripe_error(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    param: Option<&str>,
    message: &str,
) -> Response {
    ApiError::new(status, kind, code, param, message).into_response()
}

/// A change the sandbox could not put on disk (`--state`): Stripe's `api_error`, with 503 so that
/// a client retries; the change is not acknowledged.
fn unwritten(why: String) -> Response {
    stripe_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "api_error",
        None,
        None,
        &why,
    )
}

fn invalid(code: &str, param: Option<&str>, message: &str) -> Response {
    ApiError::invalid(code, param, message).into_response()
}

/// Stripe's answer for a parameter that names an object it does not have.
fn missing_param(kind: &str, param: &str, id: &str) -> Response {
    ApiError::no_such(kind, id, param).into_response()
}

fn missing(kind: &str, id: &str) -> Response {
    ApiError::not_found(kind, id).into_response()
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/account", get(account))
        .route(
            "/v1/webhook_endpoints",
            get(endpoints::list).post(endpoints::create),
        )
        .route(
            "/v1/webhook_endpoints/{id}",
            get(endpoints::retrieve)
                .post(endpoints::update)
                .delete(endpoints::delete),
        )
        .route("/v1/events", get(events::list))
        .route("/v1/events/{id}", get(events::retrieve))
        .route("/v1/events/{id}/retry", post(events::retry))
        .route(
            "/sandbox/v1/events/{id}/delivery_attempts",
            get(events::attempts),
        )
        .route("/v1/stripecli/sessions", post(cli::create_session))
        .route(
            "/v1/payment_pages/{id}",
            get(behaviour::checkout::payment_page),
        )
        .route(
            "/v1/payment_pages/{id}/confirm",
            post(behaviour::checkout::confirm),
        )
        .route(
            "/v2/core/event_destinations",
            get(event_destinations::list).post(event_destinations::create),
        )
        .route(
            "/v2/core/event_destinations/{id}",
            get(event_destinations::retrieve)
                .post(event_destinations::update)
                .delete(event_destinations::delete),
        )
        .route(
            "/v2/core/event_destinations/{id}/enable",
            post(event_destinations::enable),
        )
        .route(
            "/v2/core/event_destinations/{id}/disable",
            post(event_destinations::disable),
        )
        .route(
            "/v2/core/event_destinations/{id}/ping",
            post(event_destinations::ping),
        )
        .route("/v2/core/events", get(thin::list))
        .route("/v2/core/events/{id}", get(thin::retrieve))
        .route("/subscribe/{account}", get(cli::subscribe))
        .route(
            "/setup/e/{account}/{link}",
            get(onboarding::page).post(onboarding::submit),
        )
        .route("/express/{account}/{link}", get(onboarding::express))
        .route(
            "/c/pay/{id}",
            get(checkout_page::page).post(checkout_page::pay),
        )
        .route("/c/pay/{id}/card", get(checkout_page::card_frame))
        .route("/p/session/{id}", get(portal_page::page))
        .route(
            "/3ds/{id}",
            get(three_d_secure::page).post(three_d_secure::answer),
        )
        .route(
            "/p/session/{id}/subscriptions/{sub}/cancel",
            post(portal_page::cancel),
        )
        .route(
            "/c/pay/{id}/authenticate",
            get(checkout_page::authentication_page).post(checkout_page::authenticate),
        )
        .route(
            "/v1/issuing/cards/{card}/test/authorizations",
            post(behaviour::issuing::legacy_test_authorization),
        )
        .route("/sandbox/v1/clock", get(clock::read))
        .route("/sandbox/v1/clock/advance", post(clock::advance))
        .fallback(engine::dispatch)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            engine::idempotency::layer,
        ))
        .layer(axum::middleware::from_fn(engine::call::request_id))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            tunnel::layer,
        ))
        .with_state(shared)
}

/// `GET /v1/account`: the account the key acts for: with `Stripe-Account`, that connected
/// account; else the platform's own (the engine's template, as a standard account that can take
/// payments and pay out).
async fn account(State(shared): S, call: Call) -> Response {
    if let engine::Scope::Connected(id) = &call.scope {
        return match shared.stripe.objects.platform().get_of("account", id) {
            Some(a) => axum::Json(a).into_response(),
            None => engine::call::account_invalid(&shared, id).into_response(),
        };
    }
    let resource = engine::Engine::get()
        .resource("account")
        .expect("account is in the table");
    let mut account = engine::ops::fresh(resource, crate::timestamp::unix_now(), shared.livemode());
    account["id"] = json!(shared.stripe.account_id);
    account["email"] = json!("sandbox@example.com");
    for key in ["charges_enabled", "details_submitted", "payouts_enabled"] {
        account[key] = json!(true);
    }
    axum::Json(account).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keys_like_stripe() {
        assert_eq!(
            mask_key("sk_test_CANARYcanary0123456789abcdefABCDEF"),
            "sk_test_****CDEF"
        );
        assert_eq!(mask_key("sk_test_ab"), "sk_test_****");
        assert_eq!(mask_key("nonsense"), "****");
    }

    #[test]
    fn form_lists_accept_both_styles() {
        let f = Form::parse(
            b"url=https%3A%2F%2Fx&enabled_events[]=a&enabled_events%5B1%5D=b&metadata[k]=v",
        )
        .unwrap();
        assert_eq!(f.get("url"), Some("https://x"));
        assert_eq!(f.list("enabled_events").unwrap(), vec!["a", "b"]);
        assert_eq!(f.map("metadata")["k"], "v");
        assert_eq!(f.unknown(&endpoints::CREATE_PARAMS), None);
        let f = Form::parse(b"bogus=1").unwrap();
        assert_eq!(f.unknown(&endpoints::CREATE_PARAMS), Some("bogus"));
    }

    #[test]
    fn basic_auth_key_is_read() {
        let mut h = HeaderMap::new();
        // base64("sk_test_x:")
        h.insert(
            header::AUTHORIZATION,
            "Basic c2tfdGVzdF94Og==".parse().unwrap(),
        );
        assert_eq!(given_key(&h).as_deref(), Some("sk_test_x"));
    }
}
