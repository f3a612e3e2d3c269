//! `stripe-ops fanout` (not yet built).

use crate::cli::{Ctx, not_yet};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct FanoutArgs {}

pub async fn run(_ctx: &Ctx, _args: FanoutArgs) -> Result<()> {
    Err(not_yet("fanout"))
}
