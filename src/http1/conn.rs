//! A kept-alive connection: one exchange at a time (the request written in one call, the answer
//! read in the caller's task), and what it knows of its peer: whether it refused the request,
//! closed the connection while idle, or left it able to carry the next one.

use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};

use super::{Answer, Failure, Stream};
use crate::http::Limits;

/// A connection used this recently is not checked for a close before it is used again.
const FRESH: Duration = Duration::from_millis(50);

/// A kept-alive connection.
pub struct Conn {
    pub(super) stream: Stream,
    /// The request being written (reused).
    pub(super) out: Vec<u8>,
    /// What was read and not used yet (reused).
    pub(super) buf: Vec<u8>,
    /// Exchanges answered on it so far.
    pub exchanges: u64,
    /// Some of the current exchange's answer arrived.
    pub(super) started: bool,
    /// The peer reset the connection before any answer: it did not read the whole request.
    pub(super) refused: bool,
    /// The last exchange left it able to carry another.
    pub(super) reusable: bool,
    /// When its last exchange ended.
    pub(super) used: std::time::Instant,
}

impl Conn {
    /// Sends the request `write` puts in the buffer (head and body), then reads the answer
    /// within `limits`. After an error the connection must be dropped.
    pub async fn exchange(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>),
        limits: Limits,
    ) -> Result<Answer, Failure> {
        self.out.clear();
        self.started = false;
        self.refused = false;
        self.reusable = false;
        write(&mut self.out);
        if let Err(e) = self.stream.write_all(&self.out).await {
            return Err(self.closed(e));
        }
        self.buf.clear();
        let answer = self.read_answer(limits).await?;
        self.exchanges += 1;
        self.reusable = answer.reusable;
        self.used = std::time::Instant::now();
        Ok(answer)
    }

    /// Whether the last exchange failed because the peer reset the connection before any answer
    /// (on Linux a socket closed with unread data, or closed before our bytes came, answers them
    /// with a reset): its application did not read the whole request, so sending it again on
    /// another connection cannot deliver it twice. An orderly close after the request (the
    /// peer may have read it) is not a refusal.
    pub fn refused(&self) -> bool {
        self.refused && !self.started
    }

    /// A failed read or write: the connection is closed; notes whether the peer refused.
    fn closed(&mut self, e: io::Error) -> Failure {
        self.refused |= is_reset(&e) || (e.kind() == io::ErrorKind::UnexpectedEof && self.reset());
        Failure::io("closed", e)
    }

    /// Whether the socket holds a reset from the peer.
    fn reset(&self) -> bool {
        matches!(self.stream.tcp().take_error(), Ok(Some(e)) if is_reset(&e))
    }

    /// Load mode's check before reuse: not reusable, or the peer closed it while idle. One used
    /// in the last `FRESH` is taken as open without asking the socket (a close that races the
    /// next request is then counted as a failed request).
    pub fn is_stale(&self) -> bool {
        !self.reusable || (self.used.elapsed() >= FRESH && self.peer_closed())
    }

    /// Whether the peer closed the connection (or sent something unasked) while it was idle:
    /// then it must not carry another request.
    pub fn peer_closed(&self) -> bool {
        let waker = futures_util::task::noop_waker_ref();
        let mut cx = Context::from_waker(waker);
        let mut byte = [0u8; 1];
        let mut peek = ReadBuf::new(&mut byte);
        match self.stream.tcp().poll_peek(&mut cx, &mut peek) {
            Poll::Pending => false,
            // A TLS 1.3 server may send session tickets after the handshake: those are no
            // reason to drop the connection; anything on plain TCP is.
            Poll::Ready(Ok(n)) => n == 0 || matches!(self.stream, Stream::Plain(_)),
            Poll::Ready(Err(_)) => true,
        }
    }

    pub(super) async fn fill(&mut self) -> Result<usize, Failure> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8 * 1024);
        }
        let n = match self.stream.read_buf(&mut self.buf).await {
            Ok(n) => n,
            Err(e) => return Err(self.closed(e)),
        };
        self.started |= n > 0;
        // A reset that came with or after the peer's close (its FIN read as the end).
        self.refused |= n == 0 && !self.started && self.reset();
        Ok(n)
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}
