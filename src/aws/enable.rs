//! `enable`: put the Stripe secrets into Secrets Manager, make the ECS task definition inject
//! them by ARN, redeploy and wait, then run the deterministic smoke. `plan` reads everything
//! and decides; `apply` carries the plan out and reports what it did.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::deploy::{self, Deployed, WaitPolicy};
use super::plan::{self, Plan};
use super::preflight::{self, Injected};
use super::secrets::{self, SecretInfo, Written};
use super::service::{self, ServiceView};
use super::taskdef::{self, SecretRef};
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

/// One of the two secrets: its id, the variable it becomes, what exists, what was given.
pub struct Slot {
    pub var: &'static str,
    pub id: String,
    pub info: Option<SecretInfo>,
    pub value: Option<SecretString>,
}

impl Slot {
    /// Decides the action; a missing secret is created only when asked to.
    pub fn action(&self, o: &EnableOptions) -> Result<SecretAction> {
        let exists = self.info.is_some();
        match (exists, self.value.is_some() && !o.skip_put_secrets) {
            (true, true) => Ok(SecretAction::Put),
            (true, false) => Ok(SecretAction::Keep),
            (false, true) if o.create_secrets => Ok(SecretAction::Create),
            (false, true) => Err(Error::usage(format!(
                "secret {} does not exist; pass --create-secrets to create it",
                self.id
            ))),
            (false, false) if o.skip_put_secrets && o.skip_ecs_patch => Ok(SecretAction::Keep),
            (false, false) => Err(Error::usage(format!(
                "secret {} does not exist and no value for it was given ({})",
                self.id,
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
                arn: preflight::planned_arn(role.unwrap_or_default(), region, &self.id),
                kms_key_id: None,
            },
        }
    }

    /// The reference the container should have; before creation the ARN is not known yet.
    fn wanted(&self) -> SecretRef {
        let from = match &self.info {
            Some(i) => i.arn.clone(),
            None => format!("(ARN of {}, created by this run)", self.id),
        };
        SecretRef::new(self.var, from)
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
    let mut slots = Vec::new();
    for (var, id, value) in [
        (KEY_VAR, &settings.secret_key_id, &o.key),
        (WEBHOOK_VAR, &settings.webhook_secret_id, &o.webhook),
    ] {
        let slot = Slot {
            var,
            id: id.clone(),
            info: secrets::info(&env.sm, id).await?,
            value: value.clone(),
        };
        let mut action = slot.action(&o)?;
        if action == SecretAction::Put && holds(env, &slot).await? {
            action = SecretAction::Same;
        }
        slots.push((slot, action));
    }
    let service = service::service(env).await?;
    let (td, tags) = service::task_definition(env, &service.task_definition).await?;
    let container = &settings.container;
    let defs = td.container_definitions();
    let wanted: Vec<SecretRef> = slots.iter().map(|(s, _)| s.wanted()).collect();
    let before = taskdef::secrets_of(defs, container)?;
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
    for (slot, action) in &slots {
        match action {
            SecretAction::Create => {
                plan.step(format!("create secret {} with the given value", slot.id))
            }
            SecretAction::Put => plan.step(format!("put a new value into secret {}", slot.id)),
            SecretAction::Keep => plan.skip(format!("keep the value of secret {}", slot.id)),
            SecretAction::Same => plan.skip(format!(
                "secret {} already holds the given value: nothing to write",
                slot.id
            )),
        }
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

/// Whether the secret's current value is the one given (compared in constant time).
async fn holds(env: &Env, slot: &Slot) -> Result<bool> {
    let (Some(given), Some(_)) = (&slot.value, &slot.info) else {
        return Ok(false);
    };
    // Not allowed to read it (or not a string): then it is written, as before.
    let current = match secrets::value_if_exists(&env.sm, &slot.id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("cannot compare secret {}: {}", slot.id, e.message());
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

    // 1. Secrets.
    let mut written: Vec<Written> = Vec::new();
    let mut arns = Vec::new();
    for (slot, action) in &p.slots {
        done.check(stop)?;
        let w = match action {
            SecretAction::Create => Some(
                secrets::create(
                    &env.sm,
                    &slot.id,
                    slot.value.as_ref().expect("a value was given"),
                    &format!("{} for {} (stripe-ops)", slot.var, settings.name),
                )
                .await
                .map_err(|e| done.fail(e))?,
            ),
            SecretAction::Put => Some(
                secrets::put(
                    &env.sm,
                    &slot.id,
                    slot.value.as_ref().expect("a value was given"),
                )
                .await
                .map_err(|e| done.fail(e))?,
            ),
            SecretAction::Keep | SecretAction::Same => None,
        };
        if let Some(w) = &w {
            out.status(format!(
                "secret {}: {} version {} ({} characters)",
                w.id,
                if w.created { "created with" } else { "new" },
                w.version_id,
                w.value_length
            ));
            let previous = slot.info.as_ref().and_then(|i| i.current_version());
            let undo = match previous {
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
        }
        arns.push(
            w.as_ref()
                .map(|w| w.arn.clone())
                .or_else(|| slot.info.as_ref().map(|i| i.arn.clone()))
                .unwrap_or_default(),
        );
        written.extend(w);
    }

    // 2. Task definition.
    done.check(stop)?;
    let previous_td = p.service.task_definition.clone();
    let mut registered: Option<String> = None;
    if !o.skip_ecs_patch {
        let wanted: Vec<SecretRef> = p
            .slots
            .iter()
            .zip(&arns)
            .map(|((s, _), arn)| SecretRef::new(s.var, arn.clone()))
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
        } else {
            out.status(format!(
                "task definition: {previous_td} already injects both secrets"
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
            stop.guard_with(
                Some(&done.hint()),
                deploy::redeploy_now(env, registered.as_deref()),
            )
            .await
            .map_err(|e| done.fail(e))?;
            out.status(format!(
                "service {}: redeploy started; not waiting (--no-wait), so no smoke either: follow it with `stripe-ops status --env {}`",
                settings.service, settings.name
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
        let d = stop
            .guard_with(
                Some(&done.hint()),
                deploy::deploy_and_wait(env, registered.as_deref(), &previous_td, &o.wait, out),
            )
            .await
            .map_err(|e| done.fail(e))?;
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

    // 4. Smoke with the webhook secret as stored.
    done.check(stop)?;
    let mut smoke = Value::Null;
    if let Some(base_url) = &p.base_url {
        let webhook = secrets::value(&env.sm, &settings.webhook_secret_id).await?;
        smoke = stop
            .guard_with(
                Some(&done.hint()),
                smoke_step::run(env, base_url, webhook, o.wait.settle, out),
            )
            .await?;
    }

    Ok(report(
        p, env, written, registered, deployed, smoke, started,
    ))
}

fn report(
    p: EnablePlan,
    env: &Env,
    secrets: Vec<Written>,
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
        secrets,
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
        }
    }

    fn slot(exists: bool, value: Option<&SecretString>) -> Slot {
        Slot {
            var: WEBHOOK_VAR,
            id: "p/STRIPE_WEBHOOK_SECRET".into(),
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
            slot(false, None).wanted().value_from,
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
