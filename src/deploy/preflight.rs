//! Pre-flight before any change: can the task definition's execution role read each secret it
//! will inject? ECS pulls the secrets with that role when a task starts; when it may not, the
//! tasks never start (`ResourceInitializationError: unable to pull secrets`) and the rollout
//! waits out its timeout. IAM's `SimulatePrincipalPolicy` answers the question without
//! changing anything.
//!
//! What the role needs comes from "Required IAM permissions for Amazon ECS secrets" (ECS
//! developer guide): `secretsmanager:GetSecretValue` on the secret's ARN, and `kms:Decrypt` on
//! its key when the secret uses a customer-managed key (DescribeSecret returns `KmsKeyId` only
//! then; it is the string the secret was given: a key ARN, a key id, an alias or an alias ARN,
//! which KMS's `DescribeKey` turns into the key ARN that policies name). An AWS managed key
//! needs no `kms:Decrypt` ("required only if your secret uses a custom KMS key"). Secrets
//! Manager decrypts with the encryption context `SecretARN` through
//! `secretsmanager.<region>.amazonaws.com`, so those context keys are given to the simulation:
//! policies conditioned on them are judged as AWS judges them. A denial that depends on context
//! the simulation cannot know (`MissingContextValues`) is a note, not a verdict. The simulation
//! sees identity policies only (it cannot judge a role against a resource policy), so an
//! implicit deny is a verdict only when the resource's own policy (the secret's resource policy,
//! the key policy) does not grant the role either (`resource_policy.rs`); a key policy must also
//! allow the role when its identity policies do, which is said.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::resource_policy::{self, Grant};
use crate::aws::iam::{Answer, Iam, Need};
use crate::aws::kms::{Key, Kms};
use crate::aws::secrets_manager::SecretsManager;
use crate::error::{Error, Result};

/// The whole pre-flight, all KMS and IAM calls included.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A secret (or SSM parameter) the task definition injects: its ARN and, when
/// customer-managed, its key.
#[derive(Debug, Clone)]
pub struct Injected {
    pub arn: String,
    pub kms_key_id: Option<String>,
    /// An SSM parameter, not a Secrets Manager secret.
    pub parameter: bool,
}

impl Injected {
    pub fn secret(info: &crate::aws::secrets_manager::SecretInfo) -> Injected {
        Injected {
            arn: info.arn.clone(),
            kms_key_id: info.kms_key_id.clone(),
            parameter: false,
        }
    }

    pub fn parameter(p: &super::WiredParameter) -> Injected {
        Injected {
            arn: p.arn.clone(),
            kms_key_id: p.info.key_id.clone(),
            parameter: true,
        }
    }
}

/// The pre-flight's outcome: what was checked, and what could not be.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Preflight {
    pub role: Option<String>,
    pub allowed: Vec<Need>,
    /// The secrets' keys as KMS described them.
    pub keys: Vec<KeySeen>,
    /// What each resource's own policy says of the role.
    pub resource_policies: Vec<PolicySeen>,
    pub notes: Vec<String>,
}

/// What a resource's own policy says of the role and a needed action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySeen {
    pub action: &'static str,
    pub resource: String,
    /// `grants`, `does not grant`, or `unreadable: <why>`.
    pub verdict: String,
}

/// What the resources' own policies say, by (action, resource).
pub type Grants = BTreeMap<(&'static str, String), Grant>;

/// A key a secret names, and the key ARN KMS resolved it to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySeen {
    pub key: String,
    pub arn: String,
    pub aws_managed: bool,
}

/// What KMS answered for each key a secret names.
pub type Keys = BTreeMap<String, std::result::Result<Key, String>>;

impl Preflight {
    /// For the plan.
    pub fn render(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .keys
            .iter()
            .filter(|k| k.key != k.arn)
            .map(|k| format!("pre-flight: key {} is {}", k.key, k.arn))
            .collect();
        if let Some(role) = &self.role {
            for n in &self.allowed {
                lines.push(format!(
                    "pre-flight: {role} may {} on {}",
                    n.action, n.resource
                ));
            }
        }
        lines.extend(self.notes.iter().map(|n| format!("pre-flight: {n}")));
        lines
    }
}

