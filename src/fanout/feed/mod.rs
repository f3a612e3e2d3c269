//! What the targets read (`deliver`): every spooled event once in memory, shared by all targets
//! whatever their number, from the oldest one some target has not taken yet, within a memory
//! budget. A target that fell further behind than the budget reads the spool back instead
//! (`Spool::read_from`), at its own pace: one slow or silent target costs neither memory nor
//! the others' speed. Events found in the spool at start stay in memory until every target took
//! them.
//!
//! Events come in through the intake (`intake`), which appends them to the spool and hands them
//! to the targets at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::attempt::Outcome;
use super::spool::Event;

mod intake;
pub use intake::{Intake, SYNC_PACE, Spooled, Submission, SyncPace};

/// Bytes of event bodies kept in memory for targets that have not taken them yet.
pub const MEMORY_BUDGET: usize = 32 << 20;
/// Events kept in memory at most, whatever their size.
pub const MEMORY_EVENTS: usize = 65_536;

/// A spooled event, as the targets take it.
pub struct Entry {
    pub event: Arc<Event>,
    /// The request that brought it, waiting for the targets' first attempts.
    pub answer: Option<Arc<Answer>>,
    /// Which targets' routes let it through, judged when it arrived (none for events found in
    /// the spool at start: each target judges those itself).
    pub verdicts: Option<Arc<Verdicts>>,
}

/// Per target (by its slot, `deliver::Target::slot`): whether its route lets an event through.
#[derive(Debug, Default)]
pub struct Verdicts {
    judged: Vec<u64>,
    wants: Vec<u64>,
}

impl Verdicts {
    pub fn set(&mut self, slot: usize, wants: bool) {
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        if self.judged.len() <= word {
            self.judged.resize(word + 1, 0);
            self.wants.resize(word + 1, 0);
        }
        self.judged[word] |= bit;
        if wants {
            self.wants[word] |= bit;
        }
    }

    /// `None` for a target that was not judged (it came with a reload).
    pub fn wants(&self, slot: usize) -> Option<bool> {
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        let judged = self.judged.get(word).is_some_and(|w| w & bit != 0);
        judged.then(|| self.wants[word] & bit != 0)
    }
}

/// Where the targets' first attempts of an event are reported while its sender waits.
#[derive(Default)]
pub struct Answer {
    outcomes: Mutex<Vec<Outcome>>,
    /// The event's number, set when it is appended (before any target can take it).
    seq: AtomicU64,
    /// The outcomes the sender waits for: it is woken once they all came, not by each one
    /// (0: by each one).
    expected: usize,
    reported: Notify,
}

impl Answer {
    /// An answer whose waiter is woken when `expected` outcomes were reported.
    pub fn expecting(expected: usize) -> Answer {
        Answer {
            expected,
            ..Answer::default()
        }
    }

    pub fn report(&self, outcome: Outcome) {
        let mut outcomes = self.lock();
        outcomes.push(outcome);
        let complete = outcomes.len() >= self.expected;
        drop(outcomes);
        if complete {
            self.reported.notify_one();
        }
    }

    pub fn reported(&self) -> &Notify {
        &self.reported
    }

    /// Whether `target` reported its outcome.
    pub fn has(&self, target: &str) -> bool {
        self.lock().iter().any(|o| o.name == target)
    }

    /// Whether `target` reported a delivered first attempt (a 2xx answer).
    pub fn delivered(&self, target: &str) -> bool {
        self.lock()
            .iter()
            .any(|o| o.name == target && o.ok && o.status.is_some())
    }

