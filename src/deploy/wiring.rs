//! The team's secret wiring (pure): where the container receives each Stripe variable from
//! today, and so where its new value must be written.
//!
//! ECS reads a secret's `valueFrom` as "either the full ARN of the AWS Secrets Manager secret or
//! the full ARN of the parameter in the SSM Parameter Store"; a parameter in the task's Region
//! may also be named without its ARN (the ECS task definition reference, `Secret`). A Secrets
//! Manager ARN may go on with `:json-key:version-stage:version-id` ("Specifying sensitive data
//! using Secrets Manager", ECS developer guide): `…:secret:app/staging-AbCdEf:STRIPE_SECRET_KEY::`
//! injects one key of a JSON secret, and a version stage or id pins the version the task reads.
//!
//! The rule: the wiring is the truth. A variable already injected from a secret keeps that
//! reference; the new value goes into that secret (the key of a JSON one, every other key kept
//! byte for byte), or into that SSM parameter (a new version of the `SecureString`, with its own
//! key), and the task definition is left as it is. Only a variable not injected yet (or
//! `--rewire`) gets stripe-ops' own `<prefix>/<VAR>` secret, injected by ARN. A pinned version
//! never sees a new value, a parameter of another account cannot be written from this one (SSM
//! shares parameters read-only), and a `String` parameter would keep a Stripe secret in plain
//! text (stripe-ops never changes a parameter's type): all are refused before anything changes
//! (exit 2), with what to do instead.

use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::secret::{ExposeSecret, SecretString};

/// Where a `valueFrom` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A Secrets Manager secret (`secret` is its ARN), whole or one JSON key of it, at the
    /// version the stage or id names (AWSCURRENT when neither).
    Secret {
        secret: String,
        json_key: Option<String>,
        version_stage: Option<String>,
        version_id: Option<String>,
    },
    /// An SSM Parameter Store parameter, by ARN or by name.
    Parameter(Parameter),
    /// An ARN of another service: not something ECS injects.
    Other,
}

/// An SSM parameter as a task definition names it: by name (the task's region and account), or
/// by ARN (any region; "If the parameter exists in a different Region, then the full ARN must
/// be specified", ECS's `Secret.valueFrom`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// The name SSM's API takes: `/app/stripe_key` in a hierarchy, `stripe_key` outside one.
    pub name: String,
    /// From its ARN.
    pub partition: Option<String>,
    pub region: Option<String>,
    pub account: Option<String>,
}

impl Parameter {
    /// The parameter's region: its ARN's, else the task's.
    pub fn region<'a>(&'a self, task_region: &'a str) -> &'a str {
        self.region.as_deref().unwrap_or(task_region)
    }

    /// Its ARN, the task's partition, region and account filling in what a bare name lacks
    /// (`arn:aws:ssm:us-east-1:123456789012:parameter/app/stripe_key`).
    pub fn arn(&self, task_region: &str, task_account: &str) -> String {
        format!(
            "arn:{}:ssm:{}:{}:parameter/{}",
            self.partition.as_deref().unwrap_or("aws"),
            self.region(task_region),
            self.account.as_deref().unwrap_or(task_account),
            self.name.trim_start_matches('/')
        )
    }
}

/// Parses a `valueFrom` as ECS does.
pub fn parse(value_from: &str) -> Source {
    let v = value_from.trim();
    if !v.starts_with("arn:") {
        return Source::Parameter(Parameter {
            name: v.to_owned(),
            partition: None,
            region: None,
            account: None,
        });
    }
    let parts: Vec<&str> = v.split(':').collect();
    match parts.as_slice() {
        [_, _, "secretsmanager", _, _, "secret", _, rest @ ..] => {
            let field = |i: usize| {
                rest.get(i)
                    .filter(|s| !s.is_empty())
                    .map(|s| (*s).to_owned())
            };
            Source::Secret {
                secret: parts[..7].join(":"),
                json_key: field(0),
                version_stage: field(1),
                version_id: field(2),
            }
        }
        [_, partition, "ssm", region, account, resource, ..] => {
            // `parameter/name`, or `parameter/a/b` for the hierarchical name `/a/b`.
            let path = resource.strip_prefix("parameter/").unwrap_or(resource);
            let name = if path.contains('/') {
                format!("/{path}")
            } else {
                path.to_owned()
            };
            Source::Parameter(Parameter {
                name,
                partition: Some((*partition).to_owned()),
                region: Some((*region).to_owned()).filter(|r| !r.is_empty()),
                account: Some((*account).to_owned()).filter(|a| !a.is_empty()),
            })
        }
        _ => Source::Other,
    }
}

