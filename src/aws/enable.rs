//! `enable`: put the Stripe secrets into Secrets Manager where the container reads them, make
//! the ECS task definition inject them by ARN when it does not yet, redeploy and wait for the
//! deployment it started, then run the deterministic smoke. The team's wiring is the truth
//! (`wiring`): a variable the task definition already takes from a secret (whole or one JSON
//! key) gets its new value there, and the task definition is then left as it is. `plan` reads
//! everything and decides; `apply` carries the plan out and reports what it did; a failed
//! rollout puts the secrets back and the service too, unless ECS already rolled it back.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::deploy::{self, Deployed, WaitPolicy};
use super::plan::{self, Plan};
use super::preflight::{self, Injected};
use super::secrets::{self, SecretInfo, Written};
use super::service::{self, ServiceView};
use super::taskdef::{self, SecretRef};
use super::wiring::{self, Target};
use super::{Env, KEY_VAR, WEBHOOK_VAR, keys, smoke_step};
use crate::error::{Error, Result};
use crate::printer::{Printer, Report};
use crate::secret::{ExposeSecret, SecretString};
use crate::shutdown::Shutdown;
use crate::stripe_api::StripeClient;

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
        let exists = self.info.is_some();
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
        match &self.info {
            Some(i) => Injected {
                arn: i.arn.clone(),
                kms_key_id: i.kms_key_id.clone(),
            },
            None => Injected {
                arn: preflight::planned_arn(role.unwrap_or_default(), region, &self.own_id),
                kms_key_id: None,
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
    let service = service::service(env).await?;
    let (td, tags) = service::task_definition(env, &service.task_definition).await?;
    service::check_deployable(&service, &td, settings, !o.skip_restart)?;
    let container = &settings.container;
    let defs = td.container_definitions();
    let before = taskdef::secrets_of(defs, container)?;
    let choices = wiring::Choices {
        rewire: o.rewire,
        rotating: false,
    };
    let mut slots = Vec::new();
    for (var, own_id, value) in [
        (KEY_VAR, &settings.secret_key_id, &o.key),
        (WEBHOOK_VAR, &settings.webhook_secret_id, &o.webhook),
    ] {
        let current = before
            .iter()
            .find(|r| r.name == var)
            .map(|r| r.value_from.clone());
        let own = secrets::info(&env.sm, own_id).await?;
        let target = wiring::target(
            var,
            current.as_deref(),
            own.as_ref().map(|i| i.arn.as_str()),
            choices,
        )?;
        let info = match &target {
            Target::Own => own,
            Target::Whole { secret } | Target::JsonKey { secret, .. } => {
                secrets::info(&env.sm, secret).await?
            }
        };
        let slot = Slot {
            var,
            own_id: own_id.clone(),
            current,
            target,
            info,
            value: value.clone(),
        };
        let mut action = slot.action(&o)?;
        check_json_key(env, &slot, action, o.add_json_key, out).await?;
        if action == SecretAction::Put && holds(env, &slot).await? {
            action = SecretAction::Same;
        }
        slots.push((slot, action));
    }
    let wanted: Vec<SecretRef> = slots.iter().filter_map(|(s, _)| s.wanted()).collect();
    let preview = taskdef::patch(defs, container, &wanted)?;
    let after = taskdef::secrets_of(&preview.containers, container)?;
    let preflight = preflight::check(
        env,
        td.execution_role_arn(),
        &slots
            .iter()
            .map(|(slot, _)| slot.injected(td.execution_role_arn(), &settings.region))
            .collect::<Vec<_>>(),
        o.skip_preflight,
    )
    .await?;
    let base_url = match (&settings.base_url, o.skip_smoke || o.wait.no_wait) {
        (_, true) => None,
        (Some(url), false) => Some(url.clone()),
        (None, false) => Some(service::base_url_of(&td, container)?),
    };

    let mut plan = Plan::new(&settings.name);
    plan.service = Some(service.deployment_settings());
    for (slot, action) in &slots {
        let id = slot.secret_id();
        match (action, &slot.target) {
            (SecretAction::Create, _) => {
                plan.step(format!("create secret {id} with the given value"))
            }
            (SecretAction::Put, Target::JsonKey { key, .. }) => plan.step(format!(
                "put a new version into secret {id} with key {key} changed and every other key kept"
            )),
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
    if o.skip_restart {
        plan.skip(format!("redeploy {} (--skip-restart)", settings.service));
    } else {
        plan.step(o.wait.redeploy_step(&settings.service));
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
    plan.secrets_diff = plan::secrets_diff(&before, if will_patch { &after } else { &before });
    if will_patch {
        let render = |containers: Vec<_>| {
            taskdef::render(
                &taskdef::register_input(&td, &tags, containers)
                    .build()
                    .expect("a described task definition rebuilds"),
            )
        };
        plan.task_definition_diff = plan::unified_diff(
            &render(defs.to_vec()),
            &render(preview.containers.clone()),
            &td_name,
            &format!(
                "{} (next revision, to register)",
                td.family().unwrap_or_default()
            ),
        );
    }
    plan.preflight = Some(preflight);
    Ok(EnablePlan {
        plan,
        slots,
        service,
        td,
        tags,
        base_url,
        options: o,
    })
}

/// Whether the variable's current value (the secret's, or its JSON key's) is the one given,
/// compared in constant time.
async fn holds(env: &Env, slot: &Slot) -> Result<bool> {
    let (Some(given), Some(_)) = (&slot.value, &slot.info) else {
        return Ok(false);
    };
    // Not allowed to read it (or not a string): then it is written, as before.
    let current = match secrets::read_wired(&env.sm, &slot.target, &slot.own_id).await {
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
    let document = match secrets::value(&env.sm, secret).await {
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

/// What `enable` did.
#[derive(Debug, Serialize)]
pub struct EnableReport {
    pub env: String,
    pub plan: Plan,
    pub secrets: Vec<Written>,
    pub task_definition_before: String,
    pub task_definition_after: String,
    pub registered: bool,
    /// False with `--no-wait`: the redeploy was started, not waited for.
    pub waited: bool,
    pub deployment: Option<Deployed>,
    pub smoke: Value,
    pub seconds: f64,
}

impl Report for EnableReport {
    fn json(&self) -> Value {
        json!({
            "ok": true,
            "env": self.env,
            "dry_run": false,
            "plan": self.plan,
            "secrets": self.secrets,
            "task_definition": {
                "before": self.task_definition_before,
                "after": self.task_definition_after,
                "registered": self.registered,
            },
            "deployment": self.deployment,
            "waited": self.waited,
            "smoke": self.smoke,
            "seconds": self.seconds,
        })
    }

    fn ci_summary(&self) -> Option<crate::ci::Summary> {
        let mut rows: Vec<crate::ci::Row> = self
            .secrets
            .iter()
            .map(|w| {
                super::deploy::ci_row(
                    &format!("secret {}", w.id),
                    if w.created {
                        "created".to_owned()
                    } else {
                        format!("new version {}", w.version_id)
                    },
                )
            })
            .collect();
        rows.push(super::deploy::ci_row(
            "task definition",
            if self.registered {
                format!("registered {}", self.task_definition_after)
            } else {
                format!("unchanged: {}", self.task_definition_after)
            },
        ));
        rows.extend(super::deploy::deployment_rows(
            self.deployment.as_ref(),
            &self.smoke,
        ));
        Some(crate::ci::Summary {
            title: format!("stripe-ops enable --env {}", self.env),
            ok: true,
            rows,
            footer: format!("enabled Stripe for {} in {:.1}s", self.env, self.seconds),
        })
    }

    fn human(&self, out: &Printer) -> Vec<String> {
        vec![format!(
            "{} enabled Stripe for {} in {:.1}s (task definition {})",
            out.ok_mark(true),
            self.env,
            self.seconds,
            self.task_definition_after
        )]
    }
}

/// What has been changed so far and the commands that undo it, for a failure's message and for
/// a stop request.
#[derive(Default)]
struct Progress {
    done: Vec<String>,
    undo: Vec<String>,
}

impl Progress {
    fn did(&mut self, what: String, undo: Option<String>) {
        self.done.push(what);
        self.undo.extend(undo);
    }

    fn fail(&self, e: Error) -> Error {
        if self.done.is_empty() {
            return e.context("nothing was changed");
        }
        e.context(format!("already done: {}", self.done.join("; ")))
    }

    /// What to tell the user when a stop request ends `enable` here.
    fn hint(&self) -> String {
        if self.done.is_empty() {
            return "enable stopped before changing anything".to_owned();
        }
        // Undo in reverse order: the service first, the secrets last.
        let undo: Vec<&str> = self.undo.iter().rev().map(String::as_str).collect();
        format!(
            "enable stopped half-way; done: {}; to undo it by hand: {}",
            self.done.join("; "),
            undo.join("; ")
        )
    }

    /// Ends here with exit 130 when a stop was requested (a safe point between steps).
    fn check(&self, stop: &Shutdown) -> Result<()> {
        match stop.requested() {
            Some(signal) => Err(crate::shutdown::interrupted(signal, Some(&self.hint()))),
            None => Ok(()),
        }
    }
}

/// Carries the plan out: secrets, task definition, redeploy and wait, smoke.
pub async fn apply(
    env: &Env,
    p: EnablePlan,
    out: &Printer,
    stop: &Shutdown,
) -> Result<EnableReport> {
    let started = Instant::now();
    let settings = &env.settings;
    let o = &p.options;
    let mut done = Progress::default();

    // 1. Secrets, where the container reads them.
    done.check(stop)?;
    let written = write_secrets(env, &p.slots, o.add_json_key, &mut done, out).await?;
    let arn_of = |slot: &Slot| {
        written
            .iter()
            .find(|(w, _)| w.id == slot.secret_id())
            .map(|(w, _)| w.arn.clone())
            .or_else(|| slot.info.as_ref().map(|i| i.arn.clone()))
            .unwrap_or_default()
    };

    // 2. Task definition: only the variables that get stripe-ops' own secret change it.
    done.check(stop)?;
    let previous_td = p.service.task_definition.clone();
    let mut registered: Option<String> = None;
    if !o.skip_ecs_patch {
        let wanted: Vec<SecretRef> = p
            .slots
            .iter()
            .filter(|(s, _)| s.target.injects_own())
            .map(|(s, _)| SecretRef::new(s.var, arn_of(s)))
            .collect();
        let patched = taskdef::patch(p.td.container_definitions(), &settings.container, &wanted)?;
        if patched.changed {
            let arn = service::register(env, &p.td, &p.tags, patched.containers)
                .await
                .map_err(|e| done.fail(e))?;
            out.status(format!("task definition: registered {arn}"));
            // A revision the service does not use changes nothing: there is nothing to undo.
            done.did(format!("registered {arn}"), None);
            registered = Some(arn);
        } else if p.slots.iter().all(|(s, _)| s.target.injects_own()) {
            out.status(format!(
                "task definition: {previous_td} already injects both secrets"
            ));
        } else {
            out.status(format!(
                "task definition: {previous_td} already reads the Stripe secrets where they are written"
            ));
        }
    }

    // 3. Redeploy.
    done.check(stop)?;
    let mut deployed = None;
    if !o.skip_restart {
        done.did(
            format!("started a redeploy of {}", settings.service),
            Some(deploy::redeploy_command(env, Some(&previous_td))),
        );
        if o.wait.no_wait {
            let s = stop
                .guard_with(
                    Some(&done.hint()),
                    deploy::redeploy_now(env, registered.as_deref(), &previous_td),
                )
                .await
                .map_err(|e| done.fail(e))?;
            out.status(format!(
                "service {}: deployment {} started; not waiting (--no-wait), so no smoke either: follow it with `stripe-ops status --env {}`",
                settings.service, s.deployment_id, settings.name
            ));
            return Ok(report(
                p,
                env,
                written,
                registered,
                None,
                Value::Null,
                started,
            ));
        }
        let waited = stop
            .guard_with(
                Some(&done.hint()),
                deploy::redeploy_and_wait(env, registered.as_deref(), &previous_td, &o.wait, out),
            )
            .await
            .map_err(|e| done.fail(e))?;
        let d = match waited {
            (_, Ok(d)) => d,
            (started, Err(not_completed)) => {
                let e = roll_back(env, &p, &written, started.as_ref(), not_completed, out).await;
                return Err(done.fail(e));
            }
        };
        out.status(format!(
            "service {}: deployment {} completed in {:.1}s",
            settings.service, d.deployment_id, d.seconds
        ));
        deployed = Some(d);
    } else if let Some(td) = &registered {
        // Without a restart the service must still point at the new revision.
        deploy::point_at(env, td).await.map_err(|e| done.fail(e))?;
        done.did(
            format!("pointed {} at {td}", settings.service),
            Some(deploy::point_command(env, &previous_td)),
        );
    }

    // 4. Smoke with the webhook secret as the container reads it.
    done.check(stop)?;
    let mut smoke = Value::Null;
    if let Some(base_url) = &p.base_url {
        let (webhook, _) = p
            .slots
            .iter()
            .find(|(s, _)| s.var == WEBHOOK_VAR)
            .expect("both variables are planned");
        let secret = secrets::read_wired(&env.sm, &webhook.target, &webhook.own_id).await?;
        smoke = stop
            .guard_with(
                Some(&done.hint()),
                smoke_step::run(env, base_url, secret, o.wait.settle, out),
            )
            .await?;
    }

    Ok(report(
        p, env, written, registered, deployed, smoke, started,
    ))
}

/// A secret written by this run and the version that was AWSCURRENT before (none: created).
type WrittenSecret = (Written, Option<String>);

/// Writes each secret that gets a value: stripe-ops' own (created or put whole), the team's
/// whole, or the team's JSON secret with its keys changed, both keys in one new version when
/// both variables read the same secret. Each write is recorded with its undo.
async fn write_secrets(
    env: &Env,
    slots: &[(Slot, SecretAction)],
    add_json_key: bool,
    done: &mut Progress,
    out: &Printer,
) -> Result<Vec<WrittenSecret>> {
    let settings = &env.settings;
    let mut written: Vec<WrittenSecret> = Vec::new();
    let writes = slots
        .iter()
        .filter(|(_, a)| matches!(a, SecretAction::Create | SecretAction::Put));
    for (slot, action) in writes {
        let id = slot.secret_id();
        if written.iter().any(|(w, _)| w.id == id) {
            continue; // the other key of the same JSON secret: written with the first
        }
        let value = slot.value.as_ref().expect("a value was given");
        let w = match (&slot.target, action) {
            (_, SecretAction::Create) => {
                secrets::create(
                    &env.sm,
                    id,
                    value,
                    &format!("{} for {} (stripe-ops)", slot.var, settings.name),
                )
                .await
            }
            (Target::JsonKey { .. }, _) => {
                let same: Vec<&Slot> = slots
                    .iter()
                    .filter(|(s, a)| s.secret_id() == id && *a == SecretAction::Put)
                    .map(|(s, _)| s)
                    .collect();
                put_json_keys(env, id, &same, add_json_key).await
            }
            _ => secrets::put(&env.sm, id, value).await,
        }
        .map_err(|e| done.fail(e))?;
        out.status(format!(
            "secret {}: {} version {} ({} characters)",
            w.id,
            if w.created { "created with" } else { "new" },
            w.version_id,
            w.value_length
        ));
        let previous = slot
            .info
            .as_ref()
            .and_then(|i| i.current_version())
            .map(str::to_owned);
        let undo = match &previous {
            Some(prev) => secrets::restore_command(&w.id, prev, &w.version_id),
            None => secrets::delete_command(&w.id),
        };
        let verb = if w.created {
            "created"
        } else {
            "put a new value into"
        };
        done.did(
            format!("{verb} secret {} (version {})", w.id, w.version_id),
            Some(undo),
        );
        written.push((w, previous));
    }
    Ok(written)
}

/// The team's JSON secret read now (AWSCURRENT), each slot's key set to its value, every other
/// byte kept, written as one new version.
async fn put_json_keys(env: &Env, id: &str, slots: &[&Slot], add: bool) -> Result<Written> {
    let mut document = secrets::value(&env.sm, id).await?;
    for slot in slots {
        let Target::JsonKey { key, .. } = &slot.target else {
            unreachable!("only JSON-key slots")
        };
        let value = slot.value.as_ref().expect("a value was given");
        document = wiring::set_json_key(&document, id, key, value, add)?;
    }
    secrets::put(&env.sm, id, &document).await
}

/// After a rollout that did not complete: the secrets back to their previous versions (those
/// this run created are left, unreferenced once the task definition is back), then the service
/// back to its previous task definition, unless ECS already put it there: then the task
/// definition stays where ECS put it, and a redeploy of it makes its tasks read the restored
/// secrets. With `--no-rollback` nothing is undone. Returns the error to exit with (exit 3).
async fn roll_back(
    env: &Env,
    p: &EnablePlan,
    written: &[WrittenSecret],
    started: Option<&super::rollout::Started>,
    not_completed: deploy::NotCompleted,
    out: &Printer,
) -> Error {
    let service = &env.settings.service;
    let previous = &p.service.task_definition;
    let why = match started {
        Some(s) => deploy::why(env, &s.deployment_id, out).await,
        None => deploy::Why::default(),
    };
    let failed = why.explain(format!("deploying {service}: {not_completed}"));
    let details = why.details();
    if !p.options.wait.rollback {
        return Error::external(format!(
            "{failed}; left as it is (--no-rollback). To roll back: {}",
            deploy::redeploy_command(env, Some(previous))
        ))
        .with_details(details);
    }
    let mut done = Vec::new();
    let mut remaining = Vec::new();
    for (w, previous_version) in written {
        let Some(prev) = previous_version else {
            continue;
        };
        match secrets::restore_current(&env.sm, &w.id, prev, &w.version_id).await {
            Ok(()) => done.push(format!("AWSCURRENT of {} is version {prev} again", w.id)),
            Err(e) => remaining.push(format!(
                "{} — run: {}",
                e.message(),
                secrets::restore_command(&w.id, prev, &w.version_id)
            )),
        }
    }
    let restored = !done.is_empty();
    let redeploy = if not_completed.rolled_back() {
        // ECS already runs the previous task definition: it stays; only its tasks must read
        // the restored secrets.
        done.push(format!(
            "the service was left where ECS put it ({previous})"
        ));
        restored.then_some(None)
    } else {
        Some(Some(previous.as_str()))
    };
    if let Some(target) = redeploy {
        match deploy::redeploy_now(env, target, previous).await {
            Ok(s) => done.push(match target {
                Some(td) => format!(
                    "rolled the service back to {td} (deployment {} has started)",
                    s.deployment_id
                ),
                None => format!(
                    "redeployed it (deployment {}) so that its tasks read the restored secrets",
                    s.deployment_id
                ),
            }),
            Err(e) => remaining.push(format!(
                "{} — run: {}",
                e.message(),
                deploy::redeploy_command(env, target)
            )),
        }
    }
    let message = if remaining.is_empty() {
        format!("{failed}; {}", done.join("; "))
    } else {
        format!(
            "{failed}; rollback INCOMPLETE. Done: {}. Remaining: {}",
            if done.is_empty() {
                "nothing".to_owned()
            } else {
                done.join("; ")
            },
            remaining.join("; ")
        )
    };
    Error::external(message).with_details(details)
}

fn report(
    p: EnablePlan,
    env: &Env,
    secrets: Vec<WrittenSecret>,
    registered: Option<String>,
    deployment: Option<Deployed>,
    smoke: Value,
    started: Instant,
) -> EnableReport {
    let previous_td = p.service.task_definition.clone();
    EnableReport {
        env: env.settings.name.clone(),
        task_definition_after: registered.clone().unwrap_or(previous_td.clone()),
        task_definition_before: previous_td,
        registered: registered.is_some(),
        waited: !p.options.wait.no_wait,
        plan: p.plan,
        secrets: secrets.into_iter().map(|(w, _)| w).collect(),
        deployment,
        smoke,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Proves the key works before anything is written. Both outcomes are exit 3, but only a key
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

    #[test]
    fn a_failure_half_way_says_what_was_done() {
        let mut p = Progress::default();
        assert!(
            p.fail(Error::external("x"))
                .message()
                .starts_with("nothing was changed")
        );
        assert_eq!(p.hint(), "enable stopped before changing anything");
        p.did(
            "created secret a (version v1)".into(),
            Some("undo-a".into()),
        );
        p.did("registered td:2".into(), None);
        p.did("started a redeploy".into(), Some("undo-b".into()));
        assert_eq!(
            p.hint(),
            "enable stopped half-way; done: created secret a (version v1); registered td:2; started a redeploy; to undo it by hand: undo-b; undo-a"
        );
        let stop = Shutdown::manual();
        assert!(p.check(&stop).is_ok());
        stop.request(crate::shutdown::Signal::Terminate);
        assert_eq!(p.check(&stop).unwrap_err().exit.code(), 130);
        let mut p = Progress::default();
        p.did(
            "created secret a (version v1)".into(),
            Some("undo-a".into()),
        );
        let e = p.fail(Error::external("cannot register"));
        assert_eq!(
            e.message(),
            "already done: created secret a (version v1): cannot register"
        );
        assert_eq!(e.exit.code(), 3);
    }
}
