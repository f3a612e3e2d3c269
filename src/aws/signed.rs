//! One SigV4-signed POST, for the AWS calls stripe-ops makes without a generated SDK crate
//! (IAM's `SimulatePrincipalPolicy`, KMS's `DescribeKey`, SQS's JSON protocol in `aws::sqs`): signed by the AWS SDK's own signer
//! (`aws-sigv4`) with the credentials of aws-config's chain. The generated crates cost minutes of
//! every clean release build for one call each (`aws-sdk-iam` alone: 137 s, `cargo build
//! --timings`, 2 cores).

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

/// One call; the pre-flight's own deadline bounds them all.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Credentials and the endpoint override, shared by the signed calls.
#[derive(Clone)]
pub struct Signed {
    credentials: Option<SharedCredentialsProvider>,
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
        let provider = self
            .credentials
            .as_ref()
            .ok_or("no AWS credentials were found")?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("no AWS credentials: {}", crate::error::chain(&e)))?;
        let identity = credentials.into();
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
