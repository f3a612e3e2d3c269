//! The billing portal's hosted page (a session's `url`): the customer's subscriptions and
//! payment methods, Cancel as the configuration's `features.subscription_cancel` says
//! (`at_period_end`: `customer.subscription.updated` with `cancel_at_period_end`;
//! `immediately`: `customer.subscription.deleted`), none without it, and the link back to
//! `return_url`. Every API answer is checked against stripe-node's type (tsc --strict) and read
//! by stripe-python.

use super::connect::{Api, WAIT};
use super::stripe_cli::Cli;
use super::*;

/// A customer paying $12.00 a month with `pm_card_visa`: (customer, subscription).
async fn subscribed(api: &Api) -> (String, String) {
    let customer = api
        .post(
            "/v1/customers",
            None,
            &[
                ("payment_method", "pm_card_visa"),
                ("invoice_settings[default_payment_method]", "pm_card_visa"),
            ],
            "Customer",
        )
        .await;
    let customer = customer["id"].as_str().unwrap().to_owned();
    let price = api
        .post(
            "/v1/prices",
            None,
            &[
                ("unit_amount", "1200"),
                ("currency", "usd"),
                ("recurring[interval]", "month"),
                ("product_data[name]", "Team"),
            ],
            "Price",
        )
        .await;
    let sub = api
        .post(
            "/v1/subscriptions",
            None,
            &[
                ("customer", &customer),
                ("items[0][price]", price["id"].as_str().unwrap()),
            ],
            "Subscription",
        )
        .await;
    assert_eq!(sub["status"], "active", "{sub}");
    (customer, sub["id"].as_str().unwrap().to_owned())
}

/// A portal session for `customer` with the configuration made from `features` (none: the
/// default one): its page's URL.
async fn portal(api: &Api, customer: &str, features: &[(&str, &str)]) -> String {
    let mut form = vec![
        ("customer", customer),
        ("return_url", "https://app.example.com/account"),
    ];
    let configuration;
    if !features.is_empty() {
        let c = api
            .post(
                "/v1/billing_portal/configurations",
                None,
                features,
                "BillingPortal.Configuration",
            )
            .await;
        configuration = c["id"].as_str().unwrap().to_owned();
        form.push(("configuration", &configuration));
    }
    let session = api
        .post(
            "/v1/billing_portal/sessions",
            None,
            &form,
            "BillingPortal.Session",
        )
        .await;
    let url = session["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&api.base), "{url}");
    url
}

async fn page(api: &Api, url: &str) -> String {
    let resp = api.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// Presses the page's Cancel of `sub`: the answer's status and `Location`.
async fn press_cancel(api: &Api, url: &str, sub: &str) -> (u16, Option<String>) {
    let resp = api
        .http
        .post(format!("{url}/subscriptions/{sub}/cancel"))
        .send()
        .await
        .unwrap();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (resp.status().as_u16(), location)
}

/// The newest event of `kind` about `sub`.
async fn last_event(api: &Api, kind: &str, sub: &str) -> Value {
    eventually(kind, WAIT, || async {
        let events = api
            .get(
                &format!("/v1/events?type={kind}&limit=1"),
                None,
                "ApiList<Stripe.Event>",
            )
            .await;
        let e = events["data"][0].clone();
        (e["data"]["object"]["id"] == sub).then_some(e)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_page_cancels_as_its_configuration_says_and_returns_to_the_app() {
    let cli = Cli::start(&[]);
    let api = Api::new(&cli);

    // at_period_end: the subscription runs to the period's end.
    let (customer, sub) = subscribed(&api).await;
    let url = portal(
        &api,
        &customer,
        &[
            ("features[subscription_cancel][enabled]", "true"),
            ("features[subscription_cancel][mode]", "at_period_end"),
        ],
    )
    .await;
    let html = page(&api, &url).await;
    assert!(
        html.contains(&format!("data-subscription=\"{sub}\"")),
        "{html}"
    );
    assert!(html.contains("$12.00 USD/month"), "{html}");
    assert!(
        html.contains("visa &bull;&bull;&bull;&bull; 4242"),
        "{html}"
    );
    assert!(
        html.contains("id=\"return-link\" href=\"https://app.example.com/account\""),
        "{html}"
    );
    assert!(html.contains("data-test=\"cancel-subscription\""), "{html}");
    let path = url.strip_prefix(&api.base).unwrap().to_owned();
    assert_eq!(press_cancel(&api, &url, &sub).await, (303, Some(path)));
    let after = api
        .get(&format!("/v1/subscriptions/{sub}"), None, "Subscription")
        .await;
    assert_eq!(
        (
            after["status"].as_str(),
            after["cancel_at_period_end"].as_bool()
        ),
        (Some("active"), Some(true))
    );
    assert_eq!(
        after["cancellation_details"]["reason"],
        "cancellation_requested"
    );
    let updated = last_event(&api, "customer.subscription.updated", &sub).await;
    assert_eq!(
        updated["data"]["previous_attributes"]["cancel_at_period_end"], false,
        "{updated}"
    );
    let html = page(&api, &url).await;
    assert!(html.contains("Cancels at the end of the period"), "{html}");
    assert!(
        !html.contains("data-test=\"cancel-subscription\""),
        "{html}"
    );

    // immediately: canceled now, and gone from the portal.
    let (customer, sub) = subscribed(&api).await;
    let url = portal(
        &api,
        &customer,
        &[
            ("features[subscription_cancel][enabled]", "true"),
            ("features[subscription_cancel][mode]", "immediately"),
        ],
    )
    .await;
    assert_eq!(press_cancel(&api, &url, &sub).await.0, 303);
    let after = api
        .get(&format!("/v1/subscriptions/{sub}"), None, "Subscription")
        .await;
    assert_eq!(after["status"], "canceled");
    last_event(&api, "customer.subscription.deleted", &sub).await;
    assert!(!page(&api, &url).await.contains(&sub));

    // The default configuration (the example object's features: canceling disabled): no
    // Cancel, and a forged press changes nothing.
    let (customer, sub) = subscribed(&api).await;
    let url = portal(&api, &customer, &[]).await;
    let html = page(&api, &url).await;
    assert!(html.contains(&sub), "{html}");
    assert!(
        !html.contains("data-test=\"cancel-subscription\""),
        "{html}"
    );
    assert_eq!(press_cancel(&api, &url, &sub).await, (400, None));
    let kept = api
        .get(&format!("/v1/subscriptions/{sub}"), None, "Subscription")
        .await;
    assert_eq!(
        (
            kept["status"].as_str(),
            kept["cancel_at_period_end"].as_bool()
        ),
        (Some("active"), Some(false))
    );
    // Another customer's subscription is not this portal's to cancel.
    let (other, _) = subscribed(&api).await;
    let url = portal(
        &api,
        &other,
        &[
            ("features[subscription_cancel][enabled]", "true"),
            ("features[subscription_cancel][mode]", "immediately"),
        ],
    )
    .await;
    assert_eq!(press_cancel(&api, &url, &sub).await, (400, None));
    api.assert_typed();
}
