//! AWS: Secrets Manager and ECS through the official SDK. Credentials come from aws-config's
//! standard chain; `AWS_ENDPOINT_URL` / `--aws-endpoint-url` points it at a local emulator.

pub mod deploy;
pub mod enable;
pub mod keys;
pub mod plan;
pub mod rotate;
pub mod secrets;
pub mod service;
pub mod smoke_step;
pub mod status;
pub mod taskdef;

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::cli::{Ctx, EnvFlags};
use crate::config::EnvSettings;
use crate::error::{Error, Result};
use crate::output;

pub use service::public_base_url;

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

/// The flags every AWS command shares: the environment and how to reach its AWS account.
#[derive(Debug, Clone, clap::Args)]
pub struct AwsEnvArgs {
    /// Environment: staging, production (alias prod), or any name configured in stripe-ops.toml
    #[arg(long, value_name = "NAME")]
    pub env: String,
    /// AWS profile from the shared config files (else AWS_PROFILE, else the default chain)
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    #[command(flatten)]
    pub flags: EnvFlags,
}

/// Flags of the commands that change an environment.
#[derive(Debug, Clone, clap::Args)]
pub struct ChangeArgs {
    /// Do not ask for confirmation (required for production when not interactive)
    #[arg(long)]
    pub yes: bool,
    /// Read everything, print the plan and the diff of the container's secrets, change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub wait: deploy::WaitArgs,
}

/// A resolved environment and its AWS clients.
pub struct Env {
    pub settings: EnvSettings,
    pub sm: aws_sdk_secretsmanager::Client,
    pub ecs: aws_sdk_ecs::Client,
}

impl Env {
    pub async fn connect(ctx: &Ctx, args: &AwsEnvArgs, base_url: Option<String>) -> Result<Env> {
        let settings = ctx
            .config()?
            .env(&args.env, &args.flags.overrides(base_url))?;
        Ok(Self::from_settings(settings, args.profile.clone()).await)
    }

    /// For other commands that already resolved an environment (for example `smoke --env`,
    /// which then calls `public_base_url(&env)`).
    pub async fn from_settings(settings: EnvSettings, profile: Option<String>) -> Env {
        let target = AwsTarget {
            region: settings.region.clone(),
            endpoint_url: settings.aws_endpoint_url.clone(),
            profile,
        };
        let (sm, ecs) = clients(&target).await;
        Env { settings, sm, ecs }
    }
}

/// Production asks before changing anything: with a TTY (and CI unset) through dialoguer,
/// showing the plan; otherwise a missing `--yes` is exit 2.
pub fn confirm_production(settings: &EnvSettings, plan: &plan::Plan, yes: bool) -> Result<()> {
    if !settings.is_production() || yes {
        return Ok(());
    }
    if !output::interactive() {
        return Err(Error::usage(format!(
            "refusing to change {} without confirmation: no terminal to ask on (or CI is set); review the plan with --dry-run and pass --yes",
            settings.name
        )));
    }
    for line in plan.render() {
        eprintln!("{line}");
    }
    let go = dialoguer::Confirm::new()
        .with_prompt(format!("Apply this plan to {}?", settings.name))
        .default(false)
        .interact()
        .map_err(|e| Error::usage(format!("cannot ask for confirmation: {e}")))?;
    if go {
        Ok(())
    } else {
        Err(Error::usage("not confirmed; nothing was changed"))
    }
}
