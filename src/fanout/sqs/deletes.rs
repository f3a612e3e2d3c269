//! Deleting delivered messages: DeleteMessageBatch calls of up to 10 receipt handles, group
//! committed (the handles arriving while a delete is under way fill the next batch), and what a
//! failed or partly failed batch means (those messages are received again, never taken for
//! deleted).

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::super::Log;
use crate::aws::sqs::{FailedDelete, Sqs};

/// Deletes delivered messages in batches of up to 10 (DeleteMessageBatch), as `DeleteBatches`
/// decides; once every poller has finished, the rest, then it ends.
pub(super) async fn delete_in_batches(
    sqs: Sqs,
    url: String,
    mut pending: mpsc::UnboundedReceiver<String>,
    mut finished: watch::Receiver<bool>,
    log: Log,
) {
    let mut deleting = JoinSet::new();
    let mut batches = DeleteBatches::default();
    loop {
        if let Some(handles) = batches.next(&mut pending, deleting.len()) {
            let (sqs, url, log) = (sqs.clone(), url.clone(), log.clone());
            deleting.spawn(delete_batch(sqs, url, handles, log));
            continue;
        }
        if batches.done() {
            break;
        }
        // (`recv_many` adds up to its limit to what the batch holds: never past 10.)
        let room = batches.room();
        tokio::select! {
            Some(_) = deleting.join_next(), if !deleting.is_empty() => {}
            n = pending.recv_many(&mut batches.batch, room), if room > 0 && !batches.closed => {
                if n == 0 {
                    batches.close();
                }
            }
            _ = finished.wait_for(|f| *f), if !batches.closed => {
                // Every poller has finished: what is queued now is all there will be.
                batches.close();
            }
        }
    }
    while deleting.join_next().await.is_some() {}
}

/// What `delete_in_batches` decides, apart from its calls: which handles make up the next
/// DeleteMessageBatch and when it goes out. A batch goes out at once when no delete is under
/// way, else when it is full (up to `DELETES_IN_FLIGHT` under way; one at a time would cap a
/// relay at 10 deletes per round trip), so that the handles arriving while a delete is under
/// way fill the next batch instead of each going out alone, as group commit does; once closed
/// (every poller finished), what is left goes out without waiting to fill.
#[derive(Default)]
struct DeleteBatches {
    batch: Vec<String>,
    closed: bool,
}

impl DeleteBatches {
    /// DeleteMessageBatch takes up to 10 entries (the SQS API reference).
    const MAX: usize = 10;
    const DELETES_IN_FLIGHT: usize = 4;

    /// The next batch to send, given the deletes `under_way`: the waiting handles added first
    /// (as many as fit).
    fn next(
        &mut self,
        pending: &mut mpsc::UnboundedReceiver<String>,
        under_way: usize,
    ) -> Option<Vec<String>> {
        while self.room() > 0
            && let Ok(h) = pending.try_recv()
        {
            self.batch.push(h);
        }
        let full = self.batch.len() == Self::MAX;
        let ready = full || (!self.batch.is_empty() && (under_way == 0 || self.closed));
        (ready && under_way < Self::DELETES_IN_FLIGHT)
            .then(|| std::mem::replace(&mut self.batch, Vec::with_capacity(Self::MAX)))
    }

    fn room(&self) -> usize {
        Self::MAX - self.batch.len()
    }

    fn close(&mut self) {
        self.closed = true;
    }

    /// Closed and nothing left to send.
    fn done(&self) -> bool {
        self.closed && self.batch.is_empty()
    }
}

/// One DeleteMessageBatch; what failed is logged (those messages will be received again).
async fn delete_batch(sqs: Sqs, url: String, handles: Vec<String>, log: Log) {
    let result = sqs.delete_batch(&url, &handles).await;
    if let Some(line) = delete_report(&url, handles.len(), &result) {
        log.line(line);
    }
}

