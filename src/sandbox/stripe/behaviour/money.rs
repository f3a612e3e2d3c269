//! What moves an account's balance besides payments (ledger.rs keeps the balance): payouts
//! take from what is available (Stripe's `balance_insufficient` otherwise) and arrive when the
//! sandbox's clock reaches their `arrival_date` (`payout.paid`); transfers pay a connected
//! account from what is available (connect.rs: the payment they make in that account), a
//! transfer reversal takes it back; top-ups. A customer's cash balance is cash_balance.rs.

use serde_json::{Value, json};

use super::{connect, ledger};
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

pub struct Balance;

impl Behaviour for Balance {
    fn object(&self) -> &'static str {
        "balance"
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        (ctx.op == "retrieve").then(|| Ok(ledger::balance(ctx)))
    }
}

pub struct Payouts;

impl Behaviour for Payouts {
    fn object(&self) -> &'static str {
        "payout"
    }
    /// A payout leaves the available balance (a `payout` balance transaction) for the account's
    /// bank account; it arrives in two days (standard) and Stripe marks it paid then
    /// (`payout.paid`, when the sandbox's clock gets there).
    fn create(&self, ctx: &Ctx, payout: &mut Value) -> ApiResult<()> {
        let currency = payout["currency"].as_str().unwrap_or("usd").to_owned();
        let amount = payout["amount"].as_i64().unwrap_or(0);
        ledger::ensure_available(ctx, &currency, amount)?;
        let id = payout["id"].as_str().unwrap_or_default().to_owned();
        let txn = ledger::record(
            ctx,
            ledger::Movement {
                kind: "payout",
                amount: -amount,
                currency: &currency,
                fees: Vec::new(),
                source: &id,
                description: payout["description"].as_str(),
                available_on: ctx.now(),
            },
        );
        payout["balance_transaction"] = txn["id"].clone();
        payout["arrival_date"] = json!(ctx.now() + 2 * 86_400);
        if let Some(bank) = connect::payout_destination(ctx) {
            payout["destination"] = json!(bank);
        }
        Ok(())
    }
}

pub struct Topups;

impl Behaviour for Topups {
    fn object(&self) -> &'static str {
        "topup"
    }
}

pub struct Transfers;

impl Behaviour for Transfers {
    fn object(&self) -> &'static str {
        "transfer"
    }
    /// Separate charges and transfers (docs.stripe.com/connect/separate-charges-and-transfers):
    /// the platform's available funds go to the destination's available balance.
    fn create(&self, ctx: &Ctx, transfer: &mut Value) -> ApiResult<()> {
        let amount = transfer["amount"]
            .as_i64()
            .ok_or_else(|| ApiError::missing_param("amount"))?;
        let currency = transfer["currency"].as_str().unwrap_or("usd").to_owned();
        let destination = transfer["destination"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        connect::check_destination(ctx, &destination, "destination")?;
        ledger::ensure_available(ctx, &currency, amount)?;
        connect::book_transfer(ctx, transfer, ctx.now());
        Ok(())
    }
}

pub struct TransferReversals;

impl Behaviour for TransferReversals {
    fn object(&self) -> &'static str {
        "transfer_reversal"
    }
    /// A reversal returns part or all of what is left of the transfer (`transfer.reversed`).
    fn create(&self, ctx: &Ctx, reversal: &mut Value) -> ApiResult<()> {
        let transfer = ctx.get("transfer", &ctx.ids[0])?;
        let left = transfer["amount"].as_i64().unwrap_or(0)
            - transfer["amount_reversed"].as_i64().unwrap_or(0);
        let amount = ctx.amount_up_to(left, "parameter_invalid_integer", |amount| {
            format!(
                "You have already reversed this transfer or the amount ({amount}) is greater than what is left on it ({left})."
            )
        })?;
        reversal["amount"] = json!(amount);
        reversal["currency"] = transfer["currency"].clone();
        connect::book_reversal(ctx, &transfer, reversal);
        Ok(())
    }
    fn created(&self, ctx: &Ctx, reversal: &mut Value) -> ApiResult<()> {
        connect::reversed(ctx, &ctx.ids[0], reversal)
    }
}
