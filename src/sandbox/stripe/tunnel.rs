//! `meter-events.stripe.com` on loopback, for the Stripe CLI: its meter fixtures send the stream
//! call to `api_base: https://meter-events.stripe.com` (stripe/stripe-cli `pkg/fixtures`:
//! `getAPIBase` takes a request's own `api_base` before `--api-base`), out of reach offline.
//! The CLI's HTTP client honours `HTTPS_PROXY` (`pkg/stripe/client.go`: `Proxy:
//! http.ProxyFromEnvironment`) and Go reads its trusted roots from `SSL_CERT_FILE`, so the
//! Stripe API's own port is also an HTTP proxy that answers `CONNECT` to that one host: it
//! terminates TLS with a certificate for `meter-events.stripe.com` from a CA the sandbox made at
//! start (its key never leaves memory; the CA is name-constrained to that host, so trusting it
//! vouches for nothing else) and serves the Stripe API inside the tunnel. Any other host is
//! refused (403): nothing leaves the machine. The start line names the CA's file (mode 0600):
//!
//! ```sh
//! HTTPS_PROXY=http://127.0.0.1:PORT SSL_CERT_FILE=/tmp/stripe-ops-sandbox-x/meter_events_ca.pem \
//!   stripe trigger v1.billing.meter.no_meter_found --api-base http://127.0.0.1:PORT
//! ```
//!
//! Go does not proxy loopback destinations, so `--api-base` calls still go straight to the API.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::sandbox::Shared;

/// The one host the tunnel serves, and its port.
pub const HOST: &str = "meter-events.stripe.com";
const TARGET: &str = "meter-events.stripe.com:443";
/// The TLS handshake, the request headers, and the whole tunnel each have a deadline: a peer
/// that stalls holds only its own task.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
const HEADERS_LIMIT: Duration = Duration::from_secs(10);
const TUNNEL_LIMIT: Duration = Duration::from_secs(300);

/// The CA (its certificate, PEM, and its key, in memory only) and the tunnel's TLS server,
/// made at the first `CONNECT` (the start line waits for the CA only).
pub struct Tunnel {
    pub ca_pem: String,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    acceptor: std::sync::OnceLock<Result<TlsAcceptor, String>>,
}

fn failed(e: rcgen::Error) -> String {
    format!("cannot make the meter-events certificate: {e}")
}

impl Tunnel {
    /// A fresh CA, name-constrained to `HOST`.
    pub fn generate() -> Result<Tunnel, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, GeneralSubtree, IsCa,
            KeyPair, KeyUsagePurpose, NameConstraints,
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.distinguished_name.push(
            DnType::CommonName,
            "stripe-ops sandbox (meter-events.stripe.com only)",
        );
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        ca.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName(HOST.to_owned())],
            excluded_subtrees: Vec::new(),
        });
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(failed)?)
            .map_err(failed)?;
        Ok(Tunnel {
            ca_pem: ca.pem(),
            ca,
            acceptor: std::sync::OnceLock::new(),
        })
    }

    /// The TLS server: a certificate for `HOST` the CA signs, made once.
    fn acceptor(&self) -> Result<TlsAcceptor, String> {
        self.acceptor
            .get_or_init(|| {
                use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair};
                let key = KeyPair::generate().map_err(failed)?;
                let mut leaf = CertificateParams::new(vec![HOST.to_owned()]).map_err(failed)?;
                leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                let leaf = leaf.signed_by(&key, &self.ca).map_err(failed)?;
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let mut config = rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_no_client_auth()
                    .with_single_cert(
                        vec![leaf.der().clone()],
                        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
                    )
                    .map_err(|e| e.to_string())?;
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Ok(TlsAcceptor::from(Arc::new(config)))
            })
            .clone()
    }
}

/// The Stripe API's outermost layer: a `CONNECT` to `meter-events.stripe.com:443` opens the
/// tunnel; any other `CONNECT` is refused; everything else goes on.
pub async fn layer(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if req.method() != Method::CONNECT {
        return next.run(req).await;
    }
    let target = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_ascii_lowercase());
    let Some(tunnel) = shared.stripe.tunnel.get().cloned() else {
        return refuse("the sandbox has no meter-events certificate");
    };
    if target.as_deref() != Some(TARGET) {
        return refuse(&format!(
            "the sandbox tunnels to {TARGET} only, never off this machine"
        ));
    }
    let acceptor = match tunnel.acceptor() {
        Ok(a) => a,
        Err(why) => return refuse(&why),
    };
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let accepted =
            tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(TokioIo::new(upgraded))).await;
        let Ok(Ok(stream)) = accepted else {
            return;
        };
        let service = TowerToHyperService::new(super::router(shared));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADERS_LIMIT)
            .serve_connection(TokioIo::new(stream), service);
        let _ = tokio::time::timeout(TUNNEL_LIMIT, conn).await;
    });
    StatusCode::OK.into_response()
}

fn refuse(why: &str) -> Response {
    (StatusCode::FORBIDDEN, why.to_owned()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_a_pem_certificate_and_signs_the_server_once() {
        let t = Tunnel::generate().unwrap();
        assert!(t.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(
            Tunnel::generate().unwrap().ca_pem,
            t.ca_pem,
            "fresh each time"
        );
        assert!(t.acceptor().is_ok());
        assert!(t.acceptor.get().is_some(), "made once, kept");
    }
}
