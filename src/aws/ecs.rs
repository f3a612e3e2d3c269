//! ECS reads and writes: the service, its task definition, registering a patched revision, and
//! the public base URL the app advertises.

use aws_sdk_ecs::types::{ContainerDefinition, Tag, TaskDefinition, TaskDefinitionField};
use serde::Serialize;

use super::{Env, describe, taskdef};
use crate::error::{Error, Result};

/// One deployment of the service, as ECS reports it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DeploymentView {
    pub id: String,
    pub status: String,
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub running: i32,
    pub desired: i32,
    pub task_definition: String,
}

/// The service as DescribeServices reports it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ServiceView {
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub deployments: Vec<DeploymentView>,
    /// The service's events, newest first, as ECS keeps them.
    pub events: Vec<String>,
    /// `deploymentController.type`: ECS (rolling update, the default), CODE_DEPLOY or EXTERNAL.
    pub controller: String,
    /// `deploymentConfiguration.deploymentCircuitBreaker`, when set.
    pub circuit_breaker: Option<CircuitBreaker>,
    /// `deploymentConfiguration.alarms`, when set.
    pub alarms: Option<Alarms>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Alarms {
    pub names: Vec<String>,
    pub enable: bool,
    pub rollback: bool,
}

impl ServiceView {
    /// The service's deployment settings in one line, for the plan.
    pub fn deployment_settings(&self) -> String {
        let breaker = match self.circuit_breaker {
            Some(c) if c.enable => format!(
                "deployment circuit breaker on (rollback {})",
                if c.rollback { "on" } else { "off" }
            ),
            _ => "no deployment circuit breaker".to_owned(),
        };
        let alarms = match &self.alarms {
            Some(a) if a.enable => format!(
                "deployment alarms {} (rollback {})",
                a.names.join(", "),
                if a.rollback { "on" } else { "off" }
            ),
            _ => "no deployment alarms".to_owned(),
        };
        format!(
            "deployment controller {}, {breaker}, {alarms}, desired count {}",
            self.controller, self.desired
        )
    }
}

impl ServiceView {
    pub fn primary(&self) -> Option<&DeploymentView> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }
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

/// DescribeServices for the environment's service.
pub async fn service(env: &Env) -> Result<ServiceView> {
    let s = &env.settings;
    let out = env
        .ecs
        .describe_services()
        .cluster(&s.cluster)
        .services(&s.service)
        .send()
        .await
        .map_err(|e| {
            Error::external(format!(
                "cannot describe ECS service {} in cluster {}: {}",
                s.service,
                s.cluster,
                describe(&e)
            ))
        })?;
    let svc = out
        .services()
        .iter()
        .find(|x| x.service_name() == Some(s.service.as_str()) && x.status() != Some("INACTIVE"))
        .ok_or_else(|| {
            Error::external(format!(
                "ECS service {} not found in cluster {} (region {})",
                s.service, s.cluster, s.region
            ))
        })?;
    Ok(view_of(svc))
}

