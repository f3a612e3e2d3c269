//! An origin's kept-alive connections: reused while fresh and open, a reused one the peer refused
//! replaced once.

use std::time::Duration;

use super::{Answer, Conn, Failure, Origin};
use crate::http::Limits;

/// Kept-alive connections to one origin, the most recently used first: one idle for longer
/// than `idle_for`, or that its peer closed meanwhile, is dropped rather than reused.
pub struct Kept {
    pub origin: Origin,
    idle: std::sync::Mutex<Vec<Conn>>,
    max_idle: usize,
    idle_for: Duration,
}

impl Kept {
    pub fn new(origin: Origin, max_idle: usize, idle_for: Duration) -> Kept {
        Kept {
            origin,
            idle: std::sync::Mutex::default(),
            max_idle,
            idle_for,
        }
    }

    /// One exchange over a kept-alive connection, or a new one (connected within
    /// `connect_within`) when none is idle. A reused connection the peer closed as the request
    /// went out is replaced by a new one, once, when the peer refused the request (a reset
    /// before any answer: it did not read it all): that is the race every keep-alive client has
    /// with a server's idle timeout, not a failure. A close after a request the peer may have
    /// read is a failure, so that it is not sent again at once (as Go's net/http, which replays
    /// a POST only when nothing of it was written).
    pub async fn exchange(
        &self,
        connect_within: Duration,
        write: impl Fn(&mut Vec<u8>, &Origin),
        limits: Limits,
    ) -> Result<Answer, Failure> {
        let mut reused = self.checkout();
        loop {
            let was_reused = reused.is_some();
            let mut conn = match reused.take() {
                Some(conn) => conn,
                None => tokio::time::timeout(connect_within, self.origin.connect())
                    .await
                    .map_err(|_| Failure {
                        kind: "connect",
                        detail: format!(
                            "no connection within {:.1} s",
                            connect_within.as_secs_f64()
                        ),
                    })??,
            };
            match conn.exchange(|out| write(out, &self.origin), limits).await {
                Ok(answer) => {
                    if answer.reusable {
                        self.checkin(conn);
                    }
                    return Ok(answer);
                }
                Err(_) if was_reused && conn.refused() => continue,
                Err(f) => return Err(f),
            }
        }
    }

    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(conn) = idle.pop() {
            if conn.used.elapsed() < self.idle_for && !conn.peer_closed() {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }
}
