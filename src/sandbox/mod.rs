//! `stripe-ops sandbox`: one local server that plays both sides of CONTRACT.md on loopback: the
//! top-up app (section 1) on `--listen`, and the part of Stripe's API that stripe-ops calls
//! (section 3) on a second listener, with hosted checkout and webhook delivery between them.
//!
//! In-process use (demo, tests): `start(SandboxOptions) -> Sandbox`, then `app_url()`,
//! `stripe_api_url()`, `shutdown()`.

pub mod app;
pub mod aws_secrets;
pub mod checkout;
pub mod delivery;
pub mod faults;
pub mod persist;
pub mod state;
pub mod stripe;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::secret::{self, ExposeSecret, SecretString};
use crate::webhook::signature::{DEFAULT_TOLERANCE, Signer};

pub use checkout::{DECLINED_CARD, PayOutcome, TEST_CARD, pay_with_form_post};
pub use faults::{Fault, Faults};

/// Background webhook delivery: attempts per endpoint and the first retry delay (doubling).
#[derive(Debug, Clone, Copy)]
pub struct DeliveryPolicy {
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            backoff: Duration::from_millis(1000),
        }
    }
}

/// Everything `start` needs. `Default` is a healthy sandbox on free loopback ports with
/// generated secrets.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub listen: SocketAddr,
    /// `None`: the app's IP, a free port.
    pub stripe_listen: Option<SocketAddr>,
    /// Secrets the app accepts; empty: generate one (written to a 0600 file).
    pub webhook_secrets: Vec<SecretString>,
    /// `None`: generate an `sk_test_` key (written to a 0600 file).
    pub stripe_key: Option<SecretString>,
    pub faults: Faults,
    pub state_file: Option<PathBuf>,
    pub tolerance: i64,
    pub delivery: DeliveryPolicy,
    /// Read the secrets from AWS and follow redeploys.
    pub aws: Option<aws_secrets::AwsSource>,
    /// Where warnings and the AWS follower's lines go.
    pub out: Printer,
    /// How long a client may take to send headers or stay idle (`server::IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
    /// The account's default API version (`--api-version`; the catalogue's when None).
    pub api_version: Option<String>,
    /// The AWS endpoint (an emulator) where the sandbox, playing Stripe, makes the partner
    /// event sources of `amazon_eventbridge` destinations and puts their events.
    pub eventbridge_endpoint: Option<String>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            stripe_listen: None,
            webhook_secrets: Vec::new(),
            stripe_key: None,
            faults: Faults::default(),
            state_file: None,
            tolerance: DEFAULT_TOLERANCE,
            delivery: DeliveryPolicy::default(),
            aws: None,
            out: Printer::silent(),
            idle_timeout: crate::server::IDLE_TIMEOUT,
            api_version: None,
            eventbridge_endpoint: None,
        }
    }
}

/// State shared by every handler and background task.
pub struct Shared {
    pub app_url: String,
    pub stripe_api_url: String,
    pub store: Mutex<state::Store>,
    /// The webhook secrets the app accepts; replaced wholesale when AWS secrets change.
    signers: RwLock<Arc<[Signer]>>,
    pub tolerance: i64,
    pub faults: Faults,
    pub stripe: stripe::StripeSide,
    pub persist: Option<persist::Persister>,
    pub http: reqwest::Client,
    pub delivery: DeliveryPolicy,
    /// The account's default API version: what events name unless an endpoint is pinned.
    pub api_version: String,
    /// How many times the ECS service was checked for a redeploy (shown on /health).
    pub deployment_checks: std::sync::atomic::AtomicU64,
    pub out: Printer,
}

