//! The top-up contract's state cases, judged on the buyer's balance (the built-in observer):
//! the idempotency cases and the `--expect-ignored` types' "no credit".
//!
//! The idempotency cases each complete their own fresh Checkout Session, are all sent at once,
//! and are judged together after one quiet window: the billing events list tells which session
//! was credited how often, and the balance must agree with it. When the list cannot tell (the
//! app records no session id), the balance alone decides, and a wrong total fails every case
//! that could have caused it.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::AppTarget;
use super::cases::{self, Case, Expect, Kind, Replay};
use super::deliveries::{self, TopUp};
use super::judge::{self, Answer};
use super::report::{CaseResult, Outcome};
use super::runner::{Runner, result};
use crate::app_client::{AppClient, Buyer, get_path};
use crate::error::{Error, Exit, Result};
use crate::retry::{self, Stopped};
use crate::webhook::fixtures::new_event_id;

/// How often the balance is read while waiting.
const POLL_EVERY: Duration = Duration::from_millis(25);
const TOPUP_TYPE: &str = "checkout.session.completed";

/// The buyer's session with the app and what top-up events must carry.
struct AppSession {
    client: AppClient,
    org_id: String,
    account_id: String,
}

pub(super) async fn run(runner: &Runner, target: &AppTarget, cases: &[Case]) -> Vec<CaseResult> {
    let app = match open_app(runner, target).await {
        Ok(s) => s,
        Err(e) => {
            let why = format!(
                "could not set up a buyer at {}: {e}",
                crate::http::display_url(&target.base_url)
            );
            let unreachable = e.exit == Exit::External;
            return cases
                .iter()
                .map(|c| CaseResult {
                    unreachable,
                    could_not_run: true,
                    ..CaseResult::new(c, Outcome::Failed, why.clone())
                })
                .collect();
        }
    };
    let (idempotency, types): (Vec<&Case>, Vec<&Case>) = cases
        .iter()
        .partition(|c| matches!(c.kind, Kind::Idempotency(_)));
    let mut out = match idempotency_cases(runner, &app, &idempotency).await {
        Ok(results) => results,
        Err(e) => could_not_run(&idempotency, &e),
    };
    for case in types {
        let judged = type_without_effect(runner, &app, case).await;
        out.push(judged.unwrap_or_else(|e| could_not_run(&[case], &e).remove(0)));
    }
    out
}

fn could_not_run(cases: &[&Case], e: &Error) -> Vec<CaseResult> {
    cases
        .iter()
        .map(|c| CaseResult {
            could_not_run: true,
            ..CaseResult::new(c, Outcome::Failed, e.message())
        })
        .collect()
}

async fn open_app(runner: &Runner, target: &AppTarget) -> Result<AppSession> {
    let mut client = AppClient::new(
        &target.base_url,
        target.contract.clone(),
        runner.opts.budget * 3,
    )?;
    let buyer = target.buyer.clone().unwrap_or_else(Buyer::fresh);
    client.login_or_register(&buyer).await?;
    let path = target.contract.paths.account.clone();
    let reply = client.request(Method::GET, &path, None).await?;
    let value = reply
        .json()
        .filter(|_| reply.status.is_success())
        .ok_or_else(|| {
            Error::failed(format!(
                "GET {path} answered {}: {}",
                reply.status,
                reply.excerpt()
            ))
        })?;
    // The account object is the parent of the balance field (`account.balance_cents`).
    let balance_path = &target.contract.fields.balance_cents;
    let parent = balance_path
        .rsplit_once('.')
        .map(|(p, _)| format!("{p}."))
        .unwrap_or_default();
    let text = |field: &str| {
        get_path(&value, &format!("{parent}{field}"))
            .and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .ok_or_else(|| Error::failed(format!("GET {path} answer has no `{parent}{field}`")))
    };
    Ok(AppSession {
        org_id: text("org_id")?,
        account_id: text("id")?,
        client,
    })
}

/// One idempotency case as sent: its session and every answer, the first delivery first.
struct Sent<'a> {
    case: &'a Case,
    top_up: TopUp,
    answers: Vec<Answer>,
}

