//! `stripe-ops.toml` as written: the app name, the `[env.NAME]` tables (CONTRACT.md section 4),
//! the app's contract (`[paths]`, `[fields]`, section 1) and the fan-out targets. Unknown keys
//! are errors that name the key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Provenance, Source};
use crate::error::{Error, Result};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) app: Option<String>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, EnvFile>,
    pub(super) paths: Option<PathsFile>,
    pub(super) fields: Option<FieldsFile>,
    pub(super) fanout: Option<FanoutConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvFile {
    pub(super) region: Option<String>,
    pub(super) cluster: Option<String>,
    pub(super) service: Option<String>,
    pub(super) container: Option<String>,
    pub(super) secret_key_id: Option<String>,
    pub(super) webhook_secret_id: Option<String>,
    pub(super) base_url: Option<String>,
    pub(super) stripe_api_base: Option<String>,
    pub(super) enabled_events: Option<Vec<String>>,
    pub(super) api_version: Option<String>,
    pub(super) connect: Option<bool>,
    pub(super) task_family: Option<String>,
    pub(super) paths: Option<PathsFile>,
    pub(super) fields: Option<FieldsFile>,
}

macro_rules! contract_struct {
    ($file:ident, $resolved:ident, $section:literal, { $($field:ident = $default:literal),* $(,)? }) => {
        #[derive(Debug, Default, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct $file { $($field: Option<String>,)* }

        #[derive(Debug, Clone, Serialize, PartialEq, Eq)]
        pub struct $resolved { $(pub $field: String,)* }

        impl Default for $resolved {
            fn default() -> Self { Self { $($field: $default.to_owned(),)* } }
        }

        impl $resolved {
            /// Layers file tables over the defaults, recording where each value came from.
            pub(super) fn resolve(layers: &[(Option<&$file>, Source)], prov: &mut Vec<Provenance>) -> Self {
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
    /// `--max-spool`: a size such as "2GiB".
    pub max_spool: Option<String>,
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

pub(super) fn parse(text: &str) -> Result<FileConfig> {
    toml::from_str(text).map_err(|e| Error::usage(e.message().to_owned()))
}
