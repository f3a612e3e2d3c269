//! SigV4, AWS's "Signature Version 4 signing process" (canonical request, string to sign,
//! signature), for the one request shape `signed`'s calls have: POST to `/`, no query, a few
//! headers. The day's signing key is derived once (by `aws-sigv4`'s own `generate_signing_key`)
//! and kept: the SDK's general signer derived it (four HMACs) and built the canonical request in
//! fresh strings on every call, which `fanout --from-sqs` pays per receive and per delete. The
//! unit tests hold it to AWS's test suite and to `aws-sigv4` byte for byte.

use std::sync::Mutex;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use sha2::{Digest, Sha256};

/// Signs requests, keeping the last signing key derived (for a day, region, service and
/// secret).
#[derive(Default)]
pub struct Signer {
    key: Mutex<Option<SigningKey>>,
}

impl Signer {
    /// SigV4 for a POST to `/` of `host` with `headers` (lowercase names) and `body`: the
    /// headers to add (`x-amz-date`, the session token, `authorization`).
    pub fn sign(
        &self,
        credentials: &Credentials,
        scope: &Scope<'_>,
        host: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Signing {
        let stamp = Stamp::of(scope.time);
        let key = {
            let mut cached = self.key.lock().unwrap_or_else(|e| e.into_inner());
            match cached
                .as_ref()
                .filter(|k| k.fits(credentials, scope, &stamp))
            {
                Some(k) => k.key,
                None => {
                    let k = SigningKey::derive(credentials, scope, &stamp);
                    let key = k.key;
                    *cached = Some(k);
                    key
                }
            }
        };
        signature(credentials, scope, &stamp, &key, host, headers, body)
    }
}

/// What a signature is for: the region, the service's signing name, and when.
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
}

/// `x-amz-date` (`20150830T123600Z`) and the scope's date (`20150830`), in UTC.
struct Stamp {
    amz_date: String,
}

impl Stamp {
    fn of(time: SystemTime) -> Stamp {
        let format =
            time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        let amz_date = time::OffsetDateTime::from(time)
            .format(&format)
            .expect("a UTC time always formats");
        Stamp { amz_date }
    }

    fn date(&self) -> &str {
        &self.amz_date[..8]
    }
}

/// A derived SigV4 signing key and what it was derived for: valid for one day, region,
/// service and secret.
struct SigningKey {
    access_key: String,
    /// SHA-256 of the secret key it was derived from: which secret, without keeping a copy.
    secret_digest: [u8; 32],
    date: String,
    region: String,
    service: String,
    key: [u8; 32],
}

impl SigningKey {
    fn derive(credentials: &Credentials, scope: &Scope<'_>, stamp: &Stamp) -> SigningKey {
        let derived = aws_sigv4::sign::v4::generate_signing_key(
            credentials.secret_access_key(),
            scope.time,
            scope.region,
            scope.service,
        );
        let mut key = [0u8; 32];
        key.copy_from_slice(derived.as_ref());
        SigningKey {
            access_key: credentials.access_key_id().to_owned(),
            secret_digest: digest(credentials.secret_access_key()),
            date: stamp.date().to_owned(),
            region: scope.region.to_owned(),
            service: scope.service.to_owned(),
            key,
        }
    }

    fn fits(&self, credentials: &Credentials, scope: &Scope<'_>, stamp: &Stamp) -> bool {
        self.date == stamp.date()
            && self.region == scope.region
            && self.service == scope.service
            && self.access_key == credentials.access_key_id()
            && self.secret_digest == digest(credentials.secret_access_key())
    }
}

/// The headers a signature adds.
pub struct Signing {
    amz_date: String,
    authorization: String,
}

impl Signing {
    pub fn headers<'a>(
        &'a self,
        credentials: &'a Credentials,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        [("x-amz-date", self.amz_date.as_str())]
            .into_iter()
            .chain(
                credentials
                    .session_token()
                    .map(|t| ("x-amz-security-token", t)),
            )
            .chain([("authorization", self.authorization.as_str())])
    }
}

/// SigV4's canonical request, string to sign and signature for a POST to `/` with no query
/// (docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html): the signed headers
/// are `host`, `x-amz-date`, the session token when there is one (as `aws-sigv4` signs it) and
/// `headers` (lowercase names, values with no spaces to trim), sorted by name.
fn signature(
    credentials: &Credentials,
    scope: &Scope<'_>,
    stamp: &Stamp,
    key: &[u8; 32],
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Signing {
    let mut signed: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 3);
    signed.extend_from_slice(headers);
    signed.push(("host", host));
    signed.push(("x-amz-date", &stamp.amz_date));
    if let Some(token) = credentials.session_token() {
        signed.push(("x-amz-security-token", token));
    }
    signed.sort_unstable_by_key(|(name, _)| *name);
    let mut canonical = String::with_capacity(512);
    canonical.push_str("POST\n/\n\n");
    for (name, value) in &signed {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value.trim());
        canonical.push('\n');
    }
    canonical.push('\n');
    let names_start = canonical.len();
    for (i, (name, _)) in signed.iter().enumerate() {
        if i > 0 {
            canonical.push(';');
        }
        canonical.push_str(name);
    }
    let names_end = canonical.len();
    canonical.push('\n');
    canonical.push_str(&hex::encode(Sha256::digest(body)));
    let credential_scope = format!(
        "{}/{}/{}/aws4_request",
        stamp.date(),
        scope.region,
        scope.service
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{credential_scope}\n{}",
        stamp.amz_date,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let signature = aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes());
    Signing {
        amz_date: stamp.amz_date.clone(),
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={}, Signature={signature}",
            credentials.access_key_id(),
            &canonical[names_start..names_end]
        ),
    }
}