/// Where a variable's new value goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// stripe-ops' own secret (the config's id): created or written whole, injected by ARN.
    Own,
    /// The team's secret, written whole (a new version); the task definition is unchanged.
    Whole { secret: String },
    /// One key of the team's JSON secret: that key changed, every other key kept.
    JsonKey { secret: String, key: String },
    /// The team's SSM parameter: a new version of the `SecureString`, with its own key.
    Parameter(Parameter),
}

impl Target {
    /// The secret written: the config's id for `Own`, else the team's secret ARN.
    pub fn secret<'a>(&'a self, own_id: &'a str) -> &'a str {
        match self {
            Target::Own => own_id,
            Target::Whole { secret } | Target::JsonKey { secret, .. } => secret,
            Target::Parameter(p) => &p.name,
        }
    }

    /// The task definition must change for it (inject the own secret by ARN).
    pub fn injects_own(&self) -> bool {
        *self == Target::Own
    }

    /// In words, for the plan: where the new value is written.
    pub fn describe(&self, own_id: &str) -> String {
        match self {
            Target::Own => format!("secret {own_id}, injected by ARN"),
            Target::Whole { secret } => {
                format!("{secret} (a new version; the task definition stays as it is)")
            }
            Target::JsonKey { secret, key } => format!(
                "key {key} of {secret} (a new version with every other key unchanged; the task definition stays as it is)"
            ),
            Target::Parameter(p) => format!(
                "SSM parameter {} (a new version of the SecureString, encrypted with its own key; the task definition stays as it is)",
                p.name
            ),
        }
    }
}

/// How the variable is wired now, in words (`none` when it is not injected).
pub fn describe_current(value_from: Option<&str>) -> String {
    let Some(v) = value_from else {
        return "not injected".to_owned();
    };
    match parse(v) {
        Source::Secret {
            secret,
            json_key,
            version_stage,
            version_id,
        } => {
            let mut s = match json_key {
                Some(k) => format!("key {k} of secret {secret}"),
                None => format!("secret {secret}"),
            };
            if let Some(st) = version_stage {
                s.push_str(&format!(" at stage {st}"));
            }
            if let Some(id) = version_id {
                s.push_str(&format!(" at version {id}"));
            }
            s
        }
        Source::Parameter(p) => format!("SSM parameter {}", p.name),
        Source::Other => format!("{v} (neither Secrets Manager nor SSM)"),
    }
}

/// What the options allow besides following the wiring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Choices {
    /// `--rewire`: inject stripe-ops' own secret whatever the team's reference is.
    pub rewire: bool,
    /// The command cannot rewire (`webhook rotate` does not change the task definition): a
    /// refusal then points at `enable --rewire`.
    pub rotating: bool,
}

impl Choices {
    fn rewire_hint(self) -> &'static str {
        if self.rotating {
            "run `stripe-ops enable --rewire` first to inject stripe-ops' own secret instead"
        } else {
            "pass --rewire to inject stripe-ops' own secret instead"
        }
    }
}

/// Decides where `var`'s new value goes, from its current `valueFrom` (none: not injected) and
/// the ARN of stripe-ops' own secret when it exists. Refuses what a new value cannot reach.
pub fn target(
    var: &str,
    value_from: Option<&str>,
    own_arn: Option<&str>,
    choices: Choices,
) -> Result<Target> {
    let Some(v) = value_from else {
        return Ok(Target::Own);
    };
    if choices.rewire {
        return Ok(Target::Own);
    }
    match parse(v) {
        Source::Secret {
            version_id: Some(id),
            secret,
            ..
        } => Err(pinned(var, &secret, &format!("version id {id}"), choices)),
        Source::Secret {
            version_stage: Some(stage),
            secret,
            ..
        } if stage != "AWSCURRENT" => Err(pinned(
            var,
            &secret,
            &format!("version stage {stage}"),
            choices,
        )),
        Source::Secret {
            secret,
            json_key: Some(key),
            ..
        } => Ok(Target::JsonKey { secret, key }),
        Source::Secret { secret, .. } if Some(secret.as_str()) == own_arn => Ok(Target::Own),
        Source::Secret { secret, .. } => Ok(Target::Whole { secret }),
        Source::Parameter(p) => Ok(Target::Parameter(p)),
        Source::Other => Err(Error::usage(format!(
            "{var} comes from {v}, which is neither a Secrets Manager secret nor an SSM parameter; fix the task definition, or {}",
            choices.rewire_hint()
        ))),
    }
}

