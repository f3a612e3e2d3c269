//! The catalogue of check cases (pure): which cases exist, what each expects, how each request is
//! built, and how an answer is judged. The runner does the I/O.
//!
//! Cases are designed to be independent, so that each broken behaviour of a receiver is caught by
//! the case meant for it and by no other: the security and robustness cases send a benign event
//! type (`customer.created`) that credits nothing, the idempotency cases each use a fresh Checkout
//! Session and fresh event ids, and only the robustness cases judge answer time against the
//! budget (the others only fail on a hang).

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::webhook::fixtures::Prepared;
use crate::webhook::signature::{self, Signer};

/// Event type the security and robustness cases send: accepted and without effect everywhere.
pub const BENIGN_TYPE: &str = "customer.created";
/// Type of the robustness case about event types a receiver does not know.
pub const UNKNOWN_TYPE: &str = "stripe_ops.test.unknown_event";
/// Size of the large-body case.
pub const LARGE_BODY_BYTES: usize = 256 * 1024;
/// Deliveries in the concurrent idempotency case.
pub const CONCURRENT_DELIVERIES: usize = 20;
/// How far outside the tolerance the stale and future timestamps are (6 minutes at 300 s).
pub const BEYOND_TOLERANCE: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    Security,
    Robustness,
    Idempotency,
    Types,
}

impl Suite {
    pub const ALL: [Suite; 4] = [
        Suite::Security,
        Suite::Robustness,
        Suite::Idempotency,
        Suite::Types,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Suite::Security => "security",
            Suite::Robustness => "robustness",
            Suite::Idempotency => "idempotency",
            Suite::Types => "types",
        }
    }
}

impl std::str::FromStr for Suite {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Suite::ALL
            .into_iter()
            .find(|suite| suite.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Suite::ALL.iter().map(|s| s.name()).collect();
                format!("unknown suite {s:?}; the suites are {}", names.join(", "))
            })
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a security case tampers with a correctly signed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    None,
    /// The event as Stripe's bytes (nested, empty, unicode and escaped values), correctly signed:
    /// refused only by a receiver that verifies a re-serialised body.
    RawBody,
    NoHeader,
    Malformed,
    NoTimestamp,
    OnlyV0,
    WrongSecret,
    BodyChanged,
    TooOld,
    InFuture,
    OtherTimestamp,
    RolledSecrets,
}

/// The odd deliveries of the robustness suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oddity {
    UnknownType,
    EmptyBody,
    NotJson,
    Large,
    Unicode,
    /// A forged signature: refusing it must not crash the receiver.
    BadSignature,
}

/// The idempotency and ordering scenarios (need the app contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    Sequential,
    Concurrent,
    SameIdOtherBody,
    UnknownSession,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Security(Tamper),
    Robustness(Oddity),
    Idempotency(Replay),
    /// Deliver this fixture type; `ignored` means it may be 2xx without effect.
    Type {
        event_type: String,
        ignored: bool,
    },
}

/// Whether failing a case fails the run. `Required`: what Stripe's libraries and docs require of
/// every receiver. `Advisory`: hardening beyond that, shown as a warning unless `--strict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Required,
    Advisory,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Required => "required",
            Severity::Advisory => "advisory",
        }
    }
}

/// What a case expects of the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Answered 2xx.
    Accepted,
    /// Not accepted: 4xx is the proper answer; a 5xx also refuses the event (the crash itself is
    /// the robustness suite's concern), a 2xx fails.
    Rejected,
    /// Any answer but 5xx, within the time budget.
    NoServerError,
    /// Answered 2xx, within the time budget.
    AcceptedInTime,
    /// Answered 2xx and the balance did not move.
    AcceptedWithoutEffect,
    /// The balance rose by exactly one top-up amount.
    CreditedOnce,
    /// The balance did not move.
    NoCredit,
}

