//! The command line: global flags, the command tree, and dispatch. Each command's own flags live
//! in its module.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::{aws, check, demo, events, fanout, output, runtime, sandbox, smoke};

#[derive(Debug, Parser)]
#[command(
    name = "stripe-ops",
    version,
    about = "Prove that a Stripe integration works in a deployed environment; switch it on and rotate its secrets safely",
    after_help = "Exit codes: 0 success, 1 a check failed, 2 usage/config/input error, 3 an external system failed, 130 interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Config file (default: ./stripe-ops.toml if present, else built-in defaults)
    #[arg(long, global = true, env = "STRIPE_OPS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable output: one JSON document on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG works too
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors and warnings on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No progress bars or spinners (also off when stderr is not a TTY or CI is set)
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Synthetic, signed Stripe webhook events
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Deterministic smoke of a deployed app, or the real-checkout smoke with receipts
    Smoke(Box<smoke::SmokeArgs>),
    /// Switch Stripe on for an environment: secrets, task definition, redeploy, smoke
    Enable(Box<aws::enable::EnableArgs>),
    /// Webhook endpoint operations
    #[command(subcommand)]
    Webhook(aws::rotate::WebhookCommand),
    /// Read-only state of an environment: secrets, task definition, deployments, endpoints
    Status(Box<aws::status::StatusArgs>),
    /// Conformance and abuse suite for a webhook receiver
    Check(Box<check::CheckArgs>),
    /// Relay one Stripe webhook stream to many receivers, durably
    Fanout(Box<fanout::FanoutArgs>),
    /// A local app + Stripe on loopback, for trying and testing everything
    Sandbox(Box<sandbox::SandboxArgs>),
    /// Run the main job end to end against an embedded sandbox
    Demo(Box<demo::DemoArgs>),
    /// Configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the resolved settings of an environment and where each value came from
    Show {
        #[arg(long, default_value = "staging")]
        env: String,
        #[command(flatten)]
        overrides: EnvFlags,
    },
}

/// Flags that override environment settings; shared by the commands that talk to an environment.
#[derive(Debug, Clone, Default, Args)]
pub struct EnvFlags {
    /// AWS region (else AWS_REGION, else the config, else us-east-1)
    #[arg(long)]
    pub region: Option<String>,
    /// Stripe API base URL (else STRIPE_API_BASE, else the config, else https://api.stripe.com)
    #[arg(long, value_name = "URL")]
    pub stripe_api_base: Option<String>,
    /// AWS endpoint override, for local emulators (else AWS_ENDPOINT_URL)
    #[arg(long, value_name = "URL")]
    pub aws_endpoint_url: Option<String>,
}

impl EnvFlags {
    pub fn overrides(&self, base_url: Option<String>) -> config::Overrides {
        config::Overrides {
            region: self.region.clone(),
            base_url,
            stripe_api_base: self.stripe_api_base.clone(),
            aws_endpoint_url: self.aws_endpoint_url.clone(),
        }
    }
}

/// What every command gets: the global flags and the configuration, loaded on first use.
pub struct Ctx {
    pub global: GlobalArgs,
    config: OnceLock<Config>,
}

impl Ctx {
    pub fn new(global: GlobalArgs) -> Self {
        Self {
            global,
            config: OnceLock::new(),
        }
    }

    pub fn config(&self) -> Result<&Config> {
        if let Some(c) = self.config.get() {
            return Ok(c);
        }
        let loaded = config::load(self.global.config.as_deref())?;
        Ok(self.config.get_or_init(|| loaded))
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init(cli.global.json, cli.global.quiet, cli.global.no_progress);
    init_tracing(cli.global.verbose);
    let ctx = Ctx::new(cli.global.clone());
    match dispatch(&ctx, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if output::mode().json && !output::json_printed() {
                output::json(&serde_json::json!({
                    "ok": false,
                    "error": e.message(),
                    "exit_code": e.exit.code(),
                }));
            }
            output::error(e.message());
            ExitCode::from(e.exit.code() as u8)
        }
    }
}

fn init_tracing(verbose: u8) {
    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    if verbose == 0 && from_env.is_none() {
        return;
    }
    let filter = from_env.unwrap_or_else(|| {
        match verbose {
            1 => "stripe_ops=info",
            2 => "stripe_ops=debug",
            _ => "stripe_ops=trace,info",
        }
        .to_owned()
    });
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(output::mode().color)
        .init();
}

fn dispatch(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Events(cmd) => events::run(ctx, cmd),
        Command::Smoke(args) => runtime::block_on(smoke::run(ctx, *args)),
        Command::Enable(args) => runtime::block_on(aws::enable::run(ctx, *args)),
        Command::Webhook(cmd) => runtime::block_on(aws::rotate::run(ctx, cmd)),
        Command::Status(args) => runtime::block_on(aws::status::run(ctx, *args)),
        Command::Check(args) => runtime::block_on(check::run(ctx, *args)),
        Command::Fanout(args) => runtime::block_on_handling_ctrl_c(fanout::run(ctx, *args)),
        Command::Sandbox(args) => runtime::block_on(sandbox::run(ctx, *args)),
        Command::Demo(args) => runtime::block_on(demo::run(ctx, *args)),
        Command::Config(ConfigCommand::Show { env, overrides }) => {
            config_show(ctx, &env, &overrides)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "stripe-ops",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

fn config_show(ctx: &Ctx, env: &str, flags: &EnvFlags) -> Result<()> {
    let config = ctx.config()?;
    let base_url = std::env::var("BASE_URL").ok().filter(|v| !v.is_empty());
    let settings = config.env(env, &flags.overrides(None))?;
    let mut provenance = settings.provenance.clone();
    if let (Some(url), Some(p)) = (
        base_url,
        provenance.iter_mut().find(|p| p.key == "base_url"),
    ) && p.source == config::Source::Runtime
    {
        p.value = url;
        p.source = config::Source::Environment("BASE_URL".into());
    }
    let file = config.path.as_ref().map(|p| p.display().to_string());
    if output::mode().json {
        output::json(&serde_json::json!({
            "env": settings.name,
            "config_file": file,
            "settings": provenance,
        }));
        return Ok(());
    }
    output::line(format!(
        "environment {} (config: {})",
        settings.name,
        file.as_deref().unwrap_or("none, built-in defaults")
    ));
    let width = provenance.iter().map(|p| p.key.len()).max().unwrap_or(0);
    for p in &provenance {
        output::line(format!("  {:width$}  {}  [{}]", p.key, p.value, p.source));
    }
    Ok(())
}

/// An error for commands whose issue has not landed yet.
pub fn not_yet(command: &str) -> Error {
    Error::usage(format!(
        "`stripe-ops {command}` is not available in this build yet"
    ))
}
