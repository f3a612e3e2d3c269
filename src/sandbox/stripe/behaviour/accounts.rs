//! Connected accounts (Stripe Connect): the platform creates, lists, updates and deletes them;
//! each has capabilities it requested and the requirements that stand between it and using
//! them, which move from `currently_due` to empty as information arrives (through the API for
//! accounts the platform onboards itself, through the sandbox's hosted onboarding page,
//! `stripe::onboarding`, for the others). Every change is the connected account's own
//! `account.updated` (and `capability.updated` per capability whose status moved), delivered to
//! Connect endpoints; a delete ends the connection: `account.application.deauthorized`.
//!
//! - `type` (`standard`, `express`, `custom`) or `controller` (who pays fees, bears losses,
//!   collects requirements, which dashboard): each implies the other as Stripe's "Connected
//!   account configuration" table says (docs.stripe.com/connect/migrate-to-controller-properties).
//! - Only the platform reaches its accounts: with `Stripe-Account`, creating or listing accounts
//!   is refused as for any account that is not a Connect platform, and another account's id is
//!   `account_invalid` (403), as is an id that is none of the platform's accounts ("Accounts
//!   ... return a 403 instead of a 404").
//! - Terms of service: "You cannot accept the Terms of Service on behalf of Standard and Express
//!   connected accounts" (the account holder accepts them during onboarding).
//! - Login links and account links: account_links.rs.

use serde_json::{Map, Value, json};

use crate::sandbox::stripe::engine::call::account_invalid;
use crate::sandbox::stripe::engine::events::emit_for;
use crate::sandbox::stripe::engine::{ApiError, ApiResult, Behaviour, Ctx, Engine, apply};

/// What the account holder still has to give, before anything is known ("Required
/// verification information", docs.stripe.com/connect/required-verification-information, US).
const FIRST: &[&str] = &[
    "business_profile.mcc",
    "business_profile.url",
    "business_type",
    "external_account",
    "representative.first_name",
    "representative.last_name",
    "tos_acceptance.date",
    "tos_acceptance.ip",
];
/// What an individual gives, once the business type is known.
const INDIVIDUAL: &[&str] = &[
    "individual.address.city",
    "individual.address.line1",
    "individual.address.postal_code",
    "individual.address.state",
    "individual.dob.day",
    "individual.dob.month",
    "individual.dob.year",
    "individual.email",
    "individual.first_name",
    "individual.last_name",
    "individual.phone",
    "individual.ssn_last_4",
];
/// What a company gives.
const COMPANY: &[&str] = &[
    "company.address.city",
    "company.address.line1",
    "company.address.postal_code",
    "company.address.state",
    "company.name",
    "company.phone",
    "company.tax_id",
    "representative.first_name",
    "representative.last_name",
];

pub struct Accounts;

