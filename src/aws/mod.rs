//! AWS: Secrets Manager and ECS through the official SDK. Credentials come from aws-config's
//! standard chain; `AWS_ENDPOINT_URL` / `--aws-endpoint-url` points it at a local emulator.

pub mod enable;
pub mod rotate;
pub mod status;

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    pub region: String,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
}

/// The shared SDK configuration: region, optional endpoint override and profile.
pub async fn sdk_config(target: &AwsTarget) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(target.region.clone()));
    if let Some(url) = &target.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    loader.load().await
}

pub async fn clients(target: &AwsTarget) -> (aws_sdk_secretsmanager::Client, aws_sdk_ecs::Client) {
    let config = sdk_config(target).await;
    (
        aws_sdk_secretsmanager::Client::new(&config),
        aws_sdk_ecs::Client::new(&config),
    )
}

/// Describes an SDK error with its cause (the service's message, or "connection refused"),
/// for messages that end in exit 3.
pub fn describe<E: std::error::Error + 'static>(e: &E) -> String {
    crate::error::chain(e)
}
