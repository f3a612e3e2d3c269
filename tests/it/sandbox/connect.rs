//! Connect in the sandbox (issue 33), the way a marketplace runs it: an Express account, its
//! account link and the hosted onboarding page (by form post, and in headless Chromium through
//! chromedriver), a Checkout Session with an application fee and a destination paid through the
//! hosted checkout page, the platform's and the connected account's events told apart by
//! `account` and delivered by the official Stripe CLI (`stripe listen --forward-to …
//! --forward-connect-to …`) to stripe-node receivers; balances that add up as Stripe's balance
//! transactions do; a fee refund, the sandbox's clock paying the account out;
//! `DELETE /v1/accounts/{id}` and `account.application.deauthorized`. Every answer is checked
//! against stripe-node's declared type and read by stripe-python (tests/receivers/oracle.*).
//! The `Stripe-Account` scope: connect_scope.rs.

use super::stripe_cli::{Cli, node_recorder, seen};
use super::*;

pub(super) const WAIT: Duration = Duration::from_secs(30);

/// The sandbox's Stripe API with its key, acting as the platform or (`as_account`) inside a
/// connected account.
pub(super) struct Api {
    pub(super) base: String,
    pub(super) key: String,
    pub(super) http: reqwest::Client,
    /// Every successful answer, with the stripe-node type it must be.
    typed: std::sync::Mutex<Vec<Value>>,
}

impl Api {
    pub(super) fn new(cli: &Cli) -> Api {
        Api {
            base: cli.sandbox.stripe_api.clone(),
            key: cli.key.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(WAIT)
                .build()
                .unwrap(),
            typed: Default::default(),
        }
    }

    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        account: Option<&str>,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(a) = account {
            req = req.header("Stripe-Account", a);
        }
        if !form.is_empty() {
            req = req.form(form);
        }
        let resp = req.send().await.expect("the sandbox answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{path}: {status} is not JSON: {text}"));
        (status, v)
    }

    /// A call that must succeed, its answer kept to be checked as stripe-node's `ts`.
    pub(super) async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        account: Option<&str>,
        form: &[(&str, &str)],
        ts: &str,
    ) -> Value {
        let (status, v) = self.call(method, path, account, form).await;
        assert_eq!(status, 200, "{path}: {v}");
        self.typed
            .lock()
            .unwrap()
            .push(json!({"name": format!("{path} ({ts})"), "body": v.to_string(), "ts": ts}));
        v
    }

    pub(super) async fn post(
        &self,
        path: &str,
        account: Option<&str>,
        form: &[(&str, &str)],
        ts: &str,
    ) -> Value {
        self.ok(reqwest::Method::POST, path, account, form, ts)
            .await
    }

    pub(super) async fn get(&self, path: &str, account: Option<&str>, ts: &str) -> Value {
        self.ok(reqwest::Method::GET, path, account, &[], ts).await
    }

    /// Every answer kept compiles as its stripe-node type under `tsc --strict`, and
    /// stripe-python reads it.
    pub(super) fn assert_typed(&self) {
        let items = self.typed.lock().unwrap().clone();
        crate::catalogue::assert_typed_by_stripes_libraries(&items);
    }

    /// The available plus pending `usd` of an account's balance.
    pub(super) async fn usd(&self, account: Option<&str>) -> i64 {
        let b = self.get("/v1/balance", account, "Balance").await;
        ["available", "pending"]
            .iter()
            .flat_map(|part| b[part].as_array().unwrap().clone())
            .filter(|f| f["currency"] == "usd")
            .map(|f| f["amount"].as_i64().unwrap())
            .sum()
    }
}

/// An individual's answers to the onboarding page's text fields (Stripe's test values for US
/// accounts: docs.stripe.com/connect/testing).
const INDIVIDUAL: &[(&str, &str)] = &[
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
    ("url", "https://creator.example.com"),
    ("routing_number", "110000000"),
    ("account_number", "000123456789"),
];

