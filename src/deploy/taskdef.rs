//! The pure task-definition patch: inject the Stripe secrets into one container by ARN, keep
//! everything else, and build a RegisterTaskDefinition input that carries every writable field
//! of the described task definition (the read-only ones — arn, revision, status,
//! requiresAttributes, compatibilities, registeredAt/By, deregisteredAt — are simply not copied).

use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;
use aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionInputBuilder;
use aws_sdk_ecs::types::{ContainerDefinition, Secret, Tag, TaskDefinition};

use crate::error::{Error, Result};

/// One secret a container receives: the environment variable name and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretRef {
    pub name: String,
    pub value_from: String,
}

impl SecretRef {
    pub fn new(name: impl Into<String>, value_from: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value_from: value_from.into(),
        }
    }
}

/// The container definitions after the patch, and whether anything differs from before.
#[derive(Debug, Clone)]
pub struct Patched {
    pub containers: Vec<ContainerDefinition>,
    pub changed: bool,
}

fn find<'a>(defs: &'a [ContainerDefinition], container: &str) -> Result<&'a ContainerDefinition> {
    defs.iter()
        .find(|c| c.name() == Some(container))
        .ok_or_else(|| no_container(defs, container))
}

fn no_container(defs: &[ContainerDefinition], container: &str) -> Error {
    let names: Vec<&str> = defs.iter().filter_map(|c| c.name()).collect();
    Error::usage(format!(
        "the task definition has no container named {container:?} (it has: {}); set `container` for this environment in stripe-ops.toml",
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    ))
}

/// The `secrets` of `container`, in order.
pub fn secrets_of(defs: &[ContainerDefinition], container: &str) -> Result<Vec<SecretRef>> {
    Ok(find(defs, container)?
        .secrets()
        .iter()
        .map(|s| SecretRef::new(s.name(), s.value_from()))
        .collect())
}

/// The value of an `environment` entry of `container` (for example `PUBLIC_BASE_URL`).
pub fn env_value(
    defs: &[ContainerDefinition],
    container: &str,
    name: &str,
) -> Result<Option<String>> {
    Ok(find(defs, container)?
        .environment()
        .iter()
        .find(|kv| kv.name() == Some(name))
        .and_then(|kv| kv.value())
        .map(str::to_owned))
}

/// The secrets list with each wanted entry replaced in place (same name) or appended; every
/// other entry is kept as it was.
fn patch_secret_list(current: &[SecretRef], wanted: &[SecretRef]) -> Vec<SecretRef> {
    let mut out: Vec<SecretRef> = current
        .iter()
        .map(|s| {
            wanted
                .iter()
                .find(|w| w.name == s.name)
                .cloned()
                .unwrap_or_else(|| s.clone())
        })
        .collect();
    for w in wanted {
        if !current.iter().any(|s| s.name == w.name) {
            out.push(w.clone());
        }
    }
    // A duplicated name in the original would have been replaced twice; keep only the first.
    let mut seen = std::collections::HashSet::new();
    out.retain(|s| !wanted.iter().any(|w| w.name == s.name) || seen.insert(s.name.clone()));
    out
}

/// Whether `container` already receives every wanted secret exactly (by ARN).
pub fn injects(
    defs: &[ContainerDefinition],
    container: &str,
    wanted: &[SecretRef],
) -> Result<bool> {
    let current = secrets_of(defs, container)?;
    Ok(wanted.iter().all(|w| current.contains(w)))
}

/// Injects `wanted` into `container`; the other containers and every other field of the
/// container are cloned untouched.
pub fn patch(
    defs: &[ContainerDefinition],
    container: &str,
    wanted: &[SecretRef],
) -> Result<Patched> {
    let current = secrets_of(defs, container)?;
    let next = patch_secret_list(&current, wanted);
    if next == current {
        return Ok(Patched {
            containers: defs.to_vec(),
            changed: false,
        });
    }
    let secrets: Vec<Secret> = next
        .iter()
        .map(|s| {
            Secret::builder()
                .name(&s.name)
                .value_from(&s.value_from)
                .build()
                .expect("name and valueFrom are set")
        })
        .collect();
    let containers = defs
        .iter()
        .map(|c| {
            if c.name() == Some(container) {
                let mut patched = c.clone();
                patched.secrets = Some(secrets.clone());
                patched
            } else {
                c.clone()
            }
        })
        .collect();
    Ok(Patched {
        containers,
        changed: true,
    })
}

