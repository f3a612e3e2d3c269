//! The hosted pages of Connect, on the Stripe API's listener as Stripe serves them on its own
//! domain: the onboarding page an account link opens (`/setup/e/{account}/{link}`), and the
//! Express Dashboard a login link opens (`/express/{account}/{link}`). A person (or WebDriver)
//! fills the onboarding page as Stripe's hosted onboarding asks: the business type, who they
//! are, the business, a bank account for payouts, the terms; submitting it clears the account's
//! requirements (`accounts::onboarded`: `account.external_account.created`, `account.updated`,
//! `capability.updated`) and redirects to the link's `return_url`.
//!
//! An account link is single use and lives five minutes: "Redirect to refresh_url: the link is
//! expired, has been previously visited, or is otherwise invalid" (the API reference, Account
//! Links). The page's form carries a token of its own, so the visit that opened it can submit
//! it once.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Map, Value, json};

use super::behaviour::{account_links, accounts};
use super::engine::{Call, Ctx, Engine, Scope};
use crate::sandbox::Shared;
use crate::sandbox::checkout::{escape, layout};

type S = State<Arc<Shared>>;

/// What the page asks, by field name: (label, autocomplete, the requirement it fills).
const PERSON: &[(&str, &str, &str, &str)] = &[
    ("first_name", "First name", "given-name", "first_name"),
    ("last_name", "Last name", "family-name", "last_name"),
    ("email", "Email", "email", "email"),
    ("phone", "Phone number", "tel", "phone"),
    (
        "dob_month",
        "Date of birth: month",
        "bday-month",
        "dob.month",
    ),
    ("dob_day", "Date of birth: day", "bday-day", "dob.day"),
    ("dob_year", "Date of birth: year", "bday-year", "dob.year"),
    ("line1", "Address", "address-line1", "address.line1"),
    ("city", "City", "address-level2", "address.city"),
    ("state", "State", "address-level1", "address.state"),
    ("postal_code", "ZIP", "postal-code", "address.postal_code"),
];

/// Fields of the business: (name, label, requirement).
const BUSINESS: &[(&str, &str, &str)] = &[
    ("url", "Business website", "business_profile.url"),
    ("mcc", "Industry", "business_profile.mcc"),
];

/// Industries offered (merchant category codes, docs.stripe.com/connect/setting-mcc).
const INDUSTRIES: &[(&str, &str)] = &[
    ("5734", "Software"),
    ("5815", "Digital goods: media"),
    ("5969", "Direct marketing"),
    ("7299", "Other services"),
    ("8299", "Education"),
];

/// `GET /setup/e/{account}/{link}`: the page, once per link.
pub async fn page(
    State(shared): S,
    UrlPath((account, token)): UrlPath<(String, String)>,
) -> Response {
    let call = Call::internal("/setup/e", Scope::Platform);
    let ctx = ctx(&shared, &call);
    let Some(mut link) = usable(&ctx, &account, &token) else {
        return expired(&ctx, &account, &token);
    };
    let form_token = crate::secret::random_alnum(24);
    link["visited"] = json!(true);
    link["form"] = json!(form_token);
    save_link(&ctx, &account, &token, link);
    let Some(acct) = ctx
        .shared
        .stripe
        .objects
        .platform()
        .get_of("account", &account)
    else {
        return gone();
    };
    Html(form_page(&acct, &token, &form_token, &Map::new(), None)).into_response()
}

