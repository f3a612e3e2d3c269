//! Issuing in test mode: cardholders, cards (which embed their cardholder, and are `inactive`
//! unless created `active`), test authorizations (Stripe asks for approval with
//! `issuing_authorization.request`, then records the approved authorization:
//! `issuing_authorization.created`, docs.stripe.com/issuing/controls/real-time-authorizations)
//! and force-captured transactions (`issuing_transaction.created`, and
//! `issuing_transaction.purchase_details_receipt_updated` when purchase details come with it).
//! The sandbox approves every authorization of an active card.

use serde_json::{Value, json};

use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

pub struct Cards;

impl Behaviour for Cards {
    fn object(&self) -> &'static str {
        "issuing.card"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &["cardholder"]
    }
    fn create(&self, ctx: &Ctx, card: &mut Value) -> ApiResult<()> {
        let id = ctx
            .str_param("cardholder")
            .ok_or_else(|| ApiError::missing_param("cardholder"))?;
        card["cardholder"] = ctx.find("issuing.cardholder", id, "cardholder")?;
        if ctx.param("status").is_none() {
            card["status"] = json!("inactive");
        }
        card["last4"] = json!(format!("{:04}", rand::random_range(0..10_000)));
        card["spending_controls"] = ctx.shaped("issuing.card", "spending_controls", &json!({}));
        Ok(())
    }
}

/// The card a test authorization names: it must exist and be active (a force capture needs no
/// authorization, so neither).
fn active_card(ctx: &Ctx) -> ApiResult<Value> {
    let id = ctx
        .str_param("card")
        .ok_or_else(|| ApiError::missing_param("card"))?;
    let card = ctx.find("issuing.card", id, "card")?;
    if card["status"] != "active" {
        return Err(ApiError::invalid(
            "card_inactive",
            Some("card"),
            &format!("The card {id} is not active."),
        ));
    }
    Ok(card)
}

pub struct Authorizations;

impl Behaviour for Authorizations {
    fn object(&self) -> &'static str {
        "issuing.authorization"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &[
            "card",
            "amount",
            "currency",
            "merchant_amount",
            "merchant_currency",
        ]
    }
    fn create(&self, ctx: &Ctx, auth: &mut Value) -> ApiResult<()> {
        let card = active_card(ctx)?;
        let currency = ctx
            .str_param("currency")
            .map_or_else(|| card["currency"].clone(), |c| json!(c));
        let amount = ctx.int_param("amount").unwrap_or(1000);
        auth["cardholder"] = card["cardholder"]["id"].clone();
        auth["card"] = card;
        auth["amount"] = json!(amount);
        auth["currency"] = currency.clone();
        auth["merchant_amount"] = json!(ctx.int_param("merchant_amount").unwrap_or(amount));
        auth["merchant_currency"] = ctx.param("merchant_currency").cloned().unwrap_or(currency);
        auth["status"] = json!("pending");
        auth["approved"] = json!(false);
        auth["pending_request"] = json!({"amount": amount, "amount_details": null, "currency": auth["currency"], "is_amount_controllable": false,
                                         "merchant_amount": auth["merchant_amount"], "merchant_currency": auth["merchant_currency"], "network_risk_score": null});
        ctx.emit("issuing_authorization.request", auth, None);
        auth["approved"] = json!(true);
        auth["pending_request"] = Value::Null;
        Ok(())
    }
}

pub struct Transactions;

impl Behaviour for Transactions {
    fn object(&self) -> &'static str {
        "issuing.transaction"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &["card", "amount", "purchase_details"]
    }
    /// A force capture: money spent without an authorization (a negative amount, Stripe's sign
    /// for a capture).
    fn create(&self, ctx: &Ctx, txn: &mut Value) -> ApiResult<()> {
        let id = ctx
            .str_param("card")
            .ok_or_else(|| ApiError::missing_param("card"))?;
        let card = ctx.find("issuing.card", id, "card")?;
        let amount = -ctx.int_param("amount").unwrap_or(0);
        txn["card"] = card["id"].clone();
        txn["cardholder"] = card["cardholder"]["id"].clone();
        txn["currency"] = ctx
            .param("currency")
            .cloned()
            .unwrap_or_else(|| card["currency"].clone());
        txn["merchant_currency"] = txn["currency"].clone();
        txn["amount"] = json!(amount);
        txn["merchant_amount"] = json!(amount);
        txn["type"] = json!("capture");
        txn["authorization"] = Value::Null;
        Ok(())
    }
    fn created(&self, ctx: &Ctx, txn: &mut Value) -> ApiResult<()> {
        if ctx.param("purchase_details").is_some() {
            ctx.emit(
                "issuing_transaction.purchase_details_receipt_updated",
                txn,
                None,
            );
        }
        Ok(())
    }
}
