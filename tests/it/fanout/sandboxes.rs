//! The relay in front of real sandboxes (the app and Stripe's API on loopback), each with its own
//! webhook secret: each verifies its re-signed copy of a real Checkout Session's event and credits
//! its own top-up, exactly once, also across a SIGKILL of the relay mid-stream.

use super::*;

/// A sandbox with its own webhook secret and a fresh buyer logged in.
struct Shop {
    sb: Sandbox,
    secret_file: String,
    app: stripe_ops::app_client::AppClient,
    org_id: String,
    account_id: String,
}

impl Shop {
    fn start(dir: &Path, name: &str) -> Shop {
        let secret = format!("whsec_{name}{}", stripe_ops::secret::random_alnum(24));
        let secret_file = secret_file(dir, &format!("{name}.whsec"), &secret);
        let sb = Sandbox::start(&["--webhook-secret-file", &secret_file]);
        let mut app = stripe_ops::app_client::AppClient::new(
            &sb.app,
            stripe_ops::config::Contract::default(),
            Duration::from_secs(10),
        )
        .unwrap();
        let account = rt().block_on(async {
            app.login_or_register(&stripe_ops::app_client::Buyer::fresh())
                .await
                .unwrap();
            app.request(reqwest::Method::GET, "/api/billing/account", None)
                .await
                .unwrap()
                .json()
                .unwrap()
        });
        Shop {
            sb,
            secret_file,
            app,
            org_id: account["account"]["org_id"].as_str().unwrap().to_owned(),
            account_id: account["account"]["id"].as_str().unwrap().to_owned(),
        }
    }

    fn webhook(&self) -> String {
        format!("{}/api/webhooks/stripe", self.sb.app)
    }

    /// A real Checkout Session of this shop and the signed `checkout.session.completed` for it:
    /// (session id, event id, body, header signed with the relay's incoming secret).
    fn topup(&self, cents: i64) -> (String, String, String, String) {
        let checkout = rt()
            .block_on(self.app.create_checkout(
                cents,
                &format!("{}/billing/success", self.sb.app),
                &format!("{}/billing/cancel", self.sb.app),
            ))
            .unwrap();
        let pi = checkout.payment_intent_id.unwrap_or_default();
        let metadata = serde_json::json!({"orgId": self.org_id, "accountId": self.account_id, "paymentIntentId": pi});
        let (id, body, header) = signed(
            "checkout.session.completed",
            INCOMING,
            &[
                &format!("data.object.id={}", checkout.session_id),
                &format!("data.object.amount_total={cents}"),
                "data.object.currency=usd",
                "data.object.payment_status=paid",
                &format!("data.object.payment_intent={pi}"),
                &format!("data.object.metadata={metadata}"),
            ],
        );
        (checkout.session_id, id, body, header)
    }

    fn balance(&self) -> i64 {
        rt().block_on(self.app.balance_cents()).unwrap()
    }

    fn topups(&self, session: &str) -> usize {
        rt().block_on(self.app.topups_for_session(session))
            .unwrap()
            .len()
    }
}

fn relay_for_shops(dir: &Path, shops: &[&Shop], listen: &str) -> Vec<String> {
    let incoming = secret_file(dir, "incoming", INCOMING);
    let mut args = vec![
        "--listen".to_owned(),
        listen.to_owned(),
        "--spool".into(),
        dir.join("spool").display().to_string(),
        "--verify-secret-file".into(),
        incoming,
    ];
    for (i, shop) in shops.iter().enumerate() {
        args.extend([
            "--target".into(),
            format!("shop{i}={}", shop.webhook()),
            "--target-secret-file".into(),
            format!("shop{i}={}", shop.secret_file),
        ]);
    }
    args
}

#[test]
fn three_sandboxes_each_verify_their_resigned_copy_and_credit_their_own_topup() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shops: Vec<Shop> = (0..3).map(|i| Shop::start(d, &format!("s{i}"))).collect();
    let args = relay_for_shops(d, &shops.iter().collect::<Vec<_>>(), "127.0.0.1:0");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let relay = Fanout::start(d, &args);
    for (i, shop) in shops.iter().enumerate() {
        let cents = 1100 * (i as i64 + 1);
        let (session, id, body, header) = shop.topup(cents);
        let (status, answer) = post(&relay.webhook, &body, &header).unwrap();
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["event_id"], id.as_str());
        for t in answer["targets"].as_array().unwrap() {
            // each sandbox answers 400 unless the signature verifies with its own secret
            assert_eq!(t["status"], 200, "{answer}");
        }
        poll("the top-up to be credited", WAIT, || {
            (shop.balance() == cents).then_some(())
        });
        assert_eq!(shop.topups(&session), 1);
    }
    relay.wait_spool_empty();
    for (i, shop) in shops.iter().enumerate() {
        assert_eq!(
            shop.balance(),
            1100 * (i as i64 + 1),
            "credited only its own"
        );
    }
}

#[test]
fn sigkill_mid_stream_of_topups_loses_nothing_and_each_sandbox_credits_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shops: Vec<Shop> = (0..3).map(|i| Shop::start(d, &format!("k{i}"))).collect();
    // 24 top-ups, round robin over the shops, each for a real session of its shop
    let events: Vec<(usize, i64, String, String, String)> = (0..24)
        .map(|i| {
            let cents = 100 + i as i64;
            let (session, _, body, header) = shops[i % 3].topup(cents);
            (i % 3, cents, session, body, header)
        })
        .collect();
    let listen = format!("127.0.0.1:{}", free_port());
    let args = relay_for_shops(d, &shops.iter().collect::<Vec<_>>(), &listen);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut relay = Fanout::start(d, &args);

    // The sender behaves like Stripe: an event not answered 2xx is sent again until it is.
    let acked = Arc::new(AtomicUsize::new(0));
    let sender = {
        let acked = acked.clone();
        let webhook = relay.webhook.clone();
        let wire: Vec<(String, String)> =
            events.iter().map(|e| (e.3.clone(), e.4.clone())).collect();
        std::thread::spawn(move || {
            for (body, header) in wire {
                poll("the relay to answer 200", WAIT, || {
                    matches!(post(&webhook, &body, &header), Ok((200, _))).then_some(())
                });
                acked.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    poll("8 events answered", WAIT, || {
        (acked.load(Ordering::SeqCst) >= 8).then_some(())
    });
    relay.signal("KILL");
    assert_eq!(relay.wait_exit(), -1);
    let relay = Fanout::start(d, &args);
    sender.join().unwrap();

    for (i, shop) in shops.iter().enumerate() {
        let expected: i64 = events.iter().filter(|e| e.0 == i).map(|e| e.1).sum();
        poll("every top-up to be credited", WAIT, || {
            (shop.balance() == expected).then_some(())
        });
        for e in events.iter().filter(|e| e.0 == i) {
            assert_eq!(shop.topups(&e.2), 1, "session {} credited once", e.2);
        }
    }
    relay.wait_spool_empty();
    for (i, shop) in shops.iter().enumerate() {
        let expected: i64 = events.iter().filter(|e| e.0 == i).map(|e| e.1).sum();
        assert_eq!(shop.balance(), expected, "no second credit arrived late");
    }
}