impl Expect {
    pub fn describe(self) -> &'static str {
        match self {
            Expect::Accepted => "2xx",
            Expect::Rejected => "refused (4xx)",
            Expect::NoServerError => "no 5xx, in time",
            Expect::AcceptedInTime => "2xx, in time",
            Expect::AcceptedWithoutEffect => "2xx, no credit",
            Expect::CreditedOnce => "credited once",
            Expect::NoCredit => "no credit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub suite: Suite,
    pub expect: Expect,
    pub severity: Severity,
    /// One line for people: what is sent.
    pub what: String,
    /// Why the case exists: the rule it checks and where the rule comes from.
    pub why: &'static str,
    pub kind: Kind,
}

/// A case's description: what it expects, how much it matters, what it sends and why.
struct Spec {
    name: &'static str,
    expect: Expect,
    severity: Severity,
    what: &'static str,
    why: &'static str,
}

fn case(suite: Suite, spec: Spec, kind: Kind) -> Case {
    Case {
        name: format!("{}.{}", suite.name(), spec.name),
        suite,
        expect: spec.expect,
        severity: spec.severity,
        what: spec.what.to_owned(),
        why: spec.why,
        kind,
    }
}

const fn required(
    name: &'static str,
    expect: Expect,
    what: &'static str,
    why: &'static str,
) -> Spec {
    Spec {
        name,
        expect,
        severity: Severity::Required,
        what,
        why,
    }
}

const fn advisory(
    name: &'static str,
    expect: Expect,
    what: &'static str,
    why: &'static str,
) -> Spec {
    Spec {
        name,
        expect,
        severity: Severity::Advisory,
        what,
        why,
    }
}

/// Every case, in the order they run. `types` are the fixture types; `ignored` those that may be
/// accepted without effect. The rules come from Stripe's webhook docs and from what
/// stripe-node's `constructEvent` and stripe-python's `construct_event` accept and refuse.
pub fn catalogue(types: &[String], ignored: &[String]) -> Vec<Case> {
    use Expect::*;
    use Suite::*;
    let sec = |spec, t| case(Security, spec, Kind::Security(t));
    let rob = |spec, o| case(Robustness, spec, Kind::Robustness(o));
    let idem = |spec, r| case(Idempotency, spec, Kind::Idempotency(r));
    let mut cases = vec![
        sec(
            required(
                "valid_signature",
                Accepted,
                "a correctly signed event",
                "Stripe signs every delivery; refusing a correct one loses events",
            ),
            Tamper::None,
        ),
        sec(
            required(
                "raw_body",
                Accepted,
                "a correctly signed event as Stripe's bytes: pretty-printed, nested, empty, unicode and escaped values",
                "Stripe's libraries verify the raw bytes; a receiver that re-serialises the parsed body fails every real delivery (stripe-node #341)",
            ),
            Tamper::RawBody,
        ),
        sec(
            required(
                "no_header",
                Rejected,
                "no Stripe-Signature header",
                "Stripe's libraries refuse it; accepting it lets anyone post events",
            ),
            Tamper::NoHeader,
        ),
        sec(
            required(
                "malformed_header",
                Rejected,
                "a header that is not t=…,v1=…",
                "Stripe's libraries find no v1 signature in it and refuse it",
            ),
            Tamper::Malformed,
        ),
        sec(
            required(
                "no_timestamp",
                Rejected,
                "a valid v1= but no t=",
                "Stripe's libraries cannot extract the timestamp and refuse it",
            ),
            Tamper::NoTimestamp,
        ),
        sec(
            required(
                "only_v0",
                Rejected,
                "the right signature as v0= only",
                "only v1 is Stripe's scheme; the libraries ignore v0 and find no signature",
            ),
            Tamper::OnlyV0,
        ),
        sec(
            required(
                "wrong_secret",
                Rejected,
                "signed with another secret",
                "the signature proves the sender holds the endpoint's secret",
            ),
            Tamper::WrongSecret,
        ),
        sec(
            required(
                "body_changed",
                Rejected,
                "the body changed after signing",
                "the signature covers every byte of the body",
            ),
            Tamper::BodyChanged,
        ),
        sec(
            required(
                "timestamp_too_old",
                Rejected,
                "signed correctly, 6 minutes ago",
                "Stripe's libraries refuse signatures older than the tolerance (300 s): replay protection",
            ),
            Tamper::TooOld,
        ),
        sec(
            advisory(
                "timestamp_in_future",
                Rejected,
                "signed correctly, 6 minutes ahead",
                "hardening: Stripe's libraries only refuse old timestamps, so accepting future ones is what they do",
            ),
            Tamper::InFuture,
        ),
        sec(
            required(
                "signature_for_other_timestamp",
                Rejected,
                "t=now with the signature for another t",
                "the signed message is \"<t>.<body>\": a signature for another t must not match",
            ),
            Tamper::OtherTimestamp,
        ),
        sec(
            required(
                "secret_roll",
                Accepted,
                "several v1=, one of them right",
                "during a secret roll Stripe sends one v1 per live secret; any match is valid",
            ),
            Tamper::RolledSecrets,
        ),
        rob(
            required(
                "unknown_type",
                AcceptedInTime,
                "a signed event of a type nobody handles",
                "Stripe's docs: answer 2xx quickly to every event, handled or not, or Stripe retries and disables the endpoint",
            ),
            Oddity::UnknownType,
        ),
        rob(
            required(
                "empty_body",
                NoServerError,
                "an empty body, validly signed",
                "junk must be refused, not crash the receiver or hang it",
            ),
            Oddity::EmptyBody,
        ),
        rob(
            required(
                "non_json_body",
                NoServerError,
                "a body that is not JSON, validly signed",
                "junk must be refused, not crash the receiver or hang it",
            ),
            Oddity::NotJson,
        ),
        rob(
            required(
                "large_body",
                NoServerError,
                "a 256 KiB event, validly signed",
                "large events exist; refuse or accept them, without a crash or a hang",
            ),
            Oddity::Large,
        ),
        rob(
            required(
                "unicode_body",
                NoServerError,
                "unicode and escaped characters, validly signed",
                "Stripe sends UTF-8; a receiver must not crash on it",
            ),
            Oddity::Unicode,
        ),
        rob(
            required(
                "bad_signature",
                NoServerError,
                "a forged signature: refused without a crash",
                "refusing a forgery must not crash the receiver or hang it",
            ),
            Oddity::BadSignature,
        ),
        idem(
            required(
                "sequential_duplicate",
                CreditedOnce,
                "the same top-up event twice in a row",
                "Stripe delivers at least once and retries: handle each event id once (Stripe's docs)",
            ),
            Replay::Sequential,
        ),
        idem(
            required(
                "concurrent_duplicates",
                CreditedOnce,
                "the same top-up event 20 times at once",
                "retries overlap; a check-then-insert without a lock credits twice",
            ),
            Replay::Concurrent,
        ),
        idem(
            required(
                "same_id_other_body",
                CreditedOnce,
                "the same event id again with another body",
                "duplicates are recognised by event id, not by identical bytes",
            ),
            Replay::SameIdOtherBody,
        ),
        idem(
            advisory(
                "unknown_session",
                NoCredit,
                "checkout.session.completed for a session the app never created",
                "hardening: crediting only sessions the app created is not a Stripe rule",
            ),
            Replay::UnknownSession,
        ),
    ];
    for t in types {
        let is_ignored = ignored.iter().any(|i| i == t);
        cases.push(Case {
            name: format!("types.{t}"),
            suite: Types,
            expect: if is_ignored {
                AcceptedWithoutEffect
            } else {
                Accepted
            },
            severity: Severity::Required,
            what: format!("a signed {t}"),
            why: if is_ignored {
                "named by --expect-ignored: accepted, and nothing changes"
            } else {
                "every event type the endpoint may receive is answered 2xx"
            },
            kind: Kind::Type {
                event_type: t.clone(),
                ignored: is_ignored,
            },
        });
    }
    cases
}

/// The cases to run: those of the chosen suites (all when none), narrowed to `names` when given.
/// An unknown name is an error naming the close matches.
pub fn select(all: Vec<Case>, suites: &[Suite], names: &[String]) -> Result<Vec<Case>, String> {
    for name in names {
        if !all.iter().any(|c| &c.name == name) {
            let mut close: Vec<(f64, &str)> = all
                .iter()
                .map(|c| (strsim::jaro_winkler(name, &c.name), c.name.as_str()))
                .filter(|(s, n)| *s > 0.85 || n.contains(name.as_str()))
                .collect();
            close.sort_by(|a, b| b.0.total_cmp(&a.0));
            let hint = if close.is_empty() {
                "see `stripe-ops check --list`".to_owned()
            } else {
                let names: Vec<&str> = close.iter().take(3).map(|(_, n)| *n).collect();
                format!("did you mean {}?", names.join(", "))
            };
            return Err(format!("unknown case {name:?}; {hint}"));
        }
    }
    Ok(all
        .into_iter()
        .filter(|c| suites.is_empty() || suites.contains(&c.suite))
        .filter(|c| names.is_empty() || names.contains(&c.name))
        .collect())
}

/// One HTTP delivery: the exact body and the `Stripe-Signature` value (none: no header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub body: String,
    pub header: Option<String>,
}

