//! API versions in a call: the parameters Stripe removed at a version (`versions.toml`, from
//! Stripe's changelog) are taken from a call of an older version, and refused, as Stripe refuses
//! them, from that version on. A call's version is its `Stripe-Version` header, else the
//! account's default (`sandbox --api-version`; Stripe: "requests use your account's API version,
//! unless you override it with the Stripe-Version header", docs.stripe.com/api/versioning).
//! Also the legacy values Stripe's API still reads at every version though stripe-node no longer
//! declares them (`[[legacy]]`): they are read as the value they stand for.

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};
use super::schema::Schema;

#[derive(Debug, Deserialize)]
struct Table {
    removed: Vec<Removed>,
    #[serde(default)]
    legacy: Vec<Legacy>,
}

/// A parameter's old spellings that Stripe still takes, and what each stands for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Legacy {
    methods: Vec<String>,
    /// The parameter's path, its segments joined by `.`.
    param: String,
    values: std::collections::HashMap<String, String>,
    #[allow(dead_code)]
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Removed {
    methods: Vec<String>,
    param: String,
    schema: toml::Value,
    since: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    into: Option<toml::Value>,
    #[allow(dead_code)]
    source: String,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        toml::from_str(include_str!("../versions.toml")).expect("versions.toml loads")
    })
}

/// The date of a version (`2025-03-31` of `2025-03-31.basil`), which orders versions.
fn date(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

/// Takes the removed parameters of `method` (`"customer.create"`) out of `raw`: those the call's
/// `version` still has come back typed, to join the checked parameters (a field of a list's
/// elements under its full name, `phases[0][iterations]`); one it no longer has is Stripe's
/// refusal.
pub fn take_removed(method: &str, version: &str, raw: &mut Value) -> ApiResult<Map<String, Value>> {
    let mut taken = Map::new();
    let Some(given) = raw.as_object_mut() else {
        return Ok(taken);
    };
    for r in table()
        .removed
        .iter()
        .filter(|r| r.methods.iter().any(|m| m == method))
    {
        for (name, value) in take_param(given, &r.param) {
            if date(version) >= date(&r.since) {
                return Err(match (&r.code, &r.message) {
                    (Some(code), Some(message)) => ApiError::invalid(code, Some(&name), message),
                    _ => ApiError::unknown_param(&name),
                });
            }
            let schema = Schema::parse(&serde_json::to_value(&r.schema).unwrap_or(Value::Null));
            let typed = schema.coerce(&value, &name)?;
            match &r.into {
                // Sent the newer way instead, and checked as such.
                Some(into) => {
                    let rewritten =
                        substitute(serde_json::to_value(into).unwrap_or(Value::Null), &value);
                    for (k, v) in rewritten.as_object().into_iter().flatten() {
                        given.insert(k.clone(), v.clone());
                    }
                }
                None => {
                    taken.insert(name, typed);
                }
            }
        }
    }
    Ok(taken)
}

/// Reads the legacy values of `method`'s parameters in `raw` as the values they stand for.
pub fn read_legacy(method: &str, raw: &mut Value) {
    for l in table()
        .legacy
        .iter()
        .filter(|l| l.methods.iter().any(|m| m == method))
    {
        let pointer = format!("/{}", l.param.replace('.', "/"));
        if let Some(node) = raw.pointer_mut(&pointer)
            && let Some(new) = node.as_str().and_then(|old| l.values.get(old))
        {
            *node = Value::String(new.clone());
        }
    }
}

/// Takes `param` out of `given`, with Stripe's name for each value: `name`, or `list[].field`,
/// the field of every element of a list (`phases[0][iterations]`, `phases[1][iterations]`).
fn take_param(given: &mut Map<String, Value>, param: &str) -> Vec<(String, Value)> {
    let Some((list, field)) = param.split_once("[].") else {
        return given
            .shift_remove(param)
            .map(|v| (param.to_owned(), v))
            .into_iter()
            .collect();
    };
    given
        .get_mut(list)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, element)| {
            let value = element.as_object_mut()?.shift_remove(field)?;
            Some((format!("{list}[{i}][{field}]"), value))
        })
        .collect()
}

/// `into` with `"$"` replaced by the value given.
fn substitute(template: Value, value: &Value) -> Value {
    match template {
        Value::String(s) if s == "$" => value.clone(),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, substitute(v, value)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| substitute(v, value)).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_older_version_keeps_a_removed_parameter_and_a_newer_one_refuses_it() {
        let mut raw = json!({"amount": "100", "payment_method_types": ["card"]});
        let taken = take_removed("payment_intent.create", "2026-08-26.dahlia", &mut raw).unwrap();
        assert_eq!(taken["payment_method_types"], json!(["card"]));
        assert_eq!(raw, json!({"amount": "100"}));
        let mut raw = json!({"payment_method_types": ["card"]});
        let e = take_removed("payment_intent.create", "2026-11-18.endive", &mut raw).unwrap_err();
        assert_eq!(
            e.body()["error"]["code"],
            "payment_method_types_no_longer_supported"
        );
        let mut raw = json!({"coupon": "X"});
        let e = take_removed("customer.create", "2025-03-31.basil", &mut raw).unwrap_err();
        assert_eq!(
            e.body()["error"]["message"],
            "Received unknown parameter: coupon"
        );
        assert!(
            take_removed(
                "customer.create",
                "2025-02-24.acacia",
                &mut json!({"coupon": "X"})
            )
            .is_ok()
        );
        let mut raw = json!({"phases": [{"iterations": "2", "items": []}, {"items": []}]});
        let taken = take_removed(
            "subscription_schedule.create",
            "2025-02-24.acacia",
            &mut raw,
        )
        .unwrap();
        assert_eq!(taken["phases[0][iterations]"], json!(2));
        assert_eq!(raw, json!({"phases": [{"items": []}, {"items": []}]}));
        let mut raw = json!({"phases": [{"iterations": "2"}]});
        let e = take_removed(
            "subscription_schedule.create",
            "2025-09-30.clover",
            &mut raw,
        )
        .unwrap_err();
        assert_eq!(e.body()["error"]["param"], "phases[0][iterations]");
        let mut raw = json!({"coupon": "X"});
        let taken = take_removed("promotion_code.create", "2025-08-27.basil", &mut raw).unwrap();
        assert!(taken.is_empty());
        assert_eq!(raw, json!({"promotion": {"type": "coupon", "coupon": "X"}}));
    }

    #[test]
    fn a_legacy_value_is_read_as_the_value_it_stands_for() {
        let mut raw = json!({"payment_method_options": {"customer_balance": {"bank_transfer": {"type": "jp_bank_account"}}}});
        read_legacy("payment_intent.create", &mut raw);
        assert_eq!(
            raw["payment_method_options"]["customer_balance"]["bank_transfer"]["type"],
            "jp_bank_transfer"
        );
        let mut other = json!({"payment_method_options": {"customer_balance": {"bank_transfer": {"type": "nope"}}}, "amount": "1"});
        let before = other.clone();
        read_legacy("payment_intent.create", &mut other);
        assert_eq!(
            other, before,
            "an unknown value is left for the schema to refuse"
        );
        let mut partial = json!({"payment_method_options": {"card": {}}});
        read_legacy("payment_intent.create", &mut partial);
        assert_eq!(partial, json!({"payment_method_options": {"card": {}}}));
    }
}
