//! `stripe-ops sandbox` (not yet built).

use crate::cli::{Ctx, not_yet};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {}

pub async fn run(_ctx: &Ctx, _args: SandboxArgs) -> Result<()> {
    Err(not_yet("sandbox"))
}
