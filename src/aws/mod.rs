//! AWS: Secrets Manager and ECS through the official SDK (IAM and KMS, one call each, signed by
//! the SDK's signer in `signed.rs`). Credentials come from aws-config's
//! standard chain; `AWS_ENDPOINT_URL` / `--aws-endpoint-url` points it at a local emulator.

pub mod ecs;
pub mod eventbridge;
pub mod iam;
pub mod kms;
pub mod secrets_manager;
pub mod signed;
pub mod sqs;

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::EnvSettings;
use crate::deploy::{preflight, taskdef, wiring};

pub use ecs::public_base_url;
// Until the clients are split from the core (next commit).
pub use ecs as service;
pub use secrets_manager as secrets;

/// The variables the container receives, by name (CONTRACT.md section 4).
pub const KEY_VAR: &str = "STRIPE_SECRET_KEY";
pub const WEBHOOK_VAR: &str = "STRIPE_WEBHOOK_SECRET";

/// Where to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    pub region: String,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
}

/// The shared SDK configuration: region, optional endpoint override and profile, and timeouts
/// (without them a server that accepts the connection and never answers hangs the command).
async fn sdk_config(target: &AwsTarget) -> SdkConfig {
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

/// Removes the AWS variables that are set but empty (CI templates often leave
/// `AWS_ENDPOINT_URL=`): empty means unset, and the SDK would otherwise try to use the empty
/// endpoint and panic.
///
/// # Safety
/// Changes the process environment: call it before any other thread runs (the start of
/// `main`).
pub unsafe fn unset_blank_env() {
    let blank: Vec<std::ffi::OsString> = std::env::vars_os()
        .filter(|(k, v)| {
            k.to_str().is_some_and(|k| k.starts_with("AWS_"))
                && v.to_string_lossy().trim().is_empty()
        })
        .map(|(k, _)| k)
        .collect();
    for k in blank {
        // SAFETY: the caller guarantees that no other thread reads the environment now.
        unsafe { std::env::remove_var(k) };
    }
}

/// Describes an SDK error with its cause (the service's message, or "connection refused"),
/// for messages that end in exit 3.
pub fn describe<E: std::error::Error + 'static>(e: &E) -> String {
    crate::error::chain(e)
}

/// A resolved environment and its AWS clients.
pub struct Env {
    pub settings: EnvSettings,
    pub sm: aws_sdk_secretsmanager::Client,
    pub ecs: aws_sdk_ecs::Client,
    /// For the pre-flight only: the policy simulation, and the secrets' keys.
    pub iam: iam::Iam,
    pub kms: kms::Kms,
}

impl Env {
    /// Clients for the environment's region and endpoint, with `profile` when given.
    pub async fn connect(settings: EnvSettings, profile: Option<String>) -> Env {
        let target = AwsTarget {
            region: settings.region.clone(),
            endpoint_url: settings.aws_endpoint_url.clone(),
            profile,
        };
        let config = sdk_config(&target).await;
        let signed = signed::Signed::new(&config, target.endpoint_url.clone());
        Env {
            settings,
            sm: aws_sdk_secretsmanager::Client::new(&config),
            ecs: aws_sdk_ecs::Client::new(&config),
            iam: iam::Iam(signed.clone()),
            kms: kms::Kms {
                signed,
                region: target.region.clone(),
            },
        }
    }
}
