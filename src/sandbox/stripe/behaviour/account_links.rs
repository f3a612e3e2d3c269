//! The links a platform makes for its connected accounts: account links (single use, five
//! minutes, docs.stripe.com/api/account_links) to the hosted onboarding page
//! (`stripe::onboarding`), and login links to the Express Dashboard page of accounts that use
//! it. Only the platform makes them, for accounts it has (Stripe's 403 otherwise).

use serde_json::{Map, Value, json};

use super::accounts::connected_account;
use crate::sandbox::stripe::engine::call::account_invalid;
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx};

/// How long an account link works (the API reference: "expires_at ... 5 minutes").
const LINK_LIFETIME: i64 = 300;

/// `POST /v1/accounts/{id}/login_links`: a link to the Express Dashboard of an account that
/// uses it ("You can only create login links for accounts that use the Express Dashboard and
/// are connected to your platform", the API reference).
pub struct LoginLinks;

impl Behaviour for LoginLinks {
    fn object(&self) -> &'static str {
        "login_link"
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        Some(login_link(ctx))
    }
}

fn login_link(ctx: &Ctx) -> ApiResult<Value> {
    let id = ctx.ids[0].clone();
    if ctx.account().is_some() {
        return Err(account_invalid(ctx.shared, &id));
    }
    let account = connected_account(ctx, &id)?;
    if account["controller"]["stripe_dashboard"]["type"] != "express" {
        return Err(ApiError::request(
            "You can only create login links for accounts that use the Express Dashboard and are connected to your platform.",
        ));
    }
    let token = crate::secret::random_alnum(12);
    let mut links = ctx
        .store()
        .private(&id, "login_links")
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    links.insert(token.clone(), json!(ctx.now()));
    ctx.store()
        .set_private(&id, "login_links", Value::Object(links));
    let mut link = ctx.fresh("login_link");
    link["created"] = json!(ctx.now());
    link["url"] = json!(format!(
        "{}/express/{id}/{token}",
        ctx.shared.stripe_api_url
    ));
    Ok(link)
}

/// `POST /v1/account_links`: a single-use link to the onboarding page, valid five minutes.
pub struct AccountLinks;

impl Behaviour for AccountLinks {
    fn object(&self) -> &'static str {
        "account_link"
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        (ctx.op == "create").then(|| account_link(ctx))
    }
}

fn account_link(ctx: &Ctx) -> ApiResult<Value> {
    let id = ctx.str_param("account").unwrap_or_default().to_owned();
    if ctx.account().is_some() {
        return Err(account_invalid(ctx.shared, &id));
    }
    connected_account(ctx, &id)?;
    for param in ["refresh_url", "return_url"] {
        if let Some(url) = ctx.str_param(param)
            && url::Url::parse(url).is_err()
        {
            return Err(ApiError::invalid(
                "url_invalid",
                Some(param),
                "Not a valid URL",
            ));
        }
    }
    let token = crate::secret::random_alnum(12);
    let now = ctx.now();
    let note = json!({
        "expires_at": now + LINK_LIFETIME,
        "refresh_url": ctx.str_param("refresh_url"),
        "return_url": ctx.str_param("return_url"),
        "type": ctx.str_param("type"),
    });
    let mut links = account_links(ctx, &id);
    links.insert(token.clone(), note);
    ctx.store()
        .set_private(&id, "account_links", Value::Object(links));
    let mut link = ctx.fresh("account_link");
    link["created"] = json!(now);
    link["expires_at"] = json!(now + LINK_LIFETIME);
    link["url"] = json!(format!(
        "{}/setup/e/{id}/{token}",
        ctx.shared.stripe_api_url
    ));
    Ok(link)
}

/// The account links made for `account`: token -> {expires_at, refresh_url, return_url, type,
/// visited}.
pub fn account_links(ctx: &Ctx, account: &str) -> Map<String, Value> {
    ctx.shared
        .stripe
        .objects
        .platform()
        .private(account, "account_links")
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}
