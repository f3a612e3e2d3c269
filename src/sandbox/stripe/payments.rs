//! Payment methods (Stripe's test cards and tokens, SEPA test IBANs), payment intents (create,
//! confirm, retrieve), charges and refunds: `/v1/payment_methods`, `/v1/payment_intents`,
//! `/v1/charges/{id}`, `/v1/refunds`. A payment emits what Stripe emits for it, in this order:
//! `payment_intent.created`, then `charge.succeeded` and `payment_intent.succeeded`, or
//! `charge.failed` and `payment_intent.payment_failed` (a SEPA debit goes through
//! `payment_intent.processing` first).

use super::objects::{self, CardOutcome, card_declined, emit, fresh, integer, required, truthy};
use super::*;

/// A test card: Stripe's shorthand payment method and token, what it is and what charging it does
/// (docs.stripe.com/testing).
struct TestCard {
    names: [&'static str; 2],
    brand: &'static str,
    last4: &'static str,
    outcome: CardOutcome,
}

const TEST_CARDS: [TestCard; 5] = [
    TestCard {
        names: ["pm_card_visa", "tok_visa"],
        brand: "visa",
        last4: "4242",
        outcome: CardOutcome::Succeeds,
    },
    TestCard {
        names: ["pm_card_mastercard", "tok_mastercard"],
        brand: "mastercard",
        last4: "4444",
        outcome: CardOutcome::Succeeds,
    },
    TestCard {
        names: ["pm_card_amex", "tok_amex"],
        brand: "amex",
        last4: "8431",
        outcome: CardOutcome::Succeeds,
    },
    TestCard {
        names: ["pm_card_chargeDeclined", "tok_chargeDeclined"],
        brand: "visa",
        last4: "0002",
        outcome: CardOutcome::Declined,
    },
    TestCard {
        names: ["pm_card_chargeCustomerFail", "tok_chargeCustomerFail"],
        brand: "visa",
        last4: "0341",
        outcome: CardOutcome::Declined,
    },
];

/// SEPA test IBANs whose debit fails after processing (docs.stripe.com/testing, SEPA Direct
/// Debit); any other IBAN succeeds.
const FAILING_IBANS: [&str; 3] = [
    "AT861904300235473202",
    "AT321904300235473204",
    "IT60X0542811101000000123456",
];

/// A new payment method object for a test card.
fn card_method(shared: &Shared, card: &TestCard, billing: Option<&Value>) -> Value {
    let mut pm = fresh(shared, "payment_method.attached", "pm");
    pm["type"] = json!("card");
    pm["customer"] = Value::Null;
    pm["card"]["brand"] = json!(card.brand);
    pm["card"]["display_brand"] = json!(card.brand);
    pm["card"]["last4"] = json!(card.last4);
    pm["card"]["fingerprint"] = json!(secret::random_alnum(16));
    if let Some(b) = billing.filter(|b| b.is_object()) {
        merge_billing(&mut pm, b);
    }
    shared
        .stripe
        .objects
        .set_outcome(pm["id"].as_str().unwrap_or_default(), card.outcome);
    pm
}

fn merge_billing(pm: &mut Value, given: &Value) {
    for key in ["email", "name", "phone"] {
        if let Some(v) = given[key].as_str() {
            pm["billing_details"][key] = json!(v);
        }
    }
    if let Some(address) = given["address"].as_object() {
        for (k, v) in address {
            pm["billing_details"]["address"][k] = v.clone();
        }
    }
}

fn test_card(name: &str) -> Option<&'static TestCard> {
    TEST_CARDS.iter().find(|c| c.names.contains(&name))
}

/// The payment method a call names: an existing one, or a new one for a `pm_card_…` shorthand
/// (Stripe makes a new `pm_` for each use of one).
pub fn resolve(shared: &Shared, id: &str, param: &str) -> std::result::Result<Value, Response> {
    if let Some(pm) = shared.stripe.objects.get_of("payment_method", id) {
        return Ok(pm);
    }
    match test_card(id).filter(|_| id.starts_with("pm_")) {
        Some(card) => {
            let pm = card_method(shared, card, None);
            shared.stripe.objects.put(&pm);
            Ok(pm)
        }
        None => Err(missing_param("PaymentMethod", param, id)),
    }
}

