//! One SigV4-signed POST, for the AWS calls stripe-ops makes without a generated SDK crate
//! (IAM's `SimulatePrincipalPolicy`, KMS's `DescribeKey`, SQS's JSON protocol in `aws::sqs`),
//! with the credentials of aws-config's chain. The generated crates cost minutes of every clean
//! release build for one call each (`aws-sdk-iam` alone: 137 s, `cargo build --timings`, 2
//! cores).
//!
//! Signing (AWS's "Signature Version 4 signing process": canonical request, string to sign,
//! signature) is done here for the one request shape these calls have (POST to `/`, no query,
//! a few headers), with the day's signing key derived once (by `aws-sigv4`'s own
//! `generate_signing_key`) and kept: the SDK's general signer derived it (four HMACs) and
//! built the canonical request in fresh strings on every call, which `fanout --from-sqs` pays
//! per receive and per delete. The unit tests hold it to AWS's test suite and to `aws-sigv4`
//! byte for byte. SQS's hot calls (`Signed::lean`) also go over the lean HTTP/1.1 client's
//! kept-alive connections (`http1`) rather than reqwest, unless a proxy variable applies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use hyper_util::client::proxy::matcher::Matcher;
use sha2::{Digest, Sha256};
use tokio_rustls::rustls::ClientConfig;

use crate::http1::{Conn, Failure, Origin, write_head};

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
    /// The last signing key derived (for a day, region, service and secret).
    key: Arc<Mutex<Option<SigningKey>>>,
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
            key: Arc::default(),
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
        let host = authority(&url)?;
        let signing = self.sign(
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
            let exchange = lean_post(&pool, &signed, body.as_bytes());
            let answer = match tokio::time::timeout(self.timeout, exchange).await {
                Ok(answer) => answer.map_err(|f| f.describe())?,
                Err(_) => return Err(Failure::timeout(self.timeout).describe()),
            };
            return Ok(Answer {
                status: reqwest::StatusCode::from_u16(answer.status)
                    .map_err(|_| format!("answered status {}", answer.status))?,
                body: answer.body.text(),
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
            body: body.text(),
        })
    }

    /// SigV4 for a POST to `/` of `host` with `headers` (lowercase names) and `body`: the
    /// headers to add (`x-amz-date`, the session token, `authorization`).
    fn sign(
        &self,
        credentials: &Credentials,
        scope: &Scope<'_>,
        host: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Signing {
        let stamp = Stamp::of(scope.time);
        let key = {
            let mut cached = self.key.lock().unwrap_or_else(|e| e.into_inner());
            match cached
                .as_ref()
                .filter(|k| k.fits(credentials, scope, &stamp))
            {
                Some(k) => k.key,
                None => {
                    let k = SigningKey::derive(credentials, scope, &stamp);
                    let key = k.key;
                    *cached = Some(k);
                    key
                }
            }
        };
        signature(credentials, scope, &stamp, &key, host, headers, body)
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

/// What a signature is for: the region, the service's signing name, and when.
struct Scope<'a> {
    region: &'a str,
    service: &'a str,
    time: SystemTime,
}

/// `x-amz-date` (`20150830T123600Z`) and the scope's date (`20150830`), in UTC.
struct Stamp {
    amz_date: String,
}

impl Stamp {
    fn of(time: SystemTime) -> Stamp {
        let format =
            time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        let amz_date = time::OffsetDateTime::from(time)
            .format(&format)
            .expect("a UTC time always formats");
        Stamp { amz_date }
    }

    fn date(&self) -> &str {
        &self.amz_date[..8]
    }
}

/// A derived SigV4 signing key and what it was derived for: valid for one day, region,
/// service and secret.
struct SigningKey {
    access_key: String,
    secret_key: String,
    date: String,
    region: String,
    service: String,
    key: [u8; 32],
}

impl SigningKey {
    fn derive(credentials: &Credentials, scope: &Scope<'_>, stamp: &Stamp) -> SigningKey {
        let derived = aws_sigv4::sign::v4::generate_signing_key(
            credentials.secret_access_key(),
            scope.time,
            scope.region,
            scope.service,
        );
        let mut key = [0u8; 32];
        key.copy_from_slice(derived.as_ref());
        SigningKey {
            access_key: credentials.access_key_id().to_owned(),
            secret_key: credentials.secret_access_key().to_owned(),
            date: stamp.date().to_owned(),
            region: scope.region.to_owned(),
            service: scope.service.to_owned(),
            key,
        }
    }

    fn fits(&self, credentials: &Credentials, scope: &Scope<'_>, stamp: &Stamp) -> bool {
        self.date == stamp.date()
            && self.region == scope.region
            && self.service == scope.service
            && self.access_key == credentials.access_key_id()
            && self.secret_key == credentials.secret_access_key()
    }
}

/// The headers a signature adds.
struct Signing {
    amz_date: String,
    authorization: String,
}

impl Signing {
    fn headers<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        [("x-amz-date", self.amz_date.as_str())]
            .into_iter()
            .chain(
                credentials
                    .session_token()
                    .map(|t| ("x-amz-security-token", t)),
            )
            .chain([("authorization", self.authorization.as_str())])
    }
}

