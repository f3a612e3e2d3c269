//! The deterministic smoke: steps 1-4 (health, buyer, balance, checkout session), then a signed
//! `checkout.session.completed` for that session, the credit, and the abuse steps: a replay, a
//! wrong secret, a stale timestamp, and the billing events list.

use std::ops::ControlFlow;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::app_client::{AppClient, Buyer};
use crate::config::Contract;
use crate::error::{Error, Result};
use crate::printer::{Printer, Report};
use crate::retry::{self, Stopped};
use crate::secret::{ExposeSecret, SecretString};
use crate::webhook::fixtures::{Catalog, Prepared, RenderOptions, SetOp};
use crate::webhook::signature::{self, Signer};
use crate::webhook::{SignedEvent, sign_event};

use super::session::{self, OpenOptions, Opened};
use super::steps::{Step, StepFailure, Steps};

pub const EVENT_TYPE: &str = "checkout.session.completed";
/// How old the "stale" delivery's timestamp is: twice Stripe's default tolerance.
pub const STALE_SECS: i64 = 600;
const POLL_EVERY: Duration = Duration::from_millis(100);

pub struct DeterministicOptions {
    pub base_url: String,
    pub contract: Contract,
    /// `None`: a fresh buyer for this run.
    pub buyer: Option<Buyer>,
    pub webhook_secret: SecretString,
    pub amount_cents: i64,
    pub success_url: String,
    pub cancel_url: String,
    /// How long to wait for the credit to show in the balance.
    pub settle_timeout: Duration,
    /// Right after a secret switch: the webhook step retries 4xx refusals for up to this long,
    /// since tasks that still hold the old secret may answer (`enable` and `webhook rotate`).
    pub switch_window: Option<Duration>,
    /// Skip steps 7-9.
    pub only_happy_path: bool,
    pub request_timeout: Duration,
    /// The `api_version` the signed event names (`--api-version`; the catalogue's when None).
    pub api_version: Option<String>,
}

