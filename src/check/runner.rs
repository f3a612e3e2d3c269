//! Runs the selected cases over real HTTP and judges them with `cases`.
//!
//! Delivery cases (security, robustness, types) are independent and run a few at a time; the
//! idempotency cases run one after the other, each on its own fresh Checkout Session, because they
//! read the one buyer's balance.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;

use super::cases::{self, Answer, Case, Delivery, Expect, Kind, Replay, Tamper, TopUp};
use super::report::{CaseResult, CheckReport, Outcome};
use crate::app_client::{AppClient, Buyer, get_path};
use crate::config::Contract;
use crate::error::{Error, Result};
use crate::http;
use crate::printer::Printer;
use crate::retry::{self, Stopped};
use crate::secret::SecretString;
use crate::webhook::fixtures::{Catalog, Prepared, RenderOptions, new_event_id};
use crate::webhook::signature::{self, Signer};

/// How often a balance is read while waiting.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// Delivery cases in flight at once.
const PARALLEL_DELIVERIES: usize = 8;
/// A request unanswered after this many answer-time budgets counts as a hang.
const HANG_FACTOR: u32 = 3;

/// Where the app contract is, for the idempotency cases (and the types' "no effect").
#[derive(Debug, Clone)]
pub struct AppTarget {
    pub base_url: String,
    pub contract: Contract,
    /// `None`: register a fresh buyer.
    pub buyer: Option<Buyer>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub webhook_url: String,
    /// The receiver's webhook secrets; valid deliveries are signed with each (`v1=` per secret).
    pub secrets: Vec<SecretString>,
    pub app: Option<AppTarget>,
    /// Answer-time budget per request (`--timeout`).
    pub budget: Duration,
    pub tolerance: i64,
    pub amount_cents: i64,
    pub cases: Vec<Case>,
    pub fixtures_dir: Option<PathBuf>,
    /// How long to wait for a credit (`--settle-timeout`); "no (second) credit" verdicts watch
    /// the balance for `retry::quiet_window` of the slowest credit seen.
    pub settle: Duration,
    /// Advisory failures fail the run too.
    pub strict: bool,
    /// Sent with every delivery (`-H`), replacing a default of the same name.
    pub headers: Vec<crate::http::ExtraHeader>,
}

impl Options {
    fn hang_limit(&self) -> Duration {
        self.budget * HANG_FACTOR
    }
}

struct Runner {
    opts: Options,
    http: reqwest::Client,
    signers: Vec<Signer>,
    catalog: Catalog,
    benign: Prepared,
    /// The longest the receiver took to show a credit after answering, in this run.
    slowest_credit: std::sync::Mutex<Option<Duration>>,
}

/// Runs every case of `opts` and returns the report (failures are in it, not errors).
pub async fn run(opts: Options, out: &Printer) -> Result<CheckReport> {
    let started = Instant::now();
    let signers = crate::webhook::signers(&opts.secrets);
    if signers.is_empty() {
        return Err(Error::usage("check needs the receiver's webhook secret"));
    }
    let catalog = Catalog::load(opts.fixtures_dir.as_deref())?;
    let benign = catalog.prepare(cases::BENIGN_TYPE, &RenderOptions::default())?;
    let http = http::builder(opts.hang_limit())
        .pool_max_idle_per_host(PARALLEL_DELIVERIES * 3)
        .build()
        .map_err(|e| Error::external(format!("cannot build HTTP client: {e}")))?;
    let runner = Runner {
        opts,
        http,
        signers,
        catalog,
        benign,
        slowest_credit: std::sync::Mutex::new(None),
    };
    let bar = out.bar(runner.opts.cases.len() as u64, "checking");
    let (parallel, serial): (Vec<Case>, Vec<Case>) = runner
        .opts
        .cases
        .iter()
        .cloned()
        .partition(|c| runner.runs_in_parallel(c));
    let mut results: Vec<CaseResult> = futures_util::stream::iter(parallel.iter())
        .map(|c| {
            let bar = bar.clone();
            let runner = &runner;
            async move {
                let r = runner.delivery_case(c).await;
                bar.inc(1);
                r
            }
        })
        .buffered(PARALLEL_DELIVERIES)
        .collect()
        .await;
    results.extend(runner.serial_cases(&serial, &bar).await);
    bar.finish_and_clear();
    let order = |r: &CaseResult| {
        runner
            .opts
            .cases
            .iter()
            .position(|c| c.name == r.name)
            .unwrap_or(usize::MAX)
    };
    results.sort_by_key(order);
    let base = runner.opts.app.as_ref().map(|a| a.base_url.as_str());
    Ok(CheckReport::new(
        &runner.opts.webhook_url,
        base,
        results,
        started.elapsed(),
        runner.opts.strict,
    ))
}

