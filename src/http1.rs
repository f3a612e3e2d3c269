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

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::http::{Body, Limits};

/// Most bytes of an answer's status line and headers.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in an answer.
const MAX_HEADERS: usize = 100;
/// A connection used this recently is not checked for a close before it is used again.
const FRESH: Duration = Duration::from_millis(50);

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

/// A connection's byte stream: plain TCP or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Where a URL's requests go: host, port, TLS, and the `Host` value and target of each.
pub struct Origin {
    host: String,
    port: u16,
    /// The `Host` header's value.
    pub authority: String,
    /// The path and query every request names.
    pub target: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Origin {
    /// An `http` or `https` URL's origin; `tls` is the configuration https needs.
    pub fn new(url: &str, tls: Option<&Arc<ClientConfig>>) -> Result<Origin, String> {
        let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("it has no host".into()),
        };
        let port = parsed
            .port_or_known_default()
            .ok_or("it has no port and no known scheme")?;
        let tls = match parsed.scheme() {
            "http" => None,
            "https" => {
                let tls = tls.ok_or("https needs TLS, which this client was not given")?;
                let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
                Some((TlsConnector::from(tls.clone()), name))
            }
            other => return Err(format!("the scheme is {other}, not http or https")),
        };
        let authority = match parsed.port() {
            Some(p) => format!("{}:{p}", parsed.host_str().unwrap_or_default()),
            None => parsed.host_str().unwrap_or_default().to_owned(),
        };
        Ok(Origin {
            host,
            port,
            authority,
            target: parsed[url::Position::BeforePath..url::Position::AfterQuery].to_owned(),
            tls,
        })
    }

    /// A new connection (TLS for https). No deadline of its own.
    pub async fn connect(&self) -> Result<Conn, Failure> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| Failure::io("connect", e))?;
        let _ = tcp.set_nodelay(true);
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some((connector, name)) => Stream::Tls(Box::new(
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| Failure::io("tls", e))?,
            )),
        };
        Ok(Conn {
            stream,
            out: Vec::with_capacity(8 * 1024),
            buf: Vec::with_capacity(8 * 1024),
            exchanges: 0,
            started: false,
            refused: false,
            reusable: true,
            used: std::time::Instant::now(),
        })
    }

    /// Whether the URL is https.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// A kept-alive connection.
pub struct Conn {
    stream: Stream,
    /// The request being written (reused).
    out: Vec<u8>,
    /// What was read and not used yet (reused).
    buf: Vec<u8>,
    /// Exchanges answered on it so far.
    pub exchanges: u64,
    /// Some of the current exchange's answer arrived.
    started: bool,
    /// The peer reset the connection before any answer: it did not read the whole request.
    refused: bool,
    /// The last exchange left it able to carry another.
    reusable: bool,
    /// When its last exchange ended.
    used: std::time::Instant,
}

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

/// An answer: its status and body (as far as kept), and whether the connection can carry the
/// next request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Body,
    pub reusable: bool,
}

/// How an answer's body is framed.
enum Framing {
    Length(u64),
    Chunked,
    /// Until the peer closes the connection.
    Close,
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

    async fn fill(&mut self) -> Result<usize, Failure> {
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

    async fn read_answer(&mut self, limits: Limits) -> Result<Answer, Failure> {
        loop {
            let (status, head_len, framing, keep_alive) = self.read_head().await?;
            self.buf.drain(..head_len);
            // 1xx answers (but 101) come before the real one: skip them.
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let mut body = Body::default();
            let complete = match framing {
                Framing::Length(n) => self.read_length(n, &mut body, limits).await?,
                Framing::Chunked => self.read_chunked(&mut body, limits).await?,
                Framing::Close => {
                    self.read_to_end(&mut body, limits).await?;
                    false
                }
            };
            let reusable = keep_alive && complete && !body.cut && self.buf.is_empty();
            return Ok(Answer {
                status,
                body,
                reusable,
            });
        }
    }

    /// Reads until a whole status line and header section are in the buffer.
    async fn read_head(&mut self) -> Result<(u16, usize, Framing, bool), Failure> {
        loop {
            if !self.buf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut response = httparse::Response::new(&mut headers);
                match response.parse(&self.buf) {
                    Ok(httparse::Status::Complete(len)) => {
                        let status = response.code.unwrap_or(0);
                        let http11 = response.version == Some(1);
                        let (framing, keep_alive) = framing(status, response.headers, http11)?;
                        return Ok((status, len, framing, keep_alive));
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(httparse::Error::TooManyHeaders) => {
                        return Err(Failure::protocol(format!(
                            "the answer has more than {MAX_HEADERS} headers"
                        )));
                    }
                    Err(e) => {
                        return Err(Failure::protocol(format!("the answer is not HTTP: {e}")));
                    }
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(Failure::protocol(format!(
                        "the answer's headers are over {} KiB",
                        MAX_HEAD / 1024
                    )));
                }
            }
            if self.fill().await? == 0 {
                return Err(Failure {
                    kind: "closed",
                    detail: "the connection was closed before an answer".into(),
                });
            }
        }
    }

    /// Takes body bytes from the buffer start; false once the drain limit is passed.
    fn take(&mut self, n: usize, body: &mut Body, limits: Limits) -> bool {
        let chunk = &self.buf[..n];
        let room = limits.keep.saturating_sub(body.kept.len());
        body.kept.extend_from_slice(&chunk[..n.min(room)]);
        body.len += n as u64;
        self.buf.drain(..n);
        if body.len >= limits.drain {
            body.cut = true;
            return false;
        }
        true
    }

    async fn read_length(
        &mut self,
        mut left: u64,
        body: &mut Body,
        limits: Limits,
    ) -> Result<bool, Failure> {
        while left > 0 {
            if self.buf.is_empty() && self.fill().await? == 0 {
                return Err(cut_short());
            }
            let n = self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            left -= n as u64;
            if !self.take(n, body, limits) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn read_to_end(&mut self, body: &mut Body, limits: Limits) -> Result<(), Failure> {
        loop {
            let n = self.buf.len();
            if n > 0 && !self.take(n, body, limits) {
                return Ok(());
            }
            if self.fill().await? == 0 {
                return Ok(());
            }
        }
    }

    /// `Transfer-Encoding: chunked` (RFC 9112 section 7.1): sizes in hex, extensions and
    /// trailers ignored.
    async fn read_chunked(&mut self, body: &mut Body, limits: Limits) -> Result<bool, Failure> {
        loop {
            let line = self.line().await?;
            let size = line
                .split(|&b| b == b';')
                .next()
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| Failure::protocol("a chunk size that is not hexadecimal"))?;
            if size == 0 {
                return self.skip_trailers().await;
            }
            if !self.read_length(size, body, limits).await? {
                return Ok(false);
            }
            if !self.line().await?.is_empty() {
                return Err(Failure::protocol("a chunk longer than its size"));
            }
        }
    }

    /// Trailer fields up to the empty line, ignored; at most `MAX_HEAD` bytes of them.
    async fn skip_trailers(&mut self) -> Result<bool, Failure> {
        let mut read = 0;
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                return Ok(true);
            }
            read += line.len() + 2;
            if read > MAX_HEAD {
                return Err(Failure::protocol(format!(
                    "the answer's trailers are over {} KiB",
                    MAX_HEAD / 1024
                )));
            }
        }
    }