impl Behaviour for Accounts {
    fn object(&self) -> &'static str {
        "account"
    }
    fn consumes(&self) -> &'static [&'static str] {
        &[
            "type",
            "controller",
            "capabilities",
            "individual",
            "company",
            "tos_acceptance",
            "external_account",
            "bank_account",
            "account_token",
        ]
    }
    /// What the platform alone may do, and a 403 (not a 404) for an account it does not have.
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        if let Some(own) = ctx.account() {
            return Some(match ctx.op {
                "create" | "list" => Err(not_a_platform()),
                "retrieve" if ctx.id() == own => connected_account(ctx, own),
                _ => Err(account_invalid(ctx.shared, ctx.id())),
            });
        }
        if matches!(ctx.op, "retrieve" | "update" | "delete") && !is_connected(ctx, ctx.id()) {
            return Some(Err(account_invalid(ctx.shared, ctx.id())));
        }
        None
    }
    fn create(&self, ctx: &Ctx, account: &mut Value) -> ApiResult<()> {
        // Stripe's account ids have 16 characters after `acct_` (acct_1PgafTB7WZ01zgkW).
        let id = format!("acct_{}", crate::secret::random_alnum(16));
        account["id"] = json!(id);
        account["external_accounts"]["url"] = json!(format!("/v1/accounts/{id}/external_accounts"));
        let kind = Kind::of(ctx);
        account["type"] = json!(kind.type_name());
        account["controller"] = kind.controller();
        let country = account["country"].as_str().unwrap_or("US").to_owned();
        account["country"] = json!(country);
        if ctx.str_param("default_currency").is_none() {
            account["default_currency"] = json!(currency_of(&country));
        }
        if account["business_profile"].is_null() {
            account["business_profile"] = ctx.shaped("account", "business_profile", &json!({}));
        }
        account["settings"] = settings(ctx, &account["settings"]);
        account["capabilities"] = json!({});
        let mut requested = requested_capabilities(ctx);
        if requested.is_empty() && kind.dashboard != "none" {
            // Stripe requests card payments and transfers for accounts it onboards itself.
            requested = vec![("card_payments".into(), true), ("transfers".into(), true)];
        }
        let asked: Map<String, Value> = requested
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| (name, json!(ctx.now())))
            .collect();
        ctx.store()
            .set_private(&id, "capabilities", Value::Object(asked));
        take_information(ctx, account, &kind)?;
        refresh(ctx, account);
        Ok(())
    }
    fn update(&self, ctx: &Ctx, _before: &Value, account: &mut Value) -> ApiResult<()> {
        let kind = Kind::from_account(account);
        let id = account["id"].as_str().unwrap_or_default().to_owned();
        let mut asked = capability_notes(ctx, &id);
        for (name, on) in requested_capabilities(ctx) {
            if on {
                asked.entry(name).or_insert(json!(ctx.now()));
            } else {
                asked.shift_remove(&name);
            }
        }
        ctx.store()
            .set_private(&id, "capabilities", Value::Object(asked));
        take_information(ctx, account, &kind)?;
        refresh(ctx, account);
        Ok(())
    }
    fn updated(&self, ctx: &Ctx, before: &Value, account: &mut Value) -> ApiResult<()> {
        capabilities_moved(ctx, before, account);
        Ok(())
    }
    /// Deleting a connected account ends its connection to the platform: the platform gets
    /// `account.application.deauthorized` from that account ("Occurs whenever a user
    /// deauthorizes an application"), and nothing reaches the account's objects again.
    fn deleted(&self, ctx: &Ctx, account: &Value) -> ApiResult<()> {
        let id = account["id"].as_str().unwrap_or_default();
        deauthorized(ctx, id);
        ctx.shared.stripe.objects.forget(id);
        Ok(())
    }
    fn keeps(&self, _ctx: &Ctx, account: &Value) -> bool {
        account["deleted"] != true
    }
}

/// Stripe's answer to `POST/GET /v1/accounts` from an account that is not a Connect platform.
fn not_a_platform() -> ApiError {
    ApiError::request(
        "You can only create new accounts if you've signed up for Connect, which you can learn how to do at https://stripe.com/docs/connect.",
    )
}

/// Whether `id` is one of the platform's (undeleted) connected accounts.
pub fn is_connected(ctx: &Ctx, id: &str) -> bool {
    connected_account(ctx, id).is_ok()
}

/// The connected account `id`, or Stripe's 403.
pub fn connected_account(ctx: &Ctx, id: &str) -> ApiResult<Value> {
    ctx.shared
        .stripe
        .objects
        .platform()
        .get_of("account", id)
        .filter(|a| a["deleted"] != true)
        .ok_or_else(|| account_invalid(ctx.shared, id))
}

/// `account.application.deauthorized`, the connected account's event, about the platform's
/// application.
pub fn deauthorized(ctx: &Ctx, account: &str) {
    let mut application = ctx.fresh("application");
    application["id"] = json!(super::connect::application_id(ctx));
    emit_for(
        ctx,
        "account.application.deauthorized",
        &application,
        None,
        Some(account),
    );
}

/// The account's configuration: the legacy `type` and the `controller` properties, each
/// implying the other.
struct Kind {
    /// `stripe_dashboard.type`: `full`, `express`, `none`.
    dashboard: String,
    /// `fees.payer`: `account`, `application`.
    fees: String,
    /// `losses.payments`: `stripe`, `application`.
    losses: String,
    /// `requirement_collection`: `stripe`, `application`.
    requirements: String,
    /// Created with `type` (its fees payer is then `application_express`/`_custom`).
    legacy: bool,
}

