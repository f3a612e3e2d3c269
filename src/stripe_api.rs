//! Client of the part of Stripe's API that stripe-ops calls (CONTRACT.md section 3): webhook
//! endpoints, events, account. Form-encoded requests, bearer auth, Stripe's error objects.
//! Any failure here is `Exit::External` (3), described without the key.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http;
use crate::secret::{ExposeSecret, SecretString};

/// Whether a key is for test or live mode, from its prefix; `None` when it is not a Stripe key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    Test,
    Live,
}

pub fn key_mode(key: &SecretString) -> Option<KeyMode> {
    let k = key.expose_secret();
    if k.starts_with("sk_test_") || k.starts_with("rk_test_") {
        Some(KeyMode::Test)
    } else if k.starts_with("sk_live_") || k.starts_with("rk_live_") {
        Some(KeyMode::Live)
    } else {
        None
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub enabled_events: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// The API version its events are rendered as; `None`: the account's default.
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default)]
    pub created: i64,
    /// Only present in the answer to create; never serialized.
    #[serde(default, skip_serializing)]
    pub secret: Option<SecretString>,
}

/// What a new endpoint is created with: Stripe's create parameters. `connect` is taken on
/// create and never returned by Stripe (the endpoint object has no such field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointSpec {
    pub url: String,
    pub enabled_events: Vec<String>,
    pub api_version: Option<String>,
    pub connect: bool,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

impl EndpointSpec {
    /// The form-encoded parameters of `POST /v1/webhook_endpoints`.
    fn form(&self) -> Vec<(String, String)> {
        let mut form = vec![("url".to_owned(), self.url.clone())];
        form.extend(
            self.enabled_events
                .iter()
                .map(|e| ("enabled_events[]".to_owned(), e.clone())),
        );
        if let Some(v) = &self.api_version {
            form.push(("api_version".into(), v.clone()));
        }
        if self.connect {
            form.push(("connect".into(), "true".into()));
        }
        if let Some(d) = &self.description {
            form.push(("description".into(), d.clone()));
        }
        form.extend(
            self.metadata
                .iter()
                .map(|(k, v)| (format!("metadata[{k}]"), v.clone())),
        );
        form
    }
}

/// Whether `v` has the shape of a Stripe API version: a date, `YYYY-MM-DD`, optionally followed
/// by a release name in lower case (`2025-03-31.basil`).
pub fn is_api_version(v: &str) -> bool {
    let (date, name) = v.split_once('.').unwrap_or((v, "basil"));
    let date_ok = date.len() == 10
        && date.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            _ => c.is_ascii_digit(),
        });
    date_ok && !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase())
}

/// [`is_api_version`] as input validation (exit 2).
pub fn check_api_version(v: &str) -> Result<()> {
    if is_api_version(v) {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "{v:?} is not a Stripe API version (YYYY-MM-DD, optionally .name: 2024-06-20, 2025-03-31.basil)"
        )))
    }
}

impl WebhookEndpoint {
    pub fn enabled(&self) -> bool {
        self.status == "enabled"
    }
}

#[derive(Deserialize)]
struct List<T> {
    data: Vec<T>,
    #[serde(default)]
    has_more: bool,
}

pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    key: SecretString,
}

impl StripeClient {
    pub fn new(base: &str, key: SecretString, timeout: Duration) -> Result<Self> {
        Ok(Self {
            http: http::client(timeout)?,
            base: base.trim_end_matches('/').to_owned(),
            key,
        })
    }

    async fn call<K: AsRef<str> + Serialize>(
        &self,
        method: Method,
        path: &str,
        form: &[(K, String)],
    ) -> Result<Value> {
        let url = http::join(&self.base, path);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(self.key.expose_secret());
        if !form.is_empty() {
            if method == Method::GET {
                req = req.query(form);
            } else {
                req = req.form(form);
            }
        }
        let resp = req
            .send()
            .await
            .map_err(|e| http::send_error(method.as_str(), &url, &e))?;
        self.answer(method, path, resp).await
    }

    /// The answer's JSON, or an error naming Stripe's type, message and code.
    async fn answer(&self, method: Method, path: &str, resp: reqwest::Response) -> Result<Value> {
        let url = resp.url().to_string();
        let status = resp.status();
        let body = http::read_body(resp, http::API)
            .await
            .map_err(|e| http::send_error(method.as_str(), &url, &e))?;
        let text = body.into_text();
        let value: Value = serde_json::from_str(&text).map_err(|_| {
            Error::external(format!(
                "Stripe {method} {path} answered {status} with non-JSON: {}",
                http::excerpt(&text, 200)
            ))
        })?;
        if !status.is_success() {
            let err = &value["error"];
            let describe = |k: &str| err[k].as_str().unwrap_or("").to_owned();
            return Err(Error::external(format!(
                "Stripe {method} {path} answered {status}: {} {}{}",
                describe("type"),
                http::excerpt(&describe("message"), 200),
                err["code"]
                    .as_str()
                    .map(|c| format!(" (code {c})"))
                    .unwrap_or_default(),
            ))
            .with_status(status.as_u16()));
        }
        Ok(value)
    }