/// The `Host` a URL's request carries: its host, and its port unless the scheme's default.
pub fn authority(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    Ok(match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn suite_credentials(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_owned),
            None,
            "suite",
        )
    }

    fn our_signature(
        signer: &Signer,
        credentials: &Credentials,
        (region, service, time): (&str, &str, SystemTime),
        host: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<(String, String)> {
        let scope = Scope {
            region,
            service,
            time,
        };
        let signing = signer.sign(credentials, &scope, host, headers, body);
        let mut added: Vec<(String, String)> = signing
            .headers(credentials)
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        added.sort();
        added
    }

    /// The headers the AWS SDK's own signer (`aws-sigv4`, default settings: what this module
    /// used before) adds to the same request.
    fn sdk_signature(
        credentials: &Credentials,
        (region, service, time): (&str, &str, SystemTime),
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<(String, String)> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let identity = credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut added: Vec<(String, String)> = instructions
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        added.sort();
        added
    }

    fn authorization(added: &[(String, String)]) -> &str {
        &added.iter().find(|(n, _)| n == "authorization").unwrap().1
    }

    /// AWS's SigV4 test suite (aws-signing-test-suite/v4, shipped in the `aws-sigv4` crate):
    /// post-vanilla, post-sts-header-before (a session token, signed) and
    /// post-x-www-form-urlencoded (a signed body), their expected signatures.
    #[test]
    fn signatures_match_aws_sigv4_test_suite() {
        let signer = Signer::default();
        let at = ("us-east-1", "service", suite_time());
        let host = "example.amazonaws.com";
        let token = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
        /// A session token, the request's headers and body, the expected signature.
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a [u8], &'a str);
        let cases: [Case; 3] = [
            (
                None,
                &[],
                b"",
                "SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            (
                Some(token),
                &[],
                b"",
                "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
            ),
            (
                None,
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("content-length", "13"),
                    (
                        "x-amz-content-sha256",
                        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
                    ),
                ],
                b"Param1=value1",
                "SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
            ),
        ];
        for (token, headers, body, expected) in cases {
            let credentials = suite_credentials(token);
            let added = our_signature(&signer, &credentials, at, host, headers, body);
            assert_eq!(
                authorization(&added),
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, {expected}"
                )
            );
            assert!(added.contains(&("x-amz-date".into(), "20150830T123600Z".into())));
        }
    }

    /// The requests this module signs (SQS and EventBridge's JSON protocol, IAM and STS's
    /// forms, a session token or none, a port in the host or none), signed the same as the
    /// SDK's signer signs them, header for header, byte for byte; and a kept key is the key
    /// derived again (a second signature with the cache warm, another day, another region).
    #[test]
    fn signatures_are_the_sdk_signers_byte_for_byte_with_the_key_kept() {
        let signer = Signer::default();
        let json = [
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", "AmazonSQS.ReceiveMessage"),
        ];
        let form = [(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )];
        let body =
            br#"{"QueueUrl":"http://127.0.0.1:5000/123456789012/q","MaxNumberOfMessages":10}"#;
        let day = Duration::from_secs(86_400);
        for token in [None, Some("session-token-example")] {
            let credentials = suite_credentials(token);
            for (url, region, service, headers) in [
                ("http://127.0.0.1:5000/", "us-east-1", "sqs", &json[..]),
                (
                    "https://sqs.eu-west-1.amazonaws.com/",
                    "eu-west-1",
                    "sqs",
                    &json[..],
                ),
                (
                    "https://sts.us-east-1.amazonaws.com/",
                    "us-east-1",
                    "sts",
                    &form[..],
                ),
            ] {
                for time in [
                    suite_time(),
                    suite_time() + Duration::from_secs(7),
                    suite_time() + day,
                ] {
                    let at = (region, service, time);
                    let host = authority(url).unwrap();
                    assert_eq!(
                        our_signature(&signer, &credentials, at, &host, headers, body),
                        sdk_signature(&credentials, at, url, headers, body),
                        "{url} {token:?} {time:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_signed_host_is_the_one_the_request_carries() {
        assert_eq!(
            authority("http://127.0.0.1:5000/").unwrap(),
            "127.0.0.1:5000"
        );
        assert_eq!(
            authority("https://sqs.us-east-1.amazonaws.com/").unwrap(),
            "sqs.us-east-1.amazonaws.com"
        );
        assert_eq!(
            authority("https://sqs.us-east-1.amazonaws.com:443/").unwrap(),
            "sqs.us-east-1.amazonaws.com"
        );
    }
}
