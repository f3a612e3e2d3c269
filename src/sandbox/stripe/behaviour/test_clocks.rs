//! Test clocks: created `ready` at their `frozen_time`; an advance moves them forward only
//! (`test_helpers.test_clock.advancing`, then `test_helpers.test_clock.ready` once every object
//! on the clock has moved, docs.stripe.com/billing/testing/test-clocks/api-advanced-usage).
//! Stripe answers the advance while the clock is still `advancing`; the sandbox moves it at
//! once, so a retrieve right after sees it ready.
//!
//! The hook for what moves with a clock (subscriptions, schedules, trials, invoices): `MOVERS`,
//! each called with the clock and the time span it crossed, in order, before the clock is ready.

use serde_json::{Value, json};

use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

/// What moves with a clock: `fn(ctx, clock, from, to)`, emitting what Stripe emits for the time
/// crossed. Empty until subscriptions and schedules live on clocks.
pub type Mover = fn(&Ctx, &Value, i64, i64) -> ApiResult<()>;
pub static MOVERS: &[Mover] = &[];

/// A clock is deleted 30 days after it is created (the `deletes_after` Stripe sets).
const LIFETIME: i64 = 30 * 86_400;

pub struct TestClocks;

impl Behaviour for TestClocks {
    fn object(&self) -> &'static str {
        "test_helpers.test_clock"
    }
    fn actions(&self) -> &'static [&'static str] {
        &["advance"]
    }
    fn create(&self, ctx: &Ctx, clock: &mut Value) -> ApiResult<()> {
        clock["deletes_after"] = json!(ctx.now() + LIFETIME);
        clock["status_details"] = json!({});
        Ok(())
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        (ctx.op == "advance").then(|| advance(ctx))
    }
}

fn advance(ctx: &Ctx) -> ApiResult<Value> {
    let mut clock = ctx.target()?;
    let from = clock["frozen_time"].as_i64().unwrap_or(0);
    let to = ctx.int_param("frozen_time").unwrap_or(from);
    if clock["status"] != "ready" {
        return Err(ApiError::state(
            "test_clock_not_ready",
            "The test clock is currently advancing. You can only advance a test clock when it is ready.",
        ));
    }
    if to <= from {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            Some("frozen_time"),
            &format!(
                "The frozen_time ({to}) must be later than the test clock's current frozen_time ({from})."
            ),
        ));
    }
    clock["status"] = json!("advancing");
    clock["status_details"] = json!({"advancing": {"target_frozen_time": to}});
    ctx.put(&clock);
    ctx.emit("test_helpers.test_clock.advancing", &clock, None);
    let answer = clock.clone();
    for mover in MOVERS {
        mover(ctx, &clock, from, to)?;
    }
    clock["status"] = json!("ready");
    clock["status_details"] = json!({});
    clock["frozen_time"] = json!(to);
    ctx.put(&clock);
    ctx.emit("test_helpers.test_clock.ready", &clock, None);
    Ok(answer)
}
