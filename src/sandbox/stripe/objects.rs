//! The API objects the sandbox's Stripe creates for `stripe trigger` (and any client of the same
//! calls): one store by id, Stripe's nested form parameters as a JSON tree, objects started
//! from the event catalogue's (Stripe's example objects, generated to stripe-node's types), and
//! the events each call emits.

use super::*;
use crate::webhook::fixtures::Catalog;

impl super::engine::Store {
    /// A customer's invoice items not on an invoice yet, oldest first.
    pub fn pending_items(&self, customer: &str) -> Vec<Value> {
        self.all("invoiceitem", &|o| {
            o["customer"] == customer && o["invoice"].is_null()
        })
    }

    /// What charging `payment_method` does (the sandbox's note about a test card).
    pub fn outcome(&self, payment_method: &str) -> CardOutcome {
        match self
            .private(payment_method, "outcome")
            .as_ref()
            .and_then(Value::as_str)
        {
            Some("declined") => CardOutcome::Declined,
            _ => CardOutcome::Succeeds,
        }
    }

    pub fn set_outcome(&self, payment_method: &str, outcome: CardOutcome) {
        let name = match outcome {
            CardOutcome::Succeeds => "succeeds",
            CardOutcome::Declined => "declined",
        };
        self.set_private(payment_method, "outcome", json!(name));
    }
}

/// What charging a test card does (Stripe's test cards: docs.stripe.com/testing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardOutcome {
    Succeeds,
    /// `card_declined` / `generic_decline`: on confirm (`pm_card_chargeDeclined`) or only when a
    /// customer's attached card is charged (`pm_card_chargeCustomerFail`).
    Declined,
}

/// Stripe's form parameters as a tree: `a[b][c]=v` is `{"a": {"b": {"c": "v"}}}`, and
/// `items[0][price]=p` or `types[]=card` are lists. Values stay strings, as Stripe reads them.
pub fn params(form: &Form) -> Value {
    let mut root = Value::Object(Default::default());
    for (key, value) in form.pairs() {
        let mut segments = vec![key.split('[').next().unwrap_or(key)];
        let mut rest = &key[segments[0].len()..];
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else { break };
            segments.push(&inner[..end]);
            rest = &inner[end + 1..];
        }
        insert(&mut root, &segments, value);
    }
    root
}

fn insert(node: &mut Value, segments: &[&str], value: &str) {
    let Some((first, rest)) = segments.split_first() else {
        *node = Value::String(value.to_owned());
        return;
    };
    let list_item = first.is_empty() || first.bytes().all(|b| b.is_ascii_digit());
    if list_item && !node.is_array() && !node.is_object() {
        *node = Value::Array(Vec::new());
    }
    if let Value::Array(items) = node {
        let index = first.parse::<usize>().unwrap_or(items.len());
        while items.len() <= index {
            items.push(Value::Null);
        }
        return insert(&mut items[index], rest, value);
    }
    if !node.is_object() {
        *node = Value::Object(Default::default());
    }
    let child = node
        .as_object_mut()
        .expect("an object")
        .entry((*first).to_owned())
        .or_insert(Value::Null);
    insert(child, rest, value);
}

/// An integer parameter (`amount=2000`), or Stripe's error naming it.
pub fn integer(p: &Value, name: &str) -> std::result::Result<Option<i64>, Response> {
    match &p[name] {
        Value::Null => Ok(None),
        Value::String(s) => s.parse().map(Some).map_err(|_| {
            invalid(
                "parameter_invalid_integer",
                Some(name),
                &format!("Invalid integer: {s}"),
            )
        }),
        _ => Err(invalid(
            "parameter_invalid_integer",
            Some(name),
            &format!("Invalid integer: {name}"),
        )),
    }
}

pub fn required<'a>(p: &'a Value, name: &str) -> std::result::Result<&'a str, Response> {
    p[name].as_str().filter(|s| !s.is_empty()).ok_or_else(|| {
        invalid(
            "parameter_missing",
            Some(name),
            &format!("Missing required param: {name}."),
        )
    })
}

pub fn truthy(p: &Value, name: &str) -> bool {
    p[name].as_str() == Some("true")
}

