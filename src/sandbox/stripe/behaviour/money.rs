//! What moves an account's balance besides payments (ledger.rs keeps the balance): payouts
//! take from what is available (Stripe's `balance_insufficient` otherwise) and arrive when the
//! sandbox's clock reaches their `arrival_date` (`payout.paid`); transfers pay a connected
//! account from what is available (connect.rs: the payment they make in that account), a
//! transfer reversal takes it back; top-ups; and a customer's cash balance funded by the test
//! helper (`customer_cash_balance_transaction.created`, then `cash_balance.funds_available`,
//! API reference "Fund a test mode cash balance").

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
        let amount = ctx.int_param("amount").unwrap_or(left);
        if amount < 1 || amount > left {
            return Err(ApiError::invalid(
                "parameter_invalid_integer",
                Some("amount"),
                &format!(
                    "You have already reversed this transfer or the amount ({amount}) is greater than what is left on it ({left})."
                ),
            ));
        }
        reversal["amount"] = json!(amount);
        reversal["currency"] = transfer["currency"].clone();
        connect::book_reversal(ctx, &transfer, reversal);
        Ok(())
    }
    fn created(&self, ctx: &Ctx, reversal: &mut Value) -> ApiResult<()> {
        connect::reversed(ctx, &ctx.ids[0], reversal)
    }
}

pub struct CashBalanceTransactions;

impl Behaviour for CashBalanceTransactions {
    fn object(&self) -> &'static str {
        "customer_cash_balance_transaction"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &["amount", "reference"]
    }
    /// The test helper's funds arrive by bank transfer in the currency's scheme.
    fn create(&self, ctx: &Ctx, txn: &mut Value) -> ApiResult<()> {
        let amount = ctx.int_param("amount").unwrap_or(0);
        let currency = txn["currency"].as_str().unwrap_or("usd").to_owned();
        let customer = ctx.ids[0].clone();
        let mut cash = cash_balance(ctx, &customer);
        let ending = cash["available"][&currency].as_i64().unwrap_or(0) + amount;
        cash["available"][&currency] = json!(ending);
        ctx.store().set_private(&customer, "cash_balance", cash);
        let scheme = match currency.as_str() {
            "eur" => "eu_bank_transfer",
            "gbp" => "gb_bank_transfer",
            "jpy" => "jp_bank_transfer",
            "mxn" => "mx_bank_transfer",
            _ => "us_bank_transfer",
        };
        let details = match scheme {
            "eu_bank_transfer" => json!({"bic": null, "iban_last4": null, "sender_name": null}),
            "gb_bank_transfer" => {
                json!({"account_number_last4": null, "sender_name": null, "sort_code": null})
            }
            "jp_bank_transfer" => {
                json!({"sender_bank": null, "sender_branch": null, "sender_name": null})
            }
            _ => json!({"network": "ach", "sender_name": null}),
        };
        let reference = ctx.str_param("reference").map_or_else(
            || crate::secret::random_alnum(12).to_ascii_uppercase(),
            str::to_owned,
        );
        txn["type"] = json!("funded");
        txn["net_amount"] = json!(amount);
        txn["ending_balance"] = json!(ending);
        txn["funded"] =
            json!({"bank_transfer": {"reference": reference, "type": scheme, scheme: details}});
        Ok(())
    }
    /// What is left unapplied is available: `cash_balance.funds_available`.
    fn created(&self, ctx: &Ctx, _txn: &mut Value) -> ApiResult<()> {
        let cash = cash_balance(ctx, &ctx.ids[0]);
        ctx.emit("cash_balance.funds_available", &cash, None);
        Ok(())
    }
}

/// A customer's cash balance (an object without an id, kept as a note on the customer).
pub fn cash_balance(ctx: &Ctx, customer: &str) -> Value {
    ctx.store()
        .private(customer, "cash_balance")
        .unwrap_or_else(|| {
            let mut cash = ctx.fresh("cash_balance");
            cash["customer"] = json!(customer);
            cash["available"] = json!({});
            cash
        })
}

pub struct CashBalances;

impl Behaviour for CashBalances {
    fn object(&self) -> &'static str {
        "cash_balance"
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        (ctx.op == "retrieve").then(|| {
            ctx.get("customer", &ctx.ids[0])?;
            Ok(cash_balance(ctx, &ctx.ids[0]))
        })
    }
}
