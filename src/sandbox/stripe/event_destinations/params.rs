//! The handlers' JSON bodies (v2 takes JSON): the object, required and optional strings and
//! lists, the payload style, metadata; errors keep Stripe's `{"error": {type, code, message}}`.

use super::*;

pub(super) fn json_body(
    raw: &Value,
) -> std::result::Result<serde_json::Map<String, Value>, Response> {
    match raw {
        Value::Object(m) => Ok(m.clone()),
        _ => Err(invalid(
            "invalid_json",
            None,
            "The request body must be a JSON object.",
        )),
    }
}

pub(super) fn strings(value: &Value, param: &str) -> std::result::Result<Vec<String>, Response> {
    let items = value.as_array().map(|a| {
        a.iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
    });
    match items {
        Some(Some(list)) if !list.is_empty() => Ok(list),
        _ => Err(invalid(
            "parameter_invalid",
            Some(param),
            &format!("{param} must be a non-empty array of strings"),
        )),
    }
}

pub(super) fn required<'a>(
    m: &'a serde_json::Map<String, Value>,
    param: &str,
) -> std::result::Result<&'a Value, Response> {
    m.get(param).filter(|v| !v.is_null()).ok_or_else(|| {
        invalid(
            "parameter_missing",
            Some(param),
            &format!("Missing required param: {param}."),
        )
    })
}

pub(super) fn text(v: &Value, param: &str) -> std::result::Result<String, Response> {
    v.as_str().map(str::to_owned).ok_or_else(|| {
        invalid(
            "parameter_invalid",
            Some(param),
            &format!("{param} must be a string"),
        )
    })
}

/// Which catalogue an `event_payload` checks `enabled_events` against.
pub(super) fn payload_kind(payload: &str) -> validate::Payload {
    if payload == "thin" {
        validate::Payload::Thin
    } else {
        validate::Payload::Snapshot
    }
}

pub(super) fn metadata(v: Option<&Value>) -> serde_json::Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}
