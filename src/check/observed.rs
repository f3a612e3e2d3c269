//! Any receiver's state cases, seen through an observer (`observe`). For each event type under
//! test, in turn:
//!
//! 1. with `--account`, the platform's own event of that type first (no `account`), and its
//!    effect;
//! 2. a fresh event (a new object id): the state must change, then settle (no change for the
//!    quiet window). No change within the wait means the receiver ignores the type (or the
//!    observer does not see it): its cases are skipped, saying so;
//! 3. `sequential_duplicate`: the same event again, re-signed as Stripe's retries are: nothing
//!    may change for the quiet window;
//! 4. `same_id_other_body`: the same event id with another body: nothing may change;
//! 5. `concurrent_duplicates`: another fresh event, 20 copies at once: the state must change
//!    exactly as one delivery changed it (`observe::Change::same_as`).
//!
//! The connect rule (`connect.<type>`): a connected account's event must not change the
//! platform's observed state the way the platform's own event of the same type does. An
//! observer for a Connect platform prints the platform's state (its balance, its tenants); a
//! receiver that ignores `event.account` and credits the platform for its connected accounts'
//! sales fails, one that books them to the account (or ignores them) passes. When the platform's
//! own event changes nothing observable, there is nothing to compare and the case is skipped.
//!
//! The `--expect-ignored` types must be answered 2xx and change nothing. An observer that fails
//! is an input error for the whole run (exit 2).

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use super::cases::{self, Case, Expect, Kind, Replay};
use super::deliveries::{self, Delivery};
use super::judge::{self, Answer, Judged};
use super::observe::{self, Change, Observer, State};
use super::report::{CaseResult, Outcome};
use super::runner::{Runner, result};
use crate::error::{Error, Result};
use crate::retry::{self, Stopped};
use crate::webhook::fixtures::{Prepared, new_event_id};

/// How often the observer is asked while waiting.
const POLL_EVERY: Duration = Duration::from_millis(40);

pub(super) async fn run(
    runner: &Runner,
    observer: &Observer,
    cases: &[Case],
) -> Result<Vec<CaseResult>> {
    let mut look = Look {
        runner,
        observer,
        state: stable_baseline(runner, observer).await?,
    };
    let mut out = Vec::new();
    let mut types: Vec<&str> = Vec::new();
    for c in cases {
        if let Some(t) = c.kind.observed_type()
            && !types.contains(&t)
        {
            types.push(t);
        }
    }
    for t in types {
        let group: Vec<&Case> = cases
            .iter()
            .filter(|c| c.kind.observed_type() == Some(t))
            .collect();
        out.extend(look.scenario(t, &group).await?);
    }
    for case in cases.iter().filter(|c| matches!(c.kind, Kind::Type { .. })) {
        out.push(look.no_effect(case).await?);
    }
    Ok(out)
}

/// The observed state before anything is judged: it must stay the same for a quiet window
/// (earlier deliveries' effects done), within `--settle-timeout`.
async fn stable_baseline(runner: &Runner, observer: &Observer) -> Result<State> {
    let deadline = retry::deadline_in(runner.opts.settle);
    let mut state = observer.observe().await?;
    let mut changes = 0;
    loop {
        match watch(observer, &state, retry::MIN_QUIET.min(runner.opts.settle)).await? {
            None => return Ok(state),
            Some((next, _)) => {
                state = next;
                changes += 1;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::usage(format!(
                "{} keeps changing with no delivery ({changes} changes in {}, --settle-timeout): an observer must print only what the receiver's events change (counts, records), not clocks or request counters",
                observer.describe(),
                crate::duration::human(runner.opts.settle)
            )));
        }
    }
}

