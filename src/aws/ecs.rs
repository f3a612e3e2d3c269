//! ECS, through the official SDK: DescribeServices, ListTasks and DescribeTasks (the stopped
//! tasks of a deployment), DescribeTaskDefinition, RegisterTaskDefinition and UpdateService, with
//! their answers as plain views and their failures as errors that end in exit 3. Field names are
//! those of the ECS API reference (`Deployment.failedTasks`, `Task.stopCode`,
//! `Container.exitCode`, ...).

use aws_config::SdkConfig;
use aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionInputBuilder;
use aws_sdk_ecs::types::{Tag, TaskDefinition, TaskDefinitionField};
use serde::Serialize;

use super::describe;
use crate::error::{Error, Result};

/// An ECS client for one region.
#[derive(Clone)]
pub struct Ecs {
    client: aws_sdk_ecs::Client,
    region: String,
}

/// One deployment of the service, as ECS reports it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DeploymentView {
    pub id: String,
    pub status: String,
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
    pub running: i32,
    pub desired: i32,
    pub pending: i32,
    /// `failedTasks`: "the number of consecutively failed tasks in the deployment" (a task that
    /// cannot be launched, never reaches RUNNING, or fails a health check and is stopped); ECS
    /// resets it to zero once the deployment has a task running successfully.
    pub failed_tasks: i32,
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

impl Ecs {
    pub fn new(config: &SdkConfig, region: &str) -> Ecs {
        Ecs {
            client: aws_sdk_ecs::Client::new(config),
            region: region.to_owned(),
        }
    }

    /// DescribeServices for `service` in `cluster`; one that does not exist (or is INACTIVE) is
    /// an error.
    pub async fn service(&self, cluster: &str, service: &str) -> Result<ServiceView> {
        let out = self
            .client
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| {
                Error::external(format!(
                    "cannot describe ECS service {service} in cluster {cluster}: {}",
                    describe(&e)
                ))
            })?;
        let svc = out
            .services()
            .iter()
            .find(|x| x.service_name() == Some(service) && x.status() != Some("INACTIVE"))
            .ok_or_else(|| {
                Error::external(format!(
                    "ECS service {service} not found in cluster {cluster} (region {})",
                    self.region
                ))
            })?;
        Ok(view_of(svc))
    }

    /// The stopped tasks a deployment started: ECS records the deployment id as the task's
    /// `startedBy` (ListTasks' `startedBy` filter), newest first, at most `limit`.
    pub async fn stopped_tasks(
        &self,
        cluster: &str,
        deployment: &str,
        limit: usize,
    ) -> Result<Vec<StoppedTask>> {
        let mut arns = self.stopped_task_arns(cluster, deployment).await?;
        arns.truncate(limit);
        let mut tasks = self.describe_tasks(cluster, arns).await?;
        tasks.sort_by_key(|t| std::cmp::Reverse(t.stopped_at));
        Ok(tasks)
    }

    /// ListTasks: the ARNs of the tasks `deployment` started that are stopped or stopping
    /// (`desiredStatus` STOPPED; ECS lists recently stopped tasks only), the first page (100).
    pub async fn stopped_task_arns(&self, cluster: &str, deployment: &str) -> Result<Vec<String>> {
        let out = self
            .client
            .list_tasks()
            .cluster(cluster)
            .started_by(deployment)
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
            .send()
            .await
            .map_err(|e| {
                Error::external(format!("cannot list the stopped tasks: {}", describe(&e)))
            })?;
        Ok(out.task_arns().to_vec())
    }

    /// DescribeTasks of `arns` (at most 100, as ECS takes them), in ECS's order.
    pub async fn describe_tasks(
        &self,
        cluster: &str,
        arns: Vec<String>,
    ) -> Result<Vec<StoppedTask>> {
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        let described = self
            .client
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(arns))
            .send()
            .await
            .map_err(|e| {
                Error::external(format!(
                    "cannot describe the stopped tasks: {}",
                    describe(&e)
                ))
            })?;
        Ok(described.tasks().iter().map(stopped_task).collect())
    }

    /// DescribeTaskDefinition with its tags.
    pub async fn task_definition(&self, arn: &str) -> Result<(TaskDefinition, Vec<Tag>)> {
        let out = self
            .client
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

    /// RegisterTaskDefinition; returns the new revision's ARN.
    pub async fn register(&self, input: RegisterTaskDefinitionInputBuilder) -> Result<String> {
        let family = input.get_family().clone().unwrap_or_default();
        let out = input.send_with(&self.client).await.map_err(|e| {
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

    /// UpdateService with forceNewDeployment, onto `task_definition` when given; returns the
    /// service as ECS answered.
    pub async fn force_new_deployment(
        &self,
        cluster: &str,
        service: &str,
        task_definition: Option<&str>,
    ) -> Result<ServiceView> {
        let out = self
            .client
            .update_service()
            .cluster(cluster)
            .service(service)
            .force_new_deployment(true)
            .set_task_definition(task_definition.map(str::to_owned))
            .send()
            .await
            .map_err(|e| {
                Error::external(format!(
                    "cannot update ECS service {service}: {}",
                    describe(&e)
                ))
            })?;
        Ok(out.service().map(view_of).unwrap_or_default())
    }

    /// UpdateService onto `task_definition`, without forcing a deployment.
    pub async fn point_at(
        &self,
        cluster: &str,
        service: &str,
        task_definition: &str,
    ) -> Result<()> {
        self.client
            .update_service()
            .cluster(cluster)
            .service(service)
            .task_definition(task_definition)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::external(format!(
                    "cannot point ECS service {service} at {task_definition}: {}",
                    describe(&e)
                ))
            })
    }
}

/// The service as ECS described (or updated) it.
fn view_of(svc: &aws_sdk_ecs::types::Service) -> ServiceView {
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
                pending: d.pending_count(),
                failed_tasks: d.failed_tasks(),
                task_definition: d.task_definition().unwrap_or_default().to_owned(),
            })
            .collect(),
        events: svc
            .events()
            .iter()
            .filter_map(|e| {
                let at = super::date(e.created_at()).unwrap_or_default();
                e.message().map(|m| format!("{at} {m}").trim().to_owned())
            })
            .collect(),
    }
}

