//! `webhook rotate`: a new Stripe webhook endpoint, its secret into Secrets Manager where the
//! container reads it (stripe-ops' own secret, or the team's: whole or one JSON key, `wiring`),
//! redeploy and wait for the deployment it started, smoke with the new secret, then disable the
//! old endpoints for the same URL. `plan` reads everything; `apply` is transactional: when the
//! redeploy or the smoke fails, the previous secret version goes back to AWSCURRENT, the
//! service is redeployed and the new endpoint is deleted, in that order, so that every partial
//! outcome is consistent. The task definition is never changed (a rollback by ECS is left
//! where ECS put it).

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::endpoint::{self, Fallback, Replacement};
use super::plan::Plan;
use super::preflight::{self, Injected};
use super::redeploy::{self, Deployed, WaitPolicy};
use super::taskdef;
use super::wiring::{self, Target};
use super::{Env, KEY_VAR, SecretSwitch, WEBHOOK_VAR, WiredParameter, smoke_step};
use crate::aws::secrets_manager::{SecretInfo, Written};
use crate::error::{Error, Result};
use crate::http;
use crate::printer::{Printer, Report};
use crate::shutdown::{self, Shutdown};
use crate::stripe_api::{StripeClient, WebhookEndpoint};

mod rollback;
use rollback::rollback;

/// What `webhook rotate` is asked to do.
#[derive(Debug, Clone)]
pub struct RotateOptions {
    /// Accept an http:// base URL (local tests only; Stripe requires https).
    pub allow_http: bool,
    /// What flags settle about the new endpoint; the rest is inherited (see `endpoint`).
    pub endpoint: endpoint::Overrides,
    pub skip_smoke: bool,
    pub skip_preflight: bool,
    pub skip_disable_duplicates: bool,
    pub wait: WaitPolicy,
    /// Add the JSON key the task definition reads when the team's secret lacks it.
    pub add_json_key: bool,
}

/// Pure: the webhook URL for a base URL, refusing plain http unless allowed.
pub fn webhook_url(base: &str, path: &str, allow_http: bool) -> Result<String> {
    let lower = base.to_ascii_lowercase();
    if lower.starts_with("https://") || (allow_http && lower.starts_with("http://")) {
        Ok(http::join(base, path))
    } else {
        Err(Error::usage(format!(
            "the public base URL {base} must be https:// (Stripe only delivers to https; --allow-http for local tests)"
        )))
    }
}

/// Pure: the enabled endpoints with `url` other than `keep`.
pub fn duplicates<'a>(
    endpoints: &'a [WebhookEndpoint],
    url: &str,
    keep: Option<&str>,
) -> Vec<&'a WebhookEndpoint> {
    endpoints
        .iter()
        .filter(|e| e.url == url && e.enabled() && Some(e.id.as_str()) != keep)
        .collect()
}

/// Everything read and decided before changing anything.
pub struct RotatePlan {
    pub plan: Plan,
    url: String,
    base: String,
    replacement: Replacement,
    /// Where the webhook secret is written, and that secret's id (or ARN).
    target: Target,
    secret_id: String,
    previous_version: String,
    /// The SSM parameter, when the webhook secret is read from one.
    parameter: Option<WiredParameter>,
    /// The task definition the service runs (the rollout is judged against it).
    task_definition: String,
    stripe: StripeClient,
    options: RotateOptions,
}

