//! Client of the app's top-up contract (CONTRACT.md section 1), with routes and JSON fields
//! taken from the configured `Contract`. Used by smoke, check and demo.
//!
//! Errors: the app unreachable or timing out is `Exit::External` (3); the app answering
//! something unexpected is `Exit::Failed` (1), naming the call, the status and an excerpt.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::config::Contract;
use crate::error::{Error, Result};
use crate::http::{self, Reply};
use crate::secret::{ExposeSecret, SecretString};

/// The buyer a smoke logs in as.
#[derive(Debug, Clone)]
pub struct Buyer {
    pub email: String,
    pub password: SecretString,
}

impl Buyer {
    /// A fresh buyer (`smoke+<unix ms>-<random>@example.com`), so parallel runs never share a balance.
    pub fn fresh() -> Self {
        let ms = crate::timestamp::unix_ms();
        let tag = crate::secret::random_alnum(6).to_lowercase();
        Self {
            email: format!("smoke+{ms}-{tag}@example.com"),
            password: SecretString::from(format!("pw-{}", crate::secret::random_alnum(24))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    LoggedIn,
    Registered,
}

#[derive(Debug, Clone)]
pub struct Checkout {
    pub checkout_url: String,
    pub session_id: String,
    pub payment_intent_id: Option<String>,
}

/// One entry of the billing events list, read through the configured field names.
#[derive(Debug, Clone)]
pub struct BillingEvent {
    pub event_type: String,
    pub amount_cents: Option<i64>,
    pub session_id: Option<String>,
    pub stripe_event_id: Option<String>,
    pub raw: Value,
}

#[derive(Clone)]
pub struct AppClient {
    http: reqwest::Client,
    pub base_url: String,
    pub contract: Contract,
    token: Option<SecretString>,
}

/// Reads a dotted path (`account.balance_cents`) out of a JSON value.
pub fn get_path<'a>(value: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(value, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

impl AppClient {
    pub fn new(base_url: &str, contract: Contract, timeout: Duration) -> Result<Self> {
        Ok(Self {
            http: http::client(timeout)?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            contract,
            token: None,
        })
    }

    /// Reuses a token obtained earlier (for example from a receipt).
    pub fn with_token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    pub fn token(&self) -> Option<&SecretString> {
        self.token.as_ref()
    }

    pub fn url(&self, path: &str) -> String {
        http::join(&self.base_url, path)
    }

    /// Sends a request and returns whatever the app answered; only transport failures are errors.
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply> {
        let url = self.url(path);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.expose_secret());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req, method.as_str(), &url).await
    }

    async fn send(&self, req: reqwest::RequestBuilder, method: &str, url: &str) -> Result<Reply> {
        let started = Instant::now();
        let resp = req
            .send()
            .await
            .map_err(|e| http::send_error(method, url, &e))?;
        http::reply(resp, method, url, started, http::API).await
    }

    /// Like `request`, but a non-2xx answer or a body that is not JSON is a failed check.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let reply = self.request(method.clone(), path, body).await?;
        if !reply.status.is_success() {
            return Err(Error::failed(format!(
                "{method} {path} answered {}: {}",
                reply.status,
                reply.excerpt()
            )));
        }
        reply.json().ok_or_else(|| {
            Error::failed(format!(
                "{method} {path} answered {} with a body that is not JSON: {}",
                reply.status,
                reply.excerpt()
            ))
        })
    }

