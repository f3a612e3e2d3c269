//! The real-checkout smoke: `create` runs steps 1-4 and writes the checkout URL file and the
//! receipt; `verify` waits for the paid top-up to show in the billing events and the balance, and
//! writes the outcome back into the receipt. Between the two a person, or `automate::pay`, pays.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app_client::{AppClient, BillingEvent, Buyer};
use crate::config::Contract;
use crate::error::{Error, Exit, Result};
use crate::printer::Printer;
use crate::retry::{self, Stopped};
use crate::secret::{self, SecretString};
use crate::shutdown::Shutdown;
use crate::stripe_api::StripeClient;

use super::receipt::{self, NewReceipt, Receipt};
use super::session::{self, OpenOptions};
use super::steps::{Step, Steps};

pub struct CreateOptions {
    pub base_url: String,
    pub contract: Contract,
    /// `None`: a fresh buyer.
    pub buyer: Option<Buyer>,
    pub amount_cents: i64,
    pub success_url: String,
    pub cancel_url: String,
    /// `None`: `receipts/<UTC timestamp>-<session id>.json`.
    pub receipt_path: Option<PathBuf>,
    pub request_timeout: Duration,
}

impl CreateOptions {
    /// The command line's defaults for `base_url`.
    pub fn new(base_url: &str) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        Self {
            success_url: super::default_success_url(&base_url),
            cancel_url: super::default_cancel_url(&base_url),
            base_url,
            contract: Contract::default(),
            buyer: None,
            amount_cents: super::DEFAULT_TOPUP_CENTS,
            receipt_path: None,
            request_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug)]
pub struct Created {
    pub receipt_path: PathBuf,
    pub url_path: PathBuf,
    pub receipt: Receipt,
    pub steps: Vec<Step>,
}

/// Steps 1-4, printed as they finish, then the URL file and the receipt (both atomic, 0600).
pub async fn create(o: &CreateOptions, out: &Printer) -> Result<Created> {
    super::check_amount(o.amount_cents).map_err(Error::usage)?;
    let mut client = AppClient::new(&o.base_url, o.contract.clone(), o.request_timeout)?;
    let mut steps = Steps::new(4, out);
    let opened = session::open(
        &mut steps,
        &mut client,
        OpenOptions {
            buyer: o.buyer.clone().unwrap_or_else(Buyer::fresh),
            amount_cents: o.amount_cents,
            success_url: &o.success_url,
            cancel_url: &o.cancel_url,
        },
    )
    .await?;
    let token = client
        .token()
        .cloned()
        .ok_or_else(|| Error::failed("logged in but no token was kept"))?;
    let now = time::OffsetDateTime::now_utc();
    let receipt = Receipt::build(NewReceipt {
        base_url: &o.base_url,
        buyer_email: &opened.buyer.email,
        buyer_password: &opened.buyer.password,
        buyer_token: &token,
        session_id: &opened.checkout.session_id,
        payment_intent_id: opened.checkout.payment_intent_id.as_deref(),
        checkout_url: &opened.checkout.checkout_url,
        amount_cents: o.amount_cents,
        balance_before_cents: opened.account.balance_cents,
        success_url: &o.success_url,
        cancel_url: &o.cancel_url,
        created_at: now,
    });
    let receipt_path = o.receipt_path.clone().unwrap_or_else(|| {
        receipt::default_path(
            Path::new(receipt::DEFAULT_DIR),
            now,
            &opened.checkout.session_id,
        )
    });
    let url_path = receipt::url_path(&receipt_path);
    secret::write_private(
        &url_path,
        format!("{}\n", opened.checkout.checkout_url).as_bytes(),
    )
    .map_err(|e| Error::usage(format!("cannot write {}: {e}", url_path.display())))?;
    receipt::save(&receipt_path, &receipt)?;
    Ok(Created {
        receipt_path,
        url_path,
        receipt,
        steps: steps.done,
    })
}

/// Where `verify` may double-check the event at Stripe (`--verify-stripe-event`).
pub struct StripeCheck {
    pub api_base: String,
    pub secret_key: SecretString,
}