/// Reads the secrets, the task definition and the endpoints, asks IAM whether the execution
/// role can read the secrets, and decides every step, the new endpoint's fields included.
pub async fn plan(env: &Env, o: RotateOptions) -> Result<RotatePlan> {
    let settings = &env.settings;
    let base = env.public_base_url().await?;
    let url = webhook_url(&base, &settings.contract.paths.webhook, o.allow_http)?;
    let svc = env.service().await?;
    let (td, _) = env.task_definition(&svc.task_definition).await?;
    redeploy::check_deployable(&svc, &td, settings, true)?;
    let container = taskdef::secrets_of(td.container_definitions(), &settings.container)?;
    let value_from = |var: &str| {
        container
            .iter()
            .find(|r| r.name == var)
            .map(|r| r.value_from.clone())
    };
    let Some(current) = value_from(WEBHOOK_VAR) else {
        return Err(Error::usage(format!(
            "{} does not inject {WEBHOOK_VAR} into container {}; run `stripe-ops enable --env {}` first",
            svc.task_definition, settings.container, settings.name
        )));
    };
    let task_account = wiring::account_of(td.task_definition_arn().unwrap_or_default()).to_owned();
    let webhook =
        WebhookSecret::read(env, &o, &current, &svc.task_definition, &task_account).await?;
    let mut injected = vec![webhook.injected()];
    let key_target = key_target(env, value_from(KEY_VAR).as_deref()).await?;
    let key_id = key_target.secret(&settings.secret_key_id).to_owned();
    if key_id != webhook.secret_id {
        match &key_target {
            Target::Parameter(p) => injected.push(Injected::parameter(
                &env.parameter(KEY_VAR, p, &task_account, CHOICES).await?,
            )),
            _ => {
                if let Some(key_info) = env.sm.info(&key_id).await? {
                    injected.push(Injected::secret(&key_info));
                }
            }
        }
    }
    let preflight =
        preflight::check(env, td.execution_role_arn(), &injected, o.skip_preflight).await?;
    let (stripe, replacement, old_ids) = new_endpoint(env, &key_target, &url, &o).await?;

    let mut plan = Plan::new(&settings.name);
    let new = &replacement.new;
    plan.step(format!(
        "create a Stripe webhook endpoint for {url}: {} event type(s), API version {}",
        new.enabled_events.len(),
        new.api_version
            .as_deref()
            .unwrap_or("of the account's default")
    ));
    plan.service = Some(svc.deployment_settings());
    plan.wiring.push(super::plan::Wire {
        variable: WEBHOOK_VAR.to_owned(),
        now: wiring::describe_current(Some(&current)),
        new_value: webhook.target.describe(&settings.webhook_secret_id),
    });
    switch_steps(&mut plan, &o, env, &webhook, &old_ids);
    plan.preflight = Some(preflight);
    plan.endpoint = Some(replacement.clone());
    Ok(RotatePlan {
        plan,
        url,
        base,
        replacement,
        target: webhook.target,
        secret_id: webhook.secret_id,
        previous_version: webhook.previous_version,
        parameter: webhook.parameter,
        task_definition: svc.task_definition.clone(),
        stripe,
        options: o,
    })
}

/// Where the webhook secret the container reads lives (a Secrets Manager secret or an SSM
/// parameter), and its version now.
struct WebhookSecret {
    target: Target,
    secret_id: String,
    info: Option<SecretInfo>,
    parameter: Option<WiredParameter>,
    previous_version: String,
}

