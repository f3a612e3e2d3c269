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

use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::secret::{self, ExposeSecret, SecretString};
use crate::signature::{DEFAULT_TOLERANCE, Signer};
use crate::{output, runtime};

pub use checkout::{DECLINED_CARD, PayOutcome, TEST_CARD, pay_with_form_post};
pub use faults::{Fault, Faults};

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Address of the app (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Address of the Stripe API (default: the app's host, a free port)
    #[arg(long, value_name = "ADDR")]
    pub stripe_listen: Option<SocketAddr>,
    /// File holding a webhook secret the app accepts (repeatable, for overlapping rotations);
    /// without one a fresh secret is generated and its file named in the start line
    #[arg(long = "webhook-secret-file", value_name = "FILE")]
    pub webhook_secret_files: Vec<PathBuf>,
    /// File holding the Stripe API key (sk_test_… or sk_live_…); default: a generated sk_test_ key
    #[arg(long, value_name = "FILE")]
    pub stripe_key_file: Option<PathBuf>,
    /// Break the app on purpose (repeatable): no-signature-check, ignore-tolerance,
    /// double-credit, racy-credit, webhook-500, slow-webhook=MS, drop-metadata
    #[arg(long = "fault", value_name = "NAME[=VALUE]")]
    pub faults: Vec<Fault>,
    /// Persist the app's state to FILE (atomic writes, mode 0600) so a restart keeps balances
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Webhook signature tolerance in seconds
    #[arg(long, default_value_t = DEFAULT_TOLERANCE, value_name = "SECS")]
    pub tolerance: i64,
    /// Read STRIPE_WEBHOOK_SECRET and STRIPE_SECRET_KEY from AWS Secrets Manager (needs --env),
    /// and re-read them whenever the ECS service's primary deployment changes
    #[arg(long, requires = "env")]
    pub secrets_from_aws: bool,
    /// Environment whose secrets and ECS service to use with --secrets-from-aws
    #[arg(long, value_name = "NAME", requires = "secrets_from_aws")]
    pub env: Option<String>,
    /// AWS region (else AWS_REGION, else the config, else us-east-1)
    #[arg(long)]
    pub region: Option<String>,
    /// AWS endpoint override, for local emulators (else AWS_ENDPOINT_URL)
    #[arg(long, value_name = "URL")]
    pub aws_endpoint_url: Option<String>,
    /// How often to poll the ECS service for a new deployment, in milliseconds
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub aws_poll_ms: u64,
    /// Webhook delivery attempts per endpoint (Stripe retries for days; this bounds it)
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub delivery_attempts: u32,
    /// Delay before the first retry; doubles after each failed attempt
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub delivery_backoff_ms: u64,
}

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
    /// How many times the ECS service was checked for a redeploy (shown on /health).
    pub deployment_checks: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub fn signers(&self) -> Arc<[Signer]> {
        self.signers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_webhook_secrets(&self, secrets: &[SecretString]) {
        let signers: Arc<[Signer]> = crate::events::signers(secrets).into();
        *self.signers.write().unwrap_or_else(|e| e.into_inner()) = signers;
    }

    pub fn store(&self) -> std::sync::MutexGuard<'_, state::Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a change of the Stripe side's endpoints: waits until it is on disk (with `--state`).
    pub async fn stripe_changed(&self) {
        if self.persist.is_some() {
            let version = self.store().touch_external();
            self.persisted(version).await;
        }
    }

    /// Waits until the state as of `version` is on disk (no-op without `--state`).
    pub async fn persisted(&self, version: u64) {
        if let Some(p) = &self.persist {
            p.wait_for(version).await;
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

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting connections, lets in-flight requests finish, flushes the state file.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for server in self.servers.drain(..) {
            let _ = server.await;
        }
        // Flush before stopping the writer, which is one of the background tasks.
        if let Some(p) = &self.shared.persist {
            let version = self.shared.store().version;
            p.wait_for(version).await;
        }
        for task in self.background.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
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
    let (app_listener, app_url) = bind(opts.listen, "app").await?;
    let stripe_addr = opts
        .stripe_listen
        .unwrap_or_else(|| SocketAddr::new(opts.listen.ip(), 0));
    let (stripe_listener, stripe_api_url) = bind(stripe_addr, "Stripe API").await?;
    let files = tempfile::Builder::new()
        .prefix("stripe-ops-sandbox-")
        .tempdir()
        .map_err(|e| Error::external(format!("cannot create a temporary folder: {e}")))?;

    let mut webhook_secrets = opts.webhook_secrets.clone();
    let mut stripe_key = opts.stripe_key.clone();
    let mut deployment = None;
    if let Some(aws) = &opts.aws {
        let fetched = aws.fetch().await?;
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
    let shared = Arc::new(Shared {
        app_url,
        stripe_api_url,
        store: Mutex::new(store),
        signers: RwLock::new(crate::events::signers(&webhook_secrets).into()),
        tolerance: opts.tolerance,
        faults: opts.faults.clone(),
        stripe,
        persist,
        http,
        delivery: opts.delivery,
        deployment_checks: Default::default(),
    });

    let (stop, stopped) = watch::channel(false);
    let servers = vec![
        serve(app_listener, app::router(shared.clone()), stopped.clone()),
        serve(
            stripe_listener,
            stripe::router(shared.clone()),
            stopped.clone(),
        ),
    ];
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
        _files: files,
    })
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut stopped: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            output::warn(format!("sandbox server stopped: {e}"));
        }
    })
}

