//! `--secrets-from-aws --env NAME`: the app reads `STRIPE_WEBHOOK_SECRET` and
//! `STRIPE_SECRET_KEY` from Secrets Manager, and reads them again whenever the ECS service is
//! redeployed, as a real task would on start. A redeploy is a change of the primary
//! deployment's id or of the service's task definition: a forced new deployment changes the
//! first (moto 5.2.5 changes the id, `createdAt` and `updatedAt`; the deployment's
//! `taskDefinition` stays), an update to a new task definition changes the second (moto keeps
//! the deployment id then). `updatedAt` alone also moves while a rollout progresses, so it is
//! not a redeploy.

use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use crate::config::EnvSettings;
use crate::deploy::Env;
use crate::error::Result;
use crate::printer::Printer;
use crate::secret::{ExposeSecret, SecretString};

#[derive(Debug, Clone)]
pub struct AwsSource {
    settings: EnvSettings,
    poll: Duration,
    /// False when `--stripe-key-file` gave the key.
    read_key: bool,
}

/// What identifies one deployment of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub deployment_id: String,
    pub task_definition: String,
}

pub struct Fetched {
    pub webhook_secrets: Vec<SecretString>,
    pub secret_key: Option<SecretString>,
    pub deployment: Option<Fingerprint>,
}

/// A Secrets Manager value may hold several webhook secrets (an overlapping rotation),
/// separated by commas or whitespace.
fn split_secrets(value: &SecretString) -> Vec<SecretString> {
    value
        .expose_secret()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| SecretString::from(s.to_owned()))
        .collect()
}

impl AwsSource {
    pub fn new(settings: &EnvSettings, poll: Duration, read_key: bool) -> Self {
        Self {
            settings: settings.clone(),
            poll,
            read_key,
        }
    }

    async fn env(&self) -> Env {
        Env::connect(self.settings.clone(), None).await
    }

    /// Reads the deployment first, then the secrets, so a redeploy in between is caught by
    /// the next poll. A secret that does not exist yet is a warning (the app then uses a
    /// generated one until a redeploy brings the real one); AWS failing is exit 3.
    pub async fn fetch(&self, out: &Printer) -> Result<Fetched> {
        let env = self.env().await;
        let deployment = match deployment(&env).await {
            Ok(d) => d,
            Err(e) => {
                out.warn(format!(
                    "{}; watching for it (secrets are read again once it deploys)",
                    e.message()
                ));
                None
            }
        };
        let (webhook_secrets, secret_key) = self.read_secrets(&env, out).await?;
        Ok(Fetched {
            webhook_secrets,
            secret_key,
            deployment,
        })
    }

    /// The webhook secrets and (unless given by file) the key, as stored now.
    async fn read_secrets(
        &self,
        env: &Env,
        out: &Printer,
    ) -> Result<(Vec<SecretString>, Option<SecretString>)> {
        let s = &env.settings;
        let webhook = read(env, &s.webhook_secret_id, out)
            .await?
            .map(|v| split_secrets(&v))
            .unwrap_or_default();
        let key = if self.read_key {
            read(env, &s.secret_key_id, out).await?
        } else {
            None
        };
        Ok((webhook, key))
    }

    /// Polls the service; on a new deployment, reads the secrets again and swaps them in.
    pub async fn follow(self, shared: Arc<Shared>, mut current: Option<Fingerprint>) {
        let env = self.env().await;
        let out = shared.out.clone();
        let mut interval = tokio::time::interval(self.poll);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let seen = deployment(&env).await;
            shared
                .deployment_checks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let seen = match seen {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("{}", e.message());
                    continue;
                }
            };
            if seen.is_none() || seen == current {
                continue;
            }
            match self.read_secrets(&env, &out).await {
                Ok((secrets, key)) => {
                    if !secrets.is_empty() {
                        shared.set_webhook_secrets(&secrets);
                    }
                    if let Some(k) = key {
                        shared.stripe.set_key(k);
                    }
                    out.status(format!(
                        "sandbox: new deployment {}; secrets re-read from Secrets Manager",
                        seen.as_ref()
                            .map(|d| d.deployment_id.as_str())
                            .unwrap_or("?")
                    ));
                    current = seen;
                }
                Err(e) => out.warn(format!("{}; retrying", e.message())),
            }
        }
    }
}

/// A secret's AWSCURRENT value; one that does not exist yet is a warning and `None`.
async fn read(env: &Env, id: &str, out: &Printer) -> Result<Option<SecretString>> {
    let value = env.sm.value_if_exists(id).await?;
    if value.is_none() {
        out.warn(format!(
            "secret {id} does not exist yet; using a generated value until a redeploy"
        ));
    }
    Ok(value)
}

/// The service's primary deployment, `None` when the service has none.
async fn deployment(env: &Env) -> Result<Option<Fingerprint>> {
    let service = env.service().await?;
    let primary = service.primary().or_else(|| service.deployments.first());
    Ok(primary.map(|d| Fingerprint {
        deployment_id: d.id.clone(),
        task_definition: service.task_definition.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_split_on_commas_and_whitespace() {
        let v = SecretString::from("whsec_a, whsec_b\nwhsec_c".to_owned());
        let got: Vec<String> = split_secrets(&v)
            .iter()
            .map(|s| s.expose_secret().to_owned())
            .collect();
        assert_eq!(got, ["whsec_a", "whsec_b", "whsec_c"]);
    }
}
