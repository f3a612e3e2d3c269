//! Money between the platform and its connected accounts, in Stripe's three shapes
//! (docs.stripe.com/connect/charges), every movement a balance transaction of the account it
//! moves (ledger.rs), so that each account's balance adds up:
//!
//! - **Destination charges** (`transfer_data[destination]` on a payment intent or a Checkout
//!   Session's `payment_intent_data`, docs.stripe.com/connect/destination-charges): the charge is
//!   the platform's (`charge`, less Stripe's fee), and its funds go at once to the connected
//!   account's pending balance: a `transfer` of the whole amount (or `transfer_data[amount]`),
//!   which makes a payment (`py_…`) there. With `application_fee_amount`, "the full charge amount
//!   is added to the connected account's pending balance", the fee "is subtracted from the
//!   charge amount and is transferred to your platform", and "Stripe fees are subtracted from
//!   your platform account's balance": the payment's fee is the application fee, and the
//!   platform gets an application fee (`fee_…`, `application_fee.created`) and its
//!   `application_fee` balance transaction. $10.00 with a $1.23 fee: the connected account nets
//!   $8.77, the platform $1.23 - $0.59 = $0.64.
//! - **Direct charges** (`Stripe-Account`, docs.stripe.com/connect/direct-charges): the charge
//!   is the connected account's (its events carry `account`); `application_fee_amount` is part
//!   of the charge's fee there, and the platform's application fee.
//! - **Separate charges and transfers** (docs.stripe.com/connect/separate-charges-and-transfers):
//!   `POST /v1/transfers` from the platform's available balance into the connected account's;
//!   a reversal takes it back (`transfer_refund` on the platform, `payment_refund` there).
//!
//! Refunds: `reverse_transfer` reverses the transfer and `refund_application_fee` refunds the
//! fee, in proportion to the amount refunded (the API reference, Create a refund).
//! `POST /v1/application_fees/{id}/refunds`: the fee goes back to the connected account
//! (`application_fee.refunded`).

use serde_json::{Value, json};

use super::accounts;
use super::ledger::{self, Fee, Movement};
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx, Scope, apply};

/// The platform's Connect application (`ca_…`), named after its account.
pub fn application_id(ctx: &Ctx) -> String {
    format!(
        "ca_{}",
        ctx.shared.stripe.account_id().trim_start_matches("acct_")
    )
}

/// The bank account a payout of `ctx`'s account goes to (a connected account's default).
pub fn payout_destination(ctx: &Ctx) -> Option<String> {
    let account = ctx
        .shared
        .stripe
        .objects
        .platform()
        .get_of("account", ctx.account()?)?;
    account["external_accounts"]["data"][0]["id"]
        .as_str()
        .map(str::to_owned)
}

/// The connected account a destination parameter names, able to receive transfers.
/// "No such destination" for none of the platform's accounts; for an account whose platform
/// bears its losses (Express, Custom), Stripe's refusal until its `transfers` capability is
/// active. (The Stripe CLI's transfer fixtures pay a Standard account created a moment
/// before, so one that Stripe onboards and holds liable is not refused here.)
pub fn check_destination(ctx: &Ctx, id: &str, param: &str) -> ApiResult<Value> {
    if ctx.account().is_some() {
        return Err(ApiError::request(&format!(
            "You cannot use `{param}` on behalf of a connected account: only the platform pays its connected accounts."
        )));
    }
    let account = ctx
        .shared
        .stripe
        .objects
        .platform()
        .get_of("account", id)
        .filter(|a| a["deleted"] != true)
        .ok_or_else(|| ApiError::no_such("destination", id, param))?;
    let liable = account["controller"]["losses"]["payments"] == "application";
    if liable && account["capabilities"]["transfers"] != "active" {
        return Err(ApiError::invalid(
            "insufficient_capabilities_for_transfer",
            Some(param),
            "Your destination account needs to have at least one of the following capabilities enabled: transfers, crypto_transfers, legacy_payments",
        ));
    }
    Ok(account)
}

/// A payment intent's Connect parameters: a destination the platform may pay, and an
/// application fee only where there is someone to take it from.
pub fn check_intent(ctx: &Ctx, pi: &Value) -> ApiResult<()> {
    check_intent_data(ctx, pi, "")
}

