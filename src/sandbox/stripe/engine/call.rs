//! `Call`: everything a handler of the sandbox's Stripe API needs from one request, extracted
//! once (the preamble every handler used to repeat): the account's key checked (Bearer or
//! Basic; Stripe's 401s), the form body and query as Stripe's parameter tree
//! (`a[b][0][c]=v`), `expand[]`, the `Idempotency-Key`, the `Stripe-Version`, the request's id
//! (`Request-Id`, also the `request.id` of the events it causes), and the account the call acts
//! for (`Stripe-Account`), resolved in one place: `Scope`.

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, header};
use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};
use crate::sandbox::Shared;
use crate::sandbox::stripe::form::Form;

/// The id of one API request (`req_…`): the `Request-Id` header of its answer and `request.id`
/// of the events it causes (Stripe's Event object: "the ID of the API request that caused the
/// event"). The request-id layer puts it in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn new() -> Self {
        Self(format!("req_{}", crate::secret::random_alnum(14)))
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

/// Whose data a call acts on: the platform's own account, or a connected account named by
/// `Stripe-Account` (issue 33 builds Connect on this; today such a call is refused plainly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Platform,
    Connected(String),
}

#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub request_id: String,
    /// The parameters as sent: strings in Stripe's nested shape (JSON for a v2 call).
    pub raw: Value,
    /// The form's pairs, for handlers that read them flat (`enabled_events[]`).
    pub form: Form,
    pub expand: Vec<String>,
    pub idempotency_key: Option<String>,
    pub stripe_version: Option<String>,
    pub scope: Scope,
}

impl Call {
    /// What the sandbox does on its own, caused by no API request (a hosted page submitted, the
    /// clock moved), in `scope`: its events carry `request.id` null, as Stripe's do.
    pub fn internal(path: &str, scope: Scope) -> Call {
        Call {
            method: Method::POST,
            path: path.to_owned(),
            request_id: String::new(),
            raw: Value::Object(Map::new()),
            form: Form::default(),
            expand: Vec::new(),
            idempotency_key: None,
            stripe_version: None,
            scope,
        }
    }

    /// A parameter as sent (`call.param("url")`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.raw.get(name).and_then(Value::as_str)
    }

    /// The first parameter not among `known`, refused as Stripe refuses it; for handlers whose
    /// parameters are not declared by a generated schema.
    pub fn only(&self, known: &[&str]) -> ApiResult<()> {
        match self.form.unknown(known) {
            Some(p) => Err(ApiError::unknown_param(p)),
            None => Ok(()),
        }
    }
}

impl FromRequest<Arc<Shared>> for Call {
    type Rejection = ApiError;

    async fn from_request(req: Request, shared: &Arc<Shared>) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        if parts.uri.path() == crate::sandbox::stripe::behaviour::meters::STREAM_PATH {
            crate::sandbox::stripe::behaviour::meters::authorize_stream(shared, &parts.headers)?;
        } else {
            shared.stripe.authorize(&parts.headers)?;
        }
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| RequestId::new().0);
        let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| {
            ApiError::request("The request body could not be read (at most 2 MiB).")
        })?;
        let query = parts.uri.query().unwrap_or_default();
        let json_body = parts.uri.path().starts_with("/v2/") && !bytes.is_empty();
        let (form, mut raw) = if json_body {
            let v: Value = serde_json::from_slice(&bytes).map_err(|_| {
                ApiError::invalid(
                    "invalid_json",
                    None,
                    "The request body must be a JSON object.",
                )
            })?;
            (form_of(query.as_bytes())?, v)
        } else {
            let mut all = query.as_bytes().to_vec();
            if !bytes.is_empty() {
                if !all.is_empty() {
                    all.push(b'&');
                }
                all.extend_from_slice(&bytes);
            }
            let form = form_of(&all)?;
            let raw = tree(&form);
            (form, raw)
        };
        let expand = take_expand(&mut raw);
        Ok(Call {
            scope: scope(shared, &parts.headers)?,
            method: parts.method,
            path: parts.uri.path().to_owned(),
            request_id,
            raw,
            form,
            expand,
            idempotency_key: header_text(&parts.headers, "idempotency-key"),
            stripe_version: header_text(&parts.headers, "stripe-version"),
        })
    }
}

fn form_of(bytes: &[u8]) -> ApiResult<Form> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
        .map(Form::from_pairs)
        .map_err(|e| {
            ApiError::invalid(
                "parameter_invalid",
                None,
                &format!("Invalid form body: {e}"),
            )
        })
}

/// Stripe's limit on a request body is far above any call here; 2 MiB is axum's default.
const BODY_LIMIT: usize = 2 * 1024 * 1024;

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `Stripe-Account`: the platform's own account id (or none) is the platform; an account the
/// platform created (and did not delete) is a connected account; any other is Stripe's refusal.
fn scope(shared: &Shared, headers: &HeaderMap) -> ApiResult<Scope> {
    match header_text(headers, "stripe-account") {
        None => Ok(Scope::Platform),
        Some(account) => resolve(shared, &account),
    }
}

