//! AWS clients, one file per service, each a thin typed wrapper the core calls: ECS and Secrets
//! Manager through the official SDK; IAM, KMS, STS, SQS, EventBridge, SSM and CloudWatch Logs as
//! one POST each signed by the SDK's own signer (`signed.rs`). Credentials come from aws-config's
//! standard chain; `AwsTarget::endpoint_url` (`--aws-endpoint-url`, `AWS_ENDPOINT_URL`) points
//! every client at a local emulator. What to
//! ask and what the answers mean is the core's (`crate::deploy`, `crate::eventbridge`,
//! `crate::fanout`).

pub mod ecs;
pub mod eventbridge;
pub mod iam;
pub mod kms;
pub mod logs;
pub mod secrets_manager;
pub mod signed;
mod sigv4;
pub mod sqs;
pub mod ssm;
pub mod sts;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::primitives::{DateTime, DateTimeFormat};

/// Where to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    pub region: String,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
}

/// The shared SDK configuration: region, optional endpoint override and profile, and timeouts
/// (without them a server that accepts the connection and never answers hangs the command).
pub async fn sdk_config(target: &AwsTarget) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(30))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(target.region.clone()))
        .timeout_config(timeouts);
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

/// Describes an SDK error with its cause (the service's message, or "connection refused"),
/// for messages that end in exit 3.
pub fn describe<E: std::error::Error + 'static>(e: &E) -> String {
    crate::error::chain(e)
}

/// What a URL's calls need of it (its origin, its `Host`), worked out once per URL: the relay's
/// SQS calls parsed their queue URL (with `url`'s IDNA pass) twice per call, 3.0-3.4 % of the
/// `--from-sqs` relay's CPU (perf, `scripts/bench-sqs.sh`). A process calls a handful of URLs.
#[derive(Clone, Default)]
pub(crate) struct PerUrl(Arc<Mutex<HashMap<String, Arc<str>>>>);

impl PerUrl {
    /// `url`'s value, made by `make` the first time.
    pub(crate) fn get(
        &self,
        url: &str,
        make: impl FnOnce(&str) -> Result<String, String>,
    ) -> Result<Arc<str>, String> {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = known.get(url) {
            return Ok(value.clone());
        }
        let value: Arc<str> = make(url)?.into();
        known.insert(url.to_owned(), value.clone());
        Ok(value)
    }
}

/// A regional service's endpoint (`https://ssm.eu-west-1.amazonaws.com`; China's partition
/// has its own domain).
pub(crate) fn regional_endpoint(service: &str, region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{service}.{region}.{domain}")
}

/// An SDK timestamp (a secret's last change, a service event's time) in RFC 3339, as the SDK
/// formats it.
pub(crate) fn date(d: Option<&DateTime>) -> Option<String> {
    d.and_then(|d| d.fmt(DateTimeFormat::DateTime).ok())
}

#[cfg(test)]
mod tests {
    use super::PerUrl;

    #[test]
    fn a_urls_value_is_made_once_and_a_failure_is_not_kept() {
        let memo = PerUrl::default();
        let mut made = 0;
        for _ in 0..3 {
            let value = memo.get("http://127.0.0.1:5000/q", |url| {
                made += 1;
                Ok(format!("{url}!"))
            });
            assert_eq!(value.unwrap().as_ref(), "http://127.0.0.1:5000/q!");
        }
        assert_eq!(made, 1);
        let clone = memo.clone();
        assert!(clone.get("x", |_| Err("not a URL".into())).is_err());
        assert_eq!(clone.get("x", |_| Ok("y".into())).unwrap().as_ref(), "y");
        assert_eq!(
            memo.get("x", |_| Err("made again".into()))
                .unwrap()
                .as_ref(),
            "y"
        );
    }
}