/// `POST /setup/e/{account}/{link}`: the answers; the requirements clear and the browser goes to
/// the `return_url`.
pub async fn submit(
    State(shared): S,
    UrlPath((account, token)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let call = Call::internal("/setup/e", Scope::Platform);
    let ctx = ctx(&shared, &call);
    let answers: Map<String, Value> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), json!(v.trim())))
        .collect();
    let links = account_links::account_links(&ctx, &account);
    let Some(mut link) = links.get(&token).cloned() else {
        return gone();
    };
    let posted = answers.get("form").and_then(Value::as_str);
    if link["form"].as_str().is_none() || link["form"].as_str() != posted || link["done"] == true {
        return expired(&ctx, &account, &token);
    }
    let Some(acct) = ctx
        .shared
        .stripe
        .objects
        .platform()
        .get_of("account", &account)
    else {
        return gone();
    };
    let (collected, bank) = match read(&answers) {
        Ok(found) => found,
        Err(why) => {
            let page = form_page(
                &acct,
                &token,
                posted.unwrap_or_default(),
                &answers,
                Some(&why),
            );
            return (StatusCode::BAD_REQUEST, Html(page)).into_response();
        }
    };
    let ip = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let tos = json!({"date": ctx.now(), "ip": ip, "user_agent": agent});
    let holder = if collected.get("business_type") == Some(&json!("individual")) {
        "individual"
    } else {
        "company"
    };
    let given =
        json!({"routing_number": bank.0, "account_number": bank.1, "account_holder_type": holder});
    let bank_account = match accounts::bank_account(&ctx, &acct, &given) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = accounts::onboarded(&ctx, &account, collected, Some(bank_account), tos) {
        return e.into_response();
    }
    link["done"] = json!(true);
    let return_url = link["return_url"].as_str().map(str::to_owned);
    save_link(&ctx, &account, &token, link);
    match return_url {
        Some(url) => Redirect::to(&url).into_response(),
        None => Html(layout(
            "Done",
            "<div class=\"App-Payment\"><div class=\"Notice\" id=\"onboarding-complete\"><h1 style=\"font-size:20px\">You're all set</h1><p>Your information was submitted. You can close this page.</p></div></div>",
        ))
        .into_response(),
    }
}

/// `GET /express/{account}/{link}`: the account's Express Dashboard, what a login link opens:
/// its balance and payouts.
pub async fn express(
    State(shared): S,
    UrlPath((account, token)): UrlPath<(String, String)>,
) -> Response {
    let platform = shared.stripe.objects.platform();
    let issued = platform
        .private(&account, "login_links")
        .is_some_and(|l| l.get(&token).is_some());
    let Some(acct) = platform.get_of("account", &account).filter(|_| issued) else {
        return gone();
    };
    let call = Call::internal("/express", Scope::Connected(account.clone()));
    let ctx = ctx(&shared, &call);
    let balance = super::behaviour::ledger::balance(&ctx);
    let amounts = |part: &str| -> String {
        balance[part]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                format!(
                    "{} {}",
                    money(b["amount"].as_i64().unwrap_or(0)),
                    b["currency"].as_str().unwrap_or("").to_uppercase()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let payouts: String = ctx
        .store()
        .all("payout", &|_| true)
        .iter()
        .rev()
        .map(|p| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(p["id"].as_str().unwrap_or("")),
                money(p["amount"].as_i64().unwrap_or(0)),
                escape(p["status"].as_str().unwrap_or(""))
            )
        })
        .collect();
    let body = format!(
        "<div class=\"App-Payment\"><h1 style=\"font-size:20px\">{name}</h1>\
         <p id=\"available\">Available: {available}</p><p id=\"pending\">Pending: {pending}</p>\
         <table id=\"payouts\"><tr><th>Payout</th><th>Amount</th><th>Status</th></tr>{payouts}</table>\
         <div class=\"Footer\">Express Dashboard of {id}, stripe-ops sandbox</div></div>",
        name = escape(acct["email"].as_str().unwrap_or("Your account")),
        available = amounts("available"),
        pending = amounts("pending"),
        id = escape(&account),
    );
    Html(layout("Express Dashboard", &body)).into_response()
}

fn money(cents: i64) -> String {
    format!(
        "{}{}.{:02}",
        if cents < 0 { "-" } else { "" },
        cents.abs() / 100,
        cents.abs() % 100
    )
}

fn ctx<'a>(shared: &'a Arc<Shared>, call: &'a Call) -> Ctx<'a> {
    let resource = Engine::get()
        .resource("account")
        .expect("account is in the table");
    Ctx::new(shared, call, resource, "update", Map::new(), Vec::new())
}

/// The link if it may still be opened: known, not visited, not expired.
fn usable(ctx: &Ctx, account: &str, token: &str) -> Option<Value> {
    let link = account_links::account_links(ctx, account)
        .get(token)
        .cloned()?;
    let fresh = link["expires_at"].as_i64().is_some_and(|t| ctx.now() < t);
    (fresh && link["visited"] != true).then_some(link)
}

fn save_link(ctx: &Ctx, account: &str, token: &str, link: Value) {
    let mut links = account_links::account_links(ctx, account);
    links.insert(token.to_owned(), link);
    ctx.store()
        .set_private(account, "account_links", Value::Object(links));
}

