//! The deployed environment's Stripe secrets: what `enable`, `webhook rotate` and `status` do.
//! Their plans, the IAM pre-flight, the wiring of each variable, the task-definition patch, the
//! redeploy and the judgement of its rollout, the choice of the new webhook endpoint and the
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
pub mod taskdef;
pub mod wiring;

use crate::aws::{Env, KEY_VAR, WEBHOOK_VAR, describe, iam, kms, secrets, service};