/// The scope an account id names (the `Stripe-Account` header, or a parameter that names an
/// account to act for), or Stripe's `account_invalid`.
pub fn resolve(shared: &Shared, account: &str) -> ApiResult<Scope> {
    if account == shared.stripe.account_id() {
        return Ok(Scope::Platform);
    }
    let connected = shared
        .stripe
        .objects
        .platform()
        .get_of("account", account)
        .is_some_and(|a| a["deleted"] != true);
    if !connected {
        return Err(account_invalid(shared, account));
    }
    Ok(Scope::Connected(account.to_owned()))
}

/// Stripe's answer for an account the key cannot act for (none of its connected accounts, or
/// one deleted since): 403, `account_invalid`, which stripe-node raises as
/// `StripePermissionError`. Stripe gives it for `Stripe-Account` and for `GET /v1/accounts/{id}`
/// alike ("Accounts ... return a 403 instead of a 404"). The key is masked as Stripe masks it
/// there: its prefix, a star per hidden character, its last four.
pub fn account_invalid(shared: &Shared, account: &str) -> ApiError {
    let key = crate::secret::ExposeSecret::expose_secret(&shared.stripe.key()).to_owned();
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "invalid_request_error",
        Some("account_invalid"),
        None,
        &format!(
            "The provided key '{}' does not have access to account '{account}' (or that account does not exist). Application access may have been revoked.",
            starred_key(&key)
        ),
    )
}

/// `sk_test_` and a star for each character but the last four: `sk_test_********1234`.
fn starred_key(key: &str) -> String {
    let prefix = key
        .match_indices('_')
        .nth(1)
        .map_or(0, |(i, _)| i + 1)
        .min(key.len());
    let rest = &key[prefix..];
    let shown = rest.len().saturating_sub(4);
    if !key.is_ascii() || shown == 0 {
        return format!("{}****", &key[..prefix]);
    }
    format!("{}{}{}", &key[..prefix], "*".repeat(shown), &rest[shown..])
}

/// `expand[]=a&expand[]=b.c` (or `expand[0]=…`): the paths, taken out of the parameters.
fn take_expand(raw: &mut Value) -> Vec<String> {
    let Some(map) = raw.as_object_mut() else {
        return Vec::new();
    };
    match map.shift_remove("expand") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s],
        _ => Vec::new(),
    }
}

/// Stripe's form parameters as a tree: `a[b][c]=v` is `{"a": {"b": {"c": "v"}}}`, and
/// `items[0][price]=p` or `types[]=card` are lists. Values stay strings, as Stripe reads them.
pub fn tree(form: &Form) -> Value {
    let mut root = Value::Object(Map::new());
    for (key, value) in form.pairs() {
        let mut segments = vec![key.split('[').next().unwrap_or(key)];
        let mut rest = &key[segments[0].len()..];
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else { break };
            segments.push(&inner[..end]);
            rest = &inner[end + 1..];
        }
        insert(&mut root, &segments, value);
    }
    root
}

fn insert(node: &mut Value, segments: &[&str], value: &str) {
    let Some((first, rest)) = segments.split_first() else {
        *node = Value::String(value.to_owned());
        return;
    };
    let list_item = first.is_empty() || first.bytes().all(|b| b.is_ascii_digit());
    if list_item && !node.is_array() && !node.is_object() {
        *node = Value::Array(Vec::new());
    }
    if let Value::Array(items) = node {
        let index = first.parse::<usize>().unwrap_or(items.len());
        if index > MAX_INDEX {
            return;
        }
        while items.len() <= index {
            items.push(Value::Null);
        }
        return insert(&mut items[index], rest, value);
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let child = node
        .as_object_mut()
        .expect("an object")
        .entry((*first).to_owned())
        .or_insert(Value::Null);
    insert(child, rest, value);
}

/// A list index beyond this is ignored rather than allocated (`items[99999999]`).
const MAX_INDEX: usize = 10_000;

/// The layer that gives every API request its id and every answer the `Request-Id` header.
pub async fn request_id(
    mut req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let id = RequestId::new();
    req.extensions_mut().insert(id.clone());
    let mut resp = next.run(req).await;
    if let Ok(v) = header::HeaderValue::from_str(&id.0) {
        resp.headers_mut().insert("request-id", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_starred_as_stripe_stars_them_in_account_invalid() {
        assert_eq!(starred_key("sk_test_abcdefgh1234"), "sk_test_********1234");
        assert_eq!(starred_key("sk_test_12"), "sk_test_****");
    }

    #[test]
    fn nested_form_parameters_become_a_tree_and_expand_is_taken_out() {
        let form = form_of(
            b"line_items[0][price]=price_1&line_items[0][quantity]=2&payment_method_types[]=card\
              &metadata[foo]=bar&recurring[interval]=month&amount=2000&expand[]=customer&expand[]=a.b",
        )
        .unwrap();
        let mut raw = tree(&form);
        assert_eq!(take_expand(&mut raw), vec!["customer", "a.b"]);
        assert_eq!(
            raw,
            json!({
                "line_items": [{"price": "price_1", "quantity": "2"}],
                "payment_method_types": ["card"],
                "metadata": {"foo": "bar"},
                "recurring": {"interval": "month"},
                "amount": "2000",
            })
        );
        let huge = form_of(b"items[99999999][price]=x").unwrap();
        assert_eq!(tree(&huge), json!({"items": []}));
    }
}
