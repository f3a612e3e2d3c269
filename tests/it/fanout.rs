//! `stripe-ops fanout`: every event reaches every target, re-signed where asked, in order after
//! an outage, and nothing acknowledged is lost when the relay is killed with SIGKILL. Targets are
//! real HTTP servers on loopback: small Python receivers that check signatures with Stripe's own
//! library and record what they received, and (with the sandbox) the sandbox app itself.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use stripe_ops::webhook::fixtures::{Catalog, RenderOptions};
use stripe_ops::webhook::signature::Signer;

use crate::common::*;

pub(crate) const INCOMING: &str = "whsec_fanoutINCOMINGincoming0123456789ab";
const SECRET_B: &str = "whsec_fanoutBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
const WAIT: Duration = Duration::from_secs(30);

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn client() -> &'static reqwest::Client {
    static C: OnceLock<reqwest::Client> = OnceLock::new();
    C.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    })
}

fn get_json(url: &str) -> Value {
    rt().block_on(async { client().get(url).send().await?.json().await })
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// POSTs an event the way Stripe does; `Err` when the relay could not be reached.
pub(crate) fn post(url: &str, body: &str, header: &str) -> Result<(u16, Value), String> {
    rt().block_on(async {
        let resp = client()
            .post(url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Stripe-Signature", header)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let v = resp.json().await.map_err(|e| e.to_string())?;
        Ok((status, v))
    })
}

/// A fresh `event_type` event signed with `secret`: (id, body, Stripe-Signature).
pub(crate) fn signed(event_type: &str, secret: &str, sets: &[&str]) -> (String, String, String) {
    render_signed(
        event_type,
        secret,
        RenderOptions {
            sets: sets.iter().map(|s| s.parse().unwrap()).collect(),
            ..Default::default()
        },
    )
}

fn render_signed(event_type: &str, secret: &str, opts: RenderOptions) -> (String, String, String) {
    let prepared = Catalog::load(None)
        .unwrap()
        .prepare(event_type, &opts)
        .unwrap();
    let e =
        stripe_ops::webhook::sign_event(&prepared, &[Signer::new(secret.as_bytes())], None, None);
    (e.id, e.body, e.header)
}

/// A webhook receiver written with Stripe's library: with `SECRET` it verifies (400 when that
/// fails), and it appends one JSON line per request to `OUT`. `DELAY` makes it slow (and records
/// when each request started); `THREADED` serves requests concurrently; `FLAKY` answers 500 the
/// first time it sees an event id.
const RECORDER: &str = r#"
import http.server, json, os, sys, time
secret = os.environ.get("SECRET")
if secret:
    import stripe
out = open(os.environ["OUT"], "a")
delay = float(os.environ.get("DELAY", "0"))
flaky, seen, lock = os.environ.get("FLAKY"), set(), __import__("threading").Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
        rec = {"sig": self.headers.get("Stripe-Signature"), "content_type": self.headers.get("Content-Type"),
               "team": self.headers.get("X-Team"), "path": self.path}
        try:
            rec["id"] = json.loads(body).get("id")
        except Exception:
            rec["id"] = None
        status = 200
        if flaky:
            with lock:
                if rec["id"] not in seen:
                    seen.add(rec["id"]); status = 500
            rec["status"] = status
        if secret:
            try:
                stripe.Webhook.construct_event(body, rec["sig"], secret)
                rec["valid"] = True
            except Exception as e:
                rec["valid"] = False
                rec["error"] = str(e)
                status = 400
        if delay:
            out.write(json.dumps({"started": rec["id"]}) + "\n"); out.flush()
            time.sleep(delay)
        out.write(json.dumps(rec) + "\n"); out.flush()
        self.send_response(status); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
server = http.server.ThreadingHTTPServer if os.environ.get("THREADED") else http.server.HTTPServer
s = server(("127.0.0.1", int(os.environ.get("PORT", "0"))), H)
if os.environ.get("TLS_CERT"):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.environ["TLS_CERT"], os.environ["TLS_KEY"])
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

pub(crate) struct Recorder {
    pub(crate) url: String,
    out: PathBuf,
    _proc: Proc,
}

impl Recorder {
    pub(crate) fn start(dir: &Path, name: &str, secret: Option<&str>) -> Recorder {
        Self::start_with(dir, name, secret, 0, &[])
    }

    pub(crate) fn start_with(
        dir: &Path,
        name: &str,
        secret: Option<&str>,
        port: u16,
        env: &[(&str, &str)],
    ) -> Recorder {
        let out = dir.join(format!("{name}.jsonl"));
        let mut cmd = python();
        cmd.arg("-c")
            .arg(RECORDER)
            .env("OUT", &out)
            .env("PORT", port.to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::piped());
        if let Some(s) = secret {
            cmd.env("SECRET", s);
        }
        let mut child = cmd.spawn().expect("python receiver starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let proc = Proc(child);
        let port = line
            .trim()
            .parse::<u16>()
            .expect("receiver prints its port");
        Recorder {
            url: format!("http://127.0.0.1:{port}/hook"),
            out,
            _proc: proc,
        }
    }

    /// The file it appends its records to.
    pub(crate) fn out_path(&self) -> &Path {
        &self.out
    }

    /// Every request recorded so far (in arrival order).
    pub(crate) fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("started").is_none())
            .collect()
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        self.received()
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect()
    }

    /// Waits until every id in `ids` was received; returns all records.
    pub(crate) fn wait_for(&self, ids: &[String]) -> Vec<Value> {
        poll(
            &format!("{} to receive {} events", self.url, ids.len()),
            WAIT,
            || {
                let got = self.ids();
                ids.iter()
                    .all(|id| got.contains(id))
                    .then(|| self.received())
            },
        )
    }
}

