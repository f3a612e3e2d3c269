//! A customer's cash balance and the payments it makes (docs.stripe.com/payments/customer-balance,
//! docs.stripe.com/payments/bank-transfers/accept-a-payment):
//!
//! - the balance: `GET /v1/customers/{id}/cash_balance`, `available` by currency, and its
//!   transactions (`customer_cash_balance_transaction`, `GET …/cash_balance_transactions`);
//! - funding it in test mode (`POST /v1/test_helpers/customers/{id}/fund_cash_balance`, API
//!   reference "Fund a test mode cash balance"): a `funded` transaction by bank transfer in the
//!   currency's scheme (`customer_cash_balance_transaction.created`);
//! - a PaymentIntent paid from it (`payment_method_types[]=customer_balance`,
//!   `payment_method_data[type]=customer_balance`, `payment_method_options[customer_balance]
//!   [funding_type]=bank_transfer`): confirmed, it takes what the balance holds; while funds are
//!   missing it is `requires_action` with `next_action.display_bank_transfer_instructions` (the
//!   amount remaining, the reference to quote; `payment_intent.requires_action`). Funds that
//!   arrive are applied at once to the customer's open intents in their currency (the balance's
//!   `settings.reconciliation_mode` is `automatic`; in what order: `named_first`): an
//!   `applied_to_payment` transaction each (`customer_cash_balance_transaction.created`), then the intent is
//!   `payment_intent.partially_funded` ("Occurs when funds are applied to a customer_balance
//!   PaymentIntent and the 'amount_remaining' changes", Stripe's event types) or, fully funded,
//!   paid: `charge.succeeded`, `payment_intent.succeeded`. What is left unapplied is available:
//!   `cash_balance.funds_available` ("Occurs whenever there is a positive remaining cash balance
//!   after Stripe automatically reconciles new funds into the cash balance").
//!
//! The balance has no id of its own: it is kept as a note on the customer.

use serde_json::{Value, json};

use super::payments;
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

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
        if amount < 1 {
            return Err(ApiError::invalid(
                "parameter_invalid_integer",
                Some("amount"),
                "This value must be greater than or equal to 1.",
            ));
        }
        let currency = txn["currency"].as_str().unwrap_or("usd").to_owned();
        let scheme = scheme(&currency).ok_or_else(|| {
            let message = format!(
                "Invalid currency: {currency}. A cash balance is funded by bank transfer in eur, gbp, jpy, mxn or usd."
            );
            ApiError::bad_param("currency", &message)
        })?;
        let customer = ctx.ids[0].clone();
        let ending = add_available(ctx, &customer, &currency, amount);
        // The sender's details stripe-node declares per scheme (none for `mx_bank_transfer`);
        // a test transfer has no sender.
        let details = match scheme {
            "eu_bank_transfer" => json!({"bic": null, "iban_last4": null, "sender_name": null}),
            "gb_bank_transfer" => {
                json!({"account_number_last4": null, "sender_name": null, "sort_code": null})
            }
            "jp_bank_transfer" => {
                json!({"sender_bank": null, "sender_branch": null, "sender_name": null})
            }
            "us_bank_transfer" => json!({"network": "ach", "sender_name": null}),
            _ => Value::Null,
        };
        let reference = ctx
            .str_param("reference")
            .map_or_else(new_reference, str::to_owned);
        txn["type"] = json!("funded");
        txn["net_amount"] = json!(amount);
        txn["ending_balance"] = json!(ending);
        let mut transfer = json!({"reference": reference, "type": scheme});
        if !details.is_null() {
            transfer[scheme] = details;
        }
        txn["funded"] = json!({ "bank_transfer": transfer });
        Ok(())
    }
    /// The new funds go to the customer's open intents; what is left is available.
    fn created(&self, ctx: &Ctx, txn: &mut Value) -> ApiResult<()> {
        let customer = ctx.ids[0].clone();
        let currency = txn["currency"].as_str().unwrap_or("usd").to_owned();
        let transfer = Transfer {
            reference: txn["funded"]["bank_transfer"]["reference"]
                .as_str()
                .unwrap_or_default(),
            amount: txn["net_amount"].as_i64().unwrap_or(0),
        };
        apply(ctx, &customer, &currency, Some(transfer))?;
        if available(ctx, &customer, &currency) > 0 {
            let cash = cash_balance(ctx, &customer);
            ctx.emit("cash_balance.funds_available", &cash, None);
        }
        Ok(())
    }
}

