//! What a list call and `expand[]` return. A list is Stripe's list object (`object: "list"`,
//! `data` newest first, `has_more`, `url`; no `total_count`), paginated with `limit` (1 to
//! 100, default 10), `starting_after` or `ending_before`, filtered by `created` (exact or
//! `gt`/`gte`/`lt`/`lte`) and by every other declared list parameter that names a field of the
//! object (`customer`, `status`, `active`, …). `expand[]` replaces an id by the object it names,
//! up to four levels (`data.customer` in a list).

use serde_json::{Value, json};

use super::Engine;
use super::error::{ApiError, ApiResult};
use super::ops::{Ctx, behaviour};
use super::store::Cursor;

/// Parameters every list takes that are not filters on a field.
const PAGING: [&str; 5] = [
    "limit",
    "starting_after",
    "ending_before",
    "created",
    "expand",
];

/// A page of `ctx.resource`'s objects that `keep` (and the behaviour's `keeps`) accept.
pub fn list(ctx: &Ctx, keep: &dyn Fn(&Value) -> bool) -> ApiResult<Value> {
    let r = ctx.resource;
    let limit = ctx.int_param("limit").unwrap_or(10);
    if limit < 1 {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            Some("limit"),
            "This value must be greater than or equal to 1.",
        ));
    }
    if limit > 100 {
        return Err(ApiError::invalid(
            "parameter_invalid_integer",
            Some("limit"),
            "This value must be less than or equal to 100.",
        ));
    }
    let cursor = match (
        ctx.str_param("starting_after"),
        ctx.str_param("ending_before"),
    ) {
        (Some(_), Some(_)) => {
            return Err(ApiError::request(
                "You may only specify one of these parameters: ending_before, starting_after.",
            ));
        }
        (Some(id), None) => Cursor::After(id),
        (None, Some(id)) => Cursor::Before(id),
        (None, None) => Cursor::First,
    };
    let parent = match (r.conf.parent(), ctx.ids.first()) {
        (Some((field, kind)), Some(id)) => {
            ctx.get(kind, id)?;
            Some((field, id.as_str()))
        }
        _ => None,
    };
    let created = ctx.param("created").cloned();
    let b = behaviour(&r.object);
    // Every list parameter naming a field of the object filters by it (whether or not a create
    // consumes it: `customer`), except those the behaviour's `keeps` reads itself.
    let own = b.map(|b| b.list_filters()).unwrap_or_default();
    let filters: Vec<(&str, &Value)> = ctx
        .params
        .iter()
        .filter(|(k, _)| !PAGING.contains(&k.as_str()) && !own.contains(&k.as_str()))
        .filter(|(k, _)| r.template.get(k.as_str()).is_some())
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let accepts = |o: &Value| {
        o["deleted"] != true
            && parent.is_none_or(|(field, id)| o[field].as_str() == Some(id))
            && created
                .as_ref()
                .is_none_or(|c| in_range(o["created"].as_i64().unwrap_or(0), c))
            && filters.iter().all(|(field, want)| equal(&o[*field], want))
            && b.is_none_or(|b| b.keeps(ctx, o))
            && keep(o)
    };
    let (data, has_more) = ctx
        .store()
        .page(&r.object, cursor, limit as usize, &accepts)
        .ok_or_else(|| {
            let (param, id) = match cursor {
                Cursor::After(id) => ("starting_after", id),
                Cursor::Before(id) => ("ending_before", id),
                Cursor::First => ("starting_after", ""),
            };
            ApiError::no_such(&r.object, id, param)
        })?;
    Ok(json!({"object": "list", "data": data, "has_more": has_more, "url": ctx.call.path}))
}

/// A filter's value against a field: an id, a string, a number, a boolean.
/// Whether a field matches a filter: an expanded object by its id, an object by the fields the
/// filter names (`recurring[interval]=month`), anything else exactly.
fn equal(field: &Value, want: &Value) -> bool {
    match (field, want) {
        (Value::Object(o), Value::String(id)) => o.get("id").and_then(Value::as_str) == Some(id),
        (Value::Object(o), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| equal(o.get(k).unwrap_or(&Value::Null), v)),
        (f, w) => f == w,
    }
}

/// `created=T` or `created[gt]=T`…
fn in_range(at: i64, range: &Value) -> bool {
    match range {
        Value::Object(ops) => ops.iter().all(|(op, bound)| {
            let b = bound.as_i64().unwrap_or(0);
            match op.as_str() {
                "gt" => at > b,
                "gte" => at >= b,
                "lt" => at < b,
                "lte" => at <= b,
                _ => true,
            }
        }),
        other => other.as_i64() == Some(at),
    }
}

/// Stripe's limit on the depth of an expansion.
const MAX_LEVELS: usize = 4;

/// Replaces the ids that `paths` name by their objects (Stripe's `expand[]`).
pub fn expand(ctx: &Ctx, answer: &mut Value, paths: &[String]) -> ApiResult<()> {
    for path in paths {
        let segments: Vec<&str> = path.split('.').collect();
        let levels = segments.iter().filter(|s| **s != "data").count();
        if levels > MAX_LEVELS {
            return Err(ApiError::request(&format!(
                "You cannot expand more than {MAX_LEVELS} levels of a property. Property: {path}"
            )));
        }
        expand_at(ctx, answer, &segments, path)?;
    }
    Ok(())
}

fn expand_at(ctx: &Ctx, value: &mut Value, segments: &[&str], path: &str) -> ApiResult<()> {
    let Some((field, rest)) = segments.split_first() else {
        return Ok(());
    };
    if (value["object"] == "list" || value["object"] == "search_result") && *field == "data" {
        if let Some(items) = value["data"].as_array_mut() {
            for item in items {
                expand_at(ctx, item, rest, path)?;
            }
        }
        return Ok(());
    }
    let included = super::ops::behaviour(value["object"].as_str().unwrap_or_default())
        .and_then(|b| b.include(ctx, value, field));
    if let Some(included) = included {
        value[*field] = included;
    }
    let kind = value["object"].as_str().unwrap_or_default();
    let declared = Engine::get()
        .resource(kind)
        .map(|r| r.expandable.contains_key(*field));
    if declared == Some(false) && !value[*field].is_object() {
        let hint = if value["object"] == "list" {
            format!(" You may want to try expanding 'data.{path}' instead.")
        } else {
            String::new()
        };
        return Err(ApiError::request(&format!(
            "This property cannot be expanded ({path}).{hint}"
        )));
    }
    let Some(slot) = value.get_mut(*field) else {
        return Ok(());
    };
    if let Some(id) = slot.as_str()
        && let Some(found) = ctx.store().get(id)
    {
        *slot = found;
    }
    if slot.is_object() {
        expand_at(ctx, slot, rest, path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_ranges_and_filters_compare_as_stripe_does() {
        assert!(in_range(10, &json!({"gt": 9, "lte": 10})));
        assert!(!in_range(10, &json!({"lt": 10})));
        assert!(in_range(10, &json!(10)));
        assert!(equal(
            &json!({"id": "cus_1", "object": "customer"}),
            &json!("cus_1")
        ));
        assert!(equal(&json!(true), &json!(true)));
        assert!(!equal(&json!("a"), &json!("b")));
    }
}
