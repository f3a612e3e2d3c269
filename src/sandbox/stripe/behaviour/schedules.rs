//! Subscription schedules (docs.stripe.com/billing/subscriptions/subscription-schedules): a
//! schedule's phases, one after another, each `iterations` (or `duration`) of its first price's
//! interval or up to its `end_date`. A schedule starting now (or in the past) makes its
//! subscription at once, with the first phase's items (subscriptions.rs: its first invoice and
//! their events), after `subscription_schedule.created`; one starting later is `not_started`.
//! Cancel (docs.stripe.com/api/subscription_schedules/cancel) cancels its subscription
//! (`customer.subscription.deleted`), then `subscription_schedule.canceled`; release
//! (docs.stripe.com/api/subscription_schedules/release) leaves the subscription as it is, without
//! its schedule: `subscription_schedule.released`.
//!
//! On a test clock a schedule moves with time (`MOVER`, test_clocks.rs): a `not_started` one
//! starts at its start date; at each phase's end the next phase's items become the
//! subscription's (`customer.subscription.updated`, with the renewal's invoice when the period
//! ends then too; then `subscription_schedule.updated` with the new `current_phase`); seven days before the last phase ends,
//! `subscription_schedule.expiring` ("Occurs 7 days before a subscription schedule will
//! expire", https://docs.stripe.com/api/events/types); at its end, `end_behavior` says
//! (docs.stripe.com/api/subscription_schedules/object#subscription_schedule_object-end_behavior:
//! "release will end the subscription schedule and keep the underlying subscription running.
//! cancel will end the subscription schedule and cancel the underlying subscription"): release
//! is `subscription_schedule.released`, cancel cancels the subscription
//! (`customer.subscription.deleted`) and completes the schedule (`completed`,
//! `subscription_schedule.completed`).
//!
//! `from_subscription`: a one-phase schedule of a running subscription as it is.
//! A phase that starts mid-period prorates the change per its `proration_behavior` (prorations.rs).

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::prorations::{self, Billing, Change};
use super::subscriptions;
use super::test_clocks::{Due, Mover, earliest, notice_sent, send_notice};
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

pub struct Schedules;

impl Behaviour for Schedules {
    fn object(&self) -> &'static str {
        "subscription_schedule"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &["phases", "start_date", "from_subscription"]
    }
    fn actions(&self) -> &'static [&'static str] {
        &["cancel", "release"]
    }
    fn create(&self, ctx: &Ctx, schedule: &mut Value) -> ApiResult<()> {
        if let Some(id) = ctx.str_param("from_subscription") {
            return from_subscription(ctx, id, schedule);
        }
        if schedule["customer"].is_null() {
            return Err(ApiError::missing_param("customer"));
        }
        let start = match ctx.param("start_date") {
            None => ctx.now(),
            Some(Value::String(s)) if s == "now" => ctx.now(),
            Some(v) => timestamp(v).ok_or_else(|| {
                ApiError::invalid(
                    "parameter_invalid_integer",
                    Some("start_date"),
                    "Invalid start_date: must be a Unix timestamp or `now`.",
                )
            })?,
        };
        schedule["phases"] = json!(phases(ctx, start)?);
        if start <= ctx.now() {
            let first = &schedule["phases"][0];
            let current = json!({"start_date": first["start_date"], "end_date": first["end_date"]});
            schedule["status"] = json!("active");
            schedule["current_phase"] = current;
        } else {
            schedule["status"] = json!("not_started");
        }
        Ok(())
    }
    fn created(&self, ctx: &Ctx, schedule: &mut Value) -> ApiResult<()> {
        if schedule["status"] != "active" {
            return Ok(());
        }
        match schedule["subscription"].as_str() {
            // Made from a subscription: it is now managed by the schedule.
            Some(id) => {
                let mut sub = ctx.get("subscription", id)?;
                let before = sub.clone();
                sub["schedule"] = schedule["id"].clone();
                ctx.save_update(&before, &sub);
                Ok(())
            }
            None => start_subscription(ctx, schedule),
        }
    }
    fn update(&self, ctx: &Ctx, before: &Value, schedule: &mut Value) -> ApiResult<()> {
        open(before, "update")?;
        if ctx.param("phases").is_some() {
            let start = before["phases"][0]["start_date"]
                .as_i64()
                .unwrap_or(ctx.now());
            schedule["phases"] = json!(phases(ctx, start)?);
        }
        Ok(())
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        match ctx.op {
            "cancel" => Some(cancel(ctx)),
            "release" => Some(release(ctx)),
            _ => None,
        }
    }
}