pub struct CashBalances;

impl Behaviour for CashBalances {
    fn object(&self) -> &'static str {
        "cash_balance"
    }
    /// `GET` and `POST /v1/customers/{id}/cash_balance` (its `settings`; no event).
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        matches!(ctx.op, "retrieve" | "update").then(|| {
            ctx.get("customer", &ctx.ids[0])?;
            if let Some(settings) = ctx.param("settings") {
                set_reconciliation(ctx, &ctx.ids[0], settings);
            }
            Ok(cash_balance(ctx, &ctx.ids[0]))
        })
    }
}

/// A customer's cash balance.
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

fn available(ctx: &Ctx, customer: &str, currency: &str) -> i64 {
    cash_balance(ctx, customer)["available"][currency]
        .as_i64()
        .unwrap_or(0)
}

/// Adds `amount` (negative: takes it) to the balance in `currency`; answers the new balance.
fn add_available(ctx: &Ctx, customer: &str, currency: &str, amount: i64) -> i64 {
    let mut cash = cash_balance(ctx, customer);
    let ending = cash["available"][currency].as_i64().unwrap_or(0) + amount;
    cash["available"][currency] = json!(ending);
    ctx.store().set_private(customer, "cash_balance", cash);
    ending
}

/// The bank transfer scheme that funds a balance in `currency` (API reference, the cash
/// balance transaction's `funded.bank_transfer.type`; bank transfers take these five
/// currencies, docs.stripe.com/payments/bank-transfers). None for any other currency.
fn scheme(currency: &str) -> Option<&'static str> {
    match currency {
        "eur" => Some("eu_bank_transfer"),
        "gbp" => Some("gb_bank_transfer"),
        "jpy" => Some("jp_bank_transfer"),
        "mxn" => Some("mx_bank_transfer"),
        "usd" => Some("us_bank_transfer"),
        _ => None,
    }
}

/// The code a customer quotes with a transfer (Stripe's are 12 capitals and digits).
fn new_reference() -> String {
    crate::secret::random_alnum(12).to_ascii_uppercase()
}

/// Whether `pm` pays from the customer's cash balance.
pub fn pays_from_balance(pm: &Value) -> bool {
    pm["type"] == "customer_balance"
}

/// The payment method `payment_method_data[type]=customer_balance` makes: Stripe creates a
/// `pm_` of that type for the intent (it has no fields of its own).
pub fn payment_method(ctx: &Ctx, data: &Value) -> ApiResult<Value> {
    let mut pm = ctx.fresh("payment_method");
    pm["type"] = json!("customer_balance");
    pm["customer_balance"] = json!({});
    if let Some(b) = data.get("billing_details").filter(|b| b.is_object()) {
        pm["billing_details"] = ctx.shaped("payment_method", "billing_details", b);
    }
    ctx.put(&pm);
    Ok(pm)
}

