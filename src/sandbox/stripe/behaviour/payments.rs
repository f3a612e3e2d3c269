//! Payment intents and what paying one makes: charges, refunds, disputes. The events, in the
//! order Stripe emits them (docs.stripe.com/payments/payment-intents/verifying-status):
//!
//! - paid: `payment_intent.created`, `charge.succeeded`, `payment_intent.succeeded` (and
//!   `balance.available` for `pm_card_bypassPending`; `charge.dispute.created` after the payment
//!   for the dispute cards);
//! - `capture_method=manual`: `charge.succeeded` (not captured), then
//!   `payment_intent.amount_capturable_updated`; capture: `charge.captured`,
//!   `payment_intent.succeeded`;
//! - declined: `charge.failed`, `payment_intent.payment_failed`, and the call answers 402
//!   `card_error` with the decline code and the intent;
//! - 3-D Secure required: `payment_intent.requires_action` (the intent answers
//!   `requires_action` with a `next_action`);
//! - SEPA Direct Debit: `charge.pending`, `payment_intent.processing`, then (at once in the
//!   sandbox, minutes later at Stripe) the debit's outcome;
//! - the customer's cash balance (`customer_balance`, bank transfers): cash_balance.rs.

use serde_json::{Value, json};

use super::cards::{self, Outcome};
use super::{cash_balance, connect, ledger};
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

pub struct PaymentIntents;

impl Behaviour for PaymentIntents {
    fn object(&self) -> &'static str {
        "payment_intent"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &[
            "payment_method",
            "confirm",
            "payment_method_types",
            "mandate_data",
            "return_url",
            "error_on_requires_action",
            "off_session",
            "payment_method_data",
            "use_stripe_sdk",
        ]
    }
    fn actions(&self) -> &'static [&'static str] {
        &["confirm", "cancel", "capture", "applyCustomerBalance"]
    }
    fn create(&self, ctx: &Ctx, pi: &mut Value) -> ApiResult<()> {
        if pi["amount"].as_i64().is_some_and(|a| a < 1) {
            return Err(ApiError::invalid(
                "parameter_invalid_integer",
                Some("amount"),
                "This value must be greater than or equal to 1.",
            ));
        }
        let types = ctx
            .param("payment_method_types")
            .or(ctx.param("allowed_payment_method_types"))
            .cloned()
            .unwrap_or_else(|| json!(["card"]));
        pi["payment_method_types"] = types.clone();
        pi["allowed_payment_method_types"] = types;
        let id = pi["id"].as_str().unwrap_or_default().to_owned();
        pi["client_secret"] = json!(format!("{id}_secret_{}", crate::secret::random_alnum(24)));
        if let Some(named) = ctx.str_param("payment_method") {
            pi["payment_method"] = cards::resolve(ctx, named, "payment_method")?["id"].clone();
            pi["status"] = json!("requires_confirmation");
        } else if let Some(data) = ctx
            .param("payment_method_data")
            .filter(|d| d["type"] == "customer_balance")
        {
            pi["payment_method"] = cash_balance::payment_method(ctx, data)?["id"].clone();
            pi["status"] = json!("requires_confirmation");
        }
        connect::check_intent(ctx, pi)?;
        if ctx.bool_param("confirm") && pi["payment_method"].is_null() {
            return Err(ApiError::invalid(
                "parameter_missing",
                Some("payment_method"),
                "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm a PaymentIntent with confirm=true, you must provide a payment_method.",
            ));
        }
        Ok(())
    }
    fn created(&self, ctx: &Ctx, pi: &mut Value) -> ApiResult<()> {
        if ctx.bool_param("confirm") {
            let named = pi["payment_method"].as_str().unwrap_or_default().to_owned();
            let pm = cards::resolve(ctx, &named, "payment_method")?;
            *pi = pay(ctx, pi.clone(), &pm)?;
        }
        Ok(())
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        match ctx.op {
            "confirm" => Some(confirm(ctx)),
            "cancel" => Some(cancel(ctx)),
            "capture" => Some(capture(ctx)),
            "applyCustomerBalance" => Some(cash_balance::apply_customer_balance(ctx)),
            _ => None,
        }
    }
}

