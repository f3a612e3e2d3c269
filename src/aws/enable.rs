//! `stripe-ops enable`: put the Stripe secrets into Secrets Manager, make the ECS task
//! definition inject them by ARN, redeploy and wait, then run the deterministic smoke.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::plan::{self, Plan};
use super::secrets::{self, SecretInfo, Written};
use super::service::{self, ServiceView};
use super::taskdef::{self, SecretRef};
use super::{AwsEnvArgs, ChangeArgs, Env, deploy, keys, smoke_step};
use crate::cli::Ctx;
use crate::error::{Error, Result};
use crate::output;
use crate::secret::{self, SecretString};
use crate::stripe_api::StripeClient;

pub const KEY_VAR: &str = "STRIPE_SECRET_KEY";
pub const WEBHOOK_VAR: &str = "STRIPE_WEBHOOK_SECRET";

#[derive(Debug, clap::Args)]
pub struct EnableArgs {
    #[command(flatten)]
    pub target: AwsEnvArgs,
    #[command(flatten)]
    pub change: ChangeArgs,
    /// File holding the Stripe secret key (sk_test_/sk_live_/rk_test_/rk_live_)
    #[arg(long, value_name = "FILE")]
    pub stripe_secret_key_file: Option<PathBuf>,
    /// File holding the webhook signing secret (whsec_...)
    #[arg(long, value_name = "FILE", conflicts_with = "generate_webhook_secret")]
    pub stripe_webhook_secret_file: Option<PathBuf>,
    /// Generate a fresh whsec_ webhook secret from the OS's CSPRNG
    #[arg(long)]
    pub generate_webhook_secret: bool,
    /// Create a secret that does not exist yet (otherwise a missing secret is exit 2)
    #[arg(long)]
    pub create_secrets: bool,
    /// Accept a live key for a non-production environment
    #[arg(long)]
    pub allow_live_key: bool,
    /// Public base URL of the app for the smoke (else the config, else PUBLIC_BASE_URL of the
    /// container in the task definition)
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Leave the secrets' values as they are
    #[arg(long)]
    pub skip_put_secrets: bool,
    /// Leave the task definition as it is
    #[arg(long)]
    pub skip_ecs_patch: bool,
    /// Do not redeploy the service
    #[arg(long)]
    pub skip_restart: bool,
    /// Do not run the deterministic smoke at the end
    #[arg(long)]
    pub skip_smoke: bool,
}

/// The secret values given on the command line.
struct Inputs {
    key: Option<SecretString>,
    webhook: Option<SecretString>,
}

fn read_inputs(args: &EnableArgs) -> Result<Inputs> {
    let key = match &args.stripe_secret_key_file {
        Some(p) => Some(secret::read_file(p, "Stripe secret key")?),
        None => None,
    };
    let webhook = match (
        &args.stripe_webhook_secret_file,
        args.generate_webhook_secret,
    ) {
        (Some(p), _) => Some(secret::read_file(p, "webhook secret")?),
        (None, true) => Some(secret::generate_webhook_secret()),
        (None, false) => None,
    };
    if let Some(w) = &webhook {
        keys::check_webhook_secret(w)?;
    }
    Ok(Inputs { key, webhook })
}

/// One of the two secrets: its id, the variable it becomes, what exists, what was given.
struct Slot<'a> {
    var: &'static str,
    id: String,
    info: Option<SecretInfo>,
    value: Option<&'a SecretString>,
}

enum SecretAction {
    Create,
    Put,
    Keep,
}