/// Pure: the permissions the execution role needs for `secrets`, given what KMS said of their
/// keys, and notes for what cannot be checked (a key KMS could not describe, named otherwise
/// than by its key ARN).
pub fn needs(secrets: &[Injected], keys: &Keys, region: &str) -> (Vec<Need>, Vec<String>) {
    let mut needs = Vec::new();
    let mut notes = Vec::new();
    for s in secrets {
        needs.push(Need {
            action: read_action(s),
            resource: s.arn.clone(),
            context: Vec::new(),
        });
        let Some(key) = &s.kms_key_id else { continue };
        let arn = match keys.get(key) {
            _ if is_aws_managed_alias(key) => continue,
            Some(Ok(k)) if k.aws_managed => continue,
            Some(Ok(k)) => k.arn.clone(),
            _ if is_key_arn(key) => key.clone(),
            described => {
                let why = match described {
                    Some(Err(why)) => why.as_str(),
                    _ => "KMS was not asked",
                };
                notes.push(format!(
                    "kms:Decrypt on {key} (the key of {}) not checked: {why}",
                    s.arn
                ));
                continue;
            }
        };
        needs.push(Need {
            action: "kms:Decrypt",
            resource: arn,
            context: decrypt_context(s, region),
        });
    }
    (needs, notes)
}

/// What the execution role needs to read `s`: `secretsmanager:GetSecretValue` on a secret,
/// `ssm:GetParameters` on a parameter ("Required IAM permissions for Amazon ECS secrets").
fn read_action(s: &Injected) -> &'static str {
    if s.parameter {
        "ssm:GetParameters"
    } else {
        "secretsmanager:GetSecretValue"
    }
}

/// The context KMS sees when the service decrypts `s` for the role: Secrets Manager decrypts a
/// secret with the encryption context `SecretARN`, Parameter Store a `SecureString` with
/// `PARAMETER_ARN` ("AWS KMS encryption for Parameter Store SecureString parameters"), each
/// through its own regional endpoint (`kms:ViaService`); a parameter's region is its ARN's.
fn decrypt_context(s: &Injected, region: &str) -> Vec<(&'static str, String)> {
    if s.parameter {
        let region = s
            .arn
            .split(':')
            .nth(3)
            .filter(|r| !r.is_empty())
            .unwrap_or(region);
        vec![
            ("kms:viaservice", format!("ssm.{region}.amazonaws.com")),
            ("kms:encryptioncontext:parameter_arn", s.arn.clone()),
        ]
    } else {
        vec![
            (
                "kms:viaservice",
                format!("secretsmanager.{region}.amazonaws.com"),
            ),
            ("kms:encryptioncontext:secretarn", s.arn.clone()),
        ]
    }
}

fn is_key_arn(key: &str) -> bool {
    key.starts_with("arn:") && key.contains(":key/")
}

/// `aws/` alias names are reserved for AWS managed keys (KMS developer guide, "Aliases").
fn is_aws_managed_alias(key: &str) -> bool {
    key.starts_with("alias/aws/") || key.contains(":alias/aws/")
}

/// Asks KMS once about each key the secrets name (except AWS managed keys by their reserved
/// alias).
pub async fn describe_keys(kms: &Kms, secrets: &[Injected]) -> Keys {
    let mut keys = Keys::new();
    for key in secrets.iter().filter_map(|s| s.kms_key_id.as_ref()) {
        if !keys.contains_key(key) && !is_aws_managed_alias(key) {
            keys.insert(key.clone(), kms.describe(key).await);
        }
    }
    keys
}

/// Pure: the keys KMS described, for the report.
fn seen(keys: &Keys) -> Vec<KeySeen> {
    keys.iter()
        .filter_map(|(key, k)| {
            let k = k.as_ref().ok()?;
            Some(KeySeen {
                key: key.clone(),
                arn: k.arn.clone(),
                aws_managed: k.aws_managed,
            })
        })
        .collect()
}