/// The same for a Checkout Session's `payment_intent_data` (`prefix` names it in errors).
pub fn check_intent_data(ctx: &Ctx, data: &Value, prefix: &str) -> ApiResult<()> {
    // `transfer_data[destination]` within `payment_intent_data`:
    // `payment_intent_data[transfer_data][destination]`.
    let name = |p: &str| match (prefix.is_empty(), p.split_once('[')) {
        (true, _) => p.to_owned(),
        (false, Some((head, rest))) => format!("{prefix}[{head}][{rest}"),
        (false, None) => format!("{prefix}[{p}]"),
    };
    let amount = data["amount"].as_i64();
    let destination = data["transfer_data"]["destination"].as_str();
    if let Some(d) = destination {
        check_destination(ctx, d, &name("transfer_data[destination]"))?;
    }
    if let Some(on_behalf_of) = data["on_behalf_of"].as_str()
        && !accounts::is_connected(ctx, on_behalf_of)
    {
        return Err(ApiError::no_such(
            "account",
            on_behalf_of,
            &name("on_behalf_of"),
        ));
    }
    if let Some(fee) = data["application_fee_amount"].as_i64() {
        if destination.is_none() && ctx.account().is_none() {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                Some(&name("application_fee_amount")),
                "Can only apply an application_fee_amount when the PaymentIntent is attempting a direct payment (using an OAuth key or Stripe-Account header) or destination payment (using `transfer_data[destination]`).",
            ));
        }
        if amount.is_some_and(|a| fee > a) {
            return Err(ApiError::invalid(
                "parameter_invalid_integer",
                Some(&name("application_fee_amount")),
                "The application fee amount cannot be greater than the amount of the payment.",
            ));
        }
    }
    if let (Some(part), Some(a)) = (data["transfer_data"]["amount"].as_i64(), amount)
        && part > a
    {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            Some(&name("transfer_data[amount]")),
            "The amount to transfer cannot be greater than the amount of the payment.",
        ));
    }
    Ok(())
}

/// The fees of a charge of `amount` for `pi` in `ctx`'s account: Stripe's, and on a direct
/// charge with `application_fee_amount`, the platform's.
pub fn charge_fees(ctx: &Ctx, pi: &Value, amount: i64) -> Vec<Fee> {
    let mut fees = vec![Fee {
        kind: "stripe_fee",
        amount: ledger::stripe_fee(amount),
        description: "Stripe processing fees",
        application: None,
    }];
    if let (Some(_), Some(fee)) = (ctx.account(), pi["application_fee_amount"].as_i64()) {
        fees.push(Fee {
            kind: "application_fee",
            amount: fee,
            description: "Application fee",
            application: Some(application_id(ctx)),
        });
    }
    fees
}

/// Before `charge.succeeded`: the Connect fields of the charge, with the ids of the transfer
/// and application fee its success makes (`complete` makes them).
pub fn prepare(ctx: &Ctx, pi: &Value, charge: &mut Value) {
    for key in [
        "application_fee_amount",
        "on_behalf_of",
        "transfer_data",
        "transfer_group",
    ] {
        charge[key] = pi[key].clone();
    }
    // The charge's `transfer_data` always says `amount` (stripe-node's Charge.TransferData):
    // null when the whole charge goes to the destination.
    if let Some(destination) = pi["transfer_data"]["destination"].as_str() {
        charge["transfer_data"] =
            json!({"amount": pi["transfer_data"]["amount"], "destination": destination});
    }
    let destination = pi["transfer_data"]["destination"].is_string();
    if destination && charge["transfer_group"].is_null() {
        // Stripe groups a destination charge and its transfer by the intent.
        charge["transfer_group"] = json!(format!("group_{}", pi["id"].as_str().unwrap_or("")));
    }
    if destination {
        charge["transfer"] = json!(crate::sandbox::stripe::engine::ops::new_id(Some("tr")));
    }
    let fee_taken =
        pi["application_fee_amount"].is_i64() && (destination || ctx.account().is_some());
    if fee_taken {
        charge["application_fee"] = json!(crate::sandbox::stripe::engine::ops::new_id(Some("fee")));
        charge["application"] = json!(application_id(ctx));
    }
}

