//! Whether the deployment stripe-ops started is done (pure): judged on that deployment, by the id
//! UpdateService returned, never on "the PRIMARY is COMPLETED". With the deployment circuit
//! breaker or CloudWatch deployment alarms set to roll back, ECS marks a failed deployment
//! FAILED and starts a new PRIMARY deployment of the previous task definition, which completes;
//! a wait that misses the short FAILED window would otherwise see a COMPLETED PRIMARY and call a
//! rolled-back deployment a success (ecspresso #732; aws-actions/amazon-ecs-deploy-task-definition
//! #191, fixed in #860 by comparing deployment ids). The same rule catches someone else's
//! deployment started during the wait.
//!
//! Done: our deployment is PRIMARY, its rollout COMPLETED, running its desired count, and the
//! service still runs the task definition it ran when ours started. (The service's
//! `taskDefinition` is compared, not the deployment's: moto keeps a deployment's task definition
//! as it was created, real ECS gives each deployment its own; on real ECS both agree.)

use serde::Serialize;

use crate::aws::ecs::{DeploymentView, ServiceView};

/// The deployment UpdateService started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    pub deployment_id: String,
    /// The task definition the service runs with it.
    pub task_definition: String,
    /// The task definition before it.
    pub previous: String,
}

/// Where our deployment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Completed,
    InProgress,
    Failed(Failed),
}

/// Our deployment failed or was replaced, as ECS tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub message: String,
    /// ECS (or someone) already runs a deployment of the previous task definition: a rollback
    /// by stripe-ops must not fight it.
    pub rolled_back: bool,
    /// The deployment that replaced ours, when one did.
    pub replaced_by: Option<String>,
}

/// What rolled a deployment back, from the reason ECS gave and the service's settings.
fn rolled_back_by(reason: Option<&str>, view: &ServiceView) -> &'static str {
    let reason = reason.unwrap_or_default().to_ascii_lowercase();
    if reason.contains("circuit breaker") {
        "the deployment circuit breaker"
    } else if reason.contains("alarm") {
        "a CloudWatch deployment alarm"
    } else if view.circuit_breaker.is_some_and(|c| c.enable && c.rollback) {
        "the deployment circuit breaker"
    } else if view.alarms.as_ref().is_some_and(|a| a.enable && a.rollback) {
        "a CloudWatch deployment alarm"
    } else {
        "ECS"
    }
}

/// Judges `view` for the deployment `started`.
pub fn assess(view: &ServiceView, started: &Started) -> Progress {
    let ours = view
        .deployments
        .iter()
        .find(|d| d.id == started.deployment_id);
    let other_primary = view.primary().filter(|p| p.id != started.deployment_id);
    match (ours, other_primary) {
        (Some(d), other) if d.rollout_state.as_deref() == Some("FAILED") => {
            Progress::Failed(failed_ours(d, other, view, started))
        }
        (_, Some(p)) => Progress::Failed(replaced(ours, p, view, started)),
        (None, None) => Progress::Failed(Failed {
            message: format!(
                "ECS no longer lists deployment {} and shows no PRIMARY deployment",
                started.deployment_id
            ),
            rolled_back: false,
            replaced_by: None,
        }),
        (Some(d), None) => {
            if !same_td(&view.task_definition, &started.task_definition) {
                return Progress::Failed(Failed {
                    message: format!(
                        "the service was pointed at {} during the wait (deployment {} was of {}): another UpdateService changed it",
                        view.task_definition, d.id, started.task_definition
                    ),
                    rolled_back: same_td(&view.task_definition, &started.previous),
                    replaced_by: None,
                });
            }
            let full = view.running == view.desired && d.running == d.desired;
            if d.rollout_state.as_deref() == Some("COMPLETED") && full {
                Progress::Completed
            } else {
                Progress::InProgress
            }
        }
    }
}

fn failed_ours(
    d: &DeploymentView,
    other: Option<&DeploymentView>,
    view: &ServiceView,
    started: &Started,
) -> Failed {
    let reason = d
        .rollout_state_reason
        .clone()
        .unwrap_or_else(|| "no reason given".to_owned());
    match other {
        Some(p) => Failed {
            message: format!(
                "rolled back by {}: ECS marked deployment {} FAILED ({reason}) and started deployment {} of {}",
                rolled_back_by(Some(&reason), view),
                d.id,
                p.id,
                primary_td(p, view)
            ),
            rolled_back: same_td(primary_td(p, view), &started.previous),
            replaced_by: Some(p.id.clone()),
        },
        None => Failed {
            message: format!("the rollout FAILED: {reason}"),
            rolled_back: false,
            replaced_by: None,
        },
    }
}

