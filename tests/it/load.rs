//! Load mode of `events send` against the sandbox and a receiver written with Stripe's own
//! library: distinct events the library accepts, refusals and connection errors counted, TLS.

use std::process::Output;

use serde_json::Value;

use crate::check::{sandbox, secret_file, webhook};
use crate::common::*;

/// A keep-alive receiver written with Stripe's library: 200 for a valid signature, 400 otherwise;
/// `GET /` answers {"valid": n, "distinct": n, "rejected": n}.
const PY_COUNTING_RECEIVER: &str = r#"
import http.server, json, os, stripe, threading
seen, valid, rejected, lock = set(), [0], [0], threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status); self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8")
        try:
            e = stripe.Webhook.construct_event(body, self.headers.get("Stripe-Signature"), os.environ["SECRET"])
        except Exception as err:
            with lock: rejected[0] += 1
            return self.answer(400, {"error": str(err)})
        with lock:
            valid[0] += 1; seen.add(e.id)
        self.answer(200, {"received": e.id})
    def do_GET(self):
        with lock: self.answer(200, {"valid": valid[0], "distinct": len(seen), "rejected": rejected[0]})
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
if os.environ.get("TLS_CERT"):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.environ["TLS_CERT"], os.environ["TLS_KEY"])
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

fn counting_receiver() -> (Proc, String) {
    python_receiver(PY_COUNTING_RECEIVER, CANARY_WHSEC)
}

/// `stripe-ops --json events send payment_intent.succeeded` in load mode (`extra`).
fn load_command(url: &str, secret: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = bin();
    cmd.args(["--json", "events", "send", "payment_intent.succeeded"])
        .args(["--secret-file", secret, "--to", url])
        .args(extra);
    cmd
}

fn load(url: &str, secret: &str, extra: &[&str]) -> (Output, Value) {
    load_output(load_command(url, secret, extra))
}

fn load_output(mut cmd: std::process::Command) -> (Output, Value) {
    let o = cmd.output().expect("the binary runs");
    assert_no_leak(&o, &[CANARY_WHSEC]);
    let v: Value = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(&o), stderr(&o)));
    (o, v)
}

#[test]
fn load_mode_speaks_tls_and_checks_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret = secret_file(d);
    let (cert, key) = self_signed_certificate(d);
    let mut cmd = python();
    cmd.arg("-c")
        .arg(PY_COUNTING_RECEIVER)
        .env("SECRET", CANARY_WHSEC)
        .env("TLS_CERT", &cert)
        .env("TLS_KEY", &key);
    let (_receiver, port) = spawn_announcing(cmd);
    let url = format!("https://127.0.0.1:{port}/hook");
    let send = || load_command(&url, &secret, &["--count", "20", "--concurrency", "2"]);

    // Not trusted: every request fails its TLS handshake, exit 3.
    let mut untrusted = send();
    untrusted.env_remove("SSL_CERT_FILE");
    let (o, v) = load_output(untrusted);
    assert_code(&o, 3);
    assert_eq!(v["error_kinds"]["tls"], 20, "{v}");
    let why = v["error_examples"]["tls"].as_str().unwrap();
    assert!(why.contains("certificate"), "{why}");

    // Trusted through SSL_CERT_FILE (as by the platform's verifier): all accepted.
    let mut trusted = send();
    trusted.env("SSL_CERT_FILE", &cert);
    let (o, v) = load_output(trusted);
    assert_code(&o, 0);
    assert_eq!(v["statuses"]["200"], 20, "{v}");
}

#[test]
fn load_mode_sends_distinct_events_that_stripes_library_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path());
    let (_receiver, base) = counting_receiver();
    let url = format!("{base}/hook");
    let (o, v) = load(&url, &secret, &["--count", "150", "--concurrency", "6"]);
    assert_code(&o, 0);
    for field in [
        "ok",
        "sent",
        "answered",
        "succeeded",
        "non_2xx",
        "errors",
        "statuses",
        "elapsed_s",
        "requests_per_s",
        "latency_ms",
        "concurrency",
    ] {
        assert!(!v[field].is_null(), "{field} missing: {v}");
    }
    for p in ["p50", "p90", "p99", "max"] {
        assert!(v["latency_ms"][p].as_f64().unwrap() > 0.0, "{v}");
    }
    assert_eq!(v["sent"], 150);
    assert_eq!(v["statuses"]["200"], 150);
    assert_eq!(v["errors"], 0);
    let (status, out, err) = run_python(
        "import os, urllib.request; print(urllib.request.urlopen(os.environ['URL']).read().decode())",
        &[("URL", &base)],
    );
    assert_eq!(status, 0, "{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["valid"], 150);
    assert_eq!(stats["distinct"], 150, "every request is a distinct event");
    assert_eq!(stats["rejected"], 0);
}

#[test]
fn load_mode_counts_refusals_and_connection_errors_without_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path(), &[]);
    let wrong = write_file(dir.path(), "wrong", "whsec_wrongwrongwrongwrong")
        .display()
        .to_string();
    let secret = secret_file(dir.path());

    // The sandbox accepts every event signed with its secret...
    let (o, v) = load(
        &webhook(&sb),
        &secret,
        &["--count", "40", "--concurrency", "4", "--rate", "2000/s"],
    );
    assert_code(&o, 0);
    assert_eq!(v["statuses"]["200"], 40);
    assert_eq!(v["rate"], 2000.0);

    // ...and refuses every one signed with another: counted, exit 1.
    let (o, v) = load(
        &webhook(&sb),
        &wrong,
        &["--count", "30", "--concurrency", "3"],
    );
    assert_code(&o, 1);
    assert_eq!(v["statuses"]["400"], 30);
    assert_eq!(v["non_2xx"], 30);
    assert_eq!(v["ok"], false);
    assert!(
        stderr(&o).contains("30 of 30 requests were not accepted"),
        "{}",
        stderr(&o)
    );

    // Nobody listening: every request is a counted connection error, exit 3.
    let dead = format!("{}/hook", closed_url());
    let (o, v) = load(&dead, &secret, &["--count", "12", "--concurrency", "4"]);
    assert_code(&o, 3);
    assert_eq!(v["sent"], 12);
    assert_eq!(v["errors"], 12);
    assert_eq!(v["error_kinds"]["connect"], 12);
    assert!(
        v["error_examples"]["connect"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{v}"
    );
    assert!(stderr(&o).contains("no request"), "{}", stderr(&o));

    // A duration bounds the run instead of a count.
    let (o, v) = load(
        &webhook(&sb),
        &secret,
        &["--duration", "300ms", "--concurrency", "2", "--rate", "100"],
    );
    assert_code(&o, 0);
    let sent = v["sent"].as_u64().unwrap();
    assert!((1..=31).contains(&sent), "{v}");

    let o = run(&[
        "events",
        "send",
        "customer.created",
        "--secret-file",
        &secret,
        "--to",
        &dead,
        "--concurrency",
        "2",
    ]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("--count N or --duration D"),
        "{}",
        stderr(&o)
    );
}
