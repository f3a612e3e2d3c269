//! A call's parameters against what stripe-node declares for it (`*CreateParams`,
//! `*UpdateParams`, `*ListParams`, generated into fixtures/api/ by fixtures/apimodel.py): an
//! unknown parameter, a missing required one or a value of the wrong type is Stripe's 400, and
//! a valid tree comes back typed (form bodies carry strings; `amount=2000` becomes a number,
//! `confirm=true` a boolean), ready to be applied to an object.

use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};

/// The declared type of one parameter. The compact JSON form is apimodel.py's: "s", "n", "b",
/// "any", {"enum"}, {"obj", "req"}, {"arr"}, {"map"}, {"or"}.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    String,
    Number,
    Bool,
    Any,
    Enum(Vec<String>),
    Object {
        fields: Map<String, Value>,
        required: Vec<String>,
    },
    Array(Box<Schema>),
    Map(Box<Schema>),
    Or(Vec<Schema>),
}

impl Schema {
    pub fn parse(v: &Value) -> Schema {
        match v {
            Value::String(s) => match s.as_str() {
                "s" => Schema::String,
                "n" => Schema::Number,
                "b" => Schema::Bool,
                _ => Schema::Any,
            },
            Value::Object(o) => {
                if let Some(values) = o.get("enum").and_then(Value::as_array) {
                    Schema::Enum(
                        values
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect(),
                    )
                } else if let Some(fields) = o.get("obj").and_then(Value::as_object) {
                    let required = o
                        .get("req")
                        .and_then(Value::as_array)
                        .map(|r| {
                            r.iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    // Fields stay JSON until a call uses them: most of a big schema never is.
                    Schema::Object {
                        fields: fields.clone(),
                        required,
                    }
                } else if let Some(item) = o.get("arr") {
                    Schema::Array(Box::new(Schema::parse(item)))
                } else if let Some(item) = o.get("map") {
                    Schema::Map(Box::new(Schema::parse(item)))
                } else if let Some(alts) = o.get("or").and_then(Value::as_array) {
                    Schema::Or(alts.iter().map(Schema::parse).collect())
                } else {
                    Schema::Any
                }
            }
            _ => Schema::Any,
        }
    }

    /// The names an object schema declares (empty for any other).
    pub fn field_names(&self) -> Vec<&str> {
        match self {
            Schema::Object { fields, .. } => fields.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Checks `value` (a parameter tree of strings, or JSON) at `path` and returns it typed.
    pub fn coerce(&self, value: &Value, path: &str) -> ApiResult<Value> {
        match self {
            Schema::Any => Ok(value.clone()),
            Schema::String => match value {
                // Stripe reads "" as unsetting, which only an emptyable parameter may do.
                Value::String(s) if s.is_empty() => Err(ApiError::invalid(
                    "parameter_invalid_empty",
                    Some(path),
                    &format!(
                        "You passed an empty string for '{path}'. We assume empty values are an attempt to unset a parameter; however '{path}' cannot be unset. You should remove '{path}' from your request or supply a non-empty value."
                    ),
                )),
                Value::String(_) => Ok(value.clone()),
                Value::Number(n) => Ok(Value::String(n.to_string())),
                Value::Bool(b) => Ok(Value::String(b.to_string())),
                other => Err(invalid_value("Invalid string", path, other)),
            },
            Schema::Number => number(value, path),
            Schema::Bool => match value {
                Value::Bool(_) => Ok(value.clone()),
                Value::String(s) if s == "true" => Ok(Value::Bool(true)),
                Value::String(s) if s == "false" => Ok(Value::Bool(false)),
                other => Err(ApiError::invalid(
                    "parameter_invalid_boolean",
                    Some(path),
                    &format!("Invalid boolean: {}", text(other)),
                )),
            },
            Schema::Enum(values) => match value.as_str() {
                Some(s) if values.iter().any(|v| v == s) => Ok(value.clone()),
                _ => Err(ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    None,
                    Some(path),
                    &format!("Invalid {path}: must be one of {}", one_of(values)),
                )),
            },
            Schema::Object { fields, required } => {
                let Some(given) = value.as_object() else {
                    return Err(invalid_value("Invalid object", path, value));
                };
                let mut out = Map::new();
                for (key, v) in given {
                    let at = join(path, key);
                    let Some(declared) = fields.get(key) else {
                        return Err(ApiError::unknown_param(&at));
                    };
                    out.insert(key.clone(), Schema::parse(declared).coerce(v, &at)?);
                }
                if let Some(missing) = required.iter().find(|r| !given.contains_key(*r)) {
                    return Err(ApiError::missing_param(&join(path, missing)));
                }
                Ok(Value::Object(out))
            }
            Schema::Array(item) => match value {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(i, v)| item.coerce(v, &format!("{path}[{i}]")))
                    .collect::<ApiResult<Vec<_>>>()
                    .map(Value::Array),
                other => Err(invalid_value("Invalid array", path, other)),
            },
            Schema::Map(item) => match value {
                Value::Object(entries) => entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), item.coerce(v, &join(path, k))?)))
                    .collect::<ApiResult<Map<_, _>>>()
                    .map(Value::Object),
                other => Err(invalid_value("Invalid hash", path, other)),
            },
            Schema::Or(alts) => {
                let mut first_error = None;
                for alt in alts {
                    match alt.coerce(value, path) {
                        Ok(v) => return Ok(v),
                        // The alternative of the value's own kind explains the refusal best.
                        Err(e) if first_error.is_none() || alt.takes_kind_of(value) => {
                            first_error = Some(e)
                        }
                        Err(_) => {}
                    }
                }
                Err(first_error.unwrap_or_else(|| invalid_value("Invalid value", path, value)))
            }
        }
    }

    fn takes_kind_of(&self, value: &Value) -> bool {
        match self {
            Schema::Object { .. } | Schema::Map(_) => value.is_object(),
            Schema::Array(_) => value.is_array(),
            Schema::Or(_) | Schema::Any => false,
            _ => value.is_string(),
        }
    }
}