/// Pure: the verdict on IAM's answers. An explicit deny, or an implicit deny that does not
/// depend on missing context, is exit 2 naming the role, the action, the resource and the
/// statement to add.
pub fn judge(role: &str, answers: &[(Need, Answer)], grants: &Grants) -> Result<Preflight> {
    let mut out = Preflight {
        role: Some(role.to_owned()),
        ..Default::default()
    };
    for (need, answer) in answers {
        let grant = grants.get(&(need.action, need.resource.clone()));
        match answer.decision.as_str() {
            "allowed" => out.allowed.push(need.clone()),
            "explicitDeny" => {
                return Err(Error::usage(format!(
                    "pre-flight: the execution role {role} is explicitly denied {} on {} (by {}); tasks would never start (ResourceInitializationError: unable to pull secrets). Remove or narrow that Deny statement. Nothing was changed (--skip-preflight skips this check)",
                    need.action,
                    need.resource,
                    if answer.matched.is_empty() {
                        "a policy".to_owned()
                    } else {
                        answer.matched.join(", ")
                    }
                )));
            }
            _ if !answer.missing_context.is_empty() => out.notes.push(format!(
                "{} on {} depends on context the simulation cannot know ({}): not judged",
                need.action,
                need.resource,
                answer.missing_context.join(", ")
            )),
            _ if grant == Some(&Grant::Grants) => {
                out.notes.push(format!(
                    "{} on {} is granted to the role by {}",
                    need.action,
                    need.resource,
                    own_policy(need.action)
                ));
                out.allowed.push(need.clone());
            }
            _ if matches!(grant, Some(Grant::Unreadable(_)) | None) => out.notes.push(format!(
                "no identity policy of the role allows {} on {}, and {} could not be read ({}): not judged",
                need.action,
                need.resource,
                own_policy(need.action),
                match grant {
                    Some(Grant::Unreadable(why)) => why.as_str(),
                    _ => "not asked",
                }
            )),
            _ => {
                return Err(Error::usage(format!(
                    "pre-flight: the execution role {role} may not {} on {} (neither its policies nor {} allow it); tasks would never start (ResourceInitializationError: unable to pull secrets). Add this statement to the role's policy: {}. Nothing was changed (--skip-preflight skips this check)",
                    need.action,
                    need.resource,
                    own_policy(need.action),
                    statement(need)
                )));
            }
        }
    }
    if out.allowed.iter().any(|n| n.action == "kms:Decrypt") {
        out.notes
            .push("the key policy of a customer-managed key must allow the role too (the simulation reads identity policies only)".into());
    }
    Ok(out)
}

/// The policy a resource of `action` carries itself.
fn own_policy(action: &str) -> &'static str {
    if action.starts_with("kms:") {
        "the key policy"
    } else if action.starts_with("ssm:") {
        "a resource policy of the parameter"
    } else {
        "the secret's resource policy"
    }
}

/// What each need's resource says of `role` in its own policy. A secret this run will create
/// has none yet.
pub async fn resource_grants(sm: &SecretsManager, kms: &Kms, role: &str, needs: &[Need]) -> Grants {
    let mut grants = Grants::new();
    for need in needs {
        // Two secrets under one key need its policy once.
        if grants.contains_key(&(need.action, need.resource.clone())) {
            continue;
        }
        // A parameter has a resource policy only when shared with other accounts (not written
        // here: `wiring::parameter_in_account`).
        let policy = match need.action {
            _ if need.resource.ends_with(PLANNED_SUFFIX) => Ok(None),
            "ssm:GetParameters" => Ok(None),
            "kms:Decrypt" => kms.key_policy(&need.resource).await.map(Some),
            _ => sm.resource_policy(&need.resource).await,
        };
        let grant = match policy {
            Ok(p) => resource_policy::grant(p.as_deref(), role, need.action),
            Err(why) => Grant::Unreadable(why),
        };
        grants.insert((need.action, need.resource.clone()), grant);
    }
    grants
}

/// Pure: the grants, for the report.
fn policies_seen(grants: &Grants) -> Vec<PolicySeen> {
    grants
        .iter()
        .map(|((action, resource), g)| PolicySeen {
            action,
            resource: resource.clone(),
            verdict: match g {
                Grant::Grants => "grants".into(),
                Grant::DoesNotGrant => "does not grant".into(),
                Grant::Unreadable(why) => format!("unreadable: {why}"),
            },
        })
        .collect()
}

/// The IAM policy statement that grants `need`.
fn statement(need: &Need) -> String {
    let mut s = json!({"Effect": "Allow", "Action": need.action, "Resource": need.resource});
    if let Some((_, via)) = need.context.iter().find(|(k, _)| *k == "kms:viaservice") {
        s["Condition"] = json!({"StringEquals": {"kms:ViaService": via}});
    }
    s.to_string()
}

