//! The receiver of load mode: its URL parsed once, and each request written over the lean
//! HTTP/1.1 client (`http1`) on the worker's own kept-alive connection: the head and the body
//! in one write, the answer read in the worker's task. hyper's client (a connection task and a
//! channel per request) and reqwest's pool cost more per request than signing does.

use std::sync::Arc;
use std::time::Duration;

use rustls_platform_verifier::ConfigVerifierExt;
use tokio_rustls::rustls::ClientConfig;

pub use crate::http1::{Conn as Connection, Failure};
use crate::http1::{Origin, write_head};
use crate::webhook;

/// The receiver's URL, parsed once: where to connect and what every request carries.
pub struct Endpoint {
    origin: Origin,
    timeout: Duration,
    url: String,
    /// `-H`: after Stripe's headers, replacing those of the same name.
    extra: Vec<(String, Vec<u8>)>,
}

impl Endpoint {
    /// The receiver of a load run; a URL it cannot use is exit 2.
    pub fn new(
        url: &str,
        timeout: Duration,
        extra: Vec<crate::http::ExtraHeader>,
    ) -> crate::error::Result<Endpoint> {
        let mut endpoint = Endpoint::parse(url, timeout).map_err(|e| {
            crate::error::Error::usage(format!("--to {url:?} is not a usable URL: {e}"))
        })?;
        endpoint.extra = extra
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        Ok(endpoint)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn parse(url: &str, timeout: Duration) -> Result<Endpoint, String> {
        let tls = match url.starts_with("https:") {
            true => Some(tls()?),
            false => None,
        };
        let origin = Origin::new(url, tls.as_ref())
            .map_err(|e| e.replace("the scheme is", "load mode speaks http and https, not"))?;
        Ok(Endpoint {
            origin,
            timeout,
            url: url.to_owned(),
            extra: Vec::new(),
        })
    }

    /// A new keep-alive connection (TLS when the URL is https), within the timeout.
    pub async fn connect(&self) -> Result<Connection, Failure> {
        tokio::time::timeout(self.timeout, self.origin.connect())
            .await
            .map_err(|_| Failure::timeout(self.timeout))?
    }

    /// POSTs one signed event and reads the answer (up to `http::ANSWER`'s limits; one longer
    /// is a failure, so that the worker drops the connection mid-answer); returns the status.
    pub async fn post(
        &self,
        conn: &mut Connection,
        body: &[u8],
        signature: &str,
    ) -> Result<u16, Failure> {
        let write = |out: &mut Vec<u8>| self.write_request(out, body, signature);
        self.exchange(conn, write, std::time::Instant::now()).await
    }

    /// `post` of a request already written (by `write_request` or spliced from its output),
    /// its timeout counted from `from` (the caller's clock reading: one fewer per request).
    pub async fn post_request(
        &self,
        conn: &mut Connection,
        request: &[u8],
        from: std::time::Instant,
    ) -> Result<u16, Failure> {
        let write = |out: &mut Vec<u8>| out.extend_from_slice(request);
        self.exchange(conn, write, from).await
    }

    async fn exchange(
        &self,
        conn: &mut Connection,
        write: impl FnOnce(&mut Vec<u8>),
        from: std::time::Instant,
    ) -> Result<u16, Failure> {
        let deadline = tokio::time::Instant::from_std(from) + self.timeout;
        let answer = tokio::time::timeout_at(deadline, conn.exchange(write, crate::http::ANSWER))
            .await
            .map_err(|_| Failure::timeout(self.timeout))??;
        if answer.body.cut {
            return Err(Failure {
                kind: "other",
                detail: format!(
                    "answered {} with more than {} KiB: the connection was dropped",
                    answer.status,
                    crate::http::ANSWER.drain / 1024
                ),
            });
        }
        Ok(answer.status)
    }

    /// Stripe's delivery headers (`webhook::request` sends the same), then `-H`.
    pub(super) fn write_request(&self, out: &mut Vec<u8>, body: &[u8], signature: &str) {
        let stripe = [
            ("User-Agent", webhook::USER_AGENT.as_bytes()),
            ("Content-Type", webhook::CONTENT_TYPE.as_bytes()),
            ("Accept", webhook::ACCEPT.as_bytes()),
            ("Cache-Control", webhook::CACHE_CONTROL.as_bytes()),
            ("Stripe-Signature", signature.as_bytes()),
        ];
        let mut headers: Vec<(&str, &[u8])> = stripe
            .into_iter()
            .filter(|(name, _)| !self.extra.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
            .collect();
        headers.extend(self.extra.iter().map(|(n, v)| (n.as_str(), v.as_slice())));
        write_head(out, "POST", &self.origin, &headers, body.len());
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
impl Endpoint {
    pub(super) fn set_extra(&mut self, extra: &[(&str, &[u8])]) {
        self.extra = extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.to_vec()))
            .collect();
    }
}

/// TLS as reqwest does it: the platform's trust store, HTTP/1.1 by ALPN.
fn tls() -> Result<Arc<ClientConfig>, String> {
    let mut config =
        ClientConfig::with_platform_verifier().map_err(|e| format!("TLS set-up: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_path_query_and_explicit_port() {
        let t = Duration::from_secs(1);
        let e = Endpoint::parse("http://127.0.0.1:8080/api/webhooks/stripe?x=1", t).unwrap();
        assert_eq!(e.origin.authority, "127.0.0.1:8080");
        assert_eq!(e.origin.target, "/api/webhooks/stripe?x=1");
        assert!(!e.origin.is_tls());
        let e = Endpoint::parse("https://hooks.example.com/stripe", t).unwrap();
        assert_eq!(e.origin.authority, "hooks.example.com");
        assert!(e.origin.is_tls());
        let e = Endpoint::parse("http://[::1]:9/", t).unwrap();
        assert_eq!(e.origin.authority, "[::1]:9");
        let e = Endpoint::parse("ftp://example.com/", t).err().unwrap();
        assert!(e.contains("load mode speaks http and https"), "{e}");
    }

    #[test]
    fn extra_headers_replace_stripes_of_the_same_name() {
        let mut e = Endpoint::parse("http://127.0.0.1:9/hook", Duration::from_secs(1)).unwrap();
        e.extra = vec![("user-agent".into(), b"mine".to_vec())];
        let mut out = Vec::new();
        e.write_request(&mut out, b"{}", "t=1,v1=ab");
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("POST /hook HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nuser-agent: mine\r\n") && !text.contains("Stripe/1.0"));
        assert!(text.contains("\r\nStripe-Signature: t=1,v1=ab\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\n\r\n{}"), "{text}");
    }
}