impl Slot<'_> {
    fn action(&self, args: &EnableArgs) -> Result<SecretAction> {
        let exists = self.info.is_some();
        match (exists, self.value.is_some() && !args.skip_put_secrets) {
            (true, true) => Ok(SecretAction::Put),
            (true, false) => Ok(SecretAction::Keep),
            (false, true) if args.create_secrets => Ok(SecretAction::Create),
            (false, true) => Err(Error::usage(format!(
                "secret {} does not exist; pass --create-secrets to create it",
                self.id
            ))),
            (false, false) if args.skip_put_secrets && args.skip_ecs_patch => {
                Ok(SecretAction::Keep)
            }
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

    /// The reference the container should have; before creation the ARN is not known yet.
    fn wanted(&self) -> SecretRef {
        let from = match &self.info {
            Some(i) => i.arn.clone(),
            None => format!("(ARN of {}, created by this run)", self.id),
        };
        SecretRef::new(self.var, from)
    }
}

/// Everything read before changing anything.
struct State {
    service: ServiceView,
    td: aws_sdk_ecs::types::TaskDefinition,
    tags: Vec<aws_sdk_ecs::types::Tag>,
}

async fn read_state(env: &Env) -> Result<State> {
    let service = service::service(env).await?;
    let (td, tags) = service::task_definition(env, &service.task_definition).await?;
    Ok(State { service, td, tags })
}

pub async fn run(ctx: &Ctx, args: EnableArgs) -> Result<()> {
    let started = Instant::now();
    let inputs = read_inputs(&args)?;
    let env = Env::connect(ctx, &args.target, args.base_url.clone()).await?;
    let settings = &env.settings;
    if let Some(key) = &inputs.key {
        let (_, warning) =
            keys::check_secret_key(key, settings.is_production(), args.allow_live_key)?;
        if let Some(w) = warning {
            output::warn(w);
        }
        check_key_with_stripe(&settings.stripe_api_base, key).await?;
    }
    let slots = [
        Slot {
            var: KEY_VAR,
            id: settings.secret_key_id.clone(),
            info: secrets::info(&env.sm, &settings.secret_key_id).await?,
            value: inputs.key.as_ref(),
        },
        Slot {
            var: WEBHOOK_VAR,
            id: settings.webhook_secret_id.clone(),
            info: secrets::info(&env.sm, &settings.webhook_secret_id).await?,
            value: inputs.webhook.as_ref(),
        },
    ];
    let actions = slots
        .iter()
        .map(|s| s.action(&args))
        .collect::<Result<Vec<_>>>()?;
    let state = read_state(&env).await?;
    let container = settings.container.clone();
    let defs = state.td.container_definitions();
    let wanted: Vec<SecretRef> = slots.iter().map(Slot::wanted).collect();
    let before = taskdef::secrets_of(defs, &container)?;
    let preview = taskdef::patch(defs, &container, &wanted)?;
    let after = taskdef::secrets_of(&preview.containers, &container)?;

    let base_url = match (&settings.base_url, args.skip_smoke) {
        (_, true) => None,
        (Some(url), false) => Some(url.clone()),
        (None, false) => Some(service::base_url_of(&state.td, &container)?),
    };
    let mut plan = Plan::new(&settings.name);
    for (slot, action) in slots.iter().zip(&actions) {
        match action {
            SecretAction::Create => {
                plan.step(format!("create secret {} with the given value", slot.id))
            }
            SecretAction::Put => plan.step(format!("put a new value into secret {}", slot.id)),
            SecretAction::Keep => plan.skip(format!("keep the value of secret {}", slot.id)),
        }
    }
    let td_name = state
        .td
        .task_definition_arn()
        .unwrap_or_default()
        .to_owned();
    let will_patch = preview.changed && !args.skip_ecs_patch;
    if will_patch {
        plan.step(format!(
            "register a new revision of {} injecting {KEY_VAR} and {WEBHOOK_VAR} into container {container}, and point service {} at it",
            state.td.family().unwrap_or_default(),
            settings.service
        ));
    } else if preview.changed {
        plan.skip(format!("patch {td_name} (--skip-ecs-patch)"));
    } else {
        plan.skip(format!(
            "{td_name} already injects both secrets: nothing to register"
        ));
    }
    if args.skip_restart {
        plan.skip(format!("redeploy {} (--skip-restart)", settings.service));
    } else {
        plan.step(format!(
            "redeploy {} (force new deployment) and wait up to {}s",
            settings.service,
            args.change.wait.wait_timeout.as_secs()
        ));
    }
    if args.skip_smoke {
        plan.skip("deterministic smoke (--skip-smoke)");
    } else {
        plan.step(
            "deterministic smoke against the base URL with the webhook secret from Secrets Manager",
        );
    }
    plan.secrets_diff = plan::secrets_diff(&before, if will_patch { &after } else { &before });

    if args.change.dry_run {
        return print_dry_run(&plan);
    }
    super::confirm_production(settings, &plan, args.change.yes)?;

    // 1. Secrets.
    let mut written: Vec<Written> = Vec::new();
    let mut arns = Vec::new();
    for (slot, action) in slots.iter().zip(&actions) {
        let w = match action {
            SecretAction::Create => Some(
                secrets::create(
                    &env.sm,
                    &slot.id,
                    slot.value.expect("a value was given"),
                    &format!("{} for {} (stripe-ops)", slot.var, settings.name),
                )
                .await?,
            ),
            SecretAction::Put => {
                Some(secrets::put(&env.sm, &slot.id, slot.value.expect("a value was given")).await?)
            }
            SecretAction::Keep => None,
        };
        if let Some(w) = &w {
            output::status(format!(
                "secret {}: {} version {} ({} characters)",
                w.id,
                if w.created { "created with" } else { "new" },
                w.version_id,
                w.value_length
            ));
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
    let previous_td = state.service.task_definition.clone();
    let mut registered: Option<String> = None;
    if !args.skip_ecs_patch {
        let wanted: Vec<SecretRef> = slots
            .iter()
            .zip(&arns)
            .map(|(s, arn)| SecretRef::new(s.var, arn.clone()))
            .collect();
        let patched = taskdef::patch(defs, &container, &wanted)?;
        if patched.changed {
            let arn = service::register(&env, &state.td, &state.tags, patched.containers).await?;
            output::status(format!("task definition: registered {arn}"));
            registered = Some(arn);
        } else {
            output::status(format!(
                "task definition: {previous_td} already injects both secrets"
            ));
        }
    }

    // 3. Redeploy.
    let mut deployed = None;
    if !args.skip_restart {
        crate::runtime::on_interrupt(Some(format!(
            "the service keeps deploying; to roll it back: {}",
            deploy::redeploy_command(&env, Some(&previous_td))
        )));
        let d =
            deploy::deploy_and_wait(&env, registered.as_deref(), &previous_td, &args.change.wait)
                .await?;
        output::status(format!(
            "service {}: deployment {} completed in {:.1}s",
            settings.service, d.deployment_id, d.seconds
        ));
        crate::runtime::on_interrupt(None);
        deployed = Some(d);
    } else if let Some(td) = &registered {
        // Without a restart the service must still point at the new revision.
        deploy::point_at(&env, td).await?;
    }

    // 4. Smoke with the webhook secret as stored.
    let mut smoke = Value::Null;
    if let Some(base_url) = &base_url {
        let webhook = secrets::value(&env.sm, &settings.webhook_secret_id).await?;
        smoke = smoke_step::run(&env, base_url, webhook).await?;
    }

    let seconds = started.elapsed().as_secs_f64();
    let task_definition = registered.clone().unwrap_or(previous_td.clone());
    if output::mode().json {
        output::json(&json!({
            "ok": true,
            "env": settings.name,
            "dry_run": false,
            "plan": plan,
            "secrets": written,
            "task_definition": {
                "before": previous_td,
                "after": task_definition,
                "registered": registered.is_some(),
            },
            "deployment": deployed,
            "smoke": smoke,
            "seconds": seconds,
        }));
    } else {
        output::line(format!(
            "{} enabled Stripe for {} in {seconds:.1}s (task definition {task_definition})",
            output::ok_mark(true),
            settings.name
        ));
    }
    Ok(())
}

async fn check_key_with_stripe(base: &str, key: &SecretString) -> Result<()> {
    let stripe = StripeClient::new(base, key.clone(), Duration::from_secs(30))?;
    stripe.account().await.map(|_| ()).map_err(|e| {
        e.context("the Stripe key was refused by GET /v1/account; nothing was written")
    })
}

pub(crate) fn print_dry_run(plan: &Plan) -> Result<()> {
    if output::mode().json {
        output::json(&json!({ "ok": true, "dry_run": true, "plan": plan }));
    } else {
        for line in plan.render() {
            output::line(line);
        }
        output::line("dry run: nothing was changed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EnableArgs,
    }

    fn args(extra: &[&str]) -> EnableArgs {
        let mut argv = vec!["t", "--env", "staging"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).args
    }

    fn slot<'a>(exists: bool, value: Option<&'a SecretString>) -> Slot<'a> {
        Slot {
            var: WEBHOOK_VAR,
            id: "p/STRIPE_WEBHOOK_SECRET".into(),
            info: exists.then(|| SecretInfo {
                id: "p/STRIPE_WEBHOOK_SECRET".into(),
                arn: "arn:wh".into(),
                last_changed: None,
                versions: Default::default(),
            }),
            value,
        }
    }

    fn action(s: &Slot, a: &EnableArgs) -> std::result::Result<&'static str, String> {
        s.action(a)
            .map(|a| match a {
                SecretAction::Create => "create",
                SecretAction::Put => "put",
                SecretAction::Keep => "keep",
            })
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn what_happens_to_each_secret() {
        let v = SecretString::from("whsec_x".to_owned());
        let plain = args(&[]);
        assert_eq!(action(&slot(true, Some(&v)), &plain), Ok("put"));
        assert_eq!(action(&slot(true, None), &plain), Ok("keep"));
        assert_eq!(
            action(&slot(false, Some(&v)), &args(&["--create-secrets"])),
            Ok("create")
        );
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
        let skip_put = args(&["--skip-put-secrets"]);
        assert_eq!(action(&slot(true, Some(&v)), &skip_put), Ok("keep"));
        assert_eq!(
            action(
                &slot(false, None),
                &args(&["--skip-put-secrets", "--skip-ecs-patch"])
            ),
            Ok("keep")
        );
        assert_eq!(
            slot(false, None).wanted().value_from,
            "(ARN of p/STRIPE_WEBHOOK_SECRET, created by this run)"
        );
    }
}