/// Asks IAM about every need of `role`. `Err(why)` when the simulation cannot run (no
/// permission to simulate, an emulator without the API, IAM unreachable): the caller notes it
/// and goes on.
pub async fn simulate(
    iam: &Iam,
    role: &str,
    needs: &[Need],
) -> std::result::Result<Vec<(Need, Answer)>, String> {
    let mut answers = Vec::new();
    for need in needs {
        answers.push((need.clone(), iam.simulate(role, need).await?));
    }
    Ok(answers)
}

/// What ends the ARN of a secret that does not exist yet (see [`planned_arn`]).
const PLANNED_SUFFIX: &str = "-??????";

/// The ARN a secret that does not exist yet will have: Secrets Manager appends `-` and six
/// random characters, which `??????` stands for (and matches policies written with `-??????`
/// or `-*`, the forms the AWS docs recommend). Partition and account are the role's.
pub fn planned_arn(role: &str, region: &str, id: &str) -> String {
    let parts: Vec<&str> = role.split(':').collect();
    let (partition, account) = match parts.as_slice() {
        ["arn", partition, _, _, account, ..] => (*partition, *account),
        _ => ("aws", ""),
    };
    format!("arn:{partition}:secretsmanager:{region}:{account}:secret:{id}{PLANNED_SUFFIX}")
}

/// The pre-flight unless skipped (then a note says so).
pub async fn check(
    env: &super::Env,
    role: Option<&str>,
    secrets: &[Injected],
    skip: bool,
) -> Result<Preflight> {
    if skip {
        return Ok(Preflight {
            notes: vec!["IAM pre-flight skipped (--skip-preflight)".into()],
            ..Default::default()
        });
    }
    run(env, role, secrets).await
}

