//! The settings layer: every value stripe-ops takes from outside its command line's plain flags
//! is resolved here, once, in one order, and remembers where it came from (what `config show`
//! prints):
//!
//! 1. the flag (`--region`, `--stripe-api-base`, …), when the command has one;
//! 2. the environment variable (`AWS_REGION`, `STRIPE_API_BASE`, …; blank means unset), every
//!    one of them in the catalogue of `vars.rs`;
//! 3. the config file (`stripe-ops.toml`, `file.rs`): the `[env.NAME]` table, then the top
//!    level;
//! 4. the default (derived from the environment's name where the contract says so).
//!
//! In the manner of uv's `GlobalSettings::resolve` and ripgrep's `LowArgs -> HiArgs`: clap
//! parses (commands hold the raw flags), this layer turns flags, variables and the file into
//! resolved values (`EnvSettings` for an environment; `aws_region`, `aws_endpoint_url`,
//! `stripe_api_base` for the commands that run without one), and the core sees only those.

mod file;
pub mod show;
pub mod vars;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use file::{EnvFile, FileConfig, parse};
use vars::Var;

pub use file::{Contract, FanoutConfig, FanoutTarget, Fields, OneOrMany, Paths};

pub const DEFAULT_APP: &str = "proofwork";
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum Source {
    Default,
    File,
    Environment(String),
    Flag(String),
    /// Read at run time (for example from the ECS task definition).
    Runtime,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File => f.write_str("file"),
            Source::Environment(var) => write!(f, "environment ({var})"),
            Source::Flag(flag) => write!(f, "flag ({flag})"),
            Source::Runtime => f.write_str("run time"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    pub key: String,
    pub value: String,
    pub source: Source,
}

impl Provenance {
    fn new(key: &str, value: &str, source: Source) -> Self {
        Self {
            key: key.to_owned(),
            value: value.to_owned(),
            source,
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub value: String,
    pub source: Source,
}

impl Resolved {
    fn new(value: impl Into<String>, source: Source) -> Self {
        Self {
            value: value.into(),
            source,
        }
    }
}

/// The one order: the flag (its value and its name), then the environment, then the config
/// file, then the default. `None` when no layer has a value.
pub fn first_of(
    flag: Option<(&str, &str)>,
    env: Option<Resolved>,
    file: Option<String>,
    default: Option<String>,
) -> Option<Resolved> {
    flag.map(|(v, name)| Resolved::new(v, Source::Flag(name.to_owned())))
        .or(env)
        .or_else(|| file.map(|v| Resolved::new(v, Source::File)))
        .or_else(|| default.map(|v| Resolved::new(v, Source::Default)))
}

/// The first of `vars` that is set and not blank, as the environment layer of [`first_of`].
pub fn from_env(vars: &[&Var]) -> Option<Resolved> {
    vars.iter().find_map(|var| {
        var.value()
            .map(|v| Resolved::new(v, Source::Environment(var.name.to_owned())))
    })
}

/// The AWS region: `--region`, `AWS_REGION`, the config file, us-east-1 (the shared contract's
/// section 4). `AWS_DEFAULT_REGION` is not read: the region is always given to the SDK, so its
/// own environment provider (which falls back to it) never runs.
pub fn aws_region(flag: Option<&str>, file: Option<String>) -> Resolved {
    let env = from_env(&[&vars::AWS_REGION]);
    first_of(
        flag.map(|f| (f, "--region")),
        env,
        file,
        Some(DEFAULT_REGION.into()),
    )
    .expect("has a default")
}

/// The AWS endpoint override (an emulator): `--aws-endpoint-url`, else `AWS_ENDPOINT_URL`.
pub fn aws_endpoint_url(flag: Option<&str>) -> Option<Resolved> {
    first_of(
        flag.map(|f| (f, "--aws-endpoint-url")),
        from_env(&[&vars::AWS_ENDPOINT_URL]),
        None,
        None,
    )
}

/// Stripe's API base for a command: the flag, else `STRIPE_API_BASE`, else the environment's
/// (its config file), else Stripe's.
pub fn stripe_api_base(flag: Option<&str>, settings: Option<&EnvSettings>) -> Result<String> {
    if let Some(f) = flag {
        return Ok(f.to_owned());
    }
    if let Some(var) = vars::STRIPE_API_BASE.value() {
        return crate::http::check_url(vars::STRIPE_API_BASE.name, &var);
    }
    Ok(settings.map_or_else(
        || DEFAULT_STRIPE_API_BASE.to_owned(),
        |s| s.stripe_api_base.clone(),
    ))
}

/// Values given on the command line, which win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub region: Option<String>,
    pub base_url: Option<String>,
    pub stripe_api_base: Option<String>,
    pub aws_endpoint_url: Option<String>,
}

/// One environment, resolved.
#[derive(Debug, Clone)]
pub struct EnvSettings {
    pub name: String,
    pub app: String,
    pub prefix: String,
    pub region: String,
    pub cluster: String,
    pub service: String,
    pub container: String,
    pub secret_key_id: String,
    pub webhook_secret_id: String,
    /// `None`: read `PUBLIC_BASE_URL` from the task definition at run time.
    pub base_url: Option<String>,
    pub stripe_api_base: String,
    pub aws_endpoint_url: Option<String>,
    pub enabled_events: Vec<String>,
    /// The API version webhook endpoints should be pinned to (`None`: the account's default).
    pub api_version: Option<String>,
    /// Whether new endpoints receive events from connected accounts (Stripe's `connect`).
    pub connect: bool,
    /// The task definition family the service must run (`None`: whatever it runs).
    pub task_family: Option<String>,
    pub contract: Contract,
    pub provenance: Vec<Provenance>,
}

impl EnvSettings {
    pub fn is_production(&self) -> bool {
        self.name == "production"
    }

    /// The provenance as `smoke` and `check` would see it: `BASE_URL` (which they read, and the
    /// environment's own commands do not) where the base URL would otherwise come at run time.
    pub fn provenance_with_base_url_var(&self) -> Vec<Provenance> {
        let mut provenance = self.provenance.clone();
        if let (Some(url), Some(p)) = (
            vars::BASE_URL.string().filter(|v| !v.is_empty()),
            provenance.iter_mut().find(|p| p.key == "base_url"),
        ) && p.source == Source::Runtime
        {
            p.value = url;
            p.source = Source::Environment(vars::BASE_URL.name.into());
        }
        provenance
    }
}

#[derive(Debug, Default)]
pub struct Config {
    pub path: Option<PathBuf>,
    file: FileConfig,
}

/// Loads `explicit` (from `--config` or `STRIPE_OPS_CONFIG`), else `./stripe-ops.toml` if present,
/// else the built-in defaults.
pub fn load(explicit: Option<&Path>) -> Result<Config> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let local = PathBuf::from("stripe-ops.toml");
            if !local.exists() {
                return Ok(Config::default());
            }
            local
        }
    };
    let text = crate::files::read_text(&path, "config")?;
    let file = parse(&text).map_err(|e| e.context(format!("config {}", path.display())))?;
    Ok(Config {
        path: Some(path),
        file,
    })
}

