//! What a create or update does to an object when Stripe has no behaviour beyond storing what
//! it was given: a parameter sets the field of the same name (a nested parameter the nested
//! field; `""` unsets, Stripe's "emptyable" values), `metadata` merges within Stripe's limits,
//! and an update's `previous_attributes` names what changed with its old value.

use serde_json::{Map, Value, json};

use super::error::ApiResult;
use crate::sandbox::stripe::validate;

/// An object's shapes: by dotted path, the empty object a field of object type starts from
/// (fixtures/apimodel.py's `shapes`).
pub type Shapes = std::collections::HashMap<String, Value>;

/// Sets every parameter of `params` that names a field of `object`, except `skip` (those a
/// behaviour reads itself). A parameter whose shape differs from the field's (a list object,
/// an inline object where an id goes) is left to a behaviour. An object given for a field that
/// is null starts from the field's shape, so that it has every field Stripe's type declares.
pub fn apply(
    object: &mut Value,
    params: &Map<String, Value>,
    skip: &[&str],
    shapes: &Shapes,
) -> ApiResult<()> {
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
        set(field, value, key, shapes);
    }
    Ok(())
}

/// `given` as the object at `path`: its shape with `given`'s fields set (and theirs shaped).
pub fn shaped(given: &Value, path: &str, shapes: &Shapes) -> Value {
    let Some(fields) = given.as_object() else {
        return given.clone();
    };
    let mut out = shapes.get(path).cloned().unwrap_or_else(|| json!({}));
    for (k, v) in fields {
        let at = format!("{path}.{k}");
        match out.get_mut(k) {
            Some(slot) => set(slot, v, &at, shapes),
            None => {
                out[k.as_str()] = if v.is_object() {
                    shaped(v, &at, shapes)
                } else {
                    v.clone()
                };
            }
        }
    }
    out
}

fn set(field: &mut Value, value: &Value, path: &str, shapes: &Shapes) {
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
                let at = format!("{path}.{k}");
                match f.get_mut(k) {
                    Some(existing) => set(existing, nested, &at, shapes),
                    None => {
                        f.insert(k.clone(), shaped(nested, &at, shapes));
                    }
                }
            }
        }
        (f @ Value::Null, v @ Value::Object(_)) => *f = shaped(v, path, shapes),
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

/// `metadata[k]=v` merges (strings; an empty value unsets the key), `metadata=""` unsets all;
/// within Stripe's limits (`validate::metadata`), counted after the merge.
pub fn merge_metadata(object: &mut Value, given: &Value) -> ApiResult<()> {
    validate::metadata(given)?;
    let mut metadata = object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    match given {
        Value::String(s) if s.is_empty() => metadata.clear(),
        Value::Object(pairs) => {
            for (k, v) in pairs {
                match v {
                    Value::String(s) if !s.is_empty() => {
                        metadata.insert(k.clone(), Value::String(s.clone()));
                    }
                    Value::Number(n) => {
                        metadata.insert(k.clone(), Value::String(n.to_string()));
                    }
                    _ => {
                        metadata.shift_remove(k);
                    }
                }
            }
        }
        _ => {}
    }
    validate::metadata(&Value::Object(metadata.clone()))?;
    if let Some(o) = object.as_object_mut() {
        o.insert("metadata".into(), Value::Object(metadata));
    }
    Ok(())
}

/// What an update changed, with the values from before: Stripe's `previous_attributes`, each
/// changed field with its whole old value (stripe-node types it `Partial<T>` of the object: a
/// nested object or map is given whole, as Stripe gives a changed array whole).
pub fn previous_attributes(before: &Value, after: &Value) -> Value {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return json!({});
    };
    let previous: Map<String, Value> = a
        .iter()
        .filter(|(key, new)| b.get(*key).unwrap_or(&Value::Null) != *new)
        .map(|(key, _)| (key.clone(), b.get(key).cloned().unwrap_or(Value::Null)))
        .collect();
    Value::Object(previous)
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
        apply(&mut o, p.as_object().unwrap(), &["product"], &Shapes::new()).unwrap();
        assert_eq!(
            o,
            json!({"name": "x", "business_profile": {"headline": "h", "url": null}, "items": {"object": "list", "data": []},
                             "product": null, "active": false, "metadata": {"a": "1"}, "tax_ids": []})
        );
        let mut o = json!({"description": "d", "shipping": {"name": "n"}});
        let unset = json!({"description": "", "shipping": ""});
        apply(&mut o, unset.as_object().unwrap(), &[], &Shapes::new()).unwrap();
        assert_eq!(o, json!({"description": null, "shipping": null}));
        let shapes: Shapes = [
            ("shipping".to_owned(), json!({"name": null, "phone": null})),
            (
                "shipping.address".to_owned(),
                json!({"city": null, "line1": null, "line2": null}),
            ),
        ]
        .into();
        let mut o = json!({"shipping": null});
        let given = json!({"shipping": {"name": "J", "address": {"line1": "1 St"}}});
        apply(&mut o, given.as_object().unwrap(), &[], &shapes).unwrap();
        assert_eq!(
            o,
            json!({"shipping": {"name": "J", "phone": null,
                                "address": {"city": null, "line1": "1 St", "line2": null}}})
        );
    }

    #[test]
    fn metadata_merges_unsets_and_keeps_stripes_limits() {
        let mut o = json!({"metadata": {"a": "1", "b": "2"}});
        merge_metadata(&mut o, &json!({"a": "", "c": "3"})).unwrap();
        assert_eq!(o["metadata"], json!({"b": "2", "c": "3"}));
        merge_metadata(&mut o, &json!("")).unwrap();
        assert_eq!(o["metadata"], json!({}));
        let long = "k".repeat(41);
        let e = merge_metadata(&mut o, &json!({long: "v"})).unwrap_err();
        assert_eq!(e.body()["error"]["param"], "metadata");
        assert!(merge_metadata(&mut o, &json!({"k": "v".repeat(501)})).is_err());
        let many: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(merge_metadata(&mut o, &Value::Object(many)).is_err());
        let half: Map<String, Value> = (0..30).map(|i| (format!("a{i}"), json!("v"))).collect();
        merge_metadata(&mut o, &Value::Object(half)).unwrap();
        let other: Map<String, Value> = (0..30).map(|i| (format!("b{i}"), json!("v"))).collect();
        assert!(
            merge_metadata(&mut o, &Value::Object(other)).is_err(),
            "50 keys at most after the merge"
        );
    }

    #[test]
    fn previous_attributes_name_what_changed_with_its_old_value() {
        let before = json!({"id": "cus_1", "email": null, "metadata": {"a": "1"}, "invoice_settings": {"default_payment_method": null, "footer": null}});
        let after = json!({"id": "cus_1", "email": "x@example.com", "metadata": {"a": "1", "foo": "bar"},
                           "invoice_settings": {"default_payment_method": "pm_1", "footer": null}});
        assert_eq!(
            previous_attributes(&before, &after),
            json!({"email": null, "metadata": {"a": "1"}, "invoice_settings": {"default_payment_method": null, "footer": null}})
        );
    }
}