/// The buyer's session with the app and what top-up events must carry.
struct AppSession {
    client: AppClient,
    org_id: String,
    account_id: String,
}

impl Runner {
    fn runs_in_parallel(&self, case: &Case) -> bool {
        match &case.kind {
            Kind::Idempotency(_) => false,
            Kind::Type { ignored, .. } => !(*ignored && self.opts.app.is_some()),
            _ => true,
        }
    }

    fn budget_ms(&self) -> f64 {
        self.opts.budget.as_secs_f64() * 1000.0
    }

    async fn serial_cases(&self, cases: &[Case], bar: &indicatif::ProgressBar) -> Vec<CaseResult> {
        if cases.is_empty() {
            return Vec::new();
        }
        let Some(target) = &self.opts.app else {
            bar.inc(cases.len() as u64);
            return cases
                .iter()
                .map(|c| {
                    CaseResult::new(
                        c,
                        Outcome::Skipped,
                        "needs the app contract: give --base-url",
                    )
                })
                .collect();
        };
        let session = match self.open_app(target).await {
            Ok(s) => s,
            Err(e) => {
                bar.inc(cases.len() as u64);
                let why = format!("could not set up a buyer at {}: {e}", target.base_url);
                let unreachable = e.exit == crate::error::Exit::External;
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
        let mut out = Vec::new();
        for case in cases {
            let result = match &case.kind {
                Kind::Idempotency(replay) => self.idempotency_case(case, *replay, &session).await,
                Kind::Type { event_type, .. } => {
                    self.type_without_effect(case, event_type, &session).await
                }
                _ => Ok(self.delivery_case(case).await),
            };
            bar.inc(1);
            out.push(result.unwrap_or_else(|e| CaseResult {
                could_not_run: true,
                ..CaseResult::new(case, Outcome::Failed, e.message())
            }));
        }
        out
    }

    async fn open_app(&self, target: &AppTarget) -> Result<AppSession> {
        let mut client = AppClient::new(
            &target.base_url,
            target.contract.clone(),
            self.opts.hang_limit(),
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

    /// POSTs one delivery as Stripe would; a missing answer within the hang limit is `Hang`.
    async fn deliver(&self, delivery: &Delivery) -> Answer {
        let req = crate::webhook::request(
            &self.http,
            &self.opts.webhook_url,
            &delivery.body,
            delivery.header.as_deref(),
            &self.opts.headers,
        );
        let started = Instant::now();
        let ms = || started.elapsed().as_secs_f64() * 1000.0;
        match req.send().await {
            Ok(resp) => {
                let code = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(_) => Answer::Status { code, ms: ms() },
                    Err(e) if e.is_timeout() => Answer::Hang { after_ms: ms() },
                    Err(e) => Answer::Failed {
                        error: crate::error::chain(&e),
                    },
                }
            }
            Err(e) if e.is_timeout() => Answer::Hang { after_ms: ms() },
            Err(e) => Answer::Failed {
                error: crate::error::chain(&e),
            },
        }
    }

    fn signed(&self, body: String) -> Delivery {
        let now = signature::unix_now();
        Delivery {
            header: Some(signature::header(now, body.as_bytes(), &self.signers)),
            body,
        }
    }

    fn delivery_for(&self, case: &Case) -> Result<Delivery> {
        let now = signature::unix_now();
        let event = self.benign.body(&new_event_id(), now);
        Ok(match &case.kind {
            Kind::Security(t) => {
                cases::security_delivery(*t, event, &self.signers[0], now, self.opts.tolerance)
            }
            Kind::Robustness(o) => cases::robustness_delivery(*o, &event, &self.signers, now),
            Kind::Type { event_type, .. } => {
                let prepared = self
                    .catalog
                    .prepare(event_type, &RenderOptions::default())?;
                self.signed(prepared.body(&new_event_id(), now))
            }
            Kind::Idempotency(_) => unreachable!("idempotency cases are not single deliveries"),
        })
    }

    async fn delivery_case(&self, case: &Case) -> CaseResult {
        let delivery = match self.delivery_for(case) {
            Ok(d) => d,
            Err(e) => return CaseResult::new(case, Outcome::Failed, e.message()),
        };
        let answer = self.deliver(&delivery).await;
        let mut verdict = cases::judge_answer(case.expect, &answer, self.budget_ms());
        if case.kind == Kind::Security(Tamper::RawBody)
            && let (Err(why), Answer::Status { .. }) = (&verdict, &answer)
        {
            verdict = Err(self.raw_body_diagnosis(&delivery, why).await);
        }
        let (status, ms) = answer_fields(&answer);
        CaseResult {
            unreachable: matches!(answer, Answer::Failed { .. }),
            ..CaseResult::judged(case, verdict).with_answer(status, ms)
        }
    }

    /// When Stripe's bytes are refused: the same event again, compact and signed over those
    /// bytes. Accepted, it proves the receiver verifies a re-serialised body.
    async fn raw_body_diagnosis(&self, refused: &Delivery, why: &str) -> String {
        let compact = cases::compact_again(refused, signature::unix_now(), &self.signers);
        match self.deliver(&compact).await {
            Answer::Status { code, .. } if (200..300).contains(&code) => {
                crate::webhook::raw_body_bug(why, code)
            }
            other => {
                let (status, _) = answer_fields(&other);
                format!(
                    "{why}; the same event compact was refused too ({}): the receiver refuses correctly signed events",
                    status.map_or("no answer".to_owned(), |s| s.to_string())
                )
            }
        }
    }

    /// An `--expect-ignored` type: 2xx, and the buyer's balance did not move.
    async fn type_without_effect(
        &self,
        case: &Case,
        event_type: &str,
        app: &AppSession,
    ) -> Result<CaseResult> {
        let before = app.client.balance_cents().await?;
        let delivery = self.delivery_for(case)?;
        let answer = self.deliver(&delivery).await;
        let (status, ms) = answer_fields(&answer);
        if let Err(why) = cases::judge_answer(Expect::Accepted, &answer, self.budget_ms()) {
            return Ok(CaseResult::new(case, Outcome::Failed, why).with_answer(status, ms));
        }
        let after = self.hold(app, before).await?;
        let verdict = cases::judge_credit(Expect::NoCredit, before, after, 0)
            .map(|d| format!("{event_type} accepted; {d}"));
        Ok(CaseResult::judged(case, verdict).with_answer(status, ms))
    }

    async fn idempotency_case(
        &self,
        case: &Case,
        replay: Replay,
        app: &AppSession,
    ) -> Result<CaseResult> {
        let amount = self.opts.amount_cents;
        let top_up = match replay {
            Replay::UnknownSession => TopUp {
                session_id: format!(
                    "cs_test_stripe_ops_unknown_{}",
                    crate::secret::random_alnum(16)
                ),
                amount_cents: amount,
                org_id: app.org_id.clone(),
                account_id: app.account_id.clone(),
                payment_intent_id: format!(
                    "pi_stripe_ops_unknown_{}",
                    crate::secret::random_alnum(12)
                ),
            },
            _ => self.fresh_session(app, amount).await?,
        };
        let prepared = self.catalog.prepare(
            "checkout.session.completed",
            &RenderOptions {
                sets: cases::topup_sets(&top_up),
                ..Default::default()
            },
        )?;
        let before = app.client.balance_cents().await?;
        let id = new_event_id();
        let now = signature::unix_now();
        let body = prepared.body(&id, now);
        let answers: Vec<Answer> = match replay {
            Replay::Sequential => {
                let first = self.deliver(&self.signed(body.clone())).await;
                let second = self.deliver(&self.signed(body)).await;
                vec![first, second]
            }
            Replay::Concurrent => {
                let one = self.signed(body);
                let all = (0..cases::CONCURRENT_DELIVERIES).map(|_| self.deliver(&one));
                futures_util::future::join_all(all).await
            }
            Replay::SameIdOtherBody => {
                let first = self.deliver(&self.signed(body)).await;
                if first.accepted() {
                    self.credited(app, before + amount).await?;
                }
                let again = cases::other_body(&prepared, &id, now);
                let second = self.deliver(&self.signed(again)).await;
                vec![first, second]
            }
            Replay::UnknownSession => vec![self.deliver(&self.signed(body)).await],
        };
        // A receiver that accepted nothing refused the event: there is no credit to wait for,
        // only the shortest look that nothing happened anyway.
        let accepted = answers.iter().any(Answer::accepted);
        let after = match case.expect {
            Expect::CreditedOnce if accepted => match self.credited(app, before + amount).await? {
                // Credited: watch that no second credit follows (an async receiver may be late).
                b if b == before + amount => self.hold(app, b).await?,
                b => b,
            },
            _ if accepted => self.hold(app, before).await?,
            _ => self.hold_for(app, before, retry::MIN_QUIET).await?,
        };
        let summary = summarize_answers(&answers);
        let (status, ms) = answers.last().map(answer_fields).unwrap_or((None, None));
        // "Nothing credited" proves nothing when the delivery never got through.
        let unanswered = answers.iter().find_map(|a| match a {
            Answer::Hang { .. } | Answer::Failed { .. } => {
                Some(format!("a delivery got no answer ({summary})"))
            }
            _ => None,
        });
        let verdict = match unanswered {
            Some(why) if case.expect == Expect::NoCredit => Err(why),
            _ => cases::judge_credit(case.expect, before, after, amount)
                .map(|d| format!("{d}; deliveries: {summary}"))
                .map_err(|d| format!("{d}; deliveries: {summary}")),
        };
        Ok(CaseResult::judged(case, verdict).with_answer(status, ms))
    }

    /// A Checkout Session created through the app, as a buyer would.
    async fn fresh_session(&self, app: &AppSession, amount: i64) -> Result<TopUp> {
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

    /// Polls the balance until it reaches `target` or `--settle-timeout` passes; returns the
    /// last value, and remembers how long the credit took to show.
    async fn credited(&self, app: &AppSession, target: i64) -> Result<i64> {
        let started = Instant::now();
        let waited = retry::poll(
            retry::deadline_in(self.opts.settle),
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
            Ok(balance) => {
                self.saw_credit_after(started.elapsed());
                Ok(balance)
            }
            Err(Stopped::Failed(e)) => Err(e),
            Err(Stopped::TimedOut(Some(last))) => Ok(last),
            Err(Stopped::TimedOut(None)) => app.client.balance_cents().await,
        }
    }

    /// Watches the balance stay at `expected` for the quiet window (three times the slowest
    /// credit seen, at least 0.3 s, at most `--settle-timeout`): "nothing (more) happened" is
    /// judged on what an asynchronous receiver finally did. Returns the first other value.
    async fn hold(&self, app: &AppSession, expected: i64) -> Result<i64> {
        let window = retry::quiet_window(*self.slowest(), self.opts.settle);
        self.hold_for(app, expected, window).await
    }

    async fn hold_for(&self, app: &AppSession, expected: i64, window: Duration) -> Result<i64> {
        let watched = retry::poll(
            retry::deadline_in(window),
            |_| POLL_EVERY,
            || async {
                match app.client.balance_cents().await {
                    Ok(b) if b != expected => ControlFlow::Break(Ok(b)),
                    Ok(_) => ControlFlow::Continue(()),
                    Err(e) => ControlFlow::Break(Err(e)),
                }
            },
        )
        .await;
        match watched {
            Ok(changed) => Ok(changed),
            Err(Stopped::Failed(e)) => Err(e),
            Err(Stopped::TimedOut(_)) => Ok(expected),
        }
    }

    fn slowest(&self) -> std::sync::MutexGuard<'_, Option<Duration>> {
        self.slowest_credit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn saw_credit_after(&self, took: Duration) {
        let mut slowest = self.slowest();
        *slowest = Some(slowest.map_or(took, |s| s.max(took)));
    }
}

fn answer_fields(answer: &Answer) -> (Option<u16>, Option<f64>) {
    match answer {
        Answer::Status { code, ms } => (Some(*code), Some(*ms)),
        Answer::Hang { after_ms } => (None, Some(*after_ms)),
        Answer::Failed { .. } => (None, None),
    }
}

/// "200 ×2", "200 ×19, 500 ×1", "hang ×1".
fn summarize_answers(answers: &[Answer]) -> String {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for a in answers {
        let key = match a {
            Answer::Status { code, .. } => code.to_string(),
            Answer::Hang { .. } => "hang".into(),
            Answer::Failed { .. } => "error".into(),
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