/// RegisterTaskDefinition input for a new revision of `td` with `containers`: every writable
/// field carried over, tags included, read-only fields left out.
// inferenceAccelerators is deprecated by AWS, but a definition that still has them keeps them.
#[allow(deprecated)]
pub fn register_input(
    td: &TaskDefinition,
    tags: &[Tag],
    containers: Vec<ContainerDefinition>,
) -> RegisterTaskDefinitionInputBuilder {
    RegisterTaskDefinitionInput::builder()
        .set_family(td.family.clone())
        .set_container_definitions(Some(containers))
        .set_task_role_arn(td.task_role_arn.clone())
        .set_execution_role_arn(td.execution_role_arn.clone())
        .set_network_mode(td.network_mode.clone())
        .set_volumes(td.volumes.clone())
        .set_placement_constraints(td.placement_constraints.clone())
        .set_requires_compatibilities(td.requires_compatibilities.clone())
        .set_cpu(td.cpu.clone())
        .set_memory(td.memory.clone())
        .set_pid_mode(td.pid_mode.clone())
        .set_ipc_mode(td.ipc_mode.clone())
        .set_proxy_configuration(td.proxy_configuration.clone())
        .set_inference_accelerators(td.inference_accelerators.clone())
        .set_ephemeral_storage(td.ephemeral_storage.clone())
        .set_runtime_platform(td.runtime_platform.clone())
        .set_enable_fault_injection(td.enable_fault_injection)
        .set_tags(if tags.is_empty() {
            None
        } else {
            Some(tags.to_vec())
        })
}

/// The input rendered for a diff, one field per line: the SDK type's pretty `Debug` (which
/// redacts `environment` whole, as the SDK marks it sensitive), then each container's
/// environment by name with its value as a length and a fingerprint, so that a change shows
/// without the value: people do put secrets there.
pub fn render(input: &RegisterTaskDefinitionInput) -> String {
    let mut out = format!("{input:#?}\n");
    for c in input.container_definitions() {
        for kv in c.environment() {
            out.push_str(&format!(
                "container {} environment {} = {}\n",
                c.name().unwrap_or("?"),
                kv.name().unwrap_or("?"),
                kv.value().map(fingerprint).unwrap_or_default()
            ));
        }
    }
    out
}

/// `<N characters, sha256 0123abcd>`: tells a change without telling the value.
fn fingerprint(value: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(value.as_bytes());
    format!(
        "<{} characters, sha256 {}>",
        value.chars().count(),
        hex::encode(&digest[..4])
    )
}

/// `PUBLIC_BASE_URL` of `container` in `td`, without a trailing slash.
pub fn base_url_of(td: &TaskDefinition, container: &str) -> Result<String> {
    env_value(td.container_definitions(), container, "PUBLIC_BASE_URL")?
        .map(|u| u.trim_end_matches('/').to_owned())
        .ok_or_else(|| {
            Error::usage(format!(
                "no base URL: pass --base-url, set base_url in stripe-ops.toml, or give container {container:?} of {} a PUBLIC_BASE_URL environment entry",
                td.task_definition_arn().unwrap_or("the task definition")
            ))
        })
}

/// Where a container's awslogs driver writes (`logConfiguration` with `logDriver` awslogs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStream {
    pub region: String,
    pub group: String,
    pub stream: String,
}