    fn field<'a>(&self, value: &'a Value, dotted: &str, call: &str) -> Result<&'a Value> {
        get_path(value, dotted).ok_or_else(|| {
            Error::failed(format!(
                "{call} answer has no `{dotted}`: {}",
                http::excerpt(&value.to_string(), 200)
            ))
        })
    }

    fn string_field(&self, value: &Value, dotted: &str, call: &str) -> Result<String> {
        match self.field(value, dotted, call)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(Error::failed(format!(
                "{call} answer's `{dotted}` is not a string: {other}"
            ))),
        }
    }

    pub async fn health(&self) -> Result<Reply> {
        let reply = self
            .request(Method::GET, &self.contract.paths.health.clone(), None)
            .await?;
        if !reply.status.is_success() {
            return Err(Error::failed(format!(
                "GET {} answered {}: {}",
                self.contract.paths.health,
                reply.status,
                reply.excerpt()
            )));
        }
        Ok(reply)
    }

    /// Logs in; when that fails, registers. Sets the bearer token for later calls.
    pub async fn login_or_register(&mut self, buyer: &Buyer) -> Result<LoginOutcome> {
        let login = self.login_request(buyer).await?;
        if login.status.is_success() {
            self.token = Some(self.token_from(&login, "log-in")?);
            return Ok(LoginOutcome::LoggedIn);
        }
        self.register(buyer).await?;
        Ok(LoginOutcome::Registered)
    }

    /// Logs in (no registering); sets the bearer token for later calls.
    pub async fn login(&mut self, buyer: &Buyer) -> Result<()> {
        let reply = self.login_request(buyer).await?;
        if !reply.status.is_success() {
            return Err(Error::failed(format!(
                "log-in as {} answered {}: {}",
                buyer.email,
                reply.status,
                reply.excerpt()
            )));
        }
        self.token = Some(self.token_from(&reply, "log-in")?);
        Ok(())
    }

    async fn login_request(&self, buyer: &Buyer) -> Result<Reply> {
        let body = json!({
            "email": buyer.email,
            "password": buyer.password.expose_secret(),
            "name": "stripe-ops smoke",
        });
        self.request(
            Method::POST,
            &self.contract.paths.login.clone(),
            Some(&body),
        )
        .await
    }

    pub async fn register(&mut self, buyer: &Buyer) -> Result<()> {
        let path = self.contract.paths.register.clone();
        let body = json!({
            "orgName": format!("stripe-ops {}", buyer.email),
            "email": buyer.email,
            "password": buyer.password.expose_secret(),
            "apiKeyName": "stripe-ops smoke",
        });
        let reply = self.request(Method::POST, &path, Some(&body)).await?;
        if reply.status == StatusCode::CONFLICT && reply.body.contains("email_already_registered") {
            return Err(Error::failed(format!(
                "log-in failed and {} is already registered: wrong buyer password?",
                buyer.email
            )));
        }
        if !reply.status.is_success() {
            return Err(Error::failed(format!(
                "POST {path} answered {}: {}",
                reply.status,
                reply.excerpt()
            )));
        }
        self.token = Some(self.token_from(&reply, "register")?);
        Ok(())
    }

    fn token_from(&self, reply: &Reply, call: &str) -> Result<SecretString> {
        let value = reply.json().ok_or_else(|| {
            Error::failed(format!("{call} answer is not JSON: {}", reply.excerpt()))
        })?;
        Ok(SecretString::from(self.string_field(
            &value,
            &self.contract.fields.token,
            call,
        )?))
    }

    pub async fn balance_cents(&self) -> Result<i64> {
        let path = self.contract.paths.account.clone();
        let v = self.call(Method::GET, &path, None).await?;
        let field = &self.contract.fields.balance_cents;
        self.field(&v, field, &path)?
            .as_i64()
            .ok_or_else(|| Error::failed(format!("GET {path}: `{field}` is not an integer")))
    }

    pub async fn create_checkout(
        &self,
        amount_cents: i64,
        success_url: &str,
        cancel_url: &str,
    ) -> Result<Checkout> {
        let path = self.contract.paths.checkout.clone();
        let body = json!({ "amountCents": amount_cents, "successUrl": success_url, "cancelUrl": cancel_url });
        let v = self.call(Method::POST, &path, Some(&body)).await?;
        let f = &self.contract.fields;
        Ok(Checkout {
            checkout_url: self.string_field(&v, &f.checkout_url, &path)?,
            session_id: self.string_field(&v, &f.session_id, &path)?,
            payment_intent_id: get_path(&v, &f.payment_intent_id)
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    pub async fn billing_events(&self) -> Result<Vec<BillingEvent>> {
        let path = self.contract.paths.events.clone();
        let v = self.call(Method::GET, &path, None).await?;
        let f = &self.contract.fields;
        let list = self
            .field(&v, &f.events, &path)?
            .as_array()
            .ok_or_else(|| Error::failed(format!("GET {path}: `{}` is not a list", f.events)))?;
        let text = |e: &Value, p: &str| get_path(e, p).and_then(Value::as_str).map(str::to_owned);
        Ok(list
            .iter()
            .map(|e| BillingEvent {
                event_type: text(e, &f.event_type).unwrap_or_default(),
                amount_cents: get_path(e, &f.event_amount_cents).and_then(Value::as_i64),
                session_id: text(e, &f.event_session_id),
                stripe_event_id: text(e, &f.event_stripe_event_id),
                raw: e.clone(),
            })
            .collect())
    }

    /// The top-ups recorded for one Checkout Session.
    pub async fn topups_for_session(&self, session_id: &str) -> Result<Vec<BillingEvent>> {
        let topup = self.contract.fields.topup_event_type.clone();
        Ok(self
            .billing_events()
            .await?
            .into_iter()
            .filter(|e| e.event_type == topup && e.session_id.as_deref() == Some(session_id))
            .collect())
    }

    /// POSTs a raw webhook body, with a `Stripe-Signature` header when given.
    pub async fn post_webhook(&self, body: &str, signature: Option<&str>) -> Result<Reply> {
        let url = self.url(&self.contract.paths.webhook);
        crate::webhook::post(&self.http, &url, body, signature, &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_path_walks_objects_and_arrays() {
        let v = json!({"account": {"balance_cents": 5}, "l": [{"x": 1}]});
        assert_eq!(get_path(&v, "account.balance_cents"), Some(&json!(5)));
        assert_eq!(get_path(&v, "l.0.x"), Some(&json!(1)));
        assert_eq!(get_path(&v, "account.nope"), None);
    }

    #[test]
    fn fresh_buyers_differ() {
        let a = Buyer::fresh();
        assert!(a.email.starts_with("smoke+") && a.email.ends_with("@example.com"));
        assert_ne!(a.email, Buyer::fresh().email);
    }
}