/// Confirms an intent paid from the customer's balance: what the balance holds is applied; a
/// shortfall leaves it `requires_action` with the transfer instructions. A customer is needed:
/// "a Customer is required to use the customer_balance payment method" (the bank transfers
/// guide: "Create or retrieve a Customer", as the balance is the customer's).
pub fn confirm(ctx: &Ctx, mut pi: Value, pm: &Value) -> ApiResult<Value> {
    let Some(customer) = pi["customer"].as_str().map(str::to_owned) else {
        return Err(ApiError::invalid(
            "parameter_missing",
            Some("customer"),
            "A customer is required to use the customer_balance payment method. Provide `customer` when creating the PaymentIntent.",
        ));
    };
    let options = &pi["payment_method_options"]["customer_balance"];
    if options["funding_type"] != "bank_transfer" {
        return Err(ApiError::invalid(
            "parameter_missing",
            Some("payment_method_options[customer_balance][funding_type]"),
            "The customer_balance payment method requires payment_method_options[customer_balance][funding_type]=bank_transfer.",
        ));
    }
    let currency = pi["currency"].as_str().unwrap_or("usd").to_owned();
    let kind = options["bank_transfer"]["type"]
        .as_str()
        .or(scheme(&currency))
        .unwrap_or("us_bank_transfer")
        .to_owned();
    // Confirmed again while waiting, it keeps what was already applied and its reference.
    let before = &pi["next_action"]["display_bank_transfer_instructions"];
    let left = before["amount_remaining"]
        .as_i64()
        .or(pi["amount"].as_i64())
        .unwrap_or(0);
    let reference = before["reference"]
        .as_str()
        .map_or_else(new_reference, str::to_owned);
    pi["payment_method"] = pm["id"].clone();
    pi["status"] = json!("requires_action");
    pi["next_action"] = json!({"type": "display_bank_transfer_instructions",
        "display_bank_transfer_instructions": {"amount_remaining": left, "currency": currency,
            // No hosted instructions page in the sandbox; no bank account to send money to
            // (`financial_addresses` is optional in stripe-node's type, so it is left out).
            "hosted_instructions_url": null, "reference": reference, "type": kind}});
    ctx.put(&pi);
    if available(ctx, &customer, &currency) < left {
        ctx.emit("payment_intent.requires_action", &pi, None);
    }
    apply(ctx, &customer, &currency, None)?;
    ctx.get("payment_intent", pi["id"].as_str().unwrap_or_default())
}

/// What an open intent still needs, if it waits for the customer's funds in `currency`.
fn remaining(pi: &Value, customer: &str, currency: &str) -> Option<i64> {
    let instructions = &pi["next_action"]["display_bank_transfer_instructions"];
    (pi["status"] == "requires_action"
        && pi["customer"] == customer
        && pi["currency"] == currency
        && pi["next_action"]["type"] == "display_bank_transfer_instructions")
        .then(|| instructions["amount_remaining"].as_i64())
        .flatten()
}

/// A transfer that just arrived: the reference the customer quoted and its amount.
struct Transfer<'a> {
    reference: &'a str,
    amount: i64,
}

/// Applies the customer's available funds in `currency` to their open intents: those a new
/// transfer names first, then the oldest first, each as far as the funds go. Nothing when the
/// customer's balance is reconciled by hand ("When manual reconciliation is enabled on a
/// customer, Stripe does not automatically apply any funds from the customer balance",
/// docs.stripe.com/payments/customer-balance/reconciliation).
fn apply(ctx: &Ctx, customer: &str, currency: &str, transfer: Option<Transfer>) -> ApiResult<()> {
    if cash_balance(ctx, customer)["settings"]["reconciliation_mode"] == "manual" {
        return Ok(());
    }
    let open = ctx.store().all("payment_intent", &|pi| {
        remaining(pi, customer, currency).is_some()
    });
    let open = match transfer {
        Some(t) => named_first(open, customer, currency, &t),
        None => open,
    };
    for pi in open {
        let left = remaining(&pi, customer, currency).unwrap_or(0);
        let applied = left.min(available(ctx, customer, currency));
        if applied < 1 {
            break;
        }
        apply_to(ctx, pi, applied)?;
    }
    Ok(())
}

/// Applies `amount` of its customer's balance to an open intent: an `applied_to_payment`
/// transaction, then `payment_intent.partially_funded`, or the payment when nothing is left.
/// Answers the intent.
fn apply_to(ctx: &Ctx, mut pi: Value, amount: i64) -> ApiResult<Value> {
    let customer = pi["customer"].as_str().unwrap_or_default().to_owned();
    let currency = pi["currency"].as_str().unwrap_or_default().to_owned();
    let left = remaining(&pi, &customer, &currency).unwrap_or(0);
    let ending = add_available(ctx, &customer, &currency, -amount);
    let txn = transaction(
        ctx,
        &customer,
        &currency,
        "applied_to_payment",
        -amount,
        ending,
        &pi["id"],
    );
    ctx.emit("customer_cash_balance_transaction.created", &txn, None);
    if amount < left {
        pi["next_action"]["display_bank_transfer_instructions"]["amount_remaining"] =
            json!(left - amount);
        ctx.put(&pi);
        ctx.emit("payment_intent.partially_funded", &pi, None);
        return Ok(pi);
    }
    pi["next_action"] = Value::Null;
    let id = pi["id"].as_str().unwrap_or_default().to_owned();
    payments::pay_from_balance(ctx, pi)?;
    ctx.get("payment_intent", &id)
}