    /// The event's number, once it was appended to the spool (0 before).
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Takes the outcome reported by `target`, if any.
    pub fn take(&self, target: &str) -> Option<Outcome> {
        let mut outcomes = self.lock();
        let at = outcomes.iter().position(|o| o.name == target)?;
        Some(outcomes.swap_remove(at))
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Outcome>> {
        self.outcomes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What `Feed::take` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// Entries were added (in sequence order, from the one asked for or the next one).
    Some,
    /// Nothing from that number on yet.
    Nothing,
    /// The events from that number up to (excluding) `until` are no longer in memory: read
    /// them from the spool.
    OnDisk { until: u64 },
}

struct State {
    /// Events found in the spool at start, in sequence order (numbers may have gaps).
    recovered: VecDeque<Arc<Entry>>,
    /// Events appended since, in sequence order without gaps, the first being `live_base`.
    live: VecDeque<Arc<Entry>>,
    live_base: u64,
    live_bytes: usize,
}

pub struct Feed {
    state: Mutex<State>,
    /// The first number of this run: events below it were found at start.
    first_live: u64,
    /// The highest number handed to the targets.
    head: AtomicU64,
    budget: usize,
    max_events: usize,
}

impl Feed {
    /// A feed holding the events found at start (in sequence order); the events of this run
    /// start at `first_live`.
    pub fn new(
        recovered: &[Arc<Event>],
        first_live: u64,
        budget: usize,
        max_events: usize,
    ) -> Feed {
        let recovered = recovered
            .iter()
            .map(|event| {
                Arc::new(Entry {
                    event: event.clone(),
                    answer: None,
                    verdicts: None,
                })
            })
            .collect();
        Feed {
            state: Mutex::new(State {
                recovered,
                live: VecDeque::new(),
                live_base: first_live,
                live_bytes: 0,
            }),
            first_live,
            head: AtomicU64::new(first_live - 1),
            budget,
            max_events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first number of this run.
    pub fn first_live(&self) -> u64 {
        self.first_live
    }

    /// The highest number handed to the targets (found at start or appended since).
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Adds appended entries (numbered on from the last one), drops what every target took
    /// (all below `needed`), and beyond the budget the oldest (targets behind read those from
    /// the spool).
    pub fn publish(&self, entries: impl IntoIterator<Item = Arc<Entry>>, needed: u64) {
        let mut state = self.lock();
        let mut head = None;
        for entry in entries {
            debug_assert_eq!(entry.event.seq, state.live_base + state.live.len() as u64);
            state.live_bytes += entry.event.body.len();
            head = Some(entry.event.seq);
            state.live.push_back(entry);
        }
        drop_taken(&mut state, needed);
        while state.live.len() > 1
            && (state.live_bytes > self.budget || state.live.len() > self.max_events)
        {
            pop_live(&mut state);
        }
        if let Some(head) = head {
            self.head.store(head, Ordering::Release);
        }
    }

    /// Drops what every target took (all below `needed`).
    pub fn trim(&self, needed: u64) {
        drop_taken(&mut self.lock(), needed);
    }

    /// Adds to `out` up to `max` entries from number `from` on (or the first one after it).
    pub fn take(&self, from: u64, max: usize, out: &mut Vec<Arc<Entry>>) -> Taken {
        let state = self.lock();
        let before = out.len();
        if from < self.first_live {
            let at = state.recovered.partition_point(|e| e.event.seq < from);
            out.extend(state.recovered.range(at..).take(max).cloned());
        }
        let taken = out.len() - before;
        let from_live = from.max(self.first_live);
        if taken == max || (taken > 0 && from_live < state.live_base) {
            return Taken::Some;
        }
        if from_live < state.live_base {
            return Taken::OnDisk {
                until: state.live_base,
            };
        }
        if let Ok(at) = usize::try_from(from_live - state.live_base) {
            out.extend(
                state
                    .live
                    .range(at.min(state.live.len())..)
                    .take(max - taken)
                    .cloned(),
            );
        }
        if out.len() > before {
            Taken::Some
        } else {
            Taken::Nothing
        }
    }

    /// Bytes of bodies held in memory for the events of this run.
    #[cfg(test)]
    pub fn bytes_in_memory(&self) -> usize {
        self.lock().live_bytes
    }

    /// How many entries are at number `from` or above (taken or not).
    pub fn count_from(&self, from: u64) -> u64 {
        let state = self.lock();
        let recovered =
            state.recovered.len() - state.recovered.partition_point(|e| e.event.seq < from);
        let live = self
            .head()
            .saturating_add(1)
            .saturating_sub(from.max(self.first_live));
        recovered as u64 + live
    }
}

fn drop_taken(state: &mut State, needed: u64) {
    while state
        .recovered
        .front()
        .is_some_and(|e| e.event.seq < needed)
    {
        state.recovered.pop_front();
    }
    while state.live_base < needed && !state.live.is_empty() {
        pop_live(state);
    }
}

fn pop_live(state: &mut State) {
    if let Some(e) = state.live.pop_front() {
        state.live_bytes -= e.event.body.len();
        state.live_base += 1;
    }
}

#[cfg(test)]
mod tests;