impl Shared {
    pub fn signers(&self) -> Arc<[Signer]> {
        self.signers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_webhook_secrets(&self, secrets: &[SecretString]) {
        let signers: Arc<[Signer]> = crate::webhook::signers(secrets).into();
        *self.signers.write().unwrap_or_else(|e| e.into_inner()) = signers;
    }

    pub fn store(&self) -> std::sync::MutexGuard<'_, state::Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a change of the Stripe side's endpoints: waits until it is on disk (with `--state`).
    pub async fn stripe_changed(&self) -> std::result::Result<(), String> {
        if self.persist.is_some() {
            let version = self.store().touch_external();
            return self.persisted(version).await;
        }
        Ok(())
    }

    /// After a change of the Stripe side's events: written soon, not waited for (Stripe's own
    /// record of an event is not part of any answer the app gives).
    pub fn stripe_touched(&self) {
        if let Some(p) = &self.persist {
            self.store().touch_external();
            p.nudge();
        }
    }

    /// Waits until the state as of `version` is on disk (no-op without `--state`); why not when
    /// the write failed, which the waiting handler answers with 503 (`unwritten`).
    pub async fn persisted(&self, version: u64) -> std::result::Result<(), String> {
        match &self.persist {
            Some(p) => p.wait_for(version).await,
            None => Ok(()),
        }
    }

    pub fn livemode(&self) -> bool {
        self.stripe.livemode()
    }
}

/// A running sandbox. Dropping it stops the servers too; `shutdown` does it gracefully.
pub struct Sandbox {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
    webhook_secret_file: Option<PathBuf>,
    stripe_key_file: Option<PathBuf>,
    /// The CA of the `meter-events.stripe.com` tunnel, for the Stripe CLI's `SSL_CERT_FILE`.
    meter_events_ca_file: PathBuf,
    _files: tempfile::TempDir,
}

impl Sandbox {
    pub fn app_url(&self) -> &str {
        &self.shared.app_url
    }

    pub fn stripe_api_url(&self) -> &str {
        &self.shared.stripe_api_url
    }

    /// The webhook URL the app serves (registered at the sandbox's Stripe as the first endpoint).
    pub fn webhook_url(&self) -> String {
        crate::http::join(&self.shared.app_url, app::WEBHOOK_PATH)
    }

    /// The first webhook secret the app accepts (also the app endpoint's secret).
    pub fn webhook_secret(&self) -> Option<SecretString> {
        self.shared.stripe.app_endpoint_secret()
    }

    pub fn stripe_key(&self) -> SecretString {
        self.shared.stripe.key()
    }

    /// The 0600 file holding the generated webhook secret, when one was generated.
    pub fn webhook_secret_file(&self) -> Option<&std::path::Path> {
        self.webhook_secret_file.as_deref()
    }

    /// The 0600 file holding the generated Stripe key, when one was generated.
    pub fn stripe_key_file(&self) -> Option<&std::path::Path> {
        self.stripe_key_file.as_deref()
    }

    /// The CA certificate (PEM, mode 0600) of the `meter-events.stripe.com` tunnel.
    pub fn meter_events_ca_file(&self) -> &std::path::Path {
        &self.meter_events_ca_file
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting connections, lets in-flight requests finish, flushes the state file.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.shared.stripe.listeners.close();
        for server in self.servers.drain(..) {
            let _ = server.await;
        }
        // Flush before stopping the writer, which is one of the background tasks.
        if let Some(p) = &self.shared.persist {
            let version = self.shared.store().version;
            if let Err(why) = p.wait_for(version).await {
                self.shared
                    .out
                    .warn(format!("the last changes are not on disk: {why}"));
            }
        }
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.shared.stripe.listeners.close();
        for task in self.background.iter().chain(&self.servers) {
            task.abort();
        }
    }
}

async fn bind(addr: SocketAddr, what: &str) -> Result<(TcpListener, String)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Error::usage(format!("cannot listen on {addr} for the {what}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::external(format!("no local address for the {what}: {e}")))?;
    Ok((listener, format!("http://{local}")))
}

/// Mode 0700: the folder of generated secrets is its owner's alone, even when a killed sandbox
/// leaves it behind.
#[cfg(unix)]
fn private_dir() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o700)
}

#[cfg(not(unix))]
fn private_dir() -> std::fs::Permissions {
    std::fs::metadata(std::env::temp_dir())
        .map(|m| m.permissions())
        .expect("the temporary folder exists")
}

fn generate_stripe_key() -> SecretString {
    SecretString::from(format!("sk_test_{}", secret::random_alnum(32)))
}

