//! The sandbox's clock, the time every account's objects and events are dated with: the
//! machine's, moved forward by `POST /sandbox/v1/clock/advance` (not a Stripe API: Stripe's test
//! clocks move only Billing objects, docs.stripe.com/billing/testing/test-clocks, and in test
//! mode funds and payouts follow real days). Moving it makes days pass for money: pending funds
//! whose day has come become available (`balance.available` in each account), connected
//! accounts on an automatic payout schedule are paid out (`payout.created`), and payouts whose
//! arrival date has come are paid (`payout.paid`), each account's events its own (a connected
//! account's carry `account`).
//!
//! Parameters: `by` (seconds, at least 1) or `to` (a Unix time later than now); the answer is
//! `{"object": "sandbox.clock", "now": …, "offset": …}`. `GET /sandbox/v1/clock` reads it.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, json};

use super::behaviour::ledger;
use super::engine::{ApiError, ApiResult, Call, Ctx, Engine, Scope};
use crate::sandbox::Shared;

/// The longest step: ten years, far beyond any payout schedule.
const MAX_STEP: i64 = 10 * 366 * 86_400;

fn answer(shared: &Shared) -> Response {
    let now = shared.stripe.now();
    let offset = now - crate::timestamp::unix_now();
    axum::Json(json!({"object": "sandbox.clock", "now": now, "offset": offset})).into_response()
}

pub async fn read(State(shared): State<Arc<Shared>>, _call: Call) -> Response {
    answer(&shared)
}

pub async fn advance(State(shared): State<Arc<Shared>>, call: Call) -> Response {
    match step(&shared, &call) {
        Ok(by) => {
            shared.stripe.advance_clock(by);
            moved(&shared);
            answer(&shared)
        }
        Err(e) => e.into_response(),
    }
}

/// How far the call moves the clock.
fn step(shared: &Shared, call: &Call) -> ApiResult<i64> {
    call.only(&["by", "to"])?;
    let number = |name: &str| -> ApiResult<Option<i64>> {
        call.param(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::invalid(
                        "parameter_invalid_integer",
                        Some(name),
                        &format!("Invalid integer: {v}"),
                    )
                })
            })
            .transpose()
    };
    let by = match (number("by")?, number("to")?) {
        (Some(by), None) => by,
        (None, Some(to)) => to - shared.stripe.now(),
        (Some(_), Some(_)) => {
            return Err(ApiError::request(
                "You may only specify one of these parameters: by, to.",
            ));
        }
        (None, None) => return Err(ApiError::missing_param("by")),
    };
    if !(1..=MAX_STEP).contains(&by) {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            Some(if call.param("to").is_some() {
                "to"
            } else {
                "by"
            }),
            "The sandbox's clock only moves forward, by at most ten years at a time.",
        ));
    }
    Ok(by)
}

/// What the time that passed does in every account: the platform's first, then each connected
/// account's.
fn moved(shared: &Arc<Shared>) {
    let resource = Engine::get()
        .resource("balance")
        .expect("balance is in the table");
    let platform_call = Call::internal("/sandbox/v1/clock/advance", Scope::Platform);
    let platform = Ctx::new(
        shared,
        &platform_call,
        resource,
        "advance",
        Map::new(),
        Vec::new(),
    );
    ledger::clock_moved(&platform, None);
    let accounts = shared
        .stripe
        .objects
        .platform()
        .all("account", &|a| a["deleted"] != true);
    for account in accounts {
        let Some(id) = account["id"].as_str() else {
            continue;
        };
        let call = Call::internal("/sandbox/v1/clock/advance", Scope::Connected(id.to_owned()));
        let ctx = Ctx::new(shared, &call, resource, "advance", Map::new(), Vec::new());
        ledger::clock_moved(&ctx, Some(&account));
    }
}