pub(super) async fn create_method(State(shared): S, headers: HeaderMap, body: Bytes) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    let kind = try_answer!(required(&p, "type"));
    let pm = match kind {
        "card" => {
            let token = p["card"]["token"].as_str().unwrap_or_default();
            let Some(card) = test_card(token).filter(|_| token.starts_with("tok_")) else {
                return invalid(
                    "parameter_invalid_string",
                    Some("card[token]"),
                    "The sandbox takes cards as Stripe's test tokens (card[token]=tok_visa, tok_chargeDeclined, …)",
                );
            };
            card_method(&shared, card, Some(&p["billing_details"]))
        }
        "sepa_debit" => {
            let iban = match required(&p["sepa_debit"], "iban") {
                Ok(i) => i.replace(' ', ""),
                Err(_) => {
                    return invalid(
                        "parameter_missing",
                        Some("sepa_debit[iban]"),
                        "Missing required param: sepa_debit[iban].",
                    );
                }
            };
            let mut pm = fresh(&shared, "payment_method.attached", "pm");
            pm["type"] = json!("sepa_debit");
            pm["customer"] = Value::Null;
            if let Some(map) = pm.as_object_mut() {
                map.remove("card");
            }
            pm["sepa_debit"] = json!({
                "bank_code": &iban[4..9.min(iban.len())],
                "branch_code": "",
                "country": &iban[..2.min(iban.len())],
                "fingerprint": secret::random_alnum(16),
                "generated_from": {"charge": null, "setup_attempt": null},
                "last4": &iban[iban.len().saturating_sub(4)..],
            });
            merge_billing(&mut pm, &p["billing_details"]);
            let outcome = if FAILING_IBANS.contains(&iban.as_str()) {
                CardOutcome::Declined
            } else {
                CardOutcome::Succeeds
            };
            shared
                .stripe
                .objects
                .set_outcome(pm["id"].as_str().unwrap_or_default(), outcome);
            pm
        }
        other => {
            return invalid(
                "parameter_invalid_string",
                Some("type"),
                &format!(
                    "The sandbox does not create payment methods of type {other} (card, sepa_debit)"
                ),
            );
        }
    };
    shared.stripe.objects.put(&pm);
    axum::Json(pm).into_response()
}

pub(super) async fn retrieve_method(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    authorized!(shared, headers);
    retrieve_as(&shared, "payment_method", &id)
}

/// Attaches a payment method to a customer: `payment_method.attached`.
pub fn attach(shared: &Arc<Shared>, pm: &mut Value, customer: &str) {
    pm["customer"] = json!(customer);
    shared.stripe.objects.put(pm);
    emit(shared, "payment_method.attached", pm, None);
}

pub(super) async fn attach_method(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    let customer = match required(&p, "customer") {
        Ok(c) => c.to_owned(),
        Err(r) => return r,
    };
    if shared
        .stripe
        .objects
        .get_of("customer", &customer)
        .is_none()
    {
        return missing_param("customer", "customer", &customer);
    }
    let mut pm = match resolve(&shared, &id, "payment_method") {
        Ok(pm) => pm,
        Err(r) => return r,
    };
    attach(&shared, &mut pm, &customer);
    axum::Json(pm).into_response()
}

/// What a new payment intent is made of.
pub struct NewIntent<'a> {
    pub amount: i64,
    pub currency: &'a str,
    pub customer: Option<&'a str>,
    pub payment_method: Option<Value>,
    pub description: Option<&'a str>,
    pub metadata: Value,
    pub payment_method_types: Vec<String>,
    pub shipping: Value,
}

fn intent_object(shared: &Shared, new: &NewIntent) -> Value {
    let mut pi = fresh(shared, "payment_intent.created", "pi");
    let id = pi["id"].as_str().unwrap_or_default().to_owned();
    pi["amount"] = json!(new.amount);
    pi["amount_capturable"] = json!(0);
    pi["amount_received"] = json!(0);
    pi["currency"] = json!(new.currency);
    pi["customer"] = json!(new.customer);
    pi["description"] = json!(new.description);
    pi["metadata"] = new.metadata.clone();
    pi["payment_method"] = new
        .payment_method
        .as_ref()
        .map_or(Value::Null, |pm| pm["id"].clone());
    pi["payment_method_types"] = json!(new.payment_method_types);
    pi["allowed_payment_method_types"] = json!(new.payment_method_types);
    pi["shipping"] = new.shipping.clone();
    pi["client_secret"] = json!(format!("{id}_secret_{}", secret::random_alnum(24)));
    pi["latest_charge"] = Value::Null;
    pi["last_payment_error"] = Value::Null;
    pi["canceled_at"] = Value::Null;
    pi["cancellation_reason"] = Value::Null;
    pi["processing"] = Value::Null;
    pi["status"] = json!(if new.payment_method.is_some() {
        "requires_confirmation"
    } else {
        "requires_payment_method"
    });
    pi
}

