//! Stripe's test payment methods (docs.stripe.com/testing): the `pm_card_…` shorthands and
//! `tok_…` tokens, what charging each does (succeed, decline with a decline code, need 3-D
//! Secure, succeed then be disputed, put the funds in the available balance at once), SEPA test
//! IBANs; and the payment-method objects: create (`card[token]`, `sepa_debit[iban]`), attach
//! (`payment_method.attached`), detach (`payment_method.detached`), and a customer's card
//! sources (`customer.source.created`; the first becomes the customer's default source: "If the
//! card's owner has no default card, then the new card will become the default", API reference,
//! Create a card).

use serde_json::{Value, json};

use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

/// What charging a test payment method does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeds,
    /// Declined: Stripe's error `code` and `decline_code`.
    Declined(&'static str, &'static str),
    /// Needs the customer to authenticate (3-D Secure): `requires_action`.
    Authenticate,
    /// Succeeds, then disputed (`true`: an inquiry, which withdraws no funds).
    Disputed(bool),
    /// Succeeds with the funds available at once (`balance.available`).
    Available,
}

/// A test card: its shorthand payment method and token, what it is and what charging it does.
struct TestCard {
    name: &'static str,
    brand: &'static str,
    last4: &'static str,
    outcome: Outcome,
}

const DECLINE: Outcome = Outcome::Declined("card_declined", "generic_decline");

/// docs.stripe.com/testing: "Cards by brand", "Declined payments", "Disputes", "Available
/// balance", "Regulatory cards" (3-D Secure). Each is `pm_card_<name>` and `tok_<name>`.
const TEST_CARDS: [TestCard; 18] = [
    TestCard {
        name: "visa",
        brand: "visa",
        last4: "4242",
        outcome: Outcome::Succeeds,
    },
    TestCard {
        name: "visa_debit",
        brand: "visa",
        last4: "5556",
        outcome: Outcome::Succeeds,
    },
    TestCard {
        name: "mastercard",
        brand: "mastercard",
        last4: "4444",
        outcome: Outcome::Succeeds,
    },
    TestCard {
        name: "amex",
        brand: "amex",
        last4: "8431",
        outcome: Outcome::Succeeds,
    },
    TestCard {
        name: "discover",
        brand: "discover",
        last4: "1117",
        outcome: Outcome::Succeeds,
    },
    TestCard {
        name: "chargeDeclined",
        brand: "visa",
        last4: "0002",
        outcome: DECLINE,
    },
    TestCard {
        name: "visa_chargeDeclined",
        brand: "visa",
        last4: "0002",
        outcome: DECLINE,
    },
    TestCard {
        name: "chargeCustomerFail",
        brand: "visa",
        last4: "0341",
        outcome: DECLINE,
    },
    TestCard {
        name: "visa_chargeDeclinedInsufficientFunds",
        brand: "visa",
        last4: "9995",
        outcome: Outcome::Declined("card_declined", "insufficient_funds"),
    },
    TestCard {
        name: "visa_chargeDeclinedLostCard",
        brand: "visa",
        last4: "9987",
        outcome: Outcome::Declined("card_declined", "lost_card"),
    },
    TestCard {
        name: "visa_chargeDeclinedStolenCard",
        brand: "visa",
        last4: "9979",
        outcome: Outcome::Declined("card_declined", "stolen_card"),
    },
    TestCard {
        name: "chargeDeclinedExpiredCard",
        brand: "visa",
        last4: "0069",
        outcome: Outcome::Declined("expired_card", "expired_card"),
    },
    TestCard {
        name: "chargeDeclinedIncorrectCvc",
        brand: "visa",
        last4: "0127",
        outcome: Outcome::Declined("incorrect_cvc", "incorrect_cvc"),
    },
    TestCard {
        name: "chargeDeclinedProcessingError",
        brand: "visa",
        last4: "0119",
        outcome: Outcome::Declined("processing_error", "processing_error"),
    },
    TestCard {
        name: "authenticationRequired",
        brand: "visa",
        last4: "3184",
        outcome: Outcome::Authenticate,
    },
    TestCard {
        name: "threeDSecure2Required",
        brand: "visa",
        last4: "3220",
        outcome: Outcome::Authenticate,
    },
    TestCard {
        name: "createDispute",
        brand: "visa",
        last4: "0259",
        outcome: Outcome::Disputed(false),
    },
    TestCard {
        name: "createDisputeInquiry",
        brand: "visa",
        last4: "1976",
        outcome: Outcome::Disputed(true),
    },
];

/// `pm_card_bypassPending` and `tok_bypassPending` (4000 0000 0000 0077).
const BYPASS: TestCard = TestCard {
    name: "bypassPending",
    brand: "visa",
    last4: "0077",
    outcome: Outcome::Available,
};