/// Waits up to `window` for the state to differ from `from`: the new state and when it came.
async fn watch(
    observer: &Observer,
    from: &State,
    window: Duration,
) -> Result<Option<(State, Duration)>> {
    let started = Instant::now();
    let watched = retry::poll(
        retry::deadline_in(window),
        |_| POLL_EVERY,
        || async {
            match observer.observe().await {
                Ok(s) if s != *from => ControlFlow::Break(Ok(s)),
                Ok(_) => ControlFlow::Continue(()),
                Err(e) => ControlFlow::Break(Err(e)),
            }
        },
    )
    .await;
    match watched {
        Ok(s) => Ok(Some((s, started.elapsed()))),
        Err(Stopped::Failed(e)) => Err(e),
        Err(Stopped::TimedOut(_)) => Ok(None),
    }
}

/// The observer, the runner and the last state seen.
struct Look<'a> {
    runner: &'a Runner,
    observer: &'a Observer,
    state: State,
}

/// What one delivery (or one burst of copies) did: the answers and the change it made.
struct Effect {
    answers: Vec<Answer>,
    change: Change,
}

impl Look<'_> {
    /// How long a fresh event's effect is waited for: the settle timeout until an effect has
    /// been seen in this run, then the quiet window (three times the slowest effect seen).
    fn effect_wait(&self) -> Duration {
        match self.runner.slowest() {
            None => self.runner.opts.settle,
            Some(_) => self.runner.quiet(),
        }
    }

    /// Delivers `deliveries` at once, waits up to `wait` for a change, then for the state to
    /// settle (no change for a quiet window, within `--settle-timeout`).
    async fn effect_of(&mut self, deliveries: &[Delivery], wait: Duration) -> Result<Effect> {
        let sent = Instant::now();
        let answers =
            futures_util::future::join_all(deliveries.iter().map(|d| self.runner.deliver(d))).await;
        let before = self.state.clone();
        if let Some((changed, _)) = watch(self.observer, &before, wait).await? {
            self.runner.saw_effect_after(sent.elapsed());
            self.state = self.settle(changed).await?;
        }
        Ok(Effect {
            change: observe::change(&before, &self.state),
            answers,
        })
    }

    /// After a change: the state once it stays the same for a quiet window, within
    /// `--settle-timeout`.
    async fn settle(&self, mut state: State) -> Result<State> {
        let deadline = retry::deadline_in(self.runner.opts.settle);
        while let Some((next, _)) = watch(self.observer, &state, self.runner.quiet()).await? {
            state = next;
            if tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        Ok(state)
    }

    /// Delivers and watches the quiet window: the change (none, if the receiver did nothing).
    async fn held(&mut self, deliveries: &[Delivery]) -> Result<Effect> {
        let quiet = self.runner.quiet();
        self.effect_of(deliveries, quiet).await
    }

    fn event(&self, prepared: &Prepared, id: &str) -> Delivery {
        self.runner
            .signed(prepared.body(id, crate::timestamp::unix_now()))
    }

    /// A fresh object of `event_type` (a new id), as the connected account's event when
    /// `connected` and `--account` say so.
    fn fresh(&self, event_type: &str, connected: bool) -> Result<Prepared> {
        let template = self.runner.catalog.template(event_type)?;
        self.runner.prepare(
            event_type,
            deliveries::fresh_object_sets(template),
            connected,
        )
    }

    async fn scenario(&mut self, event_type: &str, group: &[&Case]) -> Result<Vec<CaseResult>> {
        let timing = self.runner.timing();
        let mut out = Vec::new();
        let connect_case = group
            .iter()
            .find(|c| matches!(c.kind, Kind::Connect { .. }));
        let platform = match connect_case {
            Some(_) => {
                let own = self.fresh(event_type, false)?;
                let delivery = self.event(&own, &new_event_id());
                Some(self.effect_of(&[delivery], self.effect_wait()).await?)
            }
            None => None,
        };
        // The first, fresh event: its effect is what one delivery does.
        let first_event = self.fresh(event_type, true)?;
        let first_id = new_event_id();
        let now = crate::timestamp::unix_now();
        let first_body = first_event.body(&first_id, now);
        let first = self
            .effect_of(
                &[self.runner.signed(first_body.clone())],
                self.effect_wait(),
            )
            .await?;
        let first_answer = &first.answers[0];
        let first_judged = judge::judge_answer(Expect::Accepted, first_answer, timing);
        if let (Some(case), Some(platform)) = (connect_case, &platform) {
            out.push(connect_verdict(case, event_type, platform, &first, timing));
        }
        let observed: Vec<&Case> = group
            .iter()
            .copied()
            .filter(|c| matches!(c.kind, Kind::Observed { .. }))
            .collect();
        if let Err(why) = &first_judged.verdict {
            // The types case of the same type carries this failure when it runs; then its
            // duplicates are only not judgeable. Without it, they fail: nothing may pass.
            let types_case = format!("types.{event_type}");
            let carried = self.runner.opts.cases.iter().any(|c| c.name == types_case);
            for case in &observed {
                out.push(if carried {
                    CaseResult::new(
                        case,
                        Outcome::Skipped,
                        format!("cannot be judged: the first {event_type} failed ({types_case})"),
                    )
                    .answered(first_answer)
                } else {
                    result(
                        case,
                        Judged {
                            verdict: Err(format!(
                                "the first {event_type}: {why}; its duplicates cannot be judged"
                            )),
                            advice: None,
                        },
                        first_answer,
                    )
                });
            }
            return Ok(out);
        }
        if first.change.is_none() {
            let why = format!(
                "the first {event_type} (answered {}) changed nothing observable within {}: a type the receiver ignores, or one {} does not see",
                first_answer.short(),
                crate::duration::human(self.effect_wait()),
                self.observer.describe()
            );
            for case in &observed {
                out.push(
                    CaseResult::new(case, Outcome::Skipped, why.clone()).answered(first_answer),
                );
            }
            return Ok(out);
        }
        for case in observed {
            let Kind::Observed { replay, .. } = case.kind else {
                unreachable!("filtered")
            };
            let r = match replay {
                Replay::Sequential => {
                    let again = self.runner.signed(first_body.clone());
                    let dup = self.held(&[again]).await?;
                    unchanged(case, &dup, &first.change, timing)
                }
                Replay::SameIdOtherBody => {
                    let other = deliveries::other_body(&first_event, &first_id, now);
                    let dup = self.held(&[self.runner.signed(other)]).await?;
                    unchanged(case, &dup, &first.change, timing)
                }
                Replay::Concurrent => {
                    let another = self.fresh(event_type, true)?;
                    let one = self.event(&another, &new_event_id());
                    let copies = vec![one; cases::CONCURRENT_DELIVERIES];
                    let burst = self.effect_of(&copies, self.runner.opts.settle).await?;
                    once(case, event_type, &burst, &first.change, timing)
                }
                Replay::UnknownSession => unreachable!("top-up only"),
            };
            out.push(r.advised(first_judged.advice.clone()));
        }
        Ok(out)
    }

    /// An `--expect-ignored` type: answered 2xx in time, and nothing changed.
    async fn no_effect(&mut self, case: &Case) -> Result<CaseResult> {
        let Kind::Type { event_type, .. } = &case.kind else {
            unreachable!("only types")
        };
        let prepared = self.fresh(event_type, true)?;
        let delivery = self.event(&prepared, &new_event_id());
        let effect = self.held(&[delivery]).await?;
        let answer = &effect.answers[0];
        let judged = judge::judge_answer(Expect::Accepted, answer, self.runner.timing());
        if judged.verdict.is_err() {
            return Ok(result(case, judged, answer));
        }
        let verdict = if effect.change.is_none() {
            Ok(format!("{event_type} accepted; nothing changed"))
        } else {
            Err(format!(
                "{event_type} accepted, and the observed state changed ({}), though --expect-ignored names it",
                effect.change.describe()
            ))
        };
        Ok(CaseResult::judged(case, verdict)
            .answered(answer)
            .advised(judged.advice))
    }
}

