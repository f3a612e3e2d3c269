//! `config show`'s report: an environment's resolved settings and where each came from.

use serde::Serialize;
use serde_json::Value;

use super::{Config, EnvSettings, Provenance};
use crate::printer::{Printer, Report};

#[derive(Debug, Serialize)]
pub struct Shown {
    env: String,
    config_file: Option<String>,
    settings: Vec<Provenance>,
}

/// The settings of `env` as `smoke` and `check` would see them (with `BASE_URL`).
pub fn show(config: &Config, env: EnvSettings) -> Shown {
    Shown {
        settings: env.provenance_with_base_url_var(),
        env: env.name,
        config_file: config.path.as_ref().map(|p| p.display().to_string()),
    }
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
