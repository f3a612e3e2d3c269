//! Why a task of our deployment stopped, in plain words, and whether starting it again can heal
//! it (pure); and the judgement that ends a wait early: the new tasks cannot start.
//!
//! The reasons are read as DescribeTasks gives them (`stoppedReason`, `stopCode`,
//! `containers[].reason` and `exitCode`, `healthStatus`; the ECS API reference) and as ECS words
//! them ("Amazon ECS stopped task error messages" and the re:Post article on
//! `ResourceInitializationError: unable to pull secrets or registry auth`). A stop that retrying
//! cannot heal is what the deployment circuit breaker counts as a failed task ("How the Amazon
//! ECS deployment circuit breaker detects failures": a task that does not reach RUNNING, or fails
//! a health check and is stopped), plus an essential container that exits before the task was
//! ever healthy (an out-of-memory kill on start among them). Stops by the scheduler, a user,
//! Spot or maintenance, and anything not recognised, heal: they never end a wait early.
//!
//! Failing fast: `threshold` such stops of our deployment, and none of its tasks running, as ECS
//! itself counts that: its `runningCount` is 0, or its `failedTasks` (consecutive failures, reset
//! to zero once a task of the deployment runs successfully) has reached the threshold too, which
//! covers tasks that reach RUNNING and then fail their health checks. The default threshold, 3,
//! is the circuit breaker's minimum (`ServiceDeploymentCircuitBreaker.threshold`). A deployment
//! with tasks pending and none failed is never cut short.

use serde::Serialize;

use crate::aws::ecs::{DeploymentView, StoppedTask};

/// The default `--failed-tasks-threshold`.
pub const DEFAULT_THRESHOLD: u32 = 3;

/// What stopped a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The execution role may not read (or decrypt) a secret or parameter it injects.
    SecretAccessDenied,
    /// A secret or parameter the task definition names does not exist.
    SecretNotFound,
    /// The task cannot reach Secrets Manager, SSM, ECR or CloudWatch Logs.
    NetworkUnreachable,
    /// The awslogs log group does not exist.
    LogGroupMissing,
    /// Another `ResourceInitializationError`.
    ResourceInitialization,
    ImagePull,
    ContainerStart,
    OutOfMemory,
    /// An essential container exited.
    Exited,
    ContainerHealthCheck,
    LoadBalancerHealthCheck,
    /// The scheduler stopped it while scaling or replacing tasks.
    Scheduler,
    /// StopTask by a person or another tool.
    User,
    SpotInterruption,
    /// Its host was stopped, replaced or maintained.
    Infrastructure,
    Unknown,
}

/// A stop, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub kind: Kind,
    /// Starting the task again can heal it: it never ends a wait early.
    pub heals: bool,
    /// What happened and what to do.
    pub explanation: String,
    /// The container whose last log lines say more (an exit, an out-of-memory kill, a failing
    /// health check).
    #[serde(skip)]
    pub logs_of: Option<String>,
}

/// A stopped task with its classification and, when read, its container's last log lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stopped {
    #[serde(flatten)]
    pub task: StoppedTask,
    pub classification: Classification,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub last_log_lines: Vec<String>,
}

impl Stopped {
    pub fn of(task: StoppedTask) -> Stopped {
        Stopped {
            classification: classify(&task),
            task,
            last_log_lines: Vec::new(),
        }
    }

    /// The explanation, with the last log lines (the last three) when they were read.
    pub fn explained(&self) -> String {
        let e = &self.classification.explanation;
        if self.last_log_lines.is_empty() {
            return e.clone();
        }
        let tail: Vec<String> = self
            .last_log_lines
            .iter()
            .rev()
            .take(3)
            .rev()
            .map(|l| format!("\u{ab}{l}\u{bb}"))
            .collect();
        format!("{e}: its last log lines are {}", tail.join(" "))
    }
}

/// Characters of a reason quoted in an explanation.
const QUOTED: usize = 300;

