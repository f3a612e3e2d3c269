//! Each account's balance as Stripe keeps it: balance transactions (`txn_…`, the account's own,
//! `GET /v1/balance_transactions`), each with its `amount`, its `fee` and `fee_details`, its
//! `net` (`amount - fee`), and when it becomes available (`available_on`, `status`); the
//! Balance is what they add up to, per currency, available and pending. The types Stripe
//! records (stripe-node's `BalanceTransaction.Type`, docs.stripe.com/reports/balance-
//! transaction-types): `charge` (a payment, less Stripe's fee, and on a direct charge the
//! platform's application fee), `refund`, `payout`, `transfer` and `transfer_refund` on the
//! platform, `payment` and `payment_refund` on the connected account it pays, `application_fee`
//! and `application_fee_refund` on the platform, `topup`.
//!
//! Stripe's processing fee here is the US card price, 2.9% + 30¢ per successful charge
//! (stripe.com/pricing; in test mode too): a $10.00 charge costs $0.59, as the destination
//! charges guide's example says. A card payment's funds are pending for two days (the US
//! standard payout speed, docs.stripe.com/payouts#standard-payout-timing), available at once for
//! `pm_card_bypassPending`. The sandbox's clock (`POST /sandbox/v1/clock/advance`) is what
//! makes days pass: then funds become available (`balance.available`), connected accounts on
//! an automatic payout schedule are paid out (`payout.created`) and payouts arrive
//! (`payout.paid`).

use serde_json::{Map, Value, json};

use crate::sandbox::stripe::engine::{ApiError, ApiResult, Ctx};

/// Days a card payment's funds stay pending.
pub const PENDING_DAYS: i64 = 2;
const DAY: i64 = 86_400;

/// One fee of a balance transaction (`fee_details[]`).
pub struct Fee {
    pub kind: &'static str,
    pub amount: i64,
    pub description: &'static str,
    /// The platform's application (`ca_…`) for an application fee.
    pub application: Option<String>,
}

/// A movement of an account's funds, before it is recorded.
pub struct Movement<'a> {
    pub kind: &'static str,
    pub amount: i64,
    pub currency: &'a str,
    pub fees: Vec<Fee>,
    /// The object that caused it (`ch_…`, `po_…`, `tr_…`, `fee_…`).
    pub source: &'a str,
    pub description: Option<&'a str>,
    /// When the funds become available (now, or later for a card payment).
    pub available_on: i64,
}

/// Stripe's processing fee on a card payment of `amount` (2.9% + 30¢).
pub fn stripe_fee(amount: i64) -> i64 {
    if amount <= 0 {
        return 0;
    }
    (amount * 29 + 500) / 1000 + 30
}

/// The reporting category of a transaction type (docs.stripe.com/reports/reporting-categories).
fn category(kind: &str) -> &'static str {
    match kind {
        "charge" | "payment" => "charge",
        "refund" | "payment_refund" => "refund",
        "payout" => "payout",
        "transfer" => "transfer",
        "transfer_refund" => "transfer_reversal",
        "application_fee" => "platform_earning",
        "application_fee_refund" => "platform_earning_refund",
        "topup" => "topup",
        _ => "other_adjustment",
    }
}

/// Records a balance transaction in `ctx`'s account; answers it.
pub fn record(ctx: &Ctx, m: Movement) -> Value {
    let mut txn = ctx.fresh("balance_transaction");
    let fee: i64 = m.fees.iter().map(|f| f.amount).sum();
    let now = ctx.now();
    txn["amount"] = json!(m.amount);
    txn["currency"] = json!(m.currency);
    txn["fee"] = json!(fee);
    txn["fee_details"] = m
        .fees
        .iter()
        .map(|f| {
            json!({"amount": f.amount, "application": f.application, "currency": m.currency,
                   "description": f.description, "type": f.kind})
        })
        .collect();
    txn["net"] = json!(m.amount - fee);
    txn["type"] = json!(m.kind);
    txn["reporting_category"] = json!(category(m.kind));
    txn["source"] = json!(m.source);
    txn["description"] = json!(m.description);
    txn["available_on"] = json!(m.available_on);
    txn["status"] = json!(if m.available_on <= now {
        "available"
    } else {
        "pending"
    });
    txn["created"] = json!(now);
    ctx.put(&txn);
    txn
}

/// When a card payment's funds become available: in two days, or now.
pub fn available_on(ctx: &Ctx, at_once: bool) -> i64 {
    if at_once {
        ctx.now()
    } else {
        ctx.now() + PENDING_DAYS * DAY
    }
}

/// What `ctx`'s account holds: (available, pending) by currency.
fn sums(ctx: &Ctx) -> (Map<String, Value>, Map<String, Value>) {
    let (mut available, mut pending) = (Map::new(), Map::new());
    for txn in ctx.store().all("balance_transaction", &|_| true) {
        let part = if txn["status"] == "available" {
            &mut available
        } else {
            &mut pending
        };
        let currency = txn["currency"].as_str().unwrap_or("usd").to_owned();
        let now = part.get(&currency).and_then(Value::as_i64).unwrap_or(0);
        part.insert(currency, json!(now + txn["net"].as_i64().unwrap_or(0)));
    }
    (available, pending)
}

