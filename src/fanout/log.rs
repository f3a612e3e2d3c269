//! The relay's log: one line per event and per target outcome on stderr, with a UTC timestamp
//! (silent with `--quiet`). Control characters are escaped, so that text from the network (an
//! event id) cannot forge a line or move the terminal's cursor.
//!
//! Lines are written by one thread, in order, all those waiting at once in one write through
//! the printer (and its scrubber): at thousands of events a second the relay logs several
//! lines per event, and a write to stderr per line cost more than the rest of the line. The
//! first line into an empty queue wakes the thread, which then gathers for `COALESCE` before
//! it writes: waking it for every line (a futex call and a context switch each) was a tenth of
//! the relay's CPU at c=16 (perf, `cargo bench --bench fanout`). So a line is written at most
//! `COALESCE` after it was logged; the last ones are written before the relay exits (when the
//! last handle goes), not after a crash.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::printer::Printer;

/// How long the writer gathers lines after the first one woke it.
const COALESCE: Duration = Duration::from_millis(10);

/// A handle on the relay's log (cheap to clone).
#[derive(Clone, Debug)]
pub struct Log(Option<Arc<Sink>>);

#[derive(Debug)]
struct Sink {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    /// Lines not written yet, each ended by a newline.
    text: Vec<u8>,
    closing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Log {
    /// A log to `out`'s status lines (nothing at all when it shows none).
    pub fn new(out: &Printer) -> Log {
        if !out.shows_status() {
            return Log(None);
        }
        let shared = Arc::new(Shared::default());
        let (theirs, out) = (shared.clone(), out.clone());
        let writer = std::thread::Builder::new()
            .name("fanout-log".into())
            .spawn(move || write(&theirs, &out))
            .ok();
        Log(Some(Arc::new(Sink { shared, writer })))
    }

    pub fn silent() -> Log {
        Log(None)
    }

    pub fn line(&self, line: impl AsRef<str>) {
        let Some(sink) = &self.0 else {
            return;
        };
        let now = time::OffsetDateTime::from(SystemTime::now());
        let mut queue = sink.shared.lock();
        let was_empty = queue.text.is_empty();
        let text = &mut queue.text;
        if now
            .format_into(text, &time::format_description::well_known::Rfc3339)
            .is_err()
        {
            text.extend_from_slice(b"-");
        }
        text.push(b' ');
        text.extend_from_slice(crate::printer::escape_controls(line.as_ref()).as_bytes());
        text.push(b'\n');
        if was_empty {
            sink.shared.wake.notify_one();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn write(shared: &Shared, out: &Printer) {
    let mut spare = Vec::new();
    loop {
        let closing = {
            let mut queue = shared.lock();
            while queue.text.is_empty() && !queue.closing {
                queue = shared.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
            // Lines logged meanwhile do not wake it again (the queue is not empty): one write
            // and one wake-up per `COALESCE` at most, however many lines. Closing cuts it short.
            queue = match shared
                .wake
                .wait_timeout_while(queue, COALESCE, |q| !q.closing)
            {
                Ok((queue, _)) => queue,
                Err(e) => e.into_inner().0,
            };
            std::mem::swap(&mut spare, &mut queue.text);
            queue.closing
        };
        if spare.ends_with(b"\n") {
            spare.pop();
        }
        if !spare.is_empty() {
            out.status(String::from_utf8_lossy(&spare));
        }
        spare.clear();
        if closing && shared.lock().text.is_empty() {
            return;
        }
    }
}
