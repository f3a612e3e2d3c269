//! `stripe-ops webhook rotate`: a new Stripe webhook endpoint, its secret into Secrets Manager,
//! redeploy, smoke with the new secret, then disable the old endpoints for the same URL.
//! Transactional: when the redeploy or the smoke fails, the previous secret version goes back
//! to AWSCURRENT, the service is redeployed and the new endpoint is deleted.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::plan::Plan;
use super::secrets::{self, Written};
use super::service;
use super::taskdef::{self, SecretRef};
use super::{AwsEnvArgs, ChangeArgs, Env, deploy, enable, smoke_step};
use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::http;
use crate::output;
use crate::secret::SecretString;
use crate::stripe_api::{StripeClient, WebhookEndpoint};

#[derive(Debug, clap::Subcommand)]
pub enum WebhookCommand {
    /// Rotate the webhook secret of an environment without downtime
    Rotate(Box<RotateArgs>),
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub target: AwsEnvArgs,
    #[command(flatten)]
    pub change: ChangeArgs,
    /// Public base URL of the app (else the config, else PUBLIC_BASE_URL of the container in
    /// the task definition)
    #[arg(long, value_name = "URL")]
    pub public_base_url: Option<String>,
    /// Accept an http:// base URL (local tests only; Stripe requires https)
    #[arg(long)]
    pub allow_http: bool,
    /// Events the new endpoint receives (comma-separated or repeated; default from the config,
    /// else checkout.session.completed)
    #[arg(long, value_delimiter = ',', value_name = "TYPE")]
    pub events: Vec<String>,
    /// Do not run the deterministic smoke with the new secret
    #[arg(long)]
    pub skip_smoke: bool,
    /// Leave the other enabled endpoints with the same URL enabled
    #[arg(long)]
    pub skip_disable_duplicates: bool,
}