/// A schedule that has ended (canceled, released, completed) takes no more changes: Stripe's
/// 400 (an `invalid_request_error` without a code) names the action and the status.
fn open(schedule: &Value, action: &str) -> ApiResult<()> {
    match schedule["status"].as_str() {
        Some("not_started" | "active") => Ok(()),
        status => Err(ApiError::request(&format!(
            "You cannot {action} a subscription schedule that is currently in the `{}` status. It must be in one of the following statuses: `not_started`, `active`.",
            status.unwrap_or("canceled")
        ))),
    }
}

/// A Unix timestamp given as a number or, from a form body, as its digits.
fn timestamp(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

/// The schedule's phases from `phases[]`, the first starting at `start`, each the next's start.
fn phases(ctx: &Ctx, start: i64) -> ApiResult<Vec<Value>> {
    let given = ctx
        .param("phases")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::missing_param("phases"))?;
    let mut out = Vec::new();
    let mut at = start;
    for (i, phase) in given.iter().enumerate() {
        let (items, currency, interval) = phase_items(ctx, i, phase)?;
        let end = match phase.get("end_date").and_then(timestamp) {
            Some(end) if end <= at => {
                return Err(ApiError::invalid(
                    "parameter_invalid_integer",
                    Some(&format!("phases[{i}][end_date]")),
                    "A phase's end_date must be after its start.",
                ));
            }
            Some(end) => end,
            None => {
                let (unit, count) = match &phase["duration"] {
                    Value::Object(d) => (
                        d.get("interval").and_then(Value::as_str).unwrap_or("month"),
                        d.get("interval_count").and_then(timestamp).unwrap_or(1),
                    ),
                    _ => {
                        let (unit, every) = interval;
                        // `iterations`, removed at 2025-09-30.clover (versions.toml).
                        let iterations = ctx
                            .param(&format!("phases[{i}][iterations]"))
                            .and_then(timestamp)
                            .unwrap_or(1);
                        (unit, every * iterations)
                    }
                };
                after(at, unit, count)
            }
        };
        let mut made = phase_object(items, currency, (at, end));
        made["metadata"] = phase.get("metadata").cloned().unwrap_or(json!({}));
        if let Some(p) = phase.get("proration_behavior") {
            made["proration_behavior"] = p.clone();
        }
        out.push(made);
        at = end;
    }
    Ok(out)
}

/// A phase of `items` in `currency` from `span.0` to `span.1`, its other settings Stripe's
/// defaults.
fn phase_object(items: Vec<Value>, currency: Value, span: (i64, i64)) -> Value {
    json!({
        "add_invoice_items": [], "application_fee_percent": null, "billing_cycle_anchor": null,
        "billing_thresholds": null, "collection_method": null, "currency": currency,
        "default_payment_method": null, "description": null, "discounts": [], "end_date": span.1,
        "invoice_settings": null, "items": items, "metadata": {}, "on_behalf_of": null,
        "proration_behavior": "create_prorations", "start_date": span.0, "transfer_data": null, "trial_end": null,
    })
}

/// A phase item of `price` (an id) and `quantity`.
fn phase_item(price: &Value, quantity: Value, metadata: Value) -> Value {
    json!({
        "billing_thresholds": null, "discounts": [], "metadata": metadata,
        "plan": price, "price": price, "quantity": quantity, "tax_rates": [],
    })
}

