//! `stripe-ops eventbridge setup|status|teardown`: Stripe's Amazon EventBridge event
//! destination and the account's bus, queues and rules behind it (core: `eventbridge`).

use std::path::PathBuf;

use super::{AwsEnvArgs, Ctx};
use crate::config::vars;
use crate::deploy::plan::DryRun;
use crate::duration::{self, Span};
use crate::error::{Error, Result};
use crate::eventbridge::{BridgeOptions, observe, setup, status, teardown};
use crate::fanout::route;
use crate::fanout::targets::{self, TargetFlags};
use crate::printer::Report;
use crate::runtime;

#[derive(Debug, clap::Subcommand)]
pub enum EventbridgeCommand {
    /// Make (or bring up to date) the event destination, the partner event bus, and per target
    /// a queue, a dead-letter queue and a rule with the target's route
    Setup(Box<BridgeArgs>),
    /// Each piece and what is missing (exit 1 when something is)
    Status(Box<BridgeArgs>),
    /// Remove what setup made for the environment, nothing else
    Teardown(Box<BridgeArgs>),
}

#[derive(Debug, clap::Args)]
pub struct BridgeArgs {
    #[command(flatten)]
    pub target: AwsEnvArgs,
    /// File holding the Stripe secret key (else STRIPE_SECRET_KEY, else STRIPE_API_KEY)
    #[arg(long, value_name = "FILE")]
    pub stripe_secret_key_file: Option<PathBuf>,
    /// A receiver: NAME=URL (repeatable), as fanout takes it; more come from
    /// [[fanout.target]] in stripe-ops.toml
    #[arg(long = "target", value_name = "NAME=URL", value_parser = targets::parse_pair)]
    pub targets: Vec<(String, String)>,
    /// Route target NAME only these event types (globs, comma-separated; repeatable)
    #[arg(long = "target-events", value_name = "NAME=GLOB,...", value_parser = route::parse_events_flag)]
    pub target_events: Vec<(String, Vec<String>)>,
    /// Route target NAME only events whose value at PATH is VALUE (repeatable)
    #[arg(long = "target-match", value_name = "NAME=PATH=VALUE", value_parser = route::parse_match_flag)]
    pub target_matches: Vec<(String, String, String)>,
    /// The AWS account Stripe puts events in (default: the credentials' own, from STS)
    #[arg(long, value_name = "ID")]
    pub aws_account_id: Option<String>,
    /// Snapshot events (the object as it was) or thin notifications
    #[arg(long, default_value = "snapshot", value_parser = ["snapshot", "thin"])]
    pub payload: String,
    /// API version of snapshot events (default: the account's)
    #[arg(long, value_name = "VERSION", value_parser = super::api_version_arg)]
    pub api_version: Option<String>,
    /// Receives before SQS moves a message to the dead-letter queue
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_receive_count: u32,
    /// Visibility timeout of new queues (how long a relay holds a message)
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = duration::positive)]
    pub visibility_timeout: Span,
    /// How long to wait for Stripe's partner event source to appear in the account
    #[arg(long, default_value = "2m", value_name = "DURATION", value_parser = duration::positive)]
    pub wait_timeout: Span,
    #[arg(long, hide = true, env = vars::STRIPE_OPS_EVENTBRIDGE_POLL.name, default_value = "1s",
          value_parser = duration::positive)]
    pub poll_interval: Span,
    /// The bus the rules go on instead of the partner event bus: for an emulator that puts
    /// partner events elsewhere (moto: `default`); never for AWS
    #[arg(
        long,
        hide = true,
        env = vars::STRIPE_OPS_EVENTBRIDGE_RULE_BUS.name,
        value_name = "NAME"
    )]
    pub rule_bus: Option<String>,
    /// Do not ask for confirmation (required for production when not interactive)
    #[arg(long)]
    pub yes: bool,
    /// Read everything and print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

