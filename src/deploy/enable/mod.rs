//! `enable`: put the Stripe secrets into Secrets Manager where the container reads them, make
//! the ECS task definition inject them by ARN when it does not yet, redeploy and wait for the
//! deployment it started, then run the deterministic smoke. The team's wiring is the truth
//! (`wiring`): a variable the task definition already takes from a secret (whole or one JSON
//! key) gets its new value there, and the task definition is then left as it is. `plan` reads
//! everything and decides; `apply` carries the plan out and reports what it did; a failed
//! rollout puts the secrets back and the service too, unless ECS already rolled it back.

use std::time::Duration;

use super::WiredParameter;
use super::plan::{self, Plan};
use super::preflight::{self, Injected};
use super::redeploy::{self, WaitPolicy};
use super::taskdef::{self, SecretRef};
use super::wiring::{self, Target};
use super::{Env, KEY_VAR, WEBHOOK_VAR, keys};
use crate::aws::ecs::ServiceView;
use crate::aws::secrets_manager::SecretInfo;
use crate::error::{Error, Result};
use crate::printer::Printer;
use crate::secret::{ExposeSecret, SecretString};
use crate::stripe_api::StripeClient;

mod apply;
pub use apply::{EnableReport, apply};

/// What `enable` is asked to do.
pub struct EnableOptions {
    /// The Stripe secret key to store (`None`: keep what is stored).
    pub key: Option<SecretString>,
    /// The webhook signing secret to store (`None`: keep what is stored).
    pub webhook: Option<SecretString>,
    /// Create a secret that does not exist yet (otherwise that is exit 2).
    pub create_secrets: bool,
    pub allow_live_key: bool,
    pub skip_put_secrets: bool,
    pub skip_ecs_patch: bool,
    pub skip_restart: bool,
    pub skip_smoke: bool,
    pub skip_preflight: bool,
    pub wait: WaitPolicy,
    /// Inject stripe-ops' own secrets whatever the team's wiring says (`--rewire`).
    pub rewire: bool,
    /// Add a JSON key the task definition reads and the team's secret lacks (`--add-json-key`).
    pub add_json_key: bool,
}

/// What happens to one of the two secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretAction {
    Create,
    Put,
    Keep,
    /// The secret already holds the given value: writing it again would only add a version.
    Same,
}

/// One of the two Stripe variables: where the container gets it now, where its new value goes
/// (stripe-ops' own secret `own_id`, or the team's), what exists there, what was given.
pub struct Slot {
    pub var: &'static str,
    pub own_id: String,
    /// Its `valueFrom` in the container now (`None`: not injected).
    pub current: Option<String>,
    pub target: Target,
    /// The secret written, when it exists.
    pub info: Option<SecretInfo>,
    /// The SSM parameter written, when the variable comes from one.
    pub parameter: Option<WiredParameter>,
    pub value: Option<SecretString>,
}

impl Slot {
    /// The secret written: stripe-ops' own id, or the team's secret ARN.
    pub fn secret_id(&self) -> &str {
        self.target.secret(&self.own_id)
    }

    /// Decides the action; a missing secret is created only when asked to, and only
    /// stripe-ops' own (the team's must exist: the task definition reads it).
    pub fn action(&self, o: &EnableOptions) -> Result<SecretAction> {
        let exists = self.info.is_some() || self.parameter.is_some();
        if !exists && !self.target.injects_own() {
            return Err(Error::usage(format!(
                "the task definition injects {} from secret {}, which does not exist (or cannot be described)",
                self.var,
                self.secret_id()
            )));
        }
        match (exists, self.value.is_some() && !o.skip_put_secrets) {
            (true, true) => Ok(SecretAction::Put),
            (true, false) => Ok(SecretAction::Keep),
            (false, true) if o.create_secrets => Ok(SecretAction::Create),
            (false, true) => Err(Error::usage(format!(
                "secret {} does not exist; pass --create-secrets to create it",
                self.own_id
            ))),
            (false, false) if o.skip_put_secrets && o.skip_ecs_patch => Ok(SecretAction::Keep),
            (false, false) => Err(Error::usage(format!(
                "secret {} does not exist and no value for it was given ({})",
                self.own_id,
                self.flag()
            ))),
        }
    }

