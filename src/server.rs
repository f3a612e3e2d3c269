//! Serving an axum router over HTTP/1.1 with the limits a production server has, for the two
//! servers stripe-ops runs (the sandbox and the fan-out relay): a client has an idle timeout to
//! send a request's headers (slow-header clients, and keep-alive connections left idle, are
//! closed: hyper starts its header-read timer as soon as a connection waits for a request),
//! bodies are capped by axum's `DefaultBodyLimit`, and a stop lets the requests in flight finish.

use std::time::Duration;

use axum::Router;
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

/// Serves `router` on `listener` until `stop` turns true, then lets every connection finish the
/// request it is answering and returns. `idle_timeout`: see [`IDLE_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
    idle_timeout: Duration,
) {
    serve_with(listener, router, &mut stop, idle_timeout).await
}

async fn serve_with(
    listener: TcpListener,
    router: Router,
    stop: &mut watch::Receiver<bool>,
    header_timeout: Duration,
) {
    let mut connections = JoinSet::new();
    let for_connections = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone());
                let stop = for_connections.clone();
                connections.spawn(connection(stream, service, stop, header_timeout));
            }
            _ = stop.wait_for(|s| *s) => break,
            // Reap finished connections so that the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    while connections.join_next().await.is_some() {}
}

async fn connection(
    stream: tokio::net::TcpStream,
    service: TowerToHyperService<Router>,
    mut stop: watch::Receiver<bool>,
    header_timeout: Duration,
) {
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
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
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, mut rx) = watch::channel(false);
            let router = Router::new().route("/", axum::routing::get(|| async { "ok" }));
            let task =
                tokio::spawn(
                    async move { serve_with(listener, router, &mut rx, header_timeout).await },
                );
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