/// Creates a payment intent (`payment_intent.created`) and, with `confirm`, pays it. Returns
/// the intent as it ends, and the failed charge's id when the payment was declined.
pub fn create_intent(
    shared: &Arc<Shared>,
    new: NewIntent,
    confirm: bool,
) -> (Value, Option<String>) {
    let mut pi = intent_object(shared, &new);
    shared.stripe.objects.put(&pi);
    emit(shared, "payment_intent.created", &pi, None);
    if !confirm {
        return (pi, None);
    }
    let Some(pm) = new.payment_method else {
        return (pi, None);
    };
    let declined = pay(shared, &mut pi, &pm);
    (pi, declined)
}

/// Charges `pm` for the intent: the charge, then the intent's new state, each with its event.
/// A SEPA debit is `processing` first. Returns the failed charge's id on a decline.
pub fn pay(shared: &Arc<Shared>, pi: &mut Value, pm: &Value) -> Option<String> {
    if pm["type"] != "card" {
        start_processing(shared, pi, pm);
    }
    settle(shared, pi, pm)
}

/// An asynchronous method (SEPA debit) is `processing` until the debit settles.
pub fn start_processing(shared: &Arc<Shared>, pi: &mut Value, pm: &Value) {
    pi["status"] = json!("processing");
    pi["payment_method"] = pm["id"].clone();
    shared.stripe.objects.put(pi);
    emit(shared, "payment_intent.processing", pi, None);
}

/// The charge and the intent's final state. Returns the failed charge's id on a decline.
pub fn settle(shared: &Arc<Shared>, pi: &mut Value, pm: &Value) -> Option<String> {
    let outcome = shared
        .stripe
        .objects
        .outcome(pm["id"].as_str().unwrap_or_default());
    let charge = charge_object(shared, pi, pm, outcome);
    shared.stripe.objects.put(&charge);
    pi["latest_charge"] = charge["id"].clone();
    match outcome {
        CardOutcome::Succeeds => {
            emit(shared, "charge.succeeded", &charge, None);
            pi["status"] = json!("succeeded");
            pi["amount_received"] = pi["amount"].clone();
            pi["payment_method"] = pm["id"].clone();
            shared.stripe.objects.put(pi);
            emit(shared, "payment_intent.succeeded", pi, None);
            None
        }
        CardOutcome::Declined => {
            emit(shared, "charge.failed", &charge, None);
            pi["status"] = json!("requires_payment_method");
            pi["payment_method"] = Value::Null;
            pi["last_payment_error"] = json!({
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "charge": charge["id"],
                "payment_method": pm,
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            });
            shared.stripe.objects.put(pi);
            emit(shared, "payment_intent.payment_failed", pi, None);
            charge["id"].as_str().map(str::to_owned)
        }
    }
}