pub(crate) struct Fanout {
    pub(crate) url: String,
    pub(crate) webhook: String,
    pub(crate) start: Value,
    log: PathBuf,
    proc: Proc,
}

impl Fanout {
    pub(crate) fn start(dir: &Path, args: &[&str]) -> Fanout {
        Self::start_with(bin(), dir, args)
    }

    /// A relay on a free port with its spool in `dir/spool`.
    pub(crate) fn start_local(dir: &Path, args: &[&str]) -> Fanout {
        let spool = dir.join("spool");
        let local = [
            "--listen",
            "127.0.0.1:0",
            "--spool",
            spool.to_str().unwrap(),
        ];
        Self::start(dir, &[&local[..], args].concat())
    }

    pub(crate) fn start_with(mut cmd: std::process::Command, dir: &Path, args: &[&str]) -> Fanout {
        let log = dir.join(format!("fanout-{}.log", random_tag()));
        let mut child = cmd
            .args(["--json", "fanout"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(&log).unwrap()))
            .spawn()
            .expect("fanout starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let proc = Proc(child);
        let start: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "fanout start line {line:?} is not JSON ({e}); log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Fanout {
            url: start["listen"].as_str().unwrap().to_owned(),
            webhook: start["webhook"].as_str().unwrap().to_owned(),
            start,
            log,
            proc,
        }
    }

    pub(crate) fn status(&self) -> Value {
        get_json(&format!("{}/status", self.url))
    }

