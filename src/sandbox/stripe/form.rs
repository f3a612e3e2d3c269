//! Stripe's form bodies (`name[]` and `name[N]` as list items, `metadata[key]`, unknown
//! parameters refused) and its list calls (`limit`, `starting_after`, the list object).

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{invalid, missing};

/// Form parameters, with `name[]` and `name[N]` both read as list items of `name`.
#[derive(Debug, Default, Clone)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub fn parse(raw: &[u8]) -> std::result::Result<Self, Response> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw).map_err(|e| {
            invalid(
                "parameter_invalid",
                None,
                &format!("Invalid form body: {e}"),
            )
        })?;
        Ok(Self { pairs })
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        let items: Vec<String> = self
            .pairs
            .iter()
            .filter(|(k, _)| list_base(k) == Some(name))
            .map(|(_, v)| v.clone())
            .collect();
        (!items.is_empty()).then_some(items)
    }

    /// `metadata[key]=value` pairs.
    pub(super) fn map(&self, name: &str) -> serde_json::Map<String, Value> {
        let prefix = format!("{name}[");
        self.pairs
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix(&prefix)?.strip_suffix(']')?;
                Some((key.to_owned(), Value::String(v.clone())))
            })
            .collect()
    }

    /// The first parameter not in `known` (by base name).
    pub fn unknown(&self, known: &[&str]) -> Option<&str> {
        self.pairs.iter().map(|(k, _)| k.as_str()).find(|k| {
            let base = k.split('[').next().unwrap_or(k);
            !known.contains(&base)
        })
    }
}

/// `enabled_events[]` and `enabled_events[3]` are items of `enabled_events`.
pub(super) fn list_base(key: &str) -> Option<&str> {
    let (base, rest) = key.split_once('[')?;
    let index = rest.strip_suffix(']')?;
    (index.is_empty() || index.bytes().all(|b| b.is_ascii_digit())).then_some(base)
}

pub(super) fn parse_bool(form: &Form, name: &str) -> std::result::Result<Option<bool>, Response> {
    match form.get(name) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(invalid(
            "parameter_invalid_boolean",
            Some(name),
            &format!("Invalid boolean: {other}"),
        )),
    }
}

/// Stripe's `limit` of a list call: 10 by default, 1 to 100 accepted.
fn page_limit(form: &Form) -> Result<usize, Response> {
    match form.get("limit").map(str::parse::<usize>) {
        None => Ok(10),
        Some(Ok(n)) if (1..=100).contains(&n) => Ok(n),
        Some(_) => Err(invalid(
            "parameter_invalid_integer",
            Some("limit"),
            "limit must be an integer from 1 to 100",
        )),
    }
}

/// The parameters of a list call and its page size (`limit`, 1 to 100).
pub(super) fn list_query(form: &Form) -> std::result::Result<(Form, usize), Response> {
    let limit = page_limit(form)?;
    Ok((form.clone(), limit))
}

/// One page of a Stripe list (items newest first, like Stripe): those after the id in
/// `starting_after`, at most `limit`, and whether more follow. `kind` names the object and
/// the list's URL.
pub(super) fn list_page<T>(
    newest_first: &[&T],
    form: &Form,
    limit: usize,
    (kind, url): (&str, &str),
    id: impl Fn(&T) -> &str,
    to_json: impl Fn(&T) -> Value,
) -> Response {
    let start = match form.get("starting_after") {
        None => 0,
        Some(after) => match newest_first.iter().position(|e| id(e) == after) {
            Some(i) => i + 1,
            None => return missing(kind, after),
        },
    };
    let page: Vec<Value> = newest_first
        .iter()
        .skip(start)
        .take(limit)
        .map(|e| to_json(e))
        .collect();
    let has_more = newest_first.len() > start + page.len();
    axum::Json(json!({"object": "list", "data": page, "has_more": has_more, "url": url}))
        .into_response()
}
