//! `stripe-ops status`: the read-only state of an environment, exit 1 on findings (core:
//! `aws::status`).

use super::{AwsEnvArgs, Ctx};
use crate::deploy::status;
use crate::error::Result;
use crate::printer::Report;
use crate::runtime;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: AwsEnvArgs,
    /// Public base URL of the app (else the config, else PUBLIC_BASE_URL of the container)
    #[arg(long, value_name = "URL", value_parser = crate::http::url_arg)]
    pub base_url: Option<String>,
}

pub fn run(ctx: &Ctx, args: StatusArgs) -> Result<Box<dyn Report>> {
    runtime::run(|stop| async move {
        let env = args.target.connect(ctx, args.base_url.clone()).await?;
        let report = stop.guard(status::run(&env)).await?;
        Ok(Box::new(report) as Box<dyn Report>)
    })
}
