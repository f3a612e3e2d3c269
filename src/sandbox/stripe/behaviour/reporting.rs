//! Report runs: created `pending`, then run at once (Stripe runs them in the background and
//! emits `reporting.report_run.succeeded` when the file is ready, docs.stripe.com/reports/api).
//! The answer to the create is the pending run, as Stripe's; a retrieve sees it succeeded.

use serde_json::{Value, json};

use crate::sandbox::stripe::engine::{ApiResult, Behaviour, Ctx};

pub struct ReportRuns;

impl Behaviour for ReportRuns {
    fn object(&self) -> &'static str {
        "reporting.report_run"
    }
    fn create(&self, _ctx: &Ctx, run: &mut Value) -> ApiResult<()> {
        run["status"] = json!("pending");
        run["result"] = Value::Null;
        run["succeeded_at"] = Value::Null;
        Ok(())
    }
    fn created(&self, ctx: &Ctx, run: &mut Value) -> ApiResult<()> {
        let mut done = run.clone();
        let mut file = ctx.fresh("file");
        file["purpose"] = json!("finance_report_run");
        file["type"] = json!("csv");
        file["filename"] = json!(format!("{}.csv", run["id"].as_str().unwrap_or_default()));
        file["size"] = json!(0);
        done["status"] = json!("succeeded");
        done["succeeded_at"] = json!(ctx.now());
        done["result"] = file;
        ctx.put(&done);
        ctx.emit("reporting.report_run.succeeded", &done, None);
        Ok(())
    }
}
