//! Payment methods: detach (`payment_method.detached`; "a PaymentMethod that is detached can no
//! longer be used or attached to a customer", API reference, Detach a PaymentMethod).

use serde_json::Value;

use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

pub struct PaymentMethods;

impl Behaviour for PaymentMethods {
    fn object(&self) -> &'static str {
        "payment_method"
    }
    fn actions(&self) -> &'static [&'static str] {
        &["detach"]
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        (ctx.op == "detach").then(|| detach(ctx))
    }
}

fn detach(ctx: &Ctx) -> ApiResult<Value> {
    let before = ctx.target()?;
    if before["customer"].is_null() {
        return Err(ApiError::state(
            "payment_method_unexpected_state",
            "The payment method you provided is not attached to a customer so detachment is impossible.",
        ));
    }
    let mut pm = before.clone();
    pm["customer"] = Value::Null;
    ctx.put(&pm);
    ctx.emit(
        "payment_method.detached",
        &pm,
        Some(serde_json::json!({"customer": before["customer"]})),
    );
    Ok(pm)
}
