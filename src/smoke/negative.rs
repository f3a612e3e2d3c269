//! The deterministic smoke's four "nothing more may happen" steps, judged together over one
//! quiet window: `replay` (the credited event again, re-signed as Stripe's retries are),
//! `concurrent` (a second session's event delivered twice at the same moment: one credit),
//! `wrong-secret` (an event signed with another secret) and `old-timestamp` (one signed ten
//! minutes ago).
//!
//! Each has its own Checkout Session, so that the billing events list tells which one credited;
//! they are sent at once, their answers judged as they come, the one expected credit (the second
//! session's) waited for, and then the balance watched for one quiet window. The steps are
//! reported in that order, and the first that failed is the smoke's failure. When the events list
//! cannot tell the sessions apart (it records no session id), the balance alone decides.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use crate::app_client::AppClient;
use crate::error::{Error, Result};
use crate::http::Reply;
use crate::retry::{self, Stopped};
use crate::secret::{self, ExposeSecret};
use crate::webhook::signature::{self, Signer};
use crate::webhook::{SignedEvent, sign_event};

use super::deterministic::{DeterministicOptions, STALE_SECS, completed_event};
use super::session::{self, Opened};
use super::steps::Steps;

const POLL_EVERY: Duration = Duration::from_millis(25);

/// What the first part of the smoke established.
pub(super) struct Credited<'a> {
    pub opened: &'a Opened,
    pub signer: &'a Signer,
    /// The event that was credited.
    pub event: &'a SignedEvent,
    /// The balance before the smoke, and after the first credit.
    pub before: i64,
    pub after_credit: i64,
    /// How long to watch that nothing more happens.
    pub quiet: Duration,
}

/// The sessions of the four steps: the first (credited) one, then one of their own.
struct Sessions {
    first: String,
    second: String,
    forged: String,
    stale: String,
}

/// Runs the four steps; records them in `steps` and returns the second session's id.
pub(super) async fn run(
    steps: &mut Steps,
    client: &AppClient,
    opts: &DeterministicOptions,
    c: Credited<'_>,
) -> Result<String> {
    let started = Instant::now();
    let amount = opts.amount_cents;
    let version = opts.api_version.as_deref();
    let second = another(client, opts, c.opened).await?;
    let forged_session = another(client, opts, c.opened).await?;
    let stale_session = another(client, opts, c.opened).await?;
    let sessions = Sessions {
        first: c.opened.checkout.session_id.clone(),
        second: second.checkout.session_id.clone(),
        forged: forged_session.checkout.session_id.clone(),
        stale: stale_session.checkout.session_id.clone(),
    };
    let signers = std::slice::from_ref(c.signer);
    let overlapping = sign_event(
        &completed_event(&second, amount, version)?,
        signers,
        None,
        None,
    );
    let wrong = Signer::new(secret::generate_webhook_secret().expose_secret().as_bytes());
    let forged = sign_event(
        &completed_event(&forged_session, amount, version)?,
        &[wrong],
        None,
        None,
    );
    let stale = sign_event(
        &completed_event(&stale_session, amount, version)?,
        signers,
        None,
        Some(crate::timestamp::unix_now() - STALE_SECS),
    );
    // A retry is the same body signed again with a fresh timestamp, as Stripe sends it.
    let replay_header = signature::header(
        crate::timestamp::unix_now(),
        c.event.body.as_bytes(),
        signers,
    );
    let (replay, one, two, forged_reply, stale_reply) = tokio::join!(
        client.post_webhook(&c.event.body, Some(&replay_header)),
        post(client, &overlapping),
        post(client, &overlapping),
        post(client, &forged),
        post(client, &stale),
    );
    let answers = Answers {
        replay: expect_2xx(client, &replay?, "a replay of the same event"),
        concurrent: [one?, two?]
            .iter()
            .try_for_each(|r| expect_2xx(client, r, "one of two overlapping deliveries").map(drop)),
        forged: expect_refusal(
            client,
            &forged_reply?,
            "signed with a wrong secret",
            "does not check signatures",
        ),
        stale: expect_refusal(
            client,
            &stale_reply?,
            "signed 10 minutes ago",
            "does not check the timestamp tolerance",
        ),
    };
    // One credit is due: the second session's, when its deliveries were taken.
    let due = c.after_credit
        + if answers.concurrent.is_ok() {
            amount
        } else {
            0
        };
    reach(client, due, opts.settle_timeout).await?;
    let last = watch(client, c.quiet).await?;
    let credits = credits_by_session(client, &sessions, c.before, last, amount).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let verdicts = judge(
        &answers,
        credits,
        (due, last),
        &sessions,
        opts.settle_timeout,
    );
    for (name, verdict) in ["replay", "concurrent", "wrong-secret", "old-timestamp"]
        .into_iter()
        .zip(verdicts)
    {
        steps.record(name, ms, verdict);
    }
    match steps.failed() {
        Some(e) => Err(e),
        None => Ok(sessions.second),
    }
}

