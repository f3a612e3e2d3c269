//! `stripe-ops webhook rotate`: a new endpoint and secret without downtime (core:
//! `aws::rotate`).

use super::{AwsEnvArgs, ChangeArgs, Ctx};
use crate::aws::plan::DryRun;
use crate::aws::rotate::{self, RotateOptions};
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
    /// Events the new endpoint receives (comma-separated or repeated; default from the config,
    /// else checkout.session.completed)
    #[arg(long, value_delimiter = ',', value_name = "TYPE")]
    pub events: Vec<String>,
    /// Do not run the deterministic smoke with the new secret
    #[arg(long)]
    pub skip_smoke: bool,
    /// Leave the other enabled endpoints with the same URL enabled
    #[arg(long)]
    pub skip_disable_duplicates: bool,
}

pub fn run(ctx: &Ctx, cmd: WebhookCommand) -> Result<Box<dyn Report>> {
    let WebhookCommand::Rotate(args) = cmd;
    let opts = RotateOptions {
        allow_http: args.allow_http,
        events: args.events.clone(),
        skip_smoke: args.skip_smoke,
        skip_disable_duplicates: args.skip_disable_duplicates,
        wait: args.change.wait.policy(),
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
        super::confirm_production(out, &env.settings, &plan.plan.render(), args.change.yes)?;
        let report = rotate::apply(&env, plan, out, &stop).await?;
        Ok(Box::new(report) as Box<dyn Report>)
    })
}