impl WebhookSecret {
    /// Follows the wiring `current` (the task definition `td`'s reference) to the secret the
    /// new value goes to; refuses one that does not exist, an own secret not injected by ARN,
    /// and a JSON secret without the key (unless `--add-json-key`).
    async fn read(
        env: &Env,
        o: &RotateOptions,
        current: &str,
        td: &str,
        task_account: &str,
    ) -> Result<WebhookSecret> {
        let settings = &env.settings;
        let own = env.sm.info(&settings.webhook_secret_id).await?;
        let target = wiring::target(
            WEBHOOK_VAR,
            Some(current),
            own.as_ref().map(|i| i.arn.as_str()),
            CHOICES,
        )?;
        let secret_id = target.secret(&settings.webhook_secret_id).to_owned();
        if let Target::Parameter(p) = &target {
            let parameter = env.parameter(WEBHOOK_VAR, p, task_account, CHOICES).await?;
            return Ok(WebhookSecret {
                previous_version: parameter.info.version.to_string(),
                target,
                secret_id,
                info: None,
                parameter: Some(parameter),
            });
        }
        let info = match &target {
            Target::Own => own,
            _ => env.sm.info(&secret_id).await?,
        };
        let Some(info) = info else {
            return Err(Error::usage(format!(
                "secret {secret_id} does not exist; run `stripe-ops enable --env {}` first",
                settings.name
            )));
        };
        if target == Target::Own && !current.starts_with(&info.arn) {
            return Err(Error::usage(format!(
                "{td} does not inject {WEBHOOK_VAR} into container {} by ARN; run `stripe-ops enable --env {}` first",
                settings.container, settings.name
            )));
        }
        if let Target::JsonKey { secret, key } = &target {
            let document = env.sm.value(secret).await?;
            if !o.add_json_key {
                wiring::json_key_value(&document, secret, key).map_err(|e| {
                    e.context(format!("{WEBHOOK_VAR} is read from key {key} of {secret}"))
                })?;
            }
        }
        let previous_version = info.current_version().map(str::to_owned).ok_or_else(|| {
            Error::external(format!("secret {secret_id} has no AWSCURRENT version"))
        })?;
        Ok(WebhookSecret {
            target,
            secret_id,
            info: Some(info),
            parameter: None,
            previous_version,
        })
    }

    /// What the execution role must be able to read for it.
    fn injected(&self) -> Injected {
        match (&self.parameter, &self.info) {
            (Some(p), _) => Injected::parameter(p),
            (None, Some(info)) => Injected::secret(info),
            (None, None) => unreachable!("read returns a secret or a parameter"),
        }
    }
}

/// How rotate follows the wiring: never re-pointed, and only to what a rotation can write.
const CHOICES: wiring::Choices = wiring::Choices {
    rewire: false,
    rotating: true,
};

/// Where the Stripe key the container reads lives (`value_from`, its reference; stripe-ops'
/// own secret when not injected).
async fn key_target(env: &Env, value_from: Option<&str>) -> Result<Target> {
    let Some(v) = value_from else {
        return Ok(Target::Own);
    };
    let own_key = env.sm.info(&env.settings.secret_key_id).await?;
    wiring::target(
        KEY_VAR,
        Some(v),
        own_key.as_ref().map(|i| i.arn.as_str()),
        CHOICES,
    )
}

/// The endpoint to create at `url`, inheriting from the enabled ones there (read at Stripe with
/// the key the container reads), with the client that read them and the old ones' ids.
async fn new_endpoint(
    env: &Env,
    key_target: &Target,
    url: &str,
    o: &RotateOptions,
) -> Result<(StripeClient, Replacement, Vec<String>)> {
    let settings = &env.settings;
    let key = env.read_wired(key_target, &settings.secret_key_id).await?;
    let stripe = StripeClient::new(&settings.stripe_api_base, key, Duration::from_secs(30))?;
    let existing = stripe
        .list_webhook_endpoints()
        .await
        .map_err(|e| e.context("listing Stripe webhook endpoints"))?;
    let old = duplicates(&existing, url, None);
    let fallback = Fallback {
        enabled_events: settings.enabled_events.clone(),
        api_version: settings.api_version.clone(),
        connect: settings.connect,
        description: format!(
            "{} webhook for {} (stripe-ops rotate)",
            settings.app, settings.name
        ),
    };
    let replacement = endpoint::replacement(url, &old, &o.endpoint, &fallback)?;
    let old_ids = old.iter().map(|e| e.id.clone()).collect();
    Ok((stripe, replacement, old_ids))
}