/// Another deployment is PRIMARY: a rollback (of the previous task definition) or someone
/// else's deployment.
fn replaced(
    ours: Option<&DeploymentView>,
    p: &DeploymentView,
    view: &ServiceView,
    started: &Started,
) -> Failed {
    let td = primary_td(p, view);
    let gone = match ours {
        None => format!("deployment {} is gone", started.deployment_id),
        Some(d) => format!("deployment {} is no longer PRIMARY ({})", d.id, d.status),
    };
    let rolled_back = same_td(td, &started.previous);
    let message = if rolled_back {
        format!(
            "rolled back by {}: {gone}, and the service runs deployment {} of {}, the previous task definition",
            rolled_back_by(ours.and_then(|d| d.rollout_state_reason.as_deref()), view),
            p.id,
            td
        )
    } else {
        format!(
            "{gone}: deployment {} of {td} replaced it during the wait (someone, or something, else deployed)",
            p.id
        )
    };
    Failed {
        message,
        rolled_back,
        replaced_by: Some(p.id.clone()),
    }
}

/// The same task definition, named by ARN or by `family:revision` (what UpdateService was
/// given is echoed as given by some ECS implementations, moto among them).
fn same_td(a: &str, b: &str) -> bool {
    let short = |td: &str| {
        td.rsplit_once("task-definition/")
            .map_or(td, |(_, r)| r)
            .to_owned()
    };
    short(a) == short(b)
}