impl DeterministicOptions {
    /// The defaults of the command line: 500 cents, the default contract and return URLs, a
    /// fresh buyer, 10 s to settle, 30 s per request.
    pub fn new(base_url: &str, webhook_secret: SecretString) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        Self {
            success_url: super::default_success_url(&base_url),
            cancel_url: super::default_cancel_url(&base_url),
            base_url,
            contract: Contract::default(),
            buyer: None,
            webhook_secret,
            amount_cents: super::DEFAULT_TOPUP_CENTS,
            settle_timeout: Duration::from_secs(10),
            switch_window: None,
            only_happy_path: false,
            request_timeout: Duration::from_secs(30),
            api_version: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SmokeReport {
    pub ok: bool,
    pub steps: Vec<Step>,
    pub base_url: String,
    pub session_id: Option<String>,
    pub amount_cents: i64,
    pub balance_before: Option<i64>,
    pub balance_after: Option<i64>,
    /// Wall time of the whole smoke.
    pub elapsed_ms: f64,
    /// With a switch window: when the new secret was accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch: Option<Switch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub failure: Option<StepFailure>,
}

impl SmokeReport {
    /// The failure as an error with its exit class (1 a check failed, 3 the app unreachable).
    pub fn error(&self) -> Option<Error> {
        self.failure.as_ref().map(StepFailure::to_error)
    }

    /// Wall time of the smoke, in milliseconds (the negative steps share one quiet window, so
    /// this is less than the sum of the steps' times).
    pub fn total_ms(&self) -> f64 {
        self.elapsed_ms
    }
}

impl Report for SmokeReport {
    fn json(&self) -> Value {
        serde_json::to_value(self).expect("reports serialize")
    }

    fn human(&self, _: &Printer) -> Vec<String> {
        if !self.ok {
            return Vec::new();
        }
        vec![format!(
            "smoke passed: {} steps in {:.0} ms",
            self.steps.len(),
            self.total_ms()
        )]
    }

    fn verdict(&self) -> Result<()> {
        self.error().map_or(Ok(()), Err)
    }

    fn ci_summary(&self) -> Option<crate::ci::Summary> {
        Some(crate::ci::Summary {
            title: format!(
                "stripe-ops smoke {}",
                crate::http::display_url(&self.base_url)
            ),
            ok: self.ok,
            rows: super::steps::ci_rows(&self.steps),
            footer: match &self.error {
                None => format!(
                    "smoke passed: {} steps in {:.0} ms",
                    self.steps.len(),
                    self.total_ms()
                ),
                Some(e) => e.clone(),
            },
        })
    }
}

/// Runs the smoke, printing each step as it finishes. Invalid options are an error; a failing
/// step is reported in the report (`ok: false`, `failure`), not as an error.
pub async fn run(opts: &DeterministicOptions, out: &Printer) -> Result<SmokeReport> {
    super::check_amount(opts.amount_cents).map_err(Error::usage)?;
    let started = std::time::Instant::now();
    let mut client = AppClient::new(&opts.base_url, opts.contract.clone(), opts.request_timeout)?;
    let total = if opts.only_happy_path { 6 } else { 11 };
    let mut steps = Steps::new(total, out);
    let mut seen = Seen::default();
    let result = run_steps(opts, &mut client, &mut steps, &mut seen).await;
    if let (Err(e), None) = (&result, &steps.failure) {
        // Every fallible call runs inside a step; this only keeps a stray error from passing.
        steps.failure = Some(StepFailure {
            step: "smoke".into(),
            exit: e.exit,
            message: e.message().to_owned(),
        });
    }
    let ok = steps.failure.is_none();
    Ok(SmokeReport {
        ok,
        base_url: opts.base_url.clone(),
        session_id: seen.session_id,
        amount_cents: opts.amount_cents,
        balance_before: seen.balance_before,
        balance_after: seen.balance_after,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        switch: seen.switch,
        failed_step: steps.failure.as_ref().map(|f| f.step.clone()),
        error: steps.failure.as_ref().map(|f| f.to_error().to_string()),
        failure: steps.failure,
        steps: steps.done,
    })
}

#[derive(Default)]
struct Seen {
    session_id: Option<String>,
    balance_before: Option<i64>,
    balance_after: Option<i64>,
    switch: Option<Switch>,
}

/// How the switch to a new secret went: the refusals before the first 2xx, and how long after
/// the first delivery that 2xx came.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Switch {
    pub refusals: u32,
    pub ms: f64,
}

async fn run_steps(
    opts: &DeterministicOptions,
    client: &mut AppClient,
    steps: &mut Steps,
    seen: &mut Seen,
) -> Result<()> {
    let opened = session::open(
        steps,
        client,
        OpenOptions {
            buyer: opts.buyer.clone().unwrap_or_else(Buyer::fresh),
            amount_cents: opts.amount_cents,
            success_url: &opts.success_url,
            cancel_url: &opts.cancel_url,
        },
    )
    .await?;
    let before = opened.account.balance_cents;
    seen.session_id = Some(opened.checkout.session_id.clone());
    seen.balance_before = Some(before);
    let client = &*client;
    let expected = before + opts.amount_cents;
    let prepared = completed_event(&opened, opts.amount_cents, opts.api_version.as_deref())?;
    let signer = Signer::new(opts.webhook_secret.expose_secret().as_bytes());
    let event = sign_event(&prepared, std::slice::from_ref(&signer), None, None);

    seen.switch = steps
        .run("webhook", async {
            let accepted = deliver(client, &event, &signer, opts.switch_window).await?;
            let detail = match accepted.refusals {
                0 => format!("{} for {}", accepted.status, event.id),
                n => format!(
                    "{} for {} after {n} refusals while the secret switched ({})",
                    accepted.status,
                    event.id,
                    crate::duration::human(accepted.after)
                ),
            };
            let switch = Switch {
                refusals: accepted.refusals,
                ms: accepted.after.as_secs_f64() * 1000.0,
            };
            Ok((opts.switch_window.map(|_| switch), detail))
        })
        .await?;
    let after = steps
        .run("credit", async {
            let (after, took) =
                wait_for_credit(client, before, opts.amount_cents, opts.settle_timeout).await?;
            Ok((
                (after, took),
                format!(
                    "balance {before} → {after} cents, {} after the answer",
                    crate::duration::human(took)
                ),
            ))
        })
        .await;
    seen.balance_after = after.as_ref().ok().map(|(b, _)| *b);
    let (_, took) = after?;
    if opts.only_happy_path {
        return Ok(());
    }
    // "Nothing more happened" is judged on what an asynchronous receiver finally did: the
    // balance is watched for three times what the credit took to show, once for all four
    // negative steps.
    let quiet = crate::retry::quiet_window(Some(took), opts.settle_timeout);
    let second_session = super::negative::run(
        steps,
        client,
        opts,
        super::negative::Credited {
            opened: &opened,
            signer: &signer,
            event: &event,
            before,
            after_credit: expected,
            quiet,
        },
    )
    .await?;
    let session_id = opened.checkout.session_id.clone();
    steps
        .run("events", async {
            let topups = client.topups_for_session(&second_session).await?;
            check_topups(
                &topups.iter().map(|t| t.amount_cents).collect::<Vec<_>>(),
                opts.amount_cents,
                &client.contract.fields.topup_event_type,
            )
            .map_err(|e| e.context("second session"))?;
            let topups = client.topups_for_session(&session_id).await?;
            check_topups(
                &topups.iter().map(|t| t.amount_cents).collect::<Vec<_>>(),
                opts.amount_cents,
                &client.contract.fields.topup_event_type,
            )?;
            let detail = format!(
                "one {} of {} cents",
                client.contract.fields.topup_event_type, opts.amount_cents
            );
            Ok(((), detail))
        })
        .await?;
    if let Ok(account) = session::read_account(client).await {
        seen.balance_after = Some(account.balance_cents);
    }
    Ok(())
}

/// The fixture `checkout.session.completed`, made to complete exactly this session.
pub fn completed_event(
    opened: &Opened,
    amount_cents: i64,
    api_version: Option<&str>,
) -> Result<Prepared> {
    let checkout = &opened.checkout;
    let pi = checkout
        .payment_intent_id
        .clone()
        .map_or(Value::Null, Value::String);
    let set = |path: &str, value: Value| SetOp {
        path: path.to_owned(),
        value,
    };
    let sets = vec![
        set("data.object.id", json!(checkout.session_id)),
        set("data.object.amount_total", json!(amount_cents)),
        set("data.object.amount_subtotal", json!(amount_cents)),
        set("data.object.currency", json!("usd")),
        set("data.object.payment_status", json!("paid")),
        set("data.object.status", json!("complete")),
        set("data.object.payment_intent", pi.clone()),
        set(
            "data.object.customer_details.email",
            json!(opened.buyer.email),
        ),
        set(
            "data.object.metadata",
            json!({
                "orgId": opened.account.org_id,
                "accountId": opened.account.id,
                "paymentIntentId": pi,
            }),
        ),
    ];
    Catalog::load(None)?.prepare(
        EVENT_TYPE,
        &RenderOptions {
            sets,
            api_version: api_version.map(str::to_owned),
            ..Default::default()
        },
    )
}

/// The signed event accepted: its status, after how many refusals, how long after the first try.
struct Accepted {
    status: reqwest::StatusCode,
    refusals: u32,
    after: Duration,
}

/// Delivers the signed event. Within `switch_window` a 4xx may come from a task that still
/// holds the old secret, so it is re-signed and sent again (as Stripe's retries are) until a
/// 2xx or the end of the window, which bounds the retries' requests too. The raw-body
/// diagnosis waits for the end of the window: during the switch a compact re-send may reach a
/// new task while the original reached an old one.
async fn deliver(
    client: &AppClient,
    event: &SignedEvent,
    signer: &Signer,
    switch_window: Option<Duration>,
) -> Result<Accepted> {
    let started = tokio::time::Instant::now();
    let deadline = started + switch_window.unwrap_or_default();
    let mut header = event.header.clone();
    let mut refusals = 0;
    loop {
        let posted = client.post_webhook(&event.body, Some(&header));
        let reply = if refusals == 0 {
            posted.await?
        } else {
            tokio::time::timeout_at(deadline, posted)
                .await
                .map_err(|_| {
                    Error::external(format!(
                        "the signed event was refused {refusals} times while the secret switched, and the last delivery got no answer within the settle timeout ({})",
                        crate::duration::human(started.elapsed())
                    ))
                })??
        };
        let Err(refused) = super::negative::expect_2xx(client, &reply, "the signed event") else {
            return Ok(Accepted {
                status: reply.status,
                refusals,
                after: started.elapsed(),
            });
        };
        if !reply.status.is_client_error() || tokio::time::Instant::now() >= deadline {
            let refused = match refusals {
                0 => refused,
                n => refused.context(format!(
                    "still refused after {n} retries over {} while the secret switched (--settle-timeout)",
                    crate::duration::human(started.elapsed())
                )),
            };
            return Err(diagnose_refusal(client, event, signer, refused).await);
        }
        refusals += 1;
        tokio::time::sleep_until((tokio::time::Instant::now() + POLL_EVERY).min(deadline)).await;
        header = signature::header(
            crate::timestamp::unix_now(),
            event.body.as_bytes(),
            std::slice::from_ref(signer),
        );
    }
}

/// When the app refuses Stripe's bytes: the same event compact, signed over those bytes. If
/// that one is accepted, the app verifies a re-serialised body, and the error says so.
async fn diagnose_refusal(
    client: &AppClient,
    event: &SignedEvent,
    signer: &Signer,
    refused: Error,
) -> Error {
    let Ok(value) = serde_json::from_str::<Value>(&event.body) else {
        return refused;
    };
    let compact = crate::webhook::to_compact(&value);
    let header = signature::header(
        crate::timestamp::unix_now(),
        compact.as_bytes(),
        std::slice::from_ref(signer),
    );
    match client.post_webhook(&compact, Some(&header)).await {
        Ok(reply) if reply.status.is_success() => Error::failed(crate::webhook::raw_body_bug(
            refused.message(),
            reply.status.as_u16(),
        )),
        _ => refused,
    }
}

/// Polls the balance until it rose by exactly `amount`; more is a failure at once. Returns the
/// balance and how long the credit took to show.
async fn wait_for_credit(
    client: &AppClient,
    before: i64,
    amount: i64,
    settle: Duration,
) -> Result<(i64, Duration)> {
    let started = std::time::Instant::now();
    let waited = retry::poll(
        retry::deadline_in(settle),
        |_| POLL_EVERY,
        || async {
            let now = match session::read_account(client).await {
                Ok(account) => account.balance_cents,
                Err(e) => return ControlFlow::Break(Err(e)),
            };
            match credit_verdict(before, now, amount) {
                Verdict::Credited => ControlFlow::Break(Ok(now)),
                Verdict::Over(msg) => ControlFlow::Break(Err(Error::failed(msg))),
                Verdict::NotYet(msg) => ControlFlow::Continue(msg),
            }
        },
    )
    .await;
    waited
        .map(|b| (b, started.elapsed()))
        .map_err(|stopped| match stopped {
            Stopped::Failed(e) => e,
            Stopped::TimedOut(last) => Error::failed(format!(
                "{} within {:.1} s (--settle-timeout)",
                last.unwrap_or_else(|| "the app did not answer the balance read".to_owned()),
                settle.as_secs_f64()
            )),
        })
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Credited,
    NotYet(String),
    Over(String),
}

fn credit_verdict(before: i64, now: i64, amount: i64) -> Verdict {
    let delta = now - before;
    if delta == amount {
        Verdict::Credited
    } else if delta > amount {
        Verdict::Over(format!(
            "balance rose by {delta} cents, expected exactly {amount}: credited more than once?"
        ))
    } else {
        Verdict::NotYet(format!("balance rose by {delta} cents, expected {amount}"))
    }
}

/// Exactly one top-up of the right amount for the session.
fn check_topups(amounts: &[Option<i64>], amount: i64, topup_type: &str) -> Result<()> {
    match amounts {
        [] => Err(Error::failed(format!(
            "the billing events list shows no {topup_type} for the session"
        ))),
        [Some(a)] if *a == amount => Ok(()),
        [other] => Err(Error::failed(format!(
            "the {topup_type} for the session is {} cents, expected {amount}",
            other.map_or("an unknown number of".to_owned(), |a| a.to_string())
        ))),
        many => Err(Error::failed(format!(
            "the billing events list shows {} {topup_type} events for the session, expected one",
            many.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app_client::Checkout;
    use crate::smoke::session::Account;

    #[test]
    fn the_event_completes_exactly_the_session() {
        let opened = Opened {
            buyer: Buyer::fresh(),
            account: Account {
                balance_cents: 0,
                id: Some("acct_9".into()),
                org_id: Some("org_9".into()),
            },
            checkout: Checkout {
                checkout_url: "http://x/checkout/cs_9".into(),
                session_id: "cs_9".into(),
                payment_intent_id: Some("pi_9".into()),
            },
        };
        let body = completed_event(&opened, 1234, None)
            .unwrap()
            .body("evt_1", 5);
        let v: Value = serde_json::from_str(&body).unwrap();
        let o = &v["data"]["object"];
        assert_eq!(v["type"], EVENT_TYPE);
        assert_eq!(o["id"], "cs_9");
        assert_eq!(o["amount_total"], 1234);
        assert_eq!(o["amount_subtotal"], 1234);
        assert_eq!(o["currency"], "usd");
        assert_eq!(o["payment_status"], "paid");
        assert_eq!(o["payment_intent"], "pi_9");
        assert_eq!(
            o["metadata"],
            json!({"orgId": "org_9", "accountId": "acct_9", "paymentIntentId": "pi_9"})
        );
        assert_eq!(v["api_version"], crate::webhook::versions::API_VERSION);
        let pinned = completed_event(&opened, 1234, Some("2024-06-20"))
            .unwrap()
            .body("evt_1", 5);
        let v: Value = serde_json::from_str(&pinned).unwrap();
        assert_eq!(v["api_version"], "2024-06-20");
    }

    #[test]
    fn credit_verdicts() {
        assert_eq!(credit_verdict(100, 600, 500), Verdict::Credited);
        assert!(
            matches!(credit_verdict(100, 100, 500), Verdict::NotYet(m) if m.contains("rose by 0"))
        );
        assert!(
            matches!(credit_verdict(0, 1000, 500), Verdict::Over(m) if m.contains("more than once"))
        );
    }

    #[test]
    fn topups_must_be_exactly_one_of_the_amount() {
        assert!(check_topups(&[Some(500)], 500, "stripe_topup").is_ok());
        let msg = |a: &[Option<i64>]| {
            check_topups(a, 500, "stripe_topup")
                .unwrap_err()
                .to_string()
        };
        assert!(msg(&[]).contains("no stripe_topup"));
        assert!(msg(&[Some(400)]).contains("is 400 cents"));
        assert!(msg(&[Some(500), Some(500)]).contains("shows 2 stripe_topup"));
    }
}
