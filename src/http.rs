//! The HTTP client every command uses (reqwest with rustls), and how answers are quoted in
//! messages: short, single-line and scrubbed of secrets.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::error::{Error, Result};

pub const USER_AGENT: &str = concat!("stripe-ops/", env!("CARGO_PKG_VERSION"));

pub fn client(timeout: Duration) -> Result<reqwest::Client> {
    builder(timeout)
        .build()
        .map_err(|e| Error::external(format!("cannot build HTTP client: {e}")))
}

pub fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
}

/// How much of an answer is read. `keep` bytes are kept (for parsing or an excerpt); the rest
/// is read and dropped up to `drain` bytes in all, then the connection is closed: a peer
/// streaming an endless answer costs neither memory nor time beyond these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub keep: usize,
    pub drain: u64,
}

/// A receiver's answer to a delivery: only an excerpt and a diagnosis are ever made of it.
pub const ANSWER: Limits = Limits {
    keep: 4 * 1024,
    drain: 1024 * 1024,
};

/// An API answer that is parsed (Stripe's, the app's, AWS's): Stripe's largest lists are a few
/// MiB; more than this is not an answer stripe-ops can use.
pub const API: Limits = Limits {
    keep: 16 * 1024 * 1024,
    drain: 16 * 1024 * 1024,
};

/// An answer's body as far as it was read.
#[derive(Debug, Clone, Default)]
pub struct Body {
    /// The first `Limits::keep` bytes.
    pub kept: Vec<u8>,
    /// Bytes read in all (kept and dropped).
    pub len: u64,
    /// The answer was longer than `Limits::drain`: the connection was dropped there.
    pub cut: bool,
}

impl Body {
    /// The kept bytes as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.kept).into_owned()
    }

    /// The kept bytes as text, moved rather than copied when they are UTF-8 (an SQS receive's
    /// answer is about 50 KB).
    pub fn into_text(self) -> String {
        String::from_utf8(self.kept)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// More was read than kept.
    pub fn truncated(&self) -> bool {
        self.cut || self.len > self.kept.len() as u64
    }
}

/// Reads an answer's body within `limits`. The client's timeout bounds this read too (reqwest
/// times the whole exchange, body included).
pub async fn read_body(
    mut resp: reqwest::Response,
    limits: Limits,
) -> std::result::Result<Body, reqwest::Error> {
    let mut body = Body::default();
    while let Some(chunk) = resp.chunk().await? {
        body.len += chunk.len() as u64;
        let room = limits.keep.saturating_sub(body.kept.len());
        body.kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len >= limits.drain {
            // Dropping the response closes the connection: the rest is never read.
            body.cut = true;
            break;
        }
    }
    Ok(body)
}

/// An HTTP answer: status, body (as far as it was kept), latency.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
    pub ms: f64,
    /// The answer was longer than what was kept.
    pub truncated: bool,
}

impl Reply {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
    pub fn excerpt(&self) -> String {
        excerpt(&self.body, 200)
    }
}

/// Reads a response into a `Reply` within `limits`, timed from `started`; a body cut off by
/// the peer is a transport failure.
pub async fn reply(
    resp: reqwest::Response,
    method: &str,
    url: &str,
    started: Instant,
    limits: Limits,
) -> Result<Reply> {
    let status = resp.status();
    let body = read_body(resp, limits)
        .await
        .map_err(|e| send_error(method, url, &e))?;
    Ok(Reply {
        status,
        truncated: body.truncated(),
        body: body.into_text(),
        ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// A short, single-line, secret-free excerpt of an answer body for error messages. Text from the
/// network: control characters (terminal escapes) are written as escapes.
pub fn excerpt(body: &str, max: usize) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let flat = crate::printer::escape_controls(&flat).into_owned();
    let scrubbed = crate::secret::scrub(&flat);
    if scrubbed.chars().count() <= max {
        scrubbed.into_owned()
    } else {
        let cut: String = scrubbed.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// A URL the user gave, checked: absolute, http or https, with a host and a valid port.
/// Anything else is an input error (exit 2) naming `what` (the flag, variable or config key),
/// not a network failure later.
pub fn check_url(what: &str, url: &str) -> Result<String> {
    parse_url(url).map_err(|why| Error::usage(format!("{what} {url:?} {why}")))
}

/// A clap value parser for URL flags.
pub fn url_arg(url: &str) -> std::result::Result<String, String> {
    parse_url(url)
}

/// A request header given on the command line (`-H "Name: value"`, as curl and hey take it).
pub type ExtraHeader = (reqwest::header::HeaderName, reqwest::header::HeaderValue);

/// Headers that frame the request or the connection: set by hand they break the delivery (a
/// `Content-Length` that is not the body's sends part of it, or makes the receiver wait for
/// bytes that never come), so `-H` refuses them.
const FRAMING_HEADERS: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
];

/// Parses `Name: value` (spaces around the value trimmed, as curl does).
pub fn header_arg(s: &str) -> std::result::Result<ExtraHeader, String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected \"Name: value\""))?;
    let name = reqwest::header::HeaderName::try_from(name.trim())
        .map_err(|_| format!("{:?} is not a valid header name", name.trim()))?;
    if FRAMING_HEADERS.contains(&name.as_str()) {
        return Err(format!(
            "{name} frames the request: stripe-ops sets it from the body and the URL, and a value given by hand would break the delivery"
        ));
    }
    let value = reqwest::header::HeaderValue::try_from(value.trim())
        .map_err(|_| format!("the value of {name} is not a valid header value"))?;
    Ok((name, value))
}

