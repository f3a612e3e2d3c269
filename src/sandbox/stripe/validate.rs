//! Stripe's parameter checks that every resource shares, as small functions over the parameter
//! tree (`objects::params` of a form body, or a v2 JSON body) that answer Stripe's 400 with
//! Stripe's `param`: metadata limits, event type names against the embedded catalogue, API
//! versions, unknown parameters, string lengths.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde_json::Value;

use super::engine::{ApiError, ApiResult};

fn invalid(code: &str, param: Option<&str>, message: &str) -> ApiError {
    ApiError::invalid(code, param, message)
}

/// Stripe's metadata limits (docs.stripe.com/metadata, "Data"): "You can add 50 total key-value
/// pairs", a key of at most 40 characters without square brackets, a value of at most 500.
pub const METADATA_KEYS: usize = 50;
pub const METADATA_KEY_CHARS: usize = 40;
pub const METADATA_VALUE_CHARS: usize = 500;

/// The longest string most of Stripe's parameters take: its OpenAPI spec gives `maxLength: 5000`
/// to free-text fields such as `description`.
pub const MAX_STRING: usize = 5000;

/// Checks `metadata` as a request gives it (absent, `""` to unset, or a map of strings; `null`
/// values remove a key in v2). The messages are Stripe's: "Invalid key: … must be a string
/// under 40 characters", "Invalid val: … must be a string under 500 characters" (quoted by
/// Stripe's staff in stripe/stripe-php#246) and "Invalid metadata: metadata must be a set of
/// key-value pairs" (stripe/stripe-dotnet#488). Stripe publishes no message for the 51st key.
pub fn metadata(given: &Value) -> ApiResult<()> {
    let map = match given {
        Value::Null => return Ok(()),
        Value::String(s) if s.is_empty() => return Ok(()),
        Value::Object(map) => map,
        _ => {
            return Err(invalid(
                "parameter_invalid",
                Some("metadata"),
                "Invalid metadata: metadata must be a set of key-value pairs",
            ));
        }
    };
    if map.len() > METADATA_KEYS {
        return Err(invalid(
            "parameter_invalid",
            Some("metadata"),
            &format!(
                "Invalid metadata: metadata can have at most {METADATA_KEYS} keys, not {}",
                map.len()
            ),
        ));
    }
    for (key, value) in map {
        if key.is_empty() || key.chars().count() > METADATA_KEY_CHARS || key.contains(['[', ']']) {
            return Err(invalid(
                "parameter_invalid",
                Some("metadata"),
                &format!(
                    "Invalid key: {} must be a string under {METADATA_KEY_CHARS} characters",
                    excerpt(key)
                ),
            ));
        }
        match value {
            Value::Null => {}
            Value::String(s) if s.chars().count() <= METADATA_VALUE_CHARS => {}
            _ => {
                return Err(invalid(
                    "parameter_invalid",
                    Some("metadata"),
                    &format!(
                        "Invalid val: {} must be a string under {METADATA_VALUE_CHARS} characters",
                        excerpt(&value.to_string())
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The first 40 characters of a refused value: an error never echoes a megabyte back.
fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Refuses a string parameter longer than `max` characters, as Stripe does.
pub fn max_chars(param: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.chars().count() > max {
        return Err(invalid(
            "parameter_invalid_string_too_long",
            Some(param),
            &format!("Invalid string: {param} must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// The first top-level parameter of `given` (a parameter tree) not in `known`, as Stripe's 400.
pub fn known_params(given: &Value, known: &[&str]) -> ApiResult<()> {
    let Some(unknown) = given
        .as_object()
        .and_then(|m| m.keys().find(|k| !known.contains(&k.as_str())))
    else {
        return Ok(());
    };
    Err(invalid(
        "parameter_unknown",
        Some(unknown),
        &format!("Received unknown parameter: {unknown}"),
    ))
}

/// The event types of the embedded catalogue: snapshot (v1) and thin (v2) names.
struct EventTypes {
    snapshot: HashSet<String>,
    thin: HashSet<String>,
}

fn event_types() -> &'static EventTypes {
    static TYPES: OnceLock<EventTypes> = OnceLock::new();
    TYPES.get_or_init(|| {
        let catalog =
            crate::webhook::fixtures::Catalog::load(None).expect("the embedded catalogue loads");
        let mut types = EventTypes {
            snapshot: HashSet::new(),
            thin: HashSet::new(),
        };
        for name in catalog.types() {
            let kind = catalog.event_type(name).to_owned();
            if catalog.is_thin(name) {
                types.thin.insert(kind);
            } else {
                types.snapshot.insert(kind);
            }
        }
        types
    })
}

/// Which catalogue an `enabled_events` list is checked against.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    Snapshot,
    Thin,
}

/// Every item of `enabled_events` is `*` or an event type Stripe sends with this payload (the
/// catalogue holds every type stripe-node's declarations name); the first other one is Stripe's
/// 400 naming its position, `enabled_events[N]`.
pub fn enabled_events(events: &[String], payload: Payload) -> ApiResult<()> {
    let types = event_types();
    let known = match payload {
        Payload::Snapshot => &types.snapshot,
        Payload::Thin => &types.thin,
    };
    let Some((i, bad)) = events
        .iter()
        .enumerate()
        .find(|(_, e)| e.as_str() != "*" && !known.contains(e.as_str()))
    else {
        return Ok(());
    };
    let param = format!("enabled_events[{i}]");
    Err(invalid(
        "parameter_invalid",
        Some(&param),
        &format!(
            "Invalid {param}: {} is not an event type Stripe sends{}",
            excerpt(bad),
            if payload == Payload::Thin {
                " as a thin event"
            } else {
                ""
            }
        ),
    ))
}

/// An API version Stripe has: its shape (`2024-06-20`, `2025-03-31.basil`) and no newer than
/// the newest one its libraries pin (a later date is a version that does not exist yet).
pub fn api_version(param: &str, v: &str) -> ApiResult<()> {
    let newest = crate::webhook::versions::API_VERSION;
    let date = |v: &str| v.split('.').next().unwrap_or(v).to_owned();
    if crate::stripe_api::is_api_version(v) && date(v) <= date(newest) {
        return Ok(());
    }
    Err(invalid(
        "parameter_invalid",
        Some(param),
        &format!("Invalid API version: {}", excerpt(v)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param_of(r: ApiResult<()>) -> Option<String> {
        let e = r.err()?;
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        e.body()["error"]["param"].as_str().map(str::to_owned)
    }

    #[test]
    fn metadata_within_stripes_limits_passes_and_beyond_them_fails() {
        let full: serde_json::Map<String, Value> = (0..50)
            .map(|i| (format!("k{i:038}"), json!("v".repeat(500))))
            .collect();
        assert!(metadata(&Value::Object(full.clone())).is_ok());
        let mut over = full.clone();
        over.insert("one_more".into(), json!("x"));
        assert_eq!(
            param_of(metadata(&Value::Object(over))).unwrap(),
            "metadata"
        );
        for bad in [
            json!({"k".repeat(41): "v"}),
            json!({"a[b]": "v"}),
            json!({"k": "v".repeat(501)}),
            json!({"k": {"nested": "v"}}),
            json!("a string"),
            json!(["a"]),
        ] {
            assert_eq!(
                param_of(metadata(&bad)).as_deref(),
                Some("metadata"),
                "{bad}"
            );
        }
        assert!(metadata(&json!("")).is_ok(), "empty unsets");
        assert!(metadata(&json!({"k": null})).is_ok(), "v2 removes a key");
    }

    #[test]
    fn event_types_come_from_the_catalogue() {
        let ok = vec!["*".to_owned(), "customer.created".to_owned()];
        assert!(enabled_events(&ok, Payload::Snapshot).is_ok());
        let bad = vec!["customer.created".to_owned(), "customer.nope".to_owned()];
        assert_eq!(
            param_of(enabled_events(&bad, Payload::Snapshot)).unwrap(),
            "enabled_events[1]"
        );
        assert!(
            enabled_events(&["customer.created".to_owned()], Payload::Thin).is_err(),
            "a snapshot type is no thin type"
        );
        assert!(!event_types().thin.is_empty());
    }

    #[test]
    fn api_versions_must_exist() {
        assert!(api_version("v", "2025-03-31.basil").is_ok());
        assert!(api_version("v", crate::webhook::versions::API_VERSION).is_ok());
        assert!(api_version("v", "2099-01-01.future").is_err());
        assert!(api_version("v", "nonsense").is_err());
    }
}
