//! The sandbox's surfaces under hostile and faulty conditions (issue 37): a `stripe listen`
//! socket that stops reading, oversized delivery attempts and destinations, a retry flood under
//! a cap on open files, a state file that cannot be written, listen sessions by the thousand,
//! and Stripe's own 400s for what Stripe refuses. Raw sockets where the CLI's client would hide
//! the behaviour.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::FromRawFd;
use std::process::Stdio;

use super::*;

/// A sandbox whose stderr goes to a file the test reads (warnings such as the drop count).
struct Logged {
    sb: Sandbox,
    key: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Logged {
    fn start(wrap: Option<&str>, args: &[&str]) -> Logged {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr.log");
        let mut cmd = match wrap {
            // A shell that sets a limit, then execs the binary (the limit is inherited).
            Some(script) => {
                let mut c = std::process::Command::new("sh");
                c.arg("-c")
                    .arg(format!("{script}; exec \"$0\" \"$@\""))
                    .arg(bin_path())
                    .env("NO_COLOR", "1")
                    .env_remove("RUST_LOG")
                    .stdin(Stdio::null());
                c
            }
            None => bin(),
        };
        let mut child = cmd
            .args(["--json", "sandbox", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("sandbox starts");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let proc = Proc(child);
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("start line {line:?}: {e}; {}", read(&log)));
        let sb = Sandbox {
            app: v["app"].as_str().unwrap().to_owned(),
            stripe_api: v["stripe_api"].as_str().unwrap().to_owned(),
            info: v,
            proc,
        };
        let key = stripe_key(&sb);
        Logged {
            sb,
            key,
            log,
            _dir: dir,
        }
    }

    fn stderr(&self) -> String {
        read(&self.log)
    }

    async fn post(&self, path: &str, form: &[(String, String)]) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", self.sb.stripe_api))
            .bearer_auth(&self.key)
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", self.sb.stripe_api))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.sb.stripe_api))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A `stripe listen` session: its websocket id and the URL's path.
    async fn session(&self) -> (String, String) {
        let (status, v) = self
            .post(
                "/v1/stripecli/sessions",
                &[("device_name".into(), "limits".into())],
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let url = v["websocket_url"].as_str().unwrap();
        let path = url.splitn(4, '/').nth(3).unwrap();
        (
            v["websocket_id"].as_str().unwrap().to_owned(),
            format!("/{path}"),
        )
    }

    /// A customer with `meta_chars` of metadata (50 keys): a big `customer.created` event.
    async fn customer(&self, meta_chars: usize) -> Value {
        let mut form = vec![("email".to_owned(), "big@example.com".to_owned())];
        let per_key = meta_chars / 50;
        for i in 0..50.min(meta_chars) {
            form.push((format!("metadata[k{i}]"), "m".repeat(per_key.min(500))));
        }
        let (status, v) = self.post("/v1/customers", &form).await;
        assert_eq!(status, 200, "{v}");
        v
    }

    fn rss_kib(&self) -> u64 {
        rss_kib(self.sb.pid())
    }
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `VmRSS` of a process, from `/proc/<pid>/status` (a measurement, not a timing).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS")
}

/// A TCP connection to 127.0.0.1:`port`, with a receive buffer of `rcvbuf` bytes when given
/// (set before connecting, so that the window the peer sees is small from the start).
fn connect(port: u16, rcvbuf: Option<i32>) -> TcpStream {
    let Some(size) = rcvbuf else {
        return TcpStream::connect(("127.0.0.1", port)).unwrap();
    };
    // SAFETY: plain socket calls on a descriptor this function owns until `from_raw_fd`.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let set = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
        assert_eq!(set, 0);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// Opens the session's websocket by hand; returns the socket and the answer's head.
fn ws_open(
    api: &str,
    path: &str,
    id: &str,
    protocol: Option<&str>,
    rcvbuf: Option<i32>,
) -> (TcpStream, String) {
    let port = port_of(api);
    let mut s = connect(port, rcvbuf);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let protocol = protocol
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path}?websocket_feature=webhook-payloads HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nWebsocket-Id: {id}\r\n{protocol}\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "the head ends");
        head.push(byte[0]);
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// One frame from the server (unmasked): its opcode and payload.
fn ws_read(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b)?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b)?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload)?;
    Ok((h[0] & 0x0f, payload))
}

