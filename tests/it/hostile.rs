//! Hardening, round two: hostile peers on real loopback sockets (a signature header of 20,000
//! items, an answer that never ends, stalled request bodies, the file-descriptor limit),
//! passwords in URLs, framing headers given with -H, invisible junk in secrets, SIGHUP and an
//! interrupted load run, an interrupted browser, and the minor ones.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

fn kill(pid: u32, sig: &str) {
    assert!(
        Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// A fan-out relay that verifies incoming signatures, on a free port.
fn verifying_relay(dir: &std::path::Path, extra: &[&str]) -> (Proc, String) {
    let secret = write_file(dir, "in", CANARY_WHSEC);
    let mut cmd = bin();
    cmd.args(["--json", "fanout", "--listen", "127.0.0.1:0", "--spool"])
        .arg(dir.join("spool"))
        .args(["--target", "a=http://127.0.0.1:1/", "--verify-secret-file"])
        .arg(&secret)
        .args(extra)
        .stderr(Stdio::null());
    let (proc, line) = spawn_announcing(cmd);
    let start: Value = serde_json::from_str(&line).unwrap();
    (proc, start["webhook"].as_str().unwrap().to_owned())
}

#[test]
fn a_signature_header_of_thousands_of_items_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let (_relay, webhook) = verifying_relay(dir.path(), &[]);
    let body = "x".repeat(1 << 20);
    let header = format!(
        "t={}{}",
        stripe_ops::timestamp::unix_now(),
        ",v1=".repeat(20_000)
    );
    let code = r#"
import os, urllib.request
req = urllib.request.Request(os.environ["URL"], data=open(os.environ["BODY"], "rb").read(), method="POST",
                             headers={"Stripe-Signature": os.environ["SIG"], "Content-Type": "application/json"})
try:
    urllib.request.urlopen(req)
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
"#;
    let body_file = write_file(dir.path(), "body", &body);
    let (status, out, err) = run_python(
        code,
        &[
            ("URL", &webhook),
            ("BODY", body_file.to_str().unwrap()),
            ("SIG", &header),
        ],
    );
    assert_eq!(status, 0, "{err}");
    assert!(out.starts_with("401"), "{out}");
    assert!(out.contains("bytes, over the 4096"), "{out}");
}

/// A peer that answers 200 with `Content-Length: 10000000000` and then streams zeros until the
/// client hangs up; prints its port.
const ENDLESS: &str = r#"
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
def serve(c):
    try:
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10000000000\r\n\r\n")
        chunk = b"0" * 65536
        while True:
            c.sendall(chunk)
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Runs the binary with `args` from Python and returns its exit code and peak RSS in MiB
/// (`getrusage` of the child: a measurement, not a timing).
fn peak_rss(args: &[String]) -> (i32, f64) {
    let code = r#"
import json, os, resource, subprocess, sys
p = subprocess.run(json.loads(os.environ["ARGS"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"#;
    let mut all = vec![env!("CARGO_BIN_EXE_stripe-ops").to_owned()];
    all.extend_from_slice(args);
    let (status, out, err) = run_python(code, &[("ARGS", &serde_json::to_string(&all).unwrap())]);
    assert_eq!(status, 0, "{err}");
    let mut parts = out.split_whitespace();
    (
        parts.next().unwrap().parse().unwrap(),
        parts.next().unwrap().parse().unwrap(),
    )
}

#[test]
fn an_answer_that_never_ends_costs_neither_memory_nor_the_whole_timeout() {
    let (_peer, port) = python_receiver(ENDLESS, CANARY_WHSEC);
    let dir = tempfile::tempdir().unwrap();
    let secret = write_file(dir.path(), "s", CANARY_WHSEC)
        .display()
        .to_string();
    let to = format!("{port}/hook");
    let runs: [Vec<String>; 3] = [
        [
            "events",
            "send",
            "invoice.paid",
            "--to",
            &to,
            "--secret-file",
            &secret,
        ]
        .map(String::from)
        .to_vec(),
        [
            "check",
            "--webhook-url",
            &to,
            "--secret-file",
            &secret,
            "--suite",
            "security",
        ]
        .map(String::from)
        .to_vec(),
        [
            "events",
            "send",
            "invoice.paid",
            "--to",
            &to,
            "--secret-file",
            &secret,
            "-n",
            "20",
            "-c",
            "4",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for args in runs {
        let (code, mib) = peak_rss(&args);
        // Before: 400-1,100 MiB. Now the answers are read to 1 MiB each, then dropped.
        assert!(mib < 120.0, "{args:?}: peak RSS {mib:.0} MiB");
        assert_ne!(code, 2, "{args:?}");
    }
}

#[test]
fn stalled_request_bodies_are_cut_off_and_a_stop_is_not_held_up_by_them() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(&["--idle-timeout", "1s"]);
    let (mut relay, webhook) = verifying_relay(dir.path(), &["--idle-timeout", "1s"]);
    let relay_addr = webhook
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for addr in [
        sandbox.app.trim_start_matches("http://"),
        relay_addr.as_str(),
    ] {
        let mut stalled: Vec<TcpStream> = (0..10)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(
                    b"POST /api/webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nab",
                )
                .unwrap();
                s
            })
            .collect();
        for s in &mut stalled {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with("HTTP/1.1 408"), "{addr}: {answer}");
        }
    }
    // SIGTERM while bodies stall: the relay still ends, with exit 0.
    let relay_addr2 = relay_addr.clone();
    let _hanging: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = TcpStream::connect(&relay_addr2).unwrap();
            s.write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    kill(relay.0.id(), "TERM");
    let status = poll("the relay to stop", Duration::from_secs(15), || {
        relay.0.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0));
}

#[test]
fn at_the_file_descriptor_limit_the_server_backs_off_and_serves_again() {
    // The sandbox with a low descriptor limit; more connections than it may open.
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=96")
        .arg(env!("CARGO_BIN_EXE_stripe-ops"))
        .args(["-v", "--json", "sandbox", "--listen", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped());
    let (mut proc, line) = spawn_announcing(cmd);
    let info: Value = serde_json::from_str(&line).unwrap();
    let addr = info["app"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    let held: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    assert!(held.len() > 96, "the connections wait in the backlog");
    drop(held);
    poll(
        "the sandbox to serve again",
        Duration::from_secs(20),
        || {
            let mut s = TcpStream::connect(&addr).ok()?;
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            let mut a = String::new();
            s.read_to_string(&mut a).ok()?;
            a.starts_with("HTTP/1.1 200").then_some(())
        },
    );
    kill(proc.0.id(), "TERM");
    let mut err = String::new();
    proc.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("out of file descriptors"), "{err}");
}

#[test]
fn passwords_in_urls_are_never_printed_and_receipts_do_not_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write_file(dir.path(), "s", CANARY_WHSEC)
        .display()
        .to_string();
    let to = format!(
        "http://ci:hunter2PASSWORD@{}/hook",
        closed_url().trim_start_matches("http://")
    );
    for args in [
        vec![
            "--json",
            "events",
            "send",
            "invoice.paid",
            "--to",
            &to,
            "--secret-file",
            &secret,
        ],
        vec![
            "events",
            "send",
            "invoice.paid",
            "--to",
            &to,
            "--secret-file",
            &secret,
            "-n",
            "2",
        ],
        vec![
            "--json",
            "check",
            "--webhook-url",
            &to,
            "--secret-file",
            &secret,
            "--suite",
            "security",
        ],
        vec![
            "--json",
            "smoke",
            "--base-url",
            &to,
            "--webhook-secret-file",
            &secret,
        ],
        vec![
            "-vvv",
            "events",
            "send",
            "invoice.paid",
            "--to",
            &to,
            "--secret-file",
            &secret,
        ],
    ] {
        let o = run(&args);
        assert_no_leak(&o, &["hunter2PASSWORD"]);
        assert_ne!(code(&o), 0, "{args:?}");
    }
    // (That receipts store the base URL without it: `smoke::receipt`'s unit test.)
}

#[test]
fn headers_that_frame_the_request_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write_file(dir.path(), "s", CANARY_WHSEC)
        .display()
        .to_string();
    for h in [
        "Content-Length: 5",
        "Host: evil.example",
        "Transfer-Encoding: chunked",
        "Connection: close",
    ] {
        for cmd in [
            vec![
                "events",
                "send",
                "invoice.paid",
                "--to",
                "http://127.0.0.1:1/",
                "--secret-file",
                &secret,
                "-H",
                h,
            ],
            vec![
                "check",
                "--webhook-url",
                "http://127.0.0.1:1/",
                "--secret-file",
                &secret,
                "-H",
                h,
            ],
        ] {
            let o = run(&cmd);
            assert_code(&o, 2);
            let name = h.split(':').next().unwrap().to_ascii_lowercase();
            assert!(
                stderr(&o).contains(&format!("{name} frames the request")),
                "{h}: {}",
                stderr(&o)
            );
        }
    }
}

#[test]
fn a_secret_with_invisible_junk_is_refused_by_position() {
    let dir = tempfile::tempdir().unwrap();
    for (content, says) in [
        (
            "whsec_CANARYcanary\n0123456789",
            "a line break at position 19",
        ),
        (
            "whsec_CANARY\0canary0123456789",
            "a NUL byte at position 13",
        ),
        (
            "whsec_CANARY canary0123456789",
            "a space or tab at position 13",
        ),
        ("whsec_CANARY\u{200b}canary0123456789", "U+200B"),
        ("\u{feff}whsec_CANARYcanary0123456789", "byte-order mark"),
    ] {
        let f = write_file(dir.path(), "s", content);
        let o = run(&[
            "events",
            "sign",
            "invoice.paid",
            "--secret-file",
            f.to_str().unwrap(),
        ]);
        assert_code(&o, 2);
        assert!(stderr(&o).contains(says), "{content:?}: {}", stderr(&o));
        assert_no_leak(&o, &["CANARYcanary", "canary0123456789"]);
    }
}

#[test]
fn sighup_stops_a_one_shot_command_like_sigterm_and_an_interrupted_load_run_is_not_ok() {
    // A receiver that answers slowly (so that the run is still going when the signal comes)
    // and counts what it got in a file.
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    let slow = format!(
        r#"
import http.server, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"])); time.sleep(0.2)
        open({count:?}, "a").write("x")
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#
    );
    let (_r, base) = python_receiver(&slow, CANARY_WHSEC);
    let secret = write_file(dir.path(), "s", CANARY_WHSEC)
        .display()
        .to_string();
    for sig in ["HUP", "TERM"] {
        let child = bin()
            .args(["--json", "events", "send", "invoice.paid", "--to"])
            .arg(format!("{base}/hook"))
            .args(["--secret-file", &secret, "--duration", "60s", "-c", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let before = std::fs::read_to_string(&count).unwrap_or_default().len();
        poll("the load run to deliver", Duration::from_secs(10), || {
            (std::fs::read_to_string(&count).unwrap_or_default().len() > before + 2).then_some(())
        });
        kill(pid, sig);
        let o = child.wait_with_output().unwrap();
        assert_code(&o, 130);
        let v = json_of(&o);
        assert_eq!(v["ok"], false, "{sig}: {v}");
        assert_eq!(v["exit_code"], 130, "{sig}: {v}");
        let name = format!("SIG{sig}");
        assert!(
            v["interrupted"] == name.as_str() || v["error"].as_str().unwrap().contains(&name),
            "{v}"
        );
    }
}

#[test]
fn the_minor_ones() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write_file(dir.path(), "s", CANARY_WHSEC)
        .display()
        .to_string();
    let o = run(&[
        "events",
        "send",
        "invoice.paid",
        "--to",
        "http://127.0.0.1:1/",
        "--secret-file",
        &secret,
        "-n",
        "5",
        "--timestamp",
        "1700000000",
    ]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("--timestamp pins one signature time"),
        "{}",
        stderr(&o)
    );
    let config = write_file(dir.path(), "c.toml", "app = 5\n");
    let o = run(&[
        "--config",
        config.to_str().unwrap(),
        "events",
        "sign",
        "invoice.paid",
        "--secret-file",
        &secret,
    ]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("invalid type: integer"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "fanout",
        "--listen",
        "127.0.0.1:65536",
        "--spool",
        dir.path().join("sp").to_str().unwrap(),
        "--target",
        "a=http://127.0.0.1:1/",
    ]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("is not an address to listen on"),
        "{}",
        stderr(&o)
    );
    // A 100 KB event id is not logged in full.
    let mut cmd = bin();
    cmd.args(["--json", "fanout", "--listen", "127.0.0.1:0", "--spool"])
        .arg(dir.path().join("spool2"))
        .args([
            "--target",
            "a=http://127.0.0.1:1/",
            "--verify-secret-file",
            &secret,
        ])
        .stderr(Stdio::piped());
    let (mut relay, line) = spawn_announcing(cmd);
    let webhook = serde_json::from_str::<Value>(&line).unwrap()["webhook"]
        .as_str()
        .unwrap()
        .to_owned();
    let long = format!("{{\"id\": \"evt_{}\"}}", "x".repeat(100_000));
    let code = "import os, urllib.request\ntry:\n    urllib.request.urlopen(urllib.request.Request(os.environ['URL'], data=os.environ['B'].encode(), method='POST', headers={'Stripe-Signature': 't=1,v1=00'}))\nexcept Exception as e:\n    print(e)\n";
    run_python(code, &[("URL", &webhook), ("B", &long)]);
    kill(relay.0.id(), "TERM");
    let mut err = String::new();
    relay
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("(100004 characters)"),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(err.len() < 20_000, "{} bytes of log", err.len());
}

/// A top-up app whose checkout page never offers a payment form: the browser waits on it.
const STUCK_CHECKOUT: &str = r#"
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, status, body, kind="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status); self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def do_GET(self):
        if self.path.startswith("/checkout/"):
            return self.answer(200, "<html><body>loading…</body></html>", "text/html")
        if self.path == "/api/billing/account":
            return self.answer(200, {"account": {"id": "acc_1", "org_id": "org_1", "balance_cents": 0, "currency": "usd"}})
        self.answer(200, {"status": "ok"})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/api/billing/topups/checkout":
            port = self.server.server_address[1]
            return self.answer(200, {"checkoutUrl": f"http://127.0.0.1:{port}/checkout/cs_test_stuck",
                                     "stripeSessionId": "cs_test_stuck", "paymentIntentId": "pi_1"})
        self.answer(200, {"token": "tok_1", "orgId": "org_1"})
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// The processes whose environment holds `marker`.
fn marked(marker: &str) -> Vec<u32> {
    let needle = format!("STRIPE_OPS_TEST_MARKER={marker}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
        })
        .collect()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn an_interrupted_automated_smoke_leaves_no_browser_behind() {
    for sig in ["TERM", "INT", "HUP"] {
        let (_app, base) = python_receiver(STUCK_CHECKOUT, CANARY_WHSEC);
        let dir = tempfile::tempdir().unwrap();
        let marker = format!("{sig}-{}", free_port());
        let child = bin()
            .args([
                "--json",
                "smoke",
                "--real",
                "--automate",
                "--wait",
                "60",
                "--base-url",
                &base,
            ])
            .arg("--receipt")
            .arg(dir.path().join("r.json"))
            .env("STRIPE_OPS_TEST_MARKER", &marker)
            .env(
                "STRIPE_OPS_CHROMEDRIVER",
                std::env::var("STRIPE_OPS_CHROMEDRIVER").expect("run through tests/run.sh"),
            )
            .env_remove("DISPLAY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        poll("Chromium to run", Duration::from_secs(60), || {
            marked(&marker)
                .iter()
                .any(|p| comm(*p).contains("chrom") && !comm(*p).contains("chromedriver"))
                .then_some(())
        });
        kill(pid, sig);
        let o = child.wait_with_output().unwrap();
        assert_code(&o, 130);
        let left = poll(
            "the browser's processes to be gone",
            Duration::from_secs(15),
            || {
                let left: Vec<String> = marked(&marker).into_iter().map(comm).collect();
                left.is_empty().then_some(left)
            },
        );
        assert!(left.is_empty());
    }
}

/// A second SIGTERM while a server stops (a request body stalls its graceful stop) ends it at
/// once, and still as the stop it was asked for: exit 0 (README "Exit codes").
#[test]
fn a_second_sigterm_stops_a_server_at_once_and_it_still_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(&[]);
    let (relay, webhook) = verifying_relay(dir.path(), &[]);
    let relay_addr = webhook
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut servers = [
        (
            sandbox.proc,
            sandbox.app.trim_start_matches("http://").to_owned(),
            "/api/webhooks/stripe",
        ),
        (relay, relay_addr, "/webhook"),
    ];
    for (proc, addr, path) in &mut servers {
        let mut stalled = TcpStream::connect(&*addr).unwrap();
        write!(
            stalled,
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nab"
        )
        .unwrap();
        // A full exchange on another connection: the stalled request has been read by now.
        let mut probe = TcpStream::connect(&*addr).unwrap();
        probe
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        probe.read_to_string(&mut answer).unwrap();
        let pid = proc.0.id();
        kill(pid, "TERM");
        if proc.0.try_wait().unwrap().is_none() {
            kill(pid, "TERM");
        }
        let status = poll("the server to stop", Duration::from_secs(15), || {
            proc.0.try_wait().unwrap()
        });
        assert_eq!(status.code(), Some(0), "{addr}");
        drop(stalled);
    }
}
