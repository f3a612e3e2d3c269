//! Hosted checkout: paid by form post and in real headless Chromium through chromedriver.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_by_form_post_delivers_a_signed_event_that_credits_once() {
    use stripe_ops::sandbox::{DECLINED_CARD, PayOutcome, TEST_CARD, pay_with_form_post};
    let sb = Sandbox::start(&[]);
    let app = App::new(&sb.app);
    let t = app.topup(2500).await;
    let outcome = pay_with_form_post(&app.http, &t.checkout_url, TEST_CARD)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        PayOutcome::Paid {
            redirect_url: format!("{}/billing/success?session_id={}", sb.app, t.session_id)
        }
    );
    let event_id = credited_event_id(&app, &t).await;
    assert_eq!(app.balance(&t.token).await, 2500);
    let (status, event) = stripe_get(&sb, &format!("/v1/events/{event_id}")).await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["type"], "checkout.session.completed");
    assert_eq!(event["data"]["object"]["id"], t.session_id.as_str());
    assert_eq!(
        event["data"]["object"]["metadata"]["orgId"],
        t.org_id.as_str()
    );
    assert_eq!(event["pending_webhooks"], 0);
    assert!(
        event.get("delivery_attempts").is_none(),
        "Stripe's event object: {event}"
    );
    let (_, attempts) = stripe_get(&sb, &attempts_path(&event_id)).await;
    assert_eq!(attempts["delivery_attempts"][0]["status"], 200);

    let again = pay_with_form_post(&app.http, &t.checkout_url, TEST_CARD)
        .await
        .unwrap();
    assert_eq!(again, PayOutcome::AlreadyPaid);
    let page = app.http.get(&t.checkout_url).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("already paid"));
    assert_eq!(app.balance(&t.token).await, 2500);

    let declined = app.topup(900).await;
    let outcome = pay_with_form_post(&app.http, &declined.checkout_url, DECLINED_CARD)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        PayOutcome::Declined {
            message: "Your card was declined.".into()
        }
    );
    let (_, events) = stripe_get(&sb, "/v1/events?limit=100").await;
    assert_eq!(
        events["data"].as_array().unwrap().len(),
        1,
        "a declined card delivers nothing"
    );
    assert_eq!(app.balance(&declined.token).await, 0);

    let resp = app
        .http
        .get(format!("{}/checkout/cs_test_nope", sb.app))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

/// A headless Chromium session and its throw-away profile folder.
pub(super) async fn browser(driver: &ChromeDriver) -> (fantoccini::Client, tempfile::TempDir) {
    let chromium =
        std::env::var("STRIPE_OPS_CHROMIUM").expect("STRIPE_OPS_CHROMIUM (tests/run.sh)");
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }),
    );
    let client = fantoccini::ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("chromedriver starts a headless Chromium session");
    (client, profile)
}