/// A masked client frame header (FIN, `opcode`) for a payload of `len` bytes.
fn ws_header(opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![0x80 | opcode];
    match len {
        0..=125 => h.push(0x80 | len as u8),
        126..=65535 => {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    h.extend_from_slice(&[0, 0, 0, 0]); // a zero mask: the payload goes as it is
    h
}

fn ws_text(s: &mut TcpStream, text: &str) {
    let mut frame = ws_header(1, text.len() as u64);
    frame.extend_from_slice(text.as_bytes());
    s.write_all(&frame).unwrap();
}

/// Reads text frames until one holds `needle`; false on a close, the end or a read timeout.
fn ws_wait_for(s: &mut TcpStream, needle: &str) -> bool {
    while let Ok((op, payload)) = ws_read(s) {
        match op {
            1 if String::from_utf8_lossy(&payload).contains(needle) => return true,
            8 => return false,
            _ => {}
        }
    }
    false
}

/// Reads whatever is left until the server ends the connection; true if it did.
fn ended(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_socket_that_stops_reading_is_taken_over_and_its_drops_are_counted() {
    let s = Logged::start(None, &[]);
    let (id, path) = s.session().await;
    // The CLI's connection, then it stops reading: a 4 KiB receive window, never read.
    let (mut stuck, head) = ws_open(
        &s.sb.stripe_api,
        &path,
        &id,
        Some("stripecli-devproxy-v1"),
        Some(4096),
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // ~50 KB of messages per customer (two versions of a 25 KB event): 300 of them fill the
    // sandbox's socket buffers many times over, so its send to `stuck` blocks.
    for _ in 0..300 {
        s.customer(24_000).await;
    }
    // The CLI reconnects with the same Websocket-Id, as it does after every drop.
    let (mut fresh, head) = ws_open(
        &s.sb.stripe_api,
        &path,
        &id,
        Some("stripecli-devproxy-v1"),
        None,
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let marker = s.customer(0).await;
    let marker_id = marker["id"].as_str().unwrap();
    assert!(
        ws_wait_for(&mut fresh, marker_id),
        "the new connection gets the events that follow"
    );
    assert!(ended(&mut stuck), "the old connection is closed");
    // The warning names the event whose message was lost; the event lists the drop.
    let log = s.stderr();
    let dropped = log
        .split("event ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no drop said: {log}"));
    let event = s.get(&attempts_path(dropped)).await;
    let not_sent = event["delivery_attempts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| {
            a["endpoint"] == id.as_str()
                && a["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("not sent to stripe listen"))
        });
    assert!(not_sent, "the drop is an attempt of its event: {event}");
    assert!(
        s.stderr().contains("dropped for this session so far"),
        "{}",
        s.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_attempts_and_destinations_stay_under_a_memory_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let s = Logged::start(None, &["--state", state.to_str().unwrap()]);
    let event_id = {
        s.customer(0).await;
        let v = s.get("/v1/events?limit=1").await;
        v["data"][0]["id"].as_str().unwrap().to_owned()
    };
    let before = s.rss_kib();
    let (id, path) = s.session().await;
    let (mut ws, head) = ws_open(
        &s.sb.stripe_api,
        &path,
        &id,
        Some("stripecli-devproxy-v1"),
        None,
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // 150 answers of the CLI, each naming a 2 MiB forward_url (under the 4 MiB message cap).
    let url = format!("http://localhost/{}", "u".repeat(2 << 20));
    for _ in 0..150 {
        let msg = json!({"type": "webhook_response", "notification_id": event_id,
            "status": 500, "forward_url": url, "body": "", "http_headers": {}});
        ws_text(&mut ws, &msg.to_string());
    }
    // 80 destinations with 1.9 MB descriptions, and 300 in invented regions: all refused
    // (beyond 16, or over 5,000 characters, or not an AWS Region).
    let big = "d".repeat(1_900_000);
    let mut refused = 0;
    for i in 0..80 {
        let (status, _) = s
            .post_json(
                "/v2/core/event_destinations",
                &json!({"name": format!("d{i}"), "type": "amazon_eventbridge",
                    "event_payload": "snapshot", "enabled_events": ["*"], "description": big,
                    "amazon_eventbridge": {"aws_account_id": "123456789012", "aws_region": "us-east-1"}}),
            )
            .await;
        refused += usize::from(status == 400);
    }
    assert_eq!(refused, 80, "1.9 MB descriptions are refused");
    for i in 0..300 {
        let (status, v) = s
            .post_json(
                "/v2/core/event_destinations",
                &json!({"name": format!("r{i}"), "type": "amazon_eventbridge",
                    "event_payload": "snapshot", "enabled_events": ["*"],
                    "amazon_eventbridge": {"aws_account_id": "123456789012",
                        "aws_region": format!("xx-invented-{i}")}}),
            )
            .await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["param"], "amazon_eventbridge[aws_region]");
    }
    let mut made = 0;
    for i in 0..20 {
        let (status, _) = s
            .post_json(
                "/v2/core/event_destinations",
                &json!({"name": format!("ok{i}"), "type": "amazon_eventbridge",
                    "event_payload": "snapshot", "enabled_events": ["*"],
                    "amazon_eventbridge": {"aws_account_id": "123456789012", "aws_region": "us-east-1"}}),
            )
            .await;
        made += usize::from(status == 200);
    }
    assert_eq!(made, 16, "Stripe's 16 destinations per account");
    // Every answer is recorded (the last one read tells), each cut to 2,048 characters, and the
    // event keeps its latest 100.
    let attempts = eventually("the answers recorded", Duration::from_secs(60), || async {
        let v = s.get(&attempts_path(&event_id)).await;
        let attempts = v["delivery_attempts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        attempts
            .last()
            .is_some_and(|a| a["attempt"] == 150)
            .then_some(attempts)
    })
    .await;
    assert_eq!(attempts.len(), 100);
    assert!(
        attempts
            .iter()
            .all(|a| a["url"].as_str().unwrap().len() <= 2048)
    );
    let after = s.rss_kib();
    eprintln!("sandbox RSS: {before} KiB before, {after} KiB after");
    assert!(
        after < before + 100 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    let on_disk = eventually("the state written", Duration::from_secs(30), || async {
        let text = std::fs::read_to_string(&state).ok()?;
        text.contains("\"attempt\":150").then_some(text.len())
    })
    .await;
    eprintln!("state file: {on_disk} bytes");
    assert!(on_disk < 2 << 20, "the state file holds {on_disk} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_flood_under_a_file_limit_is_bounded_and_the_app_keeps_its_disk() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let s = Logged::start(Some("ulimit -n 256"), &["--state", state.to_str().unwrap()]);
    // An endpoint that never accepts: a listener nobody accepts on (its backlog fills, then
    // connections hang until the attempt's timeout).
    let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = format!("http://{}/hook", sink.local_addr().unwrap());
    let endpoint = create_endpoint(
        &s.sb.stripe_api,
        &s.key,
        &[
            ("url", hook.as_str()),
            ("enabled_events[]", "customer.created"),
        ],
    )
    .await;
    let we = endpoint["id"].as_str().unwrap().to_owned();
    s.customer(0).await;
    let event = s.get("/v1/events?limit=1").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let retry = format!("{}/v1/events/{event}/retry", s.sb.stripe_api);
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..20 {
        let batch = (0..100).map(|_| {
            client
                .post(&retry)
                .bearer_auth(&s.key)
                .form(&[("webhook_endpoint", we.as_str())])
                .send()
        });
        for r in futures_util::future::join_all(batch).await {
            *statuses.entry(r.unwrap().status().as_u16()).or_insert(0) += 1;
        }
    }
    eprintln!("retry answers: {statuses:?}");
    assert!(
        statuses.get(&429).is_some_and(|n| *n > 1000),
        "{statuses:?}"
    );
    assert!(
        statuses.keys().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );
    // The app still answers and its writes reach the disk.
    let app = App::new(&s.sb.app);
    let (status, v) = app
        .post(
            "/api/org/register",
            None,
            json!({"email": "after@example.com", "password": "pw"}),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .contains("after@example.com")
    );
    assert!(
        !s.stderr().contains("Too many open files"),
        "{}",
        s.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_write_that_fails_fails_the_request_that_waited_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    // Files of at most 8 KiB (SIGXFSZ ignored, so a longer write fails with EFBIG instead).
    let s = Logged::start(
        Some("trap '' XFSZ; ulimit -f 16"),
        &["--state", state.to_str().unwrap()],
    );
    let app = App::new(&s.sb.app);
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let email = format!("buyer{i}@example.com");
        let (status, v) = app
            .post(
                "/api/org/register",
                None,
                json!({"email": email, "password": "pw"}),
            )
            .await;
        match status {
            201 => acknowledged.push(email),
            503 => {
                refused = Some(v);
                break;
            }
            other => panic!("{other}: {v}"),
        }
    }
    let refused = refused.expect("the state outgrew the file limit");
    assert_eq!(refused["error"]["code"], "state_not_written", "{refused}");
    assert!(s.stderr().contains("cannot write state file"));
    // Every acknowledged registration is on disk: a sandbox on the same file knows them all.
    drop(s);
    let again = Sandbox::start(&["--state", state.to_str().unwrap()]);
    let app = App::new(&again.app);
    for email in &acknowledged {
        let (status, v) = app
            .post(
                "/api/org/api-keys",
                None,
                json!({"email": email, "password": "pw"}),
            )
            .await;
        assert_eq!(status, 200, "{email}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_sessions_nobody_connects_to_are_capped_oldest_first() {
    let s = Logged::start(None, &[]);
    let mut sessions = Vec::new();
    for _ in 0..200 {
        sessions.push(s.session().await);
    }
    let (first, path) = &sessions[0];
    let (_, head) = ws_open(
        &s.sb.stripe_api,
        path,
        first,
        Some("stripecli-devproxy-v1"),
        None,
    );
    assert!(
        head.starts_with("HTTP/1.1 400"),
        "the oldest is gone: {head}"
    );
    let (last, path) = sessions.last().unwrap();
    let (_, head) = ws_open(
        &s.sb.stripe_api,
        path,
        last,
        Some("stripecli-devproxy-v1"),
        None,
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_stripe_refuses_the_sandbox_refuses_with_stripes_param() {
    let s = Logged::start(None, &[]);
    let form = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let hook = ("url", "https://example.com/hook");
    let many: Vec<(String, String)> = std::iter::once((hook.0.into(), hook.1.into()))
        .chain(std::iter::once((
            "enabled_events[]".into(),
            "customer.created".into(),
        )))
        .chain((0..51).map(|i| (format!("metadata[k{i}]"), "v".into())))
        .collect();
    let long_key = format!("metadata[{}]", "k".repeat(41));
    let long_value = "v".repeat(501);
    type Case<'a> = (&'a str, Vec<(String, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "/v1/webhook_endpoints",
            form(&[hook, ("enabled_events[]", "customer.nope")]),
            "enabled_events[0]",
        ),
        ("/v1/webhook_endpoints", many, "metadata"),
        (
            "/v1/webhook_endpoints",
            form(&[hook, ("enabled_events[]", "*"), (long_key.as_str(), "v")]),
            "metadata",
        ),
        (
            "/v1/webhook_endpoints",
            form(&[
                hook,
                ("enabled_events[]", "*"),
                ("metadata[k]", &long_value),
            ]),
            "metadata",
        ),
        (
            "/v1/webhook_endpoints",
            form(&[hook, ("enabled_events[]", "*"), ("metadata", "a string")]),
            "metadata",
        ),
        (
            "/v1/webhook_endpoints",
            form(&[
                hook,
                ("enabled_events[]", "*"),
                ("api_version", "2099-01-01.nope"),
            ]),
            "api_version",
        ),
        ("/v1/customers", form(&[("bogus", "1")]), "bogus"),
        (
            "/v1/customers",
            form(&[("metadata", "a string")]),
            "metadata",
        ),
    ];
    for (path, form, param) in cases {
        let (status, v) = s.post(path, &form).await;
        assert_eq!(status, 400, "{path} {form:?}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        assert_eq!(v["error"]["param"], param, "{path} {form:?}: {v}");
    }
    let destination = |patch: Value| {
        let mut d = json!({"name": "d", "type": "amazon_eventbridge", "event_payload": "snapshot",
            "enabled_events": ["customer.created"],
            "amazon_eventbridge": {"aws_account_id": "123456789012", "aws_region": "us-east-1"}});
        for (k, v) in patch.as_object().unwrap() {
            d[k] = v.clone();
        }
        d
    };
    for (patch, param) in [
        (
            json!({"enabled_events": ["nope.nope"]}),
            "enabled_events[0]",
        ),
        (
            json!({"event_payload": "thin", "enabled_events": ["customer.created"]}),
            "enabled_events[0]",
        ),
        (json!({"events_from": ["@nobody"]}), "events_from[0]"),
        (
            json!({"snapshot_api_version": "2099-01-01.nope"}),
            "snapshot_api_version",
        ),
        (json!({"metadata": "a string"}), "metadata"),
    ] {
        let (status, v) = s
            .post_json("/v2/core/event_destinations", &destination(patch.clone()))
            .await;
        assert_eq!(status, 400, "{patch}: {v}");
        assert_eq!(v["error"]["param"], param, "{patch}: {v}");
    }
    // A retry to an endpoint that does not exist names the parameter, as Stripe does.
    s.customer(0).await;
    let event = s.get("/v1/events?limit=1").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, v) = s
        .post(
            &format!("/v1/events/{event}/retry"),
            &form(&[("webhook_endpoint", "we_nope")]),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["param"], "webhook_endpoint");
    assert_eq!(v["error"]["code"], "resource_missing");
    // The websocket: no CLI subprotocol is no upgrade; a 32 MiB frame is closed with 1009.
    let (id, path) = s.session().await;
    let (_, head) = ws_open(&s.sb.stripe_api, &path, &id, Some("chat"), None);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let (mut ws, head) = ws_open(
        &s.sb.stripe_api,
        &path,
        &id,
        Some("stripecli-devproxy-v1"),
        None,
    );
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    ws.write_all(&ws_header(1, 32 << 20)).unwrap();
    let (op, payload) = ws_read(&mut ws).expect("a close frame");
    assert_eq!(op, 8);
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1009);
}
