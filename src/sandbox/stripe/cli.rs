//! What the official Stripe CLI's `stripe listen` talks to, as its open-source client expects it
//! (stripe/stripe-cli: `pkg/stripeauth`, `pkg/websocket`, `pkg/proxy`):
//!
//! - `POST /v1/stripecli/sessions` (`stripeauth.Client.Authorize`): form `device_name`,
//!   `websocket_features[]` (`webhooks`, `v2_events`), `forward_to_url`, … ; answers a
//!   `StripeCLISession`: `websocket_id`, `websocket_url`, `websocket_authorized_feature`,
//!   `secret` (the signing secret the CLI prints), `reconnect_delay` (seconds between the
//!   client's planned reconnections), `default_version`, `latest_version`,
//!   `display_connect_filter_warning`, `device_token`.
//! - `GET <websocket_url>?websocket_feature=<authorized feature>` with a `Websocket-Id` header
//!   (`websocket.Client.connect`), subprotocol `stripecli-devproxy-v1`; an unknown id is refused
//!   with `{"error": {"message": "Unknown WebSocket ID."}}`, the message the client compares.
//! - Messages to the CLI (`websocket.WebhookEvent`): `{"type": "webhook_event", "webhook_id",
//!   "webhook_conversation_id", "event_payload": <the delivery body>, "http_headers": {…,
//!   "Stripe-Signature"}, "endpoint": {"api_version": null | VERSION}}`. The client keeps the
//!   copy whose `endpoint.api_version` is null (the account's default version) unless `--latest`
//!   asks for the one that names the latest version (`WebhookEventProcessor.filterWebhookEvent`),
//!   so every event goes out twice. The CLI filters `--events` itself (the session carries no
//!   filter), so every event goes to every listener.
//! - Messages from the CLI: `event_ack` (`websocket.EventAck`) and `webhook_response`
//!   (`websocket.WebhookResponse`: `status`, `forward_url`, `notification_id`…), which is recorded
//!   as a delivery attempt of the event, like an endpoint's.
//!
//! The signing secret is derived from the API key, so it is stable across `listen` runs (and
//! sandbox restarts) for one key, as Stripe's is: `stripe listen --print-secret` can be read once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use hmac::{KeyInit, Mac};
use tokio::sync::{Notify, mpsc, watch};

use super::*;
use crate::webhook::signature::{self, Signer};

/// The subprotocol the CLI's dialer asks for (`websocket.subprotocols`).
const SUBPROTOCOL: &str = "stripecli-devproxy-v1";
/// The feature the CLI names in the websocket URL for webhooks (its client tests use this name).
const WEBHOOKS_FEATURE: &str = "webhook-payloads";
/// The client's own default when a session names none: it reconnects every minute.
const RECONNECT_DELAY_SECS: u64 = 60;
/// A listener that has been away longer than this gets no more events (the CLI waits 10 s
/// between connection attempts; a `listen` that ended does not come back).
const AWAY_LIMIT: Duration = Duration::from_secs(30);
/// A session nobody connected to is forgotten after this (`--print-secret` makes one).
const UNUSED_LIMIT: Duration = Duration::from_secs(600);
/// Messages kept for a listener that is slow or reconnecting; beyond, events are dropped for it.
const QUEUE: usize = 4096;
const SESSION_PARAMS: [&str; 7] = [
    "device_name",
    "websocket_features",
    "filters",
    "forward_to_url",
    "forward_connect_to_url",
    "forward_thin_to_url",
    "forward_thin_connect_to_url",
];

/// One `stripe listen` session.
struct Listener {
    id: String,
    tx: mpsc::Sender<String>,
    rx: tokio::sync::Mutex<mpsc::Receiver<String>>,
    /// Wakes the connection serving this session so that a new one can take over.
    takeover: Notify,
    generation: AtomicU64,
    connected: AtomicBool,
    /// When the last connection ended (`None`: never connected, or connected now).
    left: Mutex<Option<Instant>>,
    ever_connected: AtomicBool,
    created: Instant,
}

impl Listener {
    /// Whether events should go to it: connected, or away for a reconnection only.
    fn live(&self) -> bool {
        if self.connected.load(Ordering::Acquire) {
            return true;
        }
        self.ever_connected.load(Ordering::Acquire)
            && self
                .left
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some_and(|t| t.elapsed() < AWAY_LIMIT)
    }
}

/// The `stripe listen` sessions of the sandbox's account.
pub struct Listeners {
    sessions: Mutex<HashMap<String, Arc<Listener>>>,
    closed: watch::Sender<bool>,
    conversations: AtomicU64,
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            closed: watch::channel(false).0,
            conversations: AtomicU64::new(0),
        }
    }
}