impl Delivery {
    fn signed(body: String, t: i64, signers: &[Signer]) -> Self {
        let header = signature::header(t, body.as_bytes(), signers);
        Self {
            body,
            header: Some(header),
        }
    }
}

/// A security case's delivery of `body` (a benign event rendered at `now`).
pub fn security_delivery(
    tamper: Tamper,
    body: String,
    signer: &Signer,
    now: i64,
    tolerance: i64,
) -> Delivery {
    let one = std::slice::from_ref(signer);
    let sig = |t: i64, b: &str| signer.sign_hex(t, b.as_bytes());
    let other = Signer::new(format!("whsec_not_the_receivers_{}", now).as_bytes());
    let beyond = tolerance + BEYOND_TOLERANCE;
    match tamper {
        Tamper::None => Delivery::signed(body, now, one),
        Tamper::RawBody => Delivery::signed(stripe_formatted(&body), now, one),
        Tamper::NoHeader => Delivery { body, header: None },
        Tamper::Malformed => Delivery {
            header: Some(format!("t={now}v1{};garbage", sig(now, &body))),
            body,
        },
        Tamper::NoTimestamp => Delivery {
            header: Some(format!("v1={}", sig(now, &body))),
            body,
        },
        Tamper::OnlyV0 => Delivery {
            header: Some(format!("t={now},v0={}", sig(now, &body))),
            body,
        },
        Tamper::WrongSecret => Delivery::signed(body, now, std::slice::from_ref(&other)),
        Tamper::BodyChanged => {
            let header = signature::header(now, body.as_bytes(), one);
            Delivery {
                body: change_body(&body),
                header: Some(header),
            }
        }
        Tamper::TooOld => Delivery::signed(body, now - beyond, one),
        Tamper::InFuture => Delivery::signed(body, now + beyond, one),
        Tamper::OtherTimestamp => Delivery {
            header: Some(format!("t={now},v1={}", sig(now - 30, &body))),
            body,
        },
        Tamper::RolledSecrets => Delivery::signed(body, now, &[other, signer.clone()]),
    }
}