fn write_secret_file(dir: &std::path::Path, name: &str, value: &SecretString) -> Result<PathBuf> {
    let path = dir.join(name);
    secret::write_private(&path, format!("{}\n", value.expose_secret()).as_bytes())
        .map_err(|e| Error::external(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// Starts the app and the Stripe API on their listeners and returns once both accept
/// connections.
pub async fn start(opts: SandboxOptions) -> Result<Sandbox> {
    // The meter-events tunnel's CA, made beside the rest of the start.
    let tunnel = tokio::task::spawn_blocking(stripe::tunnel::Tunnel::generate);
    let (app_listener, app_url) = bind(opts.listen, "app").await?;
    let stripe_addr = opts
        .stripe_listen
        .unwrap_or_else(|| SocketAddr::new(opts.listen.ip(), 0));
    let (stripe_listener, stripe_api_url) = bind(stripe_addr, "Stripe API").await?;
    let files = tempfile::Builder::new()
        .prefix("stripe-ops-sandbox-")
        .permissions(private_dir())
        .tempdir()
        .map_err(|e| Error::external(format!("cannot create a temporary folder: {e}")))?;

    let mut webhook_secrets = opts.webhook_secrets.clone();
    let mut stripe_key = opts.stripe_key.clone();
    let mut deployment = None;
    if let Some(aws) = &opts.aws {
        let fetched = aws.fetch(&opts.out).await?;
        webhook_secrets = fetched.webhook_secrets;
        stripe_key = stripe_key.or(fetched.secret_key);
        deployment = fetched.deployment;
    }
    let mut webhook_secret_file = None;
    if webhook_secrets.is_empty() {
        let generated = secret::generate_webhook_secret();
        webhook_secret_file = Some(write_secret_file(
            files.path(),
            "webhook_secret",
            &generated,
        )?);
        webhook_secrets.push(generated);
    }
    let mut stripe_key_file = None;
    let stripe_key = match stripe_key {
        Some(k) => k,
        None => {
            let generated = generate_stripe_key();
            stripe_key_file = Some(write_secret_file(files.path(), "stripe_key", &generated)?);
            generated
        }
    };

    let (store, saved_stripe) = match &opts.state_file {
        Some(path) => persist::load(path)?,
        None => (state::Store::default(), None),
    };
    let persist = opts
        .state_file
        .as_ref()
        .map(|p| persist::Persister::new(p.clone(), store.version));
    let http = crate::http::client(Duration::from_secs(30))?;
    let app_webhook_url = crate::http::join(&app_url, app::WEBHOOK_PATH);
    let stripe = stripe::StripeSide::new(stripe_key, saved_stripe);
    stripe.register_app_endpoint(&app_webhook_url, webhook_secrets[0].clone());
    stripe
        .destinations
        .set_endpoint(opts.eventbridge_endpoint.clone());
    let tunnel = tunnel
        .await
        .map_err(|e| Error::external(format!("the meter-events CA: {e}")))?
        .map_err(Error::external)?;
    let ca_file = files.path().join("meter_events_ca.pem");
    secret::write_private(&ca_file, tunnel.ca_pem.as_bytes())
        .map_err(|e| Error::external(format!("cannot write {}: {e}", ca_file.display())))?;
    let _ = stripe.tunnel.set(Arc::new(tunnel));
    let shared = Arc::new(Shared {
        app_url,
        stripe_api_url,
        store: Mutex::new(store),
        signers: RwLock::new(crate::webhook::signers(&webhook_secrets).into()),
        tolerance: opts.tolerance,
        api_version: opts
            .api_version
            .clone()
            .unwrap_or_else(|| crate::webhook::versions::API_VERSION.to_owned()),
        faults: opts.faults.clone(),
        stripe,
        persist,
        http,
        delivery: opts.delivery,
        deployment_checks: Default::default(),
        out: opts.out.clone(),
    });

    let (stop, stopped) = watch::channel(false);
    let servers = vec![
        serve(
            app_listener,
            app::router(shared.clone()),
            stopped.clone(),
            opts.idle_timeout,
        ),
        serve(
            stripe_listener,
            stripe::router(shared.clone()),
            stopped.clone(),
            opts.idle_timeout,
        ),
    ];
    // The Stripe API's resource engine loads its embedded data on first use; loading it now, off
    // the start line's path, spares the first API call that wait.
    tokio::task::spawn_blocking(stripe::engine::Engine::get);
    let mut background = Vec::new();
    if let Some(p) = &shared.persist {
        background.push(tokio::spawn(p.clone().run(shared.clone())));
    }
    if let Some(aws) = opts.aws {
        background.push(tokio::spawn(aws.follow(shared.clone(), deployment)));
    }
    Ok(Sandbox {
        shared,
        stop,
        servers,
        background,
        webhook_secret_file,
        stripe_key_file,
        meter_events_ca_file: ca_file,
        _files: files,
    })
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    stopped: watch::Receiver<bool>,
    idle_timeout: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(crate::server::serve(
        listener,
        router,
        stopped,
        idle_timeout,
    ))
}

/// The start line: the two URLs and the 0600 files holding generated secrets (values are never
/// printed); one JSON line with `--json`, so that a parent process can read the ports.
pub fn announce(sandbox: &Sandbox, state_file: Option<&std::path::Path>, out: &Printer) {
    let path = |p: Option<&std::path::Path>| p.map(|p| p.display().to_string());
    let faults = sandbox.shared.faults.names();
    if out.json_mode() {
        out.json_line(&json!({
            "app": sandbox.app_url(),
            "stripe_api": sandbox.stripe_api_url(),
            "webhook_url": sandbox.webhook_url(),
            "webhook_secret_file": path(sandbox.webhook_secret_file()),
            "stripe_key_file": path(sandbox.stripe_key_file()),
            "state_file": path(state_file),
            "faults": faults,
            "eventbridge_endpoint": sandbox.shared.stripe.destinations.endpoint(),
            // The Stripe CLI reads its key from STRIPE_API_KEY and ignores STRIPE_API_BASE.
            // Its meter fixtures reach meter-events.stripe.com through the API's own port.
            "stripe_cli": {"api_base": sandbox.stripe_api_url(), "api_key_env": "STRIPE_API_KEY",
                           "https_proxy": sandbox.stripe_api_url(),
                           "ssl_cert_file": sandbox.meter_events_ca_file().display().to_string()},
        }));
        return;
    }
    out.line(format!(
        "app {}  stripe_api {}",
        sandbox.app_url(),
        sandbox.stripe_api_url()
    ));
    out.status(format!("webhook endpoint  {}", sandbox.webhook_url()));
    if let Some(p) = sandbox.webhook_secret_file() {
        out.status(format!("webhook secret in {}", p.display()));
    }
    if let Some(p) = sandbox.stripe_key_file() {
        out.status(format!("Stripe key in     {}", p.display()));
    }
    if !faults.is_empty() {
        out.status(format!("faults            {}", faults.join(", ")));
    }
    // The Stripe CLI reads its key from STRIPE_API_KEY (it ignores STRIPE_API_BASE): the line
    // names the key's file, never the key.
    let key = sandbox
        .stripe_key_file()
        .map_or("<your --stripe-key-file>".to_owned(), |p| {
            p.display().to_string()
        });
    if let Some(url) = sandbox.shared.stripe.destinations.endpoint() {
        out.status(format!(
            "EventBridge       destinations put events through {url}"
        ));
    }
    out.status(format!(
        "Stripe CLI        STRIPE_API_KEY=\"$(cat {key})\" stripe listen --api-base {} --forward-to URL",
        sandbox.stripe_api_url()
    ));
    out.status(format!(
        "meter events      HTTPS_PROXY={} SSL_CERT_FILE={} stripe trigger v1.billing.meter.…",
        sandbox.stripe_api_url(),
        sandbox.meter_events_ca_file().display()
    ));
    out.status("sandbox running; Ctrl-C or SIGTERM stops it");
}

/// A sandbox that stopped: nothing more to print.
pub struct Stopped;

impl crate::printer::Report for Stopped {
    fn json(&self) -> Value {
        Value::Null
    }
    fn human(&self, _: &Printer) -> Vec<String> {
        Vec::new()
    }
}