/// A link that cannot be used (again): to its `refresh_url`, where the platform makes a new one.
fn expired(ctx: &Ctx, account: &str, token: &str) -> Response {
    let refresh = account_links::account_links(ctx, account)
        .get(token)
        .and_then(|l| l["refresh_url"].as_str().map(str::to_owned));
    match refresh {
        Some(url) => Redirect::to(&url).into_response(),
        None => gone(),
    }
}

fn gone() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(layout(
            "Link expired",
            "<div class=\"App-Payment\"><h1>This link has expired</h1><p>Ask the platform for a new one.</p></div>",
        )),
    )
        .into_response()
}

/// What the answers give: the requirements they fill (`individual.first_name` -> value, …) and
/// the bank account (routing number, account number); or what is wrong, in the page's words.
type Collected = (Map<String, Value>, (String, String));

fn read(answers: &Map<String, Value>) -> Result<Collected, String> {
    let get = |name: &str| {
        answers
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let business_type = match get("business_type").as_str() {
        "individual" => "individual",
        "company" => "company",
        _ => return Err("Choose a type of business.".into()),
    };
    let mut out = Map::new();
    out.insert("business_type".into(), json!(business_type));
    let person = if business_type == "individual" {
        "individual"
    } else {
        "representative"
    };
    for (name, label, _, path) in PERSON {
        let v = get(name);
        if v.is_empty() {
            return Err(format!("{label} is required."));
        }
        let value = if name.starts_with("dob_") {
            let n: i64 = v
                .parse()
                .map_err(|_| format!("{label} must be a number."))?;
            json!(n)
        } else {
            json!(v)
        };
        out.insert(format!("{person}.{path}"), value.clone());
        if business_type == "company" && path.starts_with("address.") {
            out.insert(format!("company.{path}"), value);
        }
    }
    if business_type == "individual" {
        let ssn = get("ssn_last_4");
        if ssn.len() != 4 || !ssn.bytes().all(|b| b.is_ascii_digit()) {
            return Err("The last 4 digits of the SSN must be 4 digits.".into());
        }
        out.insert("individual.ssn_last_4".into(), json!(ssn));
    } else {
        for (name, label, path) in [
            ("company_name", "Legal business name", "company.name"),
            (
                "tax_id",
                "Employer Identification Number (EIN)",
                "company.tax_id",
            ),
        ] {
            let v = get(name);
            if v.is_empty() {
                return Err(format!("{label} is required."));
            }
            out.insert(path.into(), json!(v));
        }
        out.insert("company.phone".into(), json!(get("phone")));
    }
    for (name, label, path) in BUSINESS {
        let v = get(name);
        if v.is_empty() {
            return Err(format!("{label} is required."));
        }
        out.insert((*path).into(), json!(v));
    }
    let routing = get("routing_number");
    if routing.len() != 9 || !routing.bytes().all(|b| b.is_ascii_digit()) {
        return Err("The routing number must be 9 digits.".into());
    }
    let number = get("account_number");
    if number.len() < 4 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err("The account number must be digits.".into());
    }
    if get("tos") != "accepted" {
        return Err("Accept the Stripe Connected Account Agreement to continue.".into());
    }
    Ok((out, (routing, number)))
}

