//! The relay's HTTP/1.1 client (`http1`) against the answers receivers really give, over real
//! sockets: servers on 127.0.0.1 written here, one small script per connection, stopped with the
//! test's runtime. Framings (chunked with trailers, `Connection: close`, read to the end,
//! HTTP/1.0, 1xx interim answers), bounds (endless headers, bodies and trailers), and through a
//! whole delivery attempt: a kept-alive connection the target resets as it is reused (retried
//! once on a new one), one it closes after reading the event (not sent again), a trickling
//! answer (the attempt's deadline holds); and a target a proxy variable applies to, delivered
//! through that proxy.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stripe_ops::config::FanoutTarget;
use stripe_ops::fanout::attempt::{Client, Outcome, attempt};
use stripe_ops::fanout::route::Parsed;
use stripe_ops::fanout::spool::Event;
use stripe_ops::http::ANSWER;
use stripe_ops::http1::{Answer, Conn, Failure, Origin, write_head};
use stripe_ops::printer::Printer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the servers read: "connection number: event id", in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// No exchange here should take long; this only keeps a broken client from hanging the run.
const GUARD: Duration = Duration::from_secs(30);

/// A server on 127.0.0.1 that hands each connection it accepts to `serve` with its number (from
/// 0). Returns its URL and what its connections read.
async fn server<F, Fut>(serve: F) -> (String, Seen)
where
    F: Fn(usize, TcpStream, Seen) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Seen::default();
    let log = seen.clone();
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve(n, stream, log.clone()));
        }
    });
    (url, seen)
}

/// Reads one request (its head, then `Content-Length` bytes of body) and notes its event id;
/// false when the connection ends first.
async fn read_request(s: &mut TcpStream, n: usize, seen: &Seen) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                let body: serde_json::Value =
                    serde_json::from_slice(&buf[end + 4..end + 4 + length]).unwrap();
                let id = body["id"].as_str().unwrap_or("?");
                seen.lock().unwrap().push(format!("{n}: {id}"));
                return true;
            }
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
}

/// Writes `parts` one at a time, each flushed on its own (the client reads them apart).
async fn write_parts(s: &mut TcpStream, parts: &[&[u8]]) {
    for part in parts {
        s.write_all(part).await.unwrap();
        s.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
}

/// Writes `head`, then `unit` over and over (or, when it is empty, nothing more) until the
/// client goes away.
async fn endless(s: &mut TcpStream, head: &[u8], unit: &[u8]) {
    if s.write_all(head).await.is_err() {
        return;
    }
    if unit.is_empty() {
        while s.read(&mut [0u8; 64]).await.is_ok_and(|n| n > 0) {}
        return;
    }
    let block = unit.repeat(4096 / unit.len() + 1);
    while s.write_all(&block).await.is_ok() {}
}

fn post<'a>(origin: &'a Origin, id: &str) -> impl FnOnce(&mut Vec<u8>) + 'a {
    let body = format!("{{\"id\":\"{id}\"}}");
    move |out: &mut Vec<u8>| {
        write_head(out, "POST", origin, &[], body.len());
        out.extend_from_slice(body.as_bytes());
    }
}

async fn exchange(conn: &mut Conn, origin: &Origin, id: &str) -> Result<Answer, Failure> {
    tokio::time::timeout(GUARD, conn.exchange(post(origin, id), ANSWER))
        .await
        .expect("the exchange ends")
}

async fn connect(url: &str) -> (Origin, Conn) {
    let origin = Origin::new(url, None).unwrap();
    let conn = origin.connect().await.unwrap();
    (origin, conn)
}

fn seen(s: &Seen) -> Vec<String> {
    s.lock().unwrap().clone()
}

