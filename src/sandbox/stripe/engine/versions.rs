//! API versions in a call: the parameters Stripe removed at a version (`versions.toml`, from
//! Stripe's changelog) are taken from a call of an older version, and refused, as Stripe refuses
//! them, from that version on. A call's version is its `Stripe-Version` header, else the
//! account's default (`sandbox --api-version`; Stripe: "requests use your account's API version,
//! unless you override it with the Stripe-Version header", docs.stripe.com/api/versioning).

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};
use super::schema::Schema;

#[derive(Debug, Deserialize)]
struct Table {
    removed: Vec<Removed>,
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
/// `version` still has come back typed, to join the checked parameters; one it no longer has is
/// Stripe's refusal.
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
        let Some(value) = given.get(&r.param).cloned() else {
            continue;
        };
        if date(version) >= date(&r.since) {
            return Err(match (&r.code, &r.message) {
                (Some(code), Some(message)) => ApiError::invalid(code, Some(&r.param), message),
                _ => ApiError::unknown_param(&r.param),
            });
        }
        let schema = Schema::parse(&serde_json::to_value(&r.schema).unwrap_or(Value::Null));
        let typed = schema.coerce(&value, &r.param)?;
        given.shift_remove(&r.param);
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
                taken.insert(r.param.clone(), typed);
            }
        }
    }
    Ok(taken)
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
        let mut raw = json!({"coupon": "X"});
        let taken = take_removed("promotion_code.create", "2025-08-27.basil", &mut raw).unwrap();
        assert!(taken.is_empty());
        assert_eq!(raw, json!({"promotion": {"type": "coupon", "coupon": "X"}}));
    }
}