impl Listeners {
    fn get(&self, id: &str) -> Option<Arc<Listener>> {
        self.lock().get(id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Listener>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn create(&self) -> Arc<Listener> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let listener = Arc::new(Listener {
            id: format!("cliws_{}", secret::random_alnum(24)),
            tx,
            rx: tokio::sync::Mutex::new(rx),
            takeover: Notify::new(),
            generation: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            left: Mutex::new(None),
            ever_connected: AtomicBool::new(false),
            created: Instant::now(),
        });
        let mut all = self.lock();
        // Sessions nobody connected to for a while (`--print-secret`, a `listen` that ended).
        all.retain(|_, l| {
            l.live()
                || !l.ever_connected.load(Ordering::Acquire) && l.created.elapsed() < UNUSED_LIMIT
        });
        all.insert(listener.id.clone(), listener.clone());
        listener
    }

    /// Ends every connection (the sandbox stops).
    pub fn close(&self) {
        let _ = self.closed.send(true);
    }

    /// Sends `event` to every live listener: once at the account's default version (`default`,
    /// the body endpoints without a pinned version get) and once at the latest version, each
    /// signed with the CLI secret. Returns how many listeners it went to.
    pub fn publish(&self, secret: &SecretString, event: &Value, default: &str) -> usize {
        let live: Vec<Arc<Listener>> = self.lock().values().filter(|l| l.live()).cloned().collect();
        if live.is_empty() {
            return 0;
        }
        let latest = if event["api_version"].as_str() == Some(crate::webhook::versions::API_VERSION)
        {
            default.to_owned()
        } else {
            let mut rendered = event.clone();
            rendered["api_version"] = Value::from(crate::webhook::versions::API_VERSION);
            crate::webhook::to_wire(&rendered)
        };
        let signer = Signer::new(secret.expose_secret().as_bytes());
        for listener in &live {
            for (body, version) in [
                (default, None),
                (latest.as_str(), Some(crate::webhook::versions::API_VERSION)),
            ] {
                let message = self.message(&listener.id, body, version, &signer);
                if listener.tx.try_send(message).is_err() {
                    tracing::warn!(listener = %listener.id, "stripe listen session too slow: event dropped for it");
                }
            }
        }
        live.len()
    }

    fn message(
        &self,
        webhook_id: &str,
        body: &str,
        version: Option<&str>,
        signer: &Signer,
    ) -> String {
        let n = self.conversations.fetch_add(1, Ordering::Relaxed);
        let header = signature::header(
            signature::unix_now(),
            body.as_bytes(),
            std::slice::from_ref(signer),
        );
        json!({
            "type": "webhook_event",
            "webhook_id": webhook_id,
            "webhook_conversation_id": format!("wc_{n:016}"),
            "event_payload": body,
            "http_headers": {
                "Accept": crate::webhook::ACCEPT,
                "Cache-Control": crate::webhook::CACHE_CONTROL,
                "Content-Type": crate::webhook::CONTENT_TYPE,
                "Stripe-Signature": header,
                "User-Agent": crate::webhook::USER_AGENT,
            },
            "endpoint": {"api_version": version},
        })
        .to_string()
    }
}

/// The signing secret Stripe gives the CLI: stable for one API key. Derived here from the key
/// (HMAC-SHA256 with a fixed label), so it needs no storage and changes with the key.
pub fn cli_secret(key: &SecretString) -> SecretString {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.expose_secret().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(b"stripe-ops sandbox: the signing secret of stripe listen");
    SecretString::from(format!(
        "whsec_{}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

pub(super) async fn create_session(State(shared): S, headers: HeaderMap, body: Bytes) -> Response {
    authorized!(shared, headers);
    let form = try_answer!(Form::parse(&body));
    if let Some(p) = form.unknown(&SESSION_PARAMS) {
        return invalid(
            "parameter_unknown",
            Some(p),
            &format!("Received unknown parameter: {p}"),
        );
    }
    if form.get("device_name").is_none_or(str::is_empty) {
        return invalid(
            "parameter_missing",
            Some("device_name"),
            "Missing required param: device_name.",
        );
    }
    let listener = shared.stripe.listeners.create();
    let websocket_url = format!(
        "{}/subscribe/{}",
        shared.stripe_api_url.replacen("http", "ws", 1),
        shared.stripe.account_id
    );
    let secret = cli_secret(&shared.stripe.key());
    axum::Json(json!({
        "websocket_id": listener.id,
        "websocket_url": websocket_url,
        "websocket_authorized_feature": WEBHOOKS_FEATURE,
        "secret": secret.expose_secret(),
        "reconnect_delay": RECONNECT_DELAY_SECS,
        "default_version": shared.api_version,
        "latest_version": crate::webhook::versions::API_VERSION,
        "display_connect_filter_warning": false,
        "device_token": "",
    }))
    .into_response()
}

/// The websocket a session's `websocket_url` names.
pub(super) async fn subscribe(
    State(shared): S,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let id = headers
        .get("websocket-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(listener) = shared.stripe.listeners.get(id) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": "Unknown WebSocket ID."}})),
        )
            .into_response();
    };
    upgrade
        .protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| serve(shared, listener, socket))
}

