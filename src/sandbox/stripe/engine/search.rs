//! The search endpoints (`GET /v1/customers/search`, …) with the common subset of Stripe's
//! search query language (docs.stripe.com/search#search-query-language): clauses
//! `field:value` (exact, case-insensitive for text), `field~value` (contains, three characters
//! at least), `field>value`, `>=`, `<`, `<=` (numbers: `created`, `amount`), `-field:value`
//! (negation), `field:null`, `metadata['key']:'value'`, joined by `AND` or by `OR` (not both, as
//! Stripe allows). A field the object does not have is Stripe's 400. The answer is Stripe's
//! `search_result` (`data`, `has_more`, `next_page`, `url`), newest first, paged with `page`.

use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::ops::Ctx;
use super::store::Cursor;

#[derive(Debug, PartialEq)]
enum Op {
    Eq,
    Contains,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, PartialEq)]
struct Clause {
    negated: bool,
    field: String,
    /// `metadata['key']`: the key.
    key: Option<String>,
    op: Op,
    value: Option<String>,
}

fn invalid(query: &str, why: &str) -> ApiError {
    ApiError::invalid(
        "parameter_invalid",
        Some("query"),
        &format!("Invalid query `{query}`: {why}"),
    )
}

/// The clauses of `query` and whether they are joined by `OR`.
fn parse(query: &str) -> ApiResult<(Vec<Clause>, bool)> {
    let (mut parts, mut ors, mut ands) = (Vec::new(), false, false);
    let mut rest = query.trim();
    while !rest.is_empty() {
        let (clause, after) = clause(rest).ok_or_else(|| {
            invalid(
                query,
                "each clause is field:value, field~value or field>value",
            )
        })?;
        parts.push(clause);
        rest = after.trim_start();
        if let Some(r) = rest.strip_prefix("AND ") {
            ands = true;
            rest = r.trim_start();
        } else if let Some(r) = rest.strip_prefix("OR ") {
            ors = true;
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return Err(invalid(query, "join clauses with AND or OR"));
        }
    }
    if ands && ors {
        return Err(invalid(query, "a query can use AND or OR, not both"));
    }
    if parts.is_empty() {
        return Err(invalid(query, "the query is empty"));
    }
    Ok((parts, ors))
}

/// One clause at the start of `s`, and what follows it.
fn clause(s: &str) -> Option<(Clause, &str)> {
    let (negated, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let end = s.find([':', '~', '>', '<'])?;
    let (name, rest) = s.split_at(end);
    let (field, key) = match name.strip_prefix("metadata[") {
        Some(k) => (
            "metadata".to_owned(),
            Some(k.strip_suffix(']')?.trim_matches(['\'', '"']).to_owned()),
        ),
        None => (name.to_owned(), None),
    };
    let (op, rest) = [
        (">=", Op::Ge),
        ("<=", Op::Le),
        (":", Op::Eq),
        ("~", Op::Contains),
        (">", Op::Gt),
        ("<", Op::Lt),
    ]
    .into_iter()
    .find_map(|(token, op)| rest.strip_prefix(token).map(|r| (op, r)))?;
    let (value, after) = match rest.chars().next()? {
        q @ ('\'' | '"') => {
            let close = rest[1..].find(q)? + 1;
            (Some(rest[1..close].to_owned()), &rest[close + 1..])
        }
        _ => {
            let end = rest.find(' ').unwrap_or(rest.len());
            let word = &rest[..end];
            ((word != "null").then(|| word.to_owned()), &rest[end..])
        }
    };
    if field.is_empty()
        || (op == Op::Contains && value.as_ref().is_none_or(|v| v.chars().count() < 3))
    {
        return None;
    }
    Some((
        Clause {
            negated,
            field,
            key,
            op,
            value,
        },
        after,
    ))
}

fn matches(object: &Value, c: &Clause) -> bool {
    let field = match &c.key {
        Some(k) => &object["metadata"][k],
        None => &object[c.field.as_str()],
    };
    let text = match field {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    let hit = match (&c.op, &c.value, &text) {
        (Op::Eq, None, t) => t.is_none(),
        (_, _, None) | (_, None, _) => false,
        (Op::Eq, Some(v), Some(t)) => v.eq_ignore_ascii_case(t),
        (Op::Contains, Some(v), Some(t)) => t.to_lowercase().contains(&v.to_lowercase()),
        (op, Some(v), Some(t)) => match (t.parse::<f64>(), v.parse::<f64>()) {
            (Ok(a), Ok(b)) => match op {
                Op::Gt => a > b,
                Op::Ge => a >= b,
                Op::Lt => a < b,
                _ => a <= b,
            },
            _ => false,
        },
    };
    hit != c.negated
}

/// `GET /v1/<resource>/search`.
pub fn search(ctx: &Ctx) -> ApiResult<Value> {
    let query = ctx
        .str_param("query")
        .ok_or_else(|| ApiError::missing_param("query"))?;
    let (clauses, any) = parse(query)?;
    let kind = ctx.resource.object.as_str();
    if let Some(c) = clauses
        .iter()
        .find(|c| ctx.resource.template.get(c.field.as_str()).is_none())
    {
        return Err(ApiError::invalid(
            "parameter_invalid",
            Some("query"),
            &format!(
                "Field `{}` is an unsupported search field for resource `{kind}`. See https://stripe.com/docs/search#query-fields-for-{kind}s for a list of supported fields.",
                c.field
            ),
        ));
    }
    let limit = ctx.int_param("limit").unwrap_or(10).clamp(1, 100) as usize;
    let cursor = ctx.str_param("page");
    let keep = |o: &Value| {
        o["deleted"] != true
            && if any {
                clauses.iter().any(|c| matches(o, c))
            } else {
                clauses.iter().all(|c| matches(o, c))
            }
    };
    let (data, has_more) = ctx
        .store()
        .page(
            kind,
            cursor.map_or(Cursor::First, Cursor::After),
            limit,
            &keep,
        )
        .ok_or_else(|| {
            ApiError::invalid(
                "parameter_invalid",
                Some("page"),
                "Invalid page: it is not a page of this search.",
            )
        })?;
    let next_page = has_more
        .then(|| data.last().map(|o| o["id"].clone()))
        .flatten();
    Ok(
        json!({"object": "search_result", "data": data, "has_more": has_more, "next_page": next_page, "url": ctx.call.path}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_language_subset_reads_as_stripe_documents_it() {
        let (c, any) = parse("email:'a@example.com' AND metadata['plan']:\"pro\" AND -name:null AND created>1700000000").unwrap();
        assert!(!any);
        assert_eq!(c.len(), 4);
        assert_eq!(
            (
                c[1].field.as_str(),
                c[1].key.as_deref(),
                c[1].value.as_deref()
            ),
            ("metadata", Some("plan"), Some("pro"))
        );
        assert!(c[2].negated && c[2].value.is_none());
        assert_eq!(c[3].op, Op::Gt);
        let o = json!({"email": "A@example.com", "metadata": {"plan": "pro"}, "name": "Jo", "created": 1800000000});
        assert!(c.iter().all(|c| matches(&o, c)));
        assert!(
            parse("email:'a' AND name:'b' OR phone:'c'").is_err(),
            "AND and OR together"
        );
        assert!(
            parse("name~'ab'").is_err(),
            "a substring of three characters at least"
        );
        assert!(parse("email 'a'").is_err());
        let (c, any) = parse("status:'active' OR status:'trialing'").unwrap();
        assert!(any && c.len() == 2);
    }
}