    fn target(&self, name: &str) -> Value {
        self.status()["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once `done` holds for it: the relay writes its log from its own thread, in
    /// batches up to 10 ms after a line is logged, so what /status already counts may not be in
    /// the log yet.
    pub(crate) fn log_when(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        poll(&format!("the relay's log to show {what}"), WAIT, || {
            let log = self.log();
            done(&log).then_some(log)
        })
    }

    /// The log once it says `needle`.
    pub(crate) fn log_saying(&self, needle: &str) -> String {
        self.log_when(&format!("{needle:?}"), |log| log.contains(needle))
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.proc.0.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits for the relay to exit; returns its exit code.
    pub(crate) fn wait_exit(&mut self) -> i32 {
        poll("fanout to exit", WAIT, || self.proc.0.try_wait().unwrap())
            .code()
            .unwrap_or(-1)
    }

    /// Waits until the spool holds no event (everything delivered everywhere).
    pub(crate) fn wait_spool_empty(&self) {
        poll("the spool to empty", WAIT, || {
            (self.status()["spool"]["events"] == 0).then_some(())
        });
    }
}

/// Waits until the spool's segment files are deleted (shortly after everything was delivered).
fn wait_no_segments(spool: &Path) {
    poll("the spool's segments to be deleted", WAIT, || {
        (std::fs::read_dir(spool.join("events")).unwrap().count() == 0).then_some(())
    });
}

fn random_tag() -> String {
    stripe_ops::secret::random_alnum(6)
}

pub(crate) fn secret_file(dir: &Path, name: &str, secret: &str) -> String {
    write_file(dir, name, &format!("{secret}\n"))
        .display()
        .to_string()
}

pub(crate) fn target(name: &str, r: &Recorder) -> String {
    format!("{name}={}", r.url)
}

#[test]
fn an_event_reaches_every_target_and_resigned_targets_verify_with_their_own_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let incoming = secret_file(d, "incoming", INCOMING);
    let b_secret = secret_file(d, "b", SECRET_B);
    let c_secret = secret_file(d, "c", CANARY_WHSEC);
    let a = Recorder::start(d, "a", Some(INCOMING));
    let b = Recorder::start(d, "b", Some(SECRET_B));
    let c = Recorder::start(d, "c", Some(CANARY_WHSEC));
    let config = write_file(
        d,
        "stripe-ops.toml",
        &format!(
            "[fanout]\n[[fanout.target]]\nname = \"c\"\nurl = \"{}\"\nsecret_file = \"{c_secret}\"\nheaders = {{ X-Team = \"blue\" }}\n",
            c.url
        ),
    );
    let spool = d.join("spool");
    let mut cmd = bin();
    cmd.env("STRIPE_OPS_CONFIG", &config);
    let relay = Fanout::start_with(
        cmd,
        d,
        &[
            "--listen",
            "127.0.0.1:0",
            "--spool",
            spool.to_str().unwrap(),
            "--verify-secret-file",
            &incoming,
            "--target",
            &target("a", &a),
            "--target",
            &target("b", &b),
            "--target-secret-file",
            &format!("b={b_secret}"),
        ],
    );
    assert_eq!(relay.start["targets"][0]["resigned"], false);
    assert_eq!(relay.start["targets"][1]["resigned"], true);
    assert_eq!(relay.start["targets"][2]["name"], "c");
    assert_eq!(get_json(&format!("{}/health", relay.url))["ok"], true);

    let (id, body, header) = signed("invoice.paid", INCOMING, &[]);
    let (status, answer) = post(&relay.webhook, &body, &header).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["received"], true);
    assert_eq!(answer["event_id"], id.as_str());
    let results = answer["targets"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    for t in results {
        assert_eq!(t["ok"], true, "{answer}");
        assert_eq!(t["status"], 200);
        assert!(t["ms"].as_f64().unwrap() >= 0.0);
    }

    let ids = vec![id.clone()];
    let at_a = a.wait_for(&ids);
    let at_b = b.wait_for(&ids);
    let at_c = c.wait_for(&ids);
    for got in [&at_a, &at_b, &at_c] {
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["valid"], true, "{got:?}");
        assert_eq!(got[0]["content_type"], "application/json; charset=utf-8");
    }
    // passed through unchanged to a; re-signed (fresh signature, own secret) for b and c
    assert_eq!(at_a[0]["sig"], header.as_str());
    assert_ne!(at_b[0]["sig"], header.as_str());
    assert_ne!(at_c[0]["sig"], at_b[0]["sig"]);
    assert_eq!(at_c[0]["team"], "blue");
    assert_eq!(at_a[0]["team"], Value::Null);

    relay.wait_spool_empty();
    wait_no_segments(&spool);
    let status = relay.status();
    for t in status["targets"].as_array().unwrap() {
        assert_eq!(t["delivered"], 1, "{status}");
        assert_eq!(t["pending"], 0);
        assert_eq!(t["failing_since"], Value::Null);
        assert_eq!(t["last_error"], Value::Null);
    }
    assert_eq!(status["received"], 1);
    let log = relay.log_when("the three deliveries", |log| {
        ["a", "b", "c"]
            .iter()
            .all(|n| log.contains(&format!("target {n} {id} #1: delivered")))
    });
    assert!(log.contains(&format!("event {id} #1: received")), "{log}");
    for name in ["a", "b", "c"] {
        assert!(
            log.contains(&format!("target {name} {id} #1: delivered, 200")),
            "{log}"
        );
    }
    assert!(!log.contains(CANARY_WHSEC) && !log.contains(INCOMING) && !log.contains(SECRET_B));
}

#[test]
fn a_bad_incoming_signature_is_401_and_forwards_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let incoming = secret_file(d, "incoming", INCOMING);
    let a = Recorder::start(d, "a", None);
    let relay = Fanout::start_local(
        d,
        &[
            "--verify-secret-file",
            &incoming,
            "--target",
            &target("a", &a),
        ],
    );
    let (bad_id, body, header) = signed("charge.succeeded", SECRET_B, &[]);
    let (status, answer) = post(&relay.webhook, &body, &header).unwrap();
    assert_eq!(status, 401);
    assert_eq!(answer["received"], false);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no signature matched"),
        "{answer}"
    );
    let (_, old_body, _) = signed("charge.succeeded", INCOMING, &[]);
    let stale = format!(
        "t=1000,v1={}",
        Signer::new(INCOMING.as_bytes()).sign_hex(1000, old_body.as_bytes())
    );
    let (status, answer) = post(&relay.webhook, &old_body, &stale).unwrap();
    assert_eq!(status, 401);
    assert!(
        answer["error"].as_str().unwrap().contains("tolerance"),
        "{answer}"
    );
    let (status, _) = post(&relay.webhook, &body, "").unwrap();
    assert_eq!(status, 401);
    // An id from the network cannot forge a log line or move the terminal's cursor.
    let forged =
        r#"{"id": "evt_x\n2026-01-01T00:00:00Z target a evt_forged #9: delivered\u001b[2K"}"#;
    let (status, _) = post(&relay.webhook, forged, "t=1,v1=00").unwrap();
    assert_eq!(status, 401);

    // a good event afterwards arrives alone: the rejected ones were never forwarded or spooled
    let (good_id, body, header) = signed("charge.succeeded", INCOMING, &[]);
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);
    a.wait_for(std::slice::from_ref(&good_id));
    assert_eq!(a.ids(), vec![good_id]);
    let status = relay.status();
    assert_eq!(status["rejected"], 4);
    let log = relay.log_when("the rejections", |log| {
        log.contains(&format!("event {bad_id} REJECTED: no signature matched"))
            && log.contains(r"evt_x\n2026-01-01T00:00:00Z")
    });
    assert!(
        !log.contains('\u{1b}'),
        "a terminal escape reached the log:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a forged line:\n{log}"
    );
    assert!(log.contains(r"evt_x\n2026-01-01T00:00:00Z"), "{log}");
    assert_eq!(status["received"], 1);
    assert_eq!(status["spool"]["last_seq"], 1);
    assert!(
        relay
            .log()
            .contains(&format!("event {bad_id} REJECTED: no signature matched"))
    );
}

#[test]
fn events_of_another_api_version_than_the_targets_expect_are_forwarded_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = Recorder::start(d, "a", None);
    let relay = Fanout::start_local(
        d,
        &[
            "--target",
            &target("a", &a),
            "--api-version",
            "2025-03-31.basil",
        ],
    );
    let (same, body, header) = render_signed(
        "invoice.paid",
        INCOMING,
        RenderOptions {
            api_version: Some("2025-03-31.basil".into()),
            ..Default::default()
        },
    );
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);
    let (other, body, header) = signed("invoice.paid", INCOMING, &[]);
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);
    let (thin, body, header) = signed("v1.invoice.paid", INCOMING, &[]);
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);
    a.wait_for(&[same.clone(), other.clone(), thin.clone()]);
    let status = relay.status();
    assert_eq!(
        status["api_version"],
        serde_json::json!({"expected": "2025-03-31.basil", "other": 1}),
        "{status}"
    );
    let log = relay.log_saying(&format!("event {other} names API version"));
    assert!(
        log.contains(&format!(
            "event {other} names API version 2026-11-18.endive, not 2025-03-31.basil (--api-version): forwarded unchanged"
        )),
        "{log}"
    );
    assert!(!log.contains(&format!("event {same} names")), "{log}");
}

