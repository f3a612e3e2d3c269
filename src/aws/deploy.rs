//! Redeploying the ECS service and waiting for it: UpdateService (forceNewDeployment), then
//! DescribeServices until the PRIMARY deployment's rollout is COMPLETED and running equals
//! desired, polling every 2 s at first and backing off, with a progress line. A FAILED rollout
//! or a timeout rolls the service back to the task definition it had before.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::service::{self, ServiceView};
use super::{Env, describe};
use crate::error::{Error, Result};
use crate::output;

#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    /// How long to wait for the deployment to complete: 90s, 15m, 1h (a bare number is seconds)
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub wait_timeout: Duration,
    /// On a failed or timed-out deployment, leave the service as it is instead of rolling back
    #[arg(long)]
    pub no_rollback: bool,
    /// First polling interval in milliseconds (tests make it short)
    #[arg(
        long,
        hide = true,
        env = "STRIPE_OPS_ECS_POLL_MS",
        default_value_t = 2000
    )]
    pub poll_ms: u64,
}

/// `90`, `90s`, `15m`, `1h`, `500ms`.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 15m or 1h"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!(
            "{text:?}: unknown unit {unit:?} (use ms, s, m or h)"
        )),
    }
}

/// Where a deployment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Completed,
    Failed(String),
    InProgress,
}

/// Pure: completed when the PRIMARY deployment's rollout is COMPLETED and the service runs as
/// many tasks as it wants; failed when that rollout is FAILED.
pub fn assess(view: &ServiceView) -> Progress {
    let Some(primary) = view.primary() else {
        return Progress::InProgress;
    };
    match primary.rollout_state.as_deref() {
        Some("FAILED") => Progress::Failed(
            primary
                .rollout_state_reason
                .clone()
                .unwrap_or_else(|| "rollout FAILED".to_owned()),
        ),
        Some("COMPLETED") if view.running == view.desired && primary.running == primary.desired => {
            Progress::Completed
        }
        _ => Progress::InProgress,
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
    Failed(String),
    TimedOut { after: Duration, last: String },
}

impl std::fmt::Display for NotCompleted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotCompleted::Failed(reason) => write!(f, "the rollout FAILED: {reason}"),
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

/// UpdateService with forceNewDeployment, and `task_definition` when given.
pub async fn redeploy(env: &Env, task_definition: Option<&str>) -> Result<()> {
    let s = &env.settings;
    env.ecs
        .update_service()
        .cluster(&s.cluster)
        .service(&s.service)
        .force_new_deployment(true)
        .set_task_definition(task_definition.map(str::to_owned))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            Error::external(format!(
                "cannot update ECS service {}: {}",
                s.service,
                describe(&e)
            ))
        })
}

/// Points the service at `task_definition` without forcing or waiting (`--skip-restart`).
pub async fn point_at(env: &Env, task_definition: &str) -> Result<()> {
    let s = &env.settings;
    env.ecs
        .update_service()
        .cluster(&s.cluster)
        .service(&s.service)
        .task_definition(task_definition)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            Error::external(format!(
                "cannot point ECS service {} at {task_definition}: {}",
                s.service,
                describe(&e)
            ))
        })
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

/// Polls until the deployment completes, fails, or `args.wait_timeout` passes. AWS errors are
/// returned as errors (exit 3); a failed or unfinished rollout as `Ok(Err(..))`.
pub async fn wait(
    env: &Env,
    args: &WaitArgs,
) -> Result<std::result::Result<Deployed, NotCompleted>> {
    let started = Instant::now();
    let bar = output::spinner(format!("waiting for {} to deploy", env.settings.service));
    let initial = Duration::from_millis(args.poll_ms.max(1));
    let mut attempt = 0;
    let outcome = loop {
        let view = service::service(env).await?;
        let elapsed = started.elapsed();
        bar.set_message(format!(
            "{}, elapsed {}s",
            summary(&view),
            elapsed.as_secs()
        ));
        match assess(&view) {
            Progress::Completed => {
                break Ok(Deployed {
                    task_definition: view.task_definition.clone(),
                    deployment_id: view.primary().map(|p| p.id.clone()).unwrap_or_default(),
                    seconds: elapsed.as_secs_f64(),
                });
            }
            Progress::Failed(reason) => break Err(NotCompleted::Failed(reason)),
            Progress::InProgress => {}
        }
        if elapsed >= args.wait_timeout {
            break Err(NotCompleted::TimedOut {
                after: args.wait_timeout,
                last: summary(&view),
            });
        }
        let pause = poll_interval(initial, attempt).min(args.wait_timeout - elapsed);
        tokio::time::sleep(pause.max(Duration::from_millis(1))).await;
        attempt += 1;
    };
    bar.finish_and_clear();
    Ok(outcome)
}

/// Redeploys onto `target` (or the current task definition) and waits. When the deployment
/// fails or times out, points the service back at `previous` (unless `--no-rollback`) and
/// returns exit 3 saying what happened.
pub async fn deploy_and_wait(
    env: &Env,
    target: Option<&str>,
    previous: &str,
    args: &WaitArgs,
) -> Result<Deployed> {
    redeploy(env, target).await?;
    let not_completed = match wait(env, args).await? {
        Ok(done) => return Ok(done),
        Err(n) => n,
    };
    let service = &env.settings.service;
    if args.no_rollback {
        return Err(Error::external(format!(
            "deploying {service}: {not_completed}; left as it is (--no-rollback). To roll back: {}",
            redeploy_command(env, Some(previous))
        )));
    }
    match redeploy(env, Some(previous)).await {
        Ok(()) => Err(Error::external(format!(
            "deploying {service}: {not_completed}; rolled the service back to {previous} (a new deployment of it has started)"
        ))),
        Err(e) => Err(Error::external(format!(
            "deploying {service}: {not_completed}; the rollback failed too ({}). To roll back by hand: {}",
            e.message(),
            redeploy_command(env, Some(previous))
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::service::DeploymentView;

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
                },
                DeploymentView {
                    id: "old".into(),
                    status: "ACTIVE".into(),
                    rollout_state: Some("COMPLETED".into()),
                    rollout_state_reason: None,
                    running: 1,
                    desired: 1,
                    task_definition: "td:1".into(),
                },
            ],
        }
    }

    #[test]
    fn only_a_completed_primary_at_full_strength_is_done() {
        assert_eq!(assess(&view("COMPLETED", 1)), Progress::Completed);
        assert_eq!(assess(&view("COMPLETED", 0)), Progress::InProgress);
        assert_eq!(assess(&view("IN_PROGRESS", 1)), Progress::InProgress);
        assert_eq!(assess(&view("FAILED", 0)), Progress::Failed("why".into()));
        let mut none = view("COMPLETED", 1);
        none.deployments.retain(|d| d.status != "PRIMARY");
        assert_eq!(assess(&none), Progress::InProgress);
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

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
