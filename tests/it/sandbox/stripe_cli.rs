//! The official Stripe CLI (npm `@stripe/cli`, pinned in tests/receivers/package-lock.json)
//! against the sandbox, offline: `stripe listen` forwarding to a stripe-node receiver,
//! `stripe events resend`, `stripe trigger` for the fixtures the sandbox implements, and the
//! chain this product was born from: `stripe listen` -> `stripe-ops fanout` -> receivers.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use super::*;
use crate::fanout::{Fanout, Recorder, secret_file, target};
use crate::receivers::{node, receivers_dir};

const WAIT: Duration = Duration::from_secs(30);

/// The sandbox's Stripe, and the CLI pointed at it with the key in STRIPE_API_KEY (the CLI
/// ignores STRIPE_API_BASE) and its own config folder, without telemetry or update checks.
struct Cli {
    sandbox: Sandbox,
    key: String,
    home: tempfile::TempDir,
}

impl Cli {
    fn start(args: &[&str]) -> Cli {
        let sandbox = Sandbox::start(args);
        let key_file = sandbox.info["stripe_key_file"]
            .as_str()
            .expect("generated key");
        let key = std::fs::read_to_string(key_file).unwrap().trim().to_owned();
        Cli {
            sandbox,
            key,
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(stripe_binary());
        cmd.args(args)
            .args(["--api-base", &self.sandbox.stripe_api])
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("STRIPE_API_KEY", &self.key)
            .env("STRIPE_CLI_TELEMETRY_OPTOUT", "1")
            .env("STRIPE_NO_AUTO_UPDATE", "1")
            .env("STRIPE_CLI_NO_PLUGIN_AUTO_INSTALL", "1")
            .env_remove("STRIPE_SECRET_KEY")
            .env_remove("STRIPE_DEVICE_NAME");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the Stripe CLI runs")
    }

    fn print_secret(&self) -> String {
        let o = self.run(&["listen", "--print-secret"]);
        assert_eq!(code(&o), 0, "stripe listen --print-secret: {}", stderr(&o));
        stdout(&o).trim().to_owned()
    }

    /// `stripe listen ARGS`, once it says it is ready.
    fn listen(&self, args: &[&str]) -> Listen {
        let log = self.home.path().join(format!(
            "listen-{}.log",
            stripe_ops::secret::random_alnum(6)
        ));
        let child = self
            .command(&[&["listen", "--skip-update"], args].concat())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::options().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .expect("stripe listen starts");
        let listen = Listen {
            _proc: Proc(child),
            log,
        };
        poll("stripe listen to be ready", WAIT, || {
            listen.output().contains("Ready!").then_some(())
        });
        listen
    }

    /// The account's events, newest first (at most 100).
    async fn events(&self, http: &reqwest::Client) -> Vec<Value> {
        let v: Value = http
            .get(format!("{}/v1/events?limit=100", self.sandbox.stripe_api))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"].as_array().cloned().unwrap_or_default()
    }
}

/// The CLI's own binary, not `node_modules/.bin/stripe`: that is `@stripe/cli`'s Node shim,
/// which runs the binary as a child, so stopping the shim would leave `stripe listen` running.
fn stripe_binary() -> PathBuf {
    let bin = receivers_dir().join("node_modules/@stripe/cli-linux-x64/bin/stripe");
    assert!(
        bin.exists(),
        "{} is missing: tests/run.sh installs @stripe/cli (Linux x64)",
        bin.display()
    );
    bin
}

/// A running `stripe listen`, stopped when dropped.
struct Listen {
    _proc: Proc,
    log: PathBuf,
}

impl Listen {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `tests/receivers/recorder.js` (stripe-node's constructEvent) with `secret`.
fn node_recorder(secret: &str, fail_first: bool) -> (Proc, String) {
    let mut cmd = node();
    cmd.arg(receivers_dir().join("recorder.js"))
        .current_dir(receivers_dir())
        .env("SECRET", secret)
        .env("FAIL_FIRST", if fail_first { "1" } else { "0" })
        .env("NODE_ENV", "test");
    let (proc, port) = spawn_announcing(cmd);
    (proc, format!("http://127.0.0.1:{port}"))
}

async fn seen(http: &reqwest::Client, recorder: &str) -> Value {
    http.get(format!("{recorder}/seen"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The attempts the sandbox recorded for `event` to `stripe listen` sessions.
fn listener_attempts(event: &Value) -> Vec<Value> {
    event["delivery_attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["endpoint"].as_str().unwrap().starts_with("cliws_"))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_forwards_a_paid_checkout_verified_once_and_resend_delivers_a_failed_one_again() {
    let cli = Cli::start(&[]);
    let secret = cli.print_secret();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        cli.print_secret(),
        secret,
        "stable for one key across listen runs, as Stripe's"
    );
    let app_secret = secret_from_start_line(&cli.sandbox);
    assert_ne!(
        secret, app_secret,
        "the CLI's secret is its own, not an endpoint's"
    );

    let (_recorder, recorder) = node_recorder(&secret, true);
    let listen = cli.listen(&[
        "--events",
        "checkout.session.completed",
        "--forward-to",
        &format!("{recorder}/webhook"),
    ]);
    let app = App::new(&cli.sandbox.app);
    let topup = app.topup(500).await;
    let paid = stripe_ops::sandbox::pay_with_form_post(
        &app.http,
        &topup.checkout_url,
        stripe_ops::sandbox::TEST_CARD,
    )
    .await
    .unwrap();
    assert!(matches!(paid, stripe_ops::sandbox::PayOutcome::Paid { .. }));

    // The receiver answered 500: the sandbox recorded the CLI's report of it as a failed attempt.
    let event = eventually("the listener's failed attempt", WAIT, || async {
        let events = cli.events(&app.http).await;
        let e = events
            .iter()
            .find(|e| e["type"] == "checkout.session.completed")?
            .clone();
        (!listener_attempts(&e).is_empty()).then_some(e)
    })
    .await;
    let id = event["id"].as_str().unwrap().to_owned();
    let attempts = listener_attempts(&event);
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["status"], 500);
    assert_eq!(attempts[0]["url"], format!("{recorder}/webhook"));
    let v = seen(&app.http, &recorder).await;
    assert_eq!(
        v["posts"], 1,
        "one delivery (the default-version copy only): {v}"
    );
    assert_eq!(
        v["refused"], 0,
        "the signature verified with the printed secret: {v}"
    );
    assert!(v["accepted"].as_array().unwrap().is_empty());
    assert!(
        listen.output().contains(&id),
        "the CLI shows the event: {}",
        listen.output()
    );

    // `stripe events resend` without --webhook-endpoint goes to the listeners again.
    let o = cli.run(&["events", "resend", &id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json_of(&o)["id"], id.as_str());
    let v = eventually("the resent event", WAIT, || async {
        let v = seen(&app.http, &recorder).await;
        (!v["accepted"].as_array().unwrap().is_empty()).then_some(v)
    })
    .await;
    assert_eq!(
        v["accepted"],
        json!([{"id": id, "type": "checkout.session.completed", "api_version": stripe_ops::webhook::versions::API_VERSION}])
    );
    let event = eventually("the second attempt", WAIT, || async {
        let events = cli.events(&app.http).await;
        let e = events.into_iter().find(|e| e["id"] == id.as_str())?;
        (listener_attempts(&e).len() == 2).then_some(e)
    })
    .await;
    let attempts = listener_attempts(&event);
    assert_eq!(
        (
            attempts[1]["attempt"].clone(),
            attempts[1]["status"].clone()
        ),
        (json!(2), json!(200))
    );
    // The app's own endpoint was paid once, and a resend to it is one more attempt there.
    let o = cli.run(&["events", "resend", &id, "--webhook-endpoint", "we_missing"]);
    assert!(
        stdout(&o).contains("No such webhook endpoint: 'we_missing'"),
        "{}",
        stdout(&o)
    );
    let resent = cli.run(&["events", "resend", "evt_missing"]);
    assert!(
        stdout(&resent).contains("No such event: 'evt_missing'"),
        "{}",
        stdout(&resent)
    );
    assert_eq!(app.balance(&topup.token).await, 500, "credited once");
}

const SUBSCRIPTION: &[&str] = &[
    "customer.created",
    "payment_method.attached",
    "product.created",
    "price.created",
    "plan.created",
    "customer.subscription.created",
    "invoice.created",
    "invoice.finalized",
    "payment_intent.created",
    "charge.succeeded",
    "payment_intent.succeeded",
    "invoice.paid",
    "invoice.payment_succeeded",
    "customer.subscription.updated",
];
const INVOICE_PAID: &[&str] = &[
    "customer.created",
    "payment_method.attached",
    "invoiceitem.created",
    "invoice.created",
    "invoice.finalized",
    "payment_intent.created",
    "charge.succeeded",
    "payment_intent.succeeded",
    "invoice.paid",
    "invoice.payment_succeeded",
];
const PAID: &[&str] = &[
    "payment_intent.created",
    "charge.succeeded",
    "payment_intent.succeeded",
];
const DECLINED: &[&str] = &[
    "payment_intent.created",
    "charge.failed",
    "payment_intent.payment_failed",
];
const PRICE: &[&str] = &["product.created", "price.created"];

/// What each supported `stripe trigger` fixture makes the sandbox emit, in order.
fn expected(trigger: &str) -> Vec<&'static str> {
    let parts: &[&[&'static str]] = match trigger {
        "customer.created" => &[&["customer.created"]],
        "customer.updated" => &[&["customer.created", "customer.updated"]],
        "payment_intent.created" => &[&["payment_intent.created"]],
        "payment_intent.succeeded" | "charge.succeeded" => &[PAID],
        "payment_intent.payment_failed" => &[DECLINED],
        "charge.refunded" => &[PAID, &["refund.created", "charge.refunded"]],
        "checkout.session.completed" => &[PRICE, PAID, &["checkout.session.completed"]],
        "checkout.session.expired" => &[PRICE, &["checkout.session.expired"]],
        "checkout.session.async_payment_succeeded" => &[
            PRICE,
            &[
                "payment_intent.created",
                "payment_intent.processing",
                "checkout.session.completed",
            ],
            &[
                "charge.succeeded",
                "payment_intent.succeeded",
                "checkout.session.async_payment_succeeded",
            ],
        ],
        "checkout.session.async_payment_failed" => &[
            PRICE,
            &[
                "payment_intent.created",
                "payment_intent.processing",
                "checkout.session.completed",
            ],
            &[
                "charge.failed",
                "payment_intent.payment_failed",
                "checkout.session.async_payment_failed",
            ],
        ],
        "customer.subscription.created" => &[SUBSCRIPTION],
        "customer.subscription.updated" => &[SUBSCRIPTION, &["customer.subscription.updated"]],
        "customer.subscription.deleted" => &[SUBSCRIPTION, &["customer.subscription.deleted"]],
        "invoice.paid" | "invoice.payment_succeeded" => &[INVOICE_PAID],
        "invoice.payment_failed" => &[&INVOICE_PAID[..5], DECLINED, &["invoice.payment_failed"]],
        other => panic!("no expectation for {other}"),
    };
    parts.concat()
}

const SUPPORTED: [&str; 17] = [
    "customer.created",
    "customer.updated",
    "payment_intent.created",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.succeeded",
    "charge.refunded",
    "checkout.session.completed",
    "checkout.session.expired",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
];

/// Reads objects back through stripe-python (its own client, the sandbox as `api_base`) and
/// prints what the test compares.
const PYTHON_READS: &str = r#"
import json, os, stripe
stripe.api_key = os.environ["KEY"]
stripe.api_base = os.environ["API"]
ids = json.loads(os.environ["IDS"])
out = {}
for kind, id in ids.items():
    cls = {"customer": stripe.Customer, "payment_intent": stripe.PaymentIntent, "charge": stripe.Charge,
           "subscription": stripe.Subscription, "invoice": stripe.Invoice,
           "checkout.session": stripe.checkout.Session}[kind]
    o = cls.retrieve(id).to_dict()
    out[kind] = {"id": o["id"], "object": o["object"], "status": o.get("status"), "description": o.get("description"),
                 "refunded": o.get("refunded"), "payment_status": o.get("payment_status")}
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_runs_every_supported_fixture_emitting_stripes_events_and_python_reads_the_objects()
{
    let cli = Cli::start(&[]);
    let http = reqwest::Client::new();
    let mut known: std::collections::HashSet<String> = Default::default();
    let mut last = std::collections::HashMap::new();
    for trigger in SUPPORTED {
        let o = cli.run(&["trigger", trigger]);
        assert_eq!(
            code(&o),
            0,
            "stripe trigger {trigger}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(
            stdout(&o).contains("Trigger succeeded!"),
            "{trigger}: {}",
            stdout(&o)
        );
        let new: Vec<Value> = cli
            .events(&http)
            .await
            .into_iter()
            .take_while(|e| !known.contains(e["id"].as_str().unwrap()))
            .collect();
        let types: Vec<&str> = new
            .iter()
            .rev()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            expected(trigger),
            "the events of stripe trigger {trigger}"
        );
        for e in &new {
            known.insert(e["id"].as_str().unwrap().to_owned());
            let object = &e["data"]["object"];
            last.insert(
                object["object"].as_str().unwrap().to_owned(),
                object["id"].as_str().unwrap().to_owned(),
            );
            assert_eq!(e["api_version"], stripe_ops::webhook::versions::API_VERSION);
        }
        let updated = new.iter().find(|e| e["type"] == "customer.updated");
        if let Some(e) = updated {
            assert_eq!(
                e["data"]["previous_attributes"],
                json!({"metadata": {"foo": null}})
            );
            assert_eq!(e["data"]["object"]["metadata"], json!({"foo": "bar"}));
        }
    }
    let ids: serde_json::Map<String, Value> = [
        "customer",
        "payment_intent",
        "charge",
        "subscription",
        "invoice",
        "checkout.session",
    ]
    .iter()
    .map(|k| (k.to_string(), json!(last[*k])))
    .collect();
    let (status, out, err) = run_python(
        PYTHON_READS,
        &[
            ("KEY", &cli.key),
            ("API", &cli.sandbox.stripe_api),
            ("IDS", &Value::Object(ids).to_string()),
        ],
    );
    assert_eq!(status, 0, "{err}");
    let read: Value = serde_json::from_str(&out).unwrap();
    // The last of each kind: the failed invoice's customer, its declined intent and charge; the
    // deleted trigger's subscription; the failed async checkout.
    assert_eq!(read["customer"]["description"], "(created by Stripe CLI)");
    assert_eq!(read["payment_intent"]["status"], "requires_payment_method");
    assert_eq!(read["charge"]["status"], "failed");
    assert_eq!(read["subscription"]["status"], "canceled");
    assert_eq!(read["invoice"]["status"], "open");
    assert_eq!(read["checkout.session"]["payment_status"], "unpaid");
    assert_eq!(read["checkout.session"]["status"], "complete");
}

#[test]
fn a_fixture_the_sandbox_does_not_implement_fails_with_stripes_404_which_the_cli_prints() {
    let cli = Cli::start(&[]);
    let o = cli.run(&["trigger", "setup_intent.created"]);
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        all.contains("status=404") && all.contains("Unrecognized request URL (POST: /v1/"),
        "{all}"
    );
}

#[test]
fn listen_then_fanout_then_three_receivers_one_with_its_own_secret_offline() {
    let cli = Cli::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cli_secret = cli.print_secret();
    let own = "whsec_ownsecretCCCCCCCCCCCCCCCCCCCCCCCC";
    let shop_a = Recorder::start(d, "a", Some(&cli_secret));
    let shop_b = Recorder::start(d, "b", Some(&cli_secret));
    let shop_c = Recorder::start(d, "c", Some(own));
    let fanout = Fanout::start_local(
        d,
        &[
            "--verify-secret-file",
            &secret_file(d, "incoming", &cli_secret),
            "--target",
            &target("a", &shop_a),
            "--target",
            &target("b", &shop_b),
            "--target",
            &target("c", &shop_c),
            "--target-secret-file",
            &format!("c={}", secret_file(d, "own", own)),
        ],
    );
    let _listen = cli.listen(&[
        "--events",
        "checkout.session.completed",
        "--forward-to",
        &fanout.webhook,
    ]);
    let o = cli.run(&["trigger", "checkout.session.completed"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = rt.block_on(cli.events(&reqwest::Client::new()));
    let id = events
        .iter()
        .find(|e| e["type"] == "checkout.session.completed")
        .expect("the trigger's event")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for shop in [&shop_a, &shop_b, &shop_c] {
        let got = shop.wait_for(std::slice::from_ref(&id));
        let mine: Vec<&Value> = got.iter().filter(|r| r["id"] == id.as_str()).collect();
        assert_eq!(mine.len(), 1, "{}: once: {got:?}", shop.url);
        assert_eq!(
            mine[0]["valid"], true,
            "{}: verified with stripe-python: {got:?}",
            shop.url
        );
    }
    fanout.wait_spool_empty();
    let events = rt.block_on(cli.events(&reqwest::Client::new()));
    let event = events.iter().find(|e| e["id"] == id.as_str()).unwrap();
    let attempts = listener_attempts(event);
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(
        attempts[0]["status"], 200,
        "the relay took it: {attempts:?}"
    );
}

#[test]
fn the_start_line_says_how_to_point_the_cli_at_the_sandbox_without_the_key() {
    let cli = Cli::start(&[]);
    assert_eq!(
        cli.sandbox.info["stripe_cli"],
        json!({"api_base": cli.sandbox.stripe_api, "api_key_env": "STRIPE_API_KEY"})
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sandbox.err");
    let mut human = bin();
    human
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
    let (_proc, first) = spawn_announcing(human);
    let api = first
        .split_whitespace()
        .nth(3)
        .expect("app URL stripe_api URL")
        .to_owned();
    let status = poll("the sandbox's start lines", WAIT, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("sandbox running").then_some(text)
    });
    let key_file = status
        .lines()
        .find_map(|l| l.strip_prefix("Stripe key in").map(|p| p.trim().to_owned()))
        .expect("the key file is named");
    let key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_owned();
    let line = status
        .lines()
        .find(|l| l.starts_with("Stripe CLI"))
        .expect("a Stripe CLI line");
    assert!(
        line.contains(&format!("STRIPE_API_KEY=\"$(cat {key_file})\""))
            && line.contains(&format!("--api-base {api}")),
        "{line}"
    );
    assert!(
        !status.contains(&key) && !first.contains(&key),
        "the key is never printed"
    );
}