/// The same event with one value changed, as an attacker would (`livemode` flipped, else a byte).
fn change_body(body: &str) -> String {
    for (from, to) in [
        ("\"livemode\": false", "\"livemode\": true"),
        ("\"livemode\":false", "\"livemode\":true"),
    ] {
        if body.contains(from) {
            return body.replacen(from, to, 1);
        }
    }
    format!("{body} ")
}

/// The event with what makes re-serialisers differ from Stripe's bytes: nested objects, an empty
/// object and array, non-ASCII text and escaped characters (in `metadata` and `description`).
pub fn stripe_formatted(event: &str) -> String {
    let mut v: Value = serde_json::from_str(event).expect("rendered events are JSON");
    let object = &mut v["data"]["object"];
    object["description"] =
        Value::from("Grüße aus 東京 ☃ — \"quoted\", back\\slash, tab\t, line\nbreak, </script>");
    object["metadata"] = serde_json::json!({
        "stripe_ops_nested": {"empty_object": {}, "empty_array": [], "list": [1, "zwei", {"drei": 3}]},
        "stripe_ops_note": "été, naïve, 🎉",
    });
    crate::webhook::to_wire(&v)
}

/// The same event compact and signed over those bytes: what a receiver that verifies
/// `JSON.stringify(parsed)` (or any re-serialisation) would accept.
pub fn compact_again(delivery: &Delivery, now: i64, signers: &[Signer]) -> Delivery {
    let v: Value = serde_json::from_str(&delivery.body).expect("the raw-body case sends JSON");
    Delivery::signed(crate::webhook::to_compact(&v), now, signers)
}