fn unexpected(pi: &Value, action: &str, allowed: &str) -> ApiError {
    ApiError::state(
        "payment_intent_unexpected_state",
        &format!(
            "This PaymentIntent could not be {action} because it has a status of {}. Only a PaymentIntent with one of the following statuses may be {action}: {allowed}.",
            pi["status"].as_str().unwrap_or("")
        ),
    )
    .with("payment_intent", pi.clone())
}

fn confirm(ctx: &Ctx) -> ApiResult<Value> {
    let pi = ctx.target()?;
    if !matches!(
        pi["status"].as_str(),
        Some("requires_confirmation" | "requires_payment_method" | "requires_action")
    ) {
        return Err(unexpected(
            &pi,
            "confirmed",
            "requires_payment_method, requires_confirmation, requires_action",
        ));
    }
    let named = ctx
        .str_param("payment_method")
        .or(pi["payment_method"].as_str())
        .map(str::to_owned);
    let Some(named) = named else {
        return Err(ApiError::invalid(
            "parameter_missing",
            Some("payment_method"),
            "You cannot confirm this PaymentIntent because it's missing a payment method. You can either update the PaymentIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.",
        ));
    };
    let pm = cards::resolve(ctx, &named, "payment_method")?;
    pay(ctx, pi, &pm)
}

/// Charges `pm` for the intent, emitting what Stripe emits (see the module), and answers the
/// intent as Stripe's confirm does; a decline is the 402 `card_error`. An asynchronous debit
/// answers `processing` and settles at once.
pub fn pay(ctx: &Ctx, pi: Value, pm: &Value) -> ApiResult<Value> {
    let answer = pay_deferred(ctx, pi, pm)?;
    if answer["status"] == "processing" {
        // Stripe answers the processing intent; the debit's outcome comes in events.
        let _ = settle_pending(ctx, answer["id"].as_str().unwrap_or_default());
    }
    Ok(answer)
}

/// The debit of a `processing` intent settles (as its test IBAN says).
pub fn settle_pending(ctx: &Ctx, pi: &str) -> ApiResult<()> {
    let mut pi = ctx.get("payment_intent", pi)?;
    let charge = ctx.get("charge", pi["latest_charge"].as_str().unwrap_or_default())?;
    let outcome = cards::outcome(ctx, pi["payment_method"].as_str().unwrap_or_default());
    settle(ctx, &mut pi, charge, outcome)
}

/// As `pay`, leaving an asynchronous debit `processing` (a Checkout Session completes first).
pub fn pay_deferred(ctx: &Ctx, mut pi: Value, pm: &Value) -> ApiResult<Value> {
    if cash_balance::pays_from_balance(pm) {
        return cash_balance::confirm(ctx, pi, pm);
    }
    pi["payment_method"] = pm["id"].clone();
    let pm_id = pm["id"].as_str().unwrap_or_default();
    let outcome = cards::outcome(ctx, pm_id);
    if outcome == Outcome::Authenticate {
        pi["status"] = json!("requires_action");
        pi["next_action"] = challenge(ctx, pi["id"].as_str().unwrap_or_default());
        ctx.put(&pi);
        ctx.emit("payment_intent.requires_action", &pi, None);
        return Ok(pi);
    }
    if pm["type"] != "card" && pm["object"] != "card" {
        // An asynchronous method: pending until the debit settles.
        let charge = charge_of(ctx, &pi, pm, "pending");
        ctx.put(&charge);
        ctx.emit("charge.pending", &charge, None);
        pi["status"] = json!("processing");
        pi["latest_charge"] = charge["id"].clone();
        ctx.put(&pi);
        ctx.emit("payment_intent.processing", &pi, None);
        return Ok(pi);
    }
    let charge = charge_of(ctx, &pi, pm, "succeeded");
    settle(ctx, &mut pi, charge, outcome)
        .map(|()| pi.clone())
        .map_err(|e| e.with("payment_intent", pi))
}

