//! One file per command: its clap arguments, the step that resolves them (with the config,
//! environment variables and files) into the core's plain options, the call into the core, and
//! the report handed back to `cli.rs`. This module holds what several commands share: the
//! context, the flag groups, and the production confirmation.

pub mod check;
pub mod completions;
pub mod config;
pub mod demo;
pub mod enable;
pub mod eventbridge;
pub mod events;
pub mod fanout;
pub mod replay;
pub mod sandbox;
pub mod smoke;
pub mod status;
pub mod webhook;

use std::path::PathBuf;
use std::sync::OnceLock;

use clap::Args;

use crate::cli::GlobalArgs;
use crate::config::{Config, EnvSettings, Overrides, vars};
use crate::deploy::redeploy::WaitPolicy;
use crate::duration::{self, Span};
use crate::error::{Error, Result};
use crate::printer::{self, Printer};
use crate::secret::{self, ExposeSecret, SecretString};

/// What every command gets: the global flags, the printer, and the configuration, loaded on
/// first use.
pub struct Ctx {
    pub global: GlobalArgs,
    pub out: Printer,
    config: OnceLock<Config>,
}

impl Ctx {
    pub fn new(global: GlobalArgs, out: Printer) -> Self {
        Self {
            global,
            out,
            config: OnceLock::new(),
        }
    }

    pub fn config(&self) -> Result<&Config> {
        if let Some(c) = self.config.get() {
            return Ok(c);
        }
        let loaded = crate::config::load(self.global.config.as_deref())?;
        Ok(self.config.get_or_init(|| loaded))
    }

    /// An environment resolved from the config and the flags that override it.
    pub fn env(
        &self,
        name: &str,
        flags: &EnvFlags,
        base_url: Option<String>,
    ) -> Result<EnvSettings> {
        self.config()?.env(name, &flags.overrides(base_url))
    }
}

/// Flags of the commands that run a server (`sandbox`, `fanout`).
#[derive(Debug, Clone, Args)]
pub struct ServerFlags {
    /// How long a client may take to send a request's headers, and a keep-alive connection may
    /// stay idle. Keep it above the idle timeout of a load balancer in front (60s by default on
    /// AWS), or it answers 502 now and then
    #[arg(long, default_value = "75s", value_parser = duration::positive, value_name = "DURATION")]
    pub idle_timeout: Span,
}

/// Flags that override environment settings; shared by the commands that talk to an environment.
#[derive(Debug, Clone, Default, Args)]
pub struct EnvFlags {
    /// AWS region (else AWS_REGION, else the config, else us-east-1)
    #[arg(long)]
    pub region: Option<String>,
    /// Stripe API base URL (else STRIPE_API_BASE, else the config, else https://api.stripe.com)
    #[arg(long, value_name = "URL", value_parser = crate::http::url_arg)]
    pub stripe_api_base: Option<String>,
    /// AWS endpoint override, for local emulators (else AWS_ENDPOINT_URL)
    #[arg(long, value_name = "URL", value_parser = crate::http::url_arg)]
    pub aws_endpoint_url: Option<String>,
}

impl EnvFlags {
    pub fn overrides(&self, base_url: Option<String>) -> Overrides {
        Overrides {
            region: self.region.clone(),
            base_url,
            stripe_api_base: self.stripe_api_base.clone(),
            aws_endpoint_url: self.aws_endpoint_url.clone(),
        }
    }
}

/// The flags every AWS command shares: the environment and how to reach its AWS account.
#[derive(Debug, Clone, Args)]
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

impl AwsEnvArgs {
    pub async fn connect(&self, ctx: &Ctx, base_url: Option<String>) -> Result<crate::deploy::Env> {
        let settings = ctx.env(&self.env, &self.flags, base_url)?;
        Ok(crate::deploy::Env::connect(settings, self.profile.clone()).await)
    }
}