/// A canceled intent's funds go back to its customer's balance: an `unapplied_from_payment`
/// transaction ("The Payment Intent that funds were unapplied from", stripe-node's
/// `CustomerCashBalanceTransaction.UnappliedFromPayment`), after `payment_intent.canceled`, and
/// then, the funds being available again, `cash_balance.funds_available`. `before` is the intent
/// as it was before its cancellation; nothing when it had no funds applied.
pub fn unapply(ctx: &Ctx, before: &Value) {
    let customer = before["customer"].as_str().unwrap_or_default().to_owned();
    let currency = before["currency"].as_str().unwrap_or_default().to_owned();
    let Some(left) = remaining(before, &customer, &currency) else {
        return;
    };
    let applied = before["amount"].as_i64().unwrap_or(0) - left;
    if applied < 1 {
        return;
    }
    let ending = add_available(ctx, &customer, &currency, applied);
    let txn = transaction(
        ctx,
        &customer,
        &currency,
        "unapplied_from_payment",
        applied,
        ending,
        &before["id"],
    );
    ctx.emit("customer_cash_balance_transaction.created", &txn, None);
    ctx.emit(
        "cash_balance.funds_available",
        &cash_balance(ctx, &customer),
        None,
    );
}

/// A stored cash balance transaction of `kind` (`applied_to_payment`, `unapplied_from_payment`)
/// concerning the intent `pi`: `net` moved, `ending` left.
fn transaction(
    ctx: &Ctx,
    customer: &str,
    currency: &str,
    kind: &str,
    net: i64,
    ending: i64,
    pi: &Value,
) -> Value {
    let mut txn = ctx.fresh("customer_cash_balance_transaction");
    if let Some(t) = txn.as_object_mut() {
        t.shift_remove("funded");
    }
    txn["customer"] = json!(customer);
    txn["currency"] = json!(currency);
    txn["type"] = json!(kind);
    txn["net_amount"] = json!(net);
    txn["ending_balance"] = json!(ending);
    txn[kind] = ctx.shaped(
        "customer_cash_balance_transaction",
        kind,
        &json!({"payment_intent": pi}),
    );
    ctx.put(&txn);
    txn
}

/// `POST /v1/payment_intents/{id}/apply_customer_balance` (stripe-node's
/// `paymentIntents.applyCustomerBalance`): "Manually reconcile the remaining amount for a
/// customer_balance PaymentIntent"; `amount` "defaults to the remaining amount requested on the
/// PaymentIntent" (API reference). The intent must be waiting for funds, and the balance hold
/// the amount.
pub fn apply_customer_balance(ctx: &Ctx) -> ApiResult<Value> {
    let pi = ctx.target()?;
    let customer = pi["customer"].as_str().unwrap_or_default().to_owned();
    let currency = pi["currency"].as_str().unwrap_or_default().to_owned();
    let Some(left) = remaining(&pi, &customer, &currency) else {
        return Err(ApiError::state(
            "payment_intent_unexpected_state",
            &format!(
                "This PaymentIntent's status is {}: only a customer_balance PaymentIntent awaiting funds (requires_action with display_bank_transfer_instructions) can have a cash balance applied.",
                pi["status"].as_str().unwrap_or_default()
            ),
        )
        .with("payment_intent", pi));
    };
    if let Some(c) = ctx.str_param("currency").filter(|c| *c != currency) {
        return Err(ApiError::bad_param(
            "currency",
            &format!("Invalid currency: {c}. This PaymentIntent is in {currency}."),
        ));
    }
    let amount = ctx.amount_up_to(left, "parameter_invalid_integer", |amount| {
        format!(
            "The amount ({amount}) must be between 1 and the amount remaining on this PaymentIntent ({left})."
        )
    })?;
    let available = available(ctx, &customer, &currency);
    if amount > available {
        return Err(ApiError::invalid(
            "balance_insufficient",
            Some("amount"),
            &format!(
                "The customer's cash balance holds {available} {currency}, less than {amount}."
            ),
        ));
    }
    apply_to(ctx, pi, amount)
}

