//! STS, for the one call stripe-ops makes: `GetCallerIdentity` (query protocol, version
//! 2011-06-15, the regional endpoint), a form POST signed by `signed.rs`, its `<Account>` read
//! from the XML answer.

use aws_config::SdkConfig;

use super::AwsTarget;
use super::signed::Signed;

/// A client for `GetCallerIdentity`.
#[derive(Clone)]
pub struct Sts {
    signed: Signed,
    region: String,
}

impl Sts {
    pub fn new(config: &SdkConfig, target: &AwsTarget) -> Sts {
        Sts {
            signed: Signed::new(config, target.endpoint_url.clone()),
            region: target.region.clone(),
        }
    }

    /// The account the credentials belong to: STS's `GetCallerIdentity` (query protocol,
    /// version 2011-06-15; the regional endpoint), its `<Account>` read from the XML answer.
    pub async fn caller_account(&self) -> Result<String, String> {
        let endpoint = format!("https://sts.{}.amazonaws.com", self.region);
        let answer = self
            .signed
            .post(
                "sts",
                &self.region,
                &endpoint,
                &[(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )],
                "Action=GetCallerIdentity&Version=2011-06-15".to_owned(),
            )
            .await
            .map_err(|e| format!("STS GetCallerIdentity: {e}"))?;
        let account = answer
            .body
            .split_once("<Account>")
            .and_then(|(_, rest)| rest.split_once("</Account>"))
            .map(|(a, _)| a.trim().to_owned())
            .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()));
        match account {
            Some(a) if answer.status.is_success() => Ok(a),
            _ => Err(format!(
                "STS GetCallerIdentity answered {}: {}",
                answer.status,
                crate::http::excerpt(&answer.body, 200)
            )),
        }
    }
}