async fn post(client: &AppClient, e: &SignedEvent) -> Result<Reply> {
    client.post_webhook(&e.body, Some(&e.header)).await
}

/// Each step's answers: `Ok(status)` when they were what the step expects.
struct Answers {
    replay: Result<reqwest::StatusCode>,
    concurrent: Result<()>,
    forged: Result<reqwest::StatusCode>,
    stale: Result<reqwest::StatusCode>,
}

/// How many top-ups each session got, when the events list can tell (its counts add up to the
/// balance); else why not.
struct Credits {
    first: i64,
    second: i64,
    forged: i64,
    stale: i64,
}

async fn credits_by_session(
    client: &AppClient,
    s: &Sessions,
    before: i64,
    last: i64,
    amount: i64,
) -> std::result::Result<Credits, String> {
    let topup = client.contract.fields.topup_event_type.clone();
    let events = client
        .billing_events()
        .await
        .map_err(|e| e.message().to_owned())?;
    let count = |id: &str| {
        events
            .iter()
            .filter(|e| e.event_type == topup && e.session_id.as_deref() == Some(id))
            .count() as i64
    };
    let credits = Credits {
        first: count(&s.first),
        second: count(&s.second),
        forged: count(&s.forged),
        stale: count(&s.stale),
    };
    let total = credits.first + credits.second + credits.forged + credits.stale;
    if total * amount == last - before {
        Ok(credits)
    } else {
        Err(format!(
            "the billing events list shows {total} {topup} for these sessions, but the balance rose by {} cents",
            last - before
        ))
    }
}

/// The four verdicts, in the steps' order.
fn judge(
    answers: &Answers,
    credits: std::result::Result<Credits, String>,
    (due, last): (i64, i64),
    sessions: &Sessions,
    settle: Duration,
) -> [Result<String>; 4] {
    let credits = match credits {
        Ok(c) => c,
        Err(why) => return by_balance(answers, due, last, &why),
    };
    let topup = |n: i64| match n {
        1 => "1 top-up".to_owned(),
        n => format!("{n} top-ups"),
    };
    let replay = answers.replay.as_ref().map_err(clone).and_then(|status| {
        if credits.first == 1 {
            Ok(format!("{status}, no second credit"))
        } else {
            Err(Error::failed(format!(
                "balance is {last} cents after the replay: credited twice (the billing events list shows {} for the session)",
                topup(credits.first)
            )))
        }
    });
    let concurrent = answers.concurrent.as_ref().map_err(clone).and_then(|()| match credits.second {
        1 => Ok(format!(
            "two overlapping deliveries for a second session {}: one credit",
            sessions.second
        )),
        0 => Err(Error::failed(format!(
            "two overlapping deliveries for a second session were answered 2xx, and it was not credited within {:.1} s (--settle-timeout)",
            settle.as_secs_f64()
        ))),
        n => Err(Error::failed(format!(
            "two overlapping deliveries for a second session: {} for it, credited more than once",
            topup(n)
        ))),
    });
    let no_credit = |answer: &Result<reqwest::StatusCode>, n: i64, what: &str| {
        answer.as_ref().map_err(clone).and_then(|status| match n {
            0 => Ok(format!("{status}, no credit")),
            n => Err(Error::failed(format!(
                "refused ({status}) an event {what}, and credited its session anyway ({})",
                topup(n)
            ))),
        })
    };
    [
        replay,
        concurrent,
        no_credit(
            &answers.forged,
            credits.forged,
            "signed with a wrong secret",
        ),
        no_credit(&answers.stale, credits.stale, "signed 10 minutes ago"),
    ]
}