pub async fn run(ctx: &Ctx, cmd: WebhookCommand) -> Result<()> {
    match cmd {
        WebhookCommand::Rotate(args) => rotate(ctx, *args).await,
    }
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

/// What has been changed so far, so that a failure can undo exactly that.
#[derive(Default)]
struct Undo {
    endpoint: Option<String>,
    /// (secret id, previous version, new version)
    secret: Option<(String, String, String)>,
    redeployed: bool,
}

async fn rotate(ctx: &Ctx, args: RotateArgs) -> Result<()> {
    let started = Instant::now();
    let env = Env::connect(ctx, &args.target, args.public_base_url.clone()).await?;
    let settings = &env.settings;
    let base = service::public_base_url(&env).await?;
    let url = webhook_url(&base, &settings.contract.paths.webhook, args.allow_http)?;
    let events = if args.events.is_empty() {
        settings.enabled_events.clone()
    } else {
        args.events.clone()
    };
    // Read everything first.
    let Some(wh_info) = secrets::info(&env.sm, &settings.webhook_secret_id).await? else {
        return Err(Error::usage(format!(
            "secret {} does not exist; run `stripe-ops enable --env {}` first",
            settings.webhook_secret_id, settings.name
        )));
    };
    let previous_version = wh_info
        .current_version()
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::external(format!(
                "secret {} has no AWSCURRENT version",
                settings.webhook_secret_id
            ))
        })?;
    let svc = service::service(&env).await?;
    let (td, _) = service::task_definition(&env, &svc.task_definition).await?;
    let wanted = [SecretRef::new(enable::WEBHOOK_VAR, wh_info.arn.clone())];
    if !taskdef::injects(td.container_definitions(), &settings.container, &wanted)? {
        return Err(Error::usage(format!(
            "{} does not inject {} into container {} by ARN; run `stripe-ops enable --env {}` first",
            svc.task_definition,
            enable::WEBHOOK_VAR,
            settings.container,
            settings.name
        )));
    }
    let key = secrets::value(&env.sm, &settings.secret_key_id).await?;
    let stripe = StripeClient::new(&settings.stripe_api_base, key, Duration::from_secs(30))?;
    let existing = stripe
        .list_webhook_endpoints()
        .await
        .map_err(|e| e.context("listing Stripe webhook endpoints"))?;
    let old: Vec<String> = duplicates(&existing, &url, None)
        .iter()
        .map(|e| e.id.clone())
        .collect();

    let mut plan = Plan::new(&settings.name);
    plan.step(format!(
        "create a Stripe webhook endpoint for {url} ({})",
        events.join(", ")
    ));
    plan.step(format!(
        "put its secret into {} (now version {previous_version})",
        settings.webhook_secret_id
    ));
    plan.step(format!(
        "redeploy {} and wait up to {}s",
        settings.service,
        args.change.wait.wait_timeout.as_secs()
    ));
    if args.skip_smoke {
        plan.skip("deterministic smoke (--skip-smoke)");
    } else {
        plan.step("deterministic smoke with the new secret");
    }
    let disable_step = format!(
        "disable the other enabled endpoints for this URL: {}",
        if old.is_empty() {
            "none now".to_owned()
        } else {
            old.join(", ")
        }
    );
    if args.skip_disable_duplicates {
        plan.skip(disable_step);
    } else {
        plan.step(disable_step);
    }
    if args.change.dry_run {
        return enable::print_dry_run(&plan);
    }
    super::confirm_production(settings, &plan, args.change.yes)?;

    // Step 2: the new endpoint.
    let description = format!(
        "{} webhook for {} (stripe-ops rotate)",
        settings.app, settings.name
    );
    let created = stripe
        .create_webhook_endpoint(&url, &events, &description)
        .await
        .map_err(|e| {
            e.context(
                "rotation failed at step 2 (creating the webhook endpoint); nothing was changed",
            )
        })?;
    output::status(format!("created webhook endpoint {} for {url}", created.id));
    let mut undo = Undo {
        endpoint: Some(created.id.clone()),
        ..Default::default()
    };
    interrupt_hint(&env, &undo);
    let Some(new_secret) = created.secret.clone() else {
        let failure = Error::external("Stripe created the endpoint without returning its secret");
        return Err(rollback(&env, &stripe, &undo, &args, 2, failure, false).await);
    };

    // Step 3: the secret, then the redeploy.
    let written = match put_and_redeploy(&env, &new_secret, &previous_version, &mut undo, &args)
        .await
    {
        Ok(w) => w,
        Err((failure, deploy_failed)) => {
            return Err(rollback(&env, &stripe, &undo, &args, 3, failure, !deploy_failed).await);
        }
    };
    let deployed = written.1;
    let written = written.0;

    // Step 4: the smoke with the new secret.
    let mut smoke = Value::Null;
    if !args.skip_smoke {
        match smoke_step::run(&env, &base, new_secret.clone()).await {
            Ok(report) => smoke = report,
            Err(failure) => {
                return Err(rollback(&env, &stripe, &undo, &args, 4, failure, true).await);
            }
        }
    }

    crate::runtime::on_interrupt(Some(
        "the new endpoint and secret are live; old endpoints may still be enabled (see `stripe-ops status`)".into(),
    ));
    // Step 5: disable the old endpoints (after the new one is proven).
    let mut disabled = Vec::new();
    if !args.skip_disable_duplicates {
        disabled = disable_duplicates(&stripe, &url, &created.id).await?;
    }

    let seconds = started.elapsed().as_secs_f64();
    if output::mode().json {
        output::json(&json!({
            "ok": true,
            "env": settings.name,
            "webhook_url": url,
            "endpoint": {"id": created.id, "url": created.url, "status": created.status},
            "secret": written,
            "deployment": deployed,
            "smoke": smoke,
            "disabled": disabled,
            "seconds": seconds,
        }));
    } else {
        for id in &disabled {
            output::line(format!("disabled webhook endpoint {id}"));
        }
        output::line(format!(
            "{} rotated the webhook secret of {} in {seconds:.1}s: endpoint {} now signs for {url}",
            output::ok_mark(true),
            settings.name,
            created.id
        ));
    }
    Ok(())
}

/// Step 3. On failure, says whether the deployment itself failed (then the rollback does not
/// wait for its own redeploy, which would most likely not complete either).
async fn put_and_redeploy(
    env: &Env,
    new_secret: &SecretString,
    previous_version: &str,
    undo: &mut Undo,
    args: &RotateArgs,
) -> std::result::Result<(Written, deploy::Deployed), (Error, bool)> {
    let id = &env.settings.webhook_secret_id;
    let written = secrets::put(&env.sm, id, new_secret)
        .await
        .map_err(|e| (e, false))?;
    output::status(format!(
        "secret {id}: new version {} ({} characters)",
        written.version_id, written.value_length
    ));
    undo.secret = Some((
        id.clone(),
        previous_version.to_owned(),
        written.version_id.clone(),
    ));
    interrupt_hint(env, undo);
    deploy::redeploy(env, None).await.map_err(|e| (e, false))?;
    undo.redeployed = true;
    interrupt_hint(env, undo);
    match deploy::wait(env, &args.change.wait).await {
        Ok(Ok(d)) => {
            output::status(format!(
                "service {}: deployment {} completed in {:.1}s",
                env.settings.service, d.deployment_id, d.seconds
            ));
            Ok((written, d))
        }
        Ok(Err(not_completed)) => Err((
            Error::external(format!(
                "deploying {}: {not_completed}",
                env.settings.service
            )),
            true,
        )),
        Err(e) => Err((e, false)),
    }
}

