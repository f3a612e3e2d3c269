//! The account's balance and what moves it: charges add to it (pending, or available at once
//! for `pm_card_bypassPending`: "the funds are added directly to your available balance",
//! docs.stripe.com/testing#available-balance), payouts and transfers take from what is
//! available (Stripe's `balance_insufficient` otherwise), a transfer reversal gives back; top-ups;
//! connected accounts (their events are the connected account's: `account`), and a customer's
//! cash balance funded by the test helper (`customer_cash_balance_transaction.created`, then
//! `cash_balance.funds_available`, API reference "Fund a test mode cash balance").

use serde_json::{Map, Value, json};

use crate::sandbox::stripe::engine::events::emit_for;
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx, Store};

/// Where the sandbox keeps the ledger (a private note: no object has this id).
const LEDGER: &str = "balance";

fn ledger(store: &Store, part: &str) -> Map<String, Value> {
    store
        .private(LEDGER, part)
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

fn add(store: &Store, part: &str, currency: &str, amount: i64) {
    let mut m = ledger(store, part);
    let now = m.get(currency).and_then(Value::as_i64).unwrap_or(0);
    m.insert(currency.to_owned(), json!(now + amount));
    store.set_private(LEDGER, part, Value::Object(m));
}

/// A succeeded charge's funds: available at once (`bypassPending`, with `balance.available`),
/// else pending.
pub fn credit(ctx: &Ctx, currency: &str, amount: i64, available: bool) {
    if available {
        add(ctx.store(), "available", currency, amount);
        ctx.emit("balance.available", &balance(ctx), None);
    } else {
        add(ctx.store(), "pending", currency, amount);
    }
}

/// Takes `amount` from the available balance, or Stripe's refusal.
fn debit(ctx: &Ctx, currency: &str, amount: i64) -> ApiResult<()> {
    let available = ledger(ctx.store(), "available")
        .get(currency)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if amount > available {
        return Err(ApiError::invalid(
            "balance_insufficient",
            None,
            "You have insufficient available funds in your Stripe account. Try adding funds directly to your available balance by creating Charges using the 4000000000000077 test card. See: https://stripe.com/docs/testing#available-balance",
        ));
    }
    add(ctx.store(), "available", currency, -amount);
    Ok(())
}

/// The Balance object: what is available and pending, per currency.
pub fn balance(ctx: &Ctx) -> Value {
    let part = |name: &str| -> Vec<Value> {
        let mut m: Vec<(String, Value)> = ledger(ctx.store(), name).into_iter().collect();
        if m.is_empty() {
            m.push(("usd".into(), json!(0)));
        }
        m.into_iter()
            .map(|(currency, amount)| json!({"amount": amount, "currency": currency, "source_types": {"card": amount}}))
            .collect()
    };
    json!({"object": "balance", "available": part("available"), "livemode": ctx.shared.livemode(), "pending": part("pending")})
}

pub struct Balance;

impl Behaviour for Balance {
    fn object(&self) -> &'static str {
        "balance"
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        (ctx.op == "retrieve").then(|| Ok(balance(ctx)))
    }
}

pub struct Payouts;

impl Behaviour for Payouts {
    fn object(&self) -> &'static str {
        "payout"
    }
    /// A payout leaves the available balance; it arrives in two days (standard) and Stripe
    /// marks it paid then (`payout.paid`, not emitted while the sandbox runs).
    fn create(&self, ctx: &Ctx, payout: &mut Value) -> ApiResult<()> {
        let currency = payout["currency"].as_str().unwrap_or("usd").to_owned();
        debit(ctx, &currency, payout["amount"].as_i64().unwrap_or(0))?;
        payout["arrival_date"] = json!(ctx.now() + 2 * 86_400);
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
    fn create(&self, ctx: &Ctx, transfer: &mut Value) -> ApiResult<()> {
        let amount = transfer["amount"]
            .as_i64()
            .ok_or_else(|| ApiError::missing_param("amount"))?;
        let currency = transfer["currency"].as_str().unwrap_or("usd").to_owned();
        debit(ctx, &currency, amount)?;
        // The payment on the connected account the transfer makes (not an object of this account).
        transfer["destination_payment"] = json!(format!("py_{}", crate::secret::random_alnum(24)));
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
        Ok(())
    }
    fn created(&self, ctx: &Ctx, reversal: &mut Value) -> ApiResult<()> {
        let before = ctx.get("transfer", &ctx.ids[0])?;
        let mut transfer = before.clone();
        let amount = reversal["amount"].as_i64().unwrap_or(0);
        let reversed = transfer["amount_reversed"].as_i64().unwrap_or(0) + amount;
        transfer["amount_reversed"] = json!(reversed);
        transfer["reversed"] = json!(reversed == transfer["amount"].as_i64().unwrap_or(0));
        if let Some(list) = transfer["reversals"]["data"].as_array_mut() {
            list.insert(0, reversal.clone());
        }
        add(
            ctx.store(),
            "available",
            transfer["currency"].as_str().unwrap_or("usd"),
            amount,
        );
        ctx.put(&transfer);
        let previous =
            crate::sandbox::stripe::engine::apply::previous_attributes(&before, &transfer);
        ctx.emit("transfer.reversed", &transfer, Some(previous));
        Ok(())
    }
}

pub struct Accounts;

impl Behaviour for Accounts {
    fn object(&self) -> &'static str {
        "account"
    }
    /// Deleting a connected account ends its connection to the platform: the platform gets
    /// `account.application.deauthorized` from that account ("Occurs whenever a user
    /// deauthorizes an application").
    fn deleted(&self, ctx: &Ctx, account: &Value) -> ApiResult<()> {
        let mut application = ctx.fresh("application");
        application["id"] = json!(format!(
            "ca_{}",
            ctx.shared.stripe.account_id().trim_start_matches("acct_")
        ));
        emit_for(
            ctx,
            "account.application.deauthorized",
            &application,
            None,
            account["id"].as_str(),
        );
        Ok(())
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
