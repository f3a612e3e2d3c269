//! `stripe-ops check` (not yet built).

use crate::cli::{Ctx, not_yet};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {}

pub async fn run(_ctx: &Ctx, _args: CheckArgs) -> Result<()> {
    Err(not_yet("check"))
}
