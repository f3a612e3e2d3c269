//! The conventions Stripe users already type: `-H/--header` (curl, hey) on `events send`, load
//! mode and `check`; hey's `-n -c -q -z` in load mode; `--skip-verify` (the Stripe CLI's name)
//! for fanout's `--insecure`. (`STRIPE_API_KEY` is tested with `events replay`.)

use serde_json::Value;

use crate::common::*;

/// Answers 200 to every POST with the headers it got; GET /seen says how many requests carried
/// `X-Trace` and what the last User-Agent was.
const ECHO: &str = r#"
import json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
seen = {"traced": 0, "total": 0, "agent": None}
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, doc):
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            seen["total"] += 1
            seen["traced"] += self.headers.get("X-Trace") is not None
            seen["agent"] = self.headers.get("User-Agent")
        self.answer({"x_trace": self.headers.get("X-Trace"), "agent": self.headers.get("User-Agent"),
                     "agents": len(self.headers.get_all("User-Agent") or [])})
    def do_GET(self):
        with lock:
            self.answer(seen)
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

fn seen(base: &str) -> Value {
    let (code, out, err) = run_python(
        "import os, urllib.request\nprint(urllib.request.urlopen(os.environ['URL']).read().decode())",
        &[("URL", &format!("{base}/seen"))],
    );
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn extra_headers_reach_the_receiver_and_replace_defaults() {
    let (_echo, base) = python_receiver(ECHO, CANARY_WHSEC);
    let dir = tempfile::tempdir().unwrap();
    let secret = write_file(dir.path(), "whsec", CANARY_WHSEC);
    let secret = secret.to_str().unwrap();
    let to = format!("{base}/hook");
    let o = run(&[
        "--json",
        "events",
        "send",
        "customer.created",
        "--to",
        &to,
        "--secret-file",
        secret,
        "-H",
        "X-Trace: abc",
        "--header",
        "User-Agent: probe/1",
    ]);
    assert_code(&o, 0);
    let answer: Value = serde_json::from_str(json_of(&o)["answer"].as_str().unwrap()).unwrap();
    assert_eq!(answer["x_trace"], "abc");
    assert_eq!(answer["agent"], "probe/1", "replaced, not added: {answer}");
    assert_eq!(answer["agents"], 1);

    let o = run(&[
        "--json",
        "events",
        "send",
        "customer.created",
        "--to",
        &to,
        "--secret-file",
        secret,
        "-n",
        "20",
        "-c",
        "4",
        "-H",
        "X-Trace: load",
    ]);
    assert_code(&o, 0);
    assert_eq!(seen(&base)["traced"], 21);

    let o = run(&[
        "--json",
        "check",
        "--webhook-url",
        &to,
        "--secret-file",
        secret,
        "--case",
        "types.customer.created",
        "-H",
        "X-Trace: check",
    ]);
    assert_code(&o, 0);
    assert_eq!(seen(&base)["traced"], 22);
    assert_eq!(
        seen(&base)["agent"],
        "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    );

    for bad in ["no-colon", "bad name: x", "X-Ok: line\nbreak"] {
        let o = run(&["events", "send", "customer.created", "--to", &to, "-H", bad]);
        assert_code(&o, 2);
    }
}

#[test]
fn load_mode_takes_heys_short_flags() {
    let (_echo, base) = python_receiver(ECHO, CANARY_WHSEC);
    let dir = tempfile::tempdir().unwrap();
    let secret = write_file(dir.path(), "whsec", CANARY_WHSEC);
    let to = format!("{base}/hook");
    let send = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "events",
            "send",
            "customer.created",
            "--to",
            &to,
            "--secret-file",
            secret.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = run(&args);
        assert_code(&o, 0);
        json_of(&o)
    };
    let s = send(&["-n", "12", "-c", "3", "-q", "50"]);
    assert_eq!(s["sent"], 12);
    assert_eq!(s["concurrency"], 3);
    assert_eq!(
        s["rate"], 150.0,
        "hey's -q is per worker: 3 workers at 50/s: {s}"
    );
    let s = send(&["-z", "300ms", "-c", "2"]);
    assert!(s["sent"].as_u64().unwrap() > 0, "{s}");
    let o = run(&[
        "events",
        "send",
        "customer.created",
        "--to",
        &to,
        "-q",
        "5",
        "--rate",
        "5",
    ]);
    assert_code(&o, 2);
}

#[test]
fn fanout_takes_the_stripe_clis_skip_verify() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args([
            "--json",
            "fanout",
            "--listen",
            "127.0.0.1:0",
            "--skip-verify",
        ])
        .args(["--target", "a=https://127.0.0.1:9/x", "--spool"])
        .arg(dir.path().join("spool"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("127.0.0.1:"), "{line}");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--skip-verify"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}
