//! `stripe-ops smoke` (not yet built).

use crate::cli::{Ctx, not_yet};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct SmokeArgs {}

pub async fn run(_ctx: &Ctx, _args: SmokeArgs) -> Result<()> {
    Err(not_yet("smoke"))
}
