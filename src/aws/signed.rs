//! One SigV4-signed POST, for the AWS calls stripe-ops makes without a generated SDK crate
//! (IAM's `SimulatePrincipalPolicy`, KMS's `DescribeKey`, SQS's JSON protocol in `aws::sqs`): signed by the AWS SDK's own signer
//! (`aws-sigv4`) with the credentials of aws-config's chain. The generated crates cost minutes of
//! every clean release build for one call each (`aws-sdk-iam` alone: 137 s, `cargo build
//! --timings`, 2 cores).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

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
    /// Built once (loading the platform's certificates is not free); why, when it could not be.
    http: std::result::Result<reqwest::Client, String>,
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
            http: crate::http::client(timeout).map_err(|e| e.message().to_owned()),
        }
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
        let identity = self.credentials().await?.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let mut request = self.http.clone()?.post(&url).body(body);
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
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
                body.to_string(),
            )
            .await
            .map_err(|e| CallError {
                code: None,
                message: format!("{label} {action}: {e}"),
            })?;
        let value: serde_json::Value = if answer.body.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(&answer.body).unwrap_or(serde_json::Value::Null)
        };
        if answer.status.is_success() {
            return Ok(value);
        }
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
            http: Err("not used".into()),
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
