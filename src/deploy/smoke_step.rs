//! The deterministic smoke (the same code as `stripe-ops smoke`) as the last step of `enable` and
//! `webhook rotate`.

use std::time::Duration;

use serde_json::Value;

use super::Env;
use crate::error::Result;
use crate::printer::Printer;
use crate::secret::SecretString;
use crate::smoke::deterministic::{self, DeterministicOptions};

/// Runs the smoke against `base_url` with `webhook_secret`, right after a redeploy: for up to
/// `settle` the webhook step retries refusals (tasks with the old secret may still answer) and
/// the credit may take that long. A failing step is an error with the smoke's exit class,
/// naming the step. Returns the report as JSON.
pub async fn run(
    env: &Env,
    base_url: &str,
    webhook_secret: SecretString,
    settle: Duration,
    out: &Printer,
) -> Result<Value> {
    let mut opts = DeterministicOptions::new(base_url, webhook_secret);
    opts.contract = env.settings.contract.clone();
    opts.settle_timeout = settle;
    opts.switch_window = Some(settle);
    out.status(format!("smoke {base_url}"));
    let report = deterministic::run(&opts, out).await?;
    if let Some(e) = report.error() {
        return Err(e.context("the deterministic smoke failed"));
    }
    out.status(format!(
        "smoke passed: {} steps in {:.0} ms",
        report.steps.len(),
        report.total_ms()
    ));
    if let Some(s) = report.switch {
        out.status(format!(
            "the app accepted the new secret {} after the first delivery ({} refusals before)",
            crate::duration::human(Duration::from_secs_f64(s.ms / 1000.0)),
            s.refusals
        ));
    }
    Ok(serde_json::to_value(&report).expect("reports serialize"))
}