/// Pure: why `t` stopped, and whether starting it again can heal it.
pub fn classify(t: &StoppedTask) -> Classification {
    let reason = t.stopped_reason.as_deref().unwrap_or_default();
    let stop_code = t.stop_code.as_deref().unwrap_or_default();
    let kind_of_error = reason.split(':').next().unwrap_or_default().trim();
    let oom = t.containers.iter().find(|c| {
        c.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("OutOfMemoryError"))
    });
    match kind_of_error {
        "ResourceInitializationError" => return resource_initialization(reason),
        "CannotPullContainerError" => return image_pull(reason),
        "CannotStartContainerError" | "CannotCreateContainerError" => {
            return permanent(
                Kind::ContainerStart,
                format!("the container cannot start: {}", quote(reason)),
                None,
            );
        }
        _ => {}
    }
    if let Some(c) = oom {
        return permanent(
            Kind::OutOfMemory,
            format!(
                "container {} ran out of memory ({}{}): give the task or the container more memory",
                c.name,
                c.reason.as_deref().unwrap_or("OutOfMemoryError"),
                c.exit_code
                    .map(|x| format!(", exit code {x}"))
                    .unwrap_or_default()
            ),
            Some(c.name.clone()),
        );
    }
    if reason.starts_with("Task failed container health checks") {
        let unhealthy: Vec<&str> = t
            .containers
            .iter()
            .filter(|c| c.health_status.as_deref() == Some("UNHEALTHY"))
            .map(|c| c.name.as_str())
            .collect();
        let which = if unhealthy.is_empty() {
            "a container's health check fails".to_owned()
        } else {
            format!(
                "the health check of container {} fails",
                unhealthy.join(", ")
            )
        };
        return permanent(
            Kind::ContainerHealthCheck,
            format!("{which} (Task failed container health checks)"),
            unhealthy.first().map(|c| (*c).to_owned()),
        );
    }
    if reason.starts_with("Task failed ELB health checks") {
        return permanent(
            Kind::LoadBalancerHealthCheck,
            format!(
                "the load balancer's health check fails ({}): the app must answer the target group's health check path on the container port in time (or the service needs a longer healthCheckGracePeriodSeconds)",
                quote(reason)
            ),
            None,
        );
    }
    if stop_code == "EssentialContainerExited"
        || reason.starts_with("Essential container in task exited")
    {
        return exited(t);
    }
    healing(stop_code, reason)
}

fn permanent(kind: Kind, explanation: String, logs_of: Option<String>) -> Classification {
    Classification {
        kind,
        heals: false,
        explanation,
        logs_of,
    }
}

/// `ResourceInitializationError`: the secrets, the registry's credentials, the log driver or
/// the network could not be set up before any container started.
fn resource_initialization(reason: &str) -> Classification {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("accessdenied") || lower.contains("not authorized") {
        return permanent(Kind::SecretAccessDenied, access_denied(reason), None);
    }
    if lower.contains("resourcenotfoundexception") && lower.contains("log group") {
        return permanent(
            Kind::LogGroupMissing,
            format!(
                "the awslogs log group does not exist ({}): create it, or set awslogs-create-group with logs:CreateLogGroup for the execution role",
                quote(reason)
            ),
            None,
        );
    }
    if lower.contains("resourcenotfoundexception")
        || lower.contains("parameternotfound")
        || lower.contains("invalid ssm parameters")
        || lower.contains("can't find the specified secret")
    {
        return permanent(
            Kind::SecretNotFound,
            format!(
                "a secret or parameter the task definition injects does not exist: {}",
                quote(reason)
            ),
            None,
        );
    }
    if unreachable(&lower) {
        return permanent(Kind::NetworkUnreachable, network(reason), None);
    }
    permanent(
        Kind::ResourceInitialization,
        format!("the task could not be set up: {}", quote(reason)),
        None,
    )
}