    fn flag(&self) -> &'static str {
        if self.var == KEY_VAR {
            "--stripe-secret-key-file"
        } else {
            "--stripe-webhook-secret-file or --generate-webhook-secret"
        }
    }

    /// The secret as the pre-flight checks it: its ARN (the one it will have, when created by
    /// this run) and its key.
    fn injected(&self, role: Option<&str>, region: &str) -> Injected {
        if let Some(p) = &self.parameter {
            return Injected::parameter(p);
        }
        match &self.info {
            Some(i) => Injected::secret(i),
            None => Injected {
                arn: preflight::planned_arn(role.unwrap_or_default(), region, &self.own_id),
                kms_key_id: None,
                parameter: false,
            },
        }
    }

    /// The reference the container should have when stripe-ops' own secret is injected (before
    /// creation the ARN is not known yet); `None` when the team's wiring stays.
    fn wanted(&self) -> Option<SecretRef> {
        if !self.target.injects_own() {
            return None;
        }
        let from = match &self.info {
            Some(i) => i.arn.clone(),
            None => format!("(ARN of {}, created by this run)", self.own_id),
        };
        Some(SecretRef::new(self.var, from))
    }

    /// For the plan: the wiring now and where the new value goes.
    fn wire(&self, action: SecretAction) -> plan::Wire {
        let new_value = match action {
            SecretAction::Keep => format!("nowhere: no new value ({} is kept)", self.secret_id()),
            SecretAction::Same => format!("nowhere: {} already holds it", self.secret_id()),
            SecretAction::Create | SecretAction::Put => self.target.describe(&self.own_id),
        };
        plan::Wire {
            variable: self.var.to_owned(),
            now: wiring::describe_current(self.current.as_deref()),
            new_value,
        }
    }
}

/// Everything read and decided before changing anything.
pub struct EnablePlan {
    pub plan: Plan,
    slots: Vec<(Slot, SecretAction)>,
    service: ServiceView,
    td: aws_sdk_ecs::types::TaskDefinition,
    tags: Vec<aws_sdk_ecs::types::Tag>,
    base_url: Option<String>,
    options: EnableOptions,
}

/// Reads the secrets, the service and its task definition, checks the key with Stripe, and
/// decides every step. Nothing is changed.
pub async fn plan(env: &Env, o: EnableOptions, out: &Printer) -> Result<EnablePlan> {
    let settings = &env.settings;
    check_given(env, &o, out).await?;
    let now = Current::read(env, &o).await?;
    let slots = decide_slots(env, &o, &now, out).await?;
    let wanted: Vec<SecretRef> = slots.iter().filter_map(|(s, _)| s.wanted()).collect();
    let preview = taskdef::patch(now.td.container_definitions(), &settings.container, &wanted)?;
    let role = now.td.execution_role_arn();
    let injected: Vec<Injected> = slots
        .iter()
        .map(|(slot, _)| slot.injected(role, &settings.region))
        .collect();
    let preflight = preflight::check(env, role, &injected, o.skip_preflight).await?;
    let base_url = match (&settings.base_url, o.skip_smoke || o.wait.no_wait) {
        (_, true) => None,
        (Some(url), false) => Some(url.clone()),
        (None, false) => Some(taskdef::base_url_of(&now.td, &settings.container)?),
    };

    let mut plan = Plan::new(&settings.name);
    plan.service = Some(now.service.deployment_settings());
    secret_steps(&mut plan, &slots, &o, out);
    task_definition_steps(&mut plan, &o, env, &now, &slots, &preview)?;
    rollout_steps(&mut plan, &o, env);
    plan.preflight = Some(preflight);
    Ok(EnablePlan {
        plan,
        slots,
        service: now.service,
        td: now.td,
        tags: now.tags,
        base_url,
        options: o,
    })
}

