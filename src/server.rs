//! Serving an axum router (and one route ahead of it, `Direct`) over HTTP/1.1 with the limits a
//! production server has, for the two servers stripe-ops runs (the sandbox and the fan-out
//! relay): a client has an idle timeout to send a request's headers (slow-header clients, and
//! keep-alive connections left idle, are closed: hyper starts its header-read timer as soon as
//! a connection waits for a request), and as long again to send its body (a body that stalls
//! or trickles is answered 408 and the connection closed: hyper has no body timeout of its
//! own); bodies are capped at axum's default body limit; a stop lets the requests in flight
//! finish for a bounded grace period, then closes what is left; and running out of file
//! descriptors backs off instead of spinning on `accept`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long a client may take to send a request's headers, or stay idle between requests, by
/// default. Above the 60 s idle timeout of an AWS load balancer: "configure the idle timeout of
/// your application to be larger than the idle timeout configured for the load balancer",
/// else it answers 502 when it reuses a connection the server has just closed (ELB guide,
/// "Connection idle timeout"). 75 s is nginx's `keepalive_timeout`.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// Most a request body may hold: axum's own default body limit, which every handler here reads
/// within.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// How long a stop waits for the requests in flight before closing their connections.
pub const MAX_GRACE: Duration = Duration::from_secs(10);

/// How long `accept` pauses when the process is out of file descriptors.
const FD_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `stop` turns true, then lets every connection finish the
/// request it is answering and returns. `idle_timeout`: see [`IDLE_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: watch::Receiver<bool>,
    idle_timeout: Duration,
) {
    serve_direct(listener, router, None, stop, idle_timeout).await
}

/// One route answered by its handler alone, ahead of the router (which still answers its other
/// methods): the fan-out relay's webhook, which every event takes. axum's routing, extractors
/// and response mapping cost the relay 5 % of its CPU per event (`perf record`, `cargo bench
/// --bench fanout` at concurrency 16).
#[derive(Clone)]
pub struct Direct {
    pub method: Method,
    pub path: String,
    pub handler: Handler,
}

pub type Handler = Arc<dyn Fn(Parts, Bytes) -> BoxFuture<'static, Response> + Send + Sync>;

/// What answers a request once its body is read.
enum Answerer {
    Direct(Handler),
    Router(TowerToHyperService<Router>),
}

/// [`serve`], with `direct` answered ahead of `router`.
pub async fn serve_direct(
    listener: TcpListener,
    router: Router,
    direct: Option<Direct>,
    mut stop: watch::Receiver<bool>,
    idle_timeout: Duration,
) {
    serve_with(listener, router, direct, &mut stop, idle_timeout).await
}

async fn serve_with(
    listener: TcpListener,
    router: Router,
    direct: Option<Direct>,
    stop: &mut watch::Receiver<bool>,
    header_timeout: Duration,
) {
    let mut connections = JoinSet::new();
    let for_connections = stop.clone();
    let mut out_of_fds = false;
    loop {
        if out_of_fds {
            tokio::time::sleep(FD_BACKOFF).await;
        }
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => {
                        out_of_fds = false;
                        stream
                    }
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                        if !out_of_fds {
                            tracing::warn!("out of file descriptors: not accepting for a moment ({e})");
                        }
                        out_of_fds = true;
                        continue;
                    }
                    Err(_) => continue,
                };
                let _ = stream.set_nodelay(true);
                let service = Bounded {
                    router: TowerToHyperService::new(router.clone()),
                    direct: direct.clone(),
                    within: header_timeout,
                };
                let stop = for_connections.clone();
                connections.spawn(connection(stream, service, stop, header_timeout));
            }
            _ = stop.wait_for(|s| *s) => break,
            // Reap finished connections so that the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // The requests in flight finish within the grace period; what is left is closed.
    let grace = header_timeout.min(MAX_GRACE);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            "closing {} connection(s) still open after {}",
            connections.len(),
            crate::duration::human(grace)
        );
        connections.shutdown().await;
    }
}

/// The router (and the direct route) behind a body reader: each request's body is read within
/// `within` (the whole body, not per chunk, so that a trickle is cut off too) and at most
/// `BODY_LIMIT` bytes, then the request is answered with it. Read here rather than in an axum
/// middleware (`from_fn`): 3 % less CPU per event in the relay at concurrency 16.
#[derive(Clone)]
struct Bounded {
    router: TowerToHyperService<Router>,
    direct: Option<Direct>,
    within: Duration,
}

impl hyper::service::Service<Request<hyper::body::Incoming>> for Bounded {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<Response, Self::Error>>;

    fn call(&self, req: Request<hyper::body::Incoming>) -> Self::Future {
        let answerer = match &self.direct {
            Some(d) if req.method() == d.method && req.uri().path() == d.path => {
                Answerer::Direct(d.handler.clone())
            }
            _ => Answerer::Router(self.router.clone()),
        };
        let within = self.within;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let limited = http_body_util::Limited::new(body, BODY_LIMIT);
            let read =
                tokio::time::timeout(within, http_body_util::BodyExt::collect(limited)).await;
            let bytes = match read {
                Ok(Ok(collected)) => collected.to_bytes(),
                Ok(Err(_)) => {
                    return Ok(close(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "the request body is too large or was cut off",
                    ));
                }
                Err(_) => {
                    return Ok(close(
                        StatusCode::REQUEST_TIMEOUT,
                        "the request body did not arrive in time",
                    ));
                }
            };
            match answerer {
                Answerer::Direct(handler) => Ok(handler(parts, bytes).await),
                Answerer::Router(router) => {
                    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
                    hyper::service::Service::call(&router, request).await
                }
            }
        })
    }
}

