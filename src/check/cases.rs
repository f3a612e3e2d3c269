//! The catalogue of check cases (pure): which cases exist, what each expects, and why.
//! `deliveries` builds each case's request, `judge` reads the answers, the runner does the I/O.
//!
//! Cases are designed to be independent, so that each broken behaviour of a receiver is caught by
//! the case meant for it and by no other: the security and robustness cases send a benign event
//! type (`customer.created`) that changes nothing, the idempotency cases each use fresh objects
//! and event ids. Every answer is timed against `--timeout` (see `judge`).
//!
//! Idempotency needs to see the receiver's state: the top-up contract's balance (`--base-url`),
//! or any receiver's through an observer (`--observe CMD`, `--observe-url URL`), which makes the
//! idempotency cases per event type. With `--account` and an observer, the `connect` suite
//! checks that a connected account's event does not act on the platform's state.

use std::fmt;

use serde::Serialize;

/// Event type the security and robustness cases send: accepted and without effect everywhere.
pub const BENIGN_TYPE: &str = "customer.created";
/// Type of the robustness case about event types a receiver does not know: no Stripe release
/// has it (Stripe adds types every release, so a receiver must answer 2xx to types it does not
/// handle), and neither has its object.
pub const UNKNOWN_TYPE: &str = "stripe_ops.test.unknown_event";
pub const UNKNOWN_OBJECT: &str = "stripe_ops.test.unknown_object";
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
    Connect,
    Types,
}

impl Suite {
    pub const ALL: [Suite; 5] = [
        Suite::Security,
        Suite::Robustness,
        Suite::Idempotency,
        Suite::Connect,
        Suite::Types,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Suite::Security => "security",
            Suite::Robustness => "robustness",
            Suite::Idempotency => "idempotency",
            Suite::Connect => "connect",
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

/// The idempotency scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    Sequential,
    Concurrent,
    SameIdOtherBody,
    /// Top-up contract only: a completed session the app never created.
    UnknownSession,
}

impl Replay {
    pub fn name(self) -> &'static str {
        match self {
            Replay::Sequential => "sequential_duplicate",
            Replay::Concurrent => "concurrent_duplicates",
            Replay::SameIdOtherBody => "same_id_other_body",
            Replay::UnknownSession => "unknown_session",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Security(Tamper),
    Robustness(Oddity),
    /// The top-up contract's idempotency, judged on the balance.
    Idempotency(Replay),
    /// An observer's idempotency case for one event type.
    Observed {
        event_type: String,
        replay: Replay,
    },
    /// A connected account's event against the platform's own, on the observed state.
    Connect {
        event_type: String,
    },
    /// Deliver this fixture type; `ignored` means it may be 2xx without effect.
    Type {
        event_type: String,
        ignored: bool,
    },
}

impl Kind {
    /// The event type an observed or connect case is about.
    pub fn observed_type(&self) -> Option<&str> {
        match self {
            Kind::Observed { event_type, .. } | Kind::Connect { event_type } => Some(event_type),
            _ => None,
        }
    }
}

/// What the catalogue depends on besides the types: how the receiver's state is seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    /// An observer (`--observe`, `--observe-url`): idempotency per event type.
    pub observer: bool,
    /// `--account`: every case as a Connect delivery; with an observer, the connect suite.
    pub account: bool,
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
    /// Any answer but 5xx.
    NoServerError,
    /// Answered 2xx and the observed state (the balance) did not move.
    AcceptedWithoutEffect,
    /// The balance rose by exactly one top-up amount.
    CreditedOnce,
    /// The balance did not move (any answer).
    NoCredit,
    /// Duplicates answered 2xx and the observed state did not move again.
    Unchanged,
    /// Concurrent copies answered 2xx and changed the observed state as one delivery does.
    OneEffect,
    /// A connected account's event did not change the platform's state as the platform's own.
    NotAsPlatform,
}

impl Expect {
    pub fn describe(self) -> &'static str {
        match self {
            Expect::Accepted => "2xx",
            Expect::Rejected => "refused (4xx)",
            Expect::NoServerError => "no 5xx",
            Expect::AcceptedWithoutEffect => "2xx, no effect",
            Expect::CreditedOnce => "credited once",
            Expect::NoCredit => "no credit",
            Expect::Unchanged => "no second effect",
            Expect::OneEffect => "one effect",
            Expect::NotAsPlatform => "not the platform's",
        }
    }