impl Kind {
    fn of(ctx: &Ctx) -> Kind {
        let given = ctx.param("controller").cloned().unwrap_or(Value::Null);
        // `type` names a whole configuration: it takes precedence over `controller`.
        if let Some(t) = ctx.str_param("type") {
            let (dashboard, fees, losses, requirements) = match t {
                "express" => ("express", "application", "application", "stripe"),
                "custom" => ("none", "application", "application", "application"),
                _ => ("full", "account", "stripe", "stripe"),
            };
            return Kind {
                dashboard: dashboard.into(),
                fees: fees.into(),
                losses: losses.into(),
                requirements: requirements.into(),
                legacy: true,
            };
        }
        let text = |path: &[&str], default: &str| {
            let mut v = &given;
            for p in path {
                v = &v[*p];
            }
            v.as_str().unwrap_or(default).to_owned()
        };
        let fees = text(&["fees", "payer"], "account");
        Kind {
            dashboard: text(
                &["stripe_dashboard", "type"],
                if fees == "account" { "full" } else { "none" },
            ),
            losses: text(
                &["losses", "payments"],
                if fees == "account" {
                    "stripe"
                } else {
                    "application"
                },
            ),
            requirements: text(&["requirement_collection"], "stripe"),
            fees,
            legacy: false,
        }
    }

    fn from_account(account: &Value) -> Kind {
        let c = &account["controller"];
        let fees = c["fees"]["payer"].as_str().unwrap_or("account");
        Kind {
            dashboard: c["stripe_dashboard"]["type"]
                .as_str()
                .unwrap_or("full")
                .into(),
            fees: fees
                .trim_end_matches("_express")
                .trim_end_matches("_custom")
                .into(),
            losses: c["losses"]["payments"].as_str().unwrap_or("stripe").into(),
            requirements: c["requirement_collection"]
                .as_str()
                .unwrap_or("stripe")
                .into(),
            legacy: fees.starts_with("application_"),
        }
    }

    /// The legacy type these properties amount to (`none` for a mix no legacy type had).
    fn type_name(&self) -> &'static str {
        match (
            self.dashboard.as_str(),
            self.fees.as_str(),
            self.losses.as_str(),
            self.requirements.as_str(),
        ) {
            ("full", "account", "stripe", "stripe") => "standard",
            ("express", "application", "application", "stripe") => "express",
            ("none", "application", "application", "application") => "custom",
            _ => "none",
        }
    }

    fn controller(&self) -> Value {
        let payer = match (self.legacy, self.type_name()) {
            (true, "express") => "application_express",
            (true, "custom") => "application_custom",
            _ => self.fees.as_str(),
        };
        json!({
            "fees": {"payer": payer},
            "is_controller": true,
            "losses": {"payments": self.losses},
            "requirement_collection": self.requirements,
            "stripe_dashboard": {"type": self.dashboard},
            "type": "application",
        })
    }

    /// Whether the account holder, not the platform, accepts Stripe's terms (Standard and
    /// Express: Stripe collects the requirements).
    fn holder_accepts_terms(&self) -> bool {
        self.requirements == "stripe"
    }
}

fn currency_of(country: &str) -> &'static str {
    match country {
        "GB" => "gbp",
        "CA" => "cad",
        "AU" => "aud",
        "JP" => "jpy",
        "AT" | "BE" | "DE" | "ES" | "FI" | "FR" | "IE" | "IT" | "LU" | "NL" | "PT" => "eur",
        _ => "usd",
    }
}

/// The account's settings: what was given, Stripe's defaults for the rest (a daily payout
/// schedule two days behind for accounts whose platform pays out, docs.stripe.com/connect/
/// manage-payout-schedule).
fn settings(ctx: &Ctx, given: &Value) -> Value {
    let given = if given.is_object() {
        given.clone()
    } else {
        json!({})
    };
    let mut s = ctx.shaped("account", "settings", &given);
    if s["payouts"]["schedule"]["interval"] == "example" || s["payouts"].is_null() {
        s["payouts"] = ctx.shaped(
            "account",
            "settings.payouts",
            &json!({"schedule": {"delay_days": 2, "interval": "daily"}}),
        );
    }
    s
}

/// The capabilities a call names (`capabilities[card_payments][requested]=true`); the engine
/// has already refused names stripe-node does not declare.
fn requested_capabilities(ctx: &Ctx) -> Vec<(String, bool)> {
    let Some(given) = ctx.param("capabilities").and_then(Value::as_object) else {
        return Vec::new();
    };
    given
        .iter()
        .map(|(name, v)| (name.clone(), v["requested"] == true))
        .collect()
}