/// The plan's steps from the secret's write to the old endpoints' disabling.
fn switch_steps(
    plan: &mut Plan,
    o: &RotateOptions,
    env: &Env,
    webhook: &WebhookSecret,
    old_ids: &[String],
) {
    let (secret_id, previous_version) = (&webhook.secret_id, &webhook.previous_version);
    plan.step(match &webhook.target {
        Target::JsonKey { key, .. } => format!(
            "put its secret into key {key} of {secret_id} (now version {previous_version}), every other key kept"
        ),
        Target::Parameter(_) => format!(
            "put its secret into SSM parameter {secret_id} (now version {previous_version}) as a new version of the SecureString, with its own key"
        ),
        _ => format!("put its secret into {secret_id} (now version {previous_version})"),
    });
    plan.step(o.wait.redeploy_step(&env.settings.service));
    if o.skip_smoke || o.wait.no_wait {
        let why = if o.skip_smoke {
            "--skip-smoke"
        } else {
            "--no-wait"
        };
        plan.skip(format!("deterministic smoke ({why})"));
    } else {
        plan.step(format!(
            "deterministic smoke with the new secret (refusals from tasks with the old one accepted for up to {})",
            crate::duration::human(o.wait.settle)
        ));
    }
    let disable_step = format!(
        "disable the other enabled endpoints for this URL: {}",
        if old_ids.is_empty() {
            "none now".to_owned()
        } else {
            old_ids.join(", ")
        }
    );
    if o.skip_disable_duplicates || o.wait.no_wait {
        let why = if o.wait.no_wait {
            " (--no-wait: not until the new secret is proven; the commands are printed)"
        } else {
            ""
        };
        plan.skip(format!("{disable_step}{why}"));
    } else {
        plan.step(disable_step);
    }
}

/// What has been changed so far, so that a failure can undo exactly that.
#[derive(Debug, Default)]
pub struct Undo {
    pub endpoint: Option<String>,
    pub secret: Option<SecretSwitch>,
    pub redeployed: bool,
}

impl Undo {
    /// The commands that undo by hand what was done, in the order that keeps each partial
    /// outcome consistent: the secret back first, then the redeploy, then the endpoint.
    pub fn commands(&self, env: &Env) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(s) = &self.secret {
            out.push(s.restore_command());
        }
        if self.redeployed {
            out.push(redeploy::redeploy_command(env, None));
        }
        if let Some(id) = &self.endpoint {
            out.push(delete_endpoint_command(&env.settings.stripe_api_base, id));
        }
        out
    }
}

/// The rotation's steps that can fail and be undone.
#[derive(Debug, Clone, Copy)]
enum Step {
    CreateEndpoint = 2,
    Switch = 3,
    Smoke = 4,
}

/// How a step failed: `deploy_failed` when the redeploy itself did not complete (the rollback
/// then does not wait for its own redeploy, which would most likely not complete either).
struct Failure {
    step: Step,
    error: Error,
    deploy_failed: bool,
}

impl Failure {
    fn at(step: Step, error: Error) -> Self {
        Failure {
            step,
            error,
            deploy_failed: false,
        }
    }
}

/// What `webhook rotate` did.
#[derive(Debug, Serialize)]
pub struct RotateReport {
    pub env: String,
    pub webhook_url: String,
    pub endpoint: Value,
    pub secret: Written,
    /// `None` with `--no-wait`.
    pub deployment: Option<Deployed>,
    pub smoke: Value,
    pub disabled: Vec<String>,
    /// With `--no-wait`: the commands that disable the old endpoints once the switch is proven.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disable_later: Vec<String>,
    pub seconds: f64,
}

impl Report for RotateReport {
    fn json(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("reports serialize");
        v["ok"] = json!(true);
        v
    }