    /// Every delivery of the case must be answered 2xx: Stripe retries anything else, for
    /// days, duplicates included.
    pub fn wants_2xx(self) -> bool {
        !matches!(
            self,
            Expect::Rejected | Expect::NoServerError | Expect::NoCredit
        )
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
pub fn catalogue(types: &[String], ignored: &[String], plan: Plan) -> Vec<Case> {
    use Expect::*;
    use Suite::*;
    let sec = |spec, t| case(Security, spec, Kind::Security(t));
    let rob = |spec, o| case(Robustness, spec, Kind::Robustness(o));
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
                Accepted,
                "a signed event of a type (and object) no Stripe release has",
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
    ];
    if plan.observer {
        cases.extend(observed_cases(types, ignored, plan));
    } else {
        cases.extend(topup_cases());
    }
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

/// The top-up contract's idempotency cases, judged on the buyer's balance.
fn topup_cases() -> Vec<Case> {
    use Expect::*;
    let idem = |spec, r| case(Suite::Idempotency, spec, Kind::Idempotency(r));
    vec![
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
    ]
}

/// With an observer: the idempotency cases of every type that may have an effect (not the
/// `--expect-ignored` ones), and with `--account` the connect case of each.
fn observed_cases(types: &[String], ignored: &[String], plan: Plan) -> Vec<Case> {
    let mut cases = Vec::new();
    for t in types.iter().filter(|t| !ignored.contains(t)) {
        for (replay, expect, what, why) in [
            (
                Replay::Sequential,
                Expect::Unchanged,
                format!("a fresh {t}, then the same event again"),
                "Stripe delivers at least once and retries: handle each event id once (Stripe's docs)",
            ),
            (
                Replay::Concurrent,
                Expect::OneEffect,
                format!("another fresh {t}, 20 copies at once"),
                "retries overlap; a check-then-insert without a lock acts twice",
            ),
            (
                Replay::SameIdOtherBody,
                Expect::Unchanged,
                format!("the first {t}'s id again with another body"),
                "duplicates are recognised by event id, not by identical bytes",
            ),
        ] {
            cases.push(Case {
                name: format!("idempotency.{}.{t}", replay.name()),
                suite: Suite::Idempotency,
                expect,
                severity: Severity::Required,
                what,
                why,
                kind: Kind::Observed {
                    event_type: t.clone(),
                    replay,
                },
            });
        }
        if plan.account {
            cases.push(Case {
                name: format!("connect.{t}"),
                suite: Suite::Connect,
                expect: Expect::NotAsPlatform,
                severity: Severity::Required,
                what: format!("{t} of the connected account, after the platform's own"),
                why: "Stripe sends a Connect endpoint its connected accounts' events with `account` set; acting on them as on the platform's own (crediting the platform) is the classic Connect bug",
                kind: Kind::Connect {
                    event_type: t.clone(),
                },
            });
        }
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(cases: &[Case]) -> Vec<&str> {
        cases.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn catalogue_has_the_issue_cases_with_unique_names() {
        let types = vec!["a.b".to_owned(), "c.d".to_owned()];
        let all = catalogue(&types, &["c.d".to_owned()], Plan::default());
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
    fn select_by_suite_and_name_and_hint_on_typos() {
        let all = catalogue(&[], &[], Plan::default());
        let sec = select(all.clone(), &[Suite::Security], &[]).unwrap();
        assert!(sec.iter().all(|c| c.suite == Suite::Security));
        let one = select(all.clone(), &[], &["security.no_header".into()]).unwrap();
        assert_eq!(names(&one), ["security.no_header"]);
        let e = select(all, &[], &["security.no_headr".into()]).unwrap_err();
        assert!(e.contains("security.no_header"), "{e}");
    }

    #[test]
    fn an_observer_makes_idempotency_cases_per_type_and_connect_cases_with_an_account() {
        let types = vec!["a.b".to_owned(), "c.d".to_owned()];
        let ignored = ["c.d".to_owned()];
        let plain = Plan {
            observer: true,
            account: false,
        };
        let all = catalogue(&types, &ignored, plain);
        let idem: Vec<&str> = all
            .iter()
            .filter(|c| c.suite == Suite::Idempotency)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            idem,
            [
                "idempotency.sequential_duplicate.a.b",
                "idempotency.concurrent_duplicates.a.b",
                "idempotency.same_id_other_body.a.b",
            ]
        );
        assert!(all.iter().all(|c| c.suite != Suite::Connect));
        let connect = catalogue(
            &types,
            &ignored,
            Plan {
                account: true,
                ..plain
            },
        );
        let c = connect.iter().find(|c| c.suite == Suite::Connect).unwrap();
        assert_eq!(c.name, "connect.a.b");
        assert_eq!(c.kind.observed_type(), Some("a.b"));
        assert_eq!(
            connect.iter().filter(|c| c.suite == Suite::Connect).count(),
            1
        );
        assert!(all.iter().all(|c| c.expect != Expect::NoCredit));
    }
}
