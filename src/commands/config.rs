//! `stripe-ops config show`: the resolved settings of an environment and where each came from
//! (core: `config`).

use super::{Ctx, EnvFlags};
use crate::config;
use crate::error::Result;
use crate::printer::Report;

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the resolved settings of an environment and where each value came from
    Show {
        #[arg(long, default_value = "staging")]
        env: String,
        #[command(flatten)]
        overrides: EnvFlags,
    },
}

pub fn run(ctx: &Ctx, cmd: ConfigCommand) -> Result<Box<dyn Report>> {
    let ConfigCommand::Show { env, overrides } = cmd;
    let config = ctx.config()?;
    let settings = config.env(&env, &overrides.overrides(None))?;
    Ok(Box::new(config::show::show(config, settings)))
}