    fn ci_summary(&self) -> Option<crate::ci::Summary> {
        use super::redeploy::ci_row;
        let id = self.endpoint["id"].as_str().unwrap_or("?");
        let mut rows = vec![
            ci_row("endpoint", format!("created {id} for {}", self.webhook_url)),
            ci_row(
                &format!("secret {}", self.secret.id),
                format!("new version {}", self.secret.version_id),
            ),
        ];
        rows.extend(super::redeploy::deployment_rows(
            self.deployment.as_ref(),
            &self.smoke,
        ));
        rows.extend(
            self.disabled
                .iter()
                .map(|old| ci_row("disable", format!("disabled {old}"))),
        );
        Some(crate::ci::Summary {
            title: format!("stripe-ops webhook rotate --env {}", self.env),
            ok: true,
            rows,
            footer: format!(
                "rotated the webhook secret of {} in {:.1}s",
                self.env, self.seconds
            ),
        })
    }

    fn human(&self, out: &Printer) -> Vec<String> {
        let mut lines: Vec<String> = self
            .disabled
            .iter()
            .map(|id| format!("disabled webhook endpoint {id}"))
            .collect();
        let id = self.endpoint["id"].as_str().unwrap_or("?");
        if self.deployment.is_none() {
            lines.push(format!(
                "{} started the rotation of {} in {:.1}s: endpoint {id} created, its secret stored, the redeploy started (not waited for, no smoke: --no-wait)",
                out.ok_mark(true),
                self.env,
                self.seconds
            ));
            if !self.disable_later.is_empty() {
                lines.push(
                    "once `stripe-ops status` shows the rollout complete and deliveries verify, disable the old endpoints:"
                        .to_owned(),
                );
                lines.extend(self.disable_later.iter().map(|c| format!("  {c}")));
            }
            return lines;
        }
        lines.push(format!(
            "{} rotated the webhook secret of {} in {:.1}s: endpoint {id} now signs for {}",
            out.ok_mark(true),
            self.env,
            self.seconds,
            self.webhook_url
        ));
        lines
    }
}

