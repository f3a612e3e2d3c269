//! Secrets Manager, through the official SDK: DescribeSecret, GetResourcePolicy,
//! GetSecretValue, PutSecretValue, CreateSecret and UpdateSecretVersionStage. Values travel only
//! inside `SecretString`; what is reported is the id, ARN, version id and length.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client;
use serde::Serialize;

use super::{date, describe};
use crate::error::{Error, Result};
use crate::secret::{ExposeSecret, SecretString};

/// A secret's metadata (never its value).
#[derive(Debug, Clone, Serialize)]
pub struct SecretInfo {
    pub id: String,
    pub arn: String,
    pub last_changed: Option<String>,
    /// The KMS key that encrypts it, when not the account's `aws/secretsmanager` key.
    pub kms_key_id: Option<String>,
    /// Version id → its stages (AWSCURRENT, AWSPREVIOUS, ...).
    pub versions: BTreeMap<String, Vec<String>>,
}

impl SecretInfo {
    pub fn current_version(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
            .map(|(id, _)| id.as_str())
    }
}

/// What a write did, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub id: String,
    pub arn: String,
    pub version_id: String,
    pub value_length: usize,
    pub created: bool,
}

/// A Secrets Manager client.
#[derive(Clone)]
pub struct SecretsManager(Client);

impl SecretsManager {
    pub fn new(config: &SdkConfig) -> SecretsManager {
        SecretsManager(Client::new(config))
    }

    /// DescribeSecret; `None` when the secret does not exist.
    pub async fn info(&self, id: &str) -> Result<Option<SecretInfo>> {
        match self.0.describe_secret().secret_id(id).send().await {
            Ok(out) => Ok(Some(SecretInfo {
                id: id.to_owned(),
                arn: out.arn().unwrap_or_default().to_owned(),
                last_changed: date(out.last_changed_date()),
                kms_key_id: out.kms_key_id().map(str::to_owned),
                versions: out
                    .version_ids_to_stages()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::external(format!(
                "cannot describe secret {id}: {}",
                describe(&e)
            ))),
        }
    }

    /// The secret's resource-based policy as JSON text (`None`: it has none). `Err` says why it
    /// could not be read.
    pub async fn resource_policy(&self, arn: &str) -> std::result::Result<Option<String>, String> {
        self.0
            .get_resource_policy()
            .secret_id(arn)
            .send()
            .await
            .map(|out| out.resource_policy().map(str::to_owned))
            .map_err(|e| describe(&e))
    }

    /// The AWSCURRENT value.
    pub async fn value(&self, id: &str) -> Result<SecretString> {
        self.value_if_exists(id)
            .await?
            .ok_or_else(|| Error::external(format!("cannot read secret {id}: it does not exist")))
    }

    /// The AWSCURRENT value, `None` when the secret does not exist. The stage is named explicitly:
    /// moto answers a bare GetSecretValue with the last version put, even after
    /// UpdateSecretVersionStage moved AWSCURRENT elsewhere.
    pub async fn value_if_exists(&self, id: &str) -> Result<Option<SecretString>> {
        let out = match self
            .0
            .get_secret_value()
            .secret_id(id)
            .version_stage("AWSCURRENT")
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => {
                return Err(Error::external(format!(
                    "cannot read secret {id} from Secrets Manager: {}",
                    describe(&e)
                )));
            }
        };
        match out.secret_string() {
            Some(v) if !v.trim().is_empty() => Ok(Some(SecretString::from(v.trim().to_owned()))),
            _ => Err(Error::external(format!("secret {id} has no string value"))),
        }
    }

    /// PutSecretValue; the new version becomes AWSCURRENT.
    pub async fn put(&self, id: &str, value: &SecretString) -> Result<Written> {
        let out = self
            .0
            .put_secret_value()
            .secret_id(id)
            .secret_string(value.expose_secret())
            .send()
            .await
            .map_err(|e| {
                Error::external(format!(
                    "cannot put a value into secret {id}: {}",
                    describe(&e)
                ))
            })?;
        Ok(Written {
            id: id.to_owned(),
            arn: out.arn().unwrap_or_default().to_owned(),
            version_id: out.version_id().unwrap_or_default().to_owned(),
            value_length: value.expose_secret().len(),
            created: false,
        })
    }

    /// CreateSecret with its first value.
    pub async fn create(
        &self,
        id: &str,
        value: &SecretString,
        description: &str,
    ) -> Result<Written> {
        let out = self
            .0
            .create_secret()
            .name(id)
            .description(description)
            .secret_string(value.expose_secret())
            .send()
            .await
            .map_err(|e| Error::external(format!("cannot create secret {id}: {}", describe(&e))))?;
        Ok(Written {
            id: id.to_owned(),
            arn: out.arn().unwrap_or_default().to_owned(),
            version_id: out.version_id().unwrap_or_default().to_owned(),
            value_length: value.expose_secret().len(),
            created: true,
        })
    }

    /// Moves AWSCURRENT back to `previous` (from `current`): the undo of a PutSecretValue.
    pub async fn restore_current(&self, id: &str, previous: &str, current: &str) -> Result<()> {
        self.0
            .update_secret_version_stage()
            .secret_id(id)
            .version_stage("AWSCURRENT")
            .move_to_version_id(previous)
            .remove_from_version_id(current)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::external(format!(
                    "cannot move AWSCURRENT of {id} back to version {previous}: {}",
                    describe(&e)
                ))
            })
    }
}

/// The command that deletes a secret this run created, for a person undoing it by hand.
pub fn delete_command(id: &str) -> String {
    format!("aws secretsmanager delete-secret --secret-id {id} --force-delete-without-recovery")
}

/// The shell command that does what `restore_current` does, for a person finishing by hand.
pub fn restore_command(id: &str, previous: &str, current: &str) -> String {
    format!(
        "aws secretsmanager update-secret-version-stage --secret-id {id} --version-stage AWSCURRENT --move-to-version-id {previous} --remove-from-version-id {current}"
    )
}