/// Errors of a network path that is not there (ECS: "Please check your task network
/// configuration").
fn unreachable(lower: &str) -> bool {
    [
        "i/o timeout",
        "dial tcp",
        "context deadline exceeded",
        "no such host",
        "connection refused",
        "signal: killed",
        "send request failed",
        "network configuration",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

fn network(reason: &str) -> String {
    let lower = reason.to_ascii_lowercase();
    let what = if lower.contains("ecr") || lower.contains("registry") && !lower.contains("asm") {
        "the image registry (ECR)"
    } else if lower.contains("ssm") {
        "SSM Parameter Store"
    } else if lower.contains("asm") || lower.contains("secretsmanager") {
        "Secrets Manager"
    } else if lower.contains("logs") {
        "CloudWatch Logs"
    } else {
        "the AWS services it needs to start"
    };
    format!(
        "the task cannot reach {what}: its subnets need a route there (a public IP with an internet gateway, a NAT gateway, or VPC endpoints) and its security group must allow outbound HTTPS ({})",
        quote(reason)
    )
}

/// The AccessDenied of a secret or parameter read: who may not do what on which resource, and
/// the grant that fixes it (the role, action and resource as IAM's message names them).
fn access_denied(reason: &str) -> String {
    let role = reason
        .split("assumed-role/")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .map(|r| format!("the execution role {r}"))
        .unwrap_or_else(|| "the execution role".to_owned());
    let denied = reason
        .split("not authorized to perform: ")
        .nth(1)
        .map(|rest| {
            let action = rest.split_whitespace().next().unwrap_or_default();
            let resource = rest
                .split("on resource: ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("the resource");
            (action.to_owned(), resource.to_owned())
        });
    match denied {
        Some((action, resource)) if action.starts_with("kms:") => format!(
            "{role} cannot decrypt with key {resource}: grant {action} on the key (in the role's policy and the key policy)"
        ),
        Some((action, resource)) if action.starts_with("ssm:") => {
            format!("{role} cannot read parameter {resource}: grant {action} on its ARN")
        }
        Some((action, resource)) => {
            format!("{role} cannot read secret {resource}: grant {action} on its ARN")
        }
        None if reason.contains("KMS") => format!(
            "{role} cannot decrypt a secret it injects: grant kms:Decrypt on the secret's customer-managed key ({})",
            quote(reason)
        ),
        None => format!(
            "{role} cannot read a secret it injects: grant secretsmanager:GetSecretValue (or ssm:GetParameters) on it, and kms:Decrypt on a customer-managed key ({})",
            quote(reason)
        ),
    }
}

fn image_pull(reason: &str) -> Classification {
    let lower = reason.to_ascii_lowercase();
    let why = if lower.contains("not found") || lower.contains("manifest unknown") {
        "it does not exist (the repository or the tag is wrong)".to_owned()
    } else if lower.contains("toomanyrequests") || lower.contains("rate limit") {
        "the registry limits pulls (toomanyrequests): use an authenticated registry or a pull-through cache".to_owned()
    } else if lower.contains("denied")
        || lower.contains("unauthorized")
        || lower.contains("403")
        || lower.contains("not authorized")
    {
        "access is denied: the execution role needs ecr:GetAuthorizationToken, ecr:BatchGetImage and ecr:GetDownloadUrlForLayer (or the registry's credentials are wrong)".to_owned()
    } else if unreachable(&lower) {
        return permanent(Kind::NetworkUnreachable, network(reason), None);
    } else {
        "see the reason".to_owned()
    };
    permanent(
        Kind::ImagePull,
        format!("the image cannot be pulled: {why} ({})", quote(reason)),
        None,
    )
}

/// An essential container exited: an exit before the task was ever healthy does not heal.
fn exited(t: &StoppedTask) -> Classification {
    let exited = t
        .containers
        .iter()
        .filter(|c| c.exit_code.is_some())
        .max_by_key(|c| c.exit_code != Some(0));
    let Some(c) = exited else {
        return permanent(
            Kind::Exited,
            format!(
                "an essential container exited ({})",
                quote(t.stopped_reason.as_deref().unwrap_or_default())
            ),
            None,
        );
    };
    let code = c.exit_code.unwrap_or_default();
    let explanation = match code {
        0 => format!(
            "container {} exits with code 0 right away: an essential container must keep running",
            c.name
        ),
        _ => format!("container {} exits with code {code}", c.name),
    };
    Classification {
        kind: Kind::Exited,
        // It had been healthy: a crash later on may be one a new task does not repeat.
        heals: t.health_status.as_deref() == Some("HEALTHY"),
        explanation,
        logs_of: Some(c.name.clone()),
    }
}

/// Stops a new task may not repeat: the scheduler's, a user's, Spot's, the infrastructure's, and
/// whatever is not recognised.
fn healing(stop_code: &str, reason: &str) -> Classification {
    let (kind, what) = match stop_code {
        "ServiceSchedulerInitiated" => (
            Kind::Scheduler,
            "stopped by the ECS scheduler while scaling or replacing tasks",
        ),
        "UserInitiated" => (Kind::User, "stopped by a person or another tool (StopTask)"),
        "SpotInterruption" => (Kind::SpotInterruption, "Spot capacity was reclaimed"),
        "TerminationNotice" | "InfrastructureHealth" => (
            Kind::Infrastructure,
            "its host was stopped, replaced or maintained by AWS",
        ),
        _ => (Kind::Unknown, "stopped"),
    };
    Classification {
        kind,
        heals: true,
        explanation: if reason.is_empty() {
            what.to_owned()
        } else {
            format!("{what} ({})", quote(reason))
        },
        logs_of: None,
    }
}

/// A reason, bounded, for an explanation.
fn quote(reason: &str) -> String {
    crate::http::excerpt(reason, QUOTED)
}

/// Pure: the message that ends the wait when the new tasks cannot start (see the module note),
/// or `None` while the deployment may still come up. `stops` are our deployment's.
pub fn cannot_start(d: &DeploymentView, stops: &[Stopped], threshold: u32) -> Option<String> {
    if threshold == 0 {
        return None;
    }
    let failed: Vec<&Stopped> = stops.iter().filter(|s| !s.classification.heals).collect();
    let threshold_i = i32::try_from(threshold).unwrap_or(i32::MAX);
    let none_running = d.running == 0 || d.failed_tasks >= threshold_i;
    if failed.len() < threshold as usize || !none_running {
        return None;
    }
    let mut reasons: Vec<String> = Vec::new();
    for s in &failed {
        let r = s.classification.explanation.clone();
        if !reasons.contains(&r) {
            reasons.push(r);
        }
    }
    Some(format!(
        "the new tasks cannot start: {} tasks of deployment {} stopped for a reason a new task would repeat, and none of its tasks runs (running {}, failedTasks {}; --failed-tasks-threshold {threshold}): {}",
        failed.len(),
        d.id,
        d.running,
        d.failed_tasks,
        reasons.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ecs::StoppedContainer;
    use serde_json::{Value, json};

    const ACCOUNT: &str = "123456789012";

    /// A task of a DescribeTasks answer, read by the field names the ECS API reference gives
    /// (`Task`, `Container`), as `aws::ecs` reads the SDK's.
    fn task(t: Value) -> StoppedTask {
        let s = |v: &Value| v.as_str().map(str::to_owned);
        StoppedTask {
            task: s(&t["taskArn"]).unwrap_or_default(),
            task_definition: s(&t["taskDefinitionArn"]).unwrap_or_default(),
            last_status: s(&t["lastStatus"]),
            health_status: s(&t["healthStatus"]),
            started: t["startedAt"].is_number(),
            stopped_reason: s(&t["stoppedReason"]),
            stop_code: s(&t["stopCode"]),
            containers: t["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| StoppedContainer {
                    name: s(&c["name"]).unwrap_or_default(),
                    reason: s(&c["reason"]),
                    exit_code: c["exitCode"].as_i64().map(|x| x as i32),
                    health_status: s(&c["healthStatus"]),
                    runtime_id: s(&c["runtimeId"]),
                })
                .collect(),
            stopped_at: t["stoppedAt"].as_f64().map(|x| x as i64),
        }
    }

    /// A stopped Fargate task of deployment `ecs-svc/1`, as DescribeTasks answers, with the
    /// stop's own fields over it.
    fn stopped(id: &str, over: Value) -> StoppedTask {
        let mut t = json!({
            "taskArn": format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task/proofwork-staging-cluster/{id}"),
            "clusterArn": format!("arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/proofwork-staging-cluster"),
            "taskDefinitionArn": format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/proofwork-staging-api:2"),
            "group": "service:proofwork-staging-api",
            "startedBy": "ecs-svc/1",
            "launchType": "FARGATE",
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "healthStatus": "UNKNOWN",
            "createdAt": 1767225600.0,
            "stoppingAt": 1767225605.0,
            "stoppedAt": 1767225606.0,
            "containers": [{
                "containerArn": format!("arn:aws:ecs:us-east-1:{ACCOUNT}:container/proofwork-staging-cluster/{id}/c1"),
                "taskArn": format!("arn:aws:ecs:us-east-1:{ACCOUNT}:task/proofwork-staging-cluster/{id}"),
                "name": "api",
                "image": format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/app:2"),
                "lastStatus": "STOPPED",
                "healthStatus": "UNKNOWN",
                "cpu": "0"
            }]
        });
        for (k, v) in over.as_object().unwrap() {
            if k == "container" {
                for (ck, cv) in v.as_object().unwrap() {
                    t["containers"][0][ck] = cv.clone();
                }
            } else {
                t[k] = v.clone();
            }
        }
        task(t)
    }

    const SECRET_DENIED: &str = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/proofwork-staging-exec/8f2c0b6e4b7a4f5c is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:proofwork-staging/STRIPE_SECRET_KEY-AbCdEf because no identity-based policy allows the secretsmanager:GetSecretValue action status code: 400, request id: 5d0bd7e7-0d8c-4c4b-9c3c-0d6d1c0e8a11";

    fn denied(id: &str) -> StoppedTask {
        stopped(
            id,
            json!({"stopCode": "TaskFailedToStart", "stoppedReason": SECRET_DENIED}),
        )
    }

    #[test]
    fn a_secret_the_execution_role_cannot_read_is_named_with_the_grant() {
        let c = classify(&denied("a1"));
        assert_eq!(c.kind, Kind::SecretAccessDenied);
        assert!(!c.heals);
        assert_eq!(
            c.explanation,
            "the execution role proofwork-staging-exec cannot read secret arn:aws:secretsmanager:us-east-1:123456789012:secret:proofwork-staging/STRIPE_SECRET_KEY-AbCdEf: grant secretsmanager:GetSecretValue on its ARN"
        );
        let ssm = stopped(
            "a2",
            json!({"stopCode": "TaskFailedToStart", "stoppedReason": "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/exec/abc is not authorized to perform: ssm:GetParameters on resource: arn:aws:ssm:us-east-1:123456789012:parameter/app/stripe_key because no identity-based policy allows the ssm:GetParameters action"}),
        );
        assert_eq!(
            classify(&ssm).explanation,
            "the execution role exec cannot read parameter arn:aws:ssm:us-east-1:123456789012:parameter/app/stripe_key: grant ssm:GetParameters on its ARN"
        );
        let kms = stopped(
            "a3",
            json!({"stopCode": "TaskFailedToStart", "stoppedReason": "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf from secrets manager: AccessDeniedException: Access to KMS is not allowed"}),
        );
        let c = classify(&kms);
        assert_eq!(c.kind, Kind::SecretAccessDenied);
        assert!(
            c.explanation.starts_with(
                "the execution role cannot decrypt a secret it injects: grant kms:Decrypt"
            ),
            "{}",
            c.explanation
        );
    }

    #[test]
    fn missing_secrets_log_groups_and_networks_are_told_apart() {
        let case = |reason: &str| {
            classify(&stopped(
                "b",
                json!({"stopCode": "TaskFailedToStart", "stoppedReason": reason}),
            ))
        };
        let c = case(
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid ssm parameters: /app/stripe_key",
        );
        assert_eq!((c.kind, c.heals), (Kind::SecretNotFound, false));
        let c = case(
            "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist. : exit status 1",
        );
        assert_eq!(c.kind, Kind::LogGroupMissing);
        let c = case(
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve ecr registry auth: service call has been retried 3 time(s): RequestError: send request failed caused by: Post \"https://api.ecr.us-east-1.amazonaws.com/\": dial tcp 10.0.1.12:443: i/o timeout. Please check your task network configuration.",
        );
        assert_eq!(c.kind, Kind::NetworkUnreachable);
        assert!(
            c.explanation
                .starts_with("the task cannot reach the image registry (ECR)"),
            "{}",
            c.explanation
        );
        let c = case(
            "ResourceInitializationError: unable to pull secrets or registry auth: pull command failed: : signal: killed",
        );
        assert_eq!(c.kind, Kind::NetworkUnreachable);
    }

    #[test]
    fn an_image_that_cannot_be_pulled_is_classified() {
        let c = classify(&stopped(
            "c1",
            json!({"stopCode": "TaskFailedToStart", "stoppedReason": "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:2: 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:2: not found"}),
        ));
        assert_eq!((c.kind, c.heals), (Kind::ImagePull, false));
        assert!(
            c.explanation.starts_with(
                "the image cannot be pulled: it does not exist (the repository or the tag is wrong)"
            ),
            "{}",
            c.explanation
        );
        let c = classify(&stopped(
            "c2",
            json!({"stopCode": "TaskFailedToStart", "stoppedReason": "CannotPullContainerError: Error response from daemon: pull access denied for app, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"}),
        ));
        assert_eq!(c.kind, Kind::ImagePull);
        let c = classify(&stopped(
            "c3",
            json!({"stopCode": "TaskFailedToStart", "stoppedReason": "CannotStartContainerError: ResourceInitializationError: failed to create new container runtime task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: \"/app/server\": stat /app/server: no such file or directory: unknown"}),
        ));
        assert_eq!((c.kind, c.heals), (Kind::ContainerStart, false));
    }

    #[test]
    fn an_out_of_memory_kill_and_an_exit_code_are_classified_with_their_container() {
        let oom = stopped(
            "d1",
            json!({"stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited", "startedAt": 1767225601.0,
                   "container": {"exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"}}),
        );
        let c = classify(&oom);
        assert_eq!((c.kind, c.heals), (Kind::OutOfMemory, false));
        assert_eq!(
            c.explanation,
            "container api ran out of memory (OutOfMemoryError: Container killed due to memory usage, exit code 137): give the task or the container more memory"
        );
        assert_eq!(c.logs_of.as_deref(), Some("api"));
        let exit1 = stopped(
            "d2",
            json!({"stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited", "startedAt": 1767225601.0,
                   "container": {"exitCode": 1}}),
        );
        let c = classify(&exit1);
        assert_eq!((c.kind, c.heals), (Kind::Exited, false));
        assert_eq!(c.explanation, "container api exits with code 1");
        let mut s = Stopped::of(exit1.clone());
        s.last_log_lines = vec![
            "listening".into(),
            "a".into(),
            "Error: STRIPE_WEBHOOK_SECRET is not set".into(),
            "exiting".into(),
        ];
        assert_eq!(
            s.explained(),
            "container api exits with code 1: its last log lines are \u{ab}a\u{bb} \u{ab}Error: STRIPE_WEBHOOK_SECRET is not set\u{bb} \u{ab}exiting\u{bb}"
        );
        // A crash after the task had been healthy may not repeat.
        let mut later = exit1;
        later.health_status = Some("HEALTHY".into());
        assert!(classify(&later).heals);
    }

    #[test]
    fn failing_health_checks_do_not_heal_and_the_schedulers_stops_do() {
        let c = classify(&stopped(
            "e1",
            json!({"stopCode": "ServiceSchedulerInitiated", "stoppedReason": "Task failed container health checks", "startedAt": 1767225601.0,
                   "healthStatus": "UNHEALTHY", "container": {"healthStatus": "UNHEALTHY", "exitCode": 143}}),
        ));
        assert_eq!((c.kind, c.heals), (Kind::ContainerHealthCheck, false));
        assert_eq!(
            c.explanation,
            "the health check of container api fails (Task failed container health checks)"
        );
        let c = classify(&stopped(
            "e2",
            json!({"stopCode": "ServiceSchedulerInitiated", "stoppedReason": "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067)"}),
        ));
        assert_eq!((c.kind, c.heals), (Kind::LoadBalancerHealthCheck, false));
        for (code, reason, kind) in [
            (
                "ServiceSchedulerInitiated",
                "Scaling activity initiated by (deployment ecs-svc/1)",
                Kind::Scheduler,
            ),
            ("UserInitiated", "Task stopped by user", Kind::User),
            (
                "SpotInterruption",
                "Your Spot Task was interrupted.",
                Kind::SpotInterruption,
            ),
            (
                "TerminationNotice",
                "ECS is performing maintenance on the underlying infrastructure hosting the task",
                Kind::Infrastructure,
            ),
            ("", "Something new", Kind::Unknown),
        ] {
            let c = classify(&stopped(
                "f",
                json!({"stopCode": code, "stoppedReason": reason}),
            ));
            assert_eq!((c.kind, c.heals), (kind, true), "{reason}");
        }
    }

    fn deployment(running: i32, pending: i32, failed: i32) -> DeploymentView {
        DeploymentView {
            id: "ecs-svc/1".into(),
            status: "PRIMARY".into(),
            rollout_state: Some("IN_PROGRESS".into()),
            running,
            pending,
            desired: 1,
            failed_tasks: failed,
            ..Default::default()
        }
    }

    #[test]
    fn three_stops_that_cannot_heal_with_none_running_end_the_wait() {
        let three: Vec<Stopped> = ["a", "b", "c"]
            .iter()
            .map(|id| Stopped::of(denied(id)))
            .collect();
        let m = cannot_start(&deployment(0, 1, 3), &three, 3).unwrap();
        assert!(
            m.starts_with("the new tasks cannot start: 3 tasks of deployment ecs-svc/1 stopped"),
            "{m}"
        );
        assert!(
            m.contains("grant secretsmanager:GetSecretValue on its ARN"),
            "{m}"
        );
        assert_eq!(
            m.matches("cannot read secret").count(),
            1,
            "one reason once: {m}"
        );
        // Two are not three; a threshold of 0 never fails fast.
        assert_eq!(cannot_start(&deployment(0, 1, 2), &three[..2], 3), None);
        assert_eq!(cannot_start(&deployment(0, 1, 3), &three, 0), None);
        // ECS's failedTasks lagging behind the stops seen does not matter while none runs.
        assert!(cannot_start(&deployment(0, 1, 0), &three, 3).is_some());
    }

    #[test]
    fn a_running_task_or_healing_stops_never_end_the_wait() {
        let three: Vec<Stopped> = ["a", "b", "c"]
            .iter()
            .map(|id| Stopped::of(denied(id)))
            .collect();
        // One of ours runs and ECS reset failedTasks: the deployment can come up.
        assert_eq!(cannot_start(&deployment(1, 0, 0), &three, 3), None);
        // Slow but healthy: pending tasks, nothing failed.
        assert_eq!(cannot_start(&deployment(0, 2, 0), &[], 3), None);
        let scaled: Vec<Stopped> = ["a", "b", "c"]
            .iter()
            .map(|id| {
                Stopped::of(stopped(
                    id,
                    json!({"stopCode": "ServiceSchedulerInitiated", "stoppedReason": "Scaling activity initiated by (deployment ecs-svc/1)"}),
                ))
            })
            .collect();
        assert_eq!(cannot_start(&deployment(0, 1, 0), &scaled, 3), None);
        // Tasks that run, then fail their health checks: running, but ECS counts the failures.
        let unhealthy: Vec<Stopped> = ["a", "b", "c"]
            .iter()
            .map(|id| {
                Stopped::of(stopped(
                    id,
                    json!({"stopCode": "ServiceSchedulerInitiated", "stoppedReason": "Task failed container health checks"}),
                ))
            })
            .collect();
        assert_eq!(cannot_start(&deployment(1, 0, 2), &unhealthy, 3), None);
        assert!(cannot_start(&deployment(1, 0, 3), &unhealthy, 3).is_some());
    }
}
