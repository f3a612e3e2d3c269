//! One delivery attempt of a stored event to a target, as Stripe makes it: the exact body
//! bytes, Stripe's delivery headers, the target's own headers, and the original or a fresh
//! `Stripe-Signature`. The spool's workers and the SQS consumer both deliver through it.
//!
//! Attempts go over the lean HTTP/1.1 client (`http1`), one pool of kept-alive connections
//! per target URL, or over reqwest for a URL an `HTTP_PROXY`-style variable applies to (the
//! lean client speaks to targets directly). Redirects are not followed: Stripe counts any
//! answer outside 2xx as a failed delivery, "including 3xx codes ... a URL redirection or a
//! 'Not Modified' response will be treated as a failure" (docs.stripe.com/webhooks, "Return a
//! 2xx response"), and so does the relay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_util::client::proxy::matcher::Matcher;
use reqwest::StatusCode;
use serde::Serialize;
use tokio_rustls::rustls::ClientConfig;

use super::spool::Event;
use super::targets::TargetSpec;
use crate::error::{Error, Result};
use crate::http::{ANSWER, Body};
use crate::http1::{Failure, Kept, Origin, write_head};
use crate::webhook::{self, signature};

/// The result of one delivery attempt, or `queued` when the target is still retrying older events.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub status: Option<u16>,
    pub ok: bool,
    pub ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
    /// The target's route does not let the event through: nothing to deliver.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub filtered: bool,
}

impl Outcome {
    /// The outcome for a target whose route keeps the event away.
    pub fn filtered(name: &str) -> Outcome {
        Outcome {
            name: name.to_owned(),
            status: None,
            ok: true,
            ms: 0.0,
            error: None,
            queued: false,
            filtered: true,
        }
    }
}

/// How long a kept-alive connection may stay idle before it is closed rather than reused.
const IDLE: Duration = Duration::from_secs(30);
/// Idle connections kept per target URL.
const MAX_IDLE: usize = 64;

/// What delivers attempts: cheap to clone, shared by every target.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// Of a whole attempt, answer included.
    timeout: Duration,
    connect_timeout: Duration,
    tls: std::result::Result<Arc<ClientConfig>, String>,
    proxies: Matcher,
    pools: Mutex<HashMap<String, Arc<Pool>>>,
    /// For the targets a proxy variable applies to.
    proxied: reqwest::Client,
}

/// A target URL's connections: the lean client's, or none when it goes through a proxy.
struct Pool {
    kept: std::result::Result<Kept, String>,
    proxied: bool,
}

impl Client {
    /// Attempts time out after `timeout` (connecting after at most 10 s of it); `insecure`
    /// accepts any TLS certificate (`--insecure`).
    pub fn new(timeout: Duration, insecure: bool) -> Result<Client> {
        let proxied = crate::http::builder(timeout)
            .danger_accept_invalid_certs(insecure)
            .build()
            .map_err(|e| Error::external(format!("cannot build HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                timeout,
                connect_timeout: timeout.min(Duration::from_secs(10)),
                tls: tls_config(insecure),
                proxies: Matcher::from_system(),
                pools: Mutex::new(HashMap::new()),
                proxied,
            }),
        })
    }

    fn pool(&self, url: &str) -> Arc<Pool> {
        let mut pools = self.inner.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pools.get(url) {
            return p.clone();
        }
        let proxied = url
            .parse::<hyper::Uri>()
            .is_ok_and(|uri| self.inner.proxies.intercept(&uri).is_some());
        let pool = Arc::new(Pool {
            kept: Origin::new(url, self.inner.tls.as_ref().ok())
                .map(|origin| Kept::new(origin, MAX_IDLE, IDLE))
                .map_err(|e| match (&self.inner.tls, url.starts_with("https:")) {
                    (Err(tls), true) => tls.clone(),
                    _ => e,
                }),
            proxied,
        });
        pools.insert(url.to_owned(), pool.clone());
        pool
    }
}

/// One POST of an event to a target: exact body bytes, Stripe's delivery headers with the
/// original Content-Type, and either the original Stripe-Signature or a fresh one made with the
/// target's own secret (over the same bytes).
pub async fn attempt(client: &Client, spec: &TargetSpec, event: &Event) -> Outcome {
    let started = Instant::now();
    let signature = match &spec.signer {
        Some(signer) => Some(signature::header(
            crate::timestamp::unix_now(),
            &event.body,
            std::slice::from_ref(signer),
        )),
        None => event.signature.clone(),
    };
    let pool = client.pool(&spec.url);
    let result = if pool.proxied {
        through_proxy(client, spec, event, signature.as_deref()).await
    } else {
        let exchange = lean(client, &pool, spec, event, signature.as_deref());
        match tokio::time::timeout(client.inner.timeout, exchange).await {
            Ok(r) => r.map_err(|f| f.describe()),
            Err(_) => Err(Failure::timeout(client.inner.timeout).describe()),
        }
    };
    let (status, error) = match result {
        Ok((status, body)) => {
            let error = (!(200..300).contains(&status)).then(|| {
                let shown = StatusCode::from_u16(status)
                    .map_or_else(|_| status.to_string(), |s| s.to_string());
                format!(
                    "answered {shown}: {}",
                    crate::http::excerpt(&body.text(), 160)
                )
            });
            (Some(status), error)
        }
        Err(e) => (None, Some(e)),
    };
    Outcome {
        name: spec.name.clone(),
        status,
        ok: error.is_none(),
        ms: started.elapsed().as_secs_f64() * 1000.0,
        error,
        queued: false,
        filtered: false,
    }
}