/// `prod` is `production`.
fn canonical_env(name: &str) -> &str {
    match name {
        "prod" => "production",
        other => other,
    }
}

/// `staging` → `<app>-staging`; `production` → `<app>-prod`; others `<app>-<name>`.
fn prefix_of(app: &str, env: &str) -> String {
    match env {
        "production" => format!("{app}-prod"),
        other => format!("{app}-{other}"),
    }
}

/// The provenance of an environment's values, in the order they are resolved.
struct Record(Vec<Provenance>);

impl Record {
    fn keep(&mut self, key: &str, r: Resolved) -> String {
        self.0.push(Provenance::new(key, &r.value, r.source));
        r.value
    }

    /// A value that may be missing: recorded when present.
    fn keep_some(&mut self, key: &str, r: Option<Resolved>) -> Option<String> {
        r.map(|r| self.keep(key, r))
    }

    /// A key the file alone may set.
    fn file_only(&mut self, key: &str, value: Option<String>) -> Option<String> {
        self.keep_some(key, first_of(None, None, value, None))
    }

    /// A name the file may set, else derived from the environment's prefix.
    fn named(&mut self, key: &str, file: Option<String>, default: String) -> String {
        self.keep(
            key,
            first_of(None, None, file, Some(default)).expect("has a default"),
        )
    }
}

/// Where the environment's service runs and where its secrets live.
struct Names {
    cluster: String,
    service: String,
    container: String,
    secret_key_id: String,
    webhook_secret_id: String,
}

impl Names {
    fn resolve(file: Option<&EnvFile>, prefix: &str, prov: &mut Record) -> Names {
        let f = |get: fn(&EnvFile) -> Option<String>| file.and_then(get);
        Names {
            cluster: prov.named(
                "cluster",
                f(|e| e.cluster.clone()),
                format!("{prefix}-cluster"),
            ),
            service: prov.named("service", f(|e| e.service.clone()), format!("{prefix}-api")),
            container: prov.named("container", f(|e| e.container.clone()), "api".into()),
            secret_key_id: prov.named(
                "secret_key_id",
                f(|e| e.secret_key_id.clone()),
                format!("{prefix}/STRIPE_SECRET_KEY"),
            ),
            webhook_secret_id: prov.named(
                "webhook_secret_id",
                f(|e| e.webhook_secret_id.clone()),
                format!("{prefix}/STRIPE_WEBHOOK_SECRET"),
            ),
        }
    }
}

