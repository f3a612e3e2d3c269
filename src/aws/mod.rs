//! AWS: Secrets Manager and ECS through the official SDK (issue: enable and rotate).

pub mod enable;
pub mod rotate;
pub mod status;