/// Stripe's answer when the customer fails 3-D Secure (docs.stripe.com/error-codes,
/// `payment_intent_authentication_failure`).
pub const AUTHENTICATION_FAILED: &str = "The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.";

/// The customer's 3-D Secure answer for an intent in `requires_action` (the test page's
/// "Complete" or "Fail", docs.stripe.com/testing#regulatory-cards). Authenticated, the card is
/// charged (`charge.succeeded`, `payment_intent.succeeded`); failed, no charge is made and the
/// intent returns to `requires_payment_method` with `last_payment_error`
/// (`payment_intent_authentication_failure`): `payment_intent.payment_failed`
/// (docs.stripe.com/payments/3d-secure/authentication-flow).
pub fn authenticated(ctx: &Ctx, pi_id: &str, complete: bool) -> ApiResult<Value> {
    let mut pi = ctx.get("payment_intent", pi_id)?;
    if pi["status"] != "requires_action" {
        return Err(unexpected(&pi, "authenticated", "requires_action"));
    }
    let pm_id = pi["payment_method"].as_str().unwrap_or_default().to_owned();
    let pm = cards::resolve(ctx, &pm_id, "payment_method")?;
    pi["next_action"] = Value::Null;
    if complete {
        let charge = charge_of(ctx, &pi, &pm, "succeeded");
        settle(ctx, &mut pi, charge, Outcome::Succeeds)?;
        return Ok(pi);
    }
    pi["status"] = json!("requires_payment_method");
    pi["payment_method"] = Value::Null;
    let error = ApiError::invalid(
        "payment_intent_authentication_failure",
        None,
        AUTHENTICATION_FAILED,
    );
    let mut last = error.body()["error"].clone();
    last["payment_method"] = pm;
    pi["last_payment_error"] = last;
    ctx.put(&pi);
    ctx.emit("payment_intent.payment_failed", &pi, None);
    Ok(pi)
}

/// The sandbox's note of the `return_url` an intent was confirmed with.
pub const RETURN_URL: &str = "return_url";

/// The `next_action` of an intent that waits for 3-D Secure: the challenge page
/// (`stripe::three_d_secure`), as `redirect_to_url` when the confirm sent `return_url`
/// (kept to return to), else for Stripe.js (`use_stripe_sdk`; API reference, the payment
/// intent's `next_action`).
pub fn challenge(ctx: &Ctx, intent: &str) -> Value {
    let url = format!("{}/3ds/{intent}", ctx.shared.stripe_api_url);
    match ctx.str_param("return_url") {
        Some(back) => {
            ctx.store().set_private(intent, RETURN_URL, json!(back));
            json!({"type": "redirect_to_url", "redirect_to_url": {"return_url": back, "url": url}})
        }
        None => {
            json!({"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect",
            "stripe_js": url, "source": format!("src_{}", crate::secret::random_alnum(24))}})
        }
    }
}

/// Pays an intent its customer's cash balance has fully funded (cash_balance.rs): its charge
/// succeeds (`charge.succeeded`, `payment_intent.succeeded`).
pub fn pay_from_balance(ctx: &Ctx, mut pi: Value) -> ApiResult<()> {
    let pm = ctx.get(
        "payment_method",
        pi["payment_method"].as_str().unwrap_or_default(),
    )?;
    let charge = charge_of(ctx, &pi, &pm, "succeeded");
    settle(ctx, &mut pi, charge, Outcome::Succeeds)
}

