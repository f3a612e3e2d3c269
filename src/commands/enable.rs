//! `stripe-ops enable`: Stripe secrets into Secrets Manager, injected into the ECS task
//! definition, redeploy, wait, smoke (core: `aws::enable`).

use std::path::PathBuf;

use super::{AwsEnvArgs, ChangeArgs, Ctx};
use crate::deploy::enable::{self, EnableOptions};
use crate::deploy::plan::DryRun;
use crate::error::Result;
use crate::printer::Report;
use crate::runtime;
use crate::secret;

#[derive(Debug, clap::Args)]
pub struct EnableArgs {
    #[command(flatten)]
    pub target: AwsEnvArgs,
    #[command(flatten)]
    pub change: ChangeArgs,
    /// File holding the Stripe secret key (sk_test_/sk_live_/rk_test_/rk_live_)
    #[arg(long, value_name = "FILE")]
    pub stripe_secret_key_file: Option<PathBuf>,
    /// File holding the webhook signing secret (whsec_...)
    #[arg(long, value_name = "FILE", conflicts_with = "generate_webhook_secret")]
    pub stripe_webhook_secret_file: Option<PathBuf>,
    /// Generate a fresh whsec_ webhook secret from the OS's CSPRNG
    #[arg(long)]
    pub generate_webhook_secret: bool,
    /// Create a secret that does not exist yet (otherwise a missing secret is exit 2)
    #[arg(long)]
    pub create_secrets: bool,
    /// Accept a live key for a non-production environment
    #[arg(long)]
    pub allow_live_key: bool,
    /// Public base URL of the app for the smoke (else the config, else PUBLIC_BASE_URL of the
    /// container in the task definition)
    #[arg(long, value_name = "URL", value_parser = crate::http::url_arg)]
    pub base_url: Option<String>,
    /// Leave the secrets' values as they are
    #[arg(long)]
    pub skip_put_secrets: bool,
    /// Leave the task definition as it is
    #[arg(long)]
    pub skip_ecs_patch: bool,
    /// Do not redeploy the service
    #[arg(long)]
    pub skip_restart: bool,
    /// Do not run the deterministic smoke at the end
    #[arg(long)]
    pub skip_smoke: bool,
    /// Inject stripe-ops' own secrets by ARN, replacing the task definition's references
    /// (a secret's JSON key, a pinned version, an SSM parameter) instead of writing where they
    /// point. Infrastructure code that manages the task definition will put them back
    #[arg(long)]
    pub rewire: bool,
}

fn options(args: &EnableArgs) -> Result<EnableOptions> {
    let key = args
        .stripe_secret_key_file
        .as_ref()
        .map(|p| secret::read_file(p, "Stripe secret key"))
        .transpose()?;
    let webhook = match (
        &args.stripe_webhook_secret_file,
        args.generate_webhook_secret,
    ) {
        (Some(p), _) => Some(secret::read_file(p, "webhook secret")?),
        (None, true) => Some(secret::generate_webhook_secret()),
        (None, false) => None,
    };
    Ok(EnableOptions {
        key,
        webhook,
        create_secrets: args.create_secrets,
        allow_live_key: args.allow_live_key,
        skip_put_secrets: args.skip_put_secrets,
        skip_ecs_patch: args.skip_ecs_patch,
        skip_restart: args.skip_restart,
        skip_smoke: args.skip_smoke,
        skip_preflight: args.change.skip_preflight,
        wait: args.change.wait.policy(),
        rewire: args.rewire,
        add_json_key: args.change.add_json_key,
    })
}

pub fn run(ctx: &Ctx, args: EnableArgs) -> Result<Box<dyn Report>> {
    let opts = options(&args)?;
    let out = &ctx.out;
    runtime::run(|stop| async move {
        let env = args.target.connect(ctx, args.base_url.clone()).await?;
        let plan = stop.guard(enable::plan(&env, opts, out)).await?;
        if args.change.dry_run {
            return Ok(Box::new(DryRun(plan.plan)) as Box<dyn Report>);
        }
        super::warn_preflight_notes(out, &plan.plan);
        super::confirm_production(out, &env.settings, &plan.plan.render(), args.change.yes)?;
        let report = enable::apply(&env, plan, out, &stop).await?;
        Ok(Box::new(report) as Box<dyn Report>)
    })
}