/// The URLs the environment is reached at: its app (`None`: the task definition says at run
/// time), Stripe's API and the AWS endpoint override.
struct Urls {
    base_url: Option<String>,
    stripe_api_base: String,
    aws_endpoint_url: Option<String>,
}

impl Urls {
    fn resolve(file: Option<&EnvFile>, flags: &Overrides, prov: &mut Record) -> Urls {
        let base_url = first_of(
            flags.base_url.as_deref().map(|v| (v, "--base-url")),
            None,
            file.and_then(|e| e.base_url.clone()),
            None,
        );
        if base_url.is_none() {
            prov.0.push(Provenance::new(
                "base_url",
                "(PUBLIC_BASE_URL of the task definition)",
                Source::Runtime,
            ));
        }
        let base_url = prov.keep_some("base_url", base_url);
        let stripe_api_base = first_of(
            flags
                .stripe_api_base
                .as_deref()
                .map(|v| (v, "--stripe-api-base")),
            from_env(&[&vars::STRIPE_API_BASE]),
            file.and_then(|e| e.stripe_api_base.clone()),
            Some(DEFAULT_STRIPE_API_BASE.into()),
        )
        .expect("has a default");
        let stripe_api_base = prov.keep("stripe_api_base", stripe_api_base);
        let aws_endpoint_url = prov.keep_some(
            "aws_endpoint_url",
            aws_endpoint_url(flags.aws_endpoint_url.as_deref()),
        );
        Urls {
            base_url: base_url.map(|u| u.trim_end_matches('/').to_owned()),
            stripe_api_base: stripe_api_base.trim_end_matches('/').to_owned(),
            aws_endpoint_url,
        }
    }
}

/// Every URL, wherever it came from, is checked before anything is called with it.
fn check_urls(prov: &[Provenance]) -> Result<()> {
    for key in ["base_url", "stripe_api_base", "aws_endpoint_url"] {
        if let Some(p) = prov
            .iter()
            .find(|p| p.key == key && p.source != Source::Runtime)
        {
            crate::http::check_url(&format!("{key} ({})", p.source), &p.value)?;
        }
    }
    Ok(())
}

impl Config {
    pub fn app(&self) -> (String, Source) {
        match &self.file.app {
            Some(a) => (a.clone(), Source::File),
            None => (DEFAULT_APP.to_owned(), Source::Default),
        }
    }

    pub fn fanout(&self) -> Option<&FanoutConfig> {
        self.file.fanout.as_ref()
    }

    /// The contract for an environment (or the top-level one without `--env`).
    pub fn contract(&self, env: Option<&str>) -> Contract {
        self.contract_with_provenance(env, &mut Vec::new())
    }

    fn env_file(&self, env: Option<&str>) -> Option<&EnvFile> {
        let name = canonical_env(env?);
        self.file.env.get(name).or_else(|| match name {
            "production" => self.file.env.get("prod"),
            _ => None,
        })
    }

    fn contract_with_provenance(&self, env: Option<&str>, prov: &mut Vec<Provenance>) -> Contract {
        let env_file = self.env_file(env);
        let paths = Paths::resolve(
            &[
                (self.file.paths.as_ref(), Source::File),
                (env_file.and_then(|e| e.paths.as_ref()), Source::File),
            ],
            prov,
        );
        let fields = Fields::resolve(
            &[
                (self.file.fields.as_ref(), Source::File),
                (env_file.and_then(|e| e.fields.as_ref()), Source::File),
            ],
            prov,
        );
        Contract { paths, fields }
    }