/// The values given, before anything is read: the webhook secret's form, the key's form and
/// mode for the environment, and the key with Stripe.
async fn check_given(env: &Env, o: &EnableOptions, out: &Printer) -> Result<()> {
    let settings = &env.settings;
    if let Some(w) = &o.webhook {
        keys::check_webhook_secret(w)?;
    }
    if let Some(key) = &o.key {
        let (_, warning) = keys::check_secret_key(key, settings.is_production(), o.allow_live_key)?;
        if let Some(w) = warning {
            out.warn(w);
        }
        check_key_with_stripe(&settings.stripe_api_base, key).await?;
    }
    Ok(())
}

/// What is deployed now: the service, the task definition it runs (with its tags) and the
/// container's secrets.
struct Current {
    service: ServiceView,
    td: aws_sdk_ecs::types::TaskDefinition,
    tags: Vec<aws_sdk_ecs::types::Tag>,
    secrets: Vec<SecretRef>,
}

impl Current {
    /// Reads it, refusing what a redeploy could not change (`redeploy::check_deployable`).
    async fn read(env: &Env, o: &EnableOptions) -> Result<Current> {
        let service = env.service().await?;
        let (td, tags) = env.task_definition(&service.task_definition).await?;
        redeploy::check_deployable(&service, &td, &env.settings, !o.skip_restart)?;
        let secrets = taskdef::secrets_of(td.container_definitions(), &env.settings.container)?;
        Ok(Current {
            service,
            td,
            tags,
            secrets,
        })
    }
}

/// For each Stripe variable: where it comes from now, where its value goes, and what to do
/// with the secret there.
async fn decide_slots(
    env: &Env,
    o: &EnableOptions,
    now: &Current,
    out: &Printer,
) -> Result<Vec<(Slot, SecretAction)>> {
    let settings = &env.settings;
    let choices = wiring::Choices {
        rewire: o.rewire,
        rotating: false,
    };
    let task_account = wiring::account_of(now.td.task_definition_arn().unwrap_or_default());
    let mut slots = Vec::new();
    for (var, own_id, value) in [
        (KEY_VAR, &settings.secret_key_id, &o.key),
        (WEBHOOK_VAR, &settings.webhook_secret_id, &o.webhook),
    ] {
        let current = now
            .secrets
            .iter()
            .find(|r| r.name == var)
            .map(|r| r.value_from.clone());
        let own = env.sm.info(own_id).await?;
        let target = wiring::target(
            var,
            current.as_deref(),
            own.as_ref().map(|i| i.arn.as_str()),
            choices,
        )?;
        let (info, parameter) = match &target {
            Target::Own => (own, None),
            Target::Whole { secret } | Target::JsonKey { secret, .. } => {
                (env.sm.info(secret).await?, None)
            }
            Target::Parameter(p) => (
                None,
                Some(env.parameter(var, p, task_account, choices).await?),
            ),
        };
        let slot = Slot {
            var,
            own_id: own_id.clone(),
            current,
            target,
            info,
            parameter,
            value: value.clone(),
        };
        let mut action = slot.action(o)?;
        check_json_key(env, &slot, action, o.add_json_key, out).await?;
        if action == SecretAction::Put && holds(env, &slot).await? {
            action = SecretAction::Same;
        }
        slots.push((slot, action));
    }
    Ok(slots)
}

/// The plan's steps for the secrets, and each variable's wiring.
fn secret_steps(plan: &mut Plan, slots: &[(Slot, SecretAction)], o: &EnableOptions, out: &Printer) {
    for (slot, action) in slots {
        let id = slot.secret_id();
        match (action, &slot.target) {
            (SecretAction::Create, _) => {
                plan.step(format!("create secret {id} with the given value"))
            }
            (SecretAction::Put, Target::JsonKey { key, .. }) => plan.step(format!(
                "put a new version into secret {id} with key {key} changed and every other key kept"
            )),
            (SecretAction::Put, Target::Parameter(_)) => {
                let p = slot
                    .parameter
                    .as_ref()
                    .expect("a parameter target is described");
                plan.step(format!(
                    "put a new version into SSM parameter {id} (now version {}): a SecureString encrypted with its own key {}",
                    p.info.version,
                    p.info.key_id.as_deref().unwrap_or("alias/aws/ssm")
                ))
            }
            (SecretAction::Put, _) => plan.step(format!("put a new value into secret {id}")),
            (SecretAction::Keep, _) => plan.skip(format!("keep the value of secret {id}")),
            (SecretAction::Same, _) => plan.skip(format!(
                "secret {id} already holds the given value: nothing to write"
            )),
        }
        if o.rewire
            && let Some(now) = &slot.current
            && wiring::target(slot.var, Some(now), None, Default::default())
                .map_or(true, |t| !t.injects_own())
        {
            out.warn(format!(
                "--rewire: {} comes from {} now; it will come from stripe-ops' own secret {}, and infrastructure code (Terraform, CloudFormation) that manages the task definition will put its reference back on its next apply",
                slot.var,
                wiring::describe_current(Some(now)),
                slot.own_id
            ));
        }
        plan.wiring.push(slot.wire(*action));
    }
}

