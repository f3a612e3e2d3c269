//! `stripe-ops sandbox`: the app and Stripe on loopback until stopped (core: `sandbox`).
//! SIGTERM ends it cleanly (exit 0); Ctrl-C too, with exit 130.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::Ctx;
use crate::duration::{self, Span};
use crate::error::{Error, Result};
use crate::printer::Report;
use crate::runtime;
use crate::sandbox::{self, DeliveryPolicy, Fault, Faults, SandboxOptions, Stopped, aws_secrets};
use crate::secret;
use crate::shutdown::{self, Signal};

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Address of the app (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Address of the Stripe API (default: the app's host, a free port)
    #[arg(long, value_name = "ADDR")]
    pub stripe_listen: Option<SocketAddr>,
    /// File holding a webhook secret the app accepts (repeatable, for overlapping rotations);
    /// without one a fresh secret is generated and its file named in the start line
    #[arg(long = "webhook-secret-file", value_name = "FILE")]
    pub webhook_secret_files: Vec<PathBuf>,
    /// The account's default API version: the events the sandbox makes name it, and endpoints
    /// without their own get them at it (default: the catalogue's, the newest Stripe's
    /// libraries pin). The sandbox names versions, it does not translate objects
    #[arg(long, value_name = "VERSION", value_parser = super::api_version_arg)]
    pub api_version: Option<String>,
    /// File holding the Stripe API key (sk_test_… or sk_live_…); default: a generated sk_test_ key
    #[arg(long, value_name = "FILE")]
    pub stripe_key_file: Option<PathBuf>,
    /// Break the app on purpose (repeatable): no-signature-check, ignore-tolerance,
    /// double-credit, racy-credit, webhook-500, slow-webhook=DURATION, drop-metadata
    #[arg(long = "fault", value_name = "NAME[=VALUE]")]
    pub faults: Vec<Fault>,
    /// Persist the app's state to FILE (atomic writes, mode 0600) so a restart keeps balances
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Webhook signature tolerance (300, 5m; a bare number is seconds)
    #[arg(long, default_value = "300", value_name = "DURATION")]
    pub tolerance: Span,
    /// Read STRIPE_WEBHOOK_SECRET and STRIPE_SECRET_KEY from AWS Secrets Manager (needs --env),
    /// and re-read them whenever the ECS service's primary deployment changes
    #[arg(long, requires = "env")]
    pub secrets_from_aws: bool,
    /// Environment whose secrets and ECS service to use with --secrets-from-aws
    #[arg(long, value_name = "NAME", requires = "secrets_from_aws")]
    pub env: Option<String>,
    /// AWS region (else AWS_REGION, else the config, else us-east-1)
    #[arg(long)]
    pub region: Option<String>,
    /// AWS endpoint override, for local emulators (else AWS_ENDPOINT_URL); also where the
    /// sandbox, playing Stripe, makes the partner event sources of Amazon EventBridge event
    /// destinations and puts their events
    #[arg(long, value_name = "URL", value_parser = crate::http::url_arg)]
    pub aws_endpoint_url: Option<String>,
    /// How often to poll the ECS service for a new deployment (2s, 500ms)
    #[arg(long, default_value = "2s", value_name = "DURATION", value_parser = duration::positive)]
    pub aws_poll: Span,
    /// Webhook delivery attempts per endpoint, 1 to 1000 (Stripe retries for days; this bounds it)
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub delivery_attempts: u32,
    #[command(flatten)]
    pub server: super::ServerFlags,
    /// Delay before the first retry of a delivery; doubles after each failed attempt (1s, 20ms)
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub delivery_backoff: Span,
}

fn options(ctx: &Ctx, args: &SandboxArgs) -> Result<SandboxOptions> {
    let webhook_secrets = args
        .webhook_secret_files
        .iter()
        .map(|f| secret::read_file(f, "webhook secret"))
        .collect::<Result<Vec<_>>>()?;
    super::warn_unless_webhook_secrets(&ctx.out, &webhook_secrets);
    let stripe_key = args
        .stripe_key_file
        .as_ref()
        .map(|f| sandbox::stripe::read_key_file(f))
        .transpose()?;
    let aws = if args.secrets_from_aws {
        if !args.webhook_secret_files.is_empty() {
            return Err(Error::usage(
                "--secrets-from-aws and --webhook-secret-file are exclusive",
            ));
        }
        let name = args.env.as_deref().expect("clap requires --env");
        let overrides = crate::config::Overrides {
            region: args.region.clone(),
            aws_endpoint_url: args.aws_endpoint_url.clone(),
            ..Default::default()
        };
        let settings = ctx.config()?.env(name, &overrides)?;
        Some(aws_secrets::AwsSource::new(
            &settings,
            args.aws_poll.get(),
            args.stripe_key_file.is_none(),
        ))
    } else {
        None
    };
    Ok(SandboxOptions {
        listen: args.listen,
        stripe_listen: args.stripe_listen,
        webhook_secrets,
        stripe_key,
        faults: Faults::from_list(&args.faults),
        state_file: args.state.clone(),
        tolerance: args.tolerance.whole_secs(),
        delivery: DeliveryPolicy {
            attempts: args.delivery_attempts,
            backoff: args.delivery_backoff.get(),
        },
        aws,
        out: ctx.out.clone(),
        idle_timeout: args.server.idle_timeout.get(),
        api_version: args.api_version.clone(),
        eventbridge_endpoint: crate::config::aws_endpoint_url(args.aws_endpoint_url.as_deref())
            .map(|r| r.value),
    })
}

pub fn run(ctx: &Ctx, args: SandboxArgs) -> Result<Box<dyn Report>> {
    let opts = options(ctx, &args)?;
    let state_file = opts.state_file.clone();
    let clean = [Signal::Terminate, Signal::Hangup];
    runtime::serve(
        true,
        &clean,
        Box::new(Stopped) as Box<dyn Report>,
        |stop| async move {
            let sandbox = sandbox::start(opts).await?;
            sandbox::announce(&sandbox, state_file.as_deref(), &ctx.out);
            let signal = stop.wait().await;
            sandbox.shutdown().await;
            ctx.out.status("sandbox stopped");
            match signal {
                // A server is meant to end by SIGTERM (or a hang-up): that is no failure.
                Signal::Terminate | Signal::Hangup => Ok(Box::new(Stopped) as Box<dyn Report>),
                Signal::Interrupt => Err(shutdown::interrupted(signal, None)),
            }
        },
    )
}
