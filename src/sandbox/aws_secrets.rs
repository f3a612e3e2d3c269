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
use crate::aws::{AwsTarget, clients, describe};
use crate::config::EnvSettings;
use crate::error::{Error, Result};
use crate::output;
use crate::secret::{ExposeSecret, SecretString};

#[derive(Debug, Clone)]
pub struct AwsSource {
    target: AwsTarget,
    cluster: String,
    service: String,
    webhook_secret_id: String,
    secret_key_id: String,
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
pub fn split_secrets(value: &SecretString) -> Vec<SecretString> {
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
            target: AwsTarget {
                region: settings.region.clone(),
                endpoint_url: settings.aws_endpoint_url.clone(),
                profile: None,
            },
            cluster: settings.cluster.clone(),
            service: settings.service.clone(),
            webhook_secret_id: settings.webhook_secret_id.clone(),
            secret_key_id: settings.secret_key_id.clone(),
            poll,
            read_key,
        }
    }

    /// Reads the deployment first, then the secrets, so a redeploy in between is caught by
    /// the next poll. A secret that does not exist yet is a warning (the app then uses a
    /// generated one until a redeploy brings the real one); AWS failing is exit 3.
    pub async fn fetch(&self) -> Result<Fetched> {
        let (sm, ecs) = clients(&self.target).await;
        let deployment = match self.deployment(&ecs).await {
            Ok(d) => d,
            Err(e) => {
                output::warn(format!("{}; redeploys are not followed until it is", e));
                None
            }
        };
        let webhook_secrets = self
            .read(&sm, &self.webhook_secret_id)
            .await?
            .map(|v| split_secrets(&v))
            .unwrap_or_default();
        let secret_key = if self.read_key {
            self.read(&sm, &self.secret_key_id).await?
        } else {
            None
        };
        Ok(Fetched {
            webhook_secrets,
            secret_key,
            deployment,
        })
    }

    async fn read(
        &self,
        sm: &aws_sdk_secretsmanager::Client,
        id: &str,
    ) -> Result<Option<SecretString>> {
        match sm.get_secret_value().secret_id(id).send().await {
            Ok(out) => match out.secret_string() {
                Some(v) if !v.trim().is_empty() => {
                    Ok(Some(SecretString::from(v.trim().to_owned())))
                }
                _ => {
                    output::warn(format!("secret {id} has no string value"));
                    Ok(None)
                }
            },
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                output::warn(format!(
                    "secret {id} does not exist yet; using a generated value until a redeploy"
                ));
                Ok(None)
            }
            Err(e) => Err(Error::external(format!(
                "reading secret {id} from Secrets Manager: {}",
                describe(&e)
            ))),
        }
    }

    /// The service's primary deployment, `None` when the service has none.
    async fn deployment(&self, ecs: &aws_sdk_ecs::Client) -> Result<Option<Fingerprint>> {
        let out = ecs
            .describe_services()
            .cluster(&self.cluster)
            .services(&self.service)
            .send()
            .await
            .map_err(|e| {
                Error::external(format!(
                    "describing ECS service {}/{}: {}",
                    self.cluster,
                    self.service,
                    describe(&e)
                ))
            })?;
        let Some(service) = out.services().first() else {
            return Err(Error::external(format!(
                "ECS service {}/{} not found",
                self.cluster, self.service
            )));
        };
        let deployments = service.deployments();
        let primary = deployments
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
            .or_else(|| deployments.first());
        Ok(primary.map(|d| Fingerprint {
            deployment_id: d.id().unwrap_or_default().to_owned(),
            task_definition: service.task_definition().unwrap_or_default().to_owned(),
        }))
    }

    /// Polls the service; on a new deployment, reads the secrets again and swaps them in.
    pub async fn follow(self, shared: Arc<Shared>, mut current: Option<Fingerprint>) {
        let (sm, ecs) = clients(&self.target).await;
        let mut interval = tokio::time::interval(self.poll);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let seen = self.deployment(&ecs).await;
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
            match self.reload(&sm, &shared).await {
                Ok(()) => {
                    output::status(format!(
                        "sandbox: new deployment {}; secrets re-read from Secrets Manager",
                        seen.as_ref()
                            .map(|d| d.deployment_id.as_str())
                            .unwrap_or("?")
                    ));
                    current = seen;
                }
                Err(e) => output::warn(format!("{}; retrying", e.message())),
            }
        }
    }

    async fn reload(&self, sm: &aws_sdk_secretsmanager::Client, shared: &Shared) -> Result<()> {
        let secrets = self
            .read(sm, &self.webhook_secret_id)
            .await?
            .map(|v| split_secrets(&v))
            .unwrap_or_default();
        let key = if self.read_key {
            self.read(sm, &self.secret_key_id).await?
        } else {
            None
        };
        if !secrets.is_empty() {
            shared.set_webhook_secrets(&secrets);
        }
        if let Some(k) = key {
            shared.stripe.set_key(k);
        }
        Ok(())
    }
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
