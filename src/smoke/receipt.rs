//! The receipt of a real-checkout smoke (CONTRACT.md section 5): what `--create-only` hands to a
//! later `--verify-only`. Building, validating and updating it is pure; `load` and `save` are the
//! only I/O (atomic, mode 0600, because it holds the buyer's password and token).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::secret::{self, ExposeSecret, SecretString};
use crate::timestamp::rfc3339_seconds;

pub const KIND: &str = "stripe-ops.receipt";
pub const VERSION: u64 = 1;
pub const DEFAULT_DIR: &str = "receipts";

/// Fields a receipt must carry for `--verify-only` to work.
const REQUIRED: [&str; 11] = [
    "kind",
    "version",
    "created_at",
    "base_url",
    "buyer_email",
    "buyer_password",
    "buyer_token",
    "stripe_session_id",
    "checkout_url",
    "amount_cents",
    "balance_before_cents",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Receipt {
    pub kind: String,
    pub version: u64,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub base_url: String,
    pub buyer_email: String,
    #[serde(serialize_with = "expose")]
    pub buyer_password: SecretString,
    #[serde(serialize_with = "expose")]
    pub buyer_token: SecretString,
    pub stripe_session_id: String,
    #[serde(default)]
    pub payment_intent_id: Option<String>,
    pub checkout_url: String,
    pub amount_cents: i64,
    pub balance_before_cents: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
    /// Written back by a successful verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// RFC 3339, UTC.
    pub verified_at: String,
    pub balance_after_cents: i64,
    pub stripe_event_id: Option<String>,
}

fn expose<S: Serializer>(value: &SecretString, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(value.expose_secret())
}

/// What a receipt is built from, right after the checkout session was created.
pub struct NewReceipt<'a> {
    pub base_url: &'a str,
    pub buyer_email: &'a str,
    pub buyer_password: &'a SecretString,
    pub buyer_token: &'a SecretString,
    pub session_id: &'a str,
    pub payment_intent_id: Option<&'a str>,
    pub checkout_url: &'a str,
    pub amount_cents: i64,
    pub balance_before_cents: i64,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    pub created_at: time::OffsetDateTime,
}

impl Receipt {
    pub fn build(n: NewReceipt<'_>) -> Self {
        Self {
            kind: KIND.to_owned(),
            version: VERSION,
            created_at: rfc3339_seconds(n.created_at),
            // A password in the URL stays out of the file (the user name is kept).
            base_url: crate::http::without_password(n.base_url),
            buyer_email: n.buyer_email.to_owned(),
            buyer_password: n.buyer_password.clone(),
            buyer_token: n.buyer_token.clone(),
            stripe_session_id: n.session_id.to_owned(),
            payment_intent_id: n.payment_intent_id.map(str::to_owned),
            checkout_url: n.checkout_url.to_owned(),
            amount_cents: n.amount_cents,
            balance_before_cents: n.balance_before_cents,
            success_url: Some(n.success_url.to_owned()),
            cancel_url: Some(n.cancel_url.to_owned()),
            outcome: None,
        }
    }

    /// Parses and validates receipt text; the error says exactly what is wrong.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("is not valid JSON: {e}"))?;
        let obj = value.as_object().ok_or("is not a JSON object")?;
        match obj.get("kind") {
            None => return Err("missing field `kind`".into()),
            Some(Value::String(k)) if k == KIND => {}
            Some(other) => return Err(format!("wrong kind {other} (expected \"{KIND}\")")),
        }
        match obj.get("version") {
            None => return Err("missing field `version`".into()),
            Some(v) => match v.as_u64() {
                Some(0) | None => return Err(format!("version {v} is not a positive integer")),
                Some(n) if n > VERSION => {
                    return Err(format!(
                        "version {n} is newer than this stripe-ops understands ({VERSION}); upgrade stripe-ops"
                    ));
                }
                Some(_) => {}
            },
        }
        let missing: Vec<String> = REQUIRED
            .iter()
            .filter(|f| obj.get(**f).is_none_or(Value::is_null))
            .map(|f| format!("`{f}`"))
            .collect();
        if !missing.is_empty() {
            let s = if missing.len() == 1 { "" } else { "s" };
            return Err(format!("missing field{s} {}", missing.join(", ")));
        }
        let receipt: Receipt =
            serde_json::from_value(value).map_err(|e| format!("has an invalid field: {e}"))?;
        crate::http::url_arg(&receipt.base_url)
            .map_err(|why| format!("has an unusable base_url: it {why}"))?;
        Ok(receipt)
    }

    /// The receipt as written to disk (it holds secrets: never print it).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("receipts always serialize");
        bytes.push(b'\n');
        bytes
    }

    /// Records a successful verify.
    pub fn with_outcome(
        mut self,
        verified_at: time::OffsetDateTime,
        balance_after_cents: i64,
        stripe_event_id: Option<String>,
    ) -> Self {
        self.outcome = Some(Outcome {
            verified_at: rfc3339_seconds(verified_at),
            balance_after_cents,
            stripe_event_id,
        });
        self
    }
}