impl Sent<'_> {
    fn expects_credit(&self) -> bool {
        self.case.expect == Expect::CreditedOnce
    }

    /// The event was taken at least once (a credit may follow).
    fn accepted(&self) -> bool {
        self.answers.iter().any(Answer::accepted)
    }
}

async fn idempotency_cases(
    runner: &Runner,
    app: &AppSession,
    cases: &[&Case],
) -> Result<Vec<CaseResult>> {
    if cases.is_empty() {
        return Ok(Vec::new());
    }
    let amount = runner.opts.amount_cents;
    let before = app.client.balance_cents().await?;
    let mut plans = Vec::new();
    for case in cases {
        let Kind::Idempotency(replay) = case.kind else {
            unreachable!("partitioned")
        };
        let top_up = match replay {
            Replay::UnknownSession => unknown_session(app, amount),
            _ => fresh_session(app, amount).await?,
        };
        plans.push((*case, replay, top_up));
    }
    let started = Instant::now();
    let sent = futures_util::future::join_all(
        plans
            .into_iter()
            .map(|(case, replay, top_up)| send(runner, app, case, replay, top_up)),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let credits_due = sent
        .iter()
        .filter(|s| s.expects_credit() && s.accepted())
        .count() as i64;
    let target = before + credits_due * amount;
    let reached = if credits_due > 0 {
        let b = credited(runner, app, target).await?;
        if b >= target {
            runner.saw_effect_after(started.elapsed());
        }
        b
    } else {
        before
    };
    // Nothing more may happen for a quiet window; an async receiver's late second credit shows.
    let after = hold(app, reached, runner.quiet()).await?;
    let credits = credits_by_session(app, &sent).await;
    let attributed = match &credits {
        Ok(counts) if counts.iter().sum::<i64>() * amount == after - before => Ok(counts),
        Ok(counts) => Err(format!(
            "the billing events list shows {} top-ups for these sessions, but the balance rose by {} cents",
            counts.iter().sum::<i64>(),
            after - before
        )),
        Err(e) => Err(e.message().to_owned()),
    };
    let timing = runner.timing();
    Ok(sent
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let credit = match &attributed {
                Ok(counts) => judge_credits(s.case.expect, counts[i]),
                Err(why) => by_balance(s, before, after, target, why, amount),
            };
            verdict(s, credit, timing)
        })
        .collect())
}

/// Sends one case's deliveries; the same-id case waits for its first credit before the second.
async fn send<'a>(
    runner: &Runner,
    app: &AppSession,
    case: &'a Case,
    replay: Replay,
    top_up: TopUp,
) -> Result<Sent<'a>> {
    let prepared = runner.prepare(TOPUP_TYPE, deliveries::topup_sets(&top_up), true)?;
    let id = new_event_id();
    let now = crate::timestamp::unix_now();
    let body = prepared.body(&id, now);
    let answers = match replay {
        Replay::Sequential => {
            let first = runner.deliver(&runner.signed(body.clone())).await;
            let second = runner.deliver(&runner.signed(body)).await;
            vec![first, second]
        }
        Replay::Concurrent => {
            let one = runner.signed(body);
            let all = (0..cases::CONCURRENT_DELIVERIES).map(|_| runner.deliver(&one));
            futures_util::future::join_all(all).await
        }
        Replay::SameIdOtherBody => {
            let first = runner.deliver(&runner.signed(body)).await;
            if first.accepted() {
                session_credited(runner, app, &top_up.session_id).await?;
            }
            let again = deliveries::other_body(&prepared, &id, now);
            let second = runner.deliver(&runner.signed(again)).await;
            vec![first, second]
        }
        Replay::UnknownSession => vec![runner.deliver(&runner.signed(body)).await],
    };
    Ok(Sent {
        case,
        top_up,
        answers,
    })
}