/// The payment's outcome on `charge` and the intent (see the module). A decline is the error
/// Stripe answers.
pub fn settle(ctx: &Ctx, pi: &mut Value, mut charge: Value, outcome: Outcome) -> ApiResult<()> {
    pi["latest_charge"] = charge["id"].clone();
    let amount = pi["amount"].as_i64().unwrap_or(0);
    if let Outcome::Declined(code, decline) = outcome {
        decline_charge(&mut charge, code, decline);
        ctx.put(&charge);
        ctx.emit("charge.failed", &charge, None);
        pi["status"] = json!("requires_payment_method");
        let pm = ctx.store().get_of(
            "payment_method",
            pi["payment_method"].as_str().unwrap_or_default(),
        );
        pi["payment_method"] = Value::Null;
        let error = card_error(code, decline).with("charge", charge["id"].clone());
        let mut last = error.body()["error"].clone();
        last["payment_method"] = pm.unwrap_or(Value::Null);
        pi["last_payment_error"] = last;
        ctx.put(pi);
        ctx.emit("payment_intent.payment_failed", pi, None);
        return Err(error);
    }
    let manual = pi["capture_method"] == "manual";
    charge["status"] = json!("succeeded");
    charge["paid"] = json!(true);
    charge["captured"] = json!(!manual);
    charge["amount_captured"] = json!(if manual { 0 } else { amount });
    if !manual {
        book(ctx, pi, &mut charge, amount, outcome);
    }
    ctx.put(&charge);
    ctx.emit("charge.succeeded", &charge, None);
    if manual {
        pi["status"] = json!("requires_capture");
        pi["amount_capturable"] = json!(amount);
        ctx.put(pi);
        ctx.emit("payment_intent.amount_capturable_updated", pi, None);
        return Ok(());
    }
    succeed(ctx, pi, amount, outcome);
    if let Outcome::Disputed(inquiry) = outcome {
        dispute(ctx, &charge, inquiry);
    }
    Ok(())
}

/// A captured charge's funds: its `charge` balance transaction (less Stripe's fee, and a
/// direct charge's application fee), pending or available at once (`pm_card_bypassPending`:
/// "the funds are added directly to your available balance", docs.stripe.com/testing#available-
/// balance), and its Connect fields (connect.rs).
fn book(ctx: &Ctx, pi: &Value, charge: &mut Value, amount: i64, outcome: Outcome) {
    let id = charge["id"].as_str().unwrap_or_default().to_owned();
    let currency = charge["currency"].as_str().unwrap_or("usd").to_owned();
    let txn = ledger::record(
        ctx,
        ledger::Movement {
            kind: "charge",
            amount,
            currency: &currency,
            fees: connect::charge_fees(ctx, pi, amount),
            source: &id,
            description: charge["description"].as_str(),
            available_on: ledger::available_on(ctx, outcome == Outcome::Available),
        },
    );
    charge["balance_transaction"] = txn["id"].clone();
    connect::prepare(ctx, pi, charge);
}

/// The intent's success: `payment_intent.succeeded`, then what the charge pays on (a
/// destination charge's transfer, an application fee), and `balance.available` when its funds
/// are available at once.
fn succeed(ctx: &Ctx, pi: &mut Value, amount: i64, outcome: Outcome) {
    pi["status"] = json!("succeeded");
    pi["amount_received"] = json!(amount);
    pi["amount_capturable"] = json!(0);
    ctx.put(pi);
    ctx.emit("payment_intent.succeeded", pi, None);
    if let Some(charge) = ctx
        .store()
        .get_of("charge", pi["latest_charge"].as_str().unwrap_or_default())
    {
        connect::complete(ctx, pi, &charge);
    }
    if outcome == Outcome::Available {
        ctx.emit("balance.available", &ledger::balance(ctx), None);
    }
}

