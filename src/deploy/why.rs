//! Why a rollout did not complete, as a person would otherwise dig it out of the console: the
//! service's newest events and the stopped tasks of the deployment (found by their `startedBy`),
//! each classified in plain words (`stops`), with the last lines the explaining container wrote
//! to CloudWatch Logs when the task definition logs there with the awslogs driver. Read after a
//! failure and before a rollback replaces it; every read is bounded, and what cannot be read
//! becomes a note.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::Env;
use super::stops::Stopped;
use super::taskdef;
use crate::printer::Printer;

/// How many service events and stopped tasks are shown.
const WHY_EVENTS: usize = 5;
const WHY_TASKS: usize = 5;
/// The reading of the reasons, all calls included: short, since it comes after the wait's
/// deadline (an ECS that stopped answering is the usual reason for that).
const WHY_TIMEOUT: Duration = Duration::from_secs(5);
/// The last log lines: how many, of how many containers, each line cut at how many
/// characters, and the time all of it may take.
const LOG_LINES: usize = 10;
const LOG_STREAMS: usize = 2;
const LOG_LINE_CHARS: usize = 300;
const LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a rollout did not complete.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Why {
    pub deployment: Option<String>,
    pub events: Vec<String>,
    pub stopped_tasks: Vec<Stopped>,
    /// What could not be read.
    pub notes: Vec<String>,
}

impl Why {
    /// Pure: one line per event, stopped task, container that says something, classification
    /// and log line.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .events
            .iter()
            .map(|e| format!("service event: {e}"))
            .collect();
        for s in &self.stopped_tasks {
            let t = &s.task;
            let id = t.task.rsplit('/').next().unwrap_or(&t.task);
            lines.push(format!(
                "stopped task {id}: {}{}",
                t.stopped_reason.as_deref().unwrap_or("no reason given"),
                t.stop_code
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ));
            for c in &t.containers {
                if c.reason.is_none() && c.exit_code.is_none() {
                    continue;
                }
                let exit = c.exit_code.map(|x| format!("exit code {x}"));
                let said: Vec<String> = exit.into_iter().chain(c.reason.clone()).collect();
                lines.push(format!("  container {}: {}", c.name, said.join(", ")));
            }
            let c = &s.classification;
            lines.push(format!(
                "  why: {}{}",
                c.explanation,
                if c.heals {
                    " (a new task may not repeat it)"
                } else {
                    ""
                }
            ));
            if !s.last_log_lines.is_empty() {
                lines.push(format!(
                    "  last log lines of container {}:",
                    c.logs_of.as_deref().unwrap_or("?")
                ));
                lines.extend(s.last_log_lines.iter().map(|l| format!("    {l}")));
            }
        }
        lines.extend(self.notes.iter().cloned());
        lines
    }

    /// Pure: `message` with the stopped tasks' reasons, each once: appended when it does not
    /// say them yet, and given their last log lines where it does.
    pub fn explain(&self, mut message: String) -> String {
        let mut seen: Vec<&str> = Vec::new();
        let mut said: Vec<String> = Vec::new();
        for s in &self.stopped_tasks {
            let e = s.classification.explanation.as_str();
            if seen.contains(&e) {
                continue;
            }
            seen.push(e);
            if message.contains(e) {
                message = message.replacen(e, &s.explained(), 1);
            } else {
                said.push(s.explained());
            }
        }
        if said.is_empty() {
            message
        } else {
            format!("{message} (tasks stopped: {})", said.join("; "))
        }
    }

    /// For the error's details in `--json`.
    pub fn details(&self) -> serde_json::Value {
        serde_json::json!({ "rollout": self })
    }
}

/// Reads why the rollout of `deployment` did not complete and shows it, before a rollback
/// replaces it (bounded; what cannot be read becomes a note).
pub async fn why(env: &Env, deployment: &str, out: &Printer) -> Why {
    let mut why = read(env, deployment).await;
    if tokio::time::timeout(LOG_TIMEOUT, read_logs(env, &mut why))
        .await
        .is_err()
    {
        why.notes.push(format!(
            "CloudWatch Logs did not answer within {}s: the last log lines could not be read",
            LOG_TIMEOUT.as_secs()
        ));
    }
    for line in why.lines() {
        out.warn(line);
    }
    why
}

async fn read(env: &Env, deployment: &str) -> Why {
    let read = async {
        let mut why = Why::default();
        let view = match env.service().await {
            Ok(v) => v,
            Err(e) => {
                why.notes
                    .push(format!("could not read the service: {}", e.message()));
                return why;
            }
        };
        why.events = view.events.iter().take(WHY_EVENTS).cloned().collect();
        why.deployment = Some(deployment.to_owned());
        match env
            .ecs
            .stopped_tasks(&env.settings.cluster, deployment, WHY_TASKS)
            .await
        {
            Ok(tasks) => why.stopped_tasks = tasks.into_iter().map(Stopped::of).collect(),
            Err(e) => why.notes.push(e.message().to_owned()),
        }
        why
    };
    tokio::time::timeout(WHY_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| Why {
            notes: vec![format!(
                "ECS did not answer within {}s: the reasons could not be read",
                WHY_TIMEOUT.as_secs()
            )],
            ..Default::default()
        })
}