/// After the intent's success: a destination charge's transfer and the payment it makes, and
/// the platform's application fee.
pub fn complete(ctx: &Ctx, pi: &Value, charge: &Value) {
    let amount = charge["amount_captured"].as_i64().unwrap_or(0);
    let currency = charge["currency"].as_str().unwrap_or("usd").to_owned();
    let fee = pi["application_fee_amount"].as_i64();
    let available_on = ctx
        .store()
        .get_of(
            "balance_transaction",
            charge["balance_transaction"].as_str().unwrap_or_default(),
        )
        .and_then(|t| t["available_on"].as_i64())
        .unwrap_or_else(|| ctx.now());
    if let (Some(destination), Some(tr)) = (
        pi["transfer_data"]["destination"].as_str(),
        charge["transfer"].as_str(),
    ) {
        let sent = pi["transfer_data"]["amount"].as_i64().unwrap_or(amount);
        let mut transfer = ctx.fresh("transfer");
        transfer["id"] = json!(tr);
        transfer["reversals"]["url"] = json!(format!("/v1/transfers/{tr}/reversals"));
        transfer["amount"] = json!(sent);
        transfer["currency"] = json!(currency);
        transfer["destination"] = json!(destination);
        transfer["source_transaction"] = charge["id"].clone();
        transfer["transfer_group"] = charge["transfer_group"].clone();
        // With transfer_data[amount] no application fee is made: the platform keeps the rest.
        let payment_fee = if pi["transfer_data"]["amount"].is_i64() {
            None
        } else {
            fee
        };
        let payment = book_transfer_with_fee(ctx, &mut transfer, available_on, payment_fee);
        ctx.put(&transfer);
        ctx.emit("transfer.created", &transfer, None);
        if let (Some(fee), Some(id)) = (payment_fee, charge["application_fee"].as_str()) {
            let source = json!({"charge": payment, "type": "charge"});
            application_fee(
                ctx,
                id,
                destination,
                fee,
                &currency,
                &payment,
                Some(charge),
                source,
                available_on,
            );
        }
        return;
    }
    if let (Some(account), Some(fee), Some(id)) =
        (ctx.account(), fee, charge["application_fee"].as_str())
    {
        let platform = ctx.within(Scope::Platform);
        let charge_id = charge["id"].as_str().unwrap_or_default().to_owned();
        let source = json!({"charge": charge_id, "type": "charge"});
        application_fee(
            &platform,
            id,
            account,
            fee,
            &currency,
            &charge_id,
            None,
            source,
            available_on,
        );
    }
}

/// The platform's application fee `id` of `amount`, taken from `account`'s payment `charge`
/// (`originating`: the platform's own charge, for a destination charge):
/// `application_fee.created`, and its balance transaction on the platform.
#[allow(clippy::too_many_arguments)]
fn application_fee(
    platform: &Ctx,
    id: &str,
    account: &str,
    amount: i64,
    currency: &str,
    charge: &str,
    originating: Option<&Value>,
    source: Value,
    available_on: i64,
) {
    let mut fee = platform.fresh("application_fee");
    fee["id"] = json!(id);
    fee["refunds"]["url"] = json!(format!("/v1/application_fees/{id}/refunds"));
    let txn = ledger::record(
        platform,
        Movement {
            kind: "application_fee",
            amount,
            currency,
            fees: Vec::new(),
            source: id,
            description: None,
            available_on,
        },
    );
    fee["account"] = json!(account);
    fee["amount"] = json!(amount);
    fee["currency"] = json!(currency);
    fee["application"] = json!(application_id(platform));
    fee["balance_transaction"] = txn["id"].clone();
    fee["charge"] = json!(charge);
    fee["originating_transaction"] = originating.map_or(Value::Null, |c| c["id"].clone());
    fee["fee_source"] = source;
    platform.put(&fee);
    platform.emit("application_fee.created", &fee, None);
}