pub fn card_error(code: &str, decline: &str) -> ApiError {
    let message = match decline {
        "insufficient_funds" => "Your card has insufficient funds.",
        "expired_card" => "Your card has expired.",
        "incorrect_cvc" => "Your card's security code is incorrect.",
        "processing_error" => {
            "An error occurred while processing your card. Try again in a little bit."
        }
        _ => "Your card was declined.",
    };
    ApiError::card(code, Some(decline), message)
}

fn decline_charge(charge: &mut Value, code: &str, decline: &str) {
    charge["status"] = json!("failed");
    charge["paid"] = json!(false);
    charge["captured"] = json!(false);
    charge["amount_captured"] = json!(0);
    charge["failure_code"] = json!(code);
    charge["failure_message"] = card_error(code, decline).body()["error"]["message"].clone();
    charge["outcome"]["type"] = json!("issuer_declined");
    charge["outcome"]["network_status"] = json!("declined_by_network");
    charge["outcome"]["reason"] = json!(decline);
    charge["outcome"]["seller_message"] =
        json!("The bank did not return any further details with this decline.");
    charge["outcome"]["risk_level"] = json!("normal");
}

/// A charge of the intent with `pm`, in `status` (`succeeded` until the outcome says otherwise).
fn charge_of(ctx: &Ctx, pi: &Value, pm: &Value, status: &str) -> Value {
    let mut ch = ctx.fresh("charge");
    let id = ch["id"].as_str().unwrap_or_default().to_owned();
    for key in [
        "amount",
        "currency",
        "customer",
        "description",
        "metadata",
        "shipping",
        "receipt_email",
    ] {
        ch[key] = pi[key].clone();
    }
    ch["payment_intent"] = pi["id"].clone();
    ch["payment_method"] = pm["id"].clone();
    // A card source has no billing details of its own: the charge's are empty then.
    ch["billing_details"] = ctx.shaped(
        "charge",
        "billing_details",
        pm.get("billing_details").unwrap_or(&json!({})),
    );
    ch["status"] = json!(status);
    ch["paid"] = json!(status == "succeeded");
    ch["captured"] = json!(false);
    ch["outcome"] = json!({"advice_code": null, "network_advice_code": null, "network_decline_code": null,
        "network_status": "approved_by_network", "reason": null, "risk_level": "normal", "risk_score": 32,
        "seller_message": "Payment complete.", "type": "authorized"});
    // A card payment method keeps its card under `card`; a card source is the card.
    let (kind, card) = if pm["object"] == "card" {
        ("card", pm)
    } else {
        (pm["type"].as_str().unwrap_or("card"), &pm["card"])
    };
    let details = if kind == "card" {
        let brand = card["brand"]
            .as_str()
            .unwrap_or("visa")
            .to_ascii_lowercase()
            .replace(' ', "_");
        json!({"brand": brand, "last4": card["last4"], "exp_month": card["exp_month"], "exp_year": card["exp_year"],
               "country": card["country"], "funding": card["funding"], "fingerprint": card["fingerprint"], "network": brand,
               "checks": {"address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass"}})
    } else {
        pm[kind].clone()
    };
    // Only the fields the charge's own type declares for that method (a payment method's
    // `generated_from` is not a charge's).
    let at = format!("payment_method_details.{kind}");
    let declared = ctx.shaped("charge", &at, &json!({}));
    let details: serde_json::Map<String, Value> = details
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| declared.get(k.as_str()).is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let details = ctx.shaped("charge", &at, &Value::Object(details));
    ch["payment_method_details"] = ctx.shaped(
        "charge",
        "payment_method_details",
        &json!({"type": kind, kind: details}),
    );
    ch["receipt_url"] = json!(format!("{}/receipts/{id}", ctx.shared.stripe_api_url));
    ch["calculated_statement_descriptor"] = json!("STRIPE-OPS SANDBOX");
    ch
}

