//! `stripe-ops status`: the read-only state of an environment — secrets (metadata only), the key's
//! mode, whether the task definition injects both secrets, the service's deployments, and the
//! Stripe endpoints for the webhook URL. Exit 1 when something is wrong, listed as findings.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::secrets::{self, SecretInfo};
use super::service::{self, ServiceView};
use super::taskdef::{self, SecretRef};
use super::{AwsEnvArgs, Env, enable};
use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::output;
use crate::stripe_api::{KeyMode, StripeClient, WebhookEndpoint, key_mode};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: AwsEnvArgs,
    /// Public base URL of the app (else the config, else PUBLIC_BASE_URL of the container)
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
}

#[derive(Debug, Serialize)]
struct EndpointView {
    id: String,
    status: String,
    created: i64,
    description: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    secrets: Vec<SecretView>,
    key_mode: Option<&'static str>,
    task_definition: Option<String>,
    container_secrets: Vec<SecretRef>,
    injects_both: bool,
    service: Option<ServiceView>,
    webhook_url: Option<String>,
    endpoints: Vec<EndpointView>,
    findings: Vec<String>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SecretView {
    variable: &'static str,
    id: String,
    exists: bool,
    #[serde(flatten)]
    info: Option<SecretInfo>,
}

pub async fn run(ctx: &Ctx, args: StatusArgs) -> Result<()> {
    let env = Env::connect(ctx, &args.target, args.base_url.clone()).await?;
    let s = &env.settings;
    let mut r = Report::default();

    for (var, id) in [
        (enable::KEY_VAR, &s.secret_key_id),
        (enable::WEBHOOK_VAR, &s.webhook_secret_id),
    ] {
        let info = secrets::info(&env.sm, id).await?;
        if info.is_none() {
            r.findings
                .push(format!("secret {id} ({var}) does not exist"));
        }
        r.secrets.push(SecretView {
            variable: var,
            id: id.clone(),
            exists: info.is_some(),
            info,
        });
    }

    let svc = service::service(&env).await?;
    let (td, _) = service::task_definition(&env, &svc.task_definition).await?;
    r.task_definition = Some(svc.task_definition.clone());
    r.container_secrets = taskdef::secrets_of(td.container_definitions(), &s.container)?;
    let wanted: Vec<SecretRef> = r
        .secrets
        .iter()
        .filter_map(|sv| {
            sv.info
                .as_ref()
                .map(|i| SecretRef::new(sv.variable, &i.arn))
        })
        .collect();
    r.injects_both =
        wanted.len() == 2 && taskdef::injects(td.container_definitions(), &s.container, &wanted)?;
    for w in &wanted {
        if !r.container_secrets.contains(w) {
            r.findings.push(format!(
                "container {} of {} does not inject {} by ARN {}",
                s.container, svc.task_definition, w.name, w.value_from
            ));
        }
    }
    if let Some(p) = svc.primary()
        && p.rollout_state.as_deref() == Some("FAILED")
    {
        r.findings
            .push(format!("the primary deployment {} FAILED", p.id));
    }
    r.service = Some(svc);

    let base = match &s.base_url {
        Some(b) => Some(b.clone()),
        None => service::base_url_of(&td, &s.container).ok(),
    };
    if base.is_none() {
        r.notes.push(
            "no base URL (no --base-url and no PUBLIC_BASE_URL): endpoints not checked".into(),
        );
    }
    r.webhook_url = base.map(|b| crate::http::join(&b, &s.contract.paths.webhook));
    if r.secrets[0].exists {
        stripe_side(&env, &mut r).await?;
    }
    print(&env, &r);
    if r.findings.is_empty() {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "{} finding(s) for {}: {}",
            r.findings.len(),
            s.name,
            r.findings.join("; ")
        )))
    }
}