/// The capabilities requested so far: name -> when.
fn capability_notes(ctx: &Ctx, account: &str) -> Map<String, Value> {
    ctx.shared
        .stripe
        .objects
        .platform()
        .private(account, "capabilities")
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// What the account holder gave so far (the sandbox's note: `individual.first_name` -> value),
/// and whether they accepted the terms or added a bank account.
pub fn information(ctx: &Ctx, account: &str) -> Map<String, Value> {
    ctx.shared
        .stripe
        .objects
        .platform()
        .private(account, "information")
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// Keeps `individual[...]`, `company[...]`, `tos_acceptance[...]` and an external account from
/// the call's parameters.
fn take_information(ctx: &Ctx, account: &mut Value, kind: &Kind) -> ApiResult<()> {
    let id = account["id"].as_str().unwrap_or_default().to_owned();
    let mut info = information(ctx, &id);
    for section in ["individual", "company"] {
        if let Some(given) = ctx.param(section) {
            flatten(section, given, &mut info);
        }
    }
    if let Some(tos) = ctx.param("tos_acceptance").and_then(Value::as_object) {
        if kind.holder_accepts_terms() {
            return Err(ApiError::request(
                "You cannot accept the Terms of Service on behalf of Standard and Express connected accounts.",
            ));
        }
        let mut t = account["tos_acceptance"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (k, v) in tos {
            t.insert(k.clone(), v.clone());
        }
        account["tos_acceptance"] = Value::Object(t);
    }
    let external = ctx
        .param("external_account")
        .or(ctx.param("bank_account"))
        .cloned();
    if let Some(external) = external {
        let bank = bank_account(ctx, account, &external)?;
        add_external_account(ctx, account, bank);
    }
    ctx.store()
        .set_private(&id, "information", Value::Object(info));
    Ok(())
}

fn flatten(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                flatten(&format!("{prefix}.{k}"), child, out);
            }
        }
        Value::String(s) if s.is_empty() => {
            out.shift_remove(prefix);
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

/// Records what the onboarding page collected and moves the account on (`account.updated`,
/// `capability.updated`, `account.external_account.created`).
pub fn onboarded(
    ctx: &Ctx,
    account_id: &str,
    collected: Map<String, Value>,
    bank: Option<Value>,
    tos: Value,
) -> ApiResult<Value> {
    let before = connected_account(ctx, account_id)?;
    let mut account = before.clone();
    let mut info = information(ctx, account_id);
    info.extend(collected);
    if let Some(bt) = info.get("business_type") {
        account["business_type"] = bt.clone();
    }
    for field in ["mcc", "url", "product_description"] {
        if let Some(v) = info.get(&format!("business_profile.{field}"))
            && account["business_profile"].get(field).is_some()
        {
            account["business_profile"][field] = v.clone();
        }
    }
    if account["email"].is_null() {
        account["email"] = info.get("individual.email").cloned().unwrap_or(Value::Null);
    }
    account["tos_acceptance"] = tos;
    ctx.store()
        .set_private(account_id, "information", Value::Object(info));
    if let Some(bank) = bank {
        add_external_account(ctx, &mut account, bank);
    }
    account["details_submitted"] = json!(true);
    refresh(ctx, &mut account);
    ctx.put(&account);
    let previous = apply::previous_attributes(&before, &account);
    emit_for(
        ctx,
        "account.updated",
        &account,
        Some(previous),
        Some(account_id),
    );
    capabilities_moved(ctx, &before, &account);
    Ok(account)
}

/// A bank account for payouts: a token (`btok_…`, any in the sandbox) or the object
/// (`object=bank_account`, `country`, `currency`, `routing_number`, `account_number`).
pub fn bank_account(ctx: &Ctx, account: &Value, given: &Value) -> ApiResult<Value> {
    let mut bank = ctx.fresh("bank_account");
    let currency = account["default_currency"].as_str().unwrap_or("usd");
    bank["account"] = account["id"].clone();
    bank["country"] = account["country"].clone();
    bank["currency"] = json!(currency);
    bank["bank_name"] = json!("STRIPE TEST BANK");
    bank["routing_number"] = json!("110000000");
    bank["last4"] = json!("6789");
    bank["fingerprint"] = json!(crate::secret::random_alnum(16));
    bank["default_for_currency"] = json!(true);
    if let Some(fields) = given.as_object() {
        let number = fields
            .get("account_number")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::missing_param("external_account[account_number]"))?;
        if number.len() < 4 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(
                "parameter_invalid",
                Some("external_account[account_number]"),
                "The account number must contain only digits.",
            ));
        }
        bank["last4"] = json!(&number[number.len() - 4..]);
        for key in [
            "routing_number",
            "country",
            "currency",
            "account_holder_name",
            "account_holder_type",
        ] {
            if let Some(v) = fields.get(key) {
                bank[key] = v.clone();
            }
        }
    }
    Ok(bank)
}