#[test]
fn a_target_that_is_down_gets_every_event_in_order_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let live = Recorder::start(d, "live", None);
    let late_port = free_port();
    let relay = Fanout::start_local(
        d,
        &[
            "--target",
            &target("live", &live),
            "--target",
            &format!("late=http://127.0.0.1:{late_port}/hook"),
            "--retry-base",
            "20ms",
            "--retry-max",
            "200ms",
        ],
    );
    let mut sent = Vec::new();
    for i in 0..12 {
        let (id, body, header) = signed("customer.created", INCOMING, &[]);
        let (status, answer) = post(&relay.webhook, &body, &header).unwrap();
        assert_eq!(status, 200, "{answer}");
        let late = &answer["targets"][0];
        assert_eq!(late["name"], "late", "targets are listed by name");
        assert_eq!(late["ok"], false, "{answer}");
        if i == 0 {
            assert!(
                late["error"]
                    .as_str()
                    .unwrap()
                    .contains("could not connect"),
                "{answer}"
            );
        }
        sent.push(id);
    }
    live.wait_for(&sent);
    let late = relay.target("late");
    assert_eq!(late["pending"], 12, "{late}");
    assert_eq!(late["delivered"], 0);
    assert!(late["failing_since"].is_string(), "{late}");
    assert!(
        late["last_error"]
            .as_str()
            .unwrap()
            .contains("could not connect")
    );
    assert_eq!(relay.status()["spool"]["events"], 12);

    let back = Recorder::start_with(d, "late", None, late_port, &[]);
    let got = back.wait_for(&sent);
    let mut first_seen: Vec<String> = Vec::new();
    for r in &got {
        let id = r["id"].as_str().unwrap().to_owned();
        if !first_seen.contains(&id) {
            first_seen.push(id);
        }
    }
    assert_eq!(first_seen, sent, "delivered out of order");
    relay.wait_spool_empty();
    let late = relay.target("late");
    assert_eq!(late["delivered"], 12);
    assert_eq!(late["failing_since"], Value::Null);
    relay.log_saying("target late");
}

