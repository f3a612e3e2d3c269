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
async fn browser(driver: &ChromeDriver) -> (fantoccini::Client, tempfile::TempDir) {
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
async fn fill_and_pay(c: &fantoccini::Client, card: &str) {
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