/// Adds `bank` to the account's external accounts (`account.external_account.created`).
pub fn add_external_account(ctx: &Ctx, account: &mut Value, bank: Value) {
    if let Some(list) = account["external_accounts"]["data"].as_array_mut() {
        list.insert(0, bank.clone());
    }
    let id = account["id"].as_str().unwrap_or_default().to_owned();
    emit_for(
        ctx,
        "account.external_account.created",
        &bank,
        None,
        Some(&id),
    );
}

/// Recomputes what is still due and what follows from it: the requirements, each requested
/// capability's status, `charges_enabled`, `payouts_enabled`.
pub fn refresh(ctx: &Ctx, account: &mut Value) {
    let id = account["id"].as_str().unwrap_or_default().to_owned();
    let due = still_due(ctx, account);
    let empty: Vec<Value> = Vec::new();
    let due_json: Vec<Value> = due.iter().map(|d| json!(d)).collect();
    account["requirements"] = json!({
        "alternatives": [],
        "current_deadline": null,
        "currently_due": due_json,
        "disabled_reason": if due.is_empty() { Value::Null } else { json!("requirements.past_due") },
        "errors": [],
        "eventually_due": due_json,
        "past_due": due_json,
        "pending_verification": [],
    });
    account["future_requirements"] = json!({
        "alternatives": [], "current_deadline": null, "currently_due": empty, "disabled_reason": null,
        "errors": [], "eventually_due": [], "past_due": [], "pending_verification": [],
    });
    let status = if due.is_empty() { "active" } else { "inactive" };
    let caps: Map<String, Value> = capability_notes(ctx, &id)
        .keys()
        .map(|name| (name.clone(), json!(status)))
        .collect();
    let can_charge = caps.get("card_payments") == Some(&json!("active"));
    account["capabilities"] = Value::Object(caps);
    account["charges_enabled"] = json!(can_charge);
    let has_bank = account["external_accounts"]["data"]
        .as_array()
        .is_some_and(|l| !l.is_empty());
    account["payouts_enabled"] = json!(due.is_empty() && has_bank);
}

/// The requirements still due for `account`.
fn still_due(ctx: &Ctx, account: &Value) -> Vec<String> {
    let id = account["id"].as_str().unwrap_or_default();
    let info = information(ctx, id);
    let known = |path: &str| -> bool {
        let direct = path
            .split('.')
            .try_fold(account, |v, p| v.get(p))
            .is_some_and(|v| !v.is_null());
        direct || info.get(path).is_some_and(|v| !v.is_null())
    };
    let mut wanted: Vec<&str> = FIRST.to_vec();
    match account["business_type"]
        .as_str()
        .or(info.get("business_type").and_then(Value::as_str))
    {
        Some("individual") => {
            wanted.retain(|w| !w.starts_with("representative.") && *w != "business_type");
            wanted.extend_from_slice(INDIVIDUAL);
        }
        Some(_) => {
            wanted.retain(|w| *w != "business_type");
            wanted.extend_from_slice(COMPANY);
        }
        None => {}
    }
    let has_bank = account["external_accounts"]["data"]
        .as_array()
        .is_some_and(|l| !l.is_empty());
    // A business describes itself by its website or by its products.
    let described = known("business_profile.url") || known("business_profile.product_description");
    let mut due: Vec<String> = wanted
        .into_iter()
        .filter(|w| match *w {
            "external_account" => !has_bank,
            "business_profile.url" => !described,
            "individual.ssn_last_4" => !known(w) && !known("individual.id_number"),
            other => !known(other),
        })
        .map(str::to_owned)
        .collect();
    due.sort();
    due.dedup();
    due
}

