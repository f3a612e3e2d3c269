//! The app's state and rules, pure: orgs, buyers (password hashes only), bearer tokens (hashes
//! only), billing accounts, checkout sessions, billing events and the crediting decision. The
//! HTTP layer holds it behind one lock; everything here is synchronous and unit-tested.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secret::random_alnum;

/// Stripe's limits for a USD Checkout Session amount, in cents.
pub const MIN_AMOUNT_CENTS: i64 = 50;
pub const MAX_AMOUNT_CENTS: i64 = 99_999_999;
pub const TOPUP_EVENT_TYPE: &str = "stripe_topup";
const PASSWORD_ROUNDS: u32 = 4096;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub balance_cents: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordHash {
    salt: String,
    hash: String,
}

impl PasswordHash {
    fn new(password: &str) -> Self {
        let salt = random_alnum(16);
        let hash = stretch(&salt, password);
        Self { salt, hash }
    }

    fn matches(&self, password: &str) -> bool {
        let got = stretch(&self.salt, password);
        crate::secret::constant_time_eq(got.as_bytes(), self.hash.as_bytes())
    }
}

/// Salted, iterated SHA-256: enough for a local sandbox to never keep a password in clear.
fn stretch(salt: &str, password: &str) -> String {
    let mut digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update(password.as_bytes())
        .finalize();
    for _ in 1..PASSWORD_ROUNDS {
        digest = Sha256::new()
            .chain_update(digest)
            .chain_update(password.as_bytes())
            .finalize();
    }
    hex::encode(digest)
}

fn token_key(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub email: String,
    pub org_id: String,
    password: PasswordHash,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Open,
    Complete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub org_id: String,
    pub account_id: String,
    pub amount_cents: i64,
    pub currency: String,
    pub payment_intent_id: String,
    pub success_url: String,
    pub cancel_url: String,
    pub status: SessionStatus,
    pub livemode: bool,
    pub created: i64,
    #[serde(default)]
    pub customer_email: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BillingEvent {
    pub id: String,
    #[serde(rename = "eventType")]
    pub event_type: String,
    #[serde(rename = "amountCents")]
    pub amount_cents: i64,
    pub metadata: serde_json::Value,
    #[serde(rename = "createdAt")]
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    EmailTaken,
    BadCredentials,
    Invalid(String),
}

/// What a verified `checkout.session.completed` carries that matters for crediting.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WebhookEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: Option<EventData>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventData {
    pub object: SessionObject,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SessionObject {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub payment_status: Option<String>,
    #[serde(default)]
    pub amount_total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub metadata: Option<HashMap<String, serde_json::Value>>,
}

/// How crediting treats duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Each event id and each session credits at most once (the healthy app).
    Enforced,
    /// Every valid delivery credits (the `double-credit` and, after its check, `racy-credit` faults).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Credited {
        org_id: String,
        amount_cents: i64,
    },
    DuplicateEvent,
    SessionAlreadyCredited,
    UnknownSession,
    /// A known session, but the event does not describe its payment (reason).
    Mismatch(String),
    /// Not an event the app acts on.
    Ignored,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Credited { .. } => "credited",
            Outcome::DuplicateEvent => "duplicate_event",
            Outcome::SessionAlreadyCredited => "session_already_credited",
            Outcome::UnknownSession => "unknown_session",
            Outcome::Mismatch(_) => "mismatch",
            Outcome::Ignored => "ignored",
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Store {
    orgs: BTreeMap<String, Org>,
    /// By lower-cased email.
    users: HashMap<String, User>,
    /// SHA-256 of the token -> org id.
    tokens: HashMap<String, String>,
    sessions: HashMap<String, Session>,
    /// Per org, oldest first.
    billing_events: HashMap<String, Vec<BillingEvent>>,
    processed_events: BTreeSet<String>,
    credited_sessions: BTreeSet<String>,
    /// Bumped on every change; the persister writes when it moves.
    #[serde(skip)]
    pub version: u64,
}

