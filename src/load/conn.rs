//! The lean HTTP/1.1 client of load mode: each worker owns one keep-alive connection made with
//! hyper directly. At 20,000+ requests/s reqwest's pool, per-request builder and URL handling
//! cost more than signing does; here a request is a prepared path and five headers.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HOST, HeaderName, HeaderValue, USER_AGENT,
};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use rustls_platform_verifier::ConfigVerifierExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::webhook;

const STRIPE_SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");

pub type Connection = SendRequest<Full<Bytes>>;

/// Why a request got no answer: a kind (the keys of `error_kinds` in the summary: connect,
/// tls, timeout, closed, other) and what the transport said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: &'static str,
    pub detail: String,
}

impl Failure {
    fn new(kind: &'static str, error: &(dyn std::error::Error + 'static)) -> Self {
        Self {
            kind,
            detail: crate::error::chain(error),
        }
    }

    fn timeout(after: Duration) -> Self {
        Self {
            kind: "timeout",
            detail: format!("no answer within {:.1} s", after.as_secs_f64()),
        }
    }
}

/// The receiver's URL, parsed once: where to connect and what every request carries.
pub struct Endpoint {
    host: String,
    port: u16,
    authority: HeaderValue,
    path: Uri,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
    url: String,
    /// `-H`: after Stripe's headers, replacing those of the same name.
    extra: Vec<crate::http::ExtraHeader>,
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
        endpoint.extra = extra;
        Ok(endpoint)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn parse(url: &str, timeout: Duration) -> Result<Endpoint, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
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
            "https" => Some(tls_for(&host)?),
            other => return Err(format!("load mode speaks http and https, not {other}")),
        };
        let authority = match parsed.port() {
            Some(p) => format!("{}:{p}", parsed.host_str().unwrap_or_default()),
            None => parsed.host_str().unwrap_or_default().to_owned(),
        };
        let path = &parsed[url::Position::BeforePath..url::Position::AfterQuery];
        Ok(Endpoint {
            host,
            port,
            authority: HeaderValue::try_from(authority).map_err(|e| e.to_string())?,
            path: Uri::try_from(path).map_err(|e| e.to_string())?,
            tls,
            timeout,
            url: url.to_owned(),
            extra: Vec::new(),
        })
    }

    /// A new keep-alive connection (TLS when the URL is https), within the timeout.
    pub async fn connect(&self) -> Result<Connection, Failure> {
        tokio::time::timeout(self.timeout, self.handshake())
            .await
            .map_err(|_| Failure::timeout(self.timeout))?
    }

    async fn handshake(&self) -> Result<Connection, Failure> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| Failure::new("connect", &e))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => start(TokioIo::new(tcp)).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| Failure::new("tls", &e))?;
                start(TokioIo::new(tls)).await
            }
        }
    }

    /// POSTs one signed event and reads the answer to the end; returns the status.
    pub async fn post(
        &self,
        conn: &mut Connection,
        body: String,
        signature: &str,
    ) -> Result<u16, Failure> {
        let request = self.request(body, signature)?;
        let exchange = async {
            let response = conn.send_request(request).await.map_err(failure)?;
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut read = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(failure)?;
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
                if read > crate::http::ANSWER.drain {
                    // Counted as a failure, so the worker drops this connection mid-answer.
                    return Err(Failure {
                        kind: "other",
                        detail: format!(
                            "answered {status} with more than {} KiB: the connection was dropped",
                            crate::http::ANSWER.drain / 1024
                        ),
                    });
                }
            }
            Ok(status)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Failure::timeout(self.timeout))?
    }

    fn request(&self, body: String, signature: &str) -> Result<Request<Full<Bytes>>, Failure> {
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.path.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.authority.clone());
        // Stripe's delivery headers (`webhook::request` sends the same).
        headers.insert(USER_AGENT, HeaderValue::from_static(webhook::USER_AGENT));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(webhook::CONTENT_TYPE),
        );
        headers.insert(ACCEPT, HeaderValue::from_static(webhook::ACCEPT));
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static(webhook::CACHE_CONTROL),
        );
        headers.insert(
            STRIPE_SIGNATURE,
            HeaderValue::from_str(signature).map_err(|e| Failure::new("other", &e))?,
        );
        for (name, value) in &self.extra {
            headers.insert(name.clone(), value.clone());
        }
        Ok(request)
    }
}

async fn start<T>(io: TokioIo<T>) -> Result<Connection, Failure>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io).await.map_err(failure)?;
    tokio::spawn(connection);
    Ok(sender)
}

fn failure(e: hyper::Error) -> Failure {
    let kind = if e.is_closed() || e.is_incomplete_message() || e.is_canceled() {
        "closed"
    } else if e.is_timeout() {
        "timeout"
    } else {
        "other"
    };
    Failure::new(kind, &e)
}

/// TLS as reqwest does it: the platform's trust store, HTTP/1.1 by ALPN.
fn tls_for(host: &str) -> Result<(TlsConnector, ServerName<'static>), String> {
    let mut config =
        ClientConfig::with_platform_verifier().map_err(|e| format!("TLS set-up: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_path_query_and_explicit_port() {
        let t = Duration::from_secs(1);
        let e = Endpoint::parse("http://127.0.0.1:8080/api/webhooks/stripe?x=1", t).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 8080));
        assert_eq!(e.authority, "127.0.0.1:8080");
        assert_eq!(e.path, "/api/webhooks/stripe?x=1");
        assert!(e.tls.is_none());
        let e = Endpoint::parse("https://hooks.example.com/stripe", t).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("hooks.example.com", 443));
        assert_eq!(e.authority, "hooks.example.com");
        assert!(e.tls.is_some());
        let e = Endpoint::parse("http://[::1]:9/", t).unwrap();
        assert_eq!(
            (e.host.as_str(), e.authority.to_str().unwrap()),
            ("::1", "[::1]:9")
        );
        assert!(Endpoint::parse("ftp://example.com/", t).is_err());
    }
}
