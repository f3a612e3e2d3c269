//! Hosted checkout, shaped like Stripe Checkout: `/checkout/{session}` with email, the card
//! fields inside a same-origin iframe (`cardNumber`, `cardExpiry`, `cardCvc`), cardholder name,
//! postal code and a `.SubmitButton` "Pay". Paying completes the session, redirects to the
//! session's success URL and delivers a signed `checkout.session.completed` to every enabled
//! webhook endpoint. `pay_with_form_post` pays without a browser.
// Handlers return early with a ready `Response`; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Shared;
use super::state::{Session, SessionStatus};
use crate::error::{Error, Result};
use crate::http;
use crate::webhook::fixtures::{Catalog, new_event_id};

type S = State<Arc<Shared>>;

pub const TEST_CARD: &str = "4242 4242 4242 4242";
pub const DECLINED_CARD: &str = "4000 0000 0000 0002";

/// `checkoutUrl`: the page, with a `#fragment` like Stripe's hosted checkout URLs.
pub fn checkout_url(app_url: &str, session_id: &str) -> String {
    format!(
        "{app_url}/checkout/{session_id}#fid{}",
        crate::secret::random_alnum(64)
    )
}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/checkout/{id}", get(page))
        .route("/checkout/{id}/card", get(card_frame))
        .route("/checkout/{id}/pay", post(pay))
        .route("/billing/success", get(success_page))
        .route("/billing/cancel", get(cancel_page))
}

/// What the buyer typed.
#[derive(Debug, Default, Clone)]
pub struct PaymentForm {
    pub email: String,
    pub card_number: String,
    pub card_expiry: String,
    pub card_cvc: String,
    pub name: String,
    pub postal_code: String,
}