/// A transfer from the platform (`ctx`): its `transfer` balance transaction there, and the
/// payment it makes in the destination account; both move funds that become available at
/// `available_on` (now for a transfer of available funds, the charge's day for a destination
/// charge's). Sets `balance_transaction` and `destination_payment`.
pub fn book_transfer(ctx: &Ctx, transfer: &mut Value, available_on: i64) {
    book_transfer_with_fee(ctx, transfer, available_on, None);
}

/// As `book_transfer`, the payment carrying the platform's application fee (a destination
/// charge's); answers the payment's id.
fn book_transfer_with_fee(
    ctx: &Ctx,
    transfer: &mut Value,
    available_on: i64,
    application_fee: Option<i64>,
) -> String {
    let amount = transfer["amount"].as_i64().unwrap_or(0);
    let currency = transfer["currency"].as_str().unwrap_or("usd").to_owned();
    let id = transfer["id"].as_str().unwrap_or_default().to_owned();
    let destination = transfer["destination"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let txn = ledger::record(
        ctx,
        Movement {
            kind: "transfer",
            amount: -amount,
            currency: &currency,
            fees: Vec::new(),
            source: &id,
            description: None,
            available_on,
        },
    );
    transfer["balance_transaction"] = txn["id"].clone();
    let there = ctx.within(Scope::Connected(destination));
    let mut payment = there.fresh("charge");
    let payment_id = format!("py_{}", crate::secret::random_alnum(24));
    payment["id"] = json!(payment_id);
    payment["refunds"]["url"] = json!(format!("/v1/charges/{payment_id}/refunds"));
    for (key, value) in [
        ("amount", json!(amount)),
        ("amount_captured", json!(amount)),
        ("currency", json!(currency)),
        ("captured", json!(true)),
        ("paid", json!(true)),
        ("status", json!("succeeded")),
        ("source_transfer", json!(id)),
        ("application", json!(application_id(ctx))),
        ("application_fee_amount", json!(application_fee)),
    ] {
        payment[key] = value;
    }
    payment["billing_details"] = there.shaped("charge", "billing_details", &json!({}));
    payment["payment_method_details"] = there.shaped(
        "charge",
        "payment_method_details",
        &json!({"type": "stripe_account", "stripe_account": {}}),
    );
    let fees = application_fee
        .map(|fee| Fee {
            kind: "application_fee",
            amount: fee,
            description: "Application fee",
            application: Some(application_id(ctx)),
        })
        .into_iter()
        .collect();
    let txn = ledger::record(
        &there,
        Movement {
            kind: "payment",
            amount,
            currency: &currency,
            fees,
            source: &payment_id,
            description: None,
            available_on,
        },
    );
    payment["balance_transaction"] = txn["id"].clone();
    there.put(&payment);
    transfer["destination_payment"] = json!(payment_id);
    payment_id
}

/// A transfer reversal's money: back to the platform (`transfer_refund`), out of the connected
/// account (`payment_refund`, a refund of the transfer's payment). Sets `balance_transaction`
/// and `destination_payment_refund`.
pub fn book_reversal(ctx: &Ctx, transfer: &Value, reversal: &mut Value) {
    let amount = reversal["amount"].as_i64().unwrap_or(0);
    let currency = reversal["currency"].as_str().unwrap_or("usd").to_owned();
    let id = reversal["id"].as_str().unwrap_or_default().to_owned();
    let txn = ledger::record(
        ctx,
        Movement {
            kind: "transfer_refund",
            amount,
            currency: &currency,
            fees: Vec::new(),
            source: &id,
            description: None,
            available_on: ctx.now(),
        },
    );
    reversal["balance_transaction"] = txn["id"].clone();
    let (Some(destination), Some(payment_id)) = (
        transfer["destination"].as_str(),
        transfer["destination_payment"].as_str(),
    ) else {
        return;
    };
    let there = ctx.within(Scope::Connected(destination.to_owned()));
    let Some(mut payment) = there.store().get_of("charge", payment_id) else {
        return;
    };
    let mut refund = there.fresh("refund");
    let refund_id = format!("pyr_{}", crate::secret::random_alnum(24));
    refund["id"] = json!(refund_id);
    let txn = ledger::record(
        &there,
        Movement {
            kind: "payment_refund",
            amount: -amount,
            currency: &currency,
            fees: Vec::new(),
            source: &refund_id,
            description: None,
            available_on: there.now(),
        },
    );
    refund["amount"] = json!(amount);
    refund["currency"] = json!(currency);
    refund["charge"] = json!(payment_id);
    refund["status"] = json!("succeeded");
    refund["balance_transaction"] = txn["id"].clone();
    there.put(&refund);
    let refunded = payment["amount_refunded"].as_i64().unwrap_or(0) + amount;
    payment["amount_refunded"] = json!(refunded);
    payment["refunded"] = json!(refunded == payment["amount"].as_i64().unwrap_or(0));
    there.put(&payment);
    reversal["destination_payment_refund"] = json!(refund_id);
}

/// After a reversal is stored: the transfer's `amount_reversed`, `reversed`, its list, and
/// `transfer.reversed`.
pub fn reversed(ctx: &Ctx, transfer_id: &str, reversal: &Value) -> ApiResult<()> {
    let before = ctx.get("transfer", transfer_id)?;
    let mut transfer = before.clone();
    let amount = reversal["amount"].as_i64().unwrap_or(0);
    let total = transfer["amount_reversed"].as_i64().unwrap_or(0) + amount;
    transfer["amount_reversed"] = json!(total);
    transfer["reversed"] = json!(total == transfer["amount"].as_i64().unwrap_or(0));
    if let Some(list) = transfer["reversals"]["data"].as_array_mut() {
        list.insert(0, reversal.clone());
    }
    ctx.put(&transfer);
    let previous = apply::previous_attributes(&before, &transfer);
    ctx.emit("transfer.reversed", &transfer, Some(previous));
    Ok(())
}

/// A refund's money and its Connect side, before the refund is stored: the account's `refund`
/// balance transaction, and for a destination charge with `reverse_transfer` the id of the
/// reversal (`refunded` makes it).
pub fn book_refund(ctx: &Ctx, refund: &mut Value, charge: &Value) {
    let amount = refund["amount"].as_i64().unwrap_or(0);
    let currency = refund["currency"].as_str().unwrap_or("usd").to_owned();
    let id = refund["id"].as_str().unwrap_or_default().to_owned();
    let txn = ledger::record(
        ctx,
        Movement {
            kind: "refund",
            amount: -amount,
            currency: &currency,
            fees: Vec::new(),
            source: &id,
            description: None,
            available_on: ctx.now(),
        },
    );
    refund["balance_transaction"] = txn["id"].clone();
    if ctx.bool_param("reverse_transfer") && charge["transfer"].is_string() {
        refund["transfer_reversal"] =
            json!(crate::sandbox::stripe::engine::ops::new_id(Some("trr")));
    }
}

/// After a refund: its transfer reversal and application fee refund, in proportion.
pub fn refunded(ctx: &Ctx, refund: &Value, charge: &Value) -> ApiResult<()> {
    let amount = refund["amount"].as_i64().unwrap_or(0);
    let charged = charge["amount"].as_i64().unwrap_or(0).max(1);
    if let (Some(reversal_id), Some(transfer_id)) = (
        refund["transfer_reversal"].as_str(),
        charge["transfer"].as_str(),
    ) {
        let transfer = ctx.get("transfer", transfer_id)?;
        let left = transfer["amount"].as_i64().unwrap_or(0)
            - transfer["amount_reversed"].as_i64().unwrap_or(0);
        let share = (transfer["amount"].as_i64().unwrap_or(0) * amount / charged).min(left);
        if share > 0 {
            let mut reversal = ctx.fresh("transfer_reversal");
            reversal["id"] = json!(reversal_id);
            reversal["amount"] = json!(share);
            reversal["currency"] = transfer["currency"].clone();
            reversal["transfer"] = json!(transfer_id);
            reversal["source_refund"] = refund["id"].clone();
            book_reversal(ctx, &transfer, &mut reversal);
            ctx.put(&reversal);
            reversed(ctx, transfer_id, &reversal)?;
        }
    }
    if ctx.bool_param("refund_application_fee")
        && let Some(fee_id) = charge["application_fee"].as_str()
    {
        let platform = ctx.within(Scope::Platform);
        let fee = platform.get("application_fee", fee_id)?;
        let left =
            fee["amount"].as_i64().unwrap_or(0) - fee["amount_refunded"].as_i64().unwrap_or(0);
        let share = (fee["amount"].as_i64().unwrap_or(0) * amount / charged).min(left);
        if share > 0 {
            let mut fr = platform.fresh("fee_refund");
            refund_fee(&platform, &fee, &mut fr, share);
            platform.put(&fr);
            fee_refunded(&platform, fee_id, &fr)?;
        }
    }
    Ok(())
}

/// A refund of (part of) an application fee: off the platform's balance
/// (`application_fee_refund`), back into the connected account's.
fn refund_fee(platform: &Ctx, fee: &Value, fr: &mut Value, amount: i64) {
    let currency = fee["currency"].as_str().unwrap_or("usd").to_owned();
    let id = fr["id"].as_str().unwrap_or_default().to_owned();
    let txn = ledger::record(
        platform,
        Movement {
            kind: "application_fee_refund",
            amount: -amount,
            currency: &currency,
            fees: Vec::new(),
            source: &id,
            description: None,
            available_on: platform.now(),
        },
    );
    fr["amount"] = json!(amount);
    fr["currency"] = json!(currency);
    fr["fee"] = fee["id"].clone();
    fr["balance_transaction"] = txn["id"].clone();
    if let Some(account) = fee["account"].as_str() {
        let there = platform.within(Scope::Connected(account.to_owned()));
        ledger::record(
            &there,
            Movement {
                kind: "application_fee_refund",
                amount,
                currency: &currency,
                fees: Vec::new(),
                source: &id,
                description: None,
                available_on: there.now(),
            },
        );
    }
}

/// After a fee refund is stored: the fee's `amount_refunded`, `refunded`, its list, and
/// `application_fee.refunded`.
fn fee_refunded(platform: &Ctx, fee_id: &str, fr: &Value) -> ApiResult<()> {
    let before = platform.get("application_fee", fee_id)?;
    let mut fee = before.clone();
    let total = fee["amount_refunded"].as_i64().unwrap_or(0) + fr["amount"].as_i64().unwrap_or(0);
    fee["amount_refunded"] = json!(total);
    fee["refunded"] = json!(total == fee["amount"].as_i64().unwrap_or(0));
    if let Some(list) = fee["refunds"]["data"].as_array_mut() {
        list.insert(0, fr.clone());
    }
    platform.put(&fee);
    let previous = apply::previous_attributes(&before, &fee);
    platform.emit("application_fee.refunded", &fee, Some(previous));
    Ok(())
}

pub struct ApplicationFees;

impl Behaviour for ApplicationFees {
    fn object(&self) -> &'static str {
        "application_fee"
    }
}