impl SandboxArgs {
    fn options(&self, ctx: &Ctx) -> Result<SandboxOptions> {
        if self.tolerance < 0 {
            return Err(Error::usage("--tolerance must not be negative"));
        }
        if self.delivery_attempts == 0 {
            return Err(Error::usage("--delivery-attempts must be at least 1"));
        }
        let webhook_secrets = self
            .webhook_secret_files
            .iter()
            .map(|f| secret::read_file(f, "webhook secret"))
            .collect::<Result<Vec<_>>>()?;
        webhook_secrets
            .iter()
            .for_each(secret::warn_unless_webhook_secret);
        let stripe_key = self
            .stripe_key_file
            .as_ref()
            .map(|f| stripe::read_key_file(f))
            .transpose()?;
        let aws = if self.secrets_from_aws {
            if !self.webhook_secret_files.is_empty() {
                return Err(Error::usage(
                    "--secrets-from-aws and --webhook-secret-file are exclusive",
                ));
            }
            let name = self.env.as_deref().expect("clap requires --env");
            let overrides = crate::config::Overrides {
                region: self.region.clone(),
                aws_endpoint_url: self.aws_endpoint_url.clone(),
                ..Default::default()
            };
            let settings = ctx.config()?.env(name, &overrides)?;
            Some(aws_secrets::AwsSource::new(
                &settings,
                Duration::from_millis(self.aws_poll_ms.max(50)),
                self.stripe_key_file.is_none(),
            ))
        } else {
            None
        };
        Ok(SandboxOptions {
            listen: self.listen,
            stripe_listen: self.stripe_listen,
            webhook_secrets,
            stripe_key,
            faults: Faults::from_list(&self.faults),
            state_file: self.state.clone(),
            tolerance: self.tolerance,
            delivery: DeliveryPolicy {
                attempts: self.delivery_attempts,
                backoff: Duration::from_millis(self.delivery_backoff_ms),
            },
            aws,
        })
    }
}

pub async fn run(ctx: &Ctx, args: SandboxArgs) -> Result<()> {
    let opts = args.options(ctx)?;
    let state_file = opts.state_file.clone();
    // Installed before the start line, so a Ctrl-C (or SIGTERM) right after it is never the
    // default action; both stop the servers gracefully.
    let interrupted = interrupt_signal()?;
    let sandbox = start(opts).await?;
    announce(&sandbox, state_file.as_deref());
    runtime::on_interrupt(Some("sandbox stopped".into()));
    interrupted.await;
    sandbox.shutdown().await;
    Err(Error::interrupted("sandbox stopped"))
}

#[cfg(unix)]
fn interrupt_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let install =
        |kind| signal(kind).map_err(|e| Error::external(format!("cannot handle signals: {e}")));
    let mut sigint = install(SignalKind::interrupt())?;
    let mut sigterm = install(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn interrupt_signal() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn announce(sandbox: &Sandbox, state_file: Option<&std::path::Path>) {
    let path = |p: Option<&std::path::Path>| p.map(|p| p.display().to_string());
    let faults = sandbox.shared.faults.names();
    if output::mode().json {
        output::json_line(&json!({
            "app": sandbox.app_url(),
            "stripe_api": sandbox.stripe_api_url(),
            "webhook_url": sandbox.webhook_url(),
            "webhook_secret_file": path(sandbox.webhook_secret_file()),
            "stripe_key_file": path(sandbox.stripe_key_file()),
            "state_file": path(state_file),
            "faults": faults,
        }));
        return;
    }
    output::line(format!(
        "app {}  stripe_api {}",
        sandbox.app_url(),
        sandbox.stripe_api_url()
    ));
    output::status(format!("webhook endpoint  {}", sandbox.webhook_url()));
    if let Some(p) = sandbox.webhook_secret_file() {
        output::status(format!("webhook secret in {}", p.display()));
    }
    if let Some(p) = sandbox.stripe_key_file() {
        output::status(format!("Stripe key in     {}", p.display()));
    }
    if !faults.is_empty() {
        output::status(format!("faults            {}", faults.join(", ")));
    }
    output::status("sandbox running; Ctrl-C stops it");
}
