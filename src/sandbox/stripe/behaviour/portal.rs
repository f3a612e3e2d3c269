//! The customer portal: configurations (stored as given) and sessions, which need a customer
//! and use the account's default configuration when none is named (Stripe's default is the one
//! saved in the Dashboard's portal settings; the sandbox makes it, without an event, when first
//! needed, with the example object's features). A session's `url` is its hosted page
//! (`stripe::portal_page`, as Stripe's `billing.stripe.com/p/session/…`): the customer's
//! subscriptions and payment methods, and what the configuration's features allow
//! (docs.stripe.com/customer-management). Of those the sandbox does `subscription_cancel`:
//! `at_period_end` sets `cancel_at_period_end` (`customer.subscription.updated`),
//! `immediately` cancels (`customer.subscription.deleted`); the portal's sessions have no
//! events of their own (stripe-node declares none).

use serde_json::{Value, json};

use super::subscriptions;
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

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
        session["url"] = json!(format!("{}/p/session/{id}", ctx.shared.stripe_api_url));
        if session["return_url"].is_null() {
            session["return_url"] = configuration["default_return_url"].clone();
        }
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

/// What the portal shows a session's customer: their subscriptions that have not ended, their
/// payment methods, and how the configuration lets them cancel (`None`: it does not).
pub struct View {
    pub subscriptions: Vec<Value>,
    pub payment_methods: Vec<Value>,
    pub cancel_mode: Option<String>,
}

pub fn view(ctx: &Ctx, session: &Value) -> ApiResult<View> {
    let customer = session["customer"].as_str().unwrap_or_default().to_owned();
    let configuration = ctx.get(
        "billing_portal.configuration",
        session["configuration"].as_str().unwrap_or_default(),
    )?;
    let cancel = &configuration["features"]["subscription_cancel"];
    let mut subscriptions = ctx.store().all("subscription", &|s| {
        s["customer"] == customer.as_str() && !subscriptions::ended(s)
    });
    subscriptions.sort_by_key(|s| s["created"].as_i64());
    Ok(View {
        subscriptions,
        payment_methods: ctx
            .store()
            .all("payment_method", &|pm| pm["customer"] == customer.as_str()),
        cancel_mode: (cancel["enabled"] == true).then(|| {
            cancel["mode"]
                .as_str()
                .unwrap_or("at_period_end")
                .to_owned()
        }),
    })
}

/// The customer cancels `sub_id` in the portal, as its configuration's
/// `features.subscription_cancel.mode` says; a subscription not theirs, or a portal that does
/// not allow canceling, is refused.
pub fn cancel(ctx: &Ctx, session: &Value, sub_id: &str) -> ApiResult<Value> {
    let view = view(ctx, session)?;
    let Some(mode) = view.cancel_mode else {
        return Err(ApiError::state(
            "portal_feature_disabled",
            "This portal's configuration does not let customers cancel subscriptions.",
        ));
    };
    let Some(mut sub) = view.subscriptions.into_iter().find(|s| s["id"] == sub_id) else {
        return Err(ApiError::no_such("subscription", sub_id, "subscription"));
    };
    if mode == "immediately" {
        subscriptions::cancel_now(ctx, &mut sub);
        return Ok(sub);
    }
    // "If the subscription has been canceled with cancel_at_period_end, canceled_at reflects the
    // time of the most recent update request" (API reference, the subscription object).
    let before = sub.clone();
    sub["cancel_at_period_end"] = json!(true);
    sub["canceled_at"] = json!(ctx.now());
    sub["cancellation_details"] = ctx.shaped(
        "subscription",
        "cancellation_details",
        &json!({"reason": "cancellation_requested"}),
    );
    ctx.save_update(&before, &sub);
    Ok(sub)
}