#[test]
fn usage_errors_exit_2_and_a_busy_port_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spool = d.join("spool");
    let spool = spool.to_str().unwrap();
    let whsec = secret_file(d, "whsec", SECRET_B);
    let cases: [(&[&str], &str); 9] = [
        (
            &[
                "--spool",
                spool,
                "--target",
                "a=http://x",
                "--target-secret-file",
                &format!("a={whsec}"),
            ],
            "incoming events must be verified",
        ),
        (&["--spool", spool], "no targets"),
        (&["--target", "nameless"], "NAME=VALUE"),
        (
            &[
                "--spool",
                spool,
                "--target",
                "a=http://x",
                "--target",
                "a=http://y",
            ],
            "defined twice",
        ),
        (
            &["--spool", spool, "--target", "a=ftp://x"],
            "http or https",
        ),
        (
            &[
                "--spool",
                spool,
                "--target",
                "a=http://x",
                "--target-secret-file",
                "a=/nonexistent",
            ],
            "cannot read target a webhook secret file",
        ),
        (
            &[
                "--spool",
                spool,
                "--target",
                "a=http://x",
                "--target-events",
                "zz=invoice.*",
            ],
            "--target-events names zz, which is not a --target",
        ),
        (
            &[
                "--spool",
                spool,
                "--target",
                "a=http://x",
                "--target-match",
                "a=data..x=1",
            ],
            "is not a dotted path",
        ),
        (
            &[
                "--spool",
                spool,
                "--target",
                "a=http://x",
                "--target-match",
                "a=nopath",
            ],
            "NAME=PATH=VALUE",
        ),
    ];
    for (args, message) in cases {
        let o = run(&[&["fanout", "--listen", "127.0.0.1:0"], args].concat());
        assert_code(&o, 2);
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
    }
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let o = run(&[
        "fanout",
        "--listen",
        &addr,
        "--spool",
        spool,
        "--target",
        "a=http://127.0.0.1:9/",
    ]);
    assert_code(&o, 3);
    assert!(stderr(&o).contains("cannot listen on"), "{}", stderr(&o));

    let _running = Fanout::start(
        d,
        &[
            "--listen",
            "127.0.0.1:0",
            "--spool",
            spool,
            "--target",
            "a=http://127.0.0.1:9/",
        ],
    );
    let o = run(&[
        "fanout",
        "--listen",
        "127.0.0.1:0",
        "--spool",
        spool,
        "--target",
        "a=http://127.0.0.1:9/",
    ]);
    assert_code(&o, 3);
    assert!(
        stderr(&o).contains("in use by another fanout process"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn killed_with_sigkill_mid_stream_and_restarted_it_loses_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = Recorder::start(d, "a", None);
    let b_secret = secret_file(d, "b", SECRET_B);
    let b = Recorder::start(d, "b", Some(SECRET_B));
    let c_port = free_port();
    let listen = format!("127.0.0.1:{}", free_port());
    let spool = d.join("spool");
    let incoming = secret_file(d, "incoming", INCOMING);
    let args_owned = [
        "--verify-secret-file".to_owned(),
        incoming,
        "--listen".into(),
        listen,
        "--spool".into(),
        spool.display().to_string(),
        "--target".into(),
        target("a", &a),
        "--target".into(),
        target("b", &b),
        "--target-secret-file".into(),
        format!("b={b_secret}"),
        "--target".into(),
        format!("c=http://127.0.0.1:{c_port}/hook"),
        "--retry-base".into(),
        "20ms".into(),
        "--retry-max".into(),
        "200ms".into(),
    ];
    let args: Vec<&str> = args_owned.iter().map(String::as_str).collect();
    let mut relay = Fanout::start(d, &args);
    let webhook = relay.webhook.clone();

    // A sender posting without pause; only answered (200) events count as handed over.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (acked, stop) = (acked.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (id, body, header) = signed("payment_intent.succeeded", INCOMING, &[]);
                if let Ok((200, _)) = post(&webhook, &body, &header) {
                    acked.lock().unwrap().push(id);
                }
            }
        })
    };
    let count = || acked.lock().unwrap().len();
    poll("20 events answered", WAIT, || (count() >= 20).then_some(()));
    relay.signal("KILL");
    assert_eq!(relay.wait_exit(), -1, "killed by a signal");
    let before_restart = count();

    let relay = Fanout::start(d, &args);
    let recovered = relay.start["recovered"].as_u64().unwrap();
    assert!(
        recovered >= 20,
        "target c was down, so at least the 20 answered events are still spooled: {recovered}"
    );
    poll("more events after the restart", WAIT, || {
        (count() >= before_restart + 10).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let c = Recorder::start_with(d, "c", None, c_port, &[]);

    let all = acked.lock().unwrap().clone();
    for r in [&a, &b, &c] {
        r.wait_for(&all);
    }
    assert!(b.received().iter().all(|r| r["valid"] == true));
    relay.wait_spool_empty();
    wait_no_segments(&spool);
}

#[test]
fn sighup_reloads_targets_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = Recorder::start(d, "a", None);
    let b = Recorder::start(d, "b", Some(SECRET_B));
    let b_secret = secret_file(d, "b", SECRET_B);
    let spool = d.join("spool");
    let entry = |name: &str, url: &str, extra: &str| {
        format!("[[fanout.target]]\nname = \"{name}\"\nurl = \"{url}\"\n{extra}\n")
    };
    let config_a = format!(
        "[fanout]\nlisten = \"127.0.0.1:0\"\nspool = \"{}\"\n{}",
        spool.display(),
        entry("a", &a.url, "")
    );
    let config = write_file(d, "stripe-ops.toml", &config_a);
    let incoming = secret_file(d, "incoming", INCOMING);
    let mut cmd = bin();
    cmd.env("STRIPE_OPS_CONFIG", &config);
    let relay = Fanout::start_with(cmd, d, &["--verify-secret-file", &incoming]);
    let names = |relay: &Fanout| -> Vec<String> {
        relay.status()["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&relay), ["a"]);
    let (first, body, header) = signed("customer.created", INCOMING, &[]);
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);

    let with_b = format!(
        "{config_a}{}",
        entry("b", &b.url, &format!("secret_file = \"{b_secret}\""))
    );
    write_file(d, "stripe-ops.toml", &with_b);
    relay.signal("HUP");
    poll("b to be added", WAIT, || {
        (names(&relay) == ["a", "b"]).then_some(())
    });
    let (second, body, header) = signed("customer.created", INCOMING, &[]);
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);
    b.wait_for(std::slice::from_ref(&second));
    assert_eq!(
        b.ids(),
        vec![second.clone()],
        "a new target gets events from now on"
    );
    assert_eq!(b.received()[0]["valid"], true);
    a.wait_for(&[first, second]);
    poll("the reload to be logged", WAIT, || {
        relay.log().contains("reloaded: added [b]").then_some(())
    });

    write_file(d, "stripe-ops.toml", "[fanout\nbroken");
    relay.signal("HUP");
    poll("the failed reload to be logged", WAIT, || {
        relay
            .log()
            .contains("reload FAILED, keeping the current targets")
            .then_some(())
    });
    assert_eq!(names(&relay), ["a", "b"]);

    write_file(
        d,
        "stripe-ops.toml",
        &format!(
            "[fanout]\n{}",
            entry("b", &b.url, &format!("secret_file = \"{b_secret}\""))
        ),
    );
    relay.signal("HUP");
    poll("a to be removed", WAIT, || {
        (names(&relay) == ["b"]).then_some(())
    });
    assert!(!spool.join("cursors").join("a").exists());
    assert!(spool.join("cursors").join("b").exists());
}

#[test]
fn sigterm_finishes_the_delivery_in_flight_and_ctrl_c_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slow = Recorder::start_with(d, "slow", None, 0, &[("DELAY", "1.5")]);
    let spool = d.join("spool");
    let mut relay = Fanout::start(
        d,
        &[
            "--listen",
            "127.0.0.1:0",
            "--spool",
            spool.to_str().unwrap(),
            "--target",
            &target("slow", &slow),
            "--summary-wait",
            "50ms",
        ],
    );
    let (id, body, header) = signed("charge.refunded", INCOMING, &[]);
    let (status, answer) = post(&relay.webhook, &body, &header).unwrap();
    assert_eq!(status, 200);
    assert_eq!(answer["targets"][0]["pending"], true, "{answer}");
    poll("the slow target to start receiving", WAIT, || {
        std::fs::read_to_string(&slow.out)
            .unwrap_or_default()
            .contains("started")
            .then_some(())
    });
    relay.signal("TERM");
    assert_eq!(relay.wait_exit(), 0, "{}", relay.log());
    assert_eq!(slow.ids(), vec![id], "the delivery in flight was finished");
    assert_eq!(
        std::fs::read_dir(spool.join("events")).unwrap().count(),
        0,
        "and recorded as done"
    );
    assert!(relay.log().contains("stopped"));

    let mut relay = Fanout::start(
        d,
        &[
            "--listen",
            "127.0.0.1:0",
            "--spool",
            spool.to_str().unwrap(),
            "--target",
            &target("slow", &slow),
        ],
    );
    assert_eq!(relay.start["recovered"], 0);
    relay.signal("INT");
    assert_eq!(relay.wait_exit(), 130);
}

