//! What a create or update does to an object when Stripe has no behaviour beyond storing what
//! it was given: a parameter sets the field of the same name (a nested parameter the nested
//! field; `""` unsets, Stripe's "emptyable" values), `metadata` merges within Stripe's limits,
//! and an update's `previous_attributes` names what changed with its old value.

use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};

/// Sets every parameter of `params` that names a field of `object`, except `skip` (those a
/// behaviour reads itself). A parameter whose shape differs from the field's (a list object,
/// an inline object where an id goes) is left to a behaviour.
pub fn apply(object: &mut Value, params: &Map<String, Value>, skip: &[&str]) -> ApiResult<()> {
    for (key, value) in params {
        if skip.contains(&key.as_str()) {
            continue;
        }
        if key == "metadata" {
            merge_metadata(object, value)?;
            continue;
        }
        let Some(field) = object.get_mut(key) else {
            continue;
        };
        set(field, value);
    }
    Ok(())
}

fn set(field: &mut Value, value: &Value) {
    if value.as_str() == Some("") {
        // An emptyable parameter sent as "" unsets (the schema refused "" for any other): the
        // field is null, or the empty list.
        *field = match field {
            Value::Array(_) => json!([]),
            _ => Value::Null,
        };
        return;
    }
    match (field, value) {
        (Value::Object(f), _) if f.get("object").and_then(Value::as_str) == Some("list") => {}
        (Value::Object(f), Value::Object(v)) => {
            for (k, nested) in v {
                match f.get_mut(k) {
                    Some(existing) => set(existing, nested),
                    None => {
                        f.insert(k.clone(), nested.clone());
                    }
                }
            }
        }
        (f @ Value::Null, v) => *f = v.clone(),
        (f, v) if same_kind(f, v) => *f = v.clone(),
        _ => {}
    }
}

fn same_kind(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::String(_), Value::String(_))
            | (Value::Number(_), Value::Number(_))
            | (Value::Bool(_), Value::Bool(_))
            | (Value::Array(_), Value::Array(_))
    )
}

/// Stripe's metadata limits (API reference, "Metadata"): up to 50 keys, keys of up to 40
/// characters without square brackets, values of up to 500 characters.
pub const METADATA_KEYS: usize = 50;
pub const METADATA_KEY_LEN: usize = 40;
pub const METADATA_VALUE_LEN: usize = 500;

/// `metadata[k]=v` merges (strings; an empty value unsets the key), `metadata=""` unsets all.
pub fn merge_metadata(object: &mut Value, given: &Value) -> ApiResult<()> {
    let mut metadata = object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    match given {
        Value::String(s) if s.is_empty() => metadata.clear(),
        Value::Object(pairs) => {
            for (k, v) in pairs {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                if k.chars().count() > METADATA_KEY_LEN || k.contains(['[', ']']) {
                    return Err(ApiError::invalid(
                        "parameter_invalid_metadata",
                        Some(&format!("metadata[{k}]")),
                        &format!(
                            "Metadata keys can have up to {METADATA_KEY_LEN} characters and no square brackets: {k}"
                        ),
                    ));
                }
                if text.chars().count() > METADATA_VALUE_LEN {
                    return Err(ApiError::invalid(
                        "parameter_invalid_metadata",
                        Some(&format!("metadata[{k}]")),
                        &format!(
                            "Metadata values can have up to {METADATA_VALUE_LEN} characters, but you passed in a value that is {} characters.",
                            text.chars().count()
                        ),
                    ));
                }
                if text.is_empty() {
                    metadata.shift_remove(k);
                } else {
                    metadata.insert(k.clone(), Value::String(text));
                }
            }
        }
        _ => {}
    }
    if metadata.len() > METADATA_KEYS {
        return Err(ApiError::invalid(
            "parameter_invalid_metadata",
            Some("metadata"),
            &format!(
                "You can have up to {METADATA_KEYS} metadata keys, but you passed in {}.",
                metadata.len()
            ),
        ));
    }
    if let Some(o) = object.as_object_mut() {
        o.insert("metadata".into(), Value::Object(metadata));
    }
    Ok(())
}

