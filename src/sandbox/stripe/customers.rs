//! `/v1/customers`: create (`customer.created`, then `payment_method.attached` for a
//! `payment_method`), retrieve, update (`customer.updated` with `previous_attributes`), delete
//! (`customer.deleted`, answered with Stripe's deleted stub).

use super::objects::{self, emit, fresh};
use super::*;

/// The parameters Stripe takes (stripe-node 23's `CustomerCreateParams` and
/// `CustomerUpdateParams`); any other is Stripe's 400 `parameter_unknown`.
const CREATE_PARAMS: [&str; 23] = [
    "address",
    "balance",
    "business_name",
    "cash_balance",
    "description",
    "email",
    "expand",
    "individual_name",
    "invoice_prefix",
    "invoice_settings",
    "metadata",
    "name",
    "next_invoice_sequence",
    "payment_method",
    "phone",
    "preferred_locales",
    "shipping",
    "source",
    "tax",
    "tax_exempt",
    "tax_id_data",
    "test_clock",
    "validate",
];
const UPDATE_PARAMS: [&str; 21] = [
    "address",
    "balance",
    "business_name",
    "cash_balance",
    "default_source",
    "description",
    "email",
    "expand",
    "individual_name",
    "invoice_prefix",
    "invoice_settings",
    "metadata",
    "name",
    "next_invoice_sequence",
    "phone",
    "preferred_locales",
    "shipping",
    "source",
    "tax",
    "tax_exempt",
    "validate",
];

/// The fields a create or update may set, as Stripe names them.
const SETTABLE: [&str; 5] = ["description", "email", "name", "phone", "balance"];

fn apply(customer: &mut Value, p: &Value) -> std::result::Result<(), Response> {
    validate::metadata(&p["metadata"])?;
    if let Some(d) = p["description"].as_str() {
        validate::max_chars("description", d, validate::MAX_STRING)?;
    }
    for key in SETTABLE {
        match (&p[key], key) {
            (Value::Null, _) => {}
            (Value::String(v), "balance") => {
                let n: i64 = v.parse().map_err(|_| {
                    invalid(
                        "parameter_invalid_integer",
                        Some("balance"),
                        &format!("Invalid integer: {v}"),
                    )
                })?;
                customer["balance"] = json!(n);
            }
            (Value::String(v), _) if v.is_empty() => customer[key] = Value::Null,
            (v, _) => customer[key] = v.clone(),
        }
    }
    objects::merge_metadata(customer, p);
    Ok(())
}

pub(super) async fn create(State(shared): S, headers: HeaderMap, body: Bytes) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    try_answer!(validate::known_params(&p, &CREATE_PARAMS));
    let mut customer = fresh(&shared, "customer.created", "cus");
    for key in [
        "address",
        "shipping",
        "discount",
        "default_source",
        "test_clock",
    ] {
        if customer.get(key).is_some() {
            customer[key] = Value::Null;
        }
    }
    for key in ["description", "email", "name", "phone"] {
        customer[key] = Value::Null;
    }
    customer["balance"] = json!(0);
    customer["invoice_settings"]["default_payment_method"] = Value::Null;
    if let Err(r) = apply(&mut customer, &p) {
        return r;
    }
    let mut pm = match p["payment_method"].as_str() {
        Some(id) => match super::payments::resolve(&shared, id, "payment_method") {
            Ok(pm) => Some(pm),
            Err(r) => return r,
        },
        None => None,
    };
    if let Some(default) = p["invoice_settings"]["default_payment_method"].as_str() {
        // The fixture names the same shorthand twice: it means the payment method just attached.
        let same = pm
            .as_ref()
            .is_some_and(|_| p["payment_method"].as_str() == Some(default));
        let id = if same {
            pm.as_ref().map(|pm| pm["id"].clone()).unwrap_or_default()
        } else {
            match shared.stripe.objects.get_of("payment_method", default) {
                Some(found) => found["id"].clone(),
                None => {
                    return missing_param(
                        "PaymentMethod",
                        "invoice_settings[default_payment_method]",
                        default,
                    );
                }
            }
        };
        customer["invoice_settings"]["default_payment_method"] = id;
    }
    shared.stripe.objects.put(&customer);
    emit(&shared, "customer.created", &customer, None);
    if let Some(pm) = pm.as_mut() {
        super::payments::attach(&shared, pm, customer["id"].as_str().unwrap_or_default());
    }
    axum::Json(customer).into_response()
}

pub(super) async fn retrieve(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    authorized!(shared, headers);
    retrieve_as(&shared, "customer", &id)
}

pub(super) async fn update(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    authorized!(shared, headers);
    let p = try_answer!(objects::body_params(&body));
    try_answer!(validate::known_params(&p, &UPDATE_PARAMS));
    let Some(before) = shared.stripe.objects.get_of("customer", &id) else {
        return missing("customer", &id);
    };
    let mut customer = before.clone();
    if let Err(r) = apply(&mut customer, &p) {
        return r;
    }
    if let Some(default) = p["invoice_settings"]["default_payment_method"].as_str() {
        if shared
            .stripe
            .objects
            .get_of("payment_method", default)
            .is_none()
        {
            return missing_param(
                "PaymentMethod",
                "invoice_settings[default_payment_method]",
                default,
            );
        }
        customer["invoice_settings"]["default_payment_method"] = json!(default);
    }
    let previous = previous_attributes(&before, &customer);
    shared.stripe.objects.put(&customer);
    if previous.as_object().is_some_and(|m| !m.is_empty()) {
        emit(&shared, "customer.updated", &customer, Some(previous));
    }
    axum::Json(customer).into_response()
}

/// What an update changed, with the values from before: Stripe's `previous_attributes` (for
/// `metadata`, the keys that changed, a new key as `null`).
pub fn previous_attributes(before: &Value, after: &Value) -> Value {
    let mut previous = serde_json::Map::new();
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return json!({});
    };
    for (key, new) in a {
        let old = b.get(key).cloned().unwrap_or(Value::Null);
        if &old == new {
            continue;
        }
        if key == "metadata" {
            let mut changed = serde_json::Map::new();
            let empty = serde_json::Map::new();
            let (old_map, new_map) = (
                old.as_object().unwrap_or(&empty),
                new.as_object().unwrap_or(&empty),
            );
            for k in old_map.keys().chain(new_map.keys()) {
                if old_map.get(k) != new_map.get(k) {
                    changed.insert(k.clone(), old_map.get(k).cloned().unwrap_or(Value::Null));
                }
            }
            previous.insert(key.clone(), Value::Object(changed));
        } else {
            previous.insert(key.clone(), old);
        }
    }
    Value::Object(previous)
}

pub(super) async fn delete(
    State(shared): S,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    authorized!(shared, headers);
    let Some(customer) = shared.stripe.objects.get_of("customer", &id) else {
        return missing("customer", &id);
    };
    shared
        .stripe
        .objects
        .put(&json!({"id": id, "object": "deleted_customer"}));
    emit(&shared, "customer.deleted", &customer, None);
    axum::Json(json!({"id": id, "object": "customer", "deleted": true})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_attributes_name_what_changed_with_its_old_value() {
        let before = json!({"id": "cus_1", "email": null, "metadata": {"a": "1"}});
        let after =
            json!({"id": "cus_1", "email": "x@example.com", "metadata": {"a": "1", "foo": "bar"}});
        assert_eq!(
            previous_attributes(&before, &after),
            json!({"email": null, "metadata": {"foo": null}})
        );
    }
}