/// The service as ECS described (or updated) it.
pub fn view_of(svc: &aws_sdk_ecs::types::Service) -> ServiceView {
    let config = svc.deployment_configuration();
    ServiceView {
        controller: svc
            .deployment_controller()
            .map_or("ECS", |c| c.r#type().as_str())
            .to_owned(),
        circuit_breaker: config
            .and_then(|c| c.deployment_circuit_breaker())
            .map(|b| CircuitBreaker {
                enable: b.enable(),
                rollback: b.rollback(),
            }),
        alarms: config.and_then(|c| c.alarms()).map(|a| Alarms {
            names: a.alarm_names().to_vec(),
            enable: a.enable(),
            rollback: a.rollback(),
        }),
        task_definition: svc.task_definition().unwrap_or_default().to_owned(),
        desired: svc.desired_count(),
        running: svc.running_count(),
        deployments: svc
            .deployments()
            .iter()
            .map(|d| DeploymentView {
                id: d.id().unwrap_or_default().to_owned(),
                status: d.status().unwrap_or_default().to_owned(),
                rollout_state: d.rollout_state().map(|r| r.as_str().to_owned()),
                rollout_state_reason: d.rollout_state_reason().map(str::to_owned),
                running: d.running_count(),
                desired: d.desired_count(),
                task_definition: d.task_definition().unwrap_or_default().to_owned(),
            })
            .collect(),
        events: svc
            .events()
            .iter()
            .filter_map(|e| {
                let at = super::secrets::date(e.created_at()).unwrap_or_default();
                e.message().map(|m| format!("{at} {m}").trim().to_owned())
            })
            .collect(),
    }
}

/// A task of a deployment that stopped, and why, as DescribeTasks reports it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StoppedTask {
    pub task: String,
    pub stopped_reason: Option<String>,
    pub stop_code: Option<String>,
    pub containers: Vec<StoppedContainer>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StoppedContainer {
    pub name: String,
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
}

/// The stopped tasks a deployment started: ECS records the deployment id as the task's
/// `startedBy` (ListTasks' `startedBy` filter), newest first, at most `limit`.
pub async fn stopped_tasks(env: &Env, deployment: &str, limit: usize) -> Result<Vec<StoppedTask>> {
    let s = &env.settings;
    let failed = |e: String| Error::external(format!("cannot list the stopped tasks: {e}"));
    let arns = env
        .ecs
        .list_tasks()
        .cluster(&s.cluster)
        .started_by(deployment)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
        .map_err(|e| failed(describe(&e)))?
        .task_arns()
        .iter()
        .take(limit)
        .cloned()
        .collect::<Vec<_>>();
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let described = env
        .ecs
        .describe_tasks()
        .cluster(&s.cluster)
        .set_tasks(Some(arns))
        .send()
        .await
        .map_err(|e| failed(describe(&e)))?;
    let mut tasks: Vec<_> = described.tasks().to_vec();
    tasks.sort_by_key(|t| std::cmp::Reverse(t.stopped_at().map(|d| d.secs())));
    Ok(tasks
        .iter()
        .map(|t| StoppedTask {
            task: t.task_arn().unwrap_or_default().to_owned(),
            stopped_reason: t.stopped_reason().map(str::to_owned),
            stop_code: t.stop_code().map(|c| c.as_str().to_owned()),
            containers: t
                .containers()
                .iter()
                .map(|c| StoppedContainer {
                    name: c.name().unwrap_or_default().to_owned(),
                    reason: c.reason().map(str::to_owned),
                    exit_code: c.exit_code(),
                })
                .collect(),
        })
        .collect())
}

/// DescribeTaskDefinition with its tags.
pub async fn task_definition(env: &Env, arn: &str) -> Result<(TaskDefinition, Vec<Tag>)> {
    let out = env
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| {
            Error::external(format!(
                "cannot describe task definition {arn}: {}",
                describe(&e)
            ))
        })?;
    let tags = out.tags().to_vec();
    let td = out
        .task_definition
        .ok_or_else(|| Error::external(format!("task definition {arn} came back empty")))?;
    Ok((td, tags))
}

/// Registers a new revision of `td` with `containers`; returns its ARN.
pub async fn register(
    env: &Env,
    td: &TaskDefinition,
    tags: &[Tag],
    containers: Vec<ContainerDefinition>,
) -> Result<String> {
    let family = td.family().unwrap_or_default().to_owned();
    let out = taskdef::register_input(td, tags, containers)
        .send_with(&env.ecs)
        .await
        .map_err(|e| {
            Error::external(format!(
                "cannot register a new revision of task definition family {family}: {}",
                describe(&e)
            ))
        })?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_owned)
        .ok_or_else(|| Error::external("RegisterTaskDefinition answered without an ARN"))
}

/// The public base URL: `--base-url` / the config, else the `PUBLIC_BASE_URL` environment
/// entry of the container in the service's current task definition. Exit 2 when neither.
pub async fn public_base_url(env: &Env) -> Result<String> {
    if let Some(url) = &env.settings.base_url {
        return Ok(url.clone());
    }
    let svc = service(env).await?;
    let (td, _) = task_definition(env, &svc.task_definition).await?;
    base_url_of(&td, &env.settings.container)
}

/// `PUBLIC_BASE_URL` of `container` in `td`, without a trailing slash.
pub fn base_url_of(td: &TaskDefinition, container: &str) -> Result<String> {
    taskdef::env_value(td.container_definitions(), container, "PUBLIC_BASE_URL")?
        .map(|u| u.trim_end_matches('/').to_owned())
        .ok_or_else(|| {
            Error::usage(format!(
                "no base URL: pass --base-url, set base_url in stripe-ops.toml, or give container {container:?} of {} a PUBLIC_BASE_URL environment entry",
                td.task_definition_arn().unwrap_or("the task definition")
            ))
        })
}
