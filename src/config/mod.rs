//! `stripe-ops.toml`: the app name, per-environment settings (CONTRACT.md section 4), the app's
//! contract (section 1) and the fan-out targets. Every resolved value remembers where it came
//! from, so `config show` can explain it. Unknown keys are errors that name the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const DEFAULT_APP: &str = "proofwork";
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    app: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, EnvFile>,
    paths: Option<PathsFile>,
    fields: Option<FieldsFile>,
    fanout: Option<FanoutConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvFile {
    region: Option<String>,
    cluster: Option<String>,
    service: Option<String>,
    container: Option<String>,
    secret_key_id: Option<String>,
    webhook_secret_id: Option<String>,
    base_url: Option<String>,
    stripe_api_base: Option<String>,
    enabled_events: Option<Vec<String>>,
    api_version: Option<String>,
    connect: Option<bool>,
    task_family: Option<String>,
    paths: Option<PathsFile>,
    fields: Option<FieldsFile>,
}

macro_rules! contract_struct {
    ($file:ident, $resolved:ident, $section:literal, { $($field:ident = $default:literal),* $(,)? }) => {
        #[derive(Debug, Default, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $file { $($field: Option<String>,)* }

        #[derive(Debug, Clone, Serialize, PartialEq, Eq)]
        pub struct $resolved { $(pub $field: String,)* }

        impl Default for $resolved {
            fn default() -> Self { Self { $($field: $default.to_owned(),)* } }
        }

        impl $resolved {
            /// Layers file tables over the defaults, recording where each value came from.
            fn resolve(layers: &[(Option<&$file>, Source)], prov: &mut Vec<Provenance>) -> Self {
                let mut out = Self::default();
                $(
                    let mut source = Source::Default;
                    for (layer, src) in layers {
                        if let Some(v) = layer.and_then(|l| l.$field.clone()) {
                            out.$field = v;
                            source = src.clone();
                        }
                    }
                    prov.push(Provenance::new(concat!($section, ".", stringify!($field)), &out.$field, source));
                )*
                out
            }
        }
    };
}

contract_struct!(PathsFile, Paths, "paths", {
    health = "/health",
    login = "/api/org/api-keys",
    register = "/api/org/register",
    account = "/api/billing/account",
    events = "/api/billing/events",
    checkout = "/api/billing/topups/checkout",
    webhook = "/api/webhooks/stripe",
});

// JSON fields of the app's answers, as dotted paths into each answer.
contract_struct!(FieldsFile, Fields, "fields", {
    token = "token",
    balance_cents = "account.balance_cents",
    events = "events",
    event_type = "eventType",
    event_amount_cents = "amountCents",
    event_session_id = "metadata.stripeSessionId",
    event_stripe_event_id = "metadata.stripeEventId",
    topup_event_type = "stripe_topup",
    checkout_url = "checkoutUrl",
    session_id = "stripeSessionId",
    payment_intent_id = "paymentIntentId",
});

/// The app's HTTP contract: routes and the JSON fields to read.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Contract {
    pub paths: Paths,
    pub fields: Fields,
}

/// `[fanout]`: the relay's targets (issue: fanout).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FanoutConfig {
    pub listen: Option<String>,
    pub path: Option<String>,
    pub spool: Option<PathBuf>,
    #[serde(default, rename = "target")]
    pub targets: Vec<FanoutTarget>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FanoutTarget {
    pub name: String,
    pub url: String,
    pub secret_file: Option<PathBuf>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Only these event types (globs); empty: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Only events whose value at each dotted path is one of the given values.
    #[serde(default, rename = "match")]
    pub matches: BTreeMap<String, OneOrMany>,
    /// `fanout --from-sqs` mode: this target's own SQS queue (an EventBridge rule per route
    /// feeds it); it then gets events from this queue only.
    #[serde(default)]
    pub queue: Option<String>,
}

/// `"a"` or `["a", "b"]` in the config.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn values(&self) -> Vec<String> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

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

fn parse(text: &str) -> Result<FileConfig> {
    toml::from_str(text).map_err(|e| Error::usage(e.message().to_owned()))
}