/// The case's verdict: its deliveries' answers first, then its credits.
fn verdict(
    sent: &Sent,
    credit: std::result::Result<String, String>,
    timing: judge::Timing,
) -> CaseResult {
    let summary = judge::summarize_answers(&sent.answers);
    let last = sent.answers.last().cloned().unwrap_or(Answer::Failed {
        cause: judge::NoAnswer::Other,
        error: "nothing was delivered".into(),
    });
    if sent.expects_credit() {
        // One copy must be taken, in time; the others are duplicates.
        let taken = sent.answers.iter().position(Answer::accepted).unwrap_or(0);
        let chosen = &sent.answers[taken];
        let judged = judge::judge_answer(Expect::Accepted, chosen, timing);
        if let Err(why) = &judged.verdict {
            let why = format!("{why}; deliveries: {summary}");
            return result(
                sent.case,
                judge::Judged {
                    verdict: Err(why),
                    advice: None,
                },
                chosen,
            );
        }
        let others: Vec<Answer> = sent
            .answers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != taken)
            .map(|(_, a)| a.clone())
            .collect();
        let (timely, advice) = judge::judge_duplicates(&others, timing);
        let verdict = timely
            .and(credit)
            .map(|d| format!("{d}; deliveries: {summary}"))
            .map_err(|d| format!("{d}; deliveries: {summary}"));
        return CaseResult::judged(sent.case, verdict)
            .answered(chosen)
            .advised(judged.advice)
            .advised(advice);
    }
    // No credit expected, any answer in time: "nothing credited" proves nothing when a delivery
    // got no answer.
    let untimely = sent
        .answers
        .iter()
        .map(|a| judge::judge_answer(Expect::NoCredit, a, timing).verdict)
        .find_map(Result::err);
    let verdict = match untimely {
        Some(why) => Err(format!("{why}; deliveries: {summary}")),
        None => credit
            .map(|d| format!("{d}; deliveries: {summary}"))
            .map_err(|d| format!("{d}; deliveries: {summary}")),
    };
    CaseResult::judged(sent.case, verdict).answered(&last)
}

/// Credits of one session, from the billing events list.
fn judge_credits(expect: Expect, credits: i64) -> std::result::Result<String, String> {
    let times = |n: i64| match n {
        0 => "not credited".to_owned(),
        1 => "credited once".to_owned(),
        n => format!("credited {n} times"),
    };
    let (want, wanted) = match expect {
        Expect::CreditedOnce => (1, "once"),
        _ => (0, "no credit"),
    };
    if credits == want {
        Ok(times(credits))
    } else {
        Err(format!("{}, expected {wanted}", times(credits)))
    }
}

/// Without per-session credits, the balance decides: a right total passes every case, a wrong
/// one fails those that could have caused it.
fn by_balance(
    sent: &Sent,
    before: i64,
    after: i64,
    target: i64,
    why: &str,
    amount: i64,
) -> std::result::Result<String, String> {
    if after == target {
        let want = if sent.expects_credit() { amount } else { 0 };
        return judge::judge_credit(sent.case.expect, 0, want, amount)
            .map(|d| format!("{d} (judged on the balance: {why})"));
    }
    Err(format!(
        "{}; the billing events list could not tell which case credited it ({why})",
        judge::judge_credit(Expect::CreditedOnce, before, after, target - before)
            .unwrap_or_else(|e| e)
            .replace("balance rose by", "the balance rose by")
    ))
}