/// The plan's step for the task definition, and its diffs.
fn task_definition_steps(
    plan: &mut Plan,
    o: &EnableOptions,
    env: &Env,
    now: &Current,
    slots: &[(Slot, SecretAction)],
    preview: &taskdef::Patched,
) -> Result<()> {
    let settings = &env.settings;
    let container = &settings.container;
    let td = &now.td;
    let td_name = td.task_definition_arn().unwrap_or_default().to_owned();
    let will_patch = preview.changed && !o.skip_ecs_patch;
    if will_patch {
        plan.step(format!(
            "register a new revision of {} injecting {KEY_VAR} and {WEBHOOK_VAR} into container {container}, and point service {} at it",
            td.family().unwrap_or_default(),
            settings.service
        ));
    } else if preview.changed {
        plan.skip(format!("patch {td_name} (--skip-ecs-patch)"));
    } else if slots.iter().any(|(s, _)| !s.target.injects_own()) {
        plan.skip(format!(
            "{td_name} already reads the Stripe secrets where they are written: nothing to register"
        ));
    } else {
        plan.skip(format!(
            "{td_name} already injects both secrets: nothing to register"
        ));
    }
    let after = taskdef::secrets_of(&preview.containers, container)?;
    plan.secrets_diff =
        plan::secrets_diff(&now.secrets, if will_patch { &after } else { &now.secrets });
    if will_patch {
        let render = |containers: Vec<_>| {
            taskdef::render(
                &taskdef::register_input(td, &now.tags, containers)
                    .build()
                    .expect("a described task definition rebuilds"),
            )
        };
        plan.task_definition_diff = plan::unified_diff(
            &render(td.container_definitions().to_vec()),
            &render(preview.containers.clone()),
            &td_name,
            &format!(
                "{} (next revision, to register)",
                td.family().unwrap_or_default()
            ),
        );
    }
    Ok(())
}

/// The plan's steps after the change: the redeploy and the smoke.
fn rollout_steps(plan: &mut Plan, o: &EnableOptions, env: &Env) {
    let service = &env.settings.service;
    if o.skip_restart {
        plan.skip(format!("redeploy {service} (--skip-restart)"));
    } else {
        plan.step(o.wait.redeploy_step(service));
    }
    if o.skip_smoke {
        plan.skip("deterministic smoke (--skip-smoke)");
    } else if o.wait.no_wait {
        plan.skip("deterministic smoke (--no-wait: nothing to smoke until the rollout completes)");
    } else {
        plan.step(
            "deterministic smoke against the base URL with the webhook secret from Secrets Manager",
        );
    }
}

/// Whether the variable's current value (the secret's, or its JSON key's) is the one given,
/// compared in constant time.
async fn holds(env: &Env, slot: &Slot) -> Result<bool> {
    let (Some(given), Some(_)) = (&slot.value, &slot.info) else {
        return Ok(false);
    };
    // Not allowed to read it (or not a string): then it is written, as before.
    let current = match env.read_wired(&slot.target, &slot.own_id).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::debug!(
                "cannot compare secret {}: {}",
                slot.secret_id(),
                e.message()
            );
            None
        }
    };
    Ok(current.is_some_and(|c| {
        crate::secret::constant_time_eq(
            c.expose_secret().as_bytes(),
            given.expose_secret().as_bytes(),
        )
    }))
}

