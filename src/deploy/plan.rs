//! The plan of a change (what `--dry-run` prints and production's confirmation shows): the
//! steps, the pre-flight, the new webhook endpoint beside the old ones, the before/after of the
//! container's `secrets` and the unified diff of the whole task definition. Pure.

use serde::Serialize;
use serde_json::{Value, json};

use super::endpoint::Replacement;
use super::preflight::Preflight;
use super::taskdef::SecretRef;
use crate::printer::{Printer, Report};

/// One step the command will take (or skip), in order.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    pub action: String,
    pub skipped: bool,
}

/// Where a Stripe variable comes from now, and where its new value is written.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Wire {
    pub variable: String,
    pub now: String,
    pub new_value: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Plan {
    pub env: String,
    pub steps: Vec<Step>,
    /// The service's deployment controller and rollback settings, as ECS describes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// For each Stripe variable: its wiring now and where the new value goes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wiring: Vec<Wire>,
    /// The container's `secrets` before and after, as diff lines.
    pub secrets_diff: Vec<String>,
    /// The unified diff of the task definition registered now and the one to register; empty
    /// when none is registered.
    pub task_definition_diff: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight: Option<Preflight>,
    /// `webhook rotate`: the endpoint to create beside the ones it replaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Replacement>,
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
        if let Some(s) = &self.service {
            out.push(format!("service: {s}"));
        }
        for w in &self.wiring {
            out.push(format!(
                "{}: now from {}; the new value goes to {}",
                w.variable, w.now, w.new_value
            ));
        }
        if let Some(p) = &self.preflight {
            out.extend(p.render());
        }
        if let Some(e) = &self.endpoint {
            out.extend(e.render());
        }
        if !self.secrets_diff.is_empty() {
            out.push("container secrets (- before, + after):".to_owned());
            out.extend(self.secrets_diff.iter().map(|l| format!("  {l}")));
        }
        if !self.task_definition_diff.is_empty() {
            out.push("task definition (unified diff):".to_owned());
            out.extend(self.task_definition_diff.iter().cloned());
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

/// The unified diff of two renderings (three lines of context), empty when they are equal.
pub fn unified_diff(before: &str, after: &str, from: &str, to: &str) -> Vec<String> {
    if before == after {
        return Vec::new();
    }
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(from, to)
        .to_string()
        .lines()
        .map(str::to_owned)
        .collect()
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
    fn a_unified_diff_shows_only_what_changed_with_context() {
        let a = "family: x\nsecrets: [\n    A,\n]\ncpu: 256\n";
        let b = "family: x\nsecrets: [\n    A,\n    B,\n]\ncpu: 256\n";
        let d = unified_diff(a, b, "td:1", "td:2 (to register)");
        assert_eq!(d[0], "--- td:1");
        assert_eq!(d[1], "+++ td:2 (to register)");
        assert!(d.contains(&"+    B,".to_owned()), "{d:?}");
        assert!(
            d.iter()
                .filter(|l| l.starts_with('+') || l.starts_with('-'))
                .count()
                == 3
        );
        assert!(unified_diff(a, a, "x", "y").is_empty());
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
