//! `--secrets-from-aws` (to be completed).

use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use crate::config::EnvSettings;
use crate::error::{Error, Result};
use crate::secret::SecretString;

#[derive(Debug, Clone)]
pub struct AwsSource {}

pub struct Fetched {
    pub webhook_secrets: Vec<SecretString>,
    pub secret_key: Option<SecretString>,
}

impl AwsSource {
    pub fn new(_settings: &EnvSettings, _poll: Duration, _read_key: bool) -> Self {
        Self {}
    }

    pub async fn fetch(&self) -> Result<Fetched> {
        Err(Error::usage("--secrets-from-aws is not available yet"))
    }

    pub async fn follow(self, _shared: Arc<Shared>) {}
}