    /// A call to API v2: a JSON body, the `Stripe-Version` header v2 requires, the same error
    /// handling as v1.
    async fn call_v2(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = http::join(&self.base, path);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(self.key.expose_secret())
            .header("Stripe-Version", crate::webhook::versions::API_VERSION);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| http::send_error(method.as_str(), &url, &e))?;
        self.answer(method, path, resp).await
    }

    fn parse<T: for<'de> Deserialize<'de>>(value: Value, what: &str) -> Result<T> {
        serde_json::from_value(value)
            .map_err(|e| Error::external(format!("unexpected Stripe {what} answer: {e}")))
    }

    /// `GET /v1/account`: proves that the key works.
    pub async fn account(&self) -> Result<Value> {
        self.call::<&str>(Method::GET, "/v1/account", &[]).await
    }

    /// Every webhook endpoint, following `has_more` with `starting_after`.
    pub async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = vec![("limit", "100".to_owned())];
            if let Some(a) = &after {
                query.push(("starting_after", a.clone()));
            }
            let page: List<WebhookEndpoint> = Self::parse(
                self.call(Method::GET, "/v1/webhook_endpoints", &query)
                    .await?,
                "webhook endpoint list",
            )?;
            after = page.data.last().map(|e| e.id.clone());
            all.extend(page.data);
            if !page.has_more || after.is_none() {
                return Ok(all);
            }
        }
    }

    pub async fn create_webhook_endpoint(&self, spec: &EndpointSpec) -> Result<WebhookEndpoint> {
        Self::parse(
            self.call(Method::POST, "/v1/webhook_endpoints", &spec.form())
                .await?,
            "webhook endpoint",
        )
    }

    pub async fn set_webhook_endpoint_disabled(
        &self,
        id: &str,
        disabled: bool,
    ) -> Result<WebhookEndpoint> {
        let path = format!("/v1/webhook_endpoints/{id}");
        Self::parse(
            self.call(Method::POST, &path, &[("disabled", disabled.to_string())])
                .await?,
            "webhook endpoint",
        )
    }

    pub async fn delete_webhook_endpoint(&self, id: &str) -> Result<()> {
        self.call::<&str>(Method::DELETE, &format!("/v1/webhook_endpoints/{id}"), &[])
            .await
            .map(|_| ())
    }

    /// Every v2 event destination, following `next_page_url`.
    pub async fn list_event_destinations(&self) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut path = "/v2/core/event_destinations?limit=100".to_owned();
        loop {
            let page = self.call_v2(Method::GET, &path, None).await?;
            all.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["next_page_url"].as_str() {
                Some(next) if !next.is_empty() => path = next.to_owned(),
                _ => return Ok(all),
            }
        }
    }

    pub async fn create_event_destination(&self, params: &Value) -> Result<Value> {
        self.call_v2(Method::POST, "/v2/core/event_destinations", Some(params))
            .await
    }

    pub async fn update_event_destination(&self, id: &str, params: &Value) -> Result<Value> {
        let path = format!("/v2/core/event_destinations/{id}");
        self.call_v2(Method::POST, &path, Some(params)).await
    }

    pub async fn enable_event_destination(&self, id: &str) -> Result<Value> {
        let path = format!("/v2/core/event_destinations/{id}/enable");
        self.call_v2(Method::POST, &path, None).await
    }

    pub async fn delete_event_destination(&self, id: &str) -> Result<()> {
        let path = format!("/v2/core/event_destinations/{id}");
        self.call_v2(Method::DELETE, &path, None).await.map(|_| ())
    }

    /// Every event `GET /v1/events` lists with `filter`, following `has_more` (newest first,
    /// as Stripe lists them). `progress` is told how many have been read so far.
    pub async fn list_events(
        &self,
        filter: &[(String, String)],
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<Value>> {
        let mut all: Vec<Value> = Vec::new();
        loop {
            let mut query: Vec<(String, String)> = filter.to_vec();
            query.push(("limit".into(), "100".into()));
            if let Some(last) = all.last().and_then(|e| e["id"].as_str()) {
                query.push(("starting_after".into(), last.to_owned()));
            }
            let page: List<Value> = Self::parse(
                self.call(Method::GET, "/v1/events", &query).await?,
                "event list",
            )?;
            let more = page.has_more && !page.data.is_empty();
            all.extend(page.data);
            progress(all.len());
            if !more {
                return Ok(all);
            }
        }
    }

    pub async fn retrieve_event(&self, id: &str) -> Result<Value> {
        self.call::<&str>(Method::GET, &format!("/v1/events/{id}"), &[])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_spec_is_stripes_create_form() {
        let spec = EndpointSpec {
            url: "https://a.example/h".into(),
            enabled_events: vec!["a.b".into(), "c.d".into()],
            api_version: Some("2024-06-20".into()),
            connect: true,
            description: Some("d".into()),
            metadata: [("team".to_owned(), "pay".to_owned())].into(),
        };
        let form = spec.form();
        let get = |k: &str| {
            form.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("enabled_events[]"), ["a.b", "c.d"]);
        assert_eq!(get("api_version"), ["2024-06-20"]);
        assert_eq!(get("connect"), ["true"]);
        assert_eq!(get("metadata[team]"), ["pay"]);
        let plain = EndpointSpec::default().form();
        assert!(plain.iter().all(|(k, _)| k == "url"), "{plain:?}");
    }

    #[test]
    fn api_versions_are_dates_with_an_optional_release_name() {
        for ok in ["2024-06-20", "2025-03-31.basil", "2020-08-27"] {
            assert!(is_api_version(ok), "{ok}");
        }
        for bad in [
            "",
            "2024-6-20",
            "2024-06-20.",
            "2024-06-20.Basil",
            "latest",
            "2024/06/20",
        ] {
            assert!(!is_api_version(bad), "{bad}");
        }
    }

    #[test]
    fn key_modes_follow_prefixes() {
        let k = |s: &str| SecretString::from(s.to_owned());
        assert_eq!(key_mode(&k("sk_test_1")), Some(KeyMode::Test));
        assert_eq!(key_mode(&k("rk_live_1")), Some(KeyMode::Live));
        assert_eq!(key_mode(&k("pk_test_1")), None);
    }
}