fn charge_object(shared: &Shared, pi: &Value, pm: &Value, outcome: CardOutcome) -> Value {
    let mut ch = fresh(shared, "charge.succeeded", "ch");
    let ok = outcome == CardOutcome::Succeeds;
    let id = ch["id"].as_str().unwrap_or_default().to_owned();
    for key in [
        "amount",
        "currency",
        "customer",
        "description",
        "metadata",
        "shipping",
    ] {
        ch[key] = pi[key].clone();
    }
    ch["amount_captured"] = json!(if ok { pi["amount"].clone() } else { json!(0) });
    ch["amount_refunded"] = json!(0);
    ch["refunded"] = json!(false);
    ch["payment_intent"] = pi["id"].clone();
    ch["payment_method"] = pm["id"].clone();
    ch["billing_details"] = pm["billing_details"].clone();
    ch["paid"] = json!(ok);
    ch["captured"] = json!(ok);
    ch["status"] = json!(if ok { "succeeded" } else { "failed" });
    ch["balance_transaction"] = if ok {
        json!(format!("txn_{}", secret::random_alnum(24)))
    } else {
        Value::Null
    };
    ch["failure_code"] = if ok {
        Value::Null
    } else {
        json!("card_declined")
    };
    ch["failure_message"] = if ok {
        Value::Null
    } else {
        json!("Your card was declined.")
    };
    ch["outcome"]["type"] = json!(if ok { "authorized" } else { "issuer_declined" });
    ch["outcome"]["network_status"] = json!(if ok {
        "approved_by_network"
    } else {
        "declined_by_network"
    });
    ch["outcome"]["reason"] = if ok {
        Value::Null
    } else {
        json!("generic_decline")
    };
    ch["outcome"]["seller_message"] = json!(if ok {
        "Payment complete."
    } else {
        "The bank did not return any further details with this decline."
    });
    if pm["type"] == "card" {
        ch["payment_method_details"]["type"] = json!("card");
        ch["payment_method_details"]["card"]["brand"] = pm["card"]["brand"].clone();
        ch["payment_method_details"]["card"]["last4"] = pm["card"]["last4"].clone();
    } else {
        ch["payment_method_details"] = json!({"type": pm["type"], pm["type"].as_str().unwrap_or("sepa_debit"): pm[pm["type"].as_str().unwrap_or("sepa_debit")]});
    }
    ch["receipt_url"] = json!(format!("{}/receipts/{id}", shared.stripe_api_url));
    ch["refunds"] = json!({"object": "list", "data": [], "has_more": false, "total_count": 0, "url": format!("/v1/charges/{id}/refunds")});
    ch
}