/// A robustness case's delivery: the odd body, validly signed at `now` (except the forged one).
pub fn robustness_delivery(oddity: Oddity, event: &str, signers: &[Signer], now: i64) -> Delivery {
    let body = robustness_body(oddity, event);
    if oddity == Oddity::BadSignature {
        let forged = Signer::new(format!("whsec_forged_{now}").as_bytes());
        return Delivery::signed(body, now, std::slice::from_ref(&forged));
    }
    Delivery::signed(body, now, signers)
}

/// A robustness case's body: `event` is a benign event rendered with a fresh id.
fn robustness_body(oddity: Oddity, event: &str) -> String {
    match oddity {
        Oddity::BadSignature => event.to_owned(),
        Oddity::UnknownType => with_field(event, &["type"], Value::from(UNKNOWN_TYPE)),
        Oddity::EmptyBody => String::new(),
        Oddity::NotJson => "this is not JSON {\"id\": ".to_owned(),
        Oddity::Large => pad_to(event, LARGE_BODY_BYTES),
        Oddity::Unicode => with_field(
            event,
            &["data", "object", "description"],
            Value::from(
                "Grüße, 東京 ☃ 𝄞 🎉 \"quoted\" back\\slash tab\t newline\n nul\u{0} bell\u{7} </script>",
            ),
        ),
    }
}

fn with_field(event: &str, path: &[&str], value: Value) -> String {
    let mut v: Value = serde_json::from_str(event).expect("rendered events are JSON");
    let (last, parents) = path.split_last().expect("a path");
    let mut cur = &mut v;
    for p in parents {
        cur = &mut cur[*p];
    }
    cur[*last] = value;
    crate::webhook::to_wire(&v)
}

/// The event padded with a `metadata.padding` string so that the body is exactly `size` bytes.
fn pad_to(event: &str, size: usize) -> String {
    let with_empty = with_field(
        event,
        &["data", "object", "metadata", "stripe_ops_padding"],
        Value::from(""),
    );
    let missing = size.saturating_sub(with_empty.len());
    with_field(
        event,
        &["data", "object", "metadata", "stripe_ops_padding"],
        Value::from("x".repeat(missing)),
    )
}

/// What a top-up event must carry for the app to credit it (CONTRACT.md section 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUp {
    pub session_id: String,
    pub amount_cents: i64,
    pub org_id: String,
    pub account_id: String,
    pub payment_intent_id: String,
}

/// The `--set` operations that turn the checkout.session.completed template into `top_up`.
pub fn topup_sets(top_up: &TopUp) -> Vec<crate::webhook::fixtures::SetOp> {
    use crate::webhook::fixtures::SetOp;
    let set = |path: &str, value: Value| SetOp {
        path: path.to_owned(),
        value,
    };
    vec![
        set("data.object.id", Value::from(top_up.session_id.clone())),
        set("data.object.payment_status", Value::from("paid")),
        set("data.object.status", Value::from("complete")),
        set("data.object.amount_total", Value::from(top_up.amount_cents)),
        set(
            "data.object.amount_subtotal",
            Value::from(top_up.amount_cents),
        ),
        set("data.object.currency", Value::from("usd")),
        set(
            "data.object.payment_intent",
            Value::from(top_up.payment_intent_id.clone()),
        ),
        set(
            "data.object.metadata",
            serde_json::json!({
                "orgId": top_up.org_id,
                "accountId": top_up.account_id,
                "paymentIntentId": top_up.payment_intent_id,
            }),
        ),
    ]
}

/// The replayed body for the same-id case: the same event, delivered later (another `created`
/// and another `request.idempotency_key`), as a retry with a rebuilt body would look.
pub fn other_body(prepared: &Prepared, id: &str, created: i64) -> String {
    with_field(
        &prepared.body(id, created + 1),
        &["request"],
        serde_json::json!({ "id": null, "idempotency_key": format!("stripe-ops-{id}-again") }),
    )
}

/// An HTTP answer, or why there was none.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Status { code: u16, ms: f64 },
    Hang { after_ms: f64 },
    Failed { error: String },
}

impl Answer {
    /// Answered 2xx: the receiver took the event.
    pub fn accepted(&self) -> bool {
        matches!(self, Answer::Status { code, .. } if (200..300).contains(code))
    }
}