/// SigV4's canonical request, string to sign and signature for a POST to `/` with no query
/// (docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html): the signed headers
/// are `host`, `x-amz-date`, the session token when there is one (as `aws-sigv4` signs it) and
/// `headers` (lowercase names, values with no spaces to trim), sorted by name.
fn signature(
    credentials: &Credentials,
    scope: &Scope<'_>,
    stamp: &Stamp,
    key: &[u8; 32],
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Signing {
    let mut signed: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 3);
    signed.extend_from_slice(headers);
    signed.push(("host", host));
    signed.push(("x-amz-date", &stamp.amz_date));
    if let Some(token) = credentials.session_token() {
        signed.push(("x-amz-security-token", token));
    }
    signed.sort_unstable_by_key(|(name, _)| *name);
    let mut canonical = String::with_capacity(512);
    canonical.push_str("POST\n/\n\n");
    for (name, value) in &signed {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value.trim());
        canonical.push('\n');
    }
    canonical.push('\n');
    let names_start = canonical.len();
    for (i, (name, _)) in signed.iter().enumerate() {
        if i > 0 {
            canonical.push(';');
        }
        canonical.push_str(name);
    }
    let names_end = canonical.len();
    canonical.push('\n');
    canonical.push_str(&hex::encode(Sha256::digest(body)));
    let credential_scope = format!(
        "{}/{}/{}/aws4_request",
        stamp.date(),
        scope.region,
        scope.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{credential_scope}\n{}",
        stamp.amz_date,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let signature = aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes());
    Signing {
        amz_date: stamp.amz_date.clone(),
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={}, Signature={signature}",
            credentials.access_key_id(),
            &canonical[names_start..names_end]
        ),
    }
}

