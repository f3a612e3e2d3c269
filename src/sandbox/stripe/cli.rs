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

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use hmac::{KeyInit, Mac};
use tokio::sync::{mpsc, watch};

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
/// A session nobody connected to is forgotten after this: the CLI connects as soon as it has
/// its session (three attempts 10 s apart at most, `pkg/websocket` `maxConnectAttempts`);
/// `--print-secret` makes one it never connects to.
const UNUSED_LIMIT: Duration = Duration::from_secs(60);
/// Sessions nobody connected to kept per API key (the sandbox has one key at a time); the
/// oldest goes first. Stripe publishes no number.
const UNUSED_PER_KEY: usize = 64;
/// Messages kept for a listener that is slow or reconnecting; beyond, events are dropped for it.
const QUEUE: usize = 4096;
/// How long one message may take to go out. The CLI reads continuously (its own write wait is
/// 1 s, its pong wait 10 s: `pkg/websocket/client.go`); a socket that takes longer is dead, and
/// the connection is closed so that the session's next connection gets its events.
const SEND_LIMIT: Duration = Duration::from_secs(10);
/// How long a goodbye (a close frame) may take on a socket that may not be read any more.
const CLOSE_LIMIT: Duration = Duration::from_secs(1);
/// The largest message taken from the CLI: a `webhook_response` carries the answer's body cut
/// to 5,000 bytes, 21 headers of at most 50 + 200 bytes (`pkg/proxy/proxy.go`) and the event it
/// forwarded; a larger one is closed with 1009 (RFC 6455 section 7.4.1, "message too big").
const MAX_MESSAGE: usize = 4 << 20;
const SESSION_PARAMS: [&str; 7] = [
    "device_name",
    "websocket_features",
    "filters",
    "forward_to_url",
    "forward_connect_to_url",
    "forward_thin_to_url",
    "forward_thin_connect_to_url",
];

/// One message for a listener, with the event it carries (a drop is recorded on the event).
struct Queued {
    event_id: String,
    text: String,
}

/// One `stripe listen` session.
struct Listener {
    id: String,
    tx: mpsc::Sender<Queued>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Queued>>,
    /// Bumped by every connection: the connection serving the session sees it change and
    /// ends at once, even in the middle of a send, so that the newest one takes over.
    generation: watch::Sender<u64>,
    connected: AtomicBool,
    /// When the last connection ended (`None`: never connected, or connected now).
    left: Mutex<Option<Instant>>,
    ever_connected: AtomicBool,
    created: Instant,
    /// Messages that never reached the CLI (queue full, a send too slow, a takeover mid-send).
    dropped: AtomicU64,
    /// What the session asked for (`websocket_features[]`): `webhooks`, snapshot events
    /// (`stripe listen --all-snapshot`, `--events` of snapshot types); `v2_events`, thin events
    /// (`--all-thin`, `--events` of thin types). The CLI 1.52.0 asks for one of them, or both
    /// with its deprecated `--thin-events`/`--forward-thin-to`; a session that names none gets
    /// snapshot events, as the CLI's clients before features did.
    snapshot: bool,
    thin: bool,
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

    /// Whether it can be forgotten: connected once and gone for good, or never connected and
    /// too old.
    fn over(&self) -> bool {
        if self.ever_connected.load(Ordering::Acquire) {
            !self.live()
        } else {
            self.created.elapsed() >= UNUSED_LIMIT
        }
    }
}

#[derive(Default)]
struct Sessions {
    by_id: HashMap<String, Arc<Listener>>,
    /// Sessions in creation order, while nobody connected to them: expired and capped from the
    /// front, so a create costs O(1) however many there are.
    unused: VecDeque<Arc<Listener>>,
}

/// The `stripe listen` sessions of the sandbox's account.
pub struct Listeners {
    sessions: Mutex<Sessions>,
    closed: watch::Sender<bool>,
    conversations: AtomicU64,
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            sessions: Mutex::new(Sessions::default()),
            closed: watch::channel(false).0,
            conversations: AtomicU64::new(0),
        }
    }
}