/// Without per-session credits: the answers decide, and a wrong balance fails the first step
/// that could have caused it, saying the list could not tell.
fn by_balance(answers: &Answers, due: i64, last: i64, why: &str) -> [Result<String>; 4] {
    let mut verdicts = [
        answers
            .replay
            .as_ref()
            .map(|s| format!("{s}, no second credit (judged on the balance)")),
        answers
            .concurrent
            .as_ref()
            .map(|()| "two overlapping deliveries: one credit (judged on the balance)".to_owned()),
        answers.forged.as_ref().map(|s| format!("{s}, no credit")),
        answers.stale.as_ref().map(|s| format!("{s}, no credit")),
    ]
    .map(|v| v.map_err(clone));
    if last != due
        && let Some(first_ok) = verdicts.iter_mut().find(|v| v.is_ok())
    {
        *first_ok = Err(Error::failed(format!(
            "balance is {last} cents after the replay, the overlapping deliveries and the forged and stale events, expected {due} (a difference of {} cents); the billing events list could not tell which credited ({why})",
            last - due
        )));
    }
    verdicts
}

fn clone(e: &Error) -> Error {
    Error::new(e.exit, e.message())
}

/// Another Checkout Session for the same buyer.
async fn another(
    client: &AppClient,
    opts: &DeterministicOptions,
    opened: &Opened,
) -> Result<Opened> {
    let checkout = client
        .create_checkout(opts.amount_cents, &opts.success_url, &opts.cancel_url)
        .await?;
    Ok(Opened {
        checkout,
        ..opened.clone()
    })
}

pub(super) fn expect_2xx(
    client: &AppClient,
    reply: &Reply,
    what: &str,
) -> Result<reqwest::StatusCode> {
    if reply.status.is_success() {
        return Ok(reply.status);
    }
    Err(Error::failed(format!(
        "POST {} answered {} to {what}, expected 2xx: {}",
        client.contract.paths.webhook,
        reply.status,
        reply.excerpt()
    )))
}

/// A delivery that must be refused with a 4xx.
fn expect_refusal(
    client: &AppClient,
    reply: &Reply,
    what: &str,
    meaning: &str,
) -> Result<reqwest::StatusCode> {
    if reply.status.is_client_error() {
        return Ok(reply.status);
    }
    let why = if reply.status.is_success() {
        format!(": the app {meaning}")
    } else {
        String::new()
    };
    Err(Error::failed(format!(
        "POST {} answered {} to an event {what}, expected 4xx{why}: {}",
        client.contract.paths.webhook,
        reply.status,
        reply.excerpt()
    )))
}

/// Waits (up to `settle`) for the balance to reach `due`.
async fn reach(client: &AppClient, due: i64, settle: Duration) -> Result<()> {
    let waited = retry::poll(
        retry::deadline_in(settle),
        |_| POLL_EVERY,
        || async {
            match session::read_account(client).await {
                Ok(a) if a.balance_cents >= due => ControlFlow::Break(Ok(())),
                Ok(_) => ControlFlow::Continue(()),
                Err(e) => ControlFlow::Break(Err(e)),
            }
        },
    )
    .await;
    match waited {
        Ok(()) | Err(Stopped::TimedOut(_)) => Ok(()),
        Err(Stopped::Failed(e)) => Err(e),
    }
}

/// Watches the balance for `window` and returns the last value: every late credit within the
/// window counts.
async fn watch(client: &AppClient, window: Duration) -> Result<i64> {
    let last = std::sync::Mutex::new(None);
    let watched = retry::poll(
        retry::deadline_in(window),
        |_| POLL_EVERY,
        || async {
            match session::read_account(client).await {
                Ok(a) => {
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(a.balance_cents);
                    ControlFlow::<Result<()>, ()>::Continue(())
                }
                Err(e) => ControlFlow::Break(Err(e)),
            }
        },
    )
    .await;
    if let Err(Stopped::Failed(e)) = watched {
        return Err(e);
    }
    let seen = *last.lock().unwrap_or_else(|e| e.into_inner());
    match seen {
        Some(b) => Ok(b),
        None => Ok(session::read_account(client).await?.balance_cents),
    }
}