fn intent_params(
    shared: &Shared,
    p: &Value,
) -> std::result::Result<(i64, String, Option<Value>, Vec<String>), Response> {
    let amount = integer(p, "amount")?.ok_or_else(|| {
        invalid(
            "parameter_missing",
            Some("amount"),
            "Missing required param: amount.",
        )
    })?;
    if amount < 1 {
        return Err(invalid(
            "parameter_invalid_integer",
            Some("amount"),
            "This value must be greater than or equal to 1.",
        ));
    }
    let currency = required(p, "currency")?.to_ascii_lowercase();
    let pm = match p["payment_method"].as_str() {
        Some(id) => Some(resolve(shared, id, "payment_method")?),
        None => None,
    };
    let types = p["payment_method_types"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_else(|| vec!["card".to_owned()]);
    Ok((amount, currency, pm, types))
}

pub(super) async fn create_payment_intent(
    State(shared): S,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    let (amount, currency, pm, types) = match intent_params(&shared, &p) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let customer = p["customer"].as_str();
    if let Some(c) = customer
        && shared.stripe.objects.get_of("customer", c).is_none()
    {
        return missing_param("customer", "customer", c);
    }
    let confirm = truthy(&p, "confirm");
    if confirm && pm.is_none() {
        return invalid(
            "parameter_missing",
            Some("payment_method"),
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
        );
    }
    let mut metadata = json!({});
    objects::merge_metadata(&mut metadata, &json!({"metadata": p["metadata"]}));
    let new = NewIntent {
        amount,
        currency: &currency,
        customer,
        payment_method: pm,
        description: p["description"].as_str(),
        metadata: metadata["metadata"].clone(),
        payment_method_types: types,
        shipping: shipping(&p["shipping"]),
    };
    let (pi, declined) = create_intent(&shared, new, confirm);
    match declined {
        Some(charge) => card_declined(Some(&charge), Some(&pi)),
        None => axum::Json(pi).into_response(),
    }
}

/// `shipping[name]`, `shipping[address][…]` as Stripe stores them.
pub fn shipping(given: &Value) -> Value {
    if !given.is_object() {
        return Value::Null;
    }
    let field = |k: &str| given["address"][k].clone();
    json!({
        "address": {
            "city": field("city"), "country": field("country"), "line1": field("line1"),
            "line2": field("line2"), "postal_code": field("postal_code"), "state": field("state"),
        },
        "carrier": given["carrier"], "name": given["name"], "phone": given["phone"],
        "tracking_number": given["tracking_number"],
    })
}

pub(super) async fn retrieve_payment_intent(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    authorized!(shared, headers);
    retrieve_as(&shared, "payment_intent", &id)
}

pub(super) async fn confirm_payment_intent(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    let Some(mut pi) = shared.stripe.objects.get_of("payment_intent", &id) else {
        return missing("payment_intent", &id);
    };
    if !matches!(
        pi["status"].as_str(),
        Some("requires_confirmation" | "requires_payment_method")
    ) {
        return invalid(
            "payment_intent_unexpected_state",
            None,
            &format!(
                "This PaymentIntent's status is {}, so it cannot be confirmed.",
                pi["status"].as_str().unwrap_or("")
            ),
        );
    }
    let named = p["payment_method"]
        .as_str()
        .or(pi["payment_method"].as_str())
        .map(str::to_owned);
    let Some(named) = named else {
        return invalid(
            "parameter_missing",
            Some("payment_method"),
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
        );
    };
    let pm = try_answer!(resolve(&shared, &named, "payment_method"));
    match pay(&shared, &mut pi, &pm) {
        Some(charge) => card_declined(Some(&charge), Some(&pi)),
        None => axum::Json(pi).into_response(),
    }
}

pub(super) async fn retrieve_charge(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    authorized!(shared, headers);
    retrieve_as(&shared, "charge", &id)
}

/// `POST /v1/refunds` (`payment_intent` or `charge`, `amount` defaulting to what is left):
/// `refund.created`, then `charge.refunded` with the charge's previous refund state.
pub(super) async fn create_refund(State(shared): S, headers: HeaderMap, body: Bytes) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    let charge_id = match (p["charge"].as_str(), p["payment_intent"].as_str()) {
        (Some(c), _) => c.to_owned(),
        (None, Some(pi)) => match shared.stripe.objects.get_of("payment_intent", pi) {
            Some(intent) => intent["latest_charge"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            None => return missing_param("payment_intent", "payment_intent", pi),
        },
        (None, None) => {
            return invalid(
                "parameter_missing",
                Some("charge"),
                "One of the following params should be provided for this request: payment_intent or charge.",
            );
        }
    };
    let Some(mut charge) = shared
        .stripe
        .objects
        .get_of("charge", &charge_id)
        .filter(|c| c["paid"] == true)
    else {
        return invalid(
            "charge_not_refundable",
            Some("charge"),
            &format!("Charge {charge_id} has not been paid or does not exist."),
        );
    };
    let left =
        charge["amount"].as_i64().unwrap_or(0) - charge["amount_refunded"].as_i64().unwrap_or(0);
    let amount = match integer(&p, "amount") {
        Ok(a) => a.unwrap_or(left),
        Err(r) => return r,
    };
    if left == 0 {
        return invalid(
            "charge_already_refunded",
            None,
            &format!("Charge {charge_id} has already been refunded."),
        );
    }
    if amount < 1 || amount > left {
        return invalid(
            "amount_too_large",
            Some("amount"),
            &format!(
                "Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"
            ),
        );
    }
    let mut refund = fresh(&shared, "refund.created", "re");
    refund["amount"] = json!(amount);
    refund["currency"] = charge["currency"].clone();
    refund["charge"] = json!(charge_id);
    refund["payment_intent"] = charge["payment_intent"].clone();
    refund["status"] = json!("succeeded");
    refund["reason"] = p["reason"].clone();
    refund["balance_transaction"] = json!(format!("txn_{}", secret::random_alnum(24)));
    objects::merge_metadata(&mut refund, &p);
    shared.stripe.objects.put(&refund);
    emit(&shared, "refund.created", &refund, None);
    let previous = json!({"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"], "refunds": charge["refunds"]});
    charge["amount_refunded"] = json!(charge["amount_refunded"].as_i64().unwrap_or(0) + amount);
    charge["refunded"] = json!(amount == left);
    if let Some(list) = charge["refunds"]["data"].as_array_mut() {
        list.insert(0, refund.clone());
    }
    charge["refunds"]["total_count"] =
        json!(charge["refunds"]["data"].as_array().map_or(0, Vec::len));
    shared.stripe.objects.put(&charge);
    emit(&shared, "charge.refunded", &charge, Some(previous));
    axum::Json(refund).into_response()
}