/// `receipts/<UTC timestamp>-<session id>.json`, with the id reduced to filename-safe characters.
pub fn default_path(dir: &Path, now: time::OffsetDateTime, session_id: &str) -> PathBuf {
    let stamp = now
        .to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("UTC times format");
    let safe: String = session_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{stamp}-{safe}.json"))
}

/// The file next to the receipt that holds the checkout URL.
pub fn url_path(receipt: &Path) -> PathBuf {
    receipt.with_extension("url")
}

/// Reads and validates a receipt: unreadable or invalid is exit 2 with the reason; a receipt
/// readable by group or others is returned with a warning to print.
pub fn load(path: &Path) -> Result<(Receipt, Option<String>)> {
    let text = crate::files::read_text(path, "receipt")?;
    let receipt = Receipt::parse(&text)
        .map_err(|why| Error::usage(format!("receipt {} {why}", path.display())))?;
    let warning = secret::readable_by_others(path).then(|| {
        format!(
            "receipt {} is readable by other users and holds the buyer's password and token; run chmod 600 on it",
            path.display()
        )
    });
    Ok((receipt, warning))
}

/// Writes a receipt atomically with mode 0600.
pub fn save(path: &Path, receipt: &Receipt) -> Result<()> {
    secret::write_private(path, &receipt.to_bytes())
        .map_err(|e| Error::usage(format!("cannot write receipt {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_password_in_the_base_url_is_not_stored() {
        let pw = SecretString::from("pw".to_owned());
        let r = Receipt::build(NewReceipt {
            base_url: "https://ci:hunter2@app.example/shop",
            ..new_receipt(&pw, &pw)
        });
        assert_eq!(r.base_url, "https://ci@app.example/shop");
        assert!(!String::from_utf8(r.to_bytes()).unwrap().contains("hunter2"));
    }

    fn new_receipt<'a>(pw: &'a SecretString, token: &'a SecretString) -> NewReceipt<'a> {
        NewReceipt {
            base_url: "http://127.0.0.1:1",
            buyer_email: "smoke+1@example.com",
            buyer_password: pw,
            buyer_token: token,
            session_id: "cs_test_1",
            payment_intent_id: Some("pi_1"),
            checkout_url: "http://127.0.0.1:1/checkout/cs_test_1#frag",
            amount_cents: 500,
            balance_before_cents: 0,
            success_url: "http://s",
            cancel_url: "http://c",
            created_at: time::macros::datetime!(2026-01-02 03:04:05.678 UTC),
        }
    }

    fn sample() -> Receipt {
        let pw = SecretString::from("pw-secret".to_owned());
        let token = SecretString::from("tok-secret".to_owned());
        Receipt::build(NewReceipt {
            base_url: "http://127.0.0.1:1",
            buyer_email: "smoke+1@example.com",
            buyer_password: &pw,
            buyer_token: &token,
            session_id: "cs_test_1",
            payment_intent_id: Some("pi_1"),
            checkout_url: "http://127.0.0.1:1/checkout/cs_test_1#frag",
            amount_cents: 500,
            balance_before_cents: 0,
            success_url: "http://s",
            cancel_url: "http://c",
            created_at: datetime!(2026-01-02 03:04:05.678 UTC),
        })
    }

    fn text_with(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut v: Value = serde_json::from_slice(&sample().to_bytes()).unwrap();
        edit(v.as_object_mut().unwrap());
        v.to_string()
    }

    #[test]
    fn round_trips_with_secrets_and_fixed_header() {
        let r = Receipt::parse(std::str::from_utf8(&sample().to_bytes()).unwrap()).unwrap();
        assert_eq!(r.kind, KIND);
        assert_eq!(r.version, 1);
        assert_eq!(r.created_at, "2026-01-02T03:04:05Z");
        assert_eq!(r.buyer_password.expose_secret(), "pw-secret");
        assert_eq!(r.buyer_token.expose_secret(), "tok-secret");
        assert_eq!(r.amount_cents, 500);
        assert_eq!(r.payment_intent_id.as_deref(), Some("pi_1"));
        assert!(r.outcome.is_none());
    }

    #[test]
    fn outcome_is_written_back() {
        let r = sample().with_outcome(
            datetime!(2026-01-02 03:05:00 UTC),
            500,
            Some("evt_1".into()),
        );
        let back = Receipt::parse(std::str::from_utf8(&r.to_bytes()).unwrap()).unwrap();
        assert_eq!(
            back.outcome,
            Some(Outcome {
                verified_at: "2026-01-02T03:05:00Z".into(),
                balance_after_cents: 500,
                stripe_event_id: Some("evt_1".into()),
            })
        );
    }

    #[test]
    fn validation_names_the_problem() {
        let err = |t: &str| Receipt::parse(t).unwrap_err();
        assert!(err("{nope").starts_with("is not valid JSON"));
        assert_eq!(err("[1]"), "is not a JSON object");
        let e = err(&text_with(|m| {
            m.remove("stripe_session_id");
        }));
        assert_eq!(e, "missing field `stripe_session_id`");
        let e = err(&text_with(|m| {
            m.remove("buyer_token");
            m.insert("amount_cents".into(), Value::Null);
        }));
        assert_eq!(e, "missing fields `buyer_token`, `amount_cents`");
        let e = err(&text_with(|m| {
            m.insert("kind".into(), "something.else".into());
        }));
        assert!(e.starts_with("wrong kind \"something.else\""), "{e}");
        let e = err(&text_with(|m| {
            m.remove("kind");
        }));
        assert_eq!(e, "missing field `kind`");
        let e = err(&text_with(|m| {
            m.insert("version".into(), 2.into());
        }));
        assert!(e.contains("version 2 is newer"), "{e}");
        let e = err(&text_with(|m| {
            m.insert("version".into(), "one".into());
        }));
        assert!(e.contains("not a positive integer"), "{e}");
        let e = err(&text_with(|m| {
            m.insert("amount_cents".into(), "five".into());
        }));
        assert!(e.starts_with("has an invalid field"), "{e}");
        for bad in ["", "not a url", "ftp://x", "http://h:99999", "host:8080"] {
            let e = err(&text_with(|m| {
                m.insert("base_url".into(), bad.into());
            }));
            assert!(e.starts_with("has an unusable base_url"), "{bad}: {e}");
        }
    }

    #[test]
    fn no_receipt_text_makes_the_parser_panic() {
        let base = String::from_utf8(sample().to_bytes()).unwrap();
        let junk = [
            "{\"x\":[1,",
            "null",
            "\"version\": 99",
            "\u{0}",
            "-1e400",
            "]]]",
        ];
        let mut strings = crate::fuzz::Strings::new(0x2545_f491_4f6c_dd1d);
        for _ in 0..2000 {
            let _ = Receipt::parse(&strings.mutation(&base, &junk));
        }
    }

    #[test]
    fn default_path_is_timestamp_and_safe_session_id() {
        let p = default_path(
            Path::new("receipts"),
            datetime!(2026-01-02 03:04:05 UTC),
            "cs_test/../x",
        );
        assert_eq!(p, Path::new("receipts/20260102T030405Z-cs_test____x.json"));
        assert_eq!(
            url_path(&p),
            Path::new("receipts/20260102T030405Z-cs_test____x.url")
        );
    }

    #[test]
    fn load_and_save_are_private_and_warn_when_shared() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        save(&p, &sample()).unwrap();
        let (r, warning) = load(&p).unwrap();
        assert_eq!(r.stripe_session_id, "cs_test_1");
        assert!(warning.is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let (_, warning) = load(&p).unwrap();
            assert!(warning.unwrap().contains("readable by other users"));
        }
        let e = load(&dir.path().join("missing.json")).unwrap_err();
        assert_eq!(e.exit, crate::error::Exit::Usage);
        assert!(e.message().contains("cannot read receipt"));
    }
}
