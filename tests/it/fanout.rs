//! `stripe-ops fanout`: every event reaches every target, re-signed where asked, in order after
//! an outage, and nothing acknowledged is lost when the relay is killed with SIGKILL. Targets are
//! real HTTP servers on loopback: small Python receivers that check signatures with Stripe's own
//! library and record what they received, and (with the sandbox) the sandbox app itself.
//!
//! This file is the harness: the recording receiver, the relay as a process, signed events, shared
//! by its submodules (one capability each) and by `fanout_isolation`, `fanout_sqs`,
//! `spool_recovery` and the sandbox's `stripe_cli` and `eventbridge` tests.

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

mod durability;
mod forwarding;
mod in_flight;
mod lifecycle;
mod routing;
mod sandboxes;

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
