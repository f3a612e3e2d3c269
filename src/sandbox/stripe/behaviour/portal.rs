//! The customer portal: configurations (stored as given) and sessions, which need a customer
//! and use the account's default configuration when none is named (Stripe's default is the one
//! saved in the Dashboard's portal settings; the sandbox makes it, without an event, when first
//! needed). The portal page itself is not served: a session's `url` names where it would be.

use serde_json::{Value, json};

use crate::sandbox::stripe::engine::{ApiResult, Behaviour, Ctx};

pub struct PortalSessions;

impl Behaviour for PortalSessions {
    fn object(&self) -> &'static str {
        "billing_portal.session"
    }
    fn create(&self, ctx: &Ctx, session: &mut Value) -> ApiResult<()> {
        if let Some(customer) = ctx.str_param("customer") {
            ctx.find("customer", customer, "customer")?;
        }
        let configuration = match ctx.str_param("configuration") {
            Some(id) => ctx.find("billing_portal.configuration", id, "configuration")?,
            None => default_configuration(ctx),
        };
        session["configuration"] = configuration["id"].clone();
        let id = session["id"].as_str().unwrap_or_default().to_owned();
        session["url"] = json!(format!("{}/p/session/{id}", ctx.shared.app_url));
        Ok(())
    }
}

fn default_configuration(ctx: &Ctx) -> Value {
    let existing = ctx
        .store()
        .all("billing_portal.configuration", &|c| c["is_default"] == true);
    if let Some(c) = existing.into_iter().next() {
        return c;
    }
    let mut c = ctx.fresh("billing_portal.configuration");
    c["is_default"] = json!(true);
    ctx.put(&c);
    c
}
