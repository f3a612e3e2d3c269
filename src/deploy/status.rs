//! `stripe-ops status`: the read-only state of an environment — secrets (metadata only), the key's
//! mode, where the task definition takes each Stripe variable from (stripe-ops' own secret by
//! ARN, or the team's wiring: a secret, a key of a JSON secret), the service's deployments and
//! settings, and the Stripe endpoints for the webhook URL. Exit 1 when something is wrong,
//! listed as findings.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::taskdef::{self, SecretRef};
use super::wiring::{self, Target};
use super::{Env, KEY_VAR, WEBHOOK_VAR, WiredParameter};
use crate::aws::ecs::ServiceView;
use crate::aws::secrets_manager::SecretInfo;
use crate::config::EnvSettings;
use crate::error::{Error, Exit, Result};
use crate::printer::{Printer, Report};
use crate::stripe_api::{KeyMode, StripeClient, WebhookEndpoint, key_mode};

#[derive(Debug, Serialize)]
struct EndpointView {
    id: String,
    status: String,
    created: i64,
    description: Option<String>,
    enabled_events: Vec<String>,
    api_version: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Findings {
    secrets: Vec<SecretView>,
    key_mode: Option<&'static str>,
    task_definition: Option<String>,
    container_secrets: Vec<SecretRef>,
    /// Both variables reach the container from where stripe-ops writes them.
    injects_both: bool,
    /// For each variable: where the container reads it from, in words.
    wiring: Vec<String>,
    service: Option<ServiceView>,
    webhook_url: Option<String>,
    endpoints: Vec<EndpointView>,
    findings: Vec<String>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SecretView {
    variable: &'static str,
    /// The secret the variable comes from (stripe-ops' own id, or the team's ARN).
    id: String,
    exists: bool,
    #[serde(flatten)]
    info: Option<SecretInfo>,
    /// The SSM parameter the variable comes from (type, key, version, last change).
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter: Option<WiredParameter>,
}

/// The state of an environment and what is wrong with it.
pub struct StatusReport {
    settings: EnvSettings,
    r: Findings,
}

/// Reads everything (secrets' metadata, the key's mode, the task definition, the service, the
/// Stripe endpoints for the webhook URL) and lists the findings. Changes nothing.
pub async fn run(env: &Env) -> Result<StatusReport> {
    let s = &env.settings;
    let mut r = Findings::default();

    let svc = env.service().await?;
    let (td, _) = env.task_definition(&svc.task_definition).await?;
    r.task_definition = Some(svc.task_definition.clone());
    r.container_secrets = taskdef::secrets_of(td.container_definitions(), &s.container)?;
    let task_account = wiring::account_of(td.task_definition_arn().unwrap_or_default()).to_owned();
    let mut reached = 0;
    let mut key_target = Target::Own;
    for (var, own_id) in [
        (KEY_VAR, &s.secret_key_id),
        (WEBHOOK_VAR, &s.webhook_secret_id),
    ] {
        let current = r
            .container_secrets
            .iter()
            .find(|c| c.name == var)
            .map(|c| c.value_from.clone());
        let own = env.sm.info(own_id).await?;
        r.wiring.push(format!(
            "{var}: {}",
            wiring::describe_current(current.as_deref())
        ));
        let target = match wiring::target(
            var,
            current.as_deref(),
            own.as_ref().map(|i| i.arn.as_str()),
            Default::default(),
        ) {
            Ok(t) => t,
            Err(e) => {
                r.findings.push(e.message().to_owned());
                continue;
            }
        };
        let id = target.secret(own_id).to_owned();
        let (info, parameter) = match &target {
            Target::Own => (own, None),
            // Another account's, missing, or in plain text: a finding.
            Target::Parameter(p) => match env
                .parameter(var, p, &task_account, Default::default())
                .await
            {
                Ok(w) => (None, Some(w)),
                Err(e) if e.exit == Exit::Usage => {
                    r.findings.push(e.message().to_owned());
                    continue;
                }
                Err(e) => return Err(e),
            },
            _ => (env.sm.info(&id).await?, None),
        };
        match (&current, &info, &parameter) {
            (_, None, None) => r
                .findings
                .push(format!("secret {id} ({var}) does not exist")),
            (None, Some(i), _) => r.findings.push(format!(
                "container {} of {} does not inject {var} by ARN {}",
                s.container, svc.task_definition, i.arn
            )),
            _ => reached += 1,
        }
        if let Target::JsonKey { secret, key } = &target
            && info.is_some()
        {
            match env.sm.value(secret).await {
                Ok(doc) => {
                    if let Err(e) = wiring::json_key_value(&doc, secret, key) {
                        r.findings.push(format!("{var}: {}", e.message()));
                    }
                }
                Err(e) => r.notes.push(format!(
                    "could not read {secret} to check key {key}: {}",
                    e.message()
                )),
            }
        }
        if var == KEY_VAR {
            key_target = target;
        }
        r.secrets.push(SecretView {
            variable: var,
            exists: info.is_some() || parameter.is_some(),
            id,
            info,
            parameter,
        });
    }
    r.injects_both = reached == 2;
    if let Some(p) = svc.primary()
        && p.rollout_state.as_deref() == Some("FAILED")
    {
        r.findings
            .push(format!("the primary deployment {} FAILED", p.id));
    }
    r.service = Some(svc);

    let base = match &s.base_url {
        Some(b) => Some(b.clone()),
        None => taskdef::base_url_of(&td, &s.container).ok(),
    };
    if base.is_none() {
        r.notes.push(
            "no base URL (no --base-url and no PUBLIC_BASE_URL): endpoints not checked".into(),
        );
    }
    r.webhook_url = base.map(|b| crate::http::join(&b, &s.contract.paths.webhook));
    if r.secrets
        .first()
        .is_some_and(|v| v.variable == KEY_VAR && v.exists)
    {
        stripe_side(env, &key_target, &mut r).await?;
    }
    Ok(StatusReport {
        settings: env.settings.clone(),
        r,
    })
}

/// The key's mode and the endpoints for the webhook URL (when Stripe answers).
async fn stripe_side(env: &Env, key_target: &Target, r: &mut Findings) -> Result<()> {
    let key = env
        .read_wired(key_target, &env.settings.secret_key_id)
        .await?;
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
        if e.refused() {
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
    let settings = &env.settings;
    for e in mine.iter().filter(|e| e.enabled()) {
        r.findings.extend(drift(
            e,
            &settings.enabled_events,
            settings.api_version.as_deref(),
        ));
    }
    r.endpoints = mine
        .into_iter()
        .map(|e| EndpointView {
            id: e.id.clone(),
            status: e.status.clone(),
            created: e.created,
            description: e.description.clone(),
            enabled_events: e.enabled_events.clone(),
            api_version: e.api_version.clone(),
        })
        .collect();
    Ok(())
}

/// Pure: how an enabled endpoint drifted from the config: event types the config requires that
/// it does not receive (`*` receives all), and an API version other than the config's (when
/// the config sets one).
fn drift(e: &WebhookEndpoint, required: &[String], api_version: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let all = e.enabled_events.iter().any(|t| t == "*");
    let missing: Vec<&str> = required
        .iter()
        .filter(|t| !all && !e.enabled_events.contains(t))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        out.push(format!(
            "endpoint {} does not receive {} (the config's enabled_events requires it)",
            e.id,
            missing.join(", ")
        ));
    }
    if let Some(want) = api_version
        && e.api_version.as_deref() != Some(want)
    {
        out.push(format!(
            "endpoint {} renders events as API version {}, the config's api_version is {want}",
            e.id,
            e.api_version
                .as_deref()
                .unwrap_or("of the account's default")
        ));
    }
    out
}

impl Report for StatusReport {
    fn json(&self) -> serde_json::Value {
        let s = &self.settings;
        json!({
            "ok": self.r.findings.is_empty(),
            "env": s.name,
            "region": s.region,
            "cluster": s.cluster,
            "service_name": s.service,
            "container": s.container,
            "report": self.r,
        })
    }

    fn human(&self, out: &Printer) -> Vec<String> {
        human(&self.settings, &self.r, out)
    }

    fn verdict(&self) -> Result<()> {
        let r = &self.r;
        if r.findings.is_empty() {
            return Ok(());
        }
        Err(Error::failed(format!(
            "{} finding(s) for {}: {}",
            r.findings.len(),
            self.settings.name,
            r.findings.join("; ")
        )))
    }
}

fn human(s: &EnvSettings, r: &Findings, out: &Printer) -> Vec<String> {
    let mut lines = Vec::new();
    lines.push(format!(
        "environment {} ({}, {} / {})",
        s.name, s.region, s.cluster, s.service
    ));
    for sv in &r.secrets {
        if let Some(p) = &sv.parameter {
            lines.push(format!(
                "  SSM parameter {}: {} {} version {} key {} changed {}",
                sv.id,
                p.arn,
                p.info.kind,
                p.info.version,
                p.info.key_id.as_deref().unwrap_or("alias/aws/ssm"),
                p.info.last_modified.as_deref().unwrap_or("?")
            ));
            continue;
        }
        match &sv.info {
            Some(i) => {
                let stages: Vec<String> = i
                    .versions
                    .iter()
                    .map(|(v, st)| format!("{v} [{}]", st.join(",")))
                    .collect();
                lines.push(format!(
                    "  secret {}: {} changed {} versions {}",
                    sv.id,
                    i.arn,
                    i.last_changed.as_deref().unwrap_or("?"),
                    stages.join(" ")
                ));
            }
            None => lines.push(format!("  secret {}: MISSING", sv.id)),
        }
    }
    if let Some(m) = r.key_mode {
        lines.push(format!("  key mode: {m}"));
    }
    lines.push(format!(
        "  task definition {}: injects both secrets: {}",
        r.task_definition.as_deref().unwrap_or("?"),
        if r.injects_both { "yes" } else { "no" }
    ));
    lines.extend(r.wiring.iter().map(|w| format!("    {w}")));
    if let Some(svc) = &r.service {
        lines.push(format!(
            "  service: running {}/{}; {}",
            svc.running,
            svc.desired,
            svc.deployment_settings()
        ));
        for d in &svc.deployments {
            lines.push(format!(
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
        lines.push(format!("  webhook URL {url}"));
        for e in &r.endpoints {
            lines.push(format!(
                "    endpoint {} {} API version {}: {}",
                e.id,
                e.status,
                e.api_version.as_deref().unwrap_or("(account default)"),
                e.enabled_events.join(", ")
            ));
        }
    }
    for n in &r.notes {
        lines.push(format!("  note: {n}"));
    }
    for f in &r.findings {
        lines.push(format!("  {} {f}", out.ok_mark(false)));
    }
    if r.findings.is_empty() {
        lines.push(format!("  {} no findings", out.ok_mark(true)));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(events: &[&str], version: Option<&str>) -> WebhookEndpoint {
        serde_json::from_value(json!({"id": "we_1", "url": "u", "status": "enabled",
            "enabled_events": events, "api_version": version}))
        .unwrap()
    }

    #[test]
    fn drift_names_missing_types_and_another_api_version() {
        let required = vec![
            "checkout.session.completed".to_owned(),
            "invoice.paid".to_owned(),
        ];
        let found = drift(
            &ep(&["checkout.session.completed"], Some("2024-06-20")),
            &required,
            Some("2024-06-20"),
        );
        assert_eq!(found.len(), 1);
        assert!(
            found[0].contains("does not receive invoice.paid"),
            "{found:?}"
        );
        let found = drift(&ep(&["*"], None), &required, Some("2024-06-20"));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].contains("account's default, the config's api_version is 2024-06-20"),
            "{found:?}"
        );
        assert!(drift(&ep(&["*"], None), &required, None).is_empty());
    }
}