fn new_token() -> String {
    format!("sbx_{}", random_alnum(40))
}

impl Store {
    fn touch(&mut self) {
        self.version += 1;
    }

    /// Marks a change made outside the store (the Stripe side's endpoints) for the persister;
    /// returns the version to wait for.
    pub fn touch_external(&mut self) -> u64 {
        self.touch();
        self.version
    }

    /// Registers an org and its first buyer; returns (token, org id).
    pub fn register(
        &mut self,
        org_name: &str,
        email: &str,
        password: &str,
    ) -> Result<(String, String), StoreError> {
        let key = email.trim().to_lowercase();
        if key.is_empty() || !key.contains('@') {
            return Err(StoreError::Invalid("email must be an email address".into()));
        }
        if password.is_empty() {
            return Err(StoreError::Invalid("password must not be empty".into()));
        }
        check_len("email", email, MAX_EMAIL)?;
        check_len("password", password, MAX_PASSWORD)?;
        check_len("orgName", org_name, MAX_NAME)?;
        if self.users.contains_key(&key) {
            return Err(StoreError::EmailTaken);
        }
        let org = Org {
            id: format!("org_{}", random_alnum(14)),
            name: org_name.to_owned(),
            account_id: format!("acct_{}", random_alnum(14)),
            balance_cents: 0,
            currency: "usd".into(),
        };
        let org_id = org.id.clone();
        self.users.insert(
            key,
            User {
                email: email.trim().to_owned(),
                org_id: org_id.clone(),
                password: PasswordHash::new(password),
            },
        );
        self.orgs.insert(org_id.clone(), org);
        let token = new_token();
        self.tokens.insert(token_key(&token), org_id.clone());
        self.touch();
        Ok((token, org_id))
    }

    /// Logs a buyer in and issues a fresh API key (bearer token) for their org.
    pub fn login(&mut self, email: &str, password: &str) -> Result<String, StoreError> {
        check_len("email", email, MAX_EMAIL)?;
        check_len("password", password, MAX_PASSWORD)?;
        let user = self
            .users
            .get(&email.trim().to_lowercase())
            .ok_or(StoreError::BadCredentials)?;
        if !user.password.matches(password) {
            return Err(StoreError::BadCredentials);
        }
        let org_id = user.org_id.clone();
        let token = new_token();
        self.tokens.insert(token_key(&token), org_id);
        self.touch();
        Ok(token)
    }

    pub fn org_for_token(&self, token: &str) -> Option<&Org> {
        self.tokens
            .get(&token_key(token))
            .and_then(|id| self.orgs.get(id))
    }

    pub fn org(&self, id: &str) -> Option<&Org> {
        self.orgs.get(id)
    }

    pub fn session(&self, id: &str) -> Option<&Session> {
        self.sessions.get(id)
    }

