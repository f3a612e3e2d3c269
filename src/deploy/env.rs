//! A deployed environment: its resolved settings, the AWS clients that reach it, and what the
//! core reads from it: the service, the public base URL its app advertises, and the value each
//! Stripe variable is wired to ("taken from a flag, else read from the deployed environment").

use aws_sdk_ecs::types::{Tag, TaskDefinition};
use serde::Serialize;

use super::{KEY_VAR, WEBHOOK_VAR, taskdef, wiring};
use crate::aws::ecs::{Ecs, ServiceView};
use crate::aws::iam::Iam;
use crate::aws::kms::Kms;
use crate::aws::logs::Logs;
use crate::aws::secrets_manager::{SecretsManager, Written};
use crate::aws::signed::Signed;
use crate::aws::ssm::{ParameterInfo, Ssm};
use crate::aws::{AwsTarget, sdk_config};
use crate::config::EnvSettings;
use crate::error::{Error, Exit, Result};
use crate::secret::{ExposeSecret, SecretString};

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
    /// SSM Parameter Store, for variables the task definition takes from a parameter.
    pub ssm: Ssm,
    /// CloudWatch Logs, for the last lines of a container that stopped.
    pub logs: Logs,
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
                signed: signed.clone(),
                region: target.region.clone(),
            },
            ssm: Ssm {
                signed: signed.clone(),
            },
            logs: Logs { signed },
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
            wiring::Target::Parameter(p) => self
                .ssm
                .value(p.region(&self.settings.region), &p.name)
                .await
                .map_err(|e| Error::external(format!("cannot read SSM parameter {}: {e}", p.name))),
        }
    }

    /// The SSM parameter a task definition of `task_account` reads `var` from, as SSM
    /// describes it; refused (exit 2) when it is another account's, does not exist or is not a
    /// `SecureString` (`wiring::parameter_in_account`, `wiring::secure_parameter`).
    pub async fn parameter(
        &self,
        var: &str,
        p: &wiring::Parameter,
        task_account: &str,
        choices: wiring::Choices,
    ) -> Result<WiredParameter> {
        wiring::parameter_in_account(var, p, task_account, choices)?;
        let region = p.region(&self.settings.region).to_owned();
        let info = self
            .ssm
            .describe(&region, &p.name)
            .await
            .map_err(Error::external)?
            .ok_or_else(|| {
                Error::usage(format!(
                    "the task definition injects {var} from SSM parameter {} (region {region}), which does not exist",
                    p.name
                ))
            })?;
        wiring::secure_parameter(var, &p.name, &info.kind, choices)?;
        Ok(WiredParameter {
            arn: p.arn(&self.settings.region, task_account),
            region,
            info,
        })
    }

    /// Puts `value` into the parameter as a new version (its type, key and tier kept).
    pub async fn put_parameter(&self, w: &WiredParameter, value: &SecretString) -> Result<Written> {
        let version = self.ssm.put(&w.region, &w.info, value).await.map_err(|e| {
            Error::external(format!("cannot write SSM parameter {}: {e}", w.info.name))
        })?;
        Ok(Written {
            id: w.info.name.clone(),
            arn: w.arn.clone(),
            version_id: version.to_string(),
            value_length: value.expose_secret().chars().count(),
            created: false,
        })
    }

    /// Puts the value of version `previous` back, as a new version (SSM has no stage to move
    /// back, as Secrets Manager has). Returns the new version.
    pub async fn restore_parameter(&self, w: &WiredParameter, previous: u64) -> Result<u64> {
        let name = &w.info.name;
        let old = self
            .ssm
            .value(&w.region, &format!("{name}:{previous}"))
            .await
            .map_err(|e| {
                Error::external(format!(
                    "cannot read version {previous} of SSM parameter {name}: {e}"
                ))
            })?;
        self.put_parameter(w, &old)
            .await
            .map(|written| written.version_id.parse().unwrap_or_default())
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

/// An SSM parameter a Stripe variable is read from, as SSM describes it.
#[derive(Debug, Clone, Serialize)]
pub struct WiredParameter {
    pub arn: String,
    pub region: String,
    #[serde(flatten)]
    pub info: ParameterInfo,
}

impl WiredParameter {
    /// The command that puts version `previous`'s value back by hand.
    pub fn restore_command(&self, previous: u64) -> String {
        let (region, name) = (&self.region, &self.info.name);
        let key = self
            .info
            .key_id
            .as_ref()
            .map(|k| format!(" --key-id {k}"))
            .unwrap_or_default();
        format!(
            "aws ssm put-parameter --region {region} --name {name} --type SecureString{key} --overwrite --value \"$(aws ssm get-parameter --region {region} --name {name}:{previous} --with-decryption --query Parameter.Value --output text)\""
        )
    }
}

/// The switch of the secret: AWSCURRENT moved from `previous` to `current` (for a parameter:
/// version `current` put after `previous`).
#[derive(Debug, Clone)]
pub struct SecretSwitch {
    pub id: String,
    pub previous: String,
    pub current: String,
    pub parameter: Option<WiredParameter>,
}

impl SecretSwitch {
    /// The command that puts the previous value back by hand.
    pub fn restore_command(&self) -> String {
        match &self.parameter {
            Some(p) => p.restore_command(self.previous.parse().unwrap_or_default()),
            None => crate::aws::secrets_manager::restore_command(
                &self.id,
                &self.previous,
                &self.current,
            ),
        }
    }

    /// Puts the previous value back: AWSCURRENT to the previous version, or the previous
    /// version's value as a new version of the parameter. Says what it did.
    pub async fn restore(&self, env: &Env) -> Result<String> {
        match &self.parameter {
            Some(p) => {
                let previous = self.previous.parse().unwrap_or_default();
                let now = env.restore_parameter(p, previous).await?;
                Ok(format!(
                    "SSM parameter {} holds version {previous}'s value again (version {now})",
                    self.id
                ))
            }
            None => env
                .sm
                .restore_current(&self.id, &self.previous, &self.current)
                .await
                .map(|()| {
                    format!(
                        "AWSCURRENT of {} is version {} again",
                        self.id, self.previous
                    )
                }),
        }
    }
}