/// Pure: the CloudWatch Logs stream a task's container wrote to, from the task definition's
/// awslogs options: `awslogs-stream-prefix/container-name/task-id` ("Using the awslogs log
/// driver", ECS developer guide), else (no prefix, EC2 only) the Docker container id.
/// `awslogs-region` defaults to `region`. `None` for another log driver or a stream it cannot
/// name.
pub fn log_stream(
    td: &TaskDefinition,
    container: &str,
    task_arn: &str,
    runtime_id: Option<&str>,
    region: &str,
) -> Option<LogStream> {
    let config = td
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(container))?
        .log_configuration()?;
    if config.log_driver().as_str() != "awslogs" {
        return None;
    }
    let options = config.options()?;
    let group = options.get("awslogs-group")?.clone();
    let stream = match options.get("awslogs-stream-prefix") {
        Some(prefix) => {
            let task_id = task_arn.rsplit('/').next()?;
            format!("{prefix}/{container}/{task_id}")
        }
        None => runtime_id?.to_owned(),
    };
    Some(LogStream {
        region: options
            .get("awslogs-region")
            .cloned()
            .unwrap_or_else(|| region.to_owned()),
        group,
        stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{
        Attribute, Compatibility, EphemeralStorage, KeyValuePair, NetworkMode, PidMode,
        RuntimePlatform, TaskDefinitionStatus, Volume,
    };

    fn secret(name: &str, from: &str) -> Secret {
        Secret::builder()
            .name(name)
            .value_from(from)
            .build()
            .unwrap()
    }

    fn containers() -> Vec<ContainerDefinition> {
        vec![
            ContainerDefinition::builder()
                .name("sidecar")
                .image("envoy:1")
                .secrets(secret("STRIPE_SECRET_KEY", "arn:other"))
                .build(),
            ContainerDefinition::builder()
                .name("api")
                .image("app:42")
                .memory(512)
                .environment(
                    KeyValuePair::builder()
                        .name("PUBLIC_BASE_URL")
                        .value("https://app.example.com")
                        .build(),
                )
                .secrets(secret("DATABASE_URL", "arn:db"))
                .secrets(secret(
                    "STRIPE_SECRET_KEY",
                    "proofwork-staging/STRIPE_SECRET_KEY",
                ))
                .build(),
        ]
    }

    fn wanted() -> Vec<SecretRef> {
        vec![
            SecretRef::new("STRIPE_SECRET_KEY", "arn:sk"),
            SecretRef::new("STRIPE_WEBHOOK_SECRET", "arn:wh"),
        ]
    }

    #[test]
    fn patch_replaces_and_appends_only_the_stripe_secrets_of_the_container() {
        let p = patch(&containers(), "api", &wanted()).unwrap();
        assert!(p.changed);
        assert_eq!(
            secrets_of(&p.containers, "api").unwrap(),
            vec![
                SecretRef::new("DATABASE_URL", "arn:db"),
                SecretRef::new("STRIPE_SECRET_KEY", "arn:sk"),
                SecretRef::new("STRIPE_WEBHOOK_SECRET", "arn:wh"),
            ]
        );
        // Other containers and other fields are untouched.
        assert_eq!(p.containers[0], containers()[0]);
        let api = &p.containers[1];
        assert_eq!(api.image(), Some("app:42"));
        assert_eq!(api.memory(), Some(512));
        assert_eq!(
            env_value(&p.containers, "api", "PUBLIC_BASE_URL")
                .unwrap()
                .as_deref(),
            Some("https://app.example.com")
        );
    }

    #[test]
    fn the_rendering_shows_environment_values_only_as_fingerprints() {
        let input = |url: &str| {
            let mut c = containers();
            c[1].environment.as_mut().unwrap()[0].value = Some(url.to_owned());
            RegisterTaskDefinitionInput::builder()
                .family("shop")
                .set_container_definitions(Some(c))
                .build()
                .unwrap()
        };
        let a = render(&input("https://app.example.com"));
        let b = render(&input("https://app.example.org"));
        assert!(!a.contains("app.example.com"), "{a}");
        assert!(
            a.contains("container api environment PUBLIC_BASE_URL = <23 characters, sha256 "),
            "{a}"
        );
        assert_ne!(a, b, "a changed value shows as a changed fingerprint");
        assert!(a.contains("\"app:42\""), "{a}");
    }

    #[test]
    fn patching_twice_changes_nothing_the_second_time() {
        let once = patch(&containers(), "api", &wanted()).unwrap();
        assert!(injects(&once.containers, "api", &wanted()).unwrap());
        let twice = patch(&once.containers, "api", &wanted()).unwrap();
        assert!(!twice.changed);
        assert_eq!(twice.containers, once.containers);
    }

    #[test]
    fn a_missing_container_is_a_usage_error_naming_the_ones_there() {
        let e = patch(&containers(), "web", &wanted()).unwrap_err();
        assert_eq!(e.exit, crate::error::Exit::Usage);
        assert!(e.message().contains("sidecar, api"), "{}", e.message());
    }

    #[test]
    fn register_input_carries_every_writable_field_and_no_read_only_one() {
        let td = TaskDefinition::builder()
            .task_definition_arn("arn:aws:ecs:us-east-1:1:task-definition/app:7")
            .revision(7)
            .status(TaskDefinitionStatus::Active)
            .requires_attributes(
                Attribute::builder()
                    .name("ecs.capability.secrets")
                    .build()
                    .unwrap(),
            )
            .compatibilities(Compatibility::Ec2)
            .registered_by("someone")
            .family("app")
            .set_container_definitions(Some(containers()))
            .task_role_arn("arn:task-role")
            .execution_role_arn("arn:exec-role")
            .network_mode(NetworkMode::Awsvpc)
            .volumes(Volume::builder().name("data").build())
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("256")
            .memory("512")
            .pid_mode(PidMode::Task)
            .ephemeral_storage(EphemeralStorage::builder().size_in_gib(30).build())
            .runtime_platform(RuntimePlatform::builder().build())
            .enable_fault_injection(true)
            .build();
        let tags = vec![Tag::builder().key("team").value("pay").build()];
        let input = register_input(&td, &tags, containers()).build().unwrap();
        assert_eq!(input.family(), Some("app"));
        assert_eq!(input.container_definitions(), containers().as_slice());
        assert_eq!(input.task_role_arn(), Some("arn:task-role"));
        assert_eq!(input.execution_role_arn(), Some("arn:exec-role"));
        assert_eq!(input.network_mode(), Some(&NetworkMode::Awsvpc));
        assert_eq!(input.volumes().len(), 1);
        assert_eq!(input.requires_compatibilities(), &[Compatibility::Fargate]);
        assert_eq!(input.cpu(), Some("256"));
        assert_eq!(input.memory(), Some("512"));
        assert_eq!(input.pid_mode(), Some(&PidMode::Task));
        assert_eq!(input.ephemeral_storage().map(|e| e.size_in_gib()), Some(30));
        assert!(input.runtime_platform().is_some());
        assert_eq!(input.enable_fault_injection(), Some(true));
        assert_eq!(input.tags(), tags.as_slice());
        // The input type has no field for arn, revision, status, requiresAttributes,
        // compatibilities or registeredBy: its Debug shows every field it would send.
        let debug = format!("{input:?}");
        for read_only in [
            "arn:aws:ecs",
            "someone",
            "ecs.capability.secrets",
            "revision",
        ] {
            assert!(
                !debug.contains(read_only),
                "{read_only} carried over: {debug}"
            );
        }
    }

    #[test]
    fn the_awslogs_stream_is_prefix_container_and_task_id() {
        use aws_sdk_ecs::types::{LogConfiguration, LogDriver};
        let logged = |options: &[(&str, &str)]| {
            let mut config = LogConfiguration::builder().log_driver(LogDriver::Awslogs);
            for (k, v) in options {
                config = config.options(*k, *v);
            }
            TaskDefinition::builder()
                .container_definitions(
                    ContainerDefinition::builder()
                        .name("api")
                        .log_configuration(config.build().unwrap())
                        .build(),
                )
                .build()
        };
        let task =
            "arn:aws:ecs:us-east-1:123456789012:task/proofwork-staging-cluster/0f9c2b1e8d7a4c3b";
        let td = logged(&[
            ("awslogs-group", "/ecs/proofwork-staging-api"),
            ("awslogs-region", "eu-west-1"),
            ("awslogs-stream-prefix", "ecs"),
        ]);
        assert_eq!(
            log_stream(&td, "api", task, None, "us-east-1"),
            Some(LogStream {
                region: "eu-west-1".into(),
                group: "/ecs/proofwork-staging-api".into(),
                stream: "ecs/api/0f9c2b1e8d7a4c3b".into(),
            })
        );
        assert_eq!(log_stream(&td, "sidecar", task, None, "us-east-1"), None);
        let no_prefix = logged(&[("awslogs-group", "g")]);
        assert_eq!(
            log_stream(&no_prefix, "api", task, Some("c0ffee"), "us-east-1")
                .map(|l| (l.region, l.stream)),
            Some(("us-east-1".to_owned(), "c0ffee".to_owned()))
        );
        assert_eq!(log_stream(&no_prefix, "api", task, None, "us-east-1"), None);
    }
}