impl Listeners {
    fn get(&self, id: &str) -> Option<Arc<Listener>> {
        self.lock().by_id.get(id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn create(&self, snapshot: bool, thin: bool) -> Arc<Listener> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let listener = Arc::new(Listener {
            id: format!("cliws_{}", secret::random_alnum(24)),
            tx,
            rx: tokio::sync::Mutex::new(rx),
            generation: watch::Sender::new(0),
            connected: AtomicBool::new(false),
            left: Mutex::new(None),
            ever_connected: AtomicBool::new(false),
            created: Instant::now(),
            dropped: AtomicU64::new(0),
            snapshot,
            thin,
        });
        let mut all = self.lock();
        // The front is the oldest: pop those connected since, expired, or over the cap.
        while let Some(oldest) = all.unused.front().cloned() {
            let connected = oldest.ever_connected.load(Ordering::Acquire);
            if !connected
                && oldest.created.elapsed() < UNUSED_LIMIT
                && all.unused.len() < UNUSED_PER_KEY
            {
                break;
            }
            all.unused.pop_front();
            if !connected {
                all.by_id.remove(&oldest.id);
            }
        }
        all.by_id.insert(listener.id.clone(), listener.clone());
        all.unused.push_back(listener.clone());
        listener
    }

    /// Ends every connection (the sandbox stops).
    pub fn close(&self) {
        let _ = self.closed.send(true);
    }

    /// Sends `event` to every live listener: once at the account's default version (`default`,
    /// the body endpoints without a pinned version get) and once at the latest version, each
    /// signed with the CLI secret. Returns how many listeners it went to. A message that finds
    /// a listener's queue full is dropped, and the drop recorded on the event.
    pub fn publish(
        &self,
        stripe: &StripeSide,
        out: &crate::printer::Printer,
        secret: &SecretString,
        event: &Value,
        default: &str,
    ) -> usize {
        let live: Vec<Arc<Listener>> = {
            let mut all = self.lock();
            all.by_id.retain(|_, l| !l.over());
            all.by_id
                .values()
                .filter(|l| l.snapshot && l.live())
                .cloned()
                .collect()
        };
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
        let event_id = event["id"].as_str().unwrap_or_default();
        let signer = Signer::new(secret.expose_secret().as_bytes());
        for listener in &live {
            for (body, version) in [
                (default, None),
                (latest.as_str(), Some(crate::webhook::versions::API_VERSION)),
            ] {
                let message = Queued {
                    event_id: event_id.to_owned(),
                    text: self.message(&listener.id, body, version, &signer),
                };
                if let Err(e) = listener.tx.try_send(message) {
                    let message = match e {
                        mpsc::error::TrySendError::Full(m)
                        | mpsc::error::TrySendError::Closed(m) => m,
                    };
                    dropped(stripe, out, listener, &message, "its queue is full");
                }
            }
        }
        live.len()
    }

    /// Whether a live listener asked for thin events.
    pub fn any_thin(&self) -> bool {
        self.lock().by_id.values().any(|l| l.thin && l.live())
    }

    /// Sends a thin event's notification to every live listener that asked for thin events, as
    /// the CLI reads it (`websocket.StripeV2Event`: `type` `v2_event`, `payload`,
    /// `http_headers`, `destination_id`), signed with the CLI secret. The CLI forwards it to
    /// `--forward-to` when it listens `--all-thin` or names its type in `--events`.
    pub fn publish_thin(
        &self,
        stripe: &StripeSide,
        out: &crate::printer::Printer,
        secret: &SecretString,
        event_id: &str,
        notification: &str,
    ) -> usize {
        let live: Vec<Arc<Listener>> = self
            .lock()
            .by_id
            .values()
            .filter(|l| l.thin && l.live())
            .cloned()
            .collect();
        let signer = Signer::new(secret.expose_secret().as_bytes());
        for listener in &live {
            let header = signature::header(
                crate::timestamp::unix_now(),
                notification.as_bytes(),
                std::slice::from_ref(&signer),
            );
            let text = json!({
                "type": "v2_event",
                "payload": notification,
                "http_headers": delivery_headers(header),
                "destination_id": listener.id,
            })
            .to_string();
            let message = Queued {
                event_id: event_id.to_owned(),
                text,
            };
            if let Err(e) = listener.tx.try_send(message) {
                let (mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m)) = e;
                dropped(stripe, out, listener, &m, "its queue is full");
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
            crate::timestamp::unix_now(),
            body.as_bytes(),
            std::slice::from_ref(signer),
        );
        json!({
            "type": "webhook_event",
            "webhook_id": webhook_id,
            "webhook_conversation_id": format!("wc_{n:016}"),
            "event_payload": body,
            "http_headers": delivery_headers(header),
            "endpoint": {"api_version": version},
        })
        .to_string()
    }
}

/// The headers of a delivery, as Stripe sends them to an endpoint.
fn delivery_headers(signature: String) -> Value {
    json!({
        "Accept": crate::webhook::ACCEPT,
        "Cache-Control": crate::webhook::CACHE_CONTROL,
        "Content-Type": crate::webhook::CONTENT_TYPE,
        "Stripe-Signature": signature,
        "User-Agent": crate::webhook::USER_AGENT,
    })
}

/// A message that never reached the CLI: counted on the session, recorded as a failed delivery
/// attempt of its event (`GET /v1/events/{id}`), and said on stderr with the session's count
/// (the first drop, then at each power of two, so that a flood costs a few lines).
fn dropped(
    stripe: &StripeSide,
    out: &crate::printer::Printer,
    listener: &Listener,
    message: &Queued,
    why: &str,
) {
    let count = listener.dropped.fetch_add(1, Ordering::Relaxed) + 1;
    if count.is_power_of_two() {
        out.warn(format!(
            "stripe listen session {}: event {} not sent ({why}); {count} dropped for this \
             session so far",
            listener.id, message.event_id
        ));
    }
    stripe.record_attempt(
        &message.event_id,
        Attempt {
            endpoint: listener.id.clone(),
            url: String::new(),
            attempt: stripe.attempts_to(&message.event_id, &listener.id) + 1,
            status: None,
            error: Some(format!(
                "not sent to stripe listen: {why} ({count} dropped for this session)"
            )),
            at: crate::timestamp::unix_now(),
        },
        false,
    );
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

pub(super) async fn create_session(State(shared): S, call: Call) -> Response {
    let form = call.form.clone();
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
    let features = form.list("websocket_features").unwrap_or_default();
    let wants = |f: &str| features.iter().any(|g| g == f);
    let listener = shared
        .stripe
        .listeners
        .create(features.is_empty() || wants("webhooks"), wants("v2_events"));
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

/// The websocket a session's `websocket_url` names. What the CLI would never send is refused:
/// an unknown id (with the message its client compares), no `stripecli-devproxy-v1`
/// subprotocol, a message over `MAX_MESSAGE` (close code 1009).
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
    let offered = upgrade.requested_protocols().any(|p| {
        p.to_str()
            .is_ok_and(|list| list.split(',').any(|p| p.trim() == SUBPROTOCOL))
    });
    if !offered {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"message": format!(
                "The websocket subprotocol must be {SUBPROTOCOL}."
            )}})),
        )
            .into_response();
    }
    upgrade
        .protocols([SUBPROTOCOL])
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| serve(shared, listener, socket))
}