/// Judges a delivery case's answer. `budget_ms` is the answer-time budget (`--timeout`).
/// Returns `Ok(detail)` on pass and `Err(reason)` on failure.
pub fn judge_answer(expect: Expect, answer: &Answer, budget_ms: f64) -> Result<String, String> {
    let (code, ms) = match answer {
        Answer::Status { code, ms } => (*code, *ms),
        Answer::Hang { after_ms } => {
            return Err(format!("no answer after {:.0} ms (hang)", after_ms));
        }
        Answer::Failed { error } => return Err(format!("request failed: {error}")),
    };
    let ok2xx = (200..300).contains(&code);
    let in_time = ms <= budget_ms;
    let late = || format!("answered {code} in {ms:.0} ms, over the {budget_ms:.0} ms budget");
    match expect {
        Expect::Accepted | Expect::AcceptedWithoutEffect if ok2xx => Ok(format!("answered {code}")),
        Expect::Accepted | Expect::AcceptedWithoutEffect => {
            Err(format!("answered {code}, expected 2xx"))
        }
        Expect::Rejected if (400..500).contains(&code) => Ok(format!("refused with {code}")),
        Expect::Rejected if ok2xx => Err(format!("accepted with {code}, expected a 4xx refusal")),
        Expect::Rejected if code >= 500 => Ok(format!(
            "not accepted ({code}; a crash instead of a 4xx is robustness.bad_signature's concern)"
        )),
        Expect::Rejected => Err(format!("answered {code}, expected 4xx")),
        Expect::AcceptedInTime if !ok2xx => Err(format!("answered {code}, expected 2xx")),
        Expect::NoServerError if code >= 500 => Err(format!("answered {code} (server error)")),
        Expect::AcceptedInTime | Expect::NoServerError if !in_time => Err(late()),
        Expect::AcceptedInTime | Expect::NoServerError => Ok(format!("answered {code}")),
        Expect::CreditedOnce | Expect::NoCredit => Ok(format!("answered {code}")),
    }
}