    /// The next CRLF-ended line (without its end), taken from the buffer.
    async fn line(&mut self) -> Result<Vec<u8>, Failure> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..at].to_vec();
                self.buf.drain(..at + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Failure::protocol("a chunk line over 64 KiB"));
            }
            if self.fill().await? == 0 {
                return Err(cut_short());
            }
        }
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

fn cut_short() -> Failure {
    Failure {
        kind: "closed",
        detail: "the connection was closed in the middle of the answer".into(),
    }
}

/// How the body is framed (RFC 9112 section 6.3: none for 1xx, 204 and 304) and whether the
/// connection stays open.
fn framing(
    status: u16,
    headers: &[httparse::Header<'_>],
    http11: bool,
) -> Result<(Framing, bool), Failure> {
    let mut keep_alive = http11;
    let mut length = None;
    let mut chunked = false;
    let mut encoded = false;
    for h in headers {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .parse()
                .map_err(|_| Failure::protocol(format!("Content-Length {value:?}")))?;
            if length.is_some_and(|l| l != n) {
                return Err(Failure::protocol("two different Content-Length headers"));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            encoded = true;
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            if !chunked {
                keep_alive = false;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && !http11 {
                    keep_alive = true;
                }
            }
        }
    }
    let framing = match (chunked, length) {
        _ if (100..200).contains(&status) || status == 204 || status == 304 => Framing::Length(0),
        (true, _) => Framing::Chunked,
        // Another transfer coding last: the body ends with the connection, whatever
        // Content-Length says (RFC 9112 section 6.3, items 3 and 4).
        (false, Some(n)) if !encoded => Framing::Length(n),
        (false, _) => {
            keep_alive = false;
            Framing::Close
        }
    };
    Ok((framing, keep_alive))
}

/// Appends a request head: `METHOD target HTTP/1.1`, `Host`, the headers (names as given),
/// `Content-Length`, and the empty line.
pub fn write_head(
    out: &mut Vec<u8>,
    method: &str,
    origin: &Origin,
    headers: &[(&str, &[u8])],
    content_length: usize,
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(origin.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(origin.authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(content_length).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
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

    #[test]
    fn framing_follows_rfc_9112() {
        let h = |name: &'static str, value: &'static [u8]| httparse::Header { name, value };
        let (f, keep) = framing(200, &[h("Content-Length", b"5")], true).unwrap();
        assert!(matches!(f, Framing::Length(5)) && keep);
        let (f, keep) = framing(200, &[h("Transfer-Encoding", b"gzip, chunked")], true).unwrap();
        assert!(matches!(f, Framing::Chunked) && keep);
        let (f, keep) = framing(
            200,
            &[h("Connection", b"close"), h("Content-Length", b"1")],
            true,
        )
        .unwrap();
        assert!(matches!(f, Framing::Length(1)) && !keep);
        let (f, keep) = framing(200, &[], true).unwrap();
        assert!(matches!(f, Framing::Close) && !keep);
        let (_, keep) = framing(
            200,
            &[h("Connection", b"Keep-Alive"), h("Content-Length", b"0")],
            false,
        )
        .unwrap();
        assert!(keep);
        assert!(
            framing(
                200,
                &[h("Content-Length", b"1"), h("Content-Length", b"2")],
                true
            )
            .is_err()
        );
        assert!(framing(200, &[h("Content-Length", b"x")], true).is_err());
        let (f, keep) = framing(
            200,
            &[h("Transfer-Encoding", b"gzip"), h("Content-Length", b"5")],
            true,
        )
        .unwrap();
        assert!(matches!(f, Framing::Close) && !keep);
    }
}
