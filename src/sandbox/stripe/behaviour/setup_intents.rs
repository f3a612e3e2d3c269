//! Setup intents: saving a payment method for later. Confirming one with a test card
//! (docs.stripe.com/testing) succeeds (`setup_intent.succeeded`, after the payment method is
//! attached to the intent's customer: `payment_method.attached`), fails
//! (`setup_intent.setup_failed`, and the call answers 402 `card_error` with the intent), or needs
//! 3-D Secure (`setup_intent.requires_action`). Cancel: `setup_intent.canceled`.

use serde_json::{Value, json};

use super::cards::{self, Outcome};
use super::payments::card_error;
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

pub struct SetupIntents;

impl Behaviour for SetupIntents {
    fn object(&self) -> &'static str {
        "setup_intent"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &[
            "payment_method",
            "confirm",
            "payment_method_types",
            "return_url",
            "mandate_data",
            "payment_method_data",
            "use_stripe_sdk",
        ]
    }
    fn actions(&self) -> &'static [&'static str] {
        &["confirm", "cancel"]
    }
    fn create(&self, ctx: &Ctx, si: &mut Value) -> ApiResult<()> {
        si["payment_method_types"] = ctx
            .param("payment_method_types")
            .cloned()
            .unwrap_or_else(|| json!(["card"]));
        let id = si["id"].as_str().unwrap_or_default().to_owned();
        si["client_secret"] = json!(format!("{id}_secret_{}", crate::secret::random_alnum(24)));
        si["status"] = json!("requires_payment_method");
        if let Some(named) = ctx.str_param("payment_method") {
            si["payment_method"] = cards::resolve(ctx, named, "payment_method")?["id"].clone();
            si["status"] = json!("requires_confirmation");
        }
        if ctx.bool_param("confirm") && si["payment_method"].is_null() {
            return Err(ApiError::invalid(
                "parameter_missing",
                Some("payment_method"),
                "You cannot confirm this SetupIntent because it's missing a payment method.",
            ));
        }
        Ok(())
    }
    fn created(&self, ctx: &Ctx, si: &mut Value) -> ApiResult<()> {
        if ctx.bool_param("confirm") {
            *si = setup(ctx, si.clone())?;
        }
        Ok(())
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        match ctx.op {
            "confirm" => Some(confirm(ctx)),
            "cancel" => Some(cancel(ctx)),
            _ => None,
        }
    }
}

fn unexpected(si: &Value, action: &str, allowed: &str) -> ApiError {
    ApiError::state(
        "setup_intent_unexpected_state",
        &format!(
            "This SetupIntent could not be {action} because it has a status of {}. Only a SetupIntent with one of the following statuses may be {action}: {allowed}.",
            si["status"].as_str().unwrap_or("")
        ),
    )
    .with("setup_intent", si.clone())
}

fn confirm(ctx: &Ctx) -> ApiResult<Value> {
    let mut si = ctx.target()?;
    if !matches!(
        si["status"].as_str(),
        Some("requires_payment_method" | "requires_confirmation" | "requires_action")
    ) {
        return Err(unexpected(
            &si,
            "confirmed",
            "requires_payment_method, requires_confirmation, requires_action",
        ));
    }
    if let Some(named) = ctx.str_param("payment_method") {
        si["payment_method"] = cards::resolve(ctx, named, "payment_method")?["id"].clone();
    }
    if si["payment_method"].is_null() {
        return Err(ApiError::missing_param("payment_method"));
    }
    setup(ctx, si)
}

/// Sets the payment method up as its test card says.
fn setup(ctx: &Ctx, mut si: Value) -> ApiResult<Value> {
    let pm_id = si["payment_method"].as_str().unwrap_or_default().to_owned();
    match cards::outcome(ctx, &pm_id) {
        Outcome::Declined(code, decline) => {
            let error = card_error(code, decline);
            let mut last = error.body()["error"].clone();
            last["payment_method"] = ctx
                .store()
                .get_of("payment_method", &pm_id)
                .unwrap_or(Value::Null);
            si["status"] = json!("requires_payment_method");
            si["payment_method"] = Value::Null;
            si["last_setup_error"] = last;
            ctx.put(&si);
            ctx.emit("setup_intent.setup_failed", &si, None);
            Err(error.with("setup_intent", si))
        }
        Outcome::Authenticate => {
            si["status"] = json!("requires_action");
            si["next_action"] =
                super::payments::challenge(ctx, si["id"].as_str().unwrap_or_default());
            ctx.put(&si);
            ctx.emit("setup_intent.requires_action", &si, None);
            Ok(si)
        }
        _ => succeed(ctx, si),
    }
}

/// Set up: the payment method attached to the intent's customer, `setup_intent.succeeded`.
fn succeed(ctx: &Ctx, mut si: Value) -> ApiResult<Value> {
    let pm_id = si["payment_method"].as_str().unwrap_or_default().to_owned();
    if let Some(customer) = si["customer"].as_str() {
        let mut pm = ctx.get("payment_method", &pm_id)?;
        cards::attach(ctx, &mut pm, customer)?;
    }
    si["status"] = json!("succeeded");
    si["next_action"] = Value::Null;
    ctx.put(&si);
    ctx.emit("setup_intent.succeeded", &si, None);
    Ok(si)
}

/// The customer's 3-D Secure answer for an intent in `requires_action` (the test page's
/// "Complete" or "Fail", docs.stripe.com/testing#regulatory-cards): set up, or back to
/// `requires_payment_method` with `last_setup_error` (`setup_intent_authentication_failure`,
/// docs.stripe.com/error-codes; the message follows the payment intent's) and
/// `setup_intent.setup_failed`.
pub fn authenticated(ctx: &Ctx, si_id: &str, complete: bool) -> ApiResult<Value> {
    let mut si = ctx.get("setup_intent", si_id)?;
    if si["status"] != "requires_action" {
        return Err(unexpected(&si, "authenticated", "requires_action"));
    }
    if complete {
        return succeed(ctx, si);
    }
    let pm = ctx
        .store()
        .get_of(
            "payment_method",
            si["payment_method"].as_str().unwrap_or_default(),
        )
        .unwrap_or(Value::Null);
    let mut last = ApiError::invalid(
        "setup_intent_authentication_failure",
        None,
        "The provided PaymentMethod has failed authentication. You can provide a new PaymentMethod to attempt to fulfill this SetupIntent again.",
    )
    .body()["error"]
        .clone();
    last["payment_method"] = pm;
    si["status"] = json!("requires_payment_method");
    si["payment_method"] = Value::Null;
    si["next_action"] = Value::Null;
    si["last_setup_error"] = last;
    ctx.put(&si);
    ctx.emit("setup_intent.setup_failed", &si, None);
    Ok(si)
}

fn cancel(ctx: &Ctx) -> ApiResult<Value> {
    let mut si = ctx.target()?;
    if !matches!(
        si["status"].as_str(),
        Some("requires_payment_method" | "requires_confirmation" | "requires_action")
    ) {
        return Err(unexpected(
            &si,
            "canceled",
            "requires_payment_method, requires_confirmation, requires_action",
        ));
    }
    si["status"] = json!("canceled");
    si["cancellation_reason"] = ctx
        .param("cancellation_reason")
        .cloned()
        .unwrap_or(Value::Null);
    ctx.put(&si);
    ctx.emit("setup_intent.canceled", &si, None);
    Ok(si)
}