/// An error answer that closes the connection (its request body was not read to the end).
fn close(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": status.as_u16(), "message": message}});
    (status, [(header::CONNECTION, "close")], axum::Json(body)).into_response()
}

async fn connection(
    stream: tokio::net::TcpStream,
    service: Bounded,
    mut stop: watch::Receiver<bool>,
    header_timeout: Duration,
) {
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// `serve_with` on a free loopback port, answering `GET /` with "ok".
    struct Server {
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Server {
        async fn start(header_timeout: Duration) -> (SocketAddr, Server) {
            Self::start_with(header_timeout, None).await
        }

        async fn start_with(
            header_timeout: Duration,
            direct: Option<Direct>,
        ) -> (SocketAddr, Server) {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, mut rx) = watch::channel(false);
            let router = Router::new()
                .route("/", axum::routing::get(|| async { "ok" }))
                .route("/hook", axum::routing::post(|| async { "routed" }));
            let task = tokio::spawn(async move {
                serve_with(listener, router, direct, &mut rx, header_timeout).await
            });
            (addr, Server { stop, task })
        }

        async fn stop(self) {
            self.stop.send(true).unwrap();
            self.task.await.unwrap();
        }
    }

    /// A well-behaved client gets its answer.
    async fn assert_served(addr: SocketAddr) {
        let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
        ok.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        ok.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    /// Sends `request` on a new connection and reads the whole answer.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer))
            .await
            .expect("answered and closed")
            .unwrap();
        String::from_utf8(answer).unwrap()
    }

    #[tokio::test]
    async fn the_direct_route_gets_the_whole_body_and_the_router_the_rest() {
        let direct = Direct {
            method: Method::POST,
            path: "/hook".into(),
            handler: Arc::new(|parts: Parts, body: Bytes| {
                Box::pin(async move {
                    let header = parts.headers.get("x-n").map(|v| v.as_bytes().to_vec());
                    format!("direct {} {:?}", body.len(), header.map(String::from_utf8))
                        .into_response()
                })
            }),
        };
        let (addr, server) = Server::start_with(Duration::from_secs(5), Some(direct)).await;
        let post = |path: &str, body: &str| {
            format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nX-N: 7\r\nConnection: close\r\n\
                 Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            )
        };
        let answer = exchange(addr, post("/hook", "abcdef").as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("direct 6 Some(Ok(\"7\"))"), "{answer}");
        // A query string does not change the path; another path or method goes to the router.
        let answer = exchange(addr, post("/hook?a=1", "ab").as_bytes()).await;
        assert!(answer.ends_with("direct 2 Some(Ok(\"7\"))"), "{answer}");
        let answer = exchange(addr, post("/hook/", "ab").as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        let answer = exchange(
            addr,
            b"GET /hook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
        // The body limit holds on the direct route too.
        let head = format!(
            "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            BODY_LIMIT + 1
        );
        let mut too_large = head.into_bytes();
        too_large.resize(too_large.len() + BODY_LIMIT + 1, b'x');
        let answer = exchange(addr, &too_large).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        server.stop().await;
    }

    #[tokio::test]
    async fn a_stalled_body_is_answered_408_and_a_stop_does_not_wait_for_it() {
        let (addr, server) = Server::start(Duration::from_millis(300)).await;
        let mut stalled = Vec::new();
        for _ in 0..20 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nab")
                .await
                .unwrap();
            stalled.push(s);
        }
        for s in &mut stalled {
            let mut answer = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer))
                .await
                .expect("the stalled body was cut off")
                .ok();
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        }
        assert_served(addr).await;
        // Connections that stall while the server stops are closed after the grace period.
        let mut late = tokio::net::TcpStream::connect(addr).await.unwrap();
        late.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n")
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), server.stop())
            .await
            .expect("the stop is bounded");
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_cut_off() {
        let (addr, server) = Server::start(Duration::from_millis(200)).await;
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        // The server closes the connection (perhaps after a 408); reading ends instead of hanging.
        tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf))
            .await
            .expect("the slow client was cut off")
            .ok();
        assert_served(addr).await;
        server.stop().await;
    }

    /// The classic slowloris: each byte comes before any idle timeout would fire, so only a
    /// deadline on the whole header section cuts it off; meanwhile 200 such clients must not
    /// keep a well-behaved one from being served.
    #[tokio::test]
    async fn trickled_headers_are_cut_off_at_the_deadline_and_do_not_starve_others() {
        let (addr, server) = Server::start(Duration::from_millis(400)).await;
        let mut idle = Vec::new();
        for _ in 0..200 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            idle.push(s);
        }
        assert_served(addr).await;

        let mut trickle = tokio::net::TcpStream::connect(addr).await.unwrap();
        let cut_off = async {
            for byte in b"GET / HTTP/1.1\r\nX-Slow: ".iter().cycle() {
                if trickle.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), cut_off)
            .await
            .expect("the trickling client was cut off");
        server.stop().await;
    }
}