/// `POST /v1/application_fees/{id}/refunds` (all that is left by default).
pub struct FeeRefunds;

impl Behaviour for FeeRefunds {
    fn object(&self) -> &'static str {
        "fee_refund"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &["amount"]
    }
    fn create(&self, ctx: &Ctx, fr: &mut Value) -> ApiResult<()> {
        let fee = ctx.get("application_fee", &ctx.ids[0])?;
        let left =
            fee["amount"].as_i64().unwrap_or(0) - fee["amount_refunded"].as_i64().unwrap_or(0);
        let amount = ctx.amount_up_to(left, "parameter_invalid_integer", |amount| {
            format!(
                "Refund amount ({amount}) is greater than the unrefunded amount of the application fee ({left})."
            )
        })?;
        refund_fee(ctx, &fee, fr, amount);
        Ok(())
    }
    fn created(&self, ctx: &Ctx, fr: &mut Value) -> ApiResult<()> {
        fee_refunded(ctx, &ctx.ids[0], fr)
    }
}

/// The balance transactions of `ctx`'s account (`GET /v1/balance_transactions`, `…/{id}`);
/// the generic list filters `type`, `currency`, `source`.
pub struct BalanceTransactions;

impl Behaviour for BalanceTransactions {
    fn object(&self) -> &'static str {
        "balance_transaction"
    }
}