/// What an update changed, with the values from before: Stripe's `previous_attributes`. A
/// nested object names only its changed keys (a new key as `null`); anything else is the whole
/// old value.
pub fn previous_attributes(before: &Value, after: &Value) -> Value {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return json!({});
    };
    let mut previous = Map::new();
    for (key, new) in a {
        let old = b.get(key).cloned().unwrap_or(Value::Null);
        if &old == new {
            continue;
        }
        let nested = old.is_object() && new.is_object() && old.get("object").is_none();
        previous.insert(
            key.clone(),
            if nested { changed_keys(&old, new) } else { old },
        );
    }
    Value::Object(previous)
}

fn changed_keys(old: &Value, new: &Value) -> Value {
    let empty = Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut changed = Map::new();
    for k in o.keys().chain(n.keys()) {
        if o.get(k) != n.get(k) && !changed.contains_key(k) {
            let was = o.get(k).cloned().unwrap_or(Value::Null);
            let deeper = was.is_object() && n.get(k).is_some_and(Value::is_object);
            changed.insert(
                k.clone(),
                if deeper {
                    changed_keys(&was, &n[k])
                } else {
                    was
                },
            );
        }
    }
    Value::Object(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_set_their_fields_and_leave_shapes_alone() {
        let mut o = json!({"name": null, "business_profile": {"headline": null, "url": null}, "items": {"object": "list", "data": []},
                          "product": null, "active": true, "metadata": {}, "tax_ids": ["a"]});
        let p = json!({"name": "x", "business_profile": {"headline": "h"}, "items": [{"price": "p"}], "active": false,
                       "metadata": {"a": "1"}, "tax_ids": "", "unrelated": "y"});
        apply(&mut o, p.as_object().unwrap(), &["product"]).unwrap();
        assert_eq!(
            o,
            json!({"name": "x", "business_profile": {"headline": "h", "url": null}, "items": {"object": "list", "data": []},
                             "product": null, "active": false, "metadata": {"a": "1"}, "tax_ids": []})
        );
        let mut o = json!({"description": "d", "shipping": {"name": "n"}});
        apply(
            &mut o,
            json!({"description": "", "shipping": ""})
                .as_object()
                .unwrap(),
            &[],
        )
        .unwrap();
        assert_eq!(o, json!({"description": null, "shipping": null}));
    }

    #[test]
    fn metadata_merges_unsets_and_keeps_stripes_limits() {
        let mut o = json!({"metadata": {"a": "1", "b": "2"}});
        merge_metadata(&mut o, &json!({"a": "", "c": 3})).unwrap();
        assert_eq!(o["metadata"], json!({"b": "2", "c": "3"}));
        merge_metadata(&mut o, &json!("")).unwrap();
        assert_eq!(o["metadata"], json!({}));
        let long = "k".repeat(41);
        let e = merge_metadata(&mut o, &json!({long.clone(): "v"})).unwrap_err();
        assert_eq!(e.body()["error"]["param"], format!("metadata[{long}]"));
        assert!(merge_metadata(&mut o, &json!({"k": "v".repeat(501)})).is_err());
        let many: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(merge_metadata(&mut o, &Value::Object(many)).is_err());
    }

    #[test]
    fn previous_attributes_name_what_changed_with_its_old_value() {
        let before = json!({"id": "cus_1", "email": null, "metadata": {"a": "1"}, "invoice_settings": {"default_payment_method": null, "footer": null}});
        let after = json!({"id": "cus_1", "email": "x@example.com", "metadata": {"a": "1", "foo": "bar"},
                           "invoice_settings": {"default_payment_method": "pm_1", "footer": null}});
        assert_eq!(
            previous_attributes(&before, &after),
            json!({"email": null, "metadata": {"foo": null}, "invoice_settings": {"default_payment_method": null}})
        );
    }
}
