//! Format rules for the secrets `enable` writes. Pure: the caller prints the warning.

use crate::error::{Error, Result};
use crate::secret::{ExposeSecret, SecretString};
use crate::stripe_api::{KeyMode, key_mode};

/// Checks a Stripe secret key for an environment. A live key outside production is refused
/// unless `allow_live`; a test key for production is allowed with the returned warning.
pub fn check_secret_key(
    key: &SecretString,
    production: bool,
    allow_live: bool,
) -> Result<(KeyMode, Option<String>)> {
    let mode = key_mode(key).ok_or_else(|| {
        Error::usage(
            "the Stripe secret key must start with sk_test_, sk_live_, rk_test_ or rk_live_",
        )
    })?;
    match (mode, production) {
        (KeyMode::Live, false) if !allow_live => Err(Error::usage(
            "refusing a live Stripe key for a non-production environment; pass --allow-live-key if you mean it",
        )),
        (KeyMode::Test, true) => Ok((
            mode,
            Some("a test-mode Stripe key for production: real payments will not work".to_owned()),
        )),
        _ => Ok((mode, None)),
    }
}

/// A webhook signing secret must look like Stripe's (`whsec_` and something after it).
pub fn check_webhook_secret(secret: &SecretString) -> Result<()> {
    let s = secret.expose_secret();
    if s.len() > "whsec_".len() && s.starts_with("whsec_") {
        Ok(())
    } else {
        Err(Error::usage(
            "the webhook secret must start with whsec_ (Stripe's signing secrets always do)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Exit;

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_owned())
    }

    #[test]
    fn key_rules_per_environment() {
        assert_eq!(
            check_secret_key(&s("sk_test_1"), false, false).unwrap(),
            (KeyMode::Test, None)
        );
        let e = check_secret_key(&s("sk_live_1"), false, false).unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
        assert!(e.message().contains("--allow-live-key"));
        assert!(check_secret_key(&s("rk_live_1"), false, true).is_ok());
        assert_eq!(
            check_secret_key(&s("sk_live_1"), true, false).unwrap().1,
            None
        );
        assert!(
            check_secret_key(&s("sk_test_1"), true, false)
                .unwrap()
                .1
                .is_some()
        );
        let e = check_secret_key(&s("pk_test_1"), false, false).unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
        assert!(!e.message().contains("pk_test_1"));
    }

    #[test]
    fn webhook_secret_rules() {
        assert!(check_webhook_secret(&s("whsec_abc")).is_ok());
        assert_eq!(
            check_webhook_secret(&s("whsec_")).unwrap_err().exit,
            Exit::Usage
        );
        assert_eq!(
            check_webhook_secret(&s("abc")).unwrap_err().exit,
            Exit::Usage
        );
    }
}
