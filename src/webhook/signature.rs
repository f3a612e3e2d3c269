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

    /// The raw `v1` signature.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> [u8; 32] {
        self.mac(timestamp, body).finalize().into_bytes().into()
    }
}

/// Builds a `Stripe-Signature` value with one `v1=` per signer, as Stripe does during a roll.
pub fn header(timestamp: i64, body: &[u8], signers: &[Signer]) -> String {
    let mut out = String::with_capacity(14 + signers.len() * 68);
    header_into(&mut out, timestamp, body, signers);
    out
}

/// `header`, written over `out` without allocating (load mode reuses one buffer per worker).
pub fn header_into(out: &mut String, timestamp: i64, body: &[u8], signers: &[Signer]) {
    out.clear();
    out.push_str("t=");
    out.push_str(itoa::Buffer::new().format(timestamp));
    let mut hex = [0u8; 64];
    for s in signers {
        out.push_str(",v1=");
        hex::encode_to_slice(s.sign(timestamp, body), &mut hex)
            .expect("64 hex digits for 32 bytes");
        out.push_str(std::str::from_utf8(&hex).expect("hex is ASCII"));
    }
}

/// Most bytes of a header this module parses: Stripe sends a timestamp and one `v1` per live
/// secret (two during a roll), about 150 bytes.
pub const MAX_HEADER_BYTES: usize = 4096;
/// Most items of a header.
pub const MAX_ITEMS: usize = 32;