    /// Newest first.
    pub fn billing_events(&self, org_id: &str) -> Vec<BillingEvent> {
        self.billing_events
            .get(org_id)
            .map(|l| l.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    pub fn create_session(
        &mut self,
        org_id: &str,
        amount_cents: i64,
        success_url: &str,
        cancel_url: &str,
        livemode: bool,
    ) -> Result<Session, StoreError> {
        validate_amount(amount_cents)?;
        check_len("successUrl", success_url, MAX_URL)?;
        check_len("cancelUrl", cancel_url, MAX_URL)?;
        let org = self
            .orgs
            .get(org_id)
            .ok_or_else(|| StoreError::Invalid("unknown org".into()))?;
        let mode = if livemode { "live" } else { "test" };
        let session = Session {
            id: format!("cs_{mode}_a1{}", random_alnum(56)),
            org_id: org.id.clone(),
            account_id: org.account_id.clone(),
            amount_cents,
            currency: "usd".into(),
            payment_intent_id: format!("pi_3{}", random_alnum(23)),
            success_url: success_url.to_owned(),
            cancel_url: cancel_url.to_owned(),
            status: SessionStatus::Open,
            livemode,
            created: crate::timestamp::unix_now(),
            customer_email: None,
        };
        self.sessions.insert(session.id.clone(), session.clone());
        self.touch();
        Ok(session)
    }

    /// Marks a session paid (the hosted checkout); false when it already was.
    pub fn complete_session(&mut self, id: &str, email: Option<String>) -> Option<bool> {
        let s = self.sessions.get_mut(id)?;
        if s.status == SessionStatus::Complete {
            return Some(false);
        }
        s.status = SessionStatus::Complete;
        s.customer_email = email;
        self.touch();
        Some(true)
    }

    /// Whether crediting this event would be a duplicate (the racy fault's unlocked check).
    pub fn already_applied(&self, event: &WebhookEvent) -> bool {
        self.processed_events.contains(&event.id)
            || session_id(event).is_some_and(|s| self.credited_sessions.contains(s))
    }

    /// Applies a verified webhook event. Events about unknown sessions leave no trace, so a
    /// flood of them (a load test) costs no memory.
    pub fn apply(
        &mut self,
        event: &WebhookEvent,
        idempotency: Idempotency,
        keep_metadata: bool,
    ) -> Outcome {
        if event.event_type != "checkout.session.completed" {
            return Outcome::Ignored;
        }
        let Some(sid) = session_id(event) else {
            return Outcome::UnknownSession;
        };
        let Some(session) = self.sessions.get(sid) else {
            return Outcome::UnknownSession;
        };
        if idempotency == Idempotency::Enforced {
            if self.processed_events.contains(&event.id) {
                return Outcome::DuplicateEvent;
            }
            if self.credited_sessions.contains(sid) {
                self.processed_events.insert(event.id.clone());
                self.touch();
                return Outcome::SessionAlreadyCredited;
            }
        }
        let object = &event.data.as_ref().expect("session_id found it").object;
        if let Err(why) = describes_payment(object, session) {
            return Outcome::Mismatch(why);
        }
        let (org_id, amount) = (session.org_id.clone(), session.amount_cents);
        let metadata = if keep_metadata {
            serde_json::json!({
                "stripeSessionId": sid,
                "stripeEventId": event.id,
                "orgId": org_id,
            })
        } else {
            serde_json::json!({})
        };
        self.processed_events.insert(event.id.clone());
        self.credited_sessions.insert(sid.to_owned());
        if let Some(org) = self.orgs.get_mut(&org_id) {
            org.balance_cents += amount;
        }
        self.billing_events
            .entry(org_id.clone())
            .or_default()
            .push(BillingEvent {
                id: format!("be_{}", random_alnum(20)),
                event_type: TOPUP_EVENT_TYPE.into(),
                amount_cents: amount,
                metadata,
                created_at: crate::timestamp::rfc3339_now(),
            });
        self.touch();
        Outcome::Credited {
            org_id,
            amount_cents: amount,
        }
    }
}

/// The longest values the app stores, as a production app caps its fields (an email address is
/// at most 254 characters by RFC 5321).
pub const MAX_EMAIL: usize = 254;
pub const MAX_PASSWORD: usize = 1024;
pub const MAX_NAME: usize = 200;
pub const MAX_URL: usize = 2048;

/// Refuses a field longer than `max` characters.
pub fn check_len(field: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.chars().count() > max {
        return Err(StoreError::Invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(())
}

fn validate_amount(amount_cents: i64) -> Result<(), StoreError> {
    if !(MIN_AMOUNT_CENTS..=MAX_AMOUNT_CENTS).contains(&amount_cents) {
        return Err(StoreError::Invalid(format!(
            "amountCents must be an integer from {MIN_AMOUNT_CENTS} to {MAX_AMOUNT_CENTS}"
        )));
    }
    Ok(())
}

fn session_id(event: &WebhookEvent) -> Option<&str> {
    event.data.as_ref()?.object.id.as_deref()
}

/// The contract's conditions for crediting: paid, the session's amount in usd, our metadata.
fn describes_payment(object: &SessionObject, session: &Session) -> Result<(), String> {
    if object.payment_status.as_deref() != Some("paid") {
        return Err("payment_status is not paid".into());
    }
    if object.amount_total != Some(session.amount_cents) {
        return Err(format!(
            "amount_total {:?} differs from the session's {}",
            object.amount_total, session.amount_cents
        ));
    }
    if !object
        .currency
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case(&session.currency))
    {
        return Err("currency is not usd".into());
    }
    let meta = object.metadata.as_ref();
    let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(|v| v.as_str());
    if field("orgId") != Some(session.org_id.as_str())
        || field("accountId") != Some(session.account_id.as_str())
        || field("paymentIntentId") != Some(session.payment_intent_id.as_str())
    {
        return Err("metadata does not match the session".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store_with_session() -> (Store, Session) {
        let mut s = Store::default();
        let (_, org) = s.register("Acme", "a@example.com", "pw").unwrap();
        let session = s
            .create_session(&org, 500, "https://x/s", "https://x/c", false)
            .unwrap();
        (s, session)
    }

    fn completed(event_id: &str, session: &Session) -> WebhookEvent {
        serde_json::from_value(json!({
            "id": event_id,
            "type": "checkout.session.completed",
            "data": {"object": {
                "id": session.id,
                "payment_status": "paid",
                "amount_total": session.amount_cents,
                "currency": "usd",
                "metadata": {
                    "orgId": session.org_id,
                    "accountId": session.account_id,
                    "paymentIntentId": session.payment_intent_id,
                }
            }}
        }))
        .unwrap()
    }

    fn balance(s: &Store, org: &str) -> i64 {
        s.org(org).unwrap().balance_cents
    }

    #[test]
    fn register_login_and_tokens() {
        let mut s = Store::default();
        let (t1, org) = s.register("Acme", "A@example.com", "pw").unwrap();
        assert_eq!(s.org_for_token(&t1).unwrap().id, org);
        assert_eq!(
            s.register("x", "a@example.com", "pw2"),
            Err(StoreError::EmailTaken)
        );
        assert_eq!(
            s.login("a@example.com", "nope"),
            Err(StoreError::BadCredentials)
        );
        let t2 = s.login("a@example.com", "pw").unwrap();
        assert_ne!(t1, t2);
        assert_eq!(s.org_for_token(&t2).unwrap().id, org);
        assert!(s.org_for_token("sbx_unknown").is_none());
    }

    #[test]
    fn serialized_state_holds_no_password_or_token() {
        let mut s = Store::default();
        let (token, _) = s
            .register("Acme", "a@example.com", "hunter2-secret")
            .unwrap();
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("hunter2-secret"));
        assert!(!text.contains(&token));
        let back: Store = serde_json::from_str(&text).unwrap();
        assert!(back.org_for_token(&token).is_some());
    }

    #[test]
    fn fields_are_capped() {
        let mut s = Store::default();
        let long = format!("{}@example.com", "a".repeat(1_900_000));
        assert!(matches!(
            s.register("o", &long, "pw"),
            Err(StoreError::Invalid(m)) if m.contains("email is longer than 254")
        ));
        assert!(s.register("o", "a@example.com", &"p".repeat(1025)).is_err());
        assert!(s.register(&"o".repeat(201), "a@example.com", "pw").is_err());
        assert!(s.register("o", "a@example.com", "pw").is_ok());
    }

    #[test]
    fn amounts_are_validated() {
        let (mut s, session) = store_with_session();
        for bad in [0, 49, -5, MAX_AMOUNT_CENTS + 1] {
            assert!(matches!(
                s.create_session(&session.org_id, bad, "", "", false),
                Err(StoreError::Invalid(_))
            ));
        }
    }

    #[test]
    fn credits_once_per_event_and_per_session() {
        let (mut s, session) = store_with_session();
        let e = completed("evt_1", &session);
        let org = session.org_id.clone();
        assert!(matches!(
            s.apply(&e, Idempotency::Enforced, true),
            Outcome::Credited {
                amount_cents: 500,
                ..
            }
        ));
        assert_eq!(
            s.apply(&e, Idempotency::Enforced, true),
            Outcome::DuplicateEvent
        );
        let again = completed("evt_2", &session);
        assert_eq!(
            s.apply(&again, Idempotency::Enforced, true),
            Outcome::SessionAlreadyCredited
        );
        assert_eq!(balance(&s, &org), 500);
        let events = s.billing_events(&org);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].metadata["stripeSessionId"], session.id.as_str());
        assert_eq!(events[0].metadata["stripeEventId"], "evt_1");
    }

    #[test]
    fn no_idempotency_credits_every_delivery() {
        let (mut s, session) = store_with_session();
        let e = completed("evt_1", &session);
        s.apply(&e, Idempotency::None, true);
        s.apply(&e, Idempotency::None, true);
        assert_eq!(balance(&s, &session.org_id), 1000);
        assert!(s.already_applied(&e));
    }

    #[test]
    fn unknown_sessions_and_mismatches_do_not_credit() {
        let (mut s, session) = store_with_session();
        let mut other = session.clone();
        other.id = "cs_test_other".into();
        assert_eq!(
            s.apply(&completed("evt_1", &other), Idempotency::Enforced, true),
            Outcome::UnknownSession
        );
        let mut wrong = completed("evt_2", &session);
        wrong.data.as_mut().unwrap().object.amount_total = Some(1);
        assert!(matches!(
            s.apply(&wrong, Idempotency::Enforced, true),
            Outcome::Mismatch(_)
        ));
        let mut unpaid = completed("evt_3", &session);
        unpaid.data.as_mut().unwrap().object.payment_status = Some("unpaid".into());
        assert!(matches!(
            s.apply(&unpaid, Idempotency::Enforced, true),
            Outcome::Mismatch(_)
        ));
        let mut foreign = completed("evt_4", &session);
        foreign.data.as_mut().unwrap().object.metadata = None;
        assert!(matches!(
            s.apply(&foreign, Idempotency::Enforced, true),
            Outcome::Mismatch(_)
        ));
        let mut other_type = completed("evt_5", &session);
        other_type.event_type = "invoice.paid".into();
        assert_eq!(
            s.apply(&other_type, Idempotency::Enforced, true),
            Outcome::Ignored
        );
        assert_eq!(balance(&s, &session.org_id), 0);
    }

    #[test]
    fn dropped_metadata_leaves_the_event_unmatchable() {
        let (mut s, session) = store_with_session();
        s.apply(&completed("evt_1", &session), Idempotency::Enforced, false);
        let events = s.billing_events(&session.org_id);
        assert_eq!(events[0].metadata, json!({}));
        assert_eq!(events[0].amount_cents, 500);
    }

    #[test]
    fn billing_events_are_newest_first() {
        let (mut s, first) = store_with_session();
        let second = s.create_session(&first.org_id, 700, "", "", false).unwrap();
        s.apply(&completed("evt_1", &first), Idempotency::Enforced, true);
        s.apply(&completed("evt_2", &second), Idempotency::Enforced, true);
        let events = s.billing_events(&first.org_id);
        assert_eq!(events[0].amount_cents, 700);
        assert_eq!(events[1].amount_cents, 500);
    }

    #[test]
    fn completing_a_session_twice_says_so() {
        let (mut s, session) = store_with_session();
        assert_eq!(s.complete_session(&session.id, None), Some(true));
        assert_eq!(s.complete_session(&session.id, None), Some(false));
        assert_eq!(s.complete_session("cs_nope", None), None);
    }
}