/// The dispute a dispute test card brings after its payment (docs.stripe.com/testing#disputes):
/// an inquiry (`warning_needs_response`) or a dispute whose funds are withdrawn.
fn dispute(ctx: &Ctx, charge: &Value, inquiry: bool) {
    let mut dp = ctx.fresh("dispute");
    for key in ["amount", "currency", "payment_intent"] {
        dp[key] = charge[key].clone();
    }
    dp["charge"] = charge["id"].clone();
    dp["reason"] = json!(if inquiry { "general" } else { "fraudulent" });
    dp["status"] = json!(if inquiry {
        "warning_needs_response"
    } else {
        "needs_response"
    });
    dp["is_charge_refundable"] = json!(inquiry);
    dp["balance_transactions"] = json!([]);
    ctx.put(&dp);
    ctx.emit("charge.dispute.created", &dp, None);
    let mut disputed = charge.clone();
    disputed["disputed"] = json!(true);
    ctx.put(&disputed);
    if !inquiry {
        ctx.emit("charge.dispute.funds_withdrawn", &dp, None);
    }
}

fn cancel(ctx: &Ctx) -> ApiResult<Value> {
    let mut pi = ctx.target()?;
    if !matches!(
        pi["status"].as_str(),
        Some(
            "requires_payment_method"
                | "requires_capture"
                | "requires_confirmation"
                | "requires_action"
                | "processing"
        )
    ) {
        return Err(unexpected(
            &pi,
            "canceled",
            "requires_payment_method, requires_capture, requires_confirmation, requires_action, processing",
        ));
    }
    let before = pi.clone();
    pi["status"] = json!("canceled");
    pi["canceled_at"] = json!(ctx.now());
    pi["cancellation_reason"] = ctx
        .param("cancellation_reason")
        .cloned()
        .unwrap_or(json!("requested_by_customer"));
    pi["amount_capturable"] = json!(0);
    ctx.put(&pi);
    ctx.emit("payment_intent.canceled", &pi, None);
    cash_balance::unapply(ctx, &before);
    Ok(pi)
}

fn capture(ctx: &Ctx) -> ApiResult<Value> {
    let mut pi = ctx.target()?;
    if pi["status"] != "requires_capture" {
        return Err(unexpected(&pi, "captured", "requires_capture"));
    }
    let capturable = pi["amount_capturable"].as_i64().unwrap_or(0);
    let amount = ctx.int_param("amount_to_capture").unwrap_or(capturable);
    if amount < 1 || amount > capturable {
        return Err(ApiError::invalid(
            "amount_too_large",
            Some("amount_to_capture"),
            &format!(
                "The amount to capture ({amount}) must be at most the amount capturable ({capturable})."
            ),
        ));
    }
    let charge_id = pi["latest_charge"].as_str().unwrap_or_default().to_owned();
    let mut charge = ctx.get("charge", &charge_id)?;
    charge["captured"] = json!(true);
    charge["amount_captured"] = json!(amount);
    let pm = pi["payment_method"].as_str().unwrap_or_default().to_owned();
    let outcome = cards::outcome(ctx, &pm);
    book(ctx, &pi, &mut charge, amount, outcome);
    ctx.put(&charge);
    ctx.emit("charge.captured", &charge, None);
    succeed(ctx, &mut pi, amount, outcome);
    Ok(pi)
}

pub struct Refunds;

