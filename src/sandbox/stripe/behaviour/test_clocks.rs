//! Test clocks: created `ready` at their `frozen_time`; an advance moves them forward only
//! (`test_helpers.test_clock.advancing`, then `test_helpers.test_clock.ready` once every object
//! on the clock has moved, docs.stripe.com/billing/testing/test-clocks/api-advanced-usage).
//! Stripe answers the advance while the clock is still `advancing`; the sandbox moves it at
//! once, so a retrieve right after sees it ready.
//!
//! What lives on a clock moves with it (docs.stripe.com/billing/testing/test-clocks/api-advanced-usage,
//! "Advance the simulated time": subscriptions renew, trials end, schedules change phase and end,
//! invoices advance): `MOVERS` say, for each kind, when an object on the clock next has something
//! due; the advance does the earliest due step, at its moment, until none is due by the new
//! frozen time, so what happens is in time order across kinds. Each step runs on the clock's
//! time (`Ctx::on_clock`): the objects it makes and the events it emits are dated then.

use serde_json::{Value, json};

use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

/// One kind of object that moves with a clock.
pub struct Mover {
    pub object: &'static str,
    /// When the object next has something due, and what (its state says: a step done is no
    /// longer due). Steps of one moment run in the order of `MOVERS`, then by `rank`.
    pub due: fn(&Ctx, &Value) -> Option<Due>,
    /// Does the step, at its moment.
    pub run: fn(&Ctx, &mut Value, &'static str) -> ApiResult<()>,
}

/// A step due at `at`: `what` names it for `Mover::run`; `rank` orders steps of one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub at: i64,
    pub rank: u8,
    pub what: &'static str,
}

/// The earliest of `steps` (by time, then rank), if any.
pub fn earliest(steps: impl IntoIterator<Item = Due>) -> Option<Due> {
    steps.into_iter().min_by_key(|d| (d.at, d.rank))
}

/// A schedule's phase decides what its subscription renews into, and an invoice is made before
/// it advances: schedules, then subscriptions, then invoices.
pub static MOVERS: &[Mover] = &[
    super::schedules::MOVER,
    super::subscriptions::MOVER,
    super::invoices::MOVER,
];

/// Whether the one-time notice noted `note` (a private note: `trial_will_end`, `expiring`) was
/// sent about `object`.
pub fn notice_sent(ctx: &Ctx, object: &Value, note: &str) -> bool {
    let id = object["id"].as_str().unwrap_or_default();
    ctx.store().private(id, note).is_some()
}

/// Sends the one-time notice `event` about `object`, noted `note`.
pub fn send_notice(ctx: &Ctx, object: &Value, note: &str, event: &str) {
    let id = object["id"].as_str().unwrap_or_default();
    ctx.store().set_private(id, note, json!(true));
    ctx.emit(event, object, None);
}

/// A runaway guard: no advance does more steps than this.
const MAX_STEPS: usize = 10_000;

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
    match clock["status"].as_str() {
        Some("ready") => {}
        Some("internal_failure") => {
            return Err(ApiError::state(
                "test_clock_not_ready",
                "The test clock failed to advance (internal_failure): delete it and make another.",
            ));
        }
        _ => {
            return Err(ApiError::state(
                "test_clock_not_ready",
                "The test clock is currently advancing. You can only advance a test clock when it is ready.",
            ));
        }
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
    let id = clock["id"].as_str().unwrap_or_default().to_owned();
    // Stripe answers the advance before it moves anything; what fails while the objects move
    // leaves the clock `internal_failure` (`test_helpers.test_clock.internal_failure`), never
    // the answer.
    let (status, event) = match move_objects(ctx, &id, from, to) {
        Ok(()) => ("ready", "test_helpers.test_clock.ready"),
        Err(_) => (
            "internal_failure",
            "test_helpers.test_clock.internal_failure",
        ),
    };
    clock["status"] = json!(status);
    clock["status_details"] = json!({});
    if status == "ready" {
        clock["frozen_time"] = json!(to);
    }
    ctx.put(&clock);
    ctx.emit(event, &clock, None);
    Ok(answer)
}

/// The order steps run in: their moment (one already due when the advance starts runs at its
/// start), then their kind's place in `MOVERS`, then their rank.
fn run_order(due: &Due, kind: usize, from: i64) -> (i64, usize, u8) {
    (due.at.max(from), kind, due.rank)
}

/// Does every step due on clock `id` up to `to`, earliest first, each at its moment (a step due
/// before `from`, on an object made after it, runs at `from`).
fn move_objects(ctx: &Ctx, id: &str, from: i64, to: i64) -> ApiResult<()> {
    for _ in 0..MAX_STEPS {
        let mut next: Option<(Due, usize, Value)> = None;
        for (order, mover) in MOVERS.iter().enumerate() {
            for object in ctx.store().all(mover.object, &|o| o["test_clock"] == id) {
                let Some(due) = (mover.due)(ctx, &object).filter(|d| d.at <= to) else {
                    continue;
                };
                let key = run_order(&due, order, from);
                if next
                    .as_ref()
                    .is_none_or(|(d, o, _)| key < run_order(d, *o, from))
                {
                    next = Some((due, order, object));
                }
            }
        }
        let Some((due, order, mut object)) = next else {
            return Ok(());
        };
        let at = ctx.on_clock(id, due.at.max(from));
        (MOVERS[order].run)(&at, &mut object, due.what)?;
    }
    Err(ApiError::request(
        "The test clock's objects did not settle: too many steps in one advance.",
    ))
}

#[cfg(test)]
mod tests {
    use super::{Due, earliest, run_order};

    #[test]
    fn steps_run_by_moment_then_kind_then_rank_and_overdue_ones_at_the_start() {
        let (from, t) = (1_000, 5_000);
        let due = |at, rank, what| Due { at, rank, what };
        let mut steps = [
            (due(t, 3, "renew"), 1),
            (due(t, 2, "end"), 0),
            (due(t - 1, 0, "finalize"), 2),
            (due(500, 1, "cancel"), 1),
        ];
        steps.sort_by_key(|(d, kind)| run_order(d, *kind, from));
        let order: Vec<&str> = steps.iter().map(|(d, _)| d.what).collect();
        assert_eq!(order, ["cancel", "finalize", "end", "renew"]);
        assert_eq!(run_order(&steps[0].0, 1, from).0, from);
        assert_eq!(
            earliest([due(t, 3, "renew"), due(t, 1, "cancel"), due(t + 1, 0, "x")]).map(|d| d.what),
            Some("cancel")
        );
        assert_eq!(earliest([]), None);
    }
}
