//! Issuing in test mode: cardholders, cards (which embed their cardholder, and are `inactive`
//! unless created `active`), test authorizations and force-captured transactions
//! (`issuing_transaction.created`, and `issuing_transaction.purchase_details_receipt_updated`
//! when purchase details come with it).
//!
//! A test authorization is what a card's use at a merchant is: Stripe "creates an
//! `issuing_authorization.request` and sends it to your configured endpoint for your approval"
//! (the synchronous webhook, docs.stripe.com/issuing/controls/real-time-authorizations), whose
//! answer (`{"approved": true|false}`) decides it; then it records the authorization,
//! `issuing_authorization.created` ("after the decision ... the `issuing_authorization.created`
//! or `issuing_authorization.updated` webhook event is still sent", the direct webhook
//! migration guide). The sandbox sends the request to endpoints and `stripe listen` like every
//! event but does not wait for an answer: it approves every authorization of an active card.
//! (It has no setting for Issuing's synchronous endpoint: in 2021 a `stripe listen` of an
//! account without one got only `issuing_authorization.created` from Stripe, stripe/stripe-cli
//! #791; here every listener gets the request too, as the trigger's name promises.)
//!
//! Two endpoints make one: today's test helper (`POST /v1/test_helpers/issuing/authorizations`,
//! stripe-node's `testHelpers.issuing.authorizations.create`) and the legacy one the Stripe CLI's
//! `issuing_authorization.request*` fixtures call (`legacy_test_authorization`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::sandbox::Shared;
use crate::sandbox::stripe::engine::{self, ApiError, ApiResult, Behaviour, Call, Ctx, Engine};

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

/// `POST /v1/issuing/cards/{card}/test/authorizations` (`held_amount`, `held_currency`,
/// `authorization_method`): the test endpoint Stripe's Issuing launched with, which stripe-node
/// no longer declares but Stripe still serves. The Stripe CLI's `issuing_authorization.request`
/// fixture has called it since 2020 (stripe/stripe-cli #395); Stripe kept the fixture working
/// against the live API (#1038, 2023: its cardholder fixed when the API began to require
/// names and terms acceptance, the authorization call kept), wrote new ones calling it for EUR
/// and GBP cards with `held_currency` (#1070, 2023), and ships all three in 1.52.0 (2026); run
/// against Stripe, the fixture makes the authorization (`issuing_authorization.created`,
/// stripe/stripe-cli #791). The sandbox serves it as an alias of today's test helper, which
/// emits the events in Stripe's order: `held_amount` is its `amount`, `held_currency` its
/// `currency` (the card's own, the currency an authorization is held in: Issuing's
/// Authorization `currency` is "the currency of the cardholder"), the path's card its `card`;
/// other parameters are the helper's own (`authorization_method`, `merchant_data`, …). Its
/// parameters are not documented: `held_amount` is required (every call Stripe wrote sends it)
/// and the helper's names for what the legacy ones say (`card`, `amount`, `currency`) are
/// refused as unknown.
pub async fn legacy_test_authorization(
    State(shared): State<Arc<Shared>>,
    Path(card): Path<String>,
    call: Call,
) -> Response {
    match legacy_authorization(&shared, call, &card) {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn legacy_authorization(shared: &Arc<Shared>, call: Call, card: &str) -> ApiResult<Value> {
    let mut given: Map<String, Value> = call.raw.as_object().cloned().unwrap_or_default();
    if let Some(p) = ["card", "amount", "currency"]
        .into_iter()
        .find(|p| given.contains_key(*p))
    {
        return Err(ApiError::unknown_param(p));
    }
    let card = shared
        .stripe
        .objects
        .of(&call.scope)
        .get_of("issuing.card", card)
        .ok_or_else(|| ApiError::not_found("issuing.card", card))?;
    let held = given
        .shift_remove("held_amount")
        .ok_or_else(|| ApiError::missing_param("held_amount"))?;
    let held = engine::Schema::Number.coerce(&held, "held_amount")?;
    let currency = card["currency"].as_str().unwrap_or_default();
    if let Some(c) = given.shift_remove("held_currency")
        && c.as_str() != Some(currency)
    {
        return Err(ApiError::bad_param(
            "held_currency",
            &format!(
                "Invalid held_currency: {}. An authorization of card {} is held in the card's currency, {currency}.",
                c.as_str().unwrap_or_default(),
                card["id"].as_str().unwrap_or_default()
            ),
        ));
    }
    given.insert("card".into(), card["id"].clone());
    given.insert("amount".into(), held);
    given.insert("currency".into(), json!(currency));
    let resource = Engine::get()
        .resource("issuing.authorization")
        .expect("issuing.authorization is in the table");
    let helper = Call {
        raw: Value::Object(given),
        path: resource.methods["create"].path.clone(),
        ..call
    };
    engine::ops::run(shared, &helper, resource, "create", Vec::new())
}