/// Carries the plan out; a failure at steps 2-4 rolls back (unless the policy says not to), a
/// stop request stops at the next safe point and prints the undo.
pub async fn apply(
    env: &Env,
    p: RotatePlan,
    out: &Printer,
    stop: &Shutdown,
) -> Result<RotateReport> {
    let started = Instant::now();
    let mut undo = Undo::default();
    let switched = match switch(env, &p, &mut undo, out, stop).await {
        Ok(s) => s,
        Err(f) => return Err(rollback(env, &p, &undo, f, out).await),
    };
    let (created, written, deployed, smoke) = switched;
    // Step 5: disable the old endpoints (after the new one is proven).
    let mut disabled = Vec::new();
    let mut disable_later = Vec::new();
    if p.options.wait.no_wait && !p.options.skip_disable_duplicates {
        disable_later = p
            .replacement
            .old
            .iter()
            .map(|e| disable_endpoint_command(&env.settings.stripe_api_base, &e.id))
            .collect();
    } else if !p.options.skip_disable_duplicates {
        if let Some(signal) = stop.requested() {
            return Err(shutdown::interrupted(
                signal,
                Some(&format!(
                    "the new endpoint {} and its secret are live; old endpoints are still enabled (see `stripe-ops status`)",
                    created.id
                )),
            ));
        }
        disabled = disable_duplicates(&p.stripe, &p.url, &created.id, out).await?;
    }
    Ok(RotateReport {
        env: env.settings.name.clone(),
        webhook_url: p.url,
        endpoint: json!({"id": created.id, "url": created.url, "status": created.status}),
        secret: written,
        deployment: deployed,
        smoke,
        disabled,
        disable_later,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Steps 2-4: the new endpoint, its secret and the redeploy, the smoke with the new secret.
async fn switch(
    env: &Env,
    p: &RotatePlan,
    undo: &mut Undo,
    out: &Printer,
    stop: &Shutdown,
) -> std::result::Result<(WebhookEndpoint, Written, Option<Deployed>, Value), Failure> {
    let settings = &env.settings;
    let at_safe_point = |step, undo: &Undo| -> std::result::Result<(), Failure> {
        match stop.requested() {
            Some(signal) => Err(Failure::at(step, stopped(env, signal, undo))),
            None => Ok(()),
        }
    };
    at_safe_point(Step::CreateEndpoint, undo)?;
    let created = p
        .stripe
        .create_webhook_endpoint(&p.replacement.new)
        .await
        .map_err(|e| Failure::at(Step::CreateEndpoint, e))?;
    out.status(format!(
        "created webhook endpoint {} for {}",
        created.id, p.url
    ));
    undo.endpoint = Some(created.id.clone());
    let Some(new_secret) = created.secret.clone() else {
        let e = Error::external("Stripe created the endpoint without returning its secret");
        return Err(Failure::at(Step::CreateEndpoint, e));
    };

    at_safe_point(Step::Switch, undo)?;
    let id = &p.secret_id;
    let written = write_secret(env, p, &new_secret)
        .await
        .map_err(|e| Failure::at(Step::Switch, e))?;
    out.status(format!(
        "secret {id}: new version {} ({} characters)",
        written.version_id, written.value_length
    ));
    undo.secret = Some(SecretSwitch {
        id: id.clone(),
        previous: p.previous_version.clone(),
        current: written.version_id.clone(),
        parameter: p.parameter.clone(),
    });
    at_safe_point(Step::Switch, undo)?;
    // Counted as redeployed from the request on: undoing a redeploy that did not happen only
    // restarts the tasks.
    undo.redeployed = true;
    if p.options.wait.no_wait {
        guarded(
            stop,
            env,
            undo,
            redeploy::redeploy_now(env, None, &p.task_definition),
        )
        .await
        .map_err(|e| Failure::at(Step::Switch, e))?;
        return Ok((created, written, None, Value::Null));
    }
    let waited = guarded(
        stop,
        env,
        undo,
        redeploy::redeploy_and_wait(env, None, &p.task_definition, &p.options.wait, out),
    )
    .await
    .map_err(|e| Failure::at(Step::Switch, e))?;
    let deployed = match waited {
        (_, Ok(d)) => d,
        (started, Err(not_completed)) => {
            let why = match &started {
                Some(s) => crate::deploy::why::why(env, &s.deployment_id, out).await,
                None => crate::deploy::why::Why::default(),
            };
            let message = format!("deploying {}: {not_completed}", settings.service);
            return Err(Failure {
                step: Step::Switch,
                error: Error::external(why.explain(message)).with_details(why.details()),
                deploy_failed: true,
            });
        }
    };
    out.status(format!(
        "service {}: deployment {} completed in {:.1}s",
        settings.service, deployed.deployment_id, deployed.seconds
    ));

    let mut smoke = Value::Null;
    if !p.options.skip_smoke {
        smoke = guarded(
            stop,
            env,
            undo,
            smoke_step::run(env, &p.base, new_secret.clone(), p.options.wait.settle, out),
        )
        .await
        .map_err(|e| Failure::at(Step::Smoke, e))?;
    }
    Ok((created, written, Some(deployed), smoke))
}

/// Writes the new webhook secret where the container reads it: the whole secret, or its JSON
/// key (the document read now, every other key kept), as a new version.
async fn write_secret(
    env: &Env,
    p: &RotatePlan,
    new_secret: &crate::secret::SecretString,
) -> Result<Written> {
    let id = &p.secret_id;
    if let Some(parameter) = &p.parameter {
        return env.put_parameter(parameter, new_secret).await;
    }
    match &p.target {
        Target::JsonKey { key, .. } => {
            let document = env.sm.value(id).await?;
            let next =
                wiring::set_json_key(&document, id, key, new_secret, p.options.add_json_key)?;
            env.sm.put(id, &next).await
        }
        _ => env.sm.put(id, new_secret).await,
    }
}

/// Runs `fut` unless a stop is requested first; then the error says what was done and how to
/// undo it.
async fn guarded<T>(
    stop: &Shutdown,
    env: &Env,
    undo: &Undo,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        r = fut => r,
        signal = stop.wait() => Err(stopped(env, signal, undo)),
    }
}

/// The error of a rotation stopped half-way: exit 130, what is live, the commands to undo it.
fn stopped(env: &Env, signal: shutdown::Signal, undo: &Undo) -> Error {
    let commands = undo.commands(env);
    let hint = if commands.is_empty() {
        "the rotation stopped before changing anything".to_owned()
    } else {
        format!(
            "the rotation stopped half-way (nothing was rolled back); to undo it by hand: {}",
            commands.join("; ")
        )
    };
    shutdown::interrupted(signal, Some(&hint))
}

async fn disable_duplicates(
    stripe: &StripeClient,
    url: &str,
    keep: &str,
    out: &Printer,
) -> Result<Vec<String>> {
    let all = stripe.list_webhook_endpoints().await.map_err(|e| {
        e.context(
            "step 5: listing webhook endpoints to disable the old ones (the new endpoint is live)",
        )
    })?;
    let mut disabled = Vec::new();
    for e in duplicates(&all, url, Some(keep)) {
        if let Err(err) = stripe.set_webhook_endpoint_disabled(&e.id, true).await {
            return Err(err.context(format!(
                "step 5: disabling old endpoint {} (the new endpoint {keep} is live; disabled so far: {})",
                e.id,
                if disabled.is_empty() { "none".to_owned() } else { disabled.join(", ") }
            )));
        }
        out.status(format!("disabled webhook endpoint {}", e.id));
        disabled.push(e.id.clone());
    }
    Ok(disabled)
}

/// The command that disables an endpoint at the configured Stripe API.
fn disable_endpoint_command(api_base: &str, id: &str) -> String {
    format!(
        "curl {} -u \"$STRIPE_SECRET_KEY:\" -d disabled=true",
        http::join(api_base, &format!("/v1/webhook_endpoints/{id}"))
    )
}

/// The command that deletes an endpoint at the configured Stripe API.
fn delete_endpoint_command(api_base: &str, id: &str) -> String {
    format!(
        "curl -X DELETE {} -u \"$STRIPE_SECRET_KEY:\"",
        http::join(api_base, &format!("/v1/webhook_endpoints/{id}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(id: &str, url: &str, status: &str) -> WebhookEndpoint {
        serde_json::from_value(json!({"id": id, "url": url, "status": status})).unwrap()
    }

    #[test]
    fn duplicates_are_the_other_enabled_endpoints_for_the_url() {
        let u = "https://a.example/hook";
        let all = vec![
            ep("we_1", u, "enabled"),
            ep("we_2", u, "disabled"),
            ep("we_3", "https://b.example/hook", "enabled"),
            ep("we_4", u, "enabled"),
        ];
        let ids = |v: Vec<&WebhookEndpoint>| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(duplicates(&all, u, None)), vec!["we_1", "we_4"]);
        assert_eq!(ids(duplicates(&all, u, Some("we_4"))), vec!["we_1"]);
    }

    #[test]
    fn webhook_url_requires_https_unless_allowed() {
        assert_eq!(
            webhook_url("https://a.example", "/api/webhooks/stripe", false).unwrap(),
            "https://a.example/api/webhooks/stripe"
        );
        let e = webhook_url("http://127.0.0.1:9", "/h", false).unwrap_err();
        assert_eq!(e.exit, crate::error::Exit::Usage);
        assert!(webhook_url("http://127.0.0.1:9", "/h", true).is_ok());
        assert!(webhook_url("ftp://x", "/h", true).is_err());
    }

    #[test]
    fn the_undo_command_uses_the_configured_stripe_api() {
        assert_eq!(
            delete_endpoint_command("http://127.0.0.1:9/", "we_1"),
            "curl -X DELETE http://127.0.0.1:9/v1/webhook_endpoints/we_1 -u \"$STRIPE_SECRET_KEY:\""
        );
    }
}
