//! Redeploying the ECS service and waiting for it: UpdateService (forceNewDeployment), which
//! names the deployment it started, then DescribeServices until that deployment is done or
//! failed (`rollout::assess`), polling every 2 s at first and backing off, with a progress line.
//! While it waits it also watches the deployment's stopped tasks (ListTasks by `startedBy`,
//! DescribeTasks for the new ones): when its tasks cannot start (`stops::cannot_start`) the wait
//! ends at once instead of at its timeout, and polls go back to the first interval as soon as a
//! task of ours fails, so that the end comes within seconds of the stop that decides it. A
//! failed rollout or a timeout rolls the service back to the task definition it had before,
//! unless ECS already did.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use aws_sdk_ecs::types::TaskDefinition;

use super::Env;
use super::rollout::{self, Progress, Started};
use super::stops;
use crate::aws::ecs::{DeploymentView, ServiceView};
use crate::error::{Error, Result};
use crate::printer::{self, Printer};
use crate::retry::{self, Stopped};

/// How long an UpdateService outside a wait may take (the rollback's, `--no-wait`'s).
const ROLLBACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How to wait for a rollout, and for the app to switch to a new secret after it.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    /// Start the redeploy and return (`--no-wait`): no wait, no smoke, no rollback.
    pub no_wait: bool,
    /// The whole wait, the calls to ECS inside it included.
    pub timeout: Duration,
    /// The first polling interval; it backs off to eight times that.
    pub poll: Duration,
    /// Point the service back at its previous task definition when the rollout fails.
    pub rollback: bool,
    /// After the rollout: how long the smoke accepts refusals from tasks with the old secret,
    /// and waits for the credit.
    pub settle: Duration,
    /// End the wait once this many tasks of the deployment stopped for a reason a new task
    /// would repeat, with none running (`stops::cannot_start`); 0 waits out the timeout.
    pub failed_tasks: u32,
}

impl WaitPolicy {
    /// The plan's redeploy step.
    pub fn redeploy_step(&self, service: &str) -> String {
        if self.no_wait {
            format!("redeploy {service} (force new deployment) without waiting (--no-wait)")
        } else {
            format!(
                "redeploy {service} (force new deployment) and wait up to {}",
                crate::duration::human(self.timeout)
            )
        }
    }
}

impl Default for WaitPolicy {
    fn default() -> Self {
        Self {
            no_wait: false,
            timeout: Duration::from_secs(15 * 60),
            poll: Duration::from_secs(2),
            rollback: true,
            settle: Duration::from_secs(30),
            failed_tasks: stops::DEFAULT_THRESHOLD,
        }
    }
}

/// Pure: one line for the progress spinner and messages.
pub fn summary(view: &ServiceView) -> String {
    let rollout = view
        .primary()
        .map(|p| p.rollout_state.clone().unwrap_or_else(|| "?".into()))
        .unwrap_or_else(|| "no primary".into());
    format!(
        "deployments: {} (primary {rollout}), running {}/{}",
        view.deployments.len(),
        view.running,
        view.desired
    )
}

/// Pure: the wait before poll number `attempt` (0-based): `initial` for the first ten polls,
/// then doubling every five polls, at most eight times `initial`.
pub fn poll_interval(initial: Duration, attempt: u32) -> Duration {
    let factor = if attempt < 10 {
        1
    } else {
        (2u32 << ((attempt - 10) / 5).min(2)).min(8)
    };
    initial * factor
}

/// How a wait ended, when it did not complete.
#[derive(Debug, Clone)]
pub enum NotCompleted {
    Failed(rollout::Failed),
    TimedOut { after: Duration, last: String },
}

impl NotCompleted {
    /// ECS (or someone) already put the previous task definition back.
    pub fn rolled_back(&self) -> bool {
        matches!(self, NotCompleted::Failed(f) if f.rolled_back)
    }
}

impl std::fmt::Display for NotCompleted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotCompleted::Failed(failed) => f.write_str(&failed.message),
            NotCompleted::TimedOut { after, last } => write!(
                f,
                "the deployment did not complete within {}s ({last})",
                after.as_secs()
            ),
        }
    }
}

/// What a completed deployment looked like.
#[derive(Debug, Clone, Serialize)]
pub struct Deployed {
    pub task_definition: String,
    pub deployment_id: String,
    pub seconds: f64,
}

/// A passed step of `enable` or `rotate` for CI.
pub(crate) fn ci_row(name: &str, detail: String) -> crate::ci::Row {
    crate::ci::Row {
        name: name.to_owned(),
        outcome: crate::ci::Outcome::Passed,
        ms: None,
        detail,
    }
}