/// `from_subscription` (docs.stripe.com/api/subscription_schedules/create: "a subscription
/// schedule will be created using the subscription's item(s), set to auto-renew using the
/// subscription's interval. When using this parameter, other parameters (such as phase values)
/// cannot be set"): one phase over the subscription's current period with its items, the
/// schedule `active` and released at its end (`end_behavior` release, the default). The
/// subscription must not be ended nor already on a schedule (the messages are the sandbox's).
fn from_subscription(ctx: &Ctx, id: &str, schedule: &mut Value) -> ApiResult<()> {
    for other in ["phases", "customer", "start_date"] {
        if ctx.param(other).is_some() {
            return Err(ApiError::invalid(
                "parameter_invalid",
                Some(other),
                &format!(
                    "You cannot set `{other}` together with `from_subscription`: the schedule is made from the subscription as it is; update it afterwards."
                ),
            ));
        }
    }
    let sub = ctx.find("subscription", id, "from_subscription")?;
    if matches!(
        sub["status"].as_str(),
        Some("canceled" | "incomplete_expired")
    ) {
        return Err(ApiError::invalid(
            "parameter_invalid",
            Some("from_subscription"),
            &format!(
                "The subscription {id} has ended: only a subscription that has not ended can be managed by a schedule."
            ),
        ));
    }
    if let Some(other) = sub["schedule"].as_str() {
        return Err(ApiError::invalid(
            "parameter_invalid",
            Some("from_subscription"),
            &format!(
                "The subscription {id} is already managed by the subscription schedule {other}."
            ),
        ));
    }
    let data = sub["items"]["data"].as_array().cloned().unwrap_or_default();
    let items = data
        .iter()
        .map(|i| {
            phase_item(
                &i["price"]["id"],
                i["quantity"].clone(),
                i["metadata"].clone(),
            )
        })
        .collect();
    let first = data.first().cloned().unwrap_or(Value::Null);
    let span = (
        first["current_period_start"].as_i64().unwrap_or(ctx.now()),
        first["current_period_end"].as_i64().unwrap_or(ctx.now()),
    );
    schedule["customer"] = sub["customer"].clone();
    schedule["phases"] = json!([phase_object(items, sub["currency"].clone(), span)]);
    schedule["current_phase"] = json!({"start_date": span.0, "end_date": span.1});
    schedule["status"] = json!("active");
    schedule["subscription"] = sub["id"].clone();
    Ok(())
}