impl Behaviour for Refunds {
    fn object(&self) -> &'static str {
        "refund"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &[
            "charge",
            "payment_intent",
            "amount",
            "reverse_transfer",
            "refund_application_fee",
        ]
    }
    /// `payment_intent` or `charge`, `amount` defaulting to what is left.
    fn create(&self, ctx: &Ctx, refund: &mut Value) -> ApiResult<()> {
        let charge_id = match (ctx.str_param("charge"), ctx.str_param("payment_intent")) {
            (Some(c), _) => ctx.find("charge", c, "charge")?["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            (None, Some(pi)) => ctx.find("payment_intent", pi, "payment_intent")?["latest_charge"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            (None, None) => {
                return Err(ApiError::invalid(
                    "parameter_missing",
                    Some("charge"),
                    "One of the following params should be provided for this request: payment_intent or charge.",
                ));
            }
        };
        let Some(charge) = ctx
            .store()
            .get_of("charge", &charge_id)
            .filter(|c| c["paid"] == true)
        else {
            return Err(ApiError::invalid(
                "charge_not_refundable",
                Some("charge"),
                &format!("Charge {charge_id} has not been paid or does not exist."),
            ));
        };
        let left = charge["amount"].as_i64().unwrap_or(0)
            - charge["amount_refunded"].as_i64().unwrap_or(0);
        if left == 0 {
            return Err(ApiError::state(
                "charge_already_refunded",
                &format!("Charge {charge_id} has already been refunded."),
            ));
        }
        let amount = ctx.amount_up_to(left, "amount_too_large", |amount| {
            format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({left})")
        })?;
        refund["amount"] = json!(amount);
        refund["currency"] = charge["currency"].clone();
        refund["charge"] = json!(charge_id);
        refund["payment_intent"] = charge["payment_intent"].clone();
        refund["payment_method"] = charge["payment_method"].clone();
        refund["customer"] = charge["customer"].clone();
        refund["status"] = json!("succeeded");
        connect::book_refund(ctx, refund, &charge);
        Ok(())
    }
    /// After `refund.created`: `charge.refunded`, with the charge's previous refund state.
    fn created(&self, ctx: &Ctx, refund: &mut Value) -> ApiResult<()> {
        let before = ctx.get("charge", refund["charge"].as_str().unwrap_or_default())?;
        let mut charge = before.clone();
        let refunded = charge["amount_refunded"].as_i64().unwrap_or(0)
            + refund["amount"].as_i64().unwrap_or(0);
        charge["amount_refunded"] = json!(refunded);
        charge["refunded"] = json!(refunded == charge["amount"].as_i64().unwrap_or(0));
        if let Some(list) = charge["refunds"]["data"].as_array_mut() {
            list.insert(0, refund.clone());
        }
        ctx.put(&charge);
        let previous = json!({"amount_refunded": before["amount_refunded"], "refunded": before["refunded"], "refunds": before["refunds"]});
        ctx.emit("charge.refunded", &charge, Some(previous));
        connect::refunded(ctx, refund, &charge)
    }
    /// An update is `refund.updated` and its legacy twin `charge.refund.updated`.
    fn updated(&self, ctx: &Ctx, before: &Value, refund: &mut Value) -> ApiResult<()> {
        let previous = crate::sandbox::stripe::engine::apply::previous_attributes(before, refund);
        if previous.as_object().is_some_and(|p| !p.is_empty()) {
            ctx.emit("charge.refund.updated", refund, Some(previous));
        }
        Ok(())
    }
}

pub struct Disputes;

impl Behaviour for Disputes {
    fn object(&self) -> &'static str {
        "dispute"
    }
    fn actions(&self) -> &'static [&'static str] {
        &["close"]
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        (ctx.op == "close").then(|| close(ctx))
    }
}

/// Accepting a dispute closes it: an inquiry is `warning_closed`, a dispute `lost`.
fn close(ctx: &Ctx) -> ApiResult<Value> {
    let before = ctx.target()?;
    let status = match before["status"].as_str() {
        Some("warning_needs_response" | "warning_under_review") => "warning_closed",
        Some("needs_response" | "under_review") => "lost",
        other => {
            return Err(ApiError::state(
                "dispute_already_closed",
                &format!(
                    "This dispute is already closed (status {}).",
                    other.unwrap_or("")
                ),
            ));
        }
    };
    let mut dp = before.clone();
    dp["status"] = json!(status);
    ctx.put(&dp);
    let previous = crate::sandbox::stripe::engine::apply::previous_attributes(&before, &dp);
    ctx.emit("charge.dispute.closed", &dp, Some(previous));
    Ok(dp)
}
