//! The command line: global flags, the command tree and dispatch, and the one place that turns a
//! report or an error into output and an exit code. Each command's own flags live in
//! `commands/<command>.rs`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::commands::{self, Ctx};
use crate::config::vars;
use crate::error::{Exit, Result};
use crate::printer::{self, Mode, Printer, Report};
use crate::secret::scrub;

/// `--version`: the version, the commit and the target, for bug reports (`-V` prints the
/// version alone). build.rs names the commit and the target.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("STRIPE_OPS_COMMIT"),
    ", target ",
    env!("STRIPE_OPS_TARGET"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "stripe-ops",
    version,
    long_version = LONG_VERSION,
    about = "Prove that a Stripe integration works in a deployed environment; switch it on and rotate its secrets safely",
    after_help = "Exit codes: 0 success, 1 a check failed, 2 usage/config/input error, 3 an external system failed, 130 interrupted (Ctrl-C or SIGTERM)."
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
    #[arg(long, global = true, env = vars::STRIPE_OPS_CONFIG.name, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable output: one JSON document on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG works too
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors and warnings on stderr (long form only: -q is hey's rate in load mode)
    #[arg(long, global = true)]
    pub quiet: bool,
    /// No progress bars or spinners (also off when stderr is not a TTY or CI is set)
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Synthetic, signed Stripe webhook events
    #[command(subcommand)]
    Events(commands::events::EventsCommand),
    /// Deterministic smoke of a deployed app, or the real-checkout smoke with receipts
    Smoke(Box<commands::smoke::SmokeArgs>),
    /// Switch Stripe on for an environment: secrets, task definition, redeploy, smoke
    Enable(Box<commands::enable::EnableArgs>),
    /// Webhook endpoint operations
    #[command(subcommand)]
    Webhook(commands::webhook::WebhookCommand),
    /// Read-only state of an environment: secrets, task definition, deployments, endpoints
    Status(Box<commands::status::StatusArgs>),
    /// Conformance and abuse suite for a webhook receiver
    Check(Box<commands::check::CheckArgs>),
    /// Stripe's Amazon EventBridge destination and the queues behind it, for fanout --from-sqs
    #[command(subcommand)]
    Eventbridge(commands::eventbridge::EventbridgeCommand),
    /// Relay one Stripe webhook stream to many receivers, durably
    Fanout(Box<commands::fanout::FanoutArgs>),
    /// A local app + Stripe on loopback, for trying and testing everything
    Sandbox(Box<commands::sandbox::SandboxArgs>),
    /// Run the main job end to end against an embedded sandbox
    Demo(Box<commands::demo::DemoArgs>),
    /// Configuration
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Print shell completions
    Completions(commands::completions::CompletionsArgs),
}

pub fn main() -> ExitCode {
    printer::install_panic_hook();
    // SAFETY: the first thing `main` does; no other thread exists yet.
    unsafe { crate::config::vars::unset_blank_aws() };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_failed(&e),
    };
    let g = &cli.global;
    let out = Printer::new(Mode::detect(g.json, g.quiet, g.no_progress));
    init_tracing(g.verbose, out.mode().color);
    let ctx = Ctx::new(cli.global.clone(), out.clone());
    let ci_title = ci_title(&cli.command);
    finish(&out, ci_title.as_deref(), dispatch(&ctx, cli.command))
}

/// The commands that report to CI (`ci::publish`), named as a pipeline runs them.
fn ci_title(command: &Command) -> Option<String> {
    match command {
        Command::Smoke(_) => Some("stripe-ops smoke".into()),
        Command::Check(_) => Some("stripe-ops check".into()),
        Command::Enable(args) => Some(format!("stripe-ops enable --env {}", args.target.env)),
        Command::Webhook(commands::webhook::WebhookCommand::Rotate(args)) => Some(format!(
            "stripe-ops webhook rotate --env {}",
            args.target.env
        )),
        _ => None,
    }
}

