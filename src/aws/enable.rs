//! `stripe-ops enable` (not yet built).

use crate::cli::{Ctx, not_yet};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct EnableArgs {}

pub async fn run(_ctx: &Ctx, _args: EnableArgs) -> Result<()> {
    Err(not_yet("enable"))
}