/// A parsed `Stripe-Signature` header. `v1` holds the decoded signatures that can match (64
/// hex digits); anything else there can never match and is not kept.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    pub timestamp: i64,
    pub v1: Vec<[u8; 32]>,
    /// `v1` entries seen, those that could not match included.
    pub v1_items: usize,
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
///
/// Stripe's libraries take any number of items; this parser refuses headers over
/// `MAX_HEADER_BYTES` or `MAX_ITEMS` (no real delivery comes close), so that a hostile header
/// costs nothing but its bytes.
pub fn parse(header: &str) -> Result<Parsed, Rejection> {
    let header = header.trim();
    if header.is_empty() {
        return Err(Rejection::NoHeader);
    }
    if header.len() > MAX_HEADER_BYTES {
        return Err(Rejection::Malformed(format!(
            "{} bytes, over the {MAX_HEADER_BYTES} a Stripe signature header can need",
            header.len()
        )));
    }
    if header.split(',').count() > MAX_ITEMS {
        return Err(Rejection::Malformed(format!(
            "more than {MAX_ITEMS} items (Stripe sends a timestamp and one v1 per live secret)"
        )));
    }
    let mut timestamp = None;
    let mut v1 = Vec::new();
    let mut v1_items = 0;
    // Items are not trimmed: Stripe's libraries split on "," and "=" only, so neither do we.
    for (n, item) in header.split(',').enumerate() {
        let Some((key, value)) = item.split_once('=') else {
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
            "v1" => {
                v1_items += 1;
                let mut raw = [0u8; 32];
                if value.len() == 64 && hex::decode_to_slice(value, &mut raw).is_ok() {
                    v1.push(raw);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Rejection::NoTimestamp)?;
    if v1_items == 0 {
        return Err(Rejection::NoV1);
    }
    Ok(Parsed {
        timestamp,
        v1,
        v1_items,
    })
}

/// Which signed timestamps the tolerance lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// What Stripe's libraries do: only a timestamp older than the tolerance is refused
    /// (stripe-node: `timestampAge > tolerance`; stripe-python: `timestamp < time.time() -
    /// tolerance`). A timestamp in the future passes.
    PastOnly,
    /// Hardening beyond the libraries: a timestamp too far in the future is refused too.
    BothWays,
}

/// Verifies a header against a body: any `v1` matching any signer, then the timestamp within
/// `tolerance` seconds of `now` as `window` says. Returns the signed timestamp.
///
/// As stripe-node and stripe-python do, the expected signature is computed once per secret and
/// each `v1` compared with it in constant time: one HMAC over the body per secret, whatever the
/// header holds.
pub fn verify(
    header: &str,
    body: &[u8],
    signers: &[Signer],
    tolerance: i64,
    now: i64,
    window: Window,
) -> Result<i64, Rejection> {
    let parsed = parse(header)?;
    let matched = !parsed.v1.is_empty()
        && signers.iter().any(|s| {
            let expected = s.sign(parsed.timestamp, body);
            parsed
                .v1
                .iter()
                .any(|sig| crate::secret::constant_time_eq(&expected, sig))
        });
    if !matched {
        return Err(Rejection::NoMatch);
    }
    // Saturating: the timestamp comes from outside and may be any i64.
    let age = now.saturating_sub(parsed.timestamp);
    let too_old = age > tolerance;
    let too_new = window == Window::BothWays && age < tolerance.saturating_neg();
    if too_old || too_new {
        return Err(Rejection::OutOfTolerance {
            by: age.saturating_abs().saturating_sub(tolerance),
            future: age < 0,
        });
    }
    Ok(parsed.timestamp)
}

// Where src/sandbox/ still calls it (its branches are open); everything else uses `timestamp`.

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
        assert_eq!(verify(&h, body, &[b], 300, 100, Window::BothWays), Ok(100));
        assert_eq!(verify(&h, body, &[a], 300, 100, Window::BothWays), Ok(100));
        assert_eq!(
            verify(
                &h,
                body,
                &[Signer::new(b"whsec_c")],
                300,
                100,
                Window::BothWays
            ),
            Err(Rejection::NoMatch)
        );
    }

    #[test]
    fn future_timestamps_pass_like_in_stripes_libraries_unless_both_ways() {
        let s = [Signer::new(b"whsec_a")];
        let h = header(10_000, b"x", &s);
        assert_eq!(verify(&h, b"x", &s, 300, 0, Window::PastOnly), Ok(10_000));
        assert!(verify(&h, b"x", &s, 300, 0, Window::BothWays).is_err());
        assert_eq!(
            verify(&h, b"x", &s, 300, 10_300, Window::PastOnly),
            Ok(10_000)
        );
        assert!(verify(&h, b"x", &s, 300, 10_301, Window::PastOnly).is_err());
        // Timestamps from outside may be anything: no overflow.
        let extreme = format!("t={},v1={}", i64::MIN, s[0].sign_hex(i64::MIN, b"x"));
        assert!(verify(&extreme, b"x", &s, 300, i64::MAX, Window::BothWays).is_err());
        let extreme = format!("t={},v1={}", i64::MAX, s[0].sign_hex(i64::MAX, b"x"));
        assert!(verify(&extreme, b"x", &s, 300, i64::MIN, Window::BothWays).is_err());
        assert!(verify(&extreme, b"x", &s, i64::MAX, i64::MIN, Window::PastOnly).is_ok());
    }

    #[test]
    fn items_are_not_trimmed_like_in_stripes_libraries() {
        let s = [Signer::new(b"whsec_a")];
        let h = header(5, b"x", &s).replace(",v1=", ", v1=");
        assert_eq!(
            verify(&h, b"x", &s, 300, 5, Window::PastOnly),
            Err(Rejection::NoV1)
        );
    }

    #[test]
    fn no_header_makes_the_parser_or_the_verifier_panic() {
        let s = [Signer::new(b"whsec_a")];
        let valid = header(1_700_000_000, b"{}", &s);
        let alphabet = [
            "t",
            "v1",
            "v0",
            "=",
            ",",
            " ",
            "1",
            "9",
            "-",
            "a",
            "f",
            "é",
            "\u{0}",
            "99999999999999999999",
            "-9223372036854775808",
        ];
        let mut strings = crate::fuzz::Strings::new(0x5eed_0001);
        let repeated =
            |item: &str, n: usize| format!("t=1700000000{}", format!(",{item}").repeat(n));
        for _ in 0..2000 {
            let n = strings.drawn_from(&["1", "2", "3"], 2).len() * 11;
            for h in [
                strings.drawn_from(&alphabet, 16),
                strings.mutation(&valid, &alphabet),
                // The hostile shapes: many (empty, short, long) v1 items around a valid one.
                format!("{},{}", repeated("v1=", n), &valid[2..]),
                repeated(&format!("v1={}", "a".repeat(63)), n),
                repeated(&format!("v1={}", "0".repeat(65)), n),
            ] {
                for window in [Window::PastOnly, Window::BothWays] {
                    let _ = verify(&h, b"{}", &s, 300, 1_700_000_000, window);
                    let _ = verify(&h, b"{}", &s, i64::MAX, i64::MIN, window);
                }
            }
        }
    }

    #[test]
    fn a_hostile_header_costs_one_hmac_per_secret_or_is_refused_unread() {
        let s = [Signer::new(b"whsec_a")];
        let body = vec![b'x'; 1 << 20];
        let valid = header(1_700_000_000, &body, &s);
        // 20,000 empty items on 1 MB: refused before any HMAC.
        let flood = format!("t=1700000000{}", ",v1=".repeat(20_000));
        assert!(matches!(
            verify(&flood, &body, &s, 300, 1_700_000_000, Window::PastOnly),
            Err(Rejection::Malformed(m)) if m.contains("bytes")
        ));
        let many = format!("t=1700000000{}", ",v1=ab".repeat(40));
        assert!(matches!(
            parse(&many),
            Err(Rejection::Malformed(m)) if m.contains("more than 32 items")
        ));
        // Junk v1 entries are not kept; the right one still matches among them.
        let mixed = format!(
            "t=1700000000{},{}",
            ",v1=zz,v1=,v1=abc".repeat(10),
            &valid[13..]
        );
        let parsed = parse(&mixed).unwrap();
        assert_eq!((parsed.v1.len(), parsed.v1_items), (1, 31));
        assert_eq!(
            verify(&mixed, &body, &s, 300, 1_700_000_000, Window::PastOnly),
            Ok(1_700_000_000)
        );
        // Only junk: no match (not "no v1"), as Stripe's libraries say.
        assert_eq!(
            verify("t=1,v1=,v1=zz", b"x", &s, 300, 1, Window::PastOnly),
            Err(Rejection::NoMatch)
        );
    }

    #[test]
    fn rejections_are_precise() {
        let s = [Signer::new(b"whsec_a")];
        let body = b"x";
        assert_eq!(
            verify("", body, &s, 300, 0, Window::BothWays),
            Err(Rejection::NoHeader)
        );
        assert_eq!(
            verify("v1=00", body, &s, 300, 0, Window::BothWays),
            Err(Rejection::NoTimestamp)
        );
        assert_eq!(
            verify("t=1,v0=00", body, &s, 300, 1, Window::BothWays),
            Err(Rejection::NoV1)
        );
        assert!(matches!(parse("t=abc,v1=00"), Err(Rejection::Malformed(_))));
        assert!(matches!(parse("garbage"), Err(Rejection::Malformed(_))));
        let h = header(1000, body, &s);
        assert_eq!(
            verify(&h, body, &s, 300, 1000 + 310, Window::BothWays),
            Err(Rejection::OutOfTolerance {
                by: 10,
                future: false
            })
        );
        assert_eq!(
            verify(&h, body, &s, 300, 1000 - 301, Window::BothWays),
            Err(Rejection::OutOfTolerance {
                by: 1,
                future: true
            })
        );
        assert_eq!(
            verify(&h, b"y", &s, 300, 1000, Window::BothWays),
            Err(Rejection::NoMatch)
        );
    }
}