fn dispatch(ctx: &Ctx, command: Command) -> Result<Box<dyn Report>> {
    // A broken config is an input error for every command, also those that read nothing from
    // it, rather than a file silently ignored.
    if !matches!(command, Command::Completions(_)) {
        ctx.config()?;
    }
    match command {
        Command::Events(cmd) => commands::events::run(ctx, cmd),
        Command::Smoke(args) => commands::smoke::run(ctx, *args),
        Command::Enable(args) => commands::enable::run(ctx, *args),
        Command::Webhook(cmd) => commands::webhook::run(ctx, cmd),
        Command::Status(args) => commands::status::run(ctx, *args),
        Command::Check(args) => commands::check::run(ctx, *args),
        Command::Eventbridge(cmd) => commands::eventbridge::run(ctx, cmd),
        Command::Fanout(args) => commands::fanout::run(ctx, *args),
        Command::Sandbox(args) => commands::sandbox::run(ctx, *args),
        Command::Demo(args) => commands::demo::run(ctx, *args),
        Command::Config(cmd) => commands::config::run(ctx, cmd),
        Command::Completions(args) => commands::completions::run(args),
    }
}

/// Prints the report (or the error), reports to CI when the command does (`ci_title`), and
/// turns the verdict into the exit code.
fn finish(out: &Printer, ci_title: Option<&str>, result: Result<Box<dyn Report>>) -> ExitCode {
    let verdict = result.and_then(|report| {
        let verdict = report.verdict();
        print(out, report.as_ref(), verdict.as_ref().err());
        if ci_title.is_some()
            && let Some(summary) = report.ci_summary()
        {
            crate::ci::publish(&summary);
        }
        verdict
    });
    if let (Some(title), Err(e)) = (ci_title, &verdict)
        && !crate::ci::published()
    {
        crate::ci::publish(&crate::ci::Summary::failed(title, e));
    }
    match verdict {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if out.json_mode() && !out.json_printed() {
                let mut doc = json!({
                    "ok": false,
                    "error": e.message(),
                    "exit_code": e.exit.code(),
                });
                if let Some(details) = e.details() {
                    doc["details"] = details.clone();
                }
                out.json(&doc);
            }
            out.error(e.message());
            exit(e.exit)
        }
    }
}

/// Prints the report. A report whose verdict fails is never `"ok": true` in its document: it
/// says `ok: false` and the exit code (and the error, unless it has its own).
fn print(out: &Printer, report: &dyn Report, failed: Option<&crate::error::Error>) {
    if out.json_mode() {
        let mut doc = report.json();
        if let (Some(e), Some(map)) = (failed, doc.as_object_mut()) {
            map.insert("ok".into(), json!(false));
            map.insert("exit_code".into(), json!(e.exit.code()));
            map.entry("error").or_insert_with(|| json!(e.message()));
        }
        if !doc.is_null() {
            out.json(&doc);
        }
    } else {
        for line in report.human(out) {
            out.line(line);
        }
    }
}

fn exit(code: Exit) -> ExitCode {
    ExitCode::from(code.code() as u8)
}

/// Help and version are printed as clap does; a usage error is exit 2, scrubbed (a value on
/// the command line may be a secret), and a JSON document when `--json` was given.
fn parse_failed(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.render().to_string();
    if asked_for_json(std::env::args_os()) {
        let first = text.lines().next().unwrap_or("usage error");
        let message = first.strip_prefix("error: ").unwrap_or(first);
        let doc = json!({"ok": false, "error": scrub(message), "exit_code": Exit::Usage.code()});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    eprint!("{}", scrub(&text));
    exit(Exit::Usage)
}

fn asked_for_json(args: impl Iterator<Item = OsString>) -> bool {
    args.skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

fn init_tracing(verbose: u8, color: bool) {
    let from_env = vars::RUST_LOG.string().filter(|v| !v.is_empty());
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
        .with_writer(printer::log_writer())
        .with_ansi(color)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_asked_for_before_a_double_dash_only() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>().into_iter();
        assert!(asked_for_json(args(&["stripe-ops", "--json", "nope"])));
        assert!(asked_for_json(args(&["stripe-ops", "events", "--json"])));
        assert!(!asked_for_json(args(&["stripe-ops", "x", "--", "--json"])));
        assert!(!asked_for_json(args(&["stripe-ops", "--jsonx"])));
    }

    #[test]
    fn the_command_tree_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// A variable clap reads for a flag is in the catalogue like every other.
    #[test]
    fn every_variable_a_flag_reads_is_catalogued() {
        use clap::CommandFactory;
        let mut commands = vec![Cli::command()];
        let mut read = Vec::new();
        while let Some(c) = commands.pop() {
            read.extend(
                c.get_arguments()
                    .filter_map(|a| a.get_env())
                    .map(|v| v.to_string_lossy().into_owned()),
            );
            commands.extend(c.get_subcommands().cloned());
        }
        assert!(read.len() >= 6, "{read:?}");
        for name in read {
            assert!(vars::known(&name), "{name} is not in config::vars");
        }
    }
}