/// SEPA test IBANs whose debit fails after processing (docs.stripe.com/testing, SEPA Direct
/// Debit); any other IBAN succeeds.
const FAILING_IBANS: [&str; 3] = [
    "AT861904300235473202",
    "AT321904300235473204",
    "IT60X0542811101000000123456",
];

fn test_card(name: &str, prefix: &str) -> Option<&'static TestCard> {
    let short = name.strip_prefix(prefix)?;
    TEST_CARDS
        .iter()
        .chain(std::iter::once(&BYPASS))
        .find(|c| c.name == short)
}

/// What charging `payment_method` does (the sandbox's note; a card it does not know succeeds).
pub fn outcome(ctx: &Ctx, payment_method: &str) -> Outcome {
    let name = ctx.store().private(payment_method, "test_card");
    match name.as_ref().and_then(Value::as_str) {
        Some("sepa_fails") => DECLINE,
        Some(n) => test_card(n, "").map_or(Outcome::Succeeds, |c| c.outcome),
        None => Outcome::Succeeds,
    }
}

/// A new card payment method for a test card, stored.
fn card_method(ctx: &Ctx, card: &TestCard, billing: Option<&Value>) -> ApiResult<Value> {
    let mut pm = ctx.fresh("payment_method");
    pm["type"] = json!("card");
    set_card(&mut pm["card"], card);
    if let Some(b) = billing.filter(|b| b.is_object()) {
        pm["billing_details"] = ctx.shaped("payment_method", "billing_details", b);
    }
    ctx.put(&pm);
    ctx.store().set_private(
        pm["id"].as_str().unwrap_or_default(),
        "test_card",
        json!(card.name),
    );
    Ok(pm)
}

fn set_card(card: &mut Value, test: &TestCard) {
    card["brand"] = json!(test.brand);
    card["display_brand"] = json!(test.brand);
    card["last4"] = json!(test.last4);
    card["country"] = json!("US");
    card["fingerprint"] = json!(crate::secret::random_alnum(16));
    card["checks"] = json!({"address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass"});
}

/// The payment method a call names: an existing one, or a new one for a `pm_card_…` shorthand
/// (Stripe makes a new `pm_` for each use of one).
pub fn resolve(ctx: &Ctx, id: &str, param: &str) -> ApiResult<Value> {
    if let Some(pm) = ctx.store().get_of("payment_method", id) {
        return Ok(pm);
    }
    // A customer's card source pays as a card payment method does.
    if let Some(card) = ctx.store().get_of("card", id) {
        return Ok(card);
    }
    match test_card(id, "pm_card_") {
        Some(card) => card_method(ctx, card, None),
        None => Err(ApiError::no_such("PaymentMethod", id, param)),
    }
}

/// A test token's card (`tok_visa`), for a payment method or a customer's source.
fn token(id: &str, param: &str) -> ApiResult<&'static TestCard> {
    test_card(id, "tok_").ok_or_else(|| ApiError::no_such("token", id, param))
}

/// Attaches `pm` to `customer`: `payment_method.attached`.
pub fn attach(ctx: &Ctx, pm: &mut Value, customer: &str) -> ApiResult<()> {
    match pm["customer"].as_str() {
        Some(c) if c == customer => return Ok(()),
        Some(_) => {
            return Err(ApiError::state(
                "payment_method_unexpected_state",
                "The payment method you provided has already been attached to a customer.",
            ));
        }
        None => {}
    }
    pm["customer"] = json!(customer);
    ctx.put(pm);
    ctx.emit("payment_method.attached", pm, None);
    Ok(())
}

pub struct PaymentMethods;

impl Behaviour for PaymentMethods {
    fn object(&self) -> &'static str {
        "payment_method"
    }
    fn actions(&self) -> &'static [&'static str] {
        &["attach", "detach"]
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        match ctx.op {
            "create" => Some(create(ctx)),
            "attach" => Some(attach_call(ctx)),
            "detach" => Some(detach(ctx)),
            _ => None,
        }
    }
}