impl PaymentForm {
    pub(crate) fn from_pairs(pairs: &[(String, String)]) -> Self {
        let get = |names: &[&str]| {
            pairs
                .iter()
                .find(|(k, v)| names.contains(&k.as_str()) && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default()
        };
        Self {
            email: get(&["email"]),
            card_number: get(&["cardNumber", "card[number]"]),
            card_expiry: get(&["cardExpiry", "card[exp]"]),
            card_cvc: get(&["cardCvc", "card[cvc]"]),
            name: get(&["billingName"]),
            postal_code: get(&["billingPostalCode"]),
        }
    }
}

/// The card outcome, decided like Stripe's test mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardVerdict {
    Approved,
    Declined(&'static str),
    Invalid(&'static str),
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Checks the form as Stripe Checkout would (`now` = (year, month) for the expiry).
pub fn judge(form: &PaymentForm, now: (i32, u8)) -> CardVerdict {
    if !form.email.contains('@') {
        return CardVerdict::Invalid("Your email address is incomplete.");
    }
    let digits: String = form
        .card_number
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if digits.len() < 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return CardVerdict::Invalid("Your card number is incomplete.");
    }
    if !luhn(&digits) {
        return CardVerdict::Invalid("Your card number is invalid.");
    }
    let expiry: String = form
        .card_expiry
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    let (month, year) = match expiry.len() {
        4 => (
            expiry[..2].parse::<u8>(),
            expiry[2..].parse::<i32>().map(|y| 2000 + y),
        ),
        6 => (expiry[..2].parse::<u8>(), expiry[2..].parse::<i32>()),
        _ => return CardVerdict::Invalid("Your card's expiration date is incomplete."),
    };
    let (Ok(month), Ok(year)) = (month, year) else {
        return CardVerdict::Invalid("Your card's expiration date is incomplete.");
    };
    if !(1..=12).contains(&month) {
        return CardVerdict::Invalid("Your card's expiration month is invalid.");
    }
    if (year, month) < now {
        return CardVerdict::Invalid("Your card's expiration date is in the past.");
    }
    if !(3..=4).contains(&form.card_cvc.len()) || !form.card_cvc.bytes().all(|b| b.is_ascii_digit())
    {
        return CardVerdict::Invalid("Your card's security code is incomplete.");
    }
    if form.name.is_empty() {
        return CardVerdict::Invalid("Your name is incomplete.");
    }
    if form.postal_code.is_empty() {
        return CardVerdict::Invalid("Your postal code is incomplete.");
    }
    match digits.as_str() {
        "4000000000000002" => CardVerdict::Declined("Your card was declined."),
        "4000000000009995" => CardVerdict::Declined("Your card has insufficient funds."),
        "4000000000009987" => CardVerdict::Declined("Your card was declined."),
        "4000000000000069" => CardVerdict::Declined("Your card has expired."),
        "4000000000000127" => CardVerdict::Declined("Your card's security code is incorrect."),
        _ => CardVerdict::Approved,
    }
}

pub(crate) fn year_month_now() -> (i32, u8) {
    let now = time::OffsetDateTime::now_utc();
    (now.year(), u8::from(now.month()))
}

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn dollars(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

const STYLE: &str = r#"
*{box-sizing:border-box}body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Ubuntu,sans-serif;color:#1a1a1a;background:#fff}
.App{display:flex;min-height:100vh}.App-Overview{flex:1;background:#f6f9fc;padding:64px 48px}.App-Payment{flex:1;padding:64px 48px;max-width:480px}
.Merchant{font-weight:600;margin-bottom:32px}.ProductSummary-Amount{font-size:36px;font-weight:600;margin:8px 0}.ProductSummary-Name{color:#6b7280}
label{display:block;font-size:13px;color:#4b5563;margin:16px 0 6px}input,select{width:100%;padding:10px 12px;font-size:16px;border:1px solid #d1d5db;border-radius:6px}
.CardField{border:1px solid #d1d5db;border-radius:6px;overflow:hidden}.CardField iframe{border:0;width:100%;height:92px;display:block}
.SubmitButton{margin-top:24px;width:100%;padding:14px;font-size:16px;font-weight:600;color:#fff;background:#0074d4;border:0;border-radius:6px;cursor:pointer}
.SubmitButton:disabled{opacity:.6}.ErrorText{color:#df1b41;font-size:14px;margin-top:12px;min-height:1em}.Notice{padding:16px;border-radius:6px;background:#e8f5e9}
.Footer{margin-top:32px;font-size:12px;color:#9ca3af}a{color:#0074d4}
.Badge{font-size:11px;font-weight:600;background:#ffde92;color:#a04100;padding:2px 6px;border-radius:4px;margin-left:6px}
"#;

pub(crate) fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head>\
         <body>{body}</body></html>",
        escape(title)
    )
}

fn overview(session: &Session) -> String {
    format!(
        "<div class=\"App-Overview\"><div class=\"Merchant\"><a href=\"{cancel}\" \
         class=\"Header-backLink\">&larr;</a> stripe-ops sandbox <span class=\"Badge\">{mode}</span></div>\
         <div class=\"ProductSummary-Name\">Balance top-up</div>\
         <div class=\"ProductSummary-Amount\" id=\"ProductSummary-totalAmount\">{amount}</div></div>",
        cancel = escape(&session.cancel_url),
        mode = if session.livemode {
            "LIVE"
        } else {
            "TEST MODE"
        },
        amount = dollars(session.amount_cents),
    )
}

fn payment_page(session: &Session, form: &PaymentForm, error: Option<&str>) -> String {
    let id = escape(&session.id);
    card_form(
        &overview(session),
        &format!("/checkout/{id}/pay"),
        &format!("/checkout/{id}/card"),
        form,
        error,
    )
}

/// The payment form of a hosted checkout page: `overview` (what is paid) beside the card form
/// posting to `action`, its card fields inside the same-origin iframe `frame`.
pub(crate) fn card_form(
    overview: &str,
    action: &str,
    frame: &str,
    form: &PaymentForm,
    error: Option<&str>,
) -> String {
    let body = format!(
        r#"<div class="App">{overview}
<div class="App-Payment"><h1 style="font-size:20px">Pay with card</h1>
<form id="payment-form" method="post" action="{action}" novalidate>
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="email" spellcheck="false" value="{email}" required>
<label>Card information</label>
<div class="CardField"><iframe id="card-frame" name="__privateStripeFrame5" title="Secure card payment input frame" src="{frame}" allow="payment *"></iframe></div>
<input type="hidden" id="card-number" name="card[number]"><input type="hidden" id="card-exp" name="card[exp]"><input type="hidden" id="card-cvc" name="card[cvc]">
<label for="billingName">Cardholder name</label>
<input id="billingName" name="billingName" type="text" autocomplete="cc-name" placeholder="Full name on card" value="{name}" required>
<label for="billingCountry">Country or region</label>
<select id="billingCountry" name="billingCountry" autocomplete="billing country"><option value="US">United States</option><option value="GB">United Kingdom</option><option value="DE">Germany</option><option value="FR">France</option></select>
<label for="billingPostalCode">ZIP</label>
<input id="billingPostalCode" name="billingPostalCode" type="text" autocomplete="postal-code" placeholder="ZIP" value="{postal}" required>
<button class="SubmitButton SubmitButton--complete" type="submit" data-testid="hosted-payment-submit-button"><span class="SubmitButton-Text">Pay</span></button>
<div class="ErrorText" id="payment-error" role="alert">{error}</div>
</form>
<div class="Footer">Powered by the stripe-ops sandbox &middot; test cards: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined</div>
</div></div>
<script>
document.getElementById('payment-form').addEventListener('submit', function () {{
  var card = document.getElementById('card-frame').contentDocument;
  document.getElementById('card-number').value = card.querySelector('[name=cardNumber]').value;
  document.getElementById('card-exp').value = card.querySelector('[name=cardExpiry]').value;
  document.getElementById('card-cvc').value = card.querySelector('[name=cardCvc]').value;
  var button = document.querySelector('.SubmitButton');
  button.querySelector('.SubmitButton-Text').textContent = 'Processing…';
  setTimeout(function () {{ button.disabled = true; }}, 0);
}});
</script>"#,
        action = escape(action),
        frame = escape(frame),
        email = escape(&form.email),
        name = escape(&form.name),
        postal = escape(&form.postal_code),
        error = error.map(escape).unwrap_or_default(),
    );
    layout("stripe-ops sandbox checkout", &body)
}

pub(crate) const CARD_FRAME: &str = r#"<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,sans-serif}
input{border:0;padding:12px;font-size:16px;outline:none;width:100%;box-sizing:border-box}
.row{display:flex;border-top:1px solid #d1d5db}.row input+input{border-left:1px solid #d1d5db}
</style></head><body>
<input class="CardNumberField-input" name="cardNumber" autocomplete="cc-number" inputmode="numeric" placeholder="1234 1234 1234 1234" aria-label="Card number">
<div class="row"><input name="cardExpiry" autocomplete="cc-exp" inputmode="numeric" placeholder="MM / YY" aria-label="Expiration"><input name="cardCvc" autocomplete="cc-csc" inputmode="numeric" placeholder="CVC" aria-label="CVC"></div>
</body></html>"#;

fn not_found_page() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(layout(
            "Not found",
            "<div class=\"App-Payment\"><h1>Checkout session not found</h1>\
             <p>This link is not valid. Start the top-up again from the app.</p></div>",
        )),
    )
        .into_response()
}

fn already_paid_page(session: &Session, status: StatusCode) -> Response {
    let body = format!(
        "<div class=\"App\">{}<div class=\"App-Payment\"><div class=\"Notice\" id=\"already-paid\">\
         <h1 style=\"font-size:20px\">This checkout session is already paid</h1>\
         <p>Your payment of {} was received. There is nothing more to pay.</p></div></div></div>",
        overview(session),
        dollars(session.amount_cents)
    );
    (status, Html(layout("Already paid", &body))).into_response()
}

async fn page(State(shared): S, Path(id): Path<String>) -> Response {
    let Some(session) = shared.store().session(&id).cloned() else {
        return not_found_page();
    };
    if session.status == SessionStatus::Complete {
        return already_paid_page(&session, StatusCode::OK);
    }
    Html(payment_page(&session, &PaymentForm::default(), None)).into_response()
}

async fn card_frame(State(shared): S, Path(id): Path<String>) -> Response {
    if shared.store().session(&id).is_none() {
        return not_found_page();
    }
    Html(CARD_FRAME).into_response()
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json") && !v.contains("text/html"))
}

async fn pay(
    State(shared): S,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = wants_json(&headers);
    let Some(session) = shared.store().session(&id).cloned() else {
        return if json {
            super::app::error(
                StatusCode::NOT_FOUND,
                "resource_missing",
                "no such checkout session",
            )
        } else {
            not_found_page()
        };
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let form = PaymentForm::from_pairs(&pairs);
    if session.status == SessionStatus::Complete {
        return already_paid(&session, json);
    }
    match judge(&form, year_month_now()) {
        CardVerdict::Approved => {}
        CardVerdict::Declined(message) => {
            return refuse(
                &session,
                &form,
                StatusCode::PAYMENT_REQUIRED,
                "card_declined",
                message,
                json,
            );
        }
        CardVerdict::Invalid(message) => {
            return refuse(
                &session,
                &form,
                StatusCode::BAD_REQUEST,
                "invalid_input",
                message,
                json,
            );
        }
    }
    let completed = {
        let mut store = shared.store();
        store
            .complete_session(&id, Some(form.email.clone()))
            .map(|c| (c, store.version))
    };
    match completed {
        Some((true, version)) => {
            if let Err(why) = shared.persisted(version).await {
                return super::app::unwritten(why);
            }
        }
        _ => return already_paid(&session, json),
    }
    let event = completed_event(&session, &form, &shared.api_version);
    super::delivery::publish(&shared, event);
    let redirect = session
        .success_url
        .replace("{CHECKOUT_SESSION_ID}", &session.id);
    if json {
        return axum::Json(json!({"status": "paid", "redirect_url": redirect})).into_response();
    }
    Redirect::to(&redirect).into_response()
}

fn already_paid(session: &Session, json: bool) -> Response {
    if json {
        return super::app::error(
            StatusCode::CONFLICT,
            "session_already_paid",
            "This checkout session is already paid.",
        );
    }
    already_paid_page(session, StatusCode::CONFLICT)
}

fn refuse(
    session: &Session,
    form: &PaymentForm,
    status: StatusCode,
    code: &str,
    message: &str,
    json: bool,
) -> Response {
    if json {
        return super::app::error(status, code, message);
    }
    (status, Html(payment_page(session, form, Some(message)))).into_response()
}

/// The `checkout.session.completed` Stripe would send for this payment, built from the
/// embedded fixture: fresh `evt_` id, the session's amount, URLs and the contract's metadata.
pub fn completed_event(session: &Session, form: &PaymentForm, api_version: &str) -> Value {
    let catalog = Catalog::load(None).expect("embedded fixtures load");
    let mut event = catalog
        .template("checkout.session.completed")
        .expect("embedded checkout.session.completed")
        .clone();
    let now = crate::timestamp::unix_now();
    event["id"] = json!(new_event_id());
    event["created"] = json!(now);
    event["livemode"] = json!(session.livemode);
    event["type"] = json!("checkout.session.completed");
    event["api_version"] = json!(api_version);
    let o = &mut event["data"]["object"];
    o["id"] = json!(session.id);
    o["amount_subtotal"] = json!(session.amount_cents);
    o["amount_total"] = json!(session.amount_cents);
    o["currency"] = json!(session.currency);
    o["created"] = json!(session.created);
    o["expires_at"] = json!(session.created + 86_400);
    o["livemode"] = json!(session.livemode);
    o["payment_intent"] = json!(session.payment_intent_id);
    o["payment_status"] = json!("paid");
    o["status"] = json!("complete");
    o["success_url"] = json!(session.success_url);
    o["cancel_url"] = json!(session.cancel_url);
    o["customer_email"] = json!(form.email);
    o["customer_details"]["email"] = json!(form.email);
    o["customer_details"]["name"] = json!(form.name);
    o["customer_details"]["address"]["postal_code"] = json!(form.postal_code);
    o["metadata"] = json!({
        "orgId": session.org_id,
        "accountId": session.account_id,
        "paymentIntentId": session.payment_intent_id,
    });
    o["shipping_cost"] = Value::Null;
    o["currency_conversion"] = Value::Null;
    o["shipping_address_collection"] = Value::Null;
    o["total_details"] = json!({"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0});
    event
}

async fn success_page(Query(q): Query<Vec<(String, String)>>) -> Response {
    let session = q
        .iter()
        .find(|(k, _)| k == "session_id")
        .map(|(_, v)| escape(v))
        .unwrap_or_default();
    let body = format!(
        "<div class=\"App-Payment\"><div class=\"Notice\" id=\"payment-success\"><h1>Payment successful</h1>\
         <p>Thanks! Your balance is topped up once the webhook arrives.</p>\
         <p>Session <code id=\"session-id\">{session}</code></p></div></div>"
    );
    Html(layout("Payment successful", &body)).into_response()
}

async fn cancel_page() -> Response {
    Html(layout(
        "Payment canceled",
        "<div class=\"App-Payment\"><h1 id=\"payment-canceled\">Payment canceled</h1>\
         <p>Nothing was charged.</p></div>",
    ))
    .into_response()
}

/// What paying by form post led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayOutcome {
    /// Paid; the browser would now go to `redirect_url` (the session's success URL).
    Paid {
        redirect_url: String,
    },
    /// The card was declined or the form refused, with the message the page shows.
    Declined {
        message: String,
    },
    AlreadyPaid,
}

/// Pays a sandbox checkout without a browser: loads the page (as a browser would), then posts
/// the form with `card_number` and valid test details. Transport failures are exit 3; a page
/// that is not a sandbox checkout is exit 1.
pub async fn pay_with_form_post(
    client: &reqwest::Client,
    checkout_url: &str,
    card_number: &str,
) -> Result<PayOutcome> {
    let page_url = checkout_url.split('#').next().unwrap_or(checkout_url);
    let page = client
        .get(page_url)
        .send()
        .await
        .map_err(|e| http::send_error("GET", page_url, &e))?;
    let status = page.status();
    let html = http::read_body(page, http::API)
        .await
        .map_err(|e| http::send_error("GET", page_url, &e))?
        .into_text();
    if !status.is_success() {
        return Err(Error::failed(format!(
            "checkout page {page_url} answered {status}: {}",
            http::excerpt(&html, 200)
        )));
    }
    if html.contains("id=\"already-paid\"") {
        return Ok(PayOutcome::AlreadyPaid);
    }
    if !html.contains("payment-form") {
        return Err(Error::failed(format!(
            "{page_url} is not a sandbox checkout page"
        )));
    }
    let expiry = format!("12 / {}", (year_month_now().0 + 3) % 100);
    let form = [
        ("email", "buyer@example.com"),
        ("cardNumber", card_number),
        ("cardExpiry", expiry.as_str()),
        ("cardCvc", "123"),
        ("billingName", "Stripe Ops"),
        ("billingCountry", "US"),
        ("billingPostalCode", "94107"),
    ];
    let pay_url = format!("{}/pay", page_url.trim_end_matches('/'));
    let resp = client
        .post(&pay_url)
        .header(header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| http::send_error("POST", &pay_url, &e))?;
    let status = resp.status();
    let text = http::read_body(resp, http::API)
        .await
        .map_err(|e| http::send_error("POST", &pay_url, &e))?
        .into_text();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    match status.as_u16() {
        200 => Ok(PayOutcome::Paid {
            redirect_url: value["redirect_url"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }),
        409 => Ok(PayOutcome::AlreadyPaid),
        400 | 402 => Ok(PayOutcome::Declined {
            message: value["error"]["message"]
                .as_str()
                .unwrap_or("declined")
                .to_owned(),
        }),
        _ => Err(Error::failed(format!(
            "POST {pay_url} answered {status}: {}",
            http::excerpt(&text, 200)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(card: &str) -> PaymentForm {
        PaymentForm {
            email: "a@example.com".into(),
            card_number: card.into(),
            card_expiry: "12 / 34".into(),
            card_cvc: "123".into(),
            name: "A".into(),
            postal_code: "12345".into(),
        }
    }

    #[test]
    fn test_cards_behave_like_stripes() {
        let now = (2026, 11);
        assert_eq!(judge(&form(TEST_CARD), now), CardVerdict::Approved);
        assert_eq!(
            judge(&form(DECLINED_CARD), now),
            CardVerdict::Declined("Your card was declined.")
        );
        assert_eq!(
            judge(&form("4242 4242 4242 4241"), now),
            CardVerdict::Invalid("Your card number is invalid.")
        );
        let mut expired = form(TEST_CARD);
        expired.card_expiry = "01/20".into();
        assert!(matches!(judge(&expired, now), CardVerdict::Invalid(_)));
        let mut no_email = form(TEST_CARD);
        no_email.email.clear();
        assert!(matches!(judge(&no_email, now), CardVerdict::Invalid(_)));
    }

    #[test]
    fn form_reads_both_field_styles() {
        let pairs = vec![
            ("card[number]".to_owned(), "4242".to_owned()),
            ("cardNumber".to_owned(), "".to_owned()),
            ("billingName".to_owned(), " Jo ".to_owned()),
        ];
        let f = PaymentForm::from_pairs(&pairs);
        assert_eq!(f.card_number, "4242");
        assert_eq!(f.name, "Jo");
    }

    #[test]
    fn completed_event_carries_the_contract() {
        let session = Session {
            id: "cs_test_x".into(),
            org_id: "org_1".into(),
            account_id: "acct_1".into(),
            amount_cents: 1234,
            currency: "usd".into(),
            payment_intent_id: "pi_1".into(),
            success_url: "s".into(),
            cancel_url: "c".into(),
            status: SessionStatus::Open,
            livemode: false,
            created: 1,
            customer_email: None,
        };
        let e = completed_event(&session, &form(TEST_CARD), "2025-03-31.basil");
        assert!(e["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(e["api_version"], "2025-03-31.basil");
        let o = &e["data"]["object"];
        assert_eq!(o["id"], "cs_test_x");
        assert_eq!(o["amount_total"], 1234);
        assert_eq!(o["payment_status"], "paid");
        assert_eq!(
            o["metadata"],
            json!({"orgId": "org_1", "accountId": "acct_1", "paymentIntentId": "pi_1"})
        );
    }
}
