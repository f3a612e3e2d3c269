//! The toolkit the check's cases run with (`check::run` orchestrates them): one delivery POSTed
//! as Stripe would and its answer read within the limits, a case that is one delivery judged on
//! its answer (with the raw-body diagnosis), events prepared and signed, the payload-kind probe,
//! and the slowest effect seen, which sizes every "nothing more happened" window. `topup` and
//! `observed` use it; it uses neither.

use std::time::{Duration, Instant};

use super::cases::{self, Case, Expect, Kind, Tamper};
use super::deliveries::{self, Delivery};
use super::judge::{self, Answer, Judged, Timing};
use super::report::{CaseResult, Outcome};
use super::{EventPayload, Options};
use crate::error::{Error, Result};
use crate::http;
use crate::webhook::fixtures::{Catalog, Prepared, RenderOptions, SetOp, new_event_id};
use crate::webhook::signature::Signer;

/// Delivery cases in flight at once.
pub(super) const PARALLEL_DELIVERIES: usize = 8;

pub(super) struct Runner {
    pub(super) opts: Options,
    http: reqwest::Client,
    pub(super) signers: Vec<Signer>,
    pub(super) catalog: Catalog,
    benign: Prepared,
    /// The longest the receiver took to show an effect after answering, in this run.
    slowest_effect: std::sync::Mutex<Option<Duration>>,
}

impl Runner {
    /// The toolkit for `opts`: the signers, the catalogue and its benign event, one HTTP client
    /// sized for the deliveries in flight.
    pub(super) fn new(opts: Options) -> Result<Runner> {
        let signers = crate::webhook::signers(&opts.secrets);
        if signers.is_empty() {
            return Err(Error::usage("check needs the receiver's webhook secret"));
        }
        let catalog = Catalog::load(opts.fixtures_dir.as_deref())?;
        let benign = catalog.prepare(
            cases::BENIGN_TYPE,
            &RenderOptions {
                account: opts.account.clone(),
                api_version: opts.api_version.clone(),
                ..Default::default()
            },
        )?;
        let http = http::builder(opts.hang_limit())
            .pool_max_idle_per_host(PARALLEL_DELIVERIES * 3)
            .build()
            .map_err(|e| Error::external(format!("cannot build HTTP client: {e}")))?;
        Ok(Runner {
            opts,
            http,
            signers,
            catalog,
            benign,
            slowest_effect: std::sync::Mutex::new(None),
        })
    }

    pub(super) fn timing(&self) -> Timing {
        Timing {
            budget_ms: self.opts.budget.as_secs_f64() * 1000.0,
            slow_ms: self.opts.slow.as_secs_f64() * 1000.0,
            hang_ms: self.opts.hang_limit().as_secs_f64() * 1000.0,
        }
    }

    /// The template of `event_type` with `sets`, as a Connect delivery when `--account` (and
    /// `connected`) say so.
    pub(super) fn prepare(
        &self,
        event_type: &str,
        sets: Vec<SetOp>,
        connected: bool,
    ) -> Result<Prepared> {
        self.catalog.prepare(
            event_type,
            &RenderOptions {
                sets,
                account: self.opts.account.clone().filter(|_| connected),
                api_version: self.opts.api_version.clone(),
                ..Default::default()
            },
        )
    }

