//! Reading an answer: the status line and headers parsed with `httparse`, 1xx answers skipped,
//! the body framed by length, chunks or the connection's end (RFC 9112), kept and drained within
//! `http::Limits`.

use super::{Conn, Failure};
use crate::http::{Body, Limits};

/// Most bytes of an answer's status line and headers.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers in an answer.
const MAX_HEADERS: usize = 100;
/// Most bytes reserved ahead for a body of announced length: a peer announcing more without
/// sending it gets no larger allocation than this.
const RESERVE_AT_MOST: usize = 1 << 20;

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
    pub(super) async fn read_answer(&mut self, limits: Limits) -> Result<Answer, Failure> {
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
        // The room for what is announced, at once: grown as the pieces came, an SQS receive's
        // 50 KB answer took four allocations of doubling size, each a copy of the last.
        let room = limits
            .keep
            .saturating_sub(body.kept.len())
            .min(RESERVE_AT_MOST);
        body.kept
            .reserve(usize::try_from(left).unwrap_or(usize::MAX).min(room));
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

#[cfg(test)]
mod tests {
    use super::*;

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