fn options(ctx: &Ctx, args: &BridgeArgs, need_targets: bool) -> Result<BridgeOptions> {
    let env = ctx.env(&args.target.env, &args.target.flags, None)?;
    let stripe_key = super::stripe_key(args.stripe_secret_key_file.as_deref(), &ctx.out)?
        .ok_or_else(|| {
            Error::usage("no Stripe key: give --stripe-secret-key-file or set STRIPE_SECRET_KEY")
        })?;
    let flags = TargetFlags {
        targets: args.targets.clone(),
        events: args.target_events.clone(),
        matches: args.target_matches.clone(),
        ..Default::default()
    };
    let config = ctx
        .config()?
        .fanout()
        .map(|f| f.targets.clone())
        .unwrap_or_default();
    let targets = if need_targets || !flags.targets.is_empty() || !config.is_empty() {
        targets::merge(&flags, &config)?
    } else {
        Vec::new()
    };
    if let Some(a) = &args.aws_account_id
        && (a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Error::usage(format!(
            "--aws-account-id {a:?} is not the 12 digits of an AWS account"
        )));
    }
    let catalog = crate::webhook::fixtures::Catalog::load(None)?;
    let thin = args.payload == "thin";
    let types = catalog
        .types()
        .filter(|t| catalog.is_thin(t) == thin)
        .map(|t| catalog.event_type(t).to_owned())
        .collect();
    Ok(BridgeOptions {
        env,
        profile: args.target.profile.clone(),
        stripe_key,
        targets,
        types,
        account: args.aws_account_id.clone(),
        payload: args.payload.clone(),
        api_version: args.api_version.clone(),
        max_receives: args.max_receive_count,
        visibility: args.visibility_timeout.get(),
        wait: args.wait_timeout.get(),
        poll: args.poll_interval.get(),
        rule_bus: args.rule_bus.clone(),
    })
}

pub fn run(ctx: &Ctx, cmd: EventbridgeCommand) -> Result<Box<dyn Report>> {
    match cmd {
        EventbridgeCommand::Setup(args) => setup(ctx, *args),
        EventbridgeCommand::Status(args) => status(ctx, *args),
        EventbridgeCommand::Teardown(args) => teardown(ctx, *args),
    }
}

fn setup(ctx: &Ctx, args: BridgeArgs) -> Result<Box<dyn Report>> {
    let opts = options(ctx, &args, true)?;
    let out = &ctx.out;
    runtime::run(|stop| async move {
        let c = observe::Clients::connect(&opts).await?;
        let (design, seen, plan) = stop.guard(setup::setup_plan(&c, &opts)).await?;
        if args.dry_run {
            return Ok(Box::new(DryRun(plan)) as Box<dyn Report>);
        }
        super::confirm_production(out, &opts.env, &plan.render(), args.yes)?;
        let report = stop
            .guard(setup::apply(&c, &opts, &design, seen, plan, out))
            .await?;
        Ok(Box::new(report) as Box<dyn Report>)
    })
}

fn status(ctx: &Ctx, args: BridgeArgs) -> Result<Box<dyn Report>> {
    let opts = options(ctx, &args, false)?;
    runtime::run(|stop| async move {
        let c = observe::Clients::connect(&opts).await?;
        let report = stop.guard(status::status(&c, &opts)).await?;
        Ok(Box::new(report) as Box<dyn Report>)
    })
}

fn teardown(ctx: &Ctx, args: BridgeArgs) -> Result<Box<dyn Report>> {
    let opts = options(ctx, &args, false)?;
    let out = &ctx.out;
    runtime::run(|stop| async move {
        let c = observe::Clients::connect(&opts).await?;
        let design = observe::design_of(&opts)?;
        let removal = stop
            .guard(teardown::find_removal(&c, &opts, &design))
            .await?;
        let plan = removal.plan(&opts.env.name);
        if args.dry_run {
            return Ok(Box::new(DryRun(plan)) as Box<dyn Report>);
        }
        super::confirm_production(out, &opts.env, &plan.render(), args.yes)?;
        let report = stop
            .guard(teardown::remove(&c, &opts, removal, out))
            .await?;
        Ok(Box::new(report) as Box<dyn Report>)
    })
}