/// The `Host` a URL's request carries: its host, and its port unless the scheme's default.
fn authority(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    Ok(match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
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
    pools: Mutex<HashMap<String, Option<Arc<Pool>>>>,
}

struct Pool {
    origin: Origin,
    idle: Mutex<Vec<(Conn, Instant)>>,
}

impl Lean {
    /// The pool for `url`; `None` when a proxy variable applies to it (or it cannot be
    /// reached without reqwest): reqwest carries those calls.
    fn pool(&self, url: &str) -> Option<Arc<Pool>> {
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
            .map(|origin| {
                Arc::new(Pool {
                    origin,
                    idle: Mutex::default(),
                })
            });
        pools.insert(url.to_owned(), pool.clone());
        pool
    }
}

impl Pool {
    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE && !conn.peer_closed() {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }
}

/// The POST over a kept-alive connection; a reused one the service closed as the request went
/// out (a reset before any answer: it did not read it) is replaced by a new one, once.
async fn lean_post(
    pool: &Pool,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<crate::http1::Answer, Failure> {
    let mut reused = pool.checkout();
    loop {
        let was_reused = reused.is_some();
        let mut conn = match reused.take() {
            Some(conn) => conn,
            None => pool.origin.connect().await?,
        };
        let write = |out: &mut Vec<u8>| {
            let mut head: Vec<(&str, &[u8])> = Vec::with_capacity(headers.len() + 1);
            head.push(("user-agent", crate::http::USER_AGENT.as_bytes()));
            head.extend(headers.iter().map(|(n, v)| (*n, v.as_bytes())));
            write_head(out, "POST", &pool.origin, &head, body.len());
            out.extend_from_slice(body);
        };
        match conn.exchange(write, crate::http::API).await {
            Ok(answer) => {
                if answer.reusable {
                    pool.checkin(conn);
                }
                return Ok(answer);
            }
            Err(_) if was_reused && conn.refused() => continue,
            Err(f) => return Err(f),
        }
    }
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
            key: Arc::default(),
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

    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn suite_credentials(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_owned),
            None,
            "suite",
        )
    }

    fn our_signature(
        signed: &Signed,
        credentials: &Credentials,
        (region, service, time): (&str, &str, SystemTime),
        host: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<(String, String)> {
        let scope = Scope {
            region,
            service,
            time,
        };
        let signing = signed.sign(credentials, &scope, host, headers, body);
        let mut added: Vec<(String, String)> = signing
            .headers(credentials)
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        added.sort();
        added
    }

    /// The headers the AWS SDK's own signer (`aws-sigv4`, default settings: what this module
    /// used before) adds to the same request.
    fn sdk_signature(
        credentials: &Credentials,
        (region, service, time): (&str, &str, SystemTime),
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<(String, String)> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let identity = credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut added: Vec<(String, String)> = instructions
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        added.sort();
        added
    }

    fn authorization(added: &[(String, String)]) -> &str {
        &added.iter().find(|(n, _)| n == "authorization").unwrap().1
    }

    /// AWS's SigV4 test suite (aws-signing-test-suite/v4, shipped in the `aws-sigv4` crate):
    /// post-vanilla, post-sts-header-before (a session token, signed) and
    /// post-x-www-form-urlencoded (a signed body), their expected signatures.
    #[test]
    fn signatures_match_aws_sigv4_test_suite() {
        let (signed, _) = signed(None);
        let at = ("us-east-1", "service", suite_time());
        let host = "example.amazonaws.com";
        let token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
        /// A session token, the request's headers and body, the expected signature.
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a [u8], &'a str);
        let cases: [Case; 3] = [
            (
                None,
                &[],
                b"",
                "SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            (
                Some(token),
                &[],
                b"",
                "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
            ),
            (
                None,
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("content-length", "13"),
                    (
                        "x-amz-content-sha256",
                        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
                    ),
                ],
                b"Param1=value1",
                "SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
            ),
        ];
        for (token, headers, body, expected) in cases {
            let credentials = suite_credentials(token);
            let added = our_signature(&signed, &credentials, at, host, headers, body);
            assert_eq!(
                authorization(&added),
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, {expected}"
                )
            );
            assert!(added.contains(&("x-amz-date".into(), "20150830T123600Z".into())));
        }
    }

    /// The requests this module signs (SQS and EventBridge's JSON protocol, IAM and STS's
    /// forms, a session token or none, a port in the host or none), signed the same as the
    /// SDK's signer signs them, header for header, byte for byte; and a kept key is the key
    /// derived again (a second signature with the cache warm, another day, another region).
    #[test]
    fn signatures_are_the_sdk_signers_byte_for_byte_with_the_key_kept() {
        let (signed, _) = signed(None);
        let json = [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "AmazonSQS.ReceiveMessage"),
        ];
        let form = [(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )];
        let body =
            br#"{"QueueUrl":"http://127.0.0.1:5000/123456789012/q","MaxNumberOfMessages":10}"#;
        let day = Duration::from_secs(86_400);
        for token in [None, Some("session-token-example")] {
            let credentials = suite_credentials(token);
            for (url, region, service, headers) in [
                ("http://127.0.0.1:5000/", "us-east-1", "sqs", &json[..]),
                (
                    "https://sqs.eu-west-1.amazonaws.com/",
                    "eu-west-1",
                    "sqs",
                    &json[..],
                ),
                (
                    "https://sts.us-east-1.amazonaws.com/",
                    "us-east-1",
                    "sts",
                    &form[..],
                ),
            ] {
                for time in [
                    suite_time(),
                    suite_time() + Duration::from_secs(7),
                    suite_time() + day,
                ] {
                    let at = (region, service, time);
                    let host = authority(url).unwrap();
                    assert_eq!(
                        our_signature(&signed, &credentials, at, &host, headers, body),
                        sdk_signature(&credentials, at, url, headers, body),
                        "{url} {token:?} {time:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_signed_host_is_the_one_the_request_carries() {
        assert_eq!(
            authority("http://127.0.0.1:5000/").unwrap(),
            "127.0.0.1:5000"
        );
        assert_eq!(
            authority("https://sqs.us-east-1.amazonaws.com/").unwrap(),
            "sqs.us-east-1.amazonaws.com"
        );
        assert_eq!(
            authority("https://sqs.us-east-1.amazonaws.com:443/").unwrap(),
            "sqs.us-east-1.amazonaws.com"
        );
    }
}
