//! One SigV4-signed POST, for the AWS calls stripe-ops makes without a generated SDK crate
//! (IAM's `SimulatePrincipalPolicy`, KMS's `DescribeKey`, SQS's JSON protocol in `aws::sqs`),
//! with the credentials of aws-config's chain. The generated crates cost minutes of every clean
//! release build for one call each (`aws-sdk-iam` alone: 137 s, `cargo build --timings`, 2
//! cores).
//!
//! Signing is `sigv4`'s (the day's key kept). SQS's hot calls (`Signed::lean`) go over the
//! lean HTTP/1.1 client's kept-alive connections (`http1`) rather than reqwest, unless a proxy
//! variable applies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use hyper_util::client::proxy::matcher::Matcher;
use tokio_rustls::rustls::ClientConfig;

use super::PerUrl;
use super::sigv4::{Scope, Signer, authority};
use crate::http1::{Failure, Kept, Origin, write_head};

/// One call; the pre-flight's own deadline bounds them all.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Credentials are fetched again this long before they expire (aws-config's lazy identity
/// cache also refreshes ahead of expiry).
const REFRESH_AHEAD: Duration = Duration::from_secs(300);

/// Credentials and the endpoint override, shared by the signed calls.
#[derive(Clone)]
pub struct Signed {
    credentials: Option<SharedCredentialsProvider>,
    /// The last credentials the chain gave, while they are fresh. aws-config's identity cache
    /// lives in the generated clients' runtime, not in `SdkConfig::credentials_provider()`, so
    /// without this every signed call walked the chain again (on ECS, a request to the container
    /// credentials endpoint per SQS call).
    cached: Arc<tokio::sync::Mutex<Option<Credentials>>>,
    /// `--aws-endpoint-url` / `AWS_ENDPOINT_URL`: an emulator.
    endpoint_override: Option<String>,
    /// Built once, for the first call that needs it (loading the platform's certificates is
    /// not free, and the lean client's calls never need it); why, when it could not be.
    http: Arc<std::sync::OnceLock<std::result::Result<reqwest::Client, String>>>,
    signer: Arc<Signer>,
    /// The `Host` each URL's calls are signed with.
    hosts: PerUrl,
    /// The lean client's connections, when this client uses it (`lean`).
    lean: Option<Arc<Lean>>,
    timeout: Duration,
}

/// The service's answer: its status and body.
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub body: String,
}

impl Signed {
    pub fn new(config: &SdkConfig, endpoint_override: Option<String>) -> Signed {
        Self::with_timeout(config, endpoint_override, CALL_TIMEOUT)
    }

    /// Calls bounded by `timeout` (SQS's long polls wait up to 20 s for messages).
    pub fn with_timeout(
        config: &SdkConfig,
        endpoint_override: Option<String>,
        timeout: Duration,
    ) -> Signed {
        Signed {
            credentials: config.credentials_provider(),
            cached: Arc::default(),
            endpoint_override,
            http: Arc::default(),
            signer: Arc::default(),
            hosts: PerUrl::default(),
            lean: None,
            timeout,
        }
    }

    /// The same, with its calls over the lean HTTP/1.1 client's kept-alive connections (per
    /// endpoint) where no proxy variable applies: for the relay's SQS calls, a receive and a
    /// delete every ten messages, where reqwest's per-request layers were a large part of each
    /// call's CPU.
    pub fn lean(mut self) -> Signed {
        self.lean = Some(Arc::new(Lean {
            tls: std::sync::OnceLock::new(),
            proxies: Matcher::from_system(),
            pools: Mutex::default(),
        }));
        self
    }

    /// POSTs `body` to the service (`endpoint` unless overridden), signed for `service` in
    /// `region` with `headers` (content type included) signed too. `Err` says why no answer came
    /// (no credentials, the service unreachable).
    pub async fn post(
        &self,
        service: &str,
        region: &str,
        endpoint: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Result<Answer, String> {
        let endpoint = self.endpoint_override.as_deref().unwrap_or(endpoint);
        let url = format!("{}/", endpoint.trim_end_matches('/'));
        let credentials = self.credentials().await?;
        let host = self.hosts.get(&url, authority)?;
        let signing = self.signer.sign(
            &credentials,
            &Scope {
                region,
                service,
                time: SystemTime::now(),
            },
            &host,
            headers,
            body.as_bytes(),
        );
        let signed: Vec<(&str, &str)> = headers
            .iter()
            .copied()
            .chain(signing.headers(&credentials))
            .collect();
        if let Some(lean) = &self.lean
            && let Some(pool) = lean.pool(&url)
        {
            let exchange = lean_post(&pool, &signed, body.as_bytes(), self.timeout);
            let answer = match tokio::time::timeout(self.timeout, exchange).await {
                Ok(answer) => answer.map_err(|f| f.describe())?,
                Err(_) => return Err(Failure::timeout(self.timeout).describe()),
            };
            return Ok(Answer {
                status: reqwest::StatusCode::from_u16(answer.status)
                    .map_err(|_| format!("answered status {}", answer.status))?,
                body: answer.body.into_text(),
            });
        }
        let http = self
            .http
            .get_or_init(|| crate::http::client(self.timeout).map_err(|e| e.message().to_owned()))
            .clone()?;
        let mut request = http.post(&url).body(body);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| crate::http::describe_failure(&e))?;
        let status = response.status();
        let body = crate::http::read_body(response, crate::http::API)
            .await
            .map_err(|e| crate::http::describe_failure(&e))?;
        Ok(Answer {
            status,
            body: body.into_text(),
        })
    }

