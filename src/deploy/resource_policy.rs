//! Whether a resource's own policy (a secret's resource policy, a KMS key policy) grants a role
//! an action. IAM's policy simulator cannot judge a role against a resource policy (its
//! `CallerArn` takes only IAM users), so an implicit deny from the identity policies alone is
//! not a verdict when the resource's policy names the role: ECS would get the secret. Pure.
//!
//! Counted as a grant: an `Allow` statement whose `Principal` names the role's ARN or is `*`
//! (`{"AWS": …}`, string or list) and whose `Action` covers the action (IAM's `*`/`?` globs,
//! case-insensitive). The account root (`arn:aws:iam::<account>:root`) is not a grant: it
//! delegates to the identity policies (KMS developer guide, "Default key policy").
//! `NotPrincipal`/`NotAction` statements and `Deny`s are not counted as grants.

use serde_json::Value;
use wildmatch::WildMatch;

/// What a resource's own policy says of a role and an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// An `Allow` statement names the role (or `*`) for the action.
    Grants,
    /// The resource has no policy, or none of its statements grants it.
    DoesNotGrant,
    /// The policy could not be read (no permission, not found): the reason.
    Unreadable(String),
}

/// Pure: whether `policy` (JSON text; `None`: the resource has none) grants `role` `action`.
pub fn grant(policy: Option<&str>, role: &str, action: &str) -> Grant {
    let Some(text) = policy else {
        return Grant::DoesNotGrant;
    };
    let Ok(doc) = serde_json::from_str::<Value>(text) else {
        return Grant::Unreadable("the policy is not JSON".into());
    };
    let statements = match &doc["Statement"] {
        Value::Array(list) => list.iter().collect(),
        one @ Value::Object(_) => vec![one],
        _ => Vec::new(),
    };
    if statements.iter().any(|s| {
        s["Effect"] == "Allow" && names(&s["Principal"], role) && covers(&s["Action"], action)
    }) {
        Grant::Grants
    } else {
        Grant::DoesNotGrant
    }
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn names(principal: &Value, role: &str) -> bool {
    let aws = match principal {
        Value::String(s) => return s == "*",
        Value::Object(m) => m.get("AWS").map(strings).unwrap_or_default(),
        _ => Vec::new(),
    };
    aws.iter().any(|p| *p == "*" || *p == role)
}

fn covers(actions: &Value, action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    strings(actions)
        .iter()
        .any(|a| WildMatch::new(&a.to_ascii_lowercase()).matches(&action))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/exec";

    fn policy(statement: Value) -> String {
        serde_json::json!({"Version": "2012-10-17", "Statement": statement}).to_string()
    }

    #[test]
    fn an_allow_naming_the_role_or_everyone_grants() {
        let direct = policy(serde_json::json!([{"Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::123456789012:role/other", ROLE]},
            "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}]));
        assert_eq!(grant(Some(&direct), ROLE, "kms:Decrypt"), Grant::Grants);
        let glob = policy(
            serde_json::json!({"Effect": "Allow", "Principal": {"AWS": ROLE},
            "Action": "secretsmanager:Get*", "Resource": "*"}),
        );
        assert_eq!(
            grant(Some(&glob), ROLE, "secretsmanager:GetSecretValue"),
            Grant::Grants
        );
        let everyone = policy(serde_json::json!([{"Effect": "Allow", "Principal": "*",
            "Action": "SecretsManager:*", "Resource": "*"}]));
        assert_eq!(
            grant(Some(&everyone), ROLE, "secretsmanager:GetSecretValue"),
            Grant::Grants
        );
    }

    #[test]
    fn root_delegation_denies_other_principals_and_actions_do_not_grant() {
        // The default key policy: the account root, which hands the decision to IAM.
        let default = policy(serde_json::json!([{"Sid": "Enable IAM User Permissions",
            "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "kms:*", "Resource": "*"}]));
        assert_eq!(
            grant(Some(&default), ROLE, "kms:Decrypt"),
            Grant::DoesNotGrant
        );
        let deny = policy(
            serde_json::json!([{"Effect": "Deny", "Principal": {"AWS": ROLE},
            "Action": "kms:Decrypt", "Resource": "*"}]),
        );
        assert_eq!(grant(Some(&deny), ROLE, "kms:Decrypt"), Grant::DoesNotGrant);
        let other_action = policy(serde_json::json!([{"Effect": "Allow",
            "Principal": {"AWS": ROLE}, "Action": "kms:Encrypt", "Resource": "*"}]));
        assert_eq!(
            grant(Some(&other_action), ROLE, "kms:Decrypt"),
            Grant::DoesNotGrant
        );
        let not_principal = policy(serde_json::json!([{"Effect": "Allow",
            "NotPrincipal": {"AWS": "arn:aws:iam::1:role/x"}, "Action": "*", "Resource": "*"}]));
        assert_eq!(
            grant(Some(&not_principal), ROLE, "kms:Decrypt"),
            Grant::DoesNotGrant
        );
        assert_eq!(grant(None, ROLE, "kms:Decrypt"), Grant::DoesNotGrant);
        assert!(matches!(
            grant(Some("{nope"), ROLE, "kms:Decrypt"),
            Grant::Unreadable(_)
        ));
    }
}
