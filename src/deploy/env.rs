//! A deployed environment: its resolved settings, the AWS clients that reach it, and what the
//! core reads from it: the service, the public base URL its app advertises, and the value each
//! Stripe variable is wired to ("taken from a flag, else read from the deployed environment").

use aws_sdk_ecs::types::{Tag, TaskDefinition};

use super::{KEY_VAR, WEBHOOK_VAR, taskdef, wiring};
use crate::aws::ecs::{Ecs, ServiceView};
use crate::aws::iam::Iam;
use crate::aws::kms::Kms;
use crate::aws::secrets_manager::SecretsManager;
use crate::aws::signed::Signed;
use crate::aws::{AwsTarget, sdk_config};
use crate::config::EnvSettings;
use crate::error::{Exit, Result};
use crate::secret::SecretString;

/// Where a delivery to the environment's app goes and what signs it, with the Stripe key that
/// reads the account's events (`events replay --env`).
pub struct Receiver {
    pub url: String,
    pub secrets: Vec<SecretString>,
    pub stripe_key: SecretString,
}

/// What the command line gave of a [`Receiver`]; the rest is read from the environment.
#[derive(Default)]
pub struct Given {
    pub url: Option<String>,
    pub secrets: Option<Vec<SecretString>>,
    pub stripe_key: Option<SecretString>,
}

/// A resolved environment and its AWS clients.
pub struct Env {
    pub settings: EnvSettings,
    pub sm: SecretsManager,
    pub ecs: Ecs,
    /// For the pre-flight only: the policy simulation, and the secrets' keys.
    pub iam: Iam,
    pub kms: Kms,
}

impl Env {
    /// Clients for the environment's region and endpoint, with `profile` when given.
    pub async fn connect(settings: EnvSettings, profile: Option<String>) -> Env {
        let target = AwsTarget {
            region: settings.region.clone(),
            endpoint_url: settings.aws_endpoint_url.clone(),
            profile,
        };
        let config = sdk_config(&target).await;
        let signed = Signed::new(&config, target.endpoint_url.clone());
        Env {
            settings,
            sm: SecretsManager::new(&config),
            ecs: Ecs::new(&config, &target.region),
            iam: Iam(signed.clone()),
            kms: Kms {
                signed,
                region: target.region.clone(),
            },
        }
    }

    /// The environment's ECS service.
    pub async fn service(&self) -> Result<ServiceView> {
        self.ecs
            .service(&self.settings.cluster, &self.settings.service)
            .await
    }

    /// The task definition `arn`, with its tags.
    pub async fn task_definition(&self, arn: &str) -> Result<(TaskDefinition, Vec<Tag>)> {
        self.ecs.task_definition(arn).await
    }

    /// The public base URL: `--base-url` / the config, else the `PUBLIC_BASE_URL` environment
    /// entry of the container in the service's current task definition. Exit 2 when neither.
    pub async fn public_base_url(&self) -> Result<String> {
        if let Some(url) = &self.settings.base_url {
            return Ok(url.clone());
        }
        let svc = self.service().await?;
        let (td, _) = self.task_definition(&svc.task_definition).await?;
        taskdef::base_url_of(&td, &self.settings.container)
    }

    /// The webhook signing secret the environment's app reads.
    pub async fn webhook_secret(&self) -> Result<SecretString> {
        self.read_variable(WEBHOOK_VAR, &self.settings.webhook_secret_id)
            .await
    }

    /// The Stripe secret key the environment's app reads.
    pub async fn stripe_key(&self) -> Result<SecretString> {
        self.read_variable(KEY_VAR, &self.settings.secret_key_id)
            .await
    }

    /// The receiver of the environment's app: what `given` says, the rest read from the
    /// deployed environment (the webhook URL from the public base URL and the contract's path).
    pub async fn receiver(&self, given: Given) -> Result<Receiver> {
        let url = match given.url {
            Some(u) => u,
            None => crate::http::join(
                &self.public_base_url().await?,
                &self.settings.contract.paths.webhook,
            ),
        };
        let secrets = match given.secrets {
            Some(s) => s,
            None => vec![self.webhook_secret().await?],
        };
        let stripe_key = match given.stripe_key {
            Some(k) => k,
            None => self.stripe_key().await?,
        };
        Ok(Receiver {
            url,
            secrets,
            stripe_key,
        })
    }

    /// The value the container reads for a variable wired to `target` (stripe-ops' own secret
    /// `own_id`, the team's secret whole, or one key of its JSON).
    pub async fn read_wired(&self, target: &wiring::Target, own_id: &str) -> Result<SecretString> {
        match target {
            wiring::Target::Own => self.sm.value(own_id).await,
            wiring::Target::Whole { secret } => self.sm.value(secret).await,
            wiring::Target::JsonKey { secret, key } => {
                wiring::json_key_value(&self.sm.value(secret).await?, secret, key)
            }
        }
    }

    /// The value the environment's container reads for `var` (`KEY_VAR` or `WEBHOOK_VAR`): from
    /// the task definition's wiring (stripe-ops' own secret, the team's, or a key of its JSON),
    /// else stripe-ops' own secret `own_id`. When ECS cannot be read (no permission for it), the
    /// own secret is read, as before the wiring was followed.
    pub async fn read_variable(&self, var: &str, own_id: &str) -> Result<SecretString> {
        let wired = async {
            let svc = self.service().await?;
            let (td, _) = self.task_definition(&svc.task_definition).await?;
            let secrets =
                taskdef::secrets_of(td.container_definitions(), &self.settings.container)?;
            let current = secrets
                .iter()
                .find(|s| s.name == var)
                .map(|s| s.value_from.clone());
            let own_arn = self.sm.info(own_id).await?.map(|i| i.arn);
            wiring::target(
                var,
                current.as_deref(),
                own_arn.as_deref(),
                Default::default(),
            )
        };
        match wired.await {
            Ok(target) => self.read_wired(&target, own_id).await,
            Err(e) if e.exit == Exit::External => {
                tracing::debug!("cannot read the wiring of {var}: {}", e.message());
                self.sm.value(own_id).await
            }
            Err(e) => Err(e),
        }
    }
}
