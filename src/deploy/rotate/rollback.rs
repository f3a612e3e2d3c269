//! `webhook rotate`'s way back: when the redeploy or the smoke fails, the previous secret
//! version goes back to AWSCURRENT, the service is redeployed with it and the new endpoint is
//! deleted, in that order; whatever cannot be undone is named with the command that finishes it.

use super::*;

/// Undoes what `undo` records and returns the error to exit with: what failed, and either
/// "rollback completed" or exactly what remains with the commands to finish by hand. The
/// secret is restored before the endpoint it belongs to is deleted; when it cannot be, the
/// endpoint is kept, so AWSCURRENT never holds the secret of a deleted endpoint.
pub(super) async fn rollback(
    env: &Env,
    p: &RotatePlan,
    undo: &Undo,
    f: Failure,
    out: &Printer,
) -> Error {
    let details = f.error.details().cloned();
    let e = undo_failed_rotation(env, p, undo, f, out).await;
    match details {
        Some(d) if e.details().is_none() => e.with_details(d),
        _ => e,
    }
}

async fn undo_failed_rotation(
    env: &Env,
    p: &RotatePlan,
    undo: &Undo,
    f: Failure,
    out: &Printer,
) -> Error {
    if f.error.exit == crate::error::Exit::Interrupted {
        return f.error;
    }
    let step = f.step as u8;
    let what = format!("rotation failed at step {step}: {}", f.error.message());
    if undo.endpoint.is_none() {
        return Error::external(format!("{what}; nothing was changed"));
    }
    if !p.options.wait.rollback {
        return Error::external(format!(
            "{what}; nothing rolled back (--no-rollback). To roll back by hand: {}",
            undo.commands(env).join("; ")
        ));
    }
    out.status(format!("{what}; rolling back"));
    let mut done = Vec::new();
    let mut remaining: Vec<(String, String)> = Vec::new();
    let mut secret_restored = true;
    if let Some(s) = &undo.secret {
        match s.restore(env).await {
            Ok(what) => done.push(what),
            Err(e) => {
                secret_restored = false;
                remaining.push((e.message().to_owned(), s.restore_command()));
            }
        }
    }
    if undo.redeployed && secret_restored {
        redeploy_previous(env, p, !f.deploy_failed, out, &mut done, &mut remaining).await;
    } else if undo.redeployed {
        remaining.push((
            "the service runs with the new secret".to_owned(),
            redeploy::redeploy_command(env, None),
        ));
    }
    if let Some(id) = &undo.endpoint {
        let delete = delete_endpoint_command(&env.settings.stripe_api_base, id);
        if !secret_restored {
            remaining.push((
                format!(
                    "webhook endpoint {id} was kept: AWSCURRENT still holds its secret; delete it once the secret is restored"
                ),
                delete,
            ));
        } else {
            match p.stripe.delete_webhook_endpoint(id).await {
                Ok(()) => done.push(format!("webhook endpoint {id} deleted")),
                Err(e) => remaining.push((e.message().to_owned(), delete)),
            }
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

/// The redeploy with the previous secret, waited for unless the deploy itself had failed.
async fn redeploy_previous(
    env: &Env,
    p: &RotatePlan,
    wait: bool,
    out: &Printer,
    done: &mut Vec<String>,
    remaining: &mut Vec<(String, String)>,
) {
    let service = &env.settings.service;
    // The task definition the service runs now (where ECS put it, after a rollback of its own).
    let current = match env.service().await {
        Ok(v) => v.task_definition,
        Err(_) => p.task_definition.clone(),
    };
    let started = match redeploy::redeploy(env, None, &current).await {
        Ok(s) => s,
        Err(e) => {
            remaining.push((
                e.message().to_owned(),
                redeploy::redeploy_command(env, None),
            ));
            return;
        }
    };
    if !wait {
        done.push(format!("a redeploy of {service} has started"));
        return;
    }
    match redeploy::wait(env, &started, &p.options.wait, out).await {
        Ok(Ok(_)) => done.push(format!("{service} redeployed with the previous secret")),
        Ok(Err(n)) => remaining.push((
            format!("the redeploy with the previous secret: {n}"),
            format!("stripe-ops status --env {}", env.settings.name),
        )),
        Err(e) => remaining.push((
            e.message().to_owned(),
            redeploy::redeploy_command(env, None),
        )),
    }
}
