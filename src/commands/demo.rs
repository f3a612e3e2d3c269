//! `stripe-ops demo`: the main job end to end against an embedded sandbox (core: `demo`).

use std::path::PathBuf;

use super::Ctx;
use crate::demo::{self, DemoOptions};
use crate::error::Result;
use crate::printer::Report;
use crate::runtime;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Pay by a plain HTTP form post even when chromedriver is available
    #[arg(long)]
    pub no_browser: bool,
    /// Keep the demo's receipt in DIR (default: a temporary folder, removed at the end)
    #[arg(long, value_name = "DIR")]
    pub receipts_dir: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: DemoArgs) -> Result<Box<dyn Report>> {
    let opts = DemoOptions {
        no_browser: args.no_browser,
        receipts_dir: args.receipts_dir,
    };
    runtime::run(|stop| async move {
        let report = demo::run(opts, &ctx.out, &stop).await?;
        Ok(Box::new(report) as Box<dyn Report>)
    })
}
