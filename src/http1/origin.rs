//! Where a URL's requests go (host, port, TLS, the `Host` value and the target), a new
//! connection to it, and the request head that names it.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use super::{Conn, Failure, Stream};

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