/// The key's mode and the endpoints for the webhook URL (when Stripe answers).
async fn stripe_side(env: &Env, r: &mut Report) -> Result<()> {
    let key = secrets::value(&env.sm, &env.settings.secret_key_id).await?;
    r.key_mode = Some(match key_mode(&key) {
        Some(KeyMode::Test) => "test",
        Some(KeyMode::Live) => "live",
        None => {
            r.findings.push(format!(
                "secret {} does not hold a Stripe secret key (sk_/rk_, test or live)",
                env.settings.secret_key_id
            ));
            return Ok(());
        }
    });
    let stripe = StripeClient::new(&env.settings.stripe_api_base, key, Duration::from_secs(15))?;
    if let Err(e) = stripe.account().await {
        let refused = [" 401 ", " 403 "].iter().any(|c| e.message().contains(c));
        if refused {
            r.findings
                .push(format!("Stripe refuses the stored key: {}", e.message()));
        } else {
            r.notes
                .push(format!("could not ask Stripe: {}", e.message()));
        }
        return Ok(());
    }
    let Some(url) = r.webhook_url.clone() else {
        return Ok(());
    };
    let all = match stripe.list_webhook_endpoints().await {
        Ok(all) => all,
        Err(e) => {
            r.notes
                .push(format!("could not list webhook endpoints: {}", e.message()));
            return Ok(());
        }
    };
    let mine: Vec<&WebhookEndpoint> = all.iter().filter(|e| e.url == url).collect();
    let enabled: Vec<&str> = mine
        .iter()
        .filter(|e| e.enabled())
        .map(|e| e.id.as_str())
        .collect();
    match enabled.len() {
        0 => r.notes.push(format!("no enabled Stripe webhook endpoint for {url}")),
        1 => {}
        n => r.findings.push(format!(
            "{n} enabled Stripe webhook endpoints for {url} ({}); `stripe-ops webhook rotate` keeps one",
            enabled.join(", ")
        )),
    }
    r.endpoints = mine
        .into_iter()
        .map(|e| EndpointView {
            id: e.id.clone(),
            status: e.status.clone(),
            created: e.created,
            description: e.description.clone(),
        })
        .collect();
    Ok(())
}

fn print(env: &Env, r: &Report) {
    let s = &env.settings;
    if output::mode().json {
        output::json(&json!({
            "ok": r.findings.is_empty(),
            "env": s.name,
            "region": s.region,
            "cluster": s.cluster,
            "service_name": s.service,
            "container": s.container,
            "report": r,
        }));
        return;
    }
    output::line(format!(
        "environment {} ({}, {} / {})",
        s.name, s.region, s.cluster, s.service
    ));
    for sv in &r.secrets {
        match &sv.info {
            Some(i) => {
                let stages: Vec<String> = i
                    .versions
                    .iter()
                    .map(|(v, st)| format!("{v} [{}]", st.join(",")))
                    .collect();
                output::line(format!(
                    "  secret {}: {} changed {} versions {}",
                    sv.id,
                    i.arn,
                    i.last_changed.as_deref().unwrap_or("?"),
                    stages.join(" ")
                ));
            }
            None => output::line(format!("  secret {}: MISSING", sv.id)),
        }
    }
    if let Some(m) = r.key_mode {
        output::line(format!("  key mode: {m}"));
    }
    output::line(format!(
        "  task definition {}: injects both secrets: {}",
        r.task_definition.as_deref().unwrap_or("?"),
        if r.injects_both { "yes" } else { "no" }
    ));
    if let Some(svc) = &r.service {
        output::line(format!(
            "  service: running {}/{}",
            svc.running, svc.desired
        ));
        for d in &svc.deployments {
            output::line(format!(
                "    deployment {} {} {} running {}/{} {}",
                d.id,
                d.status,
                d.rollout_state.as_deref().unwrap_or("?"),
                d.running,
                d.desired,
                d.task_definition
            ));
        }
    }
    if let Some(url) = &r.webhook_url {
        output::line(format!("  webhook URL {url}"));
        for e in &r.endpoints {
            output::line(format!("    endpoint {} {}", e.id, e.status));
        }
    }
    for n in &r.notes {
        output::line(format!("  note: {n}"));
    }
    for f in &r.findings {
        output::line(format!("  {} {f}", output::ok_mark(false)));
    }
    if r.findings.is_empty() {
        output::line(format!("  {} no findings", output::ok_mark(true)));
    }
}