async fn serve(shared: Arc<Shared>, listener: Arc<Listener>, mut socket: WebSocket) {
    // The CLI reconnects every `reconnect_delay`: the newest connection takes the session over.
    let generation = listener.generation.fetch_add(1, Ordering::AcqRel) + 1;
    listener.takeover.notify_waiters();
    let mut queue = listener.rx.lock().await;
    listener.connected.store(true, Ordering::Release);
    listener.ever_connected.store(true, Ordering::Release);
    let mut closed = shared.stripe.listeners.closed.subscribe();
    while listener.generation.load(Ordering::Acquire) == generation {
        tokio::select! {
            Some(message) = queue.recv() => {
                if socket.send(Message::Text(message.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => answered(&shared, &listener.id, text.as_str()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {} // pings are answered by the socket itself
            },
            _ = listener.takeover.notified() => break,
            _ = async { let _ = closed.wait_for(|c| *c).await; } => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
        }
    }
    drop(queue);
    if listener.generation.load(Ordering::Acquire) == generation {
        listener.connected.store(false, Ordering::Release);
        *listener.left.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }
}

/// A message from the CLI: a `webhook_response` is the answer of the URL it forwarded to, an
/// attempt of the event like an endpoint's; `event_ack` and anything else need nothing.
fn answered(shared: &Shared, listener_id: &str, text: &str) {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if message["type"] != "webhook_response" {
        return;
    }
    let (Some(event_id), Some(status)) = (
        message["notification_id"].as_str(),
        message["status"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok()),
    ) else {
        return;
    };
    let url = message["forward_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let attempt = shared.stripe.attempts_to(event_id, listener_id) + 1;
    shared.stripe.record_attempt(
        event_id,
        Attempt {
            endpoint: listener_id.to_owned(),
            url,
            attempt,
            status: Some(status),
            error: None,
            at: signature::unix_now(),
        },
        (200..300).contains(&status),
    );
    shared.stripe_touched();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_secret_is_stable_for_a_key_and_differs_between_keys() {
        let a = SecretString::from("sk_test_aaaaaaaaaaaaaaaaaaaaaaaa".to_owned());
        let b = SecretString::from("sk_test_bbbbbbbbbbbbbbbbbbbbbbbb".to_owned());
        let secret = cli_secret(&a);
        assert_eq!(secret.expose_secret(), cli_secret(&a).expose_secret());
        assert_ne!(secret.expose_secret(), cli_secret(&b).expose_secret());
        assert!(secret.expose_secret().starts_with("whsec_"));
        assert_eq!(secret.expose_secret().len(), 6 + 64);
    }

    #[test]
    fn an_event_goes_out_at_the_default_and_the_latest_version() {
        let listeners = Listeners::default();
        let listener = listeners.create();
        listener.ever_connected.store(true, Ordering::Release);
        listener.connected.store(true, Ordering::Release);
        let never = listeners.create();
        let event =
            json!({"id": "evt_1", "type": "customer.created", "api_version": "2025-03-31.basil"});
        let default = crate::webhook::to_wire(&event);
        let secret = SecretString::from("whsec_test".to_owned());
        assert_eq!(listeners.publish(&secret, &event, &default), 1);
        let mut rx = listener.rx.try_lock().unwrap();
        let first: Value = serde_json::from_str(&rx.try_recv().unwrap()).unwrap();
        let second: Value = serde_json::from_str(&rx.try_recv().unwrap()).unwrap();
        assert_eq!(first["type"], "webhook_event");
        assert_eq!(first["endpoint"]["api_version"], Value::Null);
        assert_eq!(first["event_payload"], default.as_str());
        assert_eq!(
            second["endpoint"]["api_version"],
            crate::webhook::versions::API_VERSION
        );
        let latest: Value =
            serde_json::from_str(second["event_payload"].as_str().unwrap()).unwrap();
        assert_eq!(latest["api_version"], crate::webhook::versions::API_VERSION);
        let header = first["http_headers"]["Stripe-Signature"].as_str().unwrap();
        let signer = Signer::new(b"whsec_test");
        assert!(
            signature::verify(
                header,
                default.as_bytes(),
                &[signer],
                300,
                signature::unix_now(),
                signature::Window::PastOnly
            )
            .is_ok()
        );
        assert!(
            never.rx.try_lock().unwrap().try_recv().is_err(),
            "a session never connected gets nothing"
        );
    }
}