/// What a DeleteMessageBatch's outcome says in the log: nothing when SQS deleted every entry;
/// else how many of the batch failed and why, with each distinct `Code` once (a 200 answer may
/// still list failed entries: they are not deleted, and come back when their visibility
/// timeout ends, to be delivered again).
fn delete_report(
    url: &str,
    sent: usize,
    result: &Result<Vec<FailedDelete>, String>,
) -> Option<String> {
    match result {
        Ok(failed) if failed.is_empty() => None,
        Ok(failed) => {
            let mut codes: Vec<&str> = Vec::new();
            for f in failed {
                if !codes.contains(&f.code.as_str()) {
                    codes.push(&f.code);
                }
            }
            let first = &failed[0];
            let example = if first.message.is_empty() {
                String::new()
            } else {
                format!(": {}", first.message)
            };
            Some(format!(
                "sqs {url}: {} of {sent} deletes failed ({}{example}); those messages will be \
                 received again",
                failed.len(),
                codes.join(", ")
            ))
        }
        Err(e) => Some(format!(
            "sqs {url}: {e} (those messages will be received again)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handles h{from}..h{to} waiting to be deleted.
    fn waiting(tx: &mpsc::UnboundedSender<String>, range: std::ops::Range<usize>) {
        range.for_each(|i| tx.send(format!("h{i}")).unwrap());
    }

    fn names(handles: &[String]) -> Vec<&str> {
        handles.iter().map(String::as_str).collect()
    }

    #[test]
    fn a_delete_batch_never_holds_more_than_10_handles() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        waiting(&tx, 0..25);
        let mut batches = DeleteBatches::default();
        let mut sent = Vec::new();
        while let Some(batch) = batches.next(&mut rx, 0) {
            assert!(batch.len() <= 10, "{} handles in one batch", batch.len());
            sent.push(batch);
        }
        assert_eq!(sent.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
        assert_eq!(
            sent.concat(),
            (0..25).map(|i| format!("h{i}")).collect::<Vec<_>>()
        );
        assert_eq!(batches.room(), 10);
    }

    #[test]
    fn handles_arriving_while_a_delete_is_under_way_fill_the_next_batch() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut batches = DeleteBatches::default();
        waiting(&tx, 0..1);
        assert_eq!(
            names(&batches.next(&mut rx, 0).unwrap()),
            ["h0"],
            "nothing under way: the one handle goes at once"
        );
        waiting(&tx, 1..5);
        assert_eq!(batches.next(&mut rx, 1), None, "one under way: h1..h4 wait");
        assert_eq!(batches.room(), 6);
        waiting(&tx, 5..12);
        let full = batches.next(&mut rx, 1).unwrap();
        assert_eq!(full, (1..11).map(|i| format!("h{i}")).collect::<Vec<_>>());
        assert_eq!(
            batches.next(&mut rx, 4),
            None,
            "h11 waits: 4 under way is the most, and the batch is not full"
        );
        waiting(&tx, 12..21);
        assert_eq!(
            batches.next(&mut rx, 4),
            None,
            "a full batch waits while 4 deletes are under way"
        );
        assert_eq!(batches.next(&mut rx, 3).unwrap().len(), 10);
        waiting(&tx, 21..22);
        assert_eq!(names(&batches.next(&mut rx, 0).unwrap()), ["h21"]);
        assert!(!batches.done(), "not closed: more may come");
    }

    #[test]
    fn a_stop_flushes_what_is_pending() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut batches = DeleteBatches::default();
        waiting(&tx, 0..3);
        assert_eq!(batches.next(&mut rx, 1), None);
        waiting(&tx, 3..5);
        batches.close();
        assert_eq!(
            names(&batches.next(&mut rx, 1).unwrap()),
            ["h0", "h1", "h2", "h3", "h4"],
            "every poller finished: what is left goes without waiting to fill"
        );
        assert!(batches.done());
        assert_eq!(batches.next(&mut rx, 0), None);
    }

    #[test]
    fn failed_deletes_are_logged_and_not_taken_for_success() {
        let url = "http://127.0.0.1:5000/123456789012/q";
        assert_eq!(delete_report(url, 10, &Ok(Vec::new())), None);
        // Two `Failed` entries of a 200 answer (BatchResultErrorEntry, the SQS API reference).
        let failed = |handle: &str| FailedDelete {
            handle: handle.into(),
            code: "ReceiptHandleIsInvalid".into(),
            message: "The input receipt handle is invalid.".into(),
        };
        let line = delete_report(url, 10, &Ok(vec![failed("h1"), failed("h7")])).unwrap();
        assert_eq!(
            line,
            format!(
                "sqs {url}: 2 of 10 deletes failed (ReceiptHandleIsInvalid: The input receipt \
                 handle is invalid.); those messages will be received again"
            )
        );
        let line = delete_report(
            url,
            3,
            &Err("SQS DeleteMessageBatch answer unreadable".into()),
        );
        assert!(line.unwrap().contains("unreadable"));
    }
}
