//! `stripe-ops config show`: the resolved settings of an environment and where each came from.

use serde::Serialize;
use serde_json::Value;

use super::{Ctx, EnvFlags};
use crate::config::Provenance;
use crate::error::Result;
use crate::printer::{Printer, Report};

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

#[derive(Debug, Serialize)]
struct Shown {
    env: String,
    config_file: Option<String>,
    settings: Vec<Provenance>,
}

impl Report for Shown {
    fn json(&self) -> Value {
        serde_json::to_value(self).expect("reports serialize")
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        let mut lines = vec![format!(
            "environment {} (config: {})",
            self.env,
            self.config_file
                .as_deref()
                .unwrap_or("none, built-in defaults")
        )];
        let width = self.settings.iter().map(|p| p.key.len()).max().unwrap_or(0);
        lines.extend(
            self.settings
                .iter()
                .map(|p| format!("  {:width$}  {}  [{}]", p.key, p.value, p.source)),
        );
        lines
    }
}

pub fn run(ctx: &Ctx, cmd: ConfigCommand) -> Result<Box<dyn Report>> {
    let ConfigCommand::Show { env, overrides } = cmd;
    let config = ctx.config()?;
    let settings = config.env(&env, &overrides.overrides(None))?;
    let provenance = settings.provenance_with_base_url_var();
    Ok(Box::new(Shown {
        env: settings.name,
        config_file: config.path.as_ref().map(|p| p.display().to_string()),
        settings: provenance,
    }))
}
