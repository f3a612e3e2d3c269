//! The deterministic smoke as the last step of `enable` and `webhook rotate`.

use serde_json::Value;

use super::Env;
use crate::error::{Error, Result};
use crate::secret::SecretString;

/// Whether this build can run the smoke step (checked before changing anything).
pub fn available() -> Result<()> {
    Err(Error::usage(
        "the deterministic smoke is not in this build yet; pass --skip-smoke",
    ))
}

pub async fn run(_env: &Env, _base_url: &str, _webhook_secret: SecretString) -> Result<Value> {
    available().map(|_| Value::Null)
}