/// A duplicate's verdict: answered in time, and the state did not move again.
fn unchanged(case: &Case, dup: &Effect, first: &Change, timing: judge::Timing) -> CaseResult {
    let (timely, advice) = judge::judge_duplicates(&dup.answers, timing);
    let verdict = timely.and_then(|()| {
        if dup.change.is_none() {
            Ok(format!(
                "the first changed the state ({}), the duplicate nothing",
                first.describe()
            ))
        } else {
            Err(format!(
                "the duplicate changed the state again ({}; the first: {}): processed twice",
                dup.change.describe(),
                first.describe()
            ))
        }
    });
    CaseResult::judged(case, verdict)
        .answered(&dup.answers[0])
        .advised(advice)
}

/// The concurrent copies' verdict: one was taken in time, and together they changed the state
/// as one delivery does.
fn once(
    case: &Case,
    event_type: &str,
    burst: &Effect,
    first: &Change,
    timing: judge::Timing,
) -> CaseResult {
    let summary = judge::summarize_answers(&burst.answers);
    let taken = burst.answers.iter().position(Answer::accepted);
    let chosen = &burst.answers[taken.unwrap_or(0)];
    let judged = judge::judge_answer(Expect::Accepted, chosen, timing);
    if let Err(why) = judged.verdict {
        return result(
            case,
            Judged {
                verdict: Err(format!("{why}; deliveries: {summary}")),
                advice: None,
            },
            chosen,
        );
    }
    let others: Vec<Answer> = burst
        .answers
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != taken)
        .map(|(_, a)| a.clone())
        .collect();
    let (timely, advice) = judge::judge_duplicates(&others, timing);
    if burst.change.is_none() && timely.is_ok() {
        return CaseResult::new(
            case,
            Outcome::Skipped,
            format!(
                "inconclusive: {} copies of another fresh {event_type} changed nothing, where the first did ({}): the receiver may key on something both events share; deliveries: {summary}",
                cases::CONCURRENT_DELIVERIES,
                first.describe()
            ),
        )
        .answered(chosen);
    }
    let verdict = timely.and_then(|()| {
        if burst.change.same_as(first) {
            Ok(format!("one effect ({}); deliveries: {summary}", burst.change.describe()))
        } else {
            Err(format!(
                "{} copies changed the state ({}), one delivery did less ({}): processed more than once; deliveries: {summary}",
                cases::CONCURRENT_DELIVERIES,
                burst.change.describe(),
                first.describe()
            ))
        }
    });
    CaseResult::judged(case, verdict)
        .answered(chosen)
        .advised(judged.advice)
        .advised(advice)
}