/// A task of a deployment that stopped (or is stopping), and why, as DescribeTasks reports it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StoppedTask {
    pub task: String,
    pub task_definition: String,
    /// `lastStatus`: STOPPED once it is, DEACTIVATING or STOPPING on the way.
    pub last_status: Option<String>,
    /// `healthStatus` of the task (HEALTHY, UNHEALTHY, UNKNOWN) when it stopped.
    pub health_status: Option<String>,
    /// It reached RUNNING (`startedAt` is set).
    pub started: bool,
    pub stopped_reason: Option<String>,
    pub stop_code: Option<String>,
    pub containers: Vec<StoppedContainer>,
    /// `stoppedAt`, seconds since the epoch (ordering only).
    #[serde(skip)]
    pub stopped_at: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StoppedContainer {
    pub name: String,
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    pub health_status: Option<String>,
    /// The Docker container id: the awslogs stream's name when the task definition sets no
    /// stream prefix.
    #[serde(skip)]
    pub runtime_id: Option<String>,
}

fn stopped_task(t: &aws_sdk_ecs::types::Task) -> StoppedTask {
    StoppedTask {
        task: t.task_arn().unwrap_or_default().to_owned(),
        task_definition: t.task_definition_arn().unwrap_or_default().to_owned(),
        last_status: t.last_status().map(str::to_owned),
        health_status: t.health_status().map(|h| h.as_str().to_owned()),
        started: t.started_at().is_some(),
        stopped_reason: t.stopped_reason().map(str::to_owned),
        stop_code: t.stop_code().map(|c| c.as_str().to_owned()),
        containers: t
            .containers()
            .iter()
            .map(|c| StoppedContainer {
                name: c.name().unwrap_or_default().to_owned(),
                reason: c.reason().map(str::to_owned),
                exit_code: c.exit_code(),
                health_status: c.health_status().map(|h| h.as_str().to_owned()),
                runtime_id: c.runtime_id().map(str::to_owned),
            })
            .collect(),
        stopped_at: t.stopped_at().map(|d| d.secs()),
    }
}