/// The redeploy and the smoke as CI rows (the smoke's own steps, when it ran).
pub(crate) fn deployment_rows(
    deployed: Option<&Deployed>,
    smoke: &serde_json::Value,
) -> Vec<crate::ci::Row> {
    let mut rows = vec![match deployed {
        Some(d) => crate::ci::Row {
            ms: Some(d.seconds * 1000.0),
            ..ci_row(
                "redeploy",
                format!(
                    "deployment {} completed on {}",
                    d.deployment_id, d.task_definition
                ),
            )
        },
        None => ci_row("redeploy", "started, not waited for (--no-wait)".to_owned()),
    }];
    match smoke["steps"].as_array() {
        Some(steps) => rows.extend(steps.iter().map(|s| crate::ci::Row {
            name: format!("smoke: {}", s["name"].as_str().unwrap_or("step")),
            outcome: if s["ok"] == true {
                crate::ci::Outcome::Passed
            } else {
                crate::ci::Outcome::Failed
            },
            ms: s["ms"].as_f64(),
            detail: s["detail"].as_str().unwrap_or("").to_owned(),
        })),
        None => rows.push(crate::ci::Row {
            outcome: crate::ci::Outcome::Skipped,
            ..ci_row("smoke", "not run".to_owned())
        }),
    }
    rows
}

/// Refuses, before anything is written, what a force-new-deployment cannot redeploy: a
/// service whose deployment controller is not ECS (CodeDeploy's blue/green and external
/// controllers deploy through their own APIs, and UpdateService cannot force a new deployment
/// of them), a service scaled to zero (the redeploy starts no task, and the smoke would test
/// whatever else answers at the base URL), and a task definition family other than the one the
/// config names (`task_family`).
pub fn check_deployable(
    view: &ServiceView,
    td: &TaskDefinition,
    settings: &crate::config::EnvSettings,
    redeploys: bool,
) -> Result<()> {
    let service = &settings.service;
    if let Some(family) = &settings.task_family
        && td.family() != Some(family.as_str())
    {
        return Err(Error::usage(format!(
            "service {service} runs task definition family {}, not {family} (task_family in stripe-ops.toml): is this the right service?",
            td.family().unwrap_or("?")
        )));
    }
    if !redeploys {
        return Ok(());
    }
    if view.controller != "ECS" {
        return Err(Error::usage(format!(
            "service {service} uses the {} deployment controller: ECS cannot force a new deployment of it with UpdateService. Deploy the new task definition through {} yourself, and run with --skip-restart (stripe-ops then writes the secrets and registers the task definition only)",
            view.controller,
            if view.controller == "CODE_DEPLOY" {
                "CodeDeploy (create-deployment with an AppSpec naming it)"
            } else {
                "your deployment tool"
            }
        )));
    }
    if view.desired == 0 {
        return Err(Error::usage(format!(
            "service {service} has a desired count of 0: a redeploy starts no task, so nothing would read the new secrets, and the smoke would test whatever else answers at the base URL. Scale the service up first, or run with --skip-restart"
        )));
    }
    Ok(())
}

/// UpdateService with forceNewDeployment, and `task_definition` when given; returns the
/// deployment it started (its id from the answer, the PRIMARY one) and `previous`, the task
/// definition the service ran before.
pub async fn redeploy(env: &Env, task_definition: Option<&str>, previous: &str) -> Result<Started> {
    let s = &env.settings;
    let view = env
        .ecs
        .force_new_deployment(&s.cluster, &s.service, task_definition)
        .await?;
    let id = view.primary().map(|d| d.id.clone()).ok_or_else(|| {
        Error::external(format!(
            "ECS answered UpdateService for {} without a PRIMARY deployment",
            s.service
        ))
    })?;
    Ok(Started {
        deployment_id: id,
        task_definition: task_definition
            .map(str::to_owned)
            .filter(|_| view.task_definition.is_empty())
            .unwrap_or(view.task_definition),
        previous: previous.to_owned(),
    })
}

/// `redeploy` bounded like the rollback's call (`--no-wait` returns right after it).
pub async fn redeploy_now(
    env: &Env,
    task_definition: Option<&str>,
    previous: &str,
) -> Result<Started> {
    tokio::time::timeout(ROLLBACK_TIMEOUT, redeploy(env, task_definition, previous))
        .await
        .unwrap_or_else(|_| {
            Err(Error::external(format!(
                "ECS did not answer UpdateService within {}s",
                ROLLBACK_TIMEOUT.as_secs()
            )))
        })
}

