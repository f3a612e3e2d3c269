//! `stripe-ops events replay`: events from the account delivered again to a receiver, signed
//! now (core: `replay`). The receiver, its secret and the Stripe key come from flags and
//! variables, or from an environment (`--env`: its URL, and its secrets in Secrets Manager).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Ctx, EnvFlags, SecretArgs};
use crate::deploy;
use crate::duration::{self, Span};
use crate::error::{Error, Result};
use crate::printer::Report;
use crate::replay::{self, Filter, ReplayOptions};
use crate::runtime;
use crate::stripe_api::StripeClient;
use crate::timestamp;
use crate::webhook;

#[derive(Debug, Args)]
#[command(
    after_help = "WHEN is a duration ago (2h, 30m, 3d; a bare number is seconds), an RFC 3339 \
    time (2026-11-28T09:00:00Z) or @UNIX seconds.\n\nExit codes: 0 every event accepted (or \
    nothing to send), 1 some were not (run again with the same --state to send only those), 2 \
    bad flags or state file, 3 Stripe (or AWS with --env) cannot be reached, 130 interrupted."
)]
pub struct ReplayArgs {
    /// Receiver URL (else the webhook URL of --env)
    #[arg(long, value_name = "URL", value_parser = crate::http::url_arg, required_unless_present = "env")]
    pub to: Option<String>,
    /// Environment: the app's webhook URL, its webhook secret and the Stripe key come from it
    /// (stripe-ops.toml, the task definition, Secrets Manager)
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// AWS profile, with --env
    #[arg(long, value_name = "NAME", requires = "env")]
    pub profile: Option<String>,
    #[command(flatten)]
    pub env_flags: EnvFlags,
    #[command(flatten)]
    pub secrets: SecretArgs,
    /// File holding the Stripe secret key (else STRIPE_SECRET_KEY, else STRIPE_API_KEY, else
    /// the environment's secret with --env)
    #[arg(long, value_name = "FILE")]
    pub stripe_secret_key_file: Option<PathBuf>,
    /// Events created at or after WHEN
    #[arg(long, value_name = "WHEN", value_parser = when_arg)]
    pub since: Option<When>,
    /// Events created at or before WHEN
    #[arg(long, value_name = "WHEN", value_parser = when_arg)]
    pub until: Option<When>,
    /// Only these event types; globs such as invoice.* (repeatable)
    #[arg(long = "type", value_name = "GLOB")]
    pub types: Vec<String>,
    /// Only events Stripe has not delivered to every endpoint (its delivery_success=false)
    #[arg(long)]
    pub failed_only: bool,
    /// Exactly this event (repeatable; not with the other filters)
    #[arg(long = "id", value_name = "EVT", conflicts_with_all = ["since", "until", "types", "failed_only"])]
    pub ids: Vec<String>,
    /// Deliveries in flight at once; they start oldest first (1 keeps them strictly in order)
    #[arg(short = 'c', long, default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Records what was delivered (0600, written atomically): a second run sends only the rest
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// List what would be sent; send nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The API version the receiver's endpoint is pinned to (else the version of the enabled
    /// endpoints at Stripe with this URL): events naming another one are warned about
    #[arg(long, value_name = "VERSION", value_parser = super::api_version_arg)]
    pub api_version: Option<String>,
    /// Per-request timeout
    #[arg(long, default_value = "10s", value_parser = duration::positive, value_name = "DURATION")]
    pub timeout: Span,
}

/// A point in time as given: some time ago, or a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Ago(Duration),
    At(i64),
}

impl When {
    fn unix(self, now: i64) -> i64 {
        match self {
            When::Ago(d) => now.saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            When::At(t) => t,
        }
    }
}

fn when_arg(s: &str) -> std::result::Result<When, String> {
    let s = s.trim();
    if let Some(unix) = s.strip_prefix('@') {
        return unix
            .parse()
            .map(When::At)
            .map_err(|_| format!("{s:?}: @ must be followed by unix seconds"));
    }
    if s.contains('T') {
        return timestamp::parse_rfc3339(s)
            .map(When::At)
            .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"));
    }
    duration::parse(s).map(When::Ago)
}

pub fn run(ctx: &Ctx, args: ReplayArgs) -> Result<Box<dyn Report>> {
    let now = timestamp::unix_now();
    let filter = Filter {
        since: args.since.map(|w| w.unix(now)),
        until: args.until.map(|w| w.unix(now)),
        types: args.types.clone(),
        failed_only: args.failed_only,
        ids: args.ids.clone(),
    };
    if let (Some(s), Some(u)) = (filter.since, filter.until)
        && s > u
    {
        return Err(Error::usage("--since is after --until: no event can match"));
    }
    let settings = args
        .env
        .as_ref()
        .map(|name| ctx.env(name, &args.env_flags, None))
        .transpose()?;
    let api_base = crate::config::stripe_api_base(
        args.env_flags.stripe_api_base.as_deref(),
        settings.as_ref(),
    )?;
    let out = &ctx.out;
    let key_flag = super::stripe_key(args.stripe_secret_key_file.as_deref(), out)?;
    let secret_flag = match (args.secrets.secret_files.is_empty(), &settings) {
        // With --env and no --secret-file, the environment's secret (not STRIPE_WEBHOOK_SECRET).
        (true, Some(_)) => None,
        _ => Some(args.secrets.load(out)?),
    };
    let client = crate::http::client(args.timeout.get())?;
    runtime::run(|stop| async move {
        let given = deploy::Given {
            url: args.to.clone(),
            secrets: secret_flag,
            stripe_key: key_flag,
        };
        let receiver = match &settings {
            Some(s) => {
                let env = deploy::Env::connect(s.clone(), args.profile.clone()).await;
                env.receiver(given).await?
            }
            None => deploy::Receiver {
                url: given.url.expect("clap requires --to without --env"),
                secrets: given.secrets.unwrap_or_default(),
                stripe_key: given.stripe_key.ok_or_else(|| {
                    Error::usage(
                        "no Stripe key: give --stripe-secret-key-file FILE, STRIPE_SECRET_KEY or STRIPE_API_KEY (or --env NAME)",
                    )
                })?,
            },
        };
        let stripe = StripeClient::new(&api_base, receiver.stripe_key, Duration::from_secs(30))?;
        let opts = ReplayOptions {
            to: receiver.url,
            api_version: args.api_version.clone(),
            signers: webhook::signers(&receiver.secrets),
            filter,
            concurrency: args.concurrency.into(),
            state: args.state.clone(),
            dry_run: args.dry_run,
            client,
        };
        let report = replay::run(&stripe, opts, out, &stop).await?;
        Ok(Box::new(report) as Box<dyn Report>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_is_a_duration_ago_a_time_or_unix_seconds() {
        assert_eq!(when_arg("2h"), Ok(When::Ago(Duration::from_secs(7200))));
        assert_eq!(when_arg("@1700000000"), Ok(When::At(1_700_000_000)));
        assert_eq!(
            when_arg("2023-11-14T22:13:20Z"),
            Ok(When::At(1_700_000_000))
        );
        assert!(when_arg("@soon").is_err());
        assert!(when_arg("2023-11-14Tnope").is_err());
        assert!(when_arg("yesterday").is_err());
        assert_eq!(When::Ago(Duration::from_secs(60)).unix(1000), 940);
    }
}
