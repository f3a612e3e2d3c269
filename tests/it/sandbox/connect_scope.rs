//! The `Stripe-Account` scope of the sandbox (issue 33): a connected account's objects, events
//! and `Idempotency-Key`s its own; Stripe's exact 403 for an account that is none of the
//! platform's; direct and destination charges, their refunds; Connect events only to
//! `connect=true` endpoints and `stripe listen --forward-connect-to`, also from
//! `stripe trigger --stripe-account`; tests/receivers/connect.js behind `stripe listen`, keeping a
//! direct charge off the platform's books (and its bug, crediting it, caught).

use super::connect::{Api, WAIT, got};
use super::stripe_cli::{Cli, node_recorder};
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_account_scopes_objects_events_keys_and_charges_with_stripes_errors() {
    let cli = Cli::start(&[]);
    let api = Api::new(&cli);
    let acct = api
        .post("/v1/accounts", None, &[("type", "standard")], "Account")
        .await;
    let id = acct["id"].as_str().unwrap().to_owned();
    // A Connect endpoint and a plain one, each to a stripe-node receiver with its own secret.
    let mut receivers = Vec::new();
    for connect in ["true", "false"] {
        let we = api
            .post(
                "/v1/webhook_endpoints",
                None,
                &[
                    ("url", "https://example.com/placeholder"),
                    ("enabled_events[]", "customer.created"),
                    ("connect", connect),
                ],
                "WebhookEndpoint",
            )
            .await;
        let (proc, url) = node_recorder(we["secret"].as_str().unwrap(), false);
        let path = format!("/v1/webhook_endpoints/{}", we["id"].as_str().unwrap());
        let webhook = format!("{url}/webhook");
        api.post(&path, None, &[("url", &webhook)], "WebhookEndpoint")
            .await;
        receivers.push((proc, url));
    }

    // A customer made inside the account is the account's alone.
    let cus = api
        .post(
            "/v1/customers",
            Some(&id),
            &[("email", "a@example.com")],
            "Customer",
        )
        .await;
    let cus_id = cus["id"].as_str().unwrap();
    let (status, v) = api
        .call(
            reqwest::Method::GET,
            &format!("/v1/customers/{cus_id}"),
            None,
            &[],
        )
        .await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "resource_missing");
    let list = api
        .get("/v1/customers", Some(&id), "ApiList<Stripe.Customer>")
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    // Its event carries `account` and is listed only inside the account.
    let events = api
        .get(
            "/v1/events?type=customer.created",
            Some(&id),
            "ApiList<Stripe.Event>",
        )
        .await;
    assert_eq!(events["data"][0]["account"], id.as_str(), "{events}");
    let platform = api
        .get(
            "/v1/events?type=customer.created",
            None,
            "ApiList<Stripe.Event>",
        )
        .await;
    assert_eq!(platform["data"], json!([]), "{platform}");
    // The account's event goes to the Connect endpoint only, the platform's to the plain one.
    api.post(
        "/v1/customers",
        None,
        &[("email", "b@example.com")],
        "Customer",
    )
    .await;
    let [(_c, connect_rx), (_p, plain_rx)] = &receivers[..] else {
        unreachable!()
    };
    for (rx, owner) in [(connect_rx, Some(id.clone())), (plain_rx, None)] {
        let g = eventually("the endpoint's delivery", WAIT, || async {
            let g = got(&api.http, rx).await;
            (!g.is_empty()).then_some(g)
        })
        .await;
        assert_eq!(g, vec![("customer.created".to_owned(), owner)]);
    }

    // An account that is none of the platform's: Stripe's 403, the key starred but its last 4.
    let key = &cli.key;
    let starred = format!(
        "sk_test_{}{}",
        "*".repeat(key.len() - "sk_test_".len() - 4),
        &key[key.len() - 4..]
    );
    for path in ["/v1/customers", "/v1/accounts/acct_1NoSuchAccount00"] {
        let account = (path == "/v1/customers").then_some("acct_1NoSuchAccount00");
        let (status, v) = api.call(reqwest::Method::GET, path, account, &[]).await;
        assert_eq!(status, 403, "{path}: {v}");
        assert_eq!(
            v,
            json!({"error": {
                "code": "account_invalid",
                "doc_url": "https://stripe.com/docs/error-codes/account-invalid",
                "message": format!("The provided key '{starred}' does not have access to account 'acct_1NoSuchAccount00' (or that account does not exist). Application access may have been revoked."),
                "type": "invalid_request_error",
            }}),
            "{path}"
        );
        assert!(
            !v.to_string().contains(key.as_str()),
            "the key is never echoed"
        );
    }
    // A connected account cannot make or list accounts of its own.
    let (status, v) = api
        .call(
            reqwest::Method::POST,
            "/v1/accounts",
            Some(&id),
            &[("type", "express")],
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signed up for Connect"),
        "{v}"
    );
    // A capability stripe-node does not declare is an unknown parameter, as at Stripe.
    let (status, v) = api
        .call(
            reqwest::Method::POST,
            "/v1/accounts",
            None,
            &[("capabilities[teleport_payments][requested]", "true")],
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (400, json!("parameter_unknown")),
        "{v}"
    );
    // The account's capabilities (a Standard account asks for card payments and transfers).
    let caps = api
        .get(
            &format!("/v1/accounts/{id}/capabilities"),
            None,
            "ApiList<Stripe.Capability>",
        )
        .await;
    let names: Vec<&str> = caps["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["card_payments", "transfers"], "{caps}");
    let cap = api
        .get(
            &format!("/v1/accounts/{id}/capabilities/transfers"),
            None,
            "Capability",
        )
        .await;
    assert_eq!(
        (cap["account"].clone(), cap["requested"].clone()),
        (json!(id), json!(true))
    );

    // An Idempotency-Key is the account's own: the same key on the platform makes another
    // customer, again in the account replays the first.
    let keyed = |account: Option<&str>| {
        let mut req = api
            .http
            .post(format!("{}/v1/customers", api.base))
            .bearer_auth(&api.key)
            .header("Idempotency-Key", "same-key-both-sides");
        if let Some(a) = account {
            req = req.header("Stripe-Account", a);
        }
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let first = keyed(Some(&id)).await;
    let platform_one = keyed(None).await;
    let again = keyed(Some(&id)).await;
    assert_ne!(first["id"], platform_one["id"]);
    assert_eq!(first["id"], again["id"]);

    // A direct charge: the account's payment, the platform's fee.
    let direct = api
        .post(
            "/v1/payment_intents",
            Some(&id),
            &[
                ("amount", "2000"),
                ("currency", "usd"),
                ("payment_method", "pm_card_visa"),
                ("confirm", "true"),
                ("application_fee_amount", "200"),
            ],
            "PaymentIntent",
        )
        .await;
    assert_eq!(direct["status"], "succeeded", "{direct}");
    let fees = api
        .get(
            "/v1/application_fees",
            None,
            "ApiList<Stripe.ApplicationFee>",
        )
        .await;
    assert_eq!(fees["data"][0]["amount"], 200, "{fees}");
    assert_eq!(fees["data"][0]["account"], id.as_str());
    assert_eq!(api.usd(Some(&id)).await, 2000 - 88 - 200);
    assert_eq!(api.usd(None).await, 200);

    // A destination charge refunded in half, reversing the transfer and refunding the fee in
    // proportion.
    let pi = api
        .post(
            "/v1/payment_intents",
            None,
            &[
                ("amount", "1000"),
                ("currency", "usd"),
                ("payment_method", "pm_card_visa"),
                ("confirm", "true"),
                ("application_fee_amount", "100"),
                ("transfer_data[destination]", &id),
            ],
            "PaymentIntent",
        )
        .await;
    let charge = api
        .get(
            &format!("/v1/charges/{}", pi["latest_charge"].as_str().unwrap()),
            None,
            "Charge",
        )
        .await;
    api.post(
        "/v1/refunds",
        None,
        &[
            ("payment_intent", pi["id"].as_str().unwrap()),
            ("amount", "500"),
            ("reverse_transfer", "true"),
            ("refund_application_fee", "true"),
        ],
        "Refund",
    )
    .await;
    let transfer = api
        .get(
            &format!("/v1/transfers/{}", charge["transfer"].as_str().unwrap()),
            None,
            "Transfer",
        )
        .await;
    assert_eq!(transfer["amount_reversed"], 500, "{transfer}");
    let fee = api
        .get(
            &format!(
                "/v1/application_fees/{}",
                charge["application_fee"].as_str().unwrap()
            ),
            None,
            "ApplicationFee",
        )
        .await;
    assert_eq!(fee["amount_refunded"], 50, "{fee}");
    // The account: +$10.00 - $1.00 fee, -$5.00 reversed, +$0.50 fee refunded.
    assert_eq!(
        api.usd(Some(&id)).await,
        2000 - 88 - 200 + 1000 - 100 - 500 + 50
    );

    // An application fee only where there is someone to take it from.
    let (status, v) = api
        .call(
            reqwest::Method::POST,
            "/v1/payment_intents",
            None,
            &[
                ("amount", "1000"),
                ("currency", "usd"),
                ("application_fee_amount", "10"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["param"], "application_fee_amount");

    api.assert_typed();
}

#[test]
fn stripe_trigger_with_stripe_account_makes_the_account_s_events_for_listen_c_only() {
    let cli = Cli::start(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = Api::new(&cli);
    let acct = rt.block_on(api.post("/v1/accounts", None, &[("type", "standard")], "Account"));
    let id = acct["id"].as_str().unwrap().to_owned();
    let secret = cli.print_secret();
    let (_platform_rx, platform_rx) = node_recorder(&secret, false);
    let (_connect_rx, connect_rx) = node_recorder(&secret, false);
    let _listen = cli.listen(&[
        "--events",
        "customer.created",
        "--forward-to",
        &format!("{platform_rx}/webhook"),
        "--forward-connect-to",
        &format!("{connect_rx}/webhook"),
    ]);
    let o = cli.run(&["trigger", "customer.created", "--stripe-account", &id]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let connected = rt.block_on(eventually(
        "the account's customer.created",
        WAIT,
        || async {
            let g = got(&api.http, &connect_rx).await;
            (!g.is_empty()).then_some(g)
        },
    ));
    assert_eq!(
        connected,
        vec![("customer.created".to_owned(), Some(id.clone()))]
    );
    // And the platform's own trigger goes to --forward-to only.
    let o = cli.run(&["trigger", "customer.created"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let platform = rt.block_on(eventually(
        "the platform's customer.created",
        WAIT,
        || async {
            let g = got(&api.http, &platform_rx).await;
            (!g.is_empty()).then_some(g)
        },
    ));
    assert_eq!(platform, vec![("customer.created".to_owned(), None)]);
    assert_eq!(
        rt.block_on(got(&api.http, &connect_rx)).len(),
        1,
        "the platform's event never reaches the Connect URL"
    );
}

/// `tests/receivers/connect.js` (one route for the platform's and its accounts' events, as
/// Stripe's Connect docs write it) with `bug`, and the platform balance it reports.
fn connect_receiver(secret: &str, bug: &str) -> (Proc, String) {
    let mut cmd = crate::receivers::node();
    cmd.arg(crate::receivers::receivers_dir().join("connect.js"))
        .current_dir(crate::receivers::receivers_dir())
        .env("SECRET", secret)
        .env("BUG", bug)
        .env("NODE_ENV", "test");
    let (proc, port) = spawn_announcing(cmd);
    (proc, format!("http://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_receiver_behind_listen_c_keeps_a_direct_charge_off_the_platform_s_books() {
    for (bug, platform_balance) in [("none", 300), ("platform-credited", 1000)] {
        let cli = Cli::start(&[]);
        let secret = cli.print_secret();
        let (_rx, rx) = connect_receiver(&secret, bug);
        let hook = format!("{rx}/connect/webhook");
        let _listen = cli.listen(&[
            "--events",
            "payment_intent.succeeded",
            "--forward-to",
            &hook,
            "--forward-connect-to",
            &hook,
        ]);
        let api = Api::new(&cli);
        let acct = api
            .post("/v1/accounts", None, &[("type", "standard")], "Account")
            .await;
        let id = acct["id"].as_str().unwrap().to_owned();
        for (account, amount) in [(Some(id.as_str()), "700"), (None, "300")] {
            let pi = api
                .post(
                    "/v1/payment_intents",
                    account,
                    &[
                        ("amount", amount),
                        ("currency", "usd"),
                        ("payment_method", "pm_card_visa"),
                        ("confirm", "true"),
                    ],
                    "PaymentIntent",
                )
                .await;
            assert_eq!(pi["status"], "succeeded");
            // Delivered through the listener, and answered 200 by the receiver.
            let events = api
                .get(
                    "/v1/events?type=payment_intent.succeeded",
                    account,
                    "ApiList<Stripe.Event>",
                )
                .await;
            let event = events["data"][0]["id"].as_str().unwrap().to_owned();
            eventually("the receiver's answer", WAIT, || async {
                let (_, v) = api
                    .call(reqwest::Method::GET, &attempts_path(&event), None, &[])
                    .await;
                let ok = v["delivery_attempts"].as_array()?.iter().any(|a| {
                    a["endpoint"]
                        .as_str()
                        .is_some_and(|e| e.starts_with("cliws_"))
                        && a["status"] == 200
                });
                ok.then_some(())
            })
            .await;
        }
        let books = api
            .http
            .get(format!("{rx}/platform"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            books,
            format!("platform_balance {platform_balance}\n"),
            "BUG={bug}"
        );
    }
}