    /// POSTs one delivery as Stripe would and reads its answer within the limits: a missing
    /// answer within the hang limit is `Hang`.
    pub(super) async fn deliver(&self, delivery: &Delivery) -> Answer {
        let req = crate::webhook::request(
            &self.http,
            &self.opts.webhook_url,
            &delivery.body,
            delivery.header.as_deref(),
            &self.opts.headers,
        );
        let started = Instant::now();
        let ms = || started.elapsed().as_secs_f64() * 1000.0;
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                Answer::Hang { after_ms: ms() }
            } else {
                Answer::Failed {
                    cause: judge::classify_failure(&e),
                    error: crate::error::chain(&e),
                }
            }
        };
        match req.send().await {
            Ok(resp) => {
                let code = resp.status().as_u16();
                match http::read_body(resp, http::ANSWER).await {
                    Ok(body) => Answer::Status {
                        code,
                        ms: ms(),
                        body: body.into_text(),
                    },
                    Err(e) => failed(e),
                }
            }
            Err(e) => failed(e),
        }
    }

    pub(super) fn signed(&self, body: String) -> Delivery {
        Delivery::signed(body, crate::timestamp::unix_now(), &self.signers)
    }

    fn delivery_for(&self, case: &Case) -> Result<Delivery> {
        let now = crate::timestamp::unix_now();
        let event = self.benign.body(&new_event_id(), now);
        Ok(match &case.kind {
            Kind::Security(t) => {
                deliveries::security_delivery(*t, event, &self.signers[0], now, self.opts.tolerance)
            }
            Kind::Robustness(o) => deliveries::robustness_delivery(*o, &event, &self.signers, now),
            Kind::Type { event_type, .. } => {
                let prepared = self.prepare(event_type, Vec::new(), true)?;
                self.signed(prepared.body(&new_event_id(), now))
            }
            Kind::Idempotency(_) | Kind::Observed { .. } | Kind::Connect { .. } => {
                unreachable!("state cases are not single deliveries")
            }
        })
    }

    /// A case that is one delivery, judged on its answer alone.
    pub(super) async fn delivery_case(&self, case: &Case) -> CaseResult {
        let delivery = match self.delivery_for(case) {
            Ok(d) => d,
            Err(e) => return CaseResult::new(case, Outcome::Failed, e.message()),
        };
        let answer = self.deliver(&delivery).await;
        let mut judged = judge::judge_answer(case.expect, &answer, self.timing());
        if case.kind == Kind::Security(Tamper::RawBody) && answer.refused() {
            // Only a refusal can be the raw-body bug; a 5xx is a handler failure, said so.
            if let Err(why) = &judged.verdict {
                judged.verdict = Err(self.raw_body_diagnosis(&delivery, &answer, why).await);
            }
        }
        if benign_event(case) && answer.code().is_some_and(|c| c >= 500) {
            judged.verdict = judged.verdict.map_err(|why| {
                format!(
                    "{why}; the event was a {}, which the receiver may not handle: see robustness.unknown_type",
                    cases::BENIGN_TYPE
                )
            });
        }
        result(case, judged, &answer)
    }

    /// When Stripe's bytes are refused: the same event again, compact and signed over those
    /// bytes. Accepted, it proves the receiver verifies a re-serialised body.
    async fn raw_body_diagnosis(&self, refused: &Delivery, answer: &Answer, why: &str) -> String {
        let compact =
            deliveries::compact_again(refused, crate::timestamp::unix_now(), &self.signers);
        let named = match answer {
            Answer::Status { body, .. } => judge::diagnose_refusal(body).is_some(),
            _ => false,
        };
        match self.deliver(&compact).await {
            answer if answer.accepted() => {
                crate::webhook::raw_body_bug(why, answer.code().unwrap_or(200))
            }
            other if named => format!(
                "{why}; the same event compact was refused too ({})",
                other.short()
            ),
            other => format!(
                "{why}; the same event compact was refused too ({}): the receiver refuses correctly signed events (is its webhook secret the one given here?)",
                other.short()
            ),
        }
    }

    /// When every event the receiver should take was refused with a 4xx, one event of the other
    /// payload kind is tried: a webhook endpoint (`constructEvent`) refuses thin events, an event
    /// destination with the thin payload (`parseEventNotification`) refuses snapshot ones. If
    /// that one is taken, the failures say which option fits the receiver.
    pub(super) async fn explain_payload_mismatch(&self, results: &mut [CaseResult]) {
        let wanted: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.suite == cases::Suite::Types && r.expect == Expect::Accepted.describe()
            })
            .map(|(i, _)| i)
            .collect();
        let all_refused = !wanted.is_empty()
            && wanted.iter().all(|i| {
                results[*i].outcome == Outcome::Failed
                    && results[*i].status.is_some_and(|s| (400..500).contains(&s))
            });
        if !all_refused {
            return;
        }
        let (probe_type, hint) = match self.opts.payload {
            EventPayload::Thin => (
                cases::BENIGN_TYPE,
                "the receiver refuses thin events, as stripe-node's constructEvent and stripe-python's construct_event do, and takes snapshot events: it is a webhook endpoint; check it with --event-payload snapshot",
            ),
            EventPayload::Snapshot => (
                THIN_PROBE_TYPE,
                "the receiver refuses snapshot events and takes thin ones (parseEventNotification): it is an event destination with the thin payload; check it with --event-payload thin",
            ),
        };
        let Ok(prepared) = self.prepare(probe_type, Vec::new(), true) else {
            return;
        };
        let probe = self.signed(prepared.body(&new_event_id(), crate::timestamp::unix_now()));
        if self.deliver(&probe).await.accepted() {
            for i in wanted {
                results[i].detail = format!("{}; {hint}", results[i].detail);
            }
        }
    }

    pub(super) fn slowest(&self) -> Option<Duration> {
        *self
            .slowest_effect
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn saw_effect_after(&self, took: Duration) {
        let mut slowest = self
            .slowest_effect
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *slowest = Some(slowest.map_or(took, |s| s.max(took)));
    }

    /// How long to watch that nothing (more) happens: three times the slowest effect seen, at
    /// least 0.3 s, at most `--settle-timeout`.
    pub(super) fn quiet(&self) -> Duration {
        crate::retry::quiet_window(self.slowest(), self.opts.settle)
    }
}

/// The case delivers a valid event of the benign type (a security or robustness case that is
/// not about the event's type).
fn benign_event(case: &Case) -> bool {
    use cases::Oddity;
    match case.kind {
        Kind::Security(_) => case.expect == Expect::Accepted,
        Kind::Robustness(o) => matches!(o, Oddity::Large | Oddity::Unicode),
        _ => false,
    }
}

/// The thin event the payload probe sends to a receiver that refuses snapshot events.
const THIN_PROBE_TYPE: &str = "v2.core.event_destination.ping";

/// A case's result from its verdict and the answer it was judged on.
pub(super) fn result(case: &Case, judged: Judged, answer: &Answer) -> CaseResult {
    CaseResult::judged(case, judged.verdict)
        .answered(answer)
        .advised(judged.advice)
}