/// `capability.updated` for each capability whose status changed between `before` and `after`
/// (the connected account's events).
fn capabilities_moved(ctx: &Ctx, before: &Value, after: &Value) {
    let id = after["id"].as_str().unwrap_or_default();
    let Some(now) = after["capabilities"].as_object() else {
        return;
    };
    for (name, status) in now {
        if before["capabilities"].get(name) != Some(status)
            && let Ok(cap) = capability(ctx, after, name)
        {
            let was = before["capabilities"].get(name).cloned();
            let previous = json!({"status": was.unwrap_or(json!("unrequested"))});
            emit_for(ctx, "capability.updated", &cap, Some(previous), Some(id));
        }
    }
}

/// The capabilities stripe-node declares (`capabilities[<name>]` of an account's create).
fn known_capability(name: &str) -> bool {
    Engine::get()
        .resource("account")
        .and_then(|r| r.methods.get("create"))
        .is_some_and(|m| match &m.params {
            crate::sandbox::stripe::engine::Schema::Object { fields, .. } => {
                fields["capabilities"]["obj"].get(name).is_some()
            }
            _ => false,
        })
}

/// The Capability object `name` of `account`.
fn capability(ctx: &Ctx, account: &Value, name: &str) -> ApiResult<Value> {
    let id = account["id"].as_str().unwrap_or_default();
    if !known_capability(name) {
        return Err(ApiError::not_found("capability", name));
    }
    let asked = capability_notes(ctx, id);
    let mut cap = ctx.fresh("capability");
    cap["id"] = json!(name);
    cap["account"] = json!(id);
    cap["requested"] = json!(asked.contains_key(name));
    cap["requested_at"] = asked.get(name).cloned().unwrap_or(Value::Null);
    cap["status"] = account["capabilities"]
        .get(name)
        .cloned()
        .unwrap_or(json!("unrequested"));
    let mut requirements = account["requirements"].clone();
    if let Some(r) = requirements.as_object_mut() {
        r.shift_remove("pending_verification");
        r.insert("pending_verification".into(), json!([]));
    }
    if cap["requested"] == true {
        cap["requirements"] = requirements;
    }
    Ok(cap)
}

/// `GET /v1/accounts/{id}/capabilities[/{name}]`, `POST …/{name}` (`requested`).
pub struct Capabilities;

impl Behaviour for Capabilities {
    fn object(&self) -> &'static str {
        "capability"
    }
    fn serve(&self, ctx: &Ctx) -> Option<ApiResult<Value>> {
        Some(serve_capability(ctx))
    }
}

fn serve_capability(ctx: &Ctx) -> ApiResult<Value> {
    let account_id = ctx.ids[0].clone();
    if ctx.account().is_some() {
        return Err(account_invalid(ctx.shared, &account_id));
    }
    let before = connected_account(ctx, &account_id)?;
    match ctx.op {
        "list" => {
            let data: Vec<Value> = capability_notes(ctx, &account_id)
                .keys()
                .filter_map(|name| capability(ctx, &before, name).ok())
                .collect();
            Ok(
                json!({"object": "list", "data": data, "has_more": false, "url": format!("/v1/accounts/{account_id}/capabilities")}),
            )
        }
        "update" => {
            let name = ctx.id().to_owned();
            capability(ctx, &before, &name)?;
            let mut asked = capability_notes(ctx, &account_id);
            match ctx.param("requested").and_then(Value::as_bool) {
                Some(true) => {
                    asked.entry(name.clone()).or_insert(json!(ctx.now()));
                }
                Some(false) => {
                    asked.shift_remove(&name);
                }
                None => {}
            }
            ctx.store()
                .set_private(&account_id, "capabilities", Value::Object(asked));
            let mut account = before.clone();
            refresh(ctx, &mut account);
            ctx.put(&account);
            let previous = apply::previous_attributes(&before, &account);
            if previous.as_object().is_some_and(|p| !p.is_empty()) {
                emit_for(
                    ctx,
                    "account.updated",
                    &account,
                    Some(previous),
                    Some(&account_id),
                );
            }
            capabilities_moved(ctx, &before, &account);
            capability(ctx, &account, &name)
        }
        _ => capability(ctx, &before, ctx.id()),
    }
}