/// Flags of the commands that change an environment.
#[derive(Debug, Clone, Args)]
pub struct ChangeArgs {
    /// Do not ask for confirmation (required for production when not interactive)
    #[arg(long)]
    pub yes: bool,
    /// Read everything, print the plan, the pre-flight and the diffs, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask IAM whether the execution role can read the secrets before changing anything
    #[arg(long)]
    pub skip_preflight: bool,
    /// When the task definition reads a Stripe variable from a key of a JSON secret that lacks
    /// it, add the key (the other keys are kept)
    #[arg(long)]
    pub add_json_key: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// How to wait for an ECS rollout.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// How long to wait for the deployment to complete: 90s, 15m, 1h (a bare number is seconds)
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = duration::positive)]
    pub wait_timeout: Span,
    /// On a failed or timed-out deployment, leave the service as it is instead of rolling back
    #[arg(long)]
    pub no_rollback: bool,
    /// Start the redeploy and return: no wait, no smoke (rotate then leaves the old endpoints
    /// enabled and prints how to disable them)
    #[arg(long, conflicts_with = "no_rollback")]
    pub no_wait: bool,
    /// After the rollout, how long the smoke accepts refusals from tasks that still have the
    /// old secret, and waits for the credit
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration::positive)]
    pub settle_timeout: Span,
    /// End the wait (and roll back) once this many new tasks stopped for a reason a new task
    /// would repeat (secrets it cannot read, an image it cannot pull, a crash on start, a
    /// failing health check) while none runs; 0 waits out --wait-timeout
    #[arg(long, value_name = "N", default_value_t = crate::deploy::stops::DEFAULT_THRESHOLD,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub failed_tasks_threshold: u32,
    /// First polling interval (tests make it short)
    #[arg(long, hide = true, env = vars::STRIPE_OPS_ECS_POLL.name, default_value = "2s",
          value_parser = duration::positive)]
    pub poll_interval: Span,
}

impl WaitArgs {
    pub fn policy(&self) -> WaitPolicy {
        WaitPolicy {
            no_wait: self.no_wait,
            timeout: self.wait_timeout.get(),
            poll: self.poll_interval.get(),
            rollback: !self.no_rollback,
            settle: self.settle_timeout.get(),
            failed_tasks: self.failed_tasks_threshold,
        }
    }
}

/// Webhook signing secrets: files (repeatable, one `v1=` each) or STRIPE_WEBHOOK_SECRET.
#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// File holding a webhook signing secret (whsec_…); repeat to sign with several
    #[arg(long = "secret-file", value_name = "FILE")]
    pub secret_files: Vec<PathBuf>,
}

impl SecretArgs {
    pub fn load(&self, out: &Printer) -> Result<Vec<SecretString>> {
        let secrets = secret::webhook_secrets(&self.secret_files, &vars::STRIPE_WEBHOOK_SECRET)?;
        warn_unless_webhook_secrets(out, &secrets);
        Ok(secrets)
    }
}

/// A Stripe secret key from `file`, else from `STRIPE_SECRET_KEY`, else `STRIPE_API_KEY`;
/// a warning when both variables are set and differ.
pub fn stripe_key(file: Option<&std::path::Path>, out: &Printer) -> Result<Option<SecretString>> {
    if let Some(f) = file {
        return secret::read_file(f, "Stripe secret key").map(Some);
    }
    // Ours (the name the app's contract uses) wins over the Stripe CLI's when both are set.
    let (ours, cli) = (&vars::STRIPE_SECRET_KEY, &vars::STRIPE_API_KEY);
    let (a, b) = (
        secret::from_env(ours, "Stripe secret key")?,
        secret::from_env(cli, "Stripe secret key")?,
    );
    if let (Some(a), Some(b)) = (&a, &b)
        && !secret::constant_time_eq(a.expose_secret().as_bytes(), b.expose_secret().as_bytes())
    {
        out.warn(format!(
            "{} and {} are both set and differ: using {}",
            ours.name, cli.name, ours.name
        ));
    }
    Ok(a.or(b))
}

/// Stripe's secrets start with `whsec_`; anything else is allowed with a warning.
pub fn warn_unless_webhook_secrets(out: &Printer, secrets: &[SecretString]) {
    if secrets.iter().any(|s| !secret::is_webhook_secret(s)) {
        out.warn("webhook secret does not start with whsec_ (Stripe's always do)");
    }
}

/// What the pre-flight could not check, said before a change (a dry run shows it in the plan).
pub fn warn_preflight_notes(out: &Printer, plan: &crate::deploy::plan::Plan) {
    for note in plan.preflight.iter().flat_map(|p| &p.notes) {
        out.warn(format!("pre-flight: {note}"));
    }
}

/// Production asks before changing anything: with a TTY (and CI unset) through dialoguer,
/// showing the plan; otherwise a missing `--yes` is exit 2.
pub fn confirm_production(
    out: &Printer,
    settings: &EnvSettings,
    plan: &[String],
    yes: bool,
) -> Result<()> {
    if !settings.is_production() || yes {
        return Ok(());
    }
    if !printer::interactive() {
        return Err(Error::usage(format!(
            "refusing to change {} without confirmation: no terminal to ask on (or CI is set); review the plan with --dry-run and pass --yes",
            settings.name
        )));
    }
    for line in plan {
        out.tell(line);
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

/// A Stripe API version flag (`2024-06-20`, `2025-03-31.basil`).
pub fn api_version_arg(s: &str) -> std::result::Result<String, String> {
    crate::stripe_api::check_api_version(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.message().to_owned())
}