/// Points the service at `task_definition` without forcing or waiting (`--skip-restart`).
pub async fn point_at(env: &Env, task_definition: &str) -> Result<()> {
    let s = &env.settings;
    env.ecs
        .point_at(&s.cluster, &s.service, task_definition)
        .await
}

/// The command that does what `redeploy` does, for a person finishing by hand.
pub fn redeploy_command(env: &Env, task_definition: Option<&str>) -> String {
    let s = &env.settings;
    let td = task_definition
        .map(|t| format!(" --task-definition {t}"))
        .unwrap_or_default();
    format!(
        "aws ecs update-service --region {} --cluster {} --service {}{td} --force-new-deployment",
        s.region, s.cluster, s.service
    )
}

/// The command that does what `point_at` does, for a person finishing by hand.
pub fn point_command(env: &Env, task_definition: &str) -> String {
    let s = &env.settings;
    format!(
        "aws ecs update-service --region {} --cluster {} --service {} --task-definition {task_definition}",
        s.region, s.cluster, s.service
    )
}

/// Polls until the deployment `started` completes, fails, or the policy's timeout passes; the
/// timeout also cuts a call to ECS that hangs. AWS errors are returned as errors (exit 3); a
/// failed or unfinished rollout as `Ok(Err(..))`.
pub async fn wait(
    env: &Env,
    started: &Started,
    policy: &WaitPolicy,
    out: &Printer,
) -> Result<std::result::Result<Deployed, NotCompleted>> {
    wait_until(
        env,
        started,
        retry::deadline_in(policy.timeout),
        policy,
        out,
    )
    .await
}

/// `wait` with the deadline given (so that the redeploy before it counts too).
async fn wait_until(
    env: &Env,
    started_deployment: &Started,
    deadline: tokio::time::Instant,
    policy: &WaitPolicy,
    out: &Printer,
) -> Result<std::result::Result<Deployed, NotCompleted>> {
    let started = Instant::now();
    let bar = out.spinner(format!("waiting for {} to deploy", env.settings.service));
    let watch = tokio::sync::Mutex::new(Watch::default());
    // Once a task of ours failed, every poll comes at the first interval again.
    let failing = AtomicBool::new(false);
    let waited = retry::poll(
        deadline,
        |n| {
            if failing.load(Ordering::Relaxed) {
                policy.poll
            } else {
                poll_interval(policy.poll, n)
            }
        },
        || async {
            let view = match env.service().await {
                Ok(v) => v,
                Err(e) => return ControlFlow::Break(Err(Err(e))),
            };
            printer::set_message(
                &bar,
                format!(
                    "{}, elapsed {}s",
                    summary(&view),
                    started.elapsed().as_secs()
                ),
            );
            match rollout::assess(&view, started_deployment) {
                Progress::Completed => ControlFlow::Break(Ok(Deployed {
                    task_definition: started_deployment.task_definition.clone(),
                    deployment_id: started_deployment.deployment_id.clone(),
                    seconds: started.elapsed().as_secs_f64(),
                })),
                Progress::Failed(failed) => {
                    ControlFlow::Break(Err(Ok(NotCompleted::Failed(failed))))
                }
                Progress::InProgress => {
                    let ours = view
                        .deployments
                        .iter()
                        .find(|d| d.id == started_deployment.deployment_id);
                    let mut watch = watch.lock().await;
                    let verdict = match ours {
                        Some(d) if policy.failed_tasks > 0 => {
                            watch.look(env, d, policy.failed_tasks, out).await
                        }
                        _ => None,
                    };
                    if watch.failing {
                        failing.store(true, Ordering::Relaxed);
                    }
                    match verdict {
                        Some(message) => {
                            ControlFlow::Break(Err(Ok(NotCompleted::Failed(rollout::Failed {
                                message,
                                rolled_back: false,
                                replaced_by: None,
                            }))))
                        }
                        None => ControlFlow::Continue(summary(&view)),
                    }
                }
            }
        },
    )
    .await;
    bar.finish_and_clear();
    match waited {
        Ok(done) => Ok(Ok(done)),
        Err(Stopped::Failed(Ok(not_completed))) => Ok(Err(not_completed)),
        Err(Stopped::Failed(Err(aws))) => Err(aws),
        Err(Stopped::TimedOut(last)) => Ok(Err(NotCompleted::TimedOut {
            after: policy.timeout,
            last: last.unwrap_or_else(|| "ECS did not answer within the wait".to_owned()),
        })),
    }
}

