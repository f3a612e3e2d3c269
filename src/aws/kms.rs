//! KMS's `DescribeKey` and `GetKeyPolicy`, for the pre-flight: which key a secret's `KmsKeyId` (a
//! key ARN, a key id, an alias or an alias ARN, as Secrets Manager stores what it was given)
//! names, whether AWS or the customer manages it, and the key's policy. A JSON 1.1 POST signed by `signed.rs`; shapes from the KMS API
//! reference (`DescribeKey`: `KeyMetadata.{Arn, KeyManager}`; errors as `{"__type", "message"}`).

use serde::Deserialize;

use super::signed::Signed;

/// What KMS says of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// `arn:…:key/<id>`, what IAM policies name.
    pub arn: String,
    /// `KeyManager` is `AWS` (an AWS managed key, `aws/secretsmanager`): the execution role needs
    /// no `kms:Decrypt` for it.
    pub aws_managed: bool,
}

/// A client for `DescribeKey`.
pub struct Kms {
    pub signed: Signed,
    pub region: String,
}

impl Kms {
    /// The key `key_id` names. `Err` says why it could not be told (not found, no permission,
    /// KMS unreachable).
    pub async fn describe(&self, key_id: &str) -> Result<Key, String> {
        let (status, body) = self
            .call("DescribeKey", serde_json::json!({ "KeyId": key_id }))
            .await?;
        parse(status, &body)
    }

    /// The key's policy (its only one, `default`), as JSON text.
    pub async fn key_policy(&self, key_arn: &str) -> Result<String, String> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "Policy")]
            policy: String,
        }
        let (status, body) = self
            .call(
                "GetKeyPolicy",
                serde_json::json!({ "KeyId": key_arn, "PolicyName": "default" }),
            )
            .await?;
        if !(200..300).contains(&status) {
            return Err(failure(status, &body));
        }
        serde_json::from_str::<Answer>(&body)
            .map(|a| a.policy)
            .map_err(|e| format!("KMS's answer has no policy: {e}"))
    }

    /// One `TrentService` operation: the answer's status and body.
    async fn call(
        &self,
        operation: &str,
        input: serde_json::Value,
    ) -> Result<(u16, String), String> {
        let target = format!("TrentService.{operation}");
        let answer = self
            .signed
            .post(
                "kms",
                &self.region,
                &super::regional_endpoint("kms", &self.region),
                &[
                    ("content-type", "application/x-amz-json-1.1"),
                    ("x-amz-target", target.as_str()),
                ],
                input.to_string(),
            )
            .await?;
        Ok((answer.status.as_u16(), answer.body))
    }
}

/// Pure: the key in a `DescribeKey` answer, or the error's type and message.
pub fn parse(status: u16, body: &str) -> Result<Key, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Metadata {
        arn: String,
        key_manager: Option<String>,
    }
    #[derive(Deserialize)]
    struct Described {
        #[serde(rename = "KeyMetadata")]
        metadata: Metadata,
    }
    if (200..300).contains(&status) {
        let d: Described = serde_json::from_str(body)
            .map_err(|e| format!("KMS's answer has no key metadata: {e}"))?;
        return Ok(Key {
            arn: d.metadata.arn,
            aws_managed: d.metadata.key_manager.as_deref() == Some("AWS"),
        });
    }
    Err(failure(status, body))
}

/// Pure: the type and message of an error answer.
fn failure(status: u16, body: &str) -> String {
    #[derive(Deserialize)]
    struct Failure {
        #[serde(rename = "__type")]
        kind: Option<String>,
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    let f: Failure = serde_json::from_str(body).unwrap_or(Failure {
        kind: None,
        message: None,
    });
    // `__type` may carry a namespace: `com.amazonaws.kms#NotFoundException`.
    let kind = f
        .kind
        .map(|k| k.rsplit('#').next().unwrap_or_default().to_owned());
    match (kind, f.message) {
        (Some(k), Some(m)) => format!("KMS answered {status} {k}: {m}"),
        (Some(k), None) => format!("KMS answered {status} {k}"),
        (None, _) => format!("KMS answered {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn a_described_key_gives_its_arn_and_who_manages_it() {
        // The answer's shape, trimmed, as the KMS API reference shows it for DescribeKey.
        let customer = format!(
            r#"{{"KeyMetadata":{{"AWSAccountId":"123456789012","Arn":"{ARN}","KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab","KeyManager":"CUSTOMER","KeyState":"Enabled","KeyUsage":"ENCRYPT_DECRYPT"}}}}"#
        );
        assert_eq!(
            parse(200, &customer),
            Ok(Key {
                arn: ARN.into(),
                aws_managed: false
            })
        );
        let aws = customer.replace("CUSTOMER", "AWS");
        assert!(parse(200, &aws).unwrap().aws_managed);
    }

    #[test]
    fn errors_say_the_type_and_message() {
        let e = parse(
            400,
            r#"{"__type":"com.amazonaws.kms#NotFoundException","message":"Alias arn:aws:kms:us-east-1:123456789012:alias/nope is not found."}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("KMS answered 400 NotFoundException: Alias"),
            "{e}"
        );
        assert_eq!(
            parse(400, r#"{"__type":"AccessDeniedException"}"#).unwrap_err(),
            "KMS answered 400 AccessDeniedException"
        );
        assert_eq!(parse(502, "<html>").unwrap_err(), "KMS answered 502");
        assert!(parse(200, "{}").unwrap_err().contains("no key metadata"));
    }

    #[test]
    fn the_endpoint_is_the_regions() {
        use crate::aws::regional_endpoint;
        assert_eq!(
            regional_endpoint("kms", "eu-west-1"),
            "https://kms.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            regional_endpoint("kms", "cn-north-1"),
            "https://kms.cn-north-1.amazonaws.com.cn"
        );
    }
}
