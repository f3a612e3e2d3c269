//! The feed's unit tests: what the targets take from memory or the spool.

use super::intake::placeholder;
use super::*;

fn entry(seq: u64, body: usize) -> Arc<Entry> {
    Arc::new(Entry {
        event: Arc::new(Event {
            seq,
            body: vec![b'x'; body].into(),
            ..placeholder()
        }),
        answer: None,
        verdicts: None,
    })
}

fn seqs(out: &[Arc<Entry>]) -> Vec<u64> {
    out.iter().map(|e| e.event.seq).collect()
}

#[test]
fn targets_take_from_the_events_found_at_start_then_the_new_ones() {
    let found: Vec<Arc<Event>> = [2, 5].iter().map(|&s| entry(s, 1).event.clone()).collect();
    let feed = Feed::new(&found, 10, 1000, 100);
    assert_eq!(feed.head(), 9);
    feed.publish((10..13).map(|s| entry(s, 1)), 0);
    assert_eq!(feed.head(), 12);
    let mut out = Vec::new();
    assert_eq!(feed.take(0, 3, &mut out), Taken::Some);
    assert_eq!(seqs(&out), [2, 5, 10]);
    out.clear();
    assert_eq!(feed.take(11, 10, &mut out), Taken::Some);
    assert_eq!(seqs(&out), [11, 12]);
    out.clear();
    assert_eq!(feed.take(13, 10, &mut out), Taken::Nothing);
    assert_eq!(feed.count_from(3), 4);
    // Once every target is past them, the events leave memory.
    feed.trim(11);
    assert_eq!(feed.take(0, 10, &mut out), Taken::OnDisk { until: 11 });
    assert_eq!(feed.count_from(0), 3, "the spool still holds them");
}

#[test]
fn beyond_the_budget_the_oldest_are_read_from_the_spool() {
    let feed = Feed::new(&[], 1, 250, 100);
    feed.publish((1..=5).map(|s| entry(s, 100)), 0);
    let mut out = Vec::new();
    assert_eq!(feed.take(1, 10, &mut out), Taken::OnDisk { until: 4 });
    assert_eq!(feed.take(4, 10, &mut out), Taken::Some);
    assert_eq!(seqs(&out), [4, 5]);
    // The newest event stays, however large.
    feed.publish([entry(6, 1000)], 0);
    out.clear();
    assert_eq!(feed.take(4, 10, &mut out), Taken::OnDisk { until: 6 });
    assert_eq!(feed.take(6, 10, &mut out), Taken::Some);
    let few = Feed::new(&[], 1, usize::MAX, 2);
    few.publish((1..=3).map(|s| entry(s, 1)), 0);
    assert_eq!(few.take(1, 1, &mut out), Taken::OnDisk { until: 2 });
}

#[tokio::test]
async fn the_sender_is_woken_once_every_expected_outcome_came() {
    let answer = Answer::expecting(2);
    let outcome = |name: &str| Outcome {
        ok: true,
        filtered: false,
        ..Outcome::filtered(name)
    };
    answer.report(outcome("a"));
    let woken = answer.reported().notified();
    tokio::pin!(woken);
    assert!(
        futures_util::poll!(woken.as_mut()).is_pending(),
        "one of two is no reason to wake"
    );
    answer.report(outcome("b"));
    assert!(futures_util::poll!(woken.as_mut()).is_ready());
    assert!(answer.has("a") && answer.has("b") && !answer.has("c"));
    assert_eq!(answer.take("b").map(|o| o.name), Some("b".to_owned()));
    assert!(!answer.has("b"), "taken");
}

#[test]
fn verdicts_say_who_was_judged() {
    let mut v = Verdicts::default();
    v.set(0, true);
    v.set(70, false);
    assert_eq!(v.wants(0), Some(true));
    assert_eq!(v.wants(70), Some(false));
    assert_eq!(v.wants(1), None);
    assert_eq!(v.wants(500), None);
}
