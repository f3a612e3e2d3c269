//! `stripe-ops demo` (not yet built).

use crate::cli::{Ctx, not_yet};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

pub async fn run(_ctx: &Ctx, _args: DemoArgs) -> Result<()> {
    Err(not_yet("demo"))
}