/// `staging` → `<app>-staging`; `production`/`prod` → `<app>-prod`; others `<app>-<name>`.
fn canonical_env(name: &str) -> &str {
    match name {
        "prod" => "production",
        other => other,
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
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

    /// Resolves an environment: flag, then environment variable, then file, then the default
    /// derived from the prefix.
    pub fn env(&self, name: &str, flags: &Overrides) -> Result<EnvSettings> {
        if name.trim().is_empty() {
            return Err(Error::usage("--env needs a name, for example staging"));
        }
        let name = canonical_env(name).to_owned();
        let (app, app_source) = self.app();
        let prefix = match name.as_str() {
            "production" => format!("{app}-prod"),
            other => format!("{app}-{other}"),
        };
        let file = self.env_file(Some(&name));
        let mut prov = vec![
            Provenance::new("app", &app, app_source),
            Provenance::new("prefix", &prefix, Source::Default),
        ];
        let mut pick = |key: &str,
                        flag: Option<(&Option<String>, &str)>,
                        var: Option<&str>,
                        from_file: Option<String>,
                        default: Option<String>|
         -> Option<String> {
            let chosen = flag
                .and_then(|(v, f)| v.clone().map(|v| (v, Source::Flag(f.to_owned()))))
                .or_else(|| {
                    var.and_then(|var| {
                        env_var(var).map(|v| (v, Source::Environment(var.to_owned())))
                    })
                })
                .or_else(|| from_file.map(|v| (v, Source::File)))
                .or_else(|| default.map(|v| (v, Source::Default)));
            match chosen {
                Some((v, s)) => {
                    prov.push(Provenance::new(key, &v, s));
                    Some(v)
                }
                None => {
                    prov.push(Provenance::new(
                        key,
                        "(PUBLIC_BASE_URL of the task definition)",
                        Source::Runtime,
                    ));
                    None
                }
            }
        };
        let f = |get: fn(&EnvFile) -> Option<String>| file.and_then(get);
        let region = pick(
            "region",
            Some((&flags.region, "--region")),
            Some("AWS_REGION"),
            f(|e| e.region.clone()),
            Some(DEFAULT_REGION.into()),
        );
        let cluster = pick(
            "cluster",
            None,
            None,
            f(|e| e.cluster.clone()),
            Some(format!("{prefix}-cluster")),
        );
        let service = pick(
            "service",
            None,
            None,
            f(|e| e.service.clone()),
            Some(format!("{prefix}-api")),
        );
        let container = pick(
            "container",
            None,
            None,
            f(|e| e.container.clone()),
            Some("api".into()),
        );
        let secret_key_id = pick(
            "secret_key_id",
            None,
            None,
            f(|e| e.secret_key_id.clone()),
            Some(format!("{prefix}/STRIPE_SECRET_KEY")),
        );
        let webhook_secret_id = pick(
            "webhook_secret_id",
            None,
            None,
            f(|e| e.webhook_secret_id.clone()),
            Some(format!("{prefix}/STRIPE_WEBHOOK_SECRET")),
        );
        let base_url = pick(
            "base_url",
            Some((&flags.base_url, "--base-url")),
            None,
            f(|e| e.base_url.clone()),
            None,
        );
        let stripe_api_base = pick(
            "stripe_api_base",
            Some((&flags.stripe_api_base, "--stripe-api-base")),
            Some("STRIPE_API_BASE"),
            f(|e| e.stripe_api_base.clone()),
            Some(DEFAULT_STRIPE_API_BASE.into()),
        );
        let aws_endpoint_url = flags
            .aws_endpoint_url
            .clone()
            .map(|v| (v, Source::Flag("--aws-endpoint-url".into())))
            .or_else(|| {
                env_var("AWS_ENDPOINT_URL")
                    .map(|v| (v, Source::Environment("AWS_ENDPOINT_URL".into())))
            });
        if let Some((v, s)) = &aws_endpoint_url {
            prov.push(Provenance::new("aws_endpoint_url", v, s.clone()));
        }
        let (enabled_events, events_source) = match file.and_then(|e| e.enabled_events.clone()) {
            Some(list) => (list, Source::File),
            None => (
                vec!["checkout.session.completed".to_owned()],
                Source::Default,
            ),
        };
        prov.push(Provenance::new(
            "enabled_events",
            &enabled_events.join(","),
            events_source,
        ));
        let api_version = file.and_then(|e| e.api_version.clone());
        if let Some(v) = &api_version {
            crate::stripe_api::check_api_version(v)
                .map_err(|e| e.context(format!("config [env.{name}] api_version")))?;
            prov.push(Provenance::new("api_version", v, Source::File));
        }
        let connect = file.and_then(|e| e.connect);
        if let Some(c) = connect {
            prov.push(Provenance::new("connect", &c.to_string(), Source::File));
        }
        let task_family = file.and_then(|e| e.task_family.clone());
        if let Some(f) = &task_family {
            prov.push(Provenance::new("task_family", f, Source::File));
        }
        let contract = self.contract_with_provenance(Some(&name), &mut prov);
        // Every URL, wherever it came from, is checked before anything is called with it.
        for key in ["base_url", "stripe_api_base", "aws_endpoint_url"] {
            if let Some(p) = prov
                .iter()
                .find(|p| p.key == key && p.source != Source::Runtime)
            {
                crate::http::check_url(&format!("{key} ({})", p.source), &p.value)?;
            }
        }
        let base_url = base_url.map(|u| u.trim_end_matches('/').to_owned());
        Ok(EnvSettings {
            name,
            app,
            prefix,
            region: region.expect("has a default"),
            cluster: cluster.expect("has a default"),
            service: service.expect("has a default"),
            container: container.expect("has a default"),
            secret_key_id: secret_key_id.expect("has a default"),
            webhook_secret_id: webhook_secret_id.expect("has a default"),
            base_url,
            stripe_api_base: stripe_api_base
                .expect("has a default")
                .trim_end_matches('/')
                .to_owned(),
            aws_endpoint_url: aws_endpoint_url.map(|(v, _)| v),
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
