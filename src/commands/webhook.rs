//! `stripe-ops webhook rotate`: a new endpoint and secret without downtime (core:
//! `aws::rotate`).

use super::{AwsEnvArgs, ChangeArgs, Ctx};
use crate::deploy::endpoint::{self, Overrides};
use crate::deploy::plan::DryRun;
use crate::deploy::rotate::{self, RotateOptions};
use crate::error::Result;
use crate::printer::Report;
use crate::runtime;

#[derive(Debug, clap::Subcommand)]
pub enum WebhookCommand {
    /// Rotate the webhook secret of an environment without downtime
    Rotate(Box<RotateArgs>),
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub target: AwsEnvArgs,
    #[command(flatten)]
    pub change: ChangeArgs,
    /// Public base URL of the app (else the config, else PUBLIC_BASE_URL of the container in
    /// the task definition)
    #[arg(long, value_name = "URL", value_parser = crate::http::url_arg)]
    pub public_base_url: Option<String>,
    /// Accept an http:// base URL (local tests only; Stripe requires https)
    #[arg(long)]
    pub allow_http: bool,
    /// Events the new endpoint receives (comma-separated or repeated; default: the union of the
    /// endpoints it replaces, else the config's enabled_events)
    #[arg(long, value_delimiter = ',', value_name = "TYPE")]
    pub events: Vec<String>,
    /// API version of the new endpoint's events (default: the replaced endpoints', which must
    /// agree, else the config's api_version, else the account's default)
    #[arg(long, value_name = "VERSION", value_parser = super::api_version_arg)]
    pub api_version: Option<String>,
    /// The new endpoint receives events from connected accounts (default: as recorded on the
    /// replaced endpoints, else the config's connect)
    #[arg(long, overrides_with = "no_connect")]
    pub connect: bool,
    /// The new endpoint receives the account's own events only
    #[arg(long)]
    pub no_connect: bool,
    /// Description of the new endpoint (default: the newest replaced endpoint's)
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Metadata of the new endpoint, over the replaced endpoints' (repeatable)
    #[arg(long, value_name = "KEY=VALUE", value_parser = metadata)]
    pub metadata: Vec<(String, String)>,
    /// Do not run the deterministic smoke with the new secret
    #[arg(long)]
    pub skip_smoke: bool,
    /// Leave the other enabled endpoints with the same URL enabled
    #[arg(long)]
    pub skip_disable_duplicates: bool,
}

fn metadata(s: &str) -> std::result::Result<(String, String), String> {
    endpoint::metadata_entry(s).map_err(|e| e.message().to_owned())
}

pub fn run(ctx: &Ctx, cmd: WebhookCommand) -> Result<Box<dyn Report>> {
    let WebhookCommand::Rotate(args) = cmd;
    let connect = match (args.connect, args.no_connect) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let opts = RotateOptions {
        allow_http: args.allow_http,
        endpoint: Overrides {
            events: args.events.clone(),
            api_version: args.api_version.clone(),
            connect,
            description: args.description.clone(),
            metadata: args.metadata.iter().cloned().collect(),
        },
        skip_smoke: args.skip_smoke,
        skip_preflight: args.change.skip_preflight,
        skip_disable_duplicates: args.skip_disable_duplicates,
        wait: args.change.wait.policy(),
        add_json_key: args.change.add_json_key,
    };
    let out = &ctx.out;
    runtime::run(|stop| async move {
        let env = args
            .target
            .connect(ctx, args.public_base_url.clone())
            .await?;
        let plan = stop.guard(rotate::plan(&env, opts)).await?;
        if args.change.dry_run {
            return Ok(Box::new(DryRun(plan.plan)) as Box<dyn Report>);
        }
        super::warn_preflight_notes(out, &plan.plan);
        super::confirm_production(out, &env.settings, &plan.plan.render(), args.change.yes)?;
        let report = rotate::apply(&env, plan, out, &stop).await?;
        Ok(Box::new(report) as Box<dyn Report>)
    })
}