/// What the wait has seen of the deployment's stopped tasks: each described once it is
/// STOPPED, and classified.
#[derive(Default)]
struct Watch {
    stopped: BTreeMap<String, stops::Stopped>,
    /// A task of ours failed (or ECS counts failed tasks): poll at the first interval.
    failing: bool,
    /// The stopped tasks could not be read (said once; the wait then waits out its timeout).
    blind: bool,
}

impl Watch {
    /// Reads the deployment's stopped tasks not yet seen and judges them: the message that
    /// ends the wait when its tasks cannot start.
    async fn look(
        &mut self,
        env: &Env,
        d: &DeploymentView,
        threshold: u32,
        out: &Printer,
    ) -> Option<String> {
        let cluster = &env.settings.cluster;
        let read = async {
            let arns = env.ecs.stopped_task_arns(cluster, &d.id).await?;
            let new: Vec<String> = arns
                .into_iter()
                .filter(|a| !self.stopped.contains_key(a))
                .take(100)
                .collect();
            env.ecs.describe_tasks(cluster, new).await
        };
        match read.await {
            Ok(tasks) => {
                // A task still stopping is described again until it is STOPPED.
                for t in tasks
                    .into_iter()
                    .filter(|t| t.last_status.as_deref() == Some("STOPPED"))
                {
                    self.stopped.insert(t.task.clone(), stops::Stopped::of(t));
                }
            }
            Err(e) if !self.blind => {
                self.blind = true;
                out.warn(format!(
                    "cannot read the stopped tasks of deployment {} ({}): the wait cannot end early when its tasks cannot start",
                    d.id,
                    e.message()
                ));
            }
            Err(_) => {}
        }
        let seen: Vec<stops::Stopped> = self.stopped.values().cloned().collect();
        self.failing = d.failed_tasks > 0 || seen.iter().any(|s| !s.classification.heals);
        stops::cannot_start(d, &seen, threshold)
    }
}

/// UpdateService (force a new deployment, onto `target` when given) and the wait for the
/// deployment it started, both within the policy's timeout: an AWS that does not answer ends
/// the wait at its deadline, like a rollout that does not complete. `previous` is the task
/// definition the service runs now. Returns the deployment too, when it was started.
pub async fn redeploy_and_wait(
    env: &Env,
    target: Option<&str>,
    previous: &str,
    policy: &WaitPolicy,
    out: &Printer,
) -> Result<(Option<Started>, std::result::Result<Deployed, NotCompleted>)> {
    let deadline = retry::deadline_in(policy.timeout);
    match tokio::time::timeout_at(deadline, redeploy(env, target, previous)).await {
        Ok(updated) => {
            let started = updated?;
            out.status(format!(
                "service {}: deployment {} started",
                env.settings.service, started.deployment_id
            ));
            let waited = wait_until(env, &started, deadline, policy, out).await?;
            Ok((Some(started), waited))
        }
        Err(_) => Ok((
            None,
            Err(NotCompleted::TimedOut {
                after: policy.timeout,
                last: "ECS did not answer UpdateService within the wait".to_owned(),
            }),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ecs::DeploymentView;

    fn view(state: &str, running: i32) -> ServiceView {
        ServiceView {
            task_definition: "td:2".into(),
            desired: 1,
            running,
            deployments: vec![
                DeploymentView {
                    id: "new".into(),
                    status: "PRIMARY".into(),
                    rollout_state: Some(state.into()),
                    rollout_state_reason: Some("why".into()),
                    running,
                    desired: 1,
                    task_definition: "td:2".into(),
                    ..Default::default()
                },
                DeploymentView {
                    id: "old".into(),
                    status: "ACTIVE".into(),
                    rollout_state: Some("COMPLETED".into()),
                    rollout_state_reason: None,
                    running: 1,
                    desired: 1,
                    task_definition: "td:1".into(),
                    ..Default::default()
                },
            ],
            events: Vec::new(),
            ..ServiceView::default()
        }
    }

    #[test]
    fn the_progress_line_says_where_the_rollout_is() {
        assert_eq!(
            summary(&view("IN_PROGRESS", 0)),
            "deployments: 2 (primary IN_PROGRESS), running 0/1"
        );
    }

    #[test]
    fn polling_backs_off_to_eight_times_the_start() {
        let s = Duration::from_secs(2);
        assert_eq!(poll_interval(s, 0), s);
        assert_eq!(poll_interval(s, 9), s);
        assert_eq!(poll_interval(s, 10), s * 2);
        assert_eq!(poll_interval(s, 15), s * 4);
        assert_eq!(poll_interval(s, 20), s * 8);
        assert_eq!(poll_interval(s, 500), s * 8);
    }
}
