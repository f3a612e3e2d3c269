//! The plan of a change (what `--dry-run` prints and production's confirmation shows) and the
//! before/after diff of the container's `secrets`. Pure.

use serde::Serialize;
use serde_json::{Value, json};

use super::taskdef::SecretRef;
use crate::printer::{Printer, Report};

/// One step the command will take (or skip), in order.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    pub action: String,
    pub skipped: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Plan {
    pub env: String,
    pub steps: Vec<Step>,
    /// The container's `secrets` before and after, as diff lines.
    pub secrets_diff: Vec<String>,
}

impl Plan {
    pub fn new(env: &str) -> Self {
        Self {
            env: env.to_owned(),
            ..Default::default()
        }
    }

    pub fn step(&mut self, action: impl Into<String>) {
        self.steps.push(Step {
            action: action.into(),
            skipped: false,
        });
    }

    pub fn skip(&mut self, action: impl Into<String>) {
        self.steps.push(Step {
            action: action.into(),
            skipped: true,
        });
    }

    /// The plan for people, one line per step, then the diff.
    pub fn render(&self) -> Vec<String> {
        let mut out = vec![format!("plan for {}:", self.env)];
        for (i, s) in self.steps.iter().enumerate() {
            let mark = if s.skipped { " (skipped)" } else { "" };
            out.push(format!("  {}. {}{mark}", i + 1, s.action));
        }
        if !self.secrets_diff.is_empty() {
            out.push("container secrets (- before, + after):".to_owned());
            out.extend(self.secrets_diff.iter().map(|l| format!("  {l}")));
        }
        out
    }
}

/// A plan printed instead of carried out (`--dry-run`).
pub struct DryRun(pub Plan);

impl Report for DryRun {
    fn json(&self) -> Value {
        json!({ "ok": true, "dry_run": true, "plan": self.0 })
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        let mut lines = self.0.render();
        lines.push("dry run: nothing was changed".to_owned());
        lines
    }
}

/// A line diff of two secret lists: unchanged entries start with two spaces, removed ones with
/// `- `, added ones with `+ `; a changed `valueFrom` shows as a removal then an addition.
pub fn secrets_diff(before: &[SecretRef], after: &[SecretRef]) -> Vec<String> {
    let show = |s: &SecretRef| format!("{} = {}", s.name, s.value_from);
    let mut out = Vec::new();
    for b in before {
        match after.iter().find(|a| a.name == b.name) {
            Some(a) if a == b => out.push(format!("  {}", show(b))),
            Some(a) => {
                out.push(format!("- {}", show(b)));
                out.push(format!("+ {}", show(a)));
            }
            None => out.push(format!("- {}", show(b))),
        }
    }
    for a in after {
        if !before.iter().any(|b| b.name == a.name) {
            out.push(format!("+ {}", show(a)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_marks_kept_changed_and_added_entries() {
        let before = vec![
            SecretRef::new("DATABASE_URL", "arn:db"),
            SecretRef::new("STRIPE_SECRET_KEY", "name-only"),
        ];
        let after = vec![
            SecretRef::new("DATABASE_URL", "arn:db"),
            SecretRef::new("STRIPE_SECRET_KEY", "arn:sk"),
            SecretRef::new("STRIPE_WEBHOOK_SECRET", "arn:wh"),
        ];
        assert_eq!(
            secrets_diff(&before, &after),
            vec![
                "  DATABASE_URL = arn:db",
                "- STRIPE_SECRET_KEY = name-only",
                "+ STRIPE_SECRET_KEY = arn:sk",
                "+ STRIPE_WEBHOOK_SECRET = arn:wh",
            ]
        );
        assert!(
            secrets_diff(&after, &after)
                .iter()
                .all(|l| l.starts_with("  "))
        );
    }

    #[test]
    fn render_numbers_steps_and_marks_skips() {
        let mut p = Plan::new("staging");
        p.step("put the key");
        p.skip("smoke");
        p.secrets_diff = vec!["+ A = b".into()];
        assert_eq!(
            p.render(),
            vec![
                "plan for staging:",
                "  1. put the key",
                "  2. smoke (skipped)",
                "container secrets (- before, + after):",
                "  + A = b",
            ]
        );
    }
}