/// A JSON secret the task definition reads a key of: it must be a JSON object with that key
/// (or `--add-json-key` with a value to add), checked before anything is written. A secret the
/// caller may not read is a warning: ECS reads it with the execution role, not the caller's.
async fn check_json_key(
    env: &Env,
    slot: &Slot,
    action: SecretAction,
    add: bool,
    out: &Printer,
) -> Result<()> {
    let Target::JsonKey { secret, key } = &slot.target else {
        return Ok(());
    };
    let document = match env.sm.value(secret).await {
        Ok(d) => d,
        Err(e) => {
            out.warn(format!(
                "cannot read secret {secret} to check its key {key}: {}",
                e.message()
            ));
            return Ok(());
        }
    };
    match (action, &slot.value) {
        (SecretAction::Put, Some(v)) => {
            wiring::set_json_key(&document, secret, key, v, add).map(drop)
        }
        _ => wiring::json_key_value(&document, secret, key)
            .map(drop)
            .map_err(|e| {
                e.context(format!(
                    "{} is injected from key {key} of {secret}, and no new value for it was given",
                    slot.var
                ))
            }),
    }
}

/// Stripe answered 401/403 to is called refused.
async fn check_key_with_stripe(base: &str, key: &SecretString) -> Result<()> {
    let stripe = StripeClient::new(base, key.clone(), Duration::from_secs(30))?;
    match stripe.account().await {
        Ok(_) => Ok(()),
        Err(e) if e.refused() => {
            Err(e.context("the Stripe key was refused by GET /v1/account; nothing was written"))
        }
        Err(e) => Err(
            e.context("could not check the Stripe key with GET /v1/account; nothing was written")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> EnableOptions {
        EnableOptions {
            key: None,
            webhook: None,
            create_secrets: false,
            allow_live_key: false,
            skip_put_secrets: false,
            skip_ecs_patch: false,
            skip_restart: false,
            skip_smoke: false,
            skip_preflight: false,
            wait: WaitPolicy::default(),
            rewire: false,
            add_json_key: false,
        }
    }

    fn slot(exists: bool, value: Option<&SecretString>) -> Slot {
        Slot {
            var: WEBHOOK_VAR,
            own_id: "p/STRIPE_WEBHOOK_SECRET".into(),
            current: None,
            target: Target::Own,
            info: exists.then(|| SecretInfo {
                id: "p/STRIPE_WEBHOOK_SECRET".into(),
                arn: "arn:wh".into(),
                last_changed: None,
                kms_key_id: None,
                versions: Default::default(),
            }),
            parameter: None,
            value: value.cloned(),
        }
    }

    fn action(s: &Slot, o: &EnableOptions) -> std::result::Result<SecretAction, String> {
        s.action(o).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn what_happens_to_each_secret() {
        use SecretAction::*;
        let v = SecretString::from("whsec_x".to_owned());
        let plain = options();
        assert_eq!(action(&slot(true, Some(&v)), &plain), Ok(Put));
        assert_eq!(action(&slot(true, None), &plain), Ok(Keep));
        let create = EnableOptions {
            create_secrets: true,
            ..options()
        };
        assert_eq!(action(&slot(false, Some(&v)), &create), Ok(Create));
        assert!(
            action(&slot(false, Some(&v)), &plain)
                .unwrap_err()
                .contains("--create-secrets")
        );
        assert!(
            action(&slot(false, None), &plain)
                .unwrap_err()
                .contains("no value")
        );
        let skip_put = EnableOptions {
            skip_put_secrets: true,
            ..options()
        };
        assert_eq!(action(&slot(true, Some(&v)), &skip_put), Ok(Keep));
        let skip_both = EnableOptions {
            skip_put_secrets: true,
            skip_ecs_patch: true,
            ..options()
        };
        assert_eq!(action(&slot(false, None), &skip_both), Ok(Keep));
        assert_eq!(
            slot(false, None).wanted().unwrap().value_from,
            "(ARN of p/STRIPE_WEBHOOK_SECRET, created by this run)"
        );
    }
}
