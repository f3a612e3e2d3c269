//! `stripe-ops eventbridge setup|status|teardown`: Stripe's Amazon EventBridge event destination
//! and what the account needs behind it, so that `fanout --from-sqs` relays on any number of
//! machines deliver Stripe's events (docs/SQS.md):
//!
//! - at Stripe, a v2 event destination of type `amazon_eventbridge` (the account and region,
//!   the enabled events, the payload style), marked with `metadata.stripe-ops-env`;
//! - in AWS, the partner event bus that associates the partner event source Stripe made (it
//!   must be associated within 7 days, Stripe's guide says), and per target an SQS queue with a
//!   dead-letter queue and a redrive policy, a queue policy that lets the rule send, and a rule
//!   whose event pattern is the target's route, so that routing happens in EventBridge and each
//!   relay reads its own queue.
//!
//! `design` is the pure part (names, patterns, policies); `observe` reads what exists; `setup`
//! plans and applies, `status` judges, `teardown` removes.

pub mod design;
pub mod observe;
pub mod setup;
pub mod status;
pub mod teardown;

use std::time::Duration;

use crate::config::{EnvSettings, FanoutTarget};
use crate::secret::SecretString;

/// What the three commands need.
pub struct BridgeOptions {
    pub env: EnvSettings,
    pub profile: Option<String>,
    pub stripe_key: SecretString,
    /// As `fanout` takes them; status and teardown may have none (then they find what setup
    /// made by its names and marks).
    pub targets: Vec<FanoutTarget>,
    /// Every event type Stripe sends at this payload style, to expand globs.
    pub types: Vec<String>,
    /// The AWS account the destination names (else the credentials' own, from STS).
    pub account: Option<String>,
    /// `snapshot` or `thin`.
    pub payload: String,
    pub api_version: Option<String>,
    /// The redrive policy's `maxReceiveCount`.
    pub max_receives: u32,
    /// The queues' visibility timeout.
    pub visibility: Duration,
    /// How long to wait for the partner event source Stripe makes.
    pub wait: Duration,
    pub poll: Duration,
    /// The bus the rules go on, when not the partner event bus: for an emulator only. moto
    /// 5.2.5 puts partner events on the default bus and cannot address a bus whose name holds
    /// a `/` (every partner bus's does) in PutRule or PutTargets; in AWS, partner events reach
    /// the partner event bus only.
    pub rule_bus: Option<String>,
}

impl BridgeOptions {
    /// Where the rules for the events of partner event source `source` live.
    pub fn rules_on<'a>(&'a self, source: &'a str) -> &'a str {
        self.rule_bus.as_deref().unwrap_or(source)
    }
}