    /// The chain's credentials, fetched once and again only when they are about to expire.
    async fn credentials(&self) -> Result<Credentials, String> {
        let provider = self
            .credentials
            .as_ref()
            .ok_or("no AWS credentials were found")?;
        let mut cached = self.cached.lock().await;
        if let Some(fresh) = cached
            .as_ref()
            .filter(|c| still_fresh(c, SystemTime::now()))
        {
            return Ok(fresh.clone());
        }
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("no AWS credentials: {}", crate::error::chain(&e)))?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }
}

/// Whether `credentials` can still sign at `now`: they never expire, or not within
/// `REFRESH_AHEAD`.
fn still_fresh(credentials: &Credentials, now: SystemTime) -> bool {
    credentials
        .expiry()
        .is_none_or(|expiry| expiry > now + REFRESH_AHEAD)
}

/// How long a kept-alive connection to AWS may stay idle before it is closed rather than reused.
const IDLE: Duration = Duration::from_secs(20);
/// Idle connections kept per endpoint.
const MAX_IDLE: usize = 16;

/// The lean client's connections, per endpoint URL.
struct Lean {
    /// Made for the first https endpoint (loading the platform's certificates is not free,
    /// and an emulator's http endpoint never needs them).
    tls: std::sync::OnceLock<std::result::Result<Arc<ClientConfig>, String>>,
    proxies: Matcher,
    pools: Mutex<HashMap<String, Option<Arc<Kept>>>>,
}

impl Lean {
    /// The pool for `url`; `None` when a proxy variable applies to it (or it cannot be
    /// reached without reqwest): reqwest carries those calls.
    fn pool(&self, url: &str) -> Option<Arc<Kept>> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = pools.get(url) {
            return pool.clone();
        }
        let proxied = url
            .parse::<hyper::Uri>()
            .is_ok_and(|uri| self.proxies.intercept(&uri).is_some());
        let pool = (!proxied)
            .then(|| {
                let tls = url
                    .starts_with("https:")
                    .then(|| self.tls.get_or_init(lean_tls).as_ref().ok())
                    .flatten();
                Origin::new(url, tls).ok()
            })
            .flatten()
            .map(|origin| Arc::new(Kept::new(origin, MAX_IDLE, IDLE)));
        pools.insert(url.to_owned(), pool.clone());
        pool
    }
}

/// The POST over a kept-alive connection (a reused one the service closed as the request went
/// out is replaced once: `Kept::exchange`).
async fn lean_post(
    pool: &Kept,
    headers: &[(&str, &str)],
    body: &[u8],
    connect_within: Duration,
) -> Result<crate::http1::Answer, Failure> {
    let write = |out: &mut Vec<u8>, origin: &Origin| {
        let mut head: Vec<(&str, &[u8])> = Vec::with_capacity(headers.len() + 1);
        head.push(("user-agent", crate::http::USER_AGENT.as_bytes()));
        head.extend(headers.iter().map(|(n, v)| (*n, v.as_bytes())));
        write_head(out, "POST", origin, &head, body.len());
        out.extend_from_slice(body);
    };
    pool.exchange(connect_within, write, crate::http::API).await
}