async fn disable_duplicates(stripe: &StripeClient, url: &str, keep: &str) -> Result<Vec<String>> {
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
        output::status(format!("disabled webhook endpoint {}", e.id));
        disabled.push(e.id.clone());
    }
    Ok(disabled)
}

/// Undoes what `undo` records and returns the error to exit with: what failed, and either
/// "rollback completed" or exactly what remains with the commands to finish by hand.
async fn rollback(
    env: &Env,
    stripe: &StripeClient,
    undo: &Undo,
    args: &RotateArgs,
    step: u8,
    failure: Error,
    wait_for_redeploy: bool,
) -> Error {
    let what = format!("rotation failed at step {step}: {}", failure.message());
    if args.change.wait.no_rollback {
        return Error::external(format!(
            "{what}; nothing rolled back (--no-rollback). To roll back by hand: {}",
            manual_commands(env, undo).join("; ")
        ));
    }
    output::status(format!("{what}; rolling back"));
    let mut done = Vec::new();
    let mut remaining: Vec<(String, String)> = Vec::new();
    let mut secret_restored = true;
    if let Some((id, previous, current)) = &undo.secret {
        match secrets::restore_current(&env.sm, id, previous, current).await {
            Ok(()) => done.push(format!("AWSCURRENT of {id} is version {previous} again")),
            Err(e) => {
                secret_restored = false;
                remaining.push((
                    e.message().to_owned(),
                    secrets::restore_command(id, previous, current),
                ));
            }
        }
    }
    if undo.redeployed && secret_restored {
        match deploy::redeploy(env, None).await {
            Ok(()) if !wait_for_redeploy => done.push(format!(
                "a redeploy of {} has started",
                env.settings.service
            )),
            Ok(()) => match deploy::wait(env, &args.change.wait).await {
                Ok(Ok(_)) => done.push(format!(
                    "{} redeployed with the previous secret",
                    env.settings.service
                )),
                Ok(Err(n)) => remaining.push((
                    format!("the redeploy with the previous secret: {n}"),
                    format!("stripe-ops status --env {}", env.settings.name),
                )),
                Err(e) => {
                    remaining.push((e.message().to_owned(), deploy::redeploy_command(env, None)))
                }
            },
            Err(e) => remaining.push((e.message().to_owned(), deploy::redeploy_command(env, None))),
        }
    } else if undo.redeployed {
        remaining.push((
            "the service runs with the new secret".to_owned(),
            deploy::redeploy_command(env, None),
        ));
    }
    if let Some(id) = &undo.endpoint {
        match stripe.delete_webhook_endpoint(id).await {
            Ok(()) => done.push(format!("webhook endpoint {id} deleted")),
            Err(e) => remaining.push((e.message().to_owned(), delete_endpoint_command(id))),
        }
    }
    if remaining.is_empty() {
        Error::external(format!("{what}; rollback completed: {}", done.join(", ")))
    } else {
        let left: Vec<String> = remaining
            .iter()
            .map(|(why, cmd)| format!("{why} — run: {cmd}"))
            .collect();
        Error::external(format!(
            "{what}; rollback INCOMPLETE. Done: {}. Remaining: {}",
            if done.is_empty() {
                "nothing".to_owned()
            } else {
                done.join(", ")
            },
            left.join("; ")
        ))
    }
}

/// What Ctrl-C prints from now on: how to undo the part of the rotation done so far.
fn interrupt_hint(env: &Env, undo: &Undo) {
    crate::runtime::on_interrupt(Some(format!(
        "the rotation stopped half-way; to undo it by hand: {}",
        manual_commands(env, undo).join("; ")
    )));
}

fn delete_endpoint_command(id: &str) -> String {
    format!(
        "curl -X DELETE https://api.stripe.com/v1/webhook_endpoints/{id} -u \"$STRIPE_SECRET_KEY:\""
    )
}

fn manual_commands(env: &Env, undo: &Undo) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((id, previous, current)) = &undo.secret {
        out.push(secrets::restore_command(id, previous, current));
    }
    if undo.redeployed {
        out.push(deploy::redeploy_command(env, None));
    }
    if let Some(id) = &undo.endpoint {
        out.push(delete_endpoint_command(id));
    }
    out
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
}