/// Judges a balance change for the idempotency cases.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::fixtures::{Catalog, RenderOptions};

    const SECRET: &[u8] = b"whsec_unit";

    fn names(cases: &[Case]) -> Vec<&str> {
        cases.iter().map(|c| c.name.as_str()).collect()
    }

    fn verdict(d: &Delivery, now: i64) -> Result<i64, signature::Rejection> {
        signature::verify(
            d.header.as_deref().unwrap_or(""),
            d.body.as_bytes(),
            &[Signer::new(SECRET)],
            300,
            now,
            signature::Window::BothWays,
        )
    }

    #[test]
    fn catalogue_has_the_issue_cases_with_unique_names() {
        let types = vec!["a.b".to_owned(), "c.d".to_owned()];
        let all = catalogue(&types, &["c.d".to_owned()]);
        let n = names(&all);
        let unique: std::collections::HashSet<_> = n.iter().collect();
        assert_eq!(unique.len(), n.len());
        assert_eq!(
            all.iter().filter(|c| c.suite == Suite::Security).count(),
            12
        );
        assert_eq!(
            all.iter().filter(|c| c.suite == Suite::Robustness).count(),
            6
        );
        assert_eq!(
            all.iter().filter(|c| c.suite == Suite::Idempotency).count(),
            4
        );
        let last = all.last().unwrap();
        assert_eq!(last.name, "types.c.d");
        assert_eq!(last.expect, Expect::AcceptedWithoutEffect);
        assert!(n.contains(&"security.timestamp_too_old"));
        let advisory: Vec<&str> = all
            .iter()
            .filter(|c| c.severity == Severity::Advisory)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            advisory,
            [
                "security.timestamp_in_future",
                "idempotency.unknown_session"
            ]
        );
        assert!(all.iter().all(|c| !c.why.is_empty()));
    }

    #[test]
    fn the_raw_body_case_is_stripe_formatted_and_its_compact_copy_is_not() {
        let p = Catalog::load(None)
            .unwrap()
            .prepare(BENIGN_TYPE, &RenderOptions::default())
            .unwrap();
        let signer = Signer::new(SECRET);
        let d = security_delivery(Tamper::RawBody, p.body("evt_raw", 9), &signer, 9, 300);
        let v: Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(d.body, serde_json::to_string_pretty(&v).unwrap());
        assert!(d.body.contains("\"empty_object\": {}") && d.body.contains("東京"));
        assert!(d.body.contains(r#"\"quoted\""#) && d.body.contains(r"back\\slash"));
        assert_eq!(verdict(&d, 9), Ok(9));
        let compact = compact_again(&d, 9, std::slice::from_ref(&signer));
        assert_ne!(compact.body, d.body);
        assert_eq!(serde_json::from_str::<Value>(&compact.body).unwrap(), v);
        assert_eq!(verdict(&compact, 9), Ok(9));
    }

    #[test]
    fn select_by_suite_and_name_and_hint_on_typos() {
        let all = catalogue(&[], &[]);
        let sec = select(all.clone(), &[Suite::Security], &[]).unwrap();
        assert!(sec.iter().all(|c| c.suite == Suite::Security));
        let one = select(all.clone(), &[], &["security.no_header".into()]).unwrap();
        assert_eq!(names(&one), ["security.no_header"]);
        let e = select(all, &[], &["security.no_headr".into()]).unwrap_err();
        assert!(e.contains("security.no_header"), "{e}");
    }

    #[test]
    fn security_deliveries_fail_verification_for_exactly_the_reason_named() {
        use signature::Rejection as R;
        let now = 1_700_000_000;
        let signer = Signer::new(SECRET);
        let body = r#"{"id":"evt_1","livemode":false}"#.to_owned();
        let d = |t| security_delivery(t, body.clone(), &signer, now, 300);
        assert_eq!(verdict(&d(Tamper::None), now), Ok(now));
        assert_eq!(verdict(&d(Tamper::RolledSecrets), now), Ok(now));
        assert_eq!(
            d(Tamper::RolledSecrets)
                .header
                .unwrap()
                .matches("v1=")
                .count(),
            2
        );
        assert_eq!(d(Tamper::NoHeader).header, None);
        assert!(matches!(
            verdict(&d(Tamper::Malformed), now),
            Err(R::Malformed(_))
        ));
        assert_eq!(verdict(&d(Tamper::NoTimestamp), now), Err(R::NoTimestamp));
        assert_eq!(verdict(&d(Tamper::OnlyV0), now), Err(R::NoV1));
        assert_eq!(verdict(&d(Tamper::WrongSecret), now), Err(R::NoMatch));
        assert_eq!(verdict(&d(Tamper::BodyChanged), now), Err(R::NoMatch));
        assert_ne!(d(Tamper::BodyChanged).body, body);
        assert_eq!(verdict(&d(Tamper::OtherTimestamp), now), Err(R::NoMatch));
        assert_eq!(
            verdict(&d(Tamper::TooOld), now),
            Err(R::OutOfTolerance {
                by: 60,
                future: false
            })
        );
        assert_eq!(
            verdict(&d(Tamper::InFuture), now),
            Err(R::OutOfTolerance {
                by: 60,
                future: true
            })
        );
        // Only the tolerance stands between the stale cases and acceptance.
        let stale = d(Tamper::TooOld);
        assert!(
            signature::verify(
                stale.header.as_deref().unwrap(),
                stale.body.as_bytes(),
                std::slice::from_ref(&signer),
                i64::MAX / 2,
                now,
                signature::Window::BothWays,
            )
            .is_ok()
        );
    }

    #[test]
    fn robustness_bodies() {
        let p = Catalog::load(None)
            .unwrap()
            .prepare(BENIGN_TYPE, &RenderOptions::default())
            .unwrap();
        let event = p.body("evt_r", 1);
        let unknown: Value =
            serde_json::from_str(&robustness_body(Oddity::UnknownType, &event)).unwrap();
        assert_eq!(unknown["type"], UNKNOWN_TYPE);
        assert_eq!(unknown["id"], "evt_r");
        assert_eq!(robustness_body(Oddity::EmptyBody, &event), "");
        assert!(serde_json::from_str::<Value>(&robustness_body(Oddity::NotJson, &event)).is_err());
        let large = robustness_body(Oddity::Large, &event);
        assert_eq!(large.len(), LARGE_BODY_BYTES);
        assert!(serde_json::from_str::<Value>(&large).is_ok());
        let uni = robustness_body(Oddity::Unicode, &event);
        assert!(uni.contains("東京") && uni.contains("\\u0000") && uni.contains("\\\""));
        let s = [Signer::new(SECRET)];
        let forged = robustness_delivery(Oddity::BadSignature, &event, &s, 7);
        assert_eq!(forged.body, event);
        assert_eq!(verdict(&forged, 7), Err(signature::Rejection::NoMatch));
        assert_eq!(
            verdict(&robustness_delivery(Oddity::Large, &event, &s, 7), 7),
            Ok(7)
        );
        let v: Value = serde_json::from_str(&uni).unwrap();
        assert!(
            v["data"]["object"]["description"]
                .as_str()
                .unwrap()
                .contains('𝄞')
        );
    }

    #[test]
    fn topup_events_carry_the_contract_fields() {
        let top_up = TopUp {
            session_id: "cs_1".into(),
            amount_cents: 500,
            org_id: "org_1".into(),
            account_id: "acc_1".into(),
            payment_intent_id: "pi_1".into(),
        };
        let p = Catalog::load(None)
            .unwrap()
            .prepare(
                "checkout.session.completed",
                &RenderOptions {
                    sets: topup_sets(&top_up),
                    ..Default::default()
                },
            )
            .unwrap();
        let v: Value = serde_json::from_str(&p.body("evt_t", 5)).unwrap();
        let o = &v["data"]["object"];
        assert_eq!(o["id"], "cs_1");
        assert_eq!(o["amount_total"], 500);
        assert_eq!(o["payment_status"], "paid");
        assert_eq!(o["currency"], "usd");
        assert_eq!(o["metadata"]["orgId"], "org_1");
        assert_eq!(o["metadata"]["accountId"], "acc_1");
        assert_eq!(o["metadata"]["paymentIntentId"], "pi_1");
        let again: Value = serde_json::from_str(&other_body(&p, "evt_t", 5)).unwrap();
        assert_eq!(again["id"], "evt_t");
        assert_eq!(again["data"], v["data"]);
        assert_ne!(again, v);
    }

    #[test]
    fn answers_are_judged_by_expectation_and_budget() {
        let st = |code, ms| Answer::Status { code, ms };
        assert!(judge_answer(Expect::Accepted, &st(200, 5.0), 10.0).is_ok());
        assert!(judge_answer(Expect::Accepted, &st(500, 5.0), 10.0).is_err());
        assert!(judge_answer(Expect::Rejected, &st(400, 5.0), 10.0).is_ok());
        assert!(judge_answer(Expect::Rejected, &st(500, 5.0), 10.0).is_ok());
        assert!(judge_answer(Expect::Rejected, &st(302, 5.0), 10.0).is_err());
        let e = judge_answer(Expect::Rejected, &st(200, 5.0), 10.0).unwrap_err();
        assert!(e.contains("accepted"), "{e}");
        assert!(judge_answer(Expect::NoServerError, &st(400, 5.0), 10.0).is_ok());
        assert!(judge_answer(Expect::NoServerError, &st(503, 5.0), 10.0).is_err());
        let e = judge_answer(Expect::NoServerError, &st(200, 50.0), 10.0).unwrap_err();
        assert!(e.contains("budget"), "{e}");
        // Outside the robustness suite, slowness alone is not a failure: only a hang is.
        assert!(judge_answer(Expect::Rejected, &st(400, 50.0), 10.0).is_ok());
        let e = judge_answer(Expect::Accepted, &Answer::Hang { after_ms: 30.0 }, 10.0).unwrap_err();
        assert!(e.contains("hang"));
        assert!(judge_answer(Expect::AcceptedInTime, &st(404, 1.0), 10.0).is_err());
    }

    #[test]
    fn credits_are_judged_exactly() {
        assert!(judge_credit(Expect::CreditedOnce, 100, 600, 500).is_ok());
        let e = judge_credit(Expect::CreditedOnce, 100, 1100, 500).unwrap_err();
        assert!(e.contains("2 top-ups"), "{e}");
        assert!(judge_credit(Expect::CreditedOnce, 100, 100, 500).is_err());
        assert!(judge_credit(Expect::NoCredit, 100, 100, 500).is_ok());
        assert!(judge_credit(Expect::NoCredit, 100, 600, 500).is_err());
    }
}