/// TLS for AWS's endpoints: the platform's trust store (as reqwest), HTTP/1.1 by ALPN.
fn lean_tls() -> std::result::Result<Arc<ClientConfig>, String> {
    use rustls_platform_verifier::ConfigVerifierExt;
    let mut config =
        ClientConfig::with_platform_verifier().map_err(|e| format!("TLS set-up: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A service of AWS's JSON protocols (SQS's `application/x-amz-json-1.0` with `X-Amz-Target:
/// AmazonSQS.<Action>`, EventBridge's `application/x-amz-json-1.1` with `AWSEvents.<Action>`).
pub struct JsonService<'a> {
    /// The signing name (`sqs`, `events`).
    pub service: &'a str,
    /// How messages name it (`SQS`, `EventBridge`).
    pub label: &'a str,
    pub region: &'a str,
    pub endpoint: &'a str,
    pub target_prefix: &'a str,
    pub content_type: &'a str,
}

/// Why a JSON-protocol call failed: the service's error code (`ResourceNotFoundException`, with
/// any `namespace#` prefix removed) when it answered, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub code: Option<String>,
    pub message: String,
}

impl CallError {
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<CallError> for String {
    fn from(e: CallError) -> String {
        e.message
    }
}

impl Signed {
    /// One call: the answer's JSON (`{}` for an empty body), or the service's error.
    pub async fn json(
        &self,
        service: &JsonService<'_>,
        action: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, CallError> {
        let text = self.json_text(service, action, body.to_string()).await?;
        Ok(if text.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
        })
    }

    /// One call with a request body already serialised: the answer's text as it came, for a
    /// caller that reads it into its own types (no `Value` tree on a hot path), or the
    /// service's error.
    pub async fn json_text(
        &self,
        service: &JsonService<'_>,
        action: &str,
        body: String,
    ) -> Result<String, CallError> {
        let target = format!("{}.{action}", service.target_prefix);
        let headers = [
            ("content-type", service.content_type),
            ("x-amz-target", target.as_str()),
        ];
        let label = service.label;
        let answer = self
            .post(
                service.service,
                service.region,
                service.endpoint,
                &headers,
                body,
            )
            .await
            .map_err(|e| CallError {
                code: None,
                message: format!("{label} {action}: {e}"),
            })?;
        if answer.status.is_success() {
            return Ok(answer.body);
        }
        let value: serde_json::Value =
            serde_json::from_str(&answer.body).unwrap_or(serde_json::Value::Null);
        let kind = value["__type"]
            .as_str()
            .or(value["code"].as_str())
            .map(|k| k.rsplit('#').next().unwrap_or(k).to_owned());
        let message = value["message"]
            .as_str()
            .or(value["Message"].as_str())
            .unwrap_or("");
        Err(CallError {
            message: format!(
                "{label} {action} answered {}: {} {}",
                answer.status,
                kind.as_deref().unwrap_or("error"),
                crate::http::excerpt(message, 200)
            ),
            code: kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_credential_types::provider::future;

    use super::*;

    /// A credentials source that counts how often it is asked (the chain itself is aws-config's;
    /// what is tested here is when `Signed` asks it).
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        expires_in: Option<Duration>,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let expiry = self.expires_in.map(|d| SystemTime::now() + d);
            future::ProvideCredentials::ready(Ok(Credentials::new(
                "AKIDEXAMPLE",
                "example-not-a-secret",
                None,
                expiry,
                "counting",
            )))
        }
    }

    fn signed(expires_in: Option<Duration>) -> (Signed, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = Counting {
            calls: calls.clone(),
            expires_in,
        };
        let signed = Signed {
            credentials: Some(SharedCredentialsProvider::new(provider)),
            cached: Arc::default(),
            endpoint_override: None,
            http: Arc::default(),
            signer: Arc::default(),
            hosts: PerUrl::default(),
            lean: None,
            timeout: CALL_TIMEOUT,
        };
        (signed, calls)
    }

    #[tokio::test]
    async fn credentials_are_fetched_once_while_fresh_and_shared_by_clones() {
        for expires_in in [None, Some(Duration::from_secs(3600))] {
            let (signed, calls) = signed(expires_in);
            let clone = signed.clone();
            for s in [&signed, &clone, &signed] {
                s.credentials().await.unwrap();
            }
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{expires_in:?}");
        }
    }

    #[tokio::test]
    async fn credentials_about_to_expire_are_fetched_again() {
        let (signed, calls) = signed(Some(Duration::from_secs(60)));
        signed.credentials().await.unwrap();
        signed.credentials().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn fresh_means_no_expiry_or_beyond_the_refresh_margin() {
        let now = SystemTime::now();
        let at = |expiry| Credentials::new("AKID", "s", None, expiry, "t");
        assert!(still_fresh(&at(None), now));
        assert!(still_fresh(&at(Some(now + REFRESH_AHEAD * 2)), now));
        assert!(!still_fresh(&at(Some(now + REFRESH_AHEAD / 2)), now));
        assert!(!still_fresh(&at(Some(now - REFRESH_AHEAD)), now));
    }
}