/// A phase's items (each a recurring price, and its plan), its currency and its first price's
/// interval (unit, count).
fn phase_items(
    ctx: &Ctx,
    i: usize,
    phase: &Value,
) -> ApiResult<(Vec<Value>, Value, (&'static str, i64))> {
    let given = phase["items"]
        .as_array()
        .filter(|items| !items.is_empty())
        .ok_or_else(|| ApiError::missing_param(&format!("phases[{i}][items]")))?;
    let (mut items, mut currency, mut interval) = (Vec::new(), Value::Null, None);
    for (j, item) in given.iter().enumerate() {
        let price =
            subscriptions::recurring_price(ctx, item, &format!("phases[{i}][items][{j}][price]"))?;
        currency = price["currency"].clone();
        interval.get_or_insert_with(|| {
            let recurring = &price["recurring"];
            let unit = match recurring["interval"].as_str() {
                Some("day") => "day",
                Some("week") => "week",
                Some("year") => "year",
                _ => "month",
            };
            (unit, recurring["interval_count"].as_i64().unwrap_or(1))
        });
        items.push(phase_item(
            &price["id"],
            json!(item.get("quantity").and_then(timestamp).unwrap_or(1)),
            item.get("metadata").cloned().unwrap_or(json!({})),
        ));
    }
    Ok((items, currency, interval.unwrap_or(("month", 1))))
}

/// What a phase's items change of the old ones: an item whose price is gone is removed, one
/// whose quantity moved is changed, one of a new price is added.
fn item_changes(old: &[Value], new: &[Value]) -> Vec<Change> {
    let mut changes: Vec<Change> = old
        .iter()
        .filter_map(|o| match new.iter().find(|n| n["id"] == o["id"]) {
            None => Some(Change {
                old: Some(o.clone()),
                new: None,
            }),
            Some(n) if n["quantity"] != o["quantity"] => Some(Change {
                old: Some(o.clone()),
                new: Some(n.clone()),
            }),
            Some(_) => None,
        })
        .collect();
    changes.extend(
        new.iter()
            .filter(|n| !old.iter().any(|o| o["id"] == n["id"]))
            .map(|n| Change {
                old: None,
                new: Some(n.clone()),
            }),
    );
    changes
}

/// `count` intervals after `from`: months and years by the calendar (the 31st of January and
/// one month is the 28th or 29th of February, as Stripe bills), days and weeks exactly.
pub fn after(from: i64, unit: &str, count: i64) -> i64 {
    let Ok(start) = OffsetDateTime::from_unix_timestamp(from) else {
        return from;
    };
    let months = match unit {
        "day" => return from + count * 86_400,
        "week" => return from + count * 7 * 86_400,
        "year" => count * 12,
        _ => count,
    };
    let total = i64::from(start.year()) * 12 + i64::from(u8::from(start.month())) - 1 + months;
    let (year, month) = (
        total.div_euclid(12) as i32,
        (total.rem_euclid(12) + 1) as u8,
    );
    let Ok(month) = time::Month::try_from(month) else {
        return from;
    };
    let day = start.day().min(month.length(year));
    time::Date::from_calendar_date(year, month, day)
        .map(|d| start.replace_date(d).unix_timestamp())
        .unwrap_or(from + months * 30 * 86_400)
}

fn cancel(ctx: &Ctx) -> ApiResult<Value> {
    let mut schedule = ctx.target()?;
    open(&schedule, "cancel")?;
    if let Some(id) = schedule["subscription"].as_str() {
        let mut sub = ctx.get("subscription", id)?;
        if !subscriptions::ended(&sub) {
            subscriptions::cancel_now(ctx, &mut sub);
        }
    }
    schedule["status"] = json!("canceled");
    schedule["canceled_at"] = json!(ctx.now());
    schedule["current_phase"] = Value::Null;
    ctx.put(&schedule);
    ctx.emit("subscription_schedule.canceled", &schedule, None);
    Ok(schedule)
}

fn release(ctx: &Ctx) -> ApiResult<Value> {
    let mut schedule = ctx.target()?;
    open(&schedule, "release")?;
    released(ctx, &mut schedule)?;
    Ok(schedule)
}

/// The schedule lets its subscription go on without it: `subscription_schedule.released`.
fn released(ctx: &Ctx, schedule: &mut Value) -> ApiResult<()> {
    if let Some(id) = schedule["subscription"].as_str() {
        let mut sub = ctx.get("subscription", id)?;
        sub["schedule"] = Value::Null;
        ctx.put(&sub);
    }
    schedule["released_subscription"] = schedule["subscription"].take();
    schedule["status"] = json!("released");
    schedule["released_at"] = json!(ctx.now());
    schedule["current_phase"] = Value::Null;
    ctx.put(schedule);
    ctx.emit("subscription_schedule.released", schedule, None);
    Ok(())
}

/// The schedule's subscription, made with the first phase's items (subscriptions.rs: its first
/// invoice and their events).
fn start_subscription(ctx: &Ctx, schedule: &mut Value) -> ApiResult<()> {
    let phase = &schedule["phases"][0];
    let mut params = json!({"customer": schedule["customer"], "items": phase_params(phase)});
    if !phase["metadata"].is_null() {
        params["metadata"] = phase["metadata"].clone();
    }
    let mut sub = ctx.create("subscription", params)?;
    sub["schedule"] = schedule["id"].clone();
    ctx.put(&sub);
    schedule["subscription"] = sub["id"].clone();
    ctx.put(schedule);
    Ok(())
}

/// A phase's items as a subscription's `items` parameter.
fn phase_params(phase: &Value) -> Vec<Value> {
    phase["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| json!({"price": i["price"], "quantity": i["quantity"]}))
        .collect()
}

/// "Occurs 7 days before a subscription schedule will expire" (https://docs.stripe.com/api/events/types).
const EXPIRY_NOTICE: i64 = 7 * 86_400;

/// The private note that `subscription_schedule.expiring` was sent.
const EXPIRY_NOTICE_SENT: &str = "expiring_sent";

/// How a schedule moves on a test clock (test_clocks.rs).
pub const MOVER: Mover = Mover {
    object: "subscription_schedule",
    due,
    run: step,
};

fn due(ctx: &Ctx, schedule: &Value) -> Option<Due> {
    next_due(schedule, notice_sent(ctx, schedule, EXPIRY_NOTICE_SENT))
}

/// What `schedule` next has due, from its state alone (`notice_sent`: expiring was sent): a
/// `not_started` one starts; an active one has the notice seven days before its last phase
/// ends (when that is after it was made), the next phase, and its end.
pub fn next_due(schedule: &Value, notice_sent: bool) -> Option<Due> {
    let phases = schedule["phases"].as_array()?;
    let end = phases.last()?["end_date"].as_i64()?;
    match schedule["status"].as_str()? {
        "not_started" => Some(Due {
            at: phases.first()?["start_date"].as_i64()?,
            rank: 0,
            what: "start",
        }),
        "active" => {
            let mut steps = vec![Due {
                at: end,
                rank: 2,
                what: "end",
            }];
            let notice = end - EXPIRY_NOTICE;
            if !notice_sent && notice >= schedule["created"].as_i64().unwrap_or(0) {
                steps.push(Due {
                    at: notice,
                    rank: 0,
                    what: "expiring",
                });
            }
            if let Some(phase_end) = schedule["current_phase"]["end_date"].as_i64()
                && phase_end < end
            {
                steps.push(Due {
                    at: phase_end,
                    rank: 1,
                    what: "phase",
                });
            }
            earliest(steps)
        }
        _ => None,
    }
}

fn step(ctx: &Ctx, schedule: &mut Value, what: &'static str) -> ApiResult<()> {
    match what {
        "start" => {
            let before = schedule.clone();
            let first = &schedule["phases"][0];
            schedule["current_phase"] =
                json!({"start_date": first["start_date"], "end_date": first["end_date"]});
            schedule["status"] = json!("active");
            start_subscription(ctx, schedule)?;
            ctx.save_update(&before, schedule);
            Ok(())
        }
        "expiring" => {
            send_notice(
                ctx,
                schedule,
                EXPIRY_NOTICE_SENT,
                "subscription_schedule.expiring",
            );
            Ok(())
        }
        "phase" => next_phase(ctx, schedule),
        _ => match schedule["end_behavior"].as_str() {
            Some("cancel") => completed(ctx, schedule),
            _ => released(ctx, schedule),
        },
    }
}

/// The phase that starts now: its items become the subscription's (an item of a price the
/// subscription has keeps its id and takes the phase's quantity; at the period's end, with the
/// renewal), then the schedule's `current_phase` moves.
fn next_phase(ctx: &Ctx, schedule: &mut Value) -> ApiResult<()> {
    let now = ctx.now();
    let Some(phase) = schedule["phases"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["start_date"].as_i64() == Some(now)))
        .cloned()
    else {
        return Err(ApiError::request("The schedule has no phase starting now."));
    };
    let running = schedule["subscription"]
        .as_str()
        .map(|id| ctx.get("subscription", id))
        .transpose()?
        .filter(|sub| !subscriptions::ended(sub));
    if let Some(mut sub) = running {
        let id = sub["id"].as_str().unwrap_or_default().to_owned();
        let before = sub.clone();
        let old = before["items"]["data"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let period = old.first().map_or((json!(now), Value::Null), |i| {
            (
                i["current_period_start"].clone(),
                i["current_period_end"].clone(),
            )
        });
        let mut items = Vec::new();
        for given in phase["items"].as_array().into_iter().flatten() {
            let mut item = match old.iter().find(|i| i["price"]["id"] == given["price"]) {
                Some(item) => item.clone(),
                None => {
                    let mut item = ctx.fresh("subscription_item");
                    let price = ctx.get("price", given["price"].as_str().unwrap_or_default())?;
                    item["plan"] = ctx
                        .store()
                        .get_of("plan", price["id"].as_str().unwrap_or_default())
                        .unwrap_or(Value::Null);
                    item["price"] = price;
                    item["subscription"] = json!(id);
                    item["tax_rates"] = json!([]);
                    item["current_trial"] = Value::Null;
                    item["current_period_start"] = period.0.clone();
                    item["current_period_end"] = period.1.clone();
                    item
                }
            };
            item["quantity"] = given["quantity"].clone();
            items.push(item);
        }
        sub["items"]["data"] = json!(items);
        // A phase that starts as the period ends is that renewal's: one update, its invoice.
        let renews = period.1.as_i64() == Some(now)
            && matches!(sub["status"].as_str(), Some("active" | "past_due"));
        if renews {
            subscriptions::renew(ctx, &before, &mut sub)?;
        } else {
            // Mid-period, the change is prorated per the phase's `proration_behavior` (API
            // reference, subscription schedule phases: "If the update changes the billing
            // configuration … whether to prorate"; default create_prorations).
            let changes = item_changes(&old, &items);
            let billing = Billing {
                behavior: phase["proration_behavior"]
                    .as_str()
                    .unwrap_or("create_prorations")
                    .to_owned(),
                at: now,
                reset_anchor: false,
            };
            prorations::bill_change(ctx, &mut sub, &changes, &billing)?;
            ctx.save_update(&before, &sub);
        }
    }
    let before = schedule.clone();
    schedule["current_phase"] =
        json!({"start_date": phase["start_date"], "end_date": phase["end_date"]});
    ctx.save_update(&before, schedule);
    Ok(())
}

/// `end_behavior=cancel` at the end: the subscription is canceled, the schedule `completed`.
fn completed(ctx: &Ctx, schedule: &mut Value) -> ApiResult<()> {
    if let Some(id) = schedule["subscription"].as_str() {
        let mut sub = ctx.get("subscription", id)?;
        if !subscriptions::ended(&sub) {
            subscriptions::cancel_now(ctx, &mut sub);
        }
    }
    schedule["status"] = json!("completed");
    schedule["completed_at"] = json!(ctx.now());
    schedule["current_phase"] = Value::Null;
    ctx.put(schedule);
    ctx.emit("subscription_schedule.completed", schedule, None);
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{after, item_changes, next_due};

    /// A phase's items against the running ones: a removed item, a changed quantity and a new
    /// item are changes; an item left as it was is none.
    #[test]
    fn a_phase_changes_what_it_removes_requantifies_or_adds() {
        let si = |id: &str, quantity: i64| json!({"id": id, "quantity": quantity});
        let old = [si("si_a", 1), si("si_b", 2), si("si_c", 1)];
        let new = [si("si_b", 3), si("si_c", 1), si("si_d", 1)];
        let seen: Vec<(Option<i64>, Option<i64>)> = item_changes(&old, &new)
            .iter()
            .map(|c| {
                let q =
                    |v: &Option<serde_json::Value>| v.as_ref().and_then(|i| i["quantity"].as_i64());
                (q(&c.old), q(&c.new))
            })
            .collect();
        assert_eq!(
            seen,
            vec![(Some(1), None), (Some(2), Some(3)), (None, Some(1))]
        );
    }

    /// A two-phase schedule's steps, in order: the second phase, the notice seven days before
    /// the end, the end; a notice that would fall before the schedule was made is not sent.
    #[test]
    fn a_schedule_changes_phase_then_sends_expiring_a_week_before_its_end_then_ends() {
        let (t0, t1, t2) = (1_767_225_600, 1_769_904_000, 1_772_323_200); // Jan 1, Feb 1, Mar 1
        let mut s = json!({"status": "active", "created": t0,
            "phases": [{"start_date": t0, "end_date": t1}, {"start_date": t1, "end_date": t2}],
            "current_phase": {"start_date": t0, "end_date": t1}});
        let phase = next_due(&s, false).unwrap();
        assert_eq!((phase.at, phase.what), (t1, "phase"));
        s["current_phase"] = json!({"start_date": t1, "end_date": t2});
        let notice = next_due(&s, false).unwrap();
        assert_eq!((notice.at, notice.what), (t2 - 7 * 86_400, "expiring"));
        let end = next_due(&s, true).unwrap();
        assert_eq!((end.at, end.what), (t2, "end"));
        s["created"] = json!(t2 - 86_400);
        assert_eq!(next_due(&s, false).unwrap().what, "end");
        s["status"] = json!("not_started");
        assert_eq!(
            next_due(&s, false).map(|d| (d.at, d.what)),
            Some((t0, "start"))
        );
        s["status"] = json!("released");
        assert_eq!(next_due(&s, false), None);
    }

    #[test]
    fn months_and_years_go_by_the_calendar_days_and_weeks_exactly() {
        let jan31 = 1_769_817_600; // 2026-01-31T00:00:00Z
        assert_eq!(after(jan31, "month", 1), 1_772_236_800); // 2026-02-28
        assert_eq!(after(jan31, "month", 2), 1_774_915_200); // 2026-03-31
        assert_eq!(after(jan31, "year", 1), 1_801_353_600); // 2027-01-31
        assert_eq!(after(jan31, "week", 2), jan31 + 14 * 86_400);
        assert_eq!(after(jan31, "day", 3), jan31 + 3 * 86_400);
    }
}