/// `settings[reconciliation_mode]` of a cash balance (also a customer's create or update
/// `cash_balance[settings]`): `automatic`, `manual`, or `merchant_default` (the account's,
/// automatic in the sandbox: `using_merchant_default`).
pub fn set_reconciliation(ctx: &Ctx, customer: &str, settings: &Value) {
    let Some(mode) = settings["reconciliation_mode"].as_str() else {
        return;
    };
    let mut cash = cash_balance(ctx, customer);
    let merchant = mode == "merchant_default";
    cash["settings"]["reconciliation_mode"] = json!(if merchant { "automatic" } else { mode });
    cash["settings"]["using_merchant_default"] = json!(merchant);
    ctx.store().set_private(customer, "cash_balance", cash);
}

/// The open intents (oldest first) in the order Stripe's automatic reconciliation funds them
/// from a new transfer (docs.stripe.com/payments/customer-balance/reconciliation): the one
/// whose reference the transfer quotes ("a unique transfer reference number that your customer
/// can include with each transfer to match the transfer against outstanding payments", the bank
/// transfers guide); else the smallest group of one to five waiting for exactly the amount
/// sent, the one with the oldest intents among equals ("We try to find a group of between one
/// and five invoices and PaymentIntents that are waiting for the exact amount sent by the
/// user"); then the others, oldest first ("If the customer sends too little, Stripe partially
/// funds an open Payment Intent"). The sandbox has no invoices awaiting funds, so the rule's
/// preference for invoices does not arise.
fn named_first(open: Vec<Value>, customer: &str, currency: &str, t: &Transfer) -> Vec<Value> {
    let left = |pi: &Value| remaining(pi, customer, currency).unwrap_or(0);
    let quoted = open.iter().position(|pi| {
        !t.reference.is_empty()
            && pi["next_action"]["display_bank_transfer_instructions"]["reference"] == t.reference
    });
    let first: Vec<usize> = match quoted {
        Some(i) => vec![i],
        None => {
            let oldest: Vec<i64> = open.iter().take(GROUP_AMONG).map(left).collect();
            exact_group(&oldest, t.amount)
        }
    };
    let mut ordered: Vec<Value> = first.iter().map(|&i| open[i].clone()).collect();
    ordered.extend(
        open.into_iter()
            .enumerate()
            .filter(|(i, _)| !first.contains(i))
            .map(|(_, pi)| pi),
    );
    ordered
}

/// Reconciliation looks at groups of at most five intents.
const GROUP: usize = 5;

/// The sandbox looks for an exact group among the oldest 25 open intents only, so that one
/// customer's many open intents cannot make a call slow (at most 53,130 groups of five).
const GROUP_AMONG: usize = 25;

/// The indexes of the smallest group of at most five amounts (by age: index order) that add up
/// to `amount`, the oldest such group among the smallest; none when no group does.
fn exact_group(amounts: &[i64], amount: i64) -> Vec<usize> {
    fn search(
        amounts: &[i64],
        from: usize,
        size: usize,
        want: i64,
        picked: &mut Vec<usize>,
    ) -> bool {
        if picked.len() == size {
            return want == 0;
        }
        for i in from..amounts.len() {
            picked.push(i);
            if amounts[i] <= want && search(amounts, i + 1, size, want - amounts[i], picked) {
                return true;
            }
            picked.pop();
        }
        false
    }
    for size in 1..=GROUP.min(amounts.len()) {
        let mut picked = Vec::new();
        if search(amounts, 0, size, amount, &mut picked) {
            return picked;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_oldest_group_waiting_for_the_exact_amount_is_funded_first() {
        assert_eq!(exact_group(&[500, 300, 200, 300], 300), vec![1]);
        assert_eq!(exact_group(&[500, 300, 200, 100], 600), vec![0, 3]);
        assert_eq!(exact_group(&[100, 200, 300], 600), vec![0, 1, 2]);
        assert_eq!(exact_group(&[100, 200, 300], 50), Vec::<usize>::new());
        assert_eq!(exact_group(&[1; 6], 6), Vec::<usize>::new(), "at most five");
    }
}
