//! Stripe's webhook signature scheme (CONTRACT.md section 2), pure and allocation-light:
//! `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=...]`.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's default tolerance for the signed timestamp, in seconds.
pub const DEFAULT_TOLERANCE: i64 = 300;

/// A signer keyed once with a secret; signing clones the keyed state instead of re-keying.
#[derive(Clone)]
pub struct Signer {
    keyed: HmacSha256,
}

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            keyed: HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length"),
        }
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(itoa::Buffer::new().format(timestamp).as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `v1` signature as lowercase hex.
    pub fn sign_hex(&self, timestamp: i64, body: &[u8]) -> String {
        hex::encode(self.mac(timestamp, body).finalize().into_bytes())
    }

    /// Constant-time comparison of a raw (decoded) signature.
    pub fn matches(&self, timestamp: i64, body: &[u8], signature: &[u8]) -> bool {
        self.mac(timestamp, body).verify_slice(signature).is_ok()
    }
}

/// Builds a `Stripe-Signature` value with one `v1=` per signer, as Stripe does during a roll.
pub fn header(timestamp: i64, body: &[u8], signers: &[Signer]) -> String {
    let mut out = String::with_capacity(14 + signers.len() * 68);
    out.push_str("t=");
    out.push_str(itoa::Buffer::new().format(timestamp));
    for s in signers {
        out.push_str(",v1=");
        out.push_str(&s.sign_hex(timestamp, body));
    }
    out
}

/// A parsed `Stripe-Signature` header. `v1` holds the decoded signatures; entries that are not
/// valid hex are kept as empty vectors so they simply never match.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    pub timestamp: i64,
    pub v1: Vec<Vec<u8>>,
}

/// Why a header did not verify. `Malformed` is an input error; the others are verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    NoHeader,
    Malformed(String),
    NoTimestamp,
    NoV1,
    NoMatch,
    /// Signature matched, but the timestamp is `by` seconds beyond the tolerance.
    OutOfTolerance {
        by: i64,
        future: bool,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::NoHeader => f.write_str("no Stripe-Signature header"),
            Rejection::Malformed(why) => write!(f, "malformed Stripe-Signature header: {why}"),
            Rejection::NoTimestamp => f.write_str("no timestamp (t=) in the header"),
            Rejection::NoV1 => f.write_str("no v1 signature in the header"),
            Rejection::NoMatch => f.write_str("no signature matched"),
            Rejection::OutOfTolerance { by, future } => write!(
                f,
                "timestamp out of tolerance by {by} s ({})",
                if *future { "in the future" } else { "too old" }
            ),
        }
    }
}

/// Parses a header. Unknown schemes (`v0=`, anything else) are ignored, as Stripe's libraries do.
/// Why a header is malformed is described, never quoted: a wrong file given as the header may
/// hold a secret.
pub fn parse(header: &str) -> Result<Parsed, Rejection> {
    let header = header.trim();
    if header.is_empty() {
        return Err(Rejection::NoHeader);
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for (n, item) in header.split(',').enumerate() {
        let Some((key, value)) = item.trim().split_once('=') else {
            return Err(Rejection::Malformed(format!(
                "item {} of {} characters is not key=value",
                n + 1,
                item.chars().count()
            )));
        };
        match key {
            "t" => {
                let t = value.parse::<i64>().map_err(|_| {
                    Rejection::Malformed("the timestamp (t=) is not a whole number".to_owned())
                })?;
                timestamp = Some(t);
            }
            "v1" => v1.push(hex::decode(value).unwrap_or_default()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Rejection::NoTimestamp)?;
    if v1.is_empty() {
        return Err(Rejection::NoV1);
    }
    Ok(Parsed { timestamp, v1 })
}

/// Verifies a header against a body: any `v1` matching any signer, then the timestamp within
/// `tolerance` seconds of `now` (either side). Returns the signed timestamp.
pub fn verify(
    header: &str,
    body: &[u8],
    signers: &[Signer],
    tolerance: i64,
    now: i64,
) -> Result<i64, Rejection> {
    let parsed = parse(header)?;
    let matched = parsed.v1.iter().any(|sig| {
        signers
            .iter()
            .any(|s| s.matches(parsed.timestamp, body, sig))
    });
    if !matched {
        return Err(Rejection::NoMatch);
    }
    let age = now - parsed.timestamp;
    if age.abs() > tolerance {
        return Err(Rejection::OutOfTolerance {
            by: age.abs() - tolerance,
            future: age < 0,
        });
    }
    Ok(parsed.timestamp)
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_matches_openssl() {
        // printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        let got = Signer::new(b"whsec_test").sign_hex(1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            got,
            "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn header_has_one_v1_per_secret_and_verifies_with_either() {
        let a = Signer::new(b"whsec_a");
        let b = Signer::new(b"whsec_b");
        let body = b"{}";
        let h = header(100, body, &[a.clone(), b.clone()]);
        assert_eq!(h.matches(",v1=").count(), 2);
        assert_eq!(verify(&h, body, &[b], 300, 100), Ok(100));
        assert_eq!(verify(&h, body, &[a], 300, 100), Ok(100));
        assert_eq!(
            verify(&h, body, &[Signer::new(b"whsec_c")], 300, 100),
            Err(Rejection::NoMatch)
        );
    }

    #[test]
    fn rejections_are_precise() {
        let s = [Signer::new(b"whsec_a")];
        let body = b"x";
        assert_eq!(verify("", body, &s, 300, 0), Err(Rejection::NoHeader));
        assert_eq!(
            verify("v1=00", body, &s, 300, 0),
            Err(Rejection::NoTimestamp)
        );
        assert_eq!(verify("t=1,v0=00", body, &s, 300, 1), Err(Rejection::NoV1));
        assert!(matches!(parse("t=abc,v1=00"), Err(Rejection::Malformed(_))));
        assert!(matches!(parse("garbage"), Err(Rejection::Malformed(_))));
        let h = header(1000, body, &s);
        assert_eq!(
            verify(&h, body, &s, 300, 1000 + 310),
            Err(Rejection::OutOfTolerance {
                by: 10,
                future: false
            })
        );
        assert_eq!(
            verify(&h, body, &s, 300, 1000 - 301),
            Err(Rejection::OutOfTolerance {
                by: 1,
                future: true
            })
        );
        assert_eq!(verify(&h, b"y", &s, 300, 1000), Err(Rejection::NoMatch));
    }
}