#[test]
fn a_healthy_target_gets_at_most_in_flight_deliveries_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slow = Recorder::start_with(d, "slow", None, 0, &[("DELAY", "0.4"), ("THREADED", "1")]);
    let relay = Fanout::start_local(d, &["--target", &target("slow", &slow), "--in-flight", "3"]);
    let events: Vec<_> = (0..8)
        .map(|_| signed("customer.created", INCOMING, &[]))
        .collect();
    let answers: Vec<_> = std::thread::scope(|s| {
        let sends: Vec<_> = events
            .iter()
            .map(|(_, body, header)| s.spawn(|| post(&relay.webhook, body, header)))
            .collect();
        sends.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for answer in answers {
        let (status, answer) = answer.unwrap();
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["targets"][0]["ok"], true, "{answer}");
    }
    let ids: Vec<String> = events.iter().map(|(id, _, _)| id.clone()).collect();
    slow.wait_for(&ids);
    // Replay the receiver's log: +1 when a request started, -1 when it finished.
    let (mut now, mut most) = (0i32, 0i32);
    for line in std::fs::read_to_string(&slow.out).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        now += if v.get("started").is_some() { 1 } else { -1 };
        most = most.max(now);
    }
    assert_eq!(most, 3, "deliveries in flight at once");
    relay.wait_spool_empty();
    assert_eq!(relay.target("slow")["delivered"], 8);
}

#[test]
fn failures_among_concurrent_deliveries_are_retried_in_order_and_each_event_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let flaky = Recorder::start_with(d, "flaky", None, 0, &[("FLAKY", "1"), ("THREADED", "1")]);
    let relay = Fanout::start_local(
        d,
        &[
            "--target",
            &target("flaky", &flaky),
            "--in-flight",
            "4",
            "--retry-base",
            "10ms",
            "--retry-max",
            "50ms",
        ],
    );
    let events: Vec<_> = (0..10)
        .map(|_| signed("invoice.paid", INCOMING, &[]))
        .collect();
    std::thread::scope(|s| {
        for (_, body, header) in &events {
            s.spawn(|| assert_eq!(post(&relay.webhook, body, header).unwrap().0, 200));
        }
    });
    relay.wait_spool_empty();
    let t = relay.target("flaky");
    assert_eq!(
        (t["delivered"].clone(), t["pending"].clone()),
        (10.into(), 0.into()),
        "{t}"
    );
    assert_eq!(t["failed_attempts"], 10, "each event failed once: {t}");
    assert_eq!(t["failing_since"], Value::Null, "{t}");
    assert_eq!(t["cursor"], relay.status()["spool"]["last_seq"], "{t}");
    let got = flaky.received();
    for (id, _, _) in &events {
        let statuses: Vec<&Value> = got
            .iter()
            .filter(|r| r["id"] == id.as_str())
            .map(|r| &r["status"])
            .collect();
        assert_eq!(statuses, [&Value::from(500), &Value::from(200)], "{id}");
    }
    // Once the target failed, events went one at a time, in order: the successful deliveries
    // arrive in sequence order (the order the relay gave them).
    let log = relay.log_when("the ten deliveries", |log| {
        log.lines()
            .filter(|l| l.contains("target flaky") && l.contains(": delivered"))
            .count()
            == 10
    });
    let delivered: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("target flaky") && l.contains(": delivered"))
        .map(|l| {
            let hash = l.find(" #").unwrap() + 2;
            l[hash..].split(':').next().unwrap().parse().unwrap()
        })
        .collect();
    let mut sorted = delivered.clone();
    sorted.sort();
    assert_eq!(delivered, sorted, "{log}");
}

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

#[test]
fn an_event_older_than_max_age_is_given_up_and_leaves_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let relay = Fanout::start_local(
        d,
        &[
            "--target",
            &format!("gone={}/hook", closed_url()),
            "--max-age",
            "300ms",
            "--retry-base",
            "20ms",
            "--retry-max",
            "50ms",
        ],
    );
    let (id, body, header) = signed("invoice.payment_failed", INCOMING, &[]);
    assert_eq!(post(&relay.webhook, &body, &header).unwrap().0, 200);
    poll("the event to be given up", WAIT, || {
        (relay.target("gone")["gave_up"] == 1).then_some(())
    });
    relay.wait_spool_empty();
    let gone = relay.target("gone");
    assert_eq!(gone["delivered"], 0);
    assert_eq!(gone["pending"], 0);
    assert!(gone["failed_attempts"].as_u64().unwrap() >= 1);
    relay.log_saying(&format!("target gone {id} #1: GAVE UP, older than max-age"));
}

