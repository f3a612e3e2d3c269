//! `enable`'s second half: carry an [`EnablePlan`] out (secrets, task definition, redeploy and
//! wait, smoke), keep what was done and how to undo it for a failure's message or a stop, and
//! put the secrets and the service back when the rollout fails.

use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use super::{EnablePlan, SecretAction, Slot};
use crate::aws::secrets_manager::{self, Written};
use crate::deploy::plan::Plan;
use crate::deploy::redeploy::{self, Deployed};
use crate::deploy::smoke_step;
use crate::deploy::taskdef::{self, SecretRef};
use crate::deploy::wiring::{self, Target};
use crate::deploy::{Env, SecretSwitch, WEBHOOK_VAR};
use crate::error::{Error, Result};
use crate::printer::{Printer, Report};
use crate::shutdown::Shutdown;

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
                super::redeploy::ci_row(
                    &format!("secret {}", w.id),
                    if w.created {
                        "created".to_owned()
                    } else {
                        format!("new version {}", w.version_id)
                    },
                )
            })
            .collect();
        rows.push(super::redeploy::ci_row(
            "task definition",
            if self.registered {
                format!("registered {}", self.task_definition_after)
            } else {
                format!("unchanged: {}", self.task_definition_after)
            },
        ));
        rows.extend(super::redeploy::deployment_rows(
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
            let arn = env
                .ecs
                .register(taskdef::register_input(&p.td, &p.tags, patched.containers))
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
            Some(redeploy::redeploy_command(env, Some(&previous_td))),
        );
        if o.wait.no_wait {
            let s = stop
                .guard_with(
                    Some(&done.hint()),
                    redeploy::redeploy_now(env, registered.as_deref(), &previous_td),
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
                redeploy::redeploy_and_wait(env, registered.as_deref(), &previous_td, &o.wait, out),
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
        redeploy::point_at(env, td)
            .await
            .map_err(|e| done.fail(e))?;
        done.did(
            format!("pointed {} at {td}", settings.service),
            Some(redeploy::point_command(env, &previous_td)),
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
        let secret = env.read_wired(&webhook.target, &webhook.own_id).await?;
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
            (Target::Parameter(_), _) => {
                let parameter = slot
                    .parameter
                    .as_ref()
                    .expect("a parameter target is described");
                env.put_parameter(parameter, value).await
            }
            (_, SecretAction::Create) => {
                env.sm
                    .create(
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
            _ => env.sm.put(id, value).await,
        }
        .map_err(|e| done.fail(e))?;
        out.status(format!(
            "{} {}: {} version {} ({} characters)",
            if slot.parameter.is_some() {
                "SSM parameter"
            } else {
                "secret"
            },
            w.id,
            if w.created { "created with" } else { "new" },
            w.version_id,
            w.value_length
        ));
        let previous = match &slot.parameter {
            Some(p) => Some(p.info.version.to_string()),
            None => slot
                .info
                .as_ref()
                .and_then(|i| i.current_version())
                .map(str::to_owned),
        };
        let undo = match &previous {
            Some(prev) => SecretSwitch {
                id: w.id.clone(),
                previous: prev.clone(),
                current: w.version_id.clone(),
                parameter: slot.parameter.clone(),
            }
            .restore_command(),
            None => secrets_manager::delete_command(&w.id),
        };
        let verb = match (&slot.parameter, w.created) {
            (Some(_), _) => "put a new version into SSM parameter",
            (None, true) => "created secret",
            (None, false) => "put a new value into secret",
        };
        done.did(
            format!("{verb} {} (version {})", w.id, w.version_id),
            Some(undo),
        );
        written.push((w, previous));
    }
    Ok(written)
}

/// The team's JSON secret read now (AWSCURRENT), each slot's key set to its value, every other
/// byte kept, written as one new version.
async fn put_json_keys(env: &Env, id: &str, slots: &[&Slot], add: bool) -> Result<Written> {
    let mut document = env.sm.value(id).await?;
    for slot in slots {
        let Target::JsonKey { key, .. } = &slot.target else {
            unreachable!("only JSON-key slots")
        };
        let value = slot.value.as_ref().expect("a value was given");
        document = wiring::set_json_key(&document, id, key, value, add)?;
    }
    env.sm.put(id, &document).await
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
    started: Option<&crate::deploy::rollout::Started>,
    not_completed: redeploy::NotCompleted,
    out: &Printer,
) -> Error {
    let service = &env.settings.service;
    let previous = &p.service.task_definition;
    let why = match started {
        Some(s) => crate::deploy::why::why(env, &s.deployment_id, out).await,
        None => crate::deploy::why::Why::default(),
    };
    let failed = why.explain(format!("deploying {service}: {not_completed}"));
    let details = why.details();
    if !p.options.wait.rollback {
        return Error::external(format!(
            "{failed}; left as it is (--no-rollback). To roll back: {}",
            redeploy::redeploy_command(env, Some(previous))
        ))
        .with_details(details);
    }
    let mut done = Vec::new();
    let mut remaining = Vec::new();
    for (w, previous_version) in written {
        let Some(prev) = previous_version else {
            continue;
        };
        let switch = SecretSwitch {
            id: w.id.clone(),
            previous: prev.clone(),
            current: w.version_id.clone(),
            parameter: p
                .slots
                .iter()
                .find_map(|(s, _)| s.parameter.clone().filter(|_| s.secret_id() == w.id)),
        };
        match switch.restore(env).await {
            Ok(what) => done.push(what),
            Err(e) => remaining.push(format!(
                "{} — run: {}",
                e.message(),
                switch.restore_command()
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
        match redeploy::redeploy_now(env, target, previous).await {
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
                redeploy::redeploy_command(env, target)
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
#[cfg(test)]
mod tests {
    use super::*;

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