/// The hosted onboarding page an account link opens, filled and submitted as its form does
/// (an individual, Stripe's test values for US accounts).
async fn onboard(api: &Api, link: &str) -> reqwest::Response {
    let page = api.http.get(link).send().await.unwrap();
    assert_eq!(page.status(), 200, "the link opens the onboarding page");
    let html = page.text().await.unwrap();
    let form_token = html
        .split("name=\"form\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's form token")
        .to_owned();
    let mut answers = vec![
        ("form", form_token.as_str()),
        ("business_type", "individual"),
        ("mcc", "5734"),
        ("tos", "accepted"),
    ];
    answers.extend_from_slice(INDIVIDUAL);
    api.http.post(link).form(&answers).send().await.unwrap()
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// The events a recorder verified, as `(type, account)`.
pub(super) async fn got(http: &reqwest::Client, recorder: &str) -> Vec<(String, Option<String>)> {
    seen(http, recorder).await["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["account"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketplace_onboards_an_express_account_and_takes_a_destination_charge_with_a_fee() {
    let cli = Cli::start(&[]);
    let secret = cli.print_secret();
    let (_platform_rx, platform_rx) = node_recorder(&secret, false);
    let (_connect_rx, connect_rx) = node_recorder(&secret, false);
    let _listen = cli.listen(&[
        "--all-snapshot",
        "--forward-to",
        &format!("{platform_rx}/webhook"),
        "--forward-connect-to",
        &format!("{connect_rx}/webhook"),
    ]);
    let api = Api::new(&cli);

    // An Express account: Stripe collects its requirements, nothing is enabled yet.
    let acct = api
        .post(
            "/v1/accounts",
            None,
            &[
                ("type", "express"),
                ("country", "US"),
                ("email", "creator@example.com"),
                ("capabilities[card_payments][requested]", "true"),
                ("capabilities[transfers][requested]", "true"),
            ],
            "Account",
        )
        .await;
    let id = acct["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("acct_"), "{acct}");
    assert_eq!(acct["type"], "express");
    assert_eq!(acct["controller"]["stripe_dashboard"]["type"], "express");
    assert_eq!(acct["charges_enabled"], false);
    assert_eq!(acct["capabilities"]["transfers"], "inactive");
    let due = acct["requirements"]["currently_due"].as_array().unwrap();
    assert!(
        due.contains(&json!("external_account")) && due.contains(&json!("tos_acceptance.date")),
        "{due:?}"
    );

    // Until its transfers capability is active, Stripe refuses it as a destination.
    let (status, v) = api
        .call(
            reqwest::Method::POST,
            "/v1/payment_intents",
            None,
            &[
                ("amount", "1000"),
                ("currency", "usd"),
                ("transfer_data[destination]", &id),
            ],
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["code"], "insufficient_capabilities_for_transfer");

    // The account link: single use, to the hosted onboarding page.
    let link = api
        .post(
            "/v1/account_links",
            None,
            &[
                ("account", &id),
                ("type", "account_onboarding"),
                ("refresh_url", "https://market.example.com/reauth"),
                ("return_url", "https://market.example.com/return"),
            ],
            "AccountLink",
        )
        .await;
    assert_eq!(link["object"], "account_link");
    let url = link["url"].as_str().unwrap().to_owned();
    assert_eq!(
        link["expires_at"].as_i64().unwrap() - link["created"].as_i64().unwrap(),
        300
    );
    let done = onboard(&api, &url).await;
    assert!(done.status().is_redirection(), "{}", done.status());
    assert_eq!(location(&done), "https://market.example.com/return");
    let again = api.http.get(&url).send().await.unwrap();
    assert!(again.status().is_redirection(), "{}", again.status());
    assert_eq!(
        location(&again),
        "https://market.example.com/reauth",
        "a visited link goes to refresh_url"
    );

    let acct = api
        .get(&format!("/v1/accounts/{id}"), None, "Account")
        .await;
    assert_eq!(acct["requirements"]["currently_due"], json!([]), "{acct}");
    assert_eq!(acct["details_submitted"], true);
    assert_eq!(acct["charges_enabled"], true);
    assert_eq!(acct["payouts_enabled"], true);
    assert_eq!(acct["capabilities"]["transfers"], "active");
    let own = api.get("/v1/account", Some(&id), "Account").await;
    assert_eq!(own["id"], id.as_str(), "the account as it sees itself");

    // A Checkout Session on the platform: $10.00, $1.23 for the platform, the rest to the
    // creator; paid through its hosted page.
    let product = api
        .post("/v1/products", None, &[("name", "Print")], "Product")
        .await;
    let price = api
        .post(
            "/v1/prices",
            None,
            &[
                ("product", product["id"].as_str().unwrap()),
                ("unit_amount", "1000"),
                ("currency", "usd"),
            ],
            "Price",
        )
        .await;
    let cs = api
        .post(
            "/v1/checkout/sessions",
            None,
            &[
                ("mode", "payment"),
                (
                    "success_url",
                    "https://market.example.com/ok?cs={CHECKOUT_SESSION_ID}",
                ),
                ("line_items[0][price]", price["id"].as_str().unwrap()),
                ("line_items[0][quantity]", "1"),
                ("payment_intent_data[application_fee_amount]", "123"),
                ("payment_intent_data[transfer_data][destination]", &id),
            ],
            "Checkout.Session",
        )
        .await;
    let cs_id = cs["id"].as_str().unwrap().to_owned();
    let page = cs["url"].as_str().unwrap().to_owned();
    let expiry = format!(
        "12 / {}",
        (time::OffsetDateTime::now_utc().year() + 3) % 100
    );
    let paid = api
        .http
        .post(&page)
        .form(&[
            ("email", "buyer@example.com"),
            ("cardNumber", "4242 4242 4242 4242"),
            ("cardExpiry", expiry.as_str()),
            ("cardCvc", "123"),
            ("billingName", "Buyer"),
            ("billingCountry", "US"),
            ("billingPostalCode", "94107"),
        ])
        .send()
        .await
        .unwrap();
    assert!(paid.status().is_redirection(), "{}", paid.status());
    assert_eq!(
        location(&paid),
        format!("https://market.example.com/ok?cs={cs_id}")
    );

    let cs = api
        .get(
            &format!("/v1/checkout/sessions/{cs_id}"),
            None,
            "Checkout.Session",
        )
        .await;
    assert_eq!(cs["payment_status"], "paid");
    let pi_id = cs["payment_intent"].as_str().unwrap().to_owned();
    let pi = api
        .get(
            &format!("/v1/payment_intents/{pi_id}"),
            None,
            "PaymentIntent",
        )
        .await;
    assert_eq!(pi["application_fee_amount"], 123);
    assert_eq!(pi["transfer_data"]["destination"], id.as_str());
    let charge = api
        .get(
            &format!("/v1/charges/{}", pi["latest_charge"].as_str().unwrap()),
            None,
            "Charge",
        )
        .await;
    let fee_id = charge["application_fee"].as_str().unwrap().to_owned();
    let tr_id = charge["transfer"].as_str().unwrap().to_owned();
    let fee = api
        .get(
            &format!("/v1/application_fees/{fee_id}"),
            None,
            "ApplicationFee",
        )
        .await;
    assert_eq!(
        (fee["amount"].clone(), fee["account"].clone()),
        (json!(123), json!(id))
    );
    let transfer = api
        .get(&format!("/v1/transfers/{tr_id}"), None, "Transfer")
        .await;
    assert_eq!(transfer["amount"], 1000);
    assert_eq!(transfer["destination"], id.as_str());
    // The transfer's payment is the connected account's: invisible to the platform.
    let py = transfer["destination_payment"].as_str().unwrap().to_owned();
    let (status, _) = api
        .call(
            reqwest::Method::GET,
            &format!("/v1/charges/{py}"),
            None,
            &[],
        )
        .await;
    assert_eq!(status, 404);
    let payment = api
        .get(&format!("/v1/charges/{py}"), Some(&id), "Charge")
        .await;
    assert_eq!(payment["source_transfer"], tr_id.as_str());

    // Balances add up: the creator nets $10.00 - $1.23, the platform $1.23 - Stripe's $0.59.
    assert_eq!(api.usd(Some(&id)).await, 877);
    assert_eq!(api.usd(None).await, 123 - 59);
    let txns = api
        .get(
            "/v1/balance_transactions",
            Some(&id),
            "ApiList<Stripe.BalanceTransaction>",
        )
        .await;
    assert_eq!(txns["data"][0]["type"], "payment");
    assert_eq!(txns["data"][0]["fee"], 123);

    // Refunding part of the fee gives it back to the account.
    let refund = api
        .post(
            &format!("/v1/application_fees/{fee_id}/refunds"),
            None,
            &[("amount", "23")],
            "FeeRefund",
        )
        .await;
    assert_eq!(refund["fee"], fee_id.as_str());
    assert_eq!(api.usd(Some(&id)).await, 900);
    assert_eq!(api.usd(None).await, 123 - 59 - 23);
    let (status, v) = api
        .call(
            reqwest::Method::POST,
            &format!("/v1/application_fees/{fee_id}/refunds"),
            None,
            &[("amount", "101")],
        )
        .await;
    assert_eq!(status, 400, "more than is left of the fee: {v}");

    // Three days on the sandbox's clock: the card funds become available, the Express
    // account's daily automatic payout takes them to its bank account, and it arrives.
    let (status, v) = api
        .call(
            reqwest::Method::POST,
            "/sandbox/v1/clock/advance",
            None,
            &[("by", "259200")],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let b = api.get("/v1/balance", None, "Balance").await;
    assert_eq!(b["available"][0]["amount"], 123 - 59 - 23, "{b}");
    assert_eq!(api.usd(Some(&id)).await, 0, "all of it paid out");
    let payouts = api
        .get("/v1/payouts", Some(&id), "ApiList<Stripe.Payout>")
        .await;
    assert_eq!(payouts["data"][0]["amount"], 900, "{payouts}");
    assert_eq!(payouts["data"][0]["status"], "paid");
    assert_eq!(payouts["data"][0]["automatic"], true);
    let login = api
        .post(
            &format!("/v1/accounts/{id}/login_links"),
            None,
            &[],
            "LoginLink",
        )
        .await;
    let dashboard = api
        .http
        .get(login["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        dashboard.contains(payouts["data"][0]["id"].as_str().unwrap()),
        "the Express Dashboard lists the payout: {dashboard}"
    );

    // The platform's events reach --forward-to, the account's (with `account`)
    // --forward-connect-to.
    let platform = eventually("the platform's events", WAIT, || async {
        let g = got(&api.http, &platform_rx).await;
        let has = |t: &str| g.iter().any(|(ty, _)| ty == t);
        let wanted = [
            "checkout.session.completed",
            "application_fee.created",
            "application_fee.refunded",
        ];
        wanted.iter().all(|t| has(t)).then_some(g)
    })
    .await;
    assert!(
        platform.iter().all(|(_, a)| a.is_none()),
        "no connected account's event at the platform's URL: {platform:?}"
    );
    assert!(
        platform.iter().any(|(t, _)| t == "transfer.created"),
        "{platform:?}"
    );
    let connected = eventually("the connected account's events", WAIT, || async {
        let g = got(&api.http, &connect_rx).await;
        let has = |t: &str| g.iter().any(|(ty, _)| ty == t);
        (has("account.updated") && has("payout.paid")).then_some(g)
    })
    .await;
    assert!(
        connected
            .iter()
            .all(|(_, a)| a.as_deref() == Some(id.as_str())),
        "only the account's events at the Connect URL, each naming it: {connected:?}"
    );
    for t in [
        "account.external_account.created",
        "capability.updated",
        "balance.available",
        "payout.created",
    ] {
        assert!(
            connected.iter().any(|(ty, _)| ty == t),
            "{t}: {connected:?}"
        );
    }

    // Deleting the account ends the connection: `account.application.deauthorized` from it,
    // and its `Stripe-Account` is refused from then on.
    let deleted = api
        .ok(
            reqwest::Method::DELETE,
            &format!("/v1/accounts/{id}"),
            None,
            &[],
            "DeletedAccount",
        )
        .await;
    assert_eq!(
        deleted,
        json!({"id": id, "object": "account", "deleted": true})
    );
    eventually("account.application.deauthorized", WAIT, || async {
        got(&api.http, &connect_rx)
            .await
            .contains(&(
                "account.application.deauthorized".to_owned(),
                Some(id.clone()),
            ))
            .then_some(())
    })
    .await;
    let (status, v) = api
        .call(reqwest::Method::GET, "/v1/customers", Some(&id), &[])
        .await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["code"], "account_invalid");

    api.assert_typed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_onboarding_page_is_completed_in_headless_chromium_and_refuses_what_is_missing() {
    use fantoccini::Locator::Css;
    let cli = Cli::start(&[]);
    let api = Api::new(&cli);
    let driver = ChromeDriver::start();
    let (c, _profile) = super::checkout::browser(&driver).await;
    let acct = api
        .post("/v1/accounts", None, &[("type", "express")], "Account")
        .await;
    let id = acct["id"].as_str().unwrap().to_owned();
    let return_url = format!("{}/billing/success", cli.sandbox.app);
    let link = api
        .post(
            "/v1/account_links",
            None,
            &[
                ("account", &id),
                ("type", "account_onboarding"),
                (
                    "refresh_url",
                    &format!("{}/billing/cancel", cli.sandbox.app),
                ),
                ("return_url", &return_url),
            ],
            "AccountLink",
        )
        .await;
    c.goto(link["url"].as_str().unwrap()).await.unwrap();
    c.find(Css("input[name=business_type][value=individual]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for (name, value) in INDIVIDUAL {
        let input = c.find(Css(&format!("#{name}"))).await.unwrap();
        input.send_keys(value).await.unwrap();
    }
    c.find(Css("#mcc option[value='5734']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let submit = Css("[data-testid=onboarding-submit]");
    // Without accepting the agreement: the page says so, and nothing moves.
    c.find(submit).await.unwrap().click().await.unwrap();
    let message = eventually("the page's refusal", WAIT, || async {
        let text = c
            .find(Css("#onboarding-error"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (!text.is_empty()).then_some(text)
    })
    .await;
    assert_eq!(
        message,
        "Accept the Stripe Connected Account Agreement to continue."
    );
    let still = api
        .get(&format!("/v1/accounts/{id}"), None, "Account")
        .await;
    assert_eq!(still["details_submitted"], false);
    // The page kept the answers; accepting and submitting completes onboarding.
    c.find(Css("#tos")).await.unwrap().click().await.unwrap();
    c.find(submit).await.unwrap().click().await.unwrap();
    eventually("the redirect to return_url", WAIT, || async {
        let url = c.current_url().await.ok()?.to_string();
        (url == return_url).then_some(())
    })
    .await;
    let done = api
        .get(&format!("/v1/accounts/{id}"), None, "Account")
        .await;
    assert_eq!(done["requirements"]["currently_due"], json!([]), "{done}");
    assert_eq!(done["charges_enabled"], true);
    let agent = done["tos_acceptance"]["user_agent"]
        .as_str()
        .unwrap_or_default();
    assert!(
        agent.contains("Chrome"),
        "the browser accepted the terms: {done}"
    );
    c.close().await.unwrap();
    api.assert_typed();
}