/// The last log lines of the container that explains a stop, for the first stops of each kind
/// that have one (at most `LOG_STREAMS` streams).
async fn read_logs(env: &Env, why: &mut Why) {
    let mut task_definitions = BTreeMap::new();
    let mut kinds_read = Vec::new();
    for s in why.stopped_tasks.iter_mut() {
        let Some(container) = s.classification.logs_of.clone() else {
            continue;
        };
        if kinds_read.len() == LOG_STREAMS || kinds_read.contains(&s.classification.kind) {
            continue;
        }
        kinds_read.push(s.classification.kind);
        let arn = s.task.task_definition.clone();
        if !task_definitions.contains_key(&arn) {
            let td = env.task_definition(&arn).await.map(|(td, _)| td);
            task_definitions.insert(arn.clone(), td);
        }
        let td = match &task_definitions[&arn] {
            Ok(td) => td,
            Err(e) => {
                why.notes.push(format!(
                    "could not read the log configuration of {arn}: {}",
                    e.message()
                ));
                continue;
            }
        };
        let runtime_id = s
            .task
            .containers
            .iter()
            .find(|c| c.name == container)
            .and_then(|c| c.runtime_id.as_deref());
        let Some(stream) = taskdef::log_stream(
            td,
            &container,
            &s.task.task,
            runtime_id,
            &env.settings.region,
        ) else {
            continue; // not the awslogs driver: nothing to read
        };
        match env
            .logs
            .last_lines(&stream.region, &stream.group, &stream.stream, LOG_LINES)
            .await
        {
            Ok(lines) => {
                s.last_log_lines = lines
                    .iter()
                    .map(|l| crate::http::excerpt(l, LOG_LINE_CHARS))
                    .collect();
            }
            Err(e) => why.notes.push(format!(
                "could not read the last log lines of {} in {}: {e}",
                stream.stream, stream.group
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ecs::{StoppedContainer, StoppedTask};

    fn exited(id: &str, code: i32) -> Stopped {
        Stopped::of(StoppedTask {
            task: format!("arn:aws:ecs:us-east-1:1:task/c/{id}"),
            stopped_reason: Some("Essential container in task exited".into()),
            stop_code: Some("EssentialContainerExited".into()),
            containers: vec![StoppedContainer {
                name: "api".into(),
                exit_code: Some(code),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    #[test]
    fn the_reasons_are_shown_classified_with_the_log_lines() {
        let mut first = exited("t1", 1);
        first.last_log_lines = vec!["Error: STRIPE_WEBHOOK_SECRET is not set".into()];
        let why = Why {
            deployment: Some("ecs-svc/1".into()),
            events: vec!["(service api) has started 1 tasks".into()],
            stopped_tasks: vec![first, exited("t2", 1)],
            notes: vec![],
        };
        let lines = why.lines();
        assert_eq!(
            lines[..6],
            [
                "service event: (service api) has started 1 tasks",
                "stopped task t1: Essential container in task exited (EssentialContainerExited)",
                "  container api: exit code 1",
                "  why: container api exits with code 1",
                "  last log lines of container api:",
                "    Error: STRIPE_WEBHOOK_SECRET is not set",
            ]
        );
        // The error says each reason once, with the log lines, and not what it already says.
        assert_eq!(
            why.explain("deploying api: timed out".into()),
            "deploying api: timed out (tasks stopped: container api exits with code 1: its last log lines are \u{ab}Error: STRIPE_WEBHOOK_SECRET is not set\u{bb})"
        );
        assert_eq!(
            why.explain("the new tasks cannot start: container api exits with code 1".into()),
            "the new tasks cannot start: container api exits with code 1: its last log lines are \u{ab}Error: STRIPE_WEBHOOK_SECRET is not set\u{bb}"
        );
        let json = why.details();
        assert_eq!(
            json["rollout"]["stopped_tasks"][0]["classification"],
            serde_json::json!({"kind": "exited", "heals": false, "explanation": "container api exits with code 1"})
        );
        assert_eq!(
            json["rollout"]["stopped_tasks"][0]["last_log_lines"][0],
            "Error: STRIPE_WEBHOOK_SECRET is not set"
        );
        assert_eq!(
            json["rollout"]["stopped_tasks"][0]["stop_code"],
            "EssentialContainerExited"
        );
    }
}