/// Fills the hosted checkout page like a buyer: email, then the card inside the iframe, then
/// name and postal code, then Pay.
pub(super) async fn fill_and_pay(c: &fantoccini::Client, card: &str) {
    use fantoccini::Locator::Css;
    let email = c.find(Css("input[name=email]")).await.unwrap();
    assert_eq!(
        email.attr("autocomplete").await.unwrap().as_deref(),
        Some("email")
    );
    email.send_keys("buyer@example.com").await.unwrap();
    assert!(
        c.find(Css("input[name=cardNumber]")).await.is_err(),
        "card fields live inside the iframe"
    );
    c.find(Css("iframe"))
        .await
        .unwrap()
        .enter_frame()
        .await
        .unwrap();
    for (name, autocomplete, value) in [
        ("cardNumber", "cc-number", card),
        ("cardExpiry", "cc-exp", "12 / 34"),
        ("cardCvc", "cc-csc", "123"),
    ] {
        let input = c.find(Css(&format!("input[name={name}]"))).await.unwrap();
        assert_eq!(
            input.attr("autocomplete").await.unwrap().as_deref(),
            Some(autocomplete)
        );
        input.send_keys(value).await.unwrap();
    }
    c.enter_parent_frame().await.unwrap();
    for (name, autocomplete, value) in [
        ("billingName", "cc-name", "Jenny Rosen"),
        ("billingPostalCode", "postal-code", "94107"),
    ] {
        let input = c.find(Css(&format!("input[name={name}]"))).await.unwrap();
        assert_eq!(
            input.attr("autocomplete").await.unwrap().as_deref(),
            Some(autocomplete)
        );
        input.send_keys(value).await.unwrap();
    }
    let pay = c.find(Css(".SubmitButton")).await.unwrap();
    assert_eq!(pay.text().await.unwrap(), "Pay");
    pay.click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_in_headless_chromium_redirects_and_credits_and_declines_visibly() {
    use fantoccini::Locator::Css;
    let sb = Sandbox::start(&[]);
    let driver = ChromeDriver::start();
    let app = App::new(&sb.app);
    let (c, _profile) = browser(&driver).await;

    let t = app.topup(4200).await;
    c.goto(&t.checkout_url).await.unwrap();
    fill_and_pay(&c, "4242 4242 4242 4242").await;
    let expected = format!("{}/billing/success?session_id={}", sb.app, t.session_id);
    let landed = eventually(
        "the redirect to the success URL",
        Duration::from_secs(20),
        || async {
            let url = c.current_url().await.ok()?.to_string();
            (url == expected).then_some(url)
        },
    )
    .await;
    assert_eq!(landed, expected);
    let heading = c.find(Css("#payment-success h1")).await.unwrap();
    assert_eq!(heading.text().await.unwrap(), "Payment successful");
    credited_event_id(&app, &t).await;
    assert_eq!(app.balance(&t.token).await, 4200);
    c.goto(&t.checkout_url).await.unwrap();
    let notice = c.find(Css("#already-paid")).await.unwrap();
    assert!(notice.text().await.unwrap().contains("already paid"));

    let declined = app.topup(900).await;
    c.goto(&declined.checkout_url).await.unwrap();
    fill_and_pay(&c, "4000 0000 0000 0002").await;
    let message = eventually("the decline message", Duration::from_secs(20), || async {
        let e = c.find(Css("#payment-error")).await.ok()?;
        let text = e.text().await.ok()?;
        (!text.is_empty() && e.is_displayed().await.ok()?).then_some(text)
    })
    .await;
    assert_eq!(message, "Your card was declined.");
    assert_eq!(app.balance(&declined.token).await, 0);
    let (_, events) = stripe_get(&sb, "/v1/events?limit=100").await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    c.close().await.unwrap();
}

/// The account's events of payments, charges, setups and sessions, oldest first.
async fn payment_events(api: &super::connect::Api) -> Vec<String> {
    let events = api
        .get("/v1/events?limit=100", None, "ApiList<Stripe.Event>")
        .await;
    let mut types: Vec<String> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .filter(|t| {
            [
                "payment_intent.",
                "charge.",
                "checkout.session.",
                "setup_intent.",
                "invoice.",
                "customer.subscription.",
            ]
            .iter()
            .any(|p| t.starts_with(p))
        })
        .collect();
    types.reverse();
    types
}

/// A Checkout Session in `mode` (a $19.00 price, monthly in subscription mode) whose success
/// page is the sandbox app's.
async fn session(api: &super::connect::Api, app: &str, mode: &str) -> Value {
    let success = format!("{app}/billing/success?session_id={{CHECKOUT_SESSION_ID}}");
    let mut form = vec![("mode", mode.to_owned()), ("success_url", success)];
    if mode == "setup" {
        form.push(("currency", "usd".into()));
    } else {
        let mut price = vec![
            ("unit_amount", "1900"),
            ("currency", "usd"),
            ("product_data[name]", "Lamp"),
        ];
        if mode == "subscription" {
            price.push(("recurring[interval]", "month"));
        }
        let price = api.post("/v1/prices", None, &price, "Price").await;
        form.push(("line_items[0][price]", price["id"].as_str().unwrap().into()));
        form.push(("line_items[0][quantity]", "1".into()));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    api.post("/v1/checkout/sessions", None, &form, "Checkout.Session")
        .await
}

/// Pays the hosted page with a card that asks for 3-D Secure and answers the challenge with
/// `button` (`#test-source-authorize-3ds` or `#test-source-fail-3ds`).
async fn pay_with_3ds(c: &fantoccini::Client, url: &str, card: &str, button: &str) {
    use fantoccini::Locator::Css;
    c.goto(url).await.unwrap();
    fill_and_pay(c, card).await;
    let challenge = eventually("the 3-D Secure step", Duration::from_secs(20), || async {
        c.find(Css(button)).await.ok()
    })
    .await;
    let title = c.find(Css("#three-ds-title")).await.unwrap();
    assert_eq!(title.text().await.unwrap(), "3D Secure 2 Test Page");
    challenge.click().await.unwrap();
}

/// The session as the API returns it now; `expand` is a query (`?expand[]=…`) or empty.
async fn fetch_session(api: &super::connect::Api, cs_id: &str, expand: &str) -> Value {
    let path = format!("/v1/checkout/sessions/{cs_id}{expand}");
    api.get(&path, None, "Checkout.Session").await
}

/// Checkout's message on the payment page, once it shows one.
async fn payment_error(c: &fantoccini::Client) -> String {
    use fantoccini::Locator::Css;
    eventually("the failure message", Duration::from_secs(20), || async {
        let text = c
            .find(Css("#payment-error"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (!text.is_empty()).then_some(text)
    })
    .await
}

/// Waits for the browser to land on the session's success page (the sandbox app's).
async fn landed_on_success(c: &fantoccini::Client, app: &str, cs_id: &str) {
    let success = format!("{app}/billing/success?session_id={cs_id}");
    eventually(
        "the redirect to success_url",
        Duration::from_secs(20),
        || async { (c.current_url().await.ok()?.as_str() == success).then_some(()) },
    )
    .await;
}

/// docs.stripe.com/testing#regulatory-cards: a card that requires authentication shows the
/// 3-D Secure step; completed, the payment succeeds and the session completes; failed, the
/// session stays open with Checkout's message and another card pays the same payment intent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_asking_for_3d_secure_is_completed_or_failed_on_the_hosted_page_in_chromium() {
    use super::connect::Api;
    use super::stripe_cli::Cli;
    let cli = Cli::start(&[]);
    let api = Api::new(&cli);
    let app = cli.sandbox.app.clone();
    let driver = ChromeDriver::start();
    let (c, _profile) = browser(&driver).await;

    let cs = session(&api, &app, "payment").await;
    let cs_id = cs["id"].as_str().unwrap().to_owned();
    pay_with_3ds(
        &c,
        cs["url"].as_str().unwrap(),
        "4000 0027 6000 3184",
        "#test-source-authorize-3ds",
    )
    .await;
    landed_on_success(&c, &app, &cs_id).await;
    let done = fetch_session(&api, &cs_id, "").await;
    assert_eq!(
        (done["status"].as_str(), done["payment_status"].as_str()),
        (Some("complete"), Some("paid"))
    );
    let pi = api
        .get(
            &format!(
                "/v1/payment_intents/{}",
                done["payment_intent"].as_str().unwrap()
            ),
            None,
            "PaymentIntent",
        )
        .await;
    assert_eq!(pi["status"], "succeeded");
    assert_eq!(pi["next_action"], Value::Null);
    assert_eq!(
        payment_events(&api).await,
        [
            "payment_intent.created",
            "payment_intent.requires_action",
            "charge.succeeded",
            "payment_intent.succeeded",
            "checkout.session.completed"
        ]
    );

    // Failed authentication: back on the payment page with Checkout's message, the session
    // open, the intent waiting for another payment method with Stripe's error.
    let cs = session(&api, &app, "payment").await;
    let cs_id = cs["id"].as_str().unwrap().to_owned();
    let url = cs["url"].as_str().unwrap().to_owned();
    pay_with_3ds(&c, &url, "4000 0000 0000 3220", "#test-source-fail-3ds").await;
    let message = payment_error(&c).await;
    assert_eq!(
        message,
        "We are unable to authenticate your payment method. Please choose a different payment method and try again."
    );
    let open = fetch_session(&api, &cs_id, "").await;
    assert_eq!(
        (open["status"].as_str(), open["payment_status"].as_str()),
        (Some("open"), Some("unpaid"))
    );
    let pi_id = open["payment_intent"].as_str().unwrap().to_owned();
    let failed = api
        .get(
            &format!("/v1/payment_intents/{pi_id}"),
            None,
            "PaymentIntent",
        )
        .await;
    assert_eq!(failed["status"], "requires_payment_method");
    assert_eq!(
        failed["last_payment_error"]["code"],
        "payment_intent_authentication_failure"
    );
    assert_eq!(
        failed["last_payment_error"]["payment_method"]["card"]["last4"],
        "3220"
    );
    assert_eq!(
        payment_events(&api).await[5..],
        [
            "payment_intent.created",
            "payment_intent.requires_action",
            "payment_intent.payment_failed"
        ]
    );
    // Another card pays the same intent.
    c.goto(&url).await.unwrap();
    fill_and_pay(&c, "4242 4242 4242 4242").await;
    landed_on_success(&c, &app, &cs_id).await;
    let paid = fetch_session(&api, &cs_id, "").await;
    assert_eq!(paid["payment_intent"].as_str(), Some(pi_id.as_str()));
    assert_eq!(paid["payment_status"], "paid");
    assert_eq!(
        payment_events(&api).await[8..],
        [
            "charge.succeeded",
            "payment_intent.succeeded",
            "checkout.session.completed"
        ]
    );

    // Setup mode: the card is set up once the challenge is completed.
    let cs = session(&api, &app, "setup").await;
    let cs_id = cs["id"].as_str().unwrap().to_owned();
    pay_with_3ds(
        &c,
        cs["url"].as_str().unwrap(),
        "4000 0027 6000 3184",
        "#test-source-authorize-3ds",
    )
    .await;
    landed_on_success(&c, &app, &cs_id).await;
    let set_up = fetch_session(&api, &cs_id, "?expand[]=setup_intent").await;
    assert_eq!(set_up["status"], "complete");
    assert_eq!(set_up["setup_intent"]["status"], "succeeded");
    assert_eq!(
        payment_events(&api).await[11..],
        [
            "setup_intent.created",
            "setup_intent.requires_action",
            "setup_intent.succeeded",
            "checkout.session.completed"
        ]
    );

    // Subscription mode: the challenge is the first invoice's payment's; failed, the invoice
    // stays open and the subscription incomplete; another card completes it.
    let cs = session(&api, &app, "subscription").await;
    let cs_id = cs["id"].as_str().unwrap().to_owned();
    let url = cs["url"].as_str().unwrap().to_owned();
    let seen = payment_events(&api).await.len();
    pay_with_3ds(&c, &url, "4000 0027 6000 3184", "#test-source-fail-3ds").await;
    payment_error(&c).await;
    let open = fetch_session(&api, &cs_id, "").await;
    assert_eq!(open["status"], "open");
    let failed = payment_events(&api).await;
    assert_eq!(
        failed[seen..],
        [
            "customer.subscription.created",
            "invoice.created",
            "invoice.finalized",
            "payment_intent.created",
            "payment_intent.requires_action",
            "invoice.payment_action_required",
            "payment_intent.payment_failed",
            "invoice.payment_failed"
        ]
    );
    pay_with_3ds(
        &c,
        &url,
        "4000 0000 0000 3220",
        "#test-source-authorize-3ds",
    )
    .await;
    landed_on_success(&c, &app, &cs_id).await;
    let done = fetch_session(&api, &cs_id, "?expand[]=subscription&expand[]=invoice").await;
    assert_eq!(
        (done["status"].as_str(), done["payment_status"].as_str()),
        (Some("complete"), Some("paid"))
    );
    assert_eq!(done["subscription"]["status"], "active");
    assert_eq!(done["invoice"]["status"], "paid");
    // The invoice's new payment (invoices.rs charges a new intent for each attempt).
    assert_eq!(
        payment_events(&api).await[failed.len()..],
        [
            "payment_intent.created",
            "payment_intent.requires_action",
            "invoice.payment_action_required",
            "charge.succeeded",
            "payment_intent.succeeded",
            "invoice.paid",
            "invoice.payment_succeeded",
            "customer.subscription.updated",
            "checkout.session.completed"
        ]
    );
    let customer = done["customer"].as_str().unwrap();
    let subs = api
        .get(
            &format!("/v1/subscriptions?customer={customer}"),
            None,
            "ApiList<Stripe.Subscription>",
        )
        .await;
    assert_eq!(
        subs["data"].as_array().unwrap().len(),
        1,
        "one subscription: {subs}"
    );
    c.close().await.unwrap();
    api.assert_typed();
}

/// POSTs the 3-D Secure page's answer (`complete` or `fail`): the redirect's `Location`.
async fn answer_challenge(api: &super::connect::Api, url: &str, outcome: &str) -> String {
    let resp = api
        .http
        .post(url)
        .form(&[("outcome", outcome)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// An intent confirmed with `return_url` outside Checkout: `next_action.redirect_to_url` names
/// the challenge page; answered, the browser returns to `return_url` with the intent, its
/// client secret and `redirect_status`, as Stripe appends them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_confirmed_with_return_url_is_authenticated_on_the_challenge_page() {
    use super::connect::Api;
    use super::stripe_cli::Cli;
    let cli = Cli::start(&[]);
    let api = Api::new(&cli);
    let back = "https://shop.example.com/done";
    let confirm = |card: &'static str| {
        let api = &api;
        async move {
            api.post(
                "/v1/payment_intents",
                None,
                &[
                    ("amount", "1500"),
                    ("currency", "usd"),
                    ("payment_method", card),
                    ("confirm", "true"),
                    ("return_url", back),
                ],
                "PaymentIntent",
            )
            .await
        }
    };
    let pi = confirm("pm_card_authenticationRequired").await;
    assert_eq!(pi["status"], "requires_action");
    assert_eq!(pi["next_action"]["type"], "redirect_to_url");
    assert_eq!(pi["next_action"]["redirect_to_url"]["return_url"], back);
    let url = pi["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .unwrap();
    assert!(url.starts_with(&api.base), "{url}");
    let page = api
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"test-source-authorize-3ds\""), "{page}");
    let id = pi["id"].as_str().unwrap();
    let secret = pi["client_secret"].as_str().unwrap();
    assert_eq!(
        answer_challenge(&api, url, "complete").await,
        format!(
            "{back}?payment_intent={id}&payment_intent_client_secret={secret}&redirect_status=succeeded"
        )
    );
    let paid = api
        .get(&format!("/v1/payment_intents/{id}"), None, "PaymentIntent")
        .await;
    assert_eq!(paid["status"], "succeeded");

    let pi = confirm("pm_card_threeDSecure2Required").await;
    let id = pi["id"].as_str().unwrap();
    let url = pi["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .unwrap();
    let location = answer_challenge(&api, url, "fail").await;
    assert!(location.ends_with("&redirect_status=failed"), "{location}");
    let failed = api
        .get(&format!("/v1/payment_intents/{id}"), None, "PaymentIntent")
        .await;
    assert_eq!(failed["status"], "requires_payment_method");
    assert_eq!(
        failed["last_payment_error"]["code"],
        "payment_intent_authentication_failure"
    );
    assert_eq!(
        payment_events(&api).await,
        [
            "payment_intent.created",
            "payment_intent.requires_action",
            "charge.succeeded",
            "payment_intent.succeeded",
            "payment_intent.created",
            "payment_intent.requires_action",
            "payment_intent.payment_failed"
        ]
    );
    // Without return_url the page is for Stripe.js (`use_stripe_sdk.stripe_js`).
    let pi = api
        .post(
            "/v1/payment_intents",
            None,
            &[
                ("amount", "1500"),
                ("currency", "usd"),
                ("payment_method", "pm_card_authenticationRequired"),
                ("confirm", "true"),
            ],
            "PaymentIntent",
        )
        .await;
    let js = pi["next_action"]["use_stripe_sdk"]["stripe_js"]
        .as_str()
        .unwrap();
    assert_eq!(
        js,
        format!("{}/3ds/{}", api.base, pi["id"].as_str().unwrap())
    );
    let page = api.http.get(js).send().await.unwrap();
    assert_eq!(page.status(), 200);
    api.assert_typed();
}
