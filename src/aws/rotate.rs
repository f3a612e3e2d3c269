//! `stripe-ops webhook rotate` (not yet built).

use crate::cli::{Ctx, not_yet};
use crate::error::Result;

#[derive(Debug, clap::Subcommand)]
pub enum WebhookCommand {
    /// Rotate the webhook secret of an environment without downtime
    Rotate {},
}

pub async fn run(_ctx: &Ctx, _cmd: WebhookCommand) -> Result<()> {
    Err(not_yet("webhook rotate"))
}
