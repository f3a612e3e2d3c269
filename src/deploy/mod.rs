//! The deployed environment's Stripe secrets: what `enable`, `webhook rotate` and `status` do.
//! Their plans, the IAM pre-flight, the wiring of each variable, the task-definition patch, the
//! redeploy and the judgement of its rollout (and of its stopped tasks), the choice of the new webhook endpoint and the
//! smoke that ends a change. It calls AWS only through the clients in `crate::aws`.

pub mod enable;
pub mod endpoint;
pub mod keys;
pub mod plan;
pub mod preflight;
pub mod redeploy;
pub mod resource_policy;
pub mod rollout;
pub mod rotate;
pub mod smoke_step;
pub mod status;
pub mod stops;
pub mod taskdef;
pub mod why;
pub mod wiring;

mod env;

pub use env::{Env, Given, Receiver, SecretSwitch, WiredParameter};

/// The variables the container receives, by name (CONTRACT.md section 4).
pub const KEY_VAR: &str = "STRIPE_SECRET_KEY";
pub const WEBHOOK_VAR: &str = "STRIPE_WEBHOOK_SECRET";
