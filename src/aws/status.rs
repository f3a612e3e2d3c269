//! `stripe-ops status` (not yet built).

use crate::cli::{Ctx, not_yet};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

pub async fn run(_ctx: &Ctx, _args: StatusArgs) -> Result<()> {
    Err(not_yet("status"))
}