fn create(ctx: &Ctx) -> ApiResult<Value> {
    let kind = ctx
        .str_param("type")
        .ok_or_else(|| ApiError::missing_param("type"))?;
    let billing = ctx.param("billing_details");
    let mut pm = match kind {
        "card" => {
            let given = ctx.param("card").and_then(|c| c["token"].as_str()).ok_or_else(|| {
                ApiError::invalid(
                    "parameter_missing",
                    Some("card[token]"),
                    "The sandbox takes cards as Stripe's test tokens: card[token]=tok_visa, tok_chargeDeclined, … (docs.stripe.com/testing).",
                )
            })?;
            card_method(ctx, token(given, "card[token]")?, billing)?
        }
        "sepa_debit" => {
            let iban = ctx
                .param("sepa_debit")
                .and_then(|s| s["iban"].as_str())
                .ok_or_else(|| ApiError::missing_param("sepa_debit[iban]"))?
                .replace(' ', "");
            let mut pm = ctx.fresh("payment_method");
            pm["type"] = json!("sepa_debit");
            if let Some(map) = pm.as_object_mut() {
                map.shift_remove("card");
            }
            pm["sepa_debit"] = json!({
                "bank_code": iban.get(4..9).unwrap_or_default(),
                "branch_code": "",
                "country": iban.get(..2).unwrap_or_default(),
                "fingerprint": crate::secret::random_alnum(16),
                "generated_from": {"charge": null, "setup_attempt": null},
                "last4": &iban[iban.len().saturating_sub(4)..],
            });
            if let Some(b) = billing {
                pm["billing_details"] = ctx.shaped("payment_method", "billing_details", b);
            }
            ctx.put(&pm);
            let note = if FAILING_IBANS.contains(&iban.as_str()) {
                "sepa_fails"
            } else {
                "sepa"
            };
            ctx.store().set_private(
                pm["id"].as_str().unwrap_or_default(),
                "test_card",
                json!(note),
            );
            pm
        }
        other => {
            return Err(ApiError::invalid(
                "parameter_invalid",
                Some("type"),
                &format!(
                    "The sandbox makes payment methods of type card and sepa_debit, not {other}."
                ),
            ));
        }
    };
    crate::sandbox::stripe::engine::apply::merge_metadata(
        &mut pm,
        ctx.param("metadata").unwrap_or(&Value::Null),
    )?;
    ctx.put(&pm);
    Ok(pm)
}

fn attach_call(ctx: &Ctx) -> ApiResult<Value> {
    let customer = ctx
        .str_param("customer")
        .ok_or_else(|| ApiError::missing_param("customer"))?;
    ctx.find("customer", customer, "customer")?;
    let mut pm = resolve(ctx, ctx.id(), "payment_method")?;
    attach(ctx, &mut pm, customer)?;
    Ok(pm)
}

fn detach(ctx: &Ctx) -> ApiResult<Value> {
    let before = ctx.target()?;
    if before["customer"].is_null() {
        return Err(ApiError::state(
            "payment_method_unexpected_state",
            "The payment method you provided is not attached to a customer so detachment is impossible.",
        ));
    }
    let mut pm = before.clone();
    pm["customer"] = Value::Null;
    ctx.put(&pm);
    ctx.emit(
        "payment_method.detached",
        &pm,
        Some(json!({"customer": before["customer"]})),
    );
    Ok(pm)
}

/// A card source for `customer` from a test token (a customer's `source`, or Create a card).
pub fn card_source(ctx: &Ctx, customer: &str, tok: &str, param: &str) -> ApiResult<Value> {
    let test = token(tok, param)?;
    let mut card = ctx.fresh("card");
    card["customer"] = json!(customer);
    card["brand"] = json!(match test.brand {
        "visa" => "Visa",
        "mastercard" => "MasterCard",
        "amex" => "American Express",
        "discover" => "Discover",
        other => other,
    });
    card["last4"] = json!(test.last4);
    card["country"] = json!("US");
    card["cvc_check"] = json!("pass");
    card["fingerprint"] = json!(crate::secret::random_alnum(16));
    ctx.store().set_private(
        card["id"].as_str().unwrap_or_default(),
        "test_card",
        json!(test.name),
    );
    Ok(card)
}

/// A customer's card sources (`/v1/customers/{id}/sources`).
pub struct Cards;

impl Behaviour for Cards {
    fn object(&self) -> &'static str {
        "card"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &["source"]
    }
    fn create(&self, ctx: &Ctx, card: &mut Value) -> ApiResult<()> {
        let tok = ctx
            .str_param("source")
            .ok_or_else(|| ApiError::missing_param("source"))?;
        let made = card_source(ctx, &ctx.ids[0], tok, "source")?;
        *card = made;
        Ok(())
    }
    fn created(&self, ctx: &Ctx, card: &mut Value) -> ApiResult<()> {
        let before = ctx.get("customer", &ctx.ids[0])?;
        if before["default_source"].is_null() {
            let mut customer = before.clone();
            customer["default_source"] = card["id"].clone();
            ctx.save_update(&before, &customer);
        }
        Ok(())
    }
    fn deleted(&self, ctx: &Ctx, card: &Value) -> ApiResult<()> {
        let before = ctx.get("customer", &ctx.ids[0])?;
        if before["default_source"] == card["id"] {
            let mut customer = before.clone();
            let id = before["id"].as_str().unwrap_or_default().to_owned();
            let next = ctx
                .store()
                .all("card", &|c| c["customer"] == id.as_str())
                .into_iter()
                .last();
            customer["default_source"] = next.map_or(Value::Null, |c| c["id"].clone());
            ctx.save_update(&before, &customer);
        }
        Ok(())
    }
}