/// The funds of `ctx`'s account available in `currency`.
pub fn available(ctx: &Ctx, currency: &str) -> i64 {
    sums(ctx)
        .0
        .get(currency)
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// Takes `amount` from the available balance (the caller records the transaction), or
/// Stripe's refusal.
pub fn ensure_available(ctx: &Ctx, currency: &str, amount: i64) -> ApiResult<()> {
    if amount > available(ctx, currency) {
        return Err(ApiError::invalid(
            "balance_insufficient",
            None,
            "You have insufficient available funds in your Stripe account. Try adding funds directly to your available balance by creating Charges using the 4000000000000077 test card. See: https://stripe.com/docs/testing#available-balance",
        ));
    }
    Ok(())
}

/// The Balance object of `ctx`'s account.
pub fn balance(ctx: &Ctx) -> Value {
    let (available, pending) = sums(ctx);
    let part = |m: Map<String, Value>| -> Vec<Value> {
        let mut m: Vec<(String, Value)> = m.into_iter().collect();
        if m.is_empty() {
            m.push(("usd".into(), json!(0)));
        }
        m.into_iter()
            .map(|(currency, amount)| json!({"amount": amount, "currency": currency, "source_types": {"card": amount}}))
            .collect()
    };
    json!({"object": "balance", "available": part(available), "livemode": ctx.shared.livemode(), "pending": part(pending)})
}

/// Pending funds whose `available_on` has come become available; `balance.available` when any
/// did. Returns the latest `available_on` among them.
pub fn settle(ctx: &Ctx) -> Option<i64> {
    let now = ctx.now();
    let due = ctx.store().all("balance_transaction", &|t| {
        t["status"] == "pending" && t["available_on"].as_i64().is_some_and(|at| at <= now)
    });
    let latest = due
        .iter()
        .filter_map(|t| t["available_on"].as_i64())
        .max()?;
    for mut txn in due {
        txn["status"] = json!("available");
        ctx.put(&txn);
    }
    ctx.emit("balance.available", &balance(ctx), None);
    Some(latest)
}

/// What the sandbox's clock moving to `ctx.now()` does in `ctx`'s account: funds become
/// available; an account on an automatic schedule is paid out what is available (dated when
/// its funds became available, arriving a day later); payouts whose arrival date has come are
/// paid.
pub fn clock_moved(ctx: &Ctx, account: Option<&Value>) {
    let became_available = settle(ctx);
    if let (Some(at), Some(account)) = (became_available, account) {
        let interval = account["settings"]["payouts"]["schedule"]["interval"].as_str();
        let bank = account["external_accounts"]["data"][0]["id"].as_str();
        if interval.is_some_and(|i| i != "manual")
            && account["payouts_enabled"] == true
            && let Some(bank) = bank
        {
            for (currency, amount) in sums(ctx).0 {
                let amount = amount.as_i64().unwrap_or(0);
                if amount > 0 {
                    automatic_payout(ctx, &currency, amount, bank, at);
                }
            }
        }
    }
    let now = ctx.now();
    let arrived = ctx.store().all("payout", &|p| {
        matches!(p["status"].as_str(), Some("pending" | "in_transit"))
            && p["arrival_date"].as_i64().is_some_and(|at| at <= now)
    });
    for before in arrived {
        let mut payout = before.clone();
        payout["status"] = json!("paid");
        ctx.put(&payout);
        let previous = json!({"status": before["status"]});
        ctx.emit("payout.paid", &payout, Some(previous));
    }
}

fn automatic_payout(ctx: &Ctx, currency: &str, amount: i64, bank: &str, at: i64) {
    let mut payout = ctx.fresh("payout");
    let id = payout["id"].as_str().unwrap_or_default().to_owned();
    let txn = record(
        ctx,
        Movement {
            kind: "payout",
            amount: -amount,
            currency,
            fees: Vec::new(),
            source: &id,
            description: Some("STRIPE PAYOUT"),
            available_on: ctx.now(),
        },
    );
    payout["amount"] = json!(amount);
    payout["currency"] = json!(currency);
    payout["automatic"] = json!(true);
    payout["created"] = json!(at);
    payout["arrival_date"] = json!(at + DAY);
    payout["destination"] = json!(bank);
    payout["balance_transaction"] = txn["id"].clone();
    payout["status"] = json!("in_transit");
    payout["description"] = json!("STRIPE PAYOUT");
    ctx.put(&payout);
    ctx.emit("payout.created", &payout, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_card_fee_is_2_9_percent_and_30_cents() {
        assert_eq!(
            stripe_fee(1000),
            59,
            "the destination charges guide's $10.00"
        );
        assert_eq!(stripe_fee(2000), 88);
        assert_eq!(stripe_fee(0), 0);
        assert_eq!(stripe_fee(17), 30);
    }
}