fn form_page(
    account: &Value,
    token: &str,
    form_token: &str,
    answers: &Map<String, Value>,
    error: Option<&str>,
) -> String {
    let id = escape(account["id"].as_str().unwrap_or(""));
    let value = |name: &str| escape(answers.get(name).and_then(Value::as_str).unwrap_or(""));
    let input = |name: &str, label: &str, autocomplete: &str| {
        format!(
            "<label for=\"{name}\">{label}</label><input id=\"{name}\" name=\"{name}\" type=\"text\" autocomplete=\"{autocomplete}\" value=\"{}\">",
            value(name)
        )
    };
    let person: String = PERSON
        .iter()
        .map(|(name, label, autocomplete, _)| input(name, label, autocomplete))
        .collect();
    let industries: String = INDUSTRIES
        .iter()
        .map(|(code, label)| {
            let selected = if value("mcc") == *code {
                " selected"
            } else {
                ""
            };
            format!("<option value=\"{code}\"{selected}>{label}</option>")
        })
        .collect();
    let checked = |name: &str, v: &str| if value(name) == v { " checked" } else { "" };
    layout(
        "Set up payments",
        &format!(
            r#"<div class="App"><div class="App-Overview"><div class="Merchant">stripe-ops sandbox <span class="Badge">TEST MODE</span></div>
<div class="ProductSummary-Name">Set up payouts for {id}</div>
<div class="Footer">Test mode: any answers work. Routing 110000000, account 000123456789, SSN last 4 0000, date of birth 01/01/1901, phone 000 000 0000.</div></div>
<div class="App-Payment"><h1 style="font-size:20px">Tell us about your business</h1>
<form id="onboarding-form" method="post" action="/setup/e/{id}/{token}" novalidate>
<input type="hidden" name="form" value="{form_token}">
<fieldset id="business_type"><legend>Type of business</legend>
<label><input type="radio" name="business_type" value="individual"{ind}> Individual or sole proprietor</label>
<label><input type="radio" name="business_type" value="company"{co}> Company</label></fieldset>
{person}
<label for="ssn_last_4">Last 4 digits of Social Security number (individuals)</label><input id="ssn_last_4" name="ssn_last_4" type="text" inputmode="numeric" value="{ssn}">
<label for="company_name">Legal business name (companies)</label><input id="company_name" name="company_name" type="text" autocomplete="organization" value="{company}">
<label for="tax_id">Employer Identification Number (companies)</label><input id="tax_id" name="tax_id" type="text" value="{tax}">
<label for="url">Business website</label><input id="url" name="url" type="url" autocomplete="url" value="{url}">
<label for="mcc">Industry</label><select id="mcc" name="mcc">{industries}</select>
<h2 style="font-size:16px;margin-top:24px">Payout details</h2>
<label for="routing_number">Routing number</label><input id="routing_number" name="routing_number" type="text" inputmode="numeric" value="{routing}">
<label for="account_number">Account number</label><input id="account_number" name="account_number" type="text" inputmode="numeric" value="{number}">
<label><input type="checkbox" id="tos" name="tos" value="accepted"> I agree to the Stripe Connected Account Agreement</label>
<button class="SubmitButton" type="submit" data-testid="onboarding-submit">Agree and submit</button>
<div class="ErrorText" id="onboarding-error" role="alert">{error}</div>
</form></div></div>"#,
            ind = checked("business_type", "individual"),
            co = checked("business_type", "company"),
            ssn = value("ssn_last_4"),
            company = value("company_name"),
            tax = value("tax_id"),
            url = value("url"),
            routing = value("routing_number"),
            number = value("account_number"),
            token = escape(token),
            form_token = escape(form_token),
            error = escape(error.unwrap_or("")),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect()
    }

    const INDIVIDUAL: &[(&str, &str)] = &[
        ("business_type", "individual"),
        ("first_name", "Jenny"),
        ("last_name", "Rosen"),
        ("email", "jenny@example.com"),
        ("phone", "0000000000"),
        ("dob_month", "1"),
        ("dob_day", "1"),
        ("dob_year", "1901"),
        ("line1", "address_full_match"),
        ("city", "San Francisco"),
        ("state", "CA"),
        ("postal_code", "94103"),
        ("ssn_last_4", "0000"),
        ("url", "https://example.com"),
        ("mcc", "5734"),
        ("routing_number", "110000000"),
        ("account_number", "000123456789"),
        ("tos", "accepted"),
    ];

    #[test]
    fn an_individual_s_answers_fill_their_requirements() {
        let (out, bank) = read(&answers(INDIVIDUAL)).unwrap();
        assert_eq!(out["individual.dob.year"], 1901);
        assert_eq!(out["individual.address.line1"], "address_full_match");
        assert_eq!(out["business_profile.mcc"], "5734");
        assert_eq!(bank, ("110000000".into(), "000123456789".into()));
    }

    #[test]
    fn what_is_missing_or_wrong_is_said_in_the_page_s_words() {
        let mut a = answers(INDIVIDUAL);
        a.shift_remove("tos");
        assert!(read(&a).unwrap_err().contains("Agreement"));
        let mut a = answers(INDIVIDUAL);
        a.insert("routing_number".into(), json!("12"));
        assert!(read(&a).unwrap_err().contains("routing number"));
        let mut a = answers(INDIVIDUAL);
        a.insert("business_type".into(), json!("company"));
        assert!(read(&a).unwrap_err().contains("Legal business name"));
        let mut a = answers(INDIVIDUAL);
        a.insert("first_name".into(), json!(""));
        assert_eq!(read(&a).unwrap_err(), "First name is required.");
    }
}