/// Why a connection ended, and what it says on its way out.
enum End {
    /// The session's newer connection took over.
    TakenOver,
    /// A message did not go out within `SEND_LIMIT`.
    TooSlow,
    /// The CLI sent a message over `MAX_MESSAGE`.
    TooBig,
    /// The sandbox stops.
    Stopping,
    /// The CLI closed, or the socket failed.
    Gone,
}

impl End {
    fn close_frame(&self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            End::TakenOver => (
                close_code::NORMAL,
                "a newer connection took the session over",
            ),
            End::TooSlow => (close_code::POLICY, "the connection did not read its events"),
            End::TooBig => (close_code::SIZE, "message too big"),
            End::Stopping => (close_code::AWAY, "the sandbox is stopping"),
            End::Gone => return None,
        };
        Some(CloseFrame {
            code,
            reason: reason.into(),
        })
    }
}

async fn serve(shared: Arc<Shared>, listener: Arc<Listener>, mut socket: WebSocket) {
    // The CLI reconnects every `reconnect_delay` (and after every drop): the newest connection
    // takes the session over, and the one it replaces ends at once, even mid-send.
    let mut generation = 0;
    listener.generation.send_modify(|g| {
        *g += 1;
        generation = *g;
    });
    let mut taken = listener.generation.subscribe();
    let mut closed = shared.stripe.listeners.closed.subscribe();
    let end = 'serve: {
        let mut queue = tokio::select! {
            q = listener.rx.lock() => q,
            _ = taken.changed() => break 'serve End::TakenOver,
        };
        listener.connected.store(true, Ordering::Release);
        listener.ever_connected.store(true, Ordering::Release);
        loop {
            tokio::select! {
                Some(message) = queue.recv() => {
                    let frame = Message::Text(message.text.as_str().into());
                    let sent = tokio::select! {
                        sent = tokio::time::timeout(SEND_LIMIT, socket.send(frame)) => sent,
                        _ = taken.changed() => {
                            dropped(&shared.stripe, &shared.out, &listener, &message, "a newer connection took the session over mid-send");
                            break 'serve End::TakenOver;
                        }
                    };
                    match sent {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => {
                            dropped(&shared.stripe, &shared.out, &listener, &message, "the connection failed");
                            break 'serve End::Gone;
                        }
                        Err(_) => {
                            dropped(&shared.stripe, &shared.out, &listener, &message, "the connection did not read it in time");
                            break 'serve End::TooSlow;
                        }
                    }
                }
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(text))) => answered(&shared, &listener.id, text.as_str()),
                    Some(Ok(Message::Close(_))) | None => break 'serve End::Gone,
                    Some(Err(e)) if too_big(&e) => break 'serve End::TooBig,
                    Some(Err(_)) => break 'serve End::Gone,
                    Some(Ok(_)) => {} // pings are answered by the socket itself
                },
                _ = taken.changed() => break 'serve End::TakenOver,
                _ = async { let _ = closed.wait_for(|c| *c).await; } => break 'serve End::Stopping,
            }
        }
    };
    if *listener.generation.borrow() == generation {
        listener.connected.store(false, Ordering::Release);
        *listener.left.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }
    if let Some(frame) = end.close_frame() {
        let _ = tokio::time::timeout(CLOSE_LIMIT, socket.send(Message::Close(Some(frame)))).await;
    }
}

/// Whether a receive failed on a message over `MAX_MESSAGE` (tungstenite's capacity error).
fn too_big(e: &axum::Error) -> bool {
    let text = crate::error::chain(e);
    text.contains("Space limit exceeded") || text.contains("Message too long")
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
            at: crate::timestamp::unix_now(),
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
        let listener = listeners.create(true, false);
        listener.ever_connected.store(true, Ordering::Release);
        listener.connected.store(true, Ordering::Release);
        let never = listeners.create(true, false);
        let stripe = StripeSide::new(SecretString::from("sk_test_x".to_owned()), None);
        let event =
            json!({"id": "evt_1", "type": "customer.created", "api_version": "2025-03-31.basil"});
        let default = crate::webhook::to_wire(&event);
        let secret = SecretString::from("whsec_test".to_owned());
        let out = crate::printer::Printer::silent();
        assert_eq!(
            listeners.publish(&stripe, &out, &secret, &event, &default),
            1
        );
        let mut rx = listener.rx.try_lock().unwrap();
        let first: Value = serde_json::from_str(&rx.try_recv().unwrap().text).unwrap();
        let second: Value = serde_json::from_str(&rx.try_recv().unwrap().text).unwrap();
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
                crate::timestamp::unix_now(),
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
