//! Stripe's error answer, `{"error": {type, code, param, message, doc_url, …}}`, as one value a
//! handler returns with `?`. The shapes are those stripe-node turns into its typed errors
//! (`StripeInvalidRequestError` for `invalid_request_error`, `StripeCardError` for `card_error`,
//! `StripeAuthenticationError` for a 401, `StripeIdempotencyError` for `idempotency_error`), with
//! the messages Stripe's API gives ("Received unknown parameter: x", "Missing required param: x.",
//! "No such customer: 'cus_x'").

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub type ApiResult<T> = std::result::Result<T, ApiError>;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: Map<String, Value>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &str,
        code: Option<&str>,
        param: Option<&str>,
        message: &str,
    ) -> Self {
        let mut error = Map::new();
        if let Some(c) = code {
            error.insert("code".into(), json!(c));
            // Stripe links every coded error to its page: /docs/error-codes/<code with dashes>.
            error.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    c.replace('_', "-")
                )),
            );
        }
        error.insert("message".into(), json!(message));
        if let Some(p) = param {
            error.insert("param".into(), json!(p));
        }
        error.insert("type".into(), json!(kind));
        Self { status, error }
    }

    /// A 400 `invalid_request_error` with a code.
    pub fn invalid(code: &str, param: Option<&str>, message: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some(code),
            param,
            message,
        )
    }

    /// A 400 `invalid_request_error` without a code (Stripe gives none for some refusals).
    pub fn request(message: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            None,
            message,
        )
    }

    /// A 400 `invalid_request_error` naming `param`, without a code (Stripe's "Invalid
    /// currency: xyz. …" has none).
    pub fn bad_param(param: &str, message: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            Some(param),
            message,
        )
    }

    pub fn unknown_param(param: &str) -> Self {
        Self::invalid(
            "parameter_unknown",
            Some(param),
            &format!("Received unknown parameter: {param}"),
        )
    }

    pub fn missing_param(param: &str) -> Self {
        Self::invalid(
            "parameter_missing",
            Some(param),
            &format!("Missing required param: {param}."),
        )
    }

    /// A parameter naming an object the account does not have: 400 `resource_missing`.
    pub fn no_such(kind: &str, id: &str, param: &str) -> Self {
        Self::invalid(
            "resource_missing",
            Some(param),
            &format!("No such {kind}: '{id}'"),
        )
    }

    /// The object a URL names does not exist: 404 `resource_missing`, param `id`.
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("resource_missing"),
            Some("id"),
            &format!("No such {kind}: '{id}'"),
        )
    }

    /// An object in a state the call cannot act on (`payment_intent_unexpected_state`, …).
    pub fn state(code: &str, message: &str) -> Self {
        Self::invalid(code, None, message)
    }

    /// A 402 `card_error` (a declined card, a payment needing authentication).
    pub fn card(code: &str, decline_code: Option<&str>, message: &str) -> Self {
        let mut e = Self::new(
            StatusCode::PAYMENT_REQUIRED,
            "card_error",
            Some(code),
            None,
            message,
        );
        if let Some(d) = decline_code {
            e.error.insert("decline_code".into(), json!(d));
        }
        e
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            None,
            message,
        )
    }

    /// An extra field of the error object (`payment_intent`, `charge`, `payment_method`, …).
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.error.insert(key.into(), value);
        self
    }

    /// What the error says (`error.message`).
    pub fn message(&self) -> String {
        self.error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    pub fn body(&self) -> Value {
        json!({ "error": self.error })
    }
}

/// So that `?` answers an `ApiError` from a handler that returns `Result<_, Response>`.
impl From<ApiError> for Response {
    fn from(e: ApiError) -> Response {
        e.into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        (self.status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_shaped_as_stripe_answers_them() {
        let e = ApiError::unknown_param("foo[bar]");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body(),
            json!({"error": {"code": "parameter_unknown", "doc_url": "https://stripe.com/docs/error-codes/parameter-unknown",
                             "message": "Received unknown parameter: foo[bar]", "param": "foo[bar]", "type": "invalid_request_error"}})
        );
        let e = ApiError::card(
            "card_declined",
            Some("generic_decline"),
            "Your card was declined.",
        );
        assert_eq!(e.status, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(e.body()["error"]["decline_code"], "generic_decline");
        assert_eq!(
            ApiError::not_found("coupon", "x").body()["error"]["param"],
            "id"
        );
    }
}
