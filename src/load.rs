//! Load mode of `events send`: many distinct, freshly signed events (not yet built).

use crate::cli::{Ctx, not_yet};
use crate::error::Result;
use crate::events::SendArgs;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct LoadArgs {}

impl LoadArgs {
    pub fn is_load(&self) -> bool {
        false
    }
}

pub async fn run(_ctx: &Ctx, _args: SendArgs) -> Result<()> {
    Err(not_yet("events send --count"))
}
