//! SSM Parameter Store through its JSON protocol (`X-Amz-Target: AmazonSSM.<Action>`,
//! `Content-Type: application/x-amz-json-1.1`; the Systems Manager API reference), each call one
//! POST signed by `signed.rs`, for the four calls the wiring makes: `DescribeParameters` (a
//! parameter's type, key, tier and version, never its value), `GetParameter` with decryption (a
//! value, optionally `name:version`), and `PutParameter` with `Overwrite` (a new version).
//! Values travel only inside `SecretString`; errors carry the service's code and message, never
//! a value.

use serde::Serialize;
use serde_json::{Value, json};

use super::signed::{CallError, JsonService, Signed};
use crate::secret::{ExposeSecret, SecretString};

/// A parameter's metadata as `DescribeParameters` gives it (`ParameterMetadata`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ParameterInfo {
    pub name: String,
    /// `String`, `StringList` or `SecureString`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The KMS key of a `SecureString` (an alias, key id or ARN, as it was given).
    pub key_id: Option<String>,
    pub version: u64,
    pub last_modified: Option<String>,
    /// `Standard` or `Advanced` (an advanced parameter cannot go back to standard).
    pub tier: Option<String>,
    /// `text`, `aws:ec2:image`, ...
    pub data_type: Option<String>,
}

/// An SSM client; each call names its region (ECS reads a parameter of another region by its
/// ARN).
#[derive(Clone)]
pub struct Ssm {
    pub signed: Signed,
}

impl Ssm {
    async fn call(&self, region: &str, action: &str, body: &Value) -> Result<Value, CallError> {
        let endpoint = super::regional_endpoint("ssm", region);
        let service = JsonService {
            service: "ssm",
            label: "SSM",
            region,
            endpoint: &endpoint,
            target_prefix: "AmazonSSM",
            content_type: "application/x-amz-json-1.1",
        };
        self.signed.json(&service, action, body).await
    }

    /// The parameter `name` (`None` when it does not exist).
    pub async fn describe(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Option<ParameterInfo>, String> {
        let body = json!({
            "ParameterFilters": [{"Key": "Name", "Option": "Equals", "Values": [name]}],
        });
        let answer = self
            .call(region, "DescribeParameters", &body)
            .await
            .map_err(|e| format!("cannot describe SSM parameter {name}: {e}"))?;
        Ok(parse_described(&answer, name))
    }

    /// The decrypted value of `selector` (a name, or `name:version`).
    pub async fn value(&self, region: &str, selector: &str) -> Result<SecretString, CallError> {
        let body = json!({ "Name": selector, "WithDecryption": true });
        let answer = self.call(region, "GetParameter", &body).await?;
        answer["Parameter"]["Value"]
            .as_str()
            .map(|v| SecretString::from(v.to_owned()))
            .ok_or_else(|| CallError {
                code: None,
                message: format!("SSM GetParameter answered for {selector} without a value"),
            })
    }

    /// Writes `value` as a new version of the `SecureString` parameter `p`, with its own key and
    /// tier named (PutParameter without `KeyId` would encrypt with the account's default
    /// `aws/ssm` key instead, and a type or tier is never changed here). Returns the version.
    pub async fn put(
        &self,
        region: &str,
        p: &ParameterInfo,
        value: &SecretString,
    ) -> Result<u64, CallError> {
        let mut body = json!({
            "Name": p.name,
            "Value": value.expose_secret(),
            "Type": "SecureString",
            "Overwrite": true,
        });
        if let Some(key) = &p.key_id {
            body["KeyId"] = json!(key);
        }
        if let Some(tier) = &p.tier {
            body["Tier"] = json!(tier);
        }
        let answer = self.call(region, "PutParameter", &body).await?;
        answer["Version"].as_u64().ok_or_else(|| CallError {
            code: None,
            message: format!("SSM PutParameter answered for {} without a version", p.name),
        })
    }
}

/// Pure: the one parameter named `name` in a `DescribeParameters` answer.
pub fn parse_described(answer: &Value, name: &str) -> Option<ParameterInfo> {
    let p = answer["Parameters"]
        .as_array()?
        .iter()
        .find(|p| p["Name"] == name)?;
    let text = |k: &str| p[k].as_str().map(str::to_owned);
    Some(ParameterInfo {
        name: name.to_owned(),
        kind: text("Type").unwrap_or_default(),
        key_id: text("KeyId"),
        version: p["Version"].as_u64().unwrap_or_default(),
        last_modified: p["LastModifiedDate"].as_f64().and_then(|secs| {
            super::date(Some(
                &aws_sdk_secretsmanager::primitives::DateTime::from_secs_f64(secs),
            ))
        }),
        tier: text("Tier"),
        data_type: text("DataType"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_described_parameter_gives_its_type_key_tier_and_version() {
        // The shape of the Systems Manager API reference's DescribeParameters answer
        // (`ParameterMetadata`), timestamps as epoch seconds as the JSON protocol sends them.
        let answer: Value = serde_json::from_str(
            r#"{"Parameters":[{"Name":"/app/stripe_key","ARN":"arn:aws:ssm:us-east-1:123456789012:parameter/app/stripe_key","Type":"SecureString","KeyId":"alias/payments","LastModifiedDate":1767225600.5,"LastModifiedUser":"arn:aws:iam::123456789012:user/ops","Version":7,"Tier":"Standard","Policies":[],"DataType":"text"}]}"#,
        )
        .unwrap();
        let p = parse_described(&answer, "/app/stripe_key").unwrap();
        assert_eq!(p.kind, "SecureString");
        assert_eq!(p.key_id.as_deref(), Some("alias/payments"));
        assert_eq!(p.version, 7);
        assert_eq!(p.tier.as_deref(), Some("Standard"));
        assert_eq!(p.last_modified.as_deref(), Some("2026-01-01T00:00:00.5Z"));
        assert!(parse_described(&answer, "/app/other").is_none());
        assert!(parse_described(&json!({"Parameters": []}), "/app/stripe_key").is_none());
    }
}
