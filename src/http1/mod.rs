//! A lean HTTP/1.1 client for the two hot paths, load mode and the relay's deliveries: one
//! request at a time on a kept-alive connection, written with one call and its answer read in
//! the same task, parsed with `httparse` (hyper's parser). A general client pays for what these
//! paths never use: a connection task and a channel per request (hyper), a pool lookup, a URL
//! parse, a redirect and a retry layer per request (reqwest); at tens of thousands of requests a
//! second that was most of their CPU (`cargo bench --bench fanout`, `scripts/bench-load.sh`).
//!
//! What it does not do, on purpose: redirects (Stripe does not follow them when it delivers
//! webhooks: a 3xx is a failed delivery), proxies (the relay hands a target a proxy variable
//! applies to to reqwest instead), HTTP/2, pipelining, request bodies other than bytes in hand.
//! Deadlines are the caller's (`tokio::time::timeout` around `connect` and `exchange`).
//!
//! Its parts: `origin` (where a URL's requests go, connecting, the request head), `conn` (one
//! kept-alive connection and its exchange), `answer` (reading the answer), `pool` (`Kept`, an
//! origin's idle connections), `stream` (plain TCP or TLS); `Failure` is here.

use std::io;
use std::time::Duration;

mod answer;
mod conn;
mod origin;
mod pool;
mod stream;

pub use answer::Answer;
pub use conn::Conn;
pub use origin::{Origin, write_head};
pub use pool::Kept;
pub use stream::Stream;

/// Why an exchange got no answer: a kind (connect, tls, timeout, closed, other) and what the
/// transport said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: &'static str,
    pub detail: String,
}

impl Failure {
    pub fn new(kind: &'static str, error: &(dyn std::error::Error + 'static)) -> Self {
        Self {
            kind,
            detail: crate::error::chain(error),
        }
    }

    fn io(kind: &'static str, e: io::Error) -> Self {
        Self::new(kind, &e)
    }

    pub fn timeout(after: Duration) -> Self {
        Self {
            kind: "timeout",
            detail: format!("no answer within {:.1} s", after.as_secs_f64()),
        }
    }

    fn protocol(detail: impl Into<String>) -> Self {
        Self {
            kind: "other",
            detail: detail.into(),
        }
    }

    /// As an outcome's error says it (the words of `http::describe_failure`).
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            "timeout" => "timed out",
            "connect" | "tls" => "could not connect",
            _ => "failed",
        };
        format!("{kind}: {}", self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Limits;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const LIMITS: Limits = Limits { keep: 8, drain: 64 };

    /// A server on loopback that reads one request per answer in `answers` (up to the end of
    /// its body) and writes that answer; returns its URL and what it read.
    async fn server(answers: Vec<&'static [u8]>) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook?x=1", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for answer in answers {
                let mut buf = [0u8; 4096];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    seen.extend_from_slice(&buf[..n]);
                    if n == 0 || seen.ends_with(b"body") {
                        break;
                    }
                }
                s.write_all(answer).await.unwrap();
            }
            seen
        });
        (url, task)
    }

    fn request(origin: &Origin) -> impl FnOnce(&mut Vec<u8>) + '_ {
        move |out| {
            write_head(out, "POST", origin, &[("X-A", b"1")], 4);
            out.extend_from_slice(b"body");
        }
    }

    #[tokio::test]
    async fn answers_by_length_chunks_and_close_and_the_connection_reuse_they_allow() {
        let (url, server) = server(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world!",
            b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nto the end",
        ])
        .await;
        let origin = Origin::new(&url, None).unwrap();
        assert_eq!(origin.target, "/hook?x=1");
        let mut conn = origin.connect().await.unwrap();
        let a = conn.exchange(request(&origin), LIMITS).await.unwrap();
        assert_eq!(
            (a.status, a.body.text(), a.body.len),
            (200, "hello wo".into(), 12)
        );
        assert!(a.reusable && !a.body.cut);
        let a = conn.exchange(request(&origin), LIMITS).await.unwrap();
        assert_eq!((a.status, a.body.text()), (500, "abc".into()));
        assert!(a.reusable);
        let a = conn.exchange(request(&origin), LIMITS).await.unwrap();
        assert_eq!((a.status, a.body.len), (204, 0));
        assert!(a.reusable);
        let a = conn.exchange(request(&origin), LIMITS).await.unwrap();
        assert_eq!((a.status, a.body.text()), (200, "to the e".into()));
        assert!(
            !a.reusable,
            "an HTTP/1.0 answer without keep-alive ends the connection"
        );
        assert_eq!(conn.exchanges, 4);
        let seen = String::from_utf8(server.await.unwrap()).unwrap();
        assert!(seen.starts_with(&format!(
            "POST /hook?x=1 HTTP/1.1\r\nHost: {}\r\nX-A: 1\r\nContent-Length: 4\r\n\r\nbody",
            origin.authority
        )));
    }

    #[tokio::test]
    async fn a_body_of_announced_length_is_kept_in_one_allocation() {
        let body = "x".repeat(20_000);
        let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n{body}");
        let (url, _server) = server(vec![answer.into_bytes().leak()]).await;
        let origin = Origin::new(&url, None).unwrap();
        let mut conn = origin.connect().await.unwrap();
        let roomy = Limits {
            keep: 1 << 20,
            drain: 1 << 20,
        };
        let a = conn.exchange(request(&origin), roomy).await.unwrap();
        assert_eq!(a.body.text(), body);
        // Read in pieces of at most the connection's buffer (8 KiB): grown as they came, the
        // kept bytes would have been reallocated to 8, 16 and 32 KiB.
        assert_eq!(a.body.kept.capacity(), 20_000);
    }

    #[tokio::test]
    async fn an_answer_cut_short_or_refused_is_an_error() {
        let (url, _server) =
            server(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"]).await;
        let origin = Origin::new(&url, None).unwrap();
        let mut conn = origin.connect().await.unwrap();
        let e = conn.exchange(request(&origin), LIMITS).await.unwrap_err();
        assert_eq!(e.kind, "closed", "{e:?}");
        let refused = Origin::new("http://127.0.0.1:1/", None).unwrap();
        let e = refused.connect().await.err().unwrap();
        assert!(e.describe().starts_with("could not connect: "), "{e:?}");
        assert!(Origin::new("ftp://x/", None).is_err());
        assert!(Origin::new("https://x/", None).is_err());
    }

    #[tokio::test]
    async fn a_body_past_the_drain_limit_is_cut_and_its_connection_dropped() {
        let mut long = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
        long.extend_from_slice(&[b'x'; 1000]);
        let (url, _server) = server(vec![Box::leak(long.into_boxed_slice())]).await;
        let origin = Origin::new(&url, None).unwrap();
        let mut conn = origin.connect().await.unwrap();
        let a = conn.exchange(request(&origin), LIMITS).await.unwrap();
        assert_eq!(a.status, 200);
        assert!(a.body.cut && a.body.len >= 64 && a.body.kept.len() == 8);
        assert!(!a.reusable);
    }
}