/// The task definition a PRIMARY deployment runs: the service's (see the module note).
fn primary_td<'a>(p: &'a DeploymentView, view: &'a ServiceView) -> &'a str {
    if view.task_definition.is_empty() {
        &p.task_definition
    } else {
        &view.task_definition
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ecs::{Alarms, CircuitBreaker};

    const TD1: &str = "arn:aws:ecs:us-east-1:1:task-definition/api:1";
    const TD2: &str = "arn:aws:ecs:us-east-1:1:task-definition/api:2";
    const TD3: &str = "arn:aws:ecs:us-east-1:1:task-definition/api:3";

    fn dep(id: &str, status: &str, state: &str, td: &str, running: i32) -> DeploymentView {
        DeploymentView {
            id: id.into(),
            status: status.into(),
            rollout_state: Some(state.into()),
            rollout_state_reason: None,
            running,
            desired: 2,
            task_definition: td.into(),
            ..Default::default()
        }
    }

    fn service(td: &str, running: i32, deployments: Vec<DeploymentView>) -> ServiceView {
        ServiceView {
            task_definition: td.into(),
            desired: 2,
            running,
            deployments,
            ..ServiceView::default()
        }
    }

    fn ours() -> Started {
        Started {
            deployment_id: "ecs-svc/ours".into(),
            task_definition: TD2.into(),
            previous: TD1.into(),
        }
    }

    fn failed(p: Progress) -> Failed {
        match p {
            Progress::Failed(f) => f,
            other => panic!("not failed: {other:?}"),
        }
    }

    #[test]
    fn only_our_deployment_completed_at_full_strength_is_done() {
        let done = service(
            TD2,
            2,
            vec![dep("ecs-svc/ours", "PRIMARY", "COMPLETED", TD2, 2)],
        );
        assert_eq!(assess(&done, &ours()), Progress::Completed);
        let mut rolling = done.clone();
        rolling.deployments[0].rollout_state = Some("IN_PROGRESS".into());
        rolling
            .deployments
            .push(dep("ecs-svc/old", "ACTIVE", "COMPLETED", TD1, 1));
        assert_eq!(assess(&rolling, &ours()), Progress::InProgress);
        let mut short = done.clone();
        short.running = 1;
        assert_eq!(assess(&short, &ours()), Progress::InProgress);
    }

    #[test]
    fn a_circuit_breaker_rollback_seen_in_its_failed_window_is_named() {
        let mut failed_ours = dep("ecs-svc/ours", "ACTIVE", "FAILED", TD2, 0);
        failed_ours.rollout_state_reason =
            Some("ECS deployment circuit breaker: tasks failed to start.".into());
        let view = ServiceView {
            circuit_breaker: Some(CircuitBreaker {
                enable: true,
                rollback: true,
            }),
            ..service(
                TD1,
                2,
                vec![
                    dep("ecs-svc/rollback", "PRIMARY", "COMPLETED", TD1, 2),
                    failed_ours,
                ],
            )
        };
        let f = failed(assess(&view, &ours()));
        assert!(f.rolled_back);
        assert_eq!(f.replaced_by.as_deref(), Some("ecs-svc/rollback"));
        assert_eq!(
            f.message,
            format!(
                "rolled back by the deployment circuit breaker: ECS marked deployment ecs-svc/ours FAILED (ECS deployment circuit breaker: tasks failed to start.) and started deployment ecs-svc/rollback of {TD1}"
            )
        );
    }

    #[test]
    fn a_rollback_missed_by_the_poll_is_still_a_rollback() {
        // The FAILED deployment already drained: only the rollback's COMPLETED PRIMARY is left.
        let view = service(
            TD1,
            2,
            vec![dep("ecs-svc/rollback", "PRIMARY", "COMPLETED", TD1, 2)],
        );
        let f = failed(assess(&view, &ours()));
        assert!(f.rolled_back, "{f:?}");
        assert!(
            f.message
                .starts_with("rolled back by ECS: deployment ecs-svc/ours is gone"),
            "{}",
            f.message
        );
        // With alarms set to roll back, the cause is named as such.
        let alarmed = ServiceView {
            alarms: Some(Alarms {
                names: vec!["api-5xx".into()],
                enable: true,
                rollback: true,
            }),
            ..view
        };
        let f = failed(assess(&alarmed, &ours()));
        assert!(
            f.message
                .starts_with("rolled back by a CloudWatch deployment alarm"),
            "{}",
            f.message
        );
    }

    #[test]
    fn someone_elses_deployment_during_the_wait_is_not_ours() {
        let view = service(
            TD3,
            2,
            vec![
                dep("ecs-svc/theirs", "PRIMARY", "IN_PROGRESS", TD3, 0),
                dep("ecs-svc/ours", "ACTIVE", "COMPLETED", TD2, 2),
            ],
        );
        let f = failed(assess(&view, &ours()));
        assert!(!f.rolled_back);
        assert!(
            f.message.contains("deployment ecs-svc/theirs of"),
            "{}",
            f.message
        );
        assert!(
            f.message.contains("someone, or something, else deployed"),
            "{}",
            f.message
        );
        // An UpdateService that changes the task definition without a new deployment id (what
        // moto does without forceNewDeployment) is caught on the service's task definition.
        let repointed = service(
            TD1,
            2,
            vec![dep("ecs-svc/ours", "PRIMARY", "COMPLETED", TD2, 2)],
        );
        let f = failed(assess(&repointed, &ours()));
        assert!(
            f.rolled_back && f.message.contains("another UpdateService"),
            "{f:?}"
        );
    }

    #[test]
    fn task_definitions_compare_by_family_and_revision() {
        assert!(same_td(TD1, "api:1"));
        assert!(!same_td(TD1, "api:2"));
        let done = service(
            "api:2",
            2,
            vec![dep("ecs-svc/ours", "PRIMARY", "COMPLETED", TD2, 2)],
        );
        assert_eq!(assess(&done, &ours()), Progress::Completed);
    }

    #[test]
    fn a_failed_rollout_without_a_rollback_is_named_as_ecs_named_it() {
        let mut d = dep("ecs-svc/ours", "PRIMARY", "FAILED", TD2, 0);
        d.rollout_state_reason =
            Some("ECS deployment circuit breaker: tasks failed to start.".into());
        let f = failed(assess(&service(TD2, 0, vec![d]), &ours()));
        assert_eq!(
            f.message,
            "the rollout FAILED: ECS deployment circuit breaker: tasks failed to start."
        );
        assert!(!f.rolled_back);
        // Stuck IN_PROGRESS stays in progress (the deadline ends it).
        let stuck = service(
            TD2,
            0,
            vec![dep("ecs-svc/ours", "PRIMARY", "IN_PROGRESS", TD2, 0)],
        );
        assert_eq!(assess(&stuck, &ours()), Progress::InProgress);
    }
}