/// A number parameter: an integer where the text is one, else a decimal (`percent_off=12.5`).
fn number(value: &Value, path: &str) -> ApiResult<Value> {
    match value {
        Value::Number(_) => Ok(value.clone()),
        Value::String(s) => {
            if let Ok(i) = s.trim().parse::<i64>() {
                return Ok(Value::from(i));
            }
            match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() && !s.trim().is_empty() => Ok(Value::from(f)),
                _ => Err(ApiError::invalid(
                    "parameter_invalid_integer",
                    Some(path),
                    &format!("Invalid integer: {s}"),
                )),
            }
        }
        other => Err(ApiError::invalid(
            "parameter_invalid_integer",
            Some(path),
            &format!("Invalid integer: {}", text(other)),
        )),
    }
}

fn invalid_value(what: &str, path: &str, value: &Value) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "invalid_request_error",
        None,
        Some(path),
        &format!("{what}: {}", text(value)),
    )
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `a, b, or c`, as Stripe lists the values of an enumeration.
fn one_of(values: &[String]) -> String {
    let shown: Vec<&str> = values
        .iter()
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .collect();
    match shown.len() {
        0 => String::new(),
        1 => shown[0].to_owned(),
        2 => format!("{} or {}", shown[0], shown[1]),
        n => format!("{}, or {}", shown[..n - 1].join(", "), shown[n - 1]),
    }
}

/// `metadata` + `foo` is `metadata[foo]`, Stripe's way of naming a nested parameter.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}[{key}]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn coupon_create() -> Schema {
        Schema::parse(&json!({"obj": {
            "percent_off": "n", "duration": {"enum": ["forever", "once", "repeating"]},
            "metadata": {"or": [{"map": {"or": ["s", "n"]}}, {"enum": [""]}]},
            "applies_to": {"obj": {"products": {"arr": "s"}}},
            "currency_options": {"map": {"obj": {"amount_off": "n"}, "req": ["amount_off"]}},
            "livemode_only": "b"
        }}))
    }

    #[test]
    fn a_valid_form_tree_comes_back_typed() {
        let given = json!({"percent_off": "12.5", "duration": "once", "metadata": {"a": "1"},
                           "applies_to": {"products": ["prod_1"]}, "livemode_only": "true"});
        assert_eq!(
            coupon_create().coerce(&given, "").unwrap(),
            json!({"percent_off": 12.5, "duration": "once", "metadata": {"a": "1"},
                   "applies_to": {"products": ["prod_1"]}, "livemode_only": true})
        );
        assert_eq!(
            coupon_create()
                .coerce(&json!({"metadata": ""}), "")
                .unwrap(),
            json!({"metadata": ""})
        );
    }

    #[test]
    fn refusals_name_the_parameter_as_stripe_does() {
        let err = |v: Value| coupon_create().coerce(&v, "").unwrap_err().body()["error"].clone();
        let e = err(json!({"applies_to": {"bogus": "x"}}));
        assert_eq!(
            (e["code"].as_str(), e["message"].as_str()),
            (
                Some("parameter_unknown"),
                Some("Received unknown parameter: applies_to[bogus]")
            )
        );
        let e = err(json!({"percent_off": "lots"}));
        assert_eq!(e["message"], "Invalid integer: lots");
        assert_eq!(e["param"], "percent_off");
        let e = err(json!({"duration": "weekly"}));
        assert_eq!(
            e["message"],
            "Invalid duration: must be one of forever, once, or repeating"
        );
        let e = err(json!({"currency_options": {"eur": {}}}));
        assert_eq!(
            e["message"],
            "Missing required param: currency_options[eur][amount_off]."
        );
        let e = err(json!({"livemode_only": "yes"}));
        assert_eq!(e["message"], "Invalid boolean: yes");
        let e = err(json!({"metadata": ["x"]}));
        assert_eq!(e["param"], "metadata");
    }
}
