//! Identity verification sessions: created `requires_input`, canceled, redacted ("Redacting a
//! VerificationSession in requires_action state will automatically cancel it", API reference,
//! Redact a VerificationSession). The hosted verification flow is not served: `url` is null.

use serde_json::{Value, json};

use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

pub struct VerificationSessions;

impl Behaviour for VerificationSessions {
    fn object(&self) -> &'static str {
        "identity.verification_session"
    }
    fn actions(&self) -> &'static [&'static str] {
        &["cancel", "redact"]
    }
    fn create(&self, _ctx: &Ctx, session: &mut Value) -> ApiResult<()> {
        let id = session["id"].as_str().unwrap_or_default().to_owned();
        session["client_secret"] =
            json!(format!("{id}_secret_{}", crate::secret::random_alnum(24)));
        Ok(())
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        match ctx.op {
            "cancel" => Some(cancel(ctx).map(|(s, _)| s)),
            "redact" => Some(redact(ctx)),
            _ => None,
        }
    }
}

/// Cancels a session that still waits for input (`identity.verification_session.canceled`).
fn cancel(ctx: &Ctx) -> ApiResult<(Value, Value)> {
    let before = ctx.target()?;
    if !matches!(before["status"].as_str(), Some("requires_input")) {
        return Err(ApiError::state(
            "verification_session_unexpected_state",
            &format!(
                "This VerificationSession cannot be canceled because its status is {}.",
                before["status"].as_str().unwrap_or("")
            ),
        ));
    }
    let mut session = before.clone();
    session["status"] = json!("canceled");
    ctx.put(&session);
    ctx.emit("identity.verification_session.canceled", &session, None);
    Ok((session, before))
}

fn redact(ctx: &Ctx) -> ApiResult<Value> {
    let mut session = ctx.target()?;
    if session["status"] == "requires_input" {
        session = cancel(ctx)?.0;
    }
    if session["redaction"]["status"] == "redacted" {
        return Ok(session);
    }
    session["redaction"] = json!({"status": "redacted"});
    ctx.put(&session);
    ctx.emit("identity.verification_session.redacted", &session, None);
    Ok(session)
}