/// How many top-ups the billing events list shows for each case's session.
async fn credits_by_session(app: &AppSession, sent: &[Sent<'_>]) -> Result<Vec<i64>> {
    let topup = app.client.contract.fields.topup_event_type.clone();
    let events = app.client.billing_events().await?;
    Ok(sent
        .iter()
        .map(|s| {
            events
                .iter()
                .filter(|e| {
                    e.event_type == topup && e.session_id.as_deref() == Some(&s.top_up.session_id)
                })
                .count() as i64
        })
        .collect())
}

fn unknown_session(app: &AppSession, amount: i64) -> TopUp {
    TopUp {
        session_id: format!(
            "cs_test_stripe_ops_unknown_{}",
            crate::secret::random_alnum(16)
        ),
        amount_cents: amount,
        org_id: app.org_id.clone(),
        account_id: app.account_id.clone(),
        payment_intent_id: format!("pi_stripe_ops_unknown_{}", crate::secret::random_alnum(12)),
    }
}

/// A Checkout Session created through the app, as a buyer would.
async fn fresh_session(app: &AppSession, amount: i64) -> Result<TopUp> {
    let base = &app.client.base_url;
    let checkout = app
        .client
        .create_checkout(
            amount,
            &format!("{base}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"),
            &format!("{base}/billing/cancel"),
        )
        .await?;
    let payment_intent_id = checkout.payment_intent_id.ok_or_else(|| {
        Error::failed("the checkout answer has no payment intent id (paymentIntentId)")
    })?;
    Ok(TopUp {
        session_id: checkout.session_id,
        amount_cents: amount,
        org_id: app.org_id.clone(),
        account_id: app.account_id.clone(),
        payment_intent_id,
    })
}

/// Waits (up to `--settle-timeout`) for the session's first top-up in the billing events list.
async fn session_credited(runner: &Runner, app: &AppSession, session_id: &str) -> Result<()> {
    let waited = retry::poll(
        retry::deadline_in(runner.opts.settle),
        |_| POLL_EVERY,
        || async {
            match app.client.topups_for_session(session_id).await {
                Ok(t) if !t.is_empty() => ControlFlow::Break(Ok(())),
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

/// Polls the balance until it reaches `target` or `--settle-timeout` passes; returns the last
/// value.
async fn credited(runner: &Runner, app: &AppSession, target: i64) -> Result<i64> {
    let waited = retry::poll(
        retry::deadline_in(runner.opts.settle),
        |_| POLL_EVERY,
        || async {
            match app.client.balance_cents().await {
                Ok(b) if b >= target => ControlFlow::Break(Ok(b)),
                Ok(b) => ControlFlow::Continue(b),
                Err(e) => ControlFlow::Break(Err(e)),
            }
        },
    )
    .await;
    match waited {
        Ok(balance) => Ok(balance),
        Err(Stopped::Failed(e)) => Err(e),
        Err(Stopped::TimedOut(Some(last))) => Ok(last),
        Err(Stopped::TimedOut(None)) => app.client.balance_cents().await,
    }
}

/// Watches the balance for `window`; returns the last value seen (a move does not stop the
/// watch: every late credit within the window counts).
async fn hold(app: &AppSession, start: i64, window: Duration) -> Result<i64> {
    let last = std::sync::Mutex::new(start);
    let watched = retry::poll(
        retry::deadline_in(window),
        |_| POLL_EVERY,
        || async {
            match app.client.balance_cents().await {
                Ok(b) => {
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = b;
                    ControlFlow::<Result<()>, ()>::Continue(())
                }
                Err(e) => ControlFlow::Break(Err(e)),
            }
        },
    )
    .await;
    match watched {
        Err(Stopped::Failed(e)) => Err(e),
        _ => Ok(*last.lock().unwrap_or_else(|e| e.into_inner())),
    }
}

/// An `--expect-ignored` type: 2xx in time, and the buyer's balance did not move.
async fn type_without_effect(runner: &Runner, app: &AppSession, case: &Case) -> Result<CaseResult> {
    let Kind::Type { event_type, .. } = &case.kind else {
        unreachable!("partitioned")
    };
    let before = app.client.balance_cents().await?;
    let prepared = runner.prepare(event_type, Vec::new(), true)?;
    let answer = runner
        .deliver(&runner.signed(prepared.body(&new_event_id(), crate::timestamp::unix_now())))
        .await;
    let judged = judge::judge_answer(Expect::Accepted, &answer, runner.timing());
    if judged.verdict.is_err() {
        return Ok(result(case, judged, &answer));
    }
    let after = hold(app, before, runner.quiet()).await?;
    let verdict = judge::judge_credit(Expect::NoCredit, before, after, 0)
        .map(|d| format!("{event_type} accepted; {d}"));
    Ok(CaseResult::judged(case, verdict)
        .answered(&answer)
        .advised(judged.advice))
}