pub struct VerifyOptions {
    pub contract: Contract,
    /// How long to wait for the top-up.
    pub wait: Duration,
    pub poll_interval: Duration,
    pub request_timeout: Duration,
    pub stripe: Option<StripeCheck>,
    /// Printed when stopped while waiting, for example `stripe-ops smoke --verify-only --receipt F`.
    pub resume_command: Option<String>,
    /// The app's base URL, over the receipt's: receipts store it without a password, so an app
    /// behind `https://user:password@…` needs it given again.
    pub base_url: Option<String>,
}

impl VerifyOptions {
    pub fn new(wait: Duration) -> Self {
        Self {
            contract: Contract::default(),
            wait,
            poll_interval: Duration::from_millis(500),
            request_timeout: Duration::from_secs(30),
            stripe: None,
            resume_command: None,
            base_url: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub receipt: PathBuf,
    pub session_id: String,
    pub amount_cents: i64,
    pub balance_before: i64,
    pub balance_after: i64,
    pub stripe_event_id: Option<String>,
    /// The event type Stripe reported, with `--verify-stripe-event`.
    pub stripe_event_type: Option<String>,
    pub waited_ms: f64,
}

/// Reads and validates the receipt at `path` (exit 2 when it is not usable), then verifies it.
pub async fn verify(
    path: &Path,
    o: &VerifyOptions,
    out: &Printer,
    stop: &Shutdown,
) -> Result<Verified> {
    let (receipt, warning) = receipt::load(path)?;
    if let Some(w) = warning {
        out.warn(w);
    }
    verify_receipt(path, receipt, o, out, stop).await
}

/// Waits for the top-up of the receipt's session, checks the balance, optionally checks the
/// event at Stripe, and writes the outcome back into the receipt. A stop request while waiting
/// leaves the receipt as it is and says how to resume.
async fn verify_receipt(
    path: &Path,
    mut receipt: Receipt,
    o: &VerifyOptions,
    out: &Printer,
    stop: &Shutdown,
) -> Result<Verified> {
    let base_url = o.base_url.as_deref().unwrap_or(&receipt.base_url);
    let mut client = AppClient::new(base_url, o.contract.clone(), o.request_timeout)?
        .with_token(receipt.buyer_token.clone());
    if let Some(token) = renew_refused_token(&mut client, &receipt, out).await? {
        receipt.buyer_token = token;
        receipt::save(path, &receipt)?;
    }
    let started = Instant::now();
    let hint = o.resume_command.as_ref().map(|cmd| {
        format!(
            "the receipt {} is intact; resume with: {cmd}",
            path.display()
        )
    });
    let (topup, balance_after) = stop
        .guard_with(hint.as_deref(), wait_for_topup(&client, &receipt, o, out))
        .await?;
    let stripe_event_type = match &o.stripe {
        Some(check) => {
            Some(check_stripe_event(check, &topup, &receipt, o.request_timeout, out).await?)
        }
        None => None,
    };
    let updated = receipt.clone().with_outcome(
        time::OffsetDateTime::now_utc(),
        balance_after,
        topup.stripe_event_id.clone(),
    );
    receipt::save(path, &updated)?;
    Ok(Verified {
        receipt: path.to_path_buf(),
        session_id: receipt.stripe_session_id,
        amount_cents: receipt.amount_cents,
        balance_before: receipt.balance_before_cents,
        balance_after,
        stripe_event_id: topup.stripe_event_id,
        stripe_event_type,
        waited_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// A receipt may be verified long after it was written, when its token has expired or been
/// revoked: when the app answers 401 at the start, the buyer logs in again with the receipt's
/// password; returns the new token.
async fn renew_refused_token(
    client: &mut AppClient,
    receipt: &Receipt,
    out: &Printer,
) -> Result<Option<SecretString>> {
    let account = client.contract.paths.account.clone();
    // An app that cannot be reached now is the polling's business (it may be redeploying).
    let Ok(reply) = client.request(reqwest::Method::GET, &account, None).await else {
        return Ok(None);
    };
    if reply.status != reqwest::StatusCode::UNAUTHORIZED {
        return Ok(None);
    }
    out.status(format!(
        "the receipt's token was refused (401); logging in again as {}",
        receipt.buyer_email
    ));
    let buyer = Buyer {
        email: receipt.buyer_email.clone(),
        password: receipt.buyer_password.clone(),
    };
    client.login(&buyer).await.map_err(|e| {
        e.context("the receipt's token was refused and logging in again with its password failed")
    })?;
    Ok(client.token().cloned())
}

/// What one poll saw.
#[derive(Debug, Default, Clone)]
struct Observation {
    balance_delta: Option<i64>,
    topups: Vec<BillingEvent>,
    total_events: Option<usize>,
    error: Option<String>,
    /// The app could not be reached at all (connection refused, timed out).
    unreachable: bool,
}

#[derive(Debug, PartialEq)]
enum WaitVerdict {
    Done,
    Wait,
    Fail(String),
}

fn judge(seen: &Observation, amount: i64, topup_type: &str) -> WaitVerdict {
    match seen.topups.as_slice() {
        [] => WaitVerdict::Wait,
        [one] if one.amount_cents != Some(amount) => WaitVerdict::Fail(format!(
            "the {topup_type} for the session is {} cents, expected {amount}",
            one.amount_cents
                .map_or("an unknown number of".to_owned(), |a| a.to_string())
        )),
        [_] if seen.balance_delta == Some(amount) => WaitVerdict::Done,
        [_] => WaitVerdict::Wait,
        many => WaitVerdict::Fail(format!(
            "{} {topup_type} events for the session, expected one: credited more than once",
            many.len()
        )),
    }
}

fn describe(seen: &Observation, topup_type: &str) -> String {
    let delta = seen
        .balance_delta
        .map_or("unknown".to_owned(), |d| format!("{d} cents"));
    let total = seen
        .total_events
        .map_or("unknown".to_owned(), |n| n.to_string());
    let mut text = format!(
        "balance delta {delta}, {} {topup_type} events for the session ({total} billing events in total)",
        seen.topups.len()
    );
    if let Some(e) = &seen.error {
        text.push_str(&format!("; last error: {e}"));
    }
    text
}

async fn observe(client: &AppClient, receipt: &Receipt) -> Observation {
    let mut seen = Observation::default();
    match client.billing_events().await {
        Ok(events) => {
            seen.total_events = Some(events.len());
            let topup = &client.contract.fields.topup_event_type;
            seen.topups = events
                .into_iter()
                .filter(|e| {
                    &e.event_type == topup
                        && e.session_id.as_deref() == Some(&receipt.stripe_session_id)
                })
                .collect();
        }
        Err(e) => seen.failed(&e),
    }
    match session::read_account(client).await {
        Ok(a) => seen.balance_delta = Some(a.balance_cents - receipt.balance_before_cents),
        Err(e) => seen.failed(&e),
    }
    seen
}

impl Observation {
    fn failed(&mut self, e: &Error) {
        self.error = Some(e.to_string());
        self.unreachable = e.exit == Exit::External;
    }
}

/// Polls until the top-up shows with the right amount and the balance rose by it. Errors while
/// polling (a redeploy, a blip) are remembered and retried until the deadline; an app that
/// never answered at all is an outside failure (exit 3), not a payment that did not happen.
async fn wait_for_topup(
    client: &AppClient,
    receipt: &Receipt,
    o: &VerifyOptions,
    out: &Printer,
) -> Result<(BillingEvent, i64)> {
    let topup_type = client.contract.fields.topup_event_type.clone();
    let what = format!(
        "the {topup_type} of {} cents for session {}",
        receipt.amount_cents, receipt.stripe_session_id
    );
    out.status(format!("waiting up to {} s for {what}", fmt_secs(o.wait)));
    let spinner = out.spinner(format!("waiting for {what}"));
    let answered = std::sync::atomic::AtomicBool::new(false);
    let waited = retry::poll(
        retry::deadline_in(o.wait),
        |_| o.poll_interval,
        || async {
            let seen = observe(client, receipt).await;
            if !seen.unreachable {
                answered.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            match judge(&seen, receipt.amount_cents, &topup_type) {
                WaitVerdict::Done => ControlFlow::Break(Ok(seen)),
                WaitVerdict::Fail(why) => ControlFlow::Break(Err(why)),
                WaitVerdict::Wait => ControlFlow::Continue(seen),
            }
        },
    )
    .await;
    spinner.finish_and_clear();
    let seen = match waited {
        Ok(seen) => seen,
        Err(Stopped::Failed(why)) => return Err(Error::failed(format!("verify failed: {why}"))),
        Err(Stopped::TimedOut(last)) => {
            let last = last.unwrap_or_default();
            if last.unreachable && !answered.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(Error::external(format!(
                    "the app at {} could not be reached for {} s: {}",
                    receipt.base_url,
                    fmt_secs(o.wait),
                    last.error.as_deref().unwrap_or("no answer")
                )));
            }
            let resume = o
                .resume_command
                .as_ref()
                .map(|c| format!("; to wait longer: {c} --wait SECS"))
                .unwrap_or_default();
            return Err(Error::failed(format!(
                "timed out after {} s waiting for {what}; last seen: {}. Was the payment completed? A declined or abandoned payment never credits{resume}",
                fmt_secs(o.wait),
                describe(&last, &topup_type)
            )));
        }
    };
    let balance =
        receipt.balance_before_cents + seen.balance_delta.expect("done means the balance was read");
    let topup = seen
        .topups
        .into_iter()
        .next()
        .expect("done means one top-up");
    out.line(format!(
        "  {:<4} top-up of {} cents recorded, balance {} → {balance} cents",
        out.ok_mark(true),
        receipt.amount_cents,
        receipt.balance_before_cents
    ));
    Ok((topup, balance))
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

/// `GET /v1/events/{id}` at Stripe: the event exists and is the session's completion.
async fn check_stripe_event(
    check: &StripeCheck,
    topup: &BillingEvent,
    receipt: &Receipt,
    timeout: Duration,
    out: &Printer,
) -> Result<String> {
    let id = topup.stripe_event_id.as_deref().ok_or_else(|| {
        Error::failed(
            "--verify-stripe-event: the billing event carries no Stripe event id (fields.event_stripe_event_id)",
        )
    })?;
    let stripe = StripeClient::new(&check.api_base, check.secret_key.clone(), timeout)?;
    let event = stripe.retrieve_event(id).await?;
    let event_type = event["type"].as_str().unwrap_or_default().to_owned();
    if event_type != super::deterministic::EVENT_TYPE {
        return Err(Error::failed(format!(
            "Stripe event {id} has type {event_type:?}, expected {}",
            super::deterministic::EVENT_TYPE
        )));
    }
    let session = event["data"]["object"]["id"].as_str().unwrap_or_default();
    if session != receipt.stripe_session_id {
        return Err(Error::failed(format!(
            "Stripe event {id} completes session {session:?}, not {}",
            receipt.stripe_session_id
        )));
    }
    out.line(format!(
        "  {:<4} Stripe event {id} is a {event_type} for the session",
        out.ok_mark(true)
    ));
    Ok(event_type)
}

/// How a receipt is verified later: the command printed to resume, built from the global
/// flags that matter (`--config`, `--env`).
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub config: Option<PathBuf>,
    pub env: Option<String>,
}

impl Resume {
    /// The exact command that verifies `receipt` later.
    pub fn command(&self, receipt: &Path) -> String {
        let mut cmd = String::from("stripe-ops");
        if let Some(c) = &self.config {
            cmd.push_str(" --config ");
            cmd.push_str(&super::shell_quote(&c.display().to_string()));
        }
        cmd.push_str(" smoke --verify-only --receipt ");
        cmd.push_str(&super::shell_quote(&receipt.display().to_string()));
        if let Some(env) = &self.env {
            cmd.push_str(" --env ");
            cmd.push_str(&super::shell_quote(env));
        }
        cmd
    }
}

/// Whether a failed WebDriver payment falls back to waiting for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutomateMode {
    /// Try; when it fails, wait for a person to pay.
    Fallback,
    /// Failing to pay automatically fails the smoke (exit 1).
    Require,
}

/// Paying through WebDriver (`--automate`).
#[derive(Debug, Clone)]
pub struct Automate {
    pub mode: AutomateMode,
    pub webdriver_url: Option<String>,
    pub headed: bool,
    pub card: String,
}

/// Where the real-checkout smoke starts.
pub enum Start {
    /// Steps 1-4 and a new receipt.
    Create(Box<CreateOptions>),
    /// A receipt written earlier.
    Receipt(PathBuf),
}

/// The whole real-checkout smoke: `--real`, `--create-only`, `--verify-only`.
pub struct RealOptions {
    pub start: Start,
    pub create_only: bool,
    /// Open the checkout page in the desktop browser.
    pub open: bool,
    pub automate: Option<Automate>,
    /// `resume_command` is filled in from `resume` once the receipt is known.
    pub verify: VerifyOptions,
    pub resume: Resume,
}

impl RealOptions {
    fn mode(&self) -> &'static str {
        match (&self.start, self.create_only) {
            (_, true) => "create-only",
            (Start::Receipt(_), false) => "verify-only",
            (Start::Create(_), false) => "real",
        }
    }
}

/// What the real-checkout smoke did: its JSON document and its last lines for people.
pub struct RealReport {
    pub doc: serde_json::Value,
    pub lines: Vec<String>,
}

impl crate::printer::Report for RealReport {
    fn json(&self) -> serde_json::Value {
        self.doc.clone()
    }
    fn human(&self, _: &Printer) -> Vec<String> {
        self.lines.clone()
    }

    fn ci_summary(&self) -> Option<crate::ci::Summary> {
        use crate::ci::{Outcome, Row};
        let mode = self.doc["mode"].as_str().unwrap_or("real");
        let mut rows: Vec<Row> = self.doc["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| Row {
                name: s["name"].as_str().unwrap_or("step").to_owned(),
                outcome: if s["ok"] == true {
                    Outcome::Passed
                } else {
                    Outcome::Failed
                },
                ms: s["ms"].as_f64(),
                detail: s["detail"].as_str().unwrap_or("").to_owned(),
            })
            .collect();
        if self.doc["automated"] == true {
            rows.push(Row {
                name: "pay".into(),
                outcome: Outcome::Passed,
                ms: None,
                detail: "paid the checkout page through WebDriver".into(),
            });
        }
        Some(crate::ci::Summary {
            title: format!("stripe-ops smoke ({mode})"),
            ok: true,
            rows,
            footer: self.lines.join(" "),
        })
    }
}

/// Obtains a receipt (creates it, or loads it), lets someone pay (`open`, `automate`), then
/// verifies unless `create_only`. Once a receipt exists, a stop request says how to resume.
pub async fn run(mut o: RealOptions, out: &Printer, stop: &Shutdown) -> Result<RealReport> {
    let mut doc = serde_json::json!({ "ok": true, "mode": o.mode() });
    let (path, receipt) = match &o.start {
        Start::Create(create_opts) => {
            out.line(format!(
                "real-checkout smoke {} ({} cents)",
                create_opts.base_url, create_opts.amount_cents
            ));
            let created = stop.guard(create(create_opts, out)).await?;
            announce_created(&created, &o.resume, out, &mut doc);
            (created.receipt_path, created.receipt)
        }
        Start::Receipt(path) => {
            let (receipt, warning) = receipt::load(path)?;
            if let Some(w) = warning {
                out.warn(w);
            }
            out.line(format!(
                "verifying receipt {} (session {}, {} cents)",
                path.display(),
                receipt.stripe_session_id,
                receipt.amount_cents
            ));
            (path.clone(), receipt)
        }
    };
    let resume = o.resume.command(&path);
    let hint = format!(
        "the receipt {} is intact; resume with: {resume}",
        path.display()
    );
    if o.open {
        doc["opened"] =
            serde_json::json!(super::automate::open_in_browser(&receipt.checkout_url, out));
    }
    if let Some(automate) = &o.automate {
        let paid = stop
            .guard_with(Some(&hint), pay(automate, &path, &receipt, out))
            .await?;
        doc["automated"] = serde_json::json!(paid);
    }
    if o.create_only {
        return Ok(RealReport {
            doc,
            lines: vec![format!("verify it with:\n  {resume}")],
        });
    }
    o.verify.resume_command = Some(resume);
    let verified = verify_receipt(&path, receipt, &o.verify, out, stop).await?;
    let line = format!(
        "real-checkout smoke passed: {} cents credited, balance {} → {} cents; outcome written to {}",
        verified.amount_cents,
        verified.balance_before,
        verified.balance_after,
        path.display()
    );
    merge(
        &mut doc,
        serde_json::to_value(&verified).expect("outcomes serialize"),
    );
    Ok(RealReport {
        doc,
        lines: vec![line],
    })
}

fn merge(doc: &mut serde_json::Value, more: serde_json::Value) {
    if let serde_json::Value::Object(m) = more {
        for (k, v) in m {
            doc[k] = v;
        }
    }
}

fn announce_created(
    created: &Created,
    resume: &Resume,
    out: &Printer,
    doc: &mut serde_json::Value,
) {
    let r = &created.receipt;
    out.line(format!(
        "checkout URL (use all of it: the part after # is needed by Stripe Checkout):\n  {}",
        r.checkout_url
    ));
    out.line(format!("URL file: {}", created.url_path.display()));
    out.line(format!(
        "receipt:  {} (holds the buyer's password and token; mode 0600)",
        created.receipt_path.display()
    ));
    merge(
        doc,
        serde_json::json!({
            "steps": created.steps,
            "base_url": r.base_url,
            "session_id": r.stripe_session_id,
            "amount_cents": r.amount_cents,
            "balance_before": r.balance_before_cents,
            "checkout_url": r.checkout_url,
            "url_file": created.url_path,
            "receipt": created.receipt_path,
            "verify_command": resume.command(&created.receipt_path),
        }),
    );
}

/// Pays through WebDriver. With `Fallback`, a failure becomes a warning and the smoke goes on
/// waiting for a person; with `Require` it fails the smoke (exit 1).
async fn pay(a: &Automate, receipt_path: &Path, r: &Receipt, out: &Printer) -> Result<bool> {
    let mut opts = super::automate::PayOptions::for_receipt(r, receipt_path);
    opts.webdriver_url = a.webdriver_url.clone();
    opts.headed = a.headed;
    opts.card_number = a.card.clone();
    let spinner = out.spinner("paying through WebDriver");
    let result = super::automate::pay(&opts).await;
    spinner.finish_and_clear();
    match (result, a.mode) {
        (Ok(()), _) => {
            out.line(format!(
                "  {:<4} paid the checkout page through WebDriver",
                out.ok_mark(true)
            ));
            Ok(true)
        }
        (Err(e), AutomateMode::Require) => Err(Error::failed(format!(
            "--automate=require: paying through WebDriver failed: {e}"
        ))),
        (Err(e), AutomateMode::Fallback) => {
            out.warn(format!(
                "paying through WebDriver failed ({e}); Stripe often shows bot checks, so pay at the URL above yourself"
            ));
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn topup(amount: i64) -> BillingEvent {
        BillingEvent {
            event_type: "stripe_topup".into(),
            amount_cents: Some(amount),
            session_id: Some("cs_1".into()),
            stripe_event_id: Some("evt_1".into()),
            raw: Value::Null,
        }
    }

    #[test]
    fn judging_a_poll() {
        let seen = |delta, topups| Observation {
            balance_delta: Some(delta),
            topups,
            total_events: Some(3),
            error: None,
            unreachable: false,
        };
        assert_eq!(
            judge(&seen(0, vec![]), 500, "stripe_topup"),
            WaitVerdict::Wait
        );
        assert_eq!(
            judge(&seen(500, vec![topup(500)]), 500, "stripe_topup"),
            WaitVerdict::Done
        );
        // Recorded but the balance has not caught up yet: keep waiting.
        assert_eq!(
            judge(&seen(0, vec![topup(500)]), 500, "stripe_topup"),
            WaitVerdict::Wait
        );
        assert!(
            matches!(judge(&seen(400, vec![topup(400)]), 500, "stripe_topup"),
            WaitVerdict::Fail(m) if m.contains("is 400 cents"))
        );
        assert!(
            matches!(judge(&seen(1000, vec![topup(500), topup(500)]), 500, "stripe_topup"),
            WaitVerdict::Fail(m) if m.contains("credited more than once"))
        );
    }

    #[test]
    fn describing_what_was_seen_last() {
        let seen = Observation {
            balance_delta: Some(0),
            topups: vec![],
            total_events: Some(2),
            error: Some("GET x timed out".into()),
            unreachable: true,
        };
        assert_eq!(
            describe(&seen, "stripe_topup"),
            "balance delta 0 cents, 0 stripe_topup events for the session (2 billing events in total); last error: GET x timed out"
        );
        assert_eq!(fmt_secs(Duration::from_secs(600)), "600");
        assert_eq!(fmt_secs(Duration::from_millis(1500)), "1.5");
    }
}
