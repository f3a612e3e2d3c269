//! The official Stripe CLI (npm `@stripe/cli`, pinned in tests/receivers/package-lock.json)
//! against the sandbox, offline: `stripe listen` forwarding to a stripe-node receiver,
//! `stripe events resend`, a fixture the sandbox does not implement, and the chain this product
//! was born from: `stripe listen` -> `stripe-ops fanout` -> receivers. Every trigger: triggers.rs.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use super::*;
use crate::fanout::{Fanout, Recorder, secret_file, target};
use crate::receivers::{node, receivers_dir};

const WAIT: Duration = Duration::from_secs(30);

/// The sandbox's Stripe, and the CLI pointed at it with the key in STRIPE_API_KEY (the CLI
/// ignores STRIPE_API_BASE) and its own config folder, without telemetry or update checks.
pub(super) struct Cli {
    pub(super) sandbox: Sandbox,
    pub(super) key: String,
    home: tempfile::TempDir,
}

impl Cli {
    pub(super) fn start(args: &[&str]) -> Cli {
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
        self.command_at(args, &self.sandbox.stripe_api)
    }

    /// The CLI pointed at `api_base`. Nothing it does leaves the machine: `HTTP_PROXY` names a
    /// closed loopback port, `HTTPS_PROXY` the sandbox, which tunnels to
    /// `meter-events.stripe.com` only (trusted through `SSL_CERT_FILE`, the sandbox's CA) and
    /// refuses any other host (Go sends loopback requests without a proxy).
    pub(super) fn command_at(&self, args: &[&str], api_base: &str) -> Command {
        let closed = closed_url();
        let tunnel = &self.sandbox.info["stripe_cli"];
        let mut cmd = Command::new(stripe_binary());
        cmd.args(args)
            .args(["--api-base", api_base])
            .env("HTTP_PROXY", &closed)
            .env("HTTPS_PROXY", tunnel["https_proxy"].as_str().unwrap())
            .env("SSL_CERT_FILE", tunnel["ssl_cert_file"].as_str().unwrap())
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

    pub(super) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the Stripe CLI runs")
    }

    pub(super) fn print_secret(&self) -> String {
        let o = self.run(&["listen", "--print-secret"]);
        assert_eq!(code(&o), 0, "stripe listen --print-secret: {}", stderr(&o));
        stdout(&o).trim().to_owned()
    }

    /// `stripe listen ARGS`, once it says it is ready.
    pub(super) fn listen(&self, args: &[&str]) -> Listen {
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

    /// The account's events, newest first (at most 100), each with what the sandbox tried to
    /// deliver of it (`delivery_attempts`, its own record, fetched beside Stripe's object).
    async fn events(&self, http: &reqwest::Client) -> Vec<Value> {
        let get = |path: String| {
            let req = http
                .get(format!("{}{path}", self.sandbox.stripe_api))
                .bearer_auth(&self.key);
            async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
        };
        let v = get("/v1/events?limit=100".to_owned()).await;
        let mut events = v["data"].as_array().cloned().unwrap_or_default();
        for e in &mut events {
            let id = e["id"].as_str().unwrap().to_owned();
            e["delivery_attempts"] = get(attempts_path(&id)).await["delivery_attempts"].clone();
        }
        events
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
pub(super) struct Listen {
    _proc: Proc,
    log: PathBuf,
}

impl Listen {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `tests/receivers/recorder.js` (stripe-node's constructEvent) with `secret`.
pub(super) fn node_recorder(secret: &str, fail_first: bool) -> (Proc, String) {
    let mut cmd = node();
    cmd.arg(receivers_dir().join("recorder.js"))
        .current_dir(receivers_dir())
        .env("SECRET", secret)
        .env("FAIL_FIRST", if fail_first { "1" } else { "0" })
        .env("NODE_ENV", "test");
    let (proc, port) = spawn_announcing(cmd);
    (proc, format!("http://127.0.0.1:{port}"))
}

pub(super) async fn seen(http: &reqwest::Client, recorder: &str) -> Value {
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

#[test]
fn a_fixture_the_sandbox_does_not_implement_fails_with_stripes_404_which_the_cli_prints() {
    let cli = Cli::start(&[]);
    // Every trigger of the pinned CLI calls what the sandbox serves: a fixture of one's own, in
    // the CLI's format, calls what it does not (Terminal).
    let fixture = cli.home.path().join("terminal.json");
    std::fs::write(
        &fixture,
        json!({"_meta": {"template_version": 0}, "fixtures": [{"name": "location", "path": "/v1/terminal/locations",
            "method": "post", "params": {"display_name": "Shop"}}]})
        .to_string(),
    )
    .unwrap();
    let o = cli.run(&["fixtures", fixture.to_str().unwrap()]);
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
    let ca = cli.sandbox.info["stripe_cli"]["ssl_cert_file"].clone();
    assert!(
        ca.as_str().unwrap().ends_with("/meter_events_ca.pem"),
        "{ca}"
    );
    assert_eq!(
        cli.sandbox.info["stripe_cli"],
        json!({"api_base": cli.sandbox.stripe_api, "api_key_env": "STRIPE_API_KEY",
               "https_proxy": cli.sandbox.stripe_api, "ssl_cert_file": ca})
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
    let meters = status
        .lines()
        .find(|l| l.starts_with("meter events"))
        .expect("a meter events line");
    assert!(
        meters.contains(&format!("HTTPS_PROXY={api} SSL_CERT_FILE=")),
        "{meters}"
    );
    assert!(
        !status.contains(&key) && !first.contains(&key),
        "the key is never printed"
    );
}