/// The `metadata[…]` parameters, as Stripe stores them (strings; an empty value unsets a key).
pub fn merge_metadata(object: &mut Value, p: &Value) {
    if let Some(given) = p["metadata"].as_object() {
        let metadata = object["metadata"]
            .as_object_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut metadata = metadata;
        for (k, v) in given {
            match v.as_str() {
                Some("") | None => {
                    metadata.remove(k);
                }
                Some(s) => {
                    metadata.insert(k.clone(), Value::String(s.to_owned()));
                }
            }
        }
        object["metadata"] = Value::Object(metadata);
    }
}

/// A fresh object of `object` (as a catalogue event carries it): Stripe's example object, with a
/// new id of Stripe's prefix for it, `created` now, and the account's mode.
pub fn fresh(shared: &Shared, template_event: &str, prefix: &str) -> Value {
    let catalog = Catalog::load(None).expect("the embedded catalogue loads");
    let mut object = catalog
        .template(template_event)
        .map(|t| t["data"]["object"].clone())
        .unwrap_or_else(|_| json!({}));
    object["id"] = json!(format!("{prefix}_{}", secret::random_alnum(24)));
    if object.get("created").is_some() {
        object["created"] = json!(crate::webhook::signature::unix_now());
    }
    if object.get("livemode").is_some() {
        object["livemode"] = json!(shared.livemode());
    }
    if object.get("metadata").is_some() {
        object["metadata"] = json!({});
    }
    object
}

/// Records and delivers the event Stripe emits for a change of `object`: the catalogue's
/// envelope of `event_type`, the object as it is now, `previous_attributes` for an update, and
/// the request that caused it.
pub fn emit(shared: &Arc<Shared>, event_type: &str, object: &Value, previous: Option<Value>) {
    let catalog = Catalog::load(None).expect("the embedded catalogue loads");
    let mut event = catalog
        .template(event_type)
        .cloned()
        .unwrap_or_else(|_| json!({"object": "event", "data": {}}));
    event["id"] = json!(crate::webhook::fixtures::new_event_id());
    event["type"] = json!(event_type);
    event["created"] = json!(crate::webhook::signature::unix_now());
    event["livemode"] = json!(shared.livemode());
    event["api_version"] = json!(shared.api_version);
    if let Some(map) = event.as_object_mut() {
        map.remove("account"); // the account's own event, not a connected account's
    }
    event["request"] = json!({
        "id": format!("req_{}", secret::random_alnum(14)),
        "idempotency_key": format!("stripe-ops-{}", secret::random_alnum(16)),
    });
    let mut data = json!({"object": object});
    if let Some(p) = previous {
        data["previous_attributes"] = p;
    }
    event["data"] = data;
    crate::sandbox::delivery::publish(shared, event);
}

/// Stripe's answer for a payment that a card refused (`card_error`, HTTP 402).
pub fn card_declined(charge: Option<&str>, payment_intent: Option<&Value>) -> Response {
    let mut error = json!({
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "generic_decline",
        "message": "Your card was declined.",
        "doc_url": "https://stripe.com/docs/error-codes/card-declined",
    });
    if let Some(c) = charge {
        error["charge"] = json!(c);
    }
    if let Some(pi) = payment_intent {
        error["payment_intent"] = pi.clone();
    }
    (
        StatusCode::PAYMENT_REQUIRED,
        axum::Json(json!({ "error": error })),
    )
        .into_response()
}

/// The form body of a call, with Stripe's refusal of a malformed one.
pub fn body_params(body: &[u8]) -> std::result::Result<Value, Response> {
    Form::parse(body).map(|f| params(&f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_form_parameters_become_a_tree() {
        let form = Form::parse(
            b"line_items[0][price]=price_1&line_items[0][quantity]=2&payment_method_types[]=card\
              &metadata[foo]=bar&recurring[interval]=month&amount=2000",
        )
        .unwrap();
        assert_eq!(
            params(&form),
            json!({
                "line_items": [{"price": "price_1", "quantity": "2"}],
                "payment_method_types": ["card"],
                "metadata": {"foo": "bar"},
                "recurring": {"interval": "month"},
                "amount": "2000",
            })
        );
    }
}