#[test]
fn a_self_signed_target_needs_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = self_signed_certificate(d);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let tls = Recorder::start_with(d, "tls", None, 0, &[("TLS_CERT", cert), ("TLS_KEY", key)]);
    let url = tls.url.replace("http://", "https://");
    for (insecure, expect_ok) in [(false, false), (true, true)] {
        let spool = d.join(format!("spool-{insecure}"));
        let mut args = vec![
            "--listen".to_owned(),
            "127.0.0.1:0".into(),
            "--spool".into(),
            spool.display().to_string(),
            "--target".into(),
            format!("tls={url}"),
        ];
        if insecure {
            args.push("--insecure".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let relay = Fanout::start(d, &args);
        let (id, body, header) = signed("charge.succeeded", INCOMING, &[]);
        let (status, answer) = post(&relay.webhook, &body, &header).unwrap();
        assert_eq!(status, 200);
        assert_eq!(answer["targets"][0]["ok"], expect_ok, "{answer}");
        if expect_ok {
            tls.wait_for(&[id]);
            relay.log_saying("TLS certificates of targets are not checked");
        } else {
            let error = answer["targets"][0]["error"]
                .as_str()
                .unwrap()
                .to_lowercase();
            assert!(error.contains("certificate"), "{error}");
            assert!(!tls.ids().contains(&id));
        }
    }
}

/// A `event_type` event for the deployment at `origin` (`data.object.metadata.siteOrigin`).
fn for_site(event_type: &str, origin: &str) -> (String, String, String) {
    let opts = RenderOptions {
        sets: vec![
            format!("data.object.metadata.siteOrigin={origin}")
                .parse()
                .unwrap(),
        ],
        create_path: true,
        ..Default::default()
    };
    render_signed(event_type, INCOMING, opts)
}

/// The seed case: developers' deployments share one Stripe test account; each gets the events
/// of its own site. James is routed by flags, Ana by the config (reloaded with SIGHUP). Nothing
/// a route excludes is delivered, nothing it includes is lost across a SIGHUP and a SIGKILL,
/// and an event no route lets through is answered without being spooled.
#[test]
fn routed_targets_get_only_their_events_across_a_sighup_and_a_sigkill() {
    const JAMES: &str = "https://james.example";
    const ANA: &str = "https://ana.example";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ana = Recorder::start(d, "ana", None);
    let james_port = free_port();
    let james_url = format!("http://127.0.0.1:{james_port}/hook");
    let spool = d.join("spool");
    let config_with = |ana_events: &str| {
        format!(
            "[fanout]\nlisten = \"127.0.0.1:{}\"\nspool = \"{}\"\n[[fanout.target]]\nname = \"ana\"\nurl = \"{}\"\nevents = [{ana_events}]\nmatch = {{ \"data.object.metadata.siteOrigin\" = [\"{ANA}\", \"https://ana2.example\"] }}\n",
            free_port(),
            spool.display(),
            ana.url
        )
    };
    let config = write_file(d, "stripe-ops.toml", &config_with("\"checkout.session.*\""));
    let incoming = secret_file(d, "incoming", INCOMING);
    let relay_args = [
        "--verify-secret-file",
        incoming.as_str(),
        "--target",
        &format!("james={james_url}"),
        "--target-events",
        "james=checkout.session.*,invoice.paid",
        "--target-match",
        &format!("james=data.object.metadata.siteOrigin={JAMES}"),
        "--retry-base",
        "20ms",
        "--retry-max",
        "200ms",
    ]
    .map(str::to_owned);
    let start = |config: &Path| {
        let mut cmd = bin();
        cmd.env("STRIPE_OPS_CONFIG", config);
        let args: Vec<&str> = relay_args.iter().map(String::as_str).collect();
        Fanout::start_with(cmd, d, &args)
    };
    let mut relay = start(&config);
    let send = |relay: &Fanout, event: (String, String, String)| -> (String, Value) {
        let (id, body, header) = event;
        let (status, answer) = post(&relay.webhook, &body, &header).unwrap();
        assert_eq!(status, 200, "{answer}");
        (id, answer)
    };
    let filtered_for = |answer: &Value, name: &str| {
        answer["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == name && t["filtered"] == true)
    };

    // James is down: his events wait in the spool; Ana's are delivered.
    let (j1, a) = send(&relay, for_site("checkout.session.completed", JAMES));
    assert!(filtered_for(&a, "ana") && a["spooled"] == true, "{a}");
    let (a1, a) = send(&relay, for_site("checkout.session.completed", ANA));
    assert!(filtered_for(&a, "james"), "{a}");
    let (j2, _) = send(&relay, for_site("invoice.paid", JAMES));
    let (_, a) = send(&relay, for_site("invoice.paid", ANA));
    assert_eq!(a["spooled"], false, "no route lets it through: {a}");
    assert!(filtered_for(&a, "ana") && filtered_for(&a, "james"), "{a}");
    let (_, a) = send(&relay, for_site("customer.created", JAMES));
    assert_eq!(a["spooled"], false, "{a}");
    ana.wait_for(std::slice::from_ref(&a1));
    assert_eq!(relay.status()["filtered"], 2);
    assert_eq!(relay.target("ana")["filtered"], 2, "{}", relay.status());
    assert_eq!(relay.target("james")["filtered"], 1);

    // SIGHUP: Ana now takes invoices too.
    write_file(
        d,
        "stripe-ops.toml",
        &config_with("\"checkout.session.*\", \"invoice.*\""),
    );
    relay.signal("HUP");
    poll("ana's new route", WAIT, || {
        relay.target("ana")["route"]["events"]
            .as_array()
            .is_some_and(|e| e.len() == 2)
            .then_some(())
    });
    let (a2, _) = send(&relay, for_site("invoice.paid", ANA));
    ana.wait_for(std::slice::from_ref(&a2));

    // SIGKILL while James's events wait, then a restart: nothing lost, nothing misrouted.
    let (j3, _) = send(&relay, for_site("checkout.session.expired", JAMES));
    relay.signal("KILL");
    assert_eq!(relay.wait_exit(), -1);
    let relay = start(&config);
    let (a3, _) = send(
        &relay,
        for_site("checkout.session.completed", "https://ana2.example"),
    );
    let james = Recorder::start_with(d, "james", None, james_port, &[]);
    let james_got = james.wait_for(&[j1.clone(), j2.clone(), j3.clone()]);
    ana.wait_for(&[a1.clone(), a2.clone(), a3.clone()]);
    relay.wait_spool_empty();
    let ids = |records: &[Value]| -> BTreeSet<String> {
        records
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(ids(&james_got), BTreeSet::from([j1, j2, j3]));
    assert_eq!(ids(&ana.received()), BTreeSet::from([a1, a2, a3]));
}

#[test]
fn sighup_rereads_the_verify_secret_file_and_a_bad_one_keeps_the_old_secret_loudly() {
    const NEW: &str = "whsec_fanoutNEWnewNEWnew0123456789abcdefgh";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let incoming = secret_file(d, "incoming", INCOMING);
    let relay = Fanout::start_local(
        d,
        &[
            "--target",
            "a=http://127.0.0.1:1/",
            "--verify-secret-file",
            &incoming,
        ],
    );
    let answer = |secret: &str| {
        let (_, body, header) = signed("customer.created", secret, &[]);
        post(&relay.webhook, &body, &header).unwrap().0
    };
    assert_eq!(answer(INCOMING), 200);
    std::fs::write(&incoming, NEW).unwrap();
    relay.signal("HUP");
    poll("the reload", WAIT, || {
        relay
            .log()
            .contains("reloaded: 1 verify secret(s) re-read")
            .then_some(())
    });
    assert_eq!(answer(NEW), 200, "the new secret is checked");
    assert_eq!(answer(INCOMING), 401, "the old one no longer");
    // Empty, deleted, junk: each reload fails, says why, and the current secret stays.
    for (i, bad) in [
        Some(""),
        None,
        Some("not a secret at all"),
        Some("sk_test_abc"),
    ]
    .into_iter()
    .enumerate()
    {
        match bad {
            Some(text) => std::fs::write(&incoming, text).unwrap(),
            None => std::fs::remove_file(&incoming).unwrap(),
        }
        relay.signal("HUP");
        poll("the failed reload", WAIT, || {
            let failed = relay
                .log()
                .matches("reload FAILED, keeping the current verify secrets")
                .count();
            (failed == i + 1).then_some(())
        });
        assert_eq!(answer(NEW), 200, "{bad:?}: the current secret stays");
    }
    let log = relay.log_when("both refused reloads", |log| {
        log.contains("is empty") && log.contains("does not hold a whsec_ secret")
    });
    assert!(log.contains("is empty"), "{log}");
    assert!(log.contains("does not hold a whsec_ secret"), "{log}");
    assert!(
        !log.contains(NEW) && !log.contains(INCOMING),
        "no secret in the log"
    );
}

/// A spool that cannot grow (files of at most 32 KiB: `ulimit -f`, with SIGXFSZ ignored so the
/// write fails with EFBIG rather than killing the relay): each refused event is answered 503,
/// dropped by every target (its sender retries it) and counted, never kept in memory.
#[test]
fn events_the_full_spool_refuses_are_dropped_and_counted_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let incoming = secret_file(d, "incoming", INCOMING);
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 64; exec \"$0\" \"$@\"")
        .arg(bin_path())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("STRIPE_OPS_CONFIG")
        .stdin(Stdio::null());
    let spool = d.join("spool");
    let relay = Fanout::start_with(
        cmd,
        d,
        &[
            "--listen",
            "127.0.0.1:0",
            "--spool",
            spool.to_str().unwrap(),
            // A target that is down: what it has not got stays queued for it.
            "--target",
            "down=http://127.0.0.1:1/",
            "--verify-secret-file",
            &incoming,
        ],
    );
    let pid: u32 = relay.proc.0.id();
    let rss = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap()
    };
    let before = rss();
    let pad = format!("data.object.description={}", "p".repeat(8000));
    let (mut spooled, mut refused) = (0u64, 0u64);
    for _ in 0..3000 {
        let (_, body, header) = signed("customer.created", INCOMING, &[&pad]);
        match post(&relay.webhook, &body, &header).unwrap().0 {
            200 => spooled += 1,
            503 => refused += 1,
            other => panic!("{other}"),
        }
    }
    assert!(refused > 2900, "{spooled} spooled, {refused} refused");
    let status = poll("the refusals counted and dropped", WAIT, || {
        let s = relay.status();
        (s["refused_not_spooled"] == refused && s["targets"][0]["pending"] == spooled).then_some(s)
    });
    let after = rss();
    eprintln!("fanout RSS: {before} KiB before, {after} KiB after {refused} refused events");
    // Kept, 3,000 events of 8 KB would be 24 MB and more.
    assert!(after < before + 12 * 1024, "{status}");
    relay.log_saying("NOT SPOOLED");
}