fn pinned(var: &str, secret: &str, pin: &str, choices: Choices) -> Error {
    Error::usage(format!(
        "{var} comes from secret {secret} pinned to {pin}: a pinned version never sees a new value, so the tasks would keep the old one. Drop the pin from the task definition (keep `…:json-key::` empty after the key), or {} (your infrastructure code would put the reference back on its next apply)",
        choices.rewire_hint()
    ))
}

/// Pure: the account of an ARN (`arn:partition:service:region:account:…`); empty when it has
/// none.
pub fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// Pure: refuses, before any write, a parameter in another account than the task's: SSM shares
/// a parameter with other accounts read-only ("Working with shared parameters", Systems Manager
/// user guide), so only its owner can put a new version.
pub fn parameter_in_account(
    var: &str,
    p: &Parameter,
    task_account: &str,
    choices: Choices,
) -> Result<()> {
    match p.account.as_deref() {
        Some(owner) if !task_account.is_empty() && owner != task_account => {
            Err(Error::usage(format!(
                "{var} comes from SSM parameter {} of account {owner}, and the service runs in account {task_account}: a parameter shared from another account is read-only here, so stripe-ops cannot write its new value. Write it in account {owner} (aws ssm put-parameter --overwrite --type SecureString --name {} …), or {}",
                p.name,
                p.name,
                choices.rewire_hint()
            )))
        }
        _ => Ok(()),
    }
}

/// Pure: refuses, before any write, a parameter that is not a `SecureString`: a `String` or
/// `StringList` keeps a Stripe secret in plain text, and stripe-ops never changes a parameter's
/// type (PutParameter cannot change it in place either).
pub fn secure_parameter(var: &str, name: &str, kind: &str, choices: Choices) -> Result<()> {
    if kind == "SecureString" {
        return Ok(());
    }
    Err(Error::usage(format!(
        "{var} comes from SSM parameter {name}, a {kind} parameter: its value is stored in plain text, so stripe-ops does not write a Stripe secret into it and does not change its type. Make it a SecureString (delete it and create it again with --type SecureString, in your infrastructure code), or {}",
        choices.rewire_hint()
    )))
}

/// A JSON secret with `key` set to `value`: the document's other bytes are kept exactly (keys,
/// order, formatting, other values); only the key's value is replaced, or the key appended when
/// `add` allows it. Refuses a document that is not a JSON object, and an absent key without
/// `add`. Errors never quote the document.
pub fn set_json_key(
    document: &SecretString,
    secret: &str,
    key: &str,
    value: &SecretString,
    add: bool,
) -> Result<SecretString> {
    let text = document.expose_secret();
    let not_object = || {
        Error::usage(format!(
            "secret {secret} is not a JSON object, so it has no key {key} to write (the task definition reads it with a JSON key)"
        ))
    };
    let map: std::collections::BTreeMap<String, &RawValue> =
        serde_json::from_str(text).map_err(|_| not_object())?;
    let new_value = serde_json::to_string(value.expose_secret()).expect("strings serialize");
    let out = match map.get(key) {
        Some(raw) => {
            let at = raw.get().as_ptr() as usize - text.as_ptr() as usize;
            let end = at + raw.get().len();
            format!("{}{new_value}{}", &text[..at], &text[end..])
        }
        None if add => {
            let close = text.rfind('}').ok_or_else(not_object)?;
            let comma = if map.is_empty() { "" } else { "," };
            let name = serde_json::to_string(key).expect("strings serialize");
            let body = text[..close].trim_end();
            format!(
                "{body}{comma}\"{}\":{new_value}{}",
                &name[1..name.len() - 1],
                &text[close..]
            )
        }
        None => {
            return Err(Error::usage(format!(
                "secret {secret} has no key {key}, which the task definition reads; add it yourself, or pass --add-json-key to let stripe-ops add it (the other keys are kept)"
            )));
        }
    };
    Ok(SecretString::from(out))
}