/// The extra headers as a map in which each replaces a default of the same name.
pub fn header_map(extra: &[ExtraHeader]) -> reqwest::header::HeaderMap {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in extra {
        map.insert(name.clone(), value.clone());
    }
    map
}

fn parse_url(url: &str) -> std::result::Result<String, String> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err("is empty; give an http:// or https:// URL".to_owned());
    }
    let parsed = url::Url::parse(trimmed).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => {
            "is not an absolute URL; give one like https://app.example.com".to_owned()
        }
        other => format!("is not a usable URL: {other}"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "is not an http:// or https:// URL (its scheme is {:?}; a bare host:port needs http:// in front)",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("has no host".to_owned());
    }
    Ok(trimmed.to_owned())
}

/// A URL as it may be shown: with any password replaced by `***` (`http://user:***@host/`).
/// URLs come from users and configs, and `https://user:pass@host` carries a credential.
pub fn display_url(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        // Not a URL: shown only up to an `@`, which may end a credential.
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_owned(),
        },
    }
}

/// The URL without its password (`http://user@host/`), for what is stored.
pub fn without_password(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(None);
            parsed.to_string().trim_end_matches('/').to_owned()
        }
        _ => url.to_owned(),
    }
}

/// Joins a base URL and a path without doubling or losing the slash.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Classifies a reqwest failure: a timeout or refused connection is an external failure (exit 3).
pub fn send_error(what: &str, url: &str, e: &reqwest::Error) -> Error {
    Error::external(format!("{what} {url} {}", describe_failure(e)))
}

/// What went wrong with a request that got no answer: `timed out: …`, `could not connect: …`
/// or `failed: …`, with the chain of causes.
pub fn describe_failure(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    format!("{kind}: {}", crate::error::chain(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn into_text_moves_utf8_and_replaces_what_is_not() {
        let kept = b"{\"ok\":true}".to_vec();
        let at = kept.as_ptr();
        let text = Body {
            kept,
            ..Body::default()
        }
        .into_text();
        assert_eq!((text.as_str(), text.as_ptr()), ("{\"ok\":true}", at));
        let broken = Body {
            kept: b"a\xffb".to_vec(),
            ..Body::default()
        };
        assert_eq!(broken.into_text(), "a\u{fffd}b");
    }

    #[test]
    fn excerpt_is_short_flat_and_scrubbed() {
        let e = excerpt("{\n \"key\": \"sk_test_abc\" }", 100);
        assert_eq!(e, "{ \"key\": \"[REDACTED]\" }");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }

    #[test]
    fn urls_from_users_are_checked_as_input() {
        assert_eq!(
            url_arg(" https://a.example/x "),
            Ok("https://a.example/x".into())
        );
        assert!(url_arg("http://127.0.0.1:8080/hook").is_ok());
        for bad in [
            "",
            "not a url",
            "ftp://x/y",
            "http://h:99999",
            "localhost:8080",
            "http://",
            "/path",
        ] {
            let why = url_arg(bad).unwrap_err();
            assert!(!why.is_empty(), "{bad}");
        }
        let e = check_url("--to", "ftp://x").unwrap_err();
        assert_eq!(e.exit.code(), 2);
        assert!(
            e.message().starts_with("--to \"ftp://x\""),
            "{}",
            e.message()
        );
        assert_eq!(excerpt("a\u{1b}[31mred", 50), "a\\u{1b}[31mred");
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            display_url("http://u:pass@h.example:8080/x?y=1"),
            "http://u:***@h.example:8080/x?y=1"
        );
        assert_eq!(display_url("https://h.example/x"), "https://h.example/x");
        assert_eq!(display_url("http://u@h/"), "http://u@h/");
        assert!(!display_url("not a url u:pass@h").contains("pass"));
    }

    #[test]
    fn framing_headers_are_refused_by_name() {
        for h in [
            "Content-Length: 5",
            "host: evil",
            "Transfer-Encoding: chunked",
            "Connection: close",
        ] {
            let e = header_arg(h).unwrap_err();
            assert!(e.contains("frames the request"), "{h}: {e}");
        }
        assert!(header_arg("X-Trace: 1").is_ok());
        assert!(header_arg("User-Agent: probe/1").is_ok());
    }

    #[test]
    fn join_handles_slashes() {
        assert_eq!(join("http://a/", "/b"), "http://a/b");
        assert_eq!(join("http://a", "b"), "http://a/b");
    }
}