    /// Resolves an environment, each value in the one order (the module's header).
    pub fn env(&self, name: &str, flags: &Overrides) -> Result<EnvSettings> {
        if name.trim().is_empty() {
            return Err(Error::usage("--env needs a name, for example staging"));
        }
        let name = canonical_env(name).to_owned();
        let (app, app_source) = self.app();
        let prefix = prefix_of(&app, &name);
        let file = self.env_file(Some(&name));
        let mut prov = Record(vec![
            Provenance::new("app", &app, app_source),
            Provenance::new("prefix", &prefix, Source::Default),
        ]);
        let region = aws_region(flags.region.as_deref(), file.and_then(|e| e.region.clone()));
        let region = prov.keep("region", region);
        let names = Names::resolve(file, &prefix, &mut prov);
        let urls = Urls::resolve(file, flags, &mut prov);
        let (enabled_events, events_source) = match file.and_then(|e| e.enabled_events.clone()) {
            Some(list) => (list, Source::File),
            None => (
                vec!["checkout.session.completed".to_owned()],
                Source::Default,
            ),
        };
        prov.keep(
            "enabled_events",
            Resolved::new(enabled_events.join(","), events_source),
        );
        let api_version = file.and_then(|e| e.api_version.clone());
        if let Some(v) = &api_version {
            crate::stripe_api::check_api_version(v)
                .map_err(|e| e.context(format!("config [env.{name}] api_version")))?;
        }
        let api_version = prov.file_only("api_version", api_version);
        let connect = file.and_then(|e| e.connect);
        prov.file_only("connect", connect.map(|c| c.to_string()));
        let task_family = prov.file_only("task_family", file.and_then(|e| e.task_family.clone()));
        let mut prov = prov.0;
        let contract = self.contract_with_provenance(Some(&name), &mut prov);
        check_urls(&prov)?;
        Ok(EnvSettings {
            name,
            app,
            prefix,
            region,
            cluster: names.cluster,
            service: names.service,
            container: names.container,
            secret_key_id: names.secret_key_id,
            webhook_secret_id: names.webhook_secret_id,
            base_url: urls.base_url,
            stripe_api_base: urls.stripe_api_base,
            aws_endpoint_url: urls.aws_endpoint_url,
            enabled_events,
            api_version,
            connect: connect.unwrap_or(false),
            task_family,
            contract,
            provenance: prov,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract_naming() {
        let c = Config::default();
        let s = c.env("staging", &Overrides::default()).unwrap();
        assert_eq!(s.cluster, "proofwork-staging-cluster");
        assert_eq!(s.service, "proofwork-staging-api");
        assert_eq!(s.container, "api");
        assert_eq!(s.secret_key_id, "proofwork-staging/STRIPE_SECRET_KEY");
        assert_eq!(
            s.webhook_secret_id,
            "proofwork-staging/STRIPE_WEBHOOK_SECRET"
        );
        assert_eq!(s.contract.paths.webhook, "/api/webhooks/stripe");
        assert_eq!(s.base_url, None);
        let p = c.env("prod", &Overrides::default()).unwrap();
        assert_eq!(p.prefix, "proofwork-prod");
        assert!(p.is_production());
    }

    #[test]
    fn file_values_and_flags_layer_with_provenance() {
        let file = parse(
            r#"
            app = "shop"
            [paths]
            webhook = "/hooks/stripe"
            [env.staging]
            cluster = "c1"
            base_url = "https://staging.example.com/"
            [env.staging.paths]
            health = "/healthz"
            "#,
        )
        .unwrap();
        let c = Config { path: None, file };
        let flags = Overrides {
            region: Some("eu-west-1".into()),
            ..Default::default()
        };
        let s = c.env("staging", &flags).unwrap();
        assert_eq!(s.prefix, "shop-staging");
        assert_eq!(s.cluster, "c1");
        assert_eq!(s.service, "shop-staging-api");
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.base_url.as_deref(), Some("https://staging.example.com"));
        assert_eq!(s.contract.paths.webhook, "/hooks/stripe");
        assert_eq!(s.contract.paths.health, "/healthz");
        let source = |k: &str| {
            s.provenance
                .iter()
                .find(|p| p.key == k)
                .unwrap()
                .source
                .clone()
        };
        assert_eq!(source("region"), Source::Flag("--region".into()));
        assert_eq!(source("cluster"), Source::File);
        assert_eq!(source("service"), Source::Default);
        assert_eq!(source("paths.health"), Source::File);
    }

    #[test]
    fn a_url_that_is_not_one_is_an_input_error_naming_its_source() {
        let file = parse("[env.staging]\nbase_url = \"staging.example.com:443\"\n").unwrap();
        let c = Config { path: None, file };
        let e = c.env("staging", &Overrides::default()).unwrap_err();
        assert_eq!(e.exit.code(), 2);
        assert!(
            e.message().starts_with("base_url (file)"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn no_config_text_makes_loading_panic() {
        let valid = "app = \"shop\"\n[env.staging]\nbase_url = \"https://a.example\"\nenabled_events = [\"a\"]\n[paths]\nwebhook = \"/h\"\n[[fanout.target]]\nname = \"t\"\nurl = \"http://x\"\n";
        let junk = [
            "[",
            "]]",
            "=",
            "\"",
            "[env.prod]\n",
            "base_url = 1\n",
            "\u{0}",
            "app = [1]",
        ];
        let mut strings = crate::fuzz::Strings::new(0xc0f1_9001);
        for _ in 0..2000 {
            if let Ok(file) = parse(&strings.mutation(valid, &junk)) {
                let c = Config { path: None, file };
                let _ = c.env("staging", &Overrides::default());
                let _ = c.env("prod", &Overrides::default());
            }
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse("[env.staging]\nclustr = \"x\"\n").unwrap_err();
        assert!(e.message().contains("clustr"), "{}", e.message());
        let e = parse("[paths]\nwebhok = \"x\"\n").unwrap_err();
        assert!(e.message().contains("webhok"), "{}", e.message());
    }
}
