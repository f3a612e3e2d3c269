//! How a receiver's answer is judged (pure): what happened on the wire, said in plain words,
//! against what a case expects and the answer-time budget.
//!
//! Every delivery is timed. Stripe publishes no number for its delivery timeout; its support
//! article on "Timed out" says only that Stripe "was able to establish a connection to your
//! server, but it took too long for your server to provide a response", and its webhook docs ask
//! receivers to "quickly return a successful status code (2xx) prior to any complex logic that
//! could cause a timeout". The Stripe CLI forwards with a 30 s timeout (`pkg/proxy/endpoint.go`,
//! `defaultTimeout`); reports of Stripe's own range from 10 s to 30 s. `check --timeout` defaults
//! to the short end, 10 s, so that a handler Stripe may time out fails here; answers slower than
//! `SLOW_ANSWER` pass with advice: answer first, process later.

use std::time::Duration;

use super::cases::Expect;

/// Answers slower than this pass with an advisory finding.
pub const SLOW_ANSWER: Duration = Duration::from_secs(2);

/// The time limits a case's answers are judged against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// `--timeout`: a slower answer is a failed delivery, as Stripe counts it.
    pub budget_ms: f64,
    /// Slower than this (but in time) is advice, not a failure.
    pub slow_ms: f64,
    /// A request unanswered after this is a hang (the client gives up).
    pub hang_ms: f64,
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    /// Nothing listens there (or a firewall refused).
    Refused,
    /// The connection was closed or reset before an answer came.
    Reset,
    Other,
}

/// An HTTP answer, or why there was none.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Status {
        code: u16,
        ms: f64,
        /// The start of the answer's body (a few KiB, as read), for the excerpt and diagnoses.
        body: String,
    },
    Hang {
        after_ms: f64,
    },
    Failed {
        cause: NoAnswer,
        error: String,
    },
}

impl Answer {
    /// Answered 2xx: the receiver took the event.
    pub fn accepted(&self) -> bool {
        matches!(self, Answer::Status { code, .. } if (200..300).contains(code))
    }

    /// Answered 4xx: the receiver refused the event.
    pub fn refused(&self) -> bool {
        matches!(self, Answer::Status { code, .. } if (400..500).contains(code))
    }