/// The value of `key` in a JSON secret, as ECS injects it: a string's content, any other JSON
/// value as its text.
pub fn json_key_value(document: &SecretString, secret: &str, key: &str) -> Result<SecretString> {
    let map: std::collections::BTreeMap<String, &RawValue> =
        serde_json::from_str(document.expose_secret())
            .map_err(|_| Error::usage(format!("secret {secret} is not a JSON object")))?;
    let raw = map
        .get(key)
        .ok_or_else(|| Error::usage(format!("secret {secret} has no key {key}")))?;
    Ok(SecretString::from(
        serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().to_owned()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON_REF: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/staging-AbCdEf:STRIPE_SECRET_KEY::";
    const OWN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:proofwork-staging/STRIPE_SECRET_KEY-QwErTy";

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_owned())
    }

    #[test]
    fn value_from_is_read_as_ecs_reads_it() {
        assert_eq!(
            parse(JSON_REF),
            Source::Secret {
                secret: "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/staging-AbCdEf"
                    .into(),
                json_key: Some("STRIPE_SECRET_KEY".into()),
                version_stage: None,
                version_id: None,
            }
        );
        assert_eq!(
            parse(&format!("{OWN}::AWSPREVIOUS:")),
            Source::Secret {
                secret: OWN.into(),
                json_key: None,
                version_stage: Some("AWSPREVIOUS".into()),
                version_id: None,
            }
        );
        let Source::Parameter(p) = parse("arn:aws-us-gov:ssm:us-gov-west-1:1:parameter/app/stripe")
        else {
            panic!("a parameter ARN")
        };
        assert_eq!(
            p,
            Parameter {
                name: "/app/stripe".into(),
                partition: Some("aws-us-gov".into()),
                region: Some("us-gov-west-1".into()),
                account: Some("1".into()),
            }
        );
        assert_eq!(
            p.arn("us-east-1", "2"),
            "arn:aws-us-gov:ssm:us-gov-west-1:1:parameter/app/stripe"
        );
        // Outside a hierarchy the name has no slash; a bare name is the task's region's.
        let Source::Parameter(flat) = parse("arn:aws:ssm:eu-west-1:1:parameter/stripe_key") else {
            panic!("a parameter ARN")
        };
        assert_eq!(flat.name, "stripe_key");
        let Source::Parameter(bare) = parse("/app/stripe_key") else {
            panic!("a parameter name")
        };
        assert_eq!(bare.name, "/app/stripe_key");
        assert_eq!(
            bare.arn("us-east-1", "123456789012"),
            "arn:aws:ssm:us-east-1:123456789012:parameter/app/stripe_key"
        );
        assert_eq!(parse("arn:aws:s3:::bucket/key"), Source::Other);
        assert!(matches!(parse(OWN), Source::Secret { json_key: None, .. }));
    }

    #[test]
    fn the_wiring_decides_where_the_value_goes() {
        let none = Choices::default();
        assert_eq!(target("K", None, None, none).unwrap(), Target::Own);
        assert_eq!(
            target("K", Some(OWN), Some(OWN), none).unwrap(),
            Target::Own
        );
        let team = "arn:aws:secretsmanager:us-east-1:1:secret:team/stripe-XyZ123";
        assert_eq!(
            target("K", Some(team), Some(OWN), none).unwrap(),
            Target::Whole {
                secret: team.into()
            }
        );
        assert_eq!(
            target("K", Some(JSON_REF), None, none).unwrap(),
            Target::JsonKey {
                secret: "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/staging-AbCdEf"
                    .into(),
                key: "STRIPE_SECRET_KEY".into()
            }
        );
        // AWSCURRENT pinned explicitly is the default: it sees new values.
        assert!(target("K", Some(&format!("{team}:K:AWSCURRENT:")), None, none).is_ok());
        // An SSM parameter is written where it is.
        assert!(matches!(
            target("K", Some("arn:aws:ssm:us-east-1:1:parameter/app/k"), None, none).unwrap(),
            Target::Parameter(Parameter { ref name, .. }) if name == "/app/k"
        ));
        for refused in [
            format!("{team}:K:AWSPREVIOUS:"),
            format!("{team}:K::0123-abcd"),
        ] {
            let e = target("STRIPE_SECRET_KEY", Some(&refused), None, none).unwrap_err();
            assert_eq!(e.exit.code(), 2, "{refused}");
            assert!(e.message().contains("--rewire"), "{}", e.message());
            let rewired = Choices {
                rewire: true,
                rotating: false,
            };
            assert_eq!(
                target("K", Some(&refused), None, rewired).unwrap(),
                Target::Own
            );
        }
        assert!(
            target("K", Some(&format!("{team}:K:AWSPREVIOUS:")), None, none)
                .unwrap_err()
                .message()
                .contains("pinned to version stage AWSPREVIOUS")
        );
    }

    #[test]
    fn a_parameter_of_another_account_or_in_plain_text_is_refused() {
        let Source::Parameter(p) =
            parse("arn:aws:ssm:us-east-1:210987654321:parameter/shared/stripe_key")
        else {
            panic!("a parameter ARN")
        };
        let e = parameter_in_account("STRIPE_SECRET_KEY", &p, "123456789012", Choices::default())
            .unwrap_err();
        assert_eq!(e.exit.code(), 2);
        assert!(
            e.message().contains("of account 210987654321, and the service runs in account 123456789012: a parameter shared from another account is read-only here"),
            "{}",
            e.message()
        );
        assert!(parameter_in_account("K", &p, "210987654321", Choices::default()).is_ok());
        let Source::Parameter(bare) = parse("/app/k") else {
            panic!("a name")
        };
        assert!(parameter_in_account("K", &bare, "123456789012", Choices::default()).is_ok());
        assert!(secure_parameter("K", "/app/k", "SecureString", Choices::default()).is_ok());
        for kind in ["String", "StringList"] {
            let e = secure_parameter("STRIPE_WEBHOOK_SECRET", "/app/k", kind, Choices::default())
                .unwrap_err();
            assert_eq!(e.exit.code(), 2);
            assert!(
                e.message().contains(&format!(
                    "a {kind} parameter: its value is stored in plain text"
                )),
                "{}",
                e.message()
            );
            assert!(e.message().contains("--rewire"));
        }
    }

    #[test]
    fn a_json_key_is_replaced_and_every_other_byte_kept() {
        let doc = s(
            "{\n  \"DATABASE_URL\": \"postgres://u:p@db/x\",\n  \"STRIPE_SECRET_KEY\": \"sk_test_old\",\n  \"RATE\": 1.10,\n  \"FLAGS\": {\"a\": [1, 2]}\n}\n",
        );
        let out = set_json_key(
            &doc,
            "app",
            "STRIPE_SECRET_KEY",
            &s("sk_test_new\"q"),
            false,
        )
        .unwrap();
        assert_eq!(
            out.expose_secret(),
            "{\n  \"DATABASE_URL\": \"postgres://u:p@db/x\",\n  \"STRIPE_SECRET_KEY\": \"sk_test_new\\\"q\",\n  \"RATE\": 1.10,\n  \"FLAGS\": {\"a\": [1, 2]}\n}\n"
        );
        assert_eq!(
            json_key_value(&out, "app", "STRIPE_SECRET_KEY")
                .unwrap()
                .expose_secret(),
            "sk_test_new\"q"
        );
        assert_eq!(
            json_key_value(&out, "app", "RATE").unwrap().expose_secret(),
            "1.10"
        );
        let e =
            set_json_key(&doc, "app", "STRIPE_WEBHOOK_SECRET", &s("whsec_x"), false).unwrap_err();
        assert!(e.message().contains("--add-json-key"), "{}", e.message());
        let added =
            set_json_key(&doc, "app", "STRIPE_WEBHOOK_SECRET", &s("whsec_x"), true).unwrap();
        let v: serde_json::Value = serde_json::from_str(added.expose_secret()).unwrap();
        assert_eq!(v["STRIPE_WEBHOOK_SECRET"], "whsec_x");
        assert_eq!(v["RATE"], 1.1);
        assert!(added.expose_secret().contains("\"RATE\": 1.10"));
        let empty = set_json_key(&s("{}"), "app", "K", &s("v"), true).unwrap();
        assert_eq!(empty.expose_secret(), "{\"K\":\"v\"}");
        for bad in ["sk_test_plain", "[1]", "\"x\"", ""] {
            let e = set_json_key(&s(bad), "app", "K", &s("v"), true).unwrap_err();
            assert!(e.message().contains("not a JSON object"), "{bad}");
            assert!(!e.message().contains("sk_test_plain"));
        }
    }
}