/// The connect rule: the connected account's event did not change the platform's state as the
/// platform's own did.
fn connect_verdict(
    case: &Case,
    event_type: &str,
    platform: &Effect,
    connected: &Effect,
    timing: judge::Timing,
) -> CaseResult {
    let own = &platform.answers[0];
    let judged = judge::judge_answer(Expect::Accepted, own, timing);
    if let Err(why) = judged.verdict {
        return result(
            case,
            Judged {
                verdict: Err(format!("the platform's own {event_type}: {why}")),
                advice: None,
            },
            own,
        );
    }
    let theirs = &connected.answers[0];
    let judged_theirs = judge::judge_answer(Expect::Accepted, theirs, timing);
    if let Err(why) = judged_theirs.verdict {
        return result(
            case,
            Judged {
                verdict: Err(format!("the connected account's {event_type}: {why}")),
                advice: None,
            },
            theirs,
        );
    }
    if platform.change.is_none() {
        return CaseResult::new(
            case,
            Outcome::Skipped,
            format!(
                "the platform's own {event_type} changed nothing observable: nothing to compare the connected account's with"
            ),
        )
        .answered(theirs);
    }
    let verdict = if connected.change.same_as(&platform.change) {
        Err(format!(
            "the connected account's {event_type} changed the platform's state just as the platform's own does ({}): the receiver ignores `event.account` and books the account's event as the platform's",
            connected.change.describe()
        ))
    } else {
        Ok(format!(
            "the platform's own {event_type}: {}; the connected account's: {}",
            platform.change.describe(),
            connected.change.describe()
        ))
    };
    CaseResult::judged(case, verdict)
        .answered(theirs)
        .advised(judged.advice)
        .advised(judged_theirs.advice)
}