/// The attempt over a kept-alive connection of the target's (`Kept::exchange`: a reused one the
/// target closed as the request went out is replaced once).
async fn lean(
    client: &Client,
    pool: &Pool,
    spec: &TargetSpec,
    event: &Event,
    signature: Option<&str>,
) -> std::result::Result<(u16, Body), Failure> {
    let kept = pool.kept.as_ref().map_err(|e| Failure {
        kind: "other",
        detail: e.clone(),
    })?;
    let write = |out: &mut Vec<u8>, origin: &Origin| {
        write_request(out, origin, spec, event, signature);
    };
    let answer = kept
        .exchange(client.inner.connect_timeout, write, ANSWER)
        .await?;
    Ok((answer.status, answer.body))
}

fn write_request(
    out: &mut Vec<u8>,
    origin: &Origin,
    spec: &TargetSpec,
    event: &Event,
    signature: Option<&str>,
) {
    let content_type = event
        .content_type
        .as_deref()
        .unwrap_or(webhook::CONTENT_TYPE);
    // The target's own headers replace Stripe's where both set one.
    let stripe = [
        ("Content-Type", content_type.as_bytes()),
        ("User-Agent", webhook::USER_AGENT.as_bytes()),
        ("Accept", webhook::ACCEPT.as_bytes()),
        ("Cache-Control", webhook::CACHE_CONTROL.as_bytes()),
    ];
    let mut headers: Vec<(&str, &[u8])> = stripe
        .into_iter()
        .filter(|(name, _)| !spec.headers.contains_key(*name))
        .collect();
    headers.extend(spec.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    if let Some(sig) = signature {
        headers.push(("Stripe-Signature", sig.as_bytes()));
    }
    write_head(out, "POST", origin, &headers, event.body.len());
    out.extend_from_slice(&event.body);
}

/// The attempt through reqwest, which applies the proxy variables.
async fn through_proxy(
    client: &Client,
    spec: &TargetSpec,
    event: &Event,
    signature: Option<&str>,
) -> std::result::Result<(u16, Body), String> {
    use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, USER_AGENT};
    let mut req = client
        .inner
        .proxied
        .post(&spec.url)
        .header(
            CONTENT_TYPE,
            event
                .content_type
                .as_deref()
                .unwrap_or(webhook::CONTENT_TYPE),
        )
        .header(USER_AGENT, webhook::USER_AGENT)
        .header(ACCEPT, webhook::ACCEPT)
        .header(CACHE_CONTROL, webhook::CACHE_CONTROL)
        .headers(spec.headers.clone())
        .body(event.body.clone());
    if let Some(sig) = signature {
        req = req.header("Stripe-Signature", sig);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = crate::http::read_body(resp, ANSWER)
                .await
                .unwrap_or_default();
            Ok((status, body))
        }
        Err(e) => Err(crate::http::describe_failure(&e)),
    }
}

/// TLS for targets: the platform's trust store (as reqwest), HTTP/1.1 by ALPN; with
/// `insecure`, any certificate (the handshake's signatures are still checked).
fn tls_config(insecure: bool) -> std::result::Result<Arc<ClientConfig>, String> {
    use rustls_platform_verifier::ConfigVerifierExt;
    let mut config = if insecure {
        let builder = ClientConfig::builder();
        let provider = builder.crypto_provider().clone();
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        ClientConfig::with_platform_verifier().map_err(|e| format!("TLS set-up: {e}"))?
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `--insecure`: every certificate is taken; the handshake's signatures are still verified
/// with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<tokio_rustls::rustls::crypto::CryptoProvider>);

impl tokio_rustls::rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[tokio_rustls::rustls::pki_types::CertificateDer<'_>],
        _server_name: &tokio_rustls::rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: tokio_rustls::rustls::pki_types::UnixTime,
    ) -> std::result::Result<
        tokio_rustls::rustls::client::danger::ServerCertVerified,
        tokio_rustls::rustls::Error,
    > {
        Ok(tokio_rustls::rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> std::result::Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        tokio_rustls::rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        dss: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> std::result::Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        tokio_rustls::rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<tokio_rustls::rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