    pub fn code(&self) -> Option<u16> {
        match self {
            Answer::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn ms(&self) -> Option<f64> {
        match self {
            Answer::Status { ms, .. } => Some(*ms),
            Answer::Hang { after_ms } => Some(*after_ms),
            Answer::Failed { .. } => None,
        }
    }

    /// The answer's body as a short, single-line, scrubbed excerpt (none when empty).
    pub fn excerpt(&self) -> Option<String> {
        match self {
            Answer::Status { body, .. } if !body.trim().is_empty() => {
                Some(crate::http::excerpt(body, EXCERPT_CHARS))
            }
            _ => None,
        }
    }

    /// "200", "hang", "error": how the answer is counted in a summary.
    pub fn short(&self) -> String {
        match self {
            Answer::Status { code, .. } => code.to_string(),
            Answer::Hang { .. } => "hang".into(),
            Answer::Failed { .. } => "error".into(),
        }
    }
}

/// Characters of an answer shown in a report.
pub const EXCERPT_CHARS: usize = 200;

/// A verdict: `Ok(detail)` passed, `Err(reason)` failed; `advice` is an advisory finding on a
/// pass (a slow answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub verdict: Result<String, String>,
    pub advice: Option<String>,
}

impl Judged {
    fn fail(reason: String) -> Self {
        Judged {
            verdict: Err(reason),
            advice: None,
        }
    }
}

fn secs(ms: f64) -> String {
    crate::duration::human(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
}

/// Judges one answer against what the case expects and the time limits.
pub fn judge_answer(expect: Expect, answer: &Answer, timing: Timing) -> Judged {
    let (code, ms) = match answer {
        Answer::Status { code, ms, .. } => (*code, *ms),
        other => return Judged::fail(no_answer(other, timing)),
    };
    let ok2xx = (200..300).contains(&code);
    let answered = match expect {
        Expect::Rejected if (400..500).contains(&code) => Ok(format!("refused with {code}")),
        Expect::Rejected if ok2xx => Err(format!("accepted with {code}, expected a 4xx refusal")),
        Expect::Rejected if code >= 500 => Ok(format!(
            "not accepted ({code}; a crash instead of a 4xx is robustness.bad_signature's concern)"
        )),
        Expect::Rejected => Err(format!("answered {code}, expected a 4xx refusal")),
        Expect::NoServerError if code >= 500 => Err(format!(
            "answered {code}, a server error: the receiver failed on it instead of taking it (2xx) or refusing it (4xx), and Stripe retries a 5xx{}",
            quoted(answer)
        )),
        Expect::NoServerError | Expect::NoCredit => Ok(format!("answered {code}")),
        _ if ok2xx => Ok(format!("answered {code}")),
        _ => Err(not_accepted(code, answer)),
    };
    match answered {
        Err(why) => Judged::fail(why),
        Ok(_) if ms > timing.budget_ms => Judged::fail(late(code, ms, timing)),
        Ok(detail) => Judged {
            advice: (ms > timing.slow_ms).then(|| slow(ms, timing)),
            verdict: Ok(detail),
        },
    }
}

/// The answer's excerpt for a message: `: "…"`, or nothing when the body was empty.
fn quoted(answer: &Answer) -> String {
    answer
        .excerpt()
        .map(|e| format!(": {e}"))
        .unwrap_or_default()
}

/// Why a delivery that should have been taken was not: a refusal (4xx, with what Stripe's
/// libraries said when the answer shows it) or a handler failure (5xx).
fn not_accepted(code: u16, answer: &Answer) -> String {
    let body = match answer {
        Answer::Status { body, .. } => body.as_str(),
        _ => "",
    };
    if code >= 500 {
        return format!(
            "answered {code}, a server error: the handler failed after the request arrived (a 5xx is not a refusal; Stripe retries it for up to three days and may disable an endpoint that keeps failing){}",
            quoted(answer)
        );
    }
    let refused = format!("refused with {code}, expected 2xx{}", quoted(answer));
    match diagnose_refusal(body) {
        Some(cause) => format!("{refused}; {cause}"),
        None => refused,
    }
}

/// What a refusal's body says about its cause, when it is one of Stripe's libraries' own
/// messages that name it (stripe-node's `Webhooks.js`, stripe-python's `_webhook.py`).
pub fn diagnose_refusal(body: &str) -> Option<&'static str> {
    if body.contains("Payload was provided as a parsed JavaScript object") {
        return Some(
            "stripe-node says the webhook route got a parsed body: a JSON body parser (express.json(), bodyParser.json()) runs before it, so the raw bytes are gone. Register the route with express.raw({type: 'application/json'}) before any JSON parser, and pass req.body to constructEvent",
        );
    }
    if body.contains("signing secret contains whitespace") {
        return Some(
            "stripe-node says the receiver's signing secret contains whitespace: an extra newline or space in its configured value",
        );
    }
    None
}

fn late(code: u16, ms: f64, timing: Timing) -> String {
    format!(
        "answered {code} after {}, over the {} timeout (--timeout): Stripe counts a late answer as a failed delivery and sends the event again, so the work in the handler runs again too; answer 2xx first, then process",
        secs(ms),
        secs(timing.budget_ms)
    )
}

fn slow(ms: f64, timing: Timing) -> String {
    format!(
        "slow: answered after {} (over {}): answer 2xx first and do the work afterwards (a queue, a background job), as Stripe's docs ask, before a busy day pushes it over Stripe's timeout",
        secs(ms),
        secs(timing.slow_ms)
    )
}

fn no_answer(answer: &Answer, timing: Timing) -> String {
    match answer {
        Answer::Hang { after_ms } => format!(
            "no answer after {} (a hang: 3 × --timeout); Stripe gives up long before and sends the event again",
            secs(after_ms.max(timing.hang_ms))
        ),
        Answer::Failed {
            cause: NoAnswer::Refused,
            error,
        } => format!("could not connect: {error}"),
        Answer::Failed {
            cause: NoAnswer::Reset,
            error,
        } => format!("the connection was closed without an answer: {error}"),
        Answer::Failed { error, .. } => format!("request failed: {error}"),
        Answer::Status { .. } => unreachable!("a status is an answer"),
    }
}

/// Classifies a request that got no answer.
pub fn classify_failure(e: &reqwest::Error) -> NoAnswer {
    let chain = crate::error::chain(e).to_ascii_lowercase();
    if e.is_connect() {
        NoAnswer::Refused
    } else if chain.contains("reset")
        || chain.contains("closed")
        || chain.contains("incomplete")
        || chain.contains("broken pipe")
        || chain.contains("eof")
    {
        NoAnswer::Reset
    } else {
        NoAnswer::Other
    }
}

/// Judges the answers to copies of an event the receiver already has (or gets at the same time):
/// each must come in time (a late or missing answer is a failed delivery, as for every case);
/// a refusal or a 5xx is advice, not a failure: nothing was done twice, but Stripe counts the
/// delivery as failed and retries it, for days when the refusal is permanent. Returns the
/// verdict's failure, if any, and the advice.
pub fn judge_duplicates(
    answers: &[Answer],
    timing: Timing,
) -> (Result<(), String>, Option<String>) {
    let mut advice = Vec::new();
    for a in answers {
        let judged = judge_answer(Expect::NoServerError, a, timing);
        if let Answer::Status { code, ms, .. } = a {
            if *ms > timing.budget_ms {
                return (
                    Err(format!("a duplicate: {}", late(*code, *ms, timing))),
                    None,
                );
            }
            if !(200..300).contains(code) {
                advice.push(format!(
                    "a duplicate was answered {code}{}: Stripe counts that as a failed delivery and retries it (for up to three days); answer duplicates 2xx and do nothing",
                    quoted(a)
                ));
            }
        } else if let Err(why) = judged.verdict {
            return (Err(format!("a duplicate: {why}")), None);
        }
        advice.extend(judged.advice);
    }
    advice.dedup();
    let advice = (!advice.is_empty()).then(|| {
        advice.truncate(2);
        advice.join("; ")
    });
    (Ok(()), advice)
}

/// Judges a balance change for the top-up idempotency cases.
pub fn judge_credit(
    expect: Expect,
    before: i64,
    after: i64,
    amount: i64,
) -> Result<String, String> {
    let delta = after - before;
    let want = match expect {
        Expect::CreditedOnce => amount,
        _ => 0,
    };
    let describe = |d: i64| match (d, amount) {
        (0, _) => "nothing".to_owned(),
        (d, a) if a > 0 && d == a => format!("{d} cents (1 top-up)"),
        (d, a) if a > 0 && d % a == 0 => format!("{d} cents ({} top-ups)", d / a),
        (d, _) => format!("{d} cents"),
    };
    if delta == want {
        Ok(format!("balance rose by {}", describe(delta)))
    } else {
        Err(format!(
            "balance rose by {}, expected {}",
            describe(delta),
            describe(want)
        ))
    }
}

/// "200 ×2", "200 ×19, 500 ×1", "hang ×1".
pub fn summarize_answers(answers: &[Answer]) -> String {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for a in answers {
        *counts.entry(a.short()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        budget_ms: 10.0,
        slow_ms: 4.0,
        hang_ms: 30.0,
    };

    fn st(code: u16, ms: f64) -> Answer {
        Answer::Status {
            code,
            ms,
            body: String::new(),
        }
    }

    fn ok(j: Judged) -> String {
        j.verdict.unwrap()
    }

    fn err(j: Judged) -> String {
        j.verdict.unwrap_err()
    }

    #[test]
    fn answers_are_judged_by_expectation_and_time_on_every_case() {
        assert!(
            judge_answer(Expect::Accepted, &st(200, 3.0), T)
                .verdict
                .is_ok()
        );
        assert!(
            judge_answer(Expect::Rejected, &st(400, 3.0), T)
                .verdict
                .is_ok()
        );
        assert!(
            judge_answer(Expect::Rejected, &st(500, 3.0), T)
                .verdict
                .is_ok()
        );
        assert!(
            judge_answer(Expect::Rejected, &st(302, 3.0), T)
                .verdict
                .is_err()
        );
        assert!(err(judge_answer(Expect::Rejected, &st(200, 3.0), T)).contains("accepted"));
        assert!(
            judge_answer(Expect::NoServerError, &st(400, 3.0), T)
                .verdict
                .is_ok()
        );
        assert!(
            err(judge_answer(Expect::NoServerError, &st(503, 3.0), T)).contains("failed on it")
        );
        // Late is a failure whatever the case: the types suite and the refusals included.
        for (expect, code) in [
            (Expect::Accepted, 200),
            (Expect::Rejected, 400),
            (Expect::NoServerError, 200),
            (Expect::AcceptedWithoutEffect, 204),
        ] {
            let e = err(judge_answer(expect, &st(code, 12.0), T));
            assert!(e.contains("over the") && e.contains("--timeout"), "{e}");
            assert!(e.contains("sends the event again"), "{e}");
        }
        let e = err(judge_answer(
            Expect::Accepted,
            &Answer::Hang { after_ms: 30.0 },
            T,
        ));
        assert!(e.contains("hang"), "{e}");
    }

    #[test]
    fn a_slow_answer_in_time_passes_with_advice() {
        let j = judge_answer(Expect::Accepted, &st(200, 6.0), T);
        assert_eq!(j.verdict, Ok("answered 200".into()));
        let advice = j.advice.unwrap();
        assert!(advice.contains("answer 2xx first"), "{advice}");
        assert_eq!(
            judge_answer(Expect::Accepted, &st(200, 3.0), T).advice,
            None
        );
    }

    #[test]
    fn causes_are_named_in_plain_words_with_the_answer() {
        let crash = Answer::Status {
            code: 500,
            ms: 1.0,
            body: "TypeError: Cannot read properties of undefined (reading 'id')".into(),
        };
        let e = err(judge_answer(Expect::Accepted, &crash, T));
        assert!(
            e.contains("server error") && e.contains("not a refusal"),
            "{e}"
        );
        assert!(e.contains("reading 'id'"), "{e}");
        let parsed = Answer::Status {
            code: 400,
            ms: 1.0,
            body: format!(
                "Webhook Error: Webhook payload must be provided as a string or a Buffer (https://nodejs.org/api/buffer.html) instance representing the _raw_ request body.Payload was provided as a parsed JavaScript object instead. {}",
                "x".repeat(300)
            ),
        };
        let e = err(judge_answer(Expect::Accepted, &parsed, T));
        assert!(
            e.starts_with("refused with 400, expected 2xx: Webhook Error"),
            "{e}"
        );
        assert!(e.contains("express.raw"), "{e}");
        let plain = err(judge_answer(Expect::Accepted, &st(401, 1.0), T));
        assert_eq!(plain, "refused with 401, expected 2xx");
        let refused = Answer::Failed {
            cause: NoAnswer::Refused,
            error: "connection refused".into(),
        };
        assert!(
            ok_or_err(judge_answer(Expect::Accepted, &refused, T)).starts_with("could not connect")
        );
        let reset = Answer::Failed {
            cause: NoAnswer::Reset,
            error: "connection reset by peer".into(),
        };
        assert!(
            ok_or_err(judge_answer(Expect::Rejected, &reset, T))
                .contains("closed without an answer")
        );
    }

    fn ok_or_err(j: Judged) -> String {
        j.verdict.unwrap_or_else(|e| e)
    }

    #[test]
    fn excerpts_are_short_flat_and_scrubbed() {
        let a = Answer::Status {
            code: 400,
            ms: 1.0,
            body: format!(
                "bad\nsecret whsec_{}\u{1b}[31m {}",
                "a".repeat(32),
                "y".repeat(400)
            ),
        };
        let e = a.excerpt().unwrap();
        assert!(e.chars().count() <= EXCERPT_CHARS + 1, "{e}");
        assert!(
            !e.contains("whsec_a") && !e.contains('\n') && !e.contains('\u{1b}'),
            "{e}"
        );
        assert_eq!(st(200, 1.0).excerpt(), None);
        assert_eq!(
            ok(judge_answer(Expect::Accepted, &st(200, 1.0), T)),
            "answered 200"
        );
    }

    #[test]
    fn duplicates_must_be_timely_and_should_be_2xx() {
        assert_eq!(
            judge_duplicates(&[st(200, 1.0), st(200, 2.0)], T),
            (Ok(()), None)
        );
        let (v, advice) = judge_duplicates(&[st(200, 1.0), st(409, 2.0)], T);
        assert!(v.is_ok());
        assert!(advice.unwrap().contains("answered 409"));
        let (v, _) = judge_duplicates(&[st(200, 1.0), st(200, 20.0)], T);
        assert!(v.unwrap_err().contains("over the"));
        let (v, _) = judge_duplicates(&[Answer::Hang { after_ms: 30.0 }], T);
        assert!(v.unwrap_err().contains("hang"));
        let (_, advice) = judge_duplicates(&[st(200, 6.0)], T);
        assert!(advice.unwrap().starts_with("slow"));
    }

    #[test]
    fn credits_are_judged_exactly() {
        assert!(judge_credit(Expect::CreditedOnce, 100, 600, 500).is_ok());
        let e = judge_credit(Expect::CreditedOnce, 100, 1100, 500).unwrap_err();
        assert!(e.contains("2 top-ups"), "{e}");
        assert!(judge_credit(Expect::CreditedOnce, 100, 100, 500).is_err());
        assert!(judge_credit(Expect::NoCredit, 100, 100, 500).is_ok());
        assert!(judge_credit(Expect::NoCredit, 100, 600, 500).is_err());
        assert_eq!(
            summarize_answers(&[st(200, 1.0), st(200, 1.0), st(500, 1.0)]),
            "200 ×2, 500 ×1"
        );
    }
}