#[tokio::test]
async fn chunked_answers_with_extensions_and_trailers_are_read_whole_and_keep_the_connection() {
    let (url, seen_by) = server(|n, mut s, seen| async move {
        read_request(&mut s, n, &seen).await;
        write_parts(
            &mut s,
            &[
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"5;name=value\r\nhello\r\n",
                b"1",
                b"\r\n \r\n6\r\nworld!\r\n0\r\n",
                b"Server-Timing: db;dur=53\r\nX-Checksum: 1\r\n",
                b"\r\n",
            ],
        )
        .await;
        read_request(&mut s, n, &seen).await;
        write_parts(
            &mut s,
            &[b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"],
        )
        .await;
        read_request(&mut s, n, &seen).await;
    })
    .await;
    let (origin, mut conn) = connect(&url).await;
    let a = exchange(&mut conn, &origin, "evt_1").await.unwrap();
    assert_eq!(
        (a.status, a.body.text(), a.body.len),
        (200, "hello world!".into(), 12)
    );
    assert!(
        a.reusable,
        "a chunked answer read to its last chunk leaves the connection open"
    );
    let a = exchange(&mut conn, &origin, "evt_2").await.unwrap();
    assert_eq!((a.status, a.body.text()), (201, "ok".into()));
    assert_eq!(conn.exchanges, 2);
    assert_eq!(seen(&seen_by), ["0: evt_1", "0: evt_2"]);
}

#[tokio::test]
async fn close_http_1_0_and_answers_read_to_the_end_do_not_keep_the_connection() {
    let (url, _) = server(|n, mut s, seen| async move {
        read_request(&mut s, n, &seen).await;
        let answer: &[&[u8]] = match n {
            0 => &[b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"],
            // No Content-Length: the body is what comes before the close.
            1 => &[
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
                b"to the ",
                b"end",
            ],
            2 => &[b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"],
            3 => &[b"HTTP/1.0 202 Accepted\r\n\r\nold"],
            _ => &[b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"],
        };
        write_parts(&mut s, answer).await;
        if n != 2 && n != 4 {
            return; // closed
        }
        read_request(&mut s, n, &seen).await;
    })
    .await;
    let mut answers = Vec::new();
    for _ in 0..5 {
        let (origin, mut conn) = connect(&url).await;
        let a = exchange(&mut conn, &origin, "evt_1").await.unwrap();
        answers.push((a.status, a.body.text(), a.reusable));
    }
    assert_eq!(
        answers,
        [
            (200, "hello".into(), false),
            (200, "to the end".into(), false),
            (200, "ok".into(), false),
            (202, "old".into(), false),
            (200, "ok".into(), true),
        ]
    );
}

#[tokio::test]
async fn interim_1xx_answers_come_before_the_real_one() {
    let (url, _) = server(|n, mut s, seen| async move {
        read_request(&mut s, n, &seen).await;
        write_parts(
            &mut s,
            &[
                b"HTTP/1.1 100 Continue\r\n\r\n",
                b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
                b"HTTP/1.1 202 Accepted\r\nContent-Length: 8\r\n\r\naccepted",
            ],
        )
        .await;
        read_request(&mut s, n, &seen).await;
    })
    .await;
    let (origin, mut conn) = connect(&url).await;
    let a = exchange(&mut conn, &origin, "evt_1").await.unwrap();
    assert_eq!((a.status, a.body.text()), (202, "accepted".into()));
    assert!(a.reusable);
}

#[tokio::test]
async fn endless_or_oversized_heads_bodies_and_trailers_are_bounded() {
    let (url, _) = server(|n, mut s, seen| async move {
        read_request(&mut s, n, &seen).await;
        match n {
            0 => {
                let long = format!("HTTP/1.1 200 OK\r\nX-Long: {}\r\n", "a".repeat(70_000));
                endless(&mut s, long.as_bytes(), b"").await
            }
            1 => endless(&mut s, b"HTTP/1.1 200 OK\r\n", b"X-A: 1\r\n").await,
            2 => {
                endless(
                    &mut s,
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                    b"4\r\nxxxx\r\n",
                )
                .await
            }
            3 => endless(&mut s, b"HTTP/1.1 200 OK\r\n\r\n", b"x").await,
            4 => {
                endless(
                    &mut s,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n",
                    b"x",
                )
                .await
            }
            5 => {
                endless(
                    &mut s,
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n",
                    b"T: 1\r\n",
                )
                .await
            }
            _ => {
                endless(
                    &mut s,
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                    b"f",
                )
                .await
            }
        }
    })
    .await;
    let mut results = Vec::new();
    for _ in 0..7 {
        let (origin, mut conn) = connect(&url).await;
        results.push(exchange(&mut conn, &origin, "evt_1").await);
    }
    let error = |r: &Result<Answer, Failure>| r.as_ref().err().map(|f| f.detail.clone());
    assert_eq!(
        error(&results[0]).unwrap(),
        "the answer's headers are over 64 KiB"
    );
    assert_eq!(
        error(&results[1]).unwrap(),
        "the answer has more than 100 headers"
    );
    for cut in &results[2..5] {
        let a = cut.as_ref().unwrap();
        assert_eq!(a.status, 200);
        assert!(a.body.cut && !a.reusable, "{a:?}");
        assert!(
            (ANSWER.drain..ANSWER.drain + 64 * 1024).contains(&a.body.len),
            "read up to the drain limit and one read past it at most: {}",
            a.body.len
        );
        assert_eq!(a.body.kept.len(), ANSWER.keep);
    }
    assert_eq!(
        error(&results[5]).unwrap(),
        "the answer's trailers are over 64 KiB"
    );
    assert_eq!(error(&results[6]).unwrap(), "a chunk line over 64 KiB");
}

fn target(url: &str) -> stripe_ops::fanout::targets::TargetSpec {
    let t = FanoutTarget {
        name: "t".into(),
        url: url.to_owned(),
        ..Default::default()
    };
    stripe_ops::fanout::targets::resolve(&t, &Printer::silent()).unwrap()
}

fn event(id: &str) -> Event {
    Event {
        seq: 1,
        id: Some(id.to_owned()),
        received_ms: 0,
        content_type: None,
        signature: Some("t=1,v1=00".into()),
        body: format!("{{\"id\":\"{id}\"}}").into(),
        parsed: Parsed::default(),
    }
}

async fn deliver(client: &Client, url: &str, id: &str) -> Outcome {
    tokio::time::timeout(GUARD, attempt(client, &target(url), &event(id)))
        .await
        .expect("the attempt ends")
}

/// Answers every request on every connection with 200, kept alive.
async fn answer_all(n: usize, s: &mut TcpStream, seen: &Seen) {
    while read_request(s, n, seen).await {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        if s.write_all(ok).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_kept_alive_connection_the_target_resets_as_it_is_reused_is_replaced_once() {
    // The first connection answers one event, then closes as the next request arrives without
    // reading it (a server's idle timeout racing the reuse): Linux answers the unread bytes with
    // a reset.
    let (url, seen_by) = server(|n, mut s, seen| async move {
        if n == 0 {
            read_request(&mut s, n, &seen).await;
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            let _ = s.peek(&mut [0u8; 1]).await;
            return;
        }
        answer_all(n, &mut s, &seen).await;
    })
    .await;
    let client = Client::new(Duration::from_secs(30), false).unwrap();
    let first = deliver(&client, &url, "evt_a").await;
    assert!(first.ok, "{first:?}");
    let second = deliver(&client, &url, "evt_b").await;
    assert!(second.ok, "retried once on a new connection: {second:?}");
    assert_eq!(
        seen(&seen_by),
        ["0: evt_a", "1: evt_b"],
        "each event read once"
    );
    let third = deliver(&client, &url, "evt_c").await;
    assert!(third.ok, "{third:?}");
    assert_eq!(seen(&seen_by)[2], "1: evt_c", "the new connection is kept");
}

#[tokio::test]
async fn an_event_the_target_read_before_closing_is_not_sent_again_at_once() {
    // The first connection reads the second event whole, then closes without answering: the
    // target may have acted on it, so the attempt fails (the relay retries it later, as Stripe
    // would) instead of sending it again on a new connection.
    let (url, seen_by) = server(|n, mut s, seen| async move {
        if n == 0 {
            read_request(&mut s, n, &seen).await;
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            read_request(&mut s, n, &seen).await;
            return;
        }
        answer_all(n, &mut s, &seen).await;
    })
    .await;
    let client = Client::new(Duration::from_secs(30), false).unwrap();
    assert!(deliver(&client, &url, "evt_a").await.ok);
    let second = deliver(&client, &url, "evt_b").await;
    assert!(!second.ok && second.status.is_none(), "{second:?}");
    assert_eq!(
        second.error.as_deref(),
        Some("failed: the connection was closed before an answer")
    );
    assert_eq!(seen(&seen_by), ["0: evt_a", "0: evt_b"], "sent once");
}

#[tokio::test]
async fn a_trickling_answer_is_cut_at_the_attempts_deadline() {
    let (url, _) = server(|n, mut s, seen| async move {
        read_request(&mut s, n, &seen).await;
        let head: &[u8] = match n {
            0 => b"HTTP/1.1 200 OK\r\n",
            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
        };
        let unit: &[u8] = if n == 0 { b"X-Slow: 1\r\n" } else { b"x" };
        if s.write_all(head).await.is_err() {
            return;
        }
        // The peer's own pace (not synchronisation): a few bytes every 50 ms, for ever.
        while s.write_all(unit).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let client = Client::new(Duration::from_secs(1), false).unwrap();
    for id in ["evt_head", "evt_body"] {
        let o = deliver(&client, &url, id).await;
        assert!(!o.ok && o.status.is_none(), "{o:?}");
        assert_eq!(
            o.error.as_deref(),
            Some("timed out: no answer within 1.0 s")
        );
    }
}

/// An HTTP proxy on 127.0.0.1, as far as a relay needs one: it takes each request in the
/// absolute form a proxy is sent, notes its request line, event id and signature, and answers
/// 200 itself (a connection per thread). Stopped when dropped.
struct Proxy {
    url: String,
    seen: Seen,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    accepting: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen, stop) = (Seen::default(), Arc::new(AtomicBool::new(false)));
        let (log, stopped) = (seen.clone(), Arc::clone(&stop));
        let accepting = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let (Ok(stream), log) = (stream, log.clone()) else {
                    continue;
                };
                std::thread::spawn(move || proxy_connection(stream, &log));
            }
        });
        Proxy {
            url: format!("http://{addr}"),
            seen,
            stop,
            addr,
            accepting: Some(accepting),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.accepting.take() {
            let _ = t.join();
        }
    }
}

fn proxy_connection(mut s: std::net::TcpStream, seen: &Seen) {
    use std::io::{Read, Write};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| {
                        l.split_once(':')
                            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    })
                    .map(|(_, v)| v.trim().to_owned())
            };
            let length: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
            if buf.len() >= end + 4 + length {
                let body: serde_json::Value =
                    serde_json::from_slice(&buf[end + 4..end + 4 + length]).unwrap();
                let signed = header("stripe-signature").is_some_and(|v| v.contains("v1="));
                seen.lock().unwrap().push(format!(
                    "{} {} signed: {signed}",
                    head.lines().next().unwrap(),
                    body["id"].as_str().unwrap_or("?")
                ));
                buf.drain(..end + 4 + length);
                let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                if s.write_all(ok).is_err() {
                    return;
                }
                continue;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
}

/// The lean client speaks to targets directly; a target an `HTTP_PROXY`-style variable applies
/// to goes through that proxy (by reqwest), as every other HTTP call of stripe-ops does.
#[test]
fn a_target_a_proxy_variable_applies_to_is_delivered_through_the_proxy() {
    use crate::fanout::{Fanout, INCOMING, post, signed};
    let proxy = Proxy::start();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let mut cmd = crate::common::bin();
    for name in ["HTTP_PROXY", "http_proxy"] {
        cmd.env(name, &proxy.url);
    }
    for name in ["NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"] {
        cmd.env_remove(name);
    }
    let relay = Fanout::start_with(
        cmd,
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--spool",
            spool.to_str().unwrap(),
            // A name only the proxy can reach.
            "--target",
            "shop=http://shop.invalid/hooks/stripe",
        ],
    );
    let (id, body, header) = signed("invoice.paid", INCOMING, &[]);
    let (status, answer) = post(&relay.webhook, &body, &header).expect("answered");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["targets"][0]["status"], 200, "{answer}");
    assert_eq!(
        seen(&proxy.seen),
        [format!(
            "POST http://shop.invalid/hooks/stripe HTTP/1.1 {id} signed: true"
        )]
    );
}