/// The whole pre-flight for `role` (the task definition's execution role) and `secrets`:
/// exit 2 on a denial; notes when it cannot run or cannot judge.
pub async fn run(env: &super::Env, role: Option<&str>, secrets: &[Injected]) -> Result<Preflight> {
    let Some(role) = role else {
        return Err(Error::usage(
            "pre-flight: the task definition has no executionRoleArn; ECS needs an execution role to inject secrets from Secrets Manager. Nothing was changed (--skip-preflight skips this check)",
        ));
    };
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let late = |what: &str| format!("{what} did not answer within {}s", TIMEOUT.as_secs());
    let keys = tokio::time::timeout_at(deadline, describe_keys(&env.kms, secrets))
        .await
        .unwrap_or_else(|_| {
            secrets
                .iter()
                .filter_map(|s| Some((s.kms_key_id.clone()?, Err(late("KMS")))))
                .collect()
        });
    let (needs, mut notes) = needs(secrets, &keys, &env.settings.region);
    let grants =
        tokio::time::timeout_at(deadline, resource_grants(&env.sm, &env.kms, role, &needs))
            .await
            .unwrap_or_else(|_| {
                needs
                    .iter()
                    .map(|n| {
                        (
                            (n.action, n.resource.clone()),
                            Grant::Unreadable(late("AWS")),
                        )
                    })
                    .collect()
            });
    let unjudged = |notes| Preflight {
        role: Some(role.to_owned()),
        allowed: Vec::new(),
        keys: seen(&keys),
        resource_policies: policies_seen(&grants),
        notes,
    };
    let answers = match tokio::time::timeout_at(deadline, simulate(&env.iam, role, &needs)).await {
        Ok(Ok(a)) => a,
        Ok(Err(why)) => {
            notes.push(format!(
                "could not simulate the execution role's policies ({why}); not checked"
            ));
            return Ok(unjudged(notes));
        }
        Err(_) => {
            notes.push(format!("{}; not checked", late("IAM")));
            return Ok(unjudged(notes));
        }
    };
    let mut judged = judge(role, &answers, &grants)?;
    notes.append(&mut judged.notes);
    judged.notes = notes;
    judged.keys = seen(&keys);
    judged.resource_policies = policies_seen(&grants);
    Ok(judged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Exit;

    const ROLE: &str = "arn:aws:iam::123456789012:role/exec";
    const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop-staging/STRIPE_WEBHOOK_SECRET-AbCdEf";
    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    /// The decisions IAM answers, as in the `SimulatePrincipalPolicy` API reference.
    fn answer(decision: &str, matched: &[&str], missing: &[&str]) -> Answer {
        Answer {
            decision: decision.into(),
            matched: matched.iter().map(|s| s.to_string()).collect(),
            missing_context: missing.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_secret_to_create_is_simulated_with_the_arn_it_will_have() {
        assert_eq!(
            planned_arn(ROLE, "eu-west-1", "shop-staging/STRIPE_SECRET_KEY"),
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-staging/STRIPE_SECRET_KEY-??????"
        );
    }

    fn secret_with_key(key: &str) -> Vec<Injected> {
        vec![Injected {
            arn: SECRET.into(),
            kms_key_id: Some(key.into()),
            parameter: false,
        }]
    }

    fn described(key: &str, arn: &str, aws_managed: bool) -> Keys {
        Keys::from([(
            key.to_owned(),
            Ok(Key {
                arn: arn.into(),
                aws_managed,
            }),
        )])
    }

    #[test]
    fn a_customer_managed_key_needs_decrypt_through_secrets_manager() {
        let (n, notes) = needs(&secret_with_key(KEY), &Keys::new(), "us-east-1");
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].action, "secretsmanager:GetSecretValue");
        assert_eq!(n[1].action, "kms:Decrypt");
        assert_eq!(n[1].resource, KEY);
        assert!(n[1].context.contains(&(
            "kms:viaservice",
            "secretsmanager.us-east-1.amazonaws.com".to_owned()
        )));
        assert!(notes.is_empty());
        let aws_managed = [Injected {
            arn: SECRET.into(),
            kms_key_id: None,
            parameter: false,
        }];
        assert_eq!(needs(&aws_managed, &Keys::new(), "us-east-1").0.len(), 1);
    }

    #[test]
    fn an_alias_or_key_id_is_checked_as_the_key_kms_resolves_it_to() {
        for given in [
            "alias/payments",
            "arn:aws:kms:us-east-1:123456789012:alias/payments",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
        ] {
            let (n, notes) = needs(
                &secret_with_key(given),
                &described(given, KEY, false),
                "us-east-1",
            );
            assert_eq!((n.len(), n[1].resource.as_str()), (2, KEY), "{given}");
            assert!(notes.is_empty(), "{notes:?}");
        }
        let keys = Keys::from([(
            "alias/payments".to_owned(),
            Err("KMS answered 400 AccessDeniedException".to_owned()),
        )]);
        let (n, notes) = needs(&secret_with_key("alias/payments"), &keys, "us-east-1");
        assert_eq!(n.len(), 1);
        assert!(
            notes[0].contains("alias/payments") && notes[0].contains("AccessDeniedException"),
            "{notes:?}"
        );
        // A key ARN KMS could not describe is still checked as itself.
        let keys = Keys::from([(KEY.to_owned(), Err("unreachable".to_owned()))]);
        assert_eq!(needs(&secret_with_key(KEY), &keys, "us-east-1").0.len(), 2);
    }

    #[test]
    fn a_parameter_needs_get_parameters_and_decrypt_through_ssm() {
        let param = "arn:aws:ssm:eu-west-1:123456789012:parameter/app/stripe_key";
        let with = |key: &str| Injected {
            arn: param.into(),
            kms_key_id: Some(key.into()),
            parameter: true,
        };
        let (n, notes) = needs(&[with(KEY)], &Keys::new(), "us-east-1");
        assert!(notes.is_empty());
        assert_eq!(
            (n[0].action, n[0].resource.as_str()),
            ("ssm:GetParameters", param)
        );
        assert_eq!((n[1].action, n[1].resource.as_str()), ("kms:Decrypt", KEY));
        assert_eq!(
            n[1].context,
            vec![
                ("kms:viaservice", "ssm.eu-west-1.amazonaws.com".to_owned()),
                ("kms:encryptioncontext:parameter_arn", param.to_owned()),
            ]
        );
        // The account's aws/ssm key needs no kms:Decrypt.
        assert_eq!(
            needs(&[with("alias/aws/ssm")], &Keys::new(), "us-east-1")
                .0
                .len(),
            1
        );
    }

    #[test]
    fn an_aws_managed_key_needs_no_decrypt() {
        let (n, notes) = needs(
            &secret_with_key("alias/aws/secretsmanager"),
            &Keys::new(),
            "us-east-1",
        );
        assert_eq!((n.len(), notes.len()), (1, 0));
        let (n, _) = needs(
            &secret_with_key(KEY),
            &described(KEY, KEY, true),
            "us-east-1",
        );
        assert_eq!(n.len(), 1);
    }

    #[test]
    fn the_plan_shows_what_an_alias_resolved_to() {
        let p = Preflight {
            keys: seen(&described("alias/payments", KEY, false)),
            ..Default::default()
        };
        assert_eq!(
            p.render(),
            vec![format!("pre-flight: key alias/payments is {KEY}")]
        );
    }

    #[test]
    fn allowed_answers_pass_and_say_what_was_checked() {
        let (n, _) = needs(&secret_with_key(KEY), &Keys::new(), "us-east-1");
        let answers: Vec<_> = n
            .into_iter()
            .map(|n| (n, answer("allowed", &["exec-policy"], &[])))
            .collect();
        let p = judge(ROLE, &answers, &verdicts(&answers, Grant::DoesNotGrant)).unwrap();
        assert_eq!(p.allowed.len(), 2);
        assert!(p.notes[0].contains("key policy"), "{:?}", p.notes);
        assert!(p.render()[0].contains("may secretsmanager:GetSecretValue"));
    }

    /// The same resource-policy verdict for every need.
    fn verdicts(answers: &[(Need, Answer)], grant: Grant) -> Grants {
        answers
            .iter()
            .map(|(n, _)| ((n.action, n.resource.clone()), grant.clone()))
            .collect()
    }

    #[test]
    fn an_implicit_deny_the_resources_own_policy_lifts_is_no_failure() {
        let (n, _) = needs(&secret_with_key(KEY), &Keys::new(), "us-east-1");
        let answers: Vec<_> = n
            .into_iter()
            .map(|n| (n, answer("implicitDeny", &[], &[])))
            .collect();
        let p = judge(ROLE, &answers, &verdicts(&answers, Grant::Grants)).unwrap();
        assert_eq!(p.allowed.len(), 2);
        assert!(
            p.notes[0].contains("granted to the role by the secret's resource policy")
                && p.notes[1].contains("by the key policy"),
            "{:?}",
            p.notes
        );
        let unread = Grant::Unreadable("AccessDeniedException".into());
        let p = judge(ROLE, &answers, &verdicts(&answers, unread)).unwrap();
        assert!(p.allowed.is_empty());
        assert!(
            p.notes[1]
                .contains("the key policy could not be read (AccessDeniedException): not judged"),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn an_implicit_deny_is_exit_2_with_the_statement_to_add() {
        let (n, _) = needs(&secret_with_key(KEY), &Keys::new(), "us-east-1");
        let answers = vec![
            (n[0].clone(), answer("allowed", &[], &[])),
            (n[1].clone(), answer("implicitDeny", &[], &[])),
        ];
        let e = judge(ROLE, &answers, &verdicts(&answers, Grant::DoesNotGrant)).unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
        let m = e.message();
        assert!(
            m.contains(ROLE) && m.contains("kms:Decrypt") && m.contains(KEY),
            "{m}"
        );
        assert!(
            m.contains(r#""Condition":{"StringEquals":{"kms:ViaService":"secretsmanager.us-east-1.amazonaws.com"}}"#),
            "{m}"
        );
        assert!(m.contains("--skip-preflight"), "{m}");
        assert!(m.contains("neither its policies nor the key policy"), "{m}");
    }

    #[test]
    fn an_explicit_deny_names_the_denying_policy() {
        let (n, _) = needs(&secret_with_key(KEY), &Keys::new(), "us-east-1");
        let answers = vec![(n[0].clone(), answer("explicitDeny", &["deny-secrets"], &[]))];
        let e = judge(ROLE, &answers, &verdicts(&answers, Grant::DoesNotGrant)).unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
        assert!(
            e.message()
                .contains("explicitly denied secretsmanager:GetSecretValue")
        );
        assert!(e.message().contains("by deny-secrets"), "{}", e.message());
    }

    #[test]
    fn a_deny_that_depends_on_unknown_context_is_a_note() {
        let (n, _) = needs(&secret_with_key(KEY), &Keys::new(), "us-east-1");
        let answers = vec![(
            n[0].clone(),
            answer("implicitDeny", &[], &["aws:SourceVpce"]),
        )];
        let p = judge(ROLE, &answers, &verdicts(&answers, Grant::DoesNotGrant)).unwrap();
        assert!(p.allowed.is_empty());
        assert!(p.notes[0].contains("aws:SourceVpce"), "{:?}", p.notes);
    }
}
